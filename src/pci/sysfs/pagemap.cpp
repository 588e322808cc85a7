#include "pci/sysfs/pagemap.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/checked.h"
#include "pci/sysfs/diagnostic.h"

namespace gf::pci::sysfs {

Result<Pagemap> Pagemap::open(const std::string& path, size_t page_size, std::string* message) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        const int error = errno;
        return fail_with(message, error,
                         "cannot open " + path + ": " + std::strerror(error) +
                             " (physical addresses of the ping page come from it)");
    }
    if (page_size == 0) {
        return fail_with(message, EINVAL, "page size 0");
    }
    return Pagemap(std::move(fd), path, page_size);
}

Result<uint64_t> Pagemap::physical_address(const void* address, std::string* message) const {
    const auto virt = reinterpret_cast<uintptr_t>(address);
    const uint64_t page_index = virt / page_size_;
    // One 8-byte entry per page: index * 8 stays far below 2^63 for any
    // user address (at most 2^64 / page_size entries).
    const auto offset = static_cast<off_t>(page_index * sizeof(uint64_t));
    uint64_t entry = 0;
    const ssize_t n = ::pread(fd_.get(), &entry, sizeof(entry), offset);
    if (n < 0) {
        const int error = errno;
        return fail_with(message, error, "cannot read " + path_ + ": " + std::strerror(error));
    }
    if (static_cast<size_t>(n) != sizeof(entry)) {
        return fail_with(message, EIO, "short read from " + path_);
    }
    const uint64_t pfn = entry & kPagemapPfnMask;
    if (pfn == 0) {
        return fail_with(message, EPERM,
                         path_ +
                             " gives frame 0 for a locked page: reading physical addresses "
                             "needs CAP_SYS_ADMIN (run goldfish-asd as root)");
    }
    if ((entry & kPagemapPresent) == 0) {
        return fail_with(message, EIO, path_ + " says a locked page is not present (swapped out?)");
    }
    // A PFN has at most 55 bits; with pages above 512 bytes the product
    // could exceed 64 bits, so it is checked rather than trusted.
    const auto page_start = checked_mul(pfn, page_size_);
    if (!page_start) {
        return fail_with(message, EOVERFLOW, path_ + " gives a frame beyond 64-bit addresses");
    }
    // virt % page_size_ < page_size_ and *page_start is a multiple of it: no carry.
    return *page_start + virt % page_size_;
}

}  // namespace gf::pci::sysfs
