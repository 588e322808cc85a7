// What the daemon calls for `goldfish-asd --pci BDF|auto`: find the goldfish
// address space function in sysfs and open it as a pci::Device backed by
// SysfsBackend. Every error comes with one line (in *message) that says what
// is wrong on this system and what to do about it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "pci/device.h"
#include "pci/sysfs/sysfs_backend.h"
#include "pci/sysfs/sysfs_config.h"

namespace gf::pci::sysfs {

// The ids open_device() accepts are the goldfish address space device's
// (hw/pci_identity.h), as the driver's match table.

// `bdf_or_auto` is a PCI address (DDDD:BB:DD.F, returned in canonical form if
// <root>/bus/pci/devices/<BDF> exists) or "auto" (the one device with vendor
// 0x607d and device 0xf153). EINVAL: malformed address, or "auto" found more
// than one. ENODEV: no such device, or "auto" found none.
Result<std::string> find_device(const SysfsConfig& config, std::string_view bdf_or_auto,
                                std::string* message);

// Checks, in this order, with a message for each: the address (EINVAL),
// privileges (EPERM without CAP_SYS_ADMIN, if config.require_root), the
// device directory (ENODEV), no kernel driver bound (EBUSY, naming it and
// how to unbind it), vendor/device/revision (ENODEV), the per-device lock
// (EBUSY), the `resource` file (EINVAL/EOVERFLOW; ENXIO if BAR0 or BAR1 has
// no address), resource0 and resource1 and `config` (the errno of open, e.g.
// ENOENT or EACCES), the pagemap (EPERM for a zero frame, if
// config.check_pagemap). Nothing is enabled or mapped yet: Driver::probe does
// that through the returned object.
Result<std::unique_ptr<SysfsBackend>> open_backend(const SysfsConfig& config,
                                                   const std::string& bdf, std::string* message);

// open_backend() wrapped in a pci::Device, for Driver::probe.
Result<std::unique_ptr<pci::Device>> open_device(const SysfsConfig& config, const std::string& bdf,
                                                 std::string* message);

}  // namespace gf::pci::sysfs
