// Shared memory under load: many processes allocate, map, write canaries of their own,
// verify, free and get killed; and the scale the node must carry (100,000 live mapped
// blocks across 64 open files).
#include <fcntl.h>
#include <linux/goldfish_address_space.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "node/daemon_fixture.h"
#include "node/node_lock.h"

namespace gf::testing {
namespace {

using namespace std::chrono_literals;

constexpr size_t kPage = 4096;
constexpr uint64_t kBar1Size = 16ull << 30;

// Exit codes of a canary client; anything else from a client is a failure too.
constexpr int kSawForeignCanary = 10;
constexpr int kStaleNotZero = 11;
constexpr int kOwnDataWrong = 12;
constexpr int kDaemonGone = 13;

struct Live {
    uint64_t offset;
    uint64_t size;
    uint64_t* words;
    uint64_t canary;
};

// Every nonzero word a client reads must be one of its own canaries: pid in the high half.
bool foreign(uint64_t word, pid_t self) {
    return word != 0 && (word >> 32) != static_cast<uint64_t>(self);
}

[[noreturn]] void canary_client(const std::string& node, uint64_t seed) {
    std::mt19937_64 rng(seed);
    const pid_t self = ::getpid();
    int fd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        ::_exit(kDaemonGone);
    }
    std::vector<Live> live;
    for (uint32_t seq = 1;; ++seq) {
        const unsigned op = rng() % 10;
        if (op < 4 && live.size() < 16) {
            goldfish_address_space_allocate_block b{};
            b.size = (1 + rng() % 8) * kPage;
            if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &b) != 0) {
                ::_exit(errno == ENOTCONN || errno == ENODEV ? kDaemonGone : 20);
            }
            void* p = ::mmap(nullptr, b.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                             static_cast<off_t>(b.offset));
            if (p == MAP_FAILED) {
                ::_exit(21);
            }
            Live l{b.offset, b.size, static_cast<uint64_t*>(p),
                   static_cast<uint64_t>(self) << 32 | seq};
            for (uint64_t i = 0; i < l.size / 8; ++i) {
                if (l.words[i] != 0) {
                    ::_exit(foreign(l.words[i], self) ? kSawForeignCanary : kOwnDataWrong);
                }
                l.words[i] = l.canary;
            }
            live.push_back(l);
        } else if (op < 7 && !live.empty()) {
            const Live& l = live[rng() % live.size()];
            for (uint64_t i = 0; i < l.size / 8; i += 61) {
                if (l.words[i] != l.canary) {
                    ::_exit(foreign(l.words[i], self) ? kSawForeignCanary : kOwnDataWrong);
                }
            }
        } else if (op < 9 && !live.empty()) {
            const size_t k = rng() % live.size();
            Live l = live[k];
            live.erase(live.begin() + static_cast<long>(k));
            uint64_t offset = l.offset;
            if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &offset) != 0) {
                ::_exit(errno == ENOTCONN || errno == ENODEV ? kDaemonGone : 22);
            }
            // Freed: the stale mapping shows zeros, whoever gets the range next.
            std::this_thread::yield();
            for (uint64_t i = 0; i < l.size / 8; i += 13) {
                if (l.words[i] != 0) {
                    ::_exit(foreign(l.words[i], self) ? kSawForeignCanary : kStaleNotZero);
                }
            }
            ::munmap(l.words, l.size);
        } else {
            // Anywhere in BAR1 through this file: zeros, or this client's own canaries.
            const uint64_t offset = (rng() % (kBar1Size / kPage)) * kPage;
            void* p = ::mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
            if (p == MAP_FAILED) {
                ::_exit(23);
            }
            const auto* w = static_cast<const uint64_t*>(p);
            for (size_t i = 0; i < kPage / 8; ++i) {
                if (foreign(w[i], self)) {
                    ::_exit(kSawForeignCanary);
                }
            }
            ::munmap(p, kPage);
        }
    }
}

class MmapLoadTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(::geteuid(), 0u) << "node tests mount FUSE: run them as root";
        node_ = tmp_.path() + "/goldfish_address_space";
        state_ = tmp_.path() + "/state";
        std::string out;
        daemon_ = Daemon::start(node_, state_, {}, &out);
        ASSERT_TRUE(daemon_) << out;
    }
    void TearDown() override {
        for (pid_t pid : clients_) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (daemon_) {
            EXPECT_EQ(daemon_->stop(SIGTERM, 20s), 0) << daemon_->output();
        }
    }

    TempDir tmp_;
    std::string node_, state_;
    std::optional<Daemon> daemon_;
    std::vector<pid_t> clients_;
};

TEST_F(MmapLoadTest, KilledCanaryClientsNeverSeeEachOthersMemory) {
    constexpr int kClients = 32;
    std::mt19937 rng(7);
    uint64_t seed = 1;
    auto spawn = [&] {
        const uint64_t s = seed++;
        pid_t pid = ::fork();
        if (pid == 0) {
            canary_client(node_, s);
        }
        clients_.push_back(pid);
    };
    for (int i = 0; i < kClients; ++i) {
        spawn();
    }
    int killed = 0;
    std::vector<int> failures;
    const auto end = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 20));
        // Clients only end by being killed: any exit is a violation (its code says which).
        for (size_t i = 0; i < clients_.size();) {
            int status = 0;
            if (::waitpid(clients_[i], &status, WNOHANG) == clients_[i]) {
                failures.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
                clients_.erase(clients_.begin() + static_cast<long>(i));
                spawn();
            } else {
                ++i;
            }
        }
        const size_t k = rng() % clients_.size();
        ::kill(clients_[k], SIGKILL);
        ::waitpid(clients_[k], nullptr, 0);
        clients_.erase(clients_.begin() + static_cast<long>(k));
        ++killed;
        spawn();
    }
    EXPECT_TRUE(failures.empty()) << "first client failure code " << failures.front();
    EXPECT_GT(killed, 30);
    for (pid_t pid : clients_) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    clients_.clear();
    auto s = wait_for_status(state_, node_, is_idle, 30s);
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
}

TEST_F(MmapLoadTest, HundredThousandMappedBlocksAcross64Files) {
    constexpr int kFiles = 64;
    constexpr int kBlocksPerFile = 1563;  // 100,032 in all
    int ready[2], release[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(release), 0);
    for (int f = 0; f < kFiles; ++f) {
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(release[1]);
            int fd = ::open(node_.c_str(), O_RDWR | O_CLOEXEC);
            for (int i = 0; fd >= 0 && i < kBlocksPerFile; ++i) {
                goldfish_address_space_allocate_block b{};
                b.size = kPage;
                if (::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &b) != 0) {
                    char code = static_cast<char>(errno);
                    (void)::write(ready[1], &code, 1);
                    ::_exit(1);
                }
                void* p = ::mmap(nullptr, b.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                                 static_cast<off_t>(b.offset));
                if (p == MAP_FAILED) {
                    char code = static_cast<char>(errno | 0x80);
                    (void)::write(ready[1], &code, 1);
                    ::_exit(1);
                }
                static_cast<uint64_t*>(p)[0] = static_cast<uint64_t>(f) << 32 | i;
            }
            char ok = 0;
            (void)::write(ready[1], &ok, 1);
            char wait;
            (void)::read(release[0], &wait, 1);  // returns 0 once the parent closes it
            ::_exit(0);
        }
        clients_.push_back(pid);
    }
    ::close(release[0]);
    ::close(ready[1]);
    int done = 0;
    for (int f = 0; f < kFiles; ++f) {
        char code = 1;
        ASSERT_EQ(::read(ready[0], &code, 1), 1);
        EXPECT_EQ(code, 0) << "a client failed: errno " << (code & 0x7f)
                           << ((code & 0x80) ? " from mmap" : " from ALLOCATE_BLOCK");
        done += code == 0;
    }
    ::close(ready[0]);
    auto s = read_status(state_, node_);
    ASSERT_TRUE(s);
    EXPECT_EQ(done, kFiles);
    EXPECT_EQ(s->open_files, static_cast<uint64_t>(kFiles));
    EXPECT_EQ(s->blocks, static_cast<uint64_t>(kFiles) * kBlocksPerFile);
    ::close(release[1]);  // the clients exit with every block still mapped
    for (pid_t pid : clients_) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    clients_.clear();
    s = wait_for_status(state_, node_, is_idle, 120s);
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
}

}  // namespace
}  // namespace gf::testing
