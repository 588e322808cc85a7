// The guest's side of an ASG stream for the device tests (asg_context_test, asg_hostile_test,
// asg_stats_test):
// what gfxstream's AddressSpaceStream does through the registers and the shared memory, plus
// the checks those tests share.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "base/shared_memory.h"
#include "device/asg_context.h"
#include "device/device_test_support.h"

namespace gf::device::testing {

using namespace std::chrono_literals;
using namespace asg;  // the layout's names, in test code only

// How long a test waits for the consumer: generous, never an upper bound on speed.
inline constexpr auto kPatience = 20s;

inline std::vector<std::byte> pattern(size_t n, uint32_t seed) {
    std::vector<std::byte> bytes(n);
    fill_pattern(bytes, seed);
    return bytes;
}

// The guest's side of one ASG stream, like gfxstream's AddressSpaceStream.
class AsgGuest {
  public:
    explicit AsgGuest(Guest& guest) : guest_(guest), handle_(guest.open()) {}

    // Create ping through SET_VERSION and transfer mode 1 (spec §2.1 steps 2-9).
    void connect() {
        ASSERT_EQ(guest_.create(handle_, 0), kPingOk);
        const PingInfo ring = guest_.ping_command(handle_, GetRing);
        ASSERT_EQ(ring.size, kRingStorageSize);
        ring_offset = ring.metadata;
        const PingInfo buffer = guest_.ping_command(handle_, GetBuffer);
        buffer_offset = buffer.metadata;
        buffer_size = static_cast<uint32_t>(buffer.size);
        ring_ = testing::host_memory(guest_.device(), kBar1Base + ring_offset, kRingStorageSize)
                    .value();
        buffer_ =
            testing::host_memory(guest_.device(), kBar1Base + buffer_offset, buffer_size).value();
        // asg_context_create: every header's positions and state back to 0.
        for (uint64_t header : {kToHost, kToHostLargeXfer, kFromHostLargeXfer}) {
            store(header + kWritePos, 0);
            store(header + kReadPos, 0);
        }
        store(kState, 0);
        ASSERT_EQ(guest_.ping_command(handle_, SetVersion, 0, 1).size, 1u);
        store(kTransferMode, 1);
        store(kHostConsumedPos, 0);
        store(kGuestWritePos, 0);
        ASSERT_EQ(load(kBufferSize), buffer_size);
        step = load(kFlushInterval);
        view = std::bit_floor(buffer_size);
    }

    uint32_t load(uint64_t offset) {
        return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&ring_[offset])).load();
    }
    void store(uint64_t offset, uint32_t value) {
        std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&ring_[offset])).store(value);
    }
    void notify() { guest_.ping_command(handle_, NotifyAvailable); }
    void notify_if_needed() {
        const uint32_t state = load(kState);
        if (state != CanConsume && state != Rendering) {
            notify();
        }
    }
    // Waits (re-pinging a sleeping host, as the guest does) until `done` or the patience ends.
    template <typename Done>
    bool wait(Done&& done) {
        const auto deadline = std::chrono::steady_clock::now() + kPatience;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            notify_if_needed();
            std::this_thread::yield();
        }
        return true;
    }

    // Pushes one raw type-1 descriptor (the guest's ring write of 8 bytes).
    void push_descriptor(uint32_t offset, uint32_t size) {
        std::byte raw[8];
        std::memcpy(raw, &offset, 4);
        std::memcpy(raw + 4, &size, 4);
        const uint32_t pos = load(kToHost + kWritePos);
        for (uint32_t i = 0; i < 8; ++i) {
            copy_to_shared(ring_.subspan(kToHost + kBuf + ((pos + i) & (kBufSize - 1)), 1),
                           std::span(raw + i, 1));
        }
        store(kToHost + kWritePos, pos + 8);
        notify_if_needed();
    }
    bool to_host_empty() { return load(kToHost + kWritePos) == load(kToHost + kReadPos); }

    // Type 1: chunks of at most `step` at the write cursor, one descriptor each.
    bool write_small(std::span<const std::byte> bytes) {
        const uint32_t max_outstanding = buffer_size / step - 1;
        while (!bytes.empty()) {
            if (!wait([&] {
                    return (load(kToHost + kWritePos) - load(kToHost + kReadPos)) / 8 <
                           max_outstanding;
                })) {
                return false;
            }
            const size_t n = std::min<size_t>(bytes.size(), step);
            copy_to_shared(buffer_.subspan(cursor_, n), bytes.first(n));
            push_descriptor(cursor_, static_cast<uint32_t>(n));
            cursor_ = (cursor_ + step) % buffer_size;
            bytes = bytes.subspan(n);
        }
        return wait([&] { return to_host_empty(); });
    }

    // Mode 3: transfer_size, then the bytes through to_host_large_xfer in quarter buffers.
    bool write_large(std::span<const std::byte> bytes, bool finish = true) {
        if (!wait([&] { return to_host_empty(); })) {
            return false;
        }
        store(kTransferSize, static_cast<uint32_t>(bytes.size()));
        store(kTransferMode, 3);
        if (!write_large_bytes(bytes)) {
            return false;
        }
        if (!finish) {
            return true;
        }
        const bool drained = wait([&] { return large_empty(); });
        store(kTransferMode, 1);
        return drained;
    }
    // Only the bytes of a mode-3 transfer (transfer_size and the mode are the caller's).
    bool write_large_bytes(std::span<const std::byte> bytes) {
        while (!bytes.empty()) {
            uint32_t room = 0;
            if (!wait([&] {
                    room = (load(kToHostLargeXfer + kReadPos) - load(kToHostLargeXfer + kWritePos) -
                            1) &
                           (view - 1);
                    return room != 0;
                })) {
                return false;
            }
            const uint32_t pos = load(kToHostLargeXfer + kWritePos);
            const size_t n = std::min<size_t>({bytes.size(), room, buffer_size / 4});
            put_view(pos, bytes.first(n));
            store(kToHostLargeXfer + kWritePos, pos + static_cast<uint32_t>(n));
            notify_if_needed();
            bytes = bytes.subspan(n);
        }
        return true;
    }
    bool large_empty() {
        return load(kToHostLargeXfer + kWritePos) == load(kToHostLargeXfer + kReadPos);
    }

    // Reads exactly n reply bytes from from_host_large_xfer (nullopt on timeout).
    std::optional<std::vector<std::byte>> read(size_t n) {
        std::vector<std::byte> out;
        while (out.size() < n) {
            uint32_t available = 0;
            if (!wait([&] {
                    available =
                        load(kFromHostLargeXfer + kWritePos) - load(kFromHostLargeXfer + kReadPos);
                    return available != 0;
                })) {
                return std::nullopt;
            }
            const uint32_t pos = load(kFromHostLargeXfer + kReadPos);
            const size_t take = std::min<size_t>(available, n - out.size());
            const size_t old = out.size();
            out.resize(old + take);
            get_view(pos, std::span(out).subspan(old));
            store(kFromHostLargeXfer + kReadPos, pos + static_cast<uint32_t>(take));
        }
        return out;
    }

    uint32_t close() { return guest_.close(handle_); }
    Guest::Handle handle() const { return handle_; }

    uint64_t ring_offset = 0;
    uint64_t buffer_offset = 0;
    uint32_t buffer_size = 0;
    uint32_t step = 0;
    uint32_t view = 0;

  private:
    void put_view(uint32_t pos, std::span<const std::byte> in) {
        const uint32_t start = pos & (view - 1);
        const size_t first = std::min<size_t>(in.size(), view - start);
        copy_to_shared(buffer_.subspan(start), in.first(first));
        copy_to_shared(buffer_, in.subspan(first));
    }
    void get_view(uint32_t pos, std::span<std::byte> out) {
        const uint32_t start = pos & (view - 1);
        const size_t first = std::min<size_t>(out.size(), view - start);
        copy_from_shared(out.first(first), buffer_.subspan(start));
        copy_from_shared(out.subspan(first), buffer_);
    }

    Guest& guest_;
    Guest::Handle handle_;
    std::span<std::byte> ring_;
    std::span<std::byte> buffer_;
    uint32_t cursor_ = 0;
};

inline uint64_t protocol_errors(Guest& guest) {
    return guest.device().stats().asg_protocol_errors;
}

inline bool wait_for_errors(Guest& guest, uint64_t at_least) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (protocol_errors(guest) < at_least) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

inline void expect_nothing_left(Guest& guest) {
    const DeviceStats stats = guest.device().stats();
    EXPECT_EQ(stats.asg_blocks, 0u);
    EXPECT_EQ(stats.host_regions, 0u);
    EXPECT_EQ(stats.memory_mappings, 0u);
    EXPECT_EQ(stats.backed_bytes, 0u);
    EXPECT_EQ(stats.contexts_by_type.count(0), 0u);
    EXPECT_TRUE(guest.device().books().host_regions.empty());
}

}  // namespace gf::device::testing
