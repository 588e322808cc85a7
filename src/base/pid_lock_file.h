// PidLockFile: one holder per lock-file path, across processes. An advisory
// flock on the file (as SPDK locks a device it drives); the file records the
// holder's pid for whoever finds it taken. The kernel drops the lock when its
// holder exits, however it exits, so a crashed holder never leaves the path
// taken; a holder that lets go unlinks the file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace gf {

class PidLockFile {
  public:
    // Creates the file (with `mode`) if needed. EBUSY when another open file
    // holds the lock, in this process or another: *holder then receives the
    // pid it recorded, or nullopt if the file holds no plain pid. ELOOP if
    // `path` is a symlink: lock directories may be world-writable, and a
    // planted link must not make root open some other file. Otherwise the
    // errno of open or flock.
    static Result<PidLockFile> acquire(const std::string& path, mode_t mode,
                                       std::optional<pid_t>* holder = nullptr);

    PidLockFile(PidLockFile&& other) noexcept = default;
    PidLockFile& operator=(PidLockFile&&) = delete;
    PidLockFile(const PidLockFile&) = delete;
    PidLockFile& operator=(const PidLockFile&) = delete;
    ~PidLockFile();

    const std::string& path() const { return path_; }

  private:
    PidLockFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

    UniqueFd fd_;  // closing it releases the lock
    std::string path_;
};

}  // namespace gf
