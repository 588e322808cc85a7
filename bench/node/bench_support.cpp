#include "bench_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "node/node_lock.h"
#include "node/status.h"

namespace gf::bench {
namespace {

using Clock = std::chrono::steady_clock;

// What the signal handler may touch: fixed arrays, slots claimed with atomics.
constexpr size_t kSlots = 32;
constexpr size_t kPathMax = 512;
char g_mounts[kSlots][kPathMax];
std::atomic<bool> g_mount_used[kSlots];
std::atomic<pid_t> g_children[1024];
char g_temp_dirs[kSlots][kPathMax];
std::atomic<bool> g_temp_dir_used[kSlots];

void on_fatal_signal(int sig) {
    for (auto& child : g_children) {
        const pid_t pid = child.load();
        if (pid > 0) {
            ::kill(pid, SIGKILL);
        }
    }
    for (size_t i = 0; i < kSlots; ++i) {
        if (g_mount_used[i].load()) {
            ::umount2(g_mounts[i], MNT_DETACH);
        }
    }
    // fork, execve and waitpid are async-signal-safe: rm does the recursive removal.
    for (size_t i = 0; i < kSlots; ++i) {
        if (g_temp_dir_used[i].load()) {
            const pid_t pid = ::fork();
            if (pid == 0) {
                char rm[] = "/bin/rm", flags[] = "-rf";
                char* const args[] = {rm, flags, g_temp_dirs[i], nullptr};
                char* const env[] = {nullptr};
                ::execve(rm, args, env);
                ::_exit(127);
            }
            if (pid > 0) {
                int status = 0;
                ::waitpid(pid, &status, 0);
            }
        }
    }
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

std::optional<int> wait_until(pid_t pid, Clock::time_point deadline) {
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return status;
        }
        if ((r < 0 && errno != EINTR) || Clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

}  // namespace

void install_cleanup_handlers() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV, SIGBUS}) {
        struct sigaction sa {};
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        ::sigaction(sig, &sa, nullptr);
    }
}

void register_mount(const std::string& dir) {
    if (dir.size() >= kPathMax) {
        return;
    }
    // Registration happens on one thread; the handler reads a path only once its flag is set.
    for (size_t i = 0; i < kSlots; ++i) {
        if (!g_mount_used[i].load()) {
            std::memcpy(g_mounts[i], dir.c_str(), dir.size() + 1);
            g_mount_used[i].store(true);
            return;
        }
    }
}

void unregister_mount(const std::string& dir) {
    for (size_t i = 0; i < kSlots; ++i) {
        if (g_mount_used[i].load() && dir == g_mounts[i]) {
            g_mount_used[i].store(false);
        }
    }
}

void register_child(pid_t pid) {
    for (auto& child : g_children) {
        pid_t expected = 0;
        if (child.compare_exchange_strong(expected, pid)) {
            return;
        }
    }
}

void unregister_child(pid_t pid) {
    for (auto& child : g_children) {
        pid_t expected = pid;
        child.compare_exchange_strong(expected, 0);
    }
}

pid_t fork_child() {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(1);  // the parent died before the death signal was armed
        }
        // A child's own fatal signals must not tear down the parent's mounts.
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV, SIGBUS}) {
            ::signal(sig, SIG_DFL);
        }
        return 0;
    }
    if (pid > 0) {
        register_child(pid);
    }
    return pid;
}

TempDir::TempDir() {
    char templ[] = "/tmp/gf-node-bench-XXXXXX";
    const char* made = ::mkdtemp(templ);
    path_ = made != nullptr ? made : "";
    for (size_t i = 0; i < kSlots && !path_.empty() && path_.size() < kPathMax; ++i) {
        if (!g_temp_dir_used[i].load()) {
            std::memcpy(g_temp_dirs[i], path_.c_str(), path_.size() + 1);
            g_temp_dir_used[i].store(true);
            break;
        }
    }
}

TempDir::~TempDir() {
    if (path_.empty()) {
        return;
    }
    for (size_t i = 0; i < kSlots; ++i) {
        if (g_temp_dir_used[i].load() && path_ == g_temp_dirs[i]) {
            g_temp_dir_used[i].store(false);
        }
    }
    std::error_code ec;
    for (int round = 0; round < 4; ++round) {
        for (auto it = std::filesystem::recursive_directory_iterator(
                 path_, std::filesystem::directory_options::skip_permission_denied, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
            if (node::is_mount_point(it->path().string())) {
                ::umount2(it->path().c_str(), MNT_DETACH);
            }
        }
    }
    std::filesystem::remove_all(path_, ec);
}

std::optional<Daemon> Daemon::start(const std::string& daemon, const std::string& node,
                                    const std::string& state_dir,
                                    const std::vector<std::string>& extra, std::string* out) {
    std::vector<std::string> argv = {daemon, "--node", node, "--state-dir", state_dir};
    argv.insert(argv.end(), extra.begin(), extra.end());
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return std::nullopt;
    }
    const std::string mount_dir = node::NodeLock::mount_dir_for(state_dir, node);
    register_mount(mount_dir);  // before the daemon can have mounted it
    const pid_t pid = fork_child();
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        std::vector<char*> args;
        for (const std::string& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    if (pid < 0) {
        ::close(fds[0]);
        unregister_mount(mount_dir);
        return std::nullopt;
    }
    Daemon d(pid, fds[0], node, mount_dir);
    std::string text;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    for (;;) {
        const size_t at = text.find("serving");
        if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
            break;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{fds[0], POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            break;
        }
        char buf[4096];
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<size_t>(n));
    }
    if (out != nullptr) {
        *out = text;
    }
    if (text.find("serving") == std::string::npos) {
        return std::nullopt;  // d's destructor kills it
    }
    return d;
}

Daemon::Daemon(Daemon&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      fd_(std::exchange(other.fd_, -1)),
      node_(std::move(other.node_)),
      mount_dir_(std::move(other.mount_dir_)) {}

Daemon::~Daemon() {
    stop(std::chrono::seconds(10));
}

int Daemon::stop(std::chrono::milliseconds limit) {
    if (pid_ <= 0) {
        return -1;
    }
    ::kill(pid_, SIGTERM);
    std::optional<int> status = wait_until(pid_, Clock::now() + limit);
    if (!status) {
        ::kill(pid_, SIGKILL);
        wait_until(pid_, Clock::now() + std::chrono::seconds(5));
    }
    unregister_child(pid_);
    pid_ = -1;
    if (node::is_mount_point(mount_dir_)) {
        ::umount2(mount_dir_.c_str(), MNT_DETACH);  // a killed daemon leaves its mount
    }
    unregister_mount(mount_dir_);
    if (fd_ >= 0) {
        ::close(std::exchange(fd_, -1));
    }
    return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

std::optional<uint64_t> daemon_open_files(const std::string& mount_dir) {
    std::ifstream in(mount_dir + "/" + "status");
    if (!in) {
        return std::nullopt;
    }
    std::stringstream text;
    text << in.rdbuf();
    Result<node::Status> s = node::status_from_json(text.str());
    if (!s) {
        return std::nullopt;
    }
    return s->open_files;
}

bool parse_args(int argc, char** argv, const std::map<std::string, uint64_t*>& numbers,
                std::string& daemon_path, std::vector<std::string>& daemon_args,
                const char* usage) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--") {
            daemon_args.assign(argv + i + 1, argv + argc);
            return true;
        }
        auto number = numbers.find(arg);
        if ((number == numbers.end() && arg != "--daemon") || i + 1 >= argc) {
            std::fprintf(stderr, "usage: %s %s\n", argv[0], usage);
            return false;
        }
        const std::string value = argv[++i];
        if (number == numbers.end()) {
            daemon_path = value;
            continue;
        }
        char* end = nullptr;
        errno = 0;
        *number->second = std::strtoull(value.c_str(), &end, 10);
        if (value.empty() || value[0] == '-' || *end != '\0' || errno != 0) {
            std::fprintf(stderr, "%s: not a number: %s\n", arg.c_str(), value.c_str());
            return false;
        }
    }
    return true;
}

}  // namespace gf::bench
