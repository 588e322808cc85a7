#include "device/bar1_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include "base/checked.h"
#include "base/shared_memory.h"

namespace gf::device {
namespace {

// How many bindings a retire handles per hold of the layout lock: a hold stays in the order
// of one ioctl, and the lock changes hands often enough.
constexpr size_t kBindingsPerHold = 16;

}  // namespace

Result<std::unique_ptr<Bar1Memory>> Bar1Memory::create(uint64_t size, size_t max_bindings) {
    if (size == 0 || size > SIZE_MAX) {
        return fail(EINVAL);
    }
    // MAP_NORESERVE: reserving 16 GiB must not count against RAM or swap before use.
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        return fail(ENOMEM);
    }
    return std::unique_ptr<Bar1Memory>(new Bar1Memory(Mapping(base, size), max_bindings));
}

Result<void> Bar1Memory::map(uint64_t offset, uint64_t size, uint32_t owner) {
    WriterLock lock(layout_lock_);
    return mappings_.add(offset, size, owner);
}

Result<void> Bar1Memory::unmap(uint64_t offset, uint64_t size) {
    WriterLock lock(layout_lock_);
    GF_TRY(mappings_.remove(offset, size));
    return release_pages(offset, size);
}

Result<void> Bar1Memory::scrub(uint64_t offset, uint64_t size) {
    WriterLock lock(layout_lock_);
    // Memory changing hands: a user that held it (a claimed slot) loses it first.
    bindings_.drop_overlapping(offset, size);
    return release_pages(offset, size);
}

void Bar1Memory::clear() {
    WriterLock lock(layout_lock_);
    mappings_.clear();
    bindings_.clear();
    (void)release_pages(0, size());
}

Result<void> Bar1Memory::bind_file(Bar1FileId file, int fd, uint64_t offset, uint64_t size,
                                   bool move_in) {
    WriterLock lock(layout_lock_);
    return bindings_.bind(file, fd, offset, size, move_in);
}

void Bar1Memory::unbind_file(Bar1FileId file, uint64_t offset, uint64_t size) {
    WriterLock lock(layout_lock_);
    (void)bindings_.unbind(file, offset, size);
}

void Bar1Memory::drop_bound(uint64_t offset, uint64_t size) {
    WriterLock lock(layout_lock_);
    bindings_.drop_overlapping(offset, size);
}

Result<bool> Bar1Memory::retire_file(Bar1FileId file, int fd) {
    std::vector<uint64_t> offsets;
    {
        ReaderLock lock(layout_lock_);
        offsets = bindings_.offsets_of(file);
    }
    if (offsets.empty()) {
        return true;  // nothing of the host's is in the file: a mapping of it shows only zeros
    }
    seal_checks_.fetch_add(1, std::memory_order_relaxed);
    // A few bindings per hold of the lock (each a copy of its pages and two mapping calls),
    // then a yield, so that a waiting access or layout change gets in between: an unlock
    // followed at once by a lock would often win the lock again.
    bool parked_all = true;
    int park_error = 0;
    for (size_t at = 0; at < offsets.size() && parked_all; at += kBindingsPerHold) {
        {
            WriterLock lock(layout_lock_);
            for (size_t i = at; i < std::min(offsets.size(), at + kBindingsPerHold); ++i) {
                Result<void> parked = bindings_.park(file, offsets[i]);
                if (!parked && parked.error().value() != ENOENT) {  // ENOENT: it went meanwhile
                    parked_all = false;
                    park_error = parked.error().value();
                    break;
                }
            }
        }
        std::this_thread::yield();
    }
    // With no lock held. It fails (EBUSY) exactly while some writable shared mapping of the
    // file exists, through any open file of it; the window's own no longer count.
    const bool sealed = parked_all && ::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0;
    if (parked_all && !sealed && errno != EBUSY) {
        // Not "still mapped": the file refuses the seal itself, and would linger for ever.
        std::fprintf(stderr, "goldfish: a closed file cannot be sealed (%s); it stays open\n",
                     std::strerror(errno));
    }
    uint64_t failures = 0;
    int remap_error = 0;
    for (size_t at = 0; at < offsets.size(); at += kBindingsPerHold) {
        {
            WriterLock lock(layout_lock_);
            for (size_t i = at; i < std::min(offsets.size(), at + kBindingsPerHold); ++i) {
                if (sealed) {
                    bindings_.settle(file, offsets[i]);
                } else if (Result<void> back = bindings_.unpark(file, offsets[i]);
                           !back && back.error().value() != ENOENT) {
                    ++failures;
                    remap_error = back.error().value();
                }
            }
        }
        std::this_thread::yield();
    }
    if (park_error != 0) {
        std::fprintf(stderr,
                     "goldfish: checking whether a closed file is still mapped: a range could "
                     "not be copied (%s); checked again later\n",
                     std::strerror(park_error));
    }
    if (failures > 0) {
        remap_failures_.fetch_add(failures, std::memory_order_relaxed);
        std::fprintf(stderr,
                     "goldfish: %llu range(s) of a closed, still mapped file could not be mapped "
                     "back into BAR1 (%s): the host works on its own copy there until the next "
                     "check maps them back\n",
                     static_cast<unsigned long long>(failures), std::strerror(remap_error));
    }
    return sealed;
}

void Bar1Memory::forget_file(Bar1FileId file) {
    WriterLock lock(layout_lock_);
    bindings_.forget(file);
}

size_t Bar1Memory::bound_count() const {
    ReaderLock lock(layout_lock_);
    return bindings_.count();
}

Result<void> Bar1Memory::copy_out(uint64_t offset, std::span<std::byte> out) const {
    if (!range_within(offset, out.size(), window_.length())) {
        return fail(ENXIO);
    }
    // Shared lock: no range is being replaced (a retire check's placeholders are never seen).
    ReaderLock lock(layout_lock_);
    // Sound: the range was just checked against the window; clients may write these pages
    // at any time, hence the shared-memory copy.
    copy_from_shared(out, std::span(window_.data() + offset, out.size()));
    return {};
}

Result<void> Bar1Memory::copy_in(uint64_t offset, std::span<const std::byte> in) {
    if (!range_within(offset, in.size(), window_.length())) {
        return fail(ENXIO);
    }
    ReaderLock lock(layout_lock_);
    copy_to_shared(std::span(window_.data() + offset, in.size()), in);
    return {};
}

std::vector<MemoryMappingTable::Mapping> Bar1Memory::mappings_starting_within(uint64_t offset,
                                                                              uint64_t size) const {
    ReaderLock lock(layout_lock_);
    return mappings_.starting_within(offset, size);
}

size_t Bar1Memory::mapping_count() const {
    ReaderLock lock(layout_lock_);
    return mappings_.count();
}

uint64_t Bar1Memory::backed_bytes() const {
    ReaderLock lock(layout_lock_);
    return mappings_.backed_bytes();
}

Result<std::span<std::byte>> Bar1Memory::backed_view_locked(uint64_t offset, uint64_t size) const {
    // A mapping lies inside the window (add() refuses wrapping, the device checks bounds).
    if (!mappings_.covers(offset, size) || !range_within(offset, size, window_.length())) {
        return fail(EFAULT);
    }
    // Sound: the range was just checked against the mapping's size.
    return std::span<std::byte>(window_.data() + offset, size);
}

Result<void> Bar1Memory::zero(uint64_t offset, uint64_t size) {
    WriterLock lock(layout_lock_);
    if (!range_within(offset, size, window_.length())) {
        return fail(EINVAL);
    }
    bindings_.drop_overlapping(offset, size);
    // Whole pages go back to the kernel; the bytes of a page shared with a neighbour (a
    // guest page smaller than the host's) are cleared one by one.
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    const uint64_t end = offset + size;
    const uint64_t first = std::min(end, (offset + page - 1) / page * page);
    const uint64_t last = std::max(first, end / page * page);
    std::memset(window_.data() + offset, 0, first - offset);
    std::memset(window_.data() + last, 0, end - last);
    return release_pages(first, last - first);
}

Result<void> Bar1Memory::release_pages(uint64_t offset, uint64_t size) {
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    if (!range_within(offset, size, window_.length()) || offset % page != 0 || size % page != 0) {
        return fail(EINVAL);
    }
    if (size == 0) {
        return {};
    }
    bindings_.punch(offset, size);
    // On a private anonymous mapping MADV_DONTNEED frees the pages; they refault as zeros.
    if (madvise(window_.data() + offset, size, MADV_DONTNEED) != 0) {
        return fail(errno);
    }
    return {};
}

}  // namespace gf::device
