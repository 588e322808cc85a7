// Test-only access to the device's BAR1 memory as a span (no production API hands one out:
// a span outlives any lock, and a concurrent layout change makes it dangle). Tests that own
// every change to the layout may hold such a span; everything else uses the guarded copies
// (bus_read_bar1, read_bar1, Bar1Access).
#pragma once

#include <cstdint>
#include <span>

#include "base/mutex.h"
#include "base/result.h"
#include "device/address_space_device.h"

namespace gf::device::testing {

struct DeviceTestAccess {
    // The host's view of backed BAR1 memory at guest-physical [gpa, gpa + size) (what
    // get_host_ptr gives); EFAULT unless one mapping covers all of it. Valid until that
    // mapping is removed, which the test must not let happen while it holds the span.
    static Result<std::span<std::byte>> host_memory(const AddressSpaceDevice& device, uint64_t gpa,
                                                    uint64_t size) {
        uint64_t offset = 0;
        {
            MutexLock lock(device.device_mutex_);
            offset = GF_TRY(device.bar1_offset_locked(gpa, size));
        }
        ReaderLock lock(device.bar1_->layout_lock());
        return device.bar1_->backed_view_locked(offset, size);
    }
};

inline Result<std::span<std::byte>> host_memory(const AddressSpaceDevice& device, uint64_t gpa,
                                                uint64_t size) {
    return DeviceTestAccess::host_memory(device, gpa, size);
}

}  // namespace gf::device::testing
