// Runs a callable on scope exit unless dismissed: undoes a host allocation
// when a later step of the same operation fails.
#pragma once

#include <utility>

namespace gf {

template <typename F>
class ScopeGuard {
  public:
    explicit ScopeGuard(F f) : f_(std::move(f)) {}
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;
    ~ScopeGuard() {
        if (armed_) {
            f_();
        }
    }
    void dismiss() { armed_ = false; }

  private:
    F f_;
    bool armed_ = true;
};

}  // namespace gf
