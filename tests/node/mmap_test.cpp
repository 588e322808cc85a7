// Shared memory through the node: real mounts, real mmap(2) in real processes, and the
// host's view through the daemon's bar1 file.
#include <fcntl.h>
#include <linux/goldfish_address_space.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "node/daemon_fixture.h"
#include "node/node_lock.h"
#include "node/shared_counters.h"

namespace gf::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kReleaseLimit = 20s;
constexpr size_t kPage = 4096;

using Block = goldfish_address_space_allocate_block;

std::optional<Block> allocate(int fd, uint64_t size) {
    Block b{};
    b.size = size;
    if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &b) != 0) {
        return std::nullopt;
    }
    return b;
}

int deallocate(int fd, uint64_t offset) {
    return ::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &offset) == 0 ? 0 : errno;
}

int ping(int fd, goldfish_address_space_ping& p) {
    return ::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &p) == 0 ? 0 : errno;
}

std::byte* map(int fd, uint64_t offset, size_t size, int prot = PROT_READ | PROT_WRITE,
               int flags = MAP_SHARED) {
    void* p = ::mmap(nullptr, size, prot, flags, fd, static_cast<off_t>(offset));
    return p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
}

uint64_t load(const std::byte* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
void store(std::byte* p, uint64_t v) {
    std::memcpy(p, &v, sizeof v);
}

class MmapTest : public ::testing::Test {
  protected:
    void SetUp() override { start({}); }
    void start(const std::vector<std::string>& extra) {
        ASSERT_EQ(::geteuid(), 0u) << "node tests mount FUSE: run them as root";
        node_ = tmp_.path() + "/goldfish_address_space";
        state_ = tmp_.path() + "/state";
        std::string out;
        daemon_ = Daemon::start(node_, state_, extra, &out);
        ASSERT_TRUE(daemon_) << "daemon did not come up: " << out;
        bar1_ = node::NodeLock::mount_dir_for(state_, node_) + "/bar1";
    }
    void TearDown() override {
        if (daemon_ && daemon_->pid() > 0) {
            EXPECT_EQ(daemon_->stop(SIGTERM, 10s), 0) << daemon_->output();
        }
    }

    int open_node() { return ::open(node_.c_str(), O_RDWR | O_CLOEXEC); }

    // The host's view of BAR1 at `offset`.
    uint64_t host_load(uint64_t offset) {
        int fd = ::open(bar1_.c_str(), O_RDONLY | O_CLOEXEC);
        EXPECT_GE(fd, 0);
        uint64_t v = ~0ull;
        EXPECT_EQ(::pread(fd, &v, sizeof v, static_cast<off_t>(offset)), 8);
        ::close(fd);
        return v;
    }
    void host_store(uint64_t offset, uint64_t v) {
        int fd = ::open(bar1_.c_str(), O_WRONLY | O_CLOEXEC);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(::pwrite(fd, &v, sizeof v, static_cast<off_t>(offset)), 8);
        ::close(fd);
    }

    std::optional<node::Status> wait_for(const std::function<bool(const node::Status&)>& done) {
        return wait_for_status(state_, node_, done, kReleaseLimit);
    }
    std::optional<node::Status> wait_idle() { return wait_for(is_idle); }
    // Everything the test's clients held is gone (bounded: FUSE releases after close()).
    void expect_idle() {
        auto s = wait_idle();
        ASSERT_TRUE(s);
        EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
    }

    TempDir tmp_;
    std::string node_, state_, bar1_;
    std::optional<Daemon> daemon_;
};

TEST_F(MmapTest, StatusSaysMmapIsAvailable) {
    auto s = read_status(state_, node_);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->mmap) << s->mmap_reason;
    EXPECT_NE(daemon_->ready_line().find("mmap"), std::string::npos) << daemon_->ready_line();
}

TEST_F(MmapTest, ClientAndHostShareABlockBothWays) {
    int fd = open_node();
    ASSERT_GE(fd, 0);
    auto b = allocate(fd, 3 * kPage);
    ASSERT_TRUE(b);
    // PROT_WRITE alone is what the AOSP library asks for; PROT_READ|PROT_WRITE works too.
    std::byte* w = map(fd, b->offset, b->size, PROT_WRITE);
    std::byte* rw = map(fd, b->offset, b->size);
    ASSERT_TRUE(w && rw) << std::strerror(errno);
    store(w + 8, 0x1111'2222'3333'4444);
    EXPECT_EQ(host_load(b->offset + 8), 0x1111'2222'3333'4444u);
    store(rw + b->size - 8, 0x5555);
    EXPECT_EQ(host_load(b->offset + b->size - 8), 0x5555u);
    host_store(b->offset + kPage, 0xabcdef);
    EXPECT_EQ(load(rw + kPage), 0xabcdefu);
    EXPECT_EQ(load(w + kPage), 0xabcdefu) << "the same pages through both mappings";
    // Offsets are page granular, as in the kernel.
    EXPECT_EQ(map(fd, b->offset + 8, kPage), nullptr);
    EXPECT_EQ(errno, EINVAL);
    ::munmap(w, b->size);
    ::munmap(rw, b->size);
    ::close(fd);
    auto s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
}

TEST_F(MmapTest, AnotherFileNeverSeesOrChangesTheBlock) {
    int a = open_node(), other = open_node();
    ASSERT_GE(a, 0);
    ASSERT_GE(other, 0);
    struct stat sa, so;
    ASSERT_EQ(::fstat(a, &sa), 0);
    ASSERT_EQ(::fstat(other, &so), 0);
    EXPECT_EQ(sa.st_ino, so.st_ino) << "one device inode, as stat shows it";
    auto b = allocate(a, kPage);
    ASSERT_TRUE(b);
    std::byte* pa = map(a, b->offset, kPage);
    ASSERT_TRUE(pa);
    store(pa, 0xaaaa);
    // The other file maps the same offset: it gets pages of its own, zero.
    std::byte* po = map(other, b->offset, kPage);
    ASSERT_TRUE(po);
    EXPECT_EQ(load(po), 0u);
    store(po, 0xbbbb);
    EXPECT_EQ(load(pa), 0xaaaau);
    EXPECT_EQ(host_load(b->offset), 0xaaaau);
    // Its DEALLOCATE of the block is refused: ownership is per open file.
    EXPECT_EQ(deallocate(other, b->offset), ENXIO);
    ::close(a);
    ::close(other);
    ::munmap(pa, kPage);
    ::munmap(po, kPage);
    expect_idle();
}

TEST_F(MmapTest, StaleMappingAfterFreeNeverSeesTheNextOwnerAndReuseStartsZeroed) {
    int a = open_node(), next = open_node();
    ASSERT_GE(a, 0);
    ASSERT_GE(next, 0);
    auto b = allocate(a, kPage);
    ASSERT_TRUE(b);
    std::byte* stale = map(a, b->offset, b->size);
    ASSERT_TRUE(stale);
    std::memset(stale, 0x5a, b->size);
    ASSERT_EQ(deallocate(a, b->offset), 0);
    EXPECT_EQ(load(stale), 0u) << "freed memory leaves the stale mapping";
    EXPECT_EQ(host_load(b->offset), 0u);
    // The allocator places the same size at the same offset again.
    std::byte* scribble = map(next, b->offset, b->size);
    ASSERT_TRUE(scribble);
    std::memset(scribble, 0x77, b->size);  // before it owns the range
    auto reused = allocate(next, kPage);
    ASSERT_TRUE(reused);
    ASSERT_EQ(reused->offset, b->offset);
    EXPECT_EQ(load(scribble), 0u) << "a new block starts zeroed";
    store(scribble, 0xcafe);
    EXPECT_EQ(host_load(b->offset), 0xcafeu);
    EXPECT_EQ(load(stale), 0u);
    store(stale, 0xdead);  // the stale owner writes: it reaches nobody
    EXPECT_EQ(load(scribble), 0xcafeu);
    EXPECT_EQ(host_load(b->offset), 0xcafeu);
    ::munmap(stale, b->size);
    ::munmap(scribble, b->size);
    ::close(a);
    ::close(next);
    expect_idle();
}

TEST_F(MmapTest, DupForkAndScmRightsShareTheSamePages) {
    int fd = open_node();
    ASSERT_GE(fd, 0);
    auto b = allocate(fd, kPage);
    ASSERT_TRUE(b);
    std::byte* p = map(fd, b->offset, kPage);
    ASSERT_TRUE(p);
    int copy = ::dup(fd);
    std::byte* q = map(copy, b->offset, kPage);
    ASSERT_TRUE(q);
    store(q, 0x1234);
    EXPECT_EQ(load(p), 0x1234u);

    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t child = ::fork();
    if (child == 0) {
        // Gets the fd only over the socket, maps it, writes, and frees through it.
        char byte;
        char control[CMSG_SPACE(sizeof(int))];
        iovec iov{&byte, 1};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(sv[1], &msg, 0) != 1) {
            ::_exit(2);
        }
        int passed;
        std::memcpy(&passed, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof passed);
        auto* r = map(passed, b->offset, kPage);
        if (r == nullptr || load(r) != 0x1234) {
            ::_exit(3);
        }
        store(r + 8, 0x5678);
        // A fork of this process shares the same open file too.
        pid_t grandchild = ::fork();
        if (grandchild == 0) {
            store(r + 16, 0x9abc);
            ::_exit(0);
        }
        int st = 0;
        ::waitpid(grandchild, &st, 0);
        ::_exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 4);
    }
    char byte = 'x';
    char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ASSERT_EQ(::sendmsg(sv[0], &msg, 0), 1);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(load(p + 8), 0x5678u);
    EXPECT_EQ(load(p + 16), 0x9abcu);
    EXPECT_EQ(host_load(b->offset + 16), 0x9abcu);
    ::close(sv[0]);
    ::close(sv[1]);
    ::munmap(p, kPage);
    ::munmap(q, kPage);
    ::close(copy);
    ::close(fd);
    expect_idle();
}

TEST_F(MmapTest, ClosedFileKeepsItsBlocksUntilTheLastMappingGoes) {
    int fd = open_node();
    ASSERT_GE(fd, 0);
    auto b = allocate(fd, kPage);
    ASSERT_TRUE(b);
    std::byte* p = map(fd, b->offset, kPage);
    ASSERT_TRUE(p);
    ::close(fd);
    auto s = wait_for([](const node::Status& s) { return s.lingering_files == 1; });
    ASSERT_TRUE(s);
    EXPECT_EQ(s->lingering_files, 1u) << node::to_json(*s);
    EXPECT_EQ(s->blocks, 1u);
    EXPECT_EQ(s->handles, 1u);
    // Still shared, as a kernel driver's mapping would be.
    store(p, 0x4242);
    EXPECT_EQ(host_load(b->offset), 0x4242u);
    host_store(b->offset + 8, 0x4343);
    EXPECT_EQ(load(p + 8), 0x4343u);
    ::munmap(p, kPage);
    s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
    EXPECT_EQ(host_load(b->offset), 0u);
}

// Issue 21 item 4: a client that closed its file with many blocks still mapped lingers
// without costing anyone else. While it maps them the daemon's checks only scan /proc (no seal
// is tried, so no range is parked under BAR1's lock) and another client's PINGs go through;
// once the mappings go, the file is released.
TEST_F(MmapTest, ALingeringFileWithManyMappingsIsCheckedWithoutLocksAndReleasedOnceUnmapped) {
    constexpr int kBlocks = 2000;
    int ready[2], go[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(go[1]);
        const int fd = open_node();
        for (int i = 0; i < kBlocks; ++i) {
            auto b = allocate(fd, kPage);
            std::byte* p = b ? map(fd, b->offset, kPage) : nullptr;
            if (p == nullptr) {
                ::_exit(2);
            }
            store(p, static_cast<uint64_t>(i));
        }
        ::close(fd);
        (void)!::write(ready[1], "r", 1);
        char c;
        while (::read(go[0], &c, 1) == 1) {
        }
        ::_exit(0);  // its mappings go with it
    }
    ::close(ready[1]);
    ::close(go[0]);
    char c = 0;
    const bool child_ready = ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    if (!child_ready) {
        ::close(go[1]);
        int status = 0;
        ::waitpid(child, &status, 0);
        FAIL() << "the client failed to map its blocks (exit status " << status << ")";
    }
    auto s = wait_for([](const node::Status& s) { return s.lingering_files == 1; });
    ASSERT_TRUE(s);
    ASSERT_EQ(s->lingering_files, 1u) << node::to_json(*s);
    EXPECT_EQ(s->blocks, static_cast<uint64_t>(kBlocks));
    const uint64_t scans_before = s->mapping_scans;

    // Another client pings while the daemon checks the lingering file three more times.
    const int other = open_node();
    ASSERT_GE(other, 0);
    goldfish_address_space_ping create{};
    create.metadata = 6;  // shared slots
    create.version = sizeof create;
    ASSERT_EQ(ping(other, create), 0);
    ASSERT_EQ(create.metadata, 0u);
    const auto deadline = std::chrono::steady_clock::now() + kReleaseLimit;
    uint64_t pings = 0;
    for (;;) {
        for (int i = 0; i < 50; ++i, ++pings) {
            goldfish_address_space_ping query{};
            query.metadata = 3;  // CheckIfSharedSlotsSupported
            query.version = sizeof query;
            ASSERT_EQ(ping(other, query), 0) << "PING " << pings;
        }
        s = read_status(state_, node_);
        ASSERT_TRUE(s);
        if (s->mapping_scans >= scans_before + 3) {
            break;
        }
        ASSERT_LT(std::chrono::steady_clock::now(), deadline)
            << "the daemon did not check the lingering file again: " << node::to_json(*s);
    }
    EXPECT_EQ(s->lingering_files, 1u);
    // No seal while mapped, but the one forced every 16 checks (the scan can err towards
    // "mapped"; it never ran here unless the machine stalled for many seconds).
    EXPECT_LE(s->seal_checks * 15, s->mapping_scans) << node::to_json(*s);
    EXPECT_EQ(s->remap_failures, 0u);
    ::close(other);

    ::close(go[1]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
    EXPECT_EQ(s->lingering_files, 0u);
    EXPECT_GE(s->seal_checks, 1u) << "released by the authoritative check";
    EXPECT_EQ(s->remap_failures, 0u);
}

TEST_F(MmapTest, ClientKilledMidWriteWithLiveMappingsLeavesNothing) {
    SharedCounters stores;
    ASSERT_TRUE(stores.ok());
    for (int round = 0; round < 4; ++round) {
        stores.store(0, 0);
        pid_t child = ::fork();
        if (child == 0) {
            int fd = open_node();
            std::vector<std::byte*> maps;
            for (int i = 0; i < 8; ++i) {
                auto b = allocate(fd, (i + 1) * kPage);
                if (!b) {
                    ::_exit(2);
                }
                maps.push_back(map(fd, b->offset, b->size));
            }
            for (uint64_t i = 1;; ++i) {
                store(maps[i % maps.size()] + (i * 8) % kPage, i);
                stores.store(0, i);
            }
        }
        // Killed once it has written into every block, a few rounds over, and is still writing.
        const uint64_t target = 1000u << round;
        int status = 0;
        bool exited = false;
        const bool writing = eventually(
            [&] {
                exited = ::waitpid(child, &status, WNOHANG) == child;
                return exited || stores.load(0) >= target;
            },
            30s);
        if (!exited) {
            ::kill(child, SIGKILL);
            ::waitpid(child, &status, 0);
        }
        ASSERT_TRUE(writing && stores.load(0) >= target)
            << "the child made " << stores.load(0) << " stores; wait status " << status;
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    }
    auto s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
}

TEST_F(MmapTest, SigkilledDaemonLeavesClientsTheirOwnPagesAndThePathServesAgain) {
    int fd = open_node();
    ASSERT_GE(fd, 0);
    auto b = allocate(fd, kPage);
    ASSERT_TRUE(b);
    std::byte* p = map(fd, b->offset, kPage);
    ASSERT_TRUE(p);
    store(p, 0x600d);
    EXPECT_EQ(daemon_->stop(SIGKILL, 5s), -1);
    daemon_.reset();
    EXPECT_EQ(load(p), 0x600du) << "the client keeps its own pages";
    store(p + 8, 1);
    goldfish_address_space_ping request{};
    EXPECT_EQ(ping(fd, request), ENOTCONN);
    ::munmap(p, kPage);
    ::close(fd);
    start({});
    int again = open_node();
    ASSERT_GE(again, 0);
    auto fresh = allocate(again, kPage);
    ASSERT_TRUE(fresh);
    std::byte* q = map(again, fresh->offset, kPage);
    ASSERT_TRUE(q);
    EXPECT_EQ(load(q), 0u);
    ::munmap(q, kPage);
    ::close(again);
    expect_idle();
}

TEST_F(MmapTest, MapPrivateCopiesOnWriteAndNeverFaults) {
    int fd = open_node();
    ASSERT_GE(fd, 0);
    auto b = allocate(fd, kPage);
    ASSERT_TRUE(b);
    host_store(b->offset, 0x7e57);
    std::byte* p = map(fd, b->offset, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    ASSERT_TRUE(p) << std::strerror(errno);
    EXPECT_EQ(load(p), 0x7e57u);
    store(p, 0x1);  // private: the host does not see it
    EXPECT_EQ(host_load(b->offset), 0x7e57u);
    ::munmap(p, kPage);
    ::close(fd);
    expect_idle();
}

TEST_F(MmapTest, UnownedOffsetsMapTheFilesOwnZerosAndReachNoOne) {
    int a = open_node(), other = open_node();
    ASSERT_GE(a, 0);
    ASSERT_GE(other, 0);
    auto b = allocate(a, kPage);
    ASSERT_TRUE(b);
    std::byte* owned = map(a, b->offset, kPage);
    ASSERT_TRUE(owned);
    store(owned, 0x0123);
    // Anywhere else in BAR1, including right below the block and the host's end.
    for (uint64_t offset :
         {uint64_t{0}, uint64_t{b->offset - kPage}, uint64_t{(16ull << 30) - kPage}}) {
        std::byte* p = map(other, offset, kPage);
        ASSERT_TRUE(p) << offset;
        EXPECT_EQ(load(p), 0u);
        store(p, 0xffff);
        EXPECT_EQ(host_load(offset), 0u);
        ::munmap(p, kPage);
    }
    EXPECT_EQ(load(owned), 0x0123u);
    // Beyond BAR1 the memory file ends: FUSE cannot refuse the mmap, and a touch there is
    // SIGBUS, as past the end of any file.
    std::byte* past = map(other, 16ull << 30, kPage);
    ASSERT_TRUE(past);
    pid_t child = ::fork();
    if (child == 0) {
        // ASan's own SIGBUS handler would report and exit 1: the child dies of the signal.
        ::signal(SIGBUS, SIG_DFL);
        const volatile uint64_t touched = *reinterpret_cast<volatile uint64_t*>(past);
        ::_exit(static_cast<int>(touched & 1));
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) << status;
    ::munmap(past, kPage);
    ::munmap(owned, kPage);
    ::close(a);
    ::close(other);
    expect_idle();
}

TEST_F(MmapTest, NodeIoAndReopenRoutesAreRefused) {
    int fd = open_node();
    ASSERT_GE(fd, 0);
    char buf[8] = {};
    EXPECT_EQ(::read(fd, buf, sizeof buf), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(::write(fd, buf, sizeof buf), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(::pwrite(fd, buf, sizeof buf, 4096), -1);
    EXPECT_EQ(errno, EINVAL);
    // A second OPEN of this open's inode (a re-open route into its memory) is EBUSY.
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    EXPECT_EQ(::open(self.c_str(), O_RDWR), -1);
    EXPECT_EQ(errno, EBUSY);
    struct stat st;
    ASSERT_EQ(::lstat(node_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the node is a symlink into the mount";
    EXPECT_EQ(::open(node_.c_str(), O_RDWR | O_NOFOLLOW), -1);
    EXPECT_EQ(errno, ELOOP);
    ::close(fd);
    expect_idle();
}

TEST_F(MmapTest, Bar1FileIsRootOnlyAndRefusesRangesOutsideBar1) {
    struct stat st;
    ASSERT_EQ(::stat(bar1_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), 16ull << 30);
    int fd = ::open(bar1_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    uint64_t v = 0;
    EXPECT_EQ(::pread(fd, &v, sizeof v, static_cast<off_t>(16ull << 30)), -1);
    EXPECT_EQ(errno, ENXIO);
    EXPECT_EQ(::pwrite(fd, &v, sizeof v, static_cast<off_t>((16ull << 30) - 4)), -1);
    EXPECT_EQ(errno, ENXIO);
    EXPECT_EQ(::pread(fd, &v, sizeof v, static_cast<off_t>((16ull << 30) - 4)), 4)
        << "a read that crosses the end is short";
    ::close(fd);
    // Not for users: the kernel checks the mode (the path itself is open to them).
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);
    RunResult denied = run_program({"/bin/cat", bar1_}, 10s, 65534);
    EXPECT_NE(denied.status, 0);
    EXPECT_NE(denied.output.find("Permission denied"), std::string::npos) << denied.output;
}

TEST_F(MmapTest, HostMemoryContextsShareTheirPages) {
    int fd = open_node();
    ASSERT_GE(fd, 0);
    // Type 5: a guest block whose host memory is the block's shared pages.
    goldfish_address_space_ping create{};
    create.metadata = 5;
    ASSERT_EQ(ping(fd, create), 0);
    ASSERT_EQ(create.metadata, 0u);
    auto b = allocate(fd, 2 * kPage);
    ASSERT_TRUE(b);
    goldfish_address_space_ping alloc{};
    alloc.offset = b->offset;
    alloc.size = 2 * kPage;
    alloc.metadata = 1;  // Allocate
    ASSERT_EQ(ping(fd, alloc), 0);
    ASSERT_EQ(alloc.metadata, 0u);
    std::byte* p = map(fd, b->offset, 2 * kPage, PROT_WRITE);
    ASSERT_TRUE(p);
    store(p + kPage, 0x55aa);
    EXPECT_EQ(host_load(b->offset + kPage), 0x55aau);
    ::munmap(p, 2 * kPage);
    ::close(fd);

    // Type 6: a slot of a host slab, filled by the host, claimed and mapped by the client.
    int fd6 = open_node();
    ASSERT_GE(fd6, 0);
    goldfish_address_space_ping create6{};
    create6.metadata = 6;
    ASSERT_EQ(ping(fd6, create6), 0);
    goldfish_address_space_ping slot{};
    slot.size = 3 * kPage;
    slot.metadata = 1;
    ASSERT_EQ(ping(fd6, slot), 0);
    ASSERT_EQ(slot.metadata, 0u);
    const uint64_t offset = slot.offset;
    host_store(offset + 16, 0x6666);  // the host writes before the claim
    goldfish_address_space_claim_shared claim{offset, slot.size};
    ASSERT_EQ(::ioctl(fd6, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &claim), 0);
    std::byte* q = map(fd6, offset, slot.size);
    ASSERT_TRUE(q);
    EXPECT_EQ(load(q + 16), 0x6666u);
    store(q + 24, 0x7777);
    EXPECT_EQ(host_load(offset + 24), 0x7777u);
    host_store(offset + 32, 0x8888);
    EXPECT_EQ(load(q + 32), 0x8888u);
    // Another file's claim of the same slot gets none of it.
    int other = open_node();
    goldfish_address_space_claim_shared theirs{offset, slot.size};
    ASSERT_EQ(::ioctl(other, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &theirs), 0);
    std::byte* r = map(other, offset, slot.size);
    ASSERT_TRUE(r);
    EXPECT_EQ(load(r + 24), 0u);
    uint64_t off = offset;
    ASSERT_EQ(::ioctl(fd6, GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, &off), 0);
    EXPECT_EQ(host_load(offset + 24), 0x7777u) << "the host keeps what the client wrote";
    EXPECT_EQ(load(q + 24), 0u);
    ::munmap(q, slot.size);
    ::munmap(r, slot.size);
    ::close(fd6);
    ::close(other);
    expect_idle();
}

class NoMmapTest : public MmapTest {
  protected:
    void SetUp() override { start({"--no-mmap"}); }
};

TEST_F(NoMmapTest, ServesIoctlsAndSaysWhyMmapIsOff) {
    auto s = read_status(state_, node_);
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->mmap);
    EXPECT_NE(s->mmap_reason.find("--no-mmap"), std::string::npos) << s->mmap_reason;
    EXPECT_NE(daemon_->output().find("mmap is unavailable"), std::string::npos)
        << daemon_->output();
    int fd = open_node();
    ASSERT_GE(fd, 0);
    auto b = allocate(fd, kPage);
    ASSERT_TRUE(b);
    EXPECT_EQ(map(fd, b->offset, kPage), nullptr);
    EXPECT_EQ(errno, ENODEV);
    ::close(fd);
    expect_idle();
}

}  // namespace
}  // namespace gf::testing
