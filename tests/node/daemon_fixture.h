// Starts goldfish-asd on a node path of its own in a temporary directory and
// always takes it down again, even when the test fails.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "node/status.h"

namespace gf::testing {

// A running goldfish-asd child process.
class Daemon {
  public:
    // Starts the daemon and waits (bounded) for its "serving" line.
    // Extra arguments are appended to --node/--state-dir.
    static std::optional<Daemon> start(const std::string& node, const std::string& state_dir,
                                       const std::vector<std::string>& extra = {},
                                       std::string* output = nullptr);
    Daemon(Daemon&& other) noexcept;
    Daemon& operator=(Daemon&& other) noexcept;
    ~Daemon();

    pid_t pid() const { return pid_; }
    const std::string& ready_line() const { return ready_line_; }
    // Everything the daemon printed (complete once it has stopped).
    const std::string& output() const { return output_; }
    // Sends `sig` and waits up to `limit` for the exit; the exit status, or -1
    // if it did not exit in time (it is then killed).
    int stop(int sig, std::chrono::milliseconds limit, std::chrono::milliseconds* took = nullptr);

  private:
    Daemon(pid_t pid, int fd, std::string output);
    pid_t pid_ = -1;
    int fd_ = -1;  // the read end of the daemon's stdout and stderr
    std::string ready_line_;
    std::string output_;
};

// Runs a program to completion (bounded); its exit status and output.
struct RunResult {
    int status = -1;  // exit code, or -1 if killed or timed out
    std::string output;
};
RunResult run_program(const std::vector<std::string>& argv, std::chrono::seconds limit,
                      std::optional<uid_t> as_user = std::nullopt);

// A temporary directory removed (after unmounting anything left in it) at scope exit.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// Reads the status document of the daemon serving `node`.
std::optional<node::Status> read_status(const std::string& state_dir, const std::string& node);

// Polls the status until `done` holds or `limit` passes (FUSE release is
// asynchronous: it runs after close() returns). The last status read.
std::optional<node::Status> wait_for_status(const std::string& state_dir, const std::string& node,
                                            const std::function<bool(const node::Status&)>& done,
                                            std::chrono::milliseconds limit);

// Polls `done` every millisecond until it holds or `limit` passes; whether it held. How a
// test waits for something to happen: never a sleep and then an assertion.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit);

// True when nothing of a client is left: no open file, handle, block, claim or context.
bool is_idle(const node::Status& s);

// A test with a daemon of its own: the node and state directory in a temporary directory,
// the daemon started before each test and stopped after it, which must exit 0 (under the
// sanitizers that also means no leak and no error report).
class ServedNodeTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(::geteuid(), 0u) << "node tests mount FUSE: run them as root";
        ASSERT_FALSE(tmp_.path().empty());
        node_ = tmp_.path() + "/goldfish_address_space";
        state_ = tmp_.path() + "/state";
        std::string out;
        daemon_ = Daemon::start(node_, state_, {}, &out);
        ASSERT_TRUE(daemon_) << "daemon did not come up: " << out;
    }
    void TearDown() override {
        if (daemon_ && daemon_->pid() > 0) {
            EXPECT_EQ(daemon_->stop(SIGTERM, std::chrono::seconds(5)), 0) << daemon_->output();
        }
    }

    TempDir tmp_;  // destroyed last: unmounts leftovers after the daemon is down
    std::string node_, state_;
    std::optional<Daemon> daemon_;
};

std::string daemon_path();
std::string tool_path();
std::string conformance_path();

}  // namespace gf::testing
