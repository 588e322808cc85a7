#include "device/address_space_device.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>

#include "base/checked.h"
#include "base/interval_map.h"
#include "base/leak.h"
#include "device/ping_dispatch.h"
#include "device/ping_info.h"

namespace gf::device {
namespace {

constexpr uint64_t kMax32BitBar = 2ull << 30;
// What kStatusAboveIntMax reports: ENOMEM with the top bit set, negative as an int.
constexpr uint32_t kStatusAboveIntMax = 0x8000'0000u | ENOMEM;

uint32_t status_of(Error error) {
    return static_cast<uint32_t>(error.value());
}

}  // namespace

AsgConfigProblem asg_config_problem(const DeviceConfig& config) {
    // A buffer fits one block and is a whole number of write steps (spec asg.md §3.3, §3.5).
    if (config.asg_write_step == 0) {
        return AsgConfigProblem::kWriteStep;
    }
    if (config.asg_buffer_size == 0 || config.asg_buffer_size > AsgBlockPool::kBlockSize) {
        return AsgConfigProblem::kBufferSize;
    }
    if (config.asg_buffer_size % config.asg_write_step != 0) {
        return AsgConfigProblem::kNotWholeSteps;
    }
    if (!config.asg_sink_factory && !builtin_asg_sink(config.asg_sink)) {
        return AsgConfigProblem::kSink;
    }
    return AsgConfigProblem::kNone;
}

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
    if (asg_config_problem(config) != AsgConfigProblem::kNone) {
        return fail(EINVAL);
    }
    std::unique_ptr<Bar1Memory> bar1 =
        GF_TRY(Bar1Memory::create(config.bar1_size, config.max_bar1_bindings));
    std::unique_ptr<ContextReaper> reaper =
        GF_TRY(ContextReaper::create(config.context_stop_timeout));
    return std::unique_ptr<AddressSpaceDevice>(
        new AddressSpaceDevice(config, guest_memory, std::move(bar1), std::move(reaper)));
}

AddressSpaceDevice::AddressSpaceDevice(const DeviceConfig& config, GuestMemory& guest_memory,
                                       std::unique_ptr<Bar1Memory> bar1,
                                       std::unique_ptr<ContextReaper> reaper)
    : config_(config),
      guest_memory_(guest_memory),
      bar1_(std::move(bar1)),
      asg_(std::make_unique<AsgTotals>()),
      reaper_(std::move(reaper)),
      regs_(config.host_page_size),
      phys_start_hint_(config.bar1_default_phys_start),
      books_(*bar1_, config.host_page_size) {}

AddressSpaceDevice::~AddressSpaceDevice() {
    // One bound for everything: a wedged context must not keep the daemon from stopping.
    const auto deadline = std::chrono::steady_clock::now() + config_.context_stop_timeout;
    EndedContexts ended;
    {
        MutexLock lock(device_mutex_);
        // Contexts release into the allocator, pool and mapping table: end them while those live.
        for (HandleEntry& entry : handles_.remove_all()) {
            end_context_locked(std::move(entry.context));
        }
        ended = std::exchange(ended_, {});
    }
    reaper_->adopt(std::move(ended));
    if (const size_t abandoned = reaper_->shut_down(deadline); abandoned > 0) {
        // Their threads may still reach BAR1 (every access fails: revoked) and the counters:
        // those outlive the device, as the contexts do.
        std::fprintf(stderr,
                     "goldfish: %zu context thread(s) left running; BAR1's reservation is kept "
                     "for them\n",
                     abandoned);
        leaked_on_purpose(bar1_.release());
        leaked_on_purpose(asg_.release());
    }
}

uint32_t AddressSpaceDevice::mmio_read(uint64_t offset, unsigned access_size) {
    if (access_size != 4) {
        return 0;
    }
    MutexLock lock(device_mutex_);
    return regs_.read(offset);
}

void AddressSpaceDevice::mmio_write(uint64_t offset, uint32_t value, unsigned access_size) {
    if (access_size != 4) {
        return;
    }
    EndedContexts ended;
    {
        MutexLock lock(device_mutex_);
        write_register_locked(offset, value);
        ended = std::exchange(ended_, {});
    }
    if (!ended.empty()) [[unlikely]] {
        // Not here: the caller (a driver holding its register lock, a vCPU) must not wait for
        // a context's thread.
        reaper_->adopt(std::move(ended));
    }
}

void AddressSpaceDevice::write_register_locked(uint64_t offset, uint32_t value) {
    const RegisterFile::Write write = regs_.write(offset, value);
    switch (write.kind) {
        case RegisterFile::Write::Kind::kStored:
            break;
        case RegisterFile::Write::Kind::kCommand:
            delay_if_injected_locked();
            regs_.status = run_command_locked(write.value);
            break;
        case RegisterFile::Write::Kind::kPing: {
            delay_if_injected_locked();
            // STATUS stays untouched: drivers ping without the register lock, so writing it
            // here could clobber another thread's command result before it is read.
            FaultyGuestMemory guest(guest_memory_, faults_);
            if (dispatch_ping(write.value, handles_, guest, *this, faults_) != 0) {
                ++refused_pings_;
            }
            break;
        }
    }
}

uint32_t AddressSpaceDevice::injected_status(DeviceFault fault, uint32_t otherwise) const {
    const uint64_t value = faults_.value(fault);
    return value == 0 ? otherwise : static_cast<uint32_t>(value);
}

void AddressSpaceDevice::delay_if_injected_locked() {
    if (faults_.fires(DeviceFault::kCommandDelay)) {
        // The lock stays held: a slow device is slow for every caller.
        const uint64_t us = std::min(faults_.value(DeviceFault::kCommandDelay), kMaxCommandDelayUs);
        std::this_thread::sleep_for(std::chrono::microseconds(us));
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
    if (faults_.fires(DeviceFault::kStatusAboveIntMax)) {
        return kStatusAboveIntMax;
    }
    if (regs_.block_size == 0) {
        return EINVAL;  // registers untouched, as in the emulator
    }
    if (faults_.fires(DeviceFault::kBlockAllocation)) {
        regs_.block_offset = kAllOnes;
        return injected_status(DeviceFault::kBlockAllocation, ENOMEM);
    }
    // The size is the guest's: a value so large the size rule would wrap is simply too big.
    auto aligned = guest_block_size(regs_.block_size, regs_.guest_page_size);
    if (!aligned) {
        regs_.block_offset = kAllOnes;
        return ENOMEM;
    }
    regs_.block_size = *aligned;
    auto offset = books_.allocate_guest_block(*aligned);
    if (!offset) {
        regs_.block_offset = kAllOnes;
        return ENOMEM;
    }
    regs_.block_offset = *offset;
    return 0;
}

uint32_t AddressSpaceDevice::deallocate_block_locked() {
    if (faults_.fires(DeviceFault::kStatusAboveIntMax)) {
        return kStatusAboveIntMax;
    }
    if (faults_.fires(DeviceFault::kBlockDeallocation)) {
        return injected_status(DeviceFault::kBlockDeallocation, EINVAL);
    }
    const uint64_t offset = regs_.block_offset;
    // Only guest blocks: a host region's offset (or a stale one) must not free host memory.
    const std::optional<uint64_t> size = books_.guest_block_at(offset);
    if (!size) {
        return EINVAL;
    }
    // The emulator's deallocation callbacks: type-5 mappings inside the block go with it.
    for (const auto& mapping : bar1_->mappings_starting_within(offset, *size)) {
        if (HandleEntry* entry = handles_.find(mapping.owner); entry && entry->context) {
            assume_device_lock_held(*entry->context, *this);
            entry->context->on_block_deallocated_locked(mapping.offset);
        }
        (void)remove_memory_mapping_locked(mapping.offset, mapping.size);
    }
    books_.free_guest_block(offset);
    return 0;
}

uint32_t AddressSpaceDevice::gen_handle_locked() {
    if (faults_.fires(DeviceFault::kGenHandle)) {
        regs_.handle = kInvalidHandle;
        return ENOSPC;
    }
    auto handle = handles_.generate();
    regs_.handle = handle ? *handle : kInvalidHandle;
    return handle ? 0 : status_of(handle.error());
}

uint32_t AddressSpaceDevice::destroy_handle_locked() {
    std::optional<HandleEntry> entry = handles_.remove(regs_.handle);
    if (!entry) {
        return EINVAL;
    }
    // The context ends after the table no longer lists the handle.
    end_context_locked(std::move(entry->context));
    return 0;
}

uint32_t AddressSpaceDevice::tell_ping_info_addr_locked() {
    // A refused address reads back as all-ones (no page address is): drivers ignore STATUS
    // for this command (old hosts report ENOSYS) and learn of the refusal by the read-back.
    HandleEntry* entry = handles_.find(regs_.handle);
    if (entry == nullptr) {
        regs_.ping_info_addr = kAllOnes;
        return EINVAL;
    }
    // Refuse a ping page that is not guest RAM now; the ping checks again every time.
    PingInfo::Bytes probe;
    FaultyGuestMemory guest(guest_memory_, faults_);
    if (auto read = guest.read(regs_.ping_info_addr, probe); !read) {
        regs_.ping_info_addr = kAllOnes;
        return status_of(read.error());
    }
    entry->ping_info_gpa = regs_.ping_info_addr;
    if (faults_.fires(DeviceFault::kPingInfoReadBack)) {
        regs_.ping_info_addr ^= 0x1000;  // a host that took the page but reports another
    }
    return 0;
}

void AddressSpaceDevice::end_context_locked(std::unique_ptr<Context> context) {
    if (!context) {
        return;  // a handle that was never pinged
    }
    assume_device_lock_held(*context, *this);
    context->stop_locked();
    context->release_locked();
    ended_.push_back(std::move(context));
}

void AddressSpaceDevice::set_bar1_phys_start_hint(uint64_t gpa) {
    MutexLock lock(device_mutex_);
    phys_start_hint_ = gpa;
}

void AddressSpaceDevice::reset() {
    EndedContexts ended;
    {
        MutexLock lock(device_mutex_);
        reset_locked();
        ended = std::exchange(ended_, {});
    }
    reaper_->finish_now(std::move(ended));
}

void AddressSpaceDevice::reset_locked() {
    // First: contexts give their memory back.
    for (HandleEntry& entry : handles_.remove_all()) {
        end_context_locked(std::move(entry.context));
    }
    shared_slots_.clear();
    asg_pools_.clear();
    asg_->protocol_errors.store(0, std::memory_order_relaxed);
    asg_->bytes_in.store(0, std::memory_order_relaxed);
    asg_->bytes_out.store(0, std::memory_order_relaxed);
    asg_->reply_refused.store(0, std::memory_order_relaxed);
    books_.clear();
    regs_.reset();
    refused_pings_ = 0;
    faults_ = FaultInjector{};
    // phys_start_hint_ stays: it is where the VMM put BAR1, not guest-visible state.
}

DeviceStats AddressSpaceDevice::stats() const {
    MutexLock lock(device_mutex_);
    DeviceStats stats;
    stats.handles = handles_.size();
    for (const auto& [handle, entry] : handles_.entries()) {
        if (entry.context) {
            ++stats.contexts_by_type[static_cast<uint32_t>(entry.context->type())];
        }
    }
    stats.guest_blocks = books_.guest_blocks().size();
    stats.guest_block_bytes = books_.guest_block_bytes();
    stats.host_regions = books_.host_regions().size();
    stats.host_region_bytes = books_.host_region_bytes();
    stats.area_free_bytes = books_.area().free_bytes();
    stats.memory_mappings = bar1_->mapping_count();
    stats.backed_bytes = bar1_->backed_bytes();
    stats.file_bindings = bar1_->bound_count();
    stats.file_seal_checks = bar1_->seal_checks();
    stats.file_remap_failures = bar1_->remap_failures();
    stats.shared_slot_slabs = shared_slots_.slab_count();
    stats.asg_blocks = asg_pools_.block_count();
    stats.asg_protocol_errors = asg_->protocol_errors.load(std::memory_order_relaxed);
    stats.asg_bytes_in = asg_->bytes_in.load(std::memory_order_relaxed);
    stats.asg_bytes_out = asg_->bytes_out.load(std::memory_order_relaxed);
    stats.asg_reply_refused = asg_->reply_refused.load(std::memory_order_relaxed);
    stats.refused_pings = refused_pings_;
    stats.stalled_contexts = reaper_->stalled();
    stats.faults_fired = faults_.fired();
    return stats;
}

DeviceBooks AddressSpaceDevice::books() const {
    MutexLock lock(device_mutex_);
    DeviceBooks books;
    books.bar1_size = config_.bar1_size;
    books.phys_start = phys_start_locked();
    books.area = books_.area().ranges();
    books.guest_blocks = books_.guest_blocks();
    books.host_regions = books_.host_regions();
    books.mappings = bar1_->mappings_starting_within(0, UINT64_MAX);
    for (const auto& [handle, entry] : handles_.entries()) {
        DeviceBooks::Handle view;
        view.handle = handle;
        view.ping_info_gpa = entry.ping_info_gpa;
        if (entry.context) {
            assume_device_lock_held(*entry.context, *this);
            view.context = entry.context->type();
            view.allocations = entry.context->allocations_locked();
        }
        books.handles.push_back(std::move(view));
    }
    std::ranges::sort(books.handles, {}, &DeviceBooks::Handle::handle);
    for (auto& slab : shared_slots_.slabs()) {
        books.slabs.push_back(
            DeviceBooks::Slab{slab.offset, slab.size, std::move(slab.free_pieces)});
    }
    for (const AsgBlockPool* pool : {&asg_pools_.rings, &asg_pools_.buffers}) {
        for (const uint64_t offset : pool->block_offsets()) {
            books.asg_blocks.emplace(offset, AsgBlockPool::kBlockSize);
        }
    }
    return books;
}

void AddressSpaceDevice::inject(DeviceFault fault, FaultSchedule schedule) {
    MutexLock lock(device_mutex_);
    faults_.arm(fault, schedule);
}

void AddressSpaceDevice::refuse_guest_memory(uint64_t gpa, uint64_t size) {
    MutexLock lock(device_mutex_);
    faults_.refuse_guest_memory(gpa, size);
}

void AddressSpaceDevice::clear_faults() {
    MutexLock lock(device_mutex_);
    faults_.disarm();
}

bool AddressSpaceDevice::ping_page_reachable(uint64_t gpa) {
    MutexLock lock(device_mutex_);
    if (faults_.refuses(gpa, PingInfo::kSize)) {
        return false;
    }
    PingInfo::Bytes probe;
    return guest_memory_.read(gpa, probe).has_value();
}

std::optional<AddressSpaceDevice::HandleView> AddressSpaceDevice::handle_view(
    uint32_t handle) const {
    MutexLock lock(device_mutex_);
    const HandleEntry* entry = handles_.find(handle);
    if (entry == nullptr) {
        return std::nullopt;
    }
    HandleView view{entry->ping_info_gpa, std::nullopt};
    if (entry->context) {
        view.context = entry->context->type();
    }
    return view;
}

Result<void> AddressSpaceDevice::bus_access_bar1_locked(uint64_t offset, uint64_t size) const {
    // Guest blocks hold type-5 host memory too; host regions are type-6 slabs.
    for (const auto* ranges : {&books_.guest_blocks(), &books_.host_regions()}) {
        auto it = find_containing(*ranges, offset);
        if (it != ranges->end() && range_within(offset - it->first, size, it->second)) {
            return {};
        }
    }
    return fail(EFAULT);
}

Result<void> AddressSpaceDevice::bus_read_bar1(uint64_t offset, std::span<std::byte> out) const {
    MutexLock lock(device_mutex_);
    GF_TRY(bus_access_bar1_locked(offset, out.size()));
    return bar1_->copy_out(offset, out);
}

Result<void> AddressSpaceDevice::bus_write_bar1(uint64_t offset, std::span<const std::byte> in) {
    MutexLock lock(device_mutex_);
    GF_TRY(bus_access_bar1_locked(offset, in.size()));
    return bar1_->copy_in(offset, in);
}

Result<size_t> AddressSpaceDevice::read_bar1(uint64_t offset, std::span<std::byte> out) const {
    GF_TRY(bar1_->copy_out(offset, out));
    return out.size();
}

Result<size_t> AddressSpaceDevice::write_bar1(uint64_t offset, std::span<const std::byte> in) {
    GF_TRY(bar1_->copy_in(offset, in));
    return in.size();
}

Result<void> AddressSpaceDevice::bind_file(Bar1FileId file, int fd, uint64_t offset, uint64_t size,
                                           bool held) {
    MutexLock lock(device_mutex_);
    // The platform maps only what the device says is the user's: a block the guest holds,
    // or memory the host holds (which the driver's claim hands over).
    const auto& ranges = held ? books_.host_regions() : books_.guest_blocks();
    auto it = find_containing(ranges, offset);
    if (it == ranges.end() || !range_within(offset - it->first, size, it->second)) {
        return fail(EPERM);
    }
    return bar1_->bind_file(file, fd, offset, size, held);
}

void AddressSpaceDevice::unbind_file(Bar1FileId file, uint64_t offset, uint64_t size) {
    MutexLock lock(device_mutex_);
    bar1_->unbind_file(file, offset, size);
}

Result<bool> AddressSpaceDevice::retire_file(Bar1FileId file, int fd) {
    // Bindings are BAR1's own books (under its layout lock); nothing here needs ours.
    return bar1_->retire_file(file, fd);
}

void AddressSpaceDevice::forget_file(Bar1FileId file) {
    MutexLock lock(device_mutex_);
    bar1_->forget_file(file);
}

}  // namespace gf::device
