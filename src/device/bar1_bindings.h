// Which ranges of BAR1 are the pages of which user's memory file (docs/node.md#mmap).
//
// BAR1 is one reserved window of host address space. By default its pages are the host's
// own (private, zero until written). A range bound to a user's memory file (a sealed memfd
// the user maps, one per open file of the node) is that file's pages at the same offset,
// mapped over the window with MAP_FIXED, so the host and the user see the same memory with
// no copies. Only the bound user's file ever holds those pages: a user mapping any other
// offset of its own file sees its own zeros, never someone else's memory.
//
// Not thread-safe: the device calls it with BAR1's layout lock held exclusively (a host access
// to the window must not run while a range is being replaced).
//
// Retiring a closed file (Bar1Memory::retire_file) goes in steps, each under the lock on its
// own, so that a file with many bindings never holds the lock for all of them: park() each
// binding (the window shows a host copy of its pages, so the window no longer maps the file),
// try the seal with no lock held, then settle() each (sealed: the file is out) or unpark() it
// (not sealed: the file's pages are mapped back).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "base/result.h"

namespace gf::device {

// The user a memory file belongs to, as the platform names it.
using Bar1FileId = uint64_t;

class Bar1Bindings {
  public:
    // `window` is BAR1's reservation; `page` its granularity (every range is whole pages).
    // Every binding is a mapping of the window's: at most `max_bindings` of them keep the
    // process clear of vm.max_map_count, so that taking one out can never fail.
    Bar1Bindings(std::span<std::byte> window, uint64_t page, size_t max_bindings)
        : window_(window), page_(page), max_bindings_(max_bindings) {}

    // Maps [offset, offset + size) of the file `fd` over the window at the same offset.
    // `move_in`: what the host holds there is copied into the file first (a claim);
    // otherwise the range starts zeroed (a fresh block). EINVAL for an unaligned or
    // out-of-window range, EBUSY if any of it is bound already, ENOMEM if the window cannot
    // take another mapping (vm.max_map_count), or the file cannot take the pages.
    Result<void> bind(Bar1FileId file, int fd, uint64_t offset, uint64_t size, bool move_in);
    // Takes `file`'s binding at exactly [offset, offset + size) out of the window: a moved-in
    // range's contents go back to the host, a fresh one's are dropped; either way the file's
    // pages there are punched, so a stale user mapping reads zeros from then on. Anything
    // else is left alone (false).
    bool unbind(Bar1FileId file, uint64_t offset, uint64_t size);
    // Zeroes the users' pages inside [offset, offset + size); the ranges stay bound.
    void punch(uint64_t offset, uint64_t size);
    // Drops every binding overlapping [offset, offset + size), whoever holds it: the device
    // freed the memory underneath (DEALLOCATE, a host region going away).
    void drop_overlapping(uint64_t offset, uint64_t size);
    // The retire steps (above). The offsets of `file`'s bindings.
    std::vector<uint64_t> offsets_of(Bar1FileId file) const;
    // The window at `file`'s binding at `offset` becomes host pages holding a copy of the
    // file's; host accesses go on, to the copy. ENOENT if `file` has no binding there (it
    // went meanwhile), ENOMEM if no copy can be made (nothing changed).
    Result<void> park(Bar1FileId file, uint64_t offset);
    // A parked binding maps the file again. Moved-in memory first carries what the host wrote
    // to the copy meanwhile into the file; a fresh block's file pages are the user's and stay.
    // On failure (the map count, the file's memory) it stays parked and the error is returned:
    // the caller counts it, and the next retire tries again. ENOENT if it went meanwhile.
    Result<void> unpark(Bar1FileId file, uint64_t offset);
    // After the seal held: the parked binding leaves; moved-in memory stays the host's (the
    // copy, with what the user wrote before the seal), a fresh block's window reads zeros.
    void settle(Bar1FileId file, uint64_t offset);
    // Drops every binding of `file` (it is being closed).
    void forget(Bar1FileId file);
    // Drops every binding (device reset).
    void clear();

    // The file bound at `offset`, if any.
    std::optional<Bar1FileId> file_at(uint64_t offset) const;
    size_t count() const { return by_offset_.size(); }
    uint64_t bound_bytes() const { return bound_bytes_; }

  private:
    struct Binding {
        uint64_t size = 0;
        Bar1FileId file = 0;
        bool moved_in = false;
        // Parked (retire in progress): the window holds host pages, not the file's.
        bool parked = false;
        // The file's descriptor, owned by the platform, open for as long as it has bindings
        // (it forgets the file before closing it).
        int fd = -1;
    };
    using Map = std::map<uint64_t, Binding>;

    static uint64_t size_of(const Binding& binding);
    // The first binding that ends after `offset` (the one containing it, else the next).
    template <class M>
    static auto first_ending_after(M& map, uint64_t offset) -> decltype(map.begin());
    // Whether binding `it` (from first_ending_after) starts before [offset, +size) ends.
    template <class M, class It>
    static bool starts_before_end(M& map, It it, uint64_t offset, uint64_t size);
    bool overlaps(uint64_t offset, uint64_t size) const;
    // Takes one binding out; `keep_contents` copies the pages back into the host's memory.
    void take_out(Map::iterator it, bool keep_contents);
    // `file`'s binding at exactly `offset`, or end().
    Map::iterator find_binding(Bar1FileId file, uint64_t offset);
    void erase(Map::iterator it);
    // Host pages filled by `fill` replace whatever the window maps at the range.
    template <class Fill>
    Result<void> replace_with_copy(uint64_t offset, uint64_t size, Fill fill);
    // Host zero pages over the range, or abort: the window must never have a hole.
    void restore_host(uint64_t offset, uint64_t size);
    // Host-private zero pages over [offset, offset + size).
    Result<void> map_host(uint64_t offset, uint64_t size);
    Result<void> map_file(int fd, uint64_t offset, uint64_t size);

    std::span<std::byte> window_;
    uint64_t page_;
    size_t max_bindings_;
    Map by_offset_;
    std::map<Bar1FileId, std::set<uint64_t>> by_file_;  // the offsets each file holds
    uint64_t bound_bytes_ = 0;
};

}  // namespace gf::device
