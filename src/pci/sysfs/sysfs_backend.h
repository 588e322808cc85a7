// SysfsBackend: a real PCI function through /sys/bus/pci/devices/<BDF>, for a
// guest whose kernel has no goldfish driver. Config space is the `config`
// file, enabling is the `enable` file plus the command register, BARs are
// mmaps of `resourceN` at the addresses the `resource` file gives, and DMA
// pages are locked pages whose physical address comes from the pagemap.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "base/mutex.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "pci/backend.h"
#include "pci/sysfs/device_lock.h"
#include "pci/sysfs/locked_page.h"
#include "pci/sysfs/pagemap.h"
#include "pci/sysfs/resource_file.h"

namespace gf::pci::sysfs {

// BARs up to this length are mmapped whole (register BARs are a few KiB).
// Longer ones (the 16 GiB shared-memory BAR1) are opened and checked, but
// not mapped: the driver never dereferences them, a userspace mapping
// reserves nothing, and sysfs maps eagerly (a 16 GiB BAR costs 32 MiB of page
// tables).
inline constexpr uint64_t kMaxMappedBar = uint64_t{2} << 20;

class SysfsBackend final : public Backend {
  public:
    // The pieces open_backend() (sysfs_device.h) has checked, with messages.
    struct Parts {
        std::string bdf;
        std::string device_dir;
        PidLockFile lock;
        UniqueFd config;  // the device's `config`, opened read-write
        BarResources bars;
        Pagemap pagemap;
        size_t page_size;
        bool prefer_hugetlb;
    };

    explicit SysfsBackend(Parts parts);
    SysfsBackend(const SysfsBackend&) = delete;
    SysfsBackend& operator=(const SysfsBackend&) = delete;
    // Frees DMA pages, unmaps BARs, disables the device if still enabled,
    // and only then gives up the device lock.
    ~SysfsBackend() override;

    const std::string& bdf() const { return parts_.bdf; }

    // Re-reads the physical address of a page from allocate_dma_page(): EIO
    // when it cannot be read or is no longer buffer.phys (the kernel moved
    // the page), so a ping fails instead of the host reading the wrong frame.
    // EINVAL for a buffer this backend did not hand out.
    Result<void> verify_dma_page(const DmaBuffer& buffer) override;

    // --- pci::Backend ----------------------------------------------------
    Result<void> config_read(uint32_t offset, std::span<std::byte> out) override;
    Result<void> config_write(uint32_t offset, std::span<const std::byte> in) override;
    Result<void> enable() override;
    void disable() override;
    BarResource bar_resource(unsigned bar) override;
    Result<BarMapping> map_bar(unsigned bar) override;
    void unmap_bar(const BarMapping& mapping) override;
    uint32_t read32(const BarMapping& mapping, uint64_t offset) override;
    void write32(const BarMapping& mapping, uint64_t offset, uint32_t value) override;
    Result<DmaBuffer> allocate_dma_page() override;
    void free_dma_page(const DmaBuffer& buffer) override;
    size_t page_size() const override { return parts_.page_size; }

  private:
    // One mapped BAR: resourceN stays open while mapped. `window` bytes from
    // `mapping.data()` are accessible (0 for a BAR kept unmapped); immutable
    // once created, so read32/write32 use it without a lock.
    struct BarWindow {
        UniqueFd fd;
        Mapping mapping;
        uint64_t window = 0;
    };

    std::string path(const char* name) const;
    Result<uint16_t> read_command();
    Result<void> write_command(uint16_t value);

    Parts parts_;
    // Serialized by pci::Device (enable/disable/map/unmap never overlap).
    bool enabled_ = false;
    uint16_t command_bits_set_ = 0;  // what enable() turned on in COMMAND
    std::array<std::unique_ptr<BarWindow>, kNumBars> windows_;
    // DMA calls may come from several threads at once.
    Mutex dma_mutex_;
    std::map<const std::byte*, LockedPage> dma_pages_ GF_GUARDED_BY(dma_mutex_);
};

}  // namespace gf::pci::sysfs
