// One open file of the driver: a host handle, a ping page, the blocks it
// allocated and the shared ranges it claimed. The front end (FUSE node,
// tests) calls ioctl() with the raw argument bytes or the typed methods.
//
// Two fds can share one File (dup, fork), so every method may run on several
// threads at once: the file's own lock guards its bookkeeping and ping page,
// and is always taken before the controller's register lock.
#pragma once

#include <linux/goldfish_address_space.h>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "base/mutex.h"
#include "base/result.h"
#include "driver/range_set.h"
#include "pci/bar_file.h"
#include "pci/dma_page.h"

namespace gf::driver {

struct Runtime;

// A copy of one file's bookkeeping (tests, fuzzing), taken under its lock.
struct FileBooks {
    bool live = false;  // false after release() or revocation
    uint32_t handle = 0;
    std::optional<uint64_t> ping_page_phys;  // while live
    RangeSet::Map blocks;                    // BAR1 offset -> size
    RangeSet::Map claims;
};

class File {
    struct PrivateTag {
        explicit PrivateTag() = default;
    };

  public:
    File(PrivateTag, std::shared_ptr<Runtime> runtime, uint32_t handle, pci::DmaPage ping_page,
         std::optional<pci::BarFile> memory);
    File(const File&) = delete;
    File& operator=(const File&) = delete;
    ~File();  // release()

    // The ioctl entry point: `arg` holds the bytes the caller copied in and
    // receives the results in place. Returns 0 or a negative errno: ENOTTY for
    // an unknown command, EINVAL when arg is not the command's size.
    int ioctl(uint32_t cmd, std::span<std::byte> arg);

    // Every method is ENODEV after release() or once the driver is removed.
    // ALLOCATE_BLOCK: host first, then bookkeeping. ENOSPC at the file's limit;
    // the host's errno (ENOMEM, EINVAL); EIO if the device's answer is not a
    // block of at least `size` bytes inside BAR1; EOVERFLOW if the physical
    // address does not fit; with a memory file, ENOMEM if the block cannot be
    // mapped into it. Nothing stays allocated on any error.
    Result<goldfish_address_space_allocate_block> allocate_block(uint64_t size);
    // ENXIO if this file does not own a block at `offset`; the host's errno if
    // it refuses (the block then stays tracked: the host still holds it).
    Result<void> deallocate_block(uint64_t offset);
    // Forwards the request through the ping page; `offset` goes out (and comes
    // back, unless the host rewrites it) as BAR1 start + offset, wrapping past 2^64.
    Result<goldfish_address_space_ping> ping(const goldfish_address_space_ping& request);
    // EINVAL: empty, past BAR1 (or wrapping), or overlapping another claim of
    // this file. ENOSPC at the file's limit. With a memory file, memory the host
    // holds there (and no other file has) moves into it; anything else claimed
    // stays bookkeeping, and the file maps only zeros of its own there.
    Result<void> claim_shared(uint64_t offset, uint64_t size);
    Result<void> unclaim_shared(uint64_t offset);  // ENXIO if not claimed

    // The file to map for this open file's memory, if it has one (OpenOptions).
    std::optional<int> memory_fd() const GF_EXCLUDES(mutex_);

    // Destroys the host handle, then frees every owned block. Idempotent.
    void release();
    // release(), unless a client still maps this file's memory writably: then
    // nothing happens and it returns false (try again later), as a kernel
    // driver's release runs only once the last mapping is gone.
    bool release_if_unmapped();

    uint32_t handle() const { return handle_; }
    FileBooks books() const GF_EXCLUDES(mutex_);

  private:
    friend class Driver;
    friend struct Runtime;

    // `area` non-null: give the file a memory file onto it, if the platform can.
    static Result<std::shared_ptr<File>> open(const std::shared_ptr<Runtime>& runtime,
                                              const pci::SharedMemoryBar* area);
    // The common part of release() and release_if_unmapped(): false when
    // `only_if_unmapped` and the memory is still mapped.
    bool release_impl(bool only_if_unmapped);

    // Cleans up without passing the gate: called by the runtime, under its
    // file list lock, while BAR0 is still mapped (unbind's revocation, or a
    // release that unbind has not reached yet).
    void revoke();
    Result<void> check_live_locked() const GF_REQUIRES(mutex_);
    void cleanup_locked() GF_REQUIRES(mutex_);

    const std::shared_ptr<Runtime> runtime_;
    const uint32_t handle_;

    mutable Mutex mutex_;
    bool live_ GF_GUARDED_BY(mutex_) = true;
    RangeSet blocks_ GF_GUARDED_BY(mutex_);
    RangeSet claims_ GF_GUARDED_BY(mutex_);
    std::optional<pci::DmaPage> ping_page_ GF_GUARDED_BY(mutex_);
    std::optional<pci::BarFile> memory_ GF_GUARDED_BY(mutex_);
};

}  // namespace gf::driver
