// Many threads on one file (dup'd fds) and on many files, with and without an
// unbind racing them; afterwards the driver's and the device's books agree and
// nothing is left held. No timing: threads stop on counts or on ENODEV.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "device/async_context.h"
#include "device/context_registry.h"
#include "driver/machine_fixture.h"

namespace gf::driver {
namespace {

using namespace std::chrono_literals;
using testing::kAllocate;
using testing::kHostMemoryAllocator;
using testing::kSharedSlots;
using testing::kUnallocate;
using testing::MachineTest;
using testing::make_ping;

constexpr int kThreads = 4;
constexpr int kRounds = 200;

using ConcurrencyTest = MachineTest;

TEST_F(ConcurrencyTest, ThreadsHammerOneFile) {
    auto file = open();
    ASSERT_EQ(file->ping(make_ping(kHostMemoryAllocator))->metadata, 0u);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            // Each thread claims in its own 1 GiB window so claims never collide.
            const uint64_t window = uint64_t(t) << 30;
            for (int i = 0; i < kRounds; ++i) {
                auto block = file->allocate_block(4096 * (1 + i % 4));
                if (!block) {
                    ++failures;
                    continue;
                }
                auto backed = file->ping(make_ping(kAllocate, block->offset, 4096));
                auto unbacked = file->ping(make_ping(kUnallocate, block->offset));
                if (!backed || backed->metadata != 0 || !unbacked || unbacked->metadata != 0) {
                    ++failures;
                }
                if (!file->claim_shared(window + uint64_t(i) * 4096, 4096)) {
                    ++failures;
                }
                if (i % 2 == 0 && !file->unclaim_shared(window + uint64_t(i) * 4096)) {
                    ++failures;
                }
                if (i % 3 != 0 && !file->deallocate_block(block->offset)) {
                    ++failures;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    // Kept: the blocks with i % 3 == 0 and the claims with odd i.
    const uint64_t kept_blocks = kThreads * ((kRounds + 2) / 3);
    EXPECT_EQ(driver->stats().blocks, kept_blocks);
    EXPECT_EQ(driver->stats().claims, uint64_t(kThreads) * (kRounds / 2));
    expect_books_agree();
    file.reset();
    expect_nothing_held();
}

TEST_F(ConcurrencyTest, ThreadsOnManyFiles) {
    std::atomic<int> failures{0};
    std::vector<std::shared_ptr<File>> kept(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kRounds / 4; ++i) {
                auto opened = driver->open();
                if (!opened) {
                    ++failures;
                    continue;
                }
                std::shared_ptr<File> file = std::move(*opened);
                auto a = file->allocate_block(4096);
                auto b = file->allocate_block(8192);
                auto ping = file->ping(make_ping(kHostMemoryAllocator));
                if (!a || !b || !ping || ping->metadata != 0) {
                    ++failures;
                }
                if (i + 1 == kRounds / 4) {
                    kept[t] = file;  // the last one stays open, with its blocks
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(driver->stats().open_files, uint64_t(kThreads));
    EXPECT_EQ(driver->stats().blocks, uint64_t(kThreads) * 2);
    EXPECT_EQ(device_stats().contexts_by_type[kHostMemoryAllocator], uint64_t(kThreads));
    expect_books_agree();
    kept.clear();
    expect_nothing_held();
}

TEST_F(ConcurrencyTest, UnbindWhileThreadsWork) {
    std::vector<std::shared_ptr<File>> files;
    for (int t = 0; t < kThreads; ++t) {
        files.push_back(open());
    }
    std::atomic<int> running{0};
    std::atomic<int> unexpected{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        // Half the threads share a file, half open their own as they go.
        threads.emplace_back([&, t] {
            bool counted = false;
            for (;;) {
                std::shared_ptr<File> file = files[t / 2];
                if (t % 2 == 1) {
                    auto opened = driver->open();
                    if (!opened) {
                        if (opened.error() != Error(ENODEV)) {
                            ++unexpected;
                        }
                        break;
                    }
                    file = std::move(*opened);
                }
                auto block = file->allocate_block(4096);
                if (!counted && block) {
                    ++running;
                    counted = true;
                }
                if (!block) {
                    if (block.error() != Error(ENODEV)) {
                        ++unexpected;
                    }
                    break;
                }
                auto ping = file->ping(make_ping(kHostMemoryAllocator));
                if (!ping && ping.error() != Error(ENODEV)) {
                    ++unexpected;
                }
                // Every other block is left for release or revocation to free.
                if (block->offset % 8192 == 0) {
                    auto freed = file->deallocate_block(block->offset);
                    if (!freed && freed.error() != Error(ENODEV)) {
                        ++unexpected;
                    }
                }
            }
        });
    }
    // Unbind once every thread is in full swing.
    while (running.load() < kThreads) {
        std::this_thread::yield();
    }
    driver->remove();
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(unexpected.load(), 0);
    expect_nothing_held();
    EXPECT_FALSE(machine->pci_device().is_enabled());
    files.clear();
    expect_nothing_held();
}

TEST_F(ConcurrencyTest, ReleaseRacingUnbind) {
    for (int round = 0; round < 20; ++round) {
        start();
        std::vector<std::shared_ptr<File>> files;
        for (int i = 0; i < 8; ++i) {
            files.push_back(open());
            ASSERT_TRUE(files.back()->allocate_block(4096));
        }
        std::thread closer([&] { files.clear(); });
        driver->remove();
        closer.join();
        expect_nothing_held();
    }
}

// Regression (TSan, found by the stress test's hostile peer): a VMM may PING a file's
// handle whenever it likes, so the device writes the ping page while the file fills it or
// copies its reply out. Those accesses must be atomic, not plain copies racing the device.
TEST_F(ConcurrencyTest, DevicePingsOfAHandleRaceTheFilesOwnPings) {
    auto file = open();
    ASSERT_EQ(file->ping(make_ping(testing::kSharedSlots))->metadata, 0u);
    const uint32_t handle = file->handle();
    std::thread peer([&] {
        for (int i = 0; i < kRounds * 4; ++i) {
            machine->device().write32(device::Reg::PING, handle);
        }
    });
    int failures = 0;
    for (int i = 0; i < kRounds * 4; ++i) {
        // CheckIfSharedSlotsSupported: the reply is whatever the page held last, 0 or torn.
        failures += file->ping(make_ping(3)).has_value() ? 0 : 1;
    }
    peer.join();
    EXPECT_EQ(failures, 0);
    expect_books_agree();
    file.reset();
    expect_nothing_held();
}

// A context whose thread, once asked to stop, waits for the test: a renderer that is slow to
// let go (a wedged sink), without the ASG protocol around it.
class StopGate {
  public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        changed_.notify_all();
    }
    bool stuck() {
        std::lock_guard lock(mutex_);
        return stuck_;
    }
    bool wait_stuck() {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, 20s, [&] { return stuck_; });
    }
    void hold() {
        std::unique_lock lock(mutex_);
        stuck_ = true;
        changed_.notify_all();
        changed_.wait(lock, [&] { return open_; });
        stuck_ = false;
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool open_ = false;
    bool stuck_ = false;
};

StopGate* g_stop_gate = nullptr;
constexpr uint64_t kSlowToStopType = 0x7E58;

class SlowToStopContext final : public device::AsyncContext {
  public:
    static Result<std::unique_ptr<device::Context>> create(const device::ContextParams& params) {
        return std::unique_ptr<device::Context>(new SlowToStopContext(params.services));
    }
    hw::ContextType type() const override { return static_cast<hw::ContextType>(kSlowToStopType); }
    void perform_locked(device::PingInfo& info) override GF_REQUIRES(device_lock()) {
        info.metadata = 0;
    }

  private:
    explicit SlowToStopContext(device::DeviceServices& services) : AsyncContext(services) {}
    void run() override {
        while (wait_for_work()) {
        }
        g_stop_gate->hold();
    }
};

bool eventually(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// Issue 21 item 4: the driver holds its register lock during DESTROY_HANDLE, so a close that
// waited there for a context's thread stalled every other file (and, in a VM, every vCPU).
TEST_F(ConcurrencyTest, AFileWhoseContextIsSlowToStopStallsNoOtherFileWhenClosed) {
    StopGate gate;
    g_stop_gate = &gate;
    device::ScopedContextFactoryForTesting factory(kSlowToStopType, &SlowToStopContext::create);
    pci::emulated::MachineConfig config;
    config.device.context_stop_timeout = 60s;  // longer than this test's patience
    start(config);
    auto slow = open();
    auto other = open();
    ASSERT_TRUE(slow && other);
    auto create = make_ping(kSlowToStopType);
    ASSERT_EQ(slow->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, testing::bytes_of(create)), 0);
    ASSERT_EQ(create.metadata, 0u);
    auto shared = make_ping(kSharedSlots);
    ASSERT_EQ(other->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, testing::bytes_of(shared)), 0);

    std::atomic<bool> closed{false}, pinged{false};
    std::thread closer([&] {
        slow->release();
        closed = true;
    });
    ASSERT_TRUE(gate.wait_stuck()) << "the context's thread never began to stop";
    std::thread pinger([&] {
        for (int i = 0; i < 100; ++i) {
            auto query = make_ping(3);  // CheckIfSharedSlotsSupported
            EXPECT_EQ(other->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, testing::bytes_of(query)), 0);
        }
        pinged = true;
    });
    // Both the close and the other file's PINGs complete while the thread is still stuck.
    const bool in_time = eventually([&] { return closed && pinged; });
    EXPECT_TRUE(in_time) << "closed " << closed << ", pinged " << pinged;
    EXPECT_TRUE(gate.stuck());
    gate.open();
    closer.join();
    pinger.join();
    other->release();
    ASSERT_TRUE(eventually([&] { return device_stats().stalled_contexts == 0; }));
    expect_nothing_held();
    start();  // the old device goes while the gate still exists
    g_stop_gate = nullptr;
}

}  // namespace
}  // namespace gf::driver
