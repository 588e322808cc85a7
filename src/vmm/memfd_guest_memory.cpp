#include "vmm/memfd_guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/checked.h"

namespace gf::vmm {

Result<RegionMapping> RegionMapping::map(const RamRegion& region) {
    if (region.size == 0 || region.file_offset < 0 || !region.fd) {
        return fail(EINVAL);
    }
    const auto offset = static_cast<uint64_t>(region.file_offset);
    if (!checked_add(region.gpa, region.size) || !checked_add(offset, region.size)) {
        return fail(EOVERFLOW);
    }
    struct stat st {};
    if (::fstat(region.fd.get(), &st) != 0) {
        return fail(errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return fail(EBADF);
    }
    // Touching a shared mapping past the end of its file raises SIGBUS: refuse such a range.
    // (A peer that shrinks the file later could still do that; QEMU never shrinks guest RAM.)
    if (!range_within(offset, region.size, static_cast<uint64_t>(st.st_size))) {
        return fail(ENXIO);
    }
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t misalignment = offset % page;
    const uint64_t length = GF_TRY(checked_add(region.size, misalignment));
    if (length > SIZE_MAX) {
        return fail(EOVERFLOW);
    }
    Mapping mapping =
        GF_TRY(Mapping::map(length, PROT_READ | PROT_WRITE, MAP_SHARED, region.fd.get(),
                            static_cast<off_t>(offset - misalignment)));
    return RegionMapping(region.gpa, region.size, std::move(mapping),
                         static_cast<size_t>(misalignment));
}

MemfdGuestMemory::~MemfdGuestMemory() = default;

Result<void> MemfdGuestMemory::replace(std::vector<RamRegion> regions, size_t* failed_index) {
    std::vector<RegionMapping> fresh;
    fresh.reserve(regions.size());
    for (size_t i = 0; i < regions.size(); ++i) {
        auto mapping = RegionMapping::map(regions[i]);
        if (!mapping) {
            if (failed_index != nullptr) {
                *failed_index = i;
            }
            return fail(mapping.error());
        }
        fresh.push_back(std::move(*mapping));
    }
    // The mappings hold the files; the fds are no longer needed.
    regions.clear();
    std::sort(fresh.begin(), fresh.end(),
              [](const RegionMapping& a, const RegionMapping& b) { return a.gpa() < b.gpa(); });
    for (size_t i = 1; i < fresh.size(); ++i) {
        if (fresh[i].gpa() < fresh[i - 1].end()) {
            if (failed_index != nullptr) {
                *failed_index = i;
            }
            return fail(EINVAL);
        }
    }
    {
        MutexLock lock(mutex_);
        std::swap(mappings_, fresh);
    }
    // `fresh` now holds the old set: unmapped here, outside the lock, after no reader can
    // still be using it (readers copy under the lock).
    return {};
}

void MemfdGuestMemory::clear() {
    std::vector<RegionMapping> old;
    {
        MutexLock lock(mutex_);
        std::swap(mappings_, old);
    }
}

std::vector<MemfdGuestMemory::RegionInfo> MemfdGuestMemory::regions() const {
    MutexLock lock(mutex_);
    std::vector<RegionInfo> out;
    for (const auto& m : mappings_) {
        out.push_back({m.gpa(), m.size()});
    }
    return out;
}

template <typename F>
Result<void> MemfdGuestMemory::for_each_piece_locked(uint64_t gpa, uint64_t len, F&& f) const {
    const auto end_or = checked_add(gpa, len);
    if (!end_or) {
        return fail(EFAULT);  // a range that wraps is not in RAM
    }
    const uint64_t end = *end_or;
    // First pass: check coverage, so that a failing write changes nothing.
    for (int pass = 0; pass < 2; ++pass) {
        uint64_t pos = gpa;
        auto it = std::upper_bound(
            mappings_.begin(), mappings_.end(), pos,
            [](uint64_t value, const RegionMapping& m) { return value < m.gpa(); });
        // `it` is the first region starting after pos; the one before may contain pos.
        if (it != mappings_.begin()) {
            --it;
        }
        while (pos < end) {
            if (it == mappings_.end() || pos < it->gpa() || pos >= it->end()) {
                return fail(EFAULT);
            }
            const uint64_t piece = std::min(end, it->end()) - pos;
            if (pass == 1) {
                // Sound: pos lies in [gpa(), end()) of this mapping and pos + piece <= end(),
                // so the host range is inside the bytes mmap gave us.
                f(it->data() + (pos - it->gpa()), piece);
            }
            pos += piece;
            ++it;
        }
    }
    return {};
}

Result<void> MemfdGuestMemory::read(uint64_t gpa, std::span<std::byte> out) {
    MutexLock lock(mutex_);
    std::byte* dst = out.data();
    return for_each_piece_locked(gpa, out.size(), [&](const std::byte* host, uint64_t n) {
        std::memcpy(dst, host, n);
        dst += n;
    });
}

Result<void> MemfdGuestMemory::write(uint64_t gpa, std::span<const std::byte> in) {
    MutexLock lock(mutex_);
    const std::byte* src = in.data();
    return for_each_piece_locked(gpa, in.size(), [&](std::byte* host, uint64_t n) {
        std::memcpy(host, src, n);
        src += n;
    });
}

}  // namespace gf::vmm
