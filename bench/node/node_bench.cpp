// The node against its baselines, side by side in one process:
//
//   Memcpy*      memcpy of 64 MiB into a mapped, already touched block of the node, against
//                anonymous memory (and, for reference, a plain memfd mapping).
//   FirstTouch*  ALLOCATE_BLOCK + mmap + one write per page of a fresh 64 MiB block, against
//                memfd_create + ftruncate + mmap + the same writes; teardown (munmap +
//                DEALLOCATE_BLOCK, or munmap + close) timed or not, by argument.
//   OpenClose*   open + close of: an empty FUSE file system's fixed inode (the old node's
//                shape: a cached entry, OPEN/RELEASE), the same with a fresh inode per open
//                (the lookup part alone), the node without and with memory files, in
//                process and as goldfish-asd (through its node symlink).
//   *Ping        an ioctl through the node (mmap on) against the empty file system's.
//   Paired*      the same comparisons with baseline and node in alternation within each
//                run, reporting the median ratio node/base (robust to a drifting load).
//
// Everything FUSE here is served in this process by the node's worker pool (8 threads), like
// goldfish-asd, except the OpenCloseDaemon* ones (a goldfish-asd child) and the libfuse-loop
// reference. Needs root (it mounts); cleans up on failure and on fatal signals.
#define FUSE_USE_VERSION 35
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/goldfish_address_space.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "bench_support.h"
#include "driver/driver.h"
#include "node/fuse_node.h"
#include "node/fuse_workers.h"
#include "pci/emulated/machine.h"

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kBig = 64ull << 20;  // the memcpy and first-touch size
constexpr unsigned kWorkers = 8;      // goldfish-asd's default --threads

// --- The empty file system: one file whose every ioctl succeeds with zeros. ---
//
// Fixed: the file is one inode whose entry the kernel caches (the old node: an open is
// OPEN + RELEASE). PerOpen: every lookup gives a fresh, uncached inode, as the node does
// now, but with no driver file and no memory behind it (an open is LOOKUP + OPEN + RELEASE +
// FORGET).
enum class Inodes { Fixed, PerOpen };

constexpr fuse_ino_t kFileIno = 2;
constexpr fuse_ino_t kFirstPerOpenIno = 16;

struct EmptyState {
    Inodes inodes = Inodes::Fixed;
    std::atomic<fuse_ino_t> next_ino{kFirstPerOpenIno};
    std::atomic<int64_t> open_files{0};
};

EmptyState& empty_state(fuse_req_t req) {
    return *static_cast<EmptyState*>(fuse_req_userdata(req));
}

struct stat file_attr(fuse_ino_t ino) {
    struct stat st {};
    st.st_ino = ino;
    st.st_mode = ino == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0666);
    st.st_nlink = 1;
    return st;
}

void empty_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (parent != FUSE_ROOT_ID || std::strcmp(name, "file") != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    EmptyState& s = empty_state(req);
    fuse_entry_param e{};
    if (s.inodes == Inodes::Fixed) {
        e.ino = kFileIno;
        e.attr_timeout = e.entry_timeout = 60;
    } else {
        e.ino = s.next_ino++;  // timeouts 0: never cached, as the node's
    }
    e.attr = file_attr(e.ino);
    fuse_reply_entry(req, &e);
}

void empty_forget(fuse_req_t req, fuse_ino_t, uint64_t) {
    fuse_reply_none(req);
}

void empty_forget_multi(fuse_req_t req, size_t, fuse_forget_data*) {
    fuse_reply_none(req);
}

void empty_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    struct stat st = file_attr(ino);
    fuse_reply_attr(req, &st, empty_state(req).inodes == Inodes::Fixed ? 60 : 0);
}

void empty_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    fi->direct_io = 1;
    fi->nonseekable = 1;
    ++empty_state(req).open_files;
    if (fuse_reply_open(req, fi) != 0) {
        --empty_state(req).open_files;
    }
}

void empty_release(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
    --empty_state(req).open_files;
    fuse_reply_err(req, 0);
}

void empty_ioctl(fuse_req_t req, fuse_ino_t, unsigned int, void*, fuse_file_info*, unsigned,
                 const void*, size_t, size_t out_bufsz) {
    static const char zeros[64] = {};
    fuse_reply_ioctl(req, 0, zeros, std::min(out_bufsz, sizeof zeros));
}

// Served by the node's own worker pool (the fair baseline) or by libfuse's
// fuse_session_loop_mt (for reference).
class EmptyFs {
  public:
    EmptyFs(const std::string& dir, Inodes inodes, bool libfuse_loop) : dir_(dir) {
        state_.inodes = inodes;
        std::filesystem::create_directories(dir);
        static const fuse_lowlevel_ops ops = [] {
            fuse_lowlevel_ops o{};
            o.lookup = empty_lookup;
            o.forget = empty_forget;
            o.forget_multi = empty_forget_multi;
            o.getattr = empty_getattr;
            o.open = empty_open;
            o.release = empty_release;
            o.ioctl = empty_ioctl;
            return o;
        }();
        const char* argv[] = {"empty-fs"};
        fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
        session_ = fuse_session_new(&args, &ops, sizeof ops, &state_);
        fuse_opt_free_args(&args);
        gf::bench::register_mount(dir);
        if (session_ == nullptr || fuse_session_mount(session_, dir.c_str()) != 0) {
            return;
        }
        mounted_ = true;
        if (!libfuse_loop) {
            workers_ = std::make_unique<gf::node::FuseWorkers>(session_, kWorkers);
            return;
        }
        loop_ = std::thread([this] {
            fuse_loop_config* config = fuse_loop_cfg_create();
            fuse_session_loop_mt(session_, config);
            fuse_loop_cfg_destroy(config);
        });
    }
    ~EmptyFs() {
        workers_.reset();
        if (mounted_) {
            fuse_session_exit(session_);
            fuse_session_unmount(session_);  // no file is open: a libfuse loop sees ENODEV
            if (loop_.joinable()) {
                loop_.join();
            }
        }
        if (session_ != nullptr) {
            fuse_session_destroy(session_);
        }
        gf::bench::unregister_mount(dir_);
    }
    bool ok() const { return mounted_; }
    std::string file() const { return dir_ + "/file"; }
    int64_t open_files() const { return state_.open_files.load(); }

  private:
    std::string dir_;
    EmptyState state_;
    fuse_session* session_ = nullptr;
    bool mounted_ = false;
    std::unique_ptr<gf::node::FuseWorkers> workers_;
    std::thread loop_;
};

// --- The node: emulated machine, driver, FUSE node, wired as goldfish-asd wires them. ---
struct Node {
    Node(const std::string& dir, bool mmap) {
        std::filesystem::create_directories(dir);
        auto m = gf::pci::emulated::Machine::create({});
        if (!m)
            return;
        machine = std::move(*m);
        auto d = gf::driver::Driver::probe(machine->pci_device());
        if (!d)
            return;
        driver = std::move(*d);
        gf::device::AddressSpaceDevice* device = &machine->device();
        gf::node::FuseNodeConfig config;
        config.mount_dir = dir;
        config.threads = kWorkers;
        config.node_size = driver->bar1_size();
        if (!mmap) {
            config.no_mmap_reason = "turned off (--no-mmap)";
        }
        config.bar1 =
            gf::node::Bar1Access{device->bar1_size(),
                                 [device](uint64_t offset, std::span<std::byte> out) {
                                     return device->read_bar1(offset, out);
                                 },
                                 [device](uint64_t offset, std::span<const std::byte> in) {
                                     return device->write_bar1(offset, in);
                                 }};
        gf::bench::register_mount(dir);
        auto f = gf::node::FuseNode::mount(config, *driver, [] { return std::string("{}"); });
        if (!f)
            return;
        fuse = std::move(*f);
        mount_dir = dir;
    }
    ~Node() {
        if (driver)
            driver->remove();
        if (fuse)
            fuse->stop();
        gf::bench::unregister_mount(mount_dir);
    }
    std::string file() const { return fuse ? fuse->node_file() : std::string(); }
    uint64_t open_files() const { return driver ? driver->stats().open_files : 0; }

    std::string mount_dir;
    std::unique_ptr<gf::pci::emulated::Machine> machine;
    std::unique_ptr<gf::driver::Driver> driver;
    std::unique_ptr<gf::node::FuseNode> fuse;
};

// Everything is made on first use, so a --benchmark_filter run mounts only what it needs.
class Fixture {
  public:
    Fixture() : tmp_(std::make_unique<gf::bench::TempDir>()) {}
    ~Fixture() {
        daemon_.reset();
        daemon_no_mmap_.reset();
        node_.reset();
        node_no_mmap_.reset();
        empty_.reset();
        empty_per_open_.reset();
        libfuse_empty_.reset();
        tmp_.reset();
    }
    EmptyFs& empty() { return make(empty_, "empty", Inodes::Fixed, false); }
    EmptyFs& empty_per_open() {
        return make(empty_per_open_, "empty-per-open", Inodes::PerOpen, false);
    }
    EmptyFs& libfuse_empty() { return make(libfuse_empty_, "libfuse-empty", Inodes::Fixed, true); }
    Node& node() {
        if (!node_)
            node_ = std::make_unique<Node>(root() + "/node", true);
        return *node_;
    }
    Node& node_no_mmap() {
        if (!node_no_mmap_)
            node_no_mmap_ = std::make_unique<Node>(root() + "/node-no-mmap", false);
        return *node_no_mmap_;
    }
    // goldfish-asd serving a node path of its own; nullptr if it did not come up.
    gf::bench::Daemon* daemon(bool mmap) {
        auto& slot = mmap ? daemon_ : daemon_no_mmap_;
        bool& tried = mmap ? daemon_tried_ : daemon_no_mmap_tried_;
        if (!slot && !tried) {
            tried = true;
            const std::string name = mmap ? "daemon" : "daemon-no-mmap";
            std::vector<std::string> extra;
            if (!mmap)
                extra.push_back("--no-mmap");
            std::string out;
            auto d = gf::bench::Daemon::start(GF_DAEMON_PATH, root() + "/" + name + "-node",
                                              root() + "/" + name + "-state", extra, &out);
            if (d) {
                slot = std::make_unique<gf::bench::Daemon>(std::move(*d));
            } else {
                std::fprintf(stderr, "goldfish-asd did not come up:\n%s\n", out.c_str());
            }
        }
        return slot.get();
    }

  private:
    const std::string& root() const { return tmp_->path(); }
    EmptyFs& make(std::unique_ptr<EmptyFs>& slot, const char* name, Inodes inodes, bool loop) {
        if (!slot)
            slot = std::make_unique<EmptyFs>(root() + "/" + name, inodes, loop);
        return *slot;
    }

    std::unique_ptr<gf::bench::TempDir> tmp_;
    std::unique_ptr<EmptyFs> empty_, empty_per_open_, libfuse_empty_;
    std::unique_ptr<Node> node_, node_no_mmap_;
    std::unique_ptr<gf::bench::Daemon> daemon_, daemon_no_mmap_;
    bool daemon_tried_ = false, daemon_no_mmap_tried_ = false;
};

std::unique_ptr<Fixture> g_fixture;

Fixture& fixture() {
    return *g_fixture;
}

bool need_root(benchmark::State& state) {
    if (::geteuid() != 0) {
        state.SkipWithError("needs root (mounts FUSE)");
        return false;
    }
    return true;
}

int open_or_skip(benchmark::State& state, const std::string& path) {
    if (!need_root(state)) {
        return -1;
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        state.SkipWithError(("open " + path + ": " + std::strerror(errno)).c_str());
    }
    return fd;
}

// The node with mmap on, or a skip saying why not.
Node* mmap_node_or_skip(benchmark::State& state) {
    if (!need_root(state)) {
        return nullptr;
    }
    Node& node = fixture().node();
    if (!node.fuse) {
        state.SkipWithError("the node did not mount");
        return nullptr;
    }
    if (!node.fuse->mmap_available()) {
        state.SkipWithError(("mmap unavailable: " + node.fuse->mmap_unavailable_reason()).c_str());
        return nullptr;
    }
    return &node;
}

// Releases (and forgets) are asynchronous to close(): let the last ones finish outside the
// timing, so that one benchmark's leftovers do not load the next.
void drain(const std::function<int64_t()>& open_files) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (open_files() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

std::optional<goldfish_address_space_allocate_block> allocate(int fd, uint64_t size) {
    goldfish_address_space_allocate_block block{};
    block.size = size;
    if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &block) != 0) {
        return std::nullopt;
    }
    return block;
}

bool deallocate(int fd, uint64_t offset) {
    return ::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &offset) == 0;
}

std::byte* map_shared(int fd, uint64_t offset, size_t size) {
    void* p =
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(offset));
    return p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
}

void touch_pages(std::byte* p, size_t size) {
    for (size_t at = 0; at < size; at += kPage) {
        *reinterpret_cast<volatile std::byte*>(p + at) = std::byte{1};
    }
}

// =============================== 1. memcpy, steady state ===============================

// The memcpy source: anonymous, touched, the same for every destination.
const std::byte* memcpy_source() {
    static std::byte* source = [] {
        void* p = ::mmap(nullptr, kBig, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            std::perror("mmap source");
            std::abort();
        }
        std::memset(p, 0x5a, kBig);
        return static_cast<std::byte*>(p);
    }();
    return source;
}

void memcpy_loop(benchmark::State& state, std::byte* dst) {
    const std::byte* src = memcpy_source();
    std::memset(dst, 0, kBig);  // steady state: every page is present before timing
    for (auto _ : state) {
        std::memcpy(dst, src, kBig);
        benchmark::DoNotOptimize(dst);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBig));
}

void BM_MemcpyAnon(benchmark::State& state) {
    void* p = ::mmap(nullptr, kBig, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        state.SkipWithError("mmap anonymous failed");
        return;
    }
    memcpy_loop(state, static_cast<std::byte*>(p));
    ::munmap(p, kBig);
}

// For reference: a plain memfd mapping (shmem pages, no FUSE), what the node's block is made of.
void BM_MemcpyMemfd(benchmark::State& state) {
    int fd = ::memfd_create("gf-bench", MFD_CLOEXEC);
    std::byte* p = fd >= 0 && ::ftruncate(fd, kBig) == 0 ? map_shared(fd, 0, kBig) : nullptr;
    if (p == nullptr) {
        state.SkipWithError("memfd mapping failed");
    } else {
        memcpy_loop(state, p);
        ::munmap(p, kBig);
    }
    if (fd >= 0)
        ::close(fd);
}

void BM_MemcpyNodeBlock(benchmark::State& state) {
    Node* node = mmap_node_or_skip(state);
    if (node == nullptr)
        return;
    int fd = open_or_skip(state, node->file());
    if (fd < 0)
        return;
    auto block = allocate(fd, kBig);
    std::byte* p = block ? map_shared(fd, block->offset, kBig) : nullptr;
    if (p == nullptr) {
        state.SkipWithError(("64 MiB block: " + std::string(std::strerror(errno))).c_str());
    } else {
        memcpy_loop(state, p);
        ::munmap(p, kBig);
    }
    if (block)
        deallocate(fd, block->offset);
    ::close(fd);
    drain([node] { return static_cast<int64_t>(node->open_files()); });
}

// ====================== 2. first touch of a fresh 64 MiB mapping ======================
//
// Argument teardown_timed: 0 times allocation + mmap + one write per page; 1 also times
// the teardown (munmap + DEALLOCATE_BLOCK, or munmap + close), which frees the pages.

void BM_FirstTouchMemfd(benchmark::State& state) {
    const bool teardown_timed = state.range(0) != 0;
    for (auto _ : state) {
        int fd = ::memfd_create("gf-bench", MFD_CLOEXEC);
        std::byte* p = fd >= 0 && ::ftruncate(fd, kBig) == 0 ? map_shared(fd, 0, kBig) : nullptr;
        if (p == nullptr) {
            state.SkipWithError("memfd mapping failed");
            if (fd >= 0)
                ::close(fd);
            break;
        }
        touch_pages(p, kBig);
        if (!teardown_timed)
            state.PauseTiming();
        ::munmap(p, kBig);
        ::close(fd);
        if (!teardown_timed)
            state.ResumeTiming();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBig));
}

void BM_FirstTouchNodeBlock(benchmark::State& state) {
    const bool teardown_timed = state.range(0) != 0;
    Node* node = mmap_node_or_skip(state);
    if (node == nullptr)
        return;
    int fd = open_or_skip(state, node->file());  // the open file the blocks come from
    if (fd < 0)
        return;
    for (auto _ : state) {
        auto block = allocate(fd, kBig);
        std::byte* p = block ? map_shared(fd, block->offset, kBig) : nullptr;
        if (p == nullptr) {
            state.SkipWithError(("64 MiB block: " + std::string(std::strerror(errno))).c_str());
            if (block)
                deallocate(fd, block->offset);
            break;
        }
        touch_pages(p, kBig);
        if (!teardown_timed)
            state.PauseTiming();
        ::munmap(p, kBig);
        const bool freed = deallocate(fd, block->offset);
        if (!teardown_timed)
            state.ResumeTiming();
        if (!freed) {
            state.SkipWithError("DEALLOCATE_BLOCK failed");
            break;
        }
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBig));
    ::close(fd);
    drain([node] { return static_cast<int64_t>(node->open_files()); });
}

// ==================================== 3. open + close ====================================

void open_close_loop(benchmark::State& state, const std::string& path,
                     const std::function<int64_t()>& open_files) {
    if (!need_root(state))
        return;
    for (auto _ : state) {
        int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            state.SkipWithError(("open " + path + ": " + std::strerror(errno)).c_str());
            break;
        }
        ::close(fd);
    }
    state.counters["opens"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    drain(open_files);
}

// The old node's shape: one inode, its entry cached; OPEN and RELEASE, nothing behind them.
void BM_OpenCloseEmptyFixedInode(benchmark::State& state) {
    EmptyFs& fs = fixture().empty();
    open_close_loop(state, fs.file(), [&fs] { return fs.open_files(); });
}

// The new node's FUSE traffic with nothing behind it: LOOKUP + OPEN + RELEASE + FORGET.
void BM_OpenCloseEmptyPerOpenInode(benchmark::State& state) {
    EmptyFs& fs = fixture().empty_per_open();
    open_close_loop(state, fs.file(), [&fs] { return fs.open_files(); });
}

// Per-open inodes and driver files (a host handle, a ping page), no memory files.
void BM_OpenCloseNodeNoMmap(benchmark::State& state) {
    Node& node = fixture().node_no_mmap();
    open_close_loop(state, node.file(),
                    [&node] { return static_cast<int64_t>(node.open_files()); });
}

// The node as it is: each open also makes a 16 GiB sparse memfd and registers it for
// passthrough.
void BM_OpenCloseNode(benchmark::State& state) {
    Node* node = mmap_node_or_skip(state);
    if (node == nullptr)
        return;
    open_close_loop(state, node->file(),
                    [node] { return static_cast<int64_t>(node->open_files()); });
}

// goldfish-asd itself, opened as clients open it: through the node path (a symlink).
void open_close_daemon(benchmark::State& state, bool mmap) {
    if (!need_root(state))
        return;
    gf::bench::Daemon* d = fixture().daemon(mmap);
    if (d == nullptr) {
        state.SkipWithError("goldfish-asd did not come up");
        return;
    }
    const std::string mount_dir = d->mount_dir();
    open_close_loop(state, d->node(), [mount_dir] {
        return static_cast<int64_t>(gf::bench::daemon_open_files(mount_dir).value_or(0));
    });
}

void BM_OpenCloseDaemonNoMmap(benchmark::State& state) {
    open_close_daemon(state, false);
}

void BM_OpenCloseDaemon(benchmark::State& state) {
    open_close_daemon(state, true);
}

// ======================================= 4. ioctls =======================================

void ping_loop(benchmark::State& state, int fd) {
    goldfish_address_space_ping ping{};
    for (auto _ : state) {
        ping = {};
        ping.metadata = 3;  // shared slots: CheckIfSharedSlotsSupported
        ping.version = sizeof ping;
        if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &ping) != 0) {
            state.SkipWithError("PING failed");
            break;
        }
    }
    state.counters["ioctls"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void alloc_loop(benchmark::State& state, int fd) {
    for (auto _ : state) {
        auto block = allocate(fd, kPage);
        if (!block) {
            state.SkipWithError("ALLOCATE_BLOCK failed");
            break;
        }
        if (!deallocate(fd, block->offset)) {
            state.SkipWithError("DEALLOCATE_BLOCK failed");
            break;
        }
    }
}

void BM_EmptyFusePing(benchmark::State& state) {
    int fd = open_or_skip(state, fixture().empty().file());
    if (fd < 0)
        return;
    ping_loop(state, fd);
    ::close(fd);
}

void BM_EmptyFusePingLibfuseLoop(benchmark::State& state) {
    int fd = open_or_skip(state, fixture().libfuse_empty().file());
    if (fd < 0)
        return;
    ping_loop(state, fd);
    ::close(fd);
}

// Through the node with mmap on: the open file has its memory file.
void BM_NodePing(benchmark::State& state) {
    Node* node = mmap_node_or_skip(state);
    if (node == nullptr)
        return;
    int fd = open_or_skip(state, node->file());
    if (fd < 0)
        return;
    goldfish_address_space_ping create{};
    create.metadata = 6;
    create.version = sizeof create;
    if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &create) != 0 || create.metadata != 0) {
        state.SkipWithError("create ping failed");
    } else {
        ping_loop(state, fd);
    }
    ::close(fd);
}

// Through the node with mmap off (the shim only watches, the open has no memory file): what
// passthrough itself costs a PING.
void BM_NodePingNoMmap(benchmark::State& state) {
    if (!need_root(state)) {
        return;
    }
    Node& node = fixture().node_no_mmap();
    int fd = node.fuse ? open_or_skip(state, node.file()) : -1;
    if (fd < 0) {
        return;
    }
    goldfish_address_space_ping create{};
    create.metadata = 6;
    create.version = sizeof create;
    if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &create) != 0 || create.metadata != 0) {
        state.SkipWithError("create ping failed");
    } else {
        ping_loop(state, fd);
    }
    ::close(fd);
}

// Two ioctls per iteration: the figure to compare per ioctl is half the time.
void BM_EmptyFuseAllocateDeallocate(benchmark::State& state) {
    int fd = open_or_skip(state, fixture().empty().file());
    if (fd < 0)
        return;
    alloc_loop(state, fd);
    ::close(fd);
}

// With mmap on: each block is also bound into BAR1's window and punched when freed.
void BM_NodeAllocateDeallocate(benchmark::State& state) {
    Node* node = mmap_node_or_skip(state);
    if (node == nullptr)
        return;
    int fd = open_or_skip(state, node->file());
    if (fd < 0)
        return;
    alloc_loop(state, fd);
    ::close(fd);
}

// ============================ paired: A and B in alternation ============================
//
// On a shared machine the load drifts by more than the differences these figures are about,
// between repetitions and even within one. A paired benchmark runs the baseline and the node
// in alternation, one short batch each per iteration (in alternating order), and reports the
// median batch time of each and the median of the per-iteration ratios node/baseline, so
// drift mostly cancels. Each op returns the nanoseconds of its timed part.

using TimedOp = std::function<double()>;

double median_of(std::vector<double> v) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <class F>
double timed_ns(F&& f) {
    const auto begin = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - begin)
        .count();
}

// `after_batch` runs untimed after each batch (to drain asynchronous releases).
void paired(
    benchmark::State& state, int batch, const TimedOp& base, const TimedOp& node,
    const std::function<void()>& after_batch = [] {}) {
    std::vector<double> base_ns, node_ns, ratio;
    bool failed = false;
    auto run = [&](const TimedOp& op) {
        double sum = 0;
        for (int i = 0; i < batch; ++i) {
            const double t = op();
            if (t < 0) {
                failed = true;
                break;
            }
            sum += t;
        }
        after_batch();
        return sum / batch;
    };
    for (auto _ : state) {
        double b = 0, n = 0;
        if (base_ns.size() % 2 == 0) {
            b = run(base);
            n = run(node);
        } else {
            n = run(node);
            b = run(base);
        }
        if (failed) {
            state.SkipWithError("an operation failed");
            break;
        }
        base_ns.push_back(b);
        node_ns.push_back(n);
        ratio.push_back(n / b);
    }
    state.counters["base_us"] = median_of(base_ns) / 1e3;
    state.counters["node_us"] = median_of(node_ns) / 1e3;
    state.counters["node/base"] = median_of(ratio);
}

// 1. memcpy into the node's block against anonymous memory (both touched).
void BM_PairedMemcpy(benchmark::State& state) {
    Node* node = mmap_node_or_skip(state);
    if (node == nullptr)
        return;
    int fd = open_or_skip(state, node->file());
    if (fd < 0)
        return;
    void* anon = ::mmap(nullptr, kBig, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    auto block = allocate(fd, kBig);
    std::byte* mapped = block ? map_shared(fd, block->offset, kBig) : nullptr;
    if (anon == MAP_FAILED || mapped == nullptr) {
        state.SkipWithError("64 MiB mappings failed");
    } else {
        const std::byte* src = memcpy_source();
        std::memset(anon, 0, kBig);
        std::memset(mapped, 0, kBig);
        auto copy_into = [src](void* dst) {
            return [src, dst] {
                return timed_ns([&] {
                    std::memcpy(dst, src, kBig);
                    benchmark::DoNotOptimize(dst);
                    benchmark::ClobberMemory();
                });
            };
        };
        paired(state, 2, copy_into(anon), copy_into(mapped));
    }
    if (mapped != nullptr)
        ::munmap(mapped, kBig);
    if (anon != MAP_FAILED)
        ::munmap(anon, kBig);
    if (block)
        deallocate(fd, block->offset);
    ::close(fd);
    drain([node] { return static_cast<int64_t>(node->open_files()); });
}

// 2. First touch: ALLOCATE_BLOCK + mmap + a write per page against memfd_create + ftruncate
// + mmap + the same writes. Argument teardown_timed as for FirstTouch*.
void BM_PairedFirstTouch(benchmark::State& state) {
    const bool teardown_timed = state.range(0) != 0;
    Node* node = mmap_node_or_skip(state);
    if (node == nullptr)
        return;
    int fd = open_or_skip(state, node->file());
    if (fd < 0)
        return;
    TimedOp memfd = [teardown_timed] {
        const auto begin = std::chrono::steady_clock::now();
        int m = ::memfd_create("gf-bench", MFD_CLOEXEC);
        std::byte* p = m >= 0 && ::ftruncate(m, kBig) == 0 ? map_shared(m, 0, kBig) : nullptr;
        if (p == nullptr) {
            if (m >= 0)
                ::close(m);
            return -1.0;
        }
        touch_pages(p, kBig);
        auto end = std::chrono::steady_clock::now();
        ::munmap(p, kBig);
        ::close(m);
        if (teardown_timed)
            end = std::chrono::steady_clock::now();
        return std::chrono::duration<double, std::nano>(end - begin).count();
    };
    TimedOp block = [teardown_timed, fd] {
        const auto begin = std::chrono::steady_clock::now();
        auto b = allocate(fd, kBig);
        std::byte* p = b ? map_shared(fd, b->offset, kBig) : nullptr;
        if (p == nullptr) {
            if (b)
                deallocate(fd, b->offset);
            return -1.0;
        }
        touch_pages(p, kBig);
        auto end = std::chrono::steady_clock::now();
        ::munmap(p, kBig);
        const bool freed = deallocate(fd, b->offset);
        if (teardown_timed)
            end = std::chrono::steady_clock::now();
        return freed ? std::chrono::duration<double, std::nano>(end - begin).count() : -1.0;
    };
    paired(state, 1, memfd, block);
    ::close(fd);
    drain([node] { return static_cast<int64_t>(node->open_files()); });
}

TimedOp open_close_op(std::string path) {
    return [path = std::move(path)] {
        return timed_ns([&] {
            int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
            if (fd >= 0)
                ::close(fd);
        });
    };
}

// 3. open + close: argument 0 empty fixed inode / node; 1 empty fixed inode / node --no-mmap;
// 2 node --no-mmap / node; 3 goldfish-asd --no-mmap / goldfish-asd (through the symlinks).
void BM_PairedOpenClose(benchmark::State& state) {
    if (!need_root(state))
        return;
    Fixture& f = fixture();
    std::string base, node;
    std::function<int64_t()> base_open, node_open;
    auto node_fn = [](Node& n) { return [&n] { return static_cast<int64_t>(n.open_files()); }; };
    auto empty_fn = [](EmptyFs& e) { return [&e] { return e.open_files(); }; };
    auto daemon_fn = [](gf::bench::Daemon* d) {
        return [dir = d->mount_dir()] {
            return static_cast<int64_t>(gf::bench::daemon_open_files(dir).value_or(0));
        };
    };
    switch (state.range(0)) {
        case 0:
        case 1: {
            EmptyFs& e = f.empty();
            Node& n = state.range(0) == 0 ? f.node() : f.node_no_mmap();
            base = e.file();
            base_open = empty_fn(e);
            node = n.file();
            node_open = node_fn(n);
            break;
        }
        case 2:
            base = f.node_no_mmap().file();
            base_open = node_fn(f.node_no_mmap());
            node = f.node().file();
            node_open = node_fn(f.node());
            break;
        default: {
            gf::bench::Daemon* without = f.daemon(false);
            gf::bench::Daemon* with = f.daemon(true);
            if (without == nullptr || with == nullptr) {
                state.SkipWithError("goldfish-asd did not come up");
                return;
            }
            base = without->node();
            base_open = daemon_fn(without);
            node = with->node();
            node_open = daemon_fn(with);
        }
    }
    for (const std::string& p : {base, node}) {
        int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            state.SkipWithError(("open " + p + ": " + std::strerror(errno)).c_str());
            return;
        }
        ::close(fd);
    }
    paired(state, 100, open_close_op(base), open_close_op(node), [&] {
        drain(base_open);
        drain(node_open);
    });
}

// 4. PING: the empty file system's ioctl against the node's (mmap on).
void BM_PairedPing(benchmark::State& state) {
    Node* node = mmap_node_or_skip(state);
    if (node == nullptr)
        return;
    int empty_fd = open_or_skip(state, fixture().empty().file());
    if (empty_fd < 0)
        return;
    int node_fd = open_or_skip(state, node->file());
    if (node_fd < 0) {
        ::close(empty_fd);
        return;
    }
    goldfish_address_space_ping create{};
    create.metadata = 6;
    create.version = sizeof create;
    if (::ioctl(node_fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &create) != 0 || create.metadata != 0) {
        state.SkipWithError("create ping failed");
    } else {
        auto ping_op = [](int fd) {
            return [fd] {
                goldfish_address_space_ping ping{};
                ping.metadata = 3;
                ping.version = sizeof ping;
                int rc = 0;
                const double t =
                    timed_ns([&] { rc = ::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &ping); });
                return rc == 0 ? t : -1.0;
            };
        };
        paired(state, 500, ping_op(empty_fd), ping_op(node_fd));
    }
    ::close(node_fd);
    ::close(empty_fd);
}

BENCHMARK(BM_MemcpyAnon)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MemcpyMemfd)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MemcpyNodeBlock)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FirstTouchMemfd)
    ->ArgName("teardown_timed")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FirstTouchNodeBlock)
    ->ArgName("teardown_timed")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OpenCloseEmptyFixedInode)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenCloseEmptyPerOpenInode)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenCloseNodeNoMmap)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenCloseNode)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenCloseDaemonNoMmap)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenCloseDaemon)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EmptyFusePingLibfuseLoop)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EmptyFusePing)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NodePing)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NodePingNoMmap)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EmptyFuseAllocateDeallocate)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NodeAllocateDeallocate)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PairedMemcpy)->Iterations(30)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PairedFirstTouch)
    ->ArgName("teardown_timed")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(15)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PairedOpenClose)
    ->ArgName("pair")
    ->DenseRange(0, 3)
    ->Iterations(30)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PairedPing)->Iterations(30)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    gf::bench::install_cleanup_handlers();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    g_fixture = std::make_unique<Fixture>();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    g_fixture.reset();  // unmounts, stops the daemons
    return 0;
}
