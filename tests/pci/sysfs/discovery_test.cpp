// Finding the device and every way opening it can fail, each with its errno
// and its one-line message, on a fake sysfs tree.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "fake_sysfs.h"
#include "pci/sysfs/sysfs_device.h"

namespace gf::pci::sysfs {
namespace {

using testing::FakeDeviceSpec;
using testing::FakeSysfs;
using testing::kBdf;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

class FindDeviceTest : public ::testing::Test {
  protected:
    FakeSysfs tree;
    std::string message;
};

TEST_F(FindDeviceTest, ByAddress) {
    tree.add_device();
    EXPECT_EQ(find_device(tree.config(), "0000:00:0b.0", &message).value(), kBdf);
    EXPECT_EQ(find_device(tree.config(), "0000:00:0B.0", &message).value(), kBdf);
}

TEST_F(FindDeviceTest, ByAddressMissing) {
    EXPECT_EQ(find_device(tree.config(), "0000:00:0c.0", &message).error(), Error(ENODEV));
    EXPECT_TRUE(contains(message, "no PCI device 0000:00:0c.0")) << message;
}

TEST_F(FindDeviceTest, MalformedAddressIsEinvalAndNeverAPath) {
    // A directory that a traversal would reach must not be found.
    std::filesystem::create_directories(tree.root() / "bus/pci/escape");
    EXPECT_EQ(find_device(tree.config(), "../escape", &message).error(), Error(EINVAL));
    EXPECT_TRUE(contains(message, "invalid PCI address")) << message;
    EXPECT_EQ(find_device(tree.config(), "0000:00:0b.0\nX", &message).error(), Error(EINVAL));
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
}

TEST_F(FindDeviceTest, AutoFindsTheOneGoldfishDevice) {
    tree.add_device("0000:00:02.0", {.vendor = 0x1af4, .device = 0x1000});
    tree.add_device("0000:00:0b.0");
    tree.add_device("0000:00:0c.0", {.vendor = 0x607d, .device = 0xf154});
    std::filesystem::create_directories(tree.devices() / "not-a-bdf");
    EXPECT_EQ(find_device(tree.config(), "auto", &message).value(), "0000:00:0b.0");
}

TEST_F(FindDeviceTest, AutoFindsNone) {
    tree.add_device("0000:00:02.0", {.vendor = 0x1af4, .device = 0x1000});
    EXPECT_EQ(find_device(tree.config(), "auto", &message).error(), Error(ENODEV));
    EXPECT_TRUE(contains(message, "no goldfish address space device (607d:f153)")) << message;
}

TEST_F(FindDeviceTest, AutoRefusesToChooseBetweenTwo) {
    tree.add_device("0000:00:0b.0");
    tree.add_device("0000:01:00.0");
    EXPECT_EQ(find_device(tree.config(), "auto", &message).error(), Error(EINVAL));
    EXPECT_TRUE(contains(message, "0000:00:0b.0, 0000:01:00.0")) << message;
    EXPECT_TRUE(contains(message, "--pci BDF")) << message;
}

TEST_F(FindDeviceTest, AutoWithoutDevicesDirectory) {
    std::filesystem::remove_all(tree.devices());
    EXPECT_EQ(find_device(tree.config(), "auto", &message).error(), Error(ENODEV));
    EXPECT_TRUE(contains(message, "cannot list")) << message;
}

class OpenDeviceTest : public ::testing::Test {
  protected:
    Result<std::unique_ptr<pci::Device>> open() { return open_device(config, kBdf, &message); }

    FakeSysfs tree;
    SysfsConfig config = tree.config();
    std::string message;
};

TEST_F(OpenDeviceTest, IdentityAndResourcesComeFromTheTree) {
    tree.add_device();
    auto device = open();
    ASSERT_TRUE(device) << message;
    EXPECT_EQ((*device)->vendor_id().value(), 0x607d);
    EXPECT_EQ((*device)->device_id().value(), 0xf153);
    EXPECT_EQ((*device)->revision().value(), 1);
    const BarResource bar0 = (*device)->resource(0).value();
    EXPECT_EQ(bar0.start, testing::kBar0Start);
    EXPECT_EQ(bar0.length, testing::kBar0Size);
    const BarResource bar1 = (*device)->resource(1).value();
    EXPECT_EQ(bar1.start, testing::kBar1Start);
    EXPECT_EQ(bar1.length, testing::kBar1Size);
    EXPECT_TRUE(bar1.is_64bit());
    EXPECT_EQ((*device)->resource(2).value().length, 0u);
    EXPECT_EQ((*device)->page_size(), static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
    // Opening touches nothing: enabling is the driver's first step.
    EXPECT_EQ(tree.enable_state(), "0\n");
}

TEST_F(OpenDeviceTest, MalformedAddress) {
    EXPECT_EQ(open_device(config, "0000:00:0b.0/..", &message).error(), Error(EINVAL));
    EXPECT_TRUE(contains(message, "expected DDDD:BB:DD.F")) << message;
}

TEST_F(OpenDeviceTest, MissingDevice) {
    EXPECT_EQ(open().error(), Error(ENODEV));
    EXPECT_TRUE(contains(message, "no PCI device 0000:00:0b.0")) << message;
}

TEST_F(OpenDeviceTest, KernelDriverBoundIsNamedWithTheUnbindCommand) {
    tree.add_device();
    std::filesystem::create_directory_symlink("../../../bus/pci/drivers/goldfish_address_space",
                                              tree.file("driver"));
    EXPECT_EQ(open().error(), Error(EBUSY));
    EXPECT_TRUE(contains(message, "bound to the kernel driver goldfish_address_space")) << message;
    EXPECT_TRUE(contains(message, "echo 0000:00:0b.0 > " + config.sysfs_root +
                                      "/bus/pci/drivers/goldfish_address_space/unbind"))
        << message;
    EXPECT_EQ(tree.enable_state(), "0\n");
}

TEST_F(OpenDeviceTest, WrongRevision) {
    tree.add_device(kBdf, {.revision = 2});
    EXPECT_EQ(open().error(), Error(ENODEV));
    EXPECT_TRUE(contains(message, "revision 2; only revision 1 is supported")) << message;
}

TEST_F(OpenDeviceTest, NotAGoldfishDevice) {
    tree.add_device(kBdf, {.vendor = 0x1af4, .device = 0x1041});
    EXPECT_EQ(open().error(), Error(ENODEV));
    EXPECT_TRUE(contains(message, "is 1af4:1041, not a goldfish address space device")) << message;
}

TEST_F(OpenDeviceTest, MalformedIdFile) {
    tree.add_device();
    FakeSysfs::write_file(tree.file("revision"), "1\n");
    EXPECT_EQ(open().error(), Error(EINVAL));
    EXPECT_TRUE(contains(message, "revision holds \"1?\"")) << message;
}

class MissingFileTest : public OpenDeviceTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(MissingFileTest, IsNamed) {
    tree.add_device();
    std::filesystem::remove(tree.file(GetParam()));
    EXPECT_EQ(open().error(), Error(ENOENT));
    EXPECT_TRUE(contains(message, tree.file(GetParam()).string())) << message;
}

INSTANTIATE_TEST_SUITE_P(Files, MissingFileTest,
                         ::testing::Values("vendor", "device", "revision", "resource", "resource0",
                                           "resource1", "config"));

TEST_F(OpenDeviceTest, MissingBarFilesSayWhy) {
    tree.add_device();
    std::filesystem::remove(tree.file("resource0"));
    EXPECT_EQ(open().error(), Error(ENOENT));
    EXPECT_TRUE(contains(message, "does not let userspace map the device's BARs")) << message;
}

TEST_F(OpenDeviceTest, MalformedResourceFile) {
    tree.add_device();
    FakeSysfs::write_file(tree.file("resource"), "0x0 0x0\n");
    EXPECT_EQ(open().error(), Error(EINVAL));
    EXPECT_TRUE(contains(message, "line 1 of the resource file")) << message;
}

TEST_F(OpenDeviceTest, UnassignedBar1) {
    FakeDeviceSpec spec;
    spec.bars[1] = {0, 0, 0x200};
    tree.add_device(kBdf, spec);
    EXPECT_EQ(open().error(), Error(ENXIO));
    EXPECT_TRUE(contains(message, "BAR1 of PCI device 0000:00:0b.0")) << message;
}

TEST_F(OpenDeviceTest, ZeroFrameFromPagemap) {
    tree.add_device();
    config.check_pagemap = true;  // the fake pagemap reads 0 for every page
    EXPECT_EQ(open().error(), Error(EPERM));
    EXPECT_TRUE(contains(message, "gives frame 0")) << message;
    EXPECT_TRUE(contains(message, "CAP_SYS_ADMIN")) << message;
}

TEST_F(OpenDeviceTest, MissingPagemap) {
    tree.add_device();
    config.pagemap_path = (tree.root() / "no-pagemap").string();
    EXPECT_EQ(open().error(), Error(ENOENT));
    EXPECT_TRUE(contains(message, "no-pagemap")) << message;
}

TEST_F(OpenDeviceTest, MissingLockDirectory) {
    tree.add_device();
    config.lock_dir = (tree.root() / "no-such-dir").string();
    EXPECT_EQ(open().error(), Error(ENOENT));
    EXPECT_TRUE(contains(message, "lock file")) << message;
}

TEST_F(OpenDeviceTest, LockFileSymlinkIsNotFollowed) {
    tree.add_device();
    const auto target = tree.root() / "victim";
    FakeSysfs::write_file(target, "keep");
    std::filesystem::create_symlink(target,
                                    tree.root() / "lock" / "goldfish-asd-pci-0000:00:0b.0.lock");
    EXPECT_EQ(open().error(), Error(ELOOP));
    EXPECT_EQ(FakeSysfs::read(target), "keep");
}

TEST_F(OpenDeviceTest, WithoutCapSysAdminIsRefused) {
    tree.add_device();
    config.require_root = true;
    // In a child, so this process keeps its privileges: as root, drop to
    // nobody (which clears every capability) first.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::geteuid() == 0 && ::setresuid(65534, 65534, 65534) != 0) {
            ::_exit(10);
        }
        std::string child_message;
        const auto result = open_device(config, kBdf, &child_message);
        if (result || result.error() != Error(EPERM)) {
            ::_exit(11);
        }
        ::_exit(contains(child_message, "must run as root") &&
                        contains(child_message, "CAP_SYS_ADMIN")
                    ? 0
                    : 12);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(OpenDeviceTest, AsRootThePrivilegeCheckPasses) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root: checks that require_root accepts root";
    }
    tree.add_device();
    config.require_root = true;
    EXPECT_TRUE(open()) << message;
}

}  // namespace
}  // namespace gf::pci::sysfs
