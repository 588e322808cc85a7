// The device's 256-byte PCI configuration space as the proxy protocol exposes it: our
// identity (spec/device.md §2), a command register, and 32-bit memory BARs that the guest
// sizes by writing all-ones and places by writing a base. Writes only reach the bits a
// real function lets software change; everything else reads as it was built.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/result.h"

namespace gf::vmm {

class PciConfigSpace {
  public:
    static constexpr size_t kSize = 256;
    static constexpr size_t kBarCount = 6;
    static constexpr uint32_t kBar0 = 0x10;          // config offset of BAR0
    static constexpr uint16_t kCommandMemory = 0x2;  // memory space enable

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

    // bar_sizes[i] is BAR i's size: 0 for an absent BAR, else a power of two from 16 bytes
    // to 2 GiB (a 32-bit, non-prefetchable memory BAR). EINVAL otherwise.
    static Result<PciConfigSpace> create(const Identity& identity,
                                         const std::array<uint64_t, kBarCount>& bar_sizes);

    // A 1-, 2- or 4-byte little-endian access at `address`. Accesses of another length or
    // that do not fit inside the 256 bytes read 0 and are ignored.
    uint32_t read(uint32_t address, int length) const;
    void write(uint32_t address, uint32_t value, int length);
    // Back to the state create() built (a PCI reset): BARs unplaced, decoding off.
    void reset() { bytes_ = initial_; }

    bool memory_enabled() const;
    uint64_t bar_size(size_t bar) const { return bar_sizes_[bar]; }
    // Where the guest placed a BAR (the register without its type bits).
    uint32_t bar_base(size_t bar) const;

    // Which BAR a memory access of `size` bytes at absolute `address` falls in, and at what
    // offset. nullopt if memory decoding is off, or the access is not wholly inside one
    // placed BAR (a BAR at base 0 counts as not placed).
    struct BarHit {
        size_t bar;
        uint64_t offset;
    };
    std::optional<BarHit> decode_memory(uint64_t address, uint64_t size) const;

  private:
    PciConfigSpace(const std::array<uint8_t, kSize>& bytes, const std::array<uint8_t, kSize>& wmask,
                   const std::array<uint64_t, kBarCount>& bar_sizes)
        : bytes_(bytes), initial_(bytes), wmask_(wmask), bar_sizes_(bar_sizes) {}

    std::array<uint8_t, kSize> bytes_;
    std::array<uint8_t, kSize> initial_;
    std::array<uint8_t, kSize> wmask_;  // bits software may change, per byte
    std::array<uint64_t, kBarCount> bar_sizes_;
};

}  // namespace gf::vmm
