#include "pci/sysfs/sysfs_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"

namespace gf::pci::sysfs {

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        return fail(errno);
    }
    std::string text;
    char chunk[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(errno);
        }
        if (n == 0) {
            return text;
        }
        // n <= sizeof(chunk) by read()'s contract.
        text.append(chunk, static_cast<size_t>(n));
        if (text.size() > max_bytes) {
            return fail(EFBIG);
        }
    }
}

Result<void> write_file(const std::string& path, std::string_view text) {
    // O_TRUNC so a regular file (the fake tree) holds exactly what was
    // written, as a sysfs attribute reads back its new state.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (!fd.valid()) {
        return fail(errno);
    }
    const ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0) {
        return fail(errno);
    }
    if (static_cast<size_t>(n) != text.size()) {
        return fail(EIO);  // sysfs stores take the whole buffer or fail
    }
    return {};
}

std::optional<uint64_t> parse_hex(std::string_view text) {
    if (text.size() < 3 || text.size() > 18 || text[0] != '0' || text[1] != 'x') {
        return std::nullopt;
    }
    uint64_t value = 0;
    for (const char c : text.substr(2)) {
        unsigned digit;
        if (c >= '0' && c <= '9') {
            digit = static_cast<unsigned>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = static_cast<unsigned>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            digit = static_cast<unsigned>(c - 'A' + 10);
        } else {
            return std::nullopt;
        }
        // At most 16 digits (checked above), so the shift never drops bits.
        value = (value << 4) | digit;
    }
    return value;
}

std::optional<uint64_t> parse_hex_attribute(std::string_view text) {
    if (!text.empty() && text.back() == '\n') {
        text.remove_suffix(1);
    }
    return parse_hex(text);
}

std::string join(std::string_view a, std::string_view b) {
    std::string path(a);
    path += '/';
    path += b;
    return path;
}

}  // namespace gf::pci::sysfs
