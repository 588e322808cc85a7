// The config space the proxied function presents: its identity, what software may change
// (as on a real function), and its two BARs' sizes.
#include <gtest/gtest.h>

#include "vmm/proxy_device.h"

namespace gf::vmm {
namespace {

hw::PciConfigSpace make(uint64_t bar1 = 256ull << 20) {
    return proxy_config_space(bar1).value();
}

TEST(ProxyConfigSpace, ReadsOfEveryWidthAndAlignment) {
    const hw::PciConfigSpace cs = make();
    EXPECT_EQ(cs.read(0, 1), 0x7Du);
    EXPECT_EQ(cs.read(1, 1), 0x60u);
    EXPECT_EQ(cs.read(1, 2), 0x5360u);  // unaligned: vendor high byte, device low byte
    EXPECT_EQ(cs.read(2, 4), 0x0000F153u);
    EXPECT_EQ(cs.read(0xFC, 4), 0u);
}

TEST(ProxyConfigSpace, OnlyWritableBitsChange) {
    hw::PciConfigSpace cs = make();
    cs.write(0x00, 0xFFFF'FFFF, 4);  // identity is read-only
    EXPECT_EQ(cs.read(0x00, 4), 0xF153'607Du);
    cs.write(0x08, 0xFFFF'FFFF, 4);
    EXPECT_EQ(cs.read(0x08, 4), 0xFF00'0001u);
    cs.write(0x04, 0xFFFF, 2);
    EXPECT_EQ(cs.read(0x04, 2), 0x0547u);  // I/O, memory, master, parity, SERR, INTx off
    cs.write(0x0C, 0xFFFF, 2);
    EXPECT_EQ(cs.read(0x0C, 2), 0xFFFFu);  // cache line size, latency timer
    cs.write(0x3C, 0xFFFF, 2);
    EXPECT_EQ(cs.read(0x3C, 1), 0xFFu);  // interrupt line is the OS's
    EXPECT_EQ(cs.read(0x3D, 1), 2u);     // interrupt pin is not
    cs.write(0x2C, 0xFFFF'FFFF, 4);
    EXPECT_EQ(cs.read(0x2C, 4), 0u);
}

TEST(ProxyConfigSpace, BarsReadBackTheirSizeMaskAndTheProgrammedBase) {
    hw::PciConfigSpace cs = make(1ull << 30);
    cs.write(0x10, 0xFFFF'FFFF, 4);
    EXPECT_EQ(cs.read(0x10, 4), 0xFFFF'F000u);
    cs.write(0x14, 0xFFFF'FFFF, 4);
    EXPECT_EQ(cs.read(0x14, 4), 0xC000'0000u);
    for (uint32_t at = 0x18; at <= 0x24; at += 4) {
        cs.write(at, 0xFFFF'FFFF, 4);
        EXPECT_EQ(cs.read(at, 4), 0u) << at;
    }
    cs.write(0x10, 0xFEBF'1234, 4);  // low bits are hard-wired
    EXPECT_EQ(cs.bar_base(0), 0xFEBF'1000u);
    cs.write(0x16, 0x8000, 2);  // a 16-bit write to the upper half
    EXPECT_EQ(cs.bar_base(1), 0x8000'0000u);
}

TEST(ProxyConfigSpace, RefusesABar1NoBarCanBe) {
    for (uint64_t size : {8ull, 3000ull, 4ull << 30}) {
        EXPECT_FALSE(proxy_config_space(size)) << size;
    }
    EXPECT_TRUE(proxy_config_space(2ull << 30));
}

}  // namespace
}  // namespace gf::vmm
