// Load with faults through the node: many client processes, some killed with
// SIGKILL at random moments; the daemon stopped with SIGTERM, or killed with
// SIGKILL, under that load. Afterwards nothing is left behind.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/session.h"
#include "node/daemon_fixture.h"
#include "node/traffic.h"

namespace gf::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kClients = 32;
constexpr auto kReleaseLimit = 20s;

// Client processes running random_traffic() until told to stop or the daemon goes.
class Clients {
  public:
    explicit Clients(std::string node) : node_(std::move(node)) {}
    ~Clients() { kill_all(); }

    void spawn() {
        uint64_t seed = next_seed_++;
        pid_t pid = ::fork();
        if (pid == 0) {
            ::_exit(random_traffic(node_, seed, -1));
        }
        live_.push_back(pid);
    }

    // SIGKILLs a random client (mid-call, most likely) and reaps it.
    void kill_one(std::mt19937& rng) {
        size_t k = rng() % live_.size();
        ::kill(live_[k], SIGKILL);
        ::waitpid(live_[k], nullptr, 0);
        live_.erase(live_.begin() + static_cast<long>(k));
        ++killed_;
    }

    // Reaps the clients that exited on their own: how many ended because the
    // daemon went away (kDaemonGone), and how many for anything else (a wrong answer).
    std::pair<int, int> reap_exited() {
        int gone = 0, other = 0;
        for (size_t i = 0; i < live_.size();) {
            int status = 0;
            if (::waitpid(live_[i], &status, WNOHANG) == live_[i]) {
                bool daemon_gone = WIFEXITED(status) && WEXITSTATUS(status) == kDaemonGone;
                gone += daemon_gone;
                other += !daemon_gone;
                live_.erase(live_.begin() + static_cast<long>(i));
            } else {
                ++i;
            }
        }
        return {gone, other};
    }

    // Waits (bounded) for every client to exit on its own; how many exited
    // with kDaemonGone, and how many had to be killed (hung).
    std::pair<int, int> wait_all(std::chrono::milliseconds limit) {
        int gone = 0;
        auto deadline = Clock::now() + limit;
        while (!live_.empty() && Clock::now() < deadline) {
            gone += reap_exited().first;
            std::this_thread::sleep_for(5ms);
        }
        int hung = static_cast<int>(live_.size());
        kill_all();
        return {gone, hung};
    }

    void kill_all() {
        for (pid_t pid : live_) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        killed_ += static_cast<int>(live_.size());
        live_.clear();
    }

    int killed() const { return killed_; }

  private:
    std::string node_;
    std::vector<pid_t> live_;
    uint64_t next_seed_ = 7000;
    int killed_ = 0;
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

TEST_F(ChaosTest, ClientsKilledAtRandomMomentsLeaveNothingBehind) {
    std::mt19937 rng(42);
    Clients clients(node_);
    for (int i = 0; i < kClients; ++i) {
        clients.spawn();
    }
    // For a while: kill a random client every few milliseconds and replace it.
    auto end = Clock::now() + 3s;
    int wrong = 0;
    while (Clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 20));
        clients.kill_one(rng);
        wrong += clients.reap_exited().second;
        clients.spawn();
    }
    EXPECT_EQ(wrong, 0) << "a client saw a wrong answer";
    auto busy = read_status(state_, node_);
    ASSERT_TRUE(busy);
    EXPECT_GT(busy->open_files, 0u);
    clients.kill_all();
    EXPECT_GT(clients.killed(), kClients) << "clients were killed while busy, many times over";
    RecordProperty("clients_killed", clients.killed());
    expect_idle();
}

TEST_F(ChaosTest, SigtermUnderLoadStopsCleanlyAndThePathServesAgain) {
    Clients clients(node_);
    for (int i = 0; i < kClients; ++i) {
        clients.spawn();
    }
    std::this_thread::sleep_for(500ms);
    std::chrono::milliseconds took{};
    EXPECT_EQ(daemon_->stop(SIGTERM, 5s, &took), 0) << daemon_->output();
    EXPECT_LT(took, 2s);
    auto [gone, hung] = clients.wait_all(10s);
    EXPECT_EQ(hung, 0) << "clients must get an errno, never hang";
    EXPECT_EQ(gone, kClients) << "every client ended on the daemon's departure";

    start();
    expect_idle();
    EXPECT_EQ(random_traffic(node_, 1, 500), 0);
    expect_idle();
}

TEST_F(ChaosTest, SigkilledDaemonUnderLoadGivesErrnosAndThePathCanBeTakenAgain) {
    Clients clients(node_);
    for (int i = 0; i < kClients; ++i) {
        clients.spawn();
    }
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(daemon_->stop(SIGKILL, 5s), -1);  // killed, not exited
    auto [gone, hung] = clients.wait_all(10s);
    EXPECT_EQ(hung, 0) << "clients must get an errno, never hang";
    EXPECT_EQ(gone, kClients);

    start();  // clears the dead daemon's mounts and takes the path
    expect_idle();
    EXPECT_EQ(random_traffic(node_, 2, 500), 0);
    expect_idle();
}

}  // namespace
}  // namespace gf::testing
