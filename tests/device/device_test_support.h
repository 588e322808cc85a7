// A test guest: guest RAM, the device, and a driver-like helper that does exactly what the
// guest driver does through the registers (docs/device.md#driver-sequences).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <thread>

#include "device/address_space_device.h"
#include "device/device_test_access.h"
#include "device/guest_memory.h"
#include "device/ping_info.h"
#include "device/registers.h"

namespace gf::device::testing {

inline constexpr uint64_t kRamBase = 0x4000'0000;  // guest RAM at 1 GiB
inline constexpr uint64_t kRamSize = 4ull << 20;
inline constexpr uint64_t kBar1Base = 0x8'0000'0000;  // where the "VMM" placed BAR1
inline constexpr uint64_t k16GiB = 16ull << 30;

// How long a test waits for the device or a context: generous, never an upper bound on speed.
inline constexpr auto kPatience = std::chrono::seconds(20);

// Polls `done` every millisecond until it holds or kPatience ends; whether it held.
template <typename Done>
bool wait_until(Done&& done) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// Guest RAM that a test can unplug, to refuse accesses after TELL_PING_INFO_ADDR succeeded.
class UnpluggableGuestMemory : public GuestMemory {
  public:
    explicit UnpluggableGuestMemory(GuestMemory& ram) : ram_(ram) {}
    Result<void> read(uint64_t gpa, std::span<std::byte> out) override {
        return plugged ? ram_.read(gpa, out) : fail(EFAULT);
    }
    Result<void> write(uint64_t gpa, std::span<const std::byte> in) override {
        return plugged ? ram_.write(gpa, in) : fail(EFAULT);
    }
    bool plugged = true;

  private:
    GuestMemory& ram_;
};

class Guest {
  public:
    explicit Guest(DeviceConfig config = {}, bool probe = true) {
        ram_ = RamGuestMemory::create(kRamBase, kRamSize).value();
        memory_ = std::make_unique<UnpluggableGuestMemory>(*ram_);
        device_ = AddressSpaceDevice::create(config, *memory_).value();
        if (probe) {
            // What the Linux driver's probe writes.
            write(Reg::GUEST_PAGE_SIZE, 4096);
            write64(Reg::PHYS_START_LOW, kBar1Base);
        }
    }

    AddressSpaceDevice& device() { return *device_; }
    RamGuestMemory& ram() { return *ram_; }
    UnpluggableGuestMemory& memory() { return *memory_; }

    uint32_t read(Reg reg) { return device_->read32(reg); }
    void write(Reg reg, uint32_t value) { device_->write32(reg, value); }
    uint64_t read64(Reg low) {
        const uint64_t lo = read(low);
        const uint64_t hi = read(static_cast<Reg>(static_cast<uint32_t>(low) + 4));
        return hi << 32 | lo;
    }
    void write64(Reg low, uint64_t value) {
        write(low, static_cast<uint32_t>(value));
        write(static_cast<Reg>(static_cast<uint32_t>(low) + 4), static_cast<uint32_t>(value >> 32));
    }
    uint32_t command(Command c) {
        write(Reg::COMMAND, static_cast<uint32_t>(c));
        return read(Reg::STATUS);
    }

    struct Block {
        uint32_t status;
        uint64_t offset;
        uint64_t size;
    };
    Block allocate_block(uint64_t size) {
        write64(Reg::BLOCK_SIZE_LOW, size);
        const uint32_t status = command(Command::ALLOCATE_BLOCK);
        return Block{status, read64(Reg::BLOCK_OFFSET_LOW), read64(Reg::BLOCK_SIZE_LOW)};
    }
    uint32_t deallocate_block(uint64_t offset) {
        write64(Reg::BLOCK_OFFSET_LOW, offset);
        return command(Command::DEALLOCATE_BLOCK);
    }

    // An open(): a handle with its own ping page in guest RAM.
    struct Handle {
        uint32_t id;
        uint64_t ping_gpa;
    };
    Handle open() {
        const uint32_t id = gen_handle();
        const uint64_t page = kRamBase + 4096 * (next_page_++ % (kRamSize / 4096));
        write(Reg::HANDLE, id);
        write64(Reg::PING_INFO_ADDR_LOW, page);
        EXPECT_EQ(command(Command::TELL_PING_INFO_ADDR), 0u);
        EXPECT_EQ(read64(Reg::PING_INFO_ADDR_LOW), page);
        return Handle{id, page};
    }
    uint32_t gen_handle() {
        EXPECT_EQ(command(Command::GEN_HANDLE), 0u);
        return read(Reg::HANDLE);
    }
    uint32_t close(Handle h) {
        write(Reg::HANDLE, h.id);
        return command(Command::DESTROY_HANDLE);
    }

    // A PING ioctl: the struct goes to the ping page, PING = handle, the struct comes back.
    PingInfo ping(Handle h, const PingInfo& in, Reg reg = Reg::PING) {
        put_ping_page(h.ping_gpa, in);
        write(reg, h.id);
        return get_ping_page(h.ping_gpa);
    }
    // The create ping: metadata = type, version (the u32 at 24) = 40, the rest zero.
    uint64_t create(Handle h, uint64_t type) {
        PingInfo in;
        in.metadata = type;
        in.wait_phys_addr = 40;
        return ping(h, in).metadata;
    }
    PingInfo ping_command(Handle h, uint64_t command, uint64_t phys_addr = 0, uint64_t size = 0) {
        PingInfo in;
        in.metadata = command;
        in.phys_addr = phys_addr;
        in.size = size;
        in.wait_phys_addr = 40;
        return ping(h, in);
    }

    void put_ping_page(uint64_t gpa, const PingInfo& info) {
        const auto bytes = info.encode();
        std::memcpy(ram_->host_pointer(gpa, bytes.size()), bytes.data(), bytes.size());
    }
    PingInfo get_ping_page(uint64_t gpa) {
        PingInfo::Bytes bytes;
        std::memcpy(bytes.data(), ram_->host_pointer(gpa, bytes.size()), bytes.size());
        return PingInfo::decode(bytes);
    }

  private:
    std::unique_ptr<RamGuestMemory> ram_;
    std::unique_ptr<UnpluggableGuestMemory> memory_;
    std::unique_ptr<AddressSpaceDevice> device_;
    uint64_t next_page_ = 0;
};

// Fills memory with a pattern derived from seed, or checks it.
inline void fill_pattern(std::span<std::byte> bytes, uint32_t seed) {
    for (size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<std::byte>((i * 131 + seed * 7919) >> 3);
    }
}
inline bool has_pattern(std::span<const std::byte> bytes, uint32_t seed) {
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (bytes[i] != static_cast<std::byte>((i * 131 + seed * 7919) >> 3)) {
            return false;
        }
    }
    return true;
}
inline bool all_zero(std::span<const std::byte> bytes) {
    for (std::byte b : bytes) {
        if (b != std::byte{0}) {
            return false;
        }
    }
    return true;
}

}  // namespace gf::device::testing
