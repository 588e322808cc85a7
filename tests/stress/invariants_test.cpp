// The introspection the invariant checks stand on (DeviceBooks, FileBooks), and the
// checks themselves: they pass on real states and name the violation a peer plants.
#include <cerrno>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "driver/machine_fixture.h"
#include "stress/invariants.h"

namespace gf::stress {
namespace {

using device::Command;
using device::Reg;
using driver::File;
using driver::testing::kAllocate;
using driver::testing::kHostMemoryAllocator;
using driver::testing::kSharedSlots;
using driver::testing::make_ping;

using InvariantsTest = driver::testing::MachineTest;

bool mentions(const Violations& violations, const std::string& text) {
    for (const auto& line : violations) {
        if (line.find(text) != std::string::npos) {
            return true;
        }
    }
    return false;
}

TEST_F(InvariantsTest, BooksShowBlocksClaimsHandlesSlabsAndMappings) {
    auto typed5 = open();
    auto typed6 = open();
    ASSERT_EQ(typed5->ping(make_ping(kHostMemoryAllocator))->metadata, 0u);
    ASSERT_EQ(typed6->ping(make_ping(kSharedSlots))->metadata, 0u);
    auto block = typed5->allocate_block(4096);
    ASSERT_TRUE(block);
    ASSERT_EQ(typed5->ping(make_ping(kAllocate, block->offset, 4096))->metadata, 0u);
    auto piece = typed6->ping(make_ping(kAllocate, 0, 100));
    ASSERT_EQ(piece->metadata, 0u);
    ASSERT_TRUE(typed6->claim_shared(piece->offset, piece->size));

    const driver::FileBooks f5 = typed5->books();
    EXPECT_TRUE(f5.live);
    EXPECT_EQ(f5.handle, typed5->handle());
    EXPECT_EQ(f5.blocks, (driver::RangeSet::Map{{block->offset, block->size}}));
    EXPECT_TRUE(f5.claims.empty());
    const driver::FileBooks f6 = typed6->books();
    EXPECT_EQ(f6.claims, (driver::RangeSet::Map{{piece->offset, 4096}}));

    const device::DeviceBooks s = machine->device().books();
    EXPECT_EQ(s.bar1_size, driver->bar1_size());
    EXPECT_EQ(s.phys_start, driver->bar1_phys_start());
    EXPECT_EQ(s.guest_blocks, (std::map<uint64_t, uint64_t>{{block->offset, block->size}}));
    ASSERT_EQ(s.handles.size(), 2u);
    EXPECT_EQ(s.handles[0].handle, f5.handle);
    EXPECT_EQ(s.handles[0].ping_info_gpa, f5.ping_page_phys);
    EXPECT_EQ(s.handles[0].context, hw::ContextType::HostMemoryAllocator);
    EXPECT_EQ(s.handles[0].allocations, (std::map<uint64_t, uint64_t>{{block->offset, 4096}}));
    EXPECT_EQ(s.handles[1].context, hw::ContextType::SharedSlotsHostMemoryAllocator);
    EXPECT_EQ(s.handles[1].allocations, (std::map<uint64_t, uint64_t>{{piece->offset, 4096}}));
    ASSERT_EQ(s.slabs.size(), 1u);
    EXPECT_EQ(s.slabs[0].offset, piece->offset);  // pieces come from the slab's low end
    EXPECT_EQ(s.slabs[0].free_pieces,
              (std::map<uint64_t, uint64_t>{{piece->offset + 4096, (64u << 20) - 4096}}));
    EXPECT_EQ(s.host_regions, (std::map<uint64_t, uint64_t>{{s.slabs[0].offset, 64u << 20}}));
    EXPECT_EQ(s.mappings.size(), 2u);
    uint64_t allocated = 0;
    for (const auto& range : s.area) {
        allocated += range.free ? 0 : range.size;
    }
    EXPECT_EQ(allocated, block->size + (64u << 20));

    const Violations violations = check(*machine, *driver, std::vector{typed5, typed6});
    EXPECT_TRUE(violations.empty()) << describe(violations);

    typed5->release();
    EXPECT_FALSE(typed5->books().live);
    EXPECT_FALSE(typed5->books().ping_page_phys);
    EXPECT_TRUE(typed5->books().blocks.empty());
}

TEST_F(InvariantsTest, PeerDeallocationBreaksOnlyTheExactCheck) {
    auto file = open();
    auto block = file->allocate_block(4096);
    ASSERT_TRUE(block);
    auto& device = machine->device();
    device.write32(Reg::BLOCK_OFFSET_LOW, static_cast<uint32_t>(block->offset));
    device.write32(Reg::BLOCK_OFFSET_HIGH, static_cast<uint32_t>(block->offset >> 32));
    device.write32(Reg::COMMAND, static_cast<uint32_t>(Command::DEALLOCATE_BLOCK));

    const std::vector files{file};
    EXPECT_TRUE(check(*machine, *driver, files, CheckOptions{.exact = false}).empty());
    const Violations exact = check(*machine, *driver, files);
    EXPECT_TRUE(mentions(exact, "device holds 0 guest blocks")) << describe(exact);
    EXPECT_TRUE(mentions(exact, "driver stats differ from device stats")) << describe(exact);
}

TEST_F(InvariantsTest, OrphanHandlesAndLeftoversFailTheQuiescentCheckUntilCleanedUp) {
    auto& device = machine->device();
    device.write32(Reg::COMMAND, static_cast<uint32_t>(Command::GEN_HANDLE));
    device.write32(Reg::BLOCK_SIZE_LOW, 4096);
    device.write32(Reg::BLOCK_SIZE_HIGH, 0);
    device.write32(Reg::COMMAND, static_cast<uint32_t>(Command::ALLOCATE_BLOCK));
    const Violations dirty = check_quiescent(*machine, *driver, free_pages_at_start);
    EXPECT_TRUE(mentions(dirty, "still live")) << describe(dirty);
    EXPECT_TRUE(mentions(dirty, "guest blocks still allocated")) << describe(dirty);
    clean_up_as_peer(device);
    const Violations clean = check_quiescent(*machine, *driver, free_pages_at_start);
    EXPECT_TRUE(clean.empty()) << describe(clean);
}

TEST_F(InvariantsTest, TheKeptEmptySlabIsQuiescent) {
    auto file = open();
    ASSERT_EQ(file->ping(make_ping(kSharedSlots))->metadata, 0u);
    ASSERT_EQ(file->ping(make_ping(kAllocate, 0, 4096))->metadata, 0u);
    file.reset();
    EXPECT_EQ(device_stats().shared_slot_slabs, 1u);
    const Violations violations = check_quiescent(*machine, *driver, free_pages_at_start);
    EXPECT_TRUE(violations.empty()) << describe(violations);
}

TEST(InvariantsDeviceTest, CheckDeviceNamesBrokenBooks) {
    device::DeviceBooks s;
    s.bar1_size = 0x10000;
    s.area = {{0, 0x8000, true}, {0x8000, 0x8000, false}};
    // The allocated range is neither a guest block nor a host region.
    Violations violations = check_device(s);
    EXPECT_TRUE(mentions(violations, "allocated ranges")) << describe(violations);
    s.guest_blocks = {{0x8000, 0x8000}};
    EXPECT_TRUE(check_device(s).empty()) << describe(check_device(s));
    // Two free neighbours that were never merged; a gap in the tiling.
    s.area = {{0, 0x4000, true}, {0x4000, 0x4000, true}, {0x8000, 0x8000, false}};
    EXPECT_TRUE(mentions(check_device(s), "not merged"));
    s.area = {{0, 0x4000, true}, {0x8000, 0x8000, false}};
    EXPECT_TRUE(mentions(check_device(s), "does not continue"));
    // A mapping of a handle that has no type-5 context.
    s.area = {{0, 0x8000, true}, {0x8000, 0x8000, false}};
    s.mappings = {{0x8000, 0x1000, 7}};
    EXPECT_TRUE(mentions(check_device(s), "not a live type-5 context"));
}

}  // namespace
}  // namespace gf::stress
