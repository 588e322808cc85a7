#include "device/device_services.h"

#include <cerrno>

#include "base/checked.h"

namespace gf::device {

DeviceServices::~DeviceServices() = default;

Result<uint64_t> DeviceServices::bar1_offset_locked(uint64_t gpa, uint64_t size) const {
    const uint64_t base = phys_start_locked();
    // gpa >= base first, so the subtraction is exact; range_within checks the end.
    if (gpa < base || !range_within(gpa - base, size, bar1_size())) {
        return fail(EFAULT);
    }
    return gpa - base;
}

}  // namespace gf::device
