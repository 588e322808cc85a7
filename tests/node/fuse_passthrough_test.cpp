// The passthrough shim on hand-built protocol bytes (the real <linux/fuse.h> structs), and
// its hooks end to end through libfuse's public session API over a socket pair that stands
// in for /dev/fuse: no kernel, no mount, no root.
#define FUSE_USE_VERSION 35
#include "node/fuse_passthrough.h"

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <span>
#include <vector>

#include <gtest/gtest.h>

namespace gf::node::passthrough {
namespace {

// The shim's offsets are those of the real structs (7.38 names the 7.40 fields `unused[0]`
// and `padding`).
static_assert(kInitOutFlagsOffset == offsetof(fuse_init_out, flags));
static_assert(kInitOutFlags2Offset == offsetof(fuse_init_out, flags2));
static_assert(kInitOutMaxStackDepthOffset == offsetof(fuse_init_out, unused));
static_assert(kOpenOutFlagsOffset == offsetof(fuse_open_out, open_flags));
static_assert(kOpenOutBackingIdOffset == offsetof(fuse_open_out, padding));
static_assert(kOpenOutSize == sizeof(fuse_open_out));
static_assert(sizeof(fuse_out_header) == 16 && sizeof(fuse_in_header) == 40);
// The upstream numbers (include/uapi/linux/fuse.h, 7.40).
static_assert(kInitPassthrough >> 32 == 1u << 5);
static_assert(kOpenPassthrough == 1u << 7);
static_assert(sizeof(BackingMap) == 16);
static_assert(kIocBackingOpen == 0x4010e501);
static_assert(kIocBackingClose == 0x4004e502);

using Bytes = std::vector<std::byte>;

template <class T>
std::span<const std::byte> bytes_of(const T& v) {
    return std::as_bytes(std::span(&v, 1));
}

// resize + memcpy rather than insert: g++ 12 at -O2 warns falsely about the inlined insert.
void append(Bytes& out, std::span<const std::byte> part) {
    if (part.empty()) {
        return;
    }
    const size_t at = out.size();
    out.resize(at + part.size());
    std::memcpy(out.data() + at, part.data(), part.size());
}

uint32_t u32_at(const Bytes& b, size_t offset) {
    uint32_t v;
    std::memcpy(&v, b.data() + offset, sizeof v);
    return v;
}

void put_u32(Bytes& b, size_t offset, uint32_t v) {
    std::memcpy(b.data() + offset, &v, sizeof v);
}

Bytes request(uint32_t opcode, uint64_t unique, std::span<const std::byte> body = {}) {
    fuse_in_header h{};
    h.len = static_cast<uint32_t>(sizeof h + body.size());
    h.opcode = opcode;
    h.unique = unique;
    h.nodeid = 1;
    h.uid = 1000;
    h.gid = 1000;
    h.pid = 4242;
    Bytes out;
    append(out, bytes_of(h));
    append(out, body);
    return out;
}

Bytes reply(uint64_t unique, int32_t error, std::span<const std::byte> payload = {}) {
    fuse_out_header h{};
    h.len = static_cast<uint32_t>(sizeof h + payload.size());
    h.error = error;
    h.unique = unique;
    Bytes out;
    append(out, bytes_of(h));
    append(out, payload);
    return out;
}

// `buf` as iovecs cut at `cuts` (ascending; a repeated cut, or one at either end, gives a
// zero-length iovec).
std::vector<iovec> split(Bytes& buf, const std::vector<size_t>& cuts) {
    std::vector<iovec> iov;
    size_t at = 0;
    for (size_t cut : cuts) {
        iov.push_back({buf.data() + at, cut - at});
        at = cut;
    }
    iov.push_back({buf.data() + at, buf.size() - at});
    return iov;
}

// Every ascending list of up to `max_cuts` cut points in [0, size].
void for_each_split(size_t size, size_t max_cuts,
                    const std::function<void(const std::vector<size_t>&)>& fn) {
    std::vector<size_t> cuts;
    std::function<void(size_t)> rec = [&](size_t from) {
        fn(cuts);
        if (cuts.size() == max_cuts) {
            return;
        }
        for (size_t c = from; c <= size; ++c) {
            cuts.push_back(c);
            rec(c);
            cuts.pop_back();
        }
    };
    rec(0);
}

std::string describe(const std::vector<size_t>& cuts) {
    std::string s = "cuts:";
    for (size_t c : cuts) {
        s += ' ';
        s += std::to_string(c);
    }
    return s;
}

// A full-size INIT reply as libfuse 3.14 builds it (its own 7.31 struct is the same 64
// bytes), with every field distinct so that a stray write shows.
fuse_init_out sample_init_out() {
    fuse_init_out out{};
    out.major = 7;
    out.minor = 31;
    out.max_readahead = 128 * 1024;
    out.flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_WRITEBACK_CACHE | FUSE_DO_READDIRPLUS |
                FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;
    out.max_background = 12;
    out.congestion_threshold = 9;
    out.max_write = 1 << 20;
    out.time_gran = 1;
    out.max_pages = 256;
    out.map_alignment = 3;
    out.flags2 = static_cast<uint32_t>(FUSE_SECURITY_CTX >> 32);
    for (size_t i = 0; i < std::size(out.unused); ++i) {
        out.unused[i] = 0xE0E0E000u + static_cast<uint32_t>(i);
    }
    return out;
}

fuse_init_out patched_init_out(fuse_init_out out) {
    out.flags = (out.flags | FUSE_INIT_EXT) & ~static_cast<uint32_t>(FUSE_WRITEBACK_CACHE);
    out.flags2 |= static_cast<uint32_t>(kInitPassthrough >> 32);
    out.unused[0] = kMaxStackDepth;  // max_stack_depth in 7.40
    return out;
}

fuse_open_out sample_open_out() {
    fuse_open_out out{};
    out.fh = 0x1122334455667788ull;
    out.open_flags = FOPEN_DIRECT_IO | FOPEN_KEEP_CACHE | FOPEN_NOFLUSH;
    out.padding = 0;
    return out;
}

// ---------------------------------------------------------------------------------------
// parse_request

TEST(ParseRequest, RefusesAnythingShorterThanTheHeader) {
    for (size_t n = 0; n < sizeof(fuse_in_header); ++n) {
        Bytes buf = request(FUSE_GETATTR, 7);
        buf.resize(n);
        if (n >= 4) {
            put_u32(buf, 0, static_cast<uint32_t>(n));  // even when the length field agrees
        }
        auto info = parse_request(buf);
        ASSERT_FALSE(info) << n;
        EXPECT_EQ(info.error().value(), EINVAL);
    }
}

TEST(ParseRequest, RefusesALengthFieldThatDisagreesWithTheBytesRead) {
    fuse_getattr_in body{};
    const Bytes good = request(FUSE_GETATTR, 7, bytes_of(body));
    ASSERT_TRUE(parse_request(good));
    for (uint32_t len : {0u, 1u, 40u, static_cast<uint32_t>(good.size() - 1),
                         static_cast<uint32_t>(good.size() + 1), UINT32_MAX}) {
        Bytes buf = good;
        put_u32(buf, 0, len);
        auto info = parse_request(buf);
        ASSERT_FALSE(info) << len;
        EXPECT_EQ(info.error().value(), EINVAL);
    }
    // Two requests in one read: the first one's length is not what was read.
    Bytes two = good;
    append(two, good);
    EXPECT_FALSE(parse_request(two));
    // Extra bytes after a correctly sized request.
    Bytes trailing = good;
    trailing.push_back(std::byte{0});
    EXPECT_FALSE(parse_request(trailing));
}

TEST(ParseRequest, NonInitOpcodesCarryNoInitFlags) {
    fuse_open_in open{};
    open.flags = 02;
    // A body that would read as an INIT with every flag, under another opcode.
    fuse_init_in lookalike{};
    lookalike.flags = 0xFFFFFFFFu;
    lookalike.flags2 = 0xFFFFFFFFu;
    struct Case {
        uint32_t opcode;
        std::span<const std::byte> body;
    };
    for (const Case& c : {Case{FUSE_OPEN, bytes_of(open)}, Case{FUSE_OPEN, {}},
                          Case{FUSE_LOOKUP, std::as_bytes(std::span("name", 5))},
                          Case{FUSE_GETATTR, bytes_of(lookalike)}, Case{FUSE_RELEASE, {}},
                          Case{FUSE_IOCTL, bytes_of(lookalike)}, Case{FUSE_DESTROY, {}},
                          Case{FUSE_INTERRUPT, bytes_of(lookalike)}, Case{0, bytes_of(lookalike)},
                          Case{CUSE_INIT, bytes_of(lookalike)}, Case{UINT32_MAX, {}}}) {
        const Bytes buf = request(c.opcode, 0xABCDEF0123456789ull, c.body);
        auto info = parse_request(buf);
        ASSERT_TRUE(info) << c.opcode;
        EXPECT_EQ(info->opcode, c.opcode);
        EXPECT_EQ(info->unique, 0xABCDEF0123456789ull);
        EXPECT_FALSE(info->init_flags) << c.opcode;
    }
}

TEST(ParseRequest, InitWithoutInitExtIgnoresFlags2) {
    fuse_init_in in{};
    in.major = 7;
    in.minor = 38;
    in.max_readahead = 128 * 1024;
    in.flags = FUSE_ASYNC_READ | FUSE_WRITEBACK_CACHE | FUSE_MAX_PAGES | FUSE_INIT_RESERVED;
    in.flags2 = 0xFFFFFFFFu;  // not there as far as the flags say
    auto info = parse_request(request(FUSE_INIT, 1, bytes_of(in)));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->opcode, FUSE_INIT);
    EXPECT_EQ(info->unique, 1u);
    ASSERT_TRUE(info->init_flags);
    EXPECT_EQ(*info->init_flags, uint64_t{in.flags});
}

TEST(ParseRequest, InitWithInitExtCarriesFlags2) {
    // The offer measured from kernel 6.18 (the research notes behind docs/node.md#mmap).
    constexpr uint64_t kOffer = 0x5fd73fffffbull;
    static_assert((kOffer & FUSE_INIT_EXT) != 0 && (kOffer & kInitPassthrough) != 0);
    fuse_init_in in{};
    in.major = 7;
    in.minor = 45;
    in.flags = static_cast<uint32_t>(kOffer);
    in.flags2 = static_cast<uint32_t>(kOffer >> 32);
    std::fill(std::begin(in.unused), std::end(in.unused), 0xFFFFFFFFu);  // ignored
    auto info = parse_request(request(FUSE_INIT, 2, bytes_of(in)));
    ASSERT_TRUE(info);
    ASSERT_TRUE(info->init_flags);
    EXPECT_EQ(*info->init_flags, kOffer);
    EXPECT_NE(*info->init_flags & kInitPassthrough, 0u);
}

TEST(ParseRequest, OldKernelsShortInitBody) {
    // Before 7.36 the INIT body was major, minor, max_readahead, flags: 16 bytes.
    fuse_init_in in{};
    in.major = 7;
    in.minor = 31;
    in.flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES;
    in.flags2 = 0x20;
    for (size_t body = 16; body < 20; ++body) {
        auto info = parse_request(request(FUSE_INIT, 3, bytes_of(in).first(body)));
        ASSERT_TRUE(info) << body;
        EXPECT_EQ(info->init_flags, uint64_t{in.flags}) << body;
    }
    // INIT_EXT claimed, but the body ends before flags2: the flags alone, not an error.
    in.flags |= FUSE_INIT_EXT;
    for (size_t body = 16; body < 20; ++body) {
        auto info = parse_request(request(FUSE_INIT, 3, bytes_of(in).first(body)));
        ASSERT_TRUE(info) << body;
        EXPECT_EQ(info->init_flags, uint64_t{in.flags}) << body;
    }
    // 20 bytes: flags2 is there.
    auto info = parse_request(request(FUSE_INIT, 3, bytes_of(in).first(20)));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->init_flags, uint64_t{in.flags} | uint64_t{0x20} << 32);
}

TEST(ParseRequest, RefusesAnInitBodyWithoutFlags) {
    fuse_init_in in{};
    in.flags = FUSE_INIT_EXT;
    for (size_t body = 0; body < 16; ++body) {
        auto info = parse_request(request(FUSE_INIT, 4, bytes_of(in).first(body)));
        ASSERT_FALSE(info) << body;
        EXPECT_EQ(info.error().value(), EINVAL);
    }
}

// ---------------------------------------------------------------------------------------
// reply_header, payload_u32, set_payload_u32

TEST(ReplyHeader, NeedsAWholeHeader) {
    EXPECT_FALSE(reply_header({}));
    Bytes buf = reply(9, 0);
    for (size_t n = 0; n < buf.size(); ++n) {
        Bytes part(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
        iovec one{part.data(), part.size()};
        EXPECT_FALSE(reply_header(std::span(&one, 1))) << n;
    }
    std::vector<iovec> empties(3, iovec{buf.data(), 0});
    EXPECT_FALSE(reply_header(empties));
}

TEST(ReplyHeader, ReadsTheHeaderAcrossEverySplit) {
    const fuse_open_out open = sample_open_out();
    Bytes buf = reply(0x8877665544332211ull, -ENOENT, bytes_of(open));
    for_each_split(buf.size(), 3, [&](const std::vector<size_t>& cuts) {
        auto h = reply_header(split(buf, cuts));
        ASSERT_TRUE(h) << describe(cuts);
        EXPECT_EQ(h->unique, 0x8877665544332211ull);
        EXPECT_EQ(h->error, -ENOENT);
        EXPECT_EQ(h->len, buf.size());
    });
}

TEST(PayloadU32, ReadsAndWritesEveryOffsetAcrossEverySplit) {
    // 16 payload bytes, each distinct.
    Bytes payload(16);
    for (size_t i = 0; i < payload.size(); ++i) {
        payload[i] = std::byte(0xA0 + i);
    }
    const Bytes original = reply(5, 0, payload);
    constexpr uint32_t kValue = 0x0D0C0B0Au;
    for_each_split(original.size(), 3, [&](const std::vector<size_t>& cuts) {
        Bytes buf = original;
        const std::vector<iovec> iov = split(buf, cuts);
        for (size_t offset = 0; offset <= payload.size() + 4; ++offset) {
            const bool inside = offset + 4 <= payload.size();
            const auto got = payload_u32(iov, offset);
            if (inside) {
                ASSERT_EQ(got, u32_at(original, 16 + offset)) << describe(cuts) << " @" << offset;
            } else {
                ASSERT_FALSE(got) << describe(cuts) << " @" << offset;
            }
            ASSERT_EQ(set_payload_u32(iov, offset, kValue), inside)
                << describe(cuts) << " @" << offset;
            Bytes expected = original;
            if (inside) {
                put_u32(expected, 16 + offset, kValue);
            }
            ASSERT_EQ(buf, expected) << describe(cuts) << " @" << offset;
            std::copy(original.begin(), original.end(), buf.begin());  // iov stays valid
        }
    });
}

TEST(PayloadU32, OffsetsNearSizeMaxAreNotThere) {
    // 16 + offset must not wrap around to the header.
    const fuse_open_out open = sample_open_out();
    const Bytes original = reply(5, 0, bytes_of(open));
    Bytes buf = original;
    iovec one{buf.data(), buf.size()};
    const std::span<const iovec> iov(&one, 1);
    for (size_t back = 0; back <= 40; ++back) {
        const size_t offset = SIZE_MAX - back;
        EXPECT_FALSE(payload_u32(iov, offset)) << back;
        EXPECT_FALSE(set_payload_u32(iov, offset, 0xFFFFFFFFu)) << back;
    }
    EXPECT_EQ(buf, original);
}

TEST(PayloadU32, NullBasedEmptyIovecsAreSkipped) {
    // writev accepts {nullptr, 0} anywhere; nothing may touch such a base.
    const fuse_open_out open = sample_open_out();
    const Bytes original = reply(5, 0, bytes_of(open));
    Bytes buf = original;
    std::vector<iovec> iov = {{nullptr, 0},          {buf.data(), 10}, {nullptr, 0},
                              {buf.data() + 10, 15}, {nullptr, 0},     {buf.data() + 25, 7},
                              {nullptr, 0}};
    auto h = reply_header(iov);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->unique, 5u);
    EXPECT_EQ(payload_u32(iov, kOpenOutFlagsOffset), open.open_flags);
    EXPECT_TRUE(set_payload_u32(iov, kOpenOutBackingIdOffset, 3));
    EXPECT_EQ(u32_at(buf, 16 + kOpenOutBackingIdOffset), 3u);
    EXPECT_FALSE(payload_u32(iov, 13));
    std::vector<iovec> only_null = {{nullptr, 0}, {nullptr, 0}};
    EXPECT_FALSE(reply_header(only_null));
    EXPECT_FALSE(payload_u32(only_null, 0));
    EXPECT_FALSE(set_payload_u32(only_null, 0, 1));
}

// ---------------------------------------------------------------------------------------
// enable_in_init_reply

TEST(InitReply, SetsPassthroughAndKeepsEverythingElseAcrossEverySplit) {
    const fuse_init_out in = sample_init_out();
    const Bytes original = reply(1, 0, bytes_of(in));
    Bytes expected = reply(1, 0, bytes_of(patched_init_out(in)));
    for_each_split(original.size(), 2, [&](const std::vector<size_t>& cuts) {
        Bytes buf = original;
        ASSERT_TRUE(enable_in_init_reply(split(buf, cuts))) << describe(cuts);
        ASSERT_EQ(buf, expected) << describe(cuts);
    });
}

TEST(InitReply, FieldByField) {
    fuse_init_out in = sample_init_out();
    in.flags |= FUSE_INIT_RESERVED;
    Bytes buf = reply(1, 0, bytes_of(in));
    iovec one{buf.data(), buf.size()};
    ASSERT_TRUE(enable_in_init_reply(std::span(&one, 1)));
    fuse_init_out out;
    std::memcpy(&out, buf.data() + 16, sizeof out);
    EXPECT_NE(out.flags & FUSE_INIT_EXT, 0u);
    EXPECT_EQ(out.flags & FUSE_WRITEBACK_CACHE, 0u);
    EXPECT_EQ(out.flags | FUSE_WRITEBACK_CACHE, in.flags | FUSE_INIT_EXT);  // others kept
    EXPECT_EQ(out.flags2, in.flags2 | (1u << 5));
    EXPECT_EQ(out.unused[0], 1u);  // max_stack_depth
    EXPECT_EQ(out.major, in.major);
    EXPECT_EQ(out.minor, in.minor);
    EXPECT_EQ(out.max_write, in.max_write);
    EXPECT_EQ(out.max_pages, in.max_pages);
    EXPECT_EQ(out.unused[1], in.unused[1]);
    EXPECT_EQ(out.unused[6], in.unused[6]);
}

TEST(InitReply, IsIdempotent) {
    Bytes buf = reply(1, 0, bytes_of(sample_init_out()));
    iovec one{buf.data(), buf.size()};
    ASSERT_TRUE(enable_in_init_reply(std::span(&one, 1)));
    const Bytes once = buf;
    ASSERT_TRUE(enable_in_init_reply(std::span(&one, 1)));
    EXPECT_EQ(buf, once);
}

TEST(InitReply, LeavesAnErrorReplyAlone) {
    const fuse_init_out in = sample_init_out();
    for (const Bytes& original : {reply(1, -EPROTO), reply(1, -EPROTO, bytes_of(in)),
                                  reply(1, -ENOSYS, bytes_of(in)), reply(1, 1, bytes_of(in))}) {
        Bytes buf = original;
        iovec one{buf.data(), buf.size()};
        EXPECT_FALSE(enable_in_init_reply(std::span(&one, 1)));
        EXPECT_EQ(buf, original);
    }
}

TEST(InitReply, LeavesAShortReplyAloneAndSaysSo) {
    const fuse_init_out in = sample_init_out();
    // The compat sizes (8: before 7.5; 24: before 7.23), and one byte short of
    // max_stack_depth's end.
    for (size_t size : {size_t{0}, size_t{FUSE_COMPAT_INIT_OUT_SIZE},
                        size_t{FUSE_COMPAT_22_INIT_OUT_SIZE}, size_t{32}, size_t{36}, size_t{39}}) {
        const Bytes original = reply(1, 0, bytes_of(in).first(size));
        for_each_split(original.size(), 1, [&](const std::vector<size_t>& cuts) {
            Bytes buf = original;
            EXPECT_FALSE(enable_in_init_reply(split(buf, cuts))) << size << describe(cuts);
            EXPECT_EQ(buf, original) << size;
        });
    }
    Bytes partial_header(10);
    iovec one{partial_header.data(), partial_header.size()};
    EXPECT_FALSE(enable_in_init_reply(std::span(&one, 1)));
    EXPECT_FALSE(enable_in_init_reply({}));
}

TEST(InitReply, FortyBytesAreEnough) {
    const fuse_init_out in = sample_init_out();
    Bytes buf = reply(1, 0, bytes_of(in).first(40));
    iovec one{buf.data(), buf.size()};
    ASSERT_TRUE(enable_in_init_reply(std::span(&one, 1)));
    const Bytes full = reply(1, 0, bytes_of(patched_init_out(in)));
    EXPECT_TRUE(std::equal(buf.begin() + 16, buf.end(), full.begin() + 16));
}

// ---------------------------------------------------------------------------------------
// enable_in_open_reply

TEST(OpenReply, OrsTheFlagAndWritesTheIdAcrossEverySplit) {
    const fuse_open_out in = sample_open_out();
    const Bytes original = reply(77, 0, bytes_of(in));
    fuse_open_out want = in;
    want.open_flags |= FOPEN_DIRECT_IO | kOpenPassthrough;
    want.padding = 42;
    const Bytes expected = reply(77, 0, bytes_of(want));
    for_each_split(original.size(), 3, [&](const std::vector<size_t>& cuts) {
        Bytes buf = original;
        ASSERT_TRUE(enable_in_open_reply(split(buf, cuts), 42)) << describe(cuts);
        ASSERT_EQ(buf, expected) << describe(cuts);
    });
}

TEST(OpenReply, LargestId) {
    Bytes buf = reply(77, 0, bytes_of(sample_open_out()));
    iovec one{buf.data(), buf.size()};
    ASSERT_TRUE(enable_in_open_reply(std::span(&one, 1), INT32_MAX));
    EXPECT_EQ(u32_at(buf, 16 + kOpenOutBackingIdOffset), uint32_t{INT32_MAX});
    EXPECT_NE(u32_at(buf, 16 + kOpenOutFlagsOffset) & kOpenPassthrough, 0u);
}

TEST(OpenReply, RefusesABackingIdThatIsNotPositive) {
    const Bytes original = reply(77, 0, bytes_of(sample_open_out()));
    for (int32_t id : {0, -1, -42, INT32_MIN}) {
        Bytes buf = original;
        iovec one{buf.data(), buf.size()};
        EXPECT_FALSE(enable_in_open_reply(std::span(&one, 1), id)) << id;
        EXPECT_EQ(buf, original) << id;
    }
}

TEST(OpenReply, RefusesAnErrorReply) {
    for (const Bytes& original :
         {reply(77, -EACCES), reply(77, -EBUSY, bytes_of(sample_open_out())),
          reply(77, 5, bytes_of(sample_open_out()))}) {
        Bytes buf = original;
        iovec one{buf.data(), buf.size()};
        EXPECT_FALSE(enable_in_open_reply(std::span(&one, 1), 1));
        EXPECT_EQ(buf, original);
    }
}

TEST(OpenReply, RefusesAnythingButAnOpenOutPayload) {
    const fuse_open_out open = sample_open_out();
    // A CREATE reply: fuse_entry_out then fuse_open_out.
    Bytes create_payload;
    append(create_payload, bytes_of(fuse_entry_out{}));
    append(create_payload, bytes_of(open));
    Bytes longer;
    append(longer, bytes_of(open));
    longer.push_back(std::byte{0});
    for (const Bytes& original : {reply(77, 0), reply(77, 0, bytes_of(open).first(15)),
                                  reply(77, 0, bytes_of(open).first(8)), reply(77, 0, longer),
                                  reply(77, 0, create_payload)}) {
        for_each_split(original.size(), 1, [&](const std::vector<size_t>& cuts) {
            Bytes buf = original;
            EXPECT_FALSE(enable_in_open_reply(split(buf, cuts), 1))
                << original.size() << describe(cuts);
            EXPECT_EQ(buf, original);
        });
    }
    EXPECT_FALSE(enable_in_open_reply({}, 1));
}

// ---------------------------------------------------------------------------------------
// The hooks, through libfuse's public session API: a SOCK_SEQPACKET pair keeps one request
// per read and one reply per writev, as /dev/fuse does.

struct FsContext {
    int opens = 0;
    bool want_writeback = false;
    uint64_t want_seen = 0;
};

FsContext& fs(fuse_req_t req) {
    return static_cast<Shim*>(fuse_req_userdata(req))->context<FsContext>();
}

constexpr fuse_ino_t kPassthroughIno = 2;  // answered with backing id kBackingId
constexpr fuse_ino_t kRefusedIno = 3;      // backing id set, then an error reply
constexpr fuse_ino_t kPlainIno = 4;        // no backing id
constexpr int32_t kBackingId = 5;
constexpr uint64_t kFh = 0xF00DF00Dull;

fuse_lowlevel_ops session_ops() {
    fuse_lowlevel_ops ops{};
    ops.init = [](void* userdata, fuse_conn_info* conn) {
        auto& ctx = static_cast<Shim*>(userdata)->context<FsContext>();
        if (ctx.want_writeback) {
            conn->want |= FUSE_CAP_WRITEBACK_CACHE;
        }
        ctx.want_seen = conn->want;
    };
    ops.open = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
        ++fs(req).opens;
        if (ino == kPassthroughIno || ino == kRefusedIno) {
            Shim::set_backing_id_for_this_reply(kBackingId);
        }
        if (ino == kRefusedIno) {
            fuse_reply_err(req, EACCES);
            return;
        }
        fi->fh = kFh;
        fi->direct_io = 1;
        fuse_reply_open(req, fi);
    };
    return ops;
}

class ShimSession : public ::testing::Test {
  protected:
    void start(bool want) {
        shim_.emplace(want, &ctx_);
        int fds[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
        kernel_ = fds[1];
        const char* argv[] = {"fuse_passthrough_test"};
        fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
        static const fuse_lowlevel_ops ops = session_ops();
        session_ = fuse_session_new(&args, &ops, sizeof ops, &*shim_);
        fuse_opt_free_args(&args);
        ASSERT_NE(session_, nullptr);
        ASSERT_TRUE(shim_->install(session_, fds[0]));  // the session closes fds[0]
    }

    void TearDown() override {
        if (session_ != nullptr) {
            fuse_session_destroy(session_);
        }
        std::free(buf_.mem);
        if (kernel_ >= 0) {
            ::close(kernel_);
        }
    }

    // Sends one request as the kernel and lets the session read and answer it; returns the
    // reply (empty if there was none).
    Bytes exchange(const Bytes& req) {
        EXPECT_EQ(::send(kernel_, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
        const int got = fuse_session_receive_buf(session_, &buf_);
        EXPECT_EQ(got, static_cast<int>(req.size()));
        if (got > 0) {
            fuse_session_process_buf(session_, &buf_);
        }
        Bytes out(64 * 1024);
        const ssize_t n = ::recv(kernel_, out.data(), out.size(), MSG_DONTWAIT);
        out.resize(n > 0 ? static_cast<size_t>(n) : 0);
        return out;
    }

    Bytes init(uint64_t offer) {
        fuse_init_in in{};
        in.major = FUSE_KERNEL_VERSION;
        in.minor = 45;
        in.max_readahead = 128 * 1024;
        in.flags = static_cast<uint32_t>(offer);
        in.flags2 = static_cast<uint32_t>(offer >> 32);
        return exchange(request(FUSE_INIT, kInitUnique, bytes_of(in)));
    }

    Bytes open(fuse_ino_t ino, uint64_t unique) {
        fuse_open_in in{};
        in.flags = 02;  // O_RDWR
        Bytes req = request(FUSE_OPEN, unique, bytes_of(in));
        std::memcpy(req.data() + offsetof(fuse_in_header, nodeid), &ino, sizeof ino);
        return exchange(req);
    }

    static fuse_init_out init_out(const Bytes& r) {
        fuse_init_out out{};
        EXPECT_EQ(r.size(), sizeof(fuse_out_header) + sizeof out);
        std::memcpy(&out, r.data() + 16, std::min(sizeof out, r.size() - 16));
        return out;
    }

    static constexpr uint64_t kInitUnique = 2;
    // What a 6.9+ kernel offers (the flags libfuse 3.14 knows plus INIT_EXT and passthrough).
    static constexpr uint64_t kOffer = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC |
                                       FUSE_EXPORT_SUPPORT | FUSE_BIG_WRITES | FUSE_DONT_MASK |
                                       FUSE_WRITEBACK_CACHE | FUSE_MAX_PAGES | FUSE_INIT_EXT |
                                       kInitPassthrough;

    FsContext ctx_;
    std::optional<Shim> shim_;
    fuse_session* session_ = nullptr;
    fuse_buf buf_{};
    int kernel_ = -1;
};

TEST_F(ShimSession, InitNegotiatesPassthroughWhenOfferedAndWanted) {
    ctx_.want_writeback = true;
    start(true);
    EXPECT_FALSE(shim_->init_done());
    const Bytes r = init(kOffer);
    auto h = reply_header(std::vector<iovec>{{const_cast<std::byte*>(r.data()), r.size()}});
    ASSERT_TRUE(h);
    EXPECT_EQ(h->unique, kInitUnique);
    EXPECT_EQ(h->error, 0);
    const fuse_init_out out = init_out(r);
    EXPECT_EQ(out.major, 7u);
    EXPECT_NE(out.flags & FUSE_INIT_EXT, 0u);
    EXPECT_EQ(out.flags & FUSE_WRITEBACK_CACHE, 0u);  // libfuse asked; the shim took it away
    EXPECT_NE(ctx_.want_seen & FUSE_CAP_WRITEBACK_CACHE, 0u);
    EXPECT_NE(out.flags & FUSE_ASYNC_READ, 0u);  // libfuse's own choices stay
    EXPECT_EQ(out.flags2, 1u << 5);
    EXPECT_EQ(out.unused[0], kMaxStackDepth);
    EXPECT_TRUE(shim_->init_done());
    EXPECT_TRUE(shim_->negotiated());
    EXPECT_EQ(shim_->kernel_flags(), kOffer);
}

TEST_F(ShimSession, WatchOnlyLeavesInitAlone) {
    ctx_.want_writeback = true;
    start(false);
    const fuse_init_out out = init_out(init(kOffer));
    EXPECT_EQ(out.flags2, 0u);
    EXPECT_EQ(out.unused[0], 0u);
    EXPECT_NE(out.flags & FUSE_WRITEBACK_CACHE, 0u);
    EXPECT_TRUE(shim_->init_done());
    EXPECT_FALSE(shim_->negotiated());
    EXPECT_EQ(shim_->kernel_flags(), kOffer);
}

TEST_F(ShimSession, AKernelWithoutPassthroughGetsLibfusesReply) {
    start(true);
    const uint64_t offer = kOffer & ~(kInitPassthrough | FUSE_INIT_EXT);
    const fuse_init_out out = init_out(init(offer));
    EXPECT_EQ(out.flags & FUSE_INIT_EXT, 0u);
    EXPECT_EQ(out.flags2, 0u);
    EXPECT_EQ(out.unused[0], 0u);
    EXPECT_TRUE(shim_->init_done());
    EXPECT_FALSE(shim_->negotiated());
    EXPECT_EQ(shim_->kernel_flags(), offer);
}

TEST_F(ShimSession, OpenRepliesCarryTheBackingIdOnlyWhenTheHandlerGaveOne) {
    start(true);
    init(kOffer);
    ASSERT_TRUE(shim_->negotiated());

    Bytes r = open(kPassthroughIno, 10);
    ASSERT_EQ(r.size(), 32u);
    fuse_open_out out;
    std::memcpy(&out, r.data() + 16, sizeof out);
    EXPECT_EQ(out.fh, kFh);
    EXPECT_EQ(out.open_flags, FOPEN_DIRECT_IO | kOpenPassthrough);
    EXPECT_EQ(out.padding, static_cast<uint32_t>(kBackingId));

    r = open(kPlainIno, 11);
    ASSERT_EQ(r.size(), 32u);
    std::memcpy(&out, r.data() + 16, sizeof out);
    EXPECT_EQ(out.open_flags, FOPEN_DIRECT_IO);
    EXPECT_EQ(out.padding, 0u);

    // An id set before an error reply goes nowhere, and not into the next open either.
    r = open(kRefusedIno, 12);
    ASSERT_EQ(r.size(), 16u);
    auto h = reply_header(std::vector<iovec>{{r.data(), r.size()}});
    ASSERT_TRUE(h);
    EXPECT_EQ(h->error, -EACCES);
    r = open(kPlainIno, 13);
    ASSERT_EQ(r.size(), 32u);
    std::memcpy(&out, r.data() + 16, sizeof out);
    EXPECT_EQ(out.open_flags, FOPEN_DIRECT_IO);
    EXPECT_EQ(out.padding, 0u);
    EXPECT_EQ(ctx_.opens, 4);
}

TEST_F(ShimSession, AnInitReplayAfterInitIsNotPatched) {
    // libfuse answers a second INIT with an error; the shim must not add fields to it.
    start(true);
    init(kOffer);
    const Bytes r = init(kOffer);
    auto h = reply_header(std::vector<iovec>{{const_cast<std::byte*>(r.data()), r.size()}});
    ASSERT_TRUE(h);
    EXPECT_NE(h->error, 0);
    EXPECT_EQ(r.size(), 16u);
}

}  // namespace
}  // namespace gf::node::passthrough
