// PCI addresses as sysfs names them: DDDD:BB:DD.F (domain, bus, device,
// function). Anything else is refused before it becomes part of a path.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace gf::pci::sysfs {

// The canonical (lower-case) form of a PCI address, or EINVAL unless `text`
// is exactly 4 hex digits, ':', 2, ':', 2 (device <= 0x1f), '.', 1 (<= 7).
// Upper-case hex digits are accepted. No other character can pass, so the
// result is safe to use as a path component (no '/', no "..").
Result<std::string> canonical_bdf(std::string_view text);

}  // namespace gf::pci::sysfs
