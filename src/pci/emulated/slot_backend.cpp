#include "pci/emulated/slot_backend.h"

#include <cstring>

#include "hw/pci_identity.h"
#include "pci/device.h"

namespace gf::pci::emulated {

namespace {

using device::AddressSpaceDevice;

constexpr uint32_t kConfigRevisionClass = 0x08;  // revision, prog-if, subclass, class
constexpr uint32_t kConfigHeaderType = 0x0E;
constexpr uint32_t kConfigBar0 = 0x10;
constexpr uint32_t kConfigInterruptLine = 0x3C;
constexpr uint32_t kConfigInterruptPin = 0x3D;
constexpr uint32_t kBarMemory64 = 0x4;  // BAR type bits 2:1 = 10b

template <typename T>
void put(std::array<std::byte, 256>& config, uint32_t offset, T value) {
    std::memcpy(&config[offset], &value, sizeof(value));
}

}  // namespace

SlotBackend::SlotBackend(AddressSpaceDevice& device, PageAllocator& pages, uint64_t bar0_address,
                         uint64_t bar1_address)
    : device_(device),
      pages_(pages),
      bar0_{bar0_address, hw::kControlBarSize, kResourceMem},
      bar1_{bar1_address, device.bar1_size(),
            kResourceMem | (device.bar1_64bit() ? kResourceMem64 : 0u)} {
    MutexLock lock(config_mutex_);
    put<uint16_t>(config_, kConfigVendorId, hw::kVendorId);
    put<uint16_t>(config_, kConfigDeviceId, hw::kDeviceId);
    put<uint32_t>(config_, kConfigRevisionClass, hw::kRevision | uint32_t{hw::kClassCode} << 16);
    put<uint8_t>(config_, kConfigHeaderType, 0);
    put<uint32_t>(config_, kConfigBar0, static_cast<uint32_t>(bar0_address));
    if (device.bar1_64bit()) {
        put<uint32_t>(config_, kConfigBar0 + 4, static_cast<uint32_t>(bar1_address) | kBarMemory64);
        put<uint32_t>(config_, kConfigBar0 + 8, static_cast<uint32_t>(bar1_address >> 32));
    } else {
        put<uint32_t>(config_, kConfigBar0 + 4, static_cast<uint32_t>(bar1_address));
    }
    // Pin B, line 2, as the emulator's device.
    put<uint8_t>(config_, kConfigInterruptLine, 2);
    put<uint8_t>(config_, kConfigInterruptPin, 2);
}

Result<void> SlotBackend::config_read(uint32_t offset, std::span<std::byte> out) {
    MutexLock lock(config_mutex_);
    if (offset > config_.size() || config_.size() - offset < out.size()) {
        return fail(EINVAL);
    }
    std::memcpy(out.data(), &config_[offset], out.size());
    return {};
}

Result<void> SlotBackend::config_write(uint32_t offset, std::span<const std::byte> in) {
    if (offset > 256 || 256 - offset < in.size()) {
        return fail(EINVAL);
    }
    MutexLock lock(config_mutex_);
    // Apply the bytes that land in the command register (0x04..0x05).
    std::array<std::byte, 2> command;
    std::memcpy(command.data(), &config_[kConfigCommand], command.size());
    for (size_t i = 0; i < in.size(); ++i) {
        const uint32_t at = offset + static_cast<uint32_t>(i);
        if (at == kConfigCommand || at == kConfigCommand + 1) {
            command[at - kConfigCommand] = in[i];
        }
    }
    uint16_t value;
    std::memcpy(&value, command.data(), sizeof(value));
    set_command_locked(value & (kCommandMemorySpace | kCommandBusMaster));
    return {};
}

void SlotBackend::set_command_locked(uint16_t command) {
    put<uint16_t>(config_, kConfigCommand, command);
    memory_decode_.store((command & kCommandMemorySpace) != 0, std::memory_order_release);
}

Result<void> SlotBackend::enable() {
    MutexLock lock(config_mutex_);
    set_command_locked(kCommandMemorySpace | kCommandBusMaster);
    return {};
}

void SlotBackend::disable() {
    MutexLock lock(config_mutex_);
    set_command_locked(0);
}

BarResource SlotBackend::bar_resource(unsigned bar) {
    switch (bar) {
        case 0:
            return bar0_;
        case 1:
            return bar1_;
        default:
            return {};
    }
}

Result<BarMapping> SlotBackend::map_bar(unsigned bar) {
    const BarResource resource = bar_resource(bar);
    if (resource.length == 0) {
        return fail(ENXIO);
    }
    // Accesses are forwarded, so a mapping is just the BAR's number and length.
    return BarMapping{bar, resource.length, bar};
}

void SlotBackend::unmap_bar(const BarMapping&) {}

uint32_t SlotBackend::read32(const BarMapping& mapping, uint64_t offset) {
    if (!memory_decode_.load(std::memory_order_acquire)) {
        return 0xFFFF'FFFF;
    }
    if (mapping.bar == 0) {
        return device_.mmio_read(offset, 4);
    }
    // BAR1 reads reach host memory where the device backed it, else all-ones.
    auto memory = device_.host_memory(bar1_.start + offset, 4);
    if (!memory) {
        return 0xFFFF'FFFF;
    }
    uint32_t value;
    std::memcpy(&value, memory->data(), sizeof(value));
    return value;
}

void SlotBackend::write32(const BarMapping& mapping, uint64_t offset, uint32_t value) {
    if (!memory_decode_.load(std::memory_order_acquire)) {
        return;
    }
    if (mapping.bar == 0) {
        device_.mmio_write(offset, value, 4);
        return;
    }
    if (auto memory = device_.host_memory(bar1_.start + offset, 4)) {
        std::memcpy(memory->data(), &value, sizeof(value));
    }
}

Result<DmaBuffer> SlotBackend::allocate_dma_page() {
    const PageAllocator::Page page = GF_TRY(pages_.allocate());
    return DmaBuffer{page.host, pages_.page_size(), page.gpa, 0};
}

void SlotBackend::free_dma_page(const DmaBuffer& buffer) {
    pages_.free(buffer.phys);
}

Result<void> SlotBackend::verify_dma_page(const DmaBuffer& buffer) {
    if (!device_.ping_page_reachable(buffer.phys)) {
        return fail(EIO);
    }
    return {};
}

}  // namespace gf::pci::emulated
