// goldfish-vmm-device as a program: serving an inherited socket (--fd), the one-line log
// when a connection breaks, running a (fake) QEMU with the proxy device appended, and
// refusing bad options.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "vmm/fake_qemu_peer.h"

extern char** environ;

namespace gf::vmm {
namespace {

using testing::FakeQemu;

std::string drain(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

// A child process with stdout and stderr captured and, optionally, one socket as fd 3.
class Child {
  public:
    Child(std::vector<std::string> args, int socket_for_fd3 = -1) {
        int out[2], err[2];
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe");
        }
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_adddup2(&actions, err[1], 2);
        if (socket_for_fd3 >= 0) {
            posix_spawn_file_actions_adddup2(&actions, socket_for_fd3, 3);
        }
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        if (::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
            throw std::runtime_error("posix_spawn " + args[0]);
        }
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        ::close(err[1]);
        out_ = UniqueFd(out[0]);
        err_ = UniqueFd(err[0]);
    }
    // Waits for the exit; the exit status, or -1 if it did not exit normally.
    int wait() {
        stdout_ = drain(out_.get());
        stderr_ = drain(err_.get());
        int status = 0;
        ::waitpid(pid_, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    pid_t pid() const { return pid_; }
    const std::string& out() const { return stdout_; }
    const std::string& err() const { return stderr_; }

  private:
    pid_t pid_ = -1;
    UniqueFd out_, err_;
    std::string stdout_, stderr_;
};

// A socketpair: ours (FakeQemu) and the child's (closed here once the child has it).
struct Pair {
    Pair() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
            throw std::runtime_error("socketpair");
        }
        qemu = std::make_unique<FakeQemu>(UniqueFd(fds[0]));
        device = UniqueFd(fds[1]);
    }
    std::unique_ptr<FakeQemu> qemu;
    UniqueFd device;
};

TEST(VmmExecutable, ServesAnInheritedSocketUntilQemuCloses) {
    Pair pair;
    Child child({GF_VMM_DEVICE_PATH, "--fd", "3", "--bar1-size", "512M"}, pair.device.get());
    pair.device.reset();
    EXPECT_EQ(pair.qemu->config_read(0x00, 4), 0xF153'607Du);
    pair.qemu->config_write(0x14, 0xFFFF'FFFF, 4);
    EXPECT_EQ(pair.qemu->config_read(0x14, 4), 0xE000'0000u);  // 512 MiB
    pair.qemu->close();
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(child.err(),
              "goldfish-vmm-device: connection closed by QEMU (3 messages, 0 BAR accesses)\n");
}

TEST(VmmExecutable, AMalformedMessageEndsItWithOneLogLine) {
    Pair pair;
    Child child({GF_VMM_DEVICE_PATH, "--fd", "3"}, pair.device.get());
    pair.device.reset();
    EXPECT_EQ(pair.qemu->config_read(0x00, 2), 0x607Du);
    pair.qemu->send_raw(testing::frame(9, 0, {}));
    EXPECT_EQ(child.wait(), 1);
    EXPECT_EQ(child.err(),
              "goldfish-vmm-device: ending connection: unknown command 9 (1 messages, 0 BAR "
              "accesses)\n");
}

TEST(VmmExecutable, RunsQemuWithTheProxyDeviceAppended) {
    Child child({GF_VMM_DEVICE_PATH, "--id", "gfas0", "--bar1-size", "1G", "--", GF_FAKE_QEMU_PATH,
                 "-nographic", "-m", "512M"});
    EXPECT_EQ(child.wait(), 0) << child.err();
    EXPECT_NE(child.out().find("fake-qemu: id gfas0 args -nographic -m 512M\n"), std::string::npos)
        << child.out();
    EXPECT_NE(
        child.out().find(
            "fake-qemu: 607d:f153 rev 1 class ff00 pin 2 bar0 0x1000 bar1 0x40000000 page 8192\n"),
        std::string::npos)
        << child.out();
}

std::filesystem::path temp_dir(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() /
               ("gf-vmm-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

bool process_exists(pid_t pid) {
    return ::kill(pid, 0) == 0 || errno != ESRCH;
}

TEST(VmmExecutable, ExitsWithQemusStatusAfterItsLastLine) {
    Child child({GF_VMM_DEVICE_PATH, "--", GF_FAKE_QEMU_PATH, "-fake-exit", "3"});
    EXPECT_EQ(child.wait(), 3);
    // The server is this process: its line is out before the exit, nothing runs after.
    EXPECT_NE(child.err().find("goldfish-vmm-device: connection closed by QEMU"), std::string::npos)
        << child.err();
}

TEST(VmmExecutable, SignalsGoToQemuAndNothingOutlivesTheLauncher) {
    const auto dir = temp_dir("signal");
    const std::string ready = (dir / "qemu.pid").string();
    Child child({GF_VMM_DEVICE_PATH, "--", GF_FAKE_QEMU_PATH, "-fake-wait-signal", ready});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!std::filesystem::exists(ready) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(std::filesystem::exists(ready));
    pid_t qemu = 0;
    std::ifstream(ready) >> qemu;
    ASSERT_GT(qemu, 0);
    ::kill(child.pid(), SIGTERM);
    EXPECT_EQ(child.wait(), 7);  // QEMU's own status: it got the signal and chose its exit
    EXPECT_NE(child.out().find("fake-qemu: got signal " + std::to_string(SIGTERM)),
              std::string::npos)
        << child.out();
    // Reaped by the launcher before it exited: not even a zombie is left.
    EXPECT_FALSE(process_exists(qemu));
    std::filesystem::remove_all(dir);
}

TEST(VmmExecutable, TheControlSocketFromTheCommandLine) {
    const auto dir = temp_dir("control");
    const std::string sock = (dir / "control.sock").string();
    Pair pair;
    Child server({GF_VMM_DEVICE_PATH, "--fd", "3", "--control", sock}, pair.device.get());
    pair.device.reset();
    EXPECT_EQ(pair.qemu->config_read(0x00, 2), 0x607Du);  // serving, so listening too
    {
        Child write({GF_VMM_DEVICE_PATH, "--control", sock, "--send", "write-bar1 0x10 a1b2"});
        EXPECT_EQ(write.wait(), 0) << write.err();
        EXPECT_EQ(write.out(), "");
    }
    {
        Child read({GF_VMM_DEVICE_PATH, "--control", sock, "--send", "read-bar1 0x10 3"});
        EXPECT_EQ(read.wait(), 0) << read.err();
        EXPECT_EQ(read.out(), "a1b200\n");
    }
    {
        Child bad({GF_VMM_DEVICE_PATH, "--control", sock, "--send", "poke"});
        EXPECT_EQ(bad.wait(), 1);
        EXPECT_EQ(bad.err().rfind("goldfish-vmm-device: unknown request 'poke'", 0), 0u)
            << bad.err();
    }
    pair.qemu->close();
    EXPECT_EQ(server.wait(), 0);
    EXPECT_FALSE(std::filesystem::exists(sock));
    {
        Child none({GF_VMM_DEVICE_PATH, "--control", sock, "--send", "stats"});
        EXPECT_EQ(none.wait(), 2);
        EXPECT_NE(none.err().find(sock + ": No such file or directory"), std::string::npos)
            << none.err();
    }
    std::filesystem::remove_all(dir);
}

TEST(VmmExecutable, FaultsAndTraceOptions) {
    const auto dir = temp_dir("faults");
    const std::string json = (dir / "trace.jsonl").string();
    {
        // --fault last before `--`, twice: each takes one spec, and QEMU keeps its arguments.
        Child child({GF_VMM_DEVICE_PATH, "--trace-json", json, "--fault", "gen-handle,times=1",
                     "--fault", "delay=1us", "--", GF_FAKE_QEMU_PATH, "-fake-exit", "0"});
        EXPECT_EQ(child.wait(), 0) << child.err();
        EXPECT_NE(child.err().find("goldfish-vmm-device: fault armed: gen-handle,times=1\n"
                                   "goldfish-vmm-device: fault armed: delay=1us\n"),
                  std::string::npos)
            << child.err();
        std::ifstream in(json);
        std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_NE(all.find("\"register\":\"GUEST_PAGE_SIZE\""), std::string::npos) << all;
    }
    const struct {
        std::vector<std::string> args;
        const char* says;
    } bad[] = {
        {{"--fault", "nope"}, "goldfish-vmm-device: --fault nope: no such fault"},
        {{"--fault", "delay=1h"}, "goldfish-vmm-device: --fault delay=1h: '1h' is not a duration"},
        {{"--trace-json", "/nonexistent/dir/t.json"},
         "goldfish-vmm-device: --trace-json /nonexistent/dir/t.json: No such file or directory"},
        {{"--send", "stats"}, "goldfish-vmm-device: --send needs --control PATH"},
        {{"--control", "/nonexistent/dir/c.sock"},
         "goldfish-vmm-device: --control /nonexistent/dir/c.sock: No such file or directory"},
    };
    for (const auto& c : bad) {
        std::vector<std::string> args = {GF_VMM_DEVICE_PATH};
        args.insert(args.end(), c.args.begin(), c.args.end());
        if (c.args[0] != "--send") {
            args.insert(args.end(), {"--", GF_FAKE_QEMU_PATH});
        }
        Child child(args);
        EXPECT_EQ(child.wait(), 2) << c.says;
        // One line, which starts with what it is about.
        EXPECT_EQ(child.err().rfind(c.says, 0), 0u) << child.err();
        EXPECT_EQ(child.err().find('\n'), child.err().size() - 1) << child.err();
    }
    std::filesystem::remove_all(dir);
}

TEST(VmmExecutable, RefusesBadOptions) {
    {
        Child child({GF_VMM_DEVICE_PATH, "--fd", "3", "--bar1-size", "3M"});
        EXPECT_EQ(child.wait(), 2);
        EXPECT_NE(child.err().find("cannot create the device"), std::string::npos) << child.err();
    }
    {
        Child child({GF_VMM_DEVICE_PATH, "--fd", "3", "--bar1-size", "4G"});
        EXPECT_EQ(child.wait(), 2);
    }
    {
        Child child({GF_VMM_DEVICE_PATH});
        EXPECT_EQ(child.wait(), 2);
        EXPECT_NE(child.err().find("give either --fd N or -- QEMU ARGS"), std::string::npos);
    }
    {
        Child child({GF_VMM_DEVICE_PATH, "--fd", "0"});  // stdin here is not a socket
        EXPECT_EQ(child.wait(), 2);
        EXPECT_NE(child.err().find("is not a socket"), std::string::npos);
    }
    {
        Child child({GF_VMM_DEVICE_PATH, "--", "/nonexistent/qemu"});
        EXPECT_NE(child.wait(), 0);
        EXPECT_NE(child.err().find("cannot run /nonexistent/qemu"), std::string::npos);
    }
}

}  // namespace
}  // namespace gf::vmm
