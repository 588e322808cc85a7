// Register traffic from many threads at once: each thread drives its own handle like a
// driver (multi-register sequences under a driver-side lock, pings without it), while
// another thread reads registers and stats. The device must end consistent.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
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

// The checks that failed, each named with its values, from any thread; the test prints them.
class FailedChecks {
  public:
    template <typename... Parts>
    void add(const Parts&... parts) {
        std::ostringstream line;
        (line << ... << parts);
        std::lock_guard lock(mutex_);
        ++count_;
        if (lines_.size() < kKept) {
            lines_.push_back(line.str());
        }
    }
    int count() const {
        std::lock_guard lock(mutex_);
        return count_;
    }
    std::string report() const {
        std::lock_guard lock(mutex_);
        std::string all = std::to_string(count_) + " failed check(s)";
        all +=
            count_ > static_cast<int>(kKept) ? ", the first " + std::to_string(kKept) + ":" : ":";
        for (const std::string& line : lines_) {
            all += "\n  " + line;
        }
        return all;
    }

  private:
    static constexpr size_t kKept = 20;
    mutable std::mutex mutex_;
    int count_ = 0;
    std::vector<std::string> lines_;
};

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
    FailedChecks failed;

    auto worker = [&](int index) {
        const bool type5 = index % 2 == 0;
        const std::string who =
            "worker " + std::to_string(index) + " (type " + (type5 ? "5" : "6") + ")";
        std::mt19937 rng(static_cast<uint32_t>(index) + 1);
        Guest::Handle h;
        {
            std::lock_guard lock(driver_registers);
            h = guest.open();
        }
        if (const uint64_t created = guest.create(h, type5 ? 5 : 6); created != kPingOk) {
            failed.add(who, ": CREATE of handle ", h.id, " answered ", created);
            return;
        }
        std::deque<Live> live;
        auto release = [&](const Live& piece) {
            // Nobody else wrote into our memory while we held it.
            auto host = testing::host_memory(guest.device(), piece.gpa, piece.size);
            if (!host) {
                failed.add(who, ": host_memory of its piece at GPA 0x", std::hex, piece.gpa,
                           std::dec, " (", piece.size, " bytes) failed before its release");
            } else if (!testing::has_pattern(*host, piece.seed)) {
                failed.add(who, ": its piece at GPA 0x", std::hex, piece.gpa, std::dec, " (",
                           piece.size, " bytes, pattern ", piece.seed,
                           ") was written by someone else");
            }
            const uint64_t command = type5 ? uint64_t{HostMemoryAllocatorContext::Unallocate}
                                           : uint64_t{SharedSlotsContext::Unallocate};
            if (const uint64_t r = guest.ping_command(h, command, piece.gpa).metadata;
                r != kPingOk) {
                failed.add(who, ": Unallocate of GPA 0x", std::hex, piece.gpa, " answered 0x", r);
            }
            if (type5) {
                std::lock_guard lock(driver_registers);
                if (const uint32_t r = guest.deallocate_block(piece.block_offset); r != 0) {
                    failed.add(who, ": DEALLOCATE_BLOCK of offset 0x", std::hex, piece.block_offset,
                               " returned status ", std::dec, r);
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
                    failed.add(who, " iteration ", i, ": ALLOCATE_BLOCK of ", size,
                               " bytes returned status ", block.status);
                    continue;
                }
                piece.block_offset = block.offset;
                piece.gpa = kBar1Base + block.offset;
                piece.size = block.size;
                if (const uint64_t r = guest
                                           .ping_command(h, HostMemoryAllocatorContext::Allocate,
                                                         piece.gpa, piece.size)
                                           .metadata;
                    r != kPingOk) {
                    failed.add(who, " iteration ", i, ": Allocate of ", piece.size,
                               " bytes at GPA 0x", std::hex, piece.gpa, " answered 0x", r);
                    continue;
                }
            } else {
                const PingInfo got = guest.ping_command(h, SharedSlotsContext::Allocate, 0, size);
                if (got.metadata != kPingOk || got.size != size) {
                    failed.add(who, " iteration ", i, ": Allocate of ", size, " bytes answered 0x",
                               std::hex, got.metadata, std::dec, " with size ", got.size);
                    continue;
                }
                piece.gpa = kBar1Base + got.phys_addr;
                piece.size = got.size;
            }
            auto host = testing::host_memory(guest.device(), piece.gpa, piece.size);
            if (!host) {
                failed.add(who, " iteration ", i, ": host_memory of its new piece at GPA 0x",
                           std::hex, piece.gpa, std::dec, " (", piece.size, " bytes) failed");
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
        if (const uint32_t r = guest.close(h); r != 0) {
            failed.add(who, ": DESTROY_HANDLE of ", h.id, " with ", live.size(),
                       " pieces left returned status ", r);
        }
        for (const Live& piece : live) {
            if (!type5) {
                continue;
            }
            if (const uint32_t r = guest.deallocate_block(piece.block_offset); r != 0) {
                failed.add(who, ": DEALLOCATE_BLOCK of offset 0x", std::hex, piece.block_offset,
                           " after DESTROY_HANDLE returned status ", std::dec, r);
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
                failed.add("observer: free ", stats.area_free_bytes, " + guest blocks ",
                           stats.guest_block_bytes, " + host regions ", stats.host_region_bytes,
                           " bytes != BAR1's ", k16GiB);
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

    EXPECT_EQ(failed.count(), 0) << failed.report();
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
