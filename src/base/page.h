// Page rounding with checked arithmetic.
#pragma once

#include <cstdint>

#include "base/checked.h"
#include "base/result.h"

namespace gf {

// `size` rounded up to a multiple of `page` (a power of two), or EOVERFLOW.
inline Result<uint64_t> round_up_to_page(uint64_t size, uint64_t page) {
    const uint64_t padded = GF_TRY(checked_add(size, page - 1));
    return padded & ~(page - 1);
}

inline bool page_aligned(uint64_t value, uint64_t page) {
    return (value & (page - 1)) == 0;
}

}  // namespace gf
