// Errors the daemon can print: an errno plus one line saying what went wrong
// on this system and, where there is one, what to do about it.
#pragma once

#include <string>

#include "base/result.h"

namespace gf::pci::sysfs {

// Stores `text` in *message (when the caller asked for one) and returns the
// error, so every failure site reads `return fail_with(message, EBUSY, ...)`.
inline tl::unexpected<Error> fail_with(std::string* message, int errno_value, std::string text) {
    if (message != nullptr) {
        *message = std::move(text);
    }
    return fail(errno_value);
}

}  // namespace gf::pci::sysfs
