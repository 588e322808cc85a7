// The ping struct's byte layout (docs/device.md#ping-page).
#include "device/ping_info.h"

#include <gtest/gtest.h>

namespace gf::device {
namespace {

TEST(PingInfoTest, EncodesLittleEndianAtTheDocumentedOffsets) {
    PingInfo info;
    info.phys_addr = 0x0807060504030201;
    info.size = 0x1817161514131211;
    info.metadata = 0x2827262524232221;
    info.wait_phys_addr = 0x3837363534333231;
    info.wait_flags = 0x44434241;
    info.direction = 0x54535251;
    const auto bytes = info.encode();
    ASSERT_EQ(bytes.size(), 40u);
    EXPECT_EQ(bytes[0], std::byte{0x01});
    EXPECT_EQ(bytes[7], std::byte{0x08});
    EXPECT_EQ(bytes[8], std::byte{0x11});
    EXPECT_EQ(bytes[16], std::byte{0x21});
    EXPECT_EQ(bytes[24], std::byte{0x31});  // the guest's u32 version
    EXPECT_EQ(bytes[32], std::byte{0x41});
    EXPECT_EQ(bytes[39], std::byte{0x54});
    const PingInfo back = PingInfo::decode(bytes);
    EXPECT_EQ(back.phys_addr, info.phys_addr);
    EXPECT_EQ(back.size, info.size);
    EXPECT_EQ(back.metadata, info.metadata);
    EXPECT_EQ(back.wait_phys_addr, info.wait_phys_addr);
    EXPECT_EQ(back.wait_flags, info.wait_flags);
    EXPECT_EQ(back.direction, info.direction);
}

}  // namespace
}  // namespace gf::device
