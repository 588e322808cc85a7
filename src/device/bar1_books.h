// Who holds which part of BAR1: the area allocator that guest blocks (ALLOCATE_BLOCK) and host
// regions (type-6 slabs) share (docs/allocator.md#placement-policy), and, through Bar1Memory, which
// ranges are backed by host memory (docs/device.md#memory-mappings). The device keeps it under its
// lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "base/result.h"
#include "device/area_allocator.h"
#include "device/bar1_memory.h"
#include "device/device_services.h"
#include "device/fault_injection.h"

namespace gf::device {

class Bar1Books {
  public:
    // `memory` outlives the books.
    Bar1Books(Bar1Memory& memory, uint64_t host_page_size);

    // A guest block of `size` bytes (already ALLOCATE_BLOCK's aligned size); ENOMEM if no room.
    Result<uint64_t> allocate_guest_block(uint64_t size);
    // The size of the guest block that starts exactly at `offset`.
    std::optional<uint64_t> guest_block_at(uint64_t offset) const;
    // Forgets the block at `offset` (the caller removed the mappings inside it first).
    void free_guest_block(uint64_t offset);
    // The guest block that contains BAR1 offset `offset`.
    std::optional<GuestBlock> guest_block_containing(uint64_t offset) const;

    // A page-aligned range for host use, from the same allocator: EINVAL for a size that is
    // not a nonzero page multiple, ENOMEM if `faults` say so or there is no room.
    Result<uint64_t> alloc_host_region(uint64_t size, FaultInjector& faults);
    // EINVAL unless `offset` starts a host region.
    Result<void> free_host_region(uint64_t offset);

    // Backs [offset, offset + size) for `owner`: EINVAL unless page aligned and inside BAR1,
    // ENOMEM if `faults` say so, EEXIST if any of it is backed already.
    Result<void> add_mapping(uint64_t offset, uint64_t size, uint32_t owner, FaultInjector& faults);
    Result<void> remove_mapping(uint64_t offset, uint64_t size);

    // Back to nothing allocated and nothing backed.
    void clear();

    const AreaAllocator& area() const { return area_; }
    const std::map<uint64_t, uint64_t>& guest_blocks() const { return guest_blocks_; }
    uint64_t guest_block_bytes() const { return guest_block_bytes_; }
    const std::map<uint64_t, uint64_t>& host_regions() const { return host_regions_; }
    uint64_t host_region_bytes() const { return host_region_bytes_; }

  private:
    Bar1Memory& memory_;
    const uint64_t host_page_size_;
    AreaAllocator area_;
    std::map<uint64_t, uint64_t> guest_blocks_;  // offset -> size
    uint64_t guest_block_bytes_ = 0;
    std::map<uint64_t, uint64_t> host_regions_;  // offset -> size
    uint64_t host_region_bytes_ = 0;
};

}  // namespace gf::device
