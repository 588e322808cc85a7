#include "node/daemon_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "node/node_lock.h"

namespace gf::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `pid` until `deadline`; its wait status or nullopt.
std::optional<int> wait_until(pid_t pid, Clock::time_point deadline) {
    while (true) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return status;
        }
        if (r < 0 && errno != EINTR) {
            return std::nullopt;
        }
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

int exit_code(int wait_status) {
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

// Forks and execs `argv` with stdout+stderr on a pipe; returns pid and read end.
std::pair<pid_t, int> spawn(const std::vector<std::string>& argv, std::optional<uid_t> as_user) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return {-1, -1};
    }
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        if (as_user && (::setgid(*as_user) != 0 || ::setuid(*as_user) != 0)) {
            ::_exit(126);
        }
        std::vector<char*> args;
        for (const std::string& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    return {pid, fds[0]};
}

// Reads what is available on `fd` until `deadline`, or until `stop` says enough.
void read_until(int fd, std::string& out, Clock::time_point deadline,
                const std::function<bool(const std::string&)>& stop) {
    while (!stop(out)) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return;
        }
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return;
        }
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            return;
        }
        out.append(buf, static_cast<size_t>(n));
    }
}

}  // namespace

std::optional<Daemon> Daemon::start(const std::string& node, const std::string& state_dir,
                                    const std::vector<std::string>& extra, std::string* output) {
    std::vector<std::string> argv = {daemon_path(), "--node", node, "--state-dir", state_dir};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto [pid, fd] = spawn(argv, std::nullopt);
    if (pid < 0) {
        return std::nullopt;
    }
    std::string out;
    auto deadline = Clock::now() + std::chrono::seconds(20);
    // Notices (vm.max_map_count, mmap unavailable) may come first; the serving line ends it.
    read_until(fd, out, deadline, [](const std::string& s) {
        const size_t at = s.find("serving");
        return at != std::string::npos && s.find('\n', at) != std::string::npos;
    });
    if (output != nullptr) {
        *output = out;
    }
    if (out.find("serving") == std::string::npos) {
        ::close(fd);
        ::kill(pid, SIGKILL);
        wait_until(pid, Clock::now() + std::chrono::seconds(5));
        return std::nullopt;
    }
    // The pipe stays open (the daemon prints little: errors, sanitizer reports)
    // and is drained when the daemon stops.
    return Daemon(pid, fd, out);
}

Daemon::Daemon(pid_t pid, int fd, std::string output) : pid_(pid), fd_(fd), output_(output) {
    const size_t start = output.rfind('\n', output.find("serving"));
    const size_t from = start == std::string::npos ? 0 : start + 1;
    ready_line_ = output.substr(from, output.find('\n', from) - from);
}

Daemon::Daemon(Daemon&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      fd_(std::exchange(other.fd_, -1)),
      ready_line_(std::move(other.ready_line_)),
      output_(std::move(other.output_)) {}

Daemon& Daemon::operator=(Daemon&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) {
            stop(SIGTERM, std::chrono::seconds(5));
        }
        pid_ = std::exchange(other.pid_, -1);
        fd_ = std::exchange(other.fd_, -1);
        ready_line_ = std::move(other.ready_line_);
        output_ = std::move(other.output_);
    }
    return *this;
}

Daemon::~Daemon() {
    if (pid_ > 0) {
        stop(SIGTERM, std::chrono::seconds(5));
    }
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

int Daemon::stop(int sig, std::chrono::milliseconds limit, std::chrono::milliseconds* took) {
    if (pid_ <= 0) {
        return -1;
    }
    auto begin = Clock::now();
    ::kill(pid_, sig);
    std::optional<int> status = wait_until(pid_, begin + limit);
    if (took != nullptr) {
        *took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begin);
    }
    if (!status) {
        ::kill(pid_, SIGKILL);
        wait_until(pid_, Clock::now() + std::chrono::seconds(5));
    }
    pid_ = -1;
    if (fd_ >= 0) {
        read_until(fd_, output_, Clock::now() + std::chrono::seconds(2),
                   [](const std::string&) { return false; });
        ::close(std::exchange(fd_, -1));
    }
    return status ? exit_code(*status) : -1;
}

RunResult run_program(const std::vector<std::string>& argv, std::chrono::seconds limit,
                      std::optional<uid_t> as_user) {
    RunResult result;
    // A program run as another user must be reachable by that user, and the checkout (with
    // the build in it) may sit in a directory only root can enter (root's home, a mktemp
    // -d): run a copy from a temporary directory anyone may read.
    std::optional<TempDir> staging;
    std::vector<std::string> args = argv;
    if (as_user && !args.empty() && args[0].rfind("/usr/", 0) != 0 &&
        args[0].rfind("/bin/", 0) != 0) {
        staging.emplace();
        const std::string copy =
            staging->path() + "/" + std::filesystem::path(args[0]).filename().string();
        std::error_code ec;
        std::filesystem::copy_file(args[0], copy, ec);
        if (ec || ::chmod(staging->path().c_str(), 0755) != 0 || ::chmod(copy.c_str(), 0755) != 0) {
            return result;
        }
        args[0] = copy;
    }
    auto [pid, fd] = spawn(args, as_user);
    if (pid < 0) {
        return result;
    }
    auto deadline = Clock::now() + limit;
    read_until(fd, result.output, deadline, [](const std::string&) { return false; });
    ::close(fd);
    std::optional<int> status = wait_until(pid, deadline + std::chrono::seconds(1));
    if (!status) {
        ::kill(pid, SIGKILL);
        wait_until(pid, Clock::now() + std::chrono::seconds(5));
        return result;
    }
    result.status = exit_code(*status);
    return result;
}

TempDir::TempDir() {
    char templ[] = "/tmp/gf-node-test-XXXXXX";
    const char* made = ::mkdtemp(templ);
    path_ = made != nullptr ? made : "";
}

TempDir::~TempDir() {
    if (path_.empty()) {
        return;
    }
    // Whatever a failed test left mounted inside goes first, then the files.
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

std::optional<node::Status> read_status(const std::string& state_dir, const std::string& node) {
    std::ifstream in(node::NodeLock::mount_dir_for(state_dir, node) + "/status");
    if (!in) {
        return std::nullopt;
    }
    std::stringstream text;
    text << in.rdbuf();
    Result<node::Status> s = node::status_from_json(text.str());
    if (!s) {
        return std::nullopt;
    }
    return *s;
}

std::optional<node::Status> wait_for_status(const std::string& state_dir, const std::string& node,
                                            const std::function<bool(const node::Status&)>& done,
                                            std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    std::optional<node::Status> last;
    while (true) {
        last = read_status(state_dir, node);
        if ((last && done(*last)) || Clock::now() >= deadline) {
            return last;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

bool is_idle(const node::Status& s) {
    uint64_t contexts = 0;
    for (const auto& [type, count] : s.contexts) {
        contexts += count;
    }
    return s.open_files == 0 && s.handles == 0 && s.blocks == 0 && s.block_bytes == 0 &&
           s.claims == 0 && contexts == 0 && s.lingering_files == 0;
}

std::string daemon_path() {
    return GF_DAEMON_PATH;
}
std::string tool_path() {
    return GF_TOOL_PATH;
}
std::string conformance_path() {
    return GF_CONFORMANCE_PATH;
}

}  // namespace gf::testing
