#include "client/asg_stream.h"

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <optional>
#include <span>
#include <thread>

#include "hw/asg_layout.h"
#include "hw/context_types.h"

namespace gf::client {
namespace {

using namespace hw::asg;
using Clock = std::chrono::steady_clock;

// A wait yields this many times before it starts to sleep, then sleeps at most kMaxSleep at
// once. The reference spins 50,000,000 times first; a shared machine would rather not.
constexpr unsigned kYieldsBeforeSleep = 4096;
constexpr auto kMaxSleep = std::chrono::microseconds(1000);
// While the host sleeps through a wait for it to drain, a ping goes at most this often.
constexpr auto kRepingInterval = std::chrono::milliseconds(1);
// While it sleeps through a wait for a reply, one goes this often: a sleeping consumer has
// nothing to send, so this ping only finds out whether the host is still there (a stopped
// daemon's node answers it with an errno, and its memory reads zero, not EXIT).
constexpr auto kReplyProbeInterval = std::chrono::milliseconds(20);

}  // namespace

struct AsgStream::State {
    State(Session s, AsgStreamOptions o) : options(o), session(std::move(s)) {}

    AsgStreamOptions options;
    // Declared in the order they are made; each undoes itself (the reverse) on a failure.
    Session session;
    std::optional<SharedClaim> ring_claim;
    std::optional<SharedClaim> buffer_claim;
    Mapping ring_map;
    Mapping buffer_map;

    uint64_t ring_offset = 0;
    uint64_t buffer_offset = 0;
    uint32_t buffer_size = 0;  // the config's, which the host writes
    uint32_t step = 0;
    uint32_t view_mask = 0;  // largest power of two <= buffer_size, minus 1
    uint64_t version = 0;
    uint32_t cursor = 0;  // the type-1 write cursor in the buffer
    Stats stats;

    std::atomic_ref<uint32_t> word(uint64_t offset) const {
        return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(ring_map.data() + offset));
    }
    uint32_t load(uint64_t offset) const { return word(offset).load(); }
    void store(uint64_t offset, uint32_t value) const { word(offset).store(value); }
    std::byte* buffer() const { return buffer_map.data(); }

    uint32_t to_host_readable() const {
        return (load(kToHost + kWritePos) - load(kToHost + kReadPos)) & (kBufSize - 1);
    }
    uint32_t large_readable() const {
        return (load(kToHostLargeXfer + kWritePos) - load(kToHostLargeXfer + kReadPos)) & view_mask;
    }
    uint32_t large_writable() const {
        return (load(kToHostLargeXfer + kReadPos) - load(kToHostLargeXfer + kWritePos) - 1) &
               view_mask;
    }
    uint32_t reply_readable() const {
        return (load(kFromHostLargeXfer + kWritePos) - load(kFromHostLargeXfer + kReadPos)) &
               view_mask;
    }
    // The host will look at the rings without a ping.
    bool host_awake() const {
        const uint32_t state = load(kState);
        return state == CanConsume || state == Rendering;
    }
    // EPIPE once the host ended the stream, EIO once it flagged an error.
    Result<void> check_host() const {
        if (load(kInError) == 1) {
            return fail(EIO);
        }
        if (load(kState) == Exit) {
            return fail(EPIPE);
        }
        return {};
    }
    Result<void> notify() {
        GF_TRY(session.ping(NotifyAvailable));
        ++stats.notifies;
        return {};
    }

    // How a wait pings a host that sleeps through it.
    enum class Probe {
        kDrain,  // at once, then every kRepingInterval (the reference's drain waits)
        kReply,  // every kReplyProbeInterval, the first after one
    };

    // Until ready(), the host's end or the patience's.
    template <typename Ready>
    Result<void> wait(Ready&& ready, Probe probe = Probe::kDrain) {
        const Clock::time_point start = Clock::now();
        const Clock::time_point deadline = start + options.patience;
        const Clock::duration interval =
            probe == Probe::kDrain ? Clock::duration(kRepingInterval) : kReplyProbeInterval;
        Clock::time_point next_ping = probe == Probe::kDrain ? start : start + interval;
        auto sleep = std::chrono::microseconds(1);
        for (unsigned i = 0;; ++i) {
            if (ready()) {
                return {};
            }
            GF_TRY(check_host());
            if (!host_awake()) {
                const Clock::time_point now = Clock::now();
                if (now >= next_ping) {
                    GF_TRY(notify());
                    next_ping = now + interval;
                }
            }
            if (i < kYieldsBeforeSleep) {
                std::this_thread::yield();
            } else {
                std::this_thread::sleep_for(sleep);
                sleep = std::min(sleep * 2, kMaxSleep);
            }
            if (i % 64 == 63 && Clock::now() > deadline) {
                return fail(ETIMEDOUT);
            }
        }
    }

    // ensureType3Finished, ensureType1Finished.
    Result<void> large_drained() {
        return wait([this] { return large_readable() == 0; });
    }
    Result<void> descriptors_drained() {
        return wait([this] { return to_host_readable() == 0; });
    }

    // The notify rules after pushing data (spec §3.4): one ping if the host was not awake
    // when the push was made, and one at the end unless it is RENDERING.
    Result<void> notify_after_push() {
        if (!host_awake()) {
            GF_TRY(notify());
        }
        if (load(kState) != Rendering) {
            GF_TRY(notify());
        }
        return check_host();
    }

    Result<void> type1_write(uint32_t offset, uint32_t size) {
        GF_TRY(large_drained());
        // At most buffer_size / step - 1 descriptors outstanding: the chunk the cursor comes
        // back to has been taken by then.
        const uint32_t steps = buffer_size / step;
        const uint32_t max_outstanding = steps > 1 ? steps - 1 : 1;
        GF_TRY(wait([&] {
            const uint32_t queued = to_host_readable();
            return queued < max_outstanding * kType1DescriptorSize &&
                   kBufSize - 1 - queued >= kType1DescriptorSize;
        }));
        std::byte raw[kType1DescriptorSize];
        std::memcpy(raw, &offset, sizeof offset);
        std::memcpy(raw + sizeof offset, &size, sizeof size);
        const uint32_t pos = load(kToHost + kWritePos);
        for (uint32_t i = 0; i < kType1DescriptorSize; ++i) {  // wraps around buf[]
            ring_map.data()[kToHost + kBuf + ((pos + i) & (kBufSize - 1))] = raw[i];
        }
        store(kToHost + kWritePos, pos + kType1DescriptorSize);
        stats.bytes_written += size;
        return notify_after_push();
    }

    Result<void> large_write(std::span<const std::byte> bytes) {
        GF_TRY(large_drained());
        GF_TRY(descriptors_drained());
        store(kTransferSize, static_cast<uint32_t>(bytes.size()));
        store(kTransferMode, kModeLarge);
        // The reference's writeFully: chunks of a quarter buffer (and never more than the
        // view holds), each written whole once there is room for it.
        const size_t chunk = std::min<size_t>(buffer_size / 4, view_mask);
        bool pinged = false;
        while (!bytes.empty()) {
            const size_t n = std::min(bytes.size(), chunk);
            GF_TRY(wait([&] { return large_writable() >= n; }));
            const uint32_t pos = load(kToHostLargeXfer + kWritePos);
            copy_into_view(pos, bytes.first(n));
            store(kToHostLargeXfer + kWritePos, pos + static_cast<uint32_t>(n));
            stats.bytes_written += n;
            bytes = bytes.subspan(n);
            if (!pinged && !host_awake()) {
                GF_TRY(notify());
                pinged = true;
            }
            GF_TRY(check_host());
        }
        if (load(kState) != Rendering) {
            GF_TRY(notify());
        }
        GF_TRY(large_drained());
        store(kTransferMode, kModeDescriptors);
        return {};
    }

    void copy_into_view(uint32_t pos, std::span<const std::byte> in) const {
        const uint32_t start = pos & view_mask;
        const size_t first = std::min<size_t>(in.size(), size_t{view_mask} + 1 - start);
        std::memcpy(buffer() + start, in.data(), first);
        std::memcpy(buffer(), in.data() + first, in.size() - first);
    }
    void copy_from_view(uint32_t pos, std::span<std::byte> out) const {
        const uint32_t start = pos & view_mask;
        const size_t first = std::min<size_t>(out.size(), size_t{view_mask} + 1 - start);
        std::memcpy(out.data(), buffer() + start, first);
        std::memcpy(out.data() + first, buffer(), out.size() - first);
    }
};

Result<AsgStream> AsgStream::open(const std::string& path, AsgStreamOptions options) {
    Session session = GF_TRY(Session::open(path));
    return connect(std::move(session), options);
}

Result<AsgStream> AsgStream::connect(Session session, AsgStreamOptions options) {
    auto s = std::make_unique<State>(std::move(session), options);
    // Step 2: the create ping. The reference does not look at its result; a refused type
    // would leave it talking to the wrong command, so here it is EPROTO.
    GF_TRY(s->session.create_context(hw::ContextType::Graphics));
    // Steps 3-4: where the host put the ring storage and the buffer.
    const Ping ring = GF_TRY(s->session.ping(GetRing));
    const Ping buffer = GF_TRY(s->session.ping(GetBuffer));
    if (buffer.size == 0 || buffer.size > UINT32_MAX) {
        return fail(EPROTO);
    }
    s->ring_offset = ring.metadata;
    s->buffer_offset = buffer.metadata;
    // Steps 5-6: claim both, map both.
    s->ring_claim.emplace(GF_TRY(s->session.claim(s->ring_offset, kRingStorageSize)));
    s->buffer_claim.emplace(GF_TRY(s->session.claim(s->buffer_offset, buffer.size)));
    s->ring_map = GF_TRY(s->ring_claim->map());
    s->buffer_map = GF_TRY(s->buffer_claim->map());
    // Step 7: asg_context_create re-initialises the three ring headers.
    for (uint64_t header : {kToHost, kToHostLargeXfer, kFromHostLargeXfer}) {
        s->store(header + kHostVersion, 1);
        s->store(header + kWritePos, 0);
        s->store(header + kReadPos, 0);
        s->store(header + kState, NeedNotify);
    }
    // Step 8: SET_VERSION starts the consumer; the reply is the version both speak.
    s->version = GF_TRY(s->session.ping(SetVersion, 0, kHostVersionNumber)).size;
    // Step 9: transfer mode 1 and the positions, then the host's config.
    s->store(kTransferMode, kModeDescriptors);
    s->store(kHostConsumedPos, 0);
    s->store(kGuestWritePos, 0);
    s->buffer_size = s->load(kBufferSize);
    s->step = s->load(kFlushInterval);
    // A config the guest cannot follow: a buffer larger than the host gave, no step, or a
    // buffer that is not whole steps (the cursor would run past its end).
    if (s->buffer_size == 0 || s->buffer_size > buffer.size || s->step == 0 ||
        s->buffer_size % s->step != 0) {
        return fail(EPROTO);
    }
    s->view_mask = std::bit_floor(s->buffer_size) - 1;
    return AsgStream(std::move(s));
}

AsgStream::AsgStream(std::unique_ptr<State> state) : state_(std::move(state)) {}
AsgStream::AsgStream(AsgStream&&) noexcept = default;
AsgStream& AsgStream::operator=(AsgStream&& other) noexcept {
    if (this != &other) {
        (void)close();
        state_ = std::move(other.state_);
    }
    return *this;
}
AsgStream::~AsgStream() {
    (void)close();
}

uint64_t AsgStream::ring_offset() const {
    return state_ ? state_->ring_offset : 0;
}
uint64_t AsgStream::buffer_offset() const {
    return state_ ? state_->buffer_offset : 0;
}
uint32_t AsgStream::buffer_size() const {
    return state_ ? state_->buffer_size : 0;
}
uint32_t AsgStream::write_step() const {
    return state_ ? state_->step : 0;
}
uint64_t AsgStream::version() const {
    return state_ ? state_->version : 0;
}
uint32_t AsgStream::host_state() const {
    return state_ ? state_->load(kState) : static_cast<uint32_t>(Exit);
}
const AsgStream::Stats& AsgStream::stats() const {
    static const Stats kNone;
    return state_ ? state_->stats : kNone;
}
int AsgStream::fd() const {
    return state_ ? state_->session.fd() : -1;
}

Result<std::byte*> AsgStream::alloc_chunk() {
    if (!state_) {
        return fail(EBADF);
    }
    GF_TRY(state_->large_drained());
    return state_->buffer() + state_->cursor;
}

Result<void> AsgStream::commit_chunk(size_t size) {
    if (!state_) {
        return fail(EBADF);
    }
    State& s = *state_;
    if (size > s.step) {
        return fail(EINVAL);
    }
    if (size == 0) {
        return {};
    }
    GF_TRY(s.type1_write(s.cursor, static_cast<uint32_t>(size)));
    s.cursor += s.step;
    if (s.cursor == s.buffer_size) {
        s.cursor = 0;
    }
    return {};
}

Result<void> AsgStream::write(const void* data, size_t size, AsgTransfer how) {
    std::span<const std::byte> bytes(static_cast<const std::byte*>(data), size);
    if (!state_) {
        return fail(EBADF);
    }
    if (bytes.empty()) {
        return {};
    }
    if (how == AsgTransfer::kAuto) {
        how = bytes.size() <= state_->step ? AsgTransfer::kDescriptors : AsgTransfer::kLarge;
    }
    if (how == AsgTransfer::kLarge) {
        if (bytes.size() > UINT32_MAX) {
            return fail(EINVAL);  // transfer_size is 32 bits
        }
        return state_->large_write(bytes);
    }
    while (!bytes.empty()) {
        std::byte* chunk = GF_TRY(alloc_chunk());
        const size_t n = std::min<size_t>(bytes.size(), state_->step);
        std::memcpy(chunk, bytes.data(), n);
        GF_TRY(commit_chunk(n));
        bytes = bytes.subspan(n);
    }
    return {};
}

Result<void> AsgStream::flush() {
    if (!state_) {
        return fail(EBADF);
    }
    GF_TRY(state_->large_drained());
    return state_->descriptors_drained();
}

Result<size_t> AsgStream::read(void* data, size_t size) {
    std::span<std::byte> out(static_cast<std::byte*>(data), size);
    if (!state_) {
        return fail(EBADF);
    }
    if (out.empty()) {
        return size_t{0};
    }
    State& s = *state_;
    GF_TRY(flush());
    GF_TRY(s.wait([&] { return s.reply_readable() != 0; }, State::Probe::kReply));
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(s.reply_readable(), out.size()));
    const uint32_t pos = s.load(kFromHostLargeXfer + kReadPos);
    s.copy_from_view(pos, out.first(n));
    s.store(kFromHostLargeXfer + kReadPos, pos + n);
    s.stats.bytes_read += n;
    return size_t{n};
}

Result<void> AsgStream::read_fully(void* data, size_t size) {
    auto* out = static_cast<std::byte*>(data);
    while (size != 0) {
        const size_t n = GF_TRY(read(out, size));
        out += n;
        size -= n;
    }
    return {};
}

Result<void> AsgStream::close() {
    if (!state_) {
        return fail(EBADF);
    }
    std::unique_ptr<State> s = std::move(state_);
    // Drain first (a host that ended the stream has nothing to drain into).
    Result<void> result = s->check_host();
    if (result) {
        result = s->large_drained();
    }
    if (result) {
        result = s->descriptors_drained();
    }
    // The reference's order: unmap the ring and the buffer, unclaim the ring and the buffer,
    // close.
    s->ring_map.reset();
    s->buffer_map.reset();
    for (std::optional<SharedClaim>* claim : {&s->ring_claim, &s->buffer_claim}) {
        Result<void> released = (*claim)->release();
        if (result && !released) {
            result = released;
        }
    }
    return result;
}

Result<void> asg_echo(AsgStream& stream, const void* in, void* out, size_t size, AsgTransfer how) {
    if (how != AsgTransfer::kDescriptors) {
        GF_TRY(stream.write(in, size, how));
        return stream.read_fully(out, size);
    }
    const size_t step = stream.write_step();
    if (step == 0) {
        return fail(EBADF);
    }
    const auto* from = static_cast<const std::byte*>(in);
    auto* to = static_cast<std::byte*>(out);
    for (size_t done = 0; done < size; done += step) {
        const size_t n = std::min(step, size - done);
        GF_TRY(stream.write(from + done, n, AsgTransfer::kDescriptors));
        GF_TRY(stream.read_fully(to + done, n));
    }
    return {};
}

}  // namespace gf::client
