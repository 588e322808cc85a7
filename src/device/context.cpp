#include "device/context.h"

#include <cerrno>

#include "device/host_memory_allocator_context.h"
#include "device/shared_slots_context.h"

namespace gf::device {

Context::~Context() = default;

void Context::on_block_deallocated_locked(uint64_t) {}

std::map<uint64_t, uint64_t> Context::allocations_locked() const {
    return {};
}

namespace {

struct ContextKind {
    hw::ContextType type;
    Result<std::unique_ptr<Context>> (*create)(const ContextParams&);
};

// The implemented types: data, not an if chain. Others fail creation with metadata ~0.
constexpr ContextKind kContextKinds[] = {
    {hw::ContextType::HostMemoryAllocator, &HostMemoryAllocatorContext::create},
    {hw::ContextType::SharedSlotsHostMemoryAllocator, &SharedSlotsContext::create},
};

}  // namespace

Result<std::unique_ptr<Context>> create_context(uint64_t type, const ContextParams& params) {
    for (const ContextKind& kind : kContextKinds) {
        if (static_cast<uint64_t>(kind.type) == type) {
            return kind.create(params);
        }
    }
    return fail(ENOTSUP);
}

}  // namespace gf::device
