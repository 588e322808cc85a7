// BAR1's host backing: one sparse reservation as large as the BAR, and its layout: which
// ranges are backed by host memory, and for whom (the memory mapping table,
// docs/device.md#memory-mappings). It is address space, not RAM: a page costs memory only once
// touched, and released ranges go back to the kernel.
//
// Locking: the layout has its own reader/writer lock, so that a context's own thread can
// reach the memory (Bar1Access) without the device lock. The device changes the layout with
// that lock held exclusively, always after its own lock (device lock, then layout lock); an
// access holds it shared for no longer than the access. Nothing that holds the layout lock
// ever waits for the device lock.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "device/bar1_bindings.h"
#include "device/memory_mapping_table.h"

namespace gf::device {

class Bar1Memory {
  public:
    // A zero-filled, lazily backed window of size bytes, nothing backed; ENOMEM if it cannot
    // be reserved. At most `max_bindings` ranges can be bound to users' files at once.
    static Result<std::unique_ptr<Bar1Memory>> create(uint64_t size, size_t max_bindings);
    Bar1Memory(const Bar1Memory&) = delete;
    Bar1Memory& operator=(const Bar1Memory&) = delete;

    uint64_t size() const { return window_.length(); }
    SharedMutex& layout_lock() const GF_RETURN_CAPABILITY(layout_lock_) { return layout_lock_; }

    // Layout changes.
    // Backs [offset, offset + size) on behalf of `owner`; EINVAL for size 0 or a wrapping
    // range, EEXIST if any of it is backed already.
    Result<void> map(uint64_t offset, uint64_t size, uint32_t owner) GF_EXCLUDES(layout_lock_);
    // Unbacks the mapping added with exactly these bounds (else ENOENT); its pages go back to
    // the kernel and read as zero for whoever is backed there next.
    Result<void> unmap(uint64_t offset, uint64_t size) GF_EXCLUDES(layout_lock_);
    // Zeroes (and un-residents) page-aligned memory that changes hands; EINVAL if unaligned or
    // outside the window.
    Result<void> scrub(uint64_t offset, uint64_t size) GF_EXCLUDES(layout_lock_);
    // Zeroes [offset, offset + size) for whoever gets it next, at any alignment (a guest
    // block that ends): users' files bound there are taken out first. EINVAL outside the
    // window.
    Result<void> zero(uint64_t offset, uint64_t size) GF_EXCLUDES(layout_lock_);
    // Unbacks everything, takes every user's file out and zeroes the whole window (reset).
    void clear() GF_EXCLUDES(layout_lock_);

    // Users' memory files (Bar1Bindings): ranges of BAR1 that are the pages of a user's file
    // at the same offset. The device decides what a user may bind; scrub() and clear(), and
    // drop_bound() when memory is freed, take bindings out by themselves.
    Result<void> bind_file(Bar1FileId file, int fd, uint64_t offset, uint64_t size, bool move_in)
        GF_EXCLUDES(layout_lock_);
    void unbind_file(Bar1FileId file, uint64_t offset, uint64_t size) GF_EXCLUDES(layout_lock_);
    void drop_bound(uint64_t offset, uint64_t size) GF_EXCLUDES(layout_lock_);
    // True once no user maps `fd` writably (F_SEAL_WRITE held): everything of `file` is then
    // out of BAR1 and the file can never be written again (only retire a closed file). False
    // if a user still maps it: nothing changed, but for a failure to map a range back, which
    // is counted (remap_failures), logged, and tried again by the next retire. The layout
    // lock is held for a few bindings at a time, never for all of them (Bar1Bindings).
    Result<bool> retire_file(Bar1FileId file, int fd) GF_EXCLUDES(layout_lock_);
    void forget_file(Bar1FileId file) GF_EXCLUDES(layout_lock_);
    size_t bound_count() const GF_EXCLUDES(layout_lock_);

    // The host's view of all of BAR1, backed or not (the node's bar1 file); ENXIO unless the
    // range lies inside the window.
    Result<void> copy_out(uint64_t offset, std::span<std::byte> out) const
        GF_EXCLUDES(layout_lock_);
    Result<void> copy_in(uint64_t offset, std::span<const std::byte> in) GF_EXCLUDES(layout_lock_);

    // Layout queries.
    std::vector<MemoryMappingTable::Mapping> mappings_starting_within(uint64_t offset,
                                                                      uint64_t size) const
        GF_EXCLUDES(layout_lock_);
    size_t mapping_count() const GF_EXCLUDES(layout_lock_);
    uint64_t backed_bytes() const GF_EXCLUDES(layout_lock_);
    // How many retire_file calls tried the seal (files that had bindings), and how many ranges
    // could not be mapped back after a seal failed (each stays on a host copy until a later
    // retire maps it back).
    uint64_t seal_checks() const { return seal_checks_.load(std::memory_order_relaxed); }
    uint64_t remap_failures() const { return remap_failures_.load(std::memory_order_relaxed); }

    // Host view of [offset, offset + size) for a holder of the layout lock; EFAULT unless one
    // mapping covers all of it. Valid while the caller holds the lock, and no longer: there is
    // no unguarded variant (a span that outlives the lock dangles once the layout changes).
    Result<std::span<std::byte>> backed_view_locked(uint64_t offset, uint64_t size) const
        GF_REQUIRES_SHARED(layout_lock_);

  private:
    Bar1Memory(Mapping window, size_t max_bindings)
        : window_(std::move(window)),
          bindings_(std::span(window_.data(), window_.length()),
                    static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)), max_bindings) {}

    // Gives the pages of [offset, offset + size) back to the kernel, users' files' pages there
    // included (they stay bound, and read zero).
    Result<void> release_pages(uint64_t offset, uint64_t size) GF_REQUIRES(layout_lock_);

    // The reservation itself never moves; only what is backed inside it changes.
    const Mapping window_;
    mutable SharedMutex layout_lock_;
    MemoryMappingTable mappings_ GF_GUARDED_BY(layout_lock_);
    Bar1Bindings bindings_ GF_GUARDED_BY(layout_lock_);
    std::atomic<uint64_t> seal_checks_{0};
    std::atomic<uint64_t> remap_failures_{0};
};

}  // namespace gf::device
