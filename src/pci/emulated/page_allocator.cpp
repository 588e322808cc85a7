#include "pci/emulated/page_allocator.h"

namespace gf::pci::emulated {

PageAllocator::PageAllocator(device::RamGuestMemory& ram, size_t page_size)
    : ram_(ram), page_size_(page_size) {
    const uint64_t pages = ram.size() / page_size;
    MutexLock lock(mutex_);
    in_use_.assign(pages, false);
    free_.reserve(pages);
    for (uint64_t index = pages; index > 0; --index) {
        free_.push_back(index - 1);
    }
}

Result<PageAllocator::Page> PageAllocator::allocate() {
    uint64_t index;
    {
        MutexLock lock(mutex_);
        if (free_.empty()) {
            return fail(ENOMEM);
        }
        index = free_.back();
        free_.pop_back();
        in_use_[index] = true;
    }
    const uint64_t gpa = ram_.base() + index * page_size_;
    // Inside RAM by construction (index < ram.size() / page_size), so never null.
    return Page{gpa, ram_.host_pointer(gpa, page_size_)};
}

void PageAllocator::free(uint64_t gpa) {
    if (gpa < ram_.base() || (gpa - ram_.base()) % page_size_ != 0) {
        return;
    }
    const uint64_t index = (gpa - ram_.base()) / page_size_;
    MutexLock lock(mutex_);
    if (index < in_use_.size() && in_use_[index]) {
        in_use_[index] = false;
        free_.push_back(index);
    }
}

size_t PageAllocator::free_pages() const {
    MutexLock lock(mutex_);
    return free_.size();
}

}  // namespace gf::pci::emulated
