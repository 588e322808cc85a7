#include "device/shared_slots_context.h"

#include <cerrno>

#include "base/page.h"
#include "device/registers.h"
#include "device/shared_slots_pool.h"

namespace gf::device {

Result<std::unique_ptr<Context>> SharedSlotsContext::create(const ContextParams& params) {
    return std::unique_ptr<Context>(new SharedSlotsContext(params.services));
}

void SharedSlotsContext::release_locked() {
    SharedSlotsPool& pool = services_.shared_slots_pool_locked();
    for (const auto& [offset, size] : allocations_) {
        pool.free_locked(offset, size, services_);
    }
    allocations_.clear();
    pool.collect_empty_slabs_locked(services_);
}

void SharedSlotsContext::perform_locked(PingInfo& info) {
    Result<void> result = fail(EINVAL);
    switch (info.metadata) {
        case Allocate:
            result = allocate_locked(info);
            break;
        case Unallocate:
            result = unallocate_locked(info.phys_addr);
            break;
        case CheckIfSharedSlotsSupported:
            result = {};
            break;
        default:
            break;
    }
    info.metadata = result ? kPingOk : kAllOnes;
}

Result<void> SharedSlotsContext::allocate_locked(PingInfo& info) {
    const uint64_t page = services_.host_page_size();
    if (info.size == 0) {
        return fail(EINVAL);
    }
    // 64-bit and checked, unlike the emulator's 32-bit rounding.
    const uint64_t aligned = GF_TRY(round_up_to_page(info.size, page));
    const uint64_t offset =
        GF_TRY(services_.shared_slots_pool_locked().allocate_locked(aligned, services_));
    allocations_.emplace(offset, aligned);
    info.phys_addr = offset;  // BAR1-relative: what userspace passes to CLAIM_SHARED and mmap
    info.size = aligned;
    return {};
}

Result<void> SharedSlotsContext::unallocate_locked(uint64_t gpa) {
    const uint64_t offset = GF_TRY(services_.bar1_offset_locked(gpa, 0));
    auto it = allocations_.find(offset);
    if (it == allocations_.end()) {
        return fail(ENOENT);  // never allocated, already freed, or another context's
    }
    SharedSlotsPool& pool = services_.shared_slots_pool_locked();
    pool.free_locked(offset, it->second, services_);
    allocations_.erase(it);
    pool.collect_empty_slabs_locked(services_);
    return {};
}

}  // namespace gf::device
