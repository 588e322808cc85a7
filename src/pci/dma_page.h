// pci::DmaPage: one zeroed page of RAM that the device reaches by its physical
// address (the driver's per-file ping page). Freed when destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "pci/backend.h"
#include "pci/device.h"

namespace gf::pci {

class DmaPage {
  public:
    // ENOMEM (or the backend's error) when no page is available.
    static Result<DmaPage> allocate(Device& device);

    DmaPage(DmaPage&& other) noexcept;
    DmaPage& operator=(DmaPage&& other) noexcept;
    DmaPage(const DmaPage&) = delete;
    DmaPage& operator=(const DmaPage&) = delete;
    ~DmaPage();

    uint64_t phys_addr() const { return buffer_.phys; }
    // The device reads and writes these bytes during a register access; the
    // caller orders its own accesses against those (one thread, one lock).
    std::span<std::byte> bytes() { return {buffer_.data, buffer_.size}; }
    std::span<const std::byte> bytes() const { return {buffer_.data, buffer_.size}; }
    // EIO if the page no longer sits at phys_addr() (the device must not read it).
    Result<void> verify() const { return device_->verify_dma_page(buffer_); }

  private:
    DmaPage(Device& device, DmaBuffer buffer) : device_(&device), buffer_(buffer) {}
    void reset();

    Device* device_;  // not owned; outlives every page taken from it. Null once moved from.
    DmaBuffer buffer_;
};

}  // namespace gf::pci
