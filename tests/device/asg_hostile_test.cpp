// Hostile guests against the ASG consumer (docs/contexts.md#hostile-guests): one test per
// thing a guest can write into the shared memory that the protocol does not allow. Each
// checks that the consumer refuses it and counts it in DeviceStats::asg_protocol_errors (or,
// for a guest that merely stops, that the consumer falls asleep rather than spins), and then
// that a well-formed exchange still works or that DESTROY_HANDLE ends the context within the
// bound and leaves nothing behind.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "base/shared_memory.h"
#include "device/asg_context.h"
#include "device/asg_guest.h"
#include "device/asg_sink.h"
#include "device/device_test_support.h"

namespace gf::device {
namespace {

using namespace std::chrono_literals;
using namespace asg;
using testing::AsgGuest;
using testing::expect_nothing_left;
using testing::Guest;
using testing::kBar1Base;
using testing::kPatience;
using testing::pattern;
using testing::protocol_errors;
using testing::wait_for_errors;

// A state the host never writes (it writes 0..4).
constexpr uint32_t kMarker = 0x5A5A'5A5A;

// A well-formed type-1 exchange echoes, and nothing more was refused.
void expect_recovers(Guest& guest, AsgGuest& a, uint64_t errors, uint32_t seed) {
    const auto message = pattern(33, seed);
    ASSERT_TRUE(a.write_small(message));
    EXPECT_EQ(a.read(message.size()), message);
    EXPECT_EQ(protocol_errors(guest), errors);
}

// The consumer sleeps: it published NEED_NOTIFY, and a state that only the guest writes then
// stays put (a consumer still running would store CAN_CONSUME or NEED_NOTIFY over it). One
// wake-up from an earlier ping may still be due, hence the second try; nothing pings here.
void expect_asleep(AsgGuest& a) {
    bool asleep = false;
    for (int attempt = 0; attempt < 3 && !asleep; ++attempt) {
        ASSERT_TRUE(testing::wait_until([&] { return a.load(kState) == NeedNotify; }));
        a.store(kState, kMarker);
        std::this_thread::sleep_for(50ms);
        asleep = a.load(kState) == kMarker;
    }
    EXPECT_TRUE(asleep) << "the consumer keeps running on an idle guest";
    a.store(kState, NeedNotify);  // as the consumer left it: the guest's next write pings
}

// A descriptor that is refused: consumed (read_pos advanced), nothing delivered, nothing
// added to host_consumed_pos, one protocol error.
void expect_descriptor_skipped(Guest& guest, AsgGuest& a, uint32_t offset, uint32_t size) {
    const uint64_t errors = protocol_errors(guest);
    const uint32_t consumed = a.load(kHostConsumedPos);
    const uint32_t replied = a.load(kFromHostLargeXfer + kWritePos);
    a.push_descriptor(offset, size);
    ASSERT_TRUE(wait_for_errors(guest, errors + 1)) << offset << " " << size;
    ASSERT_TRUE(a.wait([&] { return a.to_host_empty(); }));
    EXPECT_EQ(a.load(kHostConsumedPos), consumed);
    EXPECT_EQ(a.load(kFromHostLargeXfer + kWritePos), replied);  // the echo sink saw nothing
    EXPECT_EQ(protocol_errors(guest), errors + 1);
}

TEST(AsgHostileTest, DescriptorOffsetOutsideTheBufferIsSkipped) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    const uint32_t size = a.buffer_size;
    uint64_t errors = 0;
    for (uint32_t offset : {size, size + 4096, 0x8000'0000u, 0xFFFF'FFFFu}) {
        expect_descriptor_skipped(guest, a, offset, 1);
        ++errors;
        expect_recovers(guest, a, errors, offset);
    }
}

TEST(AsgHostileTest, DescriptorSizePastTheBufferIsSkipped) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    const uint32_t size = a.buffer_size;
    // Within the step, but past the buffer's end; and an offset + size that wraps 32 bits.
    expect_descriptor_skipped(guest, a, size - 10, 100);
    expect_recovers(guest, a, 1, 1);
    expect_descriptor_skipped(guest, a, size - a.step + 1, a.step);
    expect_recovers(guest, a, 2, 2);
    expect_descriptor_skipped(guest, a, 0xFFFF'FFF0u, 0x20);
    expect_recovers(guest, a, 3, 3);
    // The last byte of the buffer is fine.
    const uint32_t before = a.load(kHostConsumedPos);
    a.push_descriptor(size - 1, 1);
    ASSERT_TRUE(a.read(1));
    EXPECT_EQ(a.load(kHostConsumedPos), before + 1);
    EXPECT_EQ(protocol_errors(guest), 3u);
}

TEST(AsgHostileTest, DescriptorSizePastTheStepIsSkipped) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    expect_descriptor_skipped(guest, a, 0, a.step + 1);
    expect_recovers(guest, a, 1, 1);
    expect_descriptor_skipped(guest, a, 0, a.buffer_size);
    expect_recovers(guest, a, 2, 2);
    expect_descriptor_skipped(guest, a, 0, 0xFFFF'FFFFu);
    expect_recovers(guest, a, 3, 3);
    // A whole step is fine, and so is size 0 (nothing to deliver, nothing refused).
    const auto step = pattern(a.step, 4);
    ASSERT_TRUE(a.write_small(step));
    EXPECT_EQ(a.read(step.size()), step);
    a.push_descriptor(0, 0);
    ASSERT_TRUE(a.wait([&] { return a.to_host_empty(); }));
    expect_recovers(guest, a, 3, 5);
}

TEST(AsgHostileTest, ToHostWritePosJumpingPastTheRingDropsTheRing) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    uint64_t errors = 0;
    // Past buf[] (a ring holds at most 2047 bytes), far past it, and "behind" read_pos.
    for (uint32_t jump : {2048u, 100'000u, 0x8000'0000u, 0u - 8u}) {
        const uint32_t target = a.load(kToHost + kReadPos) + jump;
        a.store(kToHost + kWritePos, target);
        a.notify();
        ++errors;
        ASSERT_TRUE(wait_for_errors(guest, errors)) << jump;
        // Dropped: read_pos = write_pos, so the guest is not stuck on a ring it broke.
        ASSERT_TRUE(a.wait([&] { return a.load(kToHost + kReadPos) == target; })) << jump;
        expect_recovers(guest, a, errors, jump);
    }
    // Half a descriptor.
    a.store(kToHost + kWritePos, a.load(kToHost + kReadPos) + 4);
    a.notify();
    ASSERT_TRUE(wait_for_errors(guest, ++errors));
    expect_recovers(guest, a, errors, 9);
}

TEST(AsgHostileTest, LargeRingPositionJumpingDropsTheLargeRing) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    uint64_t errors = 0;
    for (uint32_t jump : {a.view, 64u << 20, 0u - 1u}) {
        a.store(kTransferSize, 1000);
        a.store(kTransferMode, 3);
        const uint32_t target = a.load(kToHostLargeXfer + kReadPos) + jump;
        a.store(kToHostLargeXfer + kWritePos, target);
        a.notify();
        ASSERT_TRUE(wait_for_errors(guest, ++errors)) << jump;
        ASSERT_TRUE(a.wait([&] { return a.load(kToHostLargeXfer + kReadPos) == target; })) << jump;
        EXPECT_EQ(a.load(kTransferSize), 1000u);  // nothing was taken from the transfer
        a.store(kTransferSize, 0);
        a.store(kTransferMode, 1);
        expect_recovers(guest, a, errors, jump);
    }
    // A large transfer works again too.
    const auto large = pattern(300u << 10, 7);
    ASSERT_TRUE(a.write_large(large));
    EXPECT_EQ(a.read(large.size()), large);
    EXPECT_EQ(protocol_errors(guest), errors);
}

TEST(AsgHostileTest, Mode2IsRefused) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    // Mode 2 carries 16-byte physical-address descriptors: not supported, so the ring goes.
    a.store(kTransferMode, 2);
    const uint32_t consumed = a.load(kHostConsumedPos);
    a.push_descriptor(0, 16);
    a.push_descriptor(0, 16);
    ASSERT_TRUE(wait_for_errors(guest, 1));
    ASSERT_TRUE(a.wait([&] { return a.to_host_empty(); }));
    EXPECT_EQ(a.load(kHostConsumedPos), consumed);
    EXPECT_EQ(a.load(kFromHostLargeXfer + kWritePos), 0u);
    a.store(kTransferMode, 1);
    expect_recovers(guest, a, 1, 1);
}

TEST(AsgHostileTest, GarbageModeIsRefused) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    uint64_t errors = 0;
    for (uint32_t mode : {0u, 4u, 0xDEAD'BEEFu}) {
        const uint32_t replied = a.load(kFromHostLargeXfer + kWritePos);
        // Descriptors in a garbage mode.
        a.store(kTransferMode, mode);
        a.push_descriptor(0, 16);
        ASSERT_TRUE(wait_for_errors(guest, ++errors)) << mode;
        ASSERT_TRUE(a.wait([&] { return a.to_host_empty(); })) << mode;
        a.store(kTransferMode, 1);
        EXPECT_EQ(a.load(kFromHostLargeXfer + kWritePos), replied) << mode;  // nothing delivered
        expect_recovers(guest, a, errors, mode);
        // Large data in a garbage mode, within an announced transfer_size, is taken: the host
        // reads the large ring whatever the mode says (writeFullyAsync is back at mode 1 before
        // the host drained it), as gfxstream's does.
        a.store(kTransferMode, mode);
        const auto data = pattern(64, mode);
        a.store(kTransferSize, static_cast<uint32_t>(data.size()));
        ASSERT_TRUE(a.write_large_bytes(data));
        ASSERT_TRUE(a.wait([&] { return a.large_empty(); })) << mode;
        EXPECT_EQ(a.load(kTransferSize), 0u) << mode;
        a.store(kTransferMode, 1);
        EXPECT_EQ(a.read(data.size()), data) << mode;
        EXPECT_EQ(protocol_errors(guest), errors) << mode;
    }
}

// The guest announces more than it sends and then stops: that is no error (it may still come),
// and the consumer must not sleep on it (the real guest pings at most once per transfer), but
// it must not spin either: it polls at AsgPacing's bounded pace with NEED_NOTIFY published
// between polls, withholds replies (the buffer is the guest's
// until the transfer ends), and take the rest when it comes.
TEST(AsgHostileTest, TransferSizeLargerThanWhatIsSentThenTheGuestStops) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    const auto message = pattern(700u << 10, 3);
    const auto first = std::span(message).first(100u << 10);
    const auto rest = std::span(message).subspan(first.size());
    ASSERT_TRUE(a.wait([&] { return a.to_host_empty(); }));
    a.store(kTransferSize, static_cast<uint32_t>(message.size()));
    a.store(kTransferMode, 3);
    ASSERT_TRUE(a.write_large_bytes(first));
    ASSERT_TRUE(a.wait([&] { return a.large_empty(); }));

    // Polling, not asleep: NEED_NOTIFY shows between polls (AsgPacingTest bounds their rate).
    ASSERT_TRUE(testing::wait_until([&] { return a.load(kState) == NeedNotify; }));
    EXPECT_EQ(a.load(kTransferSize), rest.size());
    EXPECT_EQ(a.load(kFromHostLargeXfer + kWritePos), 0u);  // no reply while the guest sends
    EXPECT_EQ(protocol_errors(guest), 0u);

    // The guest comes back with the rest.
    ASSERT_TRUE(a.write_large_bytes(rest));
    ASSERT_TRUE(a.wait([&] { return a.large_empty(); }));
    EXPECT_EQ(a.load(kTransferSize), 0u);
    a.store(kTransferMode, 1);
    EXPECT_EQ(a.read(message.size()), message);
    expect_recovers(guest, a, 0, 4);
}

TEST(AsgHostileTest, TransferSizeZeroWithDataDropsTheLargeRing) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    a.store(kTransferMode, 3);
    a.store(kTransferSize, 0);
    a.store(kToHostLargeXfer + kWritePos, a.load(kToHostLargeXfer + kReadPos) + 64);
    a.notify();
    ASSERT_TRUE(wait_for_errors(guest, 1));
    ASSERT_TRUE(a.wait([&] { return a.large_empty(); }));
    EXPECT_EQ(a.load(kTransferSize), 0u);
    // More data than announced: the announced part is taken, what is left over is dropped.
    const auto message = pattern(64, 5);
    a.store(kTransferSize, 10);
    ASSERT_TRUE(a.write_large_bytes(message));
    ASSERT_TRUE(wait_for_errors(guest, 2));
    ASSERT_TRUE(a.wait([&] { return a.large_empty(); }));
    a.store(kTransferMode, 1);
    EXPECT_EQ(a.read(10), std::vector(message.begin(), message.begin() + 10));
    expect_recovers(guest, a, 2, 6);
}

TEST(AsgHostileTest, ReplyRingReadPosJumpingDropsTheReply) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    const uint32_t write_pos = a.load(kFromHostLargeXfer + kWritePos);
    a.store(kFromHostLargeXfer + kReadPos, write_pos + (8u << 20));
    ASSERT_TRUE(a.write_small(pattern(10, 1)));
    ASSERT_TRUE(wait_for_errors(guest, 1));
    EXPECT_EQ(a.load(kFromHostLargeXfer + kWritePos), write_pos);  // nothing written
    // The guest puts its read position back: the next reply goes out, the dropped one does not.
    a.store(kFromHostLargeXfer + kReadPos, write_pos);
    expect_recovers(guest, a, 1, 2);
}

// A thread writes random words all over one context's ring storage and buffer while its
// consumer runs; another context's memory must not change, the device must keep serving,
// and DESTROY_HANDLE must end the scribbled context within the bound.
TEST(AsgHostileTest, GarbageScribbledOverRingAndBufferWhileTheConsumerRuns) {
    DeviceConfig config;
    config.asg_buffer_size = 64u << 10;
    config.asg_write_step = 16u << 10;
    Guest guest(config);
    AsgGuest a(guest);
    a.connect();
    AsgGuest b(guest);
    b.connect();
    // b's consumer asleep (its wake-up rewrites the marker), then its memory a sentinel.
    b.store(kState, kMarker);
    b.notify();
    expect_asleep(b);
    const std::span<std::byte> b_ring = b.ring();
    const std::span<std::byte> b_buffer = b.buffer();
    testing::fill_pattern(b_buffer, 99);
    std::vector<std::byte> b_ring_before(b_ring.size());
    copy_from_shared(b_ring_before, b_ring);

    const std::span<std::byte> ring = a.ring();
    const std::span<std::byte> buffer = a.buffer();
    std::atomic<bool> stop{false};
    std::thread scribbler([&] {
        uint64_t x = 0x9E37'79B9'7F4A'7C15;
        while (!stop.load()) {
            for (int i = 0; i < 1000; ++i) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Either memory, any aligned word: positions, mode, sizes, descriptors, data.
                std::span<std::byte> where = (x & 1) ? ring : buffer;
                const size_t at = ((x >> 1) % (where.size() / 4)) * 4;
                std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&where[at]))
                    .store(static_cast<uint32_t>(x >> 32), std::memory_order_relaxed);
            }
            std::this_thread::yield();
        }
    });
    // 1,500 pings 200 us apart, and more until the garbage has drawn a protocol error
    // (bounded): counted in pings, not in time, so a slow machine scribbles as much.
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    for (int pings = 0; pings < 1500 || (protocol_errors(guest) == 0 &&
                                         std::chrono::steady_clock::now() < deadline);
         ++pings) {
        a.notify();
        std::this_thread::sleep_for(200us);
    }
    stop = true;
    scribbler.join();
    EXPECT_GT(protocol_errors(guest), 0u);

    EXPECT_EQ(a.close(), 0u);
    EXPECT_EQ(guest.device().stats().stalled_contexts, 0u);
    EXPECT_TRUE(testing::has_pattern(b_buffer, 99));
    std::vector<std::byte> b_ring_after(b_ring.size());
    copy_from_shared(b_ring_after, b_ring);
    EXPECT_EQ(b_ring_after, b_ring_before);

    // The other context still serves, and so does a new one.
    const uint64_t errors = protocol_errors(guest);
    expect_recovers(guest, b, errors, 1);
    AsgGuest c(guest);
    c.connect();
    expect_recovers(guest, c, errors, 2);
    EXPECT_EQ(b.close(), 0u);
    EXPECT_EQ(c.close(), 0u);
    expect_nothing_left(guest);
}

// The guest "unmaps" (in the device model: it just stops touching the memory) with a reply it
// never reads (the consumer sleeps: nothing is owed) and with a transfer half sent (it polls at
// AsgPacing's bounded pace, NEED_NOTIFY showing between polls), and DESTROY_HANDLE ends the
// context within the bound.
TEST(AsgHostileTest, GuestThatStopsTouchingLeavesTheConsumerAsleep) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    ASSERT_TRUE(a.write_small(pattern(100, 1)));
    ASSERT_TRUE(
        testing::wait_until([&] { return a.load(kFromHostLargeXfer + kWritePos) == 100u; }));
    expect_asleep(a);  // with the reply written and never read

    a.store(kTransferSize, 1u << 20);
    a.store(kTransferMode, 3);
    ASSERT_TRUE(a.write_large_bytes(pattern(200u << 10, 2)));
    ASSERT_TRUE(a.wait([&] { return a.large_empty(); }));
    // With 800 KiB still announced: polling, not asleep (AsgPacingTest bounds the rate).
    ASSERT_TRUE(testing::wait_until([&] { return a.load(kState) == NeedNotify; }));
    EXPECT_EQ(protocol_errors(guest), 0u);

    EXPECT_EQ(a.close(), 0u);
    EXPECT_EQ(guest.device().stats().stalled_contexts, 0u);
    expect_nothing_left(guest);
}

// DESTROY_HANDLE while the consumer is in the middle of a transfer: handing a chunk to a slow
// sink, with more of the transfer waiting in the ring.
TEST(AsgHostileTest, DestroyHandleWhileATransferIsHalfDone) {
    struct Shared {
        std::atomic<int> chunks{0};
    };
    auto shared = std::make_shared<Shared>();
    class SlowSink final : public AsgSink {
      public:
        explicit SlowSink(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
        void consume(std::span<const std::byte>, AsgReply&) override {
            ++shared_->chunks;
            std::this_thread::sleep_for(200ms);
        }

      private:
        std::shared_ptr<Shared> shared_;
    };
    DeviceConfig config;
    config.context_stop_timeout = 2000ms;
    config.asg_sink_factory = [shared] { return std::make_unique<SlowSink>(shared); };
    Guest guest(config);
    AsgGuest a(guest);
    a.connect();
    a.store(kTransferSize, 4u << 20);
    a.store(kTransferMode, 3);
    // Three quarters of the view: the consumer takes it 256 KiB at a time.
    const auto part = pattern(a.view / 4 * 3, 1);
    ASSERT_TRUE(a.write_large_bytes(part));
    ASSERT_TRUE(testing::wait_until([&] { return shared->chunks.load() >= 1; }));
    EXPECT_FALSE(a.large_empty());  // the transfer is half done

    EXPECT_EQ(a.close(), 0u);
    EXPECT_EQ(guest.device().stats().stalled_contexts, 0u);
    expect_nothing_left(guest);
    EXPECT_EQ(protocol_errors(guest), 0u);
}

}  // namespace
}  // namespace gf::device
