#include "device/bar1_bindings.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/checked.h"
#include "base/interval_map.h"
#include "base/page.h"

namespace gf::device {
namespace {

constexpr int kHostFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED;

// Copies `size` bytes between a file and memory, as far as the file lets it.
template <class Op>
Result<void> transfer_all(Op op, std::byte* at, uint64_t size, uint64_t offset) {
    uint64_t done = 0;
    while (done < size) {
        const ssize_t n = op(at + done, size - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return fail(n < 0 ? errno : EIO);
        }
        done += static_cast<uint64_t>(n);
    }
    return {};
}

// Frees the file's pages in the range: they read as zeros again.
void punch_file_range(int fd, uint64_t offset, uint64_t size) {
    (void)::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                      static_cast<off_t>(size));
}

}  // namespace

Result<void> Bar1Bindings::map_host(uint64_t offset, uint64_t size) {
    if (::mmap(window_.data() + offset, size, PROT_READ | PROT_WRITE, kHostFlags, -1, 0) ==
        MAP_FAILED) {
        return fail(errno);
    }
    return {};
}

Result<void> Bar1Bindings::map_file(int fd, uint64_t offset, uint64_t size) {
    if (::mmap(window_.data() + offset, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
               static_cast<off_t>(offset)) == MAP_FAILED) {
        return fail(errno);
    }
    return {};
}

uint64_t Bar1Bindings::size_of(const Binding& binding) {
    return binding.size;
}

template <class M>
auto Bar1Bindings::first_ending_after(M& map, uint64_t offset) -> decltype(map.begin()) {
    auto it = find_containing(map, offset, size_of);
    return it != map.end() ? it : map.lower_bound(offset);
}

template <class M, class It>
bool Bar1Bindings::starts_before_end(M& map, It it, uint64_t offset, uint64_t size) {
    // offset - start is exact once start >= offset; one that starts before it contains it.
    return it != map.end() && (it->first < offset || it->first - offset < size);
}

bool Bar1Bindings::overlaps(uint64_t offset, uint64_t size) const {
    return starts_before_end(by_offset_, first_ending_after(by_offset_, offset), offset, size);
}

Result<void> Bar1Bindings::bind(Bar1FileId file, int fd, uint64_t offset, uint64_t size,
                                bool move_in) {
    if (size == 0 || !page_aligned(offset, page_) || !page_aligned(size, page_) ||
        !range_within(offset, size, window_.size())) {
        return fail(EINVAL);
    }
    if (overlaps(offset, size)) {
        return fail(EBUSY);
    }
    if (by_offset_.size() >= max_bindings_) {
        return fail(ENOMEM);  // the window's mappings would run into vm.max_map_count
    }
    std::byte* at = window_.data() + offset;
    if (move_in) {
        // The host's pages become the file's: copy them in, then map the file over them.
        Result<void> copied =
            transfer_all([fd](std::byte* p, uint64_t n, off_t o) { return ::pwrite(fd, p, n, o); },
                         at, size, offset);
        if (!copied) {
            punch_file_range(fd, offset, size);
            return fail(ENOMEM);
        }
    } else {
        // A block starts zeroed, whatever the user scribbled there before it owned it.
        punch_file_range(fd, offset, size);
    }
    if (Result<void> mapped = map_file(fd, offset, size); !mapped) {
        punch_file_range(fd, offset, size);
        return mapped;
    }
    by_offset_.emplace(offset, Binding{size, file, move_in});
    by_file_[file].insert(offset);
    bound_bytes_ += size;
    return {};
}

template <class Fill>
Result<void> Bar1Bindings::replace_with_copy(uint64_t offset, uint64_t size, Fill fill) {
    void* copy = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (copy == MAP_FAILED) {
        return fail(ENOMEM);
    }
    Result<void> filled = fill(static_cast<std::byte*>(copy));
    // mremap moves the copied pages into the window in place of what was there: no second
    // copy, and the range is never unmapped in between.
    if (!filled || ::mremap(copy, size, size, MREMAP_MAYMOVE | MREMAP_FIXED,
                            window_.data() + offset) == MAP_FAILED) {
        const int err = filled ? errno : filled.error().value();
        ::munmap(copy, size);
        return fail(err);
    }
    return {};
}

void Bar1Bindings::erase(Map::iterator it) {
    auto owner = by_file_.find(it->second.file);
    if (owner != by_file_.end()) {
        owner->second.erase(it->first);
        if (owner->second.empty()) {
            by_file_.erase(owner);
        }
    }
    bound_bytes_ -= it->second.size;
    by_offset_.erase(it);
}

void Bar1Bindings::take_out(Map::iterator it, bool keep_contents) {
    const uint64_t offset = it->first;
    const uint64_t size = it->second.size;
    std::byte* at = window_.data() + offset;
    // The file's pages go (punched through the window's mapping while it is still there):
    // a user mapping reads zeros of its own from now on.
    const auto punch_file = [&] { (void)::madvise(at, size, MADV_REMOVE); };
    bool kept = false;
    if (keep_contents) {
        kept = replace_with_copy(offset, size, [&](std::byte* copy) -> Result<void> {
                   std::memcpy(copy, at, size);
                   punch_file();
                   return {};
               }).has_value();
    }
    if (!kept) {
        punch_file();
        restore_host(offset, size);
    }
    erase(it);
}

void Bar1Bindings::restore_host(uint64_t offset, uint64_t size) {
    // Replacing a mapping by one of the same range fails only at the map count limit, which
    // the binding cap keeps well away. A hole in the window would let another mmap land
    // inside BAR1: that must never happen.
    if (!map_host(offset, size)) {
        std::fprintf(stderr, "goldfish: BAR1 window cannot be restored at 0x%llx: %s\n",
                     static_cast<unsigned long long>(offset), std::strerror(errno));
        std::abort();
    }
}

bool Bar1Bindings::unbind(Bar1FileId file, uint64_t offset, uint64_t size) {
    auto it = by_offset_.find(offset);
    if (it == by_offset_.end() || it->second.file != file || it->second.size != size) {
        return false;
    }
    take_out(it, it->second.moved_in);
    return true;
}

void Bar1Bindings::punch(uint64_t offset, uint64_t size) {
    // The caller checked the range against the window, so offset + size cannot wrap.
    for (auto it = first_ending_after(by_offset_, offset);
         size > 0 && starts_before_end(by_offset_, it, offset, size); ++it) {
        const uint64_t start = std::max(offset, it->first);
        const uint64_t end = std::min(offset + size, it->first + it->second.size);
        (void)::madvise(window_.data() + start, end - start, MADV_REMOVE);
    }
}

void Bar1Bindings::drop_overlapping(uint64_t offset, uint64_t size) {
    auto it = first_ending_after(by_offset_, offset);
    while (size > 0 && starts_before_end(by_offset_, it, offset, size)) {
        auto next = std::next(it);
        take_out(it, false);
        it = next;
    }
}

Result<bool> Bar1Bindings::retire(Bar1FileId file, int fd) {
    auto owner = by_file_.find(file);
    if (owner == by_file_.end()) {
        return true;  // nothing of the host's is in the file: a mapping of it shows only zeros
    }
    const std::vector<uint64_t> offsets(owner->second.begin(), owner->second.end());
    // The window's own mappings are writable mappings of the file too: replace them with
    // inaccessible placeholders (the range stays reserved) while the seal is tried.
    for (uint64_t offset : offsets) {
        const uint64_t size = by_offset_.at(offset).size;
        if (::mmap(window_.data() + offset, size, PROT_NONE, kHostFlags, -1, 0) == MAP_FAILED) {
            restore_host(offset, size);
        }
    }
    // Sealing against writes fails (EBUSY) exactly while some writable shared mapping of
    // the file exists, through any open file of it: then a user still maps it.
    const bool unmapped = ::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0;
    for (uint64_t offset : offsets) {
        auto it = by_offset_.find(offset);
        const uint64_t size = it->second.size;
        if (!unmapped) {
            if (!map_file(fd, offset, size)) {
                // Only at the map count limit: the host loses its view of this range, the
                // user keeps its pages.
                restore_host(offset, size);
                erase(it);
            }
            continue;
        }
        const bool kept = it->second.moved_in &&
                          replace_with_copy(offset, size, [&](std::byte* copy) {
                              // Host memory the file held goes back to the host with what the user
                              // wrote.
                              return transfer_all([fd](std::byte* q, uint64_t n,
                                                       off_t o) { return ::pread(fd, q, n, o); },
                                                  copy, size, offset);
                          }).has_value();
        if (!kept) {
            restore_host(offset, size);
        }
        erase(it);
    }
    return unmapped;
}

void Bar1Bindings::forget(Bar1FileId file) {
    auto owner = by_file_.find(file);
    if (owner == by_file_.end()) {
        return;
    }
    const std::vector<uint64_t> offsets(owner->second.begin(), owner->second.end());
    for (uint64_t offset : offsets) {
        take_out(by_offset_.find(offset), false);
    }
}

void Bar1Bindings::clear() {
    while (!by_offset_.empty()) {
        take_out(by_offset_.begin(), false);
    }
}

std::optional<Bar1FileId> Bar1Bindings::file_at(uint64_t offset) const {
    auto it = find_containing(by_offset_, offset, size_of);
    if (it == by_offset_.end()) {
        return std::nullopt;
    }
    return it->second.file;
}

}  // namespace gf::device
