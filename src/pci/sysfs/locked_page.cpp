#include "pci/sysfs/locked_page.h"

#include <linux/mman.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "pci/sysfs/diagnostic.h"

namespace gf::pci::sysfs {

namespace {

Result<Mapping> map_anonymous(size_t length, int extra_flags) {
    return Mapping::map(length, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | extra_flags, -1, 0);
}

}  // namespace

Result<LockedPage> LockedPage::allocate(size_t page_size, bool prefer_hugetlb,
                                        std::string* message) {
    bool hugetlb = false;
    Mapping mapping;
    if (prefer_hugetlb) {
        // Fails (ENOMEM) when no huge page is free: then a normal page will do.
        if (auto huge = map_anonymous(kHugePageSize, MAP_HUGETLB | MAP_HUGE_2MB)) {
            mapping = std::move(*huge);
            hugetlb = true;
        }
    }
    if (mapping.empty()) {
        auto normal = map_anonymous(page_size, 0);
        if (!normal) {
            return fail_with(message, normal.error().value(),
                             std::string("cannot map a page for the ping page: ") +
                                 std::strerror(normal.error().value()));
        }
        mapping = std::move(*normal);
    }
    if (::madvise(mapping.data(), mapping.length(), MADV_DONTFORK) != 0) {
        const int error = errno;
        return fail_with(
            message, error,
            std::string("madvise(MADV_DONTFORK) on the ping page: ") + std::strerror(error));
    }
    if (::mlock(mapping.data(), mapping.length()) != 0) {
        const int error = errno;
        return fail_with(message, error,
                         std::string("cannot lock the ping page in memory (mlock: ") +
                             std::strerror(error) +
                             "): run as root or raise RLIMIT_MEMLOCK (ulimit -l)");
    }
    // A write makes the page this mapping's own frame (not the shared zero
    // page); volatile so the store is not elided. The mapping is writable and
    // at least one byte long.
    *reinterpret_cast<volatile std::byte*>(mapping.data()) = std::byte{0};
    return LockedPage(std::move(mapping), hugetlb);
}

}  // namespace gf::pci::sysfs
