#include "pci/device.h"

#include <cerrno>
#include <memory>

#include <gtest/gtest.h>

#include "hw/pci_header.h"
#include "pci/mock_backend.h"

namespace gf::pci {
namespace {

using testing::MockBackend;

struct DeviceTest : ::testing::Test {
    DeviceTest() {
        auto backend = std::make_unique<MockBackend>();
        mock = backend.get();
        device = std::make_unique<Device>(std::move(backend));
    }
    MockBackend* mock;  // owned by device
    std::unique_ptr<Device> device;
};

TEST_F(DeviceTest, ReadsIdsFromConfigSpace) {
    mock->set_ids(0x1234, 0xABCD, 7);
    EXPECT_EQ(device->vendor_id().value(), 0x1234);
    EXPECT_EQ(device->device_id().value(), 0xABCD);
    EXPECT_EQ(device->revision().value(), 7);
}

TEST_F(DeviceTest, ConfigReadFailureIsReported) {
    mock->fail_config_read = true;
    EXPECT_EQ(device->revision().error(), Error(EIO));
}

TEST_F(DeviceTest, ConfigWriteReachesBackend) {
    ASSERT_TRUE(device->write_config16(hw::kConfigCommand, 0x0006));
    EXPECT_EQ(device->read_config16(hw::kConfigCommand).value(), 0x0006);
    EXPECT_EQ(device->read_config32(hw::kConfigVendorId).value(), 0xF153'607Du);
}

TEST_F(DeviceTest, EnableIsCounted) {
    ASSERT_TRUE(device->enable());
    ASSERT_TRUE(device->enable());
    device->disable();
    EXPECT_TRUE(device->is_enabled());
    EXPECT_TRUE(mock->enabled());
    device->disable();
    EXPECT_FALSE(device->is_enabled());
    EXPECT_FALSE(mock->enabled());
    device->disable();  // unbalanced: ignored
    EXPECT_EQ(mock->events(), (std::vector<std::string>{"enable", "disable"}));
}

TEST_F(DeviceTest, FailedEnableLeavesDeviceDisabled) {
    mock->fail_enable = true;
    EXPECT_EQ(device->enable().error(), Error(EIO));
    EXPECT_FALSE(device->is_enabled());
}

TEST_F(DeviceTest, ScopedEnableDisablesOnDestruction) {
    {
        auto enabled = ScopedEnable::create(*device);
        ASSERT_TRUE(enabled);
        EXPECT_TRUE(device->is_enabled());
        ScopedEnable moved = std::move(*enabled);
        EXPECT_TRUE(device->is_enabled());
    }
    EXPECT_FALSE(device->is_enabled());
    EXPECT_EQ(mock->events(), (std::vector<std::string>{"enable", "disable"}));
}

TEST_F(DeviceTest, ScopedEnableReportsFailure) {
    mock->fail_enable = true;
    EXPECT_EQ(ScopedEnable::create(*device).error(), Error(EIO));
}

TEST_F(DeviceTest, ResourcesPerBar) {
    const BarResource bar1 = device->resource(1).value();
    EXPECT_EQ(bar1.start, 0x4'0000'0000u);
    EXPECT_EQ(bar1.length, 0x4'0000'0000u);
    EXPECT_TRUE(bar1.is_memory());
    EXPECT_TRUE(bar1.is_64bit());
    EXPECT_FALSE(device->resource(0).value().is_64bit());
    EXPECT_EQ(device->resource(2).value().length, 0u);
    EXPECT_EQ(device->resource(kNumBars).error(), Error(EINVAL));
}

TEST_F(DeviceTest, RegionRequestsAreExclusive) {
    ASSERT_TRUE(device->request_region(1, "first"));
    EXPECT_TRUE(device->region_held(1));
    EXPECT_EQ(device->request_region(1, "second").error(), Error(EBUSY));
    EXPECT_TRUE(device->request_region(0, "other bar"));
    device->release_region(1);
    EXPECT_FALSE(device->region_held(1));
    EXPECT_TRUE(device->request_region(1, "again"));
    EXPECT_EQ(device->request_region(kNumBars, "bad").error(), Error(EINVAL));
}

}  // namespace
}  // namespace gf::pci
