// Load with faults through the node: many client processes, some killed with
// SIGKILL at random moments; the daemon stopped with SIGTERM, or killed with
// SIGKILL, under that load. Afterwards nothing is left behind.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "client/session.h"
#include "node/daemon_fixture.h"
#include "node/shared_counters.h"
#include "node/traffic.h"

namespace gf::testing {
namespace {

using namespace std::chrono_literals;

constexpr size_t kClients = 32;
constexpr int kKills = 40;
constexpr uint64_t kCallsBeforeStop = 16;  // per client: the daemon stops under load
// For a client to make a few dozen calls, with 31 others busy, on a loaded machine.
constexpr auto kProgressLimit = 60s;
constexpr auto kReleaseLimit = 20s;

// Client processes running random_traffic() until killed or the daemon goes, one per slot;
// each counts its calls in a shared page, so the test acts after work, not after time.
class Clients {
  public:
    explicit Clients(std::string node) : node_(std::move(node)), pids_(kClients, -1) {}
    ~Clients() { kill_all(); }

    bool ok() const { return calls_.ok(); }

    void spawn(size_t slot) {
        calls_.store(slot, 0);
        const uint64_t seed = next_seed_++;
        pid_t pid = ::fork();
        if (pid == 0) {
            ::_exit(random_traffic(node_, seed, -1, calls_.word(slot)));
        }
        pids_[slot] = pid;
    }
    void spawn_all() {
        for (size_t slot = 0; slot < kClients; ++slot) {
            spawn(slot);
        }
    }

    uint64_t calls(size_t slot) const { return calls_.load(slot); }

    // Waits (bounded) until the client in `slot` has made `calls` calls, or has exited.
    bool wait_for_calls(size_t slot, uint64_t calls, std::chrono::milliseconds limit) const {
        return eventually([&] { return calls_.load(slot) >= calls || has_exited(pids_[slot]); },
                          limit);
    }
    // The same for every client.
    bool wait_for_calls(uint64_t calls, std::chrono::milliseconds limit) const {
        for (size_t slot = 0; slot < kClients; ++slot) {
            if (pids_[slot] > 0 && !wait_for_calls(slot, calls, limit)) {
                return false;
            }
        }
        return true;
    }

    // SIGKILLs the client in `slot` (mid-call, most likely) and reaps it; one that had exited
    // on its own meanwhile is counted as that exit, not as a kill.
    void kill(size_t slot) {
        ::kill(pids_[slot], SIGKILL);
        int status = 0;
        ::waitpid(pids_[slot], &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
            ++killed_;
        } else {
            count_exit(slot, status);
        }
        pids_[slot] = -1;
    }

    // Replaces the clients that exited on their own (each exit counted).
    void replace_exited() {
        for (size_t slot = 0; slot < kClients; ++slot) {
            if (reap(slot)) {
                spawn(slot);
            }
        }
    }

    // Waits (bounded) for every client to exit on its own; how many had to be killed (hung).
    int wait_all(std::chrono::milliseconds limit) {
        eventually(
            [&] {
                bool all = true;
                for (size_t slot = 0; slot < kClients; ++slot) {
                    all &= pids_[slot] <= 0 || reap(slot);
                }
                return all;
            },
            limit);
        const int hung = static_cast<int>(
            std::count_if(pids_.begin(), pids_.end(), [](pid_t pid) { return pid > 0; }));
        kill_all();
        return hung;
    }

    void kill_all() {
        for (size_t slot = 0; slot < kClients; ++slot) {
            if (pids_[slot] > 0) {
                kill(slot);
            }
        }
    }

    int killed() const { return killed_; }
    // Exits because the daemon went away (kDaemonGone).
    int daemon_gone() const { return daemon_gone_; }
    // Exits for anything else: a wrong answer; the first one described.
    int wrong() const { return wrong_; }
    const std::string& first_wrong() const { return first_wrong_; }

  private:
    static bool has_exited(pid_t pid) {
        siginfo_t info{};
        return pid > 0 &&
               ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
               info.si_pid == pid;
    }
    // Reaps the client in `slot` if it has exited, counting its exit.
    bool reap(size_t slot) {
        int status = 0;
        if (pids_[slot] <= 0 || ::waitpid(pids_[slot], &status, WNOHANG) != pids_[slot]) {
            return false;
        }
        count_exit(slot, status);
        pids_[slot] = -1;
        return true;
    }
    void count_exit(size_t slot, int status) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == kDaemonGone) {
            ++daemon_gone_;
            return;
        }
        if (wrong_++ == 0) {
            first_wrong_ = "client " + std::to_string(pids_[slot]) + " after " +
                           std::to_string(calls_.load(slot)) + " calls: " +
                           (WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                              : "signal " + std::to_string(WTERMSIG(status)));
        }
    }

    std::string node_;
    SharedCounters calls_;
    std::vector<pid_t> pids_;  // by slot; -1 when empty
    uint64_t next_seed_ = 7000;
    int killed_ = 0, daemon_gone_ = 0, wrong_ = 0;
    std::string first_wrong_;
};

class ChaosTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(::geteuid(), 0u) << "node tests mount FUSE: run them as root";
        node_ = tmp_.path() + "/goldfish_address_space";
        state_ = tmp_.path() + "/state";
        start();
    }
    void TearDown() override {
        if (daemon_ && daemon_->pid() > 0) {
            EXPECT_EQ(daemon_->stop(SIGTERM, 5s), 0) << daemon_->output();
        }
    }
    void start() {
        std::string out;
        daemon_ = Daemon::start(node_, state_, {}, &out);
        ASSERT_TRUE(daemon_) << out;
    }
    void expect_idle() {
        auto s = wait_for_status(state_, node_, is_idle, kReleaseLimit);
        ASSERT_TRUE(s);
        EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
        EXPECT_GE(s->area_free_bytes, s->bar1_size - (64ull << 20));  // at most one spare slab
    }

    TempDir tmp_;
    std::string node_, state_;
    std::optional<Daemon> daemon_;
};

// 40 times, a client picked at random is killed after a random number (1 to 64) of its
// calls, and replaced: counted in calls, not in time, so a slow machine runs the same test.
TEST_F(ChaosTest, ClientsKilledAtRandomMomentsLeaveNothingBehind) {
    std::mt19937 rng(42);
    Clients clients(node_);
    ASSERT_TRUE(clients.ok());
    clients.spawn_all();
    for (int kill = 0; kill < kKills; ++kill) {
        const size_t victim = rng() % kClients;
        const uint64_t calls = 1 + rng() % 64;
        ASSERT_TRUE(clients.wait_for_calls(victim, calls, kProgressLimit))
            << "client in slot " << victim << " made " << clients.calls(victim) << " of " << calls
            << " calls";
        clients.kill(victim);
        clients.spawn(victim);
        clients.replace_exited();
    }
    EXPECT_EQ(clients.wrong(), 0) << "a client saw a wrong answer; the first: "
                                  << clients.first_wrong();
    EXPECT_EQ(clients.daemon_gone(), 0) << "a call failed as if the daemon had gone";
    auto busy = read_status(state_, node_);
    ASSERT_TRUE(busy);
    EXPECT_GT(busy->open_files, 0u);
    clients.kill_all();
    EXPECT_EQ(clients.killed(), kKills + static_cast<int>(kClients))
        << "every client ends killed while busy";
    RecordProperty("clients_killed", clients.killed());
    expect_idle();
}

TEST_F(ChaosTest, SigtermUnderLoadStopsCleanlyAndThePathServesAgain) {
    Clients clients(node_);
    ASSERT_TRUE(clients.ok());
    clients.spawn_all();
    ASSERT_TRUE(clients.wait_for_calls(kCallsBeforeStop, kProgressLimit)) << "under load";
    std::chrono::milliseconds took{};
    EXPECT_EQ(daemon_->stop(SIGTERM, 5s, &took), 0) << daemon_->output();
    EXPECT_LT(took, 2s);
    const int hung = clients.wait_all(10s);
    EXPECT_EQ(hung, 0) << "clients must get an errno, never hang";
    EXPECT_EQ(clients.daemon_gone(), static_cast<int>(kClients))
        << "every client ended on the daemon's departure; a wrong answer first: "
        << clients.first_wrong();

    start();
    expect_idle();
    EXPECT_EQ(random_traffic(node_, 1, 500), 0);
    expect_idle();
}

TEST_F(ChaosTest, SigkilledDaemonUnderLoadGivesErrnosAndThePathCanBeTakenAgain) {
    Clients clients(node_);
    ASSERT_TRUE(clients.ok());
    clients.spawn_all();
    ASSERT_TRUE(clients.wait_for_calls(kCallsBeforeStop, kProgressLimit)) << "under load";
    EXPECT_EQ(daemon_->stop(SIGKILL, 5s), -1);  // killed, not exited
    const int hung = clients.wait_all(10s);
    EXPECT_EQ(hung, 0) << "clients must get an errno, never hang";
    EXPECT_EQ(clients.daemon_gone(), static_cast<int>(kClients)) << clients.first_wrong();

    start();  // clears the dead daemon's mounts and takes the path
    expect_idle();
    EXPECT_EQ(random_traffic(node_, 2, 500), 0);
    expect_idle();
}

}  // namespace
}  // namespace gf::testing
