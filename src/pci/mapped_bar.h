// MappedBar: the one owner of a BAR's region reservation and mapping, shared
// by the register Bar and the SharedMemoryBar. Existing means both are held;
// destruction unmaps, then releases the region.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "pci/backend.h"
#include "pci/device.h"

namespace gf::pci {

class MappedBar {
  public:
    // EINVAL: bad index, not a memory BAR, or shorter than min_length.
    // ENXIO: zero-length BAR. EBUSY: region already held. ENOMEM: the mapping
    // failed (the region taken for it is released again).
    static Result<MappedBar> create(Device& device, unsigned bar, std::string_view name,
                                    uint64_t min_length);

    MappedBar(MappedBar&& other) noexcept;
    MappedBar& operator=(MappedBar&& other) noexcept;
    MappedBar(const MappedBar&) = delete;
    MappedBar& operator=(const MappedBar&) = delete;
    ~MappedBar();

    uint64_t phys_start() const { return phys_start_; }
    uint64_t length() const { return mapping_.length; }
    unsigned index() const { return mapping_.bar; }

    // Unchecked: callers (Bar) have checked offset + 4 <= length().
    uint32_t read32(uint64_t offset) const { return device_->backend().read32(mapping_, offset); }
    void write32(uint64_t offset, uint32_t value) const {
        device_->backend().write32(mapping_, offset, value);
    }

  private:
    MappedBar(Device& device, BarMapping mapping, uint64_t phys_start)
        : device_(&device), mapping_(mapping), phys_start_(phys_start) {}
    void reset();

    Device* device_;  // not owned; outlives every BAR taken from it. Null once moved from.
    BarMapping mapping_;
    uint64_t phys_start_;
};

}  // namespace gf::pci
