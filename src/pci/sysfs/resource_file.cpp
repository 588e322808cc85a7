#include "pci/sysfs/resource_file.h"

#include <cerrno>

#include "base/checked.h"
#include "pci/sysfs/diagnostic.h"
#include "pci/sysfs/sysfs_file.h"

namespace gf::pci::sysfs {

namespace {

struct ResourceLine {
    uint64_t start;
    uint64_t end;
    uint64_t flags;
};

// Exactly "F F F" with F = parse_hex's shape.
std::optional<ResourceLine> parse_line(std::string_view line) {
    std::array<uint64_t, 3> fields{};
    for (size_t i = 0; i < fields.size(); ++i) {
        const size_t space = line.find(' ');
        const bool last = i + 1 == fields.size();
        if (last != (space == std::string_view::npos)) {
            return std::nullopt;  // too few or too many fields
        }
        const auto value = parse_hex(line.substr(0, space));
        if (!value) {
            return std::nullopt;
        }
        fields[i] = *value;
        line = last ? std::string_view() : line.substr(space + 1);
    }
    return ResourceLine{fields[0], fields[1], fields[2]};
}

std::string describe(size_t number, std::string_view line, std::string_view problem) {
    return "line " + std::to_string(number) + " of the resource file (\"" + std::string(line) +
           "\") " + std::string(problem);
}

}  // namespace

Result<BarResources> parse_resource_file(std::string_view text, std::string* message) {
    BarResources bars{};
    size_t number = 0;
    while (!text.empty()) {
        const size_t newline = text.find('\n');
        const std::string_view line = text.substr(0, newline);
        text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
        ++number;
        const auto parsed = parse_line(line);
        if (!parsed) {
            return fail_with(message, EINVAL, describe(number, line, "is not three 0x-hex fields"));
        }
        if (number > kNumBars) {
            continue;  // ROM and bridge windows: shape checked, not used
        }
        if (parsed->flags > UINT32_MAX) {
            return fail_with(message, EINVAL,
                             describe(number, line, "has flags beyond linux/ioport.h"));
        }
        BarResource& bar = bars[number - 1];
        bar.flags = static_cast<uint32_t>(parsed->flags);
        const bool no_address = parsed->start == 0 && parsed->end == 0;
        if (no_address || (parsed->flags & (kResourceUnset | kResourceDisabled)) != 0) {
            continue;  // unused, or the kernel assigned it no address
        }
        if (parsed->end < parsed->start) {
            return fail_with(message, EINVAL, describe(number, line, "ends before it starts"));
        }
        // end - start cannot wrap (end >= start); the + 1 can, for [0, 2^64).
        const auto length = checked_add(parsed->end - parsed->start, 1);
        if (!length) {
            return fail_with(message, EOVERFLOW,
                             describe(number, line, "has a size beyond 64 bits"));
        }
        bar.start = parsed->start;
        bar.length = *length;
    }
    if (number < kNumBars) {
        return fail_with(message, EINVAL,
                         "the resource file has " + std::to_string(number) +
                             " lines, expected at least " + std::to_string(kNumBars));
    }
    return bars;
}

}  // namespace gf::pci::sysfs
