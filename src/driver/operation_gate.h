// Admits driver operations until unbind starts, then lets unbind wait for the
// ones already running (the Rust driver's begin_operation/shutdown).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/result.h"

namespace gf::driver {

class OperationGate {
  public:
    // Held for the length of one operation.
    class Token {
      public:
        Token(Token&& other) noexcept;
        Token& operator=(Token&&) = delete;
        Token(const Token&) = delete;
        Token& operator=(const Token&) = delete;
        ~Token();

      private:
        friend class OperationGate;
        explicit Token(OperationGate& gate) : gate_(&gate) {}
        OperationGate* gate_;  // not owned; null once moved from
    };

    OperationGate() = default;
    OperationGate(const OperationGate&) = delete;
    OperationGate& operator=(const OperationGate&) = delete;

    // ENODEV once close_and_wait() has started.
    Result<Token> enter();
    // Refuses new operations, then waits for the running ones. Idempotent.
    void close_and_wait();

  private:
    void leave();

    static constexpr uint64_t kClosed = uint64_t{1} << 63;
    // kClosed | number of operations inside.
    std::atomic<uint64_t> state_{0};
};

}  // namespace gf::driver
