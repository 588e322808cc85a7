// What the node benchmarks share: a goldfish-asd child process, a temporary directory, and
// cleanup that also runs when the benchmark dies of a signal (mounts detached, children
// killed), so a failed run leaves nothing mounted or running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gf::bench {

// Installs handlers for SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV and SIGBUS that kill the
// registered processes, detach the registered mounts, remove the live TempDirs and then die
// of the signal.
void install_cleanup_handlers();
// Registers a mount point to detach on a fatal signal (only async-signal-safe work there).
void register_mount(const std::string& dir);
void unregister_mount(const std::string& dir);
// Registers a child process to SIGKILL on a fatal signal.
void register_child(pid_t pid);
void unregister_child(pid_t pid);

// Forks a child that dies with this process (PR_SET_PDEATHSIG) and is killed by the
// cleanup handlers. In the child it returns 0, as fork() does.
pid_t fork_child();

// A temporary directory; at destruction whatever is mounted inside is detached first.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// A running goldfish-asd; stopped (SIGTERM, then SIGKILL) at destruction.
class Daemon {
  public:
    // Starts `daemon` serving `node` with state in `state_dir`, plus `extra` arguments, and
    // waits (bounded) for its "serving" line. nullopt on failure, with its output in `out`.
    static std::optional<Daemon> start(const std::string& daemon, const std::string& node,
                                       const std::string& state_dir,
                                       const std::vector<std::string>& extra, std::string* out);
    Daemon(Daemon&& other) noexcept;
    Daemon& operator=(Daemon&&) = delete;
    ~Daemon();

    pid_t pid() const { return pid_; }
    const std::string& node() const { return node_; }
    // The daemon's FUSE mount directory (holding status and bar1).
    const std::string& mount_dir() const { return mount_dir_; }
    // Stops it: SIGTERM, and SIGKILL after `limit`. Its exit status, or -1.
    int stop(std::chrono::milliseconds limit);

  private:
    Daemon(pid_t pid, int fd, std::string node, std::string mount_dir)
        : pid_(pid), fd_(fd), node_(std::move(node)), mount_dir_(std::move(mount_dir)) {}
    pid_t pid_ = -1;
    int fd_ = -1;  // read end of the daemon's stdout and stderr
    std::string node_;
    std::string mount_dir_;
};

// The node benchmarks' command line: `--NAME N` for each entry of `numbers` (decimal, no
// sign), `--daemon PATH`, and `--` followed by the daemon's own arguments. False, after
// printing "usage: PROGRAM " and `usage`, for anything else or a missing value, and after
// naming the option, for a value that is not a number.
bool parse_args(int argc, char** argv, const std::map<std::string, uint64_t*>& numbers,
                std::string& daemon_path, std::vector<std::string>& daemon_args, const char* usage);

// Reads the open_files figure from a daemon's status file; nullopt if unreadable.
std::optional<uint64_t> daemon_open_files(const std::string& mount_dir);

}  // namespace gf::bench
