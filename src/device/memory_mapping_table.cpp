#include "device/memory_mapping_table.h"

#include <cerrno>
#include <iterator>

#include "base/checked.h"
#include "base/interval_map.h"

namespace gf::device {

Result<void> MemoryMappingTable::add(uint64_t offset, uint64_t size, uint32_t owner) {
    const uint64_t end = GF_TRY(checked_add(offset, size));
    if (size == 0) {
        return fail(EINVAL);
    }
    auto next = by_offset_.lower_bound(offset);
    if (next != by_offset_.end() && next->first < end) {
        return fail(EEXIST);
    }
    if (next != by_offset_.begin()) {
        auto prev = std::prev(next);
        // prev->first < offset and entries never wrap, so prev's end is exact.
        if (prev->first + prev->second.size > offset) {
            return fail(EEXIST);
        }
    }
    by_offset_.emplace_hint(next, offset, Entry{size, owner});
    backed_bytes_ += size;
    return {};
}

Result<void> MemoryMappingTable::remove(uint64_t offset, uint64_t size) {
    auto it = by_offset_.find(offset);
    if (it == by_offset_.end() || it->second.size != size) {
        return fail(ENOENT);
    }
    backed_bytes_ -= size;
    by_offset_.erase(it);
    return {};
}

std::optional<MemoryMappingTable::Mapping> MemoryMappingTable::find(uint64_t offset) const {
    auto it = find_containing(by_offset_, offset, [](const Entry& entry) { return entry.size; });
    if (it == by_offset_.end()) {
        return std::nullopt;
    }
    return Mapping{it->first, it->second.size, it->second.owner};
}

bool MemoryMappingTable::covers(uint64_t offset, uint64_t size) const {
    auto mapping = find(offset);
    // offset >= mapping->offset, so the subtraction is exact.
    return mapping && range_within(offset - mapping->offset, size, mapping->size);
}

std::vector<MemoryMappingTable::Mapping> MemoryMappingTable::starting_within(uint64_t offset,
                                                                             uint64_t size) const {
    std::vector<Mapping> out;
    for (auto it = by_offset_.lower_bound(offset);
         it != by_offset_.end() && it->first - offset < size; ++it) {
        out.push_back(Mapping{it->first, it->second.size, it->second.owner});
    }
    return out;
}

void MemoryMappingTable::clear() {
    by_offset_.clear();
    backed_bytes_ = 0;
}

}  // namespace gf::device
