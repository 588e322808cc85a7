// PING: a handle's ping page goes to its context, or creates it (docs/device.md#ping-page,
// docs/contexts.md#creating-a-context).
#pragma once

#include <cstdint>

#include "base/mutex.h"
#include "device/device_services.h"
#include "device/fault_injection.h"
#include "device/guest_memory.h"
#include "device/handle_table.h"

namespace gf::device {

// Runs PING(handle): reads the ping page from guest memory, creates the context (metadata =
// type) or gives it the ping, and writes the page back. 0, or why the ping was refused
// (nothing ran, the page was left alone). A create ping that `faults` refuses answers ~0.
uint32_t dispatch_ping(uint32_t handle, HandleTable& handles, GuestMemory& guest,
                       DeviceServices& services, FaultInjector& faults)
    GF_REQUIRES(services.device_lock());

}  // namespace gf::device
