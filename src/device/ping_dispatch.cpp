#include "device/ping_dispatch.h"

#include <cerrno>
#include <utility>

#include "device/context_registry.h"
#include "device/ping_info.h"
#include "device/registers.h"

namespace gf::device {

uint32_t dispatch_ping(uint32_t handle, HandleTable& handles, GuestMemory& guest,
                       DeviceServices& services, FaultInjector& faults) {
    HandleEntry* entry = handles.find(handle);
    if (entry == nullptr || !entry->ping_info_gpa) {
        return EINVAL;  // unknown handle, or no TELL_PING_INFO_ADDR yet
    }
    const uint64_t gpa = *entry->ping_info_gpa;
    // Copy the struct in and out: the guest may change its page while the context runs.
    PingInfo::Bytes bytes;
    if (auto read = guest.read(gpa, bytes); !read) {
        return static_cast<uint32_t>(read.error().value());
    }
    PingInfo info = PingInfo::decode(bytes);
    if (entry->context) {
        assume_device_lock_held(*entry->context, services);
        entry->context->perform_locked(info);
    } else {
        // The create ping: metadata is the type. phys_addr may be garbage (set_subdevice_type
        // leaves it uninitialised), so no context trusts it.
        auto context = faults.fires_for(DeviceFault::kContextRefused, info.metadata)
                           ? fail(EPROTONOSUPPORT)
                           : create_context(info.metadata, ContextParams{handle, services});
        if (context) {
            assume_device_lock_held(**context, services);
            if (auto started = (*context)->start_locked(); started) {
                entry->context = std::move(*context);
            } else {
                context = fail(started.error());  // never started: nothing to stop or release
            }
        }
        info.metadata = context ? kPingOk : kAllOnes;
    }
    if (auto write = guest.write(gpa, info.encode()); !write) {
        return static_cast<uint32_t>(write.error().value());
    }
    return 0;
}

}  // namespace gf::device
