// Type 0, ASG (device/asg_context.h, spec asg.md §3): the guest side is written here as a real
// client drives it (spec §2.1: create, GET_RING, GET_BUFFER, ring init, SET_VERSION, transfer
// mode 1, then data through the ring and the buffer with NOTIFY_AVAILABLE pings), against the
// echo sink; hostile values are refused and counted; DESTROY_HANDLE and reset stop a busy
// consumer within the bound and leave no memory behind.
#include "device/asg_context.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "base/shared_memory.h"
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

TEST(AsgContextTest, CreateLaysOutRingAndBufferWhereTheEmulatorPutsThem) {
    Guest guest;
    AsgGuest a(guest);
    ASSERT_EQ(guest.create(a.handle(), 0), kPingOk);
    const PingInfo ring = guest.ping_command(a.handle(), GetRing);
    const PingInfo buffer = guest.ping_command(a.handle(), GetBuffer);
    // spec §3.5's worked example: fresh 16 GiB BAR1, 1 MiB buffers.
    EXPECT_EQ(ring.metadata, 0x3'FFFF'D000u);
    EXPECT_EQ(ring.size, 12288u);
    EXPECT_EQ(buffer.metadata, 0x3'FEF0'0000u);
    EXPECT_EQ(buffer.size, 1u << 20);
    const DeviceBooks books = guest.device().books();
    EXPECT_EQ(books.host_regions.size(), 2u);
    EXPECT_EQ(books.host_regions.at(0x3'FF00'0000), 16u << 20);
    EXPECT_EQ(books.host_regions.at(0x3'FE00'0000), 16u << 20);
    EXPECT_EQ(guest.device().stats().asg_blocks, 2u);
    EXPECT_EQ(guest.device().stats().contexts_by_type.at(0), 1u);

    auto mem = testing::host_memory(guest.device(), kBar1Base + ring.metadata, 12288).value();
    auto u32 = [&](uint64_t at) {
        uint32_t v;
        std::memcpy(&v, &mem[at], 4);
        return v;
    };
    for (uint64_t header : {0u, 4096u, 8192u}) {
        EXPECT_EQ(u32(header + 0), 1u) << header;  // host_version
        EXPECT_EQ(u32(header + 8), 0u);            // write_pos
        EXPECT_EQ(u32(header + 64), 0u);           // read_pos
    }
    EXPECT_EQ(u32(2176), 0u);          // state
    EXPECT_EQ(u32(2180), 1u << 20);    // buffer_size
    EXPECT_EQ(u32(2184), 256u << 10);  // flush_interval
    EXPECT_EQ(u32(2196), 1u);          // transfer_mode
    EXPECT_EQ(u32(2200), 0u);          // transfer_size
    EXPECT_EQ(u32(2204), 0u);          // in_error

    // A second context: the next pieces of the same blocks, from their high ends down.
    AsgGuest b(guest);
    ASSERT_EQ(guest.create(b.handle(), 0), kPingOk);
    EXPECT_EQ(guest.ping_command(b.handle(), GetRing).metadata, 0x3'FFFF'A000u);
    EXPECT_EQ(guest.ping_command(b.handle(), GetBuffer).metadata, 0x3'FEE0'0000u);
    EXPECT_EQ(guest.device().stats().asg_blocks, 2u);
    EXPECT_EQ(guest.device().books().handles.at(1).allocations.size(), 2u);

    EXPECT_EQ(a.close(), 0u);
    EXPECT_EQ(guest.device().stats().asg_blocks, 2u);  // b still uses both blocks
    EXPECT_EQ(b.close(), 0u);
    expect_nothing_left(guest);
}

TEST(AsgContextTest, VersionConfigNotifyAndUnknownCommands) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    // min(host 1, guest): again, harmlessly, and with other guest versions.
    EXPECT_EQ(guest.ping_command(a.handle(), SetVersion, 0, 1).size, 1u);
    EXPECT_EQ(guest.ping_command(a.handle(), SetVersion, 0, 7).size, 1u);
    EXPECT_EQ(guest.ping_command(a.handle(), SetVersion, 0, 0).size, 0u);
    // NOTIFY_AVAILABLE answers 0 at once, however often.
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(guest.ping_command(a.handle(), NotifyAvailable).metadata, 0u);
    }
    // GET_CONFIG puts the host's config back.
    a.store(kBufferSize, 12345);
    a.store(kFlushInterval, 0);
    EXPECT_EQ(guest.ping_command(a.handle(), GetConfig).metadata, 0u);
    EXPECT_EQ(a.load(kBufferSize), 1u << 20);
    EXPECT_EQ(a.load(kFlushInterval), 256u << 10);
    // Other commands leave the struct as it came.
    const PingInfo other = guest.ping_command(a.handle(), 9, 0x1234, 77);
    EXPECT_EQ(other.metadata, 9u);
    EXPECT_EQ(other.phys_addr, 0x1234u);
    EXPECT_EQ(other.size, 77u);
    // The stream still works after all that.
    const auto message = pattern(1000, 1);
    ASSERT_TRUE(a.write_small(message));
    EXPECT_EQ(a.read(message.size()), message);
    EXPECT_EQ(protocol_errors(guest), 0u);
}

TEST(AsgContextTest, EchoesSmallTransfers) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    uint32_t seed = 0;
    for (size_t size : {size_t{1}, size_t{7}, size_t{100}, size_t{4096}, size_t{256} << 10}) {
        for (int round = 0; round < 3; ++round) {
            const auto message = pattern(size, ++seed);
            ASSERT_TRUE(a.write_small(message)) << size;
            const auto reply = a.read(size);
            ASSERT_TRUE(reply) << size;
            EXPECT_EQ(*reply, message) << size;
        }
    }
    EXPECT_EQ(a.load(kHostConsumedPos), 3u * (1 + 7 + 100 + 4096 + (256u << 10)));
    EXPECT_EQ(protocol_errors(guest), 0u);
    EXPECT_EQ(a.close(), 0u);
    expect_nothing_left(guest);
}

TEST(AsgContextTest, EchoesLargeTransfersInManySteps) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    uint32_t seed = 10;
    for (size_t size : {size_t{1}, size_t{300} << 10, (size_t{3} << 20) + 123}) {
        const auto message = pattern(size, ++seed);
        ASSERT_TRUE(a.write_large(message)) << size;
        EXPECT_EQ(a.load(kTransferSize), 0u);
        const auto reply = a.read(size);
        ASSERT_TRUE(reply) << size;
        EXPECT_EQ(*reply, message) << size;
        // And a small one in between, through the same buffer.
        const auto small = pattern(50, ++seed);
        ASSERT_TRUE(a.write_small(small));
        EXPECT_EQ(a.read(50), small);
    }
    EXPECT_EQ(protocol_errors(guest), 0u);
}

// A guest that switches between type 1 and mode 3 at every write, as AddressSpaceStream does
// when small and large writes alternate: the consumer reads the mode after the position that
// shows data, so it never pairs new data with the previous transfer's mode (which dropped
// good data as a protocol error, and left the guest waiting for a reply).
TEST(AsgContextTest, AlternatingTransferModesAreNeverMistakenForProtocolErrors) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    uint32_t seed = 20;
    for (int round = 0; round < 2000; ++round) {
        const auto small = pattern(1 + round % 7, ++seed);
        ASSERT_TRUE(a.write_small(small)) << round;
        ASSERT_EQ(a.read(small.size()), small) << round;
        const auto large = pattern(1 + round % 13, ++seed);
        ASSERT_TRUE(a.write_large(large)) << round;
        ASSERT_EQ(a.read(large.size()), large) << round;
        ASSERT_EQ(protocol_errors(guest), 0u) << round;
    }
    EXPECT_EQ(a.close(), 0u);
    expect_nothing_left(guest);
}

// A guest that writes and never reads cannot grow the host's memory: once 64 MiB of replies
// wait (mode 3 holds them until the transfer ends), the consumer takes no more input, as a
// renderer blocked on a full reply ring does. The guest's writes then wait; its release stops
// the consumer and frees everything.
TEST(AsgContextTest, RepliesNeverReadStopTheConsumerTakingInputAtTheBacklogBound) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    constexpr uint64_t kCapacity = AsgConsumer::kReplyCapacity;
    constexpr uint32_t kTotal = 80u << 20;
    a.store(kTransferSize, kTotal);
    a.store(kTransferMode, 3);
    const auto chunk = pattern(a.buffer_size / 4, 77);
    // What the host takes (up to its reply capacity: input only while a whole chunk fits, so
    // it stops within a chunk of it, depending on how the guest's pieces fell), and then three
    // more chunks, which fit in the ring: each write waits (bounded) for room, so this counts
    // chunks, not time.
    const uint64_t target = kCapacity + 3 * chunk.size();
    uint64_t written = 0;
    while (written < target) {
        ASSERT_TRUE(a.write_large_bytes(chunk)) << "stuck at " << written;
        written += chunk.size();
    }
    ASSERT_TRUE(a.wait([&] {
        return guest.device().stats().asg_bytes_in > kCapacity - chunk.size();
    })) << guest.device().stats().asg_bytes_in;
    // Then nothing more: a pause gives a consumer that would take more the chance to.
    const uint64_t taken = guest.device().stats().asg_bytes_in;
    std::this_thread::sleep_for(50ms);
    const DeviceStats stats = guest.device().stats();
    EXPECT_EQ(stats.asg_bytes_in, taken);
    EXPECT_LE(stats.asg_bytes_in, kCapacity);
    EXPECT_EQ(a.load(kToHostLargeXfer + kWritePos) - a.load(kToHostLargeXfer + kReadPos),
              written - taken)
        << "the rest waits in the ring";
    EXPECT_EQ(stats.asg_bytes_out, 0u);  // no replies during a mode-3 transfer
    EXPECT_EQ(protocol_errors(guest), 0u);
    EXPECT_EQ(a.close(), 0u);
    expect_nothing_left(guest);
}

// A guest that leaves the reply ring full for a while (the consumer backs off its polls to
// 100 ms apart) still gets the rest of its reply when it reads again, and a ping ends the
// consumer's pause at once.
TEST(AsgContextTest, AReplyRingLeftFullIsServedWhenTheGuestReadsAgain) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    const auto message = pattern((size_t{3} << 20) + 5, 77);  // three times the ring
    ASSERT_TRUE(a.write_large(message));
    // The ring fills, and the guest looks away until the consumer pauses between its polls.
    testing::wait_until([&] {
        return a.load(kFromHostLargeXfer + kWritePos) - a.load(kFromHostLargeXfer + kReadPos) ==
               a.view - 1;
    });
    ASSERT_EQ(a.load(kFromHostLargeXfer + kWritePos) - a.load(kFromHostLargeXfer + kReadPos),
              a.view - 1)
        << "the reply ring filled";
    // Between polls the consumer pauses with NEED_NOTIFY published: a guest that writes
    // meanwhile pings rather than waiting out the pause.
    EXPECT_TRUE(testing::wait_until([&] { return a.load(kState) == NeedNotify; }))
        << "pausing between polls of the full ring";
    const auto first = a.read(a.view - 1);
    ASSERT_TRUE(first);
    a.notify();  // ends the pause: the rest follows without waiting out the backoff
    const auto rest = a.read(message.size() - first->size());
    ASSERT_TRUE(rest);
    std::vector<std::byte> reply = *first;
    reply.insert(reply.end(), rest->begin(), rest->end());
    EXPECT_EQ(reply, message);
    EXPECT_EQ(protocol_errors(guest), 0u);
}

TEST(AsgContextTest, ConfiguredBufferAndStep) {
    DeviceConfig config;
    config.asg_buffer_size = 48u << 10;  // not a power of two: the views use 32 KiB
    config.asg_write_step = 16u << 10;
    Guest guest(config);
    AsgGuest a(guest);
    a.connect();
    EXPECT_EQ(a.buffer_size, 48u << 10);
    EXPECT_EQ(a.step, 16u << 10);
    const auto big = pattern(200'000, 3);
    ASSERT_TRUE(a.write_small(big));
    EXPECT_EQ(a.read(big.size()), big);
    ASSERT_TRUE(a.write_large(big));
    EXPECT_EQ(a.read(big.size()), big);
    EXPECT_EQ(protocol_errors(guest), 0u);
}

TEST(AsgContextTest, UnusableConfigsAreRefused) {
    auto ram = RamGuestMemory::create(testing::kRamBase, testing::kRamSize).value();
    auto make = [&](auto change) {
        DeviceConfig config;
        change(config);
        return AddressSpaceDevice::create(config, *ram);
    };
    EXPECT_FALSE(make([](DeviceConfig& c) { c.asg_sink = "nope"; }));
    EXPECT_FALSE(make([](DeviceConfig& c) { c.asg_write_step = 0; }));
    EXPECT_FALSE(make([](DeviceConfig& c) { c.asg_write_step = 300'000; }));
    EXPECT_FALSE(make([](DeviceConfig& c) { c.asg_buffer_size = 32u << 20; }));
    EXPECT_TRUE(make([](DeviceConfig& c) { c.asg_sink = "discard"; }));
}

TEST(AsgContextTest, DiscardSinkAndACustomFactory) {
    std::atomic<uint64_t> counted{0};
    class Counting final : public AsgSink {
      public:
        explicit Counting(std::atomic<uint64_t>& n) : n_(n) {}
        void consume(std::span<const std::byte> in, AsgReply&) override { n_ += in.size(); }

      private:
        std::atomic<uint64_t>& n_;
    };
    DeviceConfig config;
    config.asg_sink_factory = [&] { return std::make_unique<Counting>(counted); };
    Guest guest(config);
    AsgGuest a(guest);
    a.connect();
    ASSERT_TRUE(a.write_small(pattern(5000, 1)));
    ASSERT_TRUE(a.write_large(pattern(2u << 20, 2)));
    // The ring is drained before the sink has seen the last chunk: wait for it.
    testing::wait_until([&] { return counted.load() >= 5000u + (2u << 20); });
    EXPECT_EQ(counted.load(), 5000u + (2u << 20));

    DeviceConfig discard;
    discard.asg_sink = "discard";
    Guest quiet(discard);
    AsgGuest b(quiet);
    b.connect();
    ASSERT_TRUE(b.write_large(pattern(100'000, 3)));
    ASSERT_TRUE(b.write_small(pattern(100, 4)));
    // Once the sink has had every byte, it has had its chance to answer.
    EXPECT_TRUE(
        testing::wait_until([&] { return quiet.device().stats().asg_bytes_in == 100'100u; }));
    EXPECT_EQ(b.load(kFromHostLargeXfer + kWritePos), 0u);  // nothing to say

    DiscardAsgSink sink;
    std::atomic<uint64_t> refused{0};
    AsgReplyQueue reply(100, refused);
    sink.consume(pattern(10, 1), reply);
    EXPECT_EQ(sink.bytes(), 10u);
    EXPECT_TRUE(reply.empty());
}

TEST(AsgContextTest, HostileValuesAreCountedAndRefused) {
    Guest guest;
    AsgGuest a(guest);
    a.connect();
    const uint32_t size = a.buffer_size;
    uint64_t expected = 0;
    auto refused = [&](const char* what) {
        ++expected;
        ASSERT_TRUE(wait_for_errors(guest, expected)) << what;
        ASSERT_TRUE(a.wait([&] { return a.to_host_empty(); })) << what;
    };
    auto still_works = [&](const char* what) {
        const auto message = pattern(33, static_cast<uint32_t>(expected));
        ASSERT_TRUE(a.write_small(message)) << what;
        ASSERT_EQ(a.read(33), message) << what;
        EXPECT_EQ(protocol_errors(guest), expected) << what;
    };
    auto expect_refused = [&](const char* what) {
        refused(what);
        still_works(what);
    };
    a.push_descriptor(size, 1);
    expect_refused("offset at the buffer's end");
    a.push_descriptor(0xFFFF'FFF0u, 0x20);
    expect_refused("offset + size wraps");
    a.push_descriptor(size - 10, 100);
    expect_refused("size past the buffer");
    a.push_descriptor(0, a.step + 1);
    expect_refused("size past the step");
    a.push_descriptor(0, 0xFFFF'FFFFu);
    expect_refused("huge size");

    a.store(kTransferMode, 2);
    a.push_descriptor(0, 16);
    refused("mode 2 (not supported)");
    a.store(kTransferMode, 1);
    still_works("mode 2 (not supported)");
    a.store(kTransferMode, 0xDEAD'BEEFu);
    a.push_descriptor(0, 16);
    refused("garbage mode");
    a.store(kTransferMode, 1);
    still_works("garbage mode");

    // write_pos jumps past the ring.
    a.store(kToHost + kWritePos, a.load(kToHost + kReadPos) + 100'000);
    a.notify();
    expect_refused("to_host write_pos jumped");
    // A torn descriptor (4 bytes).
    a.store(kToHost + kWritePos, a.load(kToHost + kReadPos) + 4);
    a.notify();
    expect_refused("half a descriptor");

    // Large-ring data outside a mode-3 transfer, or more than announced.
    a.store(kToHostLargeXfer + kWritePos, a.load(kToHostLargeXfer + kReadPos) + 64);
    a.notify();
    expect_refused("large data in mode 1");
    a.store(kTransferMode, 3);
    a.store(kTransferSize, 0);
    a.store(kToHostLargeXfer + kWritePos, a.load(kToHostLargeXfer + kReadPos) + 64);
    a.notify();
    ++expected;
    ASSERT_TRUE(wait_for_errors(guest, expected));
    a.store(kToHostLargeXfer + kWritePos, a.load(kToHostLargeXfer + kReadPos) + (64u << 20));
    a.store(kTransferSize, 1000);
    a.notify();
    ++expected;
    ASSERT_TRUE(wait_for_errors(guest, expected));
    a.store(kTransferSize, 0);
    a.store(kTransferMode, 1);

    // The guest's reply read position jumps: the reply is dropped.
    const auto message = pattern(10, 9);
    a.store(kFromHostLargeXfer + kReadPos, a.load(kFromHostLargeXfer + kWritePos) + (8u << 20));
    ASSERT_TRUE(a.write_small(message));
    ++expected;
    ASSERT_TRUE(wait_for_errors(guest, expected));
    a.store(kFromHostLargeXfer + kReadPos, a.load(kFromHostLargeXfer + kWritePos));

    // Garbage everywhere in the ring storage while the consumer runs, then a sane stream.
    std::vector<std::byte> garbage = pattern(kRingStorageSize, 77);
    const std::span<std::byte> ring = a.ring();
    for (int i = 0; i < 20; ++i) {
        copy_to_shared(ring, garbage);
        a.notify();
        std::this_thread::sleep_for(1ms);  // the consumer's chance to chew on this garbage
        testing::fill_pattern(garbage, 78 + i);
    }
    EXPECT_GT(protocol_errors(guest), expected);
    EXPECT_EQ(a.close(), 0u);
    expect_nothing_left(guest);

    // A fresh stream on the same device works.
    AsgGuest b(guest);
    b.connect();
    const auto hello = pattern(500, 5);
    ASSERT_TRUE(b.write_small(hello));
    EXPECT_EQ(b.read(500), hello);
}

// The bound, with a consumer busy in a large transfer (the guest stopped half way) or stuck
// with a reply the guest never reads.
TEST(AsgContextTest, DestroyHandleStopsABusyConsumerWithinTheBoundAndFreesItsMemory) {
    DeviceConfig config;
    config.context_stop_timeout = 2000ms;
    Guest guest(config);
    AsgGuest half(guest);
    half.connect();
    ASSERT_TRUE(half.write_large(pattern(2u << 20, 1),
                                 /*finish=*/false));
    half.store(kTransferSize, 6u << 20);  // the guest promised more than it sends
    AsgGuest stuck(guest);
    stuck.connect();
    ASSERT_TRUE(stuck.write_large(pattern(3u << 20, 2)));  // 3 MiB echo, never read
    // Both busy: one waiting for bytes the guest promised, one on a full reply ring.
    EXPECT_TRUE(testing::wait_until([&] {
        return half.large_empty() && stuck.load(kFromHostLargeXfer + kWritePos) -
                                             stuck.load(kFromHostLargeXfer + kReadPos) ==
                                         stuck.view - 1;
    }));
    EXPECT_NE(half.load(kTransferSize), 0u);

    EXPECT_EQ(half.close(), 0u);
    EXPECT_EQ(stuck.close(), 0u);
    // Both threads stopped within the bound: none was left behind as a straggler.
    EXPECT_EQ(guest.device().stats().stalled_contexts, 0u);
    expect_nothing_left(guest);
}

TEST(AsgContextTest, ResetStopsConsumersWithinTheBoundAndFreesTheirMemory) {
    Guest guest;
    AsgGuest busy(guest);
    busy.connect();
    ASSERT_TRUE(busy.write_large(pattern(2u << 20, 1)));  // reply never read
    AsgGuest idle(guest);
    idle.connect();  // its consumer runs from SET_VERSION on
    // The busy one is blocked on its full reply ring.
    EXPECT_TRUE(testing::wait_until([&] {
        return busy.load(kFromHostLargeXfer + kWritePos) -
                   busy.load(kFromHostLargeXfer + kReadPos) ==
               busy.view - 1;
    }));
    guest.device().reset();
    EXPECT_EQ(guest.device().stats().stalled_contexts, 0u);
    expect_nothing_left(guest);
    EXPECT_EQ(guest.device().stats().handles, 0u);
}

TEST(AsgContextTest, ManyContextsAtOnce) {
    Guest guest;
    constexpr int kContexts = 12;
    std::vector<std::unique_ptr<AsgGuest>> streams;
    for (int i = 0; i < kContexts; ++i) {
        streams.push_back(std::make_unique<AsgGuest>(guest));
        streams.back()->connect();
    }
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kContexts; ++i) {
        threads.emplace_back([&, i] {
            AsgGuest& s = *streams[i];
            bool ok = true;
            for (int round = 0; round < 4 && ok; ++round) {
                const auto small = pattern(100 + i, i * 10 + round);
                ok = s.write_small(small) && s.read(small.size()) == small;
                const auto large = pattern((300u << 10) + i, i * 10 + round + 5);
                ok = ok && s.write_large(large) && s.read(large.size()) == large;
            }
            good += ok ? 1 : 0;
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(good.load(), kContexts);
    EXPECT_EQ(guest.device().stats().contexts_by_type.at(0), static_cast<uint64_t>(kContexts));
    EXPECT_EQ(protocol_errors(guest), 0u);
    for (auto& s : streams) {
        EXPECT_EQ(s->close(), 0u);
    }
    expect_nothing_left(guest);
}

}  // namespace
}  // namespace gf::device
