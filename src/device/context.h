// A handle's context ("subdevice"): created by the first ping on a handle with
// metadata = type, then given every later ping (spec/device.md §5.3, §7). New types plug in
// here and in the factory table, without touching the register code.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "base/result.h"
#include "device/device_services.h"
#include "device/ping_info.h"
#include "hw/context_types.h"

namespace gf::device {

struct ContextParams {
    uint32_t handle = 0;
    // The device that owns the context; it outlives the context.
    DeviceServices& services;
};

class Context {
  public:
    virtual ~Context();
    virtual hw::ContextType type() const = 0;
    // Runs one ping: the request is in info; results go back into it (metadata, ~0 on failure).
    virtual void perform_locked(PingInfo& info) = 0;
    // The guest deallocated the block under this context's mapping at `offset`: forget it.
    // The device removes the mapping itself.
    virtual void on_block_deallocated_locked(uint64_t offset);
    // What the context holds, BAR1 offset -> size (for the device's books).
    virtual std::map<uint64_t, uint64_t> allocations_locked() const;
};

// Builds the context for a create ping; ENOTSUP for types this device does not implement.
Result<std::unique_ptr<Context>> create_context(uint64_t type, const ContextParams& params);

}  // namespace gf::device
