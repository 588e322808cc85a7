// The backend's effects on the (fake) device files: enable bookkeeping, BAR
// mappings, the one-owner lock, pagemap translation and ping pages.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "fake_sysfs.h"
#include "hw/pci_header.h"
#include "pci/bar.h"
#include "pci/dma_page.h"
#include "pci/shared_memory_bar.h"
#include "pci/sysfs/locked_page.h"
#include "pci/sysfs/pagemap.h"
#include "pci/sysfs/sysfs_device.h"

namespace gf::pci::sysfs {
namespace {

using testing::FakeDeviceSpec;
using testing::FakeSysfs;
using testing::kBdf;

constexpr uint16_t kDecodeBits = hw::kCommandMemorySpace | hw::kCommandBusMaster;

class BackendTest : public ::testing::Test {
  protected:
    std::unique_ptr<SysfsBackend> open(const FakeDeviceSpec& spec = {}) {
        tree.add_device(kBdf, spec);
        auto backend = open_backend(config, kBdf, &message);
        EXPECT_TRUE(backend) << message;
        return backend ? std::move(*backend) : nullptr;
    }

    FakeSysfs tree;
    SysfsConfig config = tree.config();
    std::string message;
};

// --- enable / disable -------------------------------------------------------

TEST_F(BackendTest, EnableWritesOneAndTurnsOnDecode) {
    auto backend = open({.command = 0x0400});  // INTx disable, kept as it was
    ASSERT_TRUE(backend);
    ASSERT_TRUE(backend->enable());
    EXPECT_EQ(tree.enable_state(), "1");
    EXPECT_EQ(tree.command(), 0x0400 | kDecodeBits);
    backend->disable();
    EXPECT_EQ(tree.enable_state(), "0");
    EXPECT_EQ(tree.command(), 0x0400);
}

TEST_F(BackendTest, DisableClearsOnlyTheBitsEnableSet) {
    auto backend = open({.command = hw::kCommandMemorySpace});
    ASSERT_TRUE(backend);
    ASSERT_TRUE(backend->enable());
    EXPECT_EQ(tree.command(), kDecodeBits);
    backend->disable();
    EXPECT_EQ(tree.command(), hw::kCommandMemorySpace);
}

TEST_F(BackendTest, DestructionDisablesAnEnabledDevice) {
    {
        auto backend = open();
        ASSERT_TRUE(backend);
        ASSERT_TRUE(backend->enable());
        EXPECT_EQ(tree.enable_state(), "1");
    }
    EXPECT_EQ(tree.enable_state(), "0");
    EXPECT_EQ(tree.command(), 0);
}

TEST_F(BackendTest, DisableWithoutEnableTouchesNothing) {
    auto backend = open();
    ASSERT_TRUE(backend);
    backend->disable();
    backend.reset();
    EXPECT_EQ(tree.enable_state(), "0\n");
}

TEST_F(BackendTest, CommandRegisterFailureUndoesTheEnable) {
    auto backend = open();
    ASSERT_TRUE(backend);
    // Config space shorter than the command register: reading it fails.
    std::filesystem::resize_file(tree.file("config"), 4);
    EXPECT_EQ(backend->enable().error(), Error(EIO));
    EXPECT_EQ(tree.enable_state(), "0");
}

TEST_F(BackendTest, EnableFileFailureIsReturned) {
    auto backend = open();
    ASSERT_TRUE(backend);
    std::filesystem::remove(tree.file("enable"));
    EXPECT_EQ(backend->enable().error(), Error(ENOENT));
    EXPECT_EQ(tree.command(), 0);
}

TEST_F(BackendTest, ConfigAccessIsBoundedByConfigSpace) {
    auto backend = open();
    ASSERT_TRUE(backend);
    std::array<std::byte, 4> bytes{};
    EXPECT_EQ(backend->config_read(4094, bytes).error(), Error(EINVAL));
    EXPECT_EQ(backend->config_write(4096, bytes).error(), Error(EINVAL));
    EXPECT_EQ(backend->config_read(UINT32_MAX, bytes).error(), Error(EINVAL));
    // Inside 4096 but past what `config` holds (256 bytes here).
    EXPECT_EQ(backend->config_read(256, bytes).error(), Error(EIO));
    ASSERT_TRUE(backend->config_read(0, bytes));
    EXPECT_EQ(bytes[0], std::byte{0x7d});
    EXPECT_EQ(bytes[1], std::byte{0x60});
}

// --- BAR mappings -----------------------------------------------------------

TEST_F(BackendTest, RegisterWriteLandsInResource0AndReadsBack) {
    auto backend = open();
    ASSERT_TRUE(backend);
    const auto mapping = backend->map_bar(0);
    ASSERT_TRUE(mapping);
    EXPECT_EQ(mapping->length, testing::kBar0Size);
    backend->write32(*mapping, 8, 0x1234'5678);
    backend->write32(*mapping, 0xffc, 0xdead'beef);
    EXPECT_EQ(tree.read32("resource0", 8), 0x1234'5678u);
    EXPECT_EQ(tree.read32("resource0", 0xffc), 0xdead'beefu);
    EXPECT_EQ(backend->read32(*mapping, 8), 0x1234'5678u);
    // And the other way: the file's bytes are what the mapping reads.
    std::string bytes = FakeSysfs::read(tree.file("resource0"));
    const uint32_t value = 0xa5a5'0001;
    std::memcpy(bytes.data() + 4, &value, 4);
    FakeSysfs::write_file(tree.file("resource0"), bytes);
    EXPECT_EQ(backend->read32(*mapping, 4), value);
    backend->unmap_bar(*mapping);
}

TEST_F(BackendTest, AccessOutsideTheBackedWindowReadsAllOnesAndWritesNothing) {
    // The BAR is 8 KiB but its fake file only 4 KiB: no SIGBUS, no growth.
    FakeDeviceSpec spec;
    spec.bars[0].size = 0x2000;
    spec.resource0_bytes = 0x1000;
    auto backend = open(spec);
    ASSERT_TRUE(backend);
    const auto mapping = backend->map_bar(0);
    ASSERT_TRUE(mapping);
    EXPECT_EQ(mapping->length, 0x2000u);
    EXPECT_EQ(backend->read32(*mapping, 0x1000), 0xFFFF'FFFFu);
    backend->write32(*mapping, 0x1ffc, 1);
    EXPECT_EQ(std::filesystem::file_size(tree.file("resource0")), 0x1000u);
    // Unaligned accesses are refused the same way.
    backend->write32(*mapping, 2, 0x1111'1111);
    EXPECT_EQ(backend->read32(*mapping, 2), 0xFFFF'FFFFu);
    EXPECT_EQ(tree.read32("resource0", 0), 0u);
    backend->unmap_bar(*mapping);
}

TEST_F(BackendTest, LargeBar1IsOpenedButNotMapped) {
    auto backend = open();
    ASSERT_TRUE(backend);
    const auto mapping = backend->map_bar(1);
    ASSERT_TRUE(mapping);
    EXPECT_EQ(mapping->length, testing::kBar1Size);
    EXPECT_EQ(backend->read32(*mapping, 0), 0xFFFF'FFFFu);
    backend->write32(*mapping, 0, 7);
    EXPECT_EQ(tree.read32("resource1", 0), 0u);
    backend->unmap_bar(*mapping);
}

TEST_F(BackendTest, SmallBar1IsMappedUpToItsFile) {
    FakeDeviceSpec spec;
    spec.bars[1].size = 0x10000;  // 64 KiB, below the mapping cap; file is 4 KiB
    auto backend = open(spec);
    ASSERT_TRUE(backend);
    const auto mapping = backend->map_bar(1);
    ASSERT_TRUE(mapping);
    backend->write32(*mapping, 0xff8, 0x4242'4242);
    EXPECT_EQ(tree.read32("resource1", 0xff8), 0x4242'4242u);
    EXPECT_EQ(backend->read32(*mapping, 0x1000), 0xFFFF'FFFFu);
    backend->unmap_bar(*mapping);
}

TEST_F(BackendTest, MapRefusals) {
    FakeDeviceSpec spec;
    spec.bars.push_back({0, 0, 0});
    spec.bars.push_back({0xc000, 0x20, 0x101});  // BAR3: an I/O BAR
    auto backend = open(spec);
    ASSERT_TRUE(backend);
    EXPECT_EQ(backend->map_bar(6).error(), Error(EINVAL));
    EXPECT_EQ(backend->map_bar(2).error(), Error(ENXIO));
    EXPECT_EQ(backend->map_bar(3).error(), Error(EINVAL));
    const auto mapping = backend->map_bar(0);
    ASSERT_TRUE(mapping);
    EXPECT_EQ(backend->map_bar(0).error(), Error(EBUSY));
    backend->unmap_bar(*mapping);
    const auto again = backend->map_bar(0);
    ASSERT_TRUE(again);
    backend->unmap_bar(*again);
}

TEST_F(BackendTest, ResourceFileRemovedAfterOpenFailsTheMap) {
    auto backend = open();
    ASSERT_TRUE(backend);
    std::filesystem::remove(tree.file("resource0"));
    EXPECT_EQ(backend->map_bar(0).error(), Error(ENOENT));
}

TEST_F(BackendTest, BarOwnersOverTheDevice) {
    tree.add_device();
    auto device = open_device(config, kBdf, &message);
    ASSERT_TRUE(device) << message;
    {
        auto control = pci::Bar<56>::create(**device, 0, "control");
        ASSERT_TRUE(control);
        ASSERT_TRUE(control->try_write32(52, 0xabcd));
        EXPECT_EQ(tree.read32("resource0", 52), 0xabcdu);
        auto area = pci::SharedMemoryBar::create(**device, 1, "area");
        ASSERT_TRUE(area);
        EXPECT_EQ(area->phys_start(), testing::kBar1Start);
        EXPECT_EQ(area->size(), testing::kBar1Size);
        EXPECT_TRUE((*device)->region_held(1));
    }
    EXPECT_FALSE((*device)->region_held(0));
    EXPECT_FALSE((*device)->region_held(1));
}

// --- one owner per device ---------------------------------------------------

TEST_F(BackendTest, SecondOpenIsBusyUntilTheFirstCloses) {
    auto first = open();
    ASSERT_TRUE(first);
    std::string second_message;
    EXPECT_EQ(open_backend(config, kBdf, &second_message).error(), Error(EBUSY));
    EXPECT_NE(second_message.find("already driven by another goldfish-asd (pid " +
                                  std::to_string(::getpid())),
              std::string::npos)
        << second_message;
    first.reset();
    EXPECT_TRUE(open_backend(config, kBdf, &second_message)) << second_message;
}

TEST_F(BackendTest, OtherDevicesAreNotLocked) {
    auto first = open();
    ASSERT_TRUE(first);
    tree.add_device("0000:00:0c.0");
    EXPECT_TRUE(open_backend(config, "0000:00:0c.0", &message)) << message;
}

// Runs `open_backend` in a child process; its exit code is the errno (0 = opened).
int open_in_child(const SysfsConfig& config) {
    const pid_t child = ::fork();
    if (child == 0) {
        std::string message;
        const auto result = open_backend(config, kBdf, &message);
        ::_exit(result ? 0 : result.error().value());
    }
    int status = 0;
    if (child < 0 || ::waitpid(child, &status, 0) != child || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

TEST_F(BackendTest, AnotherProcessIsBusyWhileWeHoldTheDevice) {
    auto held = open();
    ASSERT_TRUE(held);
    EXPECT_EQ(open_in_child(config), EBUSY);
    held.reset();
    EXPECT_EQ(open_in_child(config), 0);
}

TEST_F(BackendTest, WeAreBusyWhileAnotherProcessHoldsTheDevice) {
    tree.add_device();
    int ready[2];
    int done[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(done), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::string child_message;
        auto backend = open_backend(config, kBdf, &child_message);
        const char status = backend ? 'y' : 'n';
        (void)!::write(ready[1], &status, 1);
        char ignored;
        (void)!::read(done[0], &ignored, 1);  // hold the device until told
        ::_exit(0);
    }
    char status = 0;
    ASSERT_EQ(::read(ready[0], &status, 1), 1);
    ASSERT_EQ(status, 'y');
    EXPECT_EQ(open_backend(config, kBdf, &message).error(), Error(EBUSY));
    EXPECT_NE(message.find("pid " + std::to_string(child)), std::string::npos) << message;
    ASSERT_EQ(::write(done[1], "x", 1), 1);
    int wait_status = 0;
    ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
    for (int fd : {ready[0], ready[1], done[0], done[1]}) {
        ::close(fd);
    }
    // The child's exit released the lock.
    EXPECT_TRUE(open_backend(config, kBdf, &message)) << message;
}

// --- pagemap ----------------------------------------------------------------

// A fake pagemap with `entry` at the slot of the page holding `address`.
class FakePagemapTest : public ::testing::Test {
  protected:
    void SetUp() override {
        page =
            ::mmap(nullptr, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_NE(page, MAP_FAILED);
    }
    void TearDown() override { ::munmap(page, page_size); }

    Result<uint64_t> translate(uint64_t entry, std::string* message) {
        const auto path = tree.root() / "pagemap";
        FakeSysfs::write_file(path, "");
        std::filesystem::resize_file(path, uint64_t{1} << 40);
        const auto slot = reinterpret_cast<uintptr_t>(page) / page_size * 8;
        {
            std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
            out.seekp(static_cast<std::streamoff>(slot));
            out.write(reinterpret_cast<const char*>(&entry), sizeof(entry));
        }
        auto pagemap = Pagemap::open(path.string(), page_size, message);
        if (!pagemap) {
            return fail(pagemap.error());
        }
        return pagemap->physical_address(static_cast<std::byte*>(page) + 0x123, message);
    }

    FakeSysfs tree;
    const size_t page_size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    void* page = nullptr;
};

TEST_F(FakePagemapTest, PresentFrameGivesTheAddress) {
    std::string message;
    EXPECT_EQ(translate(kPagemapPresent | 0x1'2345, &message).value(),
              0x1'2345 * page_size + 0x123);
    // Flag bits 55-62 are not part of the frame number.
    EXPECT_EQ(translate(kPagemapPresent | (uint64_t{1} << 56) | 0x42, &message).value(),
              0x42 * page_size + 0x123);
}

TEST_F(FakePagemapTest, ZeroFrameIsEpermAsForAnUnprivilegedReader) {
    std::string message;
    EXPECT_EQ(translate(kPagemapPresent, &message).error(), Error(EPERM));
    EXPECT_NE(message.find("CAP_SYS_ADMIN"), std::string::npos) << message;
}

TEST_F(FakePagemapTest, NotPresentIsEio) {
    std::string message;
    // Swapped (bit 62) with a swap offset in the frame bits, present clear.
    EXPECT_EQ(translate((uint64_t{1} << 62) | 0x777, &message).error(), Error(EIO));
    EXPECT_NE(message.find("not present"), std::string::npos) << message;
}

TEST_F(FakePagemapTest, ShortPagemapIsEio) {
    const auto path = tree.root() / "short";
    FakeSysfs::write_file(path, "1234");
    std::string message;
    auto pagemap = Pagemap::open(path.string(), page_size, &message);
    ASSERT_TRUE(pagemap);
    EXPECT_EQ(pagemap->physical_address(page, &message).error(), Error(EIO));
}

TEST_F(FakePagemapTest, DmaPageWithAZeroFrameIsRefusedAndLeaksNothing) {
    auto backend = open_backend(tree.config(), kBdf, nullptr);
    ASSERT_FALSE(backend);  // no device yet
    tree.add_device();
    backend = open_backend(tree.config(), kBdf, nullptr);
    ASSERT_TRUE(backend);
    EXPECT_EQ((*backend)->allocate_dma_page().error(), Error(EPERM));
}

// --- the real pagemap (root only) -------------------------------------------

bool is_root() {
    return ::geteuid() == 0;
}

TEST(RealPagemapTest, LockedPageHasAStableNonZeroFrame) {
    if (!is_root()) {
        GTEST_SKIP() << "needs root: /proc/self/pagemap hides frame numbers from others";
    }
    const size_t page_size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    std::string message;
    auto page = LockedPage::allocate(page_size, /*prefer_hugetlb=*/false, &message);
    ASSERT_TRUE(page) << message;
    auto pagemap = Pagemap::open("/proc/self/pagemap", page_size, &message);
    ASSERT_TRUE(pagemap) << message;
    const auto first = pagemap->physical_address(page->data(), &message);
    ASSERT_TRUE(first) << message;
    EXPECT_NE(*first, 0u);
    EXPECT_EQ(*first % page_size, 0u);
    EXPECT_EQ(pagemap->physical_address(page->data(), &message).value(), *first);
    EXPECT_EQ(pagemap->physical_address(page->data() + 5, &message).value(), *first + 5);
}

TEST(RealPagemapTest, HugetlbPreferenceFallsBackToANormalPage) {
    if (!is_root()) {
        GTEST_SKIP() << "needs root: /proc/self/pagemap hides frame numbers from others";
    }
    const size_t page_size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    std::string message;
    // With vm.nr_hugepages = 0 (the default) this is a normal page; with huge
    // pages reserved, a huge one. Either way it translates.
    auto page = LockedPage::allocate(page_size, /*prefer_hugetlb=*/true, &message);
    ASSERT_TRUE(page) << message;
    auto pagemap = Pagemap::open("/proc/self/pagemap", page_size, &message);
    ASSERT_TRUE(pagemap);
    const auto phys = pagemap->physical_address(page->data(), &message);
    ASSERT_TRUE(phys) << message;
    if (page->hugetlb()) {
        EXPECT_EQ(*phys % kHugePageSize, 0u);
    }
}

TEST(RealPagemapTest, UnprivilegedReaderGetsTheZeroFrameError) {
    // The kernel decides at open whether the reader may see frame numbers; in
    // a child that has dropped to nobody, the real pagemap gives frame 0.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::geteuid() == 0 && ::setresuid(65534, 65534, 65534) != 0) {
            ::_exit(10);
        }
        // Changing uid made the process undumpable, which hides /proc/self
        // from it altogether; a real unprivileged daemon is dumpable.
        if (::prctl(PR_SET_DUMPABLE, 1) != 0) {
            ::_exit(13);
        }
        const size_t page_size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
        std::string message;
        auto page = LockedPage::allocate(page_size, /*prefer_hugetlb=*/false, &message);
        auto pagemap = Pagemap::open("/proc/self/pagemap", page_size, &message);
        if (!page || !pagemap) {
            ::_exit(11);
        }
        const auto phys = pagemap->physical_address(page->data(), &message);
        ::_exit(!phys && phys.error() == Error(EPERM) ? 0 : 12);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

class RealDmaPageTest : public BackendTest {
  protected:
    void SetUp() override {
        if (!is_root()) {
            GTEST_SKIP() << "needs root: /proc/self/pagemap hides frame numbers from others";
        }
        config.pagemap_path = "/proc/self/pagemap";
        config.check_pagemap = true;
        config.require_root = true;
    }
};

TEST_F(RealDmaPageTest, PingPageIsLockedTranslatedAndVerified) {
    auto backend = open();
    ASSERT_TRUE(backend);
    const auto buffer = backend->allocate_dma_page();
    ASSERT_TRUE(buffer);
    EXPECT_EQ(buffer->size, backend->page_size());
    EXPECT_NE(buffer->phys, 0u);
    EXPECT_EQ(buffer->phys % backend->page_size(), 0u);
    EXPECT_TRUE(backend->verify_dma_page(*buffer));
    EXPECT_TRUE(backend->verify_dma_page(*buffer));
    // What the check catches: a recorded address that is no longer the page's.
    DmaBuffer moved = *buffer;
    moved.phys += backend->page_size();
    EXPECT_EQ(backend->verify_dma_page(moved).error(), Error(EIO));
    backend->free_dma_page(*buffer);
    EXPECT_EQ(backend->verify_dma_page(*buffer).error(), Error(EINVAL));
}

TEST_F(RealDmaPageTest, DmaPageOverTheDeviceIsZeroedAndFreed) {
    tree.add_device();
    auto device = open_device(config, kBdf, &message);
    ASSERT_TRUE(device) << message;
    auto page = pci::DmaPage::allocate(**device);
    ASSERT_TRUE(page);
    EXPECT_NE(page->phys_addr(), 0u);
    EXPECT_EQ(page->bytes().size(), (*device)->page_size());
}

TEST_F(RealDmaPageTest, PingPageIsNotSharedWithAForkedChild) {
    auto backend = open();
    ASSERT_TRUE(backend);
    const auto buffer = backend->allocate_dma_page();
    ASSERT_TRUE(buffer);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::_exit(0);  // MADV_DONTFORK: the page is not in the child at all
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    // A write after fork must not copy the page to another frame.
    buffer->data[0] = std::byte{1};
    EXPECT_TRUE(backend->verify_dma_page(*buffer));
    backend->free_dma_page(*buffer);
}

}  // namespace
}  // namespace gf::pci::sysfs
