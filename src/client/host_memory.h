// The host-memory flows of guest userspace (docs/contexts.md#client-sequences): type 5 backs a
// guest-allocated block with host memory; type 6 takes a slot of a host-owned slab and
// claims it. Either way the client then maps the memory, as the AOSP library's hostMalloc
// does, and gets a pointer it shares with the host.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "base/result.h"
#include "client/session.h"

namespace gf::client {

// One host allocation; Unallocate ping, then DEALLOCATE_BLOCK or UNCLAIM_SHARED
// on destruction. Shares its allocator's file (and so its context), which stays open
// until the allocation is freed, however the allocator is moved or destroyed.
class HostAllocation {
  public:
    HostAllocation(HostAllocation&& other) noexcept;
    HostAllocation& operator=(HostAllocation&& other) noexcept;
    HostAllocation(const HostAllocation&) = delete;
    HostAllocation& operator=(const HostAllocation&) = delete;
    ~HostAllocation() { (void)free(); }

    uint64_t offset() const { return offset_; }  // BAR1-relative
    uint64_t size() const { return size_; }
    // The memory, shared with the host; null for an allocator opened without mapping.
    std::byte* data() const { return mapping_.data(); }
    // Unmap, Unallocate on the host, then give the range back; the first error is reported.
    Result<void> free();

  private:
    friend class HostMemoryAllocator;
    HostAllocation(Session session, uint64_t offset, uint64_t size)
        : session_(std::move(session)), offset_(offset), size_(size) {}
    Session session_;  // shares the file; holds none once freed or moved from
    uint64_t offset_ = 0, size_ = 0;
    std::optional<Block> block_;        // type 5
    std::optional<SharedClaim> claim_;  // type 6
    Mapping mapping_;
};

// Move-only; allocations keep working after a move (they share the file, not the object).
class HostMemoryAllocator {
  public:
    // Opens a session and creates a type 6 (shared slots) or type 5 context. With `map`,
    // every allocation is mapped, and one that cannot be fails with the mmap's errno
    // (ENODEV on an ioctl-only node) and leaves nothing allocated.
    static Result<HostMemoryAllocator> open(const std::string& path, bool shared_slots,
                                            bool map = true);

    Result<HostAllocation> allocate(uint64_t size) const;
    bool shared_slots() const { return shared_slots_; }
    const Session& session() const { return session_; }

  private:
    HostMemoryAllocator(Session session, bool shared_slots, bool map)
        : session_(std::move(session)), shared_slots_(shared_slots), map_(map) {}
    Session session_;
    bool shared_slots_;
    bool map_;
};

}  // namespace gf::client
