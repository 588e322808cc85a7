#include "device/context_registry.h"

#include <atomic>
#include <cerrno>
#include <map>
#include <utility>

#include "base/mutex.h"
#include "device/asg_context.h"
#include "device/host_memory_allocator_context.h"
#include "device/shared_slots_context.h"

namespace gf::device {
namespace {

struct ContextKind {
    hw::ContextType type;
    Result<std::unique_ptr<Context>> (*create)(const ContextParams&);
};

// The implemented types. Others fail creation with metadata ~0.
constexpr ContextKind kContextKinds[] = {
    {hw::ContextType::Graphics, &AsgContext::create},
    {hw::ContextType::HostMemoryAllocator, &HostMemoryAllocatorContext::create},
    {hw::ContextType::SharedSlotsHostMemoryAllocator, &SharedSlotsContext::create},
};

struct TestFactories {
    Mutex mutex;
    std::map<uint64_t, ContextFactory> by_type GF_GUARDED_BY(mutex);
    // Lets create pings skip the lock in the (production) case of no test factories.
    std::atomic<bool> any{false};
};

TestFactories& test_factories() {
    static TestFactories factories;
    return factories;
}

}  // namespace

Result<std::unique_ptr<Context>> create_context(uint64_t type, const ContextParams& params) {
    TestFactories& tests = test_factories();
    if (tests.any.load(std::memory_order_acquire)) [[unlikely]] {
        MutexLock lock(tests.mutex);
        if (auto factory = tests.by_type.find(type); factory != tests.by_type.end()) {
            return factory->second(params);
        }
    }
    for (const ContextKind& kind : kContextKinds) {
        if (static_cast<uint64_t>(kind.type) == type) {
            return kind.create(params);
        }
    }
    return fail(ENOTSUP);
}

ScopedContextFactoryForTesting::ScopedContextFactoryForTesting(uint64_t type,
                                                               ContextFactory factory)
    : type_(type) {
    TestFactories& tests = test_factories();
    MutexLock lock(tests.mutex);
    tests.by_type.insert_or_assign(type, std::move(factory));
    tests.any.store(true, std::memory_order_release);
}

ScopedContextFactoryForTesting::~ScopedContextFactoryForTesting() {
    TestFactories& tests = test_factories();
    MutexLock lock(tests.mutex);
    tests.by_type.erase(type_);
    tests.any.store(!tests.by_type.empty(), std::memory_order_release);
}

}  // namespace gf::device
