#include "pci/bar.h"

#include <cerrno>
#include <memory>

#include <gtest/gtest.h>

#include "pci/mock_backend.h"

namespace gf::pci {
namespace {

using testing::MockBackend;
using testing::read_event;
using testing::write_event;

enum class TestRegister : uint32_t { kFirst = 0, kLast = 52 };

using ControlBar = Bar<56>;

// The compile-time range check: offsets past kMinSize (or unaligned) do not
// compile, whether given as integers or as register enums.
template <typename B, auto kOffset>
concept CanRead = requires(const B& b) {
    b.template read32<kOffset>();
};
template <typename B, auto kOffset>
concept CanWrite = requires(const B& b) {
    b.template write32<kOffset>(0u);
};
static_assert(CanRead<ControlBar, 0>);
static_assert(CanRead<ControlBar, 52>);
static_assert(CanRead<ControlBar, TestRegister::kLast>);
static_assert(!CanRead<ControlBar, 56>);
static_assert(!CanRead<ControlBar, 54>);
static_assert(!CanRead<ControlBar, 2>);
static_assert(CanWrite<ControlBar, 52>);
static_assert(!CanWrite<ControlBar, 56>);
static_assert(!CanWrite<Bar<4>, 4>);

struct BarTest : ::testing::Test {
    BarTest() {
        auto backend = std::make_unique<MockBackend>();
        mock = backend.get();
        device = std::make_unique<Device>(std::move(backend));
    }
    MockBackend* mock;  // owned by device
    std::unique_ptr<Device> device;
};

TEST_F(BarTest, ConstantOffsetAccess) {
    auto bar = ControlBar::create(*device, 0, "control");
    ASSERT_TRUE(bar);
    mock->clear_events();
    bar->write32<TestRegister::kLast>(0x1234);
    EXPECT_EQ(bar->read32<TestRegister::kLast>(), 0x1234u);
    bar->write32<8>(5);
    EXPECT_EQ(mock->events(),
              (std::vector<std::string>{write_event(52, 0x1234), read_event(52, 0x1234),
                                        write_event(8, 5)}));
}

TEST_F(BarTest, RuntimeOffsetsAreCheckedAgainstTheMapping) {
    auto bar = ControlBar::create(*device, 0, "control");
    ASSERT_TRUE(bar);
    EXPECT_EQ(bar->size(), 0x1000u);
    // Past kMinSize but inside the mapping: allowed at run time.
    EXPECT_TRUE(bar->try_write32(0xFFC, 9));
    EXPECT_EQ(bar->try_read32(0xFFC).value(), 9u);
    mock->clear_events();
    EXPECT_EQ(bar->try_read32(0x1000).error(), Error(EINVAL));
    EXPECT_EQ(bar->try_read32(0xFFE).error(), Error(EINVAL));
    EXPECT_EQ(bar->try_read32(2).error(), Error(EINVAL));
    EXPECT_EQ(bar->try_read32(UINT64_MAX - 3).error(), Error(EINVAL));
    EXPECT_EQ(bar->try_write32(0x1000, 1).error(), Error(EINVAL));
    EXPECT_TRUE(mock->events().empty()) << "a refused access must not reach the device";
}

TEST_F(BarTest, RefusesABarShorterThanItsMinimumSize) {
    mock->bars[0].length = 52;
    EXPECT_EQ(ControlBar::create(*device, 0, "control").error(), Error(EINVAL));
    EXPECT_FALSE(device->region_held(0));
}

TEST_F(BarTest, FactoryErrors) {
    EXPECT_EQ(ControlBar::create(*device, 6, "bad").error(), Error(EINVAL));
    EXPECT_EQ(ControlBar::create(*device, 3, "empty").error(), Error(ENXIO));
    mock->bars[4] = {0x1000, 0x100, kResourceIo};
    EXPECT_EQ(ControlBar::create(*device, 4, "io").error(), Error(EINVAL));
    auto held = ControlBar::create(*device, 0, "control");
    ASSERT_TRUE(held);
    EXPECT_EQ(ControlBar::create(*device, 0, "again").error(), Error(EBUSY));
}

TEST_F(BarTest, DestructionUnmapsThenReleases) {
    {
        auto bar = ControlBar::create(*device, 0, "control");
        ASSERT_TRUE(bar);
        ControlBar moved = std::move(*bar);
        EXPECT_EQ(moved.read32<0>(), 0u);
    }
    EXPECT_EQ(mock->events(),
              (std::vector<std::string>{"request_region 0", "map 0", read_event(0, 0), "unmap 0",
                                        "release_region 0"}));
    EXPECT_FALSE(device->region_held(0));
}

}  // namespace
}  // namespace gf::pci
