// What the backend accepts from the user (PCI addresses) and from sysfs
// (hex attributes, the resource file): exactly the documented shapes.
#include <gtest/gtest.h>

#include <cerrno>

#include "fake_sysfs.h"
#include "pci/sysfs/bdf.h"
#include "pci/sysfs/resource_file.h"
#include "pci/sysfs/sysfs_file.h"

namespace gf::pci::sysfs {
namespace {

using testing::line;

TEST(BdfTest, CanonicalAddressIsKept) {
    EXPECT_EQ(canonical_bdf("0000:00:0b.0").value(), "0000:00:0b.0");
    EXPECT_EQ(canonical_bdf("ffff:ff:1f.7").value(), "ffff:ff:1f.7");
}

TEST(BdfTest, UpperCaseIsLowered) {
    EXPECT_EQ(canonical_bdf("0000:0A:0B.0").value(), "0000:0a:0b.0");
}

class BadBdfTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BadBdfTest, IsEinval) {
    EXPECT_EQ(canonical_bdf(GetParam()).error(), Error(EINVAL));
}

INSTANTIATE_TEST_SUITE_P(Shapes, BadBdfTest,
                         ::testing::Values("", "auto", "00:0b.0", "0000:00:0b", "0000:00:0b.",
                                           "00000:00:0b.0", "0000:00:0b.0 ", " 0000:00:0b.0",
                                           "0000:00:0b.0\n", "0000:00:0b.0/", "0000-00-0b.0",
                                           "0000:00:0b:0", "g000:00:0b.0", "0000:00:20.0",
                                           "0000:00:0b.8", "../../../etc", "0000:00/../0",
                                           "0000:..:0b.0", "+000:00:0b.0", "0x00:00:0b.0"));

TEST(ParseHexTest, AcceptsOnlyPrefixedHex) {
    EXPECT_EQ(parse_hex("0x607d"), 0x607d);
    EXPECT_EQ(parse_hex("0xFFFFFFFFFFFFFFFF"), UINT64_MAX);
    EXPECT_EQ(parse_hex_attribute("0xf153\n"), 0xf153);
    EXPECT_FALSE(parse_hex("607d"));
    EXPECT_FALSE(parse_hex("0x"));
    EXPECT_FALSE(parse_hex("0x1ffffffffffffffff"));  // 17 digits: would not fit
    EXPECT_FALSE(parse_hex("0x60 7d"));
    EXPECT_FALSE(parse_hex("-0x1"));
    EXPECT_FALSE(parse_hex_attribute("0x607d\n\n"));
    EXPECT_FALSE(parse_hex_attribute(""));
}

std::string unused_lines(int count) {
    std::string text;
    for (int i = 0; i < count; ++i) {
        text += line(0, 0, 0);
    }
    return text;
}

TEST(ResourceFileTest, ParsesStartSizeAndFlags) {
    const std::string text = line(0xfe000000, 0xfe000fff, 0x40200) +
                             line(0x1234567000, 0x1634566fff, 0x14220c) + unused_lines(11);
    const auto bars = parse_resource_file(text, nullptr);
    ASSERT_TRUE(bars);
    EXPECT_EQ((*bars)[0].start, 0xfe000000u);
    EXPECT_EQ((*bars)[0].length, 0x1000u);
    EXPECT_TRUE((*bars)[0].is_memory());
    EXPECT_FALSE((*bars)[0].is_64bit());
    EXPECT_EQ((*bars)[1].start, 0x1234567000u);
    EXPECT_EQ((*bars)[1].length, uint64_t{16} << 30);
    EXPECT_TRUE((*bars)[1].is_64bit());
    EXPECT_NE((*bars)[1].flags & kResourcePrefetch, 0u);
    for (unsigned bar = 2; bar < kNumBars; ++bar) {
        EXPECT_EQ((*bars)[bar].length, 0u) << bar;
    }
}

TEST(ResourceFileTest, ExactlySixLinesWithoutFinalNewlineIsEnough) {
    std::string text = line(0x1000, 0x1fff, 0x200) + unused_lines(5);
    text.pop_back();
    const auto bars = parse_resource_file(text, nullptr);
    ASSERT_TRUE(bars);
    EXPECT_EQ((*bars)[0].length, 0x1000u);
}

TEST(ResourceFileTest, ZeroAddressIsAnUnusedBarWhateverItsFlags) {
    // A BAR the kernel knows the type of but gave no address: length 0.
    const auto bars = parse_resource_file(line(0, 0, 0x200) + unused_lines(5), nullptr);
    ASSERT_TRUE(bars);
    EXPECT_EQ((*bars)[0].length, 0u);
    EXPECT_EQ((*bars)[0].flags, 0x200u);
}

TEST(ResourceFileTest, UnsetOrDisabledBarIsUnused) {
    const std::string text = line(0x1000, 0x1fff, 0x200 | kResourceUnset) +
                             line(0x2000, 0x2fff, 0x200 | kResourceDisabled) + unused_lines(4);
    const auto bars = parse_resource_file(text, nullptr);
    ASSERT_TRUE(bars);
    EXPECT_EQ((*bars)[0].length, 0u);
    EXPECT_EQ((*bars)[1].length, 0u);
}

TEST(ResourceFileTest, OneByteBar) {
    const auto bars = parse_resource_file(line(0x1000, 0x1000, 0x100) + unused_lines(5), nullptr);
    ASSERT_TRUE(bars);
    EXPECT_EQ((*bars)[0].length, 1u);
}

TEST(ResourceFileTest, EndBeforeStartIsRefused) {
    std::string message;
    EXPECT_EQ(parse_resource_file(unused_lines(1) + line(0x2000, 0x1fff, 0x200) + unused_lines(4),
                                  &message)
                  .error(),
              Error(EINVAL));
    EXPECT_NE(message.find("line 2"), std::string::npos) << message;
}

TEST(ResourceFileTest, SizeBeyond64BitsIsRefused) {
    EXPECT_EQ(parse_resource_file(line(0, UINT64_MAX, 0x200) + unused_lines(5), nullptr).error(),
              Error(EOVERFLOW));
}

TEST(ResourceFileTest, FullRangeBarMinusOneByteIsFine) {
    const auto bars = parse_resource_file(line(1, UINT64_MAX, 0x200) + unused_lines(5), nullptr);
    ASSERT_TRUE(bars);
    EXPECT_EQ((*bars)[0].length, UINT64_MAX);
}

TEST(ResourceFileTest, FlagsWiderThan32BitsAreRefused) {
    EXPECT_EQ(
        parse_resource_file(line(0x1000, 0x1fff, 0x100000200) + unused_lines(5), nullptr).error(),
        Error(EINVAL));
}

TEST(ResourceFileTest, FewerThanSixLinesIsRefused) {
    std::string message;
    EXPECT_EQ(parse_resource_file(unused_lines(5), &message).error(), Error(EINVAL));
    EXPECT_NE(message.find("5 lines"), std::string::npos) << message;
    EXPECT_EQ(parse_resource_file("", nullptr).error(), Error(EINVAL));
}

class MalformedLineTest : public ::testing::TestWithParam<const char*> {};

TEST_P(MalformedLineTest, IsAHardError) {
    // The bad line is the 3rd (a BAR) and, separately, the 8th (past the BARs).
    const std::string bad = std::string(GetParam()) + "\n";
    std::string message;
    EXPECT_EQ(parse_resource_file(unused_lines(2) + bad + unused_lines(10), &message).error(),
              Error(EINVAL));
    EXPECT_NE(message.find("line 3"), std::string::npos) << message;
    EXPECT_EQ(parse_resource_file(unused_lines(7) + bad + unused_lines(5), nullptr).error(),
              Error(EINVAL));
}

INSTANTIATE_TEST_SUITE_P(Lines, MalformedLineTest,
                         ::testing::Values("", "0x0 0x0", "0x0 0x0 0x0 0x0", "0x0  0x0 0x0",
                                           " 0x0 0x0 0x0", "0x0 0x0 0x0 ", "0x0\t0x0\t0x0", "0 0 0",
                                           "0x 0x0 0x0", "0xg 0x0 0x0",
                                           "0x10000000000000000 0x0 0x0", "0x0 0x0 0x0\r",
                                           "-0x1 0x0 0x0", "garbage"));

}  // namespace
}  // namespace gf::pci::sysfs
