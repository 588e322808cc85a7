// Test fixture: a pci::Device over the recording MockBackend, plus a tiny
// scripted answer to each command so the driver gets past each step. Tests
// change the answers to reach failure paths and pin the register traffic.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "driver/driver.h"
#include "driver/file.h"
#include "driver/hardware.h"
#include "pci/device.h"
#include "pci/mock_backend.h"

namespace gf::driver::testing {

inline std::string W(Register r, uint32_t value) {
    return pci::testing::write_event(std::to_underlying(r), value);
}
inline std::string R(Register r, uint32_t value) {
    return pci::testing::read_event(std::to_underlying(r), value);
}
inline std::string W(Register r, Command c) {
    return W(r, std::to_underlying(c));
}

inline constexpr uint64_t kBar1Start = 0x4'0000'0000;
inline constexpr uint64_t kBar1Size = 0x4'0000'0000;
inline constexpr uint64_t kFirstDmaPage = pci::testing::MockBackend::kDmaBase;

// Appends `more` to `events`.
inline std::vector<std::string> operator+(std::vector<std::string> events,
                                          const std::vector<std::string>& more) {
    events.insert(events.end(), more.begin(), more.end());
    return events;
}

class MockDeviceTest : public ::testing::Test {
  protected:
    MockDeviceTest() {
        auto backend = std::make_unique<pci::testing::MockBackend>();
        mock = backend.get();
        device = std::make_unique<pci::Device>(std::move(backend));
        mock->on_write = [this](pci::testing::MockBackend& m, uint64_t offset, uint32_t value) {
            respond(m, offset, value);
        };
    }

    std::unique_ptr<Driver> probe(const DriverConfig& config = {}) {
        auto driver = Driver::probe(*device, config);
        EXPECT_TRUE(driver) << "probe failed: " << (driver ? 0 : driver.error().value());
        mock->clear_events();
        return driver ? std::move(*driver) : nullptr;
    }

    std::shared_ptr<File> open(Driver& driver) {
        auto file = driver.open();
        EXPECT_TRUE(file) << "open failed: " << (file ? 0 : file.error().value());
        mock->clear_events();
        return file ? std::move(*file) : nullptr;
    }

    std::vector<std::string> events() const { return mock->events(); }

    // --- The scripted device ------------------------------------------------
    uint32_t next_handle = 7;
    uint32_t allocate_status = 0;
    uint64_t allocate_offset = 0x2000;
    uint64_t allocate_size = 0;  // 0: grant what was asked, rounded to 4 KiB
    uint32_t deallocate_status = 0;
    bool corrupt_ping_info_readback = false;
    // What the host does with a ping: sees the page, may write to it.
    std::function<void(std::byte* page)> on_ping;
    std::vector<uint32_t> destroyed_handles;
    std::vector<uint64_t> deallocated_offsets;

    pci::testing::MockBackend* mock;  // owned by device
    std::unique_ptr<pci::Device> device;

  private:
    void respond(pci::testing::MockBackend& m, uint64_t offset, uint32_t value) {
        auto reg = [&m](Register r) { return m.reg(std::to_underlying(r)); };
        auto set = [&m](Register r, uint32_t v) { m.set_reg(std::to_underlying(r), v); };
        if (offset == std::to_underlying(Register::PING)) {
            const uint64_t page = (uint64_t{reg(Register::PING_INFO_ADDR_HIGH)} << 32) |
                                  reg(Register::PING_INFO_ADDR_LOW);
            if (on_ping) {
                on_ping(m.dma_page(page));
            }
            return;
        }
        if (offset != std::to_underlying(Register::COMMAND)) {
            return;
        }
        switch (static_cast<Command>(value)) {
            case Command::GEN_HANDLE:
                set(Register::HANDLE, next_handle++);
                break;
            case Command::DESTROY_HANDLE:
                destroyed_handles.push_back(reg(Register::HANDLE));
                break;
            case Command::TELL_PING_INFO_ADDR:
                if (corrupt_ping_info_readback) {
                    set(Register::PING_INFO_ADDR_LOW, reg(Register::PING_INFO_ADDR_LOW) ^ 0x1000);
                }
                break;
            case Command::ALLOCATE_BLOCK: {
                set(Register::STATUS, allocate_status);
                if (allocate_status != 0) {
                    set(Register::BLOCK_OFFSET_LOW, 0xFFFF'FFFF);
                    set(Register::BLOCK_OFFSET_HIGH, 0xFFFF'FFFF);
                    break;
                }
                const uint64_t asked = (uint64_t{reg(Register::BLOCK_SIZE_HIGH)} << 32) |
                                       reg(Register::BLOCK_SIZE_LOW);
                const uint64_t granted =
                    allocate_size != 0 ? allocate_size : (asked + 4095) / 4096 * 4096;
                set(Register::BLOCK_OFFSET_LOW, static_cast<uint32_t>(allocate_offset));
                set(Register::BLOCK_OFFSET_HIGH, static_cast<uint32_t>(allocate_offset >> 32));
                set(Register::BLOCK_SIZE_LOW, static_cast<uint32_t>(granted));
                set(Register::BLOCK_SIZE_HIGH, static_cast<uint32_t>(granted >> 32));
                allocate_offset += granted;
                break;
            }
            case Command::DEALLOCATE_BLOCK:
                set(Register::STATUS, deallocate_status);
                if (deallocate_status == 0) {
                    deallocated_offsets.push_back(
                        (uint64_t{reg(Register::BLOCK_OFFSET_HIGH)} << 32) |
                        reg(Register::BLOCK_OFFSET_LOW));
                }
                break;
        }
    }
};

}  // namespace gf::driver::testing
