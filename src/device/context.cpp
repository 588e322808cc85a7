#include "device/context.h"

#include <cstdlib>

namespace gf::device {

Context::~Context() = default;

Result<void> Context::start_locked() {
    return {};
}

void Context::on_block_deallocated_locked(uint64_t) {}

std::map<uint64_t, uint64_t> Context::allocations_locked() const {
    return {};
}

void Context::stop_locked() {}

void Context::release_locked() {}

bool Context::wait_stopped(std::chrono::steady_clock::time_point) {
    return true;
}

void Context::abandon() {}

void assume_device_lock_held(const Context& context, const DeviceServices& services) {
    // Every context is made with its device's services (ContextParams), so this never fires.
    if (&context.device_lock() != &services.device_lock()) {
        std::abort();
    }
}

}  // namespace gf::device
