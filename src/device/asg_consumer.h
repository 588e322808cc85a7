// The host's consumer of one ASG stream, as a step function over the shared rings (spec asg.md
// §3.3-3.4, docs/contexts.md#asg): each step() does one unit of work and says what it found, so
// the context's thread (asg_context.cpp) and tests drive the same logic, tests without a thread.
// AsgPacing turns what step() found into what the thread does next: go on, yield, pause or
// sleep until a ping.
//
// It follows the real guest (gfxstream's AddressSpaceStream), not an idealised one:
//   - it takes to_host_large_xfer data whatever transfer_mode says: writeFullyAsync sets the
//     mode back to 1 as soon as its last chunk is in the ring, before the host drained it;
//   - it never sleeps while a transfer it was told about (transfer_size != 0) is unfinished:
//     writeFully pings at most once while it pushes, then spins on a full ring without pinging;
//     a guest that stops for good mid-transfer costs bounded polling, not a busy loop;
//   - replies go out only once the guest has nothing in flight (both rings empty,
//     transfer_size 0): the one buffer is time-shared by all three directions;
//   - it holds a bounded reply queue, and takes input only while that has room for it.
// Everything read from shared memory is untrusted: what it refuses is a protocol error.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "device/asg_sink.h"
#include "device/bar1_access.h"
#include "hw/asg_layout.h"

namespace gf::device {

// Where a stream lives in BAR1 and its sizes.
struct AsgStreamLayout {
    uint64_t ring = 0;    // BAR1 offset of the 12288-byte ring storage
    uint64_t buffer = 0;  // BAR1 offset of the transfer buffer
    uint32_t buffer_size = 0;
    uint32_t step_size = 0;  // flush_interval: the most one type-1 chunk carries
};

// The device-wide ASG counters a consumer adds to (DeviceStats).
struct AsgCounters {
    std::atomic<uint64_t>& protocol_errors;
    std::atomic<uint64_t>& bytes_in;
    std::atomic<uint64_t>& bytes_out;
    std::atomic<uint64_t>& reply_refused;
};

class AsgConsumer {
  public:
    // The most reply bytes a context holds: what an echo of a 64 MiB mode-3 transfer needs
    // (its replies wait until the transfer ends). Past that the consumer takes no input until
    // the guest reads, as a renderer blocked on a full reply ring does.
    static constexpr size_t kReplyCapacity = size_t{64} << 20;
    // The most a large-transfer read takes at once.
    static constexpr uint32_t kMaxChunk = 256u << 10;

    enum class Outcome {
        kProgress,  // did something (or refused something): step again
        kIdle,      // nothing to do, nothing owed: may sleep until a ping
        kWaiting,   // nothing to do now, but the guest owes data of an unfinished transfer, or
                    // a reply waits for room in from_host_large_xfer: poll, never sleep
    };

    // `bar1` reaches the stream's memory; the sink and counters outlive the consumer.
    AsgConsumer(const Bar1Access& bar1, AsgStreamLayout layout, AsgSink& sink, AsgCounters counters,
                size_t reply_capacity = kReplyCapacity);

    // One unit of work: a type-1 descriptor, a large-transfer chunk or a piece of reply.
    // Fails only when BAR1 is out of reach (revoked: the context is stopping).
    Result<Outcome> step();
    // Publishes the host state (hw::asg::State) in the ring storage.
    Result<void> publish(uint32_t state) const;

    size_t reply_queued() const { return reply_.size(); }
    size_t reply_blocks() const { return reply_.blocks(); }

  private:
    Result<uint32_t> load(uint64_t ring_offset) const;
    Result<void> store(uint64_t ring_offset, uint32_t value) const;
    Result<Outcome> step_type1(uint32_t write_pos, uint32_t read_pos);
    Result<Outcome> step_large(uint32_t write_pos, uint32_t read_pos);
    Result<Outcome> step_reply();
    // Whether the queue has room for the most one input step can bring.
    bool taking_input() const;
    void deliver(std::span<const std::byte> bytes);
    void protocol_error() { counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed); }
    // Copies bytes of the buffer's view from position `pos` (wrapping at the view's end).
    Result<void> read_view(uint32_t pos, std::span<std::byte> out) const;
    Result<void> write_view(uint32_t pos, std::span<const std::byte> in) const;

    const Bar1Access& bar1_;
    const AsgStreamLayout layout_;
    const uint32_t view_mask_;  // largest power of two <= buffer_size, minus 1
    AsgSink& sink_;
    AsgCounters counters_;
    AsgReplyQueue reply_;
    std::vector<std::byte> chunk_;  // one large-transfer read, or one type-1 chunk
};

// What the consumer's thread does after a step, from the reference consumer's idle policy: a
// look at the rings after every yield for kYieldsBeforeRest yields; then, with nothing owed, it
// publishes NEED_NOTIFY and sleeps until a ping; with something owed (kWaiting) it pauses
// instead, 1 ms at a time for kPatientPauses pauses, then doubling up to kLongestPause, so a
// guest that stopped for good costs about 10 wake-ups a second. A ping ends a pause at once.
class AsgPacing {
  public:
    static constexpr unsigned kYieldsBeforeRest = 8 * 30;  // the reference: 8 rounds of 30
    static constexpr std::chrono::microseconds kFirstPause{1000};
    static constexpr unsigned kPatientPauses = 64;
    static constexpr std::chrono::microseconds kLongestPause{100'000};

    struct Action {
        enum Kind { kStep, kYield, kSleep, kPause } kind = kStep;
        std::chrono::microseconds pause{0};  // kPause only
    };

    // What to do after a step that found `outcome`.
    Action next(AsgConsumer::Outcome outcome);

  private:
    unsigned unproductive_ = 0;  // steps without progress in a row
    unsigned pauses_ = 0;        // pauses since the last progress
    std::chrono::microseconds pause_{0};
};

}  // namespace gf::device
