#include "driver/range_set.h"

#include "base/interval_map.h"

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
    // A held range containing our first byte overlaps...
    if (find_containing(ranges_, offset) != ranges_.end()) {
        return true;
    }
    // ...and so does the first one starting after it, if it starts before our end (this
    // catches a new range containing an old one).
    auto next = ranges_.upper_bound(offset);
    return next != ranges_.end() && next->first <= last_of(offset, size);
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
