// FUSE passthrough for a libfuse that predates it. Debian 12's libfuse 3.14 can neither
// negotiate passthrough in INIT nor return a backing id in an OPEN reply (its `want` is 32
// bits, its INIT reply has no max_stack_depth, its OPEN reply leaves the backing id as
// padding). The node therefore talks to /dev/fuse through fuse_session_custom_io() and
// this shim: it watches the requests libfuse reads and adds exactly those two ABI fields
// to the replies libfuse writes. Everything else is libfuse's own protocol handling.
//
// The protocol facts (Linux 6.9+, FUSE 7.40; include/uapi/linux/fuse.h) are defined here
// because Debian 12's <linux/fuse.h> is 7.38.
#pragma once

#include <linux/fuse.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/result.h"

struct fuse_session;

namespace gf::node::passthrough {

inline constexpr uint64_t kInitPassthrough = 1ull << 37;  // INIT flag (flags2 bit 5)
inline constexpr uint32_t kOpenPassthrough = 1u << 7;     // FOPEN_PASSTHROUGH
// A memfd lives on shmem, a file system with no stacking of its own: depth 1 suffices.
inline constexpr uint32_t kMaxStackDepth = 1;

// The 7.40 fuse_init_out and fuse_open_out fields the shim writes: byte offsets in the
// reply payloads (after the 16-byte fuse_out_header).
inline constexpr size_t kInitOutFlagsOffset = 12;
inline constexpr size_t kInitOutFlags2Offset = 32;
inline constexpr size_t kInitOutMaxStackDepthOffset = 36;
inline constexpr size_t kOpenOutFlagsOffset = 8;
inline constexpr size_t kOpenOutBackingIdOffset = 12;
inline constexpr size_t kOpenOutSize = 16;

struct BackingMap {
    int32_t fd;
    uint32_t flags;
    uint64_t padding;
};
inline constexpr unsigned long kIocBackingOpen = _IOW(229, 1, BackingMap);
inline constexpr unsigned long kIocBackingClose = _IOW(229, 2, uint32_t);

// What the shim needs to know of a request read from /dev/fuse.
struct RequestInfo {
    uint32_t opcode = 0;
    uint64_t unique = 0;
    // For FUSE_INIT: the kernel's offer, flags2 included when FUSE_INIT_EXT says it is there.
    std::optional<uint64_t> init_flags;
};

// Parses the header (and an INIT's flags) of one request; EINVAL if it is too short or its
// length field disagrees with the bytes read.
Result<RequestInfo> parse_request(std::span<const std::byte> request);

// Reads or writes a little-endian u32 at `offset` of the payload that follows the
// fuse_out_header in `iov` (the payload may span iovecs). False if it is not there.
std::optional<uint32_t> payload_u32(std::span<const iovec> iov, size_t offset);
bool set_payload_u32(std::span<const iovec> iov, size_t offset, uint32_t value);
// The reply's unique and error, or nullopt if iov does not hold a whole fuse_out_header.
struct ReplyHeader {
    uint64_t unique = 0;
    int32_t error = 0;
    uint32_t len = 0;
};
std::optional<ReplyHeader> reply_header(std::span<const iovec> iov);

// Turns passthrough on in a successful INIT reply (and the writeback cache off: the kernel
// refuses backing files on a connection that has it). False if the reply is too short to
// carry the fields, in which case it is left as it was.
bool enable_in_init_reply(std::span<const iovec> iov);
// Marks a successful OPEN reply as passthrough to `backing_id`. False if it is not one.
bool enable_in_open_reply(std::span<const iovec> iov, int32_t backing_id);

// The shim itself: installed on a session in place of plain read/writev on the fd. libfuse
// hands the hooks the session's userdata, so the session must be created with the shim as
// its userdata; the shim carries the file system's own context for the handlers.
class Shim {
  public:
    // `want` false: the shim only watches (passthrough stays off, as on an old kernel).
    Shim(bool want, void* context) : want_(want), context_(context) {}
    Shim(const Shim&) = delete;
    Shim& operator=(const Shim&) = delete;

    template <class T>
    T& context() const {
        return *static_cast<T*>(context_);
    }

    // fuse_session_custom_io(session, ..., fd); the session then closes fd when destroyed.
    Result<void> install(fuse_session* session, int fd);

    // Whether INIT has been answered, and whether passthrough was negotiated in it.
    bool init_done() const { return init_done_.load(std::memory_order_acquire); }
    bool negotiated() const { return negotiated_.load(std::memory_order_acquire); }
    // What the kernel offered (0 before INIT).
    uint64_t kernel_flags() const { return kernel_flags_.load(std::memory_order_acquire); }

    // Called from an OPEN handler, on the worker thread that read the OPEN, just before it
    // replies: the reply goes out as passthrough to this backing id.
    static void set_backing_id_for_this_reply(int32_t backing_id);

    // Registers `fd` with the connection (CAP_SYS_ADMIN; after INIT): a backing id, or errno.
    static Result<int32_t> open_backing(int fuse_fd, int fd);
    static void close_backing(int fuse_fd, int32_t backing_id);

  private:
    static ssize_t read_hook(int fd, void* buf, size_t len, void* self);
    static ssize_t writev_hook(int fd, struct iovec* iov, int count, void* self);

    const bool want_;
    void* const context_;
    std::atomic<uint64_t> init_unique_{0};
    std::atomic<uint64_t> kernel_flags_{0};
    std::atomic<bool> init_done_{false};
    std::atomic<bool> negotiated_{false};
};

}  // namespace gf::node::passthrough
