// Small text helpers of the device server's command line and control socket.
#pragma once

#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace gf::vmm {

// A whole unsigned number, decimal or 0x-hex: "4096", "0x1000". nullopt for anything else
// (a sign, trailing text, an overflow).
inline std::optional<uint64_t> parse_u64(std::string_view text) {
    uint64_t v = 0;
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        text.remove_prefix(2);
        base = 16;
    }
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return v;
}

// Joins pieces into one string. g++ 12 -O2 warns falsely (-Wrestrict) about operator+
// chains that start with a literal, so messages are built this way.
inline std::string cat(std::initializer_list<std::string_view> pieces) {
    std::string out;
    for (const std::string_view piece : pieces) {
        out.append(piece);
    }
    return out;
}

}  // namespace gf::vmm
