// The host-owned 16 MiB blocks behind ASG ring storage and transfer buffers (spec asg.md §3.5,
// docs/contexts.md#asg-memory): each block is a host region of BAR1 backed in full, and is
// sub-allocated at page granularity with the BAR1 allocator's policy (best fit, carved from
// the high end), so a block's first allocation sits at its top. Allocation tries the blocks
// in the order they were made, then makes one; a block is destroyed as soon as it is empty.
// The device keeps one pool for rings and one for buffers, under its lock.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "device/area_allocator.h"
#include "device/device_services.h"

namespace gf::device {

class AsgBlockPool {
  public:
    static constexpr uint64_t kBlockSize = 16ull << 20;

    // `size` bytes (rounded up to host pages; EINVAL for 0 or more than a block). Returns the
    // BAR1 offset. The memory reads as zero.
    Result<uint64_t> allocate_locked(uint64_t size, DeviceServices& services)
        GF_REQUIRES(services.device_lock());
    // Gives back what allocate_locked returned at `offset` (scrubbed); an empty block goes.
    void free_locked(uint64_t offset, DeviceServices& services) GF_REQUIRES(services.device_lock());
    // Forgets every block without releasing it: for device reset, which drops all regions.
    void clear() { blocks_.clear(); }

    size_t block_count() const { return blocks_.size(); }
    // BAR1 offsets of the blocks, in the order they were made.
    std::vector<uint64_t> block_offsets() const;

  private:
    struct Block {
        uint64_t offset;
        AreaAllocator area;  // block-relative
    };
    std::vector<Block> blocks_;  // creation order
};

// Both pools, as the device keeps them.
struct AsgPools {
    AsgBlockPool rings;
    AsgBlockPool buffers;
    void clear() {
        rings.clear();
        buffers.clear();
    }
    size_t block_count() const { return rings.block_count() + buffers.block_count(); }
};

}  // namespace gf::device
