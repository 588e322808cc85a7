#include "device/handle_table.h"

#include <cerrno>
#include <utility>

namespace gf::device {

Result<uint32_t> HandleTable::generate() {
    constexpr uint64_t kValidHandles = 0xFFFFFFFEull;
    if (entries_.size() >= kValidHandles) {
        return fail(ENOSPC);
    }
    // With fewer than kValidHandles live, one of the next size() + 1 candidates is free.
    for (;;) {
        const uint32_t candidate = next_;
        ++next_;
        if (!valid(next_)) {
            next_ = 1;  // wrap past 0xFFFFFFFF and 0
        }
        if (!entries_.contains(candidate)) {
            entries_.emplace(candidate, HandleEntry{});
            return candidate;
        }
    }
}

HandleEntry* HandleTable::find(uint32_t handle) {
    auto it = entries_.find(handle);
    return it == entries_.end() ? nullptr : &it->second;
}

bool HandleTable::destroy(uint32_t handle) {
    auto node = entries_.extract(handle);
    // The context dies here, after the table no longer lists the handle.
    return !node.empty();
}

void HandleTable::clear() {
    // Destroy contexts one at a time, each after its entry left the table.
    while (!entries_.empty()) {
        entries_.extract(entries_.begin());
    }
    next_ = 1;
}

}  // namespace gf::device
