// DeviceLock: one goldfish-asd per PCI function, across processes. An
// advisory flock on <lock_dir>/goldfish-asd-pci-<BDF>.lock (as SPDK locks a
// device it drives); the kernel drops it when the holder exits, however it
// exits, so a crashed daemon never leaves the device locked.
#pragma once

#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace gf::pci::sysfs {

class DeviceLock {
  public:
    // `bdf` must be canonical (see bdf.h). EBUSY, with the holder's pid in
    // the message, when another open file holds the lock (in this process or
    // another); otherwise the errno of open/flock.
    static Result<DeviceLock> acquire(const std::string& lock_dir, const std::string& bdf,
                                      std::string* message);

    const std::string& path() const { return path_; }

  private:
    DeviceLock(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

    UniqueFd fd_;  // closing it releases the lock
    std::string path_;
};

}  // namespace gf::pci::sysfs
