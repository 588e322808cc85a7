#include "device/bar1_access.h"

#include <cerrno>

#include "base/shared_memory.h"

namespace gf::device {

Result<void> Bar1Access::read(uint64_t offset, std::span<std::byte> out) const {
    ReaderLock lock(memory_.layout_lock());
    if (revoked_) {
        return fail(ESHUTDOWN);
    }
    const std::span<std::byte> shared = GF_TRY(memory_.backed_view_locked(offset, out.size()));
    copy_from_shared(out, shared);
    return {};
}

Result<void> Bar1Access::write(uint64_t offset, std::span<const std::byte> in) const {
    ReaderLock lock(memory_.layout_lock());
    if (revoked_) {
        return fail(ESHUTDOWN);
    }
    const std::span<std::byte> shared = GF_TRY(memory_.backed_view_locked(offset, in.size()));
    copy_to_shared(shared, in);
    return {};
}

void Bar1Access::revoke() {
    WriterLock lock(memory_.layout_lock());
    revoked_ = true;
}

}  // namespace gf::device
