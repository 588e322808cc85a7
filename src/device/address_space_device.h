// The goldfish address space PCI function, host side (docs/device.md): a register
// file in BAR0 whose COMMAND and PING writes run synchronously, the BAR1 area allocator, the
// handle table and its contexts, and the sparse host memory behind BAR1.
//
// It is driven only the way a VMM drives a PCI device: 32-bit accesses at BAR0 offsets, and
// guest RAM through GuestMemory. Every entry point is safe to call from many threads.
//
// This class is the facade and the owner of the device lock; the parts live beside it:
// register_file.h (register values and decoding), bar1_books.h and bar1_memory.h (who holds
// which part of BAR1, and its host memory), handle_table.h and ping_dispatch.h (handles,
// pings, contexts), fault_injection.h, device_stats.h and device_books.h (the views).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "device/asg_block_pool.h"
#include "device/bar1_books.h"
#include "device/bar1_memory.h"
#include "device/context.h"
#include "device/context_reaper.h"
#include "device/device_books.h"
#include "device/device_config.h"
#include "device/device_services.h"
#include "device/device_stats.h"
#include "device/fault_injection.h"
#include "device/guest_memory.h"
#include "device/handle_table.h"
#include "device/register_file.h"
#include "device/registers.h"
#include "device/shared_slots_pool.h"

namespace gf::device {

namespace testing {
struct DeviceTestAccess;  // tests/device/device_test_access.h
}  // namespace testing

// What is wrong with a config's ASG part (docs/contexts.md#asg), so that the daemon can name
// the option: the write step is 0; the buffer is 0 or over one 16 MiB block; the buffer is not
// a whole number of steps; no built-in sink has that name (and there is no factory).
enum class AsgConfigProblem { kNone, kWriteStep, kBufferSize, kNotWholeSteps, kSink };
AsgConfigProblem asg_config_problem(const DeviceConfig& config);

class AddressSpaceDevice : private DeviceServices {
  public:
    // EINVAL for an unusable config (asg_config_problem among others), ENOMEM if BAR1's
    // reservation fails. guest_memory must outlive the device.
    static Result<std::unique_ptr<AddressSpaceDevice>> create(const DeviceConfig& config,
                                                              GuestMemory& guest_memory);
    ~AddressSpaceDevice() override;
    AddressSpaceDevice(const AddressSpaceDevice&) = delete;
    AddressSpaceDevice& operator=(const AddressSpaceDevice&) = delete;

    uint64_t bar1_size() const override { return config_.bar1_size; }
    bool bar1_64bit() const { return config_.bar1_64bit; }

    // A BAR0 access. Only 4-byte accesses at known registers do anything: other sizes and
    // offsets read 0 and ignore writes. COMMAND, PING and PING_WITH_DATA writes run to
    // completion before returning. DESTROY_HANDLE returns once the context is stopped (its
    // BAR1 access revoked: that waits only for an access in flight) and its memory released;
    // its thread, if any, is waited for and the context destroyed by the device's reaper.
    uint32_t mmio_read(uint64_t offset, unsigned access_size) GF_EXCLUDES(device_mutex_);
    void mmio_write(uint64_t offset, uint32_t value, unsigned access_size)
        GF_EXCLUDES(device_mutex_);
    uint32_t read32(Reg reg) { return mmio_read(static_cast<uint64_t>(reg), 4); }
    void write32(Reg reg, uint32_t value) { mmio_write(static_cast<uint64_t>(reg), value, 4); }

    // The VMM tells where BAR1 now sits in guest-physical space.
    void set_bar1_phys_start_hint(uint64_t gpa) GF_EXCLUDES(device_mutex_);
    // Back to the state after create(): registers, allocator, handles, contexts, mappings.
    // Waits for the ended contexts' threads within config.context_stop_timeout.
    void reset() GF_EXCLUDES(device_mutex_);
    DeviceStats stats() const GF_EXCLUDES(device_mutex_);
    DeviceBooks books() const GF_EXCLUDES(device_mutex_);

    // Fault injection. Cheap when nothing is armed; reset() disarms everything.
    void inject(DeviceFault fault, FaultSchedule schedule = {}) GF_EXCLUDES(device_mutex_);
    // Guest memory refuses [gpa, gpa + size) to the device (a ping page that became
    // unreadable) until clear_faults(): TELL_PING_INFO_ADDR and PING on it are refused.
    void refuse_guest_memory(uint64_t gpa, uint64_t size) GF_EXCLUDES(device_mutex_);
    void clear_faults() GF_EXCLUDES(device_mutex_);
    // Whether the device can reach a ping page at gpa now (the emulated platform's view of
    // "the page is still where the device looks", like pagemap on a real guest).
    bool ping_page_reachable(uint64_t gpa) GF_EXCLUDES(device_mutex_);

    // A guest's access to BAR1 through the bus, by offset (a VMM that traps BAR1 accesses):
    // memory a block the guest allocated or a host region covers wholly, the same memory
    // the host contexts see; EFAULT anywhere else (nothing backs it: the bus reads 0 there
    // and drops writes).
    Result<void> bus_read_bar1(uint64_t offset, std::span<std::byte> out) const
        GF_EXCLUDES(device_mutex_);
    Result<void> bus_write_bar1(uint64_t offset, std::span<const std::byte> in)
        GF_EXCLUDES(device_mutex_);
    // A live handle's ping page (where TELL_PING_INFO_ADDR put it) and context, if any: what
    // a tracer shows around a PING. nullopt for a handle that is not live.
    struct HandleView {
        std::optional<uint64_t> ping_info_gpa;
        std::optional<hw::ContextType> context;
    };
    std::optional<HandleView> handle_view(uint32_t handle) const GF_EXCLUDES(device_mutex_);

    // The host's view of all of BAR1, by offset (the node's `bar1` file): bytes copied, or
    // ENXIO for a range that is not wholly inside BAR1. Takes only BAR1's layout lock.
    Result<size_t> read_bar1(uint64_t offset, std::span<std::byte> out) const;
    Result<size_t> write_bar1(uint64_t offset, std::span<const std::byte> in);

    // Users' memory files (Bar1Bindings), for a platform whose users map files: the range
    // becomes the pages of `fd` at the same offset. A fresh binding must lie inside one
    // block the guest allocated, a held one inside one host region; EPERM otherwise, EBUSY
    // if any of it is bound already, ENOMEM at the binding cap. DEALLOCATE_BLOCK, a host
    // region's end, a freed type-6 slot and reset take bindings out by themselves.
    Result<void> bind_file(Bar1FileId file, int fd, uint64_t offset, uint64_t size, bool held)
        GF_EXCLUDES(device_mutex_);
    void unbind_file(Bar1FileId file, uint64_t offset, uint64_t size) GF_EXCLUDES(device_mutex_);
    // True once no user maps `fd` writably: everything of `file` is then out of BAR1. Takes
    // no device lock, and BAR1's layout lock only a few bindings at a time (Bar1Memory).
    Result<bool> retire_file(Bar1FileId file, int fd) GF_EXCLUDES(device_mutex_);
    void forget_file(Bar1FileId file) GF_EXCLUDES(device_mutex_);

  private:
    friend struct testing::DeviceTestAccess;

    // Contexts whose handles ended, to be waited for and destroyed after unlocking.
    using EndedContexts = std::vector<std::unique_ptr<Context>>;
    // What contexts' threads use without the device: leaked with them if one is left running
    // at the device's end.
    struct AsgTotals {
        std::atomic<uint64_t> protocol_errors{0};
        std::atomic<uint64_t> bytes_in{0};
        std::atomic<uint64_t> bytes_out{0};
        std::atomic<uint64_t> reply_refused{0};
    };

    AddressSpaceDevice(const DeviceConfig& config, GuestMemory& guest_memory,
                       std::unique_ptr<Bar1Memory> bar1, std::unique_ptr<ContextReaper> reaper);

    void write_register_locked(uint64_t offset, uint32_t value) GF_REQUIRES(device_mutex_);
    uint32_t run_command_locked(uint32_t command) GF_REQUIRES(device_mutex_);
    uint32_t allocate_block_locked() GF_REQUIRES(device_mutex_);
    uint32_t deallocate_block_locked() GF_REQUIRES(device_mutex_);
    uint32_t gen_handle_locked() GF_REQUIRES(device_mutex_);
    uint32_t destroy_handle_locked() GF_REQUIRES(device_mutex_);
    uint32_t tell_ping_info_addr_locked() GF_REQUIRES(device_mutex_);
    // STATUS of an injected fault: its schedule's value, else `otherwise`.
    uint32_t injected_status(DeviceFault fault, uint32_t otherwise) const
        GF_REQUIRES(device_mutex_);
    void delay_if_injected_locked() GF_REQUIRES(device_mutex_);
    Result<void> bus_access_bar1_locked(uint64_t offset, uint64_t size) const
        GF_REQUIRES(device_mutex_);
    void reset_locked() GF_REQUIRES(device_mutex_);

    // Ends a handle's context (context.h, steps 1 and 2) and queues it in ended_, for the
    // reaper once the lock is released.
    void end_context_locked(std::unique_ptr<Context> context) GF_REQUIRES(device_mutex_);

    // DeviceServices, for contexts (address_space_device_services.cpp).
    uint64_t host_page_size() const override { return config_.host_page_size; }
    uint64_t phys_start_locked() const override GF_REQUIRES(device_mutex_);
    std::optional<GuestBlock> guest_block_containing_locked(uint64_t offset) const override
        GF_REQUIRES(device_mutex_);
    Result<uint64_t> alloc_shared_host_region_locked(uint64_t size) override
        GF_REQUIRES(device_mutex_);
    Result<void> free_shared_host_region_locked(uint64_t offset) override
        GF_REQUIRES(device_mutex_);
    Result<void> add_memory_mapping_locked(uint64_t offset, uint64_t size, uint32_t owner) override
        GF_REQUIRES(device_mutex_);
    Result<void> remove_memory_mapping_locked(uint64_t offset, uint64_t size) override
        GF_REQUIRES(device_mutex_);
    void scrub_locked(uint64_t offset, uint64_t size) override GF_REQUIRES(device_mutex_);
    SharedSlotsPool& shared_slots_pool_locked() override GF_REQUIRES(device_mutex_);
    AsgPools& asg_pools_locked() override GF_REQUIRES(device_mutex_) { return asg_pools_; }
    const DeviceConfig& config() const override { return config_; }
    std::atomic<uint64_t>& asg_protocol_errors() override { return asg_->protocol_errors; }
    std::atomic<uint64_t>& asg_bytes_in() override { return asg_->bytes_in; }
    std::atomic<uint64_t>& asg_bytes_out() override { return asg_->bytes_out; }
    std::atomic<uint64_t>& asg_reply_refused() override { return asg_->reply_refused; }
    Bar1Memory& bar1_memory() override { return *bar1_; }

    const DeviceConfig config_;
    GuestMemory& guest_memory_;
    // Its own lock guards its layout; contexts' threads reach it without device_mutex_.
    // Set once; released (leaked) only at the end, if a context's thread is left running.
    std::unique_ptr<Bar1Memory> bar1_;
    // Counted by ASG consumers without the lock; zeroed by reset. Leaked as bar1_ is.
    std::unique_ptr<AsgTotals> asg_;
    // Waits for ended contexts' threads and destroys the contexts, without our lock.
    const std::unique_ptr<ContextReaper> reaper_;

    // Everything below is guarded by device_mutex_ (DeviceServices).
    RegisterFile regs_ GF_GUARDED_BY(device_mutex_);
    uint64_t phys_start_hint_ GF_GUARDED_BY(device_mutex_);
    Bar1Books books_ GF_GUARDED_BY(device_mutex_);
    uint64_t refused_pings_ GF_GUARDED_BY(device_mutex_) = 0;
    FaultInjector faults_ GF_GUARDED_BY(device_mutex_);
    SharedSlotsPool shared_slots_ GF_GUARDED_BY(device_mutex_);
    AsgPools asg_pools_ GF_GUARDED_BY(device_mutex_);
    // Ended by the register write under way; its caller hands them to reaper_ after unlocking.
    EndedContexts ended_ GF_GUARDED_BY(device_mutex_);
    // Last: its contexts release into the members above when they end.
    HandleTable handles_ GF_GUARDED_BY(device_mutex_);
};

}  // namespace gf::device
