// pci::SharedMemoryBar: a memory BAR the driver owns but never dereferences
// (the RFC's patch 4/6). It exists only while the BAR's region is reserved and
// mapped; destroying it unmaps and then releases the region.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "pci/device.h"
#include "pci/mapped_bar.h"

namespace gf::pci {

class SharedMemoryBar {
  public:
    // EINVAL: invalid BAR index (or not a memory BAR). ENXIO: zero-length BAR.
    // EBUSY: region already held. ENOMEM: mapping failed; the region is released.
    static Result<SharedMemoryBar> create(Device& device, unsigned bar, std::string_view name);

    SharedMemoryBar(SharedMemoryBar&&) noexcept = default;
    SharedMemoryBar& operator=(SharedMemoryBar&&) noexcept = default;
    SharedMemoryBar(const SharedMemoryBar&) = delete;
    SharedMemoryBar& operator=(const SharedMemoryBar&) = delete;
    ~SharedMemoryBar() = default;  // MappedBar unmaps, then releases

    uint64_t phys_start() const { return region_.phys_start(); }
    uint64_t size() const { return region_.length(); }
    unsigned index() const { return region_.index(); }

  private:
    explicit SharedMemoryBar(MappedBar region);

    MappedBar region_;
};

}  // namespace gf::pci
