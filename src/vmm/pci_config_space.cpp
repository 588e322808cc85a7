#include "vmm/pci_config_space.h"

#include <bit>
#include <cerrno>

#include "base/checked.h"

namespace gf::vmm {
namespace {

// Standard type-0 header offsets.
constexpr uint32_t kVendorId = 0x00;
constexpr uint32_t kDeviceId = 0x02;
constexpr uint32_t kCommand = 0x04;
constexpr uint32_t kRevision = 0x08;
constexpr uint32_t kProgIf = 0x09;
constexpr uint32_t kClassCode = 0x0A;
constexpr uint32_t kCacheLineSize = 0x0C;
constexpr uint32_t kLatencyTimer = 0x0D;
constexpr uint32_t kSubsystemVendorId = 0x2C;
constexpr uint32_t kSubsystemId = 0x2E;
constexpr uint32_t kInterruptLine = 0x3C;
constexpr uint32_t kInterruptPin = 0x3D;

// I/O, memory, bus master, parity error response, SERR#, INTx disable.
constexpr uint16_t kCommandWritable = 0x0547;
constexpr uint64_t kMinBarSize = 16;
constexpr uint64_t kMax32BitBarSize = 2ull << 30;

void put16(std::array<uint8_t, PciConfigSpace::kSize>& b, uint32_t at, uint16_t v) {
    b[at] = static_cast<uint8_t>(v);
    b[at + 1] = static_cast<uint8_t>(v >> 8);
}
void put32(std::array<uint8_t, PciConfigSpace::kSize>& b, uint32_t at, uint32_t v) {
    put16(b, at, static_cast<uint16_t>(v));
    put16(b, at + 2, static_cast<uint16_t>(v >> 16));
}

bool valid_length(int length) {
    return length == 1 || length == 2 || length == 4;
}

}  // namespace

Result<PciConfigSpace> PciConfigSpace::create(const Identity& identity,
                                              const std::array<uint64_t, kBarCount>& bar_sizes) {
    std::array<uint8_t, kSize> bytes{};
    std::array<uint8_t, kSize> wmask{};
    put16(bytes, kVendorId, identity.vendor_id);
    put16(bytes, kDeviceId, identity.device_id);
    bytes[kRevision] = identity.revision;
    bytes[kProgIf] = identity.prog_if;
    put16(bytes, kClassCode, identity.class_code);
    put16(bytes, kSubsystemVendorId, identity.subsystem_vendor_id);
    put16(bytes, kSubsystemId, identity.subsystem_id);
    bytes[kInterruptPin] = identity.interrupt_pin;
    // Header type 0, no BIST, no capabilities, no expansion ROM, no CardBus CIS: all 0.

    put16(wmask, kCommand, kCommandWritable);
    wmask[kCacheLineSize] = 0xff;
    wmask[kLatencyTimer] = 0xff;
    wmask[kInterruptLine] = 0xff;
    for (size_t bar = 0; bar < kBarCount; ++bar) {
        const uint64_t size = bar_sizes[bar];
        if (size == 0) {
            continue;  // reads 0 whatever is written: sizing finds nothing there
        }
        if (!std::has_single_bit(size) || size < kMinBarSize || size > kMax32BitBarSize) {
            return fail(EINVAL);
        }
        // Address bits below the size are hard-wired to 0, and so are the type bits
        // (memory, 32-bit, not prefetchable): all-ones then reads back as the size mask.
        put32(wmask, static_cast<uint32_t>(kBar0 + 4 * bar), static_cast<uint32_t>(~(size - 1)));
    }
    return PciConfigSpace(bytes, wmask, bar_sizes);
}

uint32_t PciConfigSpace::read(uint32_t address, int length) const {
    if (!valid_length(length) || !range_within(address, static_cast<uint64_t>(length), kSize)) {
        return 0;
    }
    uint32_t value = 0;
    for (int i = length - 1; i >= 0; --i) {
        value = value << 8 | bytes_[address + static_cast<uint32_t>(i)];
    }
    return value;
}

void PciConfigSpace::write(uint32_t address, uint32_t value, int length) {
    if (!valid_length(length) || !range_within(address, static_cast<uint64_t>(length), kSize)) {
        return;
    }
    for (int i = 0; i < length; ++i) {
        const uint32_t at = address + static_cast<uint32_t>(i);
        const auto byte = static_cast<uint8_t>(value >> (8 * i));
        bytes_[at] = static_cast<uint8_t>((bytes_[at] & ~wmask_[at]) | (byte & wmask_[at]));
    }
}

bool PciConfigSpace::memory_enabled() const {
    return (read(kCommand, 2) & kCommandMemory) != 0;
}

uint32_t PciConfigSpace::bar_base(size_t bar) const {
    // The type bits are always 0 here (see create), so the register is the base.
    return read(static_cast<uint32_t>(kBar0 + 4 * bar), 4);
}

std::optional<PciConfigSpace::BarHit> PciConfigSpace::decode_memory(uint64_t address,
                                                                    uint64_t size) const {
    if (!memory_enabled() || size == 0) {
        return std::nullopt;
    }
    for (size_t bar = 0; bar < kBarCount; ++bar) {
        const uint64_t base = bar_base(bar);
        if (bar_sizes_[bar] == 0 || base == 0 || address < base) {
            continue;
        }
        // address >= base, so the subtraction is exact; range_within checks the end.
        if (range_within(address - base, size, bar_sizes_[bar])) {
            return BarHit{bar, address - base};
        }
    }
    return std::nullopt;
}

}  // namespace gf::vmm
