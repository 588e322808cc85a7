#include "device/address_space_device.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <utility>

#include "base/checked.h"
#include "base/interval_map.h"
#include "device/ping_info.h"

namespace gf::device {
namespace {

constexpr uint64_t kMax32BitBar = 2ull << 30;
constexpr uint32_t kMaxGuestPageSize = 64 * 1024;
// What kStatusAboveIntMax reports: ENOMEM with the top bit set, negative as an int.
constexpr uint32_t kStatusAboveIntMax = 0x8000'0000u | ENOMEM;

uint32_t low32(uint64_t v) {
    return static_cast<uint32_t>(v);
}
uint32_t high32(uint64_t v) {
    return static_cast<uint32_t>(v >> 32);
}
void set_low32(uint64_t& reg, uint32_t v) {
    reg = (reg & 0xFFFFFFFF00000000ull) | v;
}
void set_high32(uint64_t& reg, uint32_t v) {
    reg = (reg & 0xFFFFFFFFull) | (static_cast<uint64_t>(v) << 32);
}
uint32_t status_of(Error error) {
    return static_cast<uint32_t>(error.value());
}

}  // namespace

Result<std::unique_ptr<AddressSpaceDevice>> AddressSpaceDevice::create(const DeviceConfig& config,
                                                                       GuestMemory& guest_memory) {
    const uint64_t system_page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    const uint64_t page = config.host_page_size;
    // Backed ranges are released page by page, so they must be whole host pages.
    if (!std::has_single_bit(page) || page < system_page || page > kMaxGuestPageSize) {
        return fail(EINVAL);
    }
    // PCI BAR sizes are powers of two; a 32-bit memory BAR is at most 2 GiB and below 4 GiB.
    if (!std::has_single_bit(config.bar1_size) || config.bar1_size < page) {
        return fail(EINVAL);
    }
    const auto bar1_end = checked_add(config.bar1_default_phys_start, config.bar1_size);
    if (!bar1_end) {
        return fail(EINVAL);
    }
    if (!config.bar1_64bit && (config.bar1_size > kMax32BitBar || *bar1_end > (1ull << 32))) {
        return fail(EINVAL);
    }
    Bar1Memory bar1 = GF_TRY(Bar1Memory::create(config.bar1_size));
    return std::unique_ptr<AddressSpaceDevice>(
        new AddressSpaceDevice(config, guest_memory, std::move(bar1)));
}

AddressSpaceDevice::AddressSpaceDevice(const DeviceConfig& config, GuestMemory& guest_memory,
                                       Bar1Memory bar1)
    : config_(config),
      guest_memory_(guest_memory),
      bar1_(std::move(bar1)),
      phys_start_hint_(config.bar1_default_phys_start),
      area_(config.bar1_size) {
    MutexLock lock(mutex_);
    regs_.guest_page_size = config_.host_page_size;
}

AddressSpaceDevice::~AddressSpaceDevice() {
    MutexLock lock(mutex_);
    // Contexts release into the allocator, pool and mapping table: end them while those live.
    handles_.clear();
}

uint32_t AddressSpaceDevice::mmio_read(uint64_t offset, unsigned access_size) {
    if (access_size != 4) {
        return 0;
    }
    MutexLock lock(mutex_);
    return read_register_locked(offset);
}

void AddressSpaceDevice::mmio_write(uint64_t offset, uint32_t value, unsigned access_size) {
    if (access_size != 4) {
        return;
    }
    MutexLock lock(mutex_);
    write_register_locked(offset, value);
}

uint32_t AddressSpaceDevice::read_register_locked(uint64_t offset) const {
    switch (offset) {
        case static_cast<uint64_t>(Reg::STATUS):
            return regs_.status;
        case static_cast<uint64_t>(Reg::GUEST_PAGE_SIZE):
            return regs_.guest_page_size;
        case static_cast<uint64_t>(Reg::BLOCK_SIZE_LOW):
            return low32(regs_.block_size);
        case static_cast<uint64_t>(Reg::BLOCK_SIZE_HIGH):
            return high32(regs_.block_size);
        case static_cast<uint64_t>(Reg::BLOCK_OFFSET_LOW):
            return low32(regs_.block_offset);
        case static_cast<uint64_t>(Reg::BLOCK_OFFSET_HIGH):
            return high32(regs_.block_offset);
        case static_cast<uint64_t>(Reg::PING_INFO_ADDR_LOW):
            return low32(regs_.ping_info_addr);
        case static_cast<uint64_t>(Reg::PING_INFO_ADDR_HIGH):
            return high32(regs_.ping_info_addr);
        case static_cast<uint64_t>(Reg::HANDLE):
            return regs_.handle;
        case static_cast<uint64_t>(Reg::PHYS_START_LOW):
            return low32(regs_.phys_start);
        case static_cast<uint64_t>(Reg::PHYS_START_HIGH):
            return high32(regs_.phys_start);
        default:
            // COMMAND, PING and PING_WITH_DATA are write-only; unknown offsets read 0.
            return 0;
    }
}

void AddressSpaceDevice::write_register_locked(uint64_t offset, uint32_t value) {
    switch (offset) {
        case static_cast<uint64_t>(Reg::COMMAND):
            regs_.status = run_command_locked(value);
            break;
        case static_cast<uint64_t>(Reg::GUEST_PAGE_SIZE):
            // Blocks must stay whole host pages: keep max(written, host page); ignore nonsense.
            if (std::has_single_bit(value) && value <= kMaxGuestPageSize) {
                regs_.guest_page_size = std::max(value, config_.host_page_size);
            }
            break;
        case static_cast<uint64_t>(Reg::BLOCK_SIZE_LOW):
            set_low32(regs_.block_size, value);
            break;
        case static_cast<uint64_t>(Reg::BLOCK_SIZE_HIGH):
            set_high32(regs_.block_size, value);
            break;
        case static_cast<uint64_t>(Reg::BLOCK_OFFSET_LOW):
            set_low32(regs_.block_offset, value);
            break;
        case static_cast<uint64_t>(Reg::BLOCK_OFFSET_HIGH):
            set_high32(regs_.block_offset, value);
            break;
        case static_cast<uint64_t>(Reg::PING):
        case static_cast<uint64_t>(Reg::PING_WITH_DATA):
            // PING_WITH_DATA is a plain PING of the 40-byte header; the payload is ignored.
            // STATUS stays untouched: drivers ping without the register lock, so writing it
            // here could clobber another thread's command result before it is read.
            if (ping_locked(value) != 0) {
                ++refused_pings_;
            }
            break;
        case static_cast<uint64_t>(Reg::PING_INFO_ADDR_LOW):
            set_low32(regs_.ping_info_addr, value);
            break;
        case static_cast<uint64_t>(Reg::PING_INFO_ADDR_HIGH):
            set_high32(regs_.ping_info_addr, value);
            break;
        case static_cast<uint64_t>(Reg::HANDLE):
            regs_.handle = value;
            break;
        case static_cast<uint64_t>(Reg::PHYS_START_LOW):
            set_low32(regs_.phys_start, value);
            break;
        case static_cast<uint64_t>(Reg::PHYS_START_HIGH):
            set_high32(regs_.phys_start, value);
            break;
        default:
            break;  // STATUS is read-only; unknown offsets are ignored
    }
}

uint32_t AddressSpaceDevice::run_command_locked(uint32_t command) {
    switch (static_cast<Command>(command)) {
        case Command::ALLOCATE_BLOCK:
            return allocate_block_locked();
        case Command::DEALLOCATE_BLOCK:
            return deallocate_block_locked();
        case Command::GEN_HANDLE:
            return gen_handle_locked();
        case Command::DESTROY_HANDLE:
            return destroy_handle_locked();
        case Command::TELL_PING_INFO_ADDR:
            return tell_ping_info_addr_locked();
    }
    return ENOSYS;
}

uint32_t AddressSpaceDevice::allocate_block_locked() {
    if (fault_fires_locked(DeviceFault::kStatusAboveIntMax)) {
        return kStatusAboveIntMax;
    }
    if (regs_.block_size == 0) {
        return EINVAL;  // registers untouched, as in the emulator
    }
    if (fault_fires_locked(DeviceFault::kBlockAllocation)) {
        regs_.block_offset = kAllOnes;
        return ENOMEM;
    }
    // The size is the guest's: a value so large the size rule would wrap is simply too big.
    auto aligned = guest_block_size(regs_.block_size, regs_.guest_page_size);
    if (!aligned) {
        regs_.block_offset = kAllOnes;
        return ENOMEM;
    }
    regs_.block_size = *aligned;
    auto offset = area_.allocate(*aligned);
    if (!offset) {
        regs_.block_offset = kAllOnes;
        return ENOMEM;
    }
    guest_blocks_.emplace(*offset, *aligned);
    guest_block_bytes_ += *aligned;
    regs_.block_offset = *offset;
    return 0;
}

uint32_t AddressSpaceDevice::deallocate_block_locked() {
    if (fault_fires_locked(DeviceFault::kStatusAboveIntMax)) {
        return kStatusAboveIntMax;
    }
    const uint64_t offset = regs_.block_offset;
    // Only guest blocks: a host region's offset (or a stale one) must not free host memory.
    auto block = guest_blocks_.find(offset);
    if (block == guest_blocks_.end()) {
        return EINVAL;
    }
    const uint64_t size = block->second;
    // The emulator's deallocation callbacks: type-5 mappings inside the block go with it.
    for (const auto& mapping : mappings_.starting_within(offset, size)) {
        if (HandleEntry* entry = handles_.find(mapping.owner); entry && entry->context) {
            entry->context->on_block_deallocated_locked(mapping.offset);
        }
        (void)remove_memory_mapping_locked(mapping.offset, mapping.size);
    }
    (void)area_.free(offset);  // cannot fail: guest_blocks_ mirrors the allocator
    guest_blocks_.erase(block);
    guest_block_bytes_ -= size;
    return 0;
}

uint32_t AddressSpaceDevice::gen_handle_locked() {
    if (fault_fires_locked(DeviceFault::kGenHandle)) {
        regs_.handle = kInvalidHandle;
        return ENOSPC;
    }
    auto handle = handles_.generate();
    regs_.handle = handle ? *handle : kInvalidHandle;
    return handle ? 0 : status_of(handle.error());
}

uint32_t AddressSpaceDevice::destroy_handle_locked() {
    return handles_.destroy(regs_.handle) ? 0 : EINVAL;
}

uint32_t AddressSpaceDevice::tell_ping_info_addr_locked() {
    // A refused address reads back as all-ones (no page address is): drivers ignore STATUS
    // for this command (old hosts report ENOSYS) and learn of the refusal by the read-back.
    HandleEntry* entry = handles_.find(regs_.handle);
    if (entry == nullptr) {
        regs_.ping_info_addr = kAllOnes;
        return EINVAL;
    }
    // Refuse a ping page that is not guest RAM now; ping_locked checks again every time.
    PingInfo::Bytes probe;
    if (auto read = read_guest_locked(regs_.ping_info_addr, probe); !read) {
        regs_.ping_info_addr = kAllOnes;
        return status_of(read.error());
    }
    entry->ping_info_gpa = regs_.ping_info_addr;
    if (fault_fires_locked(DeviceFault::kPingInfoReadBack)) {
        regs_.ping_info_addr ^= 0x1000;  // a host that took the page but reports another
    }
    return 0;
}

uint32_t AddressSpaceDevice::ping_locked(uint32_t handle) {
    HandleEntry* entry = handles_.find(handle);
    if (entry == nullptr || !entry->ping_info_gpa) {
        return EINVAL;  // unknown handle, or no TELL_PING_INFO_ADDR yet
    }
    const uint64_t gpa = *entry->ping_info_gpa;
    // Copy the struct in and out: the guest may change its page while the context runs.
    PingInfo::Bytes bytes;
    if (auto read = read_guest_locked(gpa, bytes); !read) {
        return status_of(read.error());
    }
    PingInfo info = PingInfo::decode(bytes);
    if (entry->context) {
        entry->context->perform_locked(info);
    } else {
        // The create ping: metadata is the type. phys_addr may be garbage (set_subdevice_type
        // leaves it uninitialised), so no context trusts it.
        auto context = create_context(info.metadata, ContextParams{handle, *this});
        if (context) {
            entry->context = std::move(*context);
        }
        info.metadata = context ? kPingOk : kAllOnes;
    }
    if (auto write = write_guest_locked(gpa, info.encode()); !write) {
        return status_of(write.error());
    }
    return 0;
}

void AddressSpaceDevice::set_bar1_phys_start_hint(uint64_t gpa) {
    MutexLock lock(mutex_);
    phys_start_hint_ = gpa;
}

void AddressSpaceDevice::reset() {
    MutexLock lock(mutex_);
    reset_locked();
}

void AddressSpaceDevice::reset_locked() {
    handles_.clear();  // first: contexts give their memory back
    shared_slots_.clear();
    mappings_.clear();
    guest_blocks_.clear();
    guest_block_bytes_ = 0;
    host_regions_.clear();
    host_region_bytes_ = 0;
    area_.reset();
    (void)bar1_.release(0, bar1_.size());
    regs_ = Registers{};
    refused_pings_ = 0;
    faults_ = {};
    any_fault_armed_ = false;
    refused_guest_range_.reset();
    faults_fired_ = 0;
    regs_.guest_page_size = config_.host_page_size;
    // phys_start_hint_ stays: it is where the VMM put BAR1, not guest-visible state.
}

DeviceStats AddressSpaceDevice::stats() const {
    MutexLock lock(mutex_);
    DeviceStats stats;
    stats.handles = handles_.size();
    handles_.for_each([&](uint32_t, const HandleEntry& entry) {
        if (entry.context) {
            ++stats.contexts_by_type[static_cast<uint32_t>(entry.context->type())];
        }
    });
    stats.guest_blocks = guest_blocks_.size();
    stats.guest_block_bytes = guest_block_bytes_;
    stats.host_regions = host_regions_.size();
    stats.host_region_bytes = host_region_bytes_;
    stats.area_free_bytes = area_.free_bytes();
    stats.memory_mappings = mappings_.count();
    stats.backed_bytes = mappings_.backed_bytes();
    stats.shared_slot_slabs = shared_slots_.slab_count();
    stats.refused_pings = refused_pings_;
    stats.faults_fired = faults_fired_;
    return stats;
}

DeviceBooks AddressSpaceDevice::books() const {
    MutexLock lock(mutex_);
    DeviceBooks books;
    books.bar1_size = config_.bar1_size;
    books.phys_start = phys_start_locked();
    books.area = area_.ranges();
    books.guest_blocks = guest_blocks_;
    books.host_regions = host_regions_;
    books.mappings = mappings_.starting_within(0, UINT64_MAX);
    handles_.for_each([&](uint32_t handle, const HandleEntry& entry) {
        DeviceBooks::Handle view;
        view.handle = handle;
        view.ping_info_gpa = entry.ping_info_gpa;
        if (entry.context) {
            view.context = entry.context->type();
            view.allocations = entry.context->allocations_locked();
        }
        books.handles.push_back(std::move(view));
    });
    std::ranges::sort(books.handles, {}, &DeviceBooks::Handle::handle);
    for (auto& slab : shared_slots_.slabs()) {
        books.slabs.push_back(
            DeviceBooks::Slab{slab.offset, slab.size, std::move(slab.free_pieces)});
    }
    return books;
}

void AddressSpaceDevice::inject(DeviceFault fault, FaultSchedule schedule) {
    MutexLock lock(mutex_);
    if (schedule.every == 0) {
        schedule.every = 1;
    }
    faults_[static_cast<size_t>(fault)] = ArmedFault{schedule, 0, 0, true};
    any_fault_armed_ = true;
}

void AddressSpaceDevice::refuse_guest_memory(uint64_t gpa, uint64_t size) {
    MutexLock lock(mutex_);
    refused_guest_range_ = std::pair{gpa, size};
}

void AddressSpaceDevice::clear_faults() {
    MutexLock lock(mutex_);
    faults_ = {};
    any_fault_armed_ = false;
    refused_guest_range_.reset();
}

bool AddressSpaceDevice::ping_page_reachable(uint64_t gpa) {
    MutexLock lock(mutex_);
    if (refused_locked(gpa, PingInfo::kSize)) {
        return false;
    }
    PingInfo::Bytes probe;
    return guest_memory_.read(gpa, probe).has_value();
}

bool AddressSpaceDevice::fault_fires_locked(DeviceFault fault) {
    if (!any_fault_armed_) [[likely]] {
        return false;
    }
    ArmedFault& armed = faults_[static_cast<size_t>(fault)];
    if (!armed.armed) {
        return false;
    }
    const uint64_t seen = armed.seen++;
    const FaultSchedule& schedule = armed.schedule;
    if (seen < schedule.skip || (seen - schedule.skip) % schedule.every != 0) {
        return false;
    }
    ++armed.fired;
    ++faults_fired_;
    if (schedule.times != 0 && armed.fired >= schedule.times) {
        armed.armed = false;
    }
    return true;
}

bool AddressSpaceDevice::refused_locked(uint64_t gpa, uint64_t size) const {
    if (!refused_guest_range_) {
        return false;
    }
    const auto [start, length] = *refused_guest_range_;
    // Overlap of [gpa, gpa + size) and [start, start + length), without wrapping sums.
    const bool before = gpa < start && start - gpa >= size;
    const bool after = gpa >= start && gpa - start >= length;
    return size != 0 && length != 0 && !before && !after;
}

Result<void> AddressSpaceDevice::read_guest_locked(uint64_t gpa, std::span<std::byte> out) {
    if (refused_locked(gpa, out.size())) {
        ++faults_fired_;
        return fail(EFAULT);
    }
    return guest_memory_.read(gpa, out);
}

Result<void> AddressSpaceDevice::write_guest_locked(uint64_t gpa, std::span<const std::byte> in) {
    if (refused_locked(gpa, in.size())) {
        ++faults_fired_;
        return fail(EFAULT);
    }
    return guest_memory_.write(gpa, in);
}

Result<std::span<std::byte>> AddressSpaceDevice::host_memory(uint64_t gpa, uint64_t size) const {
    MutexLock lock(mutex_);
    const uint64_t offset = GF_TRY(bar1_offset_locked(gpa, size));
    if (!mappings_.covers(offset, size)) {
        return fail(EFAULT);
    }
    return bar1_.view(offset, size);
}

uint64_t AddressSpaceDevice::phys_start_locked() const {
    return regs_.phys_start != 0 ? regs_.phys_start : phys_start_hint_;
}

std::optional<GuestBlock> AddressSpaceDevice::guest_block_containing_locked(uint64_t offset) const {
    auto block = find_containing(guest_blocks_, offset);
    if (block == guest_blocks_.end()) {
        return std::nullopt;
    }
    return GuestBlock{block->first, block->second};
}

Result<uint64_t> AddressSpaceDevice::alloc_shared_host_region_locked(uint64_t size) {
    if (size == 0 || size % config_.host_page_size != 0) {
        return fail(EINVAL);
    }
    if (fault_fires_locked(DeviceFault::kHostMemory)) {
        return fail(ENOMEM);
    }
    const uint64_t offset = GF_TRY(area_.allocate(size));
    host_regions_.emplace(offset, size);
    host_region_bytes_ += size;
    return offset;
}

Result<void> AddressSpaceDevice::free_shared_host_region_locked(uint64_t offset) {
    auto region = host_regions_.find(offset);
    if (region == host_regions_.end()) {
        return fail(EINVAL);
    }
    (void)area_.free(offset);  // cannot fail: host_regions_ mirrors the allocator
    host_region_bytes_ -= region->second;
    host_regions_.erase(region);
    return {};
}

Result<void> AddressSpaceDevice::add_memory_mapping_locked(uint64_t offset, uint64_t size,
                                                           uint32_t owner) {
    if (!range_within(offset, size, config_.bar1_size) || offset % config_.host_page_size != 0 ||
        size % config_.host_page_size != 0) {
        return fail(EINVAL);
    }
    if (fault_fires_locked(DeviceFault::kHostMemory)) {
        return fail(ENOMEM);
    }
    return mappings_.add(offset, size, owner);
}

Result<void> AddressSpaceDevice::remove_memory_mapping_locked(uint64_t offset, uint64_t size) {
    GF_TRY(mappings_.remove(offset, size));
    // The pages go back to the kernel and read as zero for whoever backs them next.
    return bar1_.release(offset, size);
}

void AddressSpaceDevice::scrub_locked(uint64_t offset, uint64_t size) {
    (void)bar1_.release(offset, size);
}

SharedSlotsPool& AddressSpaceDevice::shared_slots_pool_locked() {
    return shared_slots_;
}

}  // namespace gf::device
