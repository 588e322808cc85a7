// The BAR1 area allocator: hands out ranges of [0, area_size) with the emulator's placement
// policy (docs/allocator.md#placement-policy), in O(log n) per operation instead of the emulator's
// array scan.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "base/result.h"

namespace gf::device {

class AreaAllocator {
  public:
    // One contiguous piece of the area; the pieces tile [0, area_size) in offset order.
    struct Range {
        uint64_t offset = 0;
        uint64_t size = 0;
        bool free = false;
        friend bool operator==(const Range&, const Range&) = default;
    };

    // An area of area_size bytes, all free (an empty area when area_size is 0).
    explicit AreaAllocator(uint64_t area_size);

    // Best fit; among equal fits the lowest offset; carved from the chosen range's high end.
    // EINVAL for size 0, ENOMEM when no free range is large enough.
    Result<uint64_t> allocate(uint64_t size);
    // `offset` must be the start of an allocated range (else EINVAL); merges with free neighbours.
    Result<void> free(uint64_t offset);

    // The allocated range that starts exactly at `offset`.
    std::optional<Range> allocated_at(uint64_t offset) const;
    // The range (free or allocated) that contains `offset`.
    std::optional<Range> range_containing(uint64_t offset) const;

    uint64_t area_size() const { return area_size_; }
    uint64_t free_bytes() const { return free_bytes_; }
    size_t range_count() const { return ranges_.size(); }
    size_t free_range_count() const { return free_by_size_.size(); }
    // Every range in offset order (for tests and diagnostics; O(n)).
    std::vector<Range> ranges() const;

    // Back to one free range covering the whole area.
    void reset();

  private:
    struct Piece {
        uint64_t size;
        bool free;
    };
    using RangeMap = std::map<uint64_t, Piece>;  // offset -> piece, all ranges

    void insert_free(uint64_t offset, uint64_t size);
    void erase_free(uint64_t offset, uint64_t size);

    uint64_t area_size_;
    uint64_t free_bytes_ = 0;
    RangeMap ranges_;
    // (size, offset) of every free range: lower_bound({n, 0}) is the best fit, lowest offset.
    std::set<std::pair<uint64_t, uint64_t>> free_by_size_;
};

// ALLOCATE_BLOCK's size rule (docs/allocator.md#block-sizes):
// floor((size + 2*page - 2) / page) * page, enough whole pages for `size` bytes starting
// anywhere in a page, so a page multiple gets a spare page. EINVAL for size 0 or page 0,
// EOVERFLOW where the formula would wrap.
Result<uint64_t> guest_block_size(uint64_t size, uint64_t page);

}  // namespace gf::device
