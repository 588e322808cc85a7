// BAR1's host backing: one sparse reservation as large as the BAR. It is address space, not
// RAM: a page costs memory only once touched, and released ranges go back to the kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "base/result.h"
#include "base/unique_fd.h"

namespace gf::device {

class Bar1Memory {
  public:
    // A zero-filled, lazily backed window of size bytes; ENOMEM if it cannot be reserved.
    static Result<Bar1Memory> create(uint64_t size);
    uint64_t size() const { return window_.length(); }
    // Host view of [offset, offset + len); EFAULT unless wholly inside the window.
    Result<std::span<std::byte>> view(uint64_t offset, uint64_t len) const;
    // Drops the pages of [offset, offset + len) (page aligned): they read as zero again and no
    // longer count as resident. EINVAL if unaligned or outside the window.
    Result<void> release(uint64_t offset, uint64_t len);

  private:
    explicit Bar1Memory(Mapping window) : window_(std::move(window)) {}

    Mapping window_;
};

}  // namespace gf::device
