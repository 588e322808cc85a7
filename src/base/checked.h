// Checked arithmetic for addresses and sizes: overflow is an error, never a wrap.
#pragma once

#include <cerrno>
#include <cstdint>

#include "base/result.h"

namespace gf {

// a + b, or EOVERFLOW.
inline Result<uint64_t> checked_add(uint64_t a, uint64_t b) {
    uint64_t sum;
    if (__builtin_add_overflow(a, b, &sum)) {
        return fail(EOVERFLOW);
    }
    return sum;
}

// a * b, or EOVERFLOW.
inline Result<uint64_t> checked_mul(uint64_t a, uint64_t b) {
    uint64_t product;
    if (__builtin_mul_overflow(a, b, &product)) {
        return fail(EOVERFLOW);
    }
    return product;
}

// True if [offset, offset + size) lies inside [0, limit) without overflow.
inline bool range_within(uint64_t offset, uint64_t size, uint64_t limit) {
    uint64_t end;
    return !__builtin_add_overflow(offset, size, &end) && end <= limit;
}

}  // namespace gf
