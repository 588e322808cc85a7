// Which BAR1 ranges are backed by host memory, and for whom (docs/device.md#memory-mappings). Keyed
// by BAR1 offset rather than GPA, so a guest rewriting PHYS_START cannot leave stale entries.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "base/result.h"

namespace gf::device {

class MemoryMappingTable {
  public:
    // Who asked for a mapping: a handle's context, or the shared-slots pool.
    static constexpr uint32_t kPoolOwner = 0;

    struct Mapping {
        uint64_t offset = 0;
        uint64_t size = 0;
        uint32_t owner = kPoolOwner;
        friend bool operator==(const Mapping&, const Mapping&) = default;
    };

    // EINVAL for size 0 or a wrapping range; EEXIST if it overlaps an existing mapping.
    Result<void> add(uint64_t offset, uint64_t size, uint32_t owner);
    // Removes the mapping that starts at offset with exactly that size; ENOENT otherwise.
    Result<void> remove(uint64_t offset, uint64_t size);
    // The mapping containing offset (get_host_ptr's range lookup).
    std::optional<Mapping> find(uint64_t offset) const;
    // True if [offset, offset + size) lies inside one mapping.
    bool covers(uint64_t offset, uint64_t size) const;
    // Mappings that start inside [offset, offset + size), in offset order.
    std::vector<Mapping> starting_within(uint64_t offset, uint64_t size) const;

    size_t count() const { return by_offset_.size(); }
    uint64_t backed_bytes() const { return backed_bytes_; }
    void clear();

  private:
    struct Entry {
        uint64_t size;
        uint32_t owner;
    };
    std::map<uint64_t, Entry> by_offset_;  // non-overlapping
    uint64_t backed_bytes_ = 0;
};

}  // namespace gf::device
