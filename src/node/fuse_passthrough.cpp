#define FUSE_USE_VERSION 35
#include "node/fuse_passthrough.h"

#include <fuse_lowlevel.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace gf::node::passthrough {
namespace {

// The request this worker thread read last. FuseWorkers processes each request on the
// thread that read it, and libfuse answers OPEN synchronously inside the handler, so the
// OPEN reply a handler writes belongs to this request.
struct CurrentRequest {
    uint32_t opcode = 0;
    uint64_t unique = 0;
    int32_t backing_id = 0;  // set by the OPEN handler; 0: a plain reply
};
thread_local CurrentRequest t_current;

uint32_t load_u32(const std::byte* p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// Visits `n` bytes at byte `offset` of the whole iovec list (header included).
template <class Fn>
bool at_bytes(std::span<const iovec> iov, size_t offset, size_t n, Fn fn) {
    std::byte tmp[8];
    if (n > sizeof tmp || offset > SIZE_MAX - n) {
        return false;  // no iovec list reaches that far
    }
    size_t got = 0;
    size_t base = 0;
    // Gather the bytes (they may straddle iovecs), let fn change them, then scatter back.
    for (int pass = 0; pass < 2; ++pass) {
        got = 0;
        base = 0;
        for (const iovec& v : iov) {
            const size_t len = v.iov_len;
            if (offset + got >= base && offset + got < base + len) {
                while (got < n && offset + got < base + len) {
                    auto* p = static_cast<std::byte*>(v.iov_base) + (offset + got - base);
                    if (pass == 0) {
                        tmp[got] = *p;
                    } else {
                        *p = tmp[got];
                    }
                    ++got;
                }
            }
            base += len;
            if (got == n) {
                break;
            }
        }
        if (got != n) {
            return false;
        }
        if (pass == 0 && !fn(tmp)) {
            return true;  // a read: nothing to write back
        }
    }
    return true;
}

}  // namespace

Result<RequestInfo> parse_request(std::span<const std::byte> request) {
    if (request.size() < sizeof(fuse_in_header)) {
        return fail(EINVAL);
    }
    fuse_in_header header;
    std::memcpy(&header, request.data(), sizeof header);
    if (header.len != request.size()) {
        return fail(EINVAL);
    }
    RequestInfo info;
    info.opcode = header.opcode;
    info.unique = header.unique;
    if (header.opcode == FUSE_INIT) {
        const auto body = request.subspan(sizeof header);
        // major, minor, max_readahead, flags: the oldest INIT carries at least these.
        if (body.size() < 16) {
            return fail(EINVAL);
        }
        uint64_t flags = load_u32(body.data() + 12);
        if ((flags & FUSE_INIT_EXT) != 0 && body.size() >= 20) {
            flags |= uint64_t{load_u32(body.data() + 16)} << 32;
        }
        info.init_flags = flags;
    }
    return info;
}

std::optional<uint32_t> payload_u32(std::span<const iovec> iov, size_t offset) {
    std::optional<uint32_t> out;
    if (offset > SIZE_MAX - sizeof(fuse_out_header)) {
        return out;  // it would wrap around into the header
    }
    at_bytes(iov, sizeof(fuse_out_header) + offset, 4, [&](std::byte* p) {
        out = load_u32(p);
        return false;
    });
    return out;
}

bool set_payload_u32(std::span<const iovec> iov, size_t offset, uint32_t value) {
    if (offset > SIZE_MAX - sizeof(fuse_out_header)) {
        return false;
    }
    return at_bytes(iov, sizeof(fuse_out_header) + offset, 4, [&](std::byte* p) {
        std::memcpy(p, &value, sizeof value);
        return true;
    });
}

std::optional<ReplyHeader> reply_header(std::span<const iovec> iov) {
    std::byte raw[sizeof(fuse_out_header)];
    size_t got = 0;
    for (const iovec& v : iov) {
        const size_t take = std::min(v.iov_len, sizeof raw - got);
        if (take == 0) {
            continue;  // an empty iovec's base may be null, which memcpy must not get
        }
        std::memcpy(raw + got, v.iov_base, take);
        got += take;
        if (got == sizeof raw) {
            break;
        }
    }
    if (got != sizeof raw) {
        return std::nullopt;
    }
    fuse_out_header h;
    std::memcpy(&h, raw, sizeof h);
    return ReplyHeader{h.unique, h.error, h.len};
}

namespace {

size_t total_length(std::span<const iovec> iov) {
    size_t n = 0;
    for (const iovec& v : iov) {
        n += v.iov_len;
    }
    return n;
}

}  // namespace

bool enable_in_init_reply(std::span<const iovec> iov) {
    auto header = reply_header(iov);
    // The fields exist only in a full-size (7.23+) reply, which is what libfuse 3 sends.
    if (!header || header->error != 0 ||
        total_length(iov) < sizeof(fuse_out_header) + kInitOutMaxStackDepthOffset + 4) {
        return false;
    }
    uint32_t flags = *payload_u32(iov, kInitOutFlagsOffset);
    flags |= FUSE_INIT_EXT;
    flags &= ~static_cast<uint32_t>(FUSE_WRITEBACK_CACHE);
    const uint32_t flags2 =
        *payload_u32(iov, kInitOutFlags2Offset) | static_cast<uint32_t>(kInitPassthrough >> 32);
    set_payload_u32(iov, kInitOutFlagsOffset, flags);
    set_payload_u32(iov, kInitOutFlags2Offset, flags2);
    set_payload_u32(iov, kInitOutMaxStackDepthOffset, kMaxStackDepth);
    return true;
}

bool enable_in_open_reply(std::span<const iovec> iov, int32_t backing_id) {
    auto header = reply_header(iov);
    if (!header || header->error != 0 || backing_id <= 0 ||
        total_length(iov) != sizeof(fuse_out_header) + kOpenOutSize) {
        return false;
    }
    set_payload_u32(iov, kOpenOutFlagsOffset,
                    *payload_u32(iov, kOpenOutFlagsOffset) | kOpenPassthrough);
    set_payload_u32(iov, kOpenOutBackingIdOffset, static_cast<uint32_t>(backing_id));
    return true;
}

Result<void> Shim::install(fuse_session* session, int fd) {
    static constexpr fuse_custom_io io = {
        .writev = writev_hook,
        .read = read_hook,
        .splice_receive = nullptr,
        .splice_send = nullptr,
    };
    if (fuse_session_custom_io(session, &io, fd) != 0) {
        return fail(EINVAL);
    }
    return {};
}

void Shim::set_backing_id_for_this_reply(int32_t backing_id) {
    t_current.backing_id = backing_id;
}

Result<int32_t> Shim::open_backing(int fuse_fd, int fd) {
    BackingMap map{};
    map.fd = fd;
    const int id = ::ioctl(fuse_fd, kIocBackingOpen, &map);
    if (id < 0) {
        return fail(errno);
    }
    if (id == 0) {
        return fail(EIO);  // ids start at 1; 0 would mean "no backing file"
    }
    return static_cast<int32_t>(id);
}

void Shim::close_backing(int fuse_fd, int32_t backing_id) {
    uint32_t id = static_cast<uint32_t>(backing_id);
    ::ioctl(fuse_fd, kIocBackingClose, &id);
}

ssize_t Shim::read_hook(int fd, void* buf, size_t len, void* userdata) {
    const ssize_t n = ::read(fd, buf, len);
    t_current = {};
    if (n <= 0) {
        return n;
    }
    Shim& self = *static_cast<Shim*>(userdata);
    auto info =
        parse_request(std::span(static_cast<const std::byte*>(buf), static_cast<size_t>(n)));
    if (!info) {
        return n;  // libfuse reports the malformed request itself
    }
    t_current.opcode = info->opcode;
    t_current.unique = info->unique;
    if (info->init_flags) {
        self.kernel_flags_.store(*info->init_flags, std::memory_order_release);
        self.init_unique_.store(info->unique, std::memory_order_release);
    }
    return n;
}

ssize_t Shim::writev_hook(int fd, struct iovec* iov, int count, void* userdata) {
    Shim& self = *static_cast<Shim*>(userdata);
    const std::span<const iovec> reply(iov, static_cast<size_t>(count));
    const auto header = reply_header(reply);
    if (header && t_current.opcode == FUSE_INIT && header->unique == t_current.unique &&
        header->unique == self.init_unique_.load(std::memory_order_acquire)) {
        const bool offered = (self.kernel_flags() & kInitPassthrough) != 0;
        const bool on = self.want_ && offered && enable_in_init_reply(reply);
        const ssize_t n = ::writev(fd, iov, count);
        // The kernel applies the INIT reply inside writev: backing ids work from here on.
        self.negotiated_.store(on && n >= 0, std::memory_order_release);
        self.init_done_.store(true, std::memory_order_release);
        return n;
    }
    if (header && t_current.opcode == FUSE_OPEN && header->unique == t_current.unique &&
        t_current.backing_id > 0) {
        enable_in_open_reply(reply, t_current.backing_id);
        t_current.backing_id = 0;
    }
    return ::writev(fd, iov, count);
}

}  // namespace gf::node::passthrough
