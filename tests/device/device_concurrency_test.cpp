// Register traffic from many threads at once: each thread drives its own handle like a
// driver (multi-register sequences under a driver-side lock, pings without it), while
// another thread reads registers and stats. The device must end consistent.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "device/device_test_support.h"
#include "device/host_memory_allocator_context.h"
#include "device/shared_slots_context.h"
#include "device/shared_slots_pool.h"

namespace gf::device {
namespace {

using testing::Guest;
using testing::k16GiB;
using testing::kBar1Base;

constexpr int kWorkers = 4;
constexpr int kIterations = 400;

struct Live {
    uint64_t block_offset;  // type 5: the guest block; type 6: unused
    uint64_t gpa;
    uint64_t size;
    uint32_t seed;
};

TEST(DeviceConcurrencyTest, ManyThreadsDrivingRegistersLeaveTheDeviceConsistent) {
    Guest guest;
    std::mutex driver_registers;  // the driver's register lock (docs/uapi.md#locking)
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};

    auto worker = [&](int index) {
        const bool type5 = index % 2 == 0;
        std::mt19937 rng(static_cast<uint32_t>(index) + 1);
        Guest::Handle h;
        {
            std::lock_guard lock(driver_registers);
            h = guest.open();
        }
        if (guest.create(h, type5 ? 5 : 6) != kPingOk) {
            ++failures;
            return;
        }
        std::deque<Live> live;
        auto release = [&](const Live& piece) {
            // Nobody else wrote into our memory while we held it.
            auto host = testing::host_memory(guest.device(), piece.gpa, piece.size);
            if (!host || !testing::has_pattern(*host, piece.seed)) {
                ++failures;
            }
            const uint64_t command = type5 ? uint64_t{HostMemoryAllocatorContext::Unallocate}
                                           : uint64_t{SharedSlotsContext::Unallocate};
            if (guest.ping_command(h, command, piece.gpa).metadata != kPingOk) {
                ++failures;
            }
            if (type5) {
                std::lock_guard lock(driver_registers);
                if (guest.deallocate_block(piece.block_offset) != 0) {
                    ++failures;
                }
            }
        };
        for (int i = 0; i < kIterations; ++i) {
            const uint64_t size = 4096 * (1 + rng() % 4);
            Live piece{0, 0, 0, static_cast<uint32_t>(index * 100000 + i)};
            if (type5) {
                Guest::Block block;
                {
                    std::lock_guard lock(driver_registers);
                    block = guest.allocate_block(size);
                }
                if (block.status != 0) {
                    ++failures;
                    continue;
                }
                piece.block_offset = block.offset;
                piece.gpa = kBar1Base + block.offset;
                piece.size = block.size;
                if (guest
                        .ping_command(h, HostMemoryAllocatorContext::Allocate, piece.gpa,
                                      piece.size)
                        .metadata != kPingOk) {
                    ++failures;
                    continue;
                }
            } else {
                const PingInfo got = guest.ping_command(h, SharedSlotsContext::Allocate, 0, size);
                if (got.metadata != kPingOk || got.size != size) {
                    ++failures;
                    continue;
                }
                piece.gpa = kBar1Base + got.phys_addr;
                piece.size = got.size;
            }
            auto host = testing::host_memory(guest.device(), piece.gpa, piece.size);
            if (!host) {
                ++failures;
                continue;
            }
            testing::fill_pattern(*host, piece.seed);
            live.push_back(piece);
            if (live.size() > 6 || rng() % 3 == 0) {
                release(live.front());
                live.pop_front();
            }
        }
        // Half the workers leave pieces behind for DESTROY_HANDLE to reclaim.
        while (index >= 2 && !live.empty()) {
            release(live.front());
            live.pop_front();
        }
        std::lock_guard lock(driver_registers);
        if (guest.close(h) != 0) {
            ++failures;
        }
        for (const Live& piece : live) {
            if (type5 && guest.deallocate_block(piece.block_offset) != 0) {
                ++failures;
            }
        }
    };

    // Single-register traffic with no driver lock at all.
    auto observer = [&] {
        while (!stop.load()) {
            (void)guest.read(Reg::STATUS);
            (void)guest.read(Reg::GUEST_PAGE_SIZE);
            guest.device().mmio_write(0x38, 1, 4);
            guest.write(Reg::PING, 0xABCDEF);  // an unknown handle: refused
            const auto stats = guest.device().stats();
            if (stats.area_free_bytes + stats.guest_block_bytes + stats.host_region_bytes !=
                k16GiB) {
                ++failures;
            }
        }
    };

    std::thread watcher(observer);
    std::vector<std::thread> workers;
    for (int i = 0; i < kWorkers; ++i) {
        workers.emplace_back(worker, i);
    }
    for (auto& t : workers) {
        t.join();
    }
    stop = true;
    watcher.join();

    EXPECT_EQ(failures.load(), 0);
    const auto stats = guest.device().stats();
    EXPECT_EQ(stats.handles, 0u);
    EXPECT_TRUE(stats.contexts_by_type.empty());
    EXPECT_EQ(stats.guest_blocks, 0u);
    EXPECT_EQ(stats.guest_block_bytes, 0u);
    // What may remain is the one empty slab the pool keeps.
    EXPECT_LE(stats.shared_slot_slabs, 1u);
    EXPECT_EQ(stats.host_region_bytes, stats.shared_slot_slabs * SharedSlotsPool::kSlabSize);
    EXPECT_EQ(stats.backed_bytes, stats.host_region_bytes);
    EXPECT_EQ(stats.area_free_bytes + stats.host_region_bytes, k16GiB);
}

}  // namespace
}  // namespace gf::device
