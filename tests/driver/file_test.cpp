// Open, each ioctl and release against the recording mock: the register
// traffic of docs/uapi.md#open-and-release, #ioctls (Rust v3 order), and each failure path.
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>
#include <vector>

#include "driver/file.h"
#include "driver/mock_device.h"

namespace gf::driver {
namespace {

using testing::kBar1Size;
using testing::kBar1Start;
using testing::kFirstDmaPage;
using testing::MockDeviceTest;
using testing::R;
using testing::W;
using testing::operator+;
using Events = std::vector<std::string>;

constexpr uint32_t kHandle = 7;  // the scripted device's first handle

Events open_sequence(uint32_t handle, uint64_t page) {
    return {"dma_alloc " + pci::testing::hex(page),
            W(Register::COMMAND, Command::GEN_HANDLE),
            R(Register::HANDLE, handle),
            W(Register::HANDLE, handle),
            W(Register::PING_INFO_ADDR_LOW, static_cast<uint32_t>(page)),
            W(Register::PING_INFO_ADDR_HIGH, static_cast<uint32_t>(page >> 32)),
            W(Register::COMMAND, Command::TELL_PING_INFO_ADDR),
            R(Register::PING_INFO_ADDR_LOW, static_cast<uint32_t>(page)),
            R(Register::PING_INFO_ADDR_HIGH, static_cast<uint32_t>(page >> 32))};
}

Events deallocate_sequence(uint64_t offset, uint32_t status = 0) {
    return {W(Register::BLOCK_OFFSET_LOW, static_cast<uint32_t>(offset)),
            W(Register::BLOCK_OFFSET_HIGH, static_cast<uint32_t>(offset >> 32)),
            W(Register::COMMAND, Command::DEALLOCATE_BLOCK), R(Register::STATUS, status)};
}

Events destroy_sequence(uint32_t handle) {
    return {W(Register::HANDLE, handle), W(Register::COMMAND, Command::DESTROY_HANDLE)};
}

class FileTest : public MockDeviceTest {
  protected:
    void SetUp() override {
        driver = probe();
        ASSERT_TRUE(driver);
    }
    std::unique_ptr<Driver> driver;
};

TEST_F(FileTest, OpenSequence) {
    auto file = driver->open();
    ASSERT_TRUE(file);
    EXPECT_EQ(events(), open_sequence(kHandle, kFirstDmaPage));
    EXPECT_EQ((*file)->handle(), kHandle);
    EXPECT_EQ(driver->stats().open_files, 1u);
}

TEST_F(FileTest, OpenFailsWhenNoPingPage) {
    mock->fail_dma = true;
    EXPECT_EQ(driver->open().error(), Error(ENOMEM));
    EXPECT_EQ(events(), (Events{"dma_alloc failed"}));
}

TEST_F(FileTest, InvalidHandleFailsOpen) {
    next_handle = 0xFFFF'FFFF;
    EXPECT_EQ(driver->open().error(), Error(EINVAL));
    EXPECT_EQ(events(), (Events{"dma_alloc 0x80000000", W(Register::COMMAND, Command::GEN_HANDLE),
                                R(Register::HANDLE, 0xFFFF'FFFF), "dma_free 0x80000000"}));
    EXPECT_EQ(mock->live_dma_pages(), 0u);
    EXPECT_EQ(driver->stats().open_files, 0u);
}

TEST_F(FileTest, PingAddressMismatchDestroysHandleAndUnlocks) {
    corrupt_ping_info_readback = true;
    EXPECT_EQ(driver->open().error(), Error(EINVAL));
    Events expected = open_sequence(kHandle, kFirstDmaPage);
    expected.back() = R(Register::PING_INFO_ADDR_HIGH, 0);
    expected[expected.size() - 2] =
        R(Register::PING_INFO_ADDR_LOW, static_cast<uint32_t>(kFirstDmaPage ^ 0x1000));
    EXPECT_EQ(events(), (expected + destroy_sequence(kHandle) + Events{"dma_free 0x80000000"}));
    EXPECT_EQ(destroyed_handles, (std::vector<uint32_t>{kHandle}));
    EXPECT_EQ(driver->stats().open_files, 0u);

    // Nothing was left locked: the next open and a command go through.
    corrupt_ping_info_readback = false;
    auto file = driver->open();
    ASSERT_TRUE(file);
    EXPECT_TRUE((*file)->allocate_block(4096));
}

TEST_F(FileTest, AllocateSequence) {
    auto file = open(*driver);
    allocate_offset = 0x1'2345'6000;
    allocate_size = 0x2'0000'1000;
    auto block = file->allocate_block(0x1'0000'0001);
    ASSERT_TRUE(block);
    EXPECT_EQ(
        events(),
        (Events{W(Register::BLOCK_SIZE_LOW, 0x1), W(Register::BLOCK_SIZE_HIGH, 0x1),
                W(Register::COMMAND, Command::ALLOCATE_BLOCK), R(Register::STATUS, 0),
                R(Register::BLOCK_OFFSET_LOW, 0x2345'6000), R(Register::BLOCK_OFFSET_HIGH, 0x1),
                R(Register::BLOCK_SIZE_LOW, 0x1000), R(Register::BLOCK_SIZE_HIGH, 0x2)}));
    EXPECT_EQ(block->size, 0x2'0000'1000u);
    EXPECT_EQ(block->offset, 0x1'2345'6000u);
    EXPECT_EQ(block->phys_addr, kBar1Start + 0x1'2345'6000u);
    EXPECT_EQ(driver->stats().blocks, 1u);
    EXPECT_EQ(driver->stats().block_bytes, 0x2'0000'1000u);
}

TEST_F(FileTest, AllocateHostErrorsAreReturned) {
    auto file = open(*driver);
    allocate_status = ENOMEM;
    EXPECT_EQ(file->allocate_block(4096).error(), Error(ENOMEM));
    EXPECT_EQ(events(),
              (Events{W(Register::BLOCK_SIZE_LOW, 4096), W(Register::BLOCK_SIZE_HIGH, 0),
                      W(Register::COMMAND, Command::ALLOCATE_BLOCK), R(Register::STATUS, ENOMEM)}));
    allocate_status = EINVAL;
    EXPECT_EQ(file->allocate_block(0).error(), Error(EINVAL));
    EXPECT_EQ(driver->stats().blocks, 0u);
    EXPECT_TRUE(deallocated_offsets.empty());
}

TEST_F(FileTest, StatusAboveIntMaxIsEio) {
    auto file = open(*driver);
    allocate_status = 0x8000'0000;
    EXPECT_EQ(file->allocate_block(4096).error(), Error(EIO));
    allocate_status = 0xFFFF'FFFF;
    EXPECT_EQ(file->allocate_block(4096).error(), Error(EIO));
    allocate_status = INT_MAX;
    EXPECT_EQ(file->allocate_block(4096).error(), Error(INT_MAX));

    allocate_status = 0;
    auto block = file->allocate_block(4096);
    ASSERT_TRUE(block);
    deallocate_status = 0x9000'0000;
    EXPECT_EQ(file->deallocate_block(block->offset).error(), Error(EIO));
    EXPECT_EQ(driver->stats().blocks, 1u) << "the host still holds it";
}

TEST_F(FileTest, GrantSmallerThanAskedIsFreedAndEio) {
    auto file = open(*driver);
    allocate_size = 4096;
    EXPECT_EQ(file->allocate_block(8192).error(), Error(EIO));
    EXPECT_EQ(deallocated_offsets, (std::vector<uint64_t>{0x2000}));
    EXPECT_EQ(driver->stats().blocks, 0u);
}

TEST_F(FileTest, GrantPastBar1IsFreedAndEio) {
    auto file = open(*driver);
    allocate_offset = kBar1Size - 4096;
    allocate_size = 8192;
    EXPECT_EQ(file->allocate_block(4096).error(), Error(EIO));
    EXPECT_EQ(deallocated_offsets, (std::vector<uint64_t>{kBar1Size - 4096}));

    allocate_offset = 0xFFFF'FFFF'FFFF'F000;  // offset + size wraps
    allocate_size = 0x2000;
    EXPECT_EQ(file->allocate_block(4096).error(), Error(EIO));
    EXPECT_EQ(deallocated_offsets.size(), 2u);
    EXPECT_EQ(driver->stats().blocks, 0u);
}

TEST_F(FileTest, GrantOfZeroBytesIsEio) {
    auto file = open(*driver);
    allocate_size = 0;
    // The scripted device grants what was asked: 0.
    EXPECT_EQ(file->allocate_block(0).error(), Error(EIO));
    EXPECT_EQ(driver->stats().blocks, 0u);
}

TEST_F(FileTest, DuplicateGrantIsEioAndKeepsTheTrackedBlock) {
    auto file = open(*driver);
    auto first = file->allocate_block(4096);
    ASSERT_TRUE(first);
    allocate_offset = first->offset;  // a broken device hands it out again
    EXPECT_EQ(file->allocate_block(4096).error(), Error(EIO));
    EXPECT_TRUE(deallocated_offsets.empty());
    // An overlapping (not identical) grant is freed on the host.
    allocate_offset = first->offset + 4096;
    allocate_size = 8192;
    ASSERT_TRUE(file->deallocate_block(first->offset));
    ASSERT_TRUE(file->allocate_block(4096));  // at first + 4096, 8192 bytes
    allocate_offset = first->offset + 8192;
    allocate_size = 4096;
    EXPECT_EQ(file->allocate_block(4096).error(), Error(EIO));
    EXPECT_EQ(deallocated_offsets.back(), first->offset + 8192);
}

TEST_F(FileTest, DeallocateSequence) {
    auto file = open(*driver);
    auto block = file->allocate_block(4096);
    ASSERT_TRUE(block);
    mock->clear_events();
    ASSERT_TRUE(file->deallocate_block(block->offset));
    EXPECT_EQ(events(), deallocate_sequence(0x2000));
    EXPECT_EQ(driver->stats().blocks, 0u);
    EXPECT_EQ(driver->stats().block_bytes, 0u);
}

TEST_F(FileTest, DeallocateOfABlockNotOwnedIsEnxioWithoutTraffic) {
    auto file = open(*driver);
    auto block = file->allocate_block(4096);
    ASSERT_TRUE(block);
    mock->clear_events();
    EXPECT_EQ(file->deallocate_block(block->offset + 4096).error(), Error(ENXIO));
    EXPECT_EQ(file->deallocate_block(0).error(), Error(ENXIO));
    EXPECT_TRUE(events().empty());

    // Another file's block is not this file's to free.
    auto other = open(*driver);
    EXPECT_EQ(other->deallocate_block(block->offset).error(), Error(ENXIO));
}

TEST_F(FileTest, HostFailureOnDeallocateKeepsTheBlock) {
    auto file = open(*driver);
    auto block = file->allocate_block(4096);
    ASSERT_TRUE(block);
    deallocate_status = EINVAL;
    EXPECT_EQ(file->deallocate_block(block->offset).error(), Error(EINVAL));
    EXPECT_EQ(driver->stats().blocks, 1u);
    deallocate_status = 0;
    EXPECT_TRUE(file->deallocate_block(block->offset));
    EXPECT_EQ(deallocated_offsets, (std::vector<uint64_t>{block->offset}));
    EXPECT_EQ(file->deallocate_block(block->offset).error(), Error(ENXIO));
}

TEST_F(FileTest, PingSequenceAndPage) {
    auto file = open(*driver);
    goldfish_address_space_ping request{};
    request.offset = 0x3000;
    request.size = 0x100;
    request.metadata = 5;
    request.version = 40;
    request.wait_fd = 1;
    request.wait_flags = 2;
    request.direction = 3;

    bool pinged = false;
    on_ping = [&](std::byte* page) {
        pinged = true;
        goldfish_address_space_ping seen;
        std::memcpy(&seen, page, sizeof(seen));
        EXPECT_EQ(seen.offset, kBar1Start + 0x3000);
        EXPECT_EQ(seen.size, 0x100u);
        EXPECT_EQ(seen.metadata, 5u);
        EXPECT_EQ(seen.version, 40u);
        EXPECT_EQ(seen.wait_fd, 1u);
        EXPECT_EQ(seen.wait_flags, 2u);
        EXPECT_EQ(seen.direction, 3u);
        // data_size and the rest of the page are zero (no stale bytes).
        for (size_t i = 40; i < pci::testing::MockBackend::kPageSize; ++i) {
            ASSERT_EQ(page[i], std::byte{0}) << "at " << i;
        }
        const uint64_t result = 0x1234;
        std::memcpy(page + 16, &result, sizeof(result));  // the host's answer
        std::memset(page + 100, 0xEE, 8);                 // scribbles the next ping must not see
    };
    auto reply = file->ping(request);
    ASSERT_TRUE(reply);
    EXPECT_TRUE(pinged);
    EXPECT_EQ(events(), (Events{"dma_verify " + pci::testing::hex(kFirstDmaPage),
                                W(Register::PING, kHandle)}));
    EXPECT_EQ(reply->offset, kBar1Start + 0x3000) << "offset comes back physical, as in C";
    EXPECT_EQ(reply->metadata, 0x1234u);
    EXPECT_EQ(reply->size, 0x100u);
    EXPECT_EQ(reply->direction, 3u);

    pinged = false;
    ASSERT_TRUE(file->ping(request));
    EXPECT_TRUE(pinged);
}

// A userspace ping page can be migrated; the host must never read a stale frame.
TEST_F(FileTest, PingPageThatMovedIsEioWithoutTraffic) {
    auto file = open(*driver);
    mock->fail_dma_verify = true;
    bool pinged = false;
    on_ping = [&](std::byte*) { pinged = true; };
    EXPECT_EQ(file->ping(goldfish_address_space_ping{}).error(), Error(EIO));
    EXPECT_FALSE(pinged);
    EXPECT_EQ(events(), (Events{"dma_verify " + pci::testing::hex(kFirstDmaPage)}));
    mock->fail_dma_verify = false;
    EXPECT_TRUE(file->ping(goldfish_address_space_ping{}));  // the file stays usable
}

// As the C driver: BAR1's start is added modulo 2^64, so a create ping with an
// uninitialised offset reaches the host (which validates every address it uses).
TEST_F(FileTest, PingOffsetWrapsAsInTheCDriver) {
    auto file = open(*driver);
    std::vector<uint64_t> seen;
    on_ping = [&](std::byte* page) {
        uint64_t offset;
        std::memcpy(&offset, page, sizeof(offset));
        seen.push_back(offset);
    };
    goldfish_address_space_ping request{};
    request.offset = UINT64_MAX - kBar1Start + 1;
    auto wrapped_to_zero = file->ping(request);
    ASSERT_TRUE(wrapped_to_zero);
    EXPECT_EQ(wrapped_to_zero->offset, 0u);
    request.offset = UINT64_MAX;
    auto all_ones = file->ping(request);
    ASSERT_TRUE(all_ones);
    EXPECT_EQ(all_ones->offset, kBar1Start - 1);
    request.offset = UINT64_MAX - kBar1Start;
    auto no_wrap = file->ping(request);
    ASSERT_TRUE(no_wrap);
    EXPECT_EQ(no_wrap->offset, UINT64_MAX);
    EXPECT_EQ(seen, (std::vector<uint64_t>{0, kBar1Start - 1, UINT64_MAX}));
}

TEST_F(FileTest, ClaimAndUnclaimAreBookkeepingOnly) {
    auto file = open(*driver);
    ASSERT_TRUE(file->claim_shared(0x1000, 0x1000));
    EXPECT_EQ(driver->stats().claims, 1u);
    ASSERT_TRUE(file->unclaim_shared(0x1000));
    EXPECT_EQ(driver->stats().claims, 0u);
    EXPECT_EQ(file->unclaim_shared(0x1000).error(), Error(ENXIO));
    EXPECT_TRUE(events().empty());
}

TEST_F(FileTest, ClaimValidation) {
    auto file = open(*driver);
    EXPECT_EQ(file->claim_shared(0x1000, 0).error(), Error(EINVAL));
    EXPECT_EQ(file->claim_shared(UINT64_MAX - 0xFFF, 0x1000).error(), Error(EINVAL));  // wraps
    EXPECT_EQ(file->claim_shared(kBar1Size - 0x1000, 0x2000).error(), Error(EINVAL));
    EXPECT_EQ(file->claim_shared(kBar1Size, 1).error(), Error(EINVAL));
    EXPECT_TRUE(file->claim_shared(kBar1Size - 0x1000, 0x1000));

    // The cases Fuchsia's integration test checks, then containment.
    ASSERT_TRUE(file->claim_shared(4096, 4096));
    EXPECT_EQ(file->claim_shared(4096, 2048).error(), Error(EINVAL));
    EXPECT_EQ(file->claim_shared(0, 4097).error(), Error(EINVAL));
    EXPECT_EQ(file->claim_shared(8191, 4096).error(), Error(EINVAL));
    EXPECT_EQ(file->claim_shared(0, 0x10000).error(), Error(EINVAL)) << "contains the claim";
    EXPECT_EQ(file->claim_shared(5000, 10).error(), Error(EINVAL)) << "inside the claim";
    EXPECT_TRUE(file->claim_shared(0, 4096)) << "adjacent below";
    EXPECT_TRUE(file->claim_shared(8192, 4096)) << "adjacent above";
    EXPECT_EQ(driver->stats().claims, 4u);

    // Claims are per file: another file may claim the same range.
    auto other = open(*driver);
    EXPECT_TRUE(other->claim_shared(4096, 4096));
}

TEST_F(FileTest, PerFileLimitsAreEnospc) {
    driver.reset();
    DriverConfig config;
    config.max_blocks_per_file = 2;
    config.max_claims_per_file = 2;
    driver = probe(config);
    auto file = open(*driver);
    ASSERT_TRUE(file->allocate_block(4096));
    ASSERT_TRUE(file->allocate_block(4096));
    mock->clear_events();
    EXPECT_EQ(file->allocate_block(4096).error(), Error(ENOSPC));
    EXPECT_TRUE(events().empty()) << "refused before asking the host";

    ASSERT_TRUE(file->claim_shared(0, 4096));
    ASSERT_TRUE(file->claim_shared(4096, 4096));
    EXPECT_EQ(file->claim_shared(8192, 4096).error(), Error(ENOSPC));
    // Freeing one makes room again.
    ASSERT_TRUE(file->unclaim_shared(0));
    EXPECT_TRUE(file->claim_shared(8192, 4096));
}

TEST_F(FileTest, ReleaseSequence) {
    auto file = open(*driver);
    ASSERT_TRUE(file->allocate_block(4096));  // at 0x2000
    ASSERT_TRUE(file->allocate_block(4096));  // at 0x3000
    ASSERT_TRUE(file->claim_shared(0x10000, 0x1000));
    mock->clear_events();
    file->release();
    EXPECT_EQ(events(), (destroy_sequence(kHandle) + deallocate_sequence(0x2000) +
                         deallocate_sequence(0x3000) + Events{"dma_free 0x80000000"}));
    const DriverStats stats = driver->stats();
    EXPECT_EQ(stats.open_files, 0u);
    EXPECT_EQ(stats.blocks, 0u);
    EXPECT_EQ(stats.block_bytes, 0u);
    EXPECT_EQ(stats.claims, 0u);

    mock->clear_events();
    file->release();
    file.reset();  // the destructor releases again: nothing more happens
    EXPECT_TRUE(events().empty());
}

TEST_F(FileTest, CallsAfterReleaseAreEnodev) {
    auto file = open(*driver);
    file->release();
    mock->clear_events();
    EXPECT_EQ(file->allocate_block(4096).error(), Error(ENODEV));
    EXPECT_EQ(file->deallocate_block(0).error(), Error(ENODEV));
    EXPECT_EQ(file->ping({}).error(), Error(ENODEV));
    EXPECT_EQ(file->claim_shared(0, 4096).error(), Error(ENODEV));
    EXPECT_EQ(file->unclaim_shared(0).error(), Error(ENODEV));
    std::array<std::byte, 24> arg{};
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, arg), -ENODEV);
    EXPECT_TRUE(events().empty());
}

TEST_F(FileTest, RemoveRevokesLiveFiles) {
    auto file = open(*driver);
    ASSERT_TRUE(file->allocate_block(4096));
    mock->clear_events();
    driver->remove();
    EXPECT_EQ(events(), (destroy_sequence(kHandle) + deallocate_sequence(0x2000) +
                         Events{"dma_free 0x80000000", "disable", "unmap 0", "release_region 0",
                                "unmap 1", "release_region 1"}));
    mock->clear_events();
    EXPECT_EQ(file->allocate_block(4096).error(), Error(ENODEV));
    EXPECT_EQ(file->ping({}).error(), Error(ENODEV));
    file.reset();
    driver.reset();
    EXPECT_TRUE(events().empty());
    EXPECT_EQ(mock->live_dma_pages(), 0u);
}

// A release that arrives after unbind closed the gate but before it revoked
// the file must still destroy the handle (it once only unlisted the file).
TEST_F(FileTest, ReleaseWhileUnbindWaitsStillCleansUp) {
    auto file = open(*driver);
    ASSERT_TRUE(file->allocate_block(4096));
    const uint32_t handle = file->handle();
    std::atomic<bool> in_open{false};
    std::atomic<bool> proceed{false};
    mock->on_dma_alloc = [&] {
        in_open = true;
        while (!proceed) {
            std::this_thread::yield();
        }
    };
    // An open in flight holds unbind in its wait for running calls.
    std::thread opener([&] { auto late = driver->open(); });
    while (!in_open) {
        std::this_thread::yield();
    }
    std::thread unbind([&] { driver->remove(); });
    while (file->unclaim_shared(0x123).error() != Error(ENODEV)) {
        std::this_thread::yield();  // until the gate is closed
    }
    file->release();
    EXPECT_EQ(destroyed_handles, (std::vector<uint32_t>{handle}));
    EXPECT_EQ(deallocated_offsets, (std::vector<uint64_t>{0x2000}));
    proceed = true;
    opener.join();
    unbind.join();
    EXPECT_EQ(destroyed_handles.size(), 2u) << "the late open was revoked by unbind";
    const DriverStats stats = driver->stats();
    EXPECT_EQ(stats.open_files, 0u);
    EXPECT_EQ(stats.blocks, 0u);
    EXPECT_EQ(mock->live_dma_pages(), 0u);
}

TEST_F(FileTest, FileMayOutliveTheDriver) {
    auto file = open(*driver);
    driver.reset();
    EXPECT_EQ(file->claim_shared(0, 4096).error(), Error(ENODEV));
    mock->clear_events();
    file.reset();
    EXPECT_TRUE(events().empty());
}

// --- The ioctl entry point -------------------------------------------------

template <typename T>
std::span<std::byte> bytes_of(T& value) {
    return {reinterpret_cast<std::byte*>(&value), sizeof(value)};
}

TEST_F(FileTest, IoctlAllocateAndDeallocate) {
    auto file = open(*driver);
    goldfish_address_space_allocate_block block{};
    block.size = 5000;
    ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, bytes_of(block)), 0);
    EXPECT_EQ(block.size, 8192u);
    EXPECT_EQ(block.offset, 0x2000u);
    EXPECT_EQ(block.phys_addr, kBar1Start + 0x2000);

    uint64_t offset = block.offset;
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, bytes_of(offset)), 0);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, bytes_of(offset)), -ENXIO);
}

TEST_F(FileTest, IoctlErrorLeavesTheArgumentUntouched) {
    auto file = open(*driver);
    allocate_status = ENOMEM;
    goldfish_address_space_allocate_block block{4096, 0x55, 0x66};
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, bytes_of(block)), -ENOMEM);
    EXPECT_EQ(block.size, 4096u);
    EXPECT_EQ(block.offset, 0x55u);
    EXPECT_EQ(block.phys_addr, 0x66u);
}

TEST_F(FileTest, IoctlPingClaimUnclaim) {
    auto file = open(*driver);
    on_ping = [](std::byte* page) { page[16] = std::byte{0x42}; };
    goldfish_address_space_ping ping{};
    ping.offset = 0x10;
    ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, bytes_of(ping)), 0);
    EXPECT_EQ(ping.offset, kBar1Start + 0x10);
    EXPECT_EQ(ping.metadata, 0x42u);

    goldfish_address_space_claim_shared claim{0x4000, 0x1000};
    ASSERT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, bytes_of(claim)), 0);
    EXPECT_EQ(claim.offset, 0x4000u);
    EXPECT_EQ(claim.size, 0x1000u);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, bytes_of(claim)), -EINVAL);
    uint64_t offset = 0x4000;
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, bytes_of(offset)), 0);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, bytes_of(offset)), -ENXIO);
}

TEST_F(FileTest, IoctlUnknownCommandIsEnotty) {
    auto file = open(*driver);
    std::array<std::byte, 56> arg{};
    EXPECT_EQ(file->ioctl(0x4763, arg), -ENOTTY);  // _IO('G', 99)
    EXPECT_EQ(file->ioctl(0xC038470F, arg), -ENOTTY) << "PING_WITH_DATA is not in the RFC subset";
    EXPECT_EQ(file->ioctl(0, {}), -ENOTTY);
    EXPECT_TRUE(events().empty());
}

TEST_F(FileTest, IoctlWrongArgumentSizeIsEinval) {
    auto file = open(*driver);
    std::array<std::byte, 64> arg{};
    const std::span<std::byte> all(arg);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, all.first(16)), -EINVAL);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, all.first(25)), -EINVAL);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, all.first(4)), -EINVAL);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_PING, all.first(48)), -EINVAL);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, {}), -EINVAL);
    EXPECT_EQ(file->ioctl(GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, all.first(16)), -EINVAL);
    EXPECT_TRUE(events().empty());
}

}  // namespace
}  // namespace gf::driver
