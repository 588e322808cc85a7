// Each fault the device model can inject reaches the caller as a clear errno (open: EINVAL;
// allocate: ENOMEM or EIO; ping: metadata ~0 or EIO) and leaves nothing half done: the
// shared invariants hold exactly after every failure, and closing everything leaves the
// device as it started.
#include <cerrno>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "driver/machine_fixture.h"
#include "stress/invariants.h"

namespace gf::stress {
namespace {

using device::DeviceFault;
using device::FaultSchedule;
using driver::File;
using driver::testing::kAllocate;
using driver::testing::kHostMemoryAllocator;
using driver::testing::kPingFailed;
using driver::testing::kSharedSlots;
using driver::testing::kUnallocate;
using driver::testing::make_ping;

class FaultTest : public driver::testing::MachineTest {
  protected:
    device::AddressSpaceDevice& device() { return machine->device(); }

    // Every invariant holds exactly for the files this test holds.
    void expect_consistent() {
        std::vector<std::shared_ptr<File>> open;
        for (const auto& file : files) {
            if (file) {
                open.push_back(file);
            }
        }
        const Violations violations = check(*machine, *driver, open);
        EXPECT_TRUE(violations.empty()) << describe(violations);
    }

    void TearDown() override {
        expect_consistent();
        device().clear_faults();
        files.clear();
        const Violations violations = check_quiescent(*machine, *driver, free_pages_at_start);
        EXPECT_TRUE(violations.empty()) << describe(violations);
    }

    std::shared_ptr<File> keep(std::shared_ptr<File> file) {
        files.push_back(file);
        return file;
    }

    uint64_t fired() const { return device_stats().faults_fired; }

    std::vector<std::shared_ptr<File>> files;
};

TEST_F(FaultTest, GenHandleInvalidFailsOpenWithEinval) {
    device().inject(DeviceFault::kGenHandle);
    auto opened = driver->open();
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().value(), EINVAL);
    EXPECT_EQ(fired(), 1u);
    EXPECT_EQ(device_stats().handles, 0u);
    EXPECT_EQ(machine->free_dma_pages(), free_pages_at_start);
    // One shot: the next open works.
    ASSERT_TRUE(keep(open()));
}

TEST_F(FaultTest, WrongPingAddressReadBackFailsOpenAndDestroysTheHandle) {
    device().inject(DeviceFault::kPingInfoReadBack);
    auto opened = driver->open();
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().value(), EINVAL);
    EXPECT_EQ(fired(), 1u);
    // The device had recorded the page; the driver's guard destroyed the handle.
    EXPECT_EQ(device_stats().handles, 0u);
    EXPECT_EQ(machine->free_dma_pages(), free_pages_at_start);
    ASSERT_TRUE(keep(open()));
}

// Regression: a refused TELL_PING_INFO_ADDR read back the address it refused, so a driver
// (ours, Linux) that checks only the read-back opened a file whose pings all went nowhere.
TEST_F(FaultTest, UnreadablePingPageAtOpenFailsWithEinval) {
    const auto& config = machine->config();
    device().refuse_guest_memory(config.ram_base, config.ram_size);
    auto opened = driver->open();
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().value(), EINVAL);
    EXPECT_EQ(device_stats().handles, 0u);
    EXPECT_EQ(machine->free_dma_pages(), free_pages_at_start);
    device().clear_faults();
    ASSERT_TRUE(keep(open()));
}

TEST_F(FaultTest, PingPageThatBecomesUnreadableFailsPingsWithEio) {
    auto file = keep(open());
    const auto page = file->books().ping_page_phys;
    ASSERT_TRUE(page);
    device().refuse_guest_memory(*page, 4096);
    auto create = file->ping(make_ping(kHostMemoryAllocator));
    ASSERT_FALSE(create);
    EXPECT_EQ(create.error().value(), EIO);
    // Nothing reached the device: no context was made.
    EXPECT_TRUE(device_stats().contexts_by_type.empty());
    expect_consistent();
    device().clear_faults();
    auto again = file->ping(make_ping(kHostMemoryAllocator));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->metadata, 0u);
}

TEST_F(FaultTest, RawPingOnAnUnreadablePageIsRefusedAndLeavesThePageAlone) {
    auto file = keep(open());
    const auto f = file->books();
    device().refuse_guest_memory(*f.ping_page_phys, 4096);
    const uint64_t refused = device_stats().refused_pings;
    device().write32(device::Reg::PING, f.handle);
    EXPECT_EQ(device_stats().refused_pings, refused + 1);
    EXPECT_TRUE(device_stats().contexts_by_type.empty());
}

TEST_F(FaultTest, BlockAllocationFailureIsEnomemAndTracksNothing) {
    auto file = keep(open());
    device().inject(DeviceFault::kBlockAllocation);
    auto block = file->allocate_block(4096);
    ASSERT_FALSE(block);
    EXPECT_EQ(block.error().value(), ENOMEM);
    EXPECT_TRUE(file->books().blocks.empty());
    EXPECT_EQ(device_stats().guest_blocks, 0u);
    expect_consistent();
    EXPECT_TRUE(file->allocate_block(4096));
}

TEST_F(FaultTest, StatusAboveIntMaxOnAllocateIsEio) {
    auto file = keep(open());
    device().inject(DeviceFault::kStatusAboveIntMax);
    auto block = file->allocate_block(4096);
    ASSERT_FALSE(block);
    EXPECT_EQ(block.error().value(), EIO);
    EXPECT_EQ(device_stats().guest_blocks, 0u);
    expect_consistent();
}

TEST_F(FaultTest, StatusAboveIntMaxOnDeallocateIsEioAndKeepsTheBlock) {
    auto file = keep(open());
    auto block = file->allocate_block(4096);
    ASSERT_TRUE(block);
    device().inject(DeviceFault::kStatusAboveIntMax);
    auto freed = file->deallocate_block(block->offset);
    ASSERT_FALSE(freed);
    EXPECT_EQ(freed.error().value(), EIO);
    // The host still holds it, so the file still tracks it, and a retry frees it.
    EXPECT_EQ(file->books().blocks.size(), 1u);
    EXPECT_EQ(device_stats().guest_blocks, 1u);
    expect_consistent();
    EXPECT_TRUE(file->deallocate_block(block->offset));
}

// A release cannot fail, so a block the device refuses to free then is counted as
// abandoned: the driver's books still add up to what the device holds.
TEST_F(FaultTest, ReleaseCountsBlocksTheDeviceRefusesToFree) {
    auto file = open();
    auto kept = file->allocate_block(4096);
    auto refused = file->allocate_block(3 * 4096);
    ASSERT_TRUE(kept && refused);
    // Blocks are freed in offset order; the refused one is the lower (carved later, below).
    device().inject(DeviceFault::kStatusAboveIntMax);
    file->release();
    EXPECT_EQ(driver->stats().blocks, 0u);
    EXPECT_EQ(driver->stats().abandoned_blocks, 1u);
    EXPECT_EQ(driver->stats().abandoned_block_bytes, refused->size);
    EXPECT_EQ(device_stats().guest_blocks, 1u);
    EXPECT_EQ(device_stats().guest_block_bytes, refused->size);
    file.reset();
    expect_consistent();
    const Violations violations = check_quiescent(*machine, *driver, free_pages_at_start);
    EXPECT_TRUE(violations.empty()) << describe(violations);
}

TEST_F(FaultTest, HostMemoryFailureOnType5AllocateIsMetadataAllOnes) {
    auto file = keep(open());
    ASSERT_EQ(file->ping(make_ping(kHostMemoryAllocator))->metadata, 0u);
    auto block = file->allocate_block(8192);
    ASSERT_TRUE(block);
    device().inject(DeviceFault::kHostMemory);
    auto backed = file->ping(make_ping(kAllocate, block->offset, 4096));
    ASSERT_TRUE(backed);
    EXPECT_EQ(backed->metadata, kPingFailed);
    EXPECT_EQ(device_stats().memory_mappings, 0u);
    expect_consistent();
    // Nothing half done: the same Allocate now succeeds, and Unallocate finds it.
    EXPECT_EQ(file->ping(make_ping(kAllocate, block->offset, 4096))->metadata, 0u);
    EXPECT_EQ(file->ping(make_ping(kUnallocate, block->offset))->metadata, 0u);
}

TEST_F(FaultTest, HostMemoryFailureOnType6AllocateIsMetadataAllOnes) {
    auto file = keep(open());
    ASSERT_EQ(file->ping(make_ping(kSharedSlots))->metadata, 0u);
    // The region and then the mapping of a new slab: each failure leaves no slab behind.
    for (uint32_t skip : {0u, 1u}) {
        device().inject(DeviceFault::kHostMemory, FaultSchedule{.skip = skip});
        auto piece = file->ping(make_ping(kAllocate, 0, 4096));
        ASSERT_TRUE(piece);
        EXPECT_EQ(piece->metadata, kPingFailed) << skip;
        EXPECT_EQ(device_stats().shared_slot_slabs, 0u);
        EXPECT_EQ(device_stats().host_regions, 0u);
        EXPECT_EQ(device_stats().memory_mappings, 0u);
        expect_consistent();
    }
    EXPECT_EQ(fired(), 2u);
    auto piece = file->ping(make_ping(kAllocate, 0, 4096));
    ASSERT_TRUE(piece);
    EXPECT_EQ(piece->metadata, 0u);
    EXPECT_TRUE(file->claim_shared(piece->offset, piece->size));
}

TEST_F(FaultTest, EveryNthScheduleFiresOnItsOpportunitiesOnly) {
    auto file = keep(open());
    // Skip one, then every second, three times: allocations 2, 4 and 6 fail.
    device().inject(DeviceFault::kBlockAllocation,
                    FaultSchedule{.skip = 1, .every = 2, .times = 3});
    std::vector<bool> succeeded;
    for (int i = 0; i < 8; ++i) {
        succeeded.push_back(file->allocate_block(4096).has_value());
    }
    EXPECT_EQ(succeeded, (std::vector<bool>{true, false, true, false, true, false, true, true}));
    EXPECT_EQ(fired(), 3u);
    expect_consistent();
}

TEST_F(FaultTest, UntilClearedScheduleKeepsFiring) {
    auto file = keep(open());
    device().inject(DeviceFault::kBlockAllocation, FaultSchedule{.times = 0});
    for (int i = 0; i < 5; ++i) {
        EXPECT_FALSE(file->allocate_block(4096));
    }
    device().clear_faults();
    EXPECT_TRUE(file->allocate_block(4096));
    EXPECT_EQ(fired(), 5u);
}

TEST_F(FaultTest, ResetDisarmsFaults) {
    device().inject(DeviceFault::kGenHandle, FaultSchedule{.times = 0});
    device().refuse_guest_memory(0, ~uint64_t{0});
    // reset() is the device's, under a bound driver: only its fault state matters here.
    driver.reset();
    device().reset();
    EXPECT_EQ(fired(), 0u);
    auto probed = driver::Driver::probe(machine->pci_device());
    ASSERT_TRUE(probed);
    driver = std::move(*probed);
    ASSERT_TRUE(keep(open()));
}

}  // namespace
}  // namespace gf::stress
