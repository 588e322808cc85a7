// A pci::Backend test double that records every access, so tests can pin the
// exact register traffic of the driver (as Fuchsia's driver tests do), and
// that can be told to fail any step.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pci/backend.h"

namespace gf::pci::testing {

class MockBackend : public Backend {
  public:
    static constexpr size_t kPageSize = 4096;
    static constexpr uint64_t kDmaBase = 0x8000'0000;

    MockBackend();

    // --- What the test sets up -------------------------------------------
    std::array<std::byte, 256> config{};
    std::array<BarResource, kNumBars> bars{};
    bool fail_enable = false;
    bool fail_config_read = false;
    std::array<bool, kNumBars> fail_map{};
    bool fail_dma = false;
    bool fail_dma_verify = false;  // the ping page "moved": verify_dma_page gives EIO
    // Called after each register write, with the lock held: lets a test play
    // the device (answer a COMMAND, corrupt a read-back, inspect a ping page).
    std::function<void(MockBackend&, uint64_t offset, uint32_t value)> on_write;
    // Called at the start of each DMA allocation, without the lock: lets a
    // test hold an operation (open) in flight.
    std::function<void()> on_dma_alloc;

    void set_ids(uint16_t vendor, uint16_t device, uint8_t revision);

    // --- What the test inspects ------------------------------------------
    // "R 0x04 = 0x0", "W 0x00 = 0x1", "enable", "map 1", "unmap 1",
    // "request_region 0", "release_region 0", "dma_alloc 0x80000000", ...
    std::vector<std::string> events() const;
    void clear_events();
    // Register file of BAR0 (a scratchpad: reads return what was last stored).
    uint32_t reg(uint64_t offset) const;
    void set_reg(uint64_t offset, uint32_t value);  // for on_write and seeding
    // The bytes of a live DMA page, by physical address (null if none).
    std::byte* dma_page(uint64_t phys);
    size_t live_mappings() const;
    size_t live_dma_pages() const;
    bool enabled() const;

    // --- pci::Backend --------------------------------------------------------
    Result<void> config_read(uint32_t offset, std::span<std::byte> out) override;
    Result<void> config_write(uint32_t offset, std::span<const std::byte> in) override;
    Result<void> enable() override;
    void disable() override;
    BarResource bar_resource(unsigned bar) override;
    Result<void> request_region(unsigned bar, std::string_view name) override;
    void release_region(unsigned bar) override;
    Result<BarMapping> map_bar(unsigned bar) override;
    void unmap_bar(const BarMapping& mapping) override;
    uint32_t read32(const BarMapping& mapping, uint64_t offset) override;
    void write32(const BarMapping& mapping, uint64_t offset, uint32_t value) override;
    Result<DmaBuffer> allocate_dma_page() override;
    void free_dma_page(const DmaBuffer& buffer) override;
    Result<void> verify_dma_page(const DmaBuffer& buffer) override;
    size_t page_size() const override { return kPageSize; }

  private:
    void log(std::string event);

    mutable std::recursive_mutex mutex_;
    std::vector<std::string> events_;
    std::map<uint64_t, uint32_t> registers_;
    std::array<bool, kNumBars> mapped_{};
    bool enabled_ = false;
    uint64_t next_dma_ = kDmaBase;
    std::map<uint64_t, std::unique_ptr<std::byte[]>> dma_pages_;
};

// Formatting shared by the mock's log and the tests' expectations.
std::string hex(uint64_t value);  // "0x1f"
std::string read_event(uint64_t offset, uint32_t value);
std::string write_event(uint64_t offset, uint32_t value);

}  // namespace gf::pci::testing
