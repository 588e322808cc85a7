// Lookups in a map of disjoint half-open ranges keyed by their start: the
// "which range contains this offset" question every BAR1 table asks.
#pragma once

#include <cstdint>
#include <iterator>

namespace gf {

// The entry of `ranges` (start -> value, disjoint) whose [start, start + size_of(value))
// contains `offset`, or ranges.end(). Overflow-free: offset >= start is established first.
template <class Map, class SizeOf>
auto find_containing(Map& ranges, uint64_t offset, SizeOf size_of) -> decltype(ranges.begin()) {
    auto after = ranges.upper_bound(offset);
    if (after == ranges.begin()) {
        return ranges.end();
    }
    auto it = std::prev(after);
    if (offset - it->first >= static_cast<uint64_t>(size_of(it->second))) {
        return ranges.end();
    }
    return it;
}

// The same for maps whose value is the range's size.
template <class Map>
auto find_containing(Map& ranges, uint64_t offset) -> decltype(ranges.begin()) {
    return find_containing(ranges, offset, [](uint64_t size) { return size; });
}

}  // namespace gf
