// The device's fault injection (what each fault does at the registers, and that the books
// stay as they were) and its books, driven through the registers as a guest would.
#include <cerrno>
#include <chrono>
#include <vector>

#include <gtest/gtest.h>

#include <algorithm>

#include "device/device_test_support.h"

namespace gf::device {
namespace {

using testing::Guest;
using testing::kBar1Base;
using testing::kRamBase;

constexpr uint32_t kOk = 0;

TEST(DeviceFaultTest, BlockAllocationFailsWithEnomemAndAllOnes) {
    Guest guest;
    guest.device().inject(DeviceFault::kBlockAllocation);
    const auto failed = guest.allocate_block(4096);
    EXPECT_EQ(failed.status, static_cast<uint32_t>(ENOMEM));
    EXPECT_EQ(failed.offset, kAllOnes);
    EXPECT_EQ(guest.device().stats().guest_blocks, 0u);
    EXPECT_EQ(guest.device().stats().faults_fired, 1u);
    EXPECT_EQ(guest.allocate_block(4096).status, kOk);
}

TEST(DeviceFaultTest, BlockAllocationCanAnswerAnyStatus) {
    Guest guest;
    guest.device().inject(DeviceFault::kBlockAllocation,
                          FaultSchedule{.times = 1, .value = static_cast<uint64_t>(EINVAL)});
    const auto failed = guest.allocate_block(4096);
    EXPECT_EQ(failed.status, static_cast<uint32_t>(EINVAL));
    EXPECT_EQ(failed.offset, kAllOnes);
    EXPECT_EQ(guest.device().stats().guest_blocks, 0u);
}

TEST(DeviceFaultTest, BlockDeallocationFailsAndKeepsTheBlock) {
    Guest guest;
    const auto block = guest.allocate_block(4096);
    guest.device().inject(DeviceFault::kBlockDeallocation);
    EXPECT_EQ(guest.deallocate_block(block.offset), static_cast<uint32_t>(EINVAL));
    EXPECT_EQ(guest.device().stats().guest_blocks, 1u);
    guest.device().inject(DeviceFault::kBlockDeallocation,
                          FaultSchedule{.value = static_cast<uint64_t>(ENOMEM)});
    EXPECT_EQ(guest.deallocate_block(block.offset), static_cast<uint32_t>(ENOMEM));
    EXPECT_EQ(guest.device().stats().guest_blocks, 1u);
    EXPECT_EQ(guest.deallocate_block(block.offset), kOk);  // times = 1: spent
    EXPECT_EQ(guest.device().stats().guest_blocks, 0u);
}

TEST(DeviceFaultTest, ARefusedContextTypeFailsOnlyItsCreatePings) {
    Guest guest;
    guest.device().inject(DeviceFault::kContextRefused, FaultSchedule{.times = 0, .value = 6});
    const auto a = guest.open();
    const auto b = guest.open();
    EXPECT_EQ(guest.create(a, 5), kPingOk);  // not an opportunity: another type
    EXPECT_EQ(guest.create(b, 6), kAllOnes);
    EXPECT_EQ(guest.create(b, 6), kAllOnes);
    EXPECT_EQ(guest.device().stats().faults_fired, 2u);
    EXPECT_EQ(guest.device().stats().contexts_by_type[6], 0u);
    guest.device().clear_faults();
    EXPECT_EQ(guest.create(b, 6), kPingOk);
}

// Which of 200 opportunities fire.
std::vector<bool> firings(FaultSchedule schedule) {
    FaultInjector faults;
    faults.arm(DeviceFault::kGenHandle, schedule);
    std::vector<bool> out;
    for (int i = 0; i < 200; ++i) {
        out.push_back(faults.fires(DeviceFault::kGenHandle));
    }
    return out;
}

TEST(DeviceFaultTest, AProbabilityFromASeedReplaysTheSameFirings) {
    const FaultSchedule quarter{.skip = 10, .times = 0, .probability = 0.25, .seed = 7};
    const auto a = firings(quarter);
    EXPECT_EQ(a, firings(quarter));
    FaultSchedule other = quarter;
    other.seed = 8;
    EXPECT_NE(a, firings(other));
    for (int i = 0; i < 10; ++i) {
        EXPECT_FALSE(a[i]) << i;  // skipped
    }
    const auto fired = std::count(a.begin(), a.end(), true);
    EXPECT_GT(fired, 20);  // about 48 of 190; far from none or all
    EXPECT_LT(fired, 90);
    // times bounds a probability too.
    const auto three = firings({.times = 3, .probability = 1.0});
    EXPECT_EQ(std::count(three.begin(), three.end(), true), 3);
    EXPECT_TRUE(three[0] && three[1] && three[2]);
}

TEST(DeviceFaultTest, ADelayedCommandStillRuns) {
    Guest guest;
    guest.device().inject(DeviceFault::kCommandDelay, FaultSchedule{.times = 2, .value = 20'000});
    const auto start = std::chrono::steady_clock::now();
    const auto block = guest.allocate_block(4096);
    EXPECT_EQ(block.status, kOk);
    EXPECT_EQ(guest.deallocate_block(block.offset), kOk);
    // A lower bound only: the device slept at least as long as asked, twice.
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(40));
    EXPECT_EQ(guest.device().stats().faults_fired, 2u);
}

TEST(DeviceFaultTest, StatusAboveIntMaxDoesNothing) {
    Guest guest;
    const auto block = guest.allocate_block(4096);
    guest.device().inject(DeviceFault::kStatusAboveIntMax, FaultSchedule{.times = 2});
    EXPECT_GT(guest.allocate_block(4096).status, 0x7FFF'FFFFu);
    EXPECT_GT(guest.deallocate_block(block.offset), 0x7FFF'FFFFu);
    EXPECT_EQ(guest.device().stats().guest_blocks, 1u);
    EXPECT_EQ(guest.deallocate_block(block.offset), kOk);
}

TEST(DeviceFaultTest, GenHandleGivesTheInvalidHandleAndIssuesNothing) {
    Guest guest;
    guest.device().inject(DeviceFault::kGenHandle);
    guest.write(Reg::COMMAND, static_cast<uint32_t>(Command::GEN_HANDLE));
    EXPECT_EQ(guest.read(Reg::HANDLE), kInvalidHandle);
    EXPECT_EQ(guest.device().stats().handles, 0u);
    EXPECT_EQ(guest.gen_handle(), 1u);
}

TEST(DeviceFaultTest, PingInfoReadBackDiffersButThePageIsRecorded) {
    Guest guest;
    const uint32_t id = guest.gen_handle();
    guest.device().inject(DeviceFault::kPingInfoReadBack);
    guest.write(Reg::HANDLE, id);
    guest.write64(Reg::PING_INFO_ADDR_LOW, kRamBase);
    guest.write(Reg::COMMAND, static_cast<uint32_t>(Command::TELL_PING_INFO_ADDR));
    EXPECT_NE(guest.read64(Reg::PING_INFO_ADDR_LOW), kRamBase);
    EXPECT_EQ(guest.device().books().handles.at(0).ping_info_gpa, kRamBase);
}

TEST(DeviceFaultTest, HostMemoryFailsType5AllocateAndLeavesNoMapping) {
    Guest guest;
    const auto h = guest.open();
    ASSERT_EQ(guest.create(h, 5), kPingOk);
    const auto block = guest.allocate_block(4096);
    guest.device().inject(DeviceFault::kHostMemory);
    EXPECT_EQ(guest.ping_command(h, 1, kBar1Base + block.offset, 4096).metadata, kAllOnes);
    EXPECT_EQ(guest.device().stats().memory_mappings, 0u);
    EXPECT_EQ(guest.ping_command(h, 1, kBar1Base + block.offset, 4096).metadata, kPingOk);
}

TEST(DeviceFaultTest, RefusedGuestMemoryRefusesTellAndPing) {
    Guest guest;
    const auto h = guest.open();
    guest.device().refuse_guest_memory(h.ping_gpa, 4096);
    EXPECT_FALSE(guest.device().ping_page_reachable(h.ping_gpa));
    EXPECT_TRUE(guest.device().ping_page_reachable(h.ping_gpa + 4096));
    guest.write(Reg::PING, h.id);
    EXPECT_EQ(guest.device().stats().refused_pings, 1u);
    // A second handle told the refused page: refused, and the read-back says so.
    const uint32_t other = guest.gen_handle();
    guest.write(Reg::HANDLE, other);
    guest.write64(Reg::PING_INFO_ADDR_LOW, h.ping_gpa);
    EXPECT_EQ(guest.command(Command::TELL_PING_INFO_ADDR), static_cast<uint32_t>(EFAULT));
    EXPECT_EQ(guest.read64(Reg::PING_INFO_ADDR_LOW), kAllOnes);
    guest.device().clear_faults();
    EXPECT_TRUE(guest.device().ping_page_reachable(h.ping_gpa));
    EXPECT_EQ(guest.create(h, 6), kPingOk);
}

TEST(DeviceBooksTest, ShowsTheBooks) {
    Guest guest;
    const auto h5 = guest.open();
    const auto h6 = guest.open();
    ASSERT_EQ(guest.create(h5, 5), kPingOk);
    ASSERT_EQ(guest.create(h6, 6), kPingOk);
    const auto block = guest.allocate_block(1);
    ASSERT_EQ(guest.ping_command(h5, 1, kBar1Base + block.offset, 4096).metadata, kPingOk);
    const PingInfo piece = guest.ping_command(h6, 1, 0, 4096);
    ASSERT_EQ(piece.metadata, kPingOk);

    const DeviceBooks s = guest.device().books();
    EXPECT_EQ(s.phys_start, kBar1Base);
    EXPECT_EQ(s.guest_blocks, (std::map<uint64_t, uint64_t>{{block.offset, block.size}}));
    ASSERT_EQ(s.slabs.size(), 1u);
    EXPECT_EQ(s.slabs[0].offset, piece.phys_addr);
    EXPECT_EQ(s.host_regions, (std::map<uint64_t, uint64_t>{{piece.phys_addr, 64u << 20}}));
    ASSERT_EQ(s.handles.size(), 2u);
    EXPECT_EQ(s.handles[0].handle, h5.id);
    EXPECT_EQ(s.handles[0].ping_info_gpa, h5.ping_gpa);
    EXPECT_EQ(s.handles[0].allocations, (std::map<uint64_t, uint64_t>{{block.offset, 4096}}));
    EXPECT_EQ(s.handles[1].context, hw::ContextType::SharedSlotsHostMemoryAllocator);
    EXPECT_EQ(s.handles[1].allocations, (std::map<uint64_t, uint64_t>{{piece.phys_addr, 4096}}));
    ASSERT_EQ(s.mappings.size(), 2u);
    EXPECT_EQ(s.area.size(), 3u);  // free, slab, block: each carved from the top
}

}  // namespace
}  // namespace gf::device
