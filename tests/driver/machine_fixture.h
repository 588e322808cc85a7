// Test fixture: the driver bound to the real device model on the emulated
// machine, plus checks that the driver's and the device's books agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <gtest/gtest.h>

#include "device/address_space_device.h"
#include "driver/driver.h"
#include "driver/file.h"
#include "pci/emulated/machine.h"

namespace gf::driver::testing {

// Device context types and sub-commands (docs/contexts.md).
inline constexpr uint64_t kHostMemoryAllocator = 5;
inline constexpr uint64_t kSharedSlots = 6;
inline constexpr uint64_t kAllocate = 1;
inline constexpr uint64_t kUnallocate = 2;
inline constexpr uint64_t kPingFailed = ~uint64_t{0};

template <typename T>
std::span<std::byte> bytes_of(T& value) {
    return {reinterpret_cast<std::byte*>(&value), sizeof(value)};
}

inline goldfish_address_space_ping make_ping(uint64_t metadata, uint64_t offset = 0,
                                             uint64_t size = 0) {
    goldfish_address_space_ping ping{};
    ping.offset = offset;
    ping.size = size;
    ping.metadata = metadata;
    ping.version = sizeof(ping);
    return ping;
}

class MachineTest : public ::testing::Test {
  protected:
    void SetUp() override { start(); }

    void start(const pci::emulated::MachineConfig& machine_config = {},
               const DriverConfig& driver_config = {}) {
        driver.reset();
        auto created = pci::emulated::Machine::create(machine_config);
        ASSERT_TRUE(created) << created.error().value();
        machine = std::move(*created);
        free_pages_at_start = machine->free_dma_pages();
        auto probed = Driver::probe(machine->pci_device(), driver_config);
        ASSERT_TRUE(probed) << probed.error().value();
        driver = std::move(*probed);
    }

    std::shared_ptr<File> open(const OpenOptions& options = {}) {
        auto file = driver->open(options);
        EXPECT_TRUE(file) << (file ? 0 : file.error().value());
        return file ? std::move(*file) : nullptr;
    }

    device::DeviceStats device_stats() const { return machine->device().stats(); }

    // The driver tracks exactly what the device holds for it.
    void expect_books_agree() const {
        const DriverStats mine = driver->stats();
        const device::DeviceStats host = device_stats();
        EXPECT_EQ(mine.open_files, host.handles);
        EXPECT_EQ(mine.blocks, host.guest_blocks);
        EXPECT_EQ(mine.block_bytes, host.guest_block_bytes);
    }

    void expect_nothing_held() const {
        const device::DeviceStats host = device_stats();
        EXPECT_EQ(host.handles, 0u);
        EXPECT_EQ(host.guest_blocks, 0u);
        EXPECT_EQ(host.guest_block_bytes, 0u);
        EXPECT_EQ(host.memory_mappings, 0u);
        EXPECT_EQ(host.file_bindings, 0u);
        const DriverStats mine = driver->stats();
        EXPECT_EQ(mine.open_files, 0u);
        EXPECT_EQ(mine.blocks, 0u);
        EXPECT_EQ(mine.block_bytes, 0u);
        EXPECT_EQ(mine.claims, 0u);
        EXPECT_EQ(machine->free_dma_pages(), free_pages_at_start) << "ping pages leaked";
    }

    // Declared first so it is destroyed last: the driver must go before it.
    std::unique_ptr<pci::emulated::Machine> machine;
    std::unique_ptr<Driver> driver;
    size_t free_pages_at_start = 0;
};

}  // namespace gf::driver::testing
