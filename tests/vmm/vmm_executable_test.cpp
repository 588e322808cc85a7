// goldfish-vmm-device as a program: serving an inherited socket (--fd), the one-line log
// when a connection breaks, running a (fake) QEMU with the proxy device appended, and
// refusing bad options.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
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
