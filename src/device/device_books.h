// A consistent copy of the device's books (tests, fuzzing): read-only, taken under the lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "device/area_allocator.h"
#include "device/memory_mapping_table.h"
#include "hw/context_types.h"

namespace gf::device {

struct DeviceBooks {
    struct Handle {
        uint32_t handle = 0;
        std::optional<uint64_t> ping_info_gpa;
        std::optional<hw::ContextType> context;
        // The context's holdings, BAR1 offset -> size: type 5 backed ranges, type 6 pieces.
        std::map<uint64_t, uint64_t> allocations;
    };
    struct Slab {
        uint64_t offset = 0;
        uint64_t size = 0;
        std::map<uint64_t, uint64_t> free_pieces;  // BAR1 offset -> size
    };
    uint64_t bar1_size = 0;
    uint64_t phys_start = 0;                    // what contexts use (PHYS_START or the VMM's)
    std::vector<AreaAllocator::Range> area;     // every range, offset order
    std::map<uint64_t, uint64_t> guest_blocks;  // offset -> size
    std::map<uint64_t, uint64_t> host_regions;  // offset -> size
    std::vector<MemoryMappingTable::Mapping> mappings;
    std::vector<Handle> handles;              // handle order
    std::vector<Slab> slabs;                  // type-6 pool, offset order
    std::map<uint64_t, uint64_t> asg_blocks;  // type-0 ring and buffer blocks: offset -> size
};

}  // namespace gf::device
