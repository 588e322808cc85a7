#include "pci/sysfs/device_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "pci/sysfs/diagnostic.h"
#include "pci/sysfs/sysfs_file.h"

namespace gf::pci::sysfs {

namespace {

// The pid the holder wrote, for the message only: "unknown" unless the file
// holds a plain decimal number.
std::string holder_pid(int fd) {
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof(text) - 1, 0);
    if (n <= 0) {
        return "unknown";
    }
    std::string pid(text, static_cast<size_t>(n));
    if (!pid.empty() && pid.back() == '\n') {
        pid.pop_back();
    }
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) {
        return "unknown";
    }
    return pid;
}

}  // namespace

Result<DeviceLock> DeviceLock::acquire(const std::string& lock_dir, const std::string& bdf,
                                       std::string* message) {
    std::string path = join(lock_dir, "goldfish-asd-pci-" + bdf + ".lock");
    // O_NOFOLLOW: the default directory is world-writable, and a planted
    // symlink must not make root open some other file.
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) {
        const int error = errno;
        return fail_with(message, error,
                         "cannot open the lock file " + path + ": " + std::strerror(error));
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        if (error == EWOULDBLOCK) {
            return fail_with(message, EBUSY,
                             "PCI device " + bdf +
                                 " is already driven by another goldfish-asd (pid " +
                                 holder_pid(fd.get()) + ", lock file " + path + ")");
        }
        return fail_with(message, error, "cannot lock " + path + ": " + std::strerror(error));
    }
    // The pid is informational (for the EBUSY message); failing to record it
    // does not weaken the lock.
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) == 0) {
        [[maybe_unused]] const ssize_t written = ::pwrite(fd.get(), pid.data(), pid.size(), 0);
    }
    return DeviceLock(std::move(fd), std::move(path));
}

}  // namespace gf::pci::sysfs
