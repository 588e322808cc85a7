#include "device/bar1_access.h"

#include <atomic>
#include <cerrno>

#include "base/shared_memory.h"

namespace gf::device {

Result<void> Bar1Access::read(uint64_t offset, std::span<std::byte> out) const {
    ReaderLock lock(memory_.layout_lock());
    if (revoked_) {
        return fail(ESHUTDOWN);
    }
    const std::span<std::byte> shared = GF_TRY(memory_.backed_view_locked(offset, out.size()));
    copy_from_shared_bulk(out, shared);
    return {};
}

Result<void> Bar1Access::write(uint64_t offset, std::span<const std::byte> in) const {
    ReaderLock lock(memory_.layout_lock());
    if (revoked_) {
        return fail(ESHUTDOWN);
    }
    const std::span<std::byte> shared = GF_TRY(memory_.backed_view_locked(offset, in.size()));
    copy_to_shared_bulk(shared, in);
    return {};
}

Result<uint32_t*> Bar1Access::word_locked(uint64_t offset) const {
    if (offset % sizeof(uint32_t) != 0) {
        return fail(EINVAL);
    }
    if (revoked_) {
        return fail(ESHUTDOWN);
    }
    const std::span<std::byte> shared =
        GF_TRY(memory_.backed_view_locked(offset, sizeof(uint32_t)));
    // Mapped memory, 4-aligned (BAR1 is page aligned): a uint32_t object of the mapping.
    return reinterpret_cast<uint32_t*>(shared.data());
}

Result<uint32_t> Bar1Access::load32(uint64_t offset) const {
    ReaderLock lock(memory_.layout_lock());
    uint32_t* word = GF_TRY(word_locked(offset));
    return std::atomic_ref<uint32_t>(*word).load();
}

Result<void> Bar1Access::store32(uint64_t offset, uint32_t value) const {
    ReaderLock lock(memory_.layout_lock());
    uint32_t* word = GF_TRY(word_locked(offset));
    std::atomic_ref<uint32_t>(*word).store(value);
    return {};
}

void Bar1Access::revoke() {
    WriterLock lock(memory_.layout_lock());
    revoked_ = true;
}

}  // namespace gf::device
