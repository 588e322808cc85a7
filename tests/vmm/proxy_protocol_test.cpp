// The wire format against the layout QEMU's structs have on x86-64, and the header checks.
#include "vmm/proxy_protocol.h"

#include <gtest/gtest.h>

#include <cstring>

namespace gf::vmm {
namespace {

TEST(ProxyProtocol, HeaderLayoutIsCmdPaddingSize) {
    const auto bytes = Header{5, 24}.encode();
    int32_t cmd;
    uint64_t size;
    std::memcpy(&cmd, bytes.data(), 4);
    std::memcpy(&size, bytes.data() + 8, 8);
    EXPECT_EQ(cmd, 5);
    EXPECT_EQ(size, 24u);
    const Header back = Header::decode(bytes);
    EXPECT_EQ(back.cmd, 5);
    EXPECT_EQ(back.size, 24u);
}

TEST(ProxyProtocol, BarAccessLayout) {
    const auto bytes = BarAccess{0xFEBF'001C, 0xDEADBEEF, 4, true}.encode();
    uint64_t address, value;
    uint32_t size;
    std::memcpy(&address, bytes.data(), 8);
    std::memcpy(&value, bytes.data() + 8, 8);
    std::memcpy(&size, bytes.data() + 16, 4);
    EXPECT_EQ(address, 0xFEBF'001Cu);
    EXPECT_EQ(value, 0xDEADBEEFu);
    EXPECT_EQ(size, 4u);
    EXPECT_EQ(bytes[20], std::byte{1});
    auto raw = bytes;
    raw[20] = std::byte{0x80};  // any non-zero C bool is true
    EXPECT_TRUE(BarAccess::decode(raw).memory);
}

TEST(ProxyProtocol, SyncSysmemLayoutIsGpasThenSizesThenOffsets) {
    SyncSysmem m;
    m.gpas[1] = 0x100000;
    m.sizes[1] = 0x1F00000;
    m.offsets[1] = 0x100000;
    const auto bytes = m.encode();
    uint64_t gpa, size;
    int64_t offset;
    std::memcpy(&gpa, bytes.data() + 8, 8);
    std::memcpy(&size, bytes.data() + 64 + 8, 8);
    std::memcpy(&offset, bytes.data() + 128 + 8, 8);
    EXPECT_EQ(gpa, 0x100000u);
    EXPECT_EQ(size, 0x1F00000u);
    EXPECT_EQ(offset, 0x100000);
    const SyncSysmem back = SyncSysmem::decode(bytes);
    EXPECT_EQ(back.sizes[1], 0x1F00000u);
}

TEST(ProxyProtocol, ConfigAccessLayout) {
    const auto bytes = ConfigAccess{0x3D, 7, 1}.encode();
    const ConfigAccess back = ConfigAccess::decode(bytes);
    EXPECT_EQ(back.address, 0x3Du);
    EXPECT_EQ(back.value, 7u);
    EXPECT_EQ(back.length, 1);
}

TEST(ProxyProtocol, HeaderChecks) {
    auto check = [](ProxyCommand cmd, uint64_t size, size_t fds) {
        return check_header(Header{static_cast<int32_t>(cmd), size}, fds);
    };
    EXPECT_FALSE(check(ProxyCommand::SYNC_SYSMEM, 192, 1));
    EXPECT_FALSE(check(ProxyCommand::SYNC_SYSMEM, 192, 8));
    EXPECT_FALSE(check(ProxyCommand::PCI_CFGWRITE, 12, 0));
    EXPECT_FALSE(check(ProxyCommand::PCI_CFGREAD, 12, 0));
    EXPECT_FALSE(check(ProxyCommand::BAR_WRITE, 24, 0));
    EXPECT_FALSE(check(ProxyCommand::BAR_READ, 24, 0));
    EXPECT_FALSE(check(ProxyCommand::SET_IRQFD, 0, 2));
    EXPECT_FALSE(check(ProxyCommand::DEVICE_RESET, 0, 0));

    EXPECT_TRUE(check(ProxyCommand::SYNC_SYSMEM, 192, 0));
    EXPECT_TRUE(check(ProxyCommand::SYNC_SYSMEM, 192, 9));
    EXPECT_TRUE(check(ProxyCommand::SYNC_SYSMEM, 191, 1));
    EXPECT_TRUE(check(ProxyCommand::RET, 8, 0));
    EXPECT_TRUE(check(ProxyCommand::BAR_READ, 24, 1));
    EXPECT_TRUE(check(ProxyCommand::BAR_READ, ~uint64_t{0}, 0));
    EXPECT_TRUE(check(ProxyCommand::SET_IRQFD, 0, 3));
    EXPECT_TRUE(check_header(Header{8, 0}, 0));
    EXPECT_TRUE(check_header(Header{-1, 0}, 0));
    EXPECT_EQ(*check(ProxyCommand::PCI_CFGREAD, 193, 0),
              "PCI_CFGREAD with an absurd payload size 193 (no message is larger than 192)");
}

}  // namespace
}  // namespace gf::vmm
