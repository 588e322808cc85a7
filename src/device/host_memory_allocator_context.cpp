#include "device/host_memory_allocator_context.h"

#include <cerrno>

#include "base/checked.h"
#include "base/page.h"
#include "device/registers.h"

namespace gf::device {

Result<std::unique_ptr<Context>> HostMemoryAllocatorContext::create(const ContextParams& params) {
    return std::unique_ptr<Context>(new HostMemoryAllocatorContext(params.handle, params.services));
}

void HostMemoryAllocatorContext::release_locked() {
    for (const auto& [offset, size] : allocations_) {
        (void)services_.remove_memory_mapping_locked(offset, size);
    }
    allocations_.clear();
}

void HostMemoryAllocatorContext::perform_locked(PingInfo& info) {
    Result<void> result = fail(EINVAL);
    switch (info.metadata) {
        case Allocate:
            result = allocate_locked(info.phys_addr, info.size);
            break;
        case Unallocate:
            result = unallocate_locked(info.phys_addr);
            break;
        default:
            break;
    }
    info.metadata = result ? kPingOk : kAllOnes;
}

Result<void> HostMemoryAllocatorContext::allocate_locked(uint64_t gpa, uint64_t size) {
    const uint64_t page = services_.host_page_size();
    if (size == 0) {
        return fail(EINVAL);
    }
    // Checked: a size near 2^64 must fail, not wrap to 0.
    const uint64_t aligned = GF_TRY(round_up_to_page(size, page));
    // The GPA comes from the guest: it must name a page-aligned range inside BAR1 ...
    const uint64_t offset = GF_TRY(services_.bar1_offset_locked(gpa, aligned));
    if (offset % page != 0) {
        return fail(EINVAL);
    }
    // ... that lies wholly inside one block the guest allocated.
    const auto block = services_.guest_block_containing_locked(offset);
    if (!block || !range_within(offset - block->offset, aligned, block->size)) {
        return fail(EINVAL);
    }
    if (allocations_.contains(offset)) {
        return fail(EEXIST);
    }
    // Refuses overlap with any other mapping, this context's or another's.
    GF_TRY(services_.add_memory_mapping_locked(offset, aligned, handle_));
    allocations_.emplace(offset, aligned);
    return {};
}

Result<void> HostMemoryAllocatorContext::unallocate_locked(uint64_t gpa) {
    const uint64_t offset = GF_TRY(services_.bar1_offset_locked(gpa, 0));
    auto it = allocations_.find(offset);
    if (it == allocations_.end()) {
        return fail(ENOENT);  // never allocated, already freed, or another context's
    }
    (void)services_.remove_memory_mapping_locked(offset, it->second);
    allocations_.erase(it);
    return {};
}

void HostMemoryAllocatorContext::on_block_deallocated_locked(uint64_t offset) {
    allocations_.erase(offset);
}

}  // namespace gf::device
