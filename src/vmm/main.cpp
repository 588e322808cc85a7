// goldfish-vmm-device: serves one goldfish address space device to QEMU's multi-process
// proxy device (`-device x-pci-proxy-dev,fd=N`, docs/vm.md#proxy-protocol).
//
//   goldfish-vmm-device --fd N            serve on an inherited socket, until QEMU closes it
//   goldfish-vmm-device -- QEMU ARGS...   make the socketpair, run QEMU with the proxy
//                                         device appended, serve in a child process
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/proxy_device.h"

namespace {

constexpr const char* kName = "goldfish-vmm-device";

void log_line(const std::string& line) {
    std::fprintf(stderr, "%s: %s\n", kName, line.c_str());
}

[[noreturn]] void die(const std::string& message) {
    log_line(message);
    std::exit(2);
}

// "268435456", "256M", "1G", "64K".
bool parse_size(const std::string& text, uint64_t& out) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text.c_str(), &end, 0);
    if (text.empty() || errno != 0 || end == text.c_str()) {
        return false;
    }
    unsigned shift = 0;
    const std::string suffix = end;
    if (suffix == "K" || suffix == "k") {
        shift = 10;
    } else if (suffix == "M" || suffix == "m") {
        shift = 20;
    } else if (suffix == "G" || suffix == "g") {
        shift = 30;
    } else if (!suffix.empty()) {
        return false;
    }
    if (shift != 0 && v > (UINT64_MAX >> shift)) {
        return false;
    }
    out = static_cast<uint64_t>(v) << shift;
    return true;
}

// Serves until the connection ends; the exit status says how it ended.
int serve(gf::vmm::ProxyDevice& device, gf::UniqueFd socket) {
    const gf::vmm::ConnectionEnd end = device.serve(std::move(socket));
    const gf::vmm::ProxyStats s = device.stats();
    const std::string counts = std::to_string(s.messages) + " messages, " +
                               std::to_string(s.bar_reads + s.bar_writes) + " BAR accesses";
    if (end.kind == gf::vmm::ConnectionEnd::Kind::peer_closed) {
        log_line("connection closed by QEMU (" + counts + ")");
        return 0;
    }
    log_line("ending connection: " + end.reason + " (" + counts + ")");
    return 1;
}

bool is_socket(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

// Forks the device server and execs QEMU with the proxy device on the other end of a
// socketpair. QEMU keeps this process's pid (and so the terminal and exit status); the
// server is its child and ends when QEMU's end of the socket closes.
[[noreturn]] void run_qemu(std::unique_ptr<gf::vmm::ProxyDevice> device,
                           std::vector<std::string> qemu, const std::string& id) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        die(std::string("socketpair: ") + std::strerror(errno));
    }
    gf::UniqueFd qemu_end(fds[0]);
    gf::UniqueFd device_end(fds[1]);
    const pid_t child = ::fork();
    if (child < 0) {
        die(std::string("fork: ") + std::strerror(errno));
    }
    if (child == 0) {
        // QEMU's end closes whenever QEMU exits or is killed (or its exec fails), so the
        // server always sees EOF and ends by itself, logging how it went.
        qemu_end.reset();
        std::exit(serve(*device, std::move(device_end)));
    }
    device_end.reset();
    device.reset();
    // QEMU inherits this one end; every other fd of ours is close-on-exec.
    if (::fcntl(qemu_end.get(), F_SETFD, 0) != 0) {
        die(std::string("fcntl: ") + std::strerror(errno));
    }
    qemu.push_back("-device");
    qemu.push_back("x-pci-proxy-dev,id=" + id + ",fd=" + std::to_string(qemu_end.release()));
    std::vector<char*> argv;
    for (auto& arg : qemu) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    die("cannot run " + qemu[0] + ": " + std::strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "goldfish-vmm-device: serves the goldfish address space device to QEMU's "
        "x-pci-proxy-dev (QEMU's multi-process protocol)"};
    int fd = -1;
    std::string bar1_text = "256M";
    std::string id = "goldfish-as";
    bool trace = false;
    std::vector<std::string> qemu;
    app.add_option("--fd", fd, "serve on this inherited socket (one end of a socketpair)");
    app.add_option("--bar1-size", bar1_text,
                   "BAR1 size: a power of two up to 2G, as bytes or with K/M/G")
        ->capture_default_str();
    app.add_option("--id", id, "QEMU device id (with a QEMU command)")->capture_default_str();
    app.add_flag("--trace", trace, "log guest RAM layout, BAR placement, resets, stray accesses");
    app.add_option("qemu", qemu,
                   "after --: a QEMU command line; the proxy device is appended to it");
    CLI11_PARSE(app, argc, argv);

    if ((fd >= 0) == !qemu.empty()) {
        die("give either --fd N or -- QEMU ARGS... (see --help)");
    }
    gf::vmm::ProxyDeviceConfig config;
    if (!parse_size(bar1_text, config.bar1_size)) {
        die("--bar1-size: not a size: " + bar1_text);
    }
    if (trace) {
        config.trace = [](std::string_view line) { log_line(std::string(line)); };
    }
    auto device = gf::vmm::ProxyDevice::create(std::move(config));
    if (!device) {
        die("cannot create the device: " + std::string(std::strerror(device.error().value())) +
            " (BAR1 must be a power of two from 4K to 2G)");
    }
    if (!qemu.empty()) {
        run_qemu(std::move(*device), std::move(qemu), id);
    }
    if (!is_socket(fd)) {
        die("--fd " + std::to_string(fd) + " is not a socket");
    }
    return serve(**device, gf::UniqueFd(fd));
}
