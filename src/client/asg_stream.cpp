#include "client/asg_stream.h"

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <span>
#include <thread>
#include <vector>

#include "base/shared_memory.h"
#include "hw/asg_layout.h"

namespace gf::client {
namespace {

using namespace hw::asg;
using Clock = std::chrono::steady_clock;

// The reference's read buffer (kReadSize): readFully takes up to this much at once.
constexpr size_t kReadBufferSize = 512 * 1024;
// A wait yields this many times before it starts to sleep, then sleeps at most kMaxSleep at
// once. The reference spins 50,000,000 times first; a shared machine would rather not.
constexpr unsigned kYieldsBeforeSleep = 4096;
constexpr auto kMaxSleep = std::chrono::microseconds(1000);
// While a wait lasts, a GET_RING ping this often finds out whether the file still answers:
// a stopped daemon's node fails it, and its memory reads zero, not EXIT. GET_RING only
// queries, so no consumer is woken by it: the host sees the reference's pings and no more.
constexpr auto kLivenessProbeInterval = std::chrono::milliseconds(20);

}  // namespace

struct AsgStream::State {
    State(std::unique_ptr<AsgTransport> t, AsgStreamOptions o)
        : options(std::move(o)), transport(std::move(t)) {}

    AsgStreamOptions options;
    std::unique_ptr<AsgTransport> transport;
    std::byte* ring = nullptr;  // ring storage, mapped
    std::byte* buffer = nullptr;
    uint64_t ring_offset = 0;
    uint64_t buffer_offset = 0;
    uint64_t mapped_buffer_size = 0;  // GET_BUFFER's: what is claimed and mapped
    uint32_t buffer_size = 0;         // the config's, which the host writes
    uint32_t step = 0;
    uint32_t view_mask = 0;  // views over the buffer: largest power of two <= its size, - 1
    uint64_t version = 0;
    uint32_t write_start = 0;  // the type-1 write cursor in the buffer
    Stats stats;

    // readFully's buffer: read_size bytes were read into it, the last read_left not taken.
    std::vector<std::byte> read_buffer;
    size_t read_size = 0;
    size_t read_left = 0;
    // allocBuffer's temporary buffer, for a request over the step.
    std::vector<std::byte> tmp_buffer;
    bool using_tmp = false;
    size_t tmp_xfer_size = 0;

    std::atomic_ref<uint32_t> word(uint64_t offset) const {
        // The ring storage is mapped page-aligned memory, and every field is an aligned u32.
        return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(ring + offset));
    }
    uint32_t load(uint64_t offset) const { return word(offset).load(); }
    void store(uint64_t offset, uint32_t value) const { word(offset).store(value); }
    std::span<std::byte> view() const { return {buffer, size_t{view_mask} + 1}; }

    uint32_t to_host_readable() const {
        return (load(kToHost + kWritePos) - load(kToHost + kReadPos)) & (kBufSize - 1);
    }
    uint32_t to_host_writable() const {
        return (load(kToHost + kReadPos) - load(kToHost + kWritePos) - 1) & (kBufSize - 1);
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
    bool host_rendering() const { return load(kState) == Rendering; }
    // EIO once the host flagged an error (the reference gives up its wait and carries on),
    // EPIPE once it ended the stream (the reference spins on).
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
        GF_TRY(transport->command(NotifyAvailable));
        ++stats.notifies;
        if (options.after_notify) {
            options.after_notify(stats.notifies);
        }
        return {};
    }

    // One wait's pauses: where the reference yields and backs off, this also checks the
    // host, the patience and (every kLivenessProbeInterval) that the file still answers.
    class Waiter {
      public:
        explicit Waiter(State& s)
            : s_(s),
              deadline_(Clock::now() + s.options.patience),
              next_probe_(Clock::now() + kLivenessProbeInterval) {}
        // Progress was made: the patience starts again.
        void progressed() { deadline_ = Clock::now() + s_.options.patience; }
        Result<void> pause() {
            GF_TRY(s_.check_host());
            if (rounds_ < kYieldsBeforeSleep) {
                ++rounds_;
                std::this_thread::yield();
            } else {
                std::this_thread::sleep_for(sleep_);
                sleep_ = std::min(sleep_ * 2, std::chrono::microseconds(kMaxSleep));
            }
            const Clock::time_point now = Clock::now();
            if (now > deadline_) {
                return fail(ETIMEDOUT);
            }
            if (now >= next_probe_) {
                GF_TRY(s_.transport->command(GetRing));
                next_probe_ = now + kLivenessProbeInterval;
            }
            return {};
        }

      private:
        State& s_;
        Clock::time_point deadline_;
        Clock::time_point next_probe_;
        unsigned rounds_ = 0;
        std::chrono::microseconds sleep_{1};
    };

    // ensureType3Finished: until the large ring is empty, pinging after every round in which
    // the host is neither CAN_CONSUME nor RENDERING.
    Result<void> ensure_type3_finished() {
        Waiter waiter(*this);
        while (large_readable() != 0) {
            GF_TRY(waiter.pause());
            if (!host_awake()) {
                GF_TRY(notify());
            }
        }
        return check_host();
    }
    // ensureType1Finished: until to_host is empty, without a ping (type1Write's last one
    // woke the host).
    Result<void> ensure_type1_finished() {
        Waiter waiter(*this);
        while (to_host_readable() != 0) {
            GF_TRY(waiter.pause());
        }
        return check_host();
    }

    // type1Write: one descriptor {offset, size} into to_host.
    Result<void> type1_write(uint32_t offset, uint32_t size) {
        GF_TRY(ensure_type3_finished());
        // At most buffer_size / step - 1 descriptors outstanding, so the chunk the cursor
        // comes back to has been taken. The reference spins here without a ping.
        const uint32_t steps = buffer_size / step;
        const uint32_t max_outstanding = steps > 1 ? steps - 1 : 1;
        {
            Waiter waiter(*this);
            while (to_host_readable() >= max_outstanding * kType1DescriptorSize) {
                GF_TRY(waiter.pause());
            }
        }
        std::byte descriptor[kType1DescriptorSize];
        std::memcpy(descriptor, &offset, sizeof offset);
        std::memcpy(descriptor + sizeof offset, &size, sizeof size);
        Waiter waiter(*this);
        bool pinged = false;
        for (bool sent = false; !sent;) {
            sent = ring_write(descriptor);
            if (!pinged && !host_awake()) {
                GF_TRY(notify());
                pinged = true;
            }
            if (!sent) {
                GF_TRY(waiter.pause());
            }
            GF_TRY(check_in_error());
        }
        if (!host_rendering()) {
            GF_TRY(notify());
        }
        stats.bytes_written += size;
        return {};
    }

    // writeFully (async = false) and writeFullyAsync (async = true).
    Result<void> large_write(std::span<const std::byte> bytes, bool async) {
        GF_TRY(ensure_type3_finished());
        GF_TRY(ensure_type1_finished());
        store(kTransferSize, static_cast<uint32_t>(bytes.size()));
        store(kTransferMode, kModeLarge);
        const size_t chunk = std::min<size_t>(bytes.size(), buffer_size / (async ? 2 : 4));
        Waiter waiter(*this);
        bool pinged = false;
        while (!bytes.empty()) {
            const std::span<const std::byte> piece = bytes.first(std::min(bytes.size(), chunk));
            // Each chunk goes in whole or waits: a ring that holds three quarter chunks (one
            // half chunk) but not the next leaves this loop spinning, pinging no more.
            const bool sent = view_write(piece);
            if (!pinged && !host_awake()) {
                GF_TRY(notify());
                pinged = true;
            }
            if (sent) {
                bytes = bytes.subspan(piece.size());
                stats.bytes_written += piece.size();
                waiter.progressed();
            } else {
                GF_TRY(waiter.pause());
            }
            GF_TRY(check_in_error());
        }
        if (!host_rendering()) {
            GF_TRY(notify());
        }
        if (!async) {
            GF_TRY(ensure_type3_finished());
        }
        store(kTransferMode, kModeDescriptors);
        return {};
    }

    // speculativeRead: drains what was written, then takes what replies there are (at
    // least one byte, at most `out.size()`).
    Result<size_t> speculative_read(std::span<std::byte> out) {
        GF_TRY(ensure_type3_finished());
        GF_TRY(ensure_type1_finished());
        Waiter waiter(*this);
        uint32_t available = 0;
        while ((available = reply_readable()) == 0) {
            GF_TRY(waiter.pause());
        }
        const size_t n = std::min<size_t>(available, out.size());
        view_read(out.first(n));
        GF_TRY(check_in_error());
        stats.bytes_read += n;
        return n;
    }

    Result<void> check_in_error() const { return load(kInError) == 1 ? fail(EIO) : Result<void>{}; }

    // ring_buffer_write of one step into to_host's own buf[]: all of it, or nothing.
    bool ring_write(std::span<const std::byte> in) {
        if (to_host_writable() < in.size()) {
            return false;
        }
        const uint32_t pos = load(kToHost + kWritePos);
        for (size_t i = 0; i < in.size(); ++i) {  // wraps around buf[]
            copy_to_shared({ring + kToHost + kBuf + ((pos + i) & (kBufSize - 1)), 1},
                           in.subspan(i, 1));
        }
        word(kToHost + kWritePos).fetch_add(static_cast<uint32_t>(in.size()));
        return true;
    }
    // ring_buffer_view_write of one step into the large ring: all of it, or nothing.
    bool view_write(std::span<const std::byte> in) {
        if (large_writable() < in.size()) {
            return false;
        }
        const uint32_t pos = load(kToHostLargeXfer + kWritePos);
        const uint32_t start = pos & view_mask;
        const size_t first = std::min<size_t>(in.size(), view().size() - start);
        copy_to_shared_bulk(view().subspan(start), in.first(first));
        copy_to_shared_bulk(view(), in.subspan(first));
        word(kToHostLargeXfer + kWritePos).fetch_add(static_cast<uint32_t>(in.size()));
        return true;
    }
    // ring_buffer_view_read of `out.size()` reply bytes, which are there.
    void view_read(std::span<std::byte> out) {
        const uint32_t pos = load(kFromHostLargeXfer + kReadPos);
        const uint32_t start = pos & view_mask;
        const size_t first = std::min<size_t>(out.size(), view().size() - start);
        copy_from_shared_bulk(out.first(first), view().subspan(start));
        copy_from_shared_bulk(out.subspan(first), view());
        word(kFromHostLargeXfer + kReadPos).fetch_add(static_cast<uint32_t>(out.size()));
    }

    // advanceWrite: the cursor steps by flush_interval and wraps at buffer_size.
    void advance_write() {
        write_start += step;
        if (write_start == buffer_size) {
            write_start = 0;
        }
    }

    // ring_buffer_init of the header at `header`: the fields it writes, in its order.
    void ring_buffer_init(uint64_t header) const {
        store(header + kHostVersion, 1);
        store(header + kWritePos, 0);
        store(header + kReadPos, 0);
        store(header + kReadLiveCount, 0);
        store(header + kReadYieldCount, 0);
        store(header + kReadSleepUsCount, 0);
        store(header + kState, 0);
    }

    // The reference's undo of a failed connect or a teardown, from what was done so far:
    // unmap the buffer, the ring; unclaim the buffer, the ring; close.
    struct Done {
        bool ring_claimed = false;
        bool buffer_claimed = false;
    } done;
    Result<void> undo(bool ring_first) {
        Result<void> result;
        auto keep = [&](Result<void> r) {
            if (result && !r) {
                result = r;
            }
        };
        // Teardown unmaps and unclaims the ring first; a failed connect, the buffer first.
        auto unmap_ring = [&] {
            if (ring != nullptr) {
                transport->unmap(ring, kRingStorageSize);
                ring = nullptr;
            }
        };
        auto unmap_buffer = [&] {
            if (buffer != nullptr) {
                transport->unmap(buffer, mapped_buffer_size);
                buffer = nullptr;
            }
        };
        auto unclaim_ring = [&] {
            if (std::exchange(done.ring_claimed, false)) {
                keep(transport->unclaim_shared(ring_offset));
            }
        };
        auto unclaim_buffer = [&] {
            if (std::exchange(done.buffer_claimed, false)) {
                keep(transport->unclaim_shared(buffer_offset));
            }
        };
        if (ring_first) {
            unmap_ring();
            unmap_buffer();
            unclaim_ring();
            unclaim_buffer();
        } else {
            unmap_buffer();
            unmap_ring();
            unclaim_buffer();
            unclaim_ring();
        }
        keep(transport->close());
        return result;
    }
};

Result<AsgStream> AsgStream::open(const std::string& path, AsgStreamOptions options) {
    Session session = GF_TRY(Session::open(path));
    return connect(std::move(session), std::move(options));
}

Result<AsgStream> AsgStream::connect(Session session, AsgStreamOptions options) {
    return connect(fd_transport(std::move(session)), std::move(options));
}

Result<AsgStream> AsgStream::connect(std::unique_ptr<AsgTransport> transport,
                                     AsgStreamOptions options) {
    if (!transport) {
        return fail(EINVAL);
    }
    auto s = std::make_unique<State>(std::move(transport), std::move(options));
    // Each failure undoes what was done, in the reference's order, and closes.
    auto failed = [&](gf::Error error) -> Result<AsgStream> {
        (void)s->undo(/*ring_first=*/false);
        return fail(error);
    };
    // The create ping. The reference looks only at the ioctl's result; a refused type would
    // leave it talking to the wrong command, so here it is EPROTO.
    if (auto created = s->transport->create_context(); !created) {
        return failed(created.error());
    }
    // GET_RING, GET_BUFFER: where the host put the ring storage and the buffer.
    auto ring = s->transport->command(GetRing);
    if (!ring) {
        return failed(ring.error());
    }
    s->ring_offset = ring->metadata;
    auto buffer = s->transport->command(GetBuffer);
    if (!buffer) {
        return failed(buffer.error());
    }
    s->buffer_offset = buffer->metadata;
    s->mapped_buffer_size = buffer->size;
    if (buffer->size == 0 || buffer->size > UINT32_MAX) {
        return failed(gf::Error(EPROTO));
    }
    // Claim the ring storage, then the buffer; map them in the same order.
    if (auto claimed = s->transport->claim_shared(s->ring_offset, kRingStorageSize); !claimed) {
        return failed(claimed.error());
    }
    s->done.ring_claimed = true;
    if (auto claimed = s->transport->claim_shared(s->buffer_offset, buffer->size); !claimed) {
        return failed(claimed.error());
    }
    s->done.buffer_claimed = true;
    auto ring_memory = s->transport->map(s->ring_offset, kRingStorageSize);
    if (!ring_memory) {
        return failed(ring_memory.error());
    }
    s->ring = *ring_memory;
    auto buffer_memory = s->transport->map(s->buffer_offset, buffer->size);
    if (!buffer_memory) {
        return failed(buffer_memory.error());
    }
    s->buffer = *buffer_memory;
    // asg_context_create: ring_buffer_init of to_host, then of the two large-transfer rings
    // (ring_buffer_view_init), whose views span the largest power of two in GET_BUFFER's size.
    s->ring_buffer_init(kToHost);
    s->ring_buffer_init(kToHostLargeXfer);
    s->ring_buffer_init(kFromHostLargeXfer);
    s->view_mask = std::bit_floor(static_cast<uint32_t>(buffer->size)) - 1;
    // SET_VERSION starts the consumer; its reply is the version both speak (kept, unused).
    auto version = s->transport->command(SetVersion, kHostVersionNumber);
    if (!version) {
        return failed(version.error());
    }
    s->version = version->size;
    s->store(kTransferMode, kModeDescriptors);
    s->store(kHostConsumedPos, 0);
    s->store(kGuestWritePos, 0);
    // The stream's constructor reads the config the host wrote.
    s->buffer_size = s->load(kBufferSize);
    s->step = s->load(kFlushInterval);
    // A config the guest cannot follow (the reference would run past the buffer): a buffer
    // larger than the one mapped, no step, or a buffer that is not whole steps.
    if (s->buffer_size == 0 || s->buffer_size > buffer->size || s->step == 0 ||
        s->buffer_size % s->step != 0) {
        return failed(gf::Error(EPROTO));
    }
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
    return state_ ? state_->transport->fd() : -1;
}
std::byte* AsgStream::ring_memory() const {
    return state_ ? state_->ring : nullptr;
}
std::byte* AsgStream::buffer_memory() const {
    return state_ ? state_->buffer : nullptr;
}
uint32_t AsgStream::view_size() const {
    return state_ ? state_->view_mask + 1 : 0;
}
AsgTransport* AsgStream::transport() const {
    return state_ ? state_->transport.get() : nullptr;
}

Result<std::byte*> AsgStream::alloc_buffer(size_t min_size) {
    if (!state_) {
        return fail(EBADF);
    }
    State& s = *state_;
    GF_TRY(s.ensure_type3_finished());
    const size_t alloc_size = std::max<size_t>(s.step, min_size);
    if (alloc_size > s.step) {
        // Larger than a step: a private buffer (twice the request, as the reference grows
        // it), sent whole by commit_buffer().
        if (s.tmp_buffer.size() < alloc_size) {
            s.tmp_buffer.resize(alloc_size * 2);
        }
        s.using_tmp = true;
        s.tmp_xfer_size = alloc_size;
        return s.tmp_buffer.data();
    }
    if (s.using_tmp) {
        // A temporary buffer handed out and never committed: the reference sends it now.
        s.using_tmp = false;
        GF_TRY(s.large_write({s.tmp_buffer.data(), std::exchange(s.tmp_xfer_size, 0)}, false));
    }
    return s.buffer + s.write_start;
}

Result<void> AsgStream::commit_buffer(size_t size) {
    if (!state_) {
        return fail(EBADF);
    }
    State& s = *state_;
    if (size == 0) {
        return {};
    }
    if (s.using_tmp) {
        if (size > s.tmp_xfer_size || size > UINT32_MAX) {
            return fail(EINVAL);
        }
        s.using_tmp = false;
        s.tmp_xfer_size = 0;
        return s.large_write({s.tmp_buffer.data(), size}, false);
    }
    if (size > s.step) {
        return fail(EINVAL);  // past the chunk alloc_buffer() gave
    }
    const uint32_t offset = s.write_start;
    // The reference steps the cursor whatever type1Write's outcome.
    s.advance_write();
    return s.type1_write(offset, static_cast<uint32_t>(size));
}

Result<std::byte*> AsgStream::alloc_chunk() {
    return alloc_buffer(0);
}

Result<void> AsgStream::commit_chunk(size_t size) {
    if (state_ && size > state_->step) {
        return fail(EINVAL);
    }
    return commit_buffer(size);
}

Result<void> AsgStream::write_fully(const void* data, size_t size) {
    if (!state_) {
        return fail(EBADF);
    }
    if (size > UINT32_MAX) {
        return fail(EINVAL);  // transfer_size is 32 bits
    }
    if (size == 0) {
        return {};
    }
    return state_->large_write({static_cast<const std::byte*>(data), size}, false);
}

Result<void> AsgStream::write_fully_async(const void* data, size_t size) {
    if (!state_) {
        return fail(EBADF);
    }
    if (size > UINT32_MAX) {
        return fail(EINVAL);
    }
    if (size == 0) {
        return {};
    }
    return state_->large_write({static_cast<const std::byte*>(data), size}, true);
}

Result<void> AsgStream::write(const void* data, size_t size, AsgTransfer how) {
    std::span<const std::byte> bytes(static_cast<const std::byte*>(data), size);
    if (!state_) {
        return fail(EBADF);
    }
    if (bytes.empty()) {
        return {};
    }
    switch (how) {
        case AsgTransfer::kLarge:
            return write_fully(data, size);
        case AsgTransfer::kLargeAsync:
            return write_fully_async(data, size);
        case AsgTransfer::kAuto: {
            if (size > UINT32_MAX) {
                return fail(EINVAL);
            }
            std::byte* chunk = GF_TRY(alloc_buffer(size));
            copy_to_shared_bulk({chunk, size}, bytes);  // the host may be reading beside it
            return commit_buffer(size);
        }
        case AsgTransfer::kDescriptors:
            break;
    }
    while (!bytes.empty()) {
        std::byte* chunk = GF_TRY(alloc_chunk());
        const size_t n = std::min<size_t>(bytes.size(), state_->step);
        copy_to_shared_bulk({chunk, n}, bytes.first(n));
        GF_TRY(commit_chunk(n));
        bytes = bytes.subspan(n);
    }
    return {};
}

Result<void> AsgStream::flush() {
    if (!state_) {
        return fail(EBADF);
    }
    GF_TRY(state_->ensure_type3_finished());
    return state_->ensure_type1_finished();
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
    if (s.read_left != 0) {
        // What read_fully() buffered comes first (the reference's read() would skip it).
        const size_t n = std::min(s.read_left, out.size());
        std::memcpy(out.data(), s.read_buffer.data() + (s.read_size - s.read_left), n);
        s.read_left -= n;
        return n;
    }
    return s.speculative_read(out);
}

Result<void> AsgStream::read_fully(void* data, size_t size) {
    if (!state_) {
        return fail(EBADF);
    }
    State& s = *state_;
    if (s.read_buffer.empty()) {
        s.read_buffer.resize(kReadBufferSize);
    }
    auto* out = static_cast<std::byte*>(data);
    size_t remaining = size;
    while (remaining != 0) {
        if (s.read_left != 0) {
            const size_t n = std::min(s.read_left, remaining);
            std::memcpy(out + (size - remaining),
                        s.read_buffer.data() + (s.read_size - s.read_left), n);
            remaining -= n;
            s.read_left -= n;
            continue;
        }
        // The buffer is used up: as much as there is, up to all of it.
        s.read_size = s.read_left = GF_TRY(s.speculative_read(s.read_buffer));
    }
    return {};
}

Result<void> AsgStream::close() {
    if (!state_) {
        return fail(EBADF);
    }
    std::unique_ptr<State> s = std::move(state_);
    // The reference's teardown drains first (a host that ended the stream or is in error
    // has nothing to drain into).
    Result<void> result = s->check_host();
    if (result) {
        result = s->ensure_type3_finished();
    }
    if (result) {
        result = s->ensure_type1_finished();
    }
    Result<void> undone = s->undo(/*ring_first=*/true);
    return result ? undone : result;
}

Result<void> AsgStream::close_abruptly() {
    if (!state_) {
        return fail(EBADF);
    }
    std::unique_ptr<State> s = std::move(state_);
    return s->undo(/*ring_first=*/true);
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
