#include "driver/range_set.h"

#include <gtest/gtest.h>

namespace gf::driver {
namespace {

TEST(RangeSetTest, InsertFindErase) {
    RangeSet set;
    EXPECT_TRUE(set.insert(0x1000, 0x1000));
    EXPECT_EQ(set.find(0x1000), 0x1000u);
    EXPECT_FALSE(set.find(0x1800));
    EXPECT_EQ(set.erase(0x1000), 0x1000u);
    EXPECT_FALSE(set.erase(0x1000));
    EXPECT_TRUE(set.empty());
}

TEST(RangeSetTest, OverlapCoversEveryShape) {
    RangeSet set;
    ASSERT_TRUE(set.insert(100, 100));  // [100, 200)
    EXPECT_TRUE(set.overlaps(100, 100)) << "same";
    EXPECT_TRUE(set.overlaps(50, 51)) << "tail into start";
    EXPECT_TRUE(set.overlaps(199, 10)) << "head into end";
    EXPECT_TRUE(set.overlaps(120, 10)) << "inside";
    EXPECT_TRUE(set.overlaps(0, 1000)) << "contains";
    EXPECT_TRUE(set.overlaps(0, UINT64_MAX)) << "contains, end saturated";
    EXPECT_FALSE(set.overlaps(0, 100)) << "adjacent below";
    EXPECT_FALSE(set.overlaps(200, 100)) << "adjacent above";
    EXPECT_FALSE(set.overlaps(150, 0)) << "empty";
    EXPECT_FALSE(set.insert(0, 1000));
    EXPECT_FALSE(set.insert(300, 0));
    EXPECT_EQ(set.count(), 1u);
}

TEST(RangeSetTest, OverlapWithSeveralNeighbours) {
    RangeSet set;
    ASSERT_TRUE(set.insert(0, 10));
    ASSERT_TRUE(set.insert(20, 10));
    ASSERT_TRUE(set.insert(40, 10));
    EXPECT_FALSE(set.overlaps(10, 10));
    EXPECT_FALSE(set.overlaps(30, 10));
    EXPECT_TRUE(set.overlaps(10, 11));
    EXPECT_TRUE(set.overlaps(29, 2));
    EXPECT_TRUE(set.overlaps(15, 30)) << "spans one whole range and part of another";
    EXPECT_FALSE(set.overlaps(50, UINT64_MAX)) << "saturated end after the last";
}

TEST(RangeSetTest, RangeReachingTheTopOfTheAddressSpace) {
    RangeSet set;
    ASSERT_TRUE(set.insert(UINT64_MAX - 9, 10));
    EXPECT_TRUE(set.overlaps(UINT64_MAX, 1));
    EXPECT_TRUE(set.overlaps(UINT64_MAX - 20, 100));
    EXPECT_FALSE(set.overlaps(0, UINT64_MAX - 9));
}

}  // namespace
}  // namespace gf::driver
