// The backed-range table: no overlaps, exact removal, range lookups
// (docs/device.md#memory-mappings).
#include "device/memory_mapping_table.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace gf::device {
namespace {

TEST(MemoryMappingTableTest, RefusesOverlapsAndEmptyOrWrappingRanges) {
    MemoryMappingTable table;
    ASSERT_TRUE(table.add(0x2000, 0x2000, 1));
    EXPECT_EQ(table.add(0x2000, 0x1000, 2).error(), Error(EEXIST));  // same key
    EXPECT_EQ(table.add(0x3000, 0x1000, 2).error(), Error(EEXIST));  // inside
    EXPECT_EQ(table.add(0x1000, 0x2000, 2).error(), Error(EEXIST));  // overlaps the start
    EXPECT_EQ(table.add(0x0, 0x8000, 2).error(), Error(EEXIST));     // contains it
    EXPECT_EQ(table.add(0x5000, 0, 2).error(), Error(EINVAL));
    EXPECT_EQ(table.add(~uint64_t{0} - 10, 100, 2).error(), Error(EOVERFLOW));
    EXPECT_TRUE(table.add(0x1000, 0x1000, 2));  // adjacent below
    EXPECT_TRUE(table.add(0x4000, 0x1000, 3));  // adjacent above
    EXPECT_EQ(table.count(), 3u);
    EXPECT_EQ(table.backed_bytes(), 0x4000u);
}

TEST(MemoryMappingTableTest, FindsByRangeAndRemovesExactly) {
    MemoryMappingTable table;
    ASSERT_TRUE(table.add(0x2000, 0x2000, 7));
    EXPECT_EQ(table.find(0x3FFF), (MemoryMappingTable::Mapping{0x2000, 0x2000, 7}));
    EXPECT_FALSE(table.find(0x4000));
    EXPECT_FALSE(table.find(0x1FFF));
    EXPECT_TRUE(table.covers(0x2800, 0x1800));
    EXPECT_FALSE(table.covers(0x2800, 0x1801));
    EXPECT_FALSE(table.covers(0x2800, ~uint64_t{0}));
    EXPECT_EQ(table.remove(0x2000, 0x1000).error(), Error(ENOENT));  // wrong size
    EXPECT_EQ(table.remove(0x3000, 0x1000).error(), Error(ENOENT));  // not a start
    EXPECT_TRUE(table.remove(0x2000, 0x2000));
    EXPECT_EQ(table.remove(0x2000, 0x2000).error(), Error(ENOENT));  // twice: no crash
    EXPECT_EQ(table.backed_bytes(), 0u);
}

TEST(MemoryMappingTableTest, ListsMappingsStartingInARange) {
    MemoryMappingTable table;
    ASSERT_TRUE(table.add(0x1000, 0x1000, 1));
    ASSERT_TRUE(table.add(0x3000, 0x1000, 2));
    ASSERT_TRUE(table.add(0x6000, 0x1000, 3));
    const auto within = table.starting_within(0x1000, 0x5000);
    ASSERT_EQ(within.size(), 2u);
    EXPECT_EQ(within[0].owner, 1u);
    EXPECT_EQ(within[1].owner, 2u);
    EXPECT_TRUE(table.starting_within(0x7000, ~uint64_t{0}).empty());
}

}  // namespace
}  // namespace gf::device
