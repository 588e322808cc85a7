// Where an ASG context's consumer hands the bytes the guest sent (docs/contexts.md#asg): a
// renderer plugs in here. The consumer calls one sink from its own thread only, in the order
// the guest wrote the bytes; the sink may append reply bytes, which the consumer sends back to
// the guest through from_host_large_xfer once the guest's input is drained.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace gf::device {

class AsgSink {
  public:
    virtual ~AsgSink() = default;
    // `in` is a copy (never the shared memory itself). Append any reply to `reply`.
    virtual void consume(std::span<const std::byte> in, std::vector<std::byte>& reply) = 0;
};

// Makes the sink of one context (called under the device lock, at the create ping).
using AsgSinkFactory = std::function<std::unique_ptr<AsgSink>()>;

// Replies with every byte it reads (tests, `goldfish-as asg echo`). Holds at most
// kMaxPending bytes of unsent reply; what comes beyond that is dropped and counted.
class EchoAsgSink final : public AsgSink {
  public:
    static constexpr size_t kMaxPending = 256u << 20;
    void consume(std::span<const std::byte> in, std::vector<std::byte>& reply) override;
    uint64_t dropped() const { return dropped_; }

  private:
    uint64_t dropped_ = 0;
};

// Counts bytes and replies nothing (benchmarks).
class DiscardAsgSink final : public AsgSink {
  public:
    void consume(std::span<const std::byte> in, std::vector<std::byte>& reply) override;
    uint64_t bytes() const { return bytes_; }

  private:
    uint64_t bytes_ = 0;
};

// The built-in sinks by name: "echo", "discard". EINVAL for any other name.
Result<AsgSinkFactory> builtin_asg_sink(std::string_view name);

}  // namespace gf::device
