// The goldfish address space PCI function, host side (spec/device.md §2-§8, §12): a register
// file in BAR0 whose COMMAND and PING writes run synchronously, the BAR1 area allocator, the
// handle table and its contexts, and the sparse host memory behind BAR1.
//
// It is driven only the way a VMM drives a PCI device: 32-bit accesses at BAR0 offsets, and
// guest RAM through GuestMemory. Every entry point is safe to call from many threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "device/area_allocator.h"
#include "device/bar1_memory.h"
#include "device/context.h"
#include "device/device_services.h"
#include "device/guest_memory.h"
#include "device/handle_table.h"
#include "device/memory_mapping_table.h"
#include "device/registers.h"
#include "device/shared_slots_pool.h"

namespace gf::device {

struct DeviceConfig {
    // A power of two; a 32-bit BAR1 is at most 2 GiB (e.g. 256 MiB for QEMU's proxy device).
    uint64_t bar1_size = 16ull << 30;
    bool bar1_64bit = true;
    // A power of two, at least the host's page size: granularity of host memory behind BAR1
    // and the default GUEST_PAGE_SIZE.
    uint32_t host_page_size = 4096;
    // Where the VMM placed BAR1; used while the guest has not written PHYS_START (or wrote 0).
    uint64_t bar1_default_phys_start = 0;
};

struct DeviceStats {
    uint64_t handles = 0;                           // live handles
    std::map<uint32_t, uint64_t> contexts_by_type;  // type -> live contexts
    uint64_t guest_blocks = 0;                      // ALLOCATE_BLOCK ranges
    uint64_t guest_block_bytes = 0;
    uint64_t host_regions = 0;  // host-owned BAR1 ranges (type-6 slabs)
    uint64_t host_region_bytes = 0;
    uint64_t area_free_bytes = 0;
    uint64_t memory_mappings = 0;  // backed ranges
    uint64_t backed_bytes = 0;
    uint64_t shared_slot_slabs = 0;
    uint64_t refused_pings = 0;  // unknown handle, no ping page yet, or page not in RAM
    uint64_t faults_fired = 0;   // injected faults that took effect (see inject())
};

// A consistent copy of the device's books (tests, fuzzing): read-only, taken under the lock.
struct DeviceBooks {
    struct Handle {
        uint32_t handle = 0;
        std::optional<uint64_t> ping_info_gpa;
        std::optional<hw::ContextType> context;
        // The context's holdings, BAR1 offset -> size: type 5 backed ranges, type 6 pieces.
        std::map<uint64_t, uint64_t> allocations;
    };
    struct Slab {
        uint64_t offset = 0;
        uint64_t size = 0;
        std::map<uint64_t, uint64_t> free_pieces;  // BAR1 offset -> size
    };
    uint64_t bar1_size = 0;
    uint64_t phys_start = 0;                    // what contexts use (PHYS_START or the VMM's)
    std::vector<AreaAllocator::Range> area;     // every range, offset order
    std::map<uint64_t, uint64_t> guest_blocks;  // offset -> size
    std::map<uint64_t, uint64_t> host_regions;  // offset -> size
    std::vector<MemoryMappingTable::Mapping> mappings;
    std::vector<Handle> handles;  // handle order
    std::vector<Slab> slabs;      // type-6 pool, offset order
};

// Failures the device can be told to produce, as a failing or hostile host would. Each
// leaves the device's books as they were: the operation does nothing but report failure.
enum class DeviceFault : uint8_t {
    kBlockAllocation,    // ALLOCATE_BLOCK (size > 0): STATUS ENOMEM, BLOCK_OFFSET all-ones
    kHostMemory,         // type-5/6 Allocate cannot get host memory or a host region: ~0
    kGenHandle,          // GEN_HANDLE issues nothing; HANDLE reads 0xFFFFFFFF
    kPingInfoReadBack,   // TELL_PING_INFO_ADDR (live handle) records the page, but
                         // PING_INFO_ADDR then reads back a different address
    kStatusAboveIntMax,  // ALLOCATE_BLOCK / DEALLOCATE_BLOCK do nothing; STATUS 0x8000000C
};
inline constexpr size_t kDeviceFaultCount = 5;

// When an injected fault fires, counted in its opportunities (the operations it applies to,
// listed above): it skips `skip` of them, then fires on every `every`-th one (0 counts as 1),
// `times` times in all (0: until clear_faults()).
struct FaultSchedule {
    uint32_t skip = 0;
    uint32_t every = 1;
    uint32_t times = 1;
};

class AddressSpaceDevice : private DeviceServices {
  public:
    static constexpr uint16_t kVendorId = 0x607D;
    static constexpr uint16_t kDeviceId = 0xF153;
    static constexpr uint8_t kRevision = 1;
    static constexpr uint16_t kClassCode = 0xff00;  // class << 8 | subclass; prog-if 0
    static constexpr uint64_t kBar0Size = 0x1000;

    // EINVAL for an unusable config, ENOMEM if BAR1's reservation fails. guest_memory must
    // outlive the device.
    static Result<std::unique_ptr<AddressSpaceDevice>> create(const DeviceConfig& config,
                                                              GuestMemory& guest_memory);
    ~AddressSpaceDevice() override;
    AddressSpaceDevice(const AddressSpaceDevice&) = delete;
    AddressSpaceDevice& operator=(const AddressSpaceDevice&) = delete;

    uint64_t bar1_size() const override { return config_.bar1_size; }
    bool bar1_64bit() const { return config_.bar1_64bit; }

    // A BAR0 access. Only 4-byte accesses at known registers do anything: other sizes and
    // offsets read 0 and ignore writes. COMMAND, PING and PING_WITH_DATA writes run to
    // completion before returning.
    uint32_t mmio_read(uint64_t offset, unsigned access_size) GF_EXCLUDES(mutex_);
    void mmio_write(uint64_t offset, uint32_t value, unsigned access_size) GF_EXCLUDES(mutex_);
    uint32_t read32(Reg reg) { return mmio_read(static_cast<uint64_t>(reg), 4); }
    void write32(Reg reg, uint32_t value) { mmio_write(static_cast<uint64_t>(reg), value, 4); }

    // The VMM tells where BAR1 now sits in guest-physical space.
    void set_bar1_phys_start_hint(uint64_t gpa) GF_EXCLUDES(mutex_);
    // Back to the state after create(): registers, allocator, handles, contexts, mappings.
    void reset() GF_EXCLUDES(mutex_);
    DeviceStats stats() const GF_EXCLUDES(mutex_);
    DeviceBooks books() const GF_EXCLUDES(mutex_);

    // Fault injection. Cheap when nothing is armed; reset() disarms everything.
    void inject(DeviceFault fault, FaultSchedule schedule = {}) GF_EXCLUDES(mutex_);
    // Guest memory refuses [gpa, gpa + size) to the device (a ping page that became
    // unreadable) until clear_faults(): TELL_PING_INFO_ADDR and PING on it are refused.
    void refuse_guest_memory(uint64_t gpa, uint64_t size) GF_EXCLUDES(mutex_);
    void clear_faults() GF_EXCLUDES(mutex_);
    // Whether the device can reach a ping page at gpa now (the emulated platform's view of
    // "the page is still where the device looks", like pagemap on a real guest).
    bool ping_page_reachable(uint64_t gpa) GF_EXCLUDES(mutex_);

    // The host's view of backed BAR1 memory at guest-physical [gpa, gpa + size) (what
    // get_host_ptr gives); EFAULT unless one mapping covers all of it. The span stays valid
    // until that mapping is removed.
    Result<std::span<std::byte>> host_memory(uint64_t gpa, uint64_t size) const GF_EXCLUDES(mutex_);

  private:
    // Register values; 64-bit registers are stored whole and accessed by halves.
    struct Registers {
        uint32_t status = 0;
        uint32_t guest_page_size = 0;
        uint64_t block_size = 0;
        uint64_t block_offset = 0;
        uint64_t ping_info_addr = 0;
        uint32_t handle = 0;
        uint64_t phys_start = 0;
    };

    AddressSpaceDevice(const DeviceConfig& config, GuestMemory& guest_memory, Bar1Memory bar1);

    uint32_t read_register_locked(uint64_t offset) const GF_REQUIRES(mutex_);
    void write_register_locked(uint64_t offset, uint32_t value) GF_REQUIRES(mutex_);
    uint32_t run_command_locked(uint32_t command) GF_REQUIRES(mutex_);
    uint32_t allocate_block_locked() GF_REQUIRES(mutex_);
    uint32_t deallocate_block_locked() GF_REQUIRES(mutex_);
    uint32_t gen_handle_locked() GF_REQUIRES(mutex_);
    uint32_t destroy_handle_locked() GF_REQUIRES(mutex_);
    uint32_t tell_ping_info_addr_locked() GF_REQUIRES(mutex_);
    // 0, or why the ping was refused (nothing ran, the page was left alone).
    uint32_t ping_locked(uint32_t handle) GF_REQUIRES(mutex_);
    void reset_locked() GF_REQUIRES(mutex_);
    // Whether an armed fault fires at this opportunity (and counts it).
    bool fault_fires_locked(DeviceFault fault) GF_REQUIRES(mutex_);
    // Guest RAM as the device sees it: refused ranges (refuse_guest_memory) are EFAULT.
    Result<void> read_guest_locked(uint64_t gpa, std::span<std::byte> out) GF_REQUIRES(mutex_);
    Result<void> write_guest_locked(uint64_t gpa, std::span<const std::byte> in)
        GF_REQUIRES(mutex_);
    bool refused_locked(uint64_t gpa, uint64_t size) const GF_REQUIRES(mutex_);

    // DeviceServices, for contexts (always called from within one of the above).
    uint64_t host_page_size() const override { return config_.host_page_size; }
    uint64_t phys_start_locked() const override GF_REQUIRES(mutex_);
    std::optional<GuestBlock> guest_block_containing_locked(uint64_t offset) const override
        GF_REQUIRES(mutex_);
    Result<uint64_t> alloc_shared_host_region_locked(uint64_t size) override GF_REQUIRES(mutex_);
    Result<void> free_shared_host_region_locked(uint64_t offset) override GF_REQUIRES(mutex_);
    Result<void> add_memory_mapping_locked(uint64_t offset, uint64_t size, uint32_t owner) override
        GF_REQUIRES(mutex_);
    Result<void> remove_memory_mapping_locked(uint64_t offset, uint64_t size) override
        GF_REQUIRES(mutex_);
    void scrub_locked(uint64_t offset, uint64_t size) override GF_REQUIRES(mutex_);
    SharedSlotsPool& shared_slots_pool_locked() override GF_REQUIRES(mutex_);

    const DeviceConfig config_;
    GuestMemory& guest_memory_;
    // The reservation itself never moves; which parts are backed is guarded (mappings_).
    Bar1Memory bar1_;

    mutable Mutex mutex_;
    Registers regs_ GF_GUARDED_BY(mutex_);
    uint64_t phys_start_hint_ GF_GUARDED_BY(mutex_);
    AreaAllocator area_ GF_GUARDED_BY(mutex_);
    std::map<uint64_t, uint64_t> guest_blocks_ GF_GUARDED_BY(mutex_);  // offset -> size
    uint64_t guest_block_bytes_ GF_GUARDED_BY(mutex_) = 0;
    std::map<uint64_t, uint64_t> host_regions_ GF_GUARDED_BY(mutex_);  // offset -> size
    uint64_t host_region_bytes_ GF_GUARDED_BY(mutex_) = 0;
    uint64_t refused_pings_ GF_GUARDED_BY(mutex_) = 0;
    struct ArmedFault {
        FaultSchedule schedule;
        uint64_t seen = 0;   // opportunities since inject()
        uint32_t fired = 0;  // firings since inject()
        bool armed = false;
    };
    std::array<ArmedFault, kDeviceFaultCount> faults_ GF_GUARDED_BY(mutex_){};
    bool any_fault_armed_ GF_GUARDED_BY(mutex_) = false;
    std::optional<std::pair<uint64_t, uint64_t>> refused_guest_range_ GF_GUARDED_BY(mutex_);
    uint64_t faults_fired_ GF_GUARDED_BY(mutex_) = 0;
    MemoryMappingTable mappings_ GF_GUARDED_BY(mutex_);
    SharedSlotsPool shared_slots_ GF_GUARDED_BY(mutex_);
    // Last: its contexts release into the members above when they are destroyed.
    HandleTable handles_ GF_GUARDED_BY(mutex_);
};

}  // namespace gf::device
