#include "vmm/control_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "vmm/text.h"

namespace gf::vmm {
namespace {

constexpr int kIoTimeoutMs = 10'000;
// A write-bar1 line of the longest payload, with room for the command and offset.
constexpr size_t kMaxRequest = 2 * kControlMaxLength + 64;

std::optional<std::vector<std::byte>> parse_hex(std::string_view text) {
    if (text.empty() || text.size() % 2 != 0) {
        return std::nullopt;
    }
    std::vector<std::byte> out;
    for (size_t i = 0; i < text.size(); i += 2) {
        uint8_t b = 0;
        const auto [end, ec] = std::from_chars(text.data() + i, text.data() + i + 2, b, 16);
        if (ec != std::errc() || end != text.data() + i + 2) {
            return std::nullopt;
        }
        out.push_back(static_cast<std::byte>(b));
    }
    return out;
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') {
            ++i;
        }
        const size_t start = i;
        while (i < line.size() && line[i] != ' ') {
            ++i;
        }
        if (i > start) {
            out.push_back(line.substr(start, i - start));
        }
    }
    return out;
}

Result<sockaddr_un> address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
        return fail(ENAMETOOLONG);
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

bool wait_for(int fd, short events) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, kIoTimeoutMs) == 1;
}

// Reads one line (without its newline) of at most kMaxRequest bytes.
Result<std::string> read_line(int fd) {
    std::string line;
    char buf[512];
    for (;;) {
        if (!wait_for(fd, POLLIN)) {
            return fail(ETIMEDOUT);
        }
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(errno);
        }
        if (n == 0) {
            return line;  // a last line without a newline counts
        }
        line.append(buf, static_cast<size_t>(n));
        if (const size_t nl = line.find('\n'); nl != std::string::npos) {
            line.resize(nl);
            return line;
        }
        if (line.size() > kMaxRequest) {
            return fail(E2BIG);
        }
    }
}

Result<void> write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        if (!wait_for(fd, POLLOUT)) {
            return fail(ETIMEDOUT);
        }
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(errno);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

std::string error(std::string_view why) {
    return "error " + std::string(why);
}

}  // namespace

std::string control_reply(ProxyDevice& device, std::string_view request) {
    const std::vector<std::string_view> w = words(request);
    if (w.empty()) {
        return error("empty request (read-bar1, write-bar1, stats)");
    }
    if (w[0] == "read-bar1" && w.size() == 3) {
        const auto offset = parse_u64(w[1]);
        const auto length = parse_u64(w[2]);
        if (!offset || !length || *length == 0 || *length > kControlMaxLength) {
            return error("read-bar1 OFFSET LENGTH: LENGTH from 1 to 4096");
        }
        std::vector<std::byte> bytes(*length);
        if (auto r = device.device().read_bar1(*offset, bytes); !r) {
            return error("read-bar1: " + std::string(std::strerror(r.error().value())) +
                         " (outside BAR1)");
        }
        std::string out = "ok ";
        static constexpr char kDigits[] = "0123456789abcdef";
        for (const std::byte b : bytes) {
            out += kDigits[static_cast<uint8_t>(b) >> 4];
            out += kDigits[static_cast<uint8_t>(b) & 0xf];
        }
        return out;
    }
    if (w[0] == "write-bar1" && w.size() == 3) {
        const auto offset = parse_u64(w[1]);
        const auto bytes = parse_hex(w[2]);
        if (!offset || !bytes || bytes->size() > kControlMaxLength) {
            return error("write-bar1 OFFSET HEX: an even number of hex digits, at most 4096 bytes");
        }
        if (auto r = device.device().write_bar1(*offset, *bytes); !r) {
            return error("write-bar1: " + std::string(std::strerror(r.error().value())) +
                         " (outside BAR1)");
        }
        return "ok";
    }
    if (w[0] == "stats" && w.size() == 1) {
        const ProxyStats p = device.stats();
        const device::DeviceStats d = device.device().stats();
        nlohmann::ordered_json j = {
            {"messages", p.messages},
            {"bar_reads", p.bar_reads},
            {"bar_writes", p.bar_writes},
            {"bar1_accesses", p.bar1_accesses},
            {"unbacked_bar1_accesses", p.unbacked_bar1_accesses},
            {"stray_bar_accesses", p.stray_bar_accesses},
            {"resets", p.resets},
            {"handles", d.handles},
            {"guest_blocks", d.guest_blocks},
            {"faults_fired", d.faults_fired},
        };
        return "ok " + j.dump();
    }
    return error("unknown request '" + std::string(w[0]) +
                 "' (read-bar1 OFFSET LENGTH, write-bar1 OFFSET HEX, stats)");
}

Result<std::unique_ptr<ControlSocket>> ControlSocket::listen(ProxyDevice& device,
                                                             std::string path) {
    const sockaddr_un addr = GF_TRY(address(path));
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return fail(EEXIST);
        }
        ::unlink(path.c_str());  // a socket a previous server left
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fail(errno);
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), 8) != 0) {
        return fail(errno);
    }
    return std::unique_ptr<ControlSocket>(
        new ControlSocket(device, std::move(path), std::move(fd)));
}

ControlSocket::ControlSocket(ProxyDevice& device, std::string path, UniqueFd listener)
    : device_(device),
      path_(std::move(path)),
      listener_(std::move(listener)),
      wake_(::eventfd(0, EFD_CLOEXEC)) {
    thread_ = std::thread([this] { run(); });
}

ControlSocket::~ControlSocket() {
    const uint64_t one = 1;
    if (wake_) {
        (void)!::write(wake_.get(), &one, sizeof one);
    }
    thread_.join();
    ::unlink(path_.c_str());
}

void ControlSocket::run() {
    for (;;) {
        pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
        if (::poll(fds, wake_ ? 2 : 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if (fds[1].revents != 0) {
            return;
        }
        UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client) {
            continue;
        }
        // One request at a time: a slow client delays others by at most the I/O timeout.
        auto line = read_line(client.get());
        const std::string reply = line ? control_reply(device_, *line)
                                       : error("cannot read the request: " +
                                               std::string(std::strerror(line.error().value())));
        (void)write_all(client.get(), reply + "\n");
    }
}

Result<std::string> control_request(const std::string& path, std::string_view request) {
    const sockaddr_un addr = GF_TRY(address(path));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fail(errno);
    }
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return fail(errno);
    }
    GF_TRY(write_all(fd.get(), std::string(request) + "\n"));
    return read_line(fd.get());
}

}  // namespace gf::vmm
