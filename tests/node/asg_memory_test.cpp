// The daemon's memory under ASG traffic whose replies are read late (issue 21 item 3): a guest
// that keeps about 1 MiB of echo unread while it goes on writing 64 KiB and reading 64 KiB.
// The context's reply memory is bounded, so the daemon's anonymous memory stays flat, and no
// byte is refused or lost from the books (every byte in is sent back or still queued). The
// bytes read back are not compared: the guest's chunks and the host's replies share one buffer,
// so a guest that writes with replies unread overwrites them (the protocol's limit).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "client/asg_stream.h"
#include "node/daemon_fixture.h"

// ASan keeps freed memory in its quarantine (256 MiB by default), so under it the daemon's
// RssAnon follows what was freed, not what is held: there only the books are checked.
#if defined(__SANITIZE_ADDRESS__)
#define GF_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GF_UNDER_ASAN 1
#endif
#endif

namespace gf::testing {
namespace {

using namespace std::chrono_literals;
using client::AsgStream;
using client::AsgTransfer;

// The process's anonymous resident memory (heap and private mappings), from /proc.
std::optional<uint64_t> rss_anon_bytes(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("RssAnon:", 0) == 0) {
            return std::stoull(line.substr(8)) * 1024;  // "RssAnon:   1234 kB"
        }
    }
    return std::nullopt;
}

class AsgMemoryTest : public ServedNodeTest {};

TEST_F(AsgMemoryTest, RepliesReadLateKeepTheDaemonFlat) {
    constexpr size_t kPiece = 64u << 10;
    constexpr size_t kLag = 1u << 20;
    constexpr uint64_t kTraffic = 256u << 20;
    auto opened = AsgStream::open(node_);
    ASSERT_TRUE(opened) << std::strerror(opened.error().value());
    AsgStream& stream = *opened;
    const std::vector<std::byte> piece(kPiece, std::byte{0x5a});
    std::vector<std::byte> sink(kPiece);
    uint64_t written = 0;
    uint64_t read = 0;
    auto one_round = [&] {
        auto w = stream.write(piece.data(), piece.size(), AsgTransfer::kDescriptors);
        ASSERT_TRUE(w) << "write at " << written << ": " << std::strerror(w.error().value());
        written += piece.size();
        if (written - read > kLag) {
            auto r = stream.read(sink.data(), sink.size());
            ASSERT_TRUE(r) << "read at " << read << ": " << std::strerror(r.error().value());
            read += *r;
        }
    };
    // Warm up until the lag is there and the daemon's allocations have settled.
    while (written < 8 * kLag) {
        ASSERT_NO_FATAL_FAILURE(one_round());
    }
    const auto before = rss_anon_bytes(daemon_->pid());
    ASSERT_TRUE(before);
    while (written < kTraffic) {
        ASSERT_NO_FATAL_FAILURE(one_round());
    }
    const auto after = rss_anon_bytes(daemon_->pid());
    ASSERT_TRUE(after);
    std::printf("daemon RssAnon %llu -> %llu bytes over %llu bytes of traffic\n",
                static_cast<unsigned long long>(*before), static_cast<unsigned long long>(*after),
                static_cast<unsigned long long>(kTraffic - 8 * kLag));
    // The old reply buffer kept every byte until it drained: it grew by the traffic.
#ifndef GF_UNDER_ASAN
    EXPECT_LT(*after, *before + (16u << 20))
        << "daemon RssAnon grew from " << *before << " to " << *after << " over "
        << (kTraffic - 8 * kLag) << " bytes of traffic";
#endif

    auto s = wait_for_status(
        state_, node_,
        [&](const node::Status& st) { return st.asg && st.asg->bytes_in == written; }, 10s);
    ASSERT_TRUE(s && s->asg);
    EXPECT_EQ(s->asg->bytes_in, written);
    EXPECT_EQ(s->asg->reply_refused, 0u);
    EXPECT_EQ(s->asg->protocol_errors, 0u);
    EXPECT_GE(s->asg->bytes_out, read);
    EXPECT_LE(s->asg->bytes_out, written);
    ASSERT_TRUE(stream.close());
}

}  // namespace
}  // namespace gf::testing
