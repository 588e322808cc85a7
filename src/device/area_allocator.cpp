#include "device/area_allocator.h"

#include <cerrno>
#include <iterator>

#include "base/checked.h"
#include "base/interval_map.h"

namespace gf::device {

Result<uint64_t> guest_block_size(uint64_t size, uint64_t page) {
    if (size == 0 || page == 0) {
        return fail(EINVAL);
    }
    const uint64_t two_pages = GF_TRY(checked_mul(page, 2));
    const uint64_t padded = GF_TRY(checked_add(size, two_pages - 2));
    return padded - padded % page;
}

AreaAllocator::AreaAllocator(uint64_t area_size) : area_size_(area_size) {
    reset();
}

void AreaAllocator::reset() {
    ranges_.clear();
    free_by_size_.clear();
    free_bytes_ = 0;
    if (area_size_ > 0) {
        ranges_.emplace(0, Piece{area_size_, true});
        insert_free(0, area_size_);
    }
}

void AreaAllocator::insert_free(uint64_t offset, uint64_t size) {
    free_by_size_.emplace(size, offset);
    free_bytes_ += size;
}

void AreaAllocator::erase_free(uint64_t offset, uint64_t size) {
    free_by_size_.erase({size, offset});
    free_bytes_ -= size;
}

Result<uint64_t> AreaAllocator::allocate(uint64_t size) {
    if (size == 0) {
        return fail(EINVAL);
    }
    auto best = free_by_size_.lower_bound({size, 0});
    if (best == free_by_size_.end()) {
        return fail(ENOMEM);
    }
    const auto [range_size, range_offset] = *best;
    auto range = ranges_.find(range_offset);
    if (range_size == size) {
        // Exact fit: the range changes state, nothing is split.
        erase_free(range_offset, range_size);
        range->second.free = false;
        return range_offset;
    }
    // Split: the free remainder keeps the low part, reusing the set node (no allocation).
    auto node = free_by_size_.extract(best);
    node.value().first = range_size - size;
    free_by_size_.insert(std::move(node));
    free_bytes_ -= size;
    range->second.size = range_size - size;
    // range_offset + range_size <= area_size, so the sum cannot wrap.
    const uint64_t offset = range_offset + range_size - size;
    ranges_.emplace_hint(std::next(range), offset, Piece{size, false});
    return offset;
}

Result<void> AreaAllocator::free(uint64_t offset) {
    auto range = ranges_.find(offset);
    if (range == ranges_.end() || range->second.free) {
        return fail(EINVAL);
    }
    uint64_t start = offset;
    uint64_t size = range->second.size;
    // Merge with the following range if free: it disappears into this one.
    if (auto next = std::next(range); next != ranges_.end() && next->second.free) {
        erase_free(next->first, next->second.size);
        size += next->second.size;
        ranges_.erase(next);
    }
    // Merge into the preceding range if free: this one disappears.
    if (range != ranges_.begin()) {
        if (auto prev = std::prev(range); prev->second.free) {
            erase_free(prev->first, prev->second.size);
            start = prev->first;
            size += prev->second.size;
            ranges_.erase(range);
            range = prev;
        }
    }
    range->second = Piece{size, true};
    insert_free(start, size);
    return {};
}

std::optional<AreaAllocator::Range> AreaAllocator::allocated_at(uint64_t offset) const {
    auto range = ranges_.find(offset);
    if (range == ranges_.end() || range->second.free) {
        return std::nullopt;
    }
    return Range{range->first, range->second.size, false};
}

std::optional<AreaAllocator::Range> AreaAllocator::range_containing(uint64_t offset) const {
    auto range = find_containing(ranges_, offset, [](const Piece& piece) { return piece.size; });
    if (range == ranges_.end()) {
        return std::nullopt;
    }
    return Range{range->first, range->second.size, range->second.free};
}

std::vector<AreaAllocator::Range> AreaAllocator::ranges() const {
    std::vector<Range> out;
    out.reserve(ranges_.size());
    for (const auto& [offset, piece] : ranges_) {
        out.push_back(Range{offset, piece.size, piece.free});
    }
    return out;
}

}  // namespace gf::device
