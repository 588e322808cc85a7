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
    by_offset_.emplace(offset, Binding{size, file, move_in, /*parked=*/false, fd});
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

Bar1Bindings::Map::iterator Bar1Bindings::find_binding(Bar1FileId file, uint64_t offset) {
    auto it = by_offset_.find(offset);
    return it != by_offset_.end() && it->second.file == file ? it : by_offset_.end();
}

void Bar1Bindings::take_out(Map::iterator it, bool keep_contents) {
    const uint64_t offset = it->first;
    const uint64_t size = it->second.size;
    std::byte* at = window_.data() + offset;
    if (it->second.parked) {
        // The window holds the host's copy already: it stays (the host's memory back) or
        // gives way to zeros; the file's pages go, as for any binding.
        punch_file_range(it->second.fd, offset, size);
        if (!keep_contents) {
            restore_host(offset, size);
        }
        erase(it);
        return;
    }
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
        if (it->second.parked) {
            // The window's copy is the caller's to drop; the file's pages go here.
            punch_file_range(it->second.fd, start, end - start);
        } else {
            (void)::madvise(window_.data() + start, end - start, MADV_REMOVE);
        }
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

std::vector<uint64_t> Bar1Bindings::offsets_of(Bar1FileId file) const {
    auto owner = by_file_.find(file);
    if (owner == by_file_.end()) {
        return {};
    }
    return std::vector<uint64_t>(owner->second.begin(), owner->second.end());
}

Result<void> Bar1Bindings::park(Bar1FileId file, uint64_t offset) {
    auto it = find_binding(file, offset);
    if (it == by_offset_.end()) {
        return fail(ENOENT);
    }
    if (it->second.parked) {
        return {};
    }
    const uint64_t size = it->second.size;
    const std::byte* at = window_.data() + offset;
    // Sound: the caller holds the layout lock exclusively, so no host access runs here; users
    // may store meanwhile, and those stores land in the file (the seal then fails).
    GF_TRY(replace_with_copy(offset, size, [&](std::byte* copy) -> Result<void> {
        std::memcpy(copy, at, size);
        return {};
    }));
    it->second.parked = true;
    return {};
}

Result<void> Bar1Bindings::unpark(Bar1FileId file, uint64_t offset) {
    auto it = find_binding(file, offset);
    if (it == by_offset_.end()) {
        return fail(ENOENT);
    }
    if (!it->second.parked) {
        return {};
    }
    const uint64_t size = it->second.size;
    const int fd = it->second.fd;
    if (it->second.moved_in) {
        // Host memory: what the host wrote while parked is the newer, and goes to the file.
        GF_TRY(
            transfer_all([fd](std::byte* p, uint64_t n, off_t o) { return ::pwrite(fd, p, n, o); },
                         window_.data() + offset, size, offset));
    }
    GF_TRY(map_file(fd, offset, size));
    it->second.parked = false;
    return {};
}

void Bar1Bindings::settle(Bar1FileId file, uint64_t offset) {
    auto it = find_binding(file, offset);
    if (it == by_offset_.end()) {
        return;
    }
    if (!it->second.parked) {
        // Not reached: the seal cannot hold while the window maps the file. Taken out the
        // ordinary way all the same.
        take_out(it, it->second.moved_in);
        return;
    }
    if (!it->second.moved_in) {
        restore_host(it->first, it->second.size);  // a block's memory leaves the window
    }
    erase(it);
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
