#include "pci/sysfs/device_lock.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include "pci/sysfs/diagnostic.h"
#include "pci/sysfs/sysfs_file.h"

namespace gf::pci::sysfs {

Result<PidLockFile> lock_device(const std::string& lock_dir, const std::string& bdf,
                                std::string* message) {
    const std::string path = join(lock_dir, "goldfish-asd-pci-" + bdf + ".lock");
    std::optional<pid_t> holder;
    auto lock = PidLockFile::acquire(path, 0600, &holder);
    if (lock) {
        return lock;
    }
    const int error = lock.error().value();
    if (error == EBUSY) {
        return fail_with(message, EBUSY,
                         "PCI device " + bdf + " is already driven by another goldfish-asd (pid " +
                             (holder ? std::to_string(*holder) : std::string("unknown")) +
                             ", lock file " + path + ")");
    }
    return fail_with(message, error,
                     "cannot open or lock the lock file " + path + ": " + std::strerror(error));
}

}  // namespace gf::pci::sysfs
