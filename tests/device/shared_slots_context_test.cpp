// Type 6 through the registers and pings (docs/contexts.md#shared-slots).
#include "device/shared_slots_context.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "device/device_test_support.h"
#include "device/shared_slots_pool.h"

namespace gf::device {
namespace {

using testing::Guest;
using testing::k16GiB;
using testing::kBar1Base;

constexpr uint64_t kSlab = SharedSlotsPool::kSlabSize;
constexpr uint64_t kFirstSlab = k16GiB - kSlab;  // carved from the top of a fresh area

class SharedSlotsTest : public ::testing::Test {
  protected:
    explicit SharedSlotsTest(DeviceConfig config = {}) : guest(config) {}
    void SetUp() override {
        h = guest.open();
        ASSERT_EQ(guest.create(h, 6), kPingOk);
    }
    // Returns the ping's answer: metadata, BAR1-relative offset in phys_addr, size.
    PingInfo allocate(Guest::Handle handle, uint64_t size) {
        return guest.ping_command(handle, SharedSlotsContext::Allocate, 0, size);
    }
    uint64_t unallocate(Guest::Handle handle, uint64_t offset) {
        // The kernel adds BAR1's base to the user's offset.
        return guest.ping_command(handle, SharedSlotsContext::Unallocate, kBar1Base + offset)
            .metadata;
    }

    Guest guest;
    Guest::Handle h{};
};

TEST_F(SharedSlotsTest, CheckIfSupportedAnswersZero) {
    EXPECT_EQ(guest.ping_command(h, SharedSlotsContext::CheckIfSharedSlotsSupported).metadata,
              kPingOk);
}

TEST_F(SharedSlotsTest, AllocateReturnsABar1OffsetAndTheAlignedSize) {
    const PingInfo got = allocate(h, 100);
    ASSERT_EQ(got.metadata, kPingOk);
    EXPECT_EQ(got.phys_addr, kFirstSlab);  // the slab's low end
    EXPECT_EQ(got.size, 4096u);
    auto host = testing::host_memory(guest.device(), kBar1Base + got.phys_addr, got.size).value();
    testing::fill_pattern(host, 5);
    EXPECT_TRUE(testing::has_pattern(
        testing::host_memory(guest.device(), kBar1Base + got.phys_addr, 4096).value(), 5));
    const auto stats = guest.device().stats();
    EXPECT_EQ(stats.host_regions, 1u);
    EXPECT_EQ(stats.host_region_bytes, kSlab);
    EXPECT_EQ(stats.backed_bytes, kSlab);
    EXPECT_EQ(stats.shared_slot_slabs, 1u);
}

TEST_F(SharedSlotsTest, SmallAllocationsShareOneSlabContiguouslyFromItsLowEnd) {
    uint64_t expected = kFirstSlab;
    for (uint64_t size : {1, 4096, 4097, 100, 65536}) {
        const PingInfo got = allocate(h, size);
        ASSERT_EQ(got.metadata, kPingOk);
        EXPECT_EQ(got.phys_addr, expected) << size;
        expected += got.size;
    }
    EXPECT_EQ(guest.device().stats().shared_slot_slabs, 1u);
}

TEST_F(SharedSlotsTest, SubAllocationIsATrueBestFit) {
    std::vector<uint64_t> at;
    for (uint64_t size : {4096, 8192, 4096, 12288, 4096}) {
        at.push_back(allocate(h, size).phys_addr);
    }
    ASSERT_EQ(unallocate(h, at[1]), kPingOk);  // an 8 KiB hole
    ASSERT_EQ(unallocate(h, at[3]), kPingOk);  // a 12 KiB hole
    EXPECT_EQ(allocate(h, 8192).phys_addr, at[1]);
    EXPECT_EQ(allocate(h, 4096).phys_addr, at[3]);         // the 12 KiB hole, its low end
    EXPECT_EQ(allocate(h, 4096).phys_addr, at[3] + 4096);  // what is left of it
}

TEST_F(SharedSlotsTest, FreedPiecesMergeAndComeBackZeroed) {
    const PingInfo a = allocate(h, 4096);
    const PingInfo b = allocate(h, 4096);
    testing::fill_pattern(
        testing::host_memory(guest.device(), kBar1Base + a.phys_addr, 8192).value(), 2);
    ASSERT_EQ(unallocate(h, a.phys_addr), kPingOk);
    ASSERT_EQ(unallocate(h, b.phys_addr), kPingOk);
    const PingInfo c = allocate(h, 8192);  // fits only if a and b merged
    EXPECT_EQ(c.phys_addr, a.phys_addr);
    EXPECT_TRUE(testing::all_zero(
        testing::host_memory(guest.device(), kBar1Base + c.phys_addr, 8192).value()));
}

TEST_F(SharedSlotsTest, OnlyTheAllocatingContextMayFree) {
    const auto other = guest.open();
    ASSERT_EQ(guest.create(other, 6), kPingOk);
    const PingInfo mine = allocate(h, 4096);
    EXPECT_EQ(unallocate(other, mine.phys_addr), kAllOnes);
    EXPECT_EQ(unallocate(h, mine.phys_addr), kPingOk);
    EXPECT_EQ(unallocate(h, mine.phys_addr), kAllOnes);  // twice
    EXPECT_EQ(unallocate(h, 12345), kAllOnes);           // never allocated
    EXPECT_EQ(guest.ping_command(h, SharedSlotsContext::Unallocate, 5).metadata,
              kAllOnes);  // below BAR1
}

TEST_F(SharedSlotsTest, BadRequestsFail) {
    EXPECT_EQ(allocate(h, 0).metadata, kAllOnes);
    EXPECT_EQ(allocate(h, ~uint64_t{0}).metadata, kAllOnes);  // rounding would wrap
    EXPECT_EQ(allocate(h, k16GiB + 1).metadata, kAllOnes);    // bigger than BAR1
    EXPECT_EQ(guest.ping_command(h, 0).metadata, kAllOnes);   // unknown command
    EXPECT_EQ(guest.ping_command(h, 4).metadata, kAllOnes);
    EXPECT_EQ(guest.device().stats().host_regions, 0u);
}

TEST_F(SharedSlotsTest, AllocationsLargerThanASlabGetTheirOwnSlab) {
    const PingInfo small = allocate(h, 4096);
    const PingInfo big = allocate(h, kSlab + 1);
    ASSERT_EQ(big.metadata, kPingOk);
    EXPECT_EQ(big.size, kSlab + 4096);
    EXPECT_EQ(big.phys_addr, kFirstSlab - big.size);
    EXPECT_EQ(guest.device().stats().host_region_bytes, kSlab + big.size);
    EXPECT_NE(small.phys_addr, big.phys_addr);
}

TEST_F(SharedSlotsTest, AtMostOneEmptySlabIsKept) {
    // Fill the first slab, spill into a second, then free everything.
    const PingInfo whole = allocate(h, kSlab);
    const PingInfo spill = allocate(h, 4096);
    ASSERT_EQ(whole.phys_addr, kFirstSlab);
    ASSERT_EQ(spill.phys_addr, kFirstSlab - kSlab);
    EXPECT_EQ(guest.device().stats().shared_slot_slabs, 2u);
    ASSERT_EQ(unallocate(h, whole.phys_addr), kPingOk);
    EXPECT_EQ(guest.device().stats().shared_slot_slabs, 2u);  // one empty: kept
    ASSERT_EQ(unallocate(h, spill.phys_addr), kPingOk);
    const auto stats = guest.device().stats();
    EXPECT_EQ(stats.shared_slot_slabs, 1u);
    EXPECT_EQ(stats.host_regions, 1u);
    EXPECT_EQ(stats.backed_bytes, kSlab);
    EXPECT_EQ(stats.area_free_bytes, k16GiB - kSlab);
}

TEST_F(SharedSlotsTest, DestroyHandleReturnsOnlyThatContextsPieces) {
    const auto other = guest.open();
    ASSERT_EQ(guest.create(other, 6), kPingOk);
    const PingInfo mine = allocate(h, 8192);
    const PingInfo theirs = allocate(other, 4096);
    testing::fill_pattern(
        testing::host_memory(guest.device(), kBar1Base + theirs.phys_addr, 4096).value(), 4);
    ASSERT_EQ(guest.close(h), 0u);
    // mine's space is free again: the next 8 KiB request gets it back.
    EXPECT_EQ(allocate(other, 8192).phys_addr, mine.phys_addr);
    EXPECT_TRUE(testing::has_pattern(
        testing::host_memory(guest.device(), kBar1Base + theirs.phys_addr, 4096).value(), 4));
    EXPECT_EQ(unallocate(other, theirs.phys_addr), kPingOk);
}

TEST_F(SharedSlotsTest, ClosingEveryHandleLeavesOneEmptySlabAtMost) {
    const auto other = guest.open();
    ASSERT_EQ(guest.create(other, 6), kPingOk);
    allocate(h, kSlab);
    allocate(other, kSlab);
    allocate(other, 4096);
    EXPECT_EQ(guest.device().stats().shared_slot_slabs, 3u);
    guest.close(h);
    guest.close(other);
    EXPECT_EQ(guest.device().stats().shared_slot_slabs, 1u);
    EXPECT_EQ(guest.device().stats().backed_bytes, kSlab);
}

class SmallBarSharedSlotsTest : public SharedSlotsTest {
  protected:
    SmallBarSharedSlotsTest() : SharedSlotsTest(DeviceConfig{.bar1_size = 2 * kSlab}) {}
};

TEST_F(SmallBarSharedSlotsTest, RunningOutOfBar1FailsThePingInsteadOfCrashing) {
    ASSERT_EQ(allocate(h, kSlab).metadata, kPingOk);
    ASSERT_EQ(allocate(h, kSlab).metadata, kPingOk);
    EXPECT_EQ(allocate(h, 4096).metadata, kAllOnes);
    // The guest's own blocks are refused too: one allocator serves both.
    EXPECT_EQ(guest.allocate_block(1).status, static_cast<uint32_t>(ENOMEM));
    EXPECT_EQ(guest.device().stats().area_free_bytes, 0u);
}

}  // namespace
}  // namespace gf::device
