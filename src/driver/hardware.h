// What the driver knows of the goldfish address space device: the ids it
// binds to and the BAR layout it needs; the BAR0 register map and the command
// ids come from hw/ (docs/device.md).
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "hw/pci_identity.h"
#include "hw/registers.h"

namespace gf::driver {

// The devices this driver binds to, as data (vendor, device, revision).
struct DeviceMatch {
    uint16_t vendor;
    uint16_t device;
    uint8_t revision;
};
inline constexpr std::array kMatchTable = {
    DeviceMatch{hw::kVendorId, hw::kDeviceId, hw::kRevision}};

using hw::kAreaBar;
using hw::kControlBar;
// Registers up to PING_WITH_DATA (52) fit, as the Rust driver's Bar<56>.
inline constexpr uint64_t kControlBarMinSize = 56;
static_assert(kControlBarMinSize == std::to_underlying(hw::Register::PING_WITH_DATA) + 4);

// The register map, the commands and the ping page's layout are the hardware's.
using hw::Command;
using hw::kInvalidHandle;
using hw::kPingHeaderSize;
using hw::kPingRequestSize;
using hw::Register;

}  // namespace gf::driver
