// The emulator's placement policy written for clarity, not speed: an ordered vector of
// ranges scanned in full on every call (docs/allocator.md#placement-policy). The differential test
// and the benchmark hold the real AreaAllocator against it.
#pragma once

#include <cerrno>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"
#include "device/area_allocator.h"

namespace gf::device::testing {

class ReferenceAreaAllocator {
  public:
    using Range = AreaAllocator::Range;

    explicit ReferenceAreaAllocator(uint64_t area_size) {
        if (area_size > 0) {
            ranges_.push_back(Range{0, area_size, true});
        }
    }
    // Starts from a given tiling (e.g. copied from a real allocator), so that benchmarks can
    // set up N live blocks in O(N) instead of N quadratic allocations.
    explicit ReferenceAreaAllocator(std::vector<Range> ranges) : ranges_(std::move(ranges)) {}

    Result<uint64_t> allocate(uint64_t size) {
        if (size == 0) {
            return fail(EINVAL);
        }
        // Smallest free range that fits; strict '<' keeps the first (lowest offset) of equals.
        std::optional<size_t> best;
        for (size_t i = 0; i < ranges_.size(); ++i) {
            const Range& r = ranges_[i];
            if (r.free && r.size >= size && (!best || r.size < ranges_[*best].size)) {
                best = i;
            }
        }
        if (!best) {
            return fail(ENOMEM);
        }
        Range& chosen = ranges_[*best];
        if (chosen.size == size) {
            chosen.free = false;
            return chosen.offset;
        }
        // Carve from the high end; the low part stays free.
        chosen.size -= size;
        const Range taken{chosen.offset + chosen.size, size, false};
        ranges_.insert(ranges_.begin() + static_cast<std::ptrdiff_t>(*best) + 1, taken);
        return taken.offset;
    }

    Result<void> free(uint64_t offset) {
        size_t i = 0;
        while (i < ranges_.size() && ranges_[i].offset != offset) {
            ++i;
        }
        if (i == ranges_.size() || ranges_[i].free) {
            return fail(EINVAL);
        }
        ranges_[i].free = true;
        if (i + 1 < ranges_.size() && ranges_[i + 1].free) {
            ranges_[i].size += ranges_[i + 1].size;
            ranges_.erase(ranges_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        }
        if (i > 0 && ranges_[i - 1].free) {
            ranges_[i - 1].size += ranges_[i].size;
            ranges_.erase(ranges_.begin() + static_cast<std::ptrdiff_t>(i));
        }
        return {};
    }

    const std::vector<Range>& ranges() const { return ranges_; }

  private:
    std::vector<Range> ranges_;
};

}  // namespace gf::device::testing
