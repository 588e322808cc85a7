#include "pci/sysfs/sysfs_backend.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/checked.h"
#include "base/scope_guard.h"
#include "hw/pci_header.h"
#include "pci/device.h"
#include "pci/sysfs/sysfs_file.h"

namespace gf::pci::sysfs {

namespace {

// PCIe extended configuration space; `config` is at most this long.
constexpr uint64_t kConfigSpaceSize = 4096;

// Registers and config space are little-endian; so is every host we build for.
static_assert(std::endian::native == std::endian::little);

}  // namespace

SysfsBackend::SysfsBackend(Parts parts) : parts_(std::move(parts)) {}

SysfsBackend::~SysfsBackend() {
    {
        MutexLock lock(dma_mutex_);
        dma_pages_.clear();
    }
    for (auto& window : windows_) {
        window.reset();
    }
    disable();
    // parts_ goes last: the config file, then the device lock.
}

std::string SysfsBackend::path(const char* name) const {
    return join(parts_.device_dir, name);
}

namespace {

// One pread or pwrite of `size` bytes at `offset` of `config`, which `transfer` does:
// EINVAL past config space, EIO if it moved fewer bytes (past what this kernel, or
// user, may reach of config).
template <typename Transfer>
Result<void> config_transfer(uint32_t offset, size_t size, Transfer&& transfer) {
    if (!range_within(offset, size, kConfigSpaceSize)) {
        return fail(EINVAL);
    }
    const ssize_t n = transfer();
    if (n < 0) {
        return fail(errno);
    }
    if (static_cast<size_t>(n) != size) {
        return fail(EIO);
    }
    return {};
}

}  // namespace

Result<void> SysfsBackend::config_read(uint32_t offset, std::span<std::byte> out) {
    // pread at an offset below 4096 of a buffer we own: sound for any size.
    return config_transfer(offset, out.size(), [&] {
        return ::pread(parts_.config.get(), out.data(), out.size(), offset);
    });
}

Result<void> SysfsBackend::config_write(uint32_t offset, std::span<const std::byte> in) {
    return config_transfer(offset, in.size(), [&] {
        return ::pwrite(parts_.config.get(), in.data(), in.size(), offset);
    });
}

Result<uint16_t> SysfsBackend::read_command() {
    std::array<std::byte, 2> bytes{};
    GF_TRY(config_read(hw::kConfigCommand, bytes));
    uint16_t value;
    std::memcpy(&value, bytes.data(), sizeof(value));
    return value;
}

Result<void> SysfsBackend::write_command(uint16_t value) {
    std::array<std::byte, 2> bytes{};
    std::memcpy(bytes.data(), &value, sizeof(value));
    return config_write(hw::kConfigCommand, bytes);
}

Result<void> SysfsBackend::enable() {
    if (enabled_) {
        return {};
    }
    // pci_enable_device through sysfs (counted by the kernel); undone below
    // if the command register cannot be set.
    GF_TRY(write_file(path("enable"), "1"));
    ScopeGuard undo_enable([&] { (void)write_file(path("enable"), "0"); });
    // With no driver bound, memory decode may still be off: BAR accesses would
    // hit nothing. Bus master is harmless and what a DMA-reading host expects.
    const uint16_t command = GF_TRY(read_command());
    const uint16_t wanted = hw::kCommandMemorySpace | hw::kCommandBusMaster;
    const auto missing = static_cast<uint16_t>(wanted & ~command);
    if (missing != 0) {
        GF_TRY(write_command(static_cast<uint16_t>(command | missing)));
    }
    undo_enable.dismiss();
    command_bits_set_ = missing;
    enabled_ = true;
    return {};
}

void SysfsBackend::disable() {
    if (!enabled_) {
        return;
    }
    enabled_ = false;
    // Best effort (disable cannot fail): clear only the bits enable() set,
    // then drop the kernel's enable count we took.
    if (command_bits_set_ != 0) {
        if (auto command = read_command()) {
            (void)write_command(static_cast<uint16_t>(*command & ~command_bits_set_));
        }
        command_bits_set_ = 0;
    }
    (void)write_file(path("enable"), "0");
}

BarResource SysfsBackend::bar_resource(unsigned bar) {
    return bar < kNumBars ? parts_.bars[bar] : BarResource{};
}

Result<BarMapping> SysfsBackend::map_bar(unsigned bar) {
    if (bar >= kNumBars) {
        return fail(EINVAL);
    }
    const BarResource& resource = parts_.bars[bar];
    if (resource.length == 0) {
        return fail(ENXIO);
    }
    if (!resource.is_memory()) {
        return fail(EINVAL);  // I/O BARs have read/write, not mmap
    }
    if (windows_[bar]) {
        return fail(EBUSY);
    }
    auto window = std::make_unique<BarWindow>();
    const std::string file = path(("resource" + std::to_string(bar)).c_str());
    window->fd = UniqueFd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
    if (!window->fd.valid()) {
        return fail(errno);
    }
    struct stat status {};
    if (::fstat(window->fd.get(), &status) != 0) {
        return fail(errno);
    }
    // sysfs gives resourceN the BAR's length as its size; a fake tree may give
    // less. Only bytes backed by the file are mapped (a page wholly past its
    // end would SIGBUS); st_size is never negative for a file we opened.
    const auto file_size = static_cast<uint64_t>(std::max<off_t>(status.st_size, 0));
    if (resource.length <= kMaxMappedBar) {
        window->window = std::min(resource.length, file_size);
    }
    if (window->window > 0) {
        // window <= kMaxMappedBar: rounding up cannot overflow. The partial
        // page past the window is within the BAR's pages (pci_mmap_fits), or
        // within the fake file's last page.
        const uint64_t length = (window->window + page_size() - 1) / page_size() * page_size();
        window->mapping =
            GF_TRY(Mapping::map(length, PROT_READ | PROT_WRITE, MAP_SHARED, window->fd.get(), 0));
    }
    const BarMapping mapping{bar, resource.length, reinterpret_cast<std::uintptr_t>(window.get())};
    windows_[bar] = std::move(window);
    return mapping;
}

void SysfsBackend::unmap_bar(const BarMapping& mapping) {
    if (mapping.bar < kNumBars &&
        reinterpret_cast<std::uintptr_t>(windows_[mapping.bar].get()) == mapping.cookie) {
        windows_[mapping.bar].reset();
    }
}

uint32_t SysfsBackend::read32(const BarMapping& mapping, uint64_t offset) {
    // The cookie is the BarWindow map_bar made; it lives until unmap_bar,
    // which the caller does not run concurrently with accesses.
    const auto* window = reinterpret_cast<const BarWindow*>(mapping.cookie);
    if (offset % 4 != 0 || !range_within(offset, 4, window->window)) {
        return 0xFFFF'FFFF;  // what a read that reaches no device returns
    }
    // Aligned, inside the mapped window: one 32-bit load the compiler may not
    // split, merge or elide, as the device (or the VMM trapping it) needs.
    return *reinterpret_cast<const volatile uint32_t*>(window->mapping.data() + offset);
}

void SysfsBackend::write32(const BarMapping& mapping, uint64_t offset, uint32_t value) {
    const auto* window = reinterpret_cast<const BarWindow*>(mapping.cookie);  // as read32
    if (offset % 4 != 0 || !range_within(offset, 4, window->window)) {
        return;  // dropped, as a write that reaches no device
    }
    // Aligned, inside the mapped window: one 32-bit store (see read32).
    *reinterpret_cast<volatile uint32_t*>(window->mapping.data() + offset) = value;
}

Result<DmaBuffer> SysfsBackend::allocate_dma_page() {
    LockedPage page =
        GF_TRY(LockedPage::allocate(parts_.page_size, parts_.prefer_hugetlb, /*message=*/nullptr));
    const uint64_t phys = GF_TRY(parts_.pagemap.physical_address(page.data(), nullptr));
    const DmaBuffer buffer{page.data(), parts_.page_size, phys,
                           reinterpret_cast<std::uintptr_t>(page.data())};
    MutexLock lock(dma_mutex_);
    dma_pages_.emplace(buffer.data, std::move(page));
    return buffer;
}

void SysfsBackend::free_dma_page(const DmaBuffer& buffer) {
    MutexLock lock(dma_mutex_);
    dma_pages_.erase(buffer.data);  // unmapping unlocks and frees it
}

Result<void> SysfsBackend::verify_dma_page(const DmaBuffer& buffer) {
    {
        MutexLock lock(dma_mutex_);
        if (!dma_pages_.contains(buffer.data)) {
            return fail(EINVAL);
        }
    }
    // The page stays mapped: only free_dma_page unmaps it, and the caller
    // owns the buffer it is verifying.
    const auto phys = parts_.pagemap.physical_address(buffer.data, nullptr);
    if (!phys || *phys != buffer.phys) {
        return fail(EIO);
    }
    return {};
}

}  // namespace gf::pci::sysfs
