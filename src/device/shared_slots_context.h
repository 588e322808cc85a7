// Type 6, SharedSlotsHostMemoryAllocator (docs/contexts.md#shared-slots): pieces of the device-wide
// slab pool; the ping returns the BAR1-relative offset, and only this context may free it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "device/context.h"

namespace gf::device {

class SharedSlotsContext : public Context {
  public:
    enum Command : uint64_t { Allocate = 1, Unallocate = 2, CheckIfSharedSlotsSupported = 3 };

    static Result<std::unique_ptr<Context>> create(const ContextParams& params);

    hw::ContextType type() const override {
        return hw::ContextType::SharedSlotsHostMemoryAllocator;
    }
    void perform_locked(PingInfo& info) override GF_REQUIRES(device_lock());
    std::map<uint64_t, uint64_t> allocations_locked() const override GF_REQUIRES(device_lock()) {
        return allocations_;
    }
    // Returns every piece to the pool (fd close -> DESTROY_HANDLE), then lets the pool drop
    // all but one empty slab.
    void release_locked() override GF_REQUIRES(device_lock());

  private:
    explicit SharedSlotsContext(DeviceServices& services) : Context(services) {}

    Result<void> allocate_locked(PingInfo& info) GF_REQUIRES(device_lock());
    Result<void> unallocate_locked(uint64_t gpa) GF_REQUIRES(device_lock());

    std::map<uint64_t, uint64_t> allocations_ GF_GUARDED_BY(device_lock());  // offset -> size
};

}  // namespace gf::device
