// The device through its registers, the way a driver and a VMM use it: identity and BARs,
// the register file, the five commands, handles, pings, reset and BAR1's memory footprint.
#include "device/address_space_device.h"
#include "hw/pci_identity.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "device/device_test_support.h"

namespace gf::device {
namespace {

using testing::Guest;
using testing::k16GiB;
using testing::kBar1Base;
using testing::kRamBase;
using testing::kRamSize;

constexpr uint32_t kOk = 0;

// ---- identity, BARs, configuration ----

TEST(DeviceIdentityTest, ExposesThePciIdentityAndDefaultBars) {
    EXPECT_EQ(hw::kVendorId, 0x607D);
    EXPECT_EQ(hw::kDeviceId, 0xF153);
    EXPECT_EQ(hw::kRevision, 1);
    EXPECT_EQ(hw::kClassCode, 0xff00);
    EXPECT_EQ(hw::kControlBarSize, 0x1000u);
    Guest guest;
    EXPECT_EQ(guest.device().bar1_size(), k16GiB);
    EXPECT_TRUE(guest.device().bar1_64bit());
}

TEST(DeviceIdentityTest, Bar1SizeAndWidthAreConfig) {
    Guest guest(DeviceConfig{
        .bar1_size = 256ull << 20, .bar1_64bit = false, .bar1_default_phys_start = 0xE000'0000});
    EXPECT_EQ(guest.device().bar1_size(), 256ull << 20);
    EXPECT_FALSE(guest.device().bar1_64bit());
    // The first block comes from the top of the smaller window.
    EXPECT_EQ(guest.allocate_block(1).offset, (256ull << 20) - 4096);
}

TEST(DeviceIdentityTest, CreateRefusesUnusableConfigs) {
    auto ram = RamGuestMemory::create(kRamBase, kRamSize).value();
    auto refused = [&](DeviceConfig config) {
        auto device = AddressSpaceDevice::create(config, *ram);
        return !device && device.error() == Error(EINVAL);
    };
    EXPECT_TRUE(refused({.bar1_size = 0}));
    EXPECT_TRUE(refused({.bar1_size = (16ull << 30) + 4096}));  // not a power of two
    EXPECT_TRUE(refused({.bar1_size = 4ull << 30, .bar1_64bit = false}));
    EXPECT_TRUE(refused({.bar1_size = 256ull << 20,
                         .bar1_64bit = false,
                         .bar1_default_phys_start = 0xF800'0000}));  // ends above 4 GiB
    EXPECT_TRUE(refused({.host_page_size = 3000}));
    EXPECT_TRUE(refused({.host_page_size = 1024}));
    EXPECT_TRUE(refused({.bar1_default_phys_start = ~uint64_t{0} - 4096}));  // wraps
    EXPECT_TRUE(AddressSpaceDevice::create({.host_page_size = 16384}, *ram));
}

// Resident set size in bytes, from /proc/self/statm.
uint64_t resident_bytes() {
    FILE* f = std::fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    EXPECT_EQ(std::fscanf(f, "%llu %llu", &size, &resident), 2);
    std::fclose(f);
    return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

TEST(DeviceMemoryTest, A16GiBDeviceAddsLessThan32MiBResidentUntilMemoryIsUsed) {
    auto ram = RamGuestMemory::create(kRamBase, kRamSize).value();
    const uint64_t before = resident_bytes();
    auto device = AddressSpaceDevice::create(DeviceConfig{}, *ram).value();
    // Touch the register file and the allocator, but no BAR1 memory.
    device->write32(Reg::BLOCK_SIZE_LOW, 1 << 20);
    device->write32(Reg::COMMAND, static_cast<uint32_t>(Command::ALLOCATE_BLOCK));
    ASSERT_EQ(device->read32(Reg::STATUS), kOk);
    const uint64_t after = resident_bytes();
    std::printf("resident: %llu KiB before, %llu KiB after creating a 16 GiB device\n",
                static_cast<unsigned long long>(before >> 10),
                static_cast<unsigned long long>(after >> 10));
    EXPECT_LT(after - std::min(after, before), 32ull << 20);
    EXPECT_EQ(device->stats().backed_bytes, 0u);
}

// ---- register file ----

TEST(DeviceRegisterTest, UnknownAndWriteOnlyRegistersReadZero) {
    Guest guest;
    guest.write(Reg::HANDLE, 77);
    for (uint64_t offset : {0x00, 0x1C, 0x34, 0x38, 0x3C, 0x100, 0xFFC, 0x1000, 0x2C + 0x1000}) {
        EXPECT_EQ(guest.device().mmio_read(offset, 4), 0u) << offset;
    }
    EXPECT_EQ(guest.device().mmio_read(0x29, 4), 0u);  // unaligned
    EXPECT_EQ(guest.device().mmio_read(~uint64_t{0}, 4), 0u);
    guest.device().mmio_write(0x38, 5, 4);  // ignored, no crash
    guest.device().mmio_write(0x29, 5, 4);
    EXPECT_EQ(guest.read(Reg::HANDLE), 77u);
}

TEST(DeviceRegisterTest, AccessesOtherThan32BitAreIgnored) {
    Guest guest;
    guest.write(Reg::HANDLE, 5);
    for (unsigned size : {1u, 2u, 8u, 0u}) {
        guest.device().mmio_write(static_cast<uint64_t>(Reg::HANDLE), 9, size);
        EXPECT_EQ(guest.device().mmio_read(static_cast<uint64_t>(Reg::HANDLE), size), 0u);
    }
    EXPECT_EQ(guest.read(Reg::HANDLE), 5u);
    // A 2-byte COMMAND write runs nothing.
    guest.write64(Reg::BLOCK_SIZE_LOW, 4096);
    guest.device().mmio_write(0, static_cast<uint32_t>(Command::ALLOCATE_BLOCK), 2);
    EXPECT_EQ(guest.device().stats().guest_blocks, 0u);
}

TEST(DeviceRegisterTest, ReadWriteRegistersReadBackWhatWasWritten) {
    Guest guest(DeviceConfig{}, /*probe=*/false);
    EXPECT_EQ(guest.read(Reg::STATUS), 0u);
    EXPECT_EQ(guest.read(Reg::GUEST_PAGE_SIZE), 4096u);
    guest.write64(Reg::BLOCK_SIZE_LOW, 0x1234'5678'9ABC'DEF0);
    guest.write64(Reg::BLOCK_OFFSET_LOW, 0x0FED'CBA9'8765'4321);
    guest.write64(Reg::PING_INFO_ADDR_LOW, 0xDEAD'BEEF'0000'1000);
    guest.write(Reg::HANDLE, 0xCAFE);
    guest.write64(Reg::PHYS_START_LOW, 0x12'0000'0000);
    EXPECT_EQ(guest.read64(Reg::BLOCK_SIZE_LOW), 0x1234'5678'9ABC'DEF0u);
    EXPECT_EQ(guest.read64(Reg::BLOCK_OFFSET_LOW), 0x0FED'CBA9'8765'4321u);
    EXPECT_EQ(guest.read64(Reg::PING_INFO_ADDR_LOW), 0xDEAD'BEEF'0000'1000u);
    EXPECT_EQ(guest.read(Reg::HANDLE), 0xCAFEu);
    EXPECT_EQ(guest.read64(Reg::PHYS_START_LOW), 0x12'0000'0000u);
    guest.write(Reg::STATUS, 99);  // read-only
    EXPECT_EQ(guest.read(Reg::STATUS), 0u);
}

TEST(DeviceRegisterTest, GuestPageSizeKeepsTheLargerOfGuestAndHostPages) {
    Guest guest;
    guest.write(Reg::GUEST_PAGE_SIZE, 16384);
    EXPECT_EQ(guest.read(Reg::GUEST_PAGE_SIZE), 16384u);
    EXPECT_EQ(guest.allocate_block(1).size, 16384u);
    EXPECT_EQ(guest.allocate_block(16384).size, 32768u);
    guest.write(Reg::GUEST_PAGE_SIZE, 1024);  // smaller than a host page
    EXPECT_EQ(guest.read(Reg::GUEST_PAGE_SIZE), 4096u);
    guest.write(Reg::GUEST_PAGE_SIZE, 3000);  // not a power of two: ignored
    guest.write(Reg::GUEST_PAGE_SIZE, 0);
    guest.write(Reg::GUEST_PAGE_SIZE, 1u << 31);
    EXPECT_EQ(guest.read(Reg::GUEST_PAGE_SIZE), 4096u);
}

TEST(DeviceCommandTest, UnknownCommandsGiveENOSYS) {
    Guest guest;
    for (uint32_t command : {0u, 6u, 7u, 99u, 0xFFFFFFFFu}) {
        guest.write(Reg::COMMAND, command);
        EXPECT_EQ(guest.read(Reg::STATUS), static_cast<uint32_t>(ENOSYS)) << command;
    }
}

// ---- ALLOCATE_BLOCK / DEALLOCATE_BLOCK ----

TEST(DeviceBlockTest, AllocateBlockAppliesTheSparePageSizeRule) {
    for (auto [request, granted] : {std::pair<uint64_t, uint64_t>{1, 4096},
                                    {4096, 8192},
                                    {4097, 8192},
                                    {8192, 12288},
                                    {8193, 12288}}) {
        Guest guest;
        const auto block = guest.allocate_block(request);
        EXPECT_EQ(block.status, kOk);
        EXPECT_EQ(block.size, granted) << request;
        EXPECT_EQ(block.offset, k16GiB - granted) << request;
    }
}

TEST(DeviceBlockTest, FreshDeviceHandsTheFirstPageOutAtTheTop) {
    Guest guest;
    EXPECT_EQ(guest.allocate_block(1).offset, 0x3'FFFF'F000u);
}

TEST(DeviceBlockTest, ReproducesTheEmulatorTraceThroughTheRegisters) {
    // The trace of docs/allocator.md#worked-trace, with request sizes one below each block size
    // (the spare-page rule).
    Guest guest;
    EXPECT_EQ(guest.allocate_block(1).offset, 0x3fffff000u);
    const auto second = guest.allocate_block(4097);
    EXPECT_EQ(second.offset, 0x3ffffd000u);
    EXPECT_EQ(second.size, 8192u);
    EXPECT_EQ(guest.allocate_block(8193).offset, 0x3ffffa000u);
    EXPECT_EQ(guest.deallocate_block(second.offset), kOk);
    EXPECT_EQ(guest.allocate_block(1).offset, 0x3ffffe000u);
    EXPECT_EQ(guest.allocate_block(4097).offset, 0x3ffff8000u);
}

TEST(DeviceBlockTest, ZeroSizeIsEINVALAndLeavesTheRegisters) {
    Guest guest;
    guest.write64(Reg::BLOCK_OFFSET_LOW, 0x5555);
    const auto block = guest.allocate_block(0);
    EXPECT_EQ(block.status, static_cast<uint32_t>(EINVAL));
    EXPECT_EQ(block.offset, 0x5555u);
    EXPECT_EQ(block.size, 0u);
}

TEST(DeviceBlockTest, OversizedRequestsGiveENOMEMAndAllOnesWithoutWrapping) {
    Guest guest;
    auto block = guest.allocate_block(k16GiB);
    EXPECT_EQ(block.status, static_cast<uint32_t>(ENOMEM));
    EXPECT_EQ(block.offset, kAllOnes);
    EXPECT_EQ(block.size, k16GiB + 4096);  // the aligned size is written even on failure
    // Sizes for which size + 2*page - 2 would wrap around 2^64.
    for (uint64_t size : {~uint64_t{0}, ~uint64_t{0} - 8190, ~uint64_t{0} - 4096}) {
        block = guest.allocate_block(size);
        EXPECT_EQ(block.status, static_cast<uint32_t>(ENOMEM)) << size;
        EXPECT_EQ(block.offset, kAllOnes);
    }
    EXPECT_EQ(guest.device().stats().guest_blocks, 0u);
    // The largest request that fits: the whole window minus the spare page.
    block = guest.allocate_block(k16GiB - 4096);
    EXPECT_EQ(block.status, kOk);
    EXPECT_EQ(block.offset, 0u);
}

TEST(DeviceBlockTest, DeallocateRefusesUnknownMidBlockAndDoubleFrees) {
    Guest guest;
    const auto block = guest.allocate_block(8192);
    EXPECT_EQ(guest.deallocate_block(block.offset + 4096), static_cast<uint32_t>(EINVAL));
    EXPECT_EQ(guest.deallocate_block(0), static_cast<uint32_t>(EINVAL));
    EXPECT_EQ(guest.deallocate_block(kAllOnes), static_cast<uint32_t>(EINVAL));
    EXPECT_EQ(guest.deallocate_block(block.offset), kOk);
    EXPECT_EQ(guest.deallocate_block(block.offset), static_cast<uint32_t>(EINVAL));
    const auto stats = guest.device().stats();
    EXPECT_EQ(stats.guest_blocks, 0u);
    EXPECT_EQ(stats.area_free_bytes, k16GiB);
}

TEST(DeviceBlockTest, StatsCountGuestBlocks) {
    Guest guest;
    guest.allocate_block(1);
    guest.allocate_block(4096);
    const auto stats = guest.device().stats();
    EXPECT_EQ(stats.guest_blocks, 2u);
    EXPECT_EQ(stats.guest_block_bytes, 4096u + 8192u);
    EXPECT_EQ(stats.area_free_bytes, k16GiB - 4096 - 8192);
    EXPECT_EQ(stats.backed_bytes, 0u);  // reserving GPA space maps nothing
}

// ---- handles ----

TEST(DeviceHandleTest, HandlesStartAtOneAndStatusIsZero) {
    Guest guest;
    EXPECT_EQ(guest.command(Command::GEN_HANDLE), kOk);
    EXPECT_EQ(guest.read(Reg::HANDLE), 1u);
    EXPECT_EQ(guest.command(Command::GEN_HANDLE), kOk);
    EXPECT_EQ(guest.read(Reg::HANDLE), 2u);
    EXPECT_EQ(guest.device().stats().handles, 2u);
}

TEST(DeviceHandleTest, TellPingInfoAddrReadsBackAndGivesStatusZero) {
    Guest guest;
    const auto h = guest.open();  // checks STATUS 0 and the readback
    EXPECT_EQ(h.id, 1u);
    EXPECT_EQ(guest.read64(Reg::PING_INFO_ADDR_LOW), h.ping_gpa);
}

TEST(DeviceHandleTest, TellRefusesUnknownHandlesAndPagesOutsideGuestRam) {
    Guest guest;
    guest.write(Reg::HANDLE, 42);
    guest.write64(Reg::PING_INFO_ADDR_LOW, kRamBase);
    EXPECT_EQ(guest.command(Command::TELL_PING_INFO_ADDR), static_cast<uint32_t>(EINVAL));
    EXPECT_EQ(guest.read64(Reg::PING_INFO_ADDR_LOW), ~uint64_t{0});
    const uint32_t id = guest.gen_handle();
    guest.write(Reg::HANDLE, id);
    for (uint64_t gpa : {uint64_t{0}, kRamBase - 8, kRamBase + kRamSize - 39, ~uint64_t{0} - 10}) {
        guest.write64(Reg::PING_INFO_ADDR_LOW, gpa);
        EXPECT_EQ(guest.command(Command::TELL_PING_INFO_ADDR), static_cast<uint32_t>(EFAULT));
        // A refused address reads back as all-ones, so a driver that checks only the
        // read-back (Linux: STATUS is ENOSYS on old hosts) fails its open.
        EXPECT_EQ(guest.read64(Reg::PING_INFO_ADDR_LOW), ~uint64_t{0});
    }
    // Nothing was recorded: a ping is refused as "before tell".
    guest.write(Reg::PING, id);
    EXPECT_EQ(guest.device().stats().refused_pings, 1u);
}

TEST(DeviceHandleTest, DestroyHandleEndsTheHandle) {
    Guest guest;
    const auto h = guest.open();
    ASSERT_EQ(guest.create(h, 5), kPingOk);
    EXPECT_EQ(guest.close(h), kOk);
    EXPECT_EQ(guest.device().stats().handles, 0u);
    EXPECT_TRUE(guest.device().stats().contexts_by_type.empty());
    EXPECT_EQ(guest.close(h), static_cast<uint32_t>(EINVAL));
    // Its pings are refused now, and the page is left alone.
    PingInfo in;
    in.metadata = 5;
    EXPECT_EQ(guest.ping(h, in).metadata, 5u);
    EXPECT_EQ(guest.device().stats().refused_pings, 1u);
}

TEST(DeviceHandleTest, LiveHandlesAreNotReissued) {
    Guest guest;
    const auto a = guest.open();
    const auto b = guest.open();
    guest.close(a);
    const auto c = guest.open();
    EXPECT_NE(c.id, b.id);
    EXPECT_NE(c.id, 0u);
    EXPECT_NE(c.id, kInvalidHandle);
}

// ---- pings ----

TEST(DevicePingTest, PingsBeforeTellOrOnUnknownHandlesAreRefused) {
    Guest guest;
    const uint32_t untold = guest.gen_handle();
    // Make STATUS nonzero: a refused ping must leave it alone (drivers ping unlocked).
    guest.write(Reg::COMMAND, 99);
    guest.write(Reg::PING, untold);
    for (uint32_t bogus : {0u, 12345u, kInvalidHandle}) {
        guest.write(Reg::PING, bogus);
    }
    EXPECT_EQ(guest.read(Reg::STATUS), static_cast<uint32_t>(ENOSYS));
    EXPECT_EQ(guest.device().stats().refused_pings, 4u);
    EXPECT_TRUE(guest.device().stats().contexts_by_type.empty());
}

TEST(DevicePingTest, APingPageThatLeftGuestRamIsRefused) {
    Guest guest;
    const auto h = guest.open();
    guest.memory().plugged = false;
    guest.write(Reg::PING, h.id);
    EXPECT_EQ(guest.device().stats().refused_pings, 1u);
    EXPECT_TRUE(guest.device().stats().contexts_by_type.empty());
    guest.memory().plugged = true;
    EXPECT_EQ(guest.create(h, 5), kPingOk);
    EXPECT_EQ(guest.device().stats().refused_pings, 1u);
}

TEST(DevicePingTest, CreatePingMakesTheContextAndWritesZero) {
    Guest guest;
    const auto h5 = guest.open();
    const auto h6 = guest.open();
    EXPECT_EQ(guest.create(h5, 5), kPingOk);
    EXPECT_EQ(guest.create(h6, 6), kPingOk);
    const auto stats = guest.device().stats();
    EXPECT_EQ(stats.contexts_by_type.at(5), 1u);
    EXPECT_EQ(stats.contexts_by_type.at(6), 1u);
}

TEST(DevicePingTest, UnknownTypesGiveAllOnesAndLeaveTheHandleUncreated) {
    Guest guest;
    const auto h = guest.open();
    for (uint64_t type : {1ull, 2ull, 3ull, 4ull, 7ull, 10ull, 0x1'0000'0005ull, ~0ull}) {
        EXPECT_EQ(guest.create(h, type), kAllOnes) << type;
    }
    EXPECT_TRUE(guest.device().stats().contexts_by_type.empty());
    // Still uncreated: the next ping is a create again.
    EXPECT_EQ(guest.create(h, 5), kPingOk);
    EXPECT_EQ(guest.device().stats().contexts_by_type.at(5), 1u);
}

TEST(DevicePingTest, AContextsTypeCannotChange) {
    Guest guest;
    const auto h = guest.open();
    ASSERT_EQ(guest.create(h, 5), kPingOk);
    // metadata 6 is now a (unknown) type-5 command, not a create.
    EXPECT_EQ(guest.create(h, 6), kAllOnes);
    const auto stats = guest.device().stats();
    EXPECT_EQ(stats.contexts_by_type.size(), 1u);
    EXPECT_EQ(stats.contexts_by_type.at(5), 1u);
}

TEST(DevicePingTest, PingWithDataActsAsAPlainPing) {
    Guest guest;
    const auto h = guest.open();
    PingInfo in;
    in.metadata = 6;
    EXPECT_EQ(guest.ping(h, in, Reg::PING_WITH_DATA).metadata, kPingOk);
    EXPECT_EQ(guest.device().stats().contexts_by_type.at(6), 1u);
}

TEST(DevicePingTest, UnusedFieldsComeBackUnchanged) {
    Guest guest;
    const auto h = guest.open();
    PingInfo in;
    in.metadata = 6;
    in.wait_phys_addr = 0x1122334455667788;
    in.wait_flags = 0xAABBCCDD;
    in.direction = 7;
    const PingInfo out = guest.ping(h, in);
    EXPECT_EQ(out.wait_phys_addr, in.wait_phys_addr);
    EXPECT_EQ(out.wait_flags, in.wait_flags);
    EXPECT_EQ(out.direction, in.direction);
}

// ---- PHYS_START ----

TEST(DevicePhysStartTest, ZeroPhysStartFallsBackToTheVmmsBar1Base) {
    Guest guest(DeviceConfig{.bar1_default_phys_start = kBar1Base}, /*probe=*/false);
    const auto h = guest.open();
    ASSERT_EQ(guest.create(h, 5), kPingOk);
    const auto block = guest.allocate_block(1);
    EXPECT_EQ(guest.ping_command(h, 1, kBar1Base + block.offset, 4096).metadata, kPingOk);
    EXPECT_TRUE(testing::host_memory(guest.device(), kBar1Base + block.offset, 4096));
    // The VMM moves BAR1: the same offset now answers at the new base.
    guest.device().set_bar1_phys_start_hint(2 * kBar1Base);
    EXPECT_FALSE(testing::host_memory(guest.device(), kBar1Base + block.offset, 4096));
    EXPECT_TRUE(testing::host_memory(guest.device(), 2 * kBar1Base + block.offset, 4096));
    // A PHYS_START written by the guest wins over the hint.
    guest.write64(Reg::PHYS_START_LOW, 3 * kBar1Base);
    EXPECT_TRUE(testing::host_memory(guest.device(), 3 * kBar1Base + block.offset, 4096));
}

// ---- reset ----

TEST(DeviceResetTest, ResetReturnsTheDeviceToItsInitialState) {
    Guest guest;
    const auto h5 = guest.open();
    const auto h6 = guest.open();
    ASSERT_EQ(guest.create(h5, 5), kPingOk);
    ASSERT_EQ(guest.create(h6, 6), kPingOk);
    const auto block = guest.allocate_block(4096);
    ASSERT_EQ(guest.ping_command(h5, 1, kBar1Base + block.offset, 4096).metadata, kPingOk);
    ASSERT_EQ(guest.ping_command(h6, 1, 0, 100).metadata, kPingOk);
    guest.write(Reg::GUEST_PAGE_SIZE, 16384);
    ASSERT_GT(guest.device().stats().backed_bytes, 0u);

    guest.device().reset();

    const auto stats = guest.device().stats();
    EXPECT_EQ(stats.handles, 0u);
    EXPECT_TRUE(stats.contexts_by_type.empty());
    EXPECT_EQ(stats.guest_blocks, 0u);
    EXPECT_EQ(stats.host_regions, 0u);
    EXPECT_EQ(stats.memory_mappings, 0u);
    EXPECT_EQ(stats.backed_bytes, 0u);
    EXPECT_EQ(stats.area_free_bytes, k16GiB);
    EXPECT_EQ(guest.read(Reg::GUEST_PAGE_SIZE), 4096u);
    EXPECT_EQ(guest.read(Reg::HANDLE), 0u);
    EXPECT_EQ(guest.read64(Reg::PHYS_START_LOW), 0u);
    EXPECT_EQ(guest.read64(Reg::PING_INFO_ADDR_LOW), 0u);
    EXPECT_EQ(guest.read64(Reg::BLOCK_SIZE_LOW), 0u);
    // Old handles are gone; numbering and placement start over.
    EXPECT_EQ(stats.refused_pings, 0u);
    guest.write(Reg::PING, h5.id);
    EXPECT_EQ(guest.device().stats().refused_pings, 1u);
    EXPECT_EQ(guest.gen_handle(), 1u);
    EXPECT_EQ(guest.allocate_block(1).offset, 0x3'FFFF'F000u);
}

}  // namespace
}  // namespace gf::device
