#include "vmm/memfd_guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <utility>

#include "base/checked.h"
#include "base/interval_map.h"

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
    auto failed = [&](size_t i, Error error) {
        if (failed_index != nullptr) {
            *failed_index = i;
        }
        return fail(error);
    };
    // Every region is mapped before any is compared, so a bad fd is reported before an
    // overlap.
    std::vector<RegionMapping> mapped;
    mapped.reserve(regions.size());
    for (size_t i = 0; i < regions.size(); ++i) {
        auto mapping = RegionMapping::map(regions[i]);
        if (!mapping) {
            return failed(i, mapping.error());
        }
        mapped.push_back(std::move(*mapping));
    }
    // The mappings hold the files; the fds are no longer needed.
    regions.clear();
    Mappings fresh;
    for (size_t i = 0; i < mapped.size(); ++i) {
        const uint64_t gpa = mapped[i].gpa();
        const auto [it, inserted] = fresh.try_emplace(gpa, std::move(mapped[i]));
        const bool overlaps_before = it != fresh.begin() && std::prev(it)->second.end() > gpa;
        const bool overlaps_after =
            std::next(it) != fresh.end() && std::next(it)->first < it->second.end();
        if (!inserted || overlaps_before || overlaps_after) {
            return failed(i, Error(EINVAL));
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
    Mappings old;
    {
        MutexLock lock(mutex_);
        std::swap(mappings_, old);
    }
}

std::vector<MemfdGuestMemory::RegionInfo> MemfdGuestMemory::regions() const {
    MutexLock lock(mutex_);
    std::vector<RegionInfo> out;
    for (const auto& [gpa, mapping] : mappings_) {
        out.push_back({gpa, mapping.size()});
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
    const auto first =
        find_containing(mappings_, gpa, [](const RegionMapping& m) { return m.size(); });
    // First pass: check coverage, so that a failing write changes nothing.
    for (int pass = 0; pass < 2; ++pass) {
        uint64_t pos = gpa;
        // Each later piece must start where the one before ended: regions are disjoint, so
        // the next one either does or leaves a hole.
        for (auto it = first; pos < end; ++it) {
            if (it == mappings_.end() || pos < it->first || pos >= it->second.end()) {
                return fail(EFAULT);
            }
            const RegionMapping& mapping = it->second;
            const uint64_t piece = std::min(end, mapping.end()) - pos;
            if (pass == 1) {
                // Sound: pos lies in [gpa(), end()) of this mapping and pos + piece <= end(),
                // so the host range is inside the bytes mmap gave us.
                f(mapping.data() + (pos - mapping.gpa()), piece);
            }
            pos += piece;
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
