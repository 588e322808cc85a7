// What the ASG consumers count (DeviceStats::asg_bytes_in and asg_bytes_out, the daemon's
// status): bytes handed to the sink and reply bytes written to the guest, zeroed by reset like
// asg_protocol_errors; and asg_config_problem, the reason create() refuses a config.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "device/address_space_device.h"
#include "device/asg_guest.h"
#include "device/device_test_support.h"

namespace gf::device {
namespace {

using namespace std::chrono_literals;
using testing::AsgGuest;
using testing::Guest;
using testing::kPatience;
using testing::pattern;

// The counters are bumped by the consumer thread just after the guest can see the effect
// (the reply's write position is stored first): wait for them.
bool wait_for_bytes(Guest& guest, uint64_t in, uint64_t out) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    for (;;) {
        const DeviceStats stats = guest.device().stats();
        if (stats.asg_bytes_in == in && stats.asg_bytes_out == out) {
            return true;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << "in " << stats.asg_bytes_in << " (want " << in << "), out "
                          << stats.asg_bytes_out << " (want " << out << ")";
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
}

TEST(AsgStatsTest, EchoRoundTripsCountBytesInAndOut) {
    Guest guest;
    EXPECT_EQ(guest.device().stats().asg_bytes_in, 0u);
    EXPECT_EQ(guest.device().stats().asg_bytes_out, 0u);
    AsgGuest a(guest);
    a.connect();
    const auto small = pattern(5000, 1);  // one type-1 chunk
    ASSERT_TRUE(a.write_small(small));
    EXPECT_EQ(a.read(small.size()), small);
    EXPECT_TRUE(wait_for_bytes(guest, 5000, 5000));

    const auto large = pattern((3u << 20) + 7, 2);  // mode 3, many chunks each way
    ASSERT_TRUE(a.write_large(large));
    EXPECT_EQ(a.read(large.size()), large);
    EXPECT_TRUE(wait_for_bytes(guest, 5000 + large.size(), 5000 + large.size()));

    // A second context adds to the same device-wide counters; closing keeps them.
    AsgGuest b(guest);
    b.connect();
    ASSERT_TRUE(b.write_small(pattern(10, 3)));
    EXPECT_EQ(b.read(10), pattern(10, 3));
    EXPECT_EQ(a.close(), 0u);
    EXPECT_EQ(b.close(), 0u);
    EXPECT_TRUE(wait_for_bytes(guest, 5010 + large.size(), 5010 + large.size()));
    EXPECT_EQ(guest.device().stats().asg_protocol_errors, 0u);

    // Reset zeroes them, as it zeroes asg_protocol_errors.
    guest.device().reset();
    EXPECT_EQ(guest.device().stats().asg_bytes_in, 0u);
    EXPECT_EQ(guest.device().stats().asg_bytes_out, 0u);
}

TEST(AsgStatsTest, DiscardCountsBytesInOnly) {
    DeviceConfig config;
    config.asg_sink = "discard";
    Guest guest(config);
    AsgGuest a(guest);
    a.connect();
    ASSERT_TRUE(a.write_small(pattern(100, 1)));
    ASSERT_TRUE(a.write_large(pattern(100'000, 2)));
    EXPECT_TRUE(wait_for_bytes(guest, 100'100, 0));
}

TEST(AsgStatsTest, ConfigProblemsNameTheirPart) {
    auto problem = [](auto change) {
        DeviceConfig config;
        change(config);
        return asg_config_problem(config);
    };
    EXPECT_EQ(problem([](DeviceConfig&) {}), AsgConfigProblem::kNone);
    EXPECT_EQ(problem([](DeviceConfig& c) { c.asg_write_step = 0; }), AsgConfigProblem::kWriteStep);
    EXPECT_EQ(problem([](DeviceConfig& c) { c.asg_buffer_size = 0; }),
              AsgConfigProblem::kBufferSize);
    EXPECT_EQ(problem([](DeviceConfig& c) {
                  c.asg_buffer_size = (16u << 20) + 4096;
                  c.asg_write_step = 4096;
              }),
              AsgConfigProblem::kBufferSize);
    EXPECT_EQ(problem([](DeviceConfig& c) { c.asg_write_step = 300'000; }),
              AsgConfigProblem::kNotWholeSteps);
    EXPECT_EQ(problem([](DeviceConfig& c) { c.asg_sink = "nope"; }), AsgConfigProblem::kSink);
    // A factory stands in for the name; one step as big as the buffer, and a full block, work.
    EXPECT_EQ(problem([](DeviceConfig& c) {
                  c.asg_sink = "nope";
                  c.asg_sink_factory = [] { return std::make_unique<DiscardAsgSink>(); };
              }),
              AsgConfigProblem::kNone);
    EXPECT_EQ(problem([](DeviceConfig& c) { c.asg_write_step = c.asg_buffer_size; }),
              AsgConfigProblem::kNone);
    EXPECT_EQ(problem([](DeviceConfig& c) {
                  c.asg_buffer_size = 16u << 20;
                  c.asg_write_step = 16u << 20;
              }),
              AsgConfigProblem::kNone);
}

}  // namespace
}  // namespace gf::device
