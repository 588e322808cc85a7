// Probe and remove against the recording mock: the exact sequence of
// docs/uapi.md#probe-and-remove, and every unwind path.
#include <cerrno>

#include "driver/driver.h"
#include "driver/mock_device.h"

namespace gf::driver {
namespace {

using testing::kBar1Size;
using testing::kBar1Start;
using testing::MockDeviceTest;
using testing::R;
using testing::W;
using testing::operator+;
using Events = std::vector<std::string>;

const Events kMatchReads = {"config_read 0x0 2", "config_read 0x2 2", "config_read 0x8 1"};

using ProbeTest = MockDeviceTest;

TEST_F(ProbeTest, RegisterSequence) {
    auto driver = Driver::probe(*device);
    ASSERT_TRUE(driver);
    EXPECT_EQ(
        events(),
        (kMatchReads + Events{"enable", "request_region 0", "map 0", "request_region 1", "map 1",
                              W(Register::GUEST_PAGE_SIZE, 4096), W(Register::PHYS_START_LOW, 0x0),
                              W(Register::PHYS_START_HIGH, 0x4)}));
    EXPECT_EQ((*driver)->bar1_phys_start(), kBar1Start);
    EXPECT_EQ((*driver)->bar1_size(), kBar1Size);
    EXPECT_TRUE(device->is_enabled());
    EXPECT_TRUE(device->region_held(0));
    EXPECT_TRUE(device->region_held(1));
}

TEST_F(ProbeTest, PhysStartIsSplitLowHigh) {
    mock->bars[1].start = 0x12'3456'7000;
    auto driver = Driver::probe(*device);
    ASSERT_TRUE(driver);
    const Events all = events();
    const Events tail(all.end() - 2, all.end());
    EXPECT_EQ(tail, (Events{W(Register::PHYS_START_LOW, 0x3456'7000),
                            W(Register::PHYS_START_HIGH, 0x12)}));
}

class WrongRevisionTest : public MockDeviceTest, public ::testing::WithParamInterface<int> {};

TEST_P(WrongRevisionTest, IsRefusedBeforeEnabling) {
    mock->set_ids(0x607D, 0xF153, static_cast<uint8_t>(GetParam()));
    EXPECT_EQ(Driver::probe(*device).error(), Error(ENODEV));
    EXPECT_EQ(events(), kMatchReads);
    EXPECT_FALSE(device->is_enabled());
}
INSTANTIATE_TEST_SUITE_P(Revisions, WrongRevisionTest, ::testing::Values(0, 2, 255));

TEST_F(ProbeTest, OtherIdsAreRefused) {
    mock->set_ids(0x607D, 0xF154, 1);
    EXPECT_EQ(Driver::probe(*device).error(), Error(ENODEV));
    mock->set_ids(0x1AF4, 0xF153, 1);
    EXPECT_EQ(Driver::probe(*device).error(), Error(ENODEV));
    EXPECT_FALSE(mock->enabled());
}

TEST_F(ProbeTest, ConfigReadFailureIsReturned) {
    mock->fail_config_read = true;
    EXPECT_EQ(Driver::probe(*device).error(), Error(EIO));
    EXPECT_FALSE(mock->enabled());
}

TEST_F(ProbeTest, EnableFailure) {
    mock->fail_enable = true;
    EXPECT_EQ(Driver::probe(*device).error(), Error(EIO));
    EXPECT_EQ(events(), (kMatchReads + Events{"enable"}));
}

TEST_F(ProbeTest, ControlBarMappingFailureDisablesAgain) {
    mock->fail_map[0] = true;
    EXPECT_EQ(Driver::probe(*device).error(), Error(ENOMEM));
    EXPECT_EQ(events(), (kMatchReads + Events{"enable", "request_region 0", "map 0",
                                              "release_region 0", "disable"}));
    EXPECT_FALSE(device->is_enabled());
}

TEST_F(ProbeTest, ControlBarTooSmall) {
    mock->bars[0].length = 48;
    EXPECT_EQ(Driver::probe(*device).error(), Error(EINVAL));
    EXPECT_FALSE(device->is_enabled());
}

TEST_F(ProbeTest, AreaBarMissingUnwindsEverything) {
    mock->bars[1].length = 0;
    EXPECT_EQ(Driver::probe(*device).error(), Error(ENXIO));
    EXPECT_EQ(events(), (kMatchReads + Events{"enable", "request_region 0", "map 0", "unmap 0",
                                              "release_region 0", "disable"}));
}

TEST_F(ProbeTest, AreaBarMappingFailureUnwindsEverything) {
    mock->fail_map[1] = true;
    EXPECT_EQ(Driver::probe(*device).error(), Error(ENOMEM));
    EXPECT_EQ(events(), (kMatchReads + Events{"enable", "request_region 0", "map 0",
                                              "request_region 1", "map 1", "release_region 1",
                                              "unmap 0", "release_region 0", "disable"}));
    EXPECT_FALSE(device->region_held(0));
    EXPECT_FALSE(device->region_held(1));
    EXPECT_FALSE(device->is_enabled());
}

TEST_F(ProbeTest, AreaBarAlreadyHeldIsEbusy) {
    ASSERT_TRUE(device->request_region(1, "someone else"));
    EXPECT_EQ(Driver::probe(*device).error(), Error(EBUSY));
    EXPECT_FALSE(device->region_held(0));
    EXPECT_FALSE(device->is_enabled());
}

TEST_F(ProbeTest, AreaBarEndingPastTheAddressSpaceIsRefused) {
    mock->bars[1].start = 0xFFFF'FFFF'0000'0000;
    EXPECT_EQ(Driver::probe(*device).error(), Error(EOVERFLOW));
    EXPECT_FALSE(device->is_enabled());
    EXPECT_FALSE(device->region_held(1));
}

TEST_F(ProbeTest, SecondDriverOnTheSameDeviceIsEbusy) {
    auto first = probe();
    EXPECT_EQ(Driver::probe(*device).error(), Error(EBUSY));
    EXPECT_TRUE(device->is_enabled())
        << "the failed probe must not disable the first driver's device";
}

TEST_F(ProbeTest, RemoveWithoutFiles) {
    auto driver = probe();
    driver->remove();
    EXPECT_EQ(events(),
              (Events{"disable", "unmap 0", "release_region 0", "unmap 1", "release_region 1"}));
    EXPECT_FALSE(device->is_enabled());
    EXPECT_FALSE(device->region_held(0));
    EXPECT_FALSE(device->region_held(1));
    EXPECT_EQ(mock->live_mappings(), 0u);
}

TEST_F(ProbeTest, RemoveIsIdempotentAndRunByTheDestructor) {
    auto driver = probe();
    driver->remove();
    driver->remove();
    driver.reset();
    EXPECT_EQ(events(),
              (Events{"disable", "unmap 0", "release_region 0", "unmap 1", "release_region 1"}));

    auto again = probe();
    again.reset();
    EXPECT_EQ(events(),
              (Events{"disable", "unmap 0", "release_region 0", "unmap 1", "release_region 1"}));
}

TEST_F(ProbeTest, OpenAfterRemoveIsEnodev) {
    auto driver = probe();
    driver->remove();
    mock->clear_events();
    EXPECT_EQ(driver->open().error(), Error(ENODEV));
    EXPECT_TRUE(events().empty());
}

TEST_F(ProbeTest, ReprobeAfterRemove) {
    auto driver = probe();
    driver->remove();
    EXPECT_TRUE(Driver::probe(*device));
}

}  // namespace
}  // namespace gf::driver
