// ASG (context type 0) through a real node: the client library's AsgStream (the reference
// guest's calls, spec asg.md §2.1) against goldfish-asd's consumer and its echo sink, over
// real ioctl(2) and mmap(2), in this process and in children. Round trips of every size in
// both transfer modes, many streams in many processes, clients killed mid-transfer, the
// daemon stopped under live streams, and the status counting contexts and returning to idle.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/asg_stream.h"
#include "client/session.h"
#include "hw/asg_layout.h"
#include "node/daemon_fixture.h"

namespace gf::testing {
namespace {

using namespace std::chrono_literals;
using client::AsgStream;
using client::AsgTransfer;

std::vector<std::byte> pattern(size_t n, uint32_t seed) {
    std::vector<std::byte> bytes(n);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& b : bytes) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<std::byte>(x);
    }
    return bytes;
}

// Waits (bounded) for a child and returns its exit code, or -1 (killed, or still running
// after `limit`: then it is killed).
int wait_child(pid_t pid, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(5ms);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A pipe one side writes a byte into when it is ready, and the other waits on (bounded).
class Signal {
  public:
    Signal() { EXPECT_EQ(::pipe2(fds_, O_CLOEXEC), 0); }
    ~Signal() {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    void raise() const { (void)!::write(fds_[1], "x", 1); }
    bool wait(std::chrono::milliseconds limit) const {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        ::fcntl(fds_[0], F_SETFL, O_NONBLOCK);
        char c;
        while (::read(fds_[0], &c, 1) != 1) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            std::this_thread::sleep_for(1ms);
        }
        return true;
    }

  private:
    int fds_[2] = {-1, -1};
};

class AsgNodeTest : public ServedNodeTest {
  protected:
    node::Status status() {
        auto s = read_status(state_, node_);
        EXPECT_TRUE(s);
        return s.value_or(node::Status{});
    }
    uint64_t graphics_contexts() {
        node::Status s = status();
        auto it = s.contexts.find(0);
        return it == s.contexts.end() ? 0 : it->second;
    }
    // Nothing of any stream left, and no guest input refused (these clients are correct).
    void expect_idle() {
        auto done = [](const node::Status& s) { return is_idle(s) && s.asg && s.asg->blocks == 0; };
        auto s = wait_for_status(state_, node_, done, 10s);
        ASSERT_TRUE(s);
        EXPECT_TRUE(done(*s)) << node::to_json(*s);
        ASSERT_TRUE(s->asg);
        EXPECT_EQ(s->asg->protocol_errors, 0u);
    }
    AsgStream open_stream() {
        auto stream = AsgStream::open(node_);
        EXPECT_TRUE(stream) << std::strerror(stream.error().value());
        return std::move(stream.value());
    }
    // One checked round trip.
    void expect_echo(AsgStream& stream, size_t size, AsgTransfer how, uint32_t seed) {
        const std::vector<std::byte> in = pattern(size, seed);
        std::vector<std::byte> out(size);
        auto done = client::asg_echo(stream, in.data(), out.data(), size, how);
        ASSERT_TRUE(done) << "size " << size << ": " << std::strerror(done.error().value())
                          << "; host state " << stream.host_state() << ", "
                          << stream.stats().notifies << " notifies; " << node::to_json(status());
        ASSERT_TRUE(out == in) << "size " << size << " came back different";
    }
};

TEST_F(AsgNodeTest, ConnectsAsTheReferenceDoesAndShowsInStatus) {
    AsgStream stream = open_stream();
    EXPECT_EQ(stream.version(), 1u);
    EXPECT_EQ(stream.buffer_size(), 1u << 20) << "gfxstream's default buffer";
    EXPECT_EQ(stream.write_step(), 256u << 10) << "and step";
    EXPECT_EQ(stream.ring_offset() % 4096, 0u);
    EXPECT_EQ(stream.buffer_offset() % 4096, 0u);
    // The first ring block at the top of BAR1, the first buffer block under it (spec §3.5).
    EXPECT_EQ(stream.ring_offset(), 0x3'FFFF'D000u);
    EXPECT_EQ(stream.buffer_offset(), 0x3'FEF0'0000u);
    node::Status s = status();
    EXPECT_EQ(s.contexts[0], 1u);
    EXPECT_EQ(s.claims, 2u) << "the ring and the buffer";
    EXPECT_EQ(s.open_files, 1u);
    ASSERT_TRUE(s.asg);
    EXPECT_EQ(s.asg->sink, "echo");
    EXPECT_EQ(s.asg->blocks, 2u) << "one 16 MiB block for rings, one for buffers";
    // The bytes are counted both ways.
    const uint64_t in_before = s.asg->bytes_in, out_before = s.asg->bytes_out;
    expect_echo(stream, 1000, AsgTransfer::kAuto, 5);
    auto counted = wait_for_status(
        state_, node_,
        [&](const node::Status& t) {
            return t.asg && t.asg->bytes_in == in_before + 1000 &&
                   t.asg->bytes_out == out_before + 1000;
        },
        10s);
    ASSERT_TRUE(counted && counted->asg);
    EXPECT_EQ(counted->asg->bytes_in, in_before + 1000);
    EXPECT_EQ(counted->asg->bytes_out, out_before + 1000);
    ASSERT_TRUE(stream.close());
    EXPECT_EQ(stream.close().error(), Error(EBADF)) << "closed once";
    expect_idle();
}

TEST_F(AsgNodeTest, EchoesEverySizeFromOneByteTo64MiBInBothTransferModes) {
    AsgStream stream = open_stream();
    const size_t step = stream.write_step();
    const size_t buffer = stream.buffer_size();
    const std::vector<size_t> sizes = {
        1,    2,        7,          64,     4095,       4096,           4097,      step - 1,
        step, step + 1, buffer - 1, buffer, buffer + 1, 3 * buffer + 5, 16u << 20, 64u << 20};
    uint32_t seed = 1;
    for (AsgTransfer how : {AsgTransfer::kDescriptors, AsgTransfer::kLarge, AsgTransfer::kAuto}) {
        for (size_t size : sizes) {
            if (how == AsgTransfer::kAuto && size > (4u << 20)) {
                continue;  // the same as kLarge there; both modes did 16 and 64 MiB
            }
            SCOPED_TRACE(::testing::Message()
                         << "transfer " << static_cast<int>(how) << ", size " << size);
            expect_echo(stream, size, how, seed++);
            if (::testing::Test::HasFatalFailure()) {
                return;
            }
        }
    }
    EXPECT_GT(stream.stats().bytes_written, 2 * (80u << 20));
    EXPECT_EQ(stream.stats().bytes_written, stream.stats().bytes_read);
    ASSERT_TRUE(stream.close());
    expect_idle();
}

TEST_F(AsgNodeTest, RoundTripsInterleavedAcrossStreamsOfOneProcessStayApart) {
    std::vector<AsgStream> streams;
    for (int i = 0; i < 6; ++i) {
        streams.push_back(open_stream());
    }
    EXPECT_EQ(graphics_contexts(), 6u);
    for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < streams.size(); ++i) {
            const size_t size = 1 + (round * 7919 + i * 104729) % (600u << 10);
            expect_echo(streams[i], size,
                        (round + i) % 2 ? AsgTransfer::kLarge : AsgTransfer::kDescriptors,
                        static_cast<uint32_t>(round * 100 + i));
        }
    }
    streams.clear();
    expect_idle();
}

TEST_F(AsgNodeTest, ManyStreamsInManyProcessesAtOnceAndStatusCountsThem) {
    constexpr int kChildren = 6;
    constexpr int kStreamsEach = 2;
    Signal opened, proceed;
    std::vector<pid_t> children;
    for (int c = 0; c < kChildren; ++c) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            std::vector<AsgStream> streams;
            for (int i = 0; i < kStreamsEach; ++i) {
                auto s = AsgStream::open(node_);
                if (!s) {
                    ::_exit(10);
                }
                streams.push_back(std::move(*s));
            }
            opened.raise();
            if (!proceed.wait(30s)) {
                ::_exit(11);
            }
            for (int round = 0; round < 20; ++round) {
                for (int i = 0; i < kStreamsEach; ++i) {
                    const size_t size = 1 + (round * 65537 + c * 4099 + i) % (1u << 20);
                    const std::vector<std::byte> in =
                        pattern(size, static_cast<uint32_t>(c * 1000 + round * 10 + i));
                    std::vector<std::byte> out(size);
                    const AsgTransfer how =
                        round % 3 == 0 ? AsgTransfer::kDescriptors : AsgTransfer::kAuto;
                    if (!client::asg_echo(streams[i], in.data(), out.data(), size, how)) {
                        ::_exit(12);
                    }
                    if (out != in) {
                        ::_exit(13);
                    }
                }
            }
            for (auto& s : streams) {
                if (!s.close()) {
                    ::_exit(14);
                }
            }
            ::_exit(0);
        }
        children.push_back(pid);
    }
    for (int c = 0; c < kChildren; ++c) {
        ASSERT_TRUE(opened.wait(30s)) << "child " << c << " did not connect";
    }
    node::Status busy = status();
    EXPECT_EQ(busy.contexts[0], uint64_t{kChildren * kStreamsEach});
    EXPECT_EQ(busy.claims, uint64_t{2 * kChildren * kStreamsEach});
    ASSERT_TRUE(busy.asg);
    // 12 rings fit one 16 MiB block; 12 buffers of 1 MiB fit another.
    EXPECT_EQ(busy.asg->blocks, 2u);
    for (int c = 0; c < kChildren; ++c) {
        proceed.raise();
    }
    for (pid_t pid : children) {
        EXPECT_EQ(wait_child(pid, 120s), 0) << "a child's echo failed (its exit code)";
    }
    expect_idle();
}

// A child that streams without end until it is killed.
pid_t spawn_streamer(const std::string& node, const Signal& started, AsgTransfer how, size_t size) {
    pid_t pid = ::fork();
    if (pid != 0) {
        return pid;
    }
    auto stream = AsgStream::open(node);
    if (!stream) {
        ::_exit(10);
    }
    const std::vector<std::byte> in = pattern(size, 7);
    std::vector<std::byte> out(size);
    started.raise();
    for (;;) {
        if (!client::asg_echo(*stream, in.data(), out.data(), size, how)) {
            ::_exit(12);
        }
    }
}

TEST_F(AsgNodeTest, ClientsKilledMidTransferLeaveNothingBehind) {
    // Killed while sending a large transfer, while the host replies, and mid type-1 steps.
    for (auto [how, size] : {std::pair{AsgTransfer::kLarge, size_t{64} << 20},
                             std::pair{AsgTransfer::kLarge, size_t{3} << 20},
                             std::pair{AsgTransfer::kDescriptors, size_t{8} << 20}}) {
        for (auto delay : {0ms, 3ms, 20ms}) {
            Signal started;
            pid_t pid = spawn_streamer(node_, started, how, size);
            ASSERT_GT(pid, 0);
            ASSERT_TRUE(started.wait(30s));
            std::this_thread::sleep_for(delay);
            ::kill(pid, SIGKILL);
            EXPECT_EQ(wait_child(pid, 10s), -1) << "it was streaming when killed";
        }
    }
    expect_idle();
    // The consumers of the dead clients are gone; a new stream works.
    AsgStream stream = open_stream();
    expect_echo(stream, 100000, AsgTransfer::kAuto, 3);
    ASSERT_TRUE(stream.close());
    expect_idle();
}

TEST_F(AsgNodeTest, AnotherFileClaimingTheRingGetsNoneOfIt) {
    AsgStream stream = open_stream();
    auto other = client::Session::open(node_);
    ASSERT_TRUE(other);
    auto claim = other->claim(stream.ring_offset(), hw::asg::kRingStorageSize);
    ASSERT_TRUE(claim) << "claims are bookkeeping";
    auto mapping = claim->map();
    ASSERT_TRUE(mapping);
    // Its own zero pages: not the stream's state or config.
    std::vector<std::byte> zero(hw::asg::kRingStorageSize);
    EXPECT_EQ(std::memcmp(mapping->data(), zero.data(), zero.size()), 0);
    std::memset(mapping->data(), 0xff, mapping->length());  // garbage, into its own pages
    expect_echo(stream, 5000, AsgTransfer::kAuto, 9);
    expect_echo(stream, 2u << 20, AsgTransfer::kLarge, 10);
    mapping->reset();
    ASSERT_TRUE(claim->release());
    ASSERT_TRUE(stream.close());
    { client::Session gone = std::move(*other); }
    expect_idle();
}

TEST_F(AsgNodeTest, TheDaemonStoppedUnderLiveStreamsEndsThemWithAnErrno) {
    std::vector<AsgStream> streams;
    for (int i = 0; i < 3; ++i) {
        streams.push_back(open_stream());
    }
    expect_echo(streams[0], 1000, AsgTransfer::kAuto, 1);
    // One more, in a child, streaming when the daemon goes.
    Signal started;
    pid_t pid = spawn_streamer(node_, started, AsgTransfer::kLarge, 32u << 20);
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(started.wait(30s));
    std::chrono::milliseconds took{};
    EXPECT_EQ(daemon_->stop(SIGTERM, 10s, &took), 0) << daemon_->output();
    // The child's stream ends with an errno (exit 12), never a hang.
    EXPECT_EQ(wait_child(pid, 40s), 12);
    // The streams here: every call fails with an errno (the node is gone: its pings fail,
    // and the memory the daemon bound reads zero), none waits out its patience.
    const auto start = std::chrono::steady_clock::now();
    for (AsgStream& stream : streams) {
        const std::vector<std::byte> bytes(64);
        auto written = stream.write(bytes.data(), bytes.size());
        ASSERT_FALSE(written);
        EXPECT_EQ(written.error(), Error(ENOTCONN)) << std::strerror(written.error().value());
        std::vector<std::byte> out(64);
        auto read = stream.read(out.data(), out.size());
        ASSERT_FALSE(read);
        EXPECT_EQ(read.error(), Error(ENOTCONN)) << std::strerror(read.error().value());
        EXPECT_FALSE(stream.close()) << "the files were revoked";
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 25s) << "no wait ran to its patience";
}

TEST_F(AsgNodeTest, WithoutMmapTheStreamFailsCleanlyAsTheReferenceWould) {
    ASSERT_EQ(daemon_->stop(SIGTERM, 10s), 0) << daemon_->output();
    std::string out;
    daemon_ = Daemon::start(node_, state_, {"--no-mmap"}, &out);
    ASSERT_TRUE(daemon_) << out;
    auto stream = AsgStream::open(node_);
    ASSERT_FALSE(stream);
    EXPECT_EQ(stream.error(), Error(ENODEV)) << "mmap of an ioctl-only node";
    expect_idle();  // the claims were undone and the file closed
}

TEST_F(AsgNodeTest, ASleepingConsumerCostsOneNotifyPerWrite) {
    AsgStream stream = open_stream();
    for (int i = 0; i < 20; ++i) {
        // Until the consumer has gone to sleep (bounded).
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (stream.host_state() != hw::asg::NeedNotify &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(1ms);
        }
        ASSERT_EQ(stream.host_state(), uint32_t{hw::asg::NeedNotify});
        const uint64_t before = stream.stats().notifies;
        expect_echo(stream, 64, AsgTransfer::kDescriptors, static_cast<uint32_t>(i));
        const uint64_t pings = stream.stats().notifies - before;
        // One, which also marks the consumer RENDERING. A second only if the consumer went
        // back to sleep before this thread looked again (a busy machine).
        EXPECT_GE(pings, 1u);
        EXPECT_LE(pings, 2u);
    }
    ASSERT_TRUE(stream.close());
    expect_idle();
}

// The reference guest's own timings through the node, with its default options (no re-ping
// while a large write spins): the device-level tests are in
// tests/device/asg_reference_guest_test.cpp. The guest thread is held 200 ms right after the
// first ping of each writeFully, as a preempted guest thread would be.
TEST_F(AsgNodeTest, WriteFullyHeldAfterItsPingIsNeverLeftSpinning) {
    uint64_t held_at = 0;
    client::AsgStreamOptions options;
    options.after_notify = [&](uint64_t notifies) {
        if (notifies == held_at + 1) {
            std::this_thread::sleep_for(200ms);
        }
    };
    auto stream = AsgStream::open(node_, options);
    ASSERT_TRUE(stream) << std::strerror(stream.error().value());
    uint32_t seed = 1;
    for (size_t size : {(size_t{3} << 20) + 5, size_t{16} << 20, (size_t{3} << 20) + 5}) {
        const std::vector<std::byte> in = pattern(size, ++seed);
        held_at = stream->stats().notifies;
        auto written = stream->write_fully(in.data(), in.size());
        ASSERT_TRUE(written) << "size " << size << ": " << std::strerror(written.error().value())
                             << "; host state " << stream->host_state();
        held_at = ~uint64_t{0};
        std::vector<std::byte> out(size);
        ASSERT_TRUE(stream->read_fully(out.data(), out.size())) << size;
        ASSERT_TRUE(out == in) << "size " << size << " came back different";
    }
    ASSERT_TRUE(stream->close());
    expect_idle();
}

// writeFullyAsync (the Vulkan encoder's vkQueueFlushCommandsGOOGLE): transfer_mode is 1 again
// before the host took the data; the node must take it and answer.
TEST_F(AsgNodeTest, WriteFullyAsyncIsTakenAndAnswered) {
    auto stream = AsgStream::open(node_);
    ASSERT_TRUE(stream) << std::strerror(stream.error().value());
    uint32_t seed = 1;
    for (size_t size : {size_t{1}, size_t{100} << 10, size_t{512} << 10, (size_t{3} << 20) + 5}) {
        expect_echo(*stream, size, AsgTransfer::kLargeAsync, ++seed);
        expect_echo(*stream, 64, AsgTransfer::kAuto, ++seed);
    }
    ASSERT_TRUE(stream->close());
    expect_idle();
}

}  // namespace
}  // namespace gf::testing
