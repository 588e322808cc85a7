// Every ioctl end to end over the real device model on the emulated machine,
// through File::ioctl with raw bytes and through the typed methods, plus the
// cases Fuchsia's tests never covered (containment, overflow, teardown).
#include <cerrno>
#include <cstring>

#include "device/device_test_access.h"
#include "device/registers.h"
#include "driver/machine_fixture.h"
#include "pci/shared_memory_bar.h"

namespace gf::driver {
namespace {

using testing::bytes_of;
using testing::kAllocate;
using testing::kHostMemoryAllocator;
using testing::kPingFailed;
using testing::kSharedSlots;
using testing::kUnallocate;
using testing::MachineTest;
using testing::make_ping;

using E2eTest = MachineTest;

TEST_F(E2eTest, ProbeProgramsTheDevice) {
    device::AddressSpaceDevice& dev = machine->device();
    EXPECT_EQ(dev.read32(device::Reg::GUEST_PAGE_SIZE), 4096u);
    const uint64_t phys_start = dev.read32(device::Reg::PHYS_START_LOW) |
                                uint64_t{dev.read32(device::Reg::PHYS_START_HIGH)} << 32;
    EXPECT_EQ(phys_start, machine->config().bar1_address);
    EXPECT_EQ(driver->bar1_phys_start(), machine->config().bar1_address);
    EXPECT_EQ(driver->bar1_size(), dev.bar1_size());
    EXPECT_TRUE(machine->pci_device().is_enabled());
}

TEST_F(E2eTest, OpenAndReleaseOwnAHandle) {
    auto a = open();
    auto b = open();
    EXPECT_NE(a->handle(), b->handle());
    EXPECT_EQ(device_stats().handles, 2u);
    EXPECT_EQ(machine->free_dma_pages(), free_pages_at_start - 2);
    a->release();
    EXPECT_EQ(device_stats().handles, 1u);
    b.reset();  // the destructor releases
    expect_nothing_held();
}

TEST_F(E2eTest, AllocateAndDeallocateThroughIoctl) {
    auto file = open();
    goldfish_address_space_allocate_block block{};
    block.size = 5000;
    ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, bytes_of(block)), 0);
    EXPECT_GE(block.size, 5000u);
    EXPECT_EQ(block.size % 4096, 0u);
    EXPECT_LE(block.offset + block.size, driver->bar1_size());
    EXPECT_EQ(block.phys_addr, driver->bar1_phys_start() + block.offset);
    EXPECT_EQ(device_stats().guest_blocks, 1u);
    EXPECT_EQ(device_stats().guest_block_bytes, block.size);
    expect_books_agree();

    uint64_t offset = block.offset;
    ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, bytes_of(offset)), 0);
    EXPECT_EQ(device_stats().guest_blocks, 0u);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, bytes_of(offset)), -ENXIO);
    expect_books_agree();
}

TEST_F(E2eTest, AllocationsAreDistinct) {
    auto file = open();
    auto a = file->allocate_block(16 << 20);
    auto b = file->allocate_block(16 << 20);
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->phys_addr, b->phys_addr);
    EXPECT_TRUE(a->offset + a->size <= b->offset || b->offset + b->size <= a->offset);
    EXPECT_TRUE(file->deallocate_block(a->offset));
    EXPECT_TRUE(file->deallocate_block(b->offset));
    expect_books_agree();
}

TEST_F(E2eTest, HostErrorsComeBackAsErrno) {
    auto file = open();
    EXPECT_EQ(file->allocate_block(0).error(), Error(EINVAL));
    EXPECT_EQ(file->allocate_block(driver->bar1_size() + 1).error(), Error(ENOMEM));
    EXPECT_FALSE(file->allocate_block(UINT64_MAX)) << "a size that cannot be rounded";
    goldfish_address_space_allocate_block block{};
    block.size = 0;
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, bytes_of(block)), -EINVAL);
    expect_books_agree();
    EXPECT_EQ(driver->stats().blocks, 0u);
}

TEST_F(E2eTest, AreaExhaustionIsEnomemAndRecovers) {
    pci::emulated::MachineConfig config;
    config.device.bar1_size = 1 << 20;
    start(config);
    auto file = open();
    std::vector<uint64_t> offsets;
    for (;;) {
        auto block = file->allocate_block(64 << 10);
        if (!block) {
            EXPECT_EQ(block.error(), Error(ENOMEM));
            break;
        }
        offsets.push_back(block->offset);
        ASSERT_LT(offsets.size(), 64u);
    }
    EXPECT_FALSE(offsets.empty());
    expect_books_agree();
    ASSERT_TRUE(file->deallocate_block(offsets.back()));
    EXPECT_TRUE(file->allocate_block(64 << 10));
    expect_books_agree();
}

TEST_F(E2eTest, PingCreatesAContextAndBacksABlock) {
    auto file = open();
    auto created = file->ping(make_ping(kHostMemoryAllocator));
    ASSERT_TRUE(created);
    EXPECT_EQ(created->metadata, 0u);
    EXPECT_EQ(device_stats().contexts_by_type[kHostMemoryAllocator], 1u);

    auto block = file->allocate_block(8192);
    ASSERT_TRUE(block);
    // Userspace passes the BAR1 offset; the host sees (and echoes) the physical address.
    goldfish_address_space_ping ping = make_ping(kAllocate, block->offset, 8192);
    ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, bytes_of(ping)), 0);
    EXPECT_EQ(ping.metadata, 0u);
    EXPECT_EQ(ping.offset, block->phys_addr);
    auto memory = gf::device::testing::host_memory(machine->device(), block->phys_addr, 8192);
    ASSERT_TRUE(memory);
    std::memset(memory->data(), 0x33, memory->size());
    EXPECT_EQ(device_stats().memory_mappings, 1u);

    auto unallocated = file->ping(make_ping(kUnallocate, block->offset));
    ASSERT_TRUE(unallocated);
    EXPECT_EQ(unallocated->metadata, 0u);
    EXPECT_EQ(device_stats().memory_mappings, 0u);
    EXPECT_EQ(file->ping(make_ping(kUnallocate, block->offset))->metadata, kPingFailed);
}

TEST_F(E2eTest, PingAfterReleaseOfAnotherFileStillReachesItsOwnContext) {
    auto a = open();
    auto b = open();
    ASSERT_EQ(a->ping(make_ping(kHostMemoryAllocator))->metadata, 0u);
    ASSERT_EQ(b->ping(make_ping(kSharedSlots))->metadata, 0u);
    a.reset();
    EXPECT_EQ(device_stats().contexts_by_type[kHostMemoryAllocator], 0u);
    EXPECT_EQ(b->ping(make_ping(3))->metadata, 0u) << "shared slots: supported";
}

TEST_F(E2eTest, UnknownContextTypeIsRefusedByTheHost) {
    auto file = open();
    EXPECT_EQ(file->ping(make_ping(99))->metadata, kPingFailed);
}

TEST_F(E2eTest, SharedSlotsClaimAndUnclaim) {
    auto file = open();
    ASSERT_EQ(file->ping(make_ping(kSharedSlots))->metadata, 0u);
    auto piece = file->ping(make_ping(kAllocate, 0, 4096));
    ASSERT_TRUE(piece);
    ASSERT_EQ(piece->metadata, 0u);
    const uint64_t offset = piece->offset;  // the host answers with a BAR1 offset
    const uint64_t size = piece->size;
    EXPECT_GE(size, 4096u);

    goldfish_address_space_claim_shared claim{offset, size};
    ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, bytes_of(claim)), 0);
    EXPECT_EQ(claim.offset, offset);
    EXPECT_EQ(driver->stats().claims, 1u);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, bytes_of(claim)), -EINVAL);

    uint64_t unclaim = offset;
    ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, bytes_of(unclaim)), 0);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, bytes_of(unclaim)), -ENXIO);
    EXPECT_EQ(driver->stats().claims, 0u);
}

TEST_F(E2eTest, ClaimContainmentAndOverflow) {
    auto file = open();
    const uint64_t bar1 = driver->bar1_size();
    ASSERT_TRUE(file->claim_shared(0x10000, 0x10000));
    EXPECT_EQ(file->claim_shared(0x8000, 0x20000).error(), Error(EINVAL)) << "contains";
    EXPECT_EQ(file->claim_shared(0x0, UINT64_MAX).error(), Error(EINVAL)) << "contains, huge";
    EXPECT_EQ(file->claim_shared(0x18000, 0x100).error(), Error(EINVAL)) << "inside";
    EXPECT_EQ(file->claim_shared(0x1F000, 0x2000).error(), Error(EINVAL)) << "straddles end";
    EXPECT_EQ(file->claim_shared(UINT64_MAX - 0xFFF, 0x2000).error(), Error(EINVAL)) << "wraps";
    EXPECT_EQ(file->claim_shared(bar1 - 0x1000, 0x1001).error(), Error(EINVAL)) << "past BAR1";
    EXPECT_EQ(file->claim_shared(0x30000, 0).error(), Error(EINVAL)) << "empty";
    EXPECT_TRUE(file->claim_shared(bar1 - 0x1000, 0x1000)) << "last page of BAR1";
    EXPECT_TRUE(file->claim_shared(0x20000, 0x1000)) << "adjacent";
    EXPECT_EQ(driver->stats().claims, 3u);
}

// Real clients' create pings carry garbage offsets (set_subdevice_type sets only metadata):
// all ones must create the context, as on the C driver. A command whose offset wraps below
// BAR1 reaches the host, which refuses it without touching anything.
TEST_F(E2eTest, PingOffsetWrapsAndTheHostRefusesWhatIsOutsideBar1) {
    const uint64_t wraps_to_zero = UINT64_MAX - driver->bar1_phys_start() + 1;
    for (const uint64_t type : {kHostMemoryAllocator, kSharedSlots}) {
        SCOPED_TRACE(type);
        auto file = open();
        goldfish_address_space_ping create = make_ping(type, UINT64_MAX, UINT64_MAX);
        ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, bytes_of(create)), 0);
        EXPECT_EQ(create.metadata, 0u);
        EXPECT_EQ(device_stats().contexts_by_type[type], 1u);

        auto block = file->allocate_block(4096);
        ASSERT_TRUE(block);
        for (const uint64_t offset :
             {uint64_t{UINT64_MAX}, wraps_to_zero, uint64_t{wraps_to_zero + block->offset}}) {
            goldfish_address_space_ping allocate = make_ping(kAllocate, offset, 4096);
            goldfish_address_space_ping unallocate = make_ping(kUnallocate, offset);
            ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, bytes_of(unallocate)), 0);
            EXPECT_EQ(unallocate.metadata, kPingFailed) << std::hex << offset;
            if (type == kHostMemoryAllocator) {
                ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, bytes_of(allocate)), 0);
                EXPECT_EQ(allocate.metadata, kPingFailed) << std::hex << offset;
            }
        }
        EXPECT_EQ(device_stats().memory_mappings, 0u);
        EXPECT_EQ(device_stats().host_regions, 0u);
        expect_books_agree();
    }
    expect_nothing_held();
}

TEST_F(E2eTest, UnknownCommandAndWrongSizes) {
    auto file = open();
    std::array<std::byte, 64> arg{};
    EXPECT_EQ(file->ioctl(0x4763, arg), -ENOTTY);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, std::span(arg).first(39)), -EINVAL);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, std::span(arg).first(8)),
              -EINVAL);
    EXPECT_EQ(device_stats().guest_blocks, 0u);
}

TEST_F(E2eTest, PerFileLimits) {
    DriverConfig limits;
    limits.max_blocks_per_file = 3;
    limits.max_claims_per_file = 1;
    start({}, limits);
    auto file = open();
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(file->allocate_block(4096));
    }
    EXPECT_EQ(file->allocate_block(4096).error(), Error(ENOSPC));
    EXPECT_EQ(device_stats().guest_blocks, 3u) << "the refused one never reached the host";
    ASSERT_TRUE(file->claim_shared(0, 4096));
    EXPECT_EQ(file->claim_shared(4096, 4096).error(), Error(ENOSPC));
    auto other = open();
    EXPECT_TRUE(other->allocate_block(4096)) << "the limit is per file";
}

TEST_F(E2eTest, ReleaseFreesEverythingOnTheHost) {
    auto file = open();
    ASSERT_EQ(file->ping(make_ping(kHostMemoryAllocator))->metadata, 0u);
    for (int i = 0; i < 5; ++i) {
        auto block = file->allocate_block(4096 * (i + 1));
        ASSERT_TRUE(block);
        ASSERT_EQ(file->ping(make_ping(kAllocate, block->offset, 4096))->metadata, 0u);
    }
    ASSERT_TRUE(file->claim_shared(0x100000, 0x1000));
    EXPECT_EQ(device_stats().guest_blocks, 5u);
    EXPECT_EQ(device_stats().memory_mappings, 5u);
    file->release();
    expect_nothing_held();
    EXPECT_EQ(file->allocate_block(4096).error(), Error(ENODEV));
}

TEST_F(E2eTest, RemoveWithFilesStillOpen) {
    auto a = open();
    auto b = open();
    ASSERT_EQ(a->ping(make_ping(kHostMemoryAllocator))->metadata, 0u);
    auto block = a->allocate_block(1 << 20);
    ASSERT_TRUE(block);
    ASSERT_EQ(a->ping(make_ping(kAllocate, block->offset, 1 << 20))->metadata, 0u);
    ASSERT_TRUE(b->allocate_block(4096));
    ASSERT_TRUE(b->claim_shared(0, 4096));
    EXPECT_EQ(device_stats().handles, 2u);

    driver->remove();

    expect_nothing_held();
    EXPECT_FALSE(machine->pci_device().is_enabled());
    EXPECT_FALSE(machine->pci_device().region_held(0));
    EXPECT_FALSE(machine->pci_device().region_held(1));
    EXPECT_EQ(driver->open().error(), Error(ENODEV));
    for (File* file : {a.get(), b.get()}) {
        EXPECT_EQ(file->allocate_block(4096).error(), Error(ENODEV));
        EXPECT_EQ(file->deallocate_block(block->offset).error(), Error(ENODEV));
        EXPECT_EQ(file->ping(make_ping(kAllocate)).error(), Error(ENODEV));
        EXPECT_EQ(file->claim_shared(0, 4096).error(), Error(ENODEV));
        EXPECT_EQ(file->unclaim_shared(0).error(), Error(ENODEV));
        uint64_t offset = 0;
        EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, bytes_of(offset)),
                  -ENODEV);
    }
    a.reset();
    b.reset();
    expect_nothing_held();

    // The function is free for the next driver.
    driver.reset();
    auto again = Driver::probe(machine->pci_device());
    ASSERT_TRUE(again);
    auto file = (*again)->open();
    ASSERT_TRUE(file);
    EXPECT_TRUE((*file)->allocate_block(4096));
}

TEST_F(E2eTest, SecondSharedMemoryBarOverBar1IsEbusyWhileBound) {
    EXPECT_EQ(pci::SharedMemoryBar::create(machine->pci_device(), 1, "intruder").error(),
              Error(EBUSY));
    EXPECT_EQ(Driver::probe(machine->pci_device()).error(), Error(EBUSY));
    driver->remove();
    EXPECT_TRUE(pci::SharedMemoryBar::create(machine->pci_device(), 1, "after unbind"));
}

}  // namespace
}  // namespace gf::driver
