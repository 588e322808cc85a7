#include "pci/mapped_bar.h"

#include <utility>

#include "base/scope_guard.h"

namespace gf::pci {

Result<MappedBar> MappedBar::create(Device& device, unsigned bar, std::string_view name,
                                    uint64_t min_length) {
    if (bar >= kNumBars) {
        return fail(EINVAL);
    }
    const BarResource resource = GF_TRY(device.resource(bar));
    if (resource.length == 0) {
        return fail(ENXIO);
    }
    if (!resource.is_memory() || resource.length < min_length) {
        return fail(EINVAL);
    }
    GF_TRY(device.request_region(bar, name));
    ScopeGuard release_region([&] { device.release_region(bar); });
    auto mapping = device.map_bar(bar);
    if (!mapping) {
        return fail(ENOMEM);  // as memremap/ioremap: a failed mapping is out of memory
    }
    release_region.dismiss();
    return MappedBar(device, *mapping, resource.start);
}

MappedBar::MappedBar(MappedBar&& other) noexcept
    : device_(std::exchange(other.device_, nullptr)),
      mapping_(other.mapping_),
      phys_start_(other.phys_start_) {}

MappedBar& MappedBar::operator=(MappedBar&& other) noexcept {
    if (this != &other) {
        reset();
        device_ = std::exchange(other.device_, nullptr);
        mapping_ = other.mapping_;
        phys_start_ = other.phys_start_;
    }
    return *this;
}

MappedBar::~MappedBar() {
    reset();
}

void MappedBar::reset() {
    if (device_ == nullptr) {
        return;
    }
    Device* device = std::exchange(device_, nullptr);
    device->unmap_bar(mapping_);
    device->release_region(mapping_.bar);
}

}  // namespace gf::pci
