// The standard type-0 configuration header (PCI Local Bus 3.0 §6.1): the offsets and
// bits a driver reads and a device model presents. Facts of PCI, shared by both sides.
#pragma once

#include <cstdint>

namespace gf::hw {

inline constexpr uint32_t kConfigVendorId = 0x00;
inline constexpr uint32_t kConfigDeviceId = 0x02;
inline constexpr uint32_t kConfigCommand = 0x04;
inline constexpr uint32_t kConfigRevisionId = 0x08;
inline constexpr uint32_t kConfigProgIf = 0x09;
inline constexpr uint32_t kConfigClassCode = 0x0A;  // subclass, then class
inline constexpr uint32_t kConfigCacheLineSize = 0x0C;
inline constexpr uint32_t kConfigLatencyTimer = 0x0D;
inline constexpr uint32_t kConfigHeaderType = 0x0E;
inline constexpr uint32_t kConfigBar0 = 0x10;  // six 32-bit BAR registers follow
inline constexpr uint32_t kConfigSubsystemVendorId = 0x2C;
inline constexpr uint32_t kConfigSubsystemId = 0x2E;
inline constexpr uint32_t kConfigInterruptLine = 0x3C;
inline constexpr uint32_t kConfigInterruptPin = 0x3D;

// The config offset of BAR `bar`'s register.
constexpr uint32_t config_bar(unsigned bar) {
    return kConfigBar0 + 4 * bar;
}

// Command register bits.
inline constexpr uint16_t kCommandIo = 1u << 0;
inline constexpr uint16_t kCommandMemorySpace = 1u << 1;
inline constexpr uint16_t kCommandBusMaster = 1u << 2;
inline constexpr uint16_t kCommandParityErrorResponse = 1u << 6;
inline constexpr uint16_t kCommandSerr = 1u << 8;
inline constexpr uint16_t kCommandIntxDisable = 1u << 10;

// A memory BAR's type bits 2:1 = 10b: 64-bit, the next register holds the upper half.
inline constexpr uint32_t kBarMemory64 = 0x4;

}  // namespace gf::hw
