#include "vmm/proxy_device.h"

#include <array>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "hw/context_types.h"
#include "hw/pci_header.h"
#include "hw/pci_identity.h"
#include "hw/registers.h"

namespace gf::vmm {
namespace {

constexpr unsigned kBar0 = hw::kControlBar;
constexpr unsigned kBar1 = hw::kAreaBar;
// Interrupt pin B, as the emulator's device (docs/device.md#pci-identity).
constexpr uint8_t kInterruptPinB = 2;

bool overlaps(uint32_t address, int length, uint32_t field, uint32_t field_length) {
    return address < field + field_length && field < address + static_cast<uint32_t>(length);
}

// Unbacked BAR1 pages whose accesses the trace shows; past this, they are only counted.
constexpr size_t kUnbackedPagesShown = 64;
constexpr uint64_t kTracePage = 4096;

std::string config_field_name(uint32_t address) {
    if (address >= 0x10 && address < 0x28) {
        return "BAR" + std::to_string((address - 0x10) / 4);
    }
    switch (address) {
        case 0x00:
            return "VENDOR_ID";
        case 0x02:
            return "DEVICE_ID";
        case 0x04:
            return "COMMAND";
        case 0x06:
            return "STATUS";
        case 0x0C:
            return "CACHE_LINE_SIZE";
        case 0x0D:
            return "LATENCY_TIMER";
        case 0x2C:
            return "SUBSYSTEM";
        case 0x30:
            return "ROM";
        case 0x3C:
            return "INTERRUPT_LINE";
        case 0x3D:
            return "INTERRUPT_PIN";
        default:
            return "config " + hex(address);
    }
}

std::string register_name(uint64_t offset) {
    using hw::Register;
    switch (static_cast<Register>(offset)) {
        case Register::COMMAND:
            return "COMMAND";
        case Register::STATUS:
            return "STATUS";
        case Register::GUEST_PAGE_SIZE:
            return "GUEST_PAGE_SIZE";
        case Register::BLOCK_SIZE_LOW:
            return "BLOCK_SIZE_LOW";
        case Register::BLOCK_SIZE_HIGH:
            return "BLOCK_SIZE_HIGH";
        case Register::BLOCK_OFFSET_LOW:
            return "BLOCK_OFFSET_LOW";
        case Register::BLOCK_OFFSET_HIGH:
            return "BLOCK_OFFSET_HIGH";
        case Register::PING:
            return "PING";
        case Register::PING_INFO_ADDR_LOW:
            return "PING_INFO_ADDR_LOW";
        case Register::PING_INFO_ADDR_HIGH:
            return "PING_INFO_ADDR_HIGH";
        case Register::HANDLE:
            return "HANDLE";
        case Register::PHYS_START_LOW:
            return "PHYS_START_LOW";
        case Register::PHYS_START_HIGH:
            return "PHYS_START_HIGH";
        case Register::PING_WITH_DATA:
            return "PING_WITH_DATA";
    }
    return "BAR0 " + hex(offset);
}

std::string command_name(uint32_t command) {
    using hw::Command;
    switch (static_cast<Command>(command)) {
        case Command::ALLOCATE_BLOCK:
            return "ALLOCATE_BLOCK";
        case Command::DEALLOCATE_BLOCK:
            return "DEALLOCATE_BLOCK";
        case Command::GEN_HANDLE:
            return "GEN_HANDLE";
        case Command::DESTROY_HANDLE:
            return "DESTROY_HANDLE";
        case Command::TELL_PING_INFO_ADDR:
            return "TELL_PING_INFO_ADDR";
    }
    return "unknown command " + std::to_string(command);
}

// What a type-5 or type-6 ping asks for (docs/contexts.md), by its metadata.
std::string host_memory_request(uint64_t metadata, hw::ContextType context) {
    const bool host_memory = context == hw::ContextType::HostMemoryAllocator;
    const bool shared_slots = context == hw::ContextType::SharedSlotsHostMemoryAllocator;
    if (!host_memory && !shared_slots) {
        return "";
    }
    switch (metadata) {
        case 1:
            return "Allocate";
        case 2:
            return "Unallocate";
        case 3:
            return shared_slots ? "CheckIfSharedSlotsSupported" : "unknown request";
        default:
            return "unknown request";
    }
}

constexpr std::array<std::string_view, 6> kPingFieldNames = {
    "phys_addr", "size", "metadata", "wait_phys_addr", "wait_flags", "direction"};

std::string describe_ping(const std::array<uint64_t, 6>& f) {
    return "phys_addr " + hex(f[0]) + " size " + hex(f[1]) + " metadata " + hex(f[2]) +
           (f[3] != 0 || f[4] != 0 || f[5] != 0 ? " wait_phys_addr " + hex(f[3]) + " wait_flags " +
                                                      hex(f[4]) + " direction " + hex(f[5])
                                                : "");
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
    auto proxy = std::unique_ptr<ProxyDevice>(
        new ProxyDevice(std::move(config), std::move(memory), std::move(device), config_space));
    proxy->arm_faults();
    return proxy;
}

void ProxyDevice::arm_faults() {
    for (const FaultSpec& spec : config_.faults) {
        device_->inject(spec.fault, spec.schedule);
    }
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

void ProxyDevice::trace(const TraceEvent& event) const {
    if (config_.tracer) {
        config_.tracer->emit(event);
    }
}

std::optional<std::array<uint64_t, 6>> ProxyDevice::ping_fields(std::optional<uint64_t> gpa) const {
    if (!gpa) {
        return std::nullopt;
    }
    std::array<std::byte, 40> bytes{};
    if (!memory_->read(*gpa, bytes)) {
        return std::nullopt;
    }
    std::array<uint64_t, 6> f{};
    for (size_t i = 0; i < 4; ++i) {
        std::memcpy(&f[i], bytes.data() + 8 * i, 8);
    }
    uint32_t flags = 0, direction = 0;
    std::memcpy(&flags, bytes.data() + 32, 4);
    std::memcpy(&direction, bytes.data() + 36, 4);
    f[4] = flags;
    f[5] = direction;
    return f;
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
    if (tracing()) {
        // QEMU resends the same layout many times during boot: show it when it changes.
        std::string layout;
        nlohmann::ordered_json regions = nlohmann::ordered_json::array();
        for (const auto& region : memory_->regions()) {
            layout += " [" + hex(region.gpa) + ", " + hex(region.gpa + region.size) + ")";
            regions.push_back({region.gpa, region.size});
        }
        bool changed;
        {
            MutexLock lock(mutex_);
            changed = layout != last_layout_;
            last_layout_ = layout;
        }
        if (changed) {
            TraceEvent event("guest_ram");
            event.say("guest RAM:" + layout);
            trace(event);
        }
    }
    return {};
}

void ProxyDevice::config_write(const ConfigAccess& access) {
    uint64_t bar1_base;
    std::optional<TraceEvent> placement;
    {
        MutexLock lock(mutex_);
        ++stats_.config_writes;
        const uint32_t bar0_before = config_space_.bar_base(kBar0);
        const uint32_t bar1_before = config_space_.bar_base(kBar1);
        const bool enabled_before = config_space_.memory_enabled();
        config_space_.write(access.address, access.value, access.length);
        bar1_base = config_space_.bar_base(kBar1);
        const bool enabled = config_space_.memory_enabled();
        const bool moved = bar0_before != config_space_.bar_base(kBar0) || bar1_before != bar1_base;
        // A placement is where the BARs are while memory decoding is on; with decoding off
        // the registers also hold sizing masks, which are no placement.
        if (tracing() && (enabled != enabled_before || (enabled && moved))) {
            placement.emplace("bar_placement");
            placement->field("bar0", config_space_.bar_base(kBar0))
                .field("bar1", bar1_base)
                .flag("memory_decoding", enabled);
            placement->say(enabled ? "memory decoding on: BAR0 at " +
                                         hex(config_space_.bar_base(kBar0)) + ", BAR1 at " +
                                         hex(bar1_base)
                                   : std::string("memory decoding off"));
        }
    }
    if (tracing()) {
        const std::string name = config_field_name(access.address);
        const bool bar = access.address >= 0x10 && access.address < 0x28;
        const bool sizing = bar && access.length == 4 && access.value == 0xFFFF'FFFF;
        TraceEvent event("config_write");
        event.field("address", access.address)
            .field("field", name)
            .field("value", access.value)
            .field("length", static_cast<uint64_t>(access.length));
        event.say("config write " + name + " = " + hex(access.value) + " (" +
                  std::to_string(access.length) + " bytes)" + (sizing ? ": sizing" : ""));
        trace(event);
    }
    // The device falls back to this while the guest has not written PHYS_START. Only the
    // BAR1 register moves it; during sizing it briefly holds the size mask, as on hardware.
    if (overlaps(access.address, access.length, hw::config_bar(kBar1), 4)) {
        device_->set_bar1_phys_start_hint(bar1_base);
    }
    if (placement) {
        trace(*placement);
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
        } else if (hit->bar == kBar1) {
            ++stats_.bar1_accesses;
        }
    }
    if (!hit) {
        if (tracing()) {
            TraceEvent event("stray");
            event.field("address", access.address)
                .field("size", access.size)
                .flag("write", write)
                .flag("memory", access.memory);
            event.say(std::string("stray ") + (access.memory ? "" : "I/O ") +
                      (write ? "write" : "read") + " at " + hex(access.address) + " size " +
                      std::to_string(access.size) + ": outside the placed BARs, ignored");
            trace(event);
        }
        return 0;
    }
    if (hit->bar == kBar1) {
        return bar1_access(hit->offset, access, write);
    }
    return bar0_access(hit->offset, access, write);
}

uint64_t ProxyDevice::bar1_access(uint64_t offset, const BarAccess& access, bool write) {
    // Little-endian, as the bus carries it: the low `size` bytes of the value.
    std::array<std::byte, 8> bytes{};
    const std::span<std::byte> span(bytes.data(), access.size);
    Result<void> done;
    if (write) {
        std::memcpy(bytes.data(), &access.value, sizeof access.value);
        done = device_->bus_write_bar1(offset, span);
    } else {
        done = device_->bus_read_bar1(offset, span);
    }
    if (done) {
        uint64_t value = 0;
        std::memcpy(&value, bytes.data(), sizeof value);
        return write ? 0 : value;
    }
    bool show = false;
    {
        MutexLock lock(mutex_);
        ++stats_.unbacked_bar1_accesses;
        const uint64_t page = offset / kTracePage;
        show = tracing() && unbacked_pages_shown_.size() < kUnbackedPagesShown &&
               unbacked_pages_shown_.insert(page).second;
    }
    if (show) {
        TraceEvent event("bar1_unbacked");
        event.field("offset", offset).field("size", access.size).flag("write", write);
        event.say(std::string("BAR1 ") + (write ? "write" : "read") + " at offset " + hex(offset) +
                  " size " + std::to_string(access.size) + ": no block or host memory there, " +
                  (write ? "dropped" : "reads 0") + " (shown once per page, for the first " +
                  std::to_string(kUnbackedPagesShown) + " pages)");
        trace(event);
    }
    return 0;
}

uint64_t ProxyDevice::bar0_access(uint64_t offset, const BarAccess& access, bool write) {
    using hw::Register;
    const uint32_t value = static_cast<uint32_t>(access.value);
    if (!tracing()) {
        // Outside the lock: a PING runs its context synchronously and may read guest RAM.
        if (write) {
            device_->mmio_write(offset, value, access.size);
            return 0;
        }
        return device_->mmio_read(offset, access.size);
    }
    const std::string name = register_name(offset);
    TraceEvent event(write ? "bar0_write" : "bar0_read");
    event.field("register", name).field("offset", offset).field("size", access.size);
    if (!write) {
        const uint32_t read = device_->mmio_read(offset, access.size);
        event.field("value", read);
        event.say("BAR0 read  " + name + " -> " + hex(read));
        trace(event);
        return read;
    }
    event.field("value", value);
    event.say("BAR0 write " + name + " = " + hex(value));
    const auto reg64 = [&](Register low) {
        const uint64_t off = static_cast<uint64_t>(low);
        return static_cast<uint64_t>(device_->mmio_read(off, 4)) |
               static_cast<uint64_t>(device_->mmio_read(off + 4, 4)) << 32;
    };
    const auto reg32 = [&](Register r) { return device_->mmio_read(static_cast<uint64_t>(r), 4); };
    const bool command = static_cast<Register>(offset) == Register::COMMAND && access.size == 4;
    const bool ping = (static_cast<Register>(offset) == Register::PING ||
                       static_cast<Register>(offset) == Register::PING_WITH_DATA) &&
                      access.size == 4;
    if (command) {
        using hw::Command;
        event.field("command", command_name(value));
        std::string what = ": " + command_name(value);
        // What the command reads, before it runs.
        const uint64_t size_before = reg64(Register::BLOCK_SIZE_LOW);
        const uint64_t offset_before = reg64(Register::BLOCK_OFFSET_LOW);
        const uint32_t handle_before = reg32(Register::HANDLE);
        const uint64_t page_before = reg64(Register::PING_INFO_ADDR_LOW);
        device_->mmio_write(offset, value, access.size);
        const uint32_t status = reg32(Register::STATUS);
        event.field("status", status);
        switch (static_cast<Command>(value)) {
            case Command::ALLOCATE_BLOCK: {
                const uint64_t at = reg64(Register::BLOCK_OFFSET_LOW);
                const uint64_t granted = reg64(Register::BLOCK_SIZE_LOW);
                event.field("size", size_before)
                    .field("block_offset", at)
                    .field("granted", granted);
                what +=
                    " size " + hex(size_before) + " -> offset " + hex(at) + " size " + hex(granted);
                break;
            }
            case Command::DEALLOCATE_BLOCK:
                event.field("block_offset", offset_before);
                what += " offset " + hex(offset_before);
                break;
            case Command::GEN_HANDLE: {
                const uint32_t handle = reg32(Register::HANDLE);
                event.field("handle", handle);
                what += " -> handle " + std::to_string(handle);
                break;
            }
            case Command::DESTROY_HANDLE:
                event.field("handle", handle_before);
                what += " handle " + std::to_string(handle_before);
                break;
            case Command::TELL_PING_INFO_ADDR: {
                const uint64_t back = reg64(Register::PING_INFO_ADDR_LOW);
                event.field("handle", handle_before)
                    .field("ping_info_addr", page_before)
                    .field("read_back", back);
                what += " handle " + std::to_string(handle_before) + " page " + hex(page_before) +
                        " -> reads back " + hex(back) +
                        (back == page_before ? "" : " (NOT the address written)");
                break;
            }
        }
        what += ", STATUS " + errno_name(status);
        event.say(what);
    } else if (ping) {
        const auto view = device_->handle_view(value);
        const std::optional<uint64_t> page = view ? view->ping_info_gpa : std::nullopt;
        const auto before = ping_fields(page);
        device_->mmio_write(offset, value, access.size);
        const auto after = ping_fields(page);
        event.field("handle", value);
        if (!before) {
            event.say(": handle " + std::to_string(value) +
                      (view ? " has no ping page" : " is not live") + ", refused");
        } else {
            // Which context gets it: none yet makes this the create ping, metadata the type.
            if (view->context) {
                const uint64_t type = static_cast<uint64_t>(*view->context);
                event.field("context", type);
                const std::string request = host_memory_request((*before)[2], *view->context);
                if (!request.empty()) {
                    event.field("request", request);
                }
                event.say(" (" + std::string(hw::context_type_name(type).value_or("?")) +
                          (request.empty() ? "" : " " + request) + ")");
            } else {
                const auto name = hw::context_type_name((*before)[2]);
                event.flag("create", true);
                event.say(" (create ping: " + std::string(name.value_or("unknown type")) + ")");
            }
            nlohmann::ordered_json b, a;
            for (size_t i = 0; i < kPingFieldNames.size(); ++i) {
                b[std::string(kPingFieldNames[i])] = (*before)[i];
                if (after) {
                    a[std::string(kPingFieldNames[i])] = (*after)[i];
                }
            }
            event.field("ping_page", *page);
            event.say(": handle " + std::to_string(value) + ", ping page " +
                      describe_ping(*before) + " -> " +
                      (after ? describe_ping(*after) : std::string("unreadable")));
            event.object("before", std::move(b)).object("after", std::move(a));
        }
    } else {
        device_->mmio_write(offset, value, access.size);
    }
    trace(event);
    return 0;
}

void ProxyDevice::reset() {
    {
        MutexLock lock(mutex_);
        ++stats_.resets;
        config_space_.reset();
    }
    device_->reset();
    device_->set_bar1_phys_start_hint(0);
    arm_faults();  // a reset disarms the device's faults; the command line's stay
    {
        MutexLock lock(mutex_);
        unbacked_pages_shown_.clear();
    }
    TraceEvent event("reset");
    event.say("device reset");
    trace(event);
}

}  // namespace gf::vmm
