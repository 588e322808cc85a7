// pci::Device: what a driver sees of one PCI function (the C++ twin of the
// kernel's struct pci_dev as rust/kernel/pci exposes it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "base/mutex.h"
#include "base/result.h"
#include "hw/pci_header.h"
#include "pci/backend.h"

namespace gf::pci {

class Device {
  public:
    explicit Device(std::unique_ptr<Backend> backend);
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    ~Device();

    Result<uint16_t> vendor_id() { return read_config16(hw::kConfigVendorId); }
    Result<uint16_t> device_id() { return read_config16(hw::kConfigDeviceId); }
    Result<uint8_t> revision() { return read_config8(hw::kConfigRevisionId); }

    Result<uint8_t> read_config8(uint32_t offset);
    Result<uint16_t> read_config16(uint32_t offset);
    Result<uint32_t> read_config32(uint32_t offset);
    Result<void> write_config16(uint32_t offset, uint16_t value);

    // Counted like pci_enable_device: the backend is called on the first
    // enable and the last disable. Driver code holds a ScopedEnable instead.
    Result<void> enable();
    void disable();
    bool is_enabled() const;

    // EINVAL for an index past the last BAR.
    Result<BarResource> resource(unsigned bar);

    // Exclusive within this Device: a second request of a held BAR is EBUSY.
    // Driver code holds a Bar or SharedMemoryBar, which pair these for it.
    Result<void> request_region(unsigned bar, std::string_view name);
    void release_region(unsigned bar);
    bool region_held(unsigned bar) const;

    size_t page_size() const { return backend_->page_size(); }

  private:
    friend class MappedBar;
    friend class DmaPage;
    friend class BarFile;

    Result<BarMapping> map_bar(unsigned bar);
    void unmap_bar(const BarMapping& mapping);
    // Register access bypasses the device lock: the driver serializes it.
    Backend& backend() { return *backend_; }
    Result<DmaBuffer> allocate_dma_page() { return backend_->allocate_dma_page(); }
    void free_dma_page(const DmaBuffer& buffer) { backend_->free_dma_page(buffer); }
    Result<void> verify_dma_page(const DmaBuffer& buffer) {
        return backend_->verify_dma_page(buffer);
    }

    template <typename T>
    Result<T> read_config(uint32_t offset);

    const std::unique_ptr<Backend> backend_;
    mutable Mutex mutex_;
    unsigned enable_count_ GF_GUARDED_BY(mutex_) = 0;
    std::array<bool, kNumBars> held_regions_ GF_GUARDED_BY(mutex_) = {};
};

// Holds the device enabled; disables it when destroyed (probe's unwind and
// the driver's unbind both rely on this).
class ScopedEnable {
  public:
    static Result<ScopedEnable> create(Device& device);
    ScopedEnable(ScopedEnable&& other) noexcept;
    ScopedEnable& operator=(ScopedEnable&& other) noexcept;
    ScopedEnable(const ScopedEnable&) = delete;
    ScopedEnable& operator=(const ScopedEnable&) = delete;
    ~ScopedEnable();

  private:
    explicit ScopedEnable(Device& device) : device_(&device) {}
    void reset();

    Device* device_;  // not owned; null once moved from
};

}  // namespace gf::pci
