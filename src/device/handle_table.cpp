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

const HandleEntry* HandleTable::find(uint32_t handle) const {
    auto it = entries_.find(handle);
    return it == entries_.end() ? nullptr : &it->second;
}

std::optional<HandleEntry> HandleTable::remove(uint32_t handle) {
    auto node = entries_.extract(handle);
    if (node.empty()) {
        return std::nullopt;
    }
    return std::move(node.mapped());
}

std::vector<HandleEntry> HandleTable::remove_all() {
    std::vector<HandleEntry> removed;
    removed.reserve(entries_.size());
    while (!entries_.empty()) {
        removed.push_back(std::move(entries_.extract(entries_.begin()).mapped()));
    }
    next_ = 1;
    return removed;
}

}  // namespace gf::device
