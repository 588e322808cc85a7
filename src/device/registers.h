// The device's BAR0 register map and command ids (docs/device.md#registers, #commands).
// The driver keeps its own copy: drivers never include device/.
#pragma once

#include <cstdint>

namespace gf::device {

// Byte offsets in BAR0; every register is 32 bits wide.
enum class Reg : uint32_t {
    COMMAND = 0x00,
    STATUS = 0x04,
    GUEST_PAGE_SIZE = 0x08,
    BLOCK_SIZE_LOW = 0x0C,
    BLOCK_SIZE_HIGH = 0x10,
    BLOCK_OFFSET_LOW = 0x14,
    BLOCK_OFFSET_HIGH = 0x18,
    PING = 0x1C,
    PING_INFO_ADDR_LOW = 0x20,
    PING_INFO_ADDR_HIGH = 0x24,
    HANDLE = 0x28,
    PHYS_START_LOW = 0x2C,
    PHYS_START_HIGH = 0x30,
    PING_WITH_DATA = 0x34,
};

enum class Command : uint32_t {
    ALLOCATE_BLOCK = 1,
    DEALLOCATE_BLOCK = 2,
    GEN_HANDLE = 3,
    DESTROY_HANDLE = 4,
    TELL_PING_INFO_ADDR = 5,
};

// HANDLE value a driver treats as "no handle"; never issued.
inline constexpr uint32_t kInvalidHandle = 0xFFFFFFFF;

// BLOCK_OFFSET after a failed ALLOCATE_BLOCK, and `metadata` after a failed ping.
inline constexpr uint64_t kAllOnes = ~uint64_t{0};

}  // namespace gf::device
