// The real driver over the sysfs backend on a fake tree: probe's register
// writes land in resource0's bytes, and remove (or a failed probe) leaves the
// device disabled.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "driver/driver.h"
#include "driver/file.h"
#include "fake_sysfs.h"
#include "hw/pci_header.h"
#include "pci/sysfs/sysfs_device.h"

namespace gf::pci::sysfs {
namespace {

using testing::FakeSysfs;
using testing::kBdf;

constexpr uint64_t kGuestPageSize = 8;
constexpr uint64_t kPingInfoAddrLow = 32;
constexpr uint64_t kPingInfoAddrHigh = 36;
constexpr uint64_t kPhysStartLow = 44;
constexpr uint64_t kPhysStartHigh = 48;

class DriverOverSysfsTest : public ::testing::Test {
  protected:
    void SetUp() override { tree.add_device(); }

    std::unique_ptr<pci::Device> open() {
        auto device = open_device(config, kBdf, &message);
        EXPECT_TRUE(device) << message;
        return device ? std::move(*device) : nullptr;
    }

    FakeSysfs tree;
    SysfsConfig config = tree.config();
    std::string message;
};

TEST_F(DriverOverSysfsTest, ProbeProgramsTheDeviceThroughResource0) {
    auto device = open();
    ASSERT_TRUE(device);
    auto driver = driver::Driver::probe(*device);
    ASSERT_TRUE(driver) << driver.error().value();
    EXPECT_EQ(tree.read32("resource0", kGuestPageSize), static_cast<uint32_t>(::getpagesize()));
    EXPECT_EQ(tree.read32("resource0", kPhysStartLow), 0x3456'7000u);
    EXPECT_EQ(tree.read32("resource0", kPhysStartHigh), 0x12u);
    EXPECT_EQ((*driver)->bar1_phys_start(), testing::kBar1Start);
    EXPECT_EQ((*driver)->bar1_size(), testing::kBar1Size);
    EXPECT_EQ(tree.enable_state(), "1");
    EXPECT_EQ(tree.command(), hw::kCommandMemorySpace | hw::kCommandBusMaster);

    driver->reset();  // remove()
    EXPECT_EQ(tree.enable_state(), "0");
    EXPECT_EQ(tree.command(), 0);
    EXPECT_FALSE(device->is_enabled());
}

TEST_F(DriverOverSysfsTest, FailedProbeLeavesTheDeviceDisabled) {
    auto device = open();
    ASSERT_TRUE(device);
    std::filesystem::remove(tree.file("resource1"));  // BAR1 cannot be taken
    EXPECT_EQ(driver::Driver::probe(*device).error(), Error(ENOMEM));
    EXPECT_EQ(tree.enable_state(), "0");
    EXPECT_EQ(tree.command(), 0);
    EXPECT_FALSE(device->region_held(0));
}

TEST_F(DriverOverSysfsTest, WrongRevisionInConfigSpaceIsRefusedBeforeEnabling) {
    auto device = open();
    ASSERT_TRUE(device);
    std::string config_bytes = FakeSysfs::read(tree.file("config"));
    config_bytes[8] = 2;
    FakeSysfs::write_file(tree.file("config"), config_bytes);
    EXPECT_EQ(driver::Driver::probe(*device).error(), Error(ENODEV));
    EXPECT_EQ(tree.enable_state(), "0\n");
}

TEST_F(DriverOverSysfsTest, OpenFailsWithEpermOnAZeroFrame) {
    auto device = open();  // the fake pagemap reads frame 0 everywhere
    ASSERT_TRUE(device);
    auto driver = driver::Driver::probe(*device);
    ASSERT_TRUE(driver);
    EXPECT_EQ((*driver)->open().error(), Error(EPERM));
    EXPECT_EQ((*driver)->stats().open_files, 0u);
}

TEST_F(DriverOverSysfsTest, OpenTellsTheHostTheRealPhysicalAddress) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root: /proc/self/pagemap hides frame numbers from others";
    }
    config.pagemap_path = "/proc/self/pagemap";
    config.check_pagemap = true;
    auto device = open();
    ASSERT_TRUE(device);
    auto driver = driver::Driver::probe(*device);
    ASSERT_TRUE(driver);
    // The fake BAR0 is plain memory: HANDLE reads 0 (a valid handle) and
    // PING_INFO_ADDR reads back what was written, as the device would.
    auto file = (*driver)->open();
    ASSERT_TRUE(file) << file.error().value();
    const uint64_t phys = uint64_t{tree.read32("resource0", kPingInfoAddrHigh)} << 32 |
                          tree.read32("resource0", kPingInfoAddrLow);
    EXPECT_NE(phys, 0u);
    EXPECT_EQ(phys % static_cast<uint64_t>(::getpagesize()), 0u);
}

}  // namespace
}  // namespace gf::pci::sysfs
