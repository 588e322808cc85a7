// pci::Bar<kMinSize>: a mapped register BAR with range-checked 32-bit access.
// As the Rust Bar<SIZE>: the BAR is at least kMinSize bytes long (checked when
// it is mapped), so an access at a constant offset below kMinSize is checked
// at compile time; any other offset goes through try_read32/try_write32.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

#include "base/result.h"
#include "pci/device.h"
#include "pci/mapped_bar.h"

namespace gf::pci {

namespace detail {
// A register offset given as an integer or as a typed register enum.
template <auto kOffset>
constexpr uint64_t register_offset() {
    if constexpr (std::is_enum_v<decltype(kOffset)>) {
        return static_cast<uint64_t>(std::to_underlying(kOffset));
    } else {
        return static_cast<uint64_t>(kOffset);
    }
}

// An aligned 32-bit register wholly inside the first kMinSize bytes.
template <auto kOffset, uint64_t kMinSize>
concept RegisterWithin = register_offset<kOffset>()
% 4 == 0 && register_offset<kOffset>() + 4 <= kMinSize;
}  // namespace detail

template <uint64_t kMinSize>
class Bar {
  public:
    static_assert(kMinSize >= 4, "a register BAR holds at least one 32-bit register");

    // Reserves and maps BAR `index`; errors as MappedBar::create, plus EINVAL
    // when the BAR is shorter than kMinSize.
    static Result<Bar> create(Device& device, unsigned index, std::string_view name) {
        return Bar(GF_TRY(MappedBar::create(device, index, name, kMinSize)));
    }

    // A constraint rather than a static_assert, so that tests can check that
    // an out-of-range offset does not compile.
    template <auto kOffset>
    requires detail::RegisterWithin<kOffset, kMinSize> uint32_t read32()
    const { return region_.read32(detail::register_offset<kOffset>()); }

    template <auto kOffset>
    requires detail::RegisterWithin<kOffset, kMinSize>
    void write32(uint32_t value) const {
        region_.write32(detail::register_offset<kOffset>(), value);
    }

    // EINVAL when the access is unaligned or not wholly inside the mapping.
    Result<uint32_t> try_read32(uint64_t offset) const {
        GF_TRY(check(offset));
        return region_.read32(offset);
    }
    Result<void> try_write32(uint64_t offset, uint32_t value) const {
        GF_TRY(check(offset));
        region_.write32(offset, value);
        return {};
    }

    uint64_t size() const { return region_.length(); }

  private:
    explicit Bar(MappedBar region) : region_(std::move(region)) {}

    Result<void> check(uint64_t offset) const {
        if (offset % 4 != 0 || offset > size() || size() - offset < 4) {
            return fail(EINVAL);
        }
        return {};
    }

    MappedBar region_;
};

}  // namespace gf::pci
