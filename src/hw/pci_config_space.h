// A PCI function's 256-byte configuration space as a device model presents it: the
// bytes, which bits software may change, and 32-bit memory BARs that software sizes by
// writing all-ones and places by writing a base. Writes only reach the writable bits;
// everything else reads as it was built. The emulated machine's slot and the vmm's proxied
// function both present theirs through this.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/result.h"

namespace gf::hw {

class PciConfigSpace {
  public:
    static constexpr size_t kSize = 256;
    static constexpr size_t kBarCount = 6;

    struct Identity {
        uint16_t vendor_id = 0;
        uint16_t device_id = 0;
        uint8_t revision = 0;
        uint16_t class_code = 0;  // class << 8 | subclass
        uint8_t prog_if = 0;
        uint16_t subsystem_vendor_id = 0;
        uint16_t subsystem_id = 0;
        uint8_t interrupt_pin = 0;  // 1 = INTA .. 4 = INTD
    };

    // A type-0 header presenting `identity`, with nothing writable and no BARs until the
    // calls below add them.
    explicit PciConfigSpace(const Identity& identity);

    // Building the power-on state, which reset() returns to; before the first access.
    // Fields are 1, 2 or 4 bytes at `offset`; a field that does not fit is ignored.
    //
    // Lets software change the bits of `mask` in a field.
    void set_writable(uint32_t offset, uint32_t mask, int length);
    // The power-on value of a field (a BAR the platform placed, an interrupt line).
    void set_initial(uint32_t offset, uint32_t value, int length);
    // BAR `bar` as a 32-bit, non-prefetchable memory BAR of `size` bytes. EINVAL for a BAR
    // past the last, or unless `size` is a power of two from 16 bytes to 2 GiB.
    Result<void> add_memory_bar(size_t bar, uint64_t size);

    // Bus accesses of any length, little-endian: EINVAL unless they lie inside the space.
    Result<void> read_bytes(uint32_t offset, std::span<std::byte> out) const;
    Result<void> write_bytes(uint32_t offset, std::span<const std::byte> in);
    // A 1-, 2- or 4-byte little-endian access at `address`. Accesses of another length or
    // that do not fit inside the 256 bytes read 0 and are ignored.
    uint32_t read(uint32_t address, int length) const;
    void write(uint32_t address, uint32_t value, int length);
    // Back to the power-on state (a PCI reset): BARs unplaced, decoding off.
    void reset() { bytes_ = initial_; }

    bool memory_enabled() const;
    // 0 for a BAR add_memory_bar did not add.
    uint64_t bar_size(size_t bar) const { return bar_sizes_[bar]; }
    // Where the guest placed a BAR (the register without its type bits).
    uint32_t bar_base(size_t bar) const;

    // Which added BAR a memory access of `size` bytes at absolute `address` falls in, and
    // at what offset. nullopt if memory decoding is off, or the access is not wholly inside
    // one placed BAR (a BAR at base 0 counts as not placed).
    struct BarHit {
        size_t bar;
        uint64_t offset;
    };
    std::optional<BarHit> decode_memory(uint64_t address, uint64_t size) const;

  private:
    std::array<uint8_t, kSize> bytes_{};
    std::array<uint8_t, kSize> initial_{};
    std::array<uint8_t, kSize> wmask_{};  // bits software may change, per byte
    std::array<uint64_t, kBarCount> bar_sizes_{};
};

}  // namespace gf::hw
