#include "device/guest_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "base/checked.h"
#include "base/shared_memory.h"

namespace gf::device {

GuestMemory::~GuestMemory() = default;

Result<std::unique_ptr<RamGuestMemory>> RamGuestMemory::create(uint64_t base, uint64_t size) {
    if (size == 0 || !checked_add(base, size) || size > SIZE_MAX) {
        return fail(EINVAL);
    }
    void* host = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (host == MAP_FAILED) {
        return fail(ENOMEM);
    }
    return std::unique_ptr<RamGuestMemory>(new RamGuestMemory(base, Mapping(host, size)));
}

std::byte* RamGuestMemory::host_pointer(uint64_t gpa, uint64_t len) {
    // gpa >= base_ first, so gpa - base_ cannot wrap; range_within checks the end.
    if (gpa < base_ || !range_within(gpa - base_, len, host_.length())) {
        return nullptr;
    }
    return host_.data() + (gpa - base_);
}

Result<void> RamGuestMemory::read(uint64_t gpa, std::span<std::byte> out) {
    std::byte* src = host_pointer(gpa, out.size());
    if (src == nullptr) {
        return fail(EFAULT);
    }
    // Sound: host_pointer checked the whole range lies inside our mapping. The guest may
    // write it meanwhile, so the copy is made of atomic accesses.
    copy_from_shared(out, {src, out.size()});
    return {};
}

Result<void> RamGuestMemory::write(uint64_t gpa, std::span<const std::byte> in) {
    std::byte* dst = host_pointer(gpa, in.size());
    if (dst == nullptr) {
        return fail(EFAULT);
    }
    // Sound: host_pointer checked the whole range lies inside our mapping. The guest may
    // read it meanwhile, so the copy is made of atomic accesses.
    copy_to_shared({dst, in.size()}, in);
    return {};
}

}  // namespace gf::device
