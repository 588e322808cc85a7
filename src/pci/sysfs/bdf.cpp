#include "pci/sysfs/bdf.h"

#include <cerrno>

namespace gf::pci::sysfs {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

Result<std::string> canonical_bdf(std::string_view text) {
    // "DDDD:BB:DD.F": separators at fixed places, hex digits everywhere else.
    constexpr std::string_view kShape = "xxxx:xx:xx.x";
    if (text.size() != kShape.size()) {
        return fail(EINVAL);
    }
    std::string canonical(kShape.size(), '\0');
    for (size_t i = 0; i < kShape.size(); ++i) {
        if (kShape[i] != 'x') {
            if (text[i] != kShape[i]) {
                return fail(EINVAL);
            }
            canonical[i] = kShape[i];
            continue;
        }
        const int digit = hex_digit(text[i]);
        if (digit < 0) {
            return fail(EINVAL);
        }
        canonical[i] = "0123456789abcdef"[digit];
    }
    const int device = hex_digit(canonical[8]) * 16 + hex_digit(canonical[9]);
    const int function = hex_digit(canonical[11]);
    if (device > 0x1f || function > 7) {
        return fail(EINVAL);  // 5 bits of device, 3 of function
    }
    return canonical;
}

}  // namespace gf::pci::sysfs
