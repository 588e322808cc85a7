// The machine slot the device model sits in, as the driver's pci::Backend:
// a type-0 configuration space, BAR0 and BAR1 at the guest-physical addresses
// the machine assigned, BAR accesses forwarded to the device model while
// memory decode is on, and DMA pages from guest RAM.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/mutex.h"
#include "device/address_space_device.h"
#include "hw/pci_config_space.h"
#include "pci/backend.h"
#include "pci/emulated/page_allocator.h"

namespace gf::pci::emulated {

class SlotBackend : public Backend {
  public:
    // `device` and `pages` must outlive the backend.
    SlotBackend(device::AddressSpaceDevice& device, PageAllocator& pages, uint64_t bar0_address,
                uint64_t bar1_address);

    Result<void> config_read(uint32_t offset, std::span<std::byte> out) override;
    // Only the command register is writable; other writes are dropped, as a
    // device ignores writes to read-only fields.
    Result<void> config_write(uint32_t offset, std::span<const std::byte> in) override;
    Result<void> enable() override;
    void disable() override;
    BarResource bar_resource(unsigned bar) override;
    Result<BarMapping> map_bar(unsigned bar) override;
    void unmap_bar(const BarMapping& mapping) override;
    // With memory decode off, reads are all-ones and writes vanish (a master
    // abort), so a driver that forgot to enable the device finds out.
    uint32_t read32(const BarMapping& mapping, uint64_t offset) override;
    void write32(const BarMapping& mapping, uint64_t offset, uint32_t value) override;
    Result<DmaBuffer> allocate_dma_page() override;
    void free_dma_page(const DmaBuffer& buffer) override;
    // EIO once the device can no longer reach the page (guest memory refuses it), as the
    // sysfs backend's pagemap check does when a page moved.
    Result<void> verify_dma_page(const DmaBuffer& buffer) override;
    size_t page_size() const override { return pages_.page_size(); }

    // BAR1 views: a sealed memfd as large as BAR1 per user, whose bound ranges the device
    // model maps into BAR1's window (device::Bar1Bindings). BAR0 has none (EINVAL).
    Result<BarFileHandle> open_bar_file(unsigned bar) override;
    Result<void> bind_bar_file(const BarFileHandle& file, uint64_t offset, uint64_t size,
                               BarBinding how) override;
    void unbind_bar_file(const BarFileHandle& file, uint64_t offset, uint64_t size) override;
    Result<bool> retire_bar_file(const BarFileHandle& file) override;
    void close_bar_file(const BarFileHandle& file) override;

  private:
    // Publishes memory decode after the command register may have changed.
    void command_changed_locked() GF_REQUIRES(config_mutex_);

    device::AddressSpaceDevice& device_;
    PageAllocator& pages_;
    const BarResource bar0_;
    const BarResource bar1_;
    // Read on every register access without the config lock.
    std::atomic<bool> memory_decode_{false};
    std::atomic<uint64_t> next_bar_file_{1};
    Mutex config_mutex_;
    hw::PciConfigSpace config_ GF_GUARDED_BY(config_mutex_);
};

}  // namespace gf::pci::emulated
