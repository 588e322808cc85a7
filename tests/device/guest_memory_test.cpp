// Guest RAM access: whole ranges inside RAM only, with no address wrap.
#include "device/guest_memory.h"

#include <gtest/gtest.h>

#include <array>
#include <cerrno>

namespace gf::device {
namespace {

constexpr uint64_t kBase = 0x10000;
constexpr uint64_t kSize = 0x4000;

TEST(RamGuestMemoryTest, ReadsBackWhatWasWritten) {
    auto ram = RamGuestMemory::create(kBase, kSize).value();
    EXPECT_EQ(ram->base(), kBase);
    EXPECT_EQ(ram->size(), kSize);
    const std::array<std::byte, 4> in{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    ASSERT_TRUE(ram->write(kBase + kSize - 4, in));
    std::array<std::byte, 4> out{};
    ASSERT_TRUE(ram->read(kBase + kSize - 4, out));
    EXPECT_EQ(out, in);
    EXPECT_EQ(*ram->host_pointer(kBase + kSize - 1, 1), std::byte{4});
}

TEST(RamGuestMemoryTest, RefusesRangesNotWhollyInsideRam) {
    auto ram = RamGuestMemory::create(kBase, kSize).value();
    std::array<std::byte, 8> buf{};
    for (uint64_t gpa : {uint64_t{0}, kBase - 1, kBase + kSize - 7, kBase + kSize, ~uint64_t{0},
                         ~uint64_t{0} - 3}) {
        EXPECT_EQ(ram->read(gpa, buf).error(), Error(EFAULT)) << gpa;
        EXPECT_EQ(ram->write(gpa, buf).error(), Error(EFAULT)) << gpa;
        EXPECT_EQ(ram->host_pointer(gpa, buf.size()), nullptr) << gpa;
    }
    EXPECT_EQ(ram->host_pointer(kBase, kSize + 1), nullptr);
    EXPECT_EQ(ram->host_pointer(kBase + 8, ~uint64_t{0}), nullptr);  // length wraps
    EXPECT_NE(ram->host_pointer(kBase, kSize), nullptr);
}

TEST(RamGuestMemoryTest, CreateRefusesEmptyAndWrappingRam) {
    EXPECT_EQ(RamGuestMemory::create(kBase, 0).error(), Error(EINVAL));
    EXPECT_EQ(RamGuestMemory::create(~uint64_t{0} - 100, 4096).error(), Error(EINVAL));
}

}  // namespace
}  // namespace gf::device
