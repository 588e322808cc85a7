// BAR1 through x-pci-proxy-dev, the trace and the command line's faults, against a fake
// QEMU in the same process: guest stores of every width into a plain block, a type-5 block
// and a type-6 slot reach the memory the host sees (and back); unbacked offsets read 0;
// freed memory comes back zeroed; every BAR0 access is a decoded trace event.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "device/device_test_access.h"
#include "device/registers.h"
#include "vmm/fake_qemu_peer.h"
#include "vmm/proxy_device.h"

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

class Fixture {
  public:
    explicit Fixture(ProxyDeviceConfig config = {})
        : device_(ProxyDevice::create(std::move(config)).value()) {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
            throw std::runtime_error("socketpair");
        }
        q_ = std::make_unique<FakeQemu>(UniqueFd(fds[0]));
        server_ = std::thread([this, fd = fds[1]] { (void)device_->serve(UniqueFd(fd)); });
        q_->sync_sysmem({{0, kRamSize, 0, ram_.fd()}});
        q_->config_write(0x10, kBar0Base, 4);
        q_->config_write(0x14, kBar1Base, 4);
        q_->config_write(0x04, 0x0002, 2);
    }
    ~Fixture() {
        q_->close();
        server_.join();
    }
    FakeQemu& q() { return *q_; }
    ProxyDevice& proxy() { return *device_; }
    device::AddressSpaceDevice& device() { return device_->device(); }
    Memfd& ram() { return ram_; }

    uint32_t reg(Reg r) {
        return static_cast<uint32_t>(q_->bar_read(kBar0Base + static_cast<uint32_t>(r), 4));
    }
    void set_reg(Reg r, uint32_t v) { q_->bar_write(kBar0Base + static_cast<uint32_t>(r), v, 4); }
    uint32_t command(Command c) {
        set_reg(Reg::COMMAND, static_cast<uint32_t>(c));
        return reg(Reg::STATUS);
    }
    uint32_t open_handle(uint64_t page_gpa) {
        set_reg(Reg::GUEST_PAGE_SIZE, 4096);
        EXPECT_EQ(command(Command::GEN_HANDLE), 0u);
        const uint32_t handle = reg(Reg::HANDLE);
        set_reg(Reg::PING_INFO_ADDR_LOW, static_cast<uint32_t>(page_gpa));
        set_reg(Reg::PING_INFO_ADDR_HIGH, 0);
        set_reg(Reg::HANDLE, handle);
        EXPECT_EQ(command(Command::TELL_PING_INFO_ADDR), 0u);
        return handle;
    }
    uint64_t ping(uint64_t page, uint32_t handle, uint64_t phys, uint64_t size, uint64_t metadata) {
        ram_.store<uint64_t>(page + 0, phys);
        ram_.store<uint64_t>(page + 8, size);
        ram_.store<uint64_t>(page + 16, metadata);
        set_reg(Reg::PING, handle);
        return ram_.load<uint64_t>(page + 16);
    }
    // ALLOCATE_BLOCK: the offset, or nullopt with STATUS in *status.
    std::optional<uint64_t> allocate(uint64_t size, uint32_t* status = nullptr) {
        set_reg(Reg::BLOCK_SIZE_LOW, static_cast<uint32_t>(size));
        set_reg(Reg::BLOCK_SIZE_HIGH, static_cast<uint32_t>(size >> 32));
        const uint32_t s = command(Command::ALLOCATE_BLOCK);
        if (status) {
            *status = s;
        }
        if (s != 0) {
            return std::nullopt;
        }
        return reg(Reg::BLOCK_OFFSET_LOW) | uint64_t{reg(Reg::BLOCK_OFFSET_HIGH)} << 32;
    }
    uint32_t deallocate(uint64_t offset) {
        set_reg(Reg::BLOCK_OFFSET_LOW, static_cast<uint32_t>(offset));
        set_reg(Reg::BLOCK_OFFSET_HIGH, static_cast<uint32_t>(offset >> 32));
        return command(Command::DEALLOCATE_BLOCK);
    }
    uint64_t load(uint64_t offset, uint32_t size) { return q_->bar_read(kBar1Base + offset, size); }
    void store(uint64_t offset, uint64_t value, uint32_t size) {
        q_->bar_write(kBar1Base + offset, value, size);
    }
    // What the host sees at a BAR1 offset.
    std::vector<std::byte> host(uint64_t offset, size_t size) {
        std::vector<std::byte> out(size);
        EXPECT_TRUE(device().read_bar1(offset, out));
        return out;
    }

  private:
    std::unique_ptr<ProxyDevice> device_;
    Memfd ram_{kRamSize};
    std::unique_ptr<FakeQemu> q_;
    std::thread server_;
};

uint64_t mask(uint32_t size) {
    return size == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1;
}

// Tagged stores of every width at aligned and unaligned offsets, the block's last bytes
// included, read back through the bus and seen by the host in memory order.
void check_widths(Fixture& f, uint64_t base, uint64_t size) {
    uint64_t tag = 0x1122'3344'5566'7788;
    for (uint32_t width : {1u, 2u, 4u, 8u}) {
        for (uint64_t at : {uint64_t{0}, uint64_t{1}, uint64_t{3}, uint64_t{4093}, size - width}) {
            SCOPED_TRACE("width " + std::to_string(width) + " at " + std::to_string(at));
            tag = tag * 6364136223846793005ull + 1442695040888963407ull;
            const uint64_t value = tag & mask(width);
            f.store(base + at, value, width);
            EXPECT_EQ(f.load(base + at, width), value);
            const auto bytes = f.host(base + at, width);
            uint64_t seen = 0;
            std::memcpy(&seen, bytes.data(), width);
            EXPECT_EQ(seen, value);
        }
    }
}

TEST(ProxyBar1, APlainBlockIsMemoryTheHostShares) {
    Fixture f;
    f.open_handle(kPingPage);
    const uint64_t block = f.allocate(0x10000).value();
    check_widths(f, block, 0x10000);
    // The host's store is the guest's load.
    const std::byte word[] = {std::byte{0xEF}, std::byte{0xBE}, std::byte{0xAD}, std::byte{0xDE}};
    ASSERT_TRUE(f.device().write_bar1(block + 0x100, word));
    EXPECT_EQ(f.load(block + 0x100, 4), 0xDEAD'BEEFu);
    EXPECT_EQ(f.proxy().stats().unbacked_bar1_accesses, 0u);
}

TEST(ProxyBar1, AType5BlockIsTheMemoryItsContextHandsOut) {
    Fixture f;
    const uint32_t handle = f.open_handle(kPingPage);
    ASSERT_EQ(f.ping(kPingPage, handle, 0, 0, 5), 0u);
    const uint64_t block = f.allocate(0x4000).value();
    ASSERT_EQ(f.ping(kPingPage, handle, kBar1Base + block, 0x4000, 1), 0u);  // Allocate
    check_widths(f, block, 0x4000);
    f.store(block + 8, 0x0123'4567'89AB'CDEF, 8);
    // get_host_ptr's view, the one a host renderer writes through.
    auto host = gf::device::testing::host_memory(f.device(), kBar1Base + block + 8, 8).value();
    uint64_t seen = 0;
    std::memcpy(&seen, host.data(), 8);
    EXPECT_EQ(seen, 0x0123'4567'89AB'CDEFu);
    std::memcpy(host.data(), "\x01\x02\x03\x04", 4);
    EXPECT_EQ(f.load(block + 8, 4), 0x0403'0201u);
}

TEST(ProxyBar1, AType6SlotIsHostMemoryTheGuestMaps) {
    Fixture f;
    const uint32_t handle = f.open_handle(kPingPage);
    ASSERT_EQ(f.ping(kPingPage, handle, 0, 0, 6), 0u);
    f.ram().store<uint64_t>(kPingPage + 0, 0);
    f.ram().store<uint64_t>(kPingPage + 8, 0x2000);
    f.ram().store<uint64_t>(kPingPage + 16, 1);  // Allocate
    f.set_reg(Reg::PING, handle);
    ASSERT_EQ(f.ram().load<uint64_t>(kPingPage + 16), 0u);
    const uint64_t slot = f.ram().load<uint64_t>(kPingPage + 0);  // an offset in BAR1
    const uint64_t size = f.ram().load<uint64_t>(kPingPage + 8);
    ASSERT_GE(size, 0x2000u);
    check_widths(f, slot, 0x2000);
}

TEST(ProxyBar1, UnbackedOffsetsReadZeroAndDropWrites) {
    Fixture f;
    f.open_handle(kPingPage);
    const uint64_t block = f.allocate(0x1000).value();
    const uint64_t granted = f.reg(Reg::BLOCK_SIZE_LOW);  // the size rule's whole pages
    ASSERT_GE(block, 0x10000u);  // blocks are placed from the top: below is free
    const uint64_t outside = block - 0x10000;
    f.store(outside, 0xAB, 1);
    EXPECT_EQ(f.load(outside, 1), 0u);
    EXPECT_EQ(f.host(outside, 1)[0], std::byte{0});
    // Straddling the block's start is not inside it: the whole access is unbacked.
    f.store(block - 2, 0xFFFF'FFFF, 4);
    EXPECT_EQ(f.load(block - 2, 4), 0u);
    EXPECT_EQ(f.load(block, 2), 0u);  // nothing of that store landed
    EXPECT_EQ(f.load(block + granted - 2, 2), 0u);
    EXPECT_EQ(f.proxy().stats().unbacked_bar1_accesses, 4u);
    EXPECT_EQ(f.proxy().stats().stray_bar_accesses, 0u);
}

TEST(ProxyBar1, FreedMemoryComesBackZeroed) {
    Fixture f;
    f.open_handle(kPingPage);
    const uint64_t block = f.allocate(0x3000).value();
    for (uint64_t at = 0; at < 0x3000; at += 0x7F8) {
        f.store(block + at, ~uint64_t{0}, 8);
    }
    ASSERT_EQ(f.deallocate(block), 0u);
    EXPECT_EQ(f.load(block, 8), 0u);  // no block: unbacked
    // The allocator places the next block of that size in the same place.
    ASSERT_EQ(f.allocate(0x3000).value(), block);
    for (uint64_t at = 0; at < 0x3000; at += 0x7F8) {
        EXPECT_EQ(f.load(block + at, 8), 0u) << at;
    }
}

TEST(ProxyBar1, AResetZeroesEverything) {
    Fixture f;
    f.open_handle(kPingPage);
    const uint64_t block = f.allocate(0x1000).value();
    f.store(block, 0x55, 1);
    f.q().device_reset();
    f.q().config_write(0x10, kBar0Base, 4);
    f.q().config_write(0x14, kBar1Base, 4);
    f.q().config_write(0x04, 0x0002, 2);
    f.open_handle(kPingPage);
    ASSERT_EQ(f.allocate(0x1000).value(), block);
    EXPECT_EQ(f.load(block, 1), 0u);
}

// Trace: lines and JSON from one run.
class TraceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("gf-trace-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
        json_path_ = (dir_ / "trace.jsonl").string();
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    ProxyDeviceConfig config() {
        ProxyDeviceConfig c;
        c.tracer = std::make_shared<Tracer>(
            [this](std::string_view line) {
                std::lock_guard lock(mutex_);
                lines_.emplace_back(line);
            },
            Tracer::open_json(json_path_).value());
        return c;
    }
    std::vector<std::string> lines_with(std::string_view needle) {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& line : lines_) {
            if (line.find(needle) != std::string::npos) {
                out.push_back(line);
            }
        }
        return out;
    }
    std::vector<nlohmann::json> json_events(std::string_view kind) {
        std::ifstream in(json_path_);
        std::vector<nlohmann::json> out;
        std::string line;
        while (std::getline(in, line)) {
            auto j = nlohmann::json::parse(line);  // every line is one JSON object
            EXPECT_TRUE(j.contains("t_us"));
            EXPECT_TRUE(j.contains("text"));
            if (j["event"] == kind) {
                out.push_back(j);
            }
        }
        return out;
    }

    std::filesystem::path dir_;
    std::string json_path_;
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

TEST_F(TraceTest, EveryBar0AccessIsDecoded) {
    uint64_t block = 0;
    {
        Fixture f(config());
        const uint32_t handle = f.open_handle(kPingPage);
        ASSERT_EQ(f.ping(kPingPage, handle, 0, 0, 5), 0u);
        block = f.allocate(0x1001).value();
        EXPECT_EQ(f.ping(kPingPage, handle, 0x1234, 0x1000, 1), kFailed);  // outside any block
        ASSERT_EQ(f.deallocate(block), 0u);
        f.set_reg(Reg::HANDLE, handle);
        ASSERT_EQ(f.command(Command::DESTROY_HANDLE), 0u);
    }
    const auto has = [&](const std::string& needle) {
        EXPECT_EQ(lines_with(needle).size(), 1u) << needle;
    };
    has("BAR0 write COMMAND = 0x3: GEN_HANDLE -> handle 1, STATUS 0");
    has("BAR0 write COMMAND = 0x5: TELL_PING_INFO_ADDR handle 1 page 0x10000 -> reads back "
        "0x10000, STATUS 0");
    has("BAR0 write PING = 0x1 (create ping: host_memory_allocator): handle 1, ping page "
        "phys_addr 0x0 size 0x0 metadata 0x5 -> phys_addr 0x0 size 0x0 metadata 0x0");
    has("BAR0 write PING = 0x1 (host_memory_allocator Allocate): handle 1, ping page phys_addr "
        "0x1234");
    has("BAR0 write COMMAND = 0x1: ALLOCATE_BLOCK size 0x1001 -> offset " + hex(block) +
        " size 0x2000, STATUS 0");
    has("metadata 0x1 -> phys_addr 0x1234 size 0x1000 metadata 0xffffffffffffffff");
    has("BAR0 write COMMAND = 0x2: DEALLOCATE_BLOCK offset " + hex(block) + ", STATUS 0");
    has("BAR0 write COMMAND = 0x4: DESTROY_HANDLE handle 1, STATUS 0");
    EXPECT_FALSE(lines_with("BAR0 read  STATUS -> 0x0").empty());
    // Timestamps first, as the kernel's log has them.
    for (const auto& line : lines_with("BAR0")) {
        ASSERT_EQ(line.front(), '[') << line;
        ASSERT_EQ(line.find("] "), 13u) << line;
    }

    const auto allocations = json_events("bar0_write");
    bool found = false;
    for (const auto& e : allocations) {
        if (e.value("command", "") == "ALLOCATE_BLOCK") {
            EXPECT_EQ(e["size"], 0x1001);
            EXPECT_EQ(e["block_offset"], block);
            EXPECT_EQ(e["granted"], 0x2000);
            EXPECT_EQ(e["status"], 0);
            found = true;
        }
        if (e["register"] == "PING" && e["before"]["metadata"] == 5) {
            EXPECT_EQ(e["after"]["metadata"], 0);
            EXPECT_EQ(e["ping_page"], kPingPage);
        }
    }
    EXPECT_TRUE(found);
    EXPECT_FALSE(json_events("bar0_read").empty());
}

TEST_F(TraceTest, LayoutOnceSizingIsNoPlacementUnbackedOncePerPage) {
    {
        Fixture f(config());
        // QEMU resends the layout during boot; the trace shows it once until it changes.
        f.q().sync_sysmem({{0, kRamSize, 0, f.ram().fd()}});
        f.q().sync_sysmem({{0, kRamSize, 0, f.ram().fd()}});
        f.q().sync_sysmem({{0, kRamSize / 2, 0, f.ram().fd()}});
        f.q().config_write(0x04, 0, 2);  // decoding off, then size BAR1
        f.q().config_write(0x14, 0xFFFF'FFFF, 4);
        f.q().config_write(0x14, kBar1Base, 4);
        f.q().config_write(0x04, 0x0002, 2);
        for (int i = 0; i < 3; ++i) {
            f.load(0x5000, 4);
            f.store(0x5004, 1, 4);
        }
        f.load(0x9000, 4);
        f.q().config_read(0, 4);  // a round trip: the server has handled everything
    }
    EXPECT_EQ(lines_with("guest RAM:").size(), 2u);
    EXPECT_EQ(lines_with("config write BAR1 = 0xffffffff (4 bytes): sizing").size(), 1u);
    // The first placement (from the fixture's boot) and the one after sizing, never the mask.
    EXPECT_EQ(lines_with("memory decoding on: BAR0 at 0xfebf0000, BAR1 at 0xe0000000").size(), 2u);
    EXPECT_TRUE(lines_with("BAR1 at 0xf0000000").empty());
    EXPECT_EQ(lines_with("memory decoding off").size(), 1u);
    EXPECT_EQ(lines_with("BAR1 read at offset 0x5000 size 4: no block or host memory there, "
                         "reads 0")
                  .size(),
              1u);
    EXPECT_EQ(lines_with("no block or host memory there").size(), 2u);  // pages 5 and 9
    EXPECT_EQ(json_events("config_write").size(), 7u);
    EXPECT_EQ(json_events("bar1_unbacked").size(), 2u);
}

TEST_F(TraceTest, AnInjectedReadBackShowsInTheTrace) {
    ProxyDeviceConfig c = config();
    c.faults.push_back(parse_fault_spec("ping-info-readback").value());
    {
        Fixture f(std::move(c));
        f.set_reg(Reg::GUEST_PAGE_SIZE, 4096);
        ASSERT_EQ(f.command(Command::GEN_HANDLE), 0u);
        f.set_reg(Reg::PING_INFO_ADDR_LOW, kPingPage);
        f.set_reg(Reg::PING_INFO_ADDR_HIGH, 0);
        f.set_reg(Reg::HANDLE, 1);
        f.command(Command::TELL_PING_INFO_ADDR);
    }
    EXPECT_EQ(lines_with("TELL_PING_INFO_ADDR handle 1 page 0x10000 -> reads back 0x11000 (NOT "
                         "the address written)")
                  .size(),
              1u);
}

TEST(ProxyFaults, CommandLineFaultsStayArmedAcrossResets) {
    ProxyDeviceConfig c;
    c.faults.push_back(parse_fault_spec("gen-handle,after=1").value());
    c.faults.push_back(parse_fault_spec("allocate-status=EINVAL").value());
    c.faults.push_back(parse_fault_spec("deallocate-status=ENOMEM,times=1").value());
    Fixture f(std::move(c));
    for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(round);
        f.set_reg(Reg::GUEST_PAGE_SIZE, 4096);
        EXPECT_EQ(f.command(Command::GEN_HANDLE), 0u);  // the first succeeds
        EXPECT_NE(f.command(Command::GEN_HANDLE), 0u);
        EXPECT_EQ(f.reg(Reg::HANDLE), 0xFFFF'FFFFu);
        uint32_t status = 0;
        EXPECT_FALSE(f.allocate(0x1000, &status));
        EXPECT_EQ(status, static_cast<uint32_t>(EINVAL));
        EXPECT_EQ(f.reg(Reg::BLOCK_OFFSET_LOW), 0xFFFF'FFFFu);
        EXPECT_EQ(f.deallocate(0), static_cast<uint32_t>(ENOMEM));
        EXPECT_EQ(f.deallocate(0), static_cast<uint32_t>(EINVAL));  // fired once: no such block
        f.q().device_reset();
        f.q().config_write(0x10, kBar0Base, 4);
        f.q().config_write(0x04, 0x0002, 2);
    }
}

TEST(ProxyFaults, ARefusedContextTypeFailsItsCreatePingOnly) {
    ProxyDeviceConfig c;
    c.faults.push_back(
        parse_fault_spec("refuse-context=shared_slots_host_memory_allocator").value());
    Fixture f(std::move(c));
    const uint32_t a = f.open_handle(kPingPage);
    EXPECT_EQ(f.ping(kPingPage, a, 0, 0, 6), kFailed);
    const uint32_t b = f.open_handle(kPingPage + 0x1000);
    EXPECT_EQ(f.ping(kPingPage + 0x1000, b, 0, 0, 5), 0u);
    EXPECT_EQ(f.device().stats().contexts_by_type[6], 0u);
    EXPECT_EQ(f.device().stats().contexts_by_type[5], 1u);
}

}  // namespace
}  // namespace gf::vmm
