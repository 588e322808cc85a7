// One client's PING latency through a real goldfish-asd node while other clients work
// (issue 21, item 4: no client stalls another). One process times a fixed number of PINGs on
// its own open file (a type-6 context, CheckIfSharedSlotsSupported: the cheapest ping that
// reaches the device), one at a time, in three runs:
//
//   idle       nothing else runs;
//   lingering  another client allocated N blocks (default 20,000), mapped each on its own,
//              closed its file and keeps the mappings: the node keeps the file (it lingers)
//              and checks it again and again until the last mapping goes;
//   asg        another client opens the node, creates an ASG (type 0) context and closes the
//              file, in a loop (each close ends the context and stops its consumer thread).
//
// Each run prints the median, the 99.9th percentile and the maximum, and how many PINGs took
// over 1 ms and over 5 ms. A fixed count, not a time: the figures mean the same on a slow
// machine, only the wall time differs.
// Usage: ping_latency_bench [--pings N] [--blocks N] [--daemon PATH] [-- daemon arguments...]
// Needs root. The daemon and the clients die with it; its mount is detached on the way out.
#include <fcntl.h>
#include <linux/goldfish_address_space.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_support.h"
#include "client/asg_stream.h"
#include "node/status.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kSharedSlots = 6;  // context type of the timed file

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

// Polls the status file until `pred` holds, for at most `limit`.
template <class Pred>
bool wait_status(const std::string& mount_dir, std::chrono::seconds limit, Pred pred) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (auto s = read_status(mount_dir); s && pred(*s)) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

bool ping(int fd, uint64_t metadata) {
    goldfish_address_space_ping p{};
    p.metadata = metadata;
    p.version = sizeof p;
    return ::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &p) == 0 && p.metadata == 0;
}

struct Figures {
    double median_us = 0, p999_us = 0, max_us = 0;
    uint64_t over_1ms = 0, over_5ms = 0;
    double seconds = 0;
};

// `pings` PINGs on a fresh file with a type-6 context, each timed alone.
std::optional<Figures> time_pings(const std::string& node, uint64_t pings) {
    const int fd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        std::printf("open %s: %s\n", node.c_str(), std::strerror(errno));
        return std::nullopt;
    }
    // The create ping, then the query CheckIfSharedSlotsSupported (metadata 3) over and over.
    if (!ping(fd, kSharedSlots)) {
        std::printf("create ping: %s\n", std::strerror(errno));
        ::close(fd);
        return std::nullopt;
    }
    std::vector<double> us;
    us.reserve(pings);
    const auto start = Clock::now();
    for (uint64_t i = 0; i < pings; ++i) {
        const auto begin = Clock::now();
        if (!ping(fd, 3)) {
            std::printf("PING %llu: %s\n", static_cast<unsigned long long>(i),
                        std::strerror(errno));
            ::close(fd);
            return std::nullopt;
        }
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
    }
    Figures f;
    f.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ::close(fd);
    if (us.empty()) {
        return f;
    }
    f.over_1ms = static_cast<uint64_t>(std::ranges::count_if(us, [](double v) { return v > 1e3; }));
    f.over_5ms = static_cast<uint64_t>(std::ranges::count_if(us, [](double v) { return v > 5e3; }));
    std::ranges::sort(us);
    f.median_us = us[us.size() / 2];
    f.p999_us = us[std::min(us.size() - 1, us.size() * 999 / 1000)];
    f.max_us = us.back();
    return f;
}

void print_row(const char* label, const Figures& f) {
    std::printf("| %-44s | %9.1f | %10.1f | %10.1f | %7llu | %7llu | %6.1f |\n", label, f.median_us,
                f.p999_us, f.max_us, static_cast<unsigned long long>(f.over_1ms),
                static_cast<unsigned long long>(f.over_5ms), f.seconds);
}

// A forked client with two pipes: it says `ready` once (a byte), and runs until EOF on `go`.
// Killed and reaped at destruction if still there.
class Worker {
  public:
    // Forks a child running body(go, ready); nullopt (with a message) if that fails.
    static std::optional<Worker> start(const std::function<void(int go, int ready)>& body) {
        int go[2], ready[2];
        if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(ready, O_CLOEXEC) != 0) {
            std::perror("pipe");
            return std::nullopt;
        }
        const pid_t pid = gf::bench::fork_child();
        if (pid == 0) {
            ::close(go[1]);
            ::close(ready[0]);
            body(go[0], ready[1]);
            ::_exit(0);
        }
        ::close(go[0]);
        ::close(ready[1]);
        if (pid < 0) {
            std::perror("fork");
            ::close(go[1]);
            ::close(ready[0]);
            return std::nullopt;
        }
        return std::optional<Worker>(std::in_place, pid, go[1], ready[0]);
    }
    Worker(pid_t pid, int go, int ready) : pid_(pid), go_(go), ready_(ready) {}
    Worker(Worker&& other) noexcept
        : pid_(std::exchange(other.pid_, -1)),
          go_(std::exchange(other.go_, -1)),
          ready_(std::exchange(other.ready_, -1)) {}
    Worker& operator=(Worker&&) = delete;
    ~Worker() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            (void)finish();
        }
    }

    // Whether it said ready within `limit`.
    bool ready(std::chrono::seconds limit) const {
        pollfd p{ready_, POLLIN, 0};
        char byte = 0;
        return ::poll(&p, 1, static_cast<int>(limit.count() * 1000)) == 1 &&
               ::read(ready_, &byte, 1) == 1;
    }
    // Tells it to end (EOF on `go`) and waits for it; true if it exited 0.
    bool finish() {
        ::close(go_);
        ::close(ready_);
        go_ = ready_ = -1;
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        gf::bench::unregister_child(pid_);
        pid_ = -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }

  private:
    pid_t pid_;
    int go_;
    int ready_;
};

// The lingering client: allocates and maps `blocks` blocks one by one, closes the file,
// writes one byte to `ready` and keeps its mappings until EOF on `go`.
[[noreturn]] void lingering_main(const std::string& node, uint64_t blocks, int go, int ready) {
    const int fd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        std::fprintf(stderr, "lingering client: open: %s\n", std::strerror(errno));
        ::_exit(1);
    }
    for (uint64_t i = 0; i < blocks; ++i) {
        goldfish_address_space_allocate_block b{};
        b.size = kPage;
        if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &b) != 0) {
            std::fprintf(stderr, "lingering client: ALLOCATE_BLOCK %llu: %s\n",
                         static_cast<unsigned long long>(i), std::strerror(errno));
            ::_exit(1);
        }
        void* p = ::mmap(nullptr, b.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                         static_cast<off_t>(b.offset));
        if (p == MAP_FAILED) {
            std::fprintf(stderr, "lingering client: mmap %llu: %s\n",
                         static_cast<unsigned long long>(i), std::strerror(errno));
            ::_exit(1);
        }
        static_cast<volatile char*>(p)[0] = 1;
    }
    ::close(fd);
    const char byte = 'r';
    (void)!::write(ready, &byte, 1);
    char in = 0;
    while (::read(go, &in, 1) == 1) {
    }
    ::_exit(0);
}

// The ASG client: opens an ASG stream and closes it, until EOF on `go`; writes one byte to
// `ready` after its first cycle.
[[noreturn]] void asg_main(const std::string& node, int go, int ready) {
    ::fcntl(go, F_SETFL, O_NONBLOCK);
    bool told = false;
    for (;;) {
        {
            auto stream = gf::client::AsgStream::open(node);
            if (!stream) {
                std::fprintf(stderr, "ASG client: open: %s\n",
                             std::strerror(stream.error().value()));
                ::_exit(1);
            }
        }
        if (!told) {
            const char byte = 'r';
            (void)!::write(ready, &byte, 1);
            told = true;
        }
        char in = 0;
        if (::read(go, &in, 1) == 0) {
            ::_exit(0);  // EOF: the bench is done with us
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t pings = 100000, blocks = 20000;
    std::string daemon_path = GF_DAEMON_PATH;
    std::vector<std::string> daemon_args;
    if (!gf::bench::parse_args(argc, argv, {{"--pings", &pings}, {"--blocks", &blocks}},
                               daemon_path, daemon_args,
                               "[--pings N] [--blocks N] [--daemon PATH] [-- daemon arguments]")) {
        return 2;
    }
    if (pings == 0) {
        std::fprintf(stderr, "--pings must be > 0\n");
        return 2;
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "ping_latency_bench: needs root (goldfish-asd mounts FUSE)\n");
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
    std::printf("%llu PINGs per run, each timed alone; lingering client: %llu mapped blocks\n\n",
                static_cast<unsigned long long>(pings), static_cast<unsigned long long>(blocks));
    std::printf("| %-44s | %9s | %10s | %10s | %7s | %7s | %6s |\n", "while", "median us",
                "p99.9 us", "max us", ">1 ms", ">5 ms", "s");
    std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(46, '-').c_str(),
                std::string(11, '-').c_str(), std::string(12, '-').c_str(),
                std::string(12, '-').c_str(), std::string(9, '-').c_str(),
                std::string(9, '-').c_str(), std::string(8, '-').c_str());
    int failures = 0;

    // (a) Nothing else.
    if (auto f = time_pings(node, pings)) {
        print_row("nothing else", *f);
    } else {
        ++failures;
    }

    // (b) A client lingering with `blocks` mapped blocks.
    {
        auto worker =
            Worker::start([&](int go, int ready) { lingering_main(node, blocks, go, ready); });
        if (!worker) {
            return 1;
        }
        const std::string mount_dir = daemon->mount_dir();
        if (!worker->ready(std::chrono::seconds(600)) ||
            !wait_status(mount_dir, std::chrono::seconds(60),
                         [](const gf::node::Status& s) { return s.lingering_files == 1; })) {
            std::printf("FAIL: the lingering client did not get its file lingering\n");
            ++failures;
        } else {
            char label[64];
            std::snprintf(label, sizeof label, "another lingers with %llu mapped blocks",
                          static_cast<unsigned long long>(blocks));
            if (auto f = time_pings(node, pings)) {
                print_row(label, *f);
            } else {
                ++failures;
            }
        }
        if (!worker->finish()) {
            ++failures;
        }
        if (!wait_status(mount_dir, std::chrono::seconds(120), [](const gf::node::Status& s) {
                return s.lingering_files == 0 && s.open_files == 0;
            })) {
            std::printf("FAIL: the lingering file was not released once its mappings went\n");
            ++failures;
        }
    }

    // (c) A client opening and closing ASG contexts in a loop.
    {
        auto worker = Worker::start([&](int go, int ready) { asg_main(node, go, ready); });
        if (!worker) {
            return 1;
        }
        if (!worker->ready(std::chrono::seconds(60))) {
            std::printf("FAIL: the ASG client did not complete a cycle\n");
            ++failures;
        } else if (auto f = time_pings(node, pings)) {
            print_row("another opens and closes ASG contexts", *f);
        } else {
            ++failures;
        }
        if (!worker->finish()) {
            ++failures;
        }
    }

    const int rc = daemon->stop(std::chrono::seconds(60));
    if (rc != 0) {
        ++failures;
        std::printf("FAIL: goldfish-asd exited with %d\n", rc);
    }
    std::printf("\n%s\n", failures == 0 ? "OK" : "FAILED");
    return failures == 0 ? 0 : 1;
}
