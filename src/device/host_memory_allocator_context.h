// Type 5, HostMemoryAllocator (docs/contexts.md#host-memory-allocator): backs a guest-chosen range
// of one of the guest's blocks with host memory. Stricter than the emulator
// (docs/device.md#hardening): the range must be page aligned, inside BAR1 and inside one allocated
// guest block.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "device/context.h"

namespace gf::device {

class HostMemoryAllocatorContext : public Context {
  public:
    enum Command : uint64_t { Allocate = 1, Unallocate = 2 };

    static Result<std::unique_ptr<Context>> create(const ContextParams& params);

    hw::ContextType type() const override { return hw::ContextType::HostMemoryAllocator; }
    void perform_locked(PingInfo& info) override GF_REQUIRES(device_lock());
    void on_block_deallocated_locked(uint64_t offset) override GF_REQUIRES(device_lock());
    std::map<uint64_t, uint64_t> allocations_locked() const override GF_REQUIRES(device_lock()) {
        return allocations_;
    }
    // Unbacks everything this context still holds (fd close -> DESTROY_HANDLE).
    void release_locked() override GF_REQUIRES(device_lock());

  private:
    HostMemoryAllocatorContext(uint32_t handle, DeviceServices& services)
        : Context(services), handle_(handle) {}

    Result<void> allocate_locked(uint64_t gpa, uint64_t size) GF_REQUIRES(device_lock());
    Result<void> unallocate_locked(uint64_t gpa) GF_REQUIRES(device_lock());

    const uint32_t handle_;
    std::map<uint64_t, uint64_t> allocations_ GF_GUARDED_BY(device_lock());  // BAR1 offset -> size
};

}  // namespace gf::device
