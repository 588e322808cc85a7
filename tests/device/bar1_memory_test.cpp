// BAR1's host memory and its layout (device/bar1_memory.h), and the narrow access a context's
// own thread gets to it (device/bar1_access.h).
#include "device/bar1_memory.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "device/bar1_access.h"

namespace gf::device {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kSize = 64 * kPage;

// The backed view as a span, for a test that alone changes the layout.
Result<std::span<std::byte>> backed(const Bar1Memory& bar1, uint64_t offset, uint64_t size) {
    ReaderLock lock(bar1.layout_lock());
    return bar1.backed_view_locked(offset, size);
}

TEST(Bar1MemoryTest, OnlyMappedRangesAreVisibleAndUnmappingZeroesThem) {
    auto bar1 = Bar1Memory::create(kSize, /*max_bindings=*/16).value();
    EXPECT_EQ(bar1->size(), kSize);
    EXPECT_EQ(backed(*bar1, 0, 1).error(), Error(EFAULT));
    ASSERT_TRUE(bar1->map(2 * kPage, 2 * kPage, 7));
    EXPECT_EQ(bar1->map(3 * kPage, kPage, 8).error(), Error(EEXIST));
    EXPECT_EQ(bar1->mapping_count(), 1u);
    EXPECT_EQ(bar1->backed_bytes(), 2 * kPage);
    auto view = backed(*bar1, 2 * kPage, 2 * kPage).value();
    view[0] = std::byte{42};
    EXPECT_EQ(backed(*bar1, 2 * kPage, 2 * kPage + 1).error(), Error(EFAULT));
    const auto mappings = bar1->mappings_starting_within(0, kSize);
    ASSERT_EQ(mappings.size(), 1u);
    EXPECT_EQ(mappings[0].owner, 7u);

    EXPECT_EQ(bar1->unmap(2 * kPage, kPage).error(), Error(ENOENT));  // not its bounds
    ASSERT_TRUE(bar1->unmap(2 * kPage, 2 * kPage));
    EXPECT_EQ(backed(*bar1, 2 * kPage, 1).error(), Error(EFAULT));
    ASSERT_TRUE(bar1->map(2 * kPage, kPage, 9));
    EXPECT_EQ(backed(*bar1, 2 * kPage, 1).value()[0], std::byte{0});  // the next owner's
}

TEST(Bar1MemoryTest, ClearUnmapsEverything) {
    auto bar1 = Bar1Memory::create(kSize, /*max_bindings=*/16).value();
    ASSERT_TRUE(bar1->map(0, kPage, 1));
    ASSERT_TRUE(bar1->map(kPage, kPage, 2));
    bar1->clear();
    EXPECT_EQ(bar1->mapping_count(), 0u);
    EXPECT_EQ(bar1->backed_bytes(), 0u);
}

TEST(Bar1AccessTest, ReachesOnlyBackedMemory) {
    auto bar1 = Bar1Memory::create(kSize, /*max_bindings=*/16).value();
    Bar1Access access(*bar1);
    std::array<std::byte, 16> buf{};
    EXPECT_EQ(access.read(0, buf).error(), Error(EFAULT));
    ASSERT_TRUE(bar1->map(kPage, kPage, 1));
    const std::array<std::byte, 16> in{std::byte{1}, std::byte{2}, std::byte{3}};
    ASSERT_TRUE(access.write(2 * kPage - in.size(), in));
    ASSERT_TRUE(access.read(2 * kPage - buf.size(), buf));
    EXPECT_EQ(buf, in);
    // Untrusted offsets: past the mapping, wrapping, or past BAR1.
    EXPECT_EQ(access.read(2 * kPage - 1, buf).error(), Error(EFAULT));
    EXPECT_EQ(access.read(~uint64_t{0} - 3, buf).error(), Error(EFAULT));
    EXPECT_EQ(access.write(kSize, in).error(), Error(EFAULT));
}

TEST(Bar1AccessTest, ARevokedAccessFails) {
    auto bar1 = Bar1Memory::create(kSize, /*max_bindings=*/16).value();
    ASSERT_TRUE(bar1->map(0, kPage, 1));
    Bar1Access access(*bar1);
    std::array<std::byte, 8> buf{};
    ASSERT_TRUE(access.read(0, buf));
    access.revoke();
    EXPECT_EQ(access.read(0, buf).error(), Error(ESHUTDOWN));
    EXPECT_EQ(access.write(0, buf).error(), Error(ESHUTDOWN));
    Bar1Access other(*bar1);  // others are unaffected
    EXPECT_TRUE(other.read(0, buf));
}

TEST(Bar1AccessTest, AccessesRaceLayoutChangesSafely) {
    auto bar1 = Bar1Memory::create(kSize, /*max_bindings=*/16).value();
    Bar1Access access(*bar1);
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        std::array<std::byte, 64> buf{};
        while (!stop) {
            (void)access.write(0, buf);
            (void)access.read(kPage - buf.size(), buf);
        }
    });
    for (int i = 0; i < 2000; ++i) {
        ASSERT_TRUE(bar1->map(0, kPage, 1));
        ASSERT_TRUE(bar1->unmap(0, kPage));
    }
    stop = true;
    reader.join();
}

}  // namespace
}  // namespace gf::device
