// What the driver knows of the goldfish address space device: the ids it
// binds to, the BAR layout, the BAR0 register map and the command ids
// (spec/driver.md §1).
#pragma once

#include <array>
#include <cstdint>

namespace gf::driver {

// The devices this driver binds to, as data (vendor, device, revision).
struct DeviceMatch {
    uint16_t vendor;
    uint16_t device;
    uint8_t revision;
};
inline constexpr std::array kMatchTable = {DeviceMatch{0x607D, 0xF153, 1}};

inline constexpr unsigned kControlBar = 0;  // BAR0: registers
inline constexpr unsigned kAreaBar = 1;     // BAR1: the shared-memory area
// Registers up to PING_WITH_DATA (52) fit, as the Rust driver's Bar<56>.
inline constexpr uint64_t kControlBarMinSize = 56;

// BAR0 registers: 32-bit, 4-byte accesses only; 64-bit values as LOW/HIGH.
enum class Register : uint32_t {
    kCommand = 0,
    kStatus = 4,
    kGuestPageSize = 8,
    kBlockSizeLow = 12,
    kBlockSizeHigh = 16,
    kBlockOffsetLow = 20,
    kBlockOffsetHigh = 24,
    kPing = 28,
    kPingInfoAddrLow = 32,
    kPingInfoAddrHigh = 36,
    kHandle = 40,
    kPhysStartLow = 44,
    kPhysStartHigh = 48,
};

// Written to COMMAND; the device runs them synchronously inside the write.
enum class Command : uint32_t {
    kAllocateBlock = 1,
    kDeallocateBlock = 2,
    kGenHandle = 3,
    kDestroyHandle = 4,
    kTellPingInfoAddr = 5,
};

// HANDLE after a failed GEN_HANDLE.
inline constexpr uint32_t kInvalidHandle = 0xFFFF'FFFF;

// The ping page: the 40-byte UAPI struct, then a u64 data size (always 0 for
// a plain PING) that completes the 48-byte header hosts expect.
inline constexpr size_t kPingRequestSize = 40;
inline constexpr size_t kPingHeaderSize = 48;

}  // namespace gf::driver
