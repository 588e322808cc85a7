#include "device/asg_block_pool.h"

#include <cerrno>

#include "base/page.h"
#include "base/scope_guard.h"
#include "device/memory_mapping_table.h"

namespace gf::device {

Result<uint64_t> AsgBlockPool::allocate_locked(uint64_t size, DeviceServices& services) {
    if (size == 0) {
        return fail(EINVAL);
    }
    const uint64_t aligned = GF_TRY(round_up_to_page(size, services.host_page_size()));
    if (aligned > kBlockSize) {
        return fail(EINVAL);  // the emulator aborts here
    }
    for (Block& block : blocks_) {
        if (auto inside = block.area.allocate(aligned)) {
            return block.offset + *inside;
        }
    }
    const uint64_t region = GF_TRY(services.alloc_shared_host_region_locked(kBlockSize));
    ScopeGuard release_region([&] {
        services.device_lock().assert_held();  // the guard runs inside this function
        (void)services.free_shared_host_region_locked(region);
    });
    GF_TRY(services.add_memory_mapping_locked(region, kBlockSize, MemoryMappingTable::kPoolOwner));
    release_region.dismiss();
    Block& block = blocks_.emplace_back(Block{region, AreaAllocator(kBlockSize)});
    return block.offset + *block.area.allocate(aligned);
}

void AsgBlockPool::free_locked(uint64_t offset, DeviceServices& services) {
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
        if (offset < it->offset || offset - it->offset >= kBlockSize) {
            continue;
        }
        const auto range = it->area.allocated_at(offset - it->offset);
        if (!range) {
            return;  // not handed out: contexts only free what they were given
        }
        services.scrub_locked(offset, range->size);
        (void)it->area.free(offset - it->offset);
        if (it->area.free_bytes() == kBlockSize) {
            (void)services.remove_memory_mapping_locked(it->offset, kBlockSize);
            (void)services.free_shared_host_region_locked(it->offset);
            blocks_.erase(it);
        }
        return;
    }
}

std::vector<uint64_t> AsgBlockPool::block_offsets() const {
    std::vector<uint64_t> out;
    out.reserve(blocks_.size());
    for (const Block& block : blocks_) {
        out.push_back(block.offset);
    }
    return out;
}

}  // namespace gf::device
