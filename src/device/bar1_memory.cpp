#include "device/bar1_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "base/checked.h"

namespace gf::device {

Result<Bar1Memory> Bar1Memory::create(uint64_t size) {
    if (size == 0 || size > SIZE_MAX) {
        return fail(EINVAL);
    }
    // MAP_NORESERVE: reserving 16 GiB must not count against RAM or swap before use.
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        return fail(ENOMEM);
    }
    return Bar1Memory(Mapping(base, size));
}

Result<std::span<std::byte>> Bar1Memory::view(uint64_t offset, uint64_t len) const {
    if (!range_within(offset, len, size())) {
        return fail(EFAULT);
    }
    // Sound: the range was just checked against the mapping's size.
    return std::span<std::byte>(window_.data() + offset, len);
}

Result<void> Bar1Memory::release(uint64_t offset, uint64_t len) {
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    if (!range_within(offset, len, size()) || offset % page != 0 || len % page != 0) {
        return fail(EINVAL);
    }
    if (len == 0) {
        return {};
    }
    // On a private anonymous mapping MADV_DONTNEED frees the pages; they refault as zeros.
    if (madvise(window_.data() + offset, len, MADV_DONTNEED) != 0) {
        return fail(errno);
    }
    return {};
}

}  // namespace gf::device
