// An in-process machine with one PCI slot holding the host device model:
// guest RAM at a guest-physical base, the device's BARs at fixed
// guest-physical addresses, and a pci::Device through which a driver sees
// the function. The only code besides the daemon that knows both the driver
// side and the device side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/result.h"
#include "device/address_space_device.h"
#include "device/guest_memory.h"
#include "pci/device.h"
#include "pci/emulated/page_allocator.h"

namespace gf::pci::emulated {

struct MachineConfig {
    device::DeviceConfig device;
    uint64_t ram_base = 0x4000'0000;  // 1 GiB
    uint64_t ram_size = 64 << 20;
    // BAR0 (32-bit, 4 KiB) in the usual MMIO hole below 4 GiB.
    uint64_t bar0_address = 0xFE00'0000;
    // BAR1, aligned to its size as PCI requires. 0 places it as firmware
    // would: a 64-bit BAR1 at the first such address at or above 4 GiB
    // (16 GiB for the default 16 GiB BAR), a 32-bit one of up to 1 GiB at 2 GiB.
    uint64_t bar1_address = 0;
    size_t page_size = 4096;  // the guest's page size (DMA pages, GUEST_PAGE_SIZE)
};

class Machine {
  public:
    // EINVAL when a BAR is not aligned to its size, BAR0 (or a 32-bit BAR1)
    // lies above 4 GiB, guest RAM is not whole pages, or any two of RAM, BAR0
    // and BAR1 overlap; otherwise the device model's or RAM's own errors.
    static Result<std::unique_ptr<Machine>> create(const MachineConfig& config = {});
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;
    // A driver bound to pci_device() must be gone before the machine is.
    ~Machine();

    pci::Device& pci_device() { return *pci_device_; }
    device::AddressSpaceDevice& device() { return *device_; }
    device::RamGuestMemory& guest_memory() { return *ram_; }
    // Guest RAM pages not handed out as DMA pages (for leak checks).
    size_t free_dma_pages() const { return pages_->free_pages(); }
    // As given to create(), with bar1_address resolved.
    const MachineConfig& config() const { return config_; }

  private:
    Machine(const MachineConfig& config, std::unique_ptr<device::RamGuestMemory> ram,
            std::unique_ptr<device::AddressSpaceDevice> device);

    const MachineConfig config_;
    // Destroyed bottom-up: the PCI view first, guest RAM last.
    std::unique_ptr<device::RamGuestMemory> ram_;
    std::unique_ptr<device::AddressSpaceDevice> device_;
    std::unique_ptr<PageAllocator> pages_;
    std::unique_ptr<pci::Device> pci_device_;
};

}  // namespace gf::pci::emulated
