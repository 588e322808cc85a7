// The device-wide pool behind type-6 contexts (docs/contexts.md#shared-slots): 64 MiB slabs of
// BAR1, each a host region backed by host memory, sub-allocated from their low end with best fit.
// The device keeps it under its lock; the `_locked` methods require that lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "base/result.h"
#include "device/device_services.h"

namespace gf::device {

class SharedSlotsPool {
  public:
    static constexpr uint64_t kSlabSize = 64ull << 20;

    // `size` bytes (a nonzero page multiple) from the first slab, in BAR1 order, that has
    // room; otherwise from a new slab of max(size, 64 MiB). Returns the BAR1 offset.
    Result<uint64_t> allocate_locked(uint64_t size, DeviceServices& services)
        GF_REQUIRES(services.device_lock());
    // Gives back a piece handed out by allocate_locked (its pages are scrubbed).
    void free_locked(uint64_t offset, uint64_t size, DeviceServices& services)
        GF_REQUIRES(services.device_lock());
    // Keeps the lowest empty slab and destroys every other empty one (the emulator's GC).
    void collect_empty_slabs_locked(DeviceServices& services) GF_REQUIRES(services.device_lock());
    // Forgets every slab without releasing it: for device reset, which drops all regions.
    void clear() { slabs_.clear(); }

    // A slab as seen from outside (the device's books): its BAR1 range and its free pieces.
    struct SlabView {
        uint64_t offset = 0;
        uint64_t size = 0;
        std::map<uint64_t, uint64_t> free_pieces;  // BAR1 offset -> size
    };
    std::vector<SlabView> slabs() const;

    size_t slab_count() const { return slabs_.size(); }
    uint64_t slab_bytes() const;

  private:
    struct Slab {
        uint64_t size = 0;
        uint64_t free_bytes = 0;
        std::map<uint64_t, uint64_t> free_by_offset;           // BAR1 offset -> size
        std::set<std::pair<uint64_t, uint64_t>> free_by_size;  // (size, BAR1 offset)

        bool empty() const { return free_bytes == size; }
        std::optional<uint64_t> take(uint64_t size);
        void give_back(uint64_t offset, uint64_t size);
    };

    std::map<uint64_t, Slab> slabs_;  // BAR1 offset of the slab -> slab
};

}  // namespace gf::device
