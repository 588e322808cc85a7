// The mechanism for contexts with their own thread (device/context.h, async_context.h), proved
// with a test-only context type: a ping wakes its thread, DESTROY_HANDLE stops it (the device's
// reaper waits for it), reset stops it within the bound, and a thread that overruns the bound
// has lost BAR1 before it is joined.
#include "device/async_context.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/shared_memory.h"
#include "device/context_registry.h"
#include "device/device_test_support.h"

namespace gf::device {
namespace {

using namespace std::chrono_literals;
using testing::Guest;
using testing::kBar1Base;

// Not a real type: the number is unused by kContextTypes.
constexpr uint64_t kCounterType = 0x7E57;
constexpr std::chrono::milliseconds kStopBound = 2000ms;

std::atomic<int> g_live_threads{0};
std::atomic<int> g_refused_writes{0};

// Counts in BAR1: Map backs one page of its own and returns its offset; every Tick wakes the
// thread, which adds one to the counter at the start of that page.
class CounterContext final : public AsyncContext {
  public:
    enum Command : uint64_t { Map = 1, Tick = 2 };

    // Whether the thread keeps going after a stop request, until the test sets `released`
    // (false: it returns at once). Set before the thread starts.
    static inline bool overrun = false;
    static inline std::atomic<bool> released{false};

    static Result<std::unique_ptr<Context>> create(const ContextParams& params) {
        return std::unique_ptr<Context>(new CounterContext(params));
    }

    hw::ContextType type() const override { return static_cast<hw::ContextType>(kCounterType); }

    void perform_locked(PingInfo& info) override GF_REQUIRES(device_lock()) {
        Result<void> result = fail(EINVAL);
        if (info.metadata == Map && !region_) {
            result = map_locked(info);
        } else if (info.metadata == Tick && region_) {
            wake();
            result = {};
        }
        info.metadata = result ? kPingOk : kAllOnes;
    }

    std::map<uint64_t, uint64_t> allocations_locked() const override GF_REQUIRES(device_lock()) {
        if (!region_) {
            return {};
        }
        return {{*region_, services_.host_page_size()}};
    }

    void release_locked() override GF_REQUIRES(device_lock()) {
        if (region_) {
            (void)services_.remove_memory_mapping_locked(*region_, services_.host_page_size());
            (void)services_.free_shared_host_region_locked(*region_);
            region_.reset();
        }
    }

  private:
    explicit CounterContext(const ContextParams& params)
        : AsyncContext(params.services), handle_(params.handle) {}

    Result<void> map_locked(PingInfo& info) GF_REQUIRES(device_lock()) {
        const uint64_t page = services_.host_page_size();
        const uint64_t offset = GF_TRY(services_.alloc_shared_host_region_locked(page));
        if (auto mapped = services_.add_memory_mapping_locked(offset, page, handle_); !mapped) {
            (void)services_.free_shared_host_region_locked(offset);
            return mapped;
        }
        region_ = offset;
        counter_offset_.store(offset, std::memory_order_release);
        info.phys_addr = offset;
        return {};
    }

    void run() override {
        ++g_live_threads;
        while (wait_for_work()) {
            const uint64_t offset = counter_offset_.load(std::memory_order_acquire);
            std::array<std::byte, 8> bytes{};
            if (!bar1().read(offset, bytes)) {
                continue;  // untrusted: a failed read is skipped, never fatal
            }
            uint64_t value = 0;
            std::memcpy(&value, bytes.data(), sizeof value);
            ++value;
            std::memcpy(bytes.data(), &value, sizeof value);
            (void)bar1().write(offset, bytes);
        }
        if (overrun) {
            // Bounded, so a test that fails before releasing it still ends.
            const auto deadline = std::chrono::steady_clock::now() + 30s;
            while (!released && std::chrono::steady_clock::now() < deadline) {
                std::this_thread::sleep_for(1ms);
            }
            // Stopped but still running: BAR1 must be out of reach by now.
            const std::array<std::byte, 8> junk{std::byte{0xAA}};
            if (!bar1().write(counter_offset_.load(std::memory_order_acquire), junk)) {
                ++g_refused_writes;
            }
        }
        --g_live_threads;
    }

    const uint32_t handle_;
    std::optional<uint64_t> region_ GF_GUARDED_BY(device_lock());
    std::atomic<uint64_t> counter_offset_{0};  // for the thread: set once, before any Tick
};

class AsyncContextTest : public ::testing::Test {
  protected:
    static DeviceConfig config() {
        DeviceConfig c;
        c.context_stop_timeout = kStopBound;
        return c;
    }
    void SetUp() override {
        CounterContext::overrun = false;
        CounterContext::released = false;
        g_refused_writes = 0;
        ASSERT_EQ(g_live_threads.load(), 0);
    }
    void TearDown() override {
        CounterContext::released = true;
        ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 0; }));
        CounterContext::overrun = false;
    }

    // A handle with a counter context and its page; the page's BAR1 offset.
    uint64_t open_counter(Guest& guest, Guest::Handle& h) {
        h = guest.open();
        EXPECT_EQ(guest.create(h, kCounterType), kPingOk);
        const PingInfo mapped = guest.ping_command(h, CounterContext::Map);
        EXPECT_EQ(mapped.metadata, kPingOk);
        return mapped.phys_addr;
    }
    static uint64_t counter(Guest& guest, uint64_t offset) {
        auto view = testing::host_memory(guest.device(), kBar1Base + offset, 8);
        if (!view) {
            return ~uint64_t{0};
        }
        std::array<std::byte, 8> bytes{};
        copy_from_shared(bytes, *view);
        uint64_t value = 0;
        std::memcpy(&value, bytes.data(), sizeof value);
        return value;
    }

    ScopedContextFactoryForTesting factory_{kCounterType, &CounterContext::create};
};

TEST_F(AsyncContextTest, APingWakesTheThreadWhichWorksOnBar1) {
    Guest guest(config());
    Guest::Handle h;
    const uint64_t offset = open_counter(guest, h);
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 1; }));
    EXPECT_EQ(counter(guest, offset), 0u);  // it sleeps until pinged
    for (uint64_t tick = 1; tick <= 5; ++tick) {
        ASSERT_EQ(guest.ping_command(h, CounterContext::Tick).metadata, kPingOk);
        ASSERT_TRUE(testing::wait_until([&] { return counter(guest, offset) == tick; })) << tick;
    }
    const DeviceStats stats = guest.device().stats();
    EXPECT_EQ(stats.contexts_by_type.at(kCounterType), 1u);
    EXPECT_EQ(stats.backed_bytes, 4096u);
}

TEST_F(AsyncContextTest, DestroyHandleStopsTheThreadAndReleasesItsMemory) {
    Guest guest(config());
    Guest::Handle h;
    open_counter(guest, h);
    ASSERT_EQ(guest.ping_command(h, CounterContext::Tick).metadata, kPingOk);
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 1; }));

    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(guest.close(h), 0u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, kStopBound);
    // The memory is released before DESTROY_HANDLE returns; the thread ends by itself.
    const DeviceStats stats = guest.device().stats();
    EXPECT_EQ(stats.handles, 0u);
    EXPECT_EQ(stats.backed_bytes, 0u);
    EXPECT_EQ(stats.host_regions, 0u);
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 0; }));
}

TEST_F(AsyncContextTest, ResetStopsEveryThread) {
    Guest guest(config());
    std::vector<Guest::Handle> handles(3);
    for (auto& h : handles) {
        open_counter(guest, h);
    }
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 3; }));
    guest.device().reset();
    EXPECT_EQ(g_live_threads.load(), 0);
    EXPECT_EQ(guest.device().stats().handles, 0u);
    EXPECT_EQ(guest.device().stats().backed_bytes, 0u);
}

TEST_F(AsyncContextTest, TheDeviceStopsThreadsItStillHasWhenDestroyed) {
    {
        Guest guest(config());
        Guest::Handle h;
        open_counter(guest, h);
        ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 1; }));
    }
    EXPECT_EQ(g_live_threads.load(), 0);
}

TEST_F(AsyncContextTest, ManyHandlesEachWithItsOwnThread) {
    constexpr int kHandles = 48;
    Guest guest(config());
    std::vector<Guest::Handle> handles(kHandles);
    std::vector<uint64_t> offsets;
    for (auto& h : handles) {
        offsets.push_back(open_counter(guest, h));
    }
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == kHandles; }));
    for (int round = 1; round <= 3; ++round) {
        for (auto& h : handles) {
            ASSERT_EQ(guest.ping_command(h, CounterContext::Tick).metadata, kPingOk);
        }
        for (int i = 0; i < kHandles; ++i) {
            ASSERT_TRUE(testing::wait_until([&] {
                return counter(guest, offsets[i]) == static_cast<uint64_t>(round);
            })) << i;
        }
    }
    for (int i = 0; i < kHandles; i += 2) {
        EXPECT_EQ(guest.close(handles[i]), 0u);
    }
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == kHandles / 2; }));
    guest.device().reset();
    EXPECT_EQ(g_live_threads.load(), 0);
}

TEST_F(AsyncContextTest, PingsAndDestroysFromManyThreads) {
    Guest guest(config());
    std::mutex driver_registers;  // multi-register sequences, as a driver serialises them
    auto worker = [&] {
        for (int i = 0; i < 20; ++i) {
            Guest::Handle h;
            uint64_t offset = 0;
            {
                std::lock_guard lock(driver_registers);
                offset = open_counter(guest, h);
            }
            for (int tick = 0; tick < 5; ++tick) {
                guest.ping_command(h, CounterContext::Tick);  // pings need no register lock
            }
            (void)counter(guest, offset);
            std::lock_guard lock(driver_registers);
            EXPECT_EQ(guest.close(h), 0u);
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back(worker);
    }
    for (auto& thread : threads) {
        thread.join();
    }
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 0; }));
    EXPECT_EQ(guest.device().stats().backed_bytes, 0u);
}

TEST_F(AsyncContextTest, AThreadThatOverrunsTheBoundHasLostBar1AndIsJoinedLater) {
    DeviceConfig c = config();
    c.context_stop_timeout = 20ms;
    CounterContext::overrun = true;
    Guest guest(c);
    Guest::Handle h;
    const uint64_t offset = open_counter(guest, h);
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 1; }));

    EXPECT_EQ(guest.close(h), 0u);
    // It returned with the thread still held: it did not wait for it.
    EXPECT_EQ(g_live_threads.load(), 1);
    // Its memory is gone from the books at once, and its late write never lands.
    EXPECT_EQ(guest.device().stats().backed_bytes, 0u);
    CounterContext::released = true;
    ASSERT_TRUE(testing::wait_until([] { return g_refused_writes == 1; }));
    EXPECT_EQ(testing::host_memory(guest.device(), kBar1Base + offset, 8).error(), Error(EFAULT));
    ASSERT_TRUE(testing::wait_until([] { return g_live_threads == 0; }));
}

TEST_F(AsyncContextTest, WithoutItsFactoryTheTypeIsRefused) {
    Guest guest(config());
    Guest::Handle h = guest.open();
    {
        ScopedContextFactoryForTesting other(kCounterType + 1, &CounterContext::create);
        EXPECT_EQ(guest.create(h, kCounterType + 1), kPingOk);
    }
    Guest::Handle h2 = guest.open();
    EXPECT_EQ(guest.create(h2, kCounterType + 1), kAllOnes);
    EXPECT_EQ(guest.close(h), 0u);
}

}  // namespace
}  // namespace gf::device
