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
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "node/daemon_fixture.h"
#include "node/node_lock.h"
#include "node/shared_counters.h"

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
constexpr int kAllocateFailed = 20;
constexpr int kMapFailed = 21;
constexpr int kDeallocateFailed = 22;
constexpr int kMapAnyFailed = 23;

std::string exit_meaning(int code) {
    switch (code) {
        case kSawForeignCanary:
            return "saw another client's canary";
        case kStaleNotZero:
            return "freed memory not zero";
        case kOwnDataWrong:
            return "its own data wrong";
        case kDaemonGone:
            return "the daemon went away";
        case kAllocateFailed:
            return "ALLOCATE_BLOCK failed";
        case kMapFailed:
            return "mmap of its block failed";
        case kDeallocateFailed:
            return "DEALLOCATE_BLOCK failed";
        case kMapAnyFailed:
            return "mmap of a BAR1 page failed";
    }
    return "exit code " + std::to_string(code);
}

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

// Runs until killed; stores in `calls` how many operations it has completed.
[[noreturn]] void canary_client(const std::string& node, uint64_t seed, const SharedCounters& calls,
                                size_t slot) {
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
                ::_exit(errno == ENOTCONN || errno == ENODEV ? kDaemonGone : kAllocateFailed);
            }
            void* p = ::mmap(nullptr, b.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                             static_cast<off_t>(b.offset));
            if (p == MAP_FAILED) {
                ::_exit(kMapFailed);
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
                ::_exit(errno == ENOTCONN || errno == ENODEV ? kDaemonGone : kDeallocateFailed);
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
                ::_exit(kMapAnyFailed);
            }
            const auto* w = static_cast<const uint64_t*>(p);
            for (size_t i = 0; i < kPage / 8; ++i) {
                if (foreign(w[i], self)) {
                    ::_exit(kSawForeignCanary);
                }
            }
            ::munmap(p, kPage);
        }
        calls.store(slot, seq);
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
            if (pid > 0) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
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

// 32 clients at once allocate, map, write and check canaries of their own; 40 times one of
// them, picked at random, is killed at a random point of its work (after 8 to 64 operations:
// blocks held and mapped, most likely mid-call) and replaced. Counted in operations, not in
// time, so a slow machine runs the same test, only longer.
TEST_F(MmapLoadTest, KilledCanaryClientsNeverSeeEachOthersMemory) {
    constexpr size_t kClients = 32;
    constexpr int kKills = 40;
    constexpr uint64_t kMinCalls = 8, kMaxCalls = 64;
    // For a client to make a few dozen calls, with 31 others busy, on a loaded machine.
    constexpr auto kProgressLimit = 60s;
    SharedCounters calls;
    ASSERT_TRUE(calls.ok());
    std::mt19937 rng(7);
    uint64_t seed = 1;
    clients_.assign(kClients, -1);
    auto spawn = [&](size_t slot) {
        calls.store(slot, 0);
        const uint64_t s = seed++;
        pid_t pid = ::fork();
        if (pid == 0) {
            canary_client(node_, s, calls, slot);
        }
        clients_[slot] = pid;
    };
    // Clients only end by being killed: any exit is a violation (its code says which).
    std::vector<std::string> failures;
    auto record_exit = [&](size_t slot, int status) {
        failures.push_back(
            "client " + std::to_string(clients_[slot]) + " (slot " + std::to_string(slot) + ", " +
            std::to_string(calls.load(slot)) + " calls) " +
            (WIFEXITED(status) ? exit_meaning(WEXITSTATUS(status))
                               : "died of signal " + std::to_string(WTERMSIG(status))));
    };
    auto exited = [&](size_t slot) {
        int status = 0;
        if (::waitpid(clients_[slot], &status, WNOHANG) != clients_[slot]) {
            return false;
        }
        record_exit(slot, status);
        spawn(slot);
        return true;
    };
    for (size_t slot = 0; slot < kClients; ++slot) {
        spawn(slot);
    }
    int killed = 0;
    for (int round = 0; round < kKills; ++round) {
        for (size_t slot = 0; slot < kClients; ++slot) {
            exited(slot);
        }
        const size_t victim = rng() % kClients;
        const uint64_t target = kMinCalls + rng() % (kMaxCalls - kMinCalls + 1);
        const pid_t pid = clients_[victim];
        bool died = false;
        const bool worked =
            eventually([&] { return calls.load(victim) >= target || (died = exited(victim)); },
                       kProgressLimit);
        if (died) {
            continue;  // recorded: a failure, not a kill
        }
        ASSERT_TRUE(worked) << "client " << pid << " made " << calls.load(victim) << " of "
                            << target << " calls in " << kProgressLimit.count() << " s";
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
            ++killed;
        } else {
            record_exit(victim, status);  // it had exited on its own just before
        }
        spawn(victim);
    }
    // The survivors too have done work, checked all along, before they go.
    for (size_t slot = 0; slot < kClients; ++slot) {
        bool died = false;
        const bool worked = eventually(
            [&] { return calls.load(slot) >= kMinCalls || (died = exited(slot)); }, kProgressLimit);
        EXPECT_TRUE(worked || died)
            << "client " << clients_[slot] << " made " << calls.load(slot) << " calls";
    }
    for (size_t slot = 0; slot < kClients; ++slot) {
        ::kill(clients_[slot], SIGKILL);
        int status = 0;
        ::waitpid(clients_[slot], &status, 0);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            record_exit(slot, status);
        }
        clients_[slot] = -1;
    }
    clients_.clear();
    EXPECT_TRUE(failures.empty()) << failures.size()
                                  << " client(s) failed; the first: " << failures.front();
    EXPECT_EQ(killed, kKills);
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
