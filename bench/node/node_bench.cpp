// An ioctl through the node against an empty FUSE ioctl round trip, side by
// side in one process: the same kernel path, once answered by a file system
// that does nothing and once by driver + device. Needs root (it mounts).
#define FUSE_USE_VERSION 35
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/goldfish_address_space.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "driver/driver.h"
#include "node/fuse_node.h"
#include "node/fuse_workers.h"
#include "pci/emulated/machine.h"

namespace {

// --- The empty file system: one file whose every ioctl succeeds with zeros. ---
constexpr fuse_ino_t kFileIno = 2;

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
    fuse_entry_param e{};
    e.ino = kFileIno;
    e.attr = file_attr(kFileIno);
    e.attr_timeout = e.entry_timeout = 60;
    fuse_reply_entry(req, &e);
}

void empty_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    struct stat st = file_attr(ino);
    fuse_reply_attr(req, &st, 60);
}

void empty_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    fi->direct_io = 1;
    fi->nonseekable = 1;
    fuse_reply_open(req, fi);
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
    EmptyFs(const std::string& dir, bool libfuse_loop) : dir_(dir) {
        std::filesystem::create_directories(dir);
        static fuse_lowlevel_ops ops = [] {
            fuse_lowlevel_ops o{};
            o.lookup = empty_lookup;
            o.getattr = empty_getattr;
            o.open = empty_open;
            o.ioctl = empty_ioctl;
            return o;
        }();
        const char* argv[] = {"empty-fs"};
        fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
        session_ = fuse_session_new(&args, &ops, sizeof ops, nullptr);
        fuse_opt_free_args(&args);
        if (session_ == nullptr || fuse_session_mount(session_, dir.c_str()) != 0) {
            return;
        }
        mounted_ = true;
        if (!libfuse_loop) {
            workers_ = std::make_unique<gf::node::FuseWorkers>(session_, 8);
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
    }
    bool ok() const { return mounted_; }
    std::string file() const { return dir_ + "/file"; }

  private:
    std::string dir_;
    fuse_session* session_ = nullptr;
    bool mounted_ = false;
    std::unique_ptr<gf::node::FuseWorkers> workers_;
    std::thread loop_;
};

// --- The node: emulated machine, driver, FUSE node, as goldfish-asd wires them. ---
struct Node {
    explicit Node(const std::string& dir) {
        std::filesystem::create_directories(dir);
        auto m = gf::pci::emulated::Machine::create({});
        if (!m)
            return;
        machine = std::move(*m);
        auto d = gf::driver::Driver::probe(machine->pci_device());
        if (!d)
            return;
        driver = std::move(*d);
        gf::node::FuseNodeConfig config;
        config.mount_dir = dir;
        auto f = gf::node::FuseNode::mount(config, *driver, [] { return std::string("{}"); });
        if (!f)
            return;
        fuse = std::move(*f);
    }
    ~Node() {
        if (driver)
            driver->remove();
        if (fuse)
            fuse->stop();
    }
    std::unique_ptr<gf::pci::emulated::Machine> machine;
    std::unique_ptr<gf::driver::Driver> driver;
    std::unique_ptr<gf::node::FuseNode> fuse;
};

struct Fixture {
    Fixture() {
        char templ[] = "/tmp/gf-node-bench-XXXXXX";
        root = ::mkdtemp(templ);
        empty = std::make_unique<EmptyFs>(root + "/empty", false);
        libfuse_empty = std::make_unique<EmptyFs>(root + "/libfuse-empty", true);
        node = std::make_unique<Node>(root + "/node");
    }
    ~Fixture() {
        node.reset();
        empty.reset();
        libfuse_empty.reset();
        std::error_code ec;
        std::filesystem::remove_all(root, ec);
    }
    std::string root;
    std::unique_ptr<EmptyFs> empty;
    std::unique_ptr<EmptyFs> libfuse_empty;
    std::unique_ptr<Node> node;
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

int open_or_skip(benchmark::State& state, const std::string& path) {
    if (::geteuid() != 0) {
        state.SkipWithError("needs root (mounts FUSE)");
        return -1;
    }
    int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) {
        state.SkipWithError(("open " + path + ": " + std::strerror(errno)).c_str());
    }
    return fd;
}

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
    state.counters["ioctls"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate,
                                                  benchmark::Counter::kIs1000);
}

void alloc_loop(benchmark::State& state, int fd) {
    for (auto _ : state) {
        goldfish_address_space_allocate_block block{};
        block.size = 4096;
        uint64_t offset = 0;
        if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &block) != 0) {
            state.SkipWithError("ALLOCATE_BLOCK failed");
            break;
        }
        offset = block.offset;
        if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &offset) != 0) {
            state.SkipWithError("DEALLOCATE_BLOCK failed");
            break;
        }
    }
}

void BM_EmptyFusePing(benchmark::State& state) {
    int fd = open_or_skip(state, fixture().empty->file());
    if (fd < 0)
        return;
    ping_loop(state, fd);
    ::close(fd);
}

void BM_EmptyFusePingLibfuseLoop(benchmark::State& state) {
    int fd = open_or_skip(state, fixture().libfuse_empty->file());
    if (fd < 0)
        return;
    ping_loop(state, fd);
    ::close(fd);
}

void BM_NodePing(benchmark::State& state) {
    int fd = open_or_skip(state, fixture().node->fuse ? fixture().node->fuse->node_file() : "");
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

// Two ioctls per iteration: the figure to compare per ioctl is half the time.
void BM_EmptyFuseAllocateDeallocate(benchmark::State& state) {
    int fd = open_or_skip(state, fixture().empty->file());
    if (fd < 0)
        return;
    alloc_loop(state, fd);
    ::close(fd);
}

void BM_NodeAllocateDeallocate(benchmark::State& state) {
    int fd = open_or_skip(state, fixture().node->fuse ? fixture().node->fuse->node_file() : "");
    if (fd < 0)
        return;
    alloc_loop(state, fd);
    ::close(fd);
}

BENCHMARK(BM_EmptyFusePingLibfuseLoop)->UseRealTime();
BENCHMARK(BM_EmptyFusePing)->UseRealTime();
BENCHMARK(BM_NodePing)->UseRealTime();
BENCHMARK(BM_EmptyFuseAllocateDeallocate)->UseRealTime();
BENCHMARK(BM_NodeAllocateDeallocate)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
