// How a context's own thread reaches BAR1 memory: without the device lock, only where BAR1 is
// backed, and never again once the device revoked it (context.h has the rule).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/mutex.h"
#include "base/result.h"
#include "device/bar1_memory.h"

namespace gf::device {

class Bar1Access {
  public:
    explicit Bar1Access(Bar1Memory& memory) : memory_(memory) {}
    Bar1Access(const Bar1Access&) = delete;
    Bar1Access& operator=(const Bar1Access&) = delete;

    // Copies [offset, offset + out.size()) of BAR1 out, or in from `in`. EFAULT unless one
    // mapping backs all of it, ESHUTDOWN once revoked. The guest shares these pages, so the
    // copies are made of atomic accesses, or of one opaque rep movsb when large
    // (copy_from_shared_bulk), and what comes out is untrusted.
    Result<void> read(uint64_t offset, std::span<std::byte> out) const
        GF_EXCLUDES(memory_.layout_lock());
    Result<void> write(uint64_t offset, std::span<const std::byte> in) const
        GF_EXCLUDES(memory_.layout_lock());

    // The aligned 32-bit word at `offset` as one sequentially consistent atomic access (the
    // ring positions and states that guest and host update concurrently; a byte-wise copy
    // could tear them). EINVAL unless `offset` is a multiple of 4.
    Result<uint32_t> load32(uint64_t offset) const GF_EXCLUDES(memory_.layout_lock());
    Result<void> store32(uint64_t offset, uint32_t value) const GF_EXCLUDES(memory_.layout_lock());

    // After this returns no access is in flight and every later one fails. Waits only for
    // accesses in flight (each is short).
    void revoke() GF_EXCLUDES(memory_.layout_lock());

  private:
    // The aligned, backed word at `offset` while the caller holds the layout lock: EINVAL
    // unaligned, ESHUTDOWN once revoked, EFAULT unbacked.
    Result<uint32_t*> word_locked(uint64_t offset) const GF_REQUIRES_SHARED(memory_.layout_lock());
    Bar1Memory& memory_;
    bool revoked_ GF_GUARDED_BY(memory_.layout_lock()) = false;
};

}  // namespace gf::device
