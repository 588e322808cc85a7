#include "device/asg_context.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "base/checked.h"
#include "base/page.h"
#include "base/scope_guard.h"
#include "device/asg_block_pool.h"
#include "device/registers.h"

namespace gf::device {
namespace {

using namespace asg;

// The reference consumer's idle policy: this many empty rounds, each of kYieldsPerRound
// yields, before it publishes NEED_NOTIFY and sleeps until a ping.
constexpr unsigned kIdleRounds = 8;
constexpr unsigned kYieldsPerRound = 30;
// While from_host_large_xfer is full, the consumer first polls between yields, as long as
// its idle policy above (a guest reading a large reply drains the ring within that); then
// with a pause that doubles up to kReplyBackoffUs, and stays there for kPatientPolls polls
// (about 64 ms); after that it doubles on up to kIdleReplyBackoffUs, so a guest that stopped
// reading costs the host about 10 wake-ups a second, not a thousand. A NOTIFY_AVAILABLE ping
// ends a pause at once.
constexpr unsigned kReplyBackoffUs = 1000;
constexpr unsigned kPatientPolls = 64;
constexpr unsigned kIdleReplyBackoffUs = 100'000;

}  // namespace

Result<std::unique_ptr<Context>> AsgContext::create(const ContextParams& params) {
    const DeviceConfig& config = params.services.config();
    AsgSinkFactory factory = config.asg_sink_factory;
    if (!factory) {
        factory = GF_TRY(builtin_asg_sink(config.asg_sink));
    }
    std::unique_ptr<AsgSink> sink = factory();
    if (!sink) {
        return fail(EINVAL);
    }
    return std::unique_ptr<Context>(new AsgContext(params.services, std::move(sink)));
}

AsgContext::AsgContext(DeviceServices& services, std::unique_ptr<AsgSink> sink)
    : AsyncContext(services),
      buffer_size_(services.config().asg_buffer_size),
      step_size_(services.config().asg_write_step),
      view_mask_(std::bit_floor(services.config().asg_buffer_size) - 1),
      protocol_errors_(services.asg_protocol_errors()),
      bytes_in_(services.asg_bytes_in()),
      bytes_out_(services.asg_bytes_out()),
      host_access_(services.bar1_memory()),
      sink_(std::move(sink)) {}

Result<void> AsgContext::start_locked() {
    ScopeGuard undo([&] {
        device_lock().assert_held();  // the guard runs inside this function
        free_memory_locked();
    });
    // Ring first, then buffer: the emulator's order, which places the first ring block at
    // the top of BAR1 and the first buffer block right below it.
    AsgPools& pools = services_.asg_pools_locked();
    ring_ = GF_TRY(pools.rings.allocate_locked(kRingStorageSize, services_));
    has_ring_ = true;
    buffer_ = GF_TRY(pools.buffers.allocate_locked(buffer_size_, services_));
    has_buffer_ = true;
    // ring_buffer_init of each header (the memory is zero: positions and state 0).
    for (uint64_t header : {kToHost, kToHostLargeXfer, kFromHostLargeXfer}) {
        (void)host_access_.store32(ring_ + header + kHostVersion, 1);
    }
    write_host_config_locked(/*initial=*/true);
    GF_TRY(AsyncContext::start_locked());
    undo.dismiss();
    return {};
}

void AsgContext::write_host_config_locked(bool initial) {
    (void)host_access_.store32(ring_ + kBufferSize, buffer_size_);
    (void)host_access_.store32(ring_ + kFlushInterval, step_size_);
    if (initial) {
        for (uint64_t field : {kHostConsumedPos, kGuestWritePos, kTransferSize, kInError}) {
            (void)host_access_.store32(ring_ + field, 0);
        }
        (void)host_access_.store32(ring_ + kTransferMode, 1);
    }
}

void AsgContext::perform_locked(PingInfo& info) {
    switch (info.metadata) {
        case GetRing:
            info.metadata = ring_;
            info.size = kRingStorageSize;
            break;
        case GetBuffer:
            info.metadata = buffer_;
            info.size = buffer_size_;
            break;
        case SetVersion: {
            // Idempotent: a second one re-asserts the config and wakes the one consumer.
            info.size = std::min(info.size, kHostVersionNumber);
            write_host_config_locked(/*initial=*/false);
            {
                MutexLock lock(mutex_);
                consuming_ = true;
                if (!stopped_) {
                    // The consumer exists and will look at the rings (it then says RENDERING).
                    (void)host_access_.store32(ring_ + kState, CanConsume);
                }
            }
            wake();
            break;
        }
        case NotifyAvailable: {
            // The consumer will look at the rings before it sleeps again, so the guest may
            // skip its ping at the end of this write (it skips it on RENDERING only).
            MutexLock lock(mutex_);
            if (consuming_ && !stopped_) {
                (void)host_access_.store32(ring_ + kState, Rendering);
            }
            wake();  // coalesces; never blocks
            info.metadata = kPingOk;
            break;
        }
        case GetConfig:
            write_host_config_locked(/*initial=*/false);
            info.metadata = kPingOk;
            break;
        default:
            break;  // the struct goes back as it came
    }
}

std::map<uint64_t, uint64_t> AsgContext::allocations_locked() const {
    std::map<uint64_t, uint64_t> out;
    if (has_ring_) {
        out.emplace(ring_, kRingStorageSize);
    }
    if (has_buffer_) {
        out.emplace(buffer_, round_up_to_page(buffer_size_, services_.host_page_size()).value());
    }
    return out;
}

void AsgContext::stop_locked() {
    {
        MutexLock lock(mutex_);
        stopped_ = true;  // no ping writes the state from here on
    }
    AsyncContext::stop_locked();  // the thread cannot write the state any more
    if (has_ring_) {
        (void)host_access_.store32(ring_ + kState, Exit);
    }
}

void AsgContext::release_locked() {
    free_memory_locked();
}

void AsgContext::free_memory_locked() {
    AsgPools& pools = services_.asg_pools_locked();
    if (has_buffer_) {
        pools.buffers.free_locked(buffer_, services_);
        has_buffer_ = false;
    }
    if (has_ring_) {
        pools.rings.free_locked(ring_, services_);
        has_ring_ = false;
    }
}

bool AsgContext::consuming() {
    MutexLock lock(mutex_);
    return consuming_;
}

// --- The consumer ----------------------------------------------------------------------

void AsgContext::run() {
    chunk_.resize(std::min(kMaxChunk, view_mask_ + 1));
    type1_.resize(step_size_);
    while (wait_for_work()) {
        if (!consuming()) {
            continue;  // a notify before SET_VERSION
        }
        if (!consume_until_idle()) {
            return;
        }
    }
}

bool AsgContext::consume_until_idle() {
    // RENDERING for as long as the consumer is awake: it looks at the rings again before it
    // sleeps (the re-check below), so a guest needs no ping, and the reference guest pings
    // after every write unless it reads RENDERING (docs/contexts.md#asg-host-state).
    if (!store(kState, Rendering)) {
        return false;
    }
    unsigned idle = 0;
    while (!stop_requested()) {
        Result<bool> progress = step();
        if (!progress) {
            return false;  // revoked (stopping) or not backed: BAR1 is out of reach
        }
        if (*progress) {
            idle = 0;
            continue;
        }
        // A look at the rings after every yield: a round of yields without one would add up
        // to a round to the latency of the guest's next write.
        if (++idle < kIdleRounds * kYieldsPerRound) {
            std::this_thread::yield();
            continue;
        }
        if (!store(kState, NeedNotify)) {
            return false;
        }
        // The re-check the reference lacks: a guest that saw CAN_CONSUME just before the
        // store above pushed data without pinging.
        Result<bool> more = has_input();
        if (!more) {
            return false;
        }
        if (!*more) {
            return true;  // sleep until a ping
        }
        if (!store(kState, Rendering)) {
            return false;
        }
        idle = 0;
    }
    return true;  // the stop request ends the thread at its next wait
}

Result<bool> AsgContext::has_input() {
    return GF_TRY(input_pending()) || GF_TRY(reply_ready());
}

Result<bool> AsgContext::input_pending() {
    if (!taking_input()) {
        return false;
    }
    return GF_TRY(load(kToHost + kWritePos)) != GF_TRY(load(kToHost + kReadPos)) ||
           GF_TRY(load(kToHostLargeXfer + kWritePos)) != GF_TRY(load(kToHostLargeXfer + kReadPos));
}

bool AsgContext::taking_input() const {
    return reply_.size() - reply_sent_ < kMaxReplyBacklog;
}

Result<bool> AsgContext::reply_ready() {
    if (reply_sent_ == reply_.size()) {
        return false;
    }
    // Replies only while the guest sends nothing: the one buffer is time-shared (§3.3).
    return GF_TRY(load(kTransferMode)) != 3 || GF_TRY(load(kTransferSize)) == 0;
}

Result<bool> AsgContext::step() {
    // The mode is read after the position that shows data, never before: the guest sets the
    // mode before it pushes, and changes it only once the host has drained that ring, so the
    // mode read afterwards is the one the data was pushed under. Read before, it could be
    // the previous transfer's, and good data would be dropped as a protocol error.
    if (taking_input()) {
        const uint32_t write_pos = GF_TRY(load(kToHost + kWritePos));
        const uint32_t read_pos = GF_TRY(load(kToHost + kReadPos));
        if (write_pos != read_pos) {
            return step_type1(write_pos, read_pos, GF_TRY(load(kTransferMode)));
        }
        const uint32_t large_write = GF_TRY(load(kToHostLargeXfer + kWritePos));
        const uint32_t large_read = GF_TRY(load(kToHostLargeXfer + kReadPos));
        if (large_write != large_read) {
            return step_large(large_write, large_read, GF_TRY(load(kTransferMode)));
        }
    }
    if (GF_TRY(reply_ready())) {
        return step_reply();
    }
    return false;
}

Result<bool> AsgContext::step_type1(uint32_t write_pos, uint32_t read_pos, uint32_t mode) {
    const uint32_t available = write_pos - read_pos;
    // A position that jumped past the ring, descriptors while not in mode 1 (mode 2's
    // physical addresses are not supported; anything else is garbage), or a torn descriptor:
    // refused, and the ring is drained so that the guest is not stuck on it.
    if (available >= kBufSize || mode != 1 || available < kType1DescriptorSize) {
        protocol_error();
        GF_TRY(store(kToHost + kReadPos, write_pos));
        return true;
    }
    std::array<std::byte, kType1DescriptorSize> raw;
    // The descriptor may wrap around buf[]: then it is two reads.
    const uint32_t start = read_pos & (kBufSize - 1);
    const uint32_t first = std::min<uint32_t>(kType1DescriptorSize, kBufSize - start);
    GF_TRY(bar1().read(ring_ + kToHost + kBuf + start, std::span(raw).first(first)));
    if (first < raw.size()) {
        GF_TRY(bar1().read(ring_ + kToHost + kBuf, std::span(raw).subspan(first)));
    }
    uint32_t offset;
    uint32_t size;
    std::memcpy(&offset, raw.data(), sizeof(offset));
    std::memcpy(&size, raw.data() + sizeof(offset), sizeof(size));
    const bool valid = size <= step_size_ && range_within(offset, size, buffer_size_);
    std::span<std::byte> bytes;
    if (valid && size != 0) {
        bytes = std::span(type1_).first(size);  // type1_ holds a step
        GF_TRY(bar1().read(buffer_ + offset, bytes));
    }
    // Consumed: the guest may reuse the chunk once it sees this.
    GF_TRY(store(kToHost + kReadPos, read_pos + kType1DescriptorSize));
    if (!valid) {
        protocol_error();
        return true;
    }
    const uint32_t consumed = GF_TRY(load(kHostConsumedPos));
    GF_TRY(store(kHostConsumedPos, consumed + size));
    if (!bytes.empty()) {
        deliver(bytes);
    }
    return true;
}

Result<bool> AsgContext::step_large(uint32_t write_pos, uint32_t read_pos, uint32_t mode) {
    const uint32_t available = write_pos - read_pos;
    const uint32_t remaining = GF_TRY(load(kTransferSize));
    // Data past the view, data outside a mode-3 transfer, or more than the guest announced.
    if (available > view_mask_ || mode != 3 || remaining == 0) {
        protocol_error();
        GF_TRY(store(kToHostLargeXfer + kReadPos, write_pos));
        return true;
    }
    const uint32_t n = std::min({available, remaining, static_cast<uint32_t>(chunk_.size())});
    // Before reading, so that the guest cannot race it (§3.3).
    GF_TRY(store(kTransferSize, remaining - n));
    std::span<std::byte> bytes(chunk_.data(), n);
    GF_TRY(read_view(read_pos, bytes));
    GF_TRY(store(kToHostLargeXfer + kReadPos, read_pos + n));
    deliver(bytes);
    return true;
}

Result<bool> AsgContext::step_reply() {
    const uint32_t write_pos = GF_TRY(load(kFromHostLargeXfer + kWritePos));
    const uint32_t read_pos = GF_TRY(load(kFromHostLargeXfer + kReadPos));
    const uint32_t used = write_pos - read_pos;
    if (used > view_mask_) {
        // The guest's read position jumped: the reply cannot be placed. Dropped.
        protocol_error();
        reply_.clear();
        reply_sent_ = 0;
        return true;
    }
    const uint32_t room = view_mask_ - used;  // a ring holds at most size - 1 bytes
    if (room == 0) {
        // Full: poll with a growing pause (the reference guest does not ping when it reads);
        // a ping or a stop request ends the pause.
        if (++reply_full_polls_ <= kIdleRounds * kYieldsPerRound) {
            std::this_thread::yield();
            return true;
        }
        const unsigned cap = reply_full_polls_ <= kIdleRounds * kYieldsPerRound + kPatientPolls
                                 ? kReplyBackoffUs
                                 : kIdleReplyBackoffUs;
        reply_backoff_us_ = std::clamp(reply_backoff_us_ * 2, 1u, cap);
        // NEED_NOTIFY for the pause, so that a guest writing meanwhile pings (RENDERING would
        // leave its data waiting up to a pause), with the same re-check as before a sleep.
        GF_TRY(store(kState, NeedNotify));
        if (GF_TRY(input_pending())) {
            GF_TRY(store(kState, Rendering));
            return true;
        }
        (void)wait_for_work_until(std::chrono::steady_clock::now() +
                                  std::chrono::microseconds(reply_backoff_us_));
        GF_TRY(store(kState, Rendering));
        return true;
    }
    reply_backoff_us_ = 0;
    reply_full_polls_ = 0;
    const size_t n = std::min<size_t>(room, reply_.size() - reply_sent_);
    GF_TRY(write_view(write_pos, std::span(reply_).subspan(reply_sent_, n)));
    GF_TRY(store(kFromHostLargeXfer + kWritePos, write_pos + static_cast<uint32_t>(n)));
    bytes_out_.fetch_add(n, std::memory_order_relaxed);
    reply_sent_ += n;
    if (reply_sent_ == reply_.size()) {
        reply_.clear();
        reply_sent_ = 0;
    }
    return true;
}

void AsgContext::deliver(std::span<const std::byte> bytes) {
    sink_->consume(bytes, reply_);
    bytes_in_.fetch_add(bytes.size(), std::memory_order_relaxed);
}

Result<void> AsgContext::read_view(uint32_t pos, std::span<std::byte> out) {
    const uint32_t start = pos & view_mask_;
    const size_t first = std::min<size_t>(out.size(), view_mask_ + 1 - start);
    GF_TRY(bar1().read(buffer_ + start, out.first(first)));
    if (first < out.size()) {
        GF_TRY(bar1().read(buffer_, out.subspan(first)));
    }
    return {};
}

Result<void> AsgContext::write_view(uint32_t pos, std::span<const std::byte> in) {
    const uint32_t start = pos & view_mask_;
    const size_t first = std::min<size_t>(in.size(), view_mask_ + 1 - start);
    GF_TRY(bar1().write(buffer_ + start, in.first(first)));
    if (first < in.size()) {
        GF_TRY(bar1().write(buffer_, in.subspan(first)));
    }
    return {};
}

}  // namespace gf::device
