// Disjoint [offset, offset + size) ranges ordered by offset: a file's blocks
// and its shared claims, found in O(log n).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

namespace gf::driver {

class RangeSet {
  public:
    using Map = std::map<uint64_t, uint64_t>;  // offset -> size

    // The size of the range starting exactly at `offset`.
    std::optional<uint64_t> find(uint64_t offset) const;
    // Whether [offset, offset + size) shares a byte with a held range,
    // containment either way included. A range past 2^64 is cut there.
    bool overlaps(uint64_t offset, uint64_t size) const;
    // False (and nothing inserted) for an empty range or one that overlaps.
    bool insert(uint64_t offset, uint64_t size);
    // The size of the erased range, or nothing if no range starts at `offset`.
    std::optional<uint64_t> erase(uint64_t offset);

    size_t count() const { return ranges_.size(); }
    bool empty() const { return ranges_.empty(); }
    const Map& ranges() const { return ranges_; }
    void clear() { ranges_.clear(); }

  private:
    Map ranges_;
};

}  // namespace gf::driver
