// Type 5 through the registers and pings (docs/contexts.md#host-memory-allocator).
#include "device/host_memory_allocator_context.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "device/device_test_support.h"

namespace gf::device {
namespace {

using testing::Guest;
using testing::k16GiB;
using testing::kBar1Base;

constexpr uint64_t kAllocate = HostMemoryAllocatorContext::Allocate;
constexpr uint64_t kUnallocate = HostMemoryAllocatorContext::Unallocate;

class HostMemoryAllocatorTest : public ::testing::Test {
  protected:
    void SetUp() override {
        h = guest.open();
        ASSERT_EQ(guest.create(h, 5), kPingOk);
    }
    uint64_t allocate(Guest::Handle handle, uint64_t gpa, uint64_t size) {
        return guest.ping_command(handle, kAllocate, gpa, size).metadata;
    }
    uint64_t unallocate(Guest::Handle handle, uint64_t gpa) {
        return guest.ping_command(handle, kUnallocate, gpa).metadata;
    }

    Guest guest;
    Guest::Handle h{};
};

TEST_F(HostMemoryAllocatorTest, TheMinimalClientSequenceSharesMemoryWithTheHost) {
    // docs/contexts.md#client-sequences: ALLOCATE_BLOCK, Allocate ping, data visible both ways,
    // Unallocate, DEALLOCATE.
    const auto block = guest.allocate_block(10000);
    ASSERT_EQ(block.status, 0u);
    const uint64_t gpa = kBar1Base + block.offset;
    ASSERT_EQ(allocate(h, gpa, block.size), kPingOk);
    auto host = testing::host_memory(guest.device(), gpa, block.size).value();
    EXPECT_TRUE(testing::all_zero(host));
    testing::fill_pattern(host, 1);
    // A second lookup (another "user" of get_host_ptr) sees the same bytes.
    EXPECT_TRUE(
        testing::has_pattern(testing::host_memory(guest.device(), gpa, block.size).value(), 1));
    EXPECT_TRUE(testing::host_memory(guest.device(), gpa + 4096, 100));  // a range lookup
    EXPECT_EQ(guest.device().stats().backed_bytes, block.size);

    EXPECT_EQ(unallocate(h, gpa), kPingOk);
    EXPECT_EQ(testing::host_memory(guest.device(), gpa, 1).error(), Error(EFAULT));
    EXPECT_EQ(guest.deallocate_block(block.offset), 0u);
    EXPECT_EQ(guest.close(h), 0u);
    EXPECT_EQ(guest.device().stats().backed_bytes, 0u);
}

TEST_F(HostMemoryAllocatorTest, DuplicateGpaFailsOtherGpaWorksAndReallocationWorks) {
    const auto block = guest.allocate_block(3 * 4096);  // 16 KiB with the spare page
    const uint64_t gpa = kBar1Base + block.offset;
    EXPECT_EQ(allocate(h, gpa, 1), kPingOk);
    EXPECT_EQ(allocate(h, gpa, 1), kAllOnes);
    EXPECT_EQ(allocate(h, gpa + 4096, 4096), kPingOk);
    EXPECT_EQ(unallocate(h, gpa), kPingOk);
    EXPECT_EQ(allocate(h, gpa, 4096), kPingOk);
}

TEST_F(HostMemoryAllocatorTest, UnallocateTwiceFails) {
    const auto block = guest.allocate_block(1);
    const uint64_t gpa = kBar1Base + block.offset;
    ASSERT_EQ(allocate(h, gpa, 1), kPingOk);
    EXPECT_EQ(unallocate(h, gpa), kPingOk);
    EXPECT_EQ(unallocate(h, gpa), kAllOnes);
    EXPECT_EQ(unallocate(h, gpa + 4096), kAllOnes);
}

TEST_F(HostMemoryAllocatorTest, RefusesAddressesOutsideAGuestBlockOrBar1) {
    const auto block = guest.allocate_block(4096);  // 8 KiB
    const uint64_t gpa = kBar1Base + block.offset;
    EXPECT_EQ(allocate(h, kBar1Base - 4096, 4096), kAllOnes);           // below BAR1
    EXPECT_EQ(allocate(h, kBar1Base + k16GiB, 4096), kAllOnes);         // past BAR1
    EXPECT_EQ(allocate(h, kBar1Base + k16GiB - 4096, 8192), kAllOnes);  // straddles the end
    EXPECT_EQ(allocate(h, 0x1000, 4096), kAllOnes);                     // guest RAM, not BAR1
    EXPECT_EQ(allocate(h, kBar1Base, 4096), kAllOnes);                  // BAR1, no block
    EXPECT_EQ(allocate(h, gpa + 100, 4096), kAllOnes);                  // not page aligned
    EXPECT_EQ(allocate(h, gpa, 3 * 4096), kAllOnes);                    // beyond the block
    EXPECT_EQ(allocate(h, gpa + 4096, 4097), kAllOnes);                 // rounds past the end
    EXPECT_EQ(allocate(h, gpa, 0), kAllOnes);
    EXPECT_EQ(allocate(h, gpa, ~uint64_t{0}), kAllOnes);  // rounding would wrap
    EXPECT_EQ(allocate(h, ~uint64_t{0} - 4095, 4096), kAllOnes);
    EXPECT_EQ(guest.device().stats().memory_mappings, 0u);
    EXPECT_EQ(allocate(h, gpa, 8192), kPingOk);  // the whole block is fine
}

TEST_F(HostMemoryAllocatorTest, RefusesAHostRegion) {
    // A type-6 slab is BAR1 memory too, but not a guest block.
    const auto h6 = guest.open();
    ASSERT_EQ(guest.create(h6, 6), kPingOk);
    const PingInfo piece = guest.ping_command(h6, 1, 0, 4096);
    ASSERT_EQ(piece.metadata, kPingOk);
    EXPECT_EQ(allocate(h, kBar1Base + piece.phys_addr, 4096), kAllOnes);
    EXPECT_EQ(allocate(h, kBar1Base + piece.phys_addr + 8192, 4096), kAllOnes);
    // Nor may the guest DEALLOCATE_BLOCK a host region.
    const uint64_t slab = k16GiB - (64ull << 20);
    EXPECT_EQ(guest.deallocate_block(slab), static_cast<uint32_t>(EINVAL));
    EXPECT_EQ(guest.device().stats().host_regions, 1u);
}

TEST_F(HostMemoryAllocatorTest, UnknownCommandsFail) {
    EXPECT_EQ(guest.ping_command(h, 0).metadata, kAllOnes);
    EXPECT_EQ(guest.ping_command(h, 3).metadata, kAllOnes);
    EXPECT_EQ(guest.ping_command(h, ~uint64_t{0}).metadata, kAllOnes);
}

TEST_F(HostMemoryAllocatorTest, AnotherContextCanNeitherFreeNorOverlapAMapping) {
    const auto other = guest.open();
    ASSERT_EQ(guest.create(other, 5), kPingOk);
    const auto block = guest.allocate_block(3 * 4096);
    const uint64_t gpa = kBar1Base + block.offset;
    ASSERT_EQ(allocate(h, gpa, 8192), kPingOk);
    EXPECT_EQ(unallocate(other, gpa), kAllOnes);
    EXPECT_EQ(allocate(other, gpa, 4096), kAllOnes);
    EXPECT_EQ(allocate(other, gpa + 4096, 4096), kAllOnes);  // inside h's mapping
    EXPECT_EQ(allocate(other, gpa + 8192, 4096), kPingOk);   // the free page next to it
    EXPECT_TRUE(testing::host_memory(guest.device(), gpa, 8192));
    EXPECT_EQ(guest.device().stats().memory_mappings, 2u);
}

TEST_F(HostMemoryAllocatorTest, DeallocatingABlockRemovesItsMappingsAndNothingStaleRemains) {
    const auto block = guest.allocate_block(3 * 4096);
    const uint64_t gpa = kBar1Base + block.offset;
    ASSERT_EQ(allocate(h, gpa, 4096), kPingOk);
    ASSERT_EQ(allocate(h, gpa + 8192, 4096), kPingOk);
    testing::fill_pattern(testing::host_memory(guest.device(), gpa, 4096).value(), 3);

    EXPECT_EQ(guest.deallocate_block(block.offset), 0u);
    EXPECT_EQ(guest.device().stats().memory_mappings, 0u);
    EXPECT_EQ(guest.device().stats().backed_bytes, 0u);
    EXPECT_FALSE(testing::host_memory(guest.device(), gpa, 1));
    // The context forgot them: unallocating is now an error, not a double unmap.
    EXPECT_EQ(unallocate(h, gpa), kAllOnes);

    // The same range, reallocated to another context, is not disturbed by the first one.
    const auto other = guest.open();
    ASSERT_EQ(guest.create(other, 5), kPingOk);
    const auto again = guest.allocate_block(3 * 4096);
    ASSERT_EQ(again.offset, block.offset);
    ASSERT_EQ(allocate(other, gpa, 4096), kPingOk);
    EXPECT_TRUE(testing::all_zero(testing::host_memory(guest.device(), gpa, 4096).value()));
    EXPECT_EQ(guest.close(h), 0u);
    EXPECT_TRUE(testing::host_memory(guest.device(), gpa, 4096));
    EXPECT_EQ(unallocate(other, gpa), kPingOk);
}

TEST_F(HostMemoryAllocatorTest, DestroyHandleUnmapsEverythingTheContextHeld) {
    const auto a = guest.allocate_block(4096);
    const auto b = guest.allocate_block(20000);
    ASSERT_EQ(allocate(h, kBar1Base + a.offset, a.size), kPingOk);
    ASSERT_EQ(allocate(h, kBar1Base + b.offset, b.size), kPingOk);
    EXPECT_EQ(guest.device().stats().backed_bytes, a.size + b.size);
    EXPECT_EQ(guest.close(h), 0u);
    EXPECT_EQ(guest.device().stats().backed_bytes, 0u);
    // The kernel then frees the fd's blocks (Linux order: DESTROY_HANDLE first).
    EXPECT_EQ(guest.deallocate_block(a.offset), 0u);
    EXPECT_EQ(guest.deallocate_block(b.offset), 0u);
    EXPECT_EQ(guest.device().stats().area_free_bytes, k16GiB);
}

TEST_F(HostMemoryAllocatorTest, ReleasedMemoryLeavesTheProcessAndComesBackZeroed) {
    const uint64_t size = 1 << 20;
    const auto block = guest.allocate_block(size);
    const uint64_t gpa = kBar1Base + block.offset;
    ASSERT_EQ(allocate(h, gpa, size), kPingOk);
    auto host = testing::host_memory(guest.device(), gpa, size).value();
    const size_t pages = size / static_cast<size_t>(sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> resident(pages);
    // Untouched backed memory is not resident yet.
    ASSERT_EQ(mincore(host.data(), size, resident.data()), 0);
    EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](auto r) { return r & 1; }), 0);
    testing::fill_pattern(host, 9);
    ASSERT_EQ(mincore(host.data(), size, resident.data()), 0);
    EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](auto r) { return r & 1; }),
              static_cast<long>(pages));

    ASSERT_EQ(unallocate(h, gpa), kPingOk);
    // The span's address stays inside the device's reservation, so mincore on it is sound.
    ASSERT_EQ(mincore(host.data(), size, resident.data()), 0);
    EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](auto r) { return r & 1; }), 0);
    ASSERT_EQ(allocate(h, gpa, size), kPingOk);
    EXPECT_TRUE(testing::all_zero(testing::host_memory(guest.device(), gpa, size).value()));
}

}  // namespace
}  // namespace gf::device
