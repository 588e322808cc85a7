// What contexts may ask of the device: the emulator's "hardware functions"
// (docs/device.md#services-for-contexts) plus the memory mapping table
// (docs/device.md#memory-mappings). The device calls into contexts only with its
// lock held, and every `_locked` method here requires that lock, device_lock(): the compiler
// checks that contexts call them only from their own `_locked` methods.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "base/mutex.h"
#include "base/result.h"
#include "device/device_config.h"

namespace gf::device {

class Bar1Memory;
class SharedSlotsPool;
struct AsgPools;

// A range of BAR1 the guest reserved with ALLOCATE_BLOCK.
struct GuestBlock {
    uint64_t offset = 0;
    uint64_t size = 0;
};

class DeviceServices {
  public:
    virtual ~DeviceServices();
    DeviceServices(const DeviceServices&) = delete;
    DeviceServices& operator=(const DeviceServices&) = delete;

    // The device's lock, the capability every `_locked` method requires.
    Mutex& device_lock() const GF_RETURN_CAPABILITY(device_mutex_) { return device_mutex_; }

    virtual uint64_t bar1_size() const = 0;
    // Granularity of host memory behind BAR1 (type 5/6 rounding, host regions).
    virtual uint64_t host_page_size() const = 0;
    // BAR1's guest-physical base: PHYS_START if the guest wrote one, else the VMM's placement.
    virtual uint64_t phys_start_locked() const GF_REQUIRES(device_lock()) = 0;

    // BAR1 offset of the guest-physical range [gpa, gpa + size); EFAULT unless it lies wholly
    // inside BAR1. Guest-supplied addresses pass through here before anything trusts them.
    Result<uint64_t> bar1_offset_locked(uint64_t gpa, uint64_t size) const
        GF_REQUIRES(device_lock());

    // The guest block that contains BAR1 offset `offset`.
    virtual std::optional<GuestBlock> guest_block_containing_locked(uint64_t offset) const
        GF_REQUIRES(device_lock()) = 0;

    // A page-aligned BAR1 range for host use, from the allocator the guest's blocks use.
    virtual Result<uint64_t> alloc_shared_host_region_locked(uint64_t size)
        GF_REQUIRES(device_lock()) = 0;
    virtual Result<void> free_shared_host_region_locked(uint64_t offset)
        GF_REQUIRES(device_lock()) = 0;

    // Backs [offset, offset + size) of BAR1 with host memory on behalf of `owner` (a handle,
    // or MemoryMappingTable::kPoolOwner); EEXIST if any of it is backed already.
    virtual Result<void> add_memory_mapping_locked(uint64_t offset, uint64_t size, uint32_t owner)
        GF_REQUIRES(device_lock()) = 0;
    // Unbacks a mapping added with exactly these bounds and gives its pages back.
    virtual Result<void> remove_memory_mapping_locked(uint64_t offset, uint64_t size)
        GF_REQUIRES(device_lock()) = 0;
    // Zeroes (and un-residents) page-aligned backed memory that changes hands.
    virtual void scrub_locked(uint64_t offset, uint64_t size) GF_REQUIRES(device_lock()) = 0;

    // The device-wide pool behind type-6 contexts.
    virtual SharedSlotsPool& shared_slots_pool_locked() GF_REQUIRES(device_lock()) = 0;
    // The device-wide pools behind ASG rings and buffers (asg_block_pool.h).
    virtual AsgPools& asg_pools_locked() GF_REQUIRES(device_lock()) = 0;

    // The device's configuration (fixed at creation; no lock).
    virtual const DeviceConfig& config() const = 0;
    // Protocol errors of ASG guests (DeviceStats::asg_protocol_errors): counted by contexts'
    // threads without any lock.
    virtual std::atomic<uint64_t>& asg_protocol_errors() = 0;
    // The bytes they hand to sinks and write back as replies (DeviceStats::asg_bytes_in and
    // asg_bytes_out), counted the same way.
    virtual std::atomic<uint64_t>& asg_bytes_in() = 0;
    virtual std::atomic<uint64_t>& asg_bytes_out() = 0;
    // Reply bytes a sink wrote that its context's reply queue could not take
    // (DeviceStats::asg_reply_refused).
    virtual std::atomic<uint64_t>& asg_reply_refused() = 0;

    // BAR1's memory, for a context's own thread (through a Bar1Access): it has its own lock
    // and needs no device lock.
    virtual Bar1Memory& bar1_memory() = 0;

  protected:
    DeviceServices() = default;

    // The device guards all its state with this one lock.
    mutable Mutex device_mutex_;
};

}  // namespace gf::device
