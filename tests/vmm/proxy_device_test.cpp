// The device served over a socketpair to a fake QEMU in the same process: what the guest
// sees through x-pci-proxy-dev (config space, BAR sizing and placement, registers, pings
// into memfd guest RAM, reset), and how malformed messages end a connection cleanly.
#include "vmm/proxy_device.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "device/device_test_access.h"
#include "device/registers.h"
#include "vmm/fake_qemu_peer.h"

namespace gf::vmm {
namespace {

using device::Command;
using device::Reg;
using testing::FakeQemu;
using testing::Memfd;

constexpr uint64_t kRamSize = 2ull << 20;
constexpr uint32_t kBar0Base = 0xFEBF'0000;
constexpr uint32_t kBar1Base = 0xE000'0000;
constexpr uint64_t kPingPage = 0x10000;
constexpr uint64_t kFailed = ~uint64_t{0};

// serve() on its own thread; the test plays QEMU on the other end.
class Connection {
  public:
    explicit Connection(ProxyDevice& device) {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
            throw std::runtime_error("socketpair");
        }
        qemu_ = std::make_unique<FakeQemu>(UniqueFd(fds[0]));
        server_ = std::thread([this, &device, fd = fds[1]] { end_ = device.serve(UniqueFd(fd)); });
    }
    ~Connection() {
        if (server_.joinable()) {
            qemu_->close();
            server_.join();
        }
    }
    FakeQemu& qemu() { return *qemu_; }
    // Waits for serve() to return.
    ConnectionEnd finish() {
        server_.join();
        return *end_;
    }

  private:
    std::unique_ptr<FakeQemu> qemu_;
    std::optional<ConnectionEnd> end_;
    std::thread server_;
};

size_t open_fd_count() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/self/fd")) {
        ++n;
    }
    return n;
}

// The device closed its end: EOF, or a reset if it left our bytes unread.
bool closed_by_device(FakeQemu& qemu) {
    std::byte b;
    const ssize_t n = ::recv(qemu.fd(), &b, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

class ProxyDeviceTest : public ::testing::Test {
  protected:
    void SetUp() override { device_ = ProxyDevice::create({}).value(); }

    // What QEMU and the firmware do before the guest driver runs: share RAM, place the
    // BARs, turn memory decoding on.
    void boot(FakeQemu& q) {
        q.sync_sysmem({{0, kRamSize, 0, ram_.fd()}});
        q.config_write(0x10, kBar0Base, 4);
        q.config_write(0x14, kBar1Base, 4);
        q.config_write(0x04, 0x0002, 2);
    }
    uint32_t reg(FakeQemu& q, Reg r) {
        return static_cast<uint32_t>(q.bar_read(kBar0Base + static_cast<uint32_t>(r), 4));
    }
    void set_reg(FakeQemu& q, Reg r, uint32_t v) {
        q.bar_write(kBar0Base + static_cast<uint32_t>(r), v, 4);
    }
    uint32_t command(FakeQemu& q, Command c) {
        set_reg(q, Reg::COMMAND, static_cast<uint32_t>(c));
        return reg(q, Reg::STATUS);
    }
    // What the guest driver's open() does: a handle whose ping page is at page_gpa.
    uint32_t open_handle(FakeQemu& q, uint64_t page_gpa) {
        set_reg(q, Reg::GUEST_PAGE_SIZE, 4096);
        EXPECT_EQ(command(q, Command::GEN_HANDLE), 0u);
        const uint32_t handle = reg(q, Reg::HANDLE);
        set_reg(q, Reg::PING_INFO_ADDR_LOW, static_cast<uint32_t>(page_gpa));
        set_reg(q, Reg::PING_INFO_ADDR_HIGH, static_cast<uint32_t>(page_gpa >> 32));
        set_reg(q, Reg::HANDLE, handle);
        EXPECT_EQ(command(q, Command::TELL_PING_INFO_ADDR), 0u);
        EXPECT_EQ(reg(q, Reg::PING_INFO_ADDR_LOW), static_cast<uint32_t>(page_gpa));
        return handle;
    }
    // Fills the ping struct in guest RAM (at ram offset page), pings, returns `metadata`.
    uint64_t ping(FakeQemu& q, Memfd& ram, uint64_t page, uint32_t handle, uint64_t phys_addr,
                  uint64_t size, uint64_t metadata) {
        ram.store<uint64_t>(page + 0, phys_addr);
        ram.store<uint64_t>(page + 8, size);
        ram.store<uint64_t>(page + 16, metadata);
        set_reg(q, Reg::PING, handle);
        return ram.load<uint64_t>(page + 16);
    }

    std::unique_ptr<ProxyDevice> device_;
    Memfd ram_{kRamSize};
};

TEST_F(ProxyDeviceTest, ConfigSpaceCarriesTheGoldfishIdentity) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    EXPECT_EQ(q.config_read(0x00, 2), 0x607Du);
    EXPECT_EQ(q.config_read(0x02, 2), 0xF153u);
    EXPECT_EQ(q.config_read(0x00, 4), 0xF153'607Du);
    EXPECT_EQ(q.config_read(0x08, 1), 1u);       // revision
    EXPECT_EQ(q.config_read(0x09, 1), 0u);       // prog-if
    EXPECT_EQ(q.config_read(0x0A, 2), 0xFF00u);  // class "other", subclass 0
    EXPECT_EQ(q.config_read(0x08, 4), 0xFF00'0001u);
    EXPECT_EQ(q.config_read(0x0E, 1), 0u);  // header type 0, single function
    EXPECT_EQ(q.config_read(0x2C, 2), 0u);  // subsystem vendor
    EXPECT_EQ(q.config_read(0x2E, 2), 0u);  // subsystem
    EXPECT_EQ(q.config_read(0x3D, 1), 2u);  // interrupt pin B
    EXPECT_EQ(q.config_read(0x34, 1), 0u);  // no capabilities
    EXPECT_EQ(q.config_read(0x06, 2), 0u);  // status: no capability list
}

// Exactly what the proxy's realize does for each of its 7 "regions" (0x10..0x28).
TEST_F(ProxyDeviceTest, BarSizingAsTheProxyDoesIt) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    const uint32_t expected[] = {0x1000, 256u << 20, 0, 0, 0, 0, 0};
    for (uint32_t i = 0; i < 7; ++i) {
        const uint32_t at = 0x10 + 4 * i;
        SCOPED_TRACE(at);
        const uint32_t original = q.config_read(at, 4);
        q.config_write(at, 0xFFFF'FFFF, 4);
        const uint32_t mask = q.config_read(at, 4);
        q.config_write(at, original, 4);
        EXPECT_EQ(q.config_read(at, 4), original);
        EXPECT_EQ(mask & 0xF, 0u);  // memory, 32-bit, not prefetchable
        EXPECT_EQ(~(mask & 0xFFFF'FFF0u) + 1, expected[i]);
    }
    q.config_write(0x30, 0xFFFF'FFFF, 4);
    EXPECT_EQ(q.config_read(0x30, 4), 0u);  // no expansion ROM
}

TEST(ProxyDeviceConfig, Bar1SizeIsConfigurable) {
    for (uint64_t size : {4096ull, 1ull << 30, 2ull << 30}) {
        ProxyDeviceConfig config;
        config.bar1_size = size;
        auto device = ProxyDevice::create(config).value();
        Connection c(*device);
        c.qemu().config_write(0x14, 0xFFFF'FFFF, 4);
        EXPECT_EQ(c.qemu().config_read(0x14, 4), static_cast<uint32_t>(~(size - 1)));
        EXPECT_EQ(device->device().bar1_size(), size);
        EXPECT_FALSE(device->device().bar1_64bit());
    }
}

TEST(ProxyDeviceConfig, RefusesABar1ThisProtocolCannotCarry) {
    for (uint64_t size : {0ull, 3ull << 20, 4ull << 30, 16ull << 30, 2048ull}) {
        ProxyDeviceConfig config;
        config.bar1_size = size;
        auto device = ProxyDevice::create(config);
        ASSERT_FALSE(device) << size;
        EXPECT_EQ(device.error().value(), EINVAL);
    }
}

TEST_F(ProxyDeviceTest, RegistersAndAPingThroughBar0WithThePingPageInGuestRam) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    boot(q);
    const uint32_t handle = open_handle(q, kPingPage);
    EXPECT_EQ(reg(q, Reg::GUEST_PAGE_SIZE), 4096u);
    // Create ping for a host memory allocator (type 5): the device answers in guest RAM.
    EXPECT_EQ(ping(q, ram_, kPingPage, handle, 0, 0, 5), 0u);
    EXPECT_EQ(device_->device().stats().contexts_by_type[5], 1u);
    // An unknown type fails the same way the emulator's does.
    const uint32_t second = open_handle(q, kPingPage + 4096);
    EXPECT_EQ(ping(q, ram_, kPingPage + 4096, second, 0, 0, 2), kFailed);
    EXPECT_EQ(device_->device().stats().handles, 2u);
}

// The guest never writes PHYS_START here: the device must use the base the guest
// programmed into BAR1, and follow it when BAR1 moves.
TEST_F(ProxyDeviceTest, PhysStartFallsBackToTheBar1BaseTheGuestProgrammed) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    boot(q);
    const uint32_t handle = open_handle(q, kPingPage);
    ASSERT_EQ(ping(q, ram_, kPingPage, handle, 0, 0, 5), 0u);
    set_reg(q, Reg::BLOCK_SIZE_LOW, 4096);
    set_reg(q, Reg::BLOCK_SIZE_HIGH, 0);
    ASSERT_EQ(command(q, Command::ALLOCATE_BLOCK), 0u);
    const uint64_t offset = reg(q, Reg::BLOCK_OFFSET_LOW);
    EXPECT_LT(offset, 256u << 20);  // inside the 256 MiB BAR1
    EXPECT_EQ(ping(q, ram_, kPingPage, handle, kBar1Base + offset, 4096, 1), 0u);
    EXPECT_TRUE(gf::device::testing::host_memory(device_->device(), kBar1Base + offset, 4096));

    // Move BAR1: the old GPA is no longer inside it, the new one is.
    constexpr uint32_t kMoved = 0xD000'0000;
    q.config_write(0x14, kMoved, 4);
    EXPECT_EQ(ping(q, ram_, kPingPage, handle, kBar1Base + offset, 4096, 2), kFailed);
    EXPECT_EQ(ping(q, ram_, kPingPage, handle, kMoved + offset, 4096, 2), 0u);
}

TEST_F(ProxyDeviceTest, AccessesOutsideAPlacedBarAreIgnoredAndReadZero) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    q.sync_sysmem({{0, kRamSize, 0, ram_.fd()}});
    q.config_write(0x10, kBar0Base, 4);
    q.config_write(0x14, kBar1Base, 4);
    const uint64_t page_size_reg = kBar0Base + static_cast<uint32_t>(Reg::GUEST_PAGE_SIZE);

    EXPECT_EQ(q.bar_read(page_size_reg, 4), 0u);  // memory decoding still off
    q.config_write(0x04, 0x0002, 2);
    EXPECT_EQ(q.bar_read(page_size_reg, 4), 4096u);

    const uint64_t stray_before = device_->stats().stray_bar_accesses;
    EXPECT_EQ(q.bar_read(kBar0Base - 4, 4), 0u);         // below BAR0
    EXPECT_EQ(q.bar_read(kBar0Base + 0x1000, 4), 0u);    // just past its end
    EXPECT_EQ(q.bar_read(kBar0Base + 0xFFE, 4), 0u);     // straddles the end
    EXPECT_EQ(q.bar_read(page_size_reg, 4, false), 0u);  // an I/O port access
    EXPECT_EQ(q.bar_read(page_size_reg, 3), 0u);         // no such access size
    q.bar_write(kBar0Base + 0x1000 + 0x08, 0x2000, 4);   // would be GUEST_PAGE_SIZE
    q.bar_write(page_size_reg, 0x2000, 4, false);
    EXPECT_EQ(device_->stats().stray_bar_accesses, stray_before + 7);
    EXPECT_EQ(q.bar_read(page_size_reg, 4), 4096u);

    // BAR1 is address space only: placed, but nothing answers there.
    EXPECT_EQ(q.bar_read(kBar1Base + 0x100, 4), 0u);
    q.bar_write(kBar1Base, 0x1234, 4);
    EXPECT_EQ(device_->stats().stray_bar_accesses, stray_before + 7);

    // Re-placing BAR0 moves the registers with it.
    constexpr uint32_t kMoved = 0xFEA0'0000;
    q.config_write(0x10, kMoved, 4);
    EXPECT_EQ(q.bar_read(page_size_reg, 4), 0u);
    EXPECT_EQ(q.bar_read(kMoved + static_cast<uint32_t>(Reg::GUEST_PAGE_SIZE), 4), 4096u);
}

TEST_F(ProxyDeviceTest, SubWordRegisterAccessesAreIgnoredAsInTheEmulator) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    boot(q);
    const uint64_t page_size_reg = kBar0Base + static_cast<uint32_t>(Reg::GUEST_PAGE_SIZE);
    EXPECT_EQ(q.bar_read(page_size_reg, 2), 0u);
    q.bar_write(page_size_reg, 0x4000, 2);
    EXPECT_EQ(q.bar_read(page_size_reg, 4), 4096u);
}

TEST_F(ProxyDeviceTest, GuestRamMaySpanSeveralRegionsLikeThePcMachine) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    // One memfd, two slots: [0, 640K) and [1M, 2M) with the legacy hole between them.
    q.sync_sysmem(
        {{0, 0xA0000, 0, ram_.fd()}, {0x100000, kRamSize - 0x100000, 0x100000, ram_.fd()}});
    q.config_write(0x10, kBar0Base, 4);
    q.config_write(0x04, 0x0002, 2);
    const uint32_t high = open_handle(q, 0x110000);
    EXPECT_EQ(ping(q, ram_, 0x110000, high, 0, 0, 5), 0u);
    // A ping page in the hole is not guest RAM: refused without touching the memfd.
    ram_.store<uint64_t>(0xA0000, 0x5a5a);
    set_reg(q, Reg::PING_INFO_ADDR_LOW, 0xA0000);
    set_reg(q, Reg::HANDLE, high);
    EXPECT_EQ(command(q, Command::TELL_PING_INFO_ADDR), static_cast<uint32_t>(EFAULT));
    EXPECT_EQ(ram_.load<uint64_t>(0xA0000), 0x5a5au);
    // A page that straddles the two regions' boundary is fine only if both sides are RAM.
    set_reg(q, Reg::PING_INFO_ADDR_LOW, 0x9FFF0);
    EXPECT_EQ(command(q, Command::TELL_PING_INFO_ADDR), static_cast<uint32_t>(EFAULT));
}

TEST_F(ProxyDeviceTest, EachSyncSysmemReplacesTheWholeRamAndClosesTheOldFds) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    boot(q);
    const uint32_t handle = open_handle(q, kPingPage);
    ASSERT_EQ(ping(q, ram_, kPingPage, handle, 0, 0, 5), 0u);

    // New RAM somewhere else: the old ping page is gone, and stays untouched.
    Memfd other(1 << 20);
    q.sync_sysmem({{0x4000'0000, other.size(), 0, other.fd()}});
    EXPECT_EQ(q.config_read(0, 2), 0x607Du);  // a reply: the sync was handled
    ASSERT_EQ(device_->guest_memory().regions().size(), 1u);
    EXPECT_EQ(device_->guest_memory().regions()[0].gpa, 0x4000'0000u);
    const uint64_t refused = device_->device().stats().refused_pings;
    EXPECT_EQ(ping(q, ram_, kPingPage, handle, 0, 0, 7), 7u);
    EXPECT_EQ(device_->device().stats().refused_pings, refused + 1);

    const uint32_t moved = open_handle(q, 0x4000'0000 + 0x3000);
    EXPECT_EQ(ping(q, other, 0x3000, moved, 0, 0, 6), 0u);

    // The device keeps no fd for RAM: many syncs leave the fd count where it was.
    const size_t fds_before = open_fd_count();
    for (int i = 0; i < 20; ++i) {
        q.sync_sysmem({{0, kRamSize, 0, ram_.fd()}, {0x4000'0000, other.size(), 0, other.fd()}});
    }
    EXPECT_EQ(q.config_read(0, 2), 0x607Du);
    EXPECT_EQ(open_fd_count(), fds_before);
    EXPECT_EQ(device_->guest_memory().regions().size(), 2u);
    EXPECT_EQ(device_->stats().sysmem_syncs, 22u);
}

TEST_F(ProxyDeviceTest, DeviceResetResetsTheDeviceAndItsConfigSpace) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    boot(q);
    const uint32_t handle = open_handle(q, kPingPage);
    ASSERT_EQ(ping(q, ram_, kPingPage, handle, 0, 0, 5), 0u);
    ASSERT_EQ(device_->device().stats().handles, 1u);

    EXPECT_EQ(q.device_reset(), 0u);
    EXPECT_EQ(device_->device().stats().handles, 0u);
    EXPECT_EQ(q.config_read(0x04, 2), 0u);  // decoding off
    EXPECT_EQ(q.config_read(0x10, 4), 0u);  // BARs unplaced
    EXPECT_EQ(q.config_read(0x14, 4), 0u);
    EXPECT_EQ(q.config_read(0x00, 4), 0xF153'607Du);
    EXPECT_EQ(q.bar_read(kBar0Base + static_cast<uint32_t>(Reg::GUEST_PAGE_SIZE), 4), 0u);

    // The firmware places it again and it works as after power-on; RAM stays shared.
    q.config_write(0x10, kBar0Base, 4);
    q.config_write(0x14, kBar1Base, 4);
    q.config_write(0x04, 0x0002, 2);
    const uint32_t again = open_handle(q, kPingPage);
    EXPECT_EQ(ping(q, ram_, kPingPage, again, 0, 0, 5), 0u);
    EXPECT_EQ(device_->stats().resets, 1u);
}

TEST_F(ProxyDeviceTest, SetIrqfdIsKeptAndReplaced) {
    Connection c(*device_);
    FakeQemu& q = c.qemu();
    UniqueFd irq(::eventfd(0, EFD_CLOEXEC)), resample(::eventfd(0, EFD_CLOEXEC));
    q.set_irqfd(irq.get(), resample.get());
    EXPECT_EQ(q.config_read(0, 2), 0x607Du);
    const size_t fds = open_fd_count();
    q.set_irqfd(irq.get(), resample.get());  // the first pair is closed, the new one kept
    EXPECT_EQ(q.config_read(0, 2), 0x607Du);
    EXPECT_EQ(open_fd_count(), fds);
    EXPECT_EQ(device_->stats().irqfd_updates, 2u);
}

TEST_F(ProxyDeviceTest, QemuClosingTheSocketIsACleanEnd) {
    Connection c(*device_);
    EXPECT_EQ(c.qemu().config_read(0, 2), 0x607Du);
    c.qemu().close();
    const ConnectionEnd end = c.finish();
    EXPECT_EQ(end.kind, ConnectionEnd::Kind::peer_closed);
}

// ---- Malformed messages: each ends the connection with a reason and changes nothing.

struct MalformedCase {
    const char* name;
    // Sends the bad message; `ram` is a memfd the case may pass along.
    std::function<void(FakeQemu&, Memfd& ram)> send;
    const char* reason;  // a part of ConnectionEnd::reason
};

std::vector<std::byte> zeros(size_t n) {
    return std::vector<std::byte>(n);
}

SyncSysmem one_slot(uint64_t gpa, uint64_t size, int64_t offset) {
    SyncSysmem m;
    m.gpas[0] = gpa;
    m.sizes[0] = size;
    m.offsets[0] = offset;
    return m;
}

const MalformedCase kMalformed[] = {
    {"UnknownCommand", [](FakeQemu& q, Memfd&) { q.send_raw(testing::frame(8, 0, {})); },
     "unknown command 8"},
    {"NegativeCommand", [](FakeQemu& q, Memfd&) { q.send_raw(testing::frame(-1, 0, {})); },
     "unknown command -1"},
    {"RetFromQemu", [](FakeQemu& q, Memfd&) { q.send(ProxyCommand::RET, zeros(8)); },
     "unexpected RET"},
    {"SizeNotMatchingTheCommand",
     [](FakeQemu& q, Memfd&) { q.send(ProxyCommand::PCI_CFGREAD, zeros(8)); },
     "PCI_CFGREAD with a 8-byte payload (expected 12)"},
    {"PayloadOnDeviceReset",
     [](FakeQemu& q, Memfd&) { q.send(ProxyCommand::DEVICE_RESET, zeros(8)); },
     "DEVICE_RESET with a 8-byte payload (expected 0)"},
    {"AbsurdSize",
     [](FakeQemu& q, Memfd&) {
         q.send_raw(testing::frame(static_cast<int32_t>(ProxyCommand::BAR_READ), 1ull << 40, {}));
     },
     "BAR_READ with an absurd payload size 1099511627776"},
    {"FdWithABarAccess",
     [](FakeQemu& q, Memfd& ram) {
         const int fds[] = {ram.fd()};
         q.send(ProxyCommand::BAR_READ, BarAccess{0, 0, 4, true}.encode(), fds);
     },
     "BAR_READ with 1 fds (expected none)"},
    {"SyncSysmemWithoutFds",
     [](FakeQemu& q, Memfd&) { q.send(ProxyCommand::SYNC_SYSMEM, one_slot(0, 4096, 0).encode()); },
     "SYNC_SYSMEM with 0 fds (expected 1 to 8)"},
    {"SetIrqfdWithOneFd",
     [](FakeQemu& q, Memfd& ram) {
         const int fds[] = {ram.fd()};
         q.send(ProxyCommand::SET_IRQFD, {}, fds);
     },
     "SET_IRQFD with 1 fds (expected 2)"},
    {"NineFds",
     [](FakeQemu& q, Memfd& ram) {
         const std::vector<int> fds(9, ram.fd());
         q.send(ProxyCommand::SYNC_SYSMEM, one_slot(0, 4096, 0).encode(), fds);
     },
     "SYNC_SYSMEM with 9 fds (expected 1 to 8)"},
    {"FarTooManyFds",
     [](FakeQemu& q, Memfd& ram) {
         const std::vector<int> fds(20, ram.fd());
         q.send(ProxyCommand::SYNC_SYSMEM, one_slot(0, 4096, 0).encode(), fds);
     },
     "more than 8 fds with a message"},
    {"TruncatedHeader",
     [](FakeQemu& q, Memfd&) {
         const auto bytes = testing::frame(ProxyCommand::DEVICE_RESET, {});
         q.send_raw(std::span(bytes).first(10));
         q.shutdown_write();
     },
     "truncated message: connection closed after 10 of 16 header bytes"},
    {"TruncatedPayload",
     [](FakeQemu& q, Memfd&) {
         const auto bytes =
             testing::frame(ProxyCommand::PCI_CFGREAD, ConfigAccess{0, 0, 4}.encode());
         q.send_raw(std::span(bytes).first(kHeaderSize + 4));
         q.shutdown_write();
     },
     "truncated message: connection closed after 4 of 12 payload bytes"},
    {"FdsWithThePayload",
     [](FakeQemu& q, Memfd& ram) {
         const auto bytes =
             testing::frame(ProxyCommand::PCI_CFGREAD, ConfigAccess{0, 0, 4}.encode());
         q.send_raw(std::span(bytes).first(kHeaderSize));
         const int fds[] = {ram.fd()};
         q.send_raw(std::span(bytes).subspan(kHeaderSize), fds);
     },
     "fds arrived with the payload"},
    {"RamRegionPastTheEndOfItsFile",
     [](FakeQemu& q, Memfd& ram) {
         const int fds[] = {ram.fd()};
         q.send(ProxyCommand::SYNC_SYSMEM, one_slot(0, kRamSize, 4096).encode(), fds);
     },
     "SYNC_SYSMEM slot 0 (gpa 0x0, size 0x200000, offset 4096): No such device or address"},
    {"EmptyRamRegion",
     [](FakeQemu& q, Memfd& ram) {
         const int fds[] = {ram.fd()};
         q.send(ProxyCommand::SYNC_SYSMEM, one_slot(0, 0, 0).encode(), fds);
     },
     "SYNC_SYSMEM slot 0 (gpa 0x0, size 0x0, offset 0): Invalid argument"},
    {"NegativeFileOffset",
     [](FakeQemu& q, Memfd& ram) {
         const int fds[] = {ram.fd()};
         q.send(ProxyCommand::SYNC_SYSMEM, one_slot(0, 4096, -4096).encode(), fds);
     },
     "offset -4096): Invalid argument"},
    {"RamRegionWrappingTheAddressSpace",
     [](FakeQemu& q, Memfd& ram) {
         const int fds[] = {ram.fd()};
         q.send(ProxyCommand::SYNC_SYSMEM, one_slot(~uint64_t{0} - 4095, 8192, 0).encode(), fds);
     },
     "Value too large"},
    {"OverlappingRamRegions",
     [](FakeQemu& q, Memfd& ram) {
         SyncSysmem m = one_slot(0, 0x10000, 0);
         m.gpas[1] = 0x8000;
         m.sizes[1] = 0x10000;
         const int fds[] = {ram.fd(), ram.fd()};
         q.send(ProxyCommand::SYNC_SYSMEM, m.encode(), fds);
     },
     "SYNC_SYSMEM slot 1 (gpa 0x8000, size 0x10000, offset 0): Invalid argument"},
    {"RamThatIsNotAFile",
     [](FakeQemu& q, Memfd&) {
         UniqueFd event(::eventfd(0, EFD_CLOEXEC));
         const int fds[] = {event.get()};
         q.send(ProxyCommand::SYNC_SYSMEM, one_slot(0, 4096, 0).encode(), fds);
     },
     "SYNC_SYSMEM slot 0 (gpa 0x0, size 0x1000, offset 0): Bad file descriptor"},
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const MalformedCase& c, std::ostream* os) {
    *os << c.name;
}

class MalformedMessageTest : public ProxyDeviceTest,
                             public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(MalformedMessageTest, EndsTheConnectionAndLeavesTheDeviceIntact) {
    const MalformedCase& bad = GetParam();
    uint32_t handle;
    {
        Connection c(*device_);
        FakeQemu& q = c.qemu();
        boot(q);
        handle = open_handle(q, kPingPage);
        ASSERT_EQ(ping(q, ram_, kPingPage, handle, 0, 0, 5), 0u);

        bad.send(q, ram_);
        const ConnectionEnd end = c.finish();
        EXPECT_EQ(end.kind, ConnectionEnd::Kind::protocol_error);
        EXPECT_NE(end.reason.find(bad.reason), std::string::npos) << end.reason;
        EXPECT_EQ(end.reason.find('\n'), std::string::npos);  // one line
        EXPECT_TRUE(closed_by_device(q));
    }
    // Nothing the bad message said took effect: same RAM, same placement, same handle.
    ASSERT_EQ(device_->guest_memory().regions().size(), 1u);
    EXPECT_EQ(device_->guest_memory().regions()[0].size, kRamSize);
    EXPECT_EQ(device_->device().stats().handles, 1u);
    Connection again(*device_);
    FakeQemu& q = again.qemu();
    EXPECT_EQ(q.config_read(0x00, 4), 0xF153'607Du);
    EXPECT_EQ(reg(q, Reg::GUEST_PAGE_SIZE), 4096u);
    ram_.store<uint64_t>(kPingPage + 16, 99);
    set_reg(q, Reg::PING, handle);  // the type-5 context: command 99 is unknown
    EXPECT_EQ(ram_.load<uint64_t>(kPingPage + 16), kFailed);
}

INSTANTIATE_TEST_SUITE_P(Cases, MalformedMessageTest, ::testing::ValuesIn(kMalformed),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace gf::vmm
