// The config-space model on its own: access widths and byte accesses, writable bits, BAR
// sizing, placement and decoding, power-on values, reset.
#include "hw/pci_config_space.h"

#include <array>
#include <cerrno>
#include <cstddef>

#include <gtest/gtest.h>

#include "hw/pci_header.h"

namespace gf::hw {
namespace {

const PciConfigSpace::Identity kIdentity{
    .vendor_id = 0x607D,
    .device_id = 0xF153,
    .revision = 1,
    .class_code = 0xFF00,
    .prog_if = 0x12,
    .subsystem_vendor_id = 0x1AF4,
    .subsystem_id = 0x1100,
    .interrupt_pin = 2,
};

// BAR0 4 KiB and BAR1 256 MiB, memory decode and the interrupt line writable.
PciConfigSpace make() {
    PciConfigSpace cs(kIdentity);
    cs.set_writable(kConfigCommand, kCommandMemorySpace | kCommandBusMaster, 2);
    cs.set_writable(kConfigInterruptLine, 0xFF, 1);
    EXPECT_TRUE(cs.add_memory_bar(0, 0x1000));
    EXPECT_TRUE(cs.add_memory_bar(1, 256ull << 20));
    return cs;
}

TEST(PciConfigSpace, PresentsTheIdentityInATypeZeroHeader) {
    const PciConfigSpace cs(kIdentity);
    EXPECT_EQ(cs.read(kConfigVendorId, 4), 0xF153'607Du);
    EXPECT_EQ(cs.read(kConfigRevisionId, 4), 0xFF00'1201u);
    EXPECT_EQ(cs.read(kConfigHeaderType, 1), 0u);
    EXPECT_EQ(cs.read(kConfigSubsystemVendorId, 4), 0x1100'1AF4u);
    EXPECT_EQ(cs.read(kConfigInterruptPin, 1), 2u);
    EXPECT_EQ(cs.bar_size(0), 0u);
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

TEST(PciConfigSpace, ByteAccessesOfAnyLengthInsideTheSpace) {
    PciConfigSpace cs = make();
    std::array<std::byte, 64> header{};
    ASSERT_TRUE(cs.read_bytes(0, header));
    EXPECT_EQ(header[0], std::byte{0x7D});
    EXPECT_EQ(header[0x3D], std::byte{2});
    std::array<std::byte, 1> one{};
    EXPECT_EQ(cs.read_bytes(256, one).error(), Error(EINVAL));
    EXPECT_EQ(cs.read_bytes(0xFFFF'FFFF, one).error(), Error(EINVAL));
    EXPECT_TRUE(cs.read_bytes(256, std::span<std::byte>()));

    // A write spanning read-only and writable bytes changes only the writable bits.
    const std::array<std::byte, 4> ones{std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF},
                                        std::byte{0xFF}};
    ASSERT_TRUE(cs.write_bytes(0x02, ones));
    EXPECT_EQ(cs.read(0x00, 4), 0xF153'607Du);
    EXPECT_EQ(cs.read(kConfigCommand, 2), 0x6u);
    EXPECT_TRUE(cs.memory_enabled());
    EXPECT_EQ(cs.write_bytes(0xFE, ones).error(), Error(EINVAL));
}

TEST(PciConfigSpace, PowerOnValuesAreReadOnlyUnlessMadeWritable) {
    PciConfigSpace cs(kIdentity);
    cs.set_initial(config_bar(1), 0x8000'0000u | kBarMemory64, 4);
    cs.set_initial(config_bar(2), 0x4, 4);
    cs.write(config_bar(1), 0xFFFF'FFFF, 4);
    EXPECT_EQ(cs.read(config_bar(1), 4), 0x8000'0004u);
    EXPECT_EQ(cs.bar_base(1), 0x8000'0000u);  // without the type bits
    EXPECT_EQ(cs.read(config_bar(2), 4), 4u);
    cs.set_initial(0xFE, 0xFFFF, 4);  // does not fit: ignored
    EXPECT_EQ(cs.read(0xFC, 4), 0u);
}

TEST(PciConfigSpace, RejectsBarsNoDeviceCanHave) {
    PciConfigSpace cs(kIdentity);
    for (uint64_t size : {0ull, 8ull, 3000ull, 4ull << 30}) {
        EXPECT_EQ(cs.add_memory_bar(0, size).error(), Error(EINVAL)) << size;
    }
    EXPECT_EQ(cs.add_memory_bar(6, 0x1000).error(), Error(EINVAL));
    EXPECT_TRUE(cs.add_memory_bar(0, 16));
    EXPECT_TRUE(cs.add_memory_bar(5, 2ull << 30));
    EXPECT_EQ(cs.bar_size(5), 2ull << 30);
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
    cs.set_initial(kConfigInterruptLine, 9, 1);
    cs.write(0x10, 0xFEBF'0000, 4);
    cs.write(0x04, 0x6, 2);
    cs.write(0x3C, 11, 1);
    cs.reset();
    EXPECT_EQ(cs.read(0x10, 4), 0u);
    EXPECT_EQ(cs.read(0x04, 2), 0u);
    EXPECT_EQ(cs.read(0x3C, 1), 9u);
    EXPECT_EQ(cs.read(0x00, 4), 0xF153'607Du);
}

}  // namespace
}  // namespace gf::hw
