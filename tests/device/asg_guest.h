// The guest's side of an ASG stream for the device tests (asg_context_test, asg_hostile_test,
// asg_stats_test): client::AsgStream over the device's registers, raw access for the hostile
// parts, and the checks those tests share.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "base/shared_memory.h"
#include "client/asg_stream.h"
#include "device/asg_context.h"
#include "device/asg_device_transport.h"
#include "device/device_test_support.h"

namespace gf::device::testing {

using namespace std::chrono_literals;
using namespace asg;  // the layout's names, in test code only

inline std::vector<std::byte> pattern(size_t n, uint32_t seed) {
    std::vector<std::byte> bytes(n);
    fill_pattern(bytes, seed);
    return bytes;
}

// The stream's options in device tests: the reference's way, with the tests' patience.
inline client::AsgStreamOptions asg_options() {
    client::AsgStreamOptions options;
    options.patience = kPatience;
    return options;
}

// One ASG stream of a test guest: the project's one guest (client::AsgStream, modelled on
// gfxstream's AddressSpaceStream) over the device's registers (DeviceAsgTransport), plus the
// raw access the hostile tests need to play a misbehaving guest beside it. Everything a
// well-behaved guest does goes through the stream.
class AsgGuest {
  public:
    explicit AsgGuest(Guest& guest, client::AsgStreamOptions options = asg_options())
        : guest_(guest), handle_(guest.open()), options_(std::move(options)) {}
    AsgGuest(const AsgGuest&) = delete;
    AsgGuest& operator=(const AsgGuest&) = delete;
    // A stream still open goes as a killed guest's would: its handle is destroyed without a
    // drain (a hostile test may have left the rings in any state).
    ~AsgGuest() {
        if (stream_) {
            (void)stream_->close_abruptly();
        }
    }

    // The reference's connect (spec §2.1 steps 2-9) through the stream.
    void connect() {
        auto transport =
            std::make_unique<DeviceAsgTransport>(guest_.device(), guest_.ram(), handle_.id,
                                                 handle_.ping_gpa, kBar1Base, &destroy_status_);
        transport_ = transport.get();
        auto stream = client::AsgStream::connect(std::move(transport), options_);
        ASSERT_TRUE(stream) << std::strerror(stream.error().value());
        stream_.emplace(std::move(*stream));
        ring_offset = stream_->ring_offset();
        buffer_offset = stream_->buffer_offset();
        buffer_size = stream_->buffer_size();
        step = stream_->write_step();
        view = stream_->view_size();
        ring_ = {stream_->ring_memory(), kRingStorageSize};
        buffer_ = {stream_->buffer_memory(), buffer_size};
    }
    client::AsgStream& stream() { return *stream_; }

    // Raw access to the shared memory and pings, for the hostile parts of tests.
    uint32_t load(uint64_t offset) {
        return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&ring_[offset])).load();
    }
    void store(uint64_t offset, uint32_t value) {
        std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&ring_[offset])).store(value);
    }
    std::span<std::byte> ring() { return ring_; }
    std::span<std::byte> buffer() { return buffer_; }
    void notify() { (void)transport_->command(NotifyAvailable); }
    void notify_if_needed() {
        const uint32_t state = load(kState);
        if (state != CanConsume && state != Rendering) {
            notify();
        }
    }
    // Waits (re-pinging a sleeping host) until `done` or the patience ends.
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

    // Hostile: one raw type-1 descriptor pushed into to_host, whatever it says.
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

    // Type 1 (the stream's commitBuffer, a step at a time), then until the host took it all.
    bool write_small(std::span<const std::byte> bytes) {
        return stream_->write(bytes.data(), bytes.size(), client::AsgTransfer::kDescriptors) &&
               stream_->flush();
    }
    // Mode 3: the stream's writeFully. With finish = false, a guest that stops after its
    // bytes (hostile: transfer_size and mode 3 stay, the drain is not waited for).
    bool write_large(std::span<const std::byte> bytes, bool finish = true) {
        if (finish) {
            return bool(stream_->write_fully(bytes.data(), bytes.size()));
        }
        if (!stream_->flush()) {
            return false;
        }
        store(kTransferSize, static_cast<uint32_t>(bytes.size()));
        store(kTransferMode, 3);
        return write_large_bytes(bytes);
    }
    // The stream's writeFullyAsync: transfer_mode back to 1 once the last chunk is in.
    bool write_large_async(std::span<const std::byte> bytes) {
        return bool(stream_->write_fully_async(bytes.data(), bytes.size()));
    }
    // Hostile: only the bytes of a mode-3 transfer, in whatever room the ring has
    // (transfer_size and the mode are the caller's).
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

    // Exactly n reply bytes, the stream's readFully (nullopt on any failure).
    std::optional<std::vector<std::byte>> read(size_t n) {
        std::vector<std::byte> out(n);
        if (!stream_->read_fully(out.data(), n)) {
            return std::nullopt;
        }
        return out;
    }

    // Closes the handle as a killed guest would (no drain: the tests look at the host's
    // cleanup); DESTROY_HANDLE's status. Without a stream, DESTROY_HANDLE alone.
    uint32_t close() {
        if (!stream_) {
            return guest_.close(handle_);
        }
        (void)stream_->close_abruptly();
        stream_.reset();
        transport_ = nullptr;
        return destroy_status_;
    }
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

    Guest& guest_;
    Guest::Handle handle_;
    client::AsgStreamOptions options_;
    std::optional<client::AsgStream> stream_;
    DeviceAsgTransport* transport_ = nullptr;  // the stream's
    uint32_t destroy_status_ = ~0u;
    std::span<std::byte> ring_;
    std::span<std::byte> buffer_;
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
