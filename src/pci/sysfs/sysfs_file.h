// Reading and writing sysfs attribute files, and the strict hex parsing every
// value read from them goes through.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace gf::pci::sysfs {

// The whole file (sysfs attributes are small; more than max_bytes is EFBIG,
// so a wrong path cannot make us read a huge file). The errno of open/read.
Result<std::string> read_file(const std::string& path, size_t max_bytes = 64 * 1024);

// Writes `text` as one write(), as `echo` does: sysfs acts on each write.
Result<void> write_file(const std::string& path, std::string_view text);

// "0x" followed by 1 to 16 hex digits, nothing else; nullopt otherwise.
std::optional<uint64_t> parse_hex(std::string_view text);

// A one-value attribute such as `vendor`: parse_hex of the text without its
// single trailing newline.
std::optional<uint64_t> parse_hex_attribute(std::string_view text);

// `path` relative to the caller's working directory: `a` + "/" + `b`.
std::string join(std::string_view a, std::string_view b);

}  // namespace gf::pci::sysfs
