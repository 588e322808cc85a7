// The goldfish address space PCI function's identity: what a driver matches and a device
// model presents. Facts of the hardware, shared by both sides of the bus (docs/device.md).
#pragma once

#include <cstdint>

namespace gf::hw {

inline constexpr uint16_t kVendorId = 0x607D;
inline constexpr uint16_t kDeviceId = 0xF153;
inline constexpr uint8_t kRevision = 1;
inline constexpr uint16_t kClassCode = 0xff00;  // class << 8 | subclass; prog-if 0

inline constexpr unsigned kControlBar = 0;  // BAR0: 32-bit registers
inline constexpr unsigned kAreaBar = 1;     // BAR1: the shared-memory area
inline constexpr uint64_t kControlBarSize = 0x1000;

}  // namespace gf::hw
