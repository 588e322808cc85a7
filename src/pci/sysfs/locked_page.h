// LockedPage: anonymous memory that stays at one physical address for as long
// as it exists, for the ping page the host reads by physical address.
#pragma once

#include <cstddef>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace gf::pci::sysfs {

// The huge page size asked for explicitly (MAP_HUGE_2MB): x86-64 and arm64
// both have it, and a known size is needed to unmap the page again.
inline constexpr size_t kHugePageSize = size_t{2} << 20;

class LockedPage {
  public:
    // With prefer_hugetlb, first one 2 MiB hugetlb page (hugetlb pages are
    // never swapped and not moved by compaction); when the kernel has none
    // reserved (vm.nr_hugepages = 0), one page_size page. Either way the
    // memory is populated, locked (mlock), touched, and not inherited by
    // fork(): after a fork a write would copy-on-write it to a new frame.
    // The errno of mmap/madvise/mlock, with a message.
    static Result<LockedPage> allocate(size_t page_size, bool prefer_hugetlb, std::string* message);

    std::byte* data() const { return mapping_.data(); }
    bool hugetlb() const { return hugetlb_; }

  private:
    LockedPage(Mapping mapping, bool hugetlb) : mapping_(std::move(mapping)), hugetlb_(hugetlb) {}

    Mapping mapping_;  // munmap also unlocks
    bool hugetlb_;
};

}  // namespace gf::pci::sysfs
