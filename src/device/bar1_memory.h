// BAR1's host backing: one sparse reservation as large as the BAR. It is address space, not
// RAM: a page costs memory only once touched, and released ranges go back to the kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"

namespace gf::device {

class Bar1Memory {
  public:
    // A zero-filled, lazily backed window of size bytes; ENOMEM if it cannot be reserved.
    static Result<Bar1Memory> create(uint64_t size);
    ~Bar1Memory();
    Bar1Memory(Bar1Memory&& other) noexcept;
    Bar1Memory& operator=(Bar1Memory&& other) noexcept;
    Bar1Memory(const Bar1Memory&) = delete;
    Bar1Memory& operator=(const Bar1Memory&) = delete;

    uint64_t size() const { return size_; }
    // Host view of [offset, offset + len); EFAULT unless wholly inside the window.
    Result<std::span<std::byte>> view(uint64_t offset, uint64_t len) const;
    // Drops the pages of [offset, offset + len) (page aligned): they read as zero again and no
    // longer count as resident. EINVAL if unaligned or outside the window.
    Result<void> release(uint64_t offset, uint64_t len);

  private:
    Bar1Memory(std::byte* base, uint64_t size) : base_(base), size_(size) {}

    std::byte* base_ = nullptr;  // owned mapping of size_ bytes
    uint64_t size_ = 0;
};

}  // namespace gf::device
