// libFuzzer harness: the FUSE passthrough shim's protocol code (src/node/fuse_passthrough.h)
// on hostile bytes. One input is a request, fed to parse_request, and a reply cut into
// fuzzer-chosen iovecs, fed to reply_header, payload_u32, set_payload_u32,
// enable_in_init_reply and enable_in_open_reply. Every result is checked against a plain
// model of the reply as one byte string, and the iovecs live inside one guarded arena (guard
// bytes around and between them) so that a write outside them shows; the request is an
// exact-size heap copy, so ASan sees a read past its end. A violation traps.
//
// Input format (multi-byte fields little-endian; everything reads as zero past the end):
//   u16  request length (clamped to what is left), then the request's bytes
//   u8   options: bit 0, empty iovecs get a null base (else a pointer into a guard)
//   i32  backing id for enable_in_open_reply
//   u32  probe offset: bit 31 set, SIZE_MAX - (low byte); else the low 9 bits
//   u8   iovec count - 1 (modulo kMaxIovecs)
//   u8   length of each iovec but the last (clamped to what is left)
//   ...  the reply's bytes: the rest, the last iovec taking what the others left
// Seeds: fuzz/corpus/fuse_shim/, written by fuzz/make_shim_corpus.py.
#include <linux/fuse.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "node/fuse_passthrough.h"

namespace {

namespace pt = gf::node::passthrough;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            std::fprintf(stderr, "invariant: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            __builtin_trap();                                                           \
        }                                                                               \
    } while (0)

constexpr size_t kMaxIovecs = 8;
constexpr size_t kGuard = 16;
constexpr uint8_t kGuardByte = 0xA5;
constexpr size_t kHeader = sizeof(fuse_out_header);

class Input {
  public:
    explicit Input(std::span<const uint8_t> data) : data_(data) {}
    uint64_t read(size_t n) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i) {
            v |= uint64_t{byte()} << (8 * i);
        }
        return v;
    }
    uint8_t byte() { return at_ < data_.size() ? data_[at_++] : 0; }
    std::span<const uint8_t> take(size_t n) {
        n = std::min(n, data_.size() - at_);
        auto out = data_.subspan(at_, n);
        at_ += n;
        return out;
    }
    size_t left() const { return data_.size() - at_; }

  private:
    std::span<const uint8_t> data_;
    size_t at_ = 0;
};

uint32_t u32_of(const std::vector<uint8_t>& b, size_t offset) {
    uint32_t v;
    std::memcpy(&v, b.data() + offset, sizeof v);
    return v;
}

void put_u32(std::vector<uint8_t>& b, size_t offset, uint32_t v) {
    std::memcpy(b.data() + offset, &v, sizeof v);
}

void check_request(std::span<const uint8_t> bytes) {
    // An exact-size copy: a read past its end is a heap overflow.
    std::unique_ptr<std::byte[]> copy(new std::byte[bytes.size()]);
    if (!bytes.empty()) {
        std::memcpy(copy.get(), bytes.data(), bytes.size());
    }
    auto info = pt::parse_request(std::span<const std::byte>(copy.get(), bytes.size()));

    fuse_in_header h{};
    const bool has_header = bytes.size() >= sizeof h;
    if (has_header) {
        std::memcpy(&h, bytes.data(), sizeof h);
    }
    const size_t body = has_header ? bytes.size() - sizeof h : 0;
    const bool well_formed =
        has_header && h.len == bytes.size() && (h.opcode != FUSE_INIT || body >= 16);
    CHECK(static_cast<bool>(info) == well_formed);
    if (!info) {
        CHECK(info.error().value() == EINVAL);
        return;
    }
    CHECK(info->opcode == h.opcode);
    CHECK(info->unique == h.unique);
    CHECK(info->init_flags.has_value() == (h.opcode == FUSE_INIT));
    if (info->init_flags) {
        uint32_t flags, flags2 = 0;
        std::memcpy(&flags, bytes.data() + sizeof h + offsetof(fuse_init_in, flags), 4);
        if ((flags & FUSE_INIT_EXT) != 0 && body >= offsetof(fuse_init_in, flags2) + 4) {
            std::memcpy(&flags2, bytes.data() + sizeof h + offsetof(fuse_init_in, flags2), 4);
        }
        CHECK(static_cast<uint32_t>(*info->init_flags) == flags);
        CHECK(static_cast<uint32_t>(*info->init_flags >> 32) == flags2);
    }
}

// The reply's iovecs inside one arena: [guard][iov 0][guard][iov 1]...[guard].
class GuardedReply {
  public:
    GuardedReply(std::span<const uint8_t> bytes, std::span<const size_t> lengths, bool null_empty)
        : model_(bytes.begin(), bytes.end()) {
        size_t arena_size = kGuard;
        for (size_t len : lengths) {
            arena_size += len + kGuard;
        }
        arena_.assign(arena_size, kGuardByte);
        size_t at = kGuard, from = 0;
        for (size_t len : lengths) {
            if (len != 0) {  // an empty reply's data() may be null
                std::memcpy(arena_.data() + at, bytes.data() + from, len);
            }
            void* base = arena_.data() + at;
            if (len == 0 && null_empty) {
                base = nullptr;
            }
            iov_.push_back({base, len});
            starts_.push_back(at);
            at += len + kGuard;
            from += len;
        }
        CHECK(from == bytes.size() && at == arena_size);
    }

    std::span<const iovec> iov() const { return iov_; }
    std::vector<uint8_t>& model() { return model_; }
    size_t size() const { return model_.size(); }

    // The iovecs' contents equal the model and no guard byte changed.
    void check() const {
        size_t guard_from = 0, from = 0;
        for (size_t i = 0; i < iov_.size(); ++i) {
            for (size_t g = guard_from; g < starts_[i]; ++g) {
                CHECK(arena_[g] == kGuardByte);
            }
            const size_t len = iov_[i].iov_len;
            CHECK(len == 0 ||
                  std::memcmp(arena_.data() + starts_[i], model_.data() + from, len) == 0);
            from += len;
            guard_from = starts_[i] + len;
        }
        for (size_t g = guard_from; g < arena_.size(); ++g) {
            CHECK(arena_[g] == kGuardByte);
        }
    }

  private:
    std::vector<uint8_t> model_;  // what the reply must hold, as one string
    std::vector<uint8_t> arena_;
    std::vector<iovec> iov_;
    std::vector<size_t> starts_;
};

// Whether a u32 at payload offset `offset` is inside a reply of `size` bytes.
bool payload_has(size_t size, size_t offset) {
    return size >= kHeader + 4 && offset <= size - kHeader - 4;
}

void check_reply(GuardedReply& r, size_t probe, int32_t backing_id) {
    std::vector<uint8_t>& model = r.model();
    const size_t size = r.size();

    auto header = pt::reply_header(r.iov());
    CHECK(header.has_value() == (size >= kHeader));
    int32_t error = 0;
    if (header) {
        fuse_out_header h;
        std::memcpy(&h, model.data(), sizeof h);
        CHECK(header->unique == h.unique && header->error == h.error && header->len == h.len);
        error = h.error;
    }
    r.check();

    // Reads and writes at the probe offset and at every field the patches touch.
    for (size_t offset :
         {probe, pt::kInitOutFlagsOffset, pt::kInitOutFlags2Offset, pt::kInitOutMaxStackDepthOffset,
          pt::kOpenOutFlagsOffset, pt::kOpenOutBackingIdOffset}) {
        const bool there = payload_has(size, offset);
        auto got = pt::payload_u32(r.iov(), offset);
        CHECK(got.has_value() == there);
        if (there) {
            CHECK(*got == u32_of(model, kHeader + offset));
        }
        r.check();
        // Write the value back inverted, then restore it: two real writes.
        const uint32_t value = there ? ~*got : 0x5A5A5A5Au;
        CHECK(pt::set_payload_u32(r.iov(), offset, value) == there);
        if (there) {
            put_u32(model, kHeader + offset, value);
        }
        r.check();
        if (there) {
            CHECK(pt::set_payload_u32(r.iov(), offset, ~value));
            put_u32(model, kHeader + offset, ~value);
            r.check();
        }
    }

    // INIT: succeeds exactly on a successful reply long enough for max_stack_depth.
    const bool init_ok =
        header && error == 0 && size >= kHeader + pt::kInitOutMaxStackDepthOffset + 4;
    CHECK(pt::enable_in_init_reply(r.iov()) == init_ok);
    if (init_ok) {
        const size_t flags_at = kHeader + pt::kInitOutFlagsOffset;
        const size_t flags2_at = kHeader + pt::kInitOutFlags2Offset;
        put_u32(model, flags_at,
                (u32_of(model, flags_at) | FUSE_INIT_EXT) & ~uint32_t{FUSE_WRITEBACK_CACHE});
        put_u32(model, flags2_at,
                u32_of(model, flags2_at) | static_cast<uint32_t>(pt::kInitPassthrough >> 32));
        put_u32(model, kHeader + pt::kInitOutMaxStackDepthOffset, pt::kMaxStackDepth);
    }
    r.check();

    // OPEN: succeeds exactly on a successful fuse_open_out reply and a positive id.
    const bool open_ok =
        header && error == 0 && backing_id > 0 && size == kHeader + pt::kOpenOutSize;
    CHECK(pt::enable_in_open_reply(r.iov(), backing_id) == open_ok);
    if (open_ok) {
        const size_t flags_at = kHeader + pt::kOpenOutFlagsOffset;
        put_u32(model, flags_at, u32_of(model, flags_at) | pt::kOpenPassthrough);
        put_u32(model, kHeader + pt::kOpenOutBackingIdOffset, static_cast<uint32_t>(backing_id));
    }
    r.check();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(std::span(data, size));
    const size_t request_len = static_cast<size_t>(in.read(2));
    check_request(in.take(request_len));

    const uint8_t options = in.byte();
    const auto backing_id = static_cast<int32_t>(static_cast<uint32_t>(in.read(4)));
    const auto probe_raw = static_cast<uint32_t>(in.read(4));
    const size_t probe =
        (probe_raw & 0x8000'0000u) != 0 ? SIZE_MAX - (probe_raw & 0xFF) : probe_raw & 0x1FF;
    const size_t count = in.byte() % kMaxIovecs + 1;
    size_t lengths[kMaxIovecs];
    size_t left = 0;
    {
        // The lengths come before the bytes; clamp them to what the bytes turn out to be.
        size_t wanted[kMaxIovecs];
        for (size_t i = 0; i + 1 < count; ++i) {
            wanted[i] = in.byte();
        }
        left = in.left();
        size_t rest = left;
        for (size_t i = 0; i + 1 < count; ++i) {
            lengths[i] = std::min(wanted[i], rest);
            rest -= lengths[i];
        }
        lengths[count - 1] = rest;
    }
    GuardedReply reply(in.take(left), std::span(lengths, count), (options & 1) != 0);
    reply.check();
    check_reply(reply, probe, backing_id);
    return 0;
}
