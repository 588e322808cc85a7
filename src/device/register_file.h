// BAR0's register values and their decoding (docs/device.md#registers): 64-bit registers are stored
// whole and accessed by 32-bit halves. Writes to COMMAND and the PING registers are not
// stored; they are handed back for the device to run.
#pragma once

#include <cstdint>

namespace gf::device {

// The largest GUEST_PAGE_SIZE (and host page size) the device accepts.
inline constexpr uint32_t kMaxGuestPageSize = 64 * 1024;

class RegisterFile {
  public:
    // What a register write asks of the device beyond storing a value.
    struct Write {
        enum class Kind : uint8_t { kStored, kCommand, kPing };
        Kind kind = Kind::kStored;
        uint32_t value = 0;  // the command, or the handle to ping
    };

    explicit RegisterFile(uint32_t host_page_size) : host_page_size_(host_page_size) { reset(); }

    // A 4-byte read at a BAR0 offset; write-only and unknown offsets read 0.
    uint32_t read(uint64_t offset) const;
    // A 4-byte write at a BAR0 offset; STATUS and unknown offsets are ignored.
    Write write(uint64_t offset, uint32_t value);
    // The values after device reset.
    void reset();

    uint32_t status = 0;
    uint32_t guest_page_size = 0;
    uint64_t block_size = 0;
    uint64_t block_offset = 0;
    uint64_t ping_info_addr = 0;
    uint32_t handle = 0;
    uint64_t phys_start = 0;

  private:
    uint32_t host_page_size_;
};

}  // namespace gf::device
