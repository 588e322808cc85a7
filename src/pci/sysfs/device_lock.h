// One goldfish-asd per PCI function, across processes: a PidLockFile at
// <lock_dir>/goldfish-asd-pci-<BDF>.lock, so a crashed daemon never leaves
// the device locked.
#pragma once

#include <string>

#include "base/pid_lock_file.h"
#include "base/result.h"

namespace gf::pci::sysfs {

// `bdf` must be canonical (see bdf.h). EBUSY, with the holder's pid in the
// message, when another open file holds the lock (in this process or
// another); otherwise the errno of open/flock.
Result<PidLockFile> lock_device(const std::string& lock_dir, const std::string& bdf,
                                std::string* message);

}  // namespace gf::pci::sysfs
