// goldfish-vmm-device: serves one goldfish address space device to QEMU's multi-process
// proxy device (`-device x-pci-proxy-dev,fd=N`, docs/vm.md#proxy-protocol).
//
//   goldfish-vmm-device --fd N            serve on an inherited socket, until QEMU closes it
//   goldfish-vmm-device -- QEMU ARGS...   make the socketpair, run QEMU (a child) with the
//                                         proxy device appended, serve, exit with its status
//   goldfish-vmm-device --control PATH --send REQUEST
//                                         one request to a running server's control socket
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "vmm/control_socket.h"
#include "vmm/fault_spec.h"
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

// The signals the launcher passes on to QEMU. They are blocked in every thread from the
// start (threads inherit the mask) and read from a signalfd by one thread: no handler runs
// inside a blocking call, which sanitizers' deferred signal delivery would never reach.
sigset_t forwarded_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (const int signal : {SIGINT, SIGTERM, SIGHUP}) {
        sigaddset(&set, signal);
    }
    return set;
}

// Starts QEMU as a child with the proxy device on the other end of a socketpair and serves
// the device here until QEMU's end closes; then reaps QEMU and exits with its status (128 +
// the signal if one killed it). QEMU shares the terminal; SIGINT, SIGTERM and SIGHUP sent to
// this process go to QEMU, which ends the connection. Nothing outlives it: QEMU gets SIGTERM
// should this process die first.
[[noreturn]] void run_qemu(std::unique_ptr<gf::vmm::ProxyDevice> device,
                           std::unique_ptr<gf::vmm::ControlSocket> control,
                           std::vector<std::string> qemu, const std::string& id) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        die(std::string("socketpair: ") + std::strerror(errno));
    }
    gf::UniqueFd qemu_end(fds[0]);
    gf::UniqueFd device_end(fds[1]);
    qemu.push_back("-device");
    qemu.push_back("x-pci-proxy-dev,id=" + id + ",fd=" + std::to_string(qemu_end.get()));
    std::vector<char*> argv;
    for (auto& arg : qemu) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);

    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child < 0) {
        die(std::string("fork: ") + std::strerror(errno));
    }
    if (child == 0) {
        // QEMU starts with the signal mask this process had before it blocked them.
        const sigset_t signals = forwarded_signals();
        ::sigprocmask(SIG_UNBLOCK, &signals, nullptr);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
            ::_exit(1);  // the server died before prctl took effect
        }
        // QEMU inherits this one end; every other fd of ours is close-on-exec.
        if (::fcntl(qemu_end.get(), F_SETFD, 0) != 0) {
            log_line(std::string("fcntl: ") + std::strerror(errno));
            ::_exit(127);
        }
        ::execvp(argv[0], argv.data());
        log_line("cannot run " + qemu[0] + ": " + std::strerror(errno));
        ::_exit(127);
    }
    const sigset_t signals = forwarded_signals();
    const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC);
    if (signal_fd < 0) {
        ::kill(child, SIGTERM);
        die(std::string("signalfd: ") + std::strerror(errno));
    }
    // Lives until the process exits; QEMU is reaped below before anything could reuse its pid.
    std::thread([signal_fd, child] {
        for (;;) {
            signalfd_siginfo info{};
            const ssize_t n = ::read(signal_fd, &info, sizeof info);
            if (n == static_cast<ssize_t>(sizeof info)) {
                ::kill(child, static_cast<int>(info.ssi_signo));
            } else if (n >= 0 || errno != EINTR) {
                return;
            }
        }
    }).detach();
    // QEMU's end closes whenever QEMU exits or is killed (or its exec fails), so serve()
    // always sees EOF.
    qemu_end.reset();
    const int served = serve(*device, std::move(device_end));
    control.reset();
    int status = 0;
    while (::waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
            die(std::string("waitpid: ") + std::strerror(errno));
        }
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    // A protocol failure QEMU survived still fails the run.
    std::exit(code != 0 ? code : served);
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
    std::string trace_json;
    std::vector<std::string> fault_texts;
    std::string control_path;
    std::string send;
    std::vector<std::string> qemu;
    app.add_option("--fd", fd, "serve on this inherited socket (one end of a socketpair)");
    app.add_option("--bar1-size", bar1_text,
                   "BAR1 size: a power of two up to 2G, as bytes or with K/M/G")
        ->capture_default_str();
    app.add_option("--id", id, "QEMU device id (with a QEMU command)")->capture_default_str();
    app.add_flag("--trace", trace,
                 "log every BAR0 access decoded, config writes, placements, resets, "
                 "unbacked BAR1 and stray accesses, with timestamps");
    app.add_option("--trace-json", trace_json, "the same events as JSON lines, to this file");
    app.add_option("--fault", fault_texts,
                   "inject a fault: KIND[=VALUE][,after=N][,every=N][,times=N]"
                   "[,probability=P][,seed=S]; KIND is one of " +
                       gf::vmm::fault_kinds() + " (docs/vm.md#fault-injection)")
        // One spec per --fault: otherwise its values run on to `--` and swallow it.
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--control", control_path,
                   "serve a control socket here (BAR1 reads and writes, stats), or with "
                   "--send, the server's socket to talk to");
    app.add_option("--send", send,
                   "with --control: send one request ('read-bar1 OFFSET LENGTH', "
                   "'write-bar1 OFFSET HEX', 'stats'), print the reply");
    app.footer(
        "  -- QEMU ARGS...     a QEMU command line; the proxy device is appended to it, QEMU\n"
        "                      runs as a child and its exit status is this program's");
    // Everything after the first `--` is QEMU's, split off here: CLI11 would end a vector
    // option's values at `--` and go on parsing QEMU's arguments as ours.
    int own = argc;
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--") {
            own = i;
            qemu.assign(argv + i + 1, argv + argc);
            break;
        }
    }
    if (own < argc && qemu.empty()) {
        die("-- needs a QEMU command after it");
    }
    CLI11_PARSE(app, own, argv);

    if (!send.empty()) {
        if (control_path.empty()) {
            die("--send needs --control PATH");
        }
        auto reply = gf::vmm::control_request(control_path, send);
        if (!reply) {
            die(control_path + ": " + std::strerror(reply.error().value()));
        }
        if (reply->starts_with("ok")) {
            const std::string payload = reply->size() > 3 ? reply->substr(3) : "";
            if (!payload.empty()) {
                std::printf("%s\n", payload.c_str());
            }
            return 0;
        }
        log_line(reply->starts_with("error ") ? reply->substr(6) : *reply);
        return 1;
    }
    if ((fd >= 0) == !qemu.empty()) {
        die("give either --fd N or -- QEMU ARGS... (see --help)");
    }
    if (!qemu.empty()) {
        // Before any thread starts (the control socket's, contexts'): see forwarded_signals().
        const sigset_t signals = forwarded_signals();
        ::sigprocmask(SIG_BLOCK, &signals, nullptr);
    }
    gf::vmm::ProxyDeviceConfig config;
    if (!parse_size(bar1_text, config.bar1_size)) {
        die("--bar1-size: not a size: " + bar1_text);
    }
    for (const std::string& text : fault_texts) {
        auto spec = gf::vmm::parse_fault_spec(text);
        if (!spec) {
            die(spec.error());
        }
        config.faults.push_back(std::move(*spec));
    }
    if (trace || !trace_json.empty()) {
        std::unique_ptr<FILE, int (*)(FILE*)> json(nullptr, &std::fclose);
        if (!trace_json.empty()) {
            auto opened = gf::vmm::Tracer::open_json(trace_json);
            if (!opened) {
                die("--trace-json " + trace_json + ": " + std::strerror(opened.error().value()));
            }
            json = std::move(*opened);
        }
        std::function<void(std::string_view)> lines;
        if (trace) {
            lines = [](std::string_view line) { log_line(std::string(line)); };
        }
        config.tracer = std::make_shared<gf::vmm::Tracer>(std::move(lines), std::move(json));
    }
    for (const auto& spec : config.faults) {
        log_line("fault armed: " + spec.text);
    }
    auto device = gf::vmm::ProxyDevice::create(std::move(config));
    if (!device) {
        die("cannot create the device: " + std::string(std::strerror(device.error().value())) +
            " (BAR1 must be a power of two from 4K to 2G)");
    }
    std::unique_ptr<gf::vmm::ControlSocket> control;
    if (!control_path.empty()) {
        auto listening = gf::vmm::ControlSocket::listen(**device, control_path);
        if (!listening) {
            die("--control " + control_path + ": " + std::strerror(listening.error().value()) +
                (listening.error().value() == EEXIST ? " (something that is not a socket is there)"
                                                     : ""));
        }
        control = std::move(*listening);
    }
    if (!qemu.empty()) {
        run_qemu(std::move(*device), std::move(control), std::move(qemu), id);
    }
    if (!is_socket(fd)) {
        die("--fd " + std::to_string(fd) + " is not a socket");
    }
    const int served = serve(**device, gf::UniqueFd(fd));
    control.reset();
    return served;
}
