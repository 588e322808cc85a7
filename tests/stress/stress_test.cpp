// In-process stress: kThreads threads run random operations over kFiles file slots of one
// driver on the emulated device (allocate, deallocate, type-5/6 Allocate and Unallocate,
// claim and unclaim, closing and reopening files under other threads' feet, ioctls with bad
// arguments). Bad arguments must fail with their errno (or ENODEV when the file was closed
// meanwhile). At the end the invariants hold exactly, the driver's stats equal the device's,
// and closing everything leaves the device as it started. Variants inject device faults, or
// add a hostile VMM peer thread. No timing: threads stop on counts.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/mutex.h"
#include "driver/machine_fixture.h"
#include "stress/invariants.h"

namespace gf::stress {
namespace {

using device::DeviceFault;
using device::FaultSchedule;
using driver::File;
using driver::testing::bytes_of;
using driver::testing::kAllocate;
using driver::testing::kHostMemoryAllocator;
using driver::testing::kSharedSlots;
using driver::testing::kUnallocate;
using driver::testing::make_ping;

constexpr int kThreads = 8;
constexpr int kFiles = 64;
// The same count in release and sanitized builds: ASan and TSan runs take well under a
// second on 2 cores, so nothing is scaled down.
constexpr int kOpsPerThread = 10'000;
constexpr int kPeerCommands = 5'000;
// A 1 GiB BAR1 fills up now and then (16 type-6 slabs), so ENOMEM paths run too.
constexpr uint64_t kBar1Size = 1ull << 30;

struct Slot {
    Mutex mutex;
    std::shared_ptr<File> file GF_GUARDED_BY(mutex);
};

class StressTest : public driver::testing::MachineTest {
  protected:
    void SetUp() override {
        pci::emulated::MachineConfig config;
        config.device.bar1_size = kBar1Size;
        start(config);
    }

    // The slot's file, opening one if the slot is empty (nullptr if open fails).
    std::shared_ptr<File> file_in(Slot& slot) {
        MutexLock lock(slot.mutex);
        if (!slot.file) {
            auto opened = driver->open();
            if (opened) {
                slot.file = std::move(*opened);
            }
        }
        return slot.file;
    }

    // Swaps in a fresh file; the old one is released once no thread holds it any more.
    void reopen(Slot& slot) {
        std::shared_ptr<File> old;
        MutexLock lock(slot.mutex);
        old = std::move(slot.file);
        if (old) {
            old->release();  // other threads still holding it now get ENODEV
        }
        auto opened = driver->open();
        if (opened) {
            slot.file = std::move(*opened);
        }
    }

    // One thread's operations; returns how many bad-argument calls got the wrong errno.
    int run_thread(unsigned seed, int ops, bool faults, bool peer) {
        std::mt19937_64 rng(seed);
        auto pick = [&](uint64_t n) { return rng() % n; };
        int wrong = 0;
        // A bad-argument call must fail with `want`, or ENODEV if its file was closed.
        auto expect_errno = [&](int got, int want) {
            if (got != -want && got != -ENODEV) {
                ++wrong;
                std::fprintf(stderr, "expected -%d, got %d\n", want, got);
            }
        };
        for (int i = 0; i < ops; ++i) {
            Slot& slot = slots[pick(kFiles)];
            const unsigned op = static_cast<unsigned>(pick(100));
            operations.fetch_add(1, std::memory_order_relaxed);
            if (op < 3) {
                reopen(slot);
                continue;
            }
            std::shared_ptr<File> file = file_in(slot);
            if (!file) {
                continue;  // guest RAM or BAR1 exhausted for the moment
            }
            const driver::FileBooks mine = file->books();
            auto any_block = [&]() -> std::optional<std::pair<uint64_t, uint64_t>> {
                if (mine.blocks.empty()) {
                    return std::nullopt;
                }
                auto it = mine.blocks.begin();
                std::advance(it, pick(mine.blocks.size()));
                return *it;
            };
            if (op < 20) {
                (void)file->allocate_block(1 + pick(16 * 4096));
            } else if (op < 30) {
                if (auto block = any_block()) {
                    (void)file->deallocate_block(block->first);
                }
            } else if (op < 42) {
                // Type 5: back part of a block, sometimes give it back at once.
                (void)file->ping(make_ping(kHostMemoryAllocator));
                if (auto block = any_block()) {
                    const uint64_t at = block->first + 4096 * pick(block->second / 4096);
                    (void)file->ping(make_ping(kAllocate, at, 4096));
                    if (pick(2) == 0) {
                        (void)file->ping(make_ping(kUnallocate, at));
                    }
                }
            } else if (op < 56) {
                // Type 6: a piece, claimed as the AOSP library does; later given back.
                (void)file->ping(make_ping(kSharedSlots));
                if (pick(3) != 0) {
                    auto piece = file->ping(make_ping(kAllocate, 0, 1 + pick(64 * 4096)));
                    if (piece && piece->metadata == 0) {
                        (void)file->claim_shared(piece->offset, piece->size);
                    }
                } else if (!mine.claims.empty()) {
                    auto it = mine.claims.begin();
                    std::advance(it, pick(mine.claims.size()));
                    (void)file->ping(make_ping(kUnallocate, it->first));
                    (void)file->unclaim_shared(it->first);
                }
            } else if (op < 66) {
                // Claims of arbitrary ranges inside BAR1 (overlaps are refused).
                const uint64_t at = pick(kBar1Size / 4096) * 4096;
                if (pick(2) == 0) {
                    (void)file->claim_shared(at, 4096 * (1 + pick(8)));
                } else {
                    (void)file->unclaim_shared(at);
                }
            } else if (op < 90) {
                // Bad arguments, each with its errno.
                uint64_t word = pick(kBar1Size) | 1;  // no block or claim starts at an odd offset
                switch (pick(6)) {
                    case 0:
                        expect_errno(file->ioctl(0xC0184700 + static_cast<uint32_t>(pick(10)),
                                                 bytes_of(word)),
                                     ENOTTY);
                        break;
                    case 1:
                        expect_errno(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, bytes_of(word)),
                                     EINVAL);
                        break;
                    case 2:
                        expect_errno(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK,
                                                 bytes_of(word)),
                                     ENXIO);
                        break;
                    case 3:
                        expect_errno(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED,
                                                 bytes_of(word)),
                                     ENXIO);
                        break;
                    case 4: {
                        goldfish_address_space_claim_shared claim{word, 0};
                        expect_errno(
                            file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, bytes_of(claim)),
                            EINVAL);
                        break;
                    }
                    default: {
                        goldfish_address_space_allocate_block block{};
                        const int got = file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK,
                                                    bytes_of(block));
                        // Size 0: the host refuses it, unless a fault first reports a
                        // STATUS above INT_MAX, or a peer's BLOCK_SIZE write lands between
                        // the driver's and its COMMAND.
                        if (!peer) {
                            expect_errno(got, faults && got == -EIO ? EIO : EINVAL);
                        }
                        break;
                    }
                }
            } else {
                // Pings with commands no context knows, and stats read concurrently.
                (void)file->ping(make_ping(7 + pick(1000), pick(kBar1Size)));
                (void)driver->stats();
            }
        }
        return wrong;
    }

    void run(int ops_per_thread, bool faults, bool peer = false) {
        std::atomic<int> wrong{0};
        std::atomic<bool> done{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back(
                [&, t] { wrong += run_thread(0x5eed + t, ops_per_thread, faults, peer); });
        }
        // The hostile peer issues its commands while the workers run, and at least
        // kPeerCommands of them (a count, not a time).
        std::thread peer_thread;
        if (peer) {
            peer_thread = std::thread([&] {
                std::mt19937_64 rng(0xbad);
                for (int i = 0; i < kPeerCommands || !done.load(std::memory_order_relaxed); ++i) {
                    peer_command(rng);
                }
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
        done = true;
        if (peer_thread.joinable()) {
            peer_thread.join();
        }
        EXPECT_EQ(wrong.load(), 0);
    }

    // One command of a VMM peer, straight into the device's registers: it races the
    // driver's register sequences, which the driver's lock does not protect from the peer.
    void peer_command(std::mt19937_64& rng) {
        using device::Command;
        using device::Reg;
        auto& device = machine->device();
        const device::DeviceBooks s = device.books();
        auto write64 = [&](Reg low, uint64_t value) {
            device.write32(low, static_cast<uint32_t>(value));
            device.write32(static_cast<Reg>(static_cast<uint32_t>(low) + 4),
                           static_cast<uint32_t>(value >> 32));
        };
        auto command = [&](Command c) { device.write32(Reg::COMMAND, static_cast<uint32_t>(c)); };
        switch (rng() % 7) {
            case 0:
                if (!s.handles.empty()) {
                    device.write32(Reg::HANDLE, s.handles[rng() % s.handles.size()].handle);
                    command(Command::DESTROY_HANDLE);
                }
                break;
            case 1:
                if (!s.guest_blocks.empty()) {
                    auto it = s.guest_blocks.begin();
                    std::advance(it, rng() % s.guest_blocks.size());
                    write64(Reg::BLOCK_OFFSET_LOW, it->first);
                    command(Command::DEALLOCATE_BLOCK);
                }
                break;
            case 2:
                if (s.handles.size() < 256) {
                    command(Command::GEN_HANDLE);
                }
                break;
            case 3:
                write64(Reg::BLOCK_SIZE_LOW, 4096 * (1 + rng() % 4));
                command(Command::ALLOCATE_BLOCK);
                break;
            case 4:
                if (!s.handles.empty()) {
                    device.write32(Reg::PING, s.handles[rng() % s.handles.size()].handle);
                }
                break;
            case 5:
                // Point a handle at any page of guest RAM: another file's ping page, a free one.
                if (!s.handles.empty()) {
                    const auto& ram = machine->config();
                    device.write32(Reg::HANDLE, s.handles[rng() % s.handles.size()].handle);
                    write64(Reg::PING_INFO_ADDR_LOW,
                            ram.ram_base + 4096 * (rng() % (ram.ram_size / 4096)));
                    command(Command::TELL_PING_INFO_ADDR);
                }
                break;
            default:
                device.write32(static_cast<Reg>(4 * (rng() % 14)), static_cast<uint32_t>(rng()));
                break;
        }
        peer_commands.fetch_add(1, std::memory_order_relaxed);
    }

    // Exact invariants over the files left open, then nothing held once they are closed.
    void check_end(bool peer = false) {
        std::vector<std::shared_ptr<File>> open;
        for (Slot& slot : slots) {
            MutexLock lock(slot.mutex);
            if (slot.file) {
                open.push_back(slot.file);
            }
        }
        const Violations violations = check(*machine, *driver, open, CheckOptions{.exact = !peer});
        EXPECT_TRUE(violations.empty()) << describe(violations);
        if (!peer && driver->stats().abandoned_blocks == 0) {
            expect_books_agree();
        }
        open.clear();
        for (Slot& slot : slots) {
            MutexLock lock(slot.mutex);
            slot.file.reset();
        }
        if (peer) {
            clean_up_as_peer(machine->device());
        }
        const Violations quiescent = check_quiescent(*machine, *driver, free_pages_at_start,
                                                     QuiescentOptions{.peer_cleaned_up = peer});
        EXPECT_TRUE(quiescent.empty()) << describe(quiescent);
    }

    Slot slots[kFiles];
    std::atomic<uint64_t> operations{0};
    std::atomic<uint64_t> peer_commands{0};
};

TEST_F(StressTest, RandomOperationsOnManyFilesFromManyThreads) {
    run(kOpsPerThread, false);
    std::printf("stress: %llu operations on %d threads\n",
                static_cast<unsigned long long>(operations.load()), kThreads);
    EXPECT_EQ(driver->stats().abandoned_blocks, 0u);
    check_end();
}

// The same with the device failing now and then: every failure must leave nothing half done.
TEST_F(StressTest, RandomOperationsWithInjectedFaults) {
    auto& device = machine->device();
    device.inject(DeviceFault::kBlockAllocation, FaultSchedule{.every = 7, .times = 0});
    device.inject(DeviceFault::kHostMemory, FaultSchedule{.every = 5, .times = 0});
    device.inject(DeviceFault::kStatusAboveIntMax, FaultSchedule{.every = 11, .times = 0});
    device.inject(DeviceFault::kGenHandle, FaultSchedule{.every = 13, .times = 0});
    device.inject(DeviceFault::kPingInfoReadBack, FaultSchedule{.every = 17, .times = 0});
    run(kOpsPerThread / 2, true);
    const uint64_t fired = device.stats().faults_fired;
    std::printf("stress with faults: %llu operations, %llu faults injected\n",
                static_cast<unsigned long long>(operations.load()),
                static_cast<unsigned long long>(fired));
    EXPECT_GT(fired, 0u);
    device.clear_faults();
    check_end();
}

// The same with a VMM peer writing registers behind the driver's back on another thread:
// the device's books stay self-consistent, the driver's stay its own, and once every file
// is closed and the peer undoes its leftovers, nothing is held.
TEST_F(StressTest, RandomOperationsWithAHostilePeer) {
    run(kOpsPerThread / 2, false, true);
    std::printf("stress with a peer: %llu operations, %llu peer commands\n",
                static_cast<unsigned long long>(operations.load()),
                static_cast<unsigned long long>(peer_commands.load()));
    EXPECT_GT(peer_commands.load(), 0u);
    check_end(true);
}

}  // namespace
}  // namespace gf::stress
