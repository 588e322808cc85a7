// Hands out single pages of guest RAM (the driver's DMA pages) on the emulated
// machine: what the guest kernel's page allocator is to the real driver.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "device/guest_memory.h"

namespace gf::pci::emulated {

class PageAllocator {
  public:
    struct Page {
        uint64_t gpa = 0;
        std::byte* host = nullptr;
    };

    // Every whole page of `ram` (which must outlive the allocator) is free.
    PageAllocator(device::RamGuestMemory& ram, size_t page_size);
    PageAllocator(const PageAllocator&) = delete;
    PageAllocator& operator=(const PageAllocator&) = delete;

    Result<Page> allocate();  // ENOMEM when guest RAM is exhausted
    // Ignores an address that is not a page this allocator handed out.
    void free(uint64_t gpa);

    size_t free_pages() const;
    size_t page_size() const { return page_size_; }

  private:
    device::RamGuestMemory& ram_;
    const size_t page_size_;
    mutable Mutex mutex_;
    std::vector<uint64_t> free_ GF_GUARDED_BY(mutex_);  // page indices, lowest on top
    std::vector<bool> in_use_ GF_GUARDED_BY(mutex_);
};

}  // namespace gf::pci::emulated
