// Which context types the device implements: the table from type number to factory (data, not
// an if chain), and a hook through which tests add types of their own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "base/result.h"
#include "device/context.h"

namespace gf::device {

using ContextFactory = std::function<Result<std::unique_ptr<Context>>(const ContextParams&)>;

// Builds the context for a create ping; ENOTSUP for types this device does not implement.
Result<std::unique_ptr<Context>> create_context(uint64_t type, const ContextParams& params);

// Tests only: while it lives, create pings of `type` build their context with `factory`
// instead of the table. One per type at a time; for every device in the process.
class ScopedContextFactoryForTesting {
  public:
    ScopedContextFactoryForTesting(uint64_t type, ContextFactory factory);
    ~ScopedContextFactoryForTesting();
    ScopedContextFactoryForTesting(const ScopedContextFactoryForTesting&) = delete;
    ScopedContextFactoryForTesting& operator=(const ScopedContextFactoryForTesting&) = delete;

  private:
    uint64_t type_;
};

}  // namespace gf::device
