// Where an ASG context's consumer hands the bytes the guest sent (docs/contexts.md#asg): a
// renderer plugs in here. The consumer calls one sink from its own thread only, in the order
// the guest wrote the bytes; the sink writes its reply bytes into the context's reply queue,
// which the consumer sends back to the guest through from_host_large_xfer once the guest's
// input is drained.
//
// Back-pressure is explicit: the reply queue holds a fixed number of bytes (the context's
// whole reply memory). The consumer takes guest input only while the queue has room for what
// it takes, and hands a sink at most room() bytes at a time, so a sink that replies no more
// than it reads (echo) is never refused. AsgReply::write says how much it took; what it
// refuses is counted (DeviceStats::asg_reply_refused, the status' `reply_refused`), never
// thrown away unseen.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "base/result.h"

namespace gf::device {

// A sink's view of the reply queue: how much room there is, and a write that takes what fits.
class AsgReply {
  public:
    AsgReply(const AsgReply&) = delete;
    AsgReply& operator=(const AsgReply&) = delete;

    size_t capacity() const { return capacity_; }
    size_t size() const { return size_; }
    size_t room() const { return capacity_ - size_; }
    // Queues the first min(room(), bytes.size()) bytes; returns how many. The rest is refused
    // and counted.
    size_t write(std::span<const std::byte> bytes);

  protected:
    // `refused` counts the bytes write() could not take; it outlives the queue.
    AsgReply(size_t capacity, std::atomic<uint64_t>& refused)
        : capacity_(capacity), refused_(refused) {}
    ~AsgReply() = default;

    // Fixed-size blocks, allocated as bytes come and freed as they go out: memory follows
    // what is queued, never more than capacity() plus two blocks.
    static constexpr size_t kBlockSize = size_t{64} << 10;
    std::deque<std::unique_ptr<std::byte[]>> blocks_;
    size_t head_ = 0;  // where the first queued byte sits in blocks_.front()
    size_t size_ = 0;

  private:
    const size_t capacity_;
    std::atomic<uint64_t>& refused_;
};

// The consumer's side of the same queue.
class AsgReplyQueue final : public AsgReply {
  public:
    AsgReplyQueue(size_t capacity, std::atomic<uint64_t>& refused) : AsgReply(capacity, refused) {}

    bool empty() const { return size_ == 0; }
    // The longest run of queued bytes that is contiguous in memory, from the first on.
    std::span<const std::byte> front() const;
    // Drops the first n bytes (n <= size()).
    void pop(size_t n);
    // Drops everything.
    void clear();
    // Blocks held now (for tests of the memory bound).
    size_t blocks() const { return blocks_.size(); }
};

class AsgSink {
  public:
    virtual ~AsgSink() = default;
    // `in` is a copy (never the shared memory itself) of at most reply.room() bytes.
    virtual void consume(std::span<const std::byte> in, AsgReply& reply) = 0;
};

// Makes the sink of one context (called under the device lock, at the create ping).
using AsgSinkFactory = std::function<std::unique_ptr<AsgSink>()>;

// Replies with every byte it reads (tests, `goldfish-as asg echo`). The consumer never hands
// it more than the queue's room, so it never loses a byte.
class EchoAsgSink final : public AsgSink {
  public:
    void consume(std::span<const std::byte> in, AsgReply& reply) override;
};

// Counts bytes and replies nothing (benchmarks).
class DiscardAsgSink final : public AsgSink {
  public:
    void consume(std::span<const std::byte> in, AsgReply& reply) override;
    uint64_t bytes() const { return bytes_; }

  private:
    uint64_t bytes_ = 0;
};

// The built-in sinks by name: "echo", "discard". EINVAL for any other name.
Result<AsgSinkFactory> builtin_asg_sink(std::string_view name);

}  // namespace gf::device
