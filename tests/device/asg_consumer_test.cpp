// The ASG consumer as a step function (device/asg_consumer.h), driven without a thread: each
// test puts the shared rings in a state the real guest (gfxstream's AddressSpaceStream) can
// leave them in, steps the consumer, and checks what it did and what it says it found. The
// guest's side here is only ring states (positions, sizes, modes), not a guest: the guest
// itself is client::AsgStream, which the context and node tests run.
#include "device/asg_consumer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <cstring>
#include <vector>

#include "device/bar1_access.h"
#include "device/bar1_memory.h"
#include "device/device_test_support.h"

namespace gf::device {
namespace {

using namespace hw::asg;
using Outcome = AsgConsumer::Outcome;

constexpr uint64_t kRing = 0;
constexpr uint64_t kBuffer = 1u << 20;
constexpr uint32_t kBytes = 1u << 20;  // the transfer buffer's size
constexpr uint32_t kStep = 256u << 10;

std::vector<std::byte> pattern(size_t n, uint32_t seed) {
    std::vector<std::byte> bytes(n);
    testing::fill_pattern(bytes, seed);
    return bytes;
}

// A sink that replies twice what it reads: more than the queue can always take.
class DoublingSink final : public AsgSink {
  public:
    void consume(std::span<const std::byte> in, AsgReply& reply) override {
        (void)reply.write(in);
        (void)reply.write(in);
    }
};

class AsgConsumerTest : public ::testing::Test {
  protected:
    void SetUp() override { make(kBytes, AsgConsumer::kReplyCapacity); }

    void make(uint32_t buffer_size, size_t reply_capacity, AsgSink* sink = nullptr) {
        consumer_.reset();
        access_.reset();
        bar1_ = Bar1Memory::create(4u << 20, 16).value();
        ASSERT_TRUE(bar1_->map(kRing, 16384, 1));
        ASSERT_TRUE(bar1_->map(kBuffer, buffer_size, 1));
        {
            // The test owns every layout change, so the spans stay valid after the lock.
            ReaderLock lock(bar1_->layout_lock());
            ring_ = bar1_->backed_view_locked(kRing, kRingStorageSize).value();
            buffer_ = bar1_->backed_view_locked(kBuffer, buffer_size).value();
        }
        view_ = std::bit_floor(buffer_size);
        access_ = std::make_unique<Bar1Access>(*bar1_);
        // As the context lays it out, and as asg_context_create and mode 1 leave it.
        store(hw::asg::kBufferSize, buffer_size);
        store(kFlushInterval, kStep);
        store(kTransferMode, kModeDescriptors);
        consumer_ = std::make_unique<AsgConsumer>(
            *access_, AsgStreamLayout{kRing, kBuffer, buffer_size, kStep}, sink ? *sink : echo_,
            AsgCounters{errors_, in_, out_, refused_}, reply_capacity);
    }

    uint32_t load(uint64_t offset) {
        return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&ring_[offset])).load();
    }
    void store(uint64_t offset, uint32_t value) {
        std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(&ring_[offset])).store(value);
    }
    uint32_t used(uint64_t header) { return load(header + kWritePos) - load(header + kReadPos); }

    // Bytes into to_host_large_xfer's view at its write position, as ring_buffer_view_write.
    void push_large(std::span<const std::byte> bytes) {
        ASSERT_LE(used(kToHostLargeXfer) + bytes.size(), view_ - 1u);
        const uint32_t pos = load(kToHostLargeXfer + kWritePos);
        for (size_t i = 0; i < bytes.size(); ++i) {
            buffer_[(pos + i) & (view_ - 1)] = bytes[i];
        }
        store(kToHostLargeXfer + kWritePos, pos + static_cast<uint32_t>(bytes.size()));
    }
    // A type-1 chunk at `offset` of the buffer and its descriptor in to_host.
    void push_type1(uint32_t offset, std::span<const std::byte> bytes) {
        std::memcpy(buffer_.data() + offset, bytes.data(), bytes.size());
        const uint32_t pos = load(kToHost + kWritePos);
        const uint32_t descriptor[2] = {offset, static_cast<uint32_t>(bytes.size())};
        const auto* raw = reinterpret_cast<const std::byte*>(descriptor);
        for (size_t i = 0; i < sizeof(descriptor); ++i) {
            ring_[kToHost + kBuf + ((pos + i) & (kBufSize - 1))] = raw[i];
        }
        store(kToHost + kWritePos, pos + kType1DescriptorSize);
    }
    // Takes up to n reply bytes from from_host_large_xfer, as ring_buffer_view_read.
    std::vector<std::byte> take_reply(size_t n) {
        const uint32_t pos = load(kFromHostLargeXfer + kReadPos);
        n = std::min<size_t>(n, used(kFromHostLargeXfer));
        std::vector<std::byte> out(n);
        for (size_t i = 0; i < n; ++i) {
            out[i] = buffer_[(pos + i) & (view_ - 1)];
        }
        store(kFromHostLargeXfer + kReadPos, pos + static_cast<uint32_t>(n));
        return out;
    }
    Outcome step() {
        Result<Outcome> outcome = consumer_->step();
        EXPECT_TRUE(outcome);
        return outcome ? *outcome : Outcome::kIdle;
    }
    // Steps while there is progress (bounded: a consumer that always progresses is a bug).
    Outcome run() {
        for (int i = 0; i < 100'000; ++i) {
            const Outcome outcome = step();
            if (outcome != Outcome::kProgress) {
                return outcome;
            }
        }
        ADD_FAILURE() << "the consumer never stopped making progress";
        return Outcome::kProgress;
    }

    std::unique_ptr<Bar1Memory> bar1_;
    std::unique_ptr<Bar1Access> access_;
    std::span<std::byte> ring_;
    std::span<std::byte> buffer_;
    uint32_t view_ = 0;
    EchoAsgSink echo_;
    std::atomic<uint64_t> errors_{0}, in_{0}, out_{0}, refused_{0};
    std::unique_ptr<AsgConsumer> consumer_;
};

// Issue 21 item 1: writeFully pings at most once while it pushes. A consumer that drained the
// first chunk and found the ring empty must not call itself idle while the transfer is
// unfinished, whatever the guest's timing: it says kWaiting, and pacing never sleeps on that.
TEST_F(AsgConsumerTest, AnUnfinishedTransferIsWaitingNeverIdle) {
    const auto message = pattern((3u << 20) + 5, 1);
    store(kTransferSize, static_cast<uint32_t>(message.size()));
    store(kTransferMode, kModeLarge);
    push_large(std::span(message).first(kBytes / 4));
    EXPECT_EQ(run(), Outcome::kWaiting);
    EXPECT_EQ(load(kTransferSize), message.size() - kBytes / 4);
    EXPECT_EQ(used(kToHostLargeXfer), 0u);
    EXPECT_EQ(used(kFromHostLargeXfer), 0u) << "no reply while the guest sends";

    // The guest comes back (after any delay), fills the ring with three chunks, and spins
    // without pinging: every chunk is taken.
    size_t sent = kBytes / 4;
    while (sent < message.size()) {
        while (sent < message.size() && used(kToHostLargeXfer) + kBytes / 4 <= view_ - 1) {
            const size_t n = std::min<size_t>(kBytes / 4, message.size() - sent);
            push_large(std::span(message).subspan(sent, n));
            sent += n;
        }
        // Waiting: for the rest of the transfer, or (once it is all in) for the guest to
        // read the reply that fills from_host_large_xfer.
        EXPECT_EQ(run(), Outcome::kWaiting) << "sent " << sent;
    }
    // Everything in, the reply goes out in pieces as the guest reads.
    std::vector<std::byte> reply;
    while (reply.size() < message.size()) {
        const Outcome outcome = run();
        const auto piece = take_reply(message.size());
        ASSERT_FALSE(piece.empty() && outcome == Outcome::kIdle)
            << "reply stalled at " << reply.size();
        reply.insert(reply.end(), piece.begin(), piece.end());
    }
    EXPECT_EQ(reply, message);
    EXPECT_EQ(run(), Outcome::kIdle);
    EXPECT_EQ(errors_.load(), 0u);
}

TEST(AsgPacingTest, NeverSleepsWhileWaitingAndItsPausesAreBounded) {
    AsgPacing pacing;
    std::chrono::microseconds longest{0};
    unsigned pauses = 0;
    for (int i = 0; i < 100'000; ++i) {
        const AsgPacing::Action action = pacing.next(AsgConsumer::Outcome::kWaiting);
        ASSERT_NE(action.kind, AsgPacing::Action::kSleep) << "step " << i;
        ASSERT_NE(action.kind, AsgPacing::Action::kStep) << "step " << i;
        if (action.kind == AsgPacing::Action::kPause) {
            ++pauses;
            EXPECT_GE(action.pause, AsgPacing::kFirstPause);
            EXPECT_LE(action.pause, AsgPacing::kLongestPause);
            longest = std::max(longest, action.pause);
        } else {
            EXPECT_EQ(pauses, 0u) << "yields come before the first pause";
        }
    }
    // A guest that stopped for good costs at most one wake-up per kLongestPause.
    EXPECT_EQ(longest, AsgPacing::kLongestPause);
}

TEST(AsgPacingTest, SleepsOnlyWhenIdleAfterItsYieldsAndProgressStartsOver) {
    AsgPacing pacing;
    for (unsigned i = 0; i < AsgPacing::kYieldsBeforeRest; ++i) {
        ASSERT_EQ(pacing.next(AsgConsumer::Outcome::kIdle).kind, AsgPacing::Action::kYield);
    }
    EXPECT_EQ(pacing.next(AsgConsumer::Outcome::kIdle).kind, AsgPacing::Action::kSleep);
    // Waiting with its pauses grown, then progress: back to yields, then short pauses.
    for (unsigned i = 0; i < AsgPacing::kYieldsBeforeRest + AsgPacing::kPatientPauses + 20; ++i) {
        (void)pacing.next(AsgConsumer::Outcome::kWaiting);
    }
    EXPECT_EQ(pacing.next(AsgConsumer::Outcome::kProgress).kind, AsgPacing::Action::kStep);
    EXPECT_EQ(pacing.next(AsgConsumer::Outcome::kWaiting).kind, AsgPacing::Action::kYield);
    for (unsigned i = 1; i < AsgPacing::kYieldsBeforeRest; ++i) {
        (void)pacing.next(AsgConsumer::Outcome::kWaiting);
    }
    const AsgPacing::Action first = pacing.next(AsgConsumer::Outcome::kWaiting);
    EXPECT_EQ(first.kind, AsgPacing::Action::kPause);
    EXPECT_EQ(first.pause, AsgPacing::kFirstPause);
}

// Issue 21 item 2: writeFullyAsync sets transfer_mode back to 1 as soon as its last chunk is
// in the ring. The host takes that data all the same, and replies only once it has.
TEST_F(AsgConsumerTest, LargeRingDataIsTakenWhateverTheModeSays) {
    const auto message = pattern(700'000, 2);
    store(kTransferSize, static_cast<uint32_t>(message.size()));
    store(kTransferMode, kModeLarge);
    push_large(std::span(message).first(kBytes / 2));
    push_large(std::span(message).subspan(kBytes / 2));
    store(kTransferMode, kModeDescriptors);  // the early switch
    // One step takes at most a chunk: the reply must not start while data is still in flight.
    EXPECT_EQ(step(), Outcome::kProgress);
    EXPECT_EQ(used(kFromHostLargeXfer), 0u);
    EXPECT_NE(used(kToHostLargeXfer), 0u);
    EXPECT_EQ(run(), Outcome::kIdle);
    EXPECT_EQ(errors_.load(), 0u);
    EXPECT_EQ(load(kTransferSize), 0u);
    EXPECT_EQ(take_reply(message.size()), message);
    EXPECT_EQ(in_.load(), message.size());
    EXPECT_EQ(out_.load(), message.size());
}

// The next call after writeFullyAsync is a type-1 write (mode 1, as the guest left it).
TEST_F(AsgConsumerTest, AsyncLargeThenType1KeepsTheOrder) {
    const auto large = pattern(300'000, 3);
    const auto small = pattern(1000, 4);
    store(kTransferSize, static_cast<uint32_t>(large.size()));
    store(kTransferMode, kModeLarge);
    push_large(large);
    store(kTransferMode, kModeDescriptors);
    EXPECT_EQ(run(), Outcome::kIdle);
    auto reply = take_reply(large.size());
    push_type1(0, small);
    EXPECT_EQ(run(), Outcome::kIdle);
    const auto rest = take_reply(small.size());
    reply.insert(reply.end(), rest.begin(), rest.end());
    auto expected = large;
    expected.insert(expected.end(), small.begin(), small.end());
    EXPECT_EQ(reply, expected);
    EXPECT_EQ(errors_.load(), 0u);
    EXPECT_EQ(load(kHostConsumedPos), small.size());
}

TEST_F(AsgConsumerTest, LargeDataBeyondWhatWasAnnouncedIsRefused) {
    const auto message = pattern(5000, 5);
    store(kTransferSize, 1000);
    push_large(message);
    EXPECT_EQ(run(), Outcome::kIdle);
    EXPECT_EQ(in_.load(), 1000u);   // what was announced
    EXPECT_EQ(errors_.load(), 1u);  // the rest, drained
    EXPECT_EQ(used(kToHostLargeXfer), 0u);
}

TEST_F(AsgConsumerTest, DescriptorsOutsideModeOneAreRefused) {
    store(kTransferMode, kModeLarge);
    push_type1(0, pattern(100, 6));
    EXPECT_EQ(run(), Outcome::kIdle);
    EXPECT_EQ(errors_.load(), 1u);
    EXPECT_EQ(in_.load(), 0u);
}

// Issue 21 item 3: a guest that never reads holds at most the queue's capacity on the host:
// the consumer stops taking input exactly there, and no byte of the echo is refused.
TEST_F(AsgConsumerTest, InputStopsWhenTheReplyQueueIsFullAndNothingIsDropped) {
    constexpr size_t kCapacity = 2u << 20;
    make(kBytes, kCapacity);
    const auto chunk = pattern(kStep, 7);
    // The guest fills its reply ring and then stops reading, and goes on writing.
    uint32_t cursor = 0;
    uint64_t written = 0;
    for (int i = 0; i < 64; ++i) {
        if (used(kToHost) >= 3 * kType1DescriptorSize) {
            break;  // the guest's maxOutstanding: it would spin here
        }
        push_type1(cursor, chunk);
        cursor = (cursor + kStep) % kBytes;
        written += chunk.size();
        (void)run();
    }
    // Input is taken only while a whole chunk fits: the queue ends within a chunk of full.
    EXPECT_LE(consumer_->reply_queued(), kCapacity);
    EXPECT_GT(consumer_->reply_queued(), kCapacity - kStep);
    EXPECT_LE(consumer_->reply_blocks(), kCapacity / (64u << 10) + 1);
    EXPECT_EQ(run(), Outcome::kWaiting) << "input waits, and the consumer says so";
    EXPECT_EQ(refused_.load(), 0u);
    EXPECT_EQ(errors_.load(), 0u);
    EXPECT_EQ(in_.load(), out_.load() + consumer_->reply_queued());
    EXPECT_LT(in_.load(), written);
}

// Issue 21 item 3, the reported case: the guest keeps about 1 MiB of echo unread while it
// writes 64 KiB and reads 64 KiB, for 128 MiB. The host's reply memory stays flat and every
// byte is accounted for (sent, or still queued), none refused. (The bytes the guest reads are
// not checked: its chunks and the host's replies share one buffer, so a guest that writes with
// replies unread overwrites them; that is the protocol's limit, not the host's.)
TEST_F(AsgConsumerTest, ReplyMemoryStaysFlatWithReadsLaggingWrites) {
    const auto chunk = pattern(64u << 10, 8);
    uint32_t cursor = 0;
    uint64_t written = 0;
    uint64_t read = 0;
    size_t most_blocks = 0;
    while (written < (128u << 20)) {
        push_type1(cursor, chunk);
        cursor = (cursor + kStep) % kBytes;
        written += chunk.size();
        (void)run();
        if (written - read > (1u << 20)) {
            read += take_reply(64u << 10).size();
        }
        most_blocks = std::max(most_blocks, consumer_->reply_blocks());
    }
    EXPECT_EQ(refused_.load(), 0u);
    EXPECT_EQ(in_.load(), written);
    EXPECT_EQ(out_.load() + consumer_->reply_queued(), written);
    EXPECT_LE(most_blocks, AsgConsumer::kReplyCapacity / (64u << 10) + 2);
    EXPECT_LE(most_blocks, 20u) << "about 1 MiB unread: the ring holds most of it";
}

TEST_F(AsgConsumerTest, ASinkThatRepliesMoreThanTheRoomHasTheRestCounted) {
    DoublingSink doubling;
    make(kBytes, 300'000, &doubling);
    const auto message = pattern(200'000, 9);
    store(kTransferSize, static_cast<uint32_t>(message.size()));
    store(kTransferMode, kModeLarge);
    push_large(message);
    EXPECT_EQ(run(), Outcome::kIdle);
    EXPECT_EQ(in_.load(), message.size());
    EXPECT_EQ(out_.load(), 300'000u);      // what the queue took
    EXPECT_EQ(refused_.load(), 100'000u);  // the rest, counted
    EXPECT_EQ(consumer_->reply_queued(), 0u);
}

TEST(AsgReplyQueueTest, BlocksComeAndGoWithWhatIsQueued) {
    std::atomic<uint64_t> refused{0};
    AsgReplyQueue queue(300'000, refused);
    const auto bytes = pattern(200'000, 10);
    EXPECT_EQ(queue.write(bytes), bytes.size());
    EXPECT_EQ(queue.write(bytes), 100'000u);
    EXPECT_EQ(refused.load(), 100'000u);
    EXPECT_EQ(queue.room(), 0u);
    std::vector<std::byte> out;
    while (!queue.empty()) {
        const auto piece = queue.front().first(std::min<size_t>(queue.front().size(), 50'000));
        out.insert(out.end(), piece.begin(), piece.end());
        queue.pop(piece.size());
        EXPECT_LE(queue.blocks(), 300'000 / (64u << 10) + 2);
    }
    EXPECT_EQ(queue.blocks(), 0u);
    ASSERT_EQ(out.size(), 300'000u);
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), out.begin()));
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.begin() + 100'000, out.begin() + 200'000));
}

}  // namespace
}  // namespace gf::device
