// Many threads on one file (dup'd fds) and on many files, with and without an
// unbind racing them; afterwards the driver's and the device's books agree and
// nothing is left held. No timing: threads stop on counts or on ENODEV.
#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "driver/machine_fixture.h"

namespace gf::driver {
namespace {

using testing::kAllocate;
using testing::kHostMemoryAllocator;
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

}  // namespace
}  // namespace gf::driver
