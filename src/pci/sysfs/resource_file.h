// The sysfs `resource` file: one "0x<start> 0x<end> 0x<flags>" line per
// resource, BARs 0-5 first (then the ROM and bridge windows, which are
// checked for shape and otherwise ignored).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "pci/backend.h"

namespace gf::pci::sysfs {

// Flag bits of linux/ioport.h beyond those in pci/backend.h.
inline constexpr uint64_t kResourceDisabled = 0x10000000;
inline constexpr uint64_t kResourceUnset = 0x20000000;

using BarResources = std::array<BarResource, kNumBars>;

// EINVAL: a line that is not exactly three 0x-hex fields separated by single
// spaces, fewer than six lines, flags wider than 32 bits, or a BAR whose end
// is below its start. EOVERFLOW: a BAR whose size does not fit in 64 bits.
// A BAR whose start and end are both zero, or that the kernel marks unset or
// disabled, has no address: its length is 0 (unused). *message (if given)
// names the line on error.
Result<BarResources> parse_resource_file(std::string_view text, std::string* message);

}  // namespace gf::pci::sysfs
