#include "device/shared_slots_pool.h"

#include <algorithm>
#include <cerrno>
#include <iterator>

#include "base/interval_map.h"
#include "base/scope_guard.h"
#include "device/memory_mapping_table.h"

namespace gf::device {

std::optional<uint64_t> SharedSlotsPool::Slab::take(uint64_t want) {
    // True best fit, lowest offset among equal pieces (the emulator's search is not quite).
    auto best = free_by_size.lower_bound({want, 0});
    if (best == free_by_size.end()) {
        return std::nullopt;
    }
    const auto [piece_size, piece_offset] = *best;
    free_by_size.erase(best);
    free_by_offset.erase(piece_offset);
    if (piece_size > want) {
        // The allocation takes the low end; the remainder starts right after it.
        free_by_offset.emplace(piece_offset + want, piece_size - want);
        free_by_size.emplace(piece_size - want, piece_offset + want);
    }
    free_bytes -= want;
    return piece_offset;
}

void SharedSlotsPool::Slab::give_back(uint64_t offset, uint64_t want) {
    uint64_t start = offset;
    uint64_t length = want;
    auto next = free_by_offset.lower_bound(offset);
    if (next != free_by_offset.end() && next->first == offset + want) {
        length += next->second;
        free_by_size.erase({next->second, next->first});
        next = free_by_offset.erase(next);
    }
    if (next != free_by_offset.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second == offset) {
            start = prev->first;
            length += prev->second;
            free_by_size.erase({prev->second, prev->first});
            free_by_offset.erase(prev);
        }
    }
    free_by_offset.emplace(start, length);
    free_by_size.emplace(length, start);
    free_bytes += want;
}

Result<uint64_t> SharedSlotsPool::allocate_locked(uint64_t size, DeviceServices& services) {
    if (size == 0) {
        return fail(EINVAL);
    }
    for (auto& [slab_offset, slab] : slabs_) {
        if (auto offset = slab.take(size)) {
            return *offset;
        }
    }
    const uint64_t slab_size = std::max(size, kSlabSize);
    const uint64_t region = GF_TRY(services.alloc_shared_host_region_locked(slab_size));
    ScopeGuard release_region([&] {
        // The guard fires within this function, which holds the lock; the analysis cannot
        // see into the lambda.
        services.device_lock().assert_held();
        (void)services.free_shared_host_region_locked(region);
    });
    GF_TRY(services.add_memory_mapping_locked(region, slab_size, MemoryMappingTable::kPoolOwner));
    release_region.dismiss();

    Slab slab;
    slab.size = slab_size;
    slab.free_bytes = slab_size;
    slab.free_by_offset.emplace(region, slab_size);
    slab.free_by_size.emplace(slab_size, region);
    auto [it, inserted] = slabs_.emplace(region, std::move(slab));
    return *it->second.take(size);
}

void SharedSlotsPool::free_locked(uint64_t offset, uint64_t size, DeviceServices& services) {
    auto containing = find_containing(slabs_, offset, [](const Slab& slab) { return slab.size; });
    if (containing == slabs_.end()) {
        return;  // not ours: contexts only free what allocate_locked gave them
    }
    Slab& slab = containing->second;
    // Zero the piece before anyone else can be handed it.
    services.scrub_locked(offset, size);
    slab.give_back(offset, size);
}

void SharedSlotsPool::collect_empty_slabs_locked(DeviceServices& services) {
    bool kept_one = false;
    for (auto it = slabs_.begin(); it != slabs_.end();) {
        if (!it->second.empty()) {
            ++it;
        } else if (!kept_one) {
            kept_one = true;
            ++it;
        } else {
            (void)services.remove_memory_mapping_locked(it->first, it->second.size);
            (void)services.free_shared_host_region_locked(it->first);
            it = slabs_.erase(it);
        }
    }
}

std::vector<SharedSlotsPool::SlabView> SharedSlotsPool::slabs() const {
    std::vector<SlabView> out;
    out.reserve(slabs_.size());
    for (const auto& [offset, slab] : slabs_) {
        out.push_back(SlabView{offset, slab.size, slab.free_by_offset});
    }
    return out;
}

uint64_t SharedSlotsPool::slab_bytes() const {
    uint64_t total = 0;
    for (const auto& [offset, slab] : slabs_) {
        total += slab.size;
    }
    return total;
}

}  // namespace gf::device
