#include "pci/device.h"

#include <bit>
#include <cstring>
#include <utility>

namespace gf::pci {

// Config space is little-endian; so is every host this project targets.
static_assert(std::endian::native == std::endian::little);

Device::Device(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}

Device::~Device() = default;

template <typename T>
Result<T> Device::read_config(uint32_t offset) {
    std::array<std::byte, sizeof(T)> bytes{};
    {
        MutexLock lock(mutex_);
        GF_TRY(backend_->config_read(offset, bytes));
    }
    T value;
    std::memcpy(&value, bytes.data(), sizeof(T));
    return value;
}

Result<uint8_t> Device::read_config8(uint32_t offset) {
    return read_config<uint8_t>(offset);
}
Result<uint16_t> Device::read_config16(uint32_t offset) {
    return read_config<uint16_t>(offset);
}
Result<uint32_t> Device::read_config32(uint32_t offset) {
    return read_config<uint32_t>(offset);
}

Result<void> Device::write_config16(uint32_t offset, uint16_t value) {
    std::array<std::byte, sizeof(value)> bytes;
    std::memcpy(bytes.data(), &value, sizeof(value));
    MutexLock lock(mutex_);
    return backend_->config_write(offset, bytes);
}

Result<void> Device::enable() {
    MutexLock lock(mutex_);
    if (enable_count_ == 0) {
        GF_TRY(backend_->enable());
    }
    ++enable_count_;
    return {};
}

void Device::disable() {
    MutexLock lock(mutex_);
    if (enable_count_ == 0) {
        return;  // unbalanced disable: nothing to undo
    }
    if (--enable_count_ == 0) {
        backend_->disable();
    }
}

bool Device::is_enabled() const {
    MutexLock lock(mutex_);
    return enable_count_ > 0;
}

Result<BarResource> Device::resource(unsigned bar) {
    if (bar >= kNumBars) {
        return fail(EINVAL);
    }
    MutexLock lock(mutex_);
    return backend_->bar_resource(bar);
}

Result<void> Device::request_region(unsigned bar, std::string_view name) {
    if (bar >= kNumBars) {
        return fail(EINVAL);
    }
    MutexLock lock(mutex_);
    if (held_regions_[bar]) {
        return fail(EBUSY);
    }
    GF_TRY(backend_->request_region(bar, name));
    held_regions_[bar] = true;
    return {};
}

void Device::release_region(unsigned bar) {
    if (bar >= kNumBars) {
        return;
    }
    MutexLock lock(mutex_);
    if (held_regions_[bar]) {
        backend_->release_region(bar);
        held_regions_[bar] = false;
    }
}

bool Device::region_held(unsigned bar) const {
    if (bar >= kNumBars) {
        return false;
    }
    MutexLock lock(mutex_);
    return held_regions_[bar];
}

Result<BarMapping> Device::map_bar(unsigned bar) {
    MutexLock lock(mutex_);
    return backend_->map_bar(bar);
}

void Device::unmap_bar(const BarMapping& mapping) {
    MutexLock lock(mutex_);
    backend_->unmap_bar(mapping);
}

Result<ScopedEnable> ScopedEnable::create(Device& device) {
    GF_TRY(device.enable());
    return ScopedEnable(device);
}

ScopedEnable::ScopedEnable(ScopedEnable&& other) noexcept
    : device_(std::exchange(other.device_, nullptr)) {}

ScopedEnable& ScopedEnable::operator=(ScopedEnable&& other) noexcept {
    if (this != &other) {
        reset();
        device_ = std::exchange(other.device_, nullptr);
    }
    return *this;
}

ScopedEnable::~ScopedEnable() {
    reset();
}

void ScopedEnable::reset() {
    if (device_ != nullptr) {
        std::exchange(device_, nullptr)->disable();
    }
}

}  // namespace gf::pci
