// Errors as values: every fallible boundary returns a Result carrying an errno.
#pragma once

#include <cerrno>
#include <tl/expected.hpp>
#include <utility>

namespace gf {

// A positive errno value (EINVAL, ENOMEM, ...). Kept positive inside the code
// base; negated only where a kernel-style interface wants "-errno".
class Error {
  public:
    constexpr explicit Error(int errno_value) : value_(errno_value > 0 ? errno_value : EINVAL) {}
    constexpr int value() const { return value_; }
    constexpr int negative() const { return -value_; }
    friend constexpr bool operator==(Error a, Error b) { return a.value_ == b.value_; }

  private:
    int value_;
};

template <typename T = void>
using Result = tl::expected<T, Error>;

// `return fail(ENOMEM);` from any function returning Result<T>.
inline tl::unexpected<Error> fail(int errno_value) {
    return tl::unexpected<Error>(Error(errno_value));
}
inline tl::unexpected<Error> fail(Error error) {
    return tl::unexpected<Error>(error);
}

// 0 on success, the negative errno otherwise: the convention at the FUSE and
// ioctl boundaries.
template <typename T>
int to_negative_errno(const Result<T>& result) {
    return result ? 0 : result.error().negative();
}

}  // namespace gf

// Early return on error. GF_TRY(expr) yields the value of a Result<T> (nothing
// for Result<void>) and returns its error from the enclosing function.
// Uses a statement expression, which g++ and clang both support.
#define GF_TRY(expr)                                                      \
    ({                                                                    \
        auto&& gf_try_result_ = (expr);                                   \
        if (!gf_try_result_) [[unlikely]]                                 \
            return ::tl::unexpected<::gf::Error>(gf_try_result_.error()); \
        ::gf::detail::unwrap(std::move(gf_try_result_));                  \
    })

namespace gf::detail {
template <typename T>
T unwrap(Result<T>&& r) {
    return std::move(*r);
}
inline void unwrap(Result<void>&&) {}
}  // namespace gf::detail
