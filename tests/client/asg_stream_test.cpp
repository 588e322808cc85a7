// client::AsgStream against a scripted transport: the calls it makes and their order, the
// header words it writes, and its notify and drain rules, each compared with gfxstream's
// AddressSpaceStream (spec asg.md §2.1, §3.3-3.4). No device and no thread of a host unless a
// test says so: the host's moves happen inside the stream's own calls (its pings), so every
// order of events here is exact.
#include "client/asg_stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hw/asg_layout.h"

namespace gf::client {
namespace {

using namespace hw::asg;
using namespace std::chrono_literals;
using Error = gf::Error;  // not the host state of that name

constexpr uint64_t kRingOffset = 0x3'FFFF'D000;
constexpr uint64_t kBufferOffset = 0x3'FEF0'0000;
constexpr uint32_t kBuffer = 1u << 20;
constexpr uint32_t kStep = 256u << 10;
constexpr uint8_t kUntouched = 0xAB;  // what the fake host leaves in every byte it does not set

// The shared memory and a log of calls, which outlive the transport the stream owns.
struct FakeHost {
    FakeHost() : ring_words(kRingStorageSize / 4), buffer(kBuffer) {
        std::memset(ring_words.data(), kUntouched, kRingStorageSize);
    }
    std::byte* ring() { return reinterpret_cast<std::byte*>(ring_words.data()); }
    std::atomic_ref<uint32_t> word(uint64_t at) { return std::atomic_ref(ring_words[at / 4]); }
    uint32_t load(uint64_t at) { return word(at).load(); }
    void store(uint64_t at, uint32_t v) { word(at).store(v); }
    uint32_t readable(uint64_t header, uint32_t mask) {
        return (load(header + kWritePos) - load(header + kReadPos)) & mask;
    }
    // Takes everything in both to-host rings, as a consumer would.
    void consume_all() {
        store(kToHost + kReadPos, load(kToHost + kWritePos));
        const uint32_t n = readable(kToHostLargeXfer, kBuffer - 1);
        store(kToHostLargeXfer + kReadPos, load(kToHostLargeXfer + kWritePos));
        store(kTransferSize, load(kTransferSize) - n);
    }

    std::vector<uint32_t> ring_words;
    std::vector<std::byte> buffer;
    std::vector<std::string> log;
    std::vector<uint32_t> at_set_version;  // the ring storage as SET_VERSION found it
    std::string fail_at;                   // the call that fails (EIO)
    std::function<void()> on_notify;       // the host's move when pinged
    uint64_t notifies = 0;
};

class FakeTransport final : public AsgTransport {
  public:
    explicit FakeTransport(FakeHost& host) : host_(host) {}
    Result<void> create_context() override {
        GF_TRY(note("create"));
        // What a host writes at create: its config, transfer_size and in_error 0.
        host_.store(kBufferSize, kBuffer);
        host_.store(kFlushInterval, kStep);
        host_.store(kTransferSize, 0);
        host_.store(kInError, 0);
        return {};
    }
    Result<Ping> command(uint64_t metadata, uint64_t size) override {
        Ping reply{};
        reply.metadata = 0;
        switch (metadata) {
            case GetRing:
                if (host_.log.empty() || host_.log.back() != "command 0") {
                    GF_TRY(note("command 0"));  // liveness probes repeat: noted once
                }
                reply.metadata = kRingOffset;
                reply.size = kRingStorageSize;
                break;
            case GetBuffer:
                GF_TRY(note("command 1"));
                reply.metadata = kBufferOffset;
                reply.size = kBuffer;
                break;
            case SetVersion:
                GF_TRY(note("command 2 size " + std::to_string(size)));
                host_.at_set_version = host_.ring_words;
                reply.size = 1;
                break;
            case NotifyAvailable:
                ++host_.notifies;
                if (host_.on_notify) {
                    host_.on_notify();
                }
                break;
        }
        return reply;
    }
    Result<void> claim_shared(uint64_t offset, uint64_t) override {
        return note("claim " + name(offset));
    }
    Result<void> unclaim_shared(uint64_t offset) override {
        return note("unclaim " + name(offset));
    }
    Result<std::byte*> map(uint64_t offset, uint64_t) override {
        GF_TRY(note("map " + name(offset)));
        return offset == kRingOffset ? host_.ring() : host_.buffer.data();
    }
    void unmap(std::byte* memory, uint64_t) override {
        (void)note(memory == host_.ring() ? "unmap ring" : "unmap buffer");
    }
    Result<void> close() override { return note("close"); }

  private:
    static std::string name(uint64_t offset) { return offset == kRingOffset ? "ring" : "buffer"; }
    Result<void> note(const std::string& call) {
        host_.log.push_back(call);
        return call == host_.fail_at ? fail(EIO) : Result<void>{};
    }
    FakeHost& host_;
};

Result<AsgStream> connect(FakeHost& host, AsgStreamOptions options = {}) {
    return AsgStream::connect(std::make_unique<FakeTransport>(host), std::move(options));
}

AsgStreamOptions short_patience() {
    AsgStreamOptions options;
    options.patience = 200ms;
    return options;
}

std::vector<std::string> tail(const std::vector<std::string>& log, size_t n) {
    return {log.end() - static_cast<std::ptrdiff_t>(std::min(n, log.size())), log.end()};
}

TEST(AsgStreamTest, ConnectMakesTheReferencesCallsInItsOrder) {
    FakeHost host;
    auto stream = connect(host);
    ASSERT_TRUE(stream);
    EXPECT_EQ(host.log, (std::vector<std::string>{"create", "command 0", "command 1", "claim ring",
                                                  "claim buffer", "map ring", "map buffer",
                                                  "command 2 size 1"}));
    EXPECT_EQ(stream->version(), 1u);
    EXPECT_EQ(stream->buffer_size(), kBuffer);
    EXPECT_EQ(stream->write_step(), kStep);
    EXPECT_EQ(stream->view_size(), kBuffer);
}

// asg_context_create before SET_VERSION: ring_buffer_init of the three headers (host_version
// 1; write_pos, read_pos, the three read counters and state 0), and not one word more; then
// transfer_mode 1 and the two positions 0.
TEST(AsgStreamTest, ConnectWritesExactlyTheReferencesHeaderWords) {
    FakeHost host;
    auto stream = connect(host);
    ASSERT_TRUE(stream);
    std::vector<uint32_t> expected(kRingStorageSize / 4);
    std::memset(expected.data(), kUntouched, kRingStorageSize);
    auto at = [&](uint64_t offset) -> uint32_t& { return expected[offset / 4]; };
    at(kBufferSize) = kBuffer;  // the host's, from create
    at(kFlushInterval) = kStep;
    at(kTransferSize) = 0;
    at(kInError) = 0;
    for (uint64_t header : {kToHost, kToHostLargeXfer, kFromHostLargeXfer}) {
        at(header + kHostVersion) = 1;
        for (uint64_t field :
             {kWritePos, kReadPos, kReadLiveCount, kReadYieldCount, kReadSleepUsCount, kState}) {
            at(header + field) = 0;
        }
    }
    ASSERT_EQ(host.at_set_version.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(host.at_set_version[i], expected[i]) << "at SET_VERSION, offset " << i * 4;
    }
    at(kTransferMode) = kModeDescriptors;
    at(kHostConsumedPos) = 0;
    at(kGuestWritePos) = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(host.ring_words[i], expected[i]) << "after connect, offset " << i * 4;
    }
}

TEST(AsgStreamTest, EachFailedConnectStepIsUndoneInTheReferencesOrder) {
    const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
        {"create", {"create", "close"}},
        {"claim ring", {"claim ring", "close"}},
        {"claim buffer", {"claim buffer", "unclaim ring", "close"}},
        {"map ring", {"map ring", "unclaim buffer", "unclaim ring", "close"}},
        {"map buffer", {"map buffer", "unmap ring", "unclaim buffer", "unclaim ring", "close"}},
        {"command 2 size 1",
         {"command 2 size 1", "unmap buffer", "unmap ring", "unclaim buffer", "unclaim ring",
          "close"}},
    };
    for (const auto& [failing, expected_tail] : cases) {
        FakeHost host;
        host.fail_at = failing;
        auto stream = connect(host);
        ASSERT_FALSE(stream) << failing;
        EXPECT_EQ(stream.error(), Error(EIO)) << failing;
        EXPECT_EQ(tail(host.log, expected_tail.size()), expected_tail) << failing;
    }
}

TEST(AsgStreamTest, TeardownDrainsThenUnmapsUnclaimsAndClosesInTheReferencesOrder) {
    FakeHost host;
    host.on_notify = [&] { host.consume_all(); };
    auto stream = connect(host);
    ASSERT_TRUE(stream);
    const std::vector<std::byte> bytes(100, std::byte{1});
    ASSERT_TRUE(stream->write(bytes.data(), bytes.size()));
    ASSERT_TRUE(stream->close());
    EXPECT_EQ(tail(host.log, 5),
              (std::vector<std::string>{"unmap ring", "unmap buffer", "unclaim ring",
                                        "unclaim buffer", "close"}));
    EXPECT_EQ(host.readable(kToHost, kBufSize - 1), 0u) << "drained first";
    EXPECT_EQ(stream->close().error(), Error(EBADF));
}

// type1Write: one ping while pushing if the host is neither CAN_CONSUME nor RENDERING, and
// one at the end unless it is RENDERING.
TEST(AsgStreamTest, Type1WritePingsByTheHostState) {
    for (auto [state, pings] :
         {std::pair{NeedNotify, 2u}, std::pair{CanConsume, 1u}, std::pair{Rendering, 0u}}) {
        FakeHost host;
        auto stream = connect(host);
        ASSERT_TRUE(stream);
        host.store(kState, state);
        std::byte* chunk = stream->alloc_buffer(10).value();
        EXPECT_EQ(chunk, host.buffer.data()) << "the cursor starts at the buffer";
        std::memset(chunk, 7, 10);
        ASSERT_TRUE(stream->commit_buffer(10));
        EXPECT_EQ(host.notifies, pings) << "state " << state;
        // One descriptor {0, 10}, and the cursor a step on.
        uint32_t descriptor[2];
        std::memcpy(descriptor, host.ring() + kToHost + kBuf, sizeof descriptor);
        EXPECT_EQ(descriptor[0], 0u);
        EXPECT_EQ(descriptor[1], 10u);
        EXPECT_EQ(stream->alloc_buffer(1).value(), host.buffer.data() + kStep);
        (void)stream->close_abruptly();
    }
}

// The cursor never runs more than buffer/step - 1 descriptors ahead of the host: the next
// commit waits (without a ping) until the host takes one.
TEST(AsgStreamTest, Type1WriteWaitsWithAtMostStepsMinusOneOutstanding) {
    FakeHost host;
    auto stream = connect(host, short_patience());
    ASSERT_TRUE(stream);
    host.store(kState, Rendering);  // no pings: the host here never consumes
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(stream->alloc_buffer(1));
        ASSERT_TRUE(stream->commit_buffer(1)) << i;
    }
    ASSERT_TRUE(stream->alloc_buffer(1));
    EXPECT_EQ(stream->commit_buffer(1).error(), Error(ETIMEDOUT)) << "a fourth waits";
    EXPECT_EQ(host.notifies, 0u);
    (void)stream->close_abruptly();
}

// writeFully pings at most once while it pushes its quarter-buffer chunks. Against a host
// that works only when pinged, a transfer over three chunks' worth leaves the guest spinning
// with the ring full and no further ping: the deadlock of issue 21 item 1, which a host must
// avoid by not sleeping while transfer_size is not 0.
TEST(AsgStreamTest, WriteFullyPingsOnceWhilePushingThenSpins) {
    FakeHost host;
    host.on_notify = [&] { host.consume_all(); };
    auto stream = connect(host, short_patience());
    ASSERT_TRUE(stream);
    const std::vector<std::byte> bytes(3 * kBuffer + 5, std::byte{3});
    auto written = stream->write_fully(bytes.data(), bytes.size());
    ASSERT_FALSE(written);
    EXPECT_EQ(written.error(), Error(ETIMEDOUT));
    EXPECT_EQ(host.notifies, 1u);
    EXPECT_EQ(host.load(kTransferMode), kModeLarge);
    EXPECT_EQ(host.readable(kToHostLargeXfer, kBuffer - 1), 3 * (kBuffer / 4))
        << "three chunks in the ring, the fourth waiting for room";
    (void)stream->close_abruptly();
}

// With a host that drains on its own (a thread, never waking: state stays NEED_NOTIFY),
// writeFully's pushes ping once, then it pings at the end and while it waits for the drain
// (ensureType3Finished), and sets transfer_mode back to 1 only once the ring is empty.
TEST(AsgStreamTest, WriteFullyWaitsForTheDrainThenReturnsToMode1) {
    FakeHost host;
    auto stream = connect(host);
    ASSERT_TRUE(stream);
    const std::vector<std::byte> bytes(3 * kBuffer + 5, std::byte{3});
    // Pings before the last chunk is in the ring: the push loop's.
    uint64_t pings_while_pushing = 0;
    host.on_notify = [&] {
        if (host.load(kToHostLargeXfer + kWritePos) < bytes.size()) {
            ++pings_while_pushing;
        }
    };
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> taken{0};
    std::thread drainer([&] {
        while (!stop) {
            const uint32_t n = host.readable(kToHostLargeXfer, kBuffer - 1);
            if (n != 0) {
                EXPECT_EQ(host.load(kTransferMode), kModeLarge);
                host.consume_all();
                taken += n;
            }
            std::this_thread::sleep_for(100us);
        }
    });
    auto written = stream->write_fully(bytes.data(), bytes.size());
    stop = true;
    drainer.join();
    ASSERT_TRUE(written) << std::strerror(written.error().value());
    EXPECT_EQ(pings_while_pushing, 1u);
    EXPECT_EQ(taken.load(), bytes.size());
    EXPECT_EQ(host.load(kTransferMode), kModeDescriptors);
    EXPECT_EQ(host.load(kTransferSize), 0u);
    ASSERT_TRUE(stream->close());
}

// writeFullyAsync: half-buffer chunks, and transfer_mode back to 1 as soon as the last chunk
// is in the ring, the host having taken nothing yet.
TEST(AsgStreamTest, WriteFullyAsyncReturnsToMode1WithoutWaitingForTheDrain) {
    FakeHost host;
    auto stream = connect(host);
    ASSERT_TRUE(stream);
    const std::vector<std::byte> bytes(kBuffer / 2, std::byte{4});
    ASSERT_TRUE(stream->write_fully_async(bytes.data(), bytes.size()));
    EXPECT_EQ(host.load(kTransferMode), kModeDescriptors);
    EXPECT_EQ(host.load(kTransferSize), kBuffer / 2);
    EXPECT_EQ(host.readable(kToHostLargeXfer, kBuffer - 1), kBuffer / 2) << "not drained";
    EXPECT_EQ(host.notifies, 2u) << "one while pushing, one at the end";
    // The next write waits for that drain first (ensureType3Finished, pinging).
    host.on_notify = [&] { host.consume_all(); };
    ASSERT_TRUE(stream->write("x", 1));
    EXPECT_EQ(host.readable(kToHostLargeXfer, kBuffer - 1), 0u);
    (void)stream->close_abruptly();
}

// readFully takes up to 512 KiB of replies into its read buffer, whatever it was asked for.
TEST(AsgStreamTest, ReadFullyTakesReplyRingBytesInto512KiBReadBuffer) {
    FakeHost host;
    auto stream = connect(host);
    ASSERT_TRUE(stream);
    const uint32_t available = 600u << 10;
    for (uint32_t i = 0; i < available; ++i) {
        host.buffer[i] = static_cast<std::byte>(i * 13);
    }
    host.store(kFromHostLargeXfer + kWritePos, available);
    std::vector<std::byte> out(10);
    ASSERT_TRUE(stream->read_fully(out.data(), out.size()));
    EXPECT_EQ(host.load(kFromHostLargeXfer + kReadPos), 512u << 10);
    EXPECT_EQ(out[9], static_cast<std::byte>(9 * 13));
    // The rest of the buffered bytes come first, then the ring's.
    std::vector<std::byte> rest(available - 10);
    ASSERT_TRUE(stream->read_fully(rest.data(), rest.size()));
    for (uint32_t i = 0; i < rest.size(); ++i) {
        ASSERT_EQ(rest[i], static_cast<std::byte>((i + 10) * 13)) << i;
    }
    EXPECT_EQ(host.load(kFromHostLargeXfer + kReadPos), available);
    (void)stream->close_abruptly();
}

// Where the reference spins forever, the stream gives an errno: in_error EIO, EXIT EPIPE,
// a host that never answers ETIMEDOUT.
TEST(AsgStreamTest, HostErrorExitAndSilenceEndWaitsWithAnErrno) {
    const std::vector<std::byte> bytes(kBuffer, std::byte{5});
    std::vector<std::byte> out(1);
    {
        FakeHost host;
        auto stream = connect(host, short_patience());
        ASSERT_TRUE(stream);
        host.store(kInError, 1);
        EXPECT_EQ(stream->write_fully(bytes.data(), bytes.size()).error(), Error(EIO));
        (void)stream->close_abruptly();
    }
    {
        FakeHost host;
        auto stream = connect(host, short_patience());
        ASSERT_TRUE(stream);
        host.store(kState, Exit);
        EXPECT_EQ(stream->read(out.data(), 1).error(), Error(EPIPE));
        EXPECT_EQ(stream->close().error(), Error(EPIPE));
    }
    {
        FakeHost host;
        auto stream = connect(host, short_patience());
        ASSERT_TRUE(stream);
        EXPECT_EQ(stream->read(out.data(), 1).error(), Error(ETIMEDOUT));
        (void)stream->close_abruptly();
    }
}

// allocBuffer over the step hands out a private buffer, which commitBuffer sends as one
// writeFully.
TEST(AsgStreamTest, AllocBufferOverTheStepGoesThroughWriteFully) {
    FakeHost host;
    host.on_notify = [&] { host.consume_all(); };
    auto stream = connect(host);
    ASSERT_TRUE(stream);
    std::byte* big = stream->alloc_buffer(kStep + 1).value();
    EXPECT_TRUE(big < host.buffer.data() || big >= host.buffer.data() + kBuffer);
    std::memset(big, 6, kStep + 1);
    uint32_t mode_seen = 0;
    host.on_notify = [&] {
        mode_seen = host.load(kTransferMode);
        host.consume_all();
    };
    ASSERT_TRUE(stream->commit_buffer(kStep + 1));
    EXPECT_EQ(mode_seen, kModeLarge);
    EXPECT_EQ(host.load(kTransferMode), kModeDescriptors);
    EXPECT_EQ(host.readable(kToHost, kBufSize - 1), 0u) << "no descriptor for it";
    EXPECT_EQ(stream->stats().bytes_written, kStep + 1);
    ASSERT_TRUE(stream->close());
}

}  // namespace
}  // namespace gf::client
