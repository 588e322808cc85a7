#include "pci/emulated/machine.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "base/checked.h"
#include "hw/pci_identity.h"
#include "pci/emulated/slot_backend.h"

namespace gf::pci::emulated {

namespace {

constexpr uint64_t k4GiB = uint64_t{1} << 32;

struct Range {
    uint64_t start;
    uint64_t size;
};

bool overlap(Range a, Range b) {
    return a.start < b.start + b.size && b.start < a.start + a.size;
}

constexpr uint64_t k1GiB = uint64_t{1} << 30;

Result<uint64_t> place_bar1(const MachineConfig& config) {
    const uint64_t size = config.device.bar1_size;
    if (config.bar1_address != 0) {
        return config.bar1_address;
    }
    if (config.device.bar1_64bit) {
        return std::max(k4GiB, size);  // size is a power of two: both are aligned to it
    }
    if (size > k1GiB) {
        return fail(EINVAL);  // no room below 4 GiB by default; the caller must place it
    }
    return 2 * k1GiB;
}

Result<void> validate(const MachineConfig& config) {
    const uint64_t bar0_size = hw::kControlBarSize;
    const uint64_t bar1_size = config.device.bar1_size;
    const uint64_t page = config.page_size;
    if (page == 0 || !std::has_single_bit(page) || config.ram_size == 0 ||
        config.ram_base % page != 0 || config.ram_size % page != 0 ||
        !std::has_single_bit(bar1_size)) {
        return fail(EINVAL);
    }
    // Every range must fit the address space before overlaps can be compared.
    if (!range_within(config.ram_base, config.ram_size, UINT64_MAX) ||
        !range_within(config.bar1_address, bar1_size, UINT64_MAX)) {
        return fail(EINVAL);
    }
    if (config.bar0_address % bar0_size != 0 ||
        !range_within(config.bar0_address, bar0_size, k4GiB)) {
        return fail(EINVAL);
    }
    if (config.bar1_address % bar1_size != 0 ||
        (!config.device.bar1_64bit && !range_within(config.bar1_address, bar1_size, k4GiB))) {
        return fail(EINVAL);
    }
    const Range ram{config.ram_base, config.ram_size};
    const Range bar0{config.bar0_address, bar0_size};
    const Range bar1{config.bar1_address, bar1_size};
    if (overlap(ram, bar0) || overlap(ram, bar1) || overlap(bar0, bar1)) {
        return fail(EINVAL);
    }
    return {};
}

}  // namespace

Result<std::unique_ptr<Machine>> Machine::create(const MachineConfig& requested) {
    MachineConfig config = requested;
    if (!std::has_single_bit(config.device.bar1_size)) {
        return fail(EINVAL);
    }
    config.bar1_address = GF_TRY(place_bar1(config));
    GF_TRY(validate(config));
    auto ram = GF_TRY(device::RamGuestMemory::create(config.ram_base, config.ram_size));
    auto device = GF_TRY(device::AddressSpaceDevice::create(config.device, *ram));
    // What a VMM does when it places the BAR: the device's fallback until
    // the guest writes PHYS_START.
    device->set_bar1_phys_start_hint(config.bar1_address);
    return std::unique_ptr<Machine>(new Machine(config, std::move(ram), std::move(device)));
}

Machine::Machine(const MachineConfig& config, std::unique_ptr<device::RamGuestMemory> ram,
                 std::unique_ptr<device::AddressSpaceDevice> device)
    : config_(config),
      ram_(std::move(ram)),
      device_(std::move(device)),
      pages_(std::make_unique<PageAllocator>(*ram_, config.page_size)),
      pci_device_(std::make_unique<pci::Device>(std::make_unique<SlotBackend>(
          *device_, *pages_, config.bar0_address, config.bar1_address))) {}

Machine::~Machine() = default;

}  // namespace gf::pci::emulated
