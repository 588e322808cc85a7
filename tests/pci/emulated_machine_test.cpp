// The emulated machine as a driver sees it: config space, BAR placement,
// memory decode, register forwarding to the device model, DMA pages.
#include "pci/emulated/machine.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "device/registers.h"
#include "hw/pci_header.h"
#include "pci/bar.h"
#include "pci/dma_page.h"
#include "pci/shared_memory_bar.h"

namespace gf::pci::emulated {
namespace {

using device::Reg;

std::unique_ptr<Machine> make_machine(const MachineConfig& config = {}) {
    auto machine = Machine::create(config);
    EXPECT_TRUE(machine) << (machine ? 0 : machine.error().value());
    return machine ? std::move(*machine) : nullptr;
}

TEST(EmulatedMachineTest, ConfigSpaceIdentifiesTheDevice) {
    auto machine = make_machine();
    Device& pci = machine->pci_device();
    EXPECT_EQ(pci.vendor_id().value(), 0x607D);
    EXPECT_EQ(pci.device_id().value(), 0xF153);
    EXPECT_EQ(pci.revision().value(), 1);
    EXPECT_EQ(pci.read_config8(0x0B).value(), 0xFF) << "class: other";
    EXPECT_EQ(pci.read_config8(0x3D).value(), 2) << "interrupt pin B";
    const MachineConfig& config = machine->config();
    EXPECT_EQ(pci.read_config32(0x10).value(), config.bar0_address);
    EXPECT_EQ(pci.read_config32(0x14).value(), static_cast<uint32_t>(config.bar1_address) | 0x4);
    EXPECT_EQ(pci.read_config32(0x18).value(), config.bar1_address >> 32);
    EXPECT_EQ(pci.read_config8(256).error(), Error(EINVAL));
}

TEST(EmulatedMachineTest, BarsSitWhereTheMachinePutThem) {
    MachineConfig config;
    config.bar1_address = 0x8'0000'0000;
    auto machine = make_machine(config);
    const BarResource bar0 = machine->pci_device().resource(0).value();
    const BarResource bar1 = machine->pci_device().resource(1).value();
    EXPECT_EQ(bar0.start, 0xFE00'0000u);
    EXPECT_EQ(bar0.length, 0x1000u);
    EXPECT_FALSE(bar0.is_64bit());
    EXPECT_EQ(bar1.start, 0x8'0000'0000u);
    EXPECT_EQ(bar1.length, 16ull << 30);
    EXPECT_TRUE(bar1.is_64bit());
    EXPECT_EQ(machine->pci_device().resource(2).value().length, 0u);
}

TEST(EmulatedMachineTest, RegistersNeedMemoryDecode) {
    auto machine = make_machine();
    Device& pci = machine->pci_device();
    auto bar = Bar<56>::create(pci, 0, "control");
    ASSERT_TRUE(bar);
    // Decode off: a master abort.
    EXPECT_EQ(bar->read32<Reg::GUEST_PAGE_SIZE>(), 0xFFFF'FFFFu);
    bar->write32<Reg::HANDLE>(5);
    EXPECT_EQ(machine->device().read32(Reg::HANDLE), 0u);

    ASSERT_TRUE(pci.enable());
    EXPECT_EQ(pci.read_config16(hw::kConfigCommand).value() & 0x6, 0x6);
    bar->write32<Reg::GUEST_PAGE_SIZE>(4096);
    EXPECT_EQ(machine->device().read32(Reg::GUEST_PAGE_SIZE), 4096u);
    bar->write32<Reg::COMMAND>(3);  // GEN_HANDLE
    EXPECT_NE(bar->read32<Reg::HANDLE>(), 0xFFFF'FFFFu);

    pci.disable();
    EXPECT_EQ(pci.read_config16(hw::kConfigCommand).value(), 0);
    EXPECT_EQ(bar->read32<Reg::GUEST_PAGE_SIZE>(), 0xFFFF'FFFFu);
}

TEST(EmulatedMachineTest, CommandRegisterIsTheOnlyWritableField) {
    auto machine = make_machine();
    Device& pci = machine->pci_device();
    ASSERT_TRUE(pci.write_config16(hw::kConfigCommand, 0x0002));
    EXPECT_EQ(pci.read_config16(hw::kConfigCommand).value(), 0x0002);
    ASSERT_TRUE(pci.write_config16(hw::kConfigVendorId, 0x1234));
    EXPECT_EQ(pci.vendor_id().value(), 0x607D);
}

TEST(EmulatedMachineTest, SecondSharedMemoryBarOverTheSameBarIsEbusy) {
    auto machine = make_machine();
    auto first = SharedMemoryBar::create(machine->pci_device(), 1, "area");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->phys_start(), machine->config().bar1_address);
    EXPECT_EQ(first->size(), machine->device().bar1_size());
    EXPECT_EQ(SharedMemoryBar::create(machine->pci_device(), 1, "area").error(), Error(EBUSY));
    EXPECT_EQ(SharedMemoryBar::create(machine->pci_device(), 2, "none").error(), Error(ENXIO));
}

TEST(EmulatedMachineTest, DmaPagesComeFromGuestRam) {
    auto machine = make_machine();
    const size_t free_before = machine->free_dma_pages();
    EXPECT_EQ(free_before, (64u << 20) / 4096);
    {
        auto a = DmaPage::allocate(machine->pci_device());
        auto b = DmaPage::allocate(machine->pci_device());
        ASSERT_TRUE(a && b);
        EXPECT_NE(a->phys_addr(), b->phys_addr());
        for (const DmaPage* page : {&*a, &*b}) {
            EXPECT_GE(page->phys_addr(), machine->config().ram_base);
            EXPECT_LT(page->phys_addr(), machine->config().ram_base + machine->config().ram_size);
            EXPECT_EQ(page->phys_addr() % 4096, 0u);
        }
        // The page is guest RAM: what the driver writes, the device reads.
        std::memset(a->bytes().data(), 0x5A, 16);
        std::array<std::byte, 16> seen{};
        ASSERT_TRUE(machine->guest_memory().read(a->phys_addr(), seen));
        EXPECT_EQ(seen[15], std::byte{0x5A});
        EXPECT_EQ(machine->free_dma_pages(), free_before - 2);
    }
    EXPECT_EQ(machine->free_dma_pages(), free_before);
}

TEST(EmulatedMachineTest, GuestRamRunsOut) {
    MachineConfig config;
    config.ram_size = 2 * 4096;
    auto machine = make_machine(config);
    auto a = DmaPage::allocate(machine->pci_device());
    auto b = DmaPage::allocate(machine->pci_device());
    ASSERT_TRUE(a && b);
    EXPECT_EQ(DmaPage::allocate(machine->pci_device()).error(), Error(ENOMEM));
}

TEST(EmulatedMachineTest, RefusesImpossibleLayouts) {
    auto refused = [](auto change) {
        MachineConfig config;
        change(config);
        auto machine = Machine::create(config);
        return !machine && machine.error() == Error(EINVAL);
    };
    EXPECT_TRUE(refused([](MachineConfig& c) { c.bar1_address = 0x1'0000'0000; }))
        << "16 GiB BAR1 not aligned to its size";
    EXPECT_TRUE(refused([](MachineConfig& c) { c.bar0_address = 0xFE00'0800; }));
    EXPECT_TRUE(refused([](MachineConfig& c) { c.bar0_address = 0x1'0000'0000; }))
        << "BAR0 is a 32-bit BAR";
    EXPECT_TRUE(refused([](MachineConfig& c) { c.ram_base = 0xFC00'0000; })) << "RAM over BAR0";
    EXPECT_TRUE(refused([](MachineConfig& c) {
        c.ram_base = 0x4'0000'0000;
        c.bar1_address = 0x8'0000'0000;
        c.ram_size = 0x4'0000'1000;
    })) << "RAM over BAR1";
    EXPECT_TRUE(refused([](MachineConfig& c) { c.ram_size = 4097; }));
    EXPECT_TRUE(refused([](MachineConfig& c) { c.ram_size = 0; }));
    EXPECT_TRUE(refused([](MachineConfig& c) { c.bar1_address = 0xFFFF'FFFC'0000'0000; }))
        << "BAR1 past the address space";
    EXPECT_TRUE(refused([](MachineConfig& c) {
        c.device.bar1_64bit = false;
        c.device.bar1_size = 256 << 20;
        c.bar1_address = 0x1'0000'0000;
    })) << "a 32-bit BAR1 above 4 GiB";
}

TEST(EmulatedMachineTest, Bar1IsPlacedAsFirmwareWould) {
    EXPECT_EQ(make_machine()->config().bar1_address, 0x4'0000'0000u) << "16 GiB at 16 GiB";
    MachineConfig config;
    config.device.bar1_size = 1 << 20;
    EXPECT_EQ(make_machine(config)->config().bar1_address, 0x1'0000'0000u) << "small: at 4 GiB";
    config.device.bar1_size = 32ull << 30;
    EXPECT_EQ(make_machine(config)->config().bar1_address, 0x8'0000'0000u);
    config.device.bar1_64bit = false;
    config.device.bar1_size = 256 << 20;
    EXPECT_EQ(make_machine(config)->config().bar1_address, 0x8000'0000u) << "32-bit: at 2 GiB";
    config.device.bar1_size = 2ull << 30;
    EXPECT_EQ(Machine::create(config).error(), Error(EINVAL)) << "must be placed by hand";
}

TEST(EmulatedMachineTest, ThirtyTwoBitBar1) {
    MachineConfig config;
    config.device.bar1_64bit = false;
    config.device.bar1_size = 256 << 20;
    config.bar1_address = 0xE000'0000;
    auto machine = make_machine(config);
    const BarResource bar1 = machine->pci_device().resource(1).value();
    EXPECT_FALSE(bar1.is_64bit());
    EXPECT_EQ(machine->pci_device().read_config32(0x14).value(), 0xE000'0000u);
}

}  // namespace
}  // namespace gf::pci::emulated
