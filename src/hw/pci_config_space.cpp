#include "hw/pci_config_space.h"

#include <bit>
#include <cerrno>
#include <cstring>

#include "base/checked.h"
#include "hw/pci_header.h"

namespace gf::hw {
namespace {

// Config space is little-endian; so is every host this project targets.
static_assert(std::endian::native == std::endian::little);

constexpr uint64_t kMinBarSize = 16;
constexpr uint64_t kMax32BitBarSize = 2ull << 30;

using Bytes = std::array<uint8_t, PciConfigSpace::kSize>;

bool valid_length(int length) {
    return length == 1 || length == 2 || length == 4;
}

bool fits(uint32_t offset, uint64_t length) {
    return range_within(offset, length, PciConfigSpace::kSize);
}

// The `length` low bytes of `value`, little-endian, at `offset`; ignored if they do not fit.
void put(Bytes& bytes, uint32_t offset, uint32_t value, int length) {
    if (!valid_length(length) || !fits(offset, static_cast<uint64_t>(length))) {
        return;
    }
    for (int i = 0; i < length; ++i) {
        bytes[offset + static_cast<uint32_t>(i)] = static_cast<uint8_t>(value >> (8 * i));
    }
}

}  // namespace

PciConfigSpace::PciConfigSpace(const Identity& identity) {
    set_initial(kConfigVendorId, identity.vendor_id, 2);
    set_initial(kConfigDeviceId, identity.device_id, 2);
    set_initial(kConfigRevisionId, identity.revision, 1);
    set_initial(kConfigProgIf, identity.prog_if, 1);
    set_initial(kConfigClassCode, identity.class_code, 2);
    set_initial(kConfigSubsystemVendorId, identity.subsystem_vendor_id, 2);
    set_initial(kConfigSubsystemId, identity.subsystem_id, 2);
    set_initial(kConfigInterruptPin, identity.interrupt_pin, 1);
    // Header type 0, no BIST, no capabilities, no expansion ROM, no CardBus CIS: all 0.
}

void PciConfigSpace::set_writable(uint32_t offset, uint32_t mask, int length) {
    put(wmask_, offset, mask, length);
}

void PciConfigSpace::set_initial(uint32_t offset, uint32_t value, int length) {
    put(bytes_, offset, value, length);
    put(initial_, offset, value, length);
}

Result<void> PciConfigSpace::add_memory_bar(size_t bar, uint64_t size) {
    if (bar >= kBarCount || !std::has_single_bit(size) || size < kMinBarSize ||
        size > kMax32BitBarSize) {
        return fail(EINVAL);
    }
    // Address bits below the size are hard-wired to 0, and so are the type bits (memory,
    // 32-bit, not prefetchable): all-ones then reads back as the size mask.
    set_writable(config_bar(static_cast<unsigned>(bar)), static_cast<uint32_t>(~(size - 1)), 4);
    bar_sizes_[bar] = size;
    return {};
}

Result<void> PciConfigSpace::read_bytes(uint32_t offset, std::span<std::byte> out) const {
    if (!fits(offset, out.size())) {
        return fail(EINVAL);
    }
    if (!out.empty()) {  // an empty span may have no data() to copy to
        std::memcpy(out.data(), bytes_.data() + offset, out.size());
    }
    return {};
}

Result<void> PciConfigSpace::write_bytes(uint32_t offset, std::span<const std::byte> in) {
    if (!fits(offset, in.size())) {
        return fail(EINVAL);
    }
    for (size_t i = 0; i < in.size(); ++i) {
        const size_t at = offset + i;
        const auto byte = std::to_integer<uint8_t>(in[i]);
        bytes_[at] = static_cast<uint8_t>((bytes_[at] & ~wmask_[at]) | (byte & wmask_[at]));
    }
    return {};
}

uint32_t PciConfigSpace::read(uint32_t address, int length) const {
    std::array<std::byte, 4> bytes{};
    if (!valid_length(length) ||
        !read_bytes(address, std::span(bytes).first(static_cast<size_t>(length)))) {
        return 0;
    }
    uint32_t value;
    std::memcpy(&value, bytes.data(), sizeof(value));
    return value;
}

void PciConfigSpace::write(uint32_t address, uint32_t value, int length) {
    if (!valid_length(length)) {
        return;
    }
    std::array<std::byte, 4> bytes;
    std::memcpy(bytes.data(), &value, sizeof(value));
    (void)write_bytes(address, std::span(bytes).first(static_cast<size_t>(length)));
}

bool PciConfigSpace::memory_enabled() const {
    return (read(kConfigCommand, 2) & kCommandMemorySpace) != 0;
}

uint32_t PciConfigSpace::bar_base(size_t bar) const {
    // Bits 3:0 of a memory BAR are its type, not address (0 for an added BAR, see
    // add_memory_bar; a BAR the platform placed may carry them).
    return read(config_bar(static_cast<unsigned>(bar)), 4) & ~uint32_t{0xF};
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

}  // namespace gf::hw
