// Handle numbering (docs/device.md#handles): from 1, never 0 or 0xFFFFFFFF, never a live one.
#include "device/handle_table.h"

#include <gtest/gtest.h>

namespace gf::device {
namespace {

TEST(HandleTableTest, StartsAtOneAndCounts) {
    HandleTable table;
    EXPECT_EQ(table.generate().value(), 1u);
    EXPECT_EQ(table.generate().value(), 2u);
    EXPECT_EQ(table.size(), 2u);
}

TEST(HandleTableTest, WrapsPastTheInvalidHandleAndZero) {
    HandleTable table(0xFFFFFFFD);
    EXPECT_EQ(table.generate().value(), 0xFFFFFFFDu);
    EXPECT_EQ(table.generate().value(), 0xFFFFFFFEu);
    EXPECT_EQ(table.generate().value(), 1u);
}

TEST(HandleTableTest, NeverReissuesALiveHandleAfterWrapping) {
    HandleTable table;
    ASSERT_EQ(table.generate().value(), 1u);
    ASSERT_EQ(table.generate().value(), 2u);
    ASSERT_EQ(table.generate().value(), 3u);
    ASSERT_TRUE(table.remove(2));
    // Bring the counter round to the wrap point, as 2^32 GEN_HANDLEs would.
    table.restart_counter_at(0xFFFFFFFE);
    EXPECT_EQ(table.generate().value(), 0xFFFFFFFEu);
    EXPECT_EQ(table.generate().value(), 2u);  // 0xFFFFFFFF and 0 skipped, 1 is live
    EXPECT_EQ(table.generate().value(), 4u);  // 3 is live
    EXPECT_EQ(table.size(), 5u);
}

TEST(HandleTableTest, InvalidStartingPointsFallBackToOne) {
    EXPECT_EQ(HandleTable(0).generate().value(), 1u);
    EXPECT_EQ(HandleTable(0xFFFFFFFF).generate().value(), 1u);
}

TEST(HandleTableTest, RemoveAndFind) {
    HandleTable table;
    const uint32_t h = table.generate().value();
    ASSERT_NE(table.find(h), nullptr);
    EXPECT_FALSE(table.find(h)->ping_info_gpa);
    EXPECT_EQ(table.find(h + 1), nullptr);
    EXPECT_TRUE(table.remove(h));
    EXPECT_FALSE(table.remove(h));
    EXPECT_EQ(table.find(h), nullptr);
}

TEST(HandleTableTest, RemoveAllHandsOverEveryEntryAndRestartsNumbering) {
    HandleTable table;
    table.generate().value();
    table.generate().value();
    EXPECT_EQ(table.remove_all().size(), 2u);
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(table.generate().value(), 1u);
}

}  // namespace
}  // namespace gf::device
