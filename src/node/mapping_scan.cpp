#include "node/mapping_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "base/unique_fd.h"

namespace gf::node {
namespace {

// One line of maps: "start-end perms offset major:minor inode [path]", numbers in hex but
// the inode.
struct MapsLine {
    uint64_t start = 0, end = 0, offset = 0;
    bool shared = false;
    unsigned major = 0, minor = 0;
    uint64_t inode = 0;
};

bool parse_hex(std::string_view& in, uint64_t& out, char stop) {
    out = 0;
    size_t i = 0;
    for (; i < in.size() && in[i] != stop; ++i) {
        const char c = in[i];
        const int digit = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (digit < 0 || out > (UINT64_MAX >> 4)) {
            return false;
        }
        out = out << 4 | static_cast<uint64_t>(digit);
    }
    if (i == 0 || i == in.size()) {
        return false;
    }
    in.remove_prefix(i + 1);
    return true;
}

bool parse_line(std::string_view in, MapsLine& line) {
    uint64_t major = 0, minor = 0;
    if (!parse_hex(in, line.start, '-') || !parse_hex(in, line.end, ' ') || in.size() < 5) {
        return false;
    }
    line.shared = in[3] == 's';
    in.remove_prefix(5);
    if (!parse_hex(in, line.offset, ' ') || !parse_hex(in, major, ':') ||
        !parse_hex(in, minor, ' ')) {
        return false;
    }
    line.major = static_cast<unsigned>(major);
    line.minor = static_cast<unsigned>(minor);
    line.inode = 0;
    size_t i = 0;
    for (; i < in.size() && in[i] >= '0' && in[i] <= '9'; ++i) {
        line.inode = line.inode * 10 + static_cast<uint64_t>(in[i] - '0');
    }
    return i > 0;
}

bool overlaps(const std::map<uint64_t, uint64_t>& ranges, uint64_t offset, uint64_t size) {
    // The last range starting before offset + size; offset + size may wrap only for garbage.
    auto it = ranges.lower_bound(offset > UINT64_MAX - size ? UINT64_MAX : offset + size);
    if (it == ranges.begin()) {
        return false;
    }
    --it;
    return it->first + it->second > offset;
}

bool is_file(const MappedFile& file, const MapsLine& line) {
    const bool node = line.major == major(file.node_dev) && line.minor == minor(file.node_dev) &&
                      line.inode == file.node_ino;
    const bool memory = line.major == major(file.memory_dev) &&
                        line.minor == minor(file.memory_dev) && line.inode == file.memory_ino;
    return (node || memory) && line.inode != 0 && line.end > line.start &&
           overlaps(file.ranges, line.offset, line.end - line.start);
}

enum class ProcessScan { kMapped, kNotSeen, kGone, kUnreadable };

ProcessScan scan_process(const MappedFile& file, int maps_fd) {
    char buf[64 * 1024];
    std::string carry;  // a line split between two reads
    for (;;) {
        const ssize_t n = ::read(maps_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno == ESRCH ? ProcessScan::kGone : ProcessScan::kUnreadable;
        }
        if (n == 0) {
            return ProcessScan::kNotSeen;
        }
        std::string_view chunk(buf, static_cast<size_t>(n));
        while (!chunk.empty()) {
            const size_t newline = chunk.find('\n');
            if (newline == std::string_view::npos) {
                carry.append(chunk);
                break;
            }
            std::string_view text = chunk.substr(0, newline);
            if (!carry.empty()) {
                carry.append(text);
                text = carry;
            }
            MapsLine line;
            if (parse_line(text, line) && line.shared && is_file(file, line)) {
                return ProcessScan::kMapped;
            }
            carry.clear();
            chunk.remove_prefix(newline + 1);
        }
    }
}

}  // namespace

MappingScan scan_for_mappings(const MappedFile& file, pid_t self, const std::string& proc_root) {
    if (file.ranges.empty()) {
        return MappingScan::kNotSeen;
    }
    DIR* dir = ::opendir(proc_root.c_str());
    if (dir == nullptr) {
        return MappingScan::kUnknown;
    }
    bool unknown = false;
    bool mapped = false;
    while (dirent* entry = ::readdir(dir)) {
        char* end = nullptr;
        const long pid = std::strtol(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != '\0' || pid <= 0 || pid == self) {
            continue;
        }
        const std::string path = proc_root + "/" + entry->d_name + "/maps";
        UniqueFd maps(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!maps) {
            // Gone since readdir: nothing of it to see. Anything else: we cannot tell.
            unknown |= errno != ENOENT && errno != ESRCH;
            continue;
        }
        const ProcessScan scan = scan_process(file, maps.get());
        if (scan == ProcessScan::kMapped) {
            mapped = true;
            break;
        }
        unknown |= scan == ProcessScan::kUnreadable;
    }
    ::closedir(dir);
    if (mapped) {
        return MappingScan::kMapped;
    }
    return unknown ? MappingScan::kUnknown : MappingScan::kNotSeen;
}

}  // namespace gf::node
