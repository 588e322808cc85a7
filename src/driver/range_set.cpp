#include "driver/range_set.h"

#include <iterator>

namespace gf::driver {

namespace {
// Last byte of a non-empty range (inclusive, so a range ending at 2^64 has
// one), saturated for ranges reaching past the address space.
uint64_t last_of(uint64_t offset, uint64_t size) {
    uint64_t last;
    return __builtin_add_overflow(offset, size - 1, &last) ? UINT64_MAX : last;
}
}  // namespace

std::optional<uint64_t> RangeSet::find(uint64_t offset) const {
    auto it = ranges_.find(offset);
    if (it == ranges_.end()) {
        return std::nullopt;
    }
    return it->second;
}

bool RangeSet::overlaps(uint64_t offset, uint64_t size) const {
    if (size == 0) {
        return false;
    }
    // The first range starting at or after `offset` overlaps if it starts
    // before our end (this catches a new range containing an old one).
    auto next = ranges_.lower_bound(offset);
    if (next != ranges_.end() && next->first <= last_of(offset, size)) {
        return true;
    }
    // The range before it overlaps if it reaches past our start.
    if (next != ranges_.begin()) {
        auto previous = std::prev(next);
        if (last_of(previous->first, previous->second) >= offset) {
            return true;
        }
    }
    return false;
}

bool RangeSet::insert(uint64_t offset, uint64_t size) {
    if (size == 0 || overlaps(offset, size)) {
        return false;
    }
    ranges_.emplace(offset, size);
    return true;
}

std::optional<uint64_t> RangeSet::erase(uint64_t offset) {
    auto it = ranges_.find(offset);
    if (it == ranges_.end()) {
        return std::nullopt;
    }
    const uint64_t size = it->second;
    ranges_.erase(it);
    return size;
}

}  // namespace gf::driver
