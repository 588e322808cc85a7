// Ending a context never stalls another handle (issue 21 item 4): DESTROY_HANDLE returns once
// the context is stopped and its memory released, while the device's reaper waits for its
// thread; a thread that overruns the bound is kept until it returns; the device's end waits
// within the bound and leaves a wedged thread running. Real ASG contexts, with a sink that
// blocks until the test releases it, or forever.
#include "device/context_reaper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "device/asg_guest.h"
#include "device/asg_sink.h"
#include "device/shared_slots_context.h"

namespace gf::device {
namespace {

using namespace std::chrono_literals;
using testing::AsgGuest;
using testing::Guest;

// Where the sinks of one test block: consume() waits until open() (never, if never called).
class Gate {
  public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        changed_.notify_all();
    }
    // Whether a consume() is blocked in here now.
    bool inside() {
        std::lock_guard lock(mutex_);
        return inside_ > 0;
    }
    int sinks_destroyed() {
        std::lock_guard lock(mutex_);
        return destroyed_;
    }
    // Waits (bounded) until a consume() is blocked in here.
    bool wait_inside(std::chrono::seconds limit) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return inside_ > 0; });
    }

    void consume() {
        std::unique_lock lock(mutex_);
        ++inside_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return open_; });
        --inside_;
    }
    void destroyed() {
        std::lock_guard lock(mutex_);
        ++destroyed_;
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool open_ = false;
    int inside_ = 0;
    int destroyed_ = 0;
};

class GatedSink final : public AsgSink {
  public:
    explicit GatedSink(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
    ~GatedSink() override { gate_->destroyed(); }
    void consume(std::span<const std::byte>, AsgReply&) override { gate_->consume(); }

  private:
    std::shared_ptr<Gate> gate_;
};

DeviceConfig gated_config(std::shared_ptr<Gate> gate, std::chrono::milliseconds bound) {
    DeviceConfig config;
    config.context_stop_timeout = bound;
    config.asg_sink_factory = [gate] { return std::make_unique<GatedSink>(gate); };
    return config;
}

// Puts the consumer of `a` into its sink: one type-1 descriptor of 64 bytes and a notify.
void block_in_sink(AsgGuest& a, Gate& gate) {
    a.push_descriptor(0, 64);
    a.notify();
    ASSERT_TRUE(gate.wait_inside(testing::kPatience)) << "the consumer never reached its sink";
}

TEST(ContextReaperTest, DestroyHandleReturnsWhileTheSinkIsBlockedAndOthersPingMeanwhile) {
    auto gate = std::make_shared<Gate>();
    // A bound longer than the test's patience: a close that waited for the thread would still
    // be waiting when the checks below give up.
    Guest guest(gated_config(gate, 60s));
    AsgGuest a(guest);
    a.connect();
    block_in_sink(a, *gate);

    // The close completes with the consumer still inside its sink: nobody waits for it.
    std::atomic<bool> closed{false};
    std::thread closer([&] {
        EXPECT_EQ(a.close(), 0u);
        closed = true;
    });
    const bool closed_while_blocked = testing::wait_until([&] { return closed.load(); });
    EXPECT_TRUE(gate->inside());
    if (!closed_while_blocked) {
        gate->open();  // let the old behaviour finish, then fail
        closer.join();
        FAIL() << "DESTROY_HANDLE waited for a blocked sink";
    }
    closer.join();
    // Its memory went back at once.
    EXPECT_EQ(guest.device().stats().asg_blocks, 0u);
    EXPECT_EQ(guest.device().stats().handles, 0u);

    // Another handle creates a context and pings, all while that sink is still blocked.
    Guest::Handle b = guest.open();
    ASSERT_EQ(
        guest.create(b, static_cast<uint64_t>(hw::ContextType::SharedSlotsHostMemoryAllocator)),
        kPingOk);
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(guest.ping_command(b, SharedSlotsContext::CheckIfSharedSlotsSupported).metadata,
                  kPingOk);
    }
    EXPECT_TRUE(gate->inside());
    EXPECT_EQ(gate->sinks_destroyed(), 0);  // kept while its thread may run
    gate->open();
    ASSERT_TRUE(testing::wait_until([&] { return gate->sinks_destroyed() == 1; }));
    EXPECT_FALSE(gate->inside());
    EXPECT_EQ(guest.close(b), 0u);
}

TEST(ContextReaperTest, AThreadPastTheBoundIsCountedAndKeptUntilItReturns) {
    auto gate = std::make_shared<Gate>();
    Guest guest(gated_config(gate, 50ms));
    AsgGuest a(guest);
    a.connect();
    block_in_sink(a, *gate);
    EXPECT_EQ(a.close(), 0u);
    ASSERT_TRUE(testing::wait_until([&] { return guest.device().stats().stalled_contexts == 1; }));
    EXPECT_EQ(gate->sinks_destroyed(), 0);
    gate->open();
    ASSERT_TRUE(testing::wait_until([&] { return guest.device().stats().stalled_contexts == 0; }));
    ASSERT_TRUE(testing::wait_until([&] { return gate->sinks_destroyed() == 1; }));
}

TEST(ContextReaperTest, ManyClosesEachReturnWhileEverySinkIsBlocked) {
    auto gate = std::make_shared<Gate>();
    Guest guest(gated_config(gate, 1000ms));
    constexpr int kContexts = 8;
    for (int i = 0; i < kContexts; ++i) {
        AsgGuest a(guest);
        a.connect();
        block_in_sink(a, *gate);
        EXPECT_EQ(a.close(), 0u);  // each returns though every earlier one still waits
    }
    EXPECT_TRUE(gate->inside());
    EXPECT_EQ(gate->sinks_destroyed(), 0);
    gate->open();
    ASSERT_TRUE(testing::wait_until([&] { return gate->sinks_destroyed() == kContexts; }));
    EXPECT_EQ(guest.device().stats().stalled_contexts, 0u);
}

TEST(ContextReaperTest, ResetStillWaitsForThreadsThatStopInTime) {
    auto gate = std::make_shared<Gate>();
    gate->open();  // sinks return at once
    Guest guest(gated_config(gate, 5000ms));
    AsgGuest a(guest);
    a.connect();
    guest.device().reset();
    EXPECT_EQ(gate->sinks_destroyed(), 1);  // destroyed before reset returned
}

TEST(ContextReaperTest, TheDeviceEndsWithinTheBoundAndLeavesAWedgedThreadRunning) {
    // Never opened, never freed: the wedged thread waits on it until the process exits.
    static auto* const gate = new std::shared_ptr<Gate>(std::make_shared<Gate>());
    const uint64_t abandoned_before = ContextReaper::abandoned_total();
    auto guest = std::make_unique<Guest>(gated_config(*gate, 100ms));
    {
        AsgGuest a(*guest);
        a.connect();
        block_in_sink(a, **gate);
        // Its close (DESTROY_HANDLE) returns at once; the reaper holds the wedged context.
    }
    {
        AsgGuest other(*guest);  // a second, idle one: it stops in time and is destroyed
        other.connect();
    }               // (guests end before the device: their streams' teardown uses its registers)
    guest.reset();  // returns at all although one sink never will: that is the bound
    EXPECT_TRUE((*gate)->inside());
    EXPECT_EQ(ContextReaper::abandoned_total(), abandoned_before + 1);
    EXPECT_EQ((*gate)->sinks_destroyed(), 1);  // the idle one's; never the wedged one's
}

}  // namespace
}  // namespace gf::device
