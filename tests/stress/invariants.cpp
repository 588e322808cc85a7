#include "stress/invariants.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "base/checked.h"
#include "device/memory_mapping_table.h"
#include "device/registers.h"

namespace gf::stress {
namespace {

using device::DeviceBooks;
using RangeMap = std::map<uint64_t, uint64_t>;

// Collects violations with a printf-free stream syntax: v.add() << "text " << value.
class Sink {
  public:
    explicit Sink(Violations& out) : out_(out) {}
    // Appends its text when it ends; returned as a prvalue, so never copied or moved.
    class Line {
      public:
        explicit Line(Violations& out) : out_(out) { text_ << std::hex << std::showbase; }
        Line(const Line&) = delete;
        Line& operator=(const Line&) = delete;
        ~Line() { out_.push_back(text_.str()); }
        template <typename T>
        Line& operator<<(const T& value) {
            text_ << value;
            return *this;
        }

      private:
        Violations& out_;
        std::ostringstream text_;
    };
    Line add() { return Line(out_); }

  private:
    Violations& out_;
};

uint64_t sum_sizes(const RangeMap& ranges) {
    uint64_t total = 0;
    for (const auto& [offset, size] : ranges) {
        total += size;
    }
    return total;
}

// Whether sorted, non-empty ranges are pairwise disjoint; names the first overlap.
bool disjoint(const std::vector<std::pair<uint64_t, uint64_t>>& sorted, Sink& sink,
              const char* what) {
    for (size_t i = 0; i < sorted.size(); ++i) {
        if (sorted[i].second == 0 || !checked_add(sorted[i].first, sorted[i].second)) {
            sink.add() << what << ": bad range " << sorted[i].first << "+" << sorted[i].second;
            return false;
        }
        if (i > 0 && sorted[i - 1].first + sorted[i - 1].second > sorted[i].first) {
            sink.add() << what << ": " << sorted[i - 1].first << "+" << sorted[i - 1].second
                       << " overlaps " << sorted[i].first << "+" << sorted[i].second;
            return false;
        }
    }
    return true;
}

bool inside(uint64_t offset, uint64_t size, uint64_t outer_offset, uint64_t outer_size) {
    return offset >= outer_offset && range_within(offset - outer_offset, size, outer_size);
}

void check_area(const DeviceBooks& s, Sink& sink) {
    uint64_t expected = 0;
    bool previous_free = false;
    RangeMap allocated;
    for (const auto& range : s.area) {
        if (range.offset != expected || range.size == 0) {
            sink.add() << "area: range " << range.offset << "+" << range.size
                       << " does not continue at " << expected;
            return;
        }
        if (range.free && previous_free) {
            sink.add() << "area: free range at " << range.offset << " not merged";
        }
        previous_free = range.free;
        if (!range.free) {
            allocated.emplace(range.offset, range.size);
        }
        expected = range.offset + range.size;
    }
    if (expected != s.bar1_size) {
        sink.add() << "area: ranges end at " << expected << ", BAR1 is " << s.bar1_size;
    }
    // Allocated ranges are exactly the guest blocks plus the host regions, no range shared.
    RangeMap owned = s.guest_blocks;
    for (const auto& [offset, size] : s.host_regions) {
        if (!owned.emplace(offset, size).second) {
            sink.add() << "area: " << offset << " is both a guest block and a host region";
        }
    }
    if (owned != allocated) {
        sink.add() << "area: " << allocated.size() << " allocated ranges (" << sum_sizes(allocated)
                   << " bytes) but " << s.guest_blocks.size() << " guest blocks + "
                   << s.host_regions.size() << " host regions (" << sum_sizes(owned) << " bytes)";
    }
}

void check_slabs(const DeviceBooks& s, Sink& sink) {
    // Only the type-6 pool and the ASG pools take host regions: one region per slab or block.
    RangeMap pool_ranges = s.asg_blocks;
    for (const auto& slab : s.slabs) {
        if (!pool_ranges.emplace(slab.offset, slab.size).second) {
            sink.add() << "slab " << slab.offset << " is also an ASG block";
        }
    }
    if (pool_ranges != s.host_regions) {
        sink.add() << "pools: " << s.slabs.size() << " slabs and " << s.asg_blocks.size()
                   << " ASG blocks but " << s.host_regions.size() << " host regions";
    }
    // Every type-6 piece, by slab: with the free pieces they tile their slab exactly.
    std::vector<std::pair<uint64_t, uint64_t>> pieces;
    for (const auto& handle : s.handles) {
        if (handle.context == hw::ContextType::SharedSlotsHostMemoryAllocator) {
            pieces.insert(pieces.end(), handle.allocations.begin(), handle.allocations.end());
        }
    }
    std::ranges::sort(pieces);
    size_t empty_slabs = 0;
    auto piece = pieces.begin();
    for (const auto& slab : s.slabs) {
        std::vector<std::pair<uint64_t, uint64_t>> tiles(slab.free_pieces.begin(),
                                                         slab.free_pieces.end());
        // Free pieces are merged: two never touch.
        for (size_t i = 1; i < tiles.size(); ++i) {
            if (tiles[i - 1].first + tiles[i - 1].second == tiles[i].first) {
                sink.add() << "slab " << slab.offset << ": free pieces at " << tiles[i - 1].first
                           << " and " << tiles[i].first << " not merged";
            }
        }
        while (piece != pieces.end() && piece->first < slab.offset) {
            sink.add() << "type-6 piece " << piece->first << " outside every slab";
            ++piece;
        }
        while (piece != pieces.end() && piece->first - slab.offset < slab.size) {
            tiles.push_back(*piece);
            ++piece;
        }
        std::ranges::sort(tiles);
        uint64_t expected = slab.offset;
        for (const auto& [offset, size] : tiles) {
            if (offset != expected || size == 0) {
                sink.add() << "slab " << slab.offset << ": piece " << offset << "+" << size
                           << " where " << expected << " was expected";
                break;
            }
            expected = offset + size;
        }
        if (expected != slab.offset + slab.size) {
            sink.add() << "slab " << slab.offset << "+" << slab.size << ": pieces end at "
                       << expected;
        }
        if (slab.free_pieces == RangeMap{{slab.offset, slab.size}}) {
            ++empty_slabs;
        }
    }
    for (; piece != pieces.end(); ++piece) {
        sink.add() << "type-6 piece " << piece->first << " outside every slab";
    }
    // The GC keeps at most one empty slab.
    if (empty_slabs > 1) {
        sink.add() << "slabs: " << empty_slabs << " empty slabs kept";
    }
}

void check_mappings(const DeviceBooks& s, Sink& sink) {
    std::vector<std::pair<uint64_t, uint64_t>> sorted;
    for (const auto& m : s.mappings) {
        sorted.emplace_back(m.offset, m.size);
    }
    disjoint(sorted, sink, "mappings");

    std::map<uint32_t, const DeviceBooks::Handle*> handles;
    for (const auto& handle : s.handles) {
        handles.emplace(handle.handle, &handle);
    }
    // Pools back their regions whole: type-6 slabs and ASG blocks.
    RangeMap slab_ranges = s.asg_blocks;
    for (const auto& slab : s.slabs) {
        slab_ranges.emplace(slab.offset, slab.size);
    }
    RangeMap pool_mappings;
    std::map<uint32_t, RangeMap> by_owner;
    for (const auto& m : s.mappings) {
        if (m.owner == device::MemoryMappingTable::kPoolOwner) {
            pool_mappings.emplace(m.offset, m.size);
            continue;
        }
        by_owner[m.owner].emplace(m.offset, m.size);
        auto owner = handles.find(m.owner);
        if (owner == handles.end() ||
            owner->second->context != hw::ContextType::HostMemoryAllocator) {
            sink.add() << "mapping " << m.offset << " owned by " << m.owner
                       << ", not a live type-5 context";
            continue;
        }
        // A type-5 mapping lies inside one guest block.
        auto after = s.guest_blocks.upper_bound(m.offset);
        if (after == s.guest_blocks.begin() ||
            !inside(m.offset, m.size, std::prev(after)->first, std::prev(after)->second)) {
            sink.add() << "mapping " << m.offset << "+" << m.size << " of handle " << m.owner
                       << " outside every guest block";
        }
    }
    if (pool_mappings != slab_ranges) {
        sink.add() << "mappings: " << pool_mappings.size() << " pool mappings for "
                   << slab_ranges.size() << " slabs and ASG blocks";
    }
    // A type-5 context's allocations are exactly its mappings.
    for (const auto& handle : s.handles) {
        if (handle.context != hw::ContextType::HostMemoryAllocator) {
            continue;
        }
        const RangeMap& mapped = by_owner[handle.handle];
        if (mapped != handle.allocations) {
            sink.add() << "handle " << handle.handle << ": " << handle.allocations.size()
                       << " type-5 allocations but " << mapped.size() << " mappings";
        }
    }
}

void check_handles(const DeviceBooks& s, Sink& sink) {
    for (const auto& handle : s.handles) {
        if (handle.handle == 0 || handle.handle == device::kInvalidHandle) {
            sink.add() << "handle " << handle.handle << " should never be issued";
        }
        if (handle.context && *handle.context != hw::ContextType::HostMemoryAllocator &&
            *handle.context != hw::ContextType::SharedSlotsHostMemoryAllocator &&
            *handle.context != hw::ContextType::Graphics) {
            sink.add() << "handle " << handle.handle << ": unexpected context type";
        }
        if (!handle.context && !handle.allocations.empty()) {
            sink.add() << "handle " << handle.handle << ": allocations without a context";
        }
    }
}

}  // namespace

Violations check_device(const DeviceBooks& books) {
    Violations out;
    Sink sink(out);
    check_area(books, sink);
    check_slabs(books, sink);
    check_mappings(books, sink);
    check_handles(books, sink);
    return out;
}

Violations check(pci::emulated::Machine& machine, const driver::Driver& driver,
                 std::span<const std::shared_ptr<driver::File>> files, CheckOptions options) {
    device::AddressSpaceDevice& device = machine.device();
    const DeviceBooks s = device.books();
    Violations out = check_device(s);
    Sink sink(out);

    // The device's counters agree with its books.
    const device::DeviceStats stats = device.stats();
    uint64_t free_bytes = 0;
    for (const auto& range : s.area) {
        free_bytes += range.free ? range.size : 0;
    }
    uint64_t backed = 0;
    for (const auto& m : s.mappings) {
        backed += m.size;
    }
    if (stats.handles != s.handles.size() || stats.guest_blocks != s.guest_blocks.size() ||
        stats.guest_block_bytes != sum_sizes(s.guest_blocks) ||
        stats.host_regions != s.host_regions.size() ||
        stats.host_region_bytes != sum_sizes(s.host_regions) ||
        stats.area_free_bytes != free_bytes || stats.memory_mappings != s.mappings.size() ||
        stats.backed_bytes != backed || stats.shared_slot_slabs != s.slabs.size()) {
        sink.add() << "device stats disagree with its books";
    }

    // Each file's books, and the driver's counters as their sums.
    driver::DriverStats sums;
    std::map<uint32_t, driver::FileBooks> by_handle;
    for (const auto& file : files) {
        driver::FileBooks f = file->books();
        if (!f.live || !f.ping_page_phys) {
            sink.add() << "file with handle " << f.handle << " is held open but not live";
        }
        for (const auto* ranges : {&f.blocks, &f.claims}) {
            for (const auto& [offset, size] : *ranges) {
                if (size == 0 || !range_within(offset, size, s.bar1_size)) {
                    sink.add() << "file " << f.handle << ": range " << offset << "+" << size
                               << " outside BAR1";
                }
            }
            disjoint({ranges->begin(), ranges->end()}, sink, "file ranges");
        }
        sums.open_files += 1;
        sums.blocks += f.blocks.size();
        sums.block_bytes += sum_sizes(f.blocks);
        sums.claims += f.claims.size();
        const uint32_t handle = f.handle;
        // Handles come from a counter that only a device reset restarts (which makes the
        // old files' handles stale, and the check inexact).
        if (!by_handle.emplace(handle, std::move(f)).second && options.exact) {
            sink.add() << "two files share handle " << handle;
        }
    }
    const driver::DriverStats mine = driver.stats();
    if (mine.open_files != sums.open_files || mine.blocks != sums.blocks ||
        mine.block_bytes != sums.block_bytes || mine.claims != sums.claims) {
        sink.add() << "driver stats (" << mine.open_files << " files, " << mine.blocks
                   << " blocks, " << mine.block_bytes << " bytes, " << mine.claims
                   << " claims) differ from its files' sums (" << sums.open_files << ", "
                   << sums.blocks << ", " << sums.block_bytes << ", " << sums.claims << ")";
    }
    if (!options.exact) {
        return out;
    }

    // Exact: every device handle belongs to exactly one live file, with that file's page.
    std::set<uint32_t> device_handles;
    for (const auto& handle : s.handles) {
        device_handles.insert(handle.handle);
        auto file = by_handle.find(handle.handle);
        if (file == by_handle.end()) {
            sink.add() << "device handle " << handle.handle << " belongs to no open file";
        } else if (handle.ping_info_gpa != file->second.ping_page_phys) {
            sink.add() << "handle " << handle.handle << ": device's ping page differs from file's";
        }
    }
    for (const auto& [handle, f] : by_handle) {
        if (!device_handles.contains(handle)) {
            sink.add() << "file handle " << handle << " unknown to the device";
        }
    }
    // The device's blocks are exactly the files' blocks (so no two files share one), and the
    // allocated bytes are those blocks plus the host regions (check_area).
    RangeMap file_blocks;
    for (const auto& [handle, f] : by_handle) {
        for (const auto& [offset, size] : f.blocks) {
            if (!file_blocks.emplace(offset, size).second) {
                sink.add() << "block " << offset << " held by two files";
            }
        }
    }
    // Besides the files' blocks the device holds only those it refused to free at a
    // release (the driver counts them as abandoned).
    for (const auto& [offset, size] : file_blocks) {
        auto held = s.guest_blocks.find(offset);
        if (held == s.guest_blocks.end() || held->second != size) {
            sink.add() << "file block " << offset << "+" << size << " not held by the device";
        }
    }
    if (s.guest_blocks.size() != file_blocks.size() + mine.abandoned_blocks ||
        sum_sizes(s.guest_blocks) != sum_sizes(file_blocks) + mine.abandoned_block_bytes) {
        sink.add() << "device holds " << s.guest_blocks.size() << " guest blocks ("
                   << sum_sizes(s.guest_blocks) << " bytes), files hold " << file_blocks.size()
                   << " (" << sum_sizes(file_blocks) << " bytes), " << mine.abandoned_blocks
                   << " abandoned";
    }
    const device::DeviceStats after = device.stats();
    if (mine.open_files != after.handles ||
        mine.blocks + mine.abandoned_blocks != after.guest_blocks ||
        mine.block_bytes + mine.abandoned_block_bytes != after.guest_block_bytes) {
        sink.add() << "driver stats differ from device stats";
    }
    return out;
}

Violations check_quiescent(pci::emulated::Machine& machine, const driver::Driver& driver,
                           size_t free_dma_pages_at_start, QuiescentOptions options) {
    Violations out = check(machine, driver, {}, CheckOptions{.exact = !options.peer_cleaned_up});
    Sink sink(out);
    const DeviceBooks s = machine.device().books();
    const driver::DriverStats mine = driver.stats();
    for (const auto& handle : s.handles) {
        sink.add() << "handle " << handle.handle << " still live";
    }
    // Only blocks the device refused to free at a release may remain (none after a peer's
    // clean-up, which frees every block).
    const uint64_t abandoned = options.peer_cleaned_up ? 0 : mine.abandoned_blocks;
    const uint64_t abandoned_bytes = options.peer_cleaned_up ? 0 : mine.abandoned_block_bytes;
    if (s.guest_blocks.size() != abandoned || sum_sizes(s.guest_blocks) != abandoned_bytes) {
        sink.add() << s.guest_blocks.size() << " guest blocks still allocated, " << abandoned
                   << " abandoned";
    }
    // At most the one empty slab the pool keeps; all else free.
    uint64_t kept = 0;
    if (s.slabs.size() > 1) {
        sink.add() << s.slabs.size() << " slabs left";
    }
    for (const auto& slab : s.slabs) {
        kept += slab.size;
        if (slab.free_pieces != RangeMap{{slab.offset, slab.size}}) {
            sink.add() << "slab " << slab.offset << " not empty";
        }
    }
    size_t free_ranges = 0;
    uint64_t free_bytes = 0;
    for (const auto& range : s.area) {
        free_ranges += range.free ? 1 : 0;
        free_bytes += range.free ? range.size : 0;
    }
    // One free range, or two around the kept slab (abandoned blocks may cut it further).
    const uint64_t expected_free = s.bar1_size - kept - sum_sizes(s.guest_blocks);
    if (free_bytes != expected_free ||
        (s.guest_blocks.empty() && free_ranges > (kept == 0 ? 1u : 2u))) {
        sink.add() << "area: " << free_ranges << " free ranges of " << free_bytes
                   << " bytes, expected " << expected_free;
    }
    if (s.mappings.size() != s.slabs.size()) {
        sink.add() << s.mappings.size() << " mappings left for " << s.slabs.size() << " slabs";
    }
    if (mine.open_files != 0 || mine.blocks != 0 || mine.block_bytes != 0 || mine.claims != 0) {
        sink.add() << "driver still counts files, blocks or claims";
    }
    if (machine.free_dma_pages() != free_dma_pages_at_start) {
        sink.add() << "ping pages leaked: " << free_dma_pages_at_start - machine.free_dma_pages();
    }
    return out;
}

void clean_up_as_peer(device::AddressSpaceDevice& device) {
    using device::Command;
    using device::Reg;
    const DeviceBooks s = device.books();
    for (const auto& handle : s.handles) {
        device.write32(Reg::HANDLE, handle.handle);
        device.write32(Reg::COMMAND, static_cast<uint32_t>(Command::DESTROY_HANDLE));
    }
    for (const auto& [offset, size] : device.books().guest_blocks) {
        device.write32(Reg::BLOCK_OFFSET_LOW, static_cast<uint32_t>(offset));
        device.write32(Reg::BLOCK_OFFSET_HIGH, static_cast<uint32_t>(offset >> 32));
        device.write32(Reg::COMMAND, static_cast<uint32_t>(Command::DEALLOCATE_BLOCK));
    }
}

std::string describe(const Violations& violations) {
    std::string text;
    for (const auto& line : violations) {
        text += line;
        text += '\n';
    }
    return text;
}

}  // namespace gf::stress
