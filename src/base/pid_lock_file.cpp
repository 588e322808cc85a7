#include "base/pid_lock_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>
#include <utility>

namespace gf {

namespace {

// The pid the holder wrote: only a plain positive decimal counts.
std::optional<pid_t> recorded_pid(int fd) {
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof(text) - 1, 0);
    if (n <= 0) {
        return std::nullopt;
    }
    std::string_view digits(text, static_cast<size_t>(n));
    if (digits.ends_with('\n')) {
        digits.remove_suffix(1);
    }
    pid_t pid = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    if (error != std::errc() || end != digits.data() + digits.size() || pid <= 0) {
        return std::nullopt;
    }
    return pid;
}

}  // namespace

Result<PidLockFile> PidLockFile::acquire(const std::string& path, mode_t mode,
                                         std::optional<pid_t>* holder) {
    // Bounded retry: a previous holder may unlink the file between our open and flock.
    for (int attempt = 0; attempt < 8; ++attempt) {
        UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode));
        if (!fd) {
            return fail(errno);
        }
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
            const int error = errno;
            if (error != EWOULDBLOCK) {
                return fail(error);
            }
            if (holder != nullptr) {
                *holder = recorded_pid(fd.get());
            }
            return fail(EBUSY);
        }
        // Locked, but perhaps a file its holder has unlinked since we opened it.
        struct stat held, named;
        if (::fstat(fd.get(), &held) != 0 || ::stat(path.c_str(), &named) != 0 ||
            held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
            continue;
        }
        // The pid is informational (for whoever finds the lock taken); failing to
        // record it does not weaken the lock.
        const std::string pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd.get(), 0) == 0) {
            [[maybe_unused]] const ssize_t written = ::pwrite(fd.get(), pid.data(), pid.size(), 0);
        }
        return PidLockFile(std::move(fd), path);
    }
    if (holder != nullptr) {
        *holder = std::nullopt;
    }
    return fail(EBUSY);
}

PidLockFile::~PidLockFile() {
    if (fd_) {
        // Unlinked while held: a waiter that opened this file notices and retries.
        ::unlink(path_.c_str());
    }
}

}  // namespace gf
