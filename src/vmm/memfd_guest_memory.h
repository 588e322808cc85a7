// Guest RAM as QEMU shares it (SYNC_SYSMEM): up to eight memfd regions, each mapped
// MAP_SHARED at its guest-physical address. A later SYNC_SYSMEM replaces the whole set.
// Reads and writes are bounds-checked against the current set and may span adjacent
// regions; a replace() never pulls a mapping from under a running read or write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "device/guest_memory.h"

namespace gf::vmm {

// One region as the peer describes it. The fd is consumed by replace().
struct RamRegion {
    uint64_t gpa = 0;
    uint64_t size = 0;
    int64_t file_offset = 0;
    UniqueFd fd;
};

// A MAP_SHARED view of one region; unmapped by its destructor.
class RegionMapping {
  public:
    // EINVAL for size 0 or a negative offset, EOVERFLOW if gpa + size or offset + size
    // wraps, ENXIO if the range runs past the end of the file (an access there would
    // SIGBUS), EBADF unless the fd is a regular file (a memfd), or mmap's errno.
    static Result<RegionMapping> map(const RamRegion& region);

    uint64_t gpa() const { return gpa_; }
    uint64_t size() const { return size_; }
    uint64_t end() const { return gpa_ + size_; }  // no wrap: checked by map()
    // Guest byte gpa_: the mapping starts at the page holding the file offset.
    std::byte* data() const { return mapping_.data() + misalignment_; }

  private:
    RegionMapping(uint64_t gpa, uint64_t size, Mapping mapping, size_t misalignment)
        : gpa_(gpa), size_(size), mapping_(std::move(mapping)), misalignment_(misalignment) {}

    uint64_t gpa_;
    uint64_t size_;
    Mapping mapping_;
    size_t misalignment_;  // of the file offset within its page
};

class MemfdGuestMemory : public device::GuestMemory {
  public:
    MemfdGuestMemory() = default;
    ~MemfdGuestMemory() override;
    MemfdGuestMemory(const MemfdGuestMemory&) = delete;
    MemfdGuestMemory& operator=(const MemfdGuestMemory&) = delete;

    // Maps every region and makes them the whole of guest RAM; closes their fds either
    // way. On failure the current set stays, and the error says which region (index in
    // `failed_index`) and why; EINVAL also for regions that overlap.
    Result<void> replace(std::vector<RamRegion> regions, size_t* failed_index = nullptr)
        GF_EXCLUDES(mutex_);
    // No RAM at all: every access fails with EFAULT.
    void clear() GF_EXCLUDES(mutex_);

    Result<void> read(uint64_t gpa, std::span<std::byte> out) override GF_EXCLUDES(mutex_);
    Result<void> write(uint64_t gpa, std::span<const std::byte> in) override GF_EXCLUDES(mutex_);

    struct RegionInfo {
        uint64_t gpa;
        uint64_t size;
    };
    std::vector<RegionInfo> regions() const GF_EXCLUDES(mutex_);

  private:
    // Calls f(host pointer, length) for each piece of [gpa, gpa + len) in order, after
    // checking that the current mappings cover all of it; EFAULT (and no call) otherwise.
    template <typename F>
    Result<void> for_each_piece_locked(uint64_t gpa, uint64_t len, F&& f) const GF_REQUIRES(mutex_);

    mutable Mutex mutex_;
    using Mappings = std::map<uint64_t, RegionMapping>;  // gpa -> mapping, disjoint
    Mappings mappings_ GF_GUARDED_BY(mutex_);
};

}  // namespace gf::vmm
