// The config space on its own: access widths, what software may change, BAR sizing,
// placement and decoding, reset.
#include "vmm/pci_config_space.h"

#include <gtest/gtest.h>

namespace gf::vmm {
namespace {

PciConfigSpace make(uint64_t bar1 = 256ull << 20) {
    PciConfigSpace::Identity id;
    id.vendor_id = 0x607D;
    id.device_id = 0xF153;
    id.revision = 1;
    id.class_code = 0xFF00;
    id.interrupt_pin = 2;
    return PciConfigSpace::create(id, {0x1000, bar1, 0, 0, 0, 0}).value();
}

TEST(PciConfigSpace, ReadsOfEveryWidthAndAlignment) {
    const PciConfigSpace cs = make();
    EXPECT_EQ(cs.read(0, 1), 0x7Du);
    EXPECT_EQ(cs.read(1, 1), 0x60u);
    EXPECT_EQ(cs.read(1, 2), 0x5360u);  // unaligned: vendor high byte, device low byte
    EXPECT_EQ(cs.read(2, 4), 0x0000F153u);
    EXPECT_EQ(cs.read(0xFC, 4), 0u);
}

TEST(PciConfigSpace, AccessesOfOtherLengthsOrPastTheEndAreIgnored) {
    PciConfigSpace cs = make();
    EXPECT_EQ(cs.read(0, 3), 0u);
    EXPECT_EQ(cs.read(0, 0), 0u);
    EXPECT_EQ(cs.read(0, -4), 0u);
    EXPECT_EQ(cs.read(0xFE, 4), 0u);
    EXPECT_EQ(cs.read(0xFFFF'FFFE, 4), 0u);  // address + length wraps
    cs.write(0x3C, 0x12345678, 8);
    cs.write(0xFFFF'FFFF, 0xFF, 4);
    EXPECT_EQ(cs.read(0x3C, 1), 0u);
}

TEST(PciConfigSpace, OnlyWritableBitsChange) {
    PciConfigSpace cs = make();
    cs.write(0x00, 0xFFFF'FFFF, 4);  // identity is read-only
    EXPECT_EQ(cs.read(0x00, 4), 0xF153'607Du);
    cs.write(0x08, 0xFFFF'FFFF, 4);
    EXPECT_EQ(cs.read(0x08, 4), 0xFF00'0001u);
    cs.write(0x04, 0xFFFF, 2);
    EXPECT_EQ(cs.read(0x04, 2), 0x0547u);  // I/O, memory, master, parity, SERR, INTx off
    cs.write(0x3C, 0xFFFF, 2);
    EXPECT_EQ(cs.read(0x3C, 1), 0xFFu);  // interrupt line is the OS's
    EXPECT_EQ(cs.read(0x3D, 1), 2u);     // interrupt pin is not
    cs.write(0x2C, 0xFFFF'FFFF, 4);
    EXPECT_EQ(cs.read(0x2C, 4), 0u);
}

TEST(PciConfigSpace, BarsReadBackTheirSizeMaskAndTheProgrammedBase) {
    PciConfigSpace cs = make(1ull << 30);
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

TEST(PciConfigSpace, RejectsBarsNoDeviceCanHave) {
    PciConfigSpace::Identity id;
    for (uint64_t size : {8ull, 3000ull, 4ull << 30}) {
        EXPECT_FALSE(PciConfigSpace::create(id, {size, 0, 0, 0, 0, 0})) << size;
    }
    EXPECT_TRUE(PciConfigSpace::create(id, {16, 2ull << 30, 0, 0, 0, 0}));
}

TEST(PciConfigSpace, DecodesOnlyWholeAccessesInsidePlacedBarsWithDecodingOn) {
    PciConfigSpace cs = make();
    cs.write(0x10, 0xFEBF'0000, 4);
    cs.write(0x14, 0xE000'0000, 4);
    EXPECT_FALSE(cs.decode_memory(0xFEBF'0008, 4));  // decoding off
    cs.write(0x04, 0x2, 2);
    auto hit = cs.decode_memory(0xFEBF'0008, 4);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->bar, 0u);
    EXPECT_EQ(hit->offset, 8u);
    hit = cs.decode_memory(0xEFFF'FFF8, 8);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->bar, 1u);
    EXPECT_EQ(hit->offset, 0x0FFF'FFF8u);
    EXPECT_FALSE(cs.decode_memory(0xEFFF'FFFC, 8));  // straddles BAR1's end
    EXPECT_FALSE(cs.decode_memory(0xFEBF'1000, 4));
    EXPECT_FALSE(cs.decode_memory(0xFEBE'FFFC, 4));
    EXPECT_FALSE(cs.decode_memory(0xFEBF'0000, 0));
    EXPECT_FALSE(cs.decode_memory(~uint64_t{0} - 1, 4));

    cs.write(0x10, 0, 4);  // base 0: not placed
    EXPECT_FALSE(cs.decode_memory(0x8, 4));
}

TEST(PciConfigSpace, ResetRestoresPowerOnState) {
    PciConfigSpace cs = make();
    cs.write(0x10, 0xFEBF'0000, 4);
    cs.write(0x04, 0x6, 2);
    cs.write(0x3C, 11, 1);
    cs.reset();
    EXPECT_EQ(cs.read(0x10, 4), 0u);
    EXPECT_EQ(cs.read(0x04, 2), 0u);
    EXPECT_EQ(cs.read(0x3C, 1), 0u);
    EXPECT_EQ(cs.read(0x00, 4), 0xF153'607Du);
}

}  // namespace
}  // namespace gf::vmm
