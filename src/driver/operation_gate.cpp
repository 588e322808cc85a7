#include "driver/operation_gate.h"

#include <utility>

namespace gf::driver {

OperationGate::Token::Token(Token&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}

OperationGate::Token::~Token() {
    if (gate_ != nullptr) {
        gate_->leave();
    }
}

Result<OperationGate::Token> OperationGate::enter() {
    const uint64_t previous = state_.fetch_add(1, std::memory_order_acquire);
    if ((previous & kClosed) != 0) {
        leave();
        return fail(ENODEV);
    }
    return Token(*this);
}

void OperationGate::leave() {
    const uint64_t now = state_.fetch_sub(1, std::memory_order_release) - 1;
    if (now == kClosed) {
        state_.notify_all();  // the last operation out wakes a waiting unbind
    }
}

void OperationGate::close_and_wait() {
    uint64_t state = state_.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
    while (state != kClosed) {
        state_.wait(state, std::memory_order_acquire);
        state = state_.load(std::memory_order_acquire);
    }
}

}  // namespace gf::driver
