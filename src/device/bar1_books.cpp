#include "device/bar1_books.h"

#include <cerrno>

#include "base/checked.h"
#include "base/interval_map.h"

namespace gf::device {

Bar1Books::Bar1Books(Bar1Memory& memory, uint64_t host_page_size)
    : memory_(memory), host_page_size_(host_page_size), area_(memory.size()) {}

Result<uint64_t> Bar1Books::allocate_guest_block(uint64_t size) {
    const uint64_t offset = GF_TRY(area_.allocate(size));
    guest_blocks_.emplace(offset, size);
    guest_block_bytes_ += size;
    return offset;
}

std::optional<uint64_t> Bar1Books::guest_block_at(uint64_t offset) const {
    auto block = guest_blocks_.find(offset);
    if (block == guest_blocks_.end()) {
        return std::nullopt;
    }
    return block->second;
}

void Bar1Books::free_guest_block(uint64_t offset) {
    auto block = guest_blocks_.find(offset);
    if (block == guest_blocks_.end()) {
        return;
    }
    // Whoever had the block mapped keeps only zeros of its own from now on, and whatever
    // was written into the window (a guest's stores through the bus) is gone.
    (void)memory_.zero(offset, block->second);  // inside the window: the allocator's range
    (void)area_.free(offset);                   // cannot fail: guest_blocks_ mirrors the allocator
    guest_block_bytes_ -= block->second;
    guest_blocks_.erase(block);
}

std::optional<GuestBlock> Bar1Books::guest_block_containing(uint64_t offset) const {
    auto block = find_containing(guest_blocks_, offset);
    if (block == guest_blocks_.end()) {
        return std::nullopt;
    }
    return GuestBlock{block->first, block->second};
}

Result<uint64_t> Bar1Books::alloc_host_region(uint64_t size, FaultInjector& faults) {
    if (size == 0 || size % host_page_size_ != 0) {
        return fail(EINVAL);
    }
    if (faults.fires(DeviceFault::kHostMemory)) {
        return fail(ENOMEM);
    }
    const uint64_t offset = GF_TRY(area_.allocate(size));
    host_regions_.emplace(offset, size);
    host_region_bytes_ += size;
    return offset;
}

Result<void> Bar1Books::free_host_region(uint64_t offset) {
    auto region = host_regions_.find(offset);
    if (region == host_regions_.end()) {
        return fail(EINVAL);
    }
    memory_.drop_bound(offset, region->second);
    (void)area_.free(offset);  // cannot fail: host_regions_ mirrors the allocator
    host_region_bytes_ -= region->second;
    host_regions_.erase(region);
    return {};
}

Result<void> Bar1Books::add_mapping(uint64_t offset, uint64_t size, uint32_t owner,
                                    FaultInjector& faults) {
    if (!range_within(offset, size, memory_.size()) || offset % host_page_size_ != 0 ||
        size % host_page_size_ != 0) {
        return fail(EINVAL);
    }
    if (faults.fires(DeviceFault::kHostMemory)) {
        return fail(ENOMEM);
    }
    return memory_.map(offset, size, owner);
}

Result<void> Bar1Books::remove_mapping(uint64_t offset, uint64_t size) {
    return memory_.unmap(offset, size);
}

void Bar1Books::clear() {
    memory_.clear();
    guest_blocks_.clear();
    guest_block_bytes_ = 0;
    host_regions_.clear();
    host_region_bytes_ = 0;
    area_.reset();
}

}  // namespace gf::device
