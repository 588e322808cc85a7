// The daemon's memory with many open files and many mapped blocks: goldfish-asd serves a
// node of its own; forked clients each open the node once, allocate their share of the
// blocks, map each block on its own and write one byte per page of it. Figures are taken
// with the daemon idle, with the files open, with every block mapped, and after the clients
// are gone:
//
//   daemon   /proc/<pid>/status VmRSS, RssAnon, RssShmem, VmPTE, VmSize; its mappings
//            (/proc/<pid>/maps lines) and its memory files (fds onto memfds, their
//            allocated bytes by stat)
//   clients  the sum of the same over the client processes
//   system   /proc/meminfo Shmem, Slab (SUnreclaim) and /proc/slabinfo vm_area_struct
//            deltas against the idle daemon (system wide: other activity shows up too)
//
// A failing client says which call failed, at which of its blocks, with which errno.
// Usage: node_memory_bench [--files N] [--blocks N] [--block-size BYTES] [--daemon PATH]
//                          [-- daemon arguments...]
// Needs root. The daemon and the clients die with it; its mount is detached on the way out.
#include <dirent.h>
#include <fcntl.h>
#include <linux/goldfish_address_space.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "node/status.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPage = 4096;

// ------------------------------------ figures ------------------------------------

// Fields of /proc/<pid>/status, in kB.
std::map<std::string, uint64_t> proc_status(pid_t pid) {
    std::map<std::string, uint64_t> out;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        const size_t colon = line.find(':');
        if (colon == std::string::npos || line.find("kB") == std::string::npos) {
            continue;
        }
        out[line.substr(0, colon)] = std::strtoull(line.c_str() + colon + 1, nullptr, 10);
    }
    return out;
}

uint64_t count_lines(const std::string& path) {
    std::ifstream in(path);
    uint64_t n = 0;
    std::string line;
    while (std::getline(in, line)) {
        ++n;
    }
    return n;
}

// The daemon's fds onto memfds, and the bytes those files hold (st_blocks).
struct MemoryFiles {
    uint64_t files = 0;
    uint64_t bytes = 0;
    uint64_t fds = 0;  // every fd
};

MemoryFiles memory_files(pid_t pid) {
    MemoryFiles m;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return m;
    }
    std::map<std::pair<dev_t, ino_t>, uint64_t> seen;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        ++m.fds;
        const std::string path = dir + "/" + e->d_name;
        char target[256] = {};
        if (::readlink(path.c_str(), target, sizeof target - 1) <= 0 ||
            std::strncmp(target, "/memfd:", 7) != 0) {
            continue;
        }
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) {
            seen[{st.st_dev, st.st_ino}] = static_cast<uint64_t>(st.st_blocks) * 512;
        }
    }
    ::closedir(d);
    for (const auto& [id, bytes] : seen) {
        ++m.files;
        m.bytes += bytes;
    }
    return m;
}

std::map<std::string, uint64_t> read_kb_file(const std::string& path) {
    std::map<std::string, uint64_t> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const size_t colon = line.find(':');
        if (colon != std::string::npos) {
            out[line.substr(0, colon)] = std::strtoull(line.c_str() + colon + 1, nullptr, 10);
        }
    }
    return out;
}

// Bytes of a slab cache's active objects, from /proc/slabinfo; 0 if absent.
uint64_t slab_bytes(const std::string& cache) {
    std::ifstream in("/proc/slabinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string name;
        uint64_t active = 0, total = 0, size = 0;
        if (fields >> name >> active >> total >> size && name == cache) {
            return active * size;
        }
    }
    return 0;
}

struct Figures {
    std::map<std::string, uint64_t> daemon;  // /proc status, kB
    uint64_t daemon_maps = 0;
    MemoryFiles files;
    std::map<std::string, uint64_t> clients;  // summed, kB
    uint64_t client_maps = 0;
    std::map<std::string, uint64_t> system;  // meminfo, kB
    uint64_t vma_slab = 0, maple_slab = 0;   // bytes
    std::optional<gf::node::Status> status;
};

std::optional<gf::node::Status> read_status(const std::string& mount_dir) {
    std::ifstream in(mount_dir + "/status");
    std::stringstream text;
    text << in.rdbuf();
    gf::Result<gf::node::Status> s = gf::node::status_from_json(text.str());
    if (!in || !s) {
        return std::nullopt;
    }
    return *s;
}

Figures take_figures(const gf::bench::Daemon& daemon, const std::vector<pid_t>& clients) {
    Figures f;
    f.daemon = proc_status(daemon.pid());
    f.daemon_maps = count_lines("/proc/" + std::to_string(daemon.pid()) + "/maps");
    f.files = memory_files(daemon.pid());
    for (pid_t pid : clients) {
        for (const auto& [key, value] : proc_status(pid)) {
            f.clients[key] += value;
        }
        f.client_maps += count_lines("/proc/" + std::to_string(pid) + "/maps");
    }
    f.system = read_kb_file("/proc/meminfo");
    f.vma_slab = slab_bytes("vm_area_struct");
    f.maple_slab = slab_bytes("maple_node");
    f.status = read_status(daemon.mount_dir());
    return f;
}

double mib(uint64_t kb) {
    return static_cast<double>(kb) / 1024.0;
}

double delta_mib_bytes(uint64_t now, uint64_t base) {
    return (static_cast<double>(now) - static_cast<double>(base)) / (1024.0 * 1024.0);
}

double delta_mib_kb(uint64_t now, uint64_t base) {
    return (static_cast<double>(now) - static_cast<double>(base)) / 1024.0;
}

void print_figures(const char* stage, const Figures& f, const Figures& base) {
    std::printf("\n== %s\n", stage);
    if (f.status) {
        std::printf(
            "node status: open_files %llu, blocks %llu (%.1f MiB granted), lingering %llu\n",
            static_cast<unsigned long long>(f.status->open_files),
            static_cast<unsigned long long>(f.status->blocks),
            static_cast<double>(f.status->block_bytes) / (1024.0 * 1024.0),
            static_cast<unsigned long long>(f.status->lingering_files));
    }
    auto d = [&f](const char* key) { return f.daemon.count(key) ? f.daemon.at(key) : 0; };
    std::printf(
        "daemon:  VmRSS %.1f MiB (RssAnon %.1f, RssFile %.1f, RssShmem %.1f), VmPTE %llu kB, "
        "VmSize %.1f GiB, %llu mappings, %llu fds, %llu memory files holding %.1f MiB\n",
        mib(d("VmRSS")), mib(d("RssAnon")), mib(d("RssFile")), mib(d("RssShmem")),
        static_cast<unsigned long long>(d("VmPTE")), mib(d("VmSize")) / 1024.0,
        static_cast<unsigned long long>(f.daemon_maps),
        static_cast<unsigned long long>(f.files.fds),
        static_cast<unsigned long long>(f.files.files),
        static_cast<double>(f.files.bytes) / (1024.0 * 1024.0));
    if (!f.clients.empty()) {
        auto c = [&f](const char* key) { return f.clients.count(key) ? f.clients.at(key) : 0; };
        std::printf("clients (sum): VmRSS %.1f MiB (RssShmem %.1f), VmPTE %llu kB, %llu mappings\n",
                    mib(c("VmRSS")), mib(c("RssShmem")),
                    static_cast<unsigned long long>(c("VmPTE")),
                    static_cast<unsigned long long>(f.client_maps));
    }
    auto s = [](const Figures& x, const char* key) {
        return x.system.count(key) ? x.system.at(key) : 0;
    };
    std::printf(
        "system, against the idle daemon: Shmem %+.1f MiB, SUnreclaim %+.1f MiB, "
        "PageTables %+.1f MiB, vm_area_struct %+.1f MiB, maple_node %+.1f MiB\n",
        delta_mib_kb(s(f, "Shmem"), s(base, "Shmem")),
        delta_mib_kb(s(f, "SUnreclaim"), s(base, "SUnreclaim")),
        delta_mib_kb(s(f, "PageTables"), s(base, "PageTables")),
        delta_mib_bytes(f.vma_slab, base.vma_slab), delta_mib_bytes(f.maple_slab, base.maple_slab));
}

// ------------------------------------ clients ------------------------------------

struct Report {
    int32_t client = -1;
    int32_t stage = -1;
    int32_t ok = 0;
    int32_t err = 0;       // errno of the failing call
    int64_t done = 0;      // blocks mapped
    int64_t at = -1;       // index of the failing block
    uint64_t granted = 0;  // size the device granted a block
    char what[40] = {};    // the failing call
};

void send(int fd, const Report& r) {
    (void)!::write(fd, &r, sizeof r);  // < PIPE_BUF: atomic among the clients
}

// One client: opens the node (stage 0), then on the go byte allocates, maps and touches its
// `quota` blocks (stage 1), then waits for EOF on `go` and exits (its blocks go with it).
[[noreturn]] void client_main(int index, const std::string& node, uint64_t quota,
                              uint64_t block_size, int go, int report) {
    Report r;
    r.client = index;
    r.stage = 0;
    const int fd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        r.err = errno;
        std::snprintf(r.what, sizeof r.what, "open");
        send(report, r);
        ::_exit(1);
    }
    r.ok = 1;
    send(report, r);
    char byte = 0;
    if (::read(go, &byte, 1) != 1) {
        ::_exit(0);
    }
    r = Report{};
    r.client = index;
    r.stage = 1;
    for (uint64_t i = 0; i < quota; ++i) {
        goldfish_address_space_allocate_block b{};
        b.size = block_size;
        if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &b) != 0) {
            r.err = errno;
            r.at = static_cast<int64_t>(i);
            std::snprintf(r.what, sizeof r.what, "ioctl(ALLOCATE_BLOCK)");
            break;
        }
        r.granted = b.size;
        void* p = ::mmap(nullptr, b.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                         static_cast<off_t>(b.offset));
        if (p == MAP_FAILED) {
            r.err = errno;
            r.at = static_cast<int64_t>(i);
            std::snprintf(r.what, sizeof r.what, "mmap");
            break;
        }
        for (uint64_t at = 0; at < block_size; at += kPage) {
            static_cast<volatile char*>(p)[at] = 1;
        }
        ++r.done;
    }
    r.ok = r.what[0] == '\0';
    send(report, r);
    while (::read(go, &byte, 1) == 1) {
    }
    ::_exit(0);
}

// The clients: killed and reaped at destruction if they are still there.
struct Clients {
    std::vector<pid_t> pids;
    ~Clients() {
        for (pid_t pid : pids) {
            ::kill(pid, SIGKILL);
        }
        reap();
    }
    // Waits for every client; true if all exited 0.
    bool reap() {
        bool all_ok = true;
        for (pid_t pid : pids) {
            int status = 0;
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            gf::bench::unregister_child(pid);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                all_ok = false;
                if (WIFSIGNALED(status)) {
                    std::printf("client pid %d killed by signal %d (%s)\n", pid, WTERMSIG(status),
                                strsignal(WTERMSIG(status)));
                }
            }
        }
        pids.clear();
        return all_ok;
    }
};

// Reads one report per client for `stage`, bounded; false on a short read (a client died).
bool collect(int fd, size_t count, std::vector<Report>& out, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (out.size() < count) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        Report r;
        if (::read(fd, &r, sizeof r) != sizeof r) {
            return false;
        }
        out.push_back(r);
    }
    return true;
}

bool wait_idle(const std::string& mount_dir, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        auto s = read_status(mount_dir);
        if (s && s->open_files == 0 && s->blocks == 0 && s->lingering_files == 0) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t files = 64, blocks = 100000, block_size = 4096;
    std::string daemon_path = GF_DAEMON_PATH;
    std::vector<std::string> daemon_args;
    if (!gf::bench::parse_args(
            argc, argv, {{"--files", &files}, {"--blocks", &blocks}, {"--block-size", &block_size}},
            daemon_path, daemon_args,
            "[--files N] [--blocks N] [--block-size BYTES] [--daemon PATH] "
            "[-- daemon arguments]")) {
        return 2;
    }
    if (files == 0 || block_size == 0 || block_size % kPage != 0) {
        std::fprintf(stderr, "--files must be > 0 and --block-size whole pages\n");
        return 2;
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "node_memory_bench: needs root (goldfish-asd mounts FUSE)\n");
        return 1;
    }
    gf::bench::install_cleanup_handlers();
    ::signal(SIGPIPE, SIG_IGN);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);

    gf::bench::TempDir tmp;
    const std::string node = tmp.path() + "/goldfish_address_space";
    std::string out;
    std::optional<gf::bench::Daemon> daemon =
        gf::bench::Daemon::start(daemon_path, node, tmp.path() + "/state", daemon_args, &out);
    if (!daemon) {
        std::printf("goldfish-asd did not come up:\n%s\n", out.c_str());
        return 1;
    }
    std::printf("%s", out.c_str());
    std::printf(
        "%llu files, %llu blocks of %llu bytes, one mapping per block, a byte written "
        "per page\n",
        static_cast<unsigned long long>(files), static_cast<unsigned long long>(blocks),
        static_cast<unsigned long long>(block_size));

    const Figures idle = take_figures(*daemon, {});
    print_figures("daemon idle", idle, idle);

    int go[2], report[2];
    if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(report, O_CLOEXEC) != 0) {
        std::perror("pipe");
        return 1;
    }
    Clients clients;
    for (uint64_t i = 0; i < files; ++i) {
        const uint64_t quota = blocks / files + (i < blocks % files ? 1 : 0);
        const pid_t pid = gf::bench::fork_child();
        if (pid == 0) {
            ::close(go[1]);
            ::close(report[0]);
            client_main(static_cast<int>(i), node, quota, block_size, go[0], report[1]);
        }
        if (pid < 0) {
            std::perror("fork");
            return 1;
        }
        clients.pids.push_back(pid);
    }
    ::close(go[0]);
    ::close(report[1]);

    int failures = 0;
    std::vector<Report> opened;
    if (!collect(report[0], files, opened, std::chrono::seconds(60))) {
        std::printf("FAIL: only %zu of %llu clients reported their open\n", opened.size(),
                    static_cast<unsigned long long>(files));
        return 1;
    }
    for (const Report& r : opened) {
        if (!r.ok) {
            std::printf("FAIL: client %d: %s: %s (errno %d)\n", r.client, r.what,
                        std::strerror(r.err), r.err);
            ++failures;
        }
    }
    if (failures > 0) {
        return 1;
    }
    print_figures("files open, no blocks", take_figures(*daemon, clients.pids), idle);

    const auto start = Clock::now();
    const std::string bytes(files, 'g');
    if (::write(go[1], bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        std::perror("write");
        return 1;
    }
    std::vector<Report> mapped;
    const bool all = collect(report[0], files, mapped, std::chrono::seconds(600));
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    uint64_t total = 0, granted = 0;
    for (const Report& r : mapped) {
        total += static_cast<uint64_t>(r.done);
        granted = std::max(granted, r.granted);
        if (!r.ok) {
            ++failures;
            std::printf(
                "FAIL: client %d (pid %d): %s failed at its block %lld (after %lld mapped): %s "
                "(errno %d)\n",
                r.client, clients.pids[static_cast<size_t>(r.client)], r.what,
                static_cast<long long>(r.at), static_cast<long long>(r.done), std::strerror(r.err),
                r.err);
        }
    }
    if (!all) {
        ++failures;
        std::printf("FAIL: only %zu of %llu clients reported (one died or hung)\n", mapped.size(),
                    static_cast<unsigned long long>(files));
    }
    std::printf(
        "\n%llu of %llu blocks allocated, mapped and touched in %.2f s (%.0f blocks/s); "
        "the device grants %llu bytes per block\n",
        static_cast<unsigned long long>(total), static_cast<unsigned long long>(blocks), seconds,
        static_cast<double>(total) / seconds, static_cast<unsigned long long>(granted));
    const Figures full = take_figures(*daemon, clients.pids);
    print_figures("every block mapped", full, idle);
    if (total > 0) {
        auto per_block = [total](uint64_t now_kb, uint64_t base_kb) {
            return (static_cast<double>(now_kb) - static_cast<double>(base_kb)) * 1024.0 /
                   static_cast<double>(total);
        };
        auto get = [](const std::map<std::string, uint64_t>& m, const char* k) {
            return m.count(k) ? m.at(k) : 0;
        };
        std::printf(
            "per block: daemon VmRSS %+.0f B, daemon VmPTE %+.1f B, daemon mappings %+.2f, "
            "Shmem %+.0f B, vm_area_struct %+.0f B\n",
            per_block(get(full.daemon, "VmRSS"), get(idle.daemon, "VmRSS")),
            per_block(get(full.daemon, "VmPTE"), get(idle.daemon, "VmPTE")),
            (static_cast<double>(full.daemon_maps) - static_cast<double>(idle.daemon_maps)) /
                static_cast<double>(total),
            per_block(get(full.system, "Shmem"), get(idle.system, "Shmem")),
            (static_cast<double>(full.vma_slab) - static_cast<double>(idle.vma_slab)) /
                static_cast<double>(total));
    }

    // The clients go (closing their files and mappings); everything must come back.
    ::close(go[1]);
    if (!clients.reap()) {
        ++failures;
    }
    const bool idle_again = wait_idle(daemon->mount_dir(), std::chrono::seconds(120));
    print_figures("clients gone", take_figures(*daemon, {}), idle);
    if (!idle_again) {
        ++failures;
        std::printf("FAIL: the daemon did not become idle after the clients exited\n");
    }
    const int rc = daemon->stop(std::chrono::seconds(60));
    if (rc != 0) {
        ++failures;
        std::printf("FAIL: goldfish-asd exited with %d\n", rc);
    }
    std::printf("\n%s\n", failures == 0 ? "OK" : "FAILED");
    return failures == 0 ? 0 : 1;
}
