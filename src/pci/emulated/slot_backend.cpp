#include "pci/emulated/slot_backend.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"
#include "hw/pci_header.h"
#include "hw/pci_identity.h"

namespace gf::pci::emulated {

namespace {

using device::AddressSpaceDevice;

// Only memory decode and bus mastering: the rest of the command register, and every other
// field, ignores writes, as a device ignores writes to read-only fields.
constexpr uint16_t kCommandWritable = hw::kCommandMemorySpace | hw::kCommandBusMaster;

hw::PciConfigSpace slot_config_space(uint64_t bar0_address, uint64_t bar1_address,
                                     bool bar1_64bit) {
    hw::PciConfigSpace config({
        .vendor_id = hw::kVendorId,
        .device_id = hw::kDeviceId,
        .revision = hw::kRevision,
        .class_code = hw::kClassCode,
        .interrupt_pin = 2,
    });
    config.set_writable(hw::kConfigCommand, kCommandWritable, 2);
    // The BARs are where the machine placed them, and stay there.
    config.set_initial(hw::config_bar(hw::kControlBar), static_cast<uint32_t>(bar0_address), 4);
    const uint32_t bar1 = hw::config_bar(hw::kAreaBar);
    if (bar1_64bit) {
        config.set_initial(bar1, static_cast<uint32_t>(bar1_address) | hw::kBarMemory64, 4);
        config.set_initial(bar1 + 4, static_cast<uint32_t>(bar1_address >> 32), 4);
    } else {
        config.set_initial(bar1, static_cast<uint32_t>(bar1_address), 4);
    }
    // Pin B, line 2, as the emulator's device.
    config.set_initial(hw::kConfigInterruptLine, 2, 1);
    return config;
}

}  // namespace

SlotBackend::SlotBackend(AddressSpaceDevice& device, PageAllocator& pages, uint64_t bar0_address,
                         uint64_t bar1_address)
    : device_(device),
      pages_(pages),
      bar0_{bar0_address, hw::kControlBarSize, kResourceMem},
      bar1_{bar1_address, device.bar1_size(),
            kResourceMem | (device.bar1_64bit() ? kResourceMem64 : 0u)},
      config_(slot_config_space(bar0_address, bar1_address, device.bar1_64bit())) {}

Result<void> SlotBackend::config_read(uint32_t offset, std::span<std::byte> out) {
    MutexLock lock(config_mutex_);
    return config_.read_bytes(offset, out);
}

Result<void> SlotBackend::config_write(uint32_t offset, std::span<const std::byte> in) {
    MutexLock lock(config_mutex_);
    GF_TRY(config_.write_bytes(offset, in));
    command_changed_locked();
    return {};
}

void SlotBackend::command_changed_locked() {
    memory_decode_.store(config_.memory_enabled(), std::memory_order_release);
}

Result<void> SlotBackend::enable() {
    MutexLock lock(config_mutex_);
    config_.write(hw::kConfigCommand, kCommandWritable, 2);
    command_changed_locked();
    return {};
}

void SlotBackend::disable() {
    MutexLock lock(config_mutex_);
    config_.write(hw::kConfigCommand, 0, 2);
    command_changed_locked();
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
    // BAR1 reads reach memory a block or a host region covers, else all-ones; copied under
    // the device's locks, so a concurrent change of BAR1's layout cannot pull it away.
    uint32_t value = 0;
    if (!device_.bus_read_bar1(offset, std::as_writable_bytes(std::span(&value, 1)))) {
        return 0xFFFF'FFFF;
    }
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
    // Dropped where nothing backs it, as the bus drops such writes.
    (void)device_.bus_write_bar1(offset, std::as_bytes(std::span(&value, 1)));
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

Result<BarFileHandle> SlotBackend::open_bar_file(unsigned bar) {
    if (bar != 1) {
        return fail(EINVAL);
    }
    // Sparse and as large as BAR1, so a file offset is a BAR1 offset. Sealed against
    // resizing: a user's write past the end must not grow the daemon's memory.
    UniqueFd fd(::memfd_create("goldfish-bar1", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) {
        return fail(errno);
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(bar1_.length)) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) != 0) {
        return fail(errno);
    }
    return BarFileHandle{fd.release(), next_bar_file_.fetch_add(1)};
}

Result<void> SlotBackend::bind_bar_file(const BarFileHandle& file, uint64_t offset, uint64_t size,
                                        BarBinding how) {
    return device_.bind_file(file.cookie, file.fd, offset, size, how == BarBinding::kHeld);
}

void SlotBackend::unbind_bar_file(const BarFileHandle& file, uint64_t offset, uint64_t size) {
    device_.unbind_file(file.cookie, offset, size);
}

Result<bool> SlotBackend::retire_bar_file(const BarFileHandle& file) {
    return device_.retire_file(file.cookie, file.fd);
}

void SlotBackend::close_bar_file(const BarFileHandle& file) {
    device_.forget_file(file.cookie);
    ::close(file.fd);
}

}  // namespace gf::pci::emulated
