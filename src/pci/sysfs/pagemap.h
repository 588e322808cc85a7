// Virtual to physical addresses through /proc/self/pagemap: one 64-bit entry
// per virtual page, PFN in bits 0-54, "present" in bit 63.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace gf::pci::sysfs {

inline constexpr uint64_t kPagemapPfnMask = (uint64_t{1} << 55) - 1;
inline constexpr uint64_t kPagemapPresent = uint64_t{1} << 63;

class Pagemap {
  public:
    // The errno of open(2) on `path`, with a message.
    static Result<Pagemap> open(const std::string& path, size_t page_size, std::string* message);

    // The physical address of the byte at `address`, which the caller keeps
    // mapped and resident. EPERM: the entry's frame number is 0, which is what
    // a reader without CAP_SYS_ADMIN sees (or the page is not resident).
    // EIO: the page is not present, or the entry cannot be read whole.
    // EOVERFLOW: the frame number does not fit a 64-bit address.
    Result<uint64_t> physical_address(const void* address, std::string* message) const;

    const std::string& path() const { return path_; }

  private:
    Pagemap(UniqueFd fd, std::string path, size_t page_size)
        : fd_(std::move(fd)), path_(std::move(path)), page_size_(page_size) {}

    UniqueFd fd_;
    std::string path_;
    size_t page_size_;
};

}  // namespace gf::pci::sysfs
