// Open files with memory of their own, on the emulated machine: what the driver binds into a
// file's memory file, what it refuses, and when a file that is still mapped may go.
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "driver/machine_fixture.h"

namespace gf::driver::testing {
namespace {

constexpr uint64_t kPage = 4096;
constexpr OpenOptions kWithMemory{.memory = true};

std::byte* map(int fd, uint64_t offset, uint64_t size) {
    void* p =
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(offset));
    return p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
}

uint64_t load(const std::byte* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

class MemoryTest : public MachineTest {
  protected:
    uint64_t host_load(uint64_t offset) {
        uint64_t v = ~0ull;
        EXPECT_TRUE(machine->device().read_bar1(offset, std::as_writable_bytes(std::span{&v, 1})));
        return v;
    }
    void host_store(uint64_t offset, uint64_t v) {
        EXPECT_TRUE(machine->device().write_bar1(offset, std::as_bytes(std::span{&v, 1})));
    }
};

TEST_F(MemoryTest, AFileWithoutMemoryHasNoMemoryFile) {
    auto file = open();
    ASSERT_TRUE(file);
    EXPECT_FALSE(file->memory_fd());
    ASSERT_TRUE(file->allocate_block(kPage));
    EXPECT_EQ(device_stats().file_bindings, 0u);
    file->release();
    expect_nothing_held();
}

TEST_F(MemoryTest, BlocksAreBoundIntoTheFilesMemoryAndFreedOut) {
    auto file = open(kWithMemory);
    ASSERT_TRUE(file);
    ASSERT_TRUE(file->memory_fd());
    auto block = file->allocate_block(2 * kPage);
    ASSERT_TRUE(block);
    EXPECT_EQ(device_stats().file_bindings, 1u);
    std::byte* p = map(*file->memory_fd(), block->offset, block->size);
    ASSERT_TRUE(p);
    std::memset(p, 0x3c, 8);
    EXPECT_EQ(host_load(block->offset), 0x3c3c3c3c3c3c3c3cu);
    host_store(block->offset + kPage, 42);
    EXPECT_EQ(load(p + kPage), 42u);
    ASSERT_TRUE(file->deallocate_block(block->offset));
    EXPECT_EQ(device_stats().file_bindings, 0u);
    EXPECT_EQ(load(p), 0u) << "freed memory leaves the file";
    ::munmap(p, block->size);
    file->release();
    expect_nothing_held();
}

TEST_F(MemoryTest, TheBindingCapGivesEnomemAndLeavesNothingAllocated) {
    pci::emulated::MachineConfig config;
    config.device.max_bar1_bindings = 2;
    start(config);
    auto file = open(kWithMemory);
    ASSERT_TRUE(file);
    ASSERT_TRUE(file->allocate_block(kPage));
    ASSERT_TRUE(file->allocate_block(kPage));
    auto third = file->allocate_block(kPage);
    ASSERT_FALSE(third);
    EXPECT_EQ(third.error().value(), ENOMEM);
    expect_books_agree();
    EXPECT_EQ(device_stats().guest_blocks, 2u);
    file->release();
    expect_nothing_held();
}

TEST_F(MemoryTest, ClaimsShareOnlyMemoryTheHostHolds) {
    auto owner = open(kWithMemory), other = open(kWithMemory);
    ASSERT_TRUE(owner && other);
    auto block = owner->allocate_block(kPage);
    ASSERT_TRUE(block);
    // Claiming another file's block is bookkeeping only: none of its memory moves.
    ASSERT_TRUE(other->claim_shared(block->offset, block->size));
    EXPECT_EQ(device_stats().file_bindings, 1u);
    std::byte* theirs = map(*other->memory_fd(), block->offset, kPage);
    std::byte* mine = map(*owner->memory_fd(), block->offset, kPage);
    ASSERT_TRUE(theirs && mine);
    std::memset(mine, 0x11, 8);
    EXPECT_EQ(load(theirs), 0u);
    ASSERT_TRUE(other->unclaim_shared(block->offset));
    EXPECT_EQ(load(mine), 0x1111111111111111u) << "the owner keeps its block";
    ::munmap(theirs, kPage);
    ::munmap(mine, kPage);
    owner->release();
    other->release();
    expect_nothing_held();
}

TEST_F(MemoryTest, AFileStillMappedIsNotReleasedUntilTheMappingGoes) {
    auto file = open(kWithMemory);
    ASSERT_TRUE(file);
    auto block = file->allocate_block(kPage);
    ASSERT_TRUE(block);
    std::byte* p = map(*file->memory_fd(), block->offset, kPage);
    ASSERT_TRUE(p);
    EXPECT_FALSE(file->release_if_unmapped());
    EXPECT_TRUE(file->books().live);
    EXPECT_EQ(device_stats().guest_blocks, 1u);
    std::memset(p, 0x22, 8);
    EXPECT_EQ(host_load(block->offset), 0x2222222222222222u) << "still shared after the check";
    ::munmap(p, kPage);
    EXPECT_TRUE(file->release_if_unmapped());
    expect_nothing_held();
}

TEST_F(MemoryTest, RemoveReleasesMappedFilesAndTheirClientsKeepOnlyZeros) {
    auto file = open(kWithMemory);
    ASSERT_TRUE(file);
    auto block = file->allocate_block(kPage);
    ASSERT_TRUE(block);
    std::byte* p = map(*file->memory_fd(), block->offset, kPage);
    ASSERT_TRUE(p);
    std::memset(p, 0x33, 8);
    driver->remove();
    EXPECT_EQ(load(p), 0u);
    EXPECT_EQ(device_stats().guest_blocks, 0u);
    EXPECT_EQ(device_stats().file_bindings, 0u);
    ::munmap(p, kPage);
}

}  // namespace
}  // namespace gf::driver::testing
