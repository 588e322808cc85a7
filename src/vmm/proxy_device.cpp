#include "vmm/proxy_device.h"

#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "hw/pci_header.h"
#include "hw/pci_identity.h"

namespace gf::vmm {
namespace {

constexpr unsigned kBar0 = hw::kControlBar;
constexpr unsigned kBar1 = hw::kAreaBar;
// Interrupt pin B, as the emulator's device (docs/device.md#pci-identity).
constexpr uint8_t kInterruptPinB = 2;

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

bool overlaps(uint32_t address, int length, uint32_t field, uint32_t field_length) {
    return address < field + field_length && field < address + static_cast<uint32_t>(length);
}

}  // namespace

Result<hw::PciConfigSpace> proxy_config_space(uint64_t bar1_size) {
    hw::PciConfigSpace config_space({
        .vendor_id = hw::kVendorId,
        .device_id = hw::kDeviceId,
        .revision = hw::kRevision,
        .class_code = hw::kClassCode,
        .interrupt_pin = kInterruptPinB,
    });
    config_space.set_writable(hw::kConfigCommand,
                              hw::kCommandIo | hw::kCommandMemorySpace | hw::kCommandBusMaster |
                                  hw::kCommandParityErrorResponse | hw::kCommandSerr |
                                  hw::kCommandIntxDisable,
                              2);
    config_space.set_writable(hw::kConfigCacheLineSize, 0xff, 1);
    config_space.set_writable(hw::kConfigLatencyTimer, 0xff, 1);
    config_space.set_writable(hw::kConfigInterruptLine, 0xff, 1);
    GF_TRY(config_space.add_memory_bar(kBar0, hw::kControlBarSize));
    GF_TRY(config_space.add_memory_bar(kBar1, bar1_size));
    return config_space;
}

Result<std::unique_ptr<ProxyDevice>> ProxyDevice::create(ProxyDeviceConfig config) {
    if (!std::has_single_bit(config.bar1_size) ||
        config.bar1_size > ProxyDeviceConfig::kMaxBar1Size) {
        return fail(EINVAL);
    }
    auto memory = std::make_unique<MemfdGuestMemory>();
    device::DeviceConfig device_config;
    device_config.bar1_size = config.bar1_size;
    device_config.bar1_64bit = false;
    device_config.host_page_size = config.host_page_size;
    auto device = GF_TRY(device::AddressSpaceDevice::create(device_config, *memory));

    auto config_space = GF_TRY(proxy_config_space(config.bar1_size));
    return std::unique_ptr<ProxyDevice>(
        new ProxyDevice(std::move(config), std::move(memory), std::move(device), config_space));
}

ProxyDevice::ProxyDevice(ProxyDeviceConfig config, std::unique_ptr<MemfdGuestMemory> memory,
                         std::unique_ptr<device::AddressSpaceDevice> device,
                         hw::PciConfigSpace config_space)
    : config_(std::move(config)),
      memory_(std::move(memory)),
      device_(std::move(device)),
      config_space_(config_space) {}

ProxyDevice::~ProxyDevice() = default;

ProxyStats ProxyDevice::stats() const {
    MutexLock lock(mutex_);
    return stats_;
}

uint32_t ProxyDevice::config_read(uint32_t address, int length) const {
    MutexLock lock(mutex_);
    return config_space_.read(address, length);
}

void ProxyDevice::trace(std::string_view line) const {
    if (config_.trace) {
        config_.trace(line);
    }
}

ConnectionEnd ProxyDevice::serve(UniqueFd socket) {
    MessageChannel channel(std::move(socket));
    for (;;) {
        auto message = channel.receive();
        if (!message) {
            return message.error();
        }
        {
            MutexLock lock(mutex_);
            ++stats_.messages;
        }
        auto reply = handle(*message);
        if (!reply) {
            return reply.error();
        }
        if (*reply) {
            if (auto sent = channel.send_ret(**reply); !sent) {
                return sent.error();
            }
        }
    }
}

ConnectionResult<std::optional<uint64_t>> ProxyDevice::handle(Message& message) {
    switch (message.command()) {
        case ProxyCommand::SYNC_SYSMEM: {
            if (auto r = sync_sysmem(message); !r) {
                return tl::unexpected(r.error());
            }
            return std::nullopt;
        }
        case ProxyCommand::PCI_CFGREAD: {
            const auto access =
                ConfigAccess::decode(message.payload_as<kConfigAccessPayloadSize>());
            MutexLock lock(mutex_);
            ++stats_.config_reads;
            return config_space_.read(access.address, access.length);
        }
        case ProxyCommand::PCI_CFGWRITE:
            config_write(ConfigAccess::decode(message.payload_as<kConfigAccessPayloadSize>()));
            return 0;
        case ProxyCommand::BAR_READ:
            return bar_access(BarAccess::decode(message.payload_as<kBarAccessPayloadSize>()),
                              false);
        case ProxyCommand::BAR_WRITE:
            bar_access(BarAccess::decode(message.payload_as<kBarAccessPayloadSize>()), true);
            return 0;
        case ProxyCommand::SET_IRQFD: {
            MutexLock lock(mutex_);
            ++stats_.irqfd_updates;
            // check_header guaranteed exactly two; the old pair is closed here.
            irq_fd_ = std::move(message.fds[0]);
            irq_resample_fd_ = std::move(message.fds[1]);
            return std::nullopt;
        }
        case ProxyCommand::DEVICE_RESET:
            reset();
            return 0;
        case ProxyCommand::RET:
            break;  // refused by check_header
    }
    return tl::unexpected(
        ConnectionEnd::protocol("unexpected " + command_name(message.header.cmd)));
}

ConnectionResult<void> ProxyDevice::sync_sysmem(Message& message) {
    const auto layout = SyncSysmem::decode(message.payload_as<kSyncSysmemPayloadSize>());
    // Slot i goes with the i-th fd (check_header bounded the count by kMaxFds); the
    // remaining slots are unused, whatever they hold.
    std::vector<RamRegion> regions;
    for (size_t i = 0; i < message.fds.size(); ++i) {
        regions.push_back(RamRegion{layout.gpas[i], layout.sizes[i], layout.offsets[i],
                                    std::move(message.fds[i])});
    }
    size_t failed = 0;
    if (auto r = memory_->replace(std::move(regions), &failed); !r) {
        return tl::unexpected(ConnectionEnd::protocol(
            "SYNC_SYSMEM slot " + std::to_string(failed) + " (gpa " + hex(layout.gpas[failed]) +
            ", size " + hex(layout.sizes[failed]) + ", offset " +
            std::to_string(layout.offsets[failed]) + "): " + std::strerror(r.error().value())));
    }
    {
        MutexLock lock(mutex_);
        ++stats_.sysmem_syncs;
    }
    if (config_.trace) {
        std::string line = "guest RAM:";
        for (const auto& region : memory_->regions()) {
            line += " [" + hex(region.gpa) + ", " + hex(region.gpa + region.size) + ")";
        }
        trace(line);
    }
    return {};
}

void ProxyDevice::config_write(const ConfigAccess& access) {
    uint64_t bar1_base;
    bool bar_moved;
    std::string placement;
    {
        MutexLock lock(mutex_);
        ++stats_.config_writes;
        const uint32_t bar0_before = config_space_.bar_base(kBar0);
        const uint32_t bar1_before = config_space_.bar_base(kBar1);
        const bool enabled_before = config_space_.memory_enabled();
        config_space_.write(access.address, access.value, access.length);
        bar1_base = config_space_.bar_base(kBar1);
        bar_moved = bar0_before != config_space_.bar_base(kBar0) || bar1_before != bar1_base ||
                    enabled_before != config_space_.memory_enabled();
        if (bar_moved && config_.trace) {
            placement = "BAR0 at " + hex(config_space_.bar_base(kBar0)) + ", BAR1 at " +
                        hex(bar1_base) + ", memory decoding " +
                        (config_space_.memory_enabled() ? "on" : "off");
        }
    }
    // The device falls back to this while the guest has not written PHYS_START. Only the
    // BAR1 register moves it; during sizing it briefly holds the size mask, as on hardware.
    if (overlaps(access.address, access.length, hw::config_bar(kBar1), 4)) {
        device_->set_bar1_phys_start_hint(bar1_base);
    }
    if (!placement.empty()) {
        trace(placement);
    }
}

uint64_t ProxyDevice::bar_access(const BarAccess& access, bool write) {
    std::optional<hw::PciConfigSpace::BarHit> hit;
    {
        MutexLock lock(mutex_);
        ++(write ? stats_.bar_writes : stats_.bar_reads);
        const bool sized =
            access.size == 1 || access.size == 2 || access.size == 4 || access.size == 8;
        // We have no I/O BARs: port accesses, like any access outside a placed BAR, are
        // ignored and read 0.
        if (access.memory && sized) {
            hit = config_space_.decode_memory(access.address, access.size);
        }
        if (!hit) {
            ++stats_.stray_bar_accesses;
        }
    }
    if (!hit) {
        trace(std::string("stray BAR ") + (write ? "write" : "read") + " at " +
              hex(access.address) + " size " + std::to_string(access.size));
        return 0;
    }
    if (hit->bar != kBar0) {
        return 0;  // BAR1 is address space only: nothing is behind it for a BAR access
    }
    // Outside the lock: a PING runs its context synchronously and may read guest RAM.
    if (write) {
        device_->mmio_write(hit->offset, static_cast<uint32_t>(access.value), access.size);
        return 0;
    }
    return device_->mmio_read(hit->offset, access.size);
}

void ProxyDevice::reset() {
    {
        MutexLock lock(mutex_);
        ++stats_.resets;
        config_space_.reset();
    }
    device_->reset();
    device_->set_bar1_phys_start_hint(0);
    trace("device reset");
}

}  // namespace gf::vmm
