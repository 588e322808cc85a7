// The node through a real FUSE mount and real ioctl(2) calls, against the
// goldfish-asd daemon started on a node path of the test's own.
#include <fcntl.h>
#include <linux/goldfish_address_space.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/host_memory.h"
#include "client/session.h"
#include "node/daemon_fixture.h"
#include "node/node_lock.h"
#include "node/traffic.h"

namespace gf::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kReleaseLimit = 10s;  // bound on waiting for FUSE's asynchronous release

class NodeTest : public ServedNodeTest {
  protected:
    std::optional<node::Status> wait_idle() {
        return wait_for_status(state_, node_, is_idle, kReleaseLimit);
    }
};

TEST_F(NodeTest, ReadyLineNamesNodeDeviceAndBar1) {
    const std::string& line = daemon_->ready_line();
    EXPECT_NE(line.find(node_), std::string::npos) << line;
    EXPECT_NE(line.find("607d:f153"), std::string::npos) << line;
    EXPECT_NE(line.find("BAR1"), std::string::npos) << line;
}

TEST_F(NodeTest, CConformanceProgramPasses) {
    RunResult r = run_program({conformance_path(), node_}, 60s);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output.find("FAIL"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(" 0 failed"), std::string::npos) << r.output;
    auto s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
}

TEST_F(NodeTest, ToolSelftestPasses) {
    RunResult r = run_program({tool_path(), "--node", node_, "selftest"}, 60s);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("PASS: type 6: CLAIM_SHARED"), std::string::npos) << r.output;
}

TEST_F(NodeTest, EveryOpenIsItsOwnHandleAndReleaseEndsIt) {
    {
        auto a = client::Session::open(node_);
        auto b = client::Session::open(node_);
        ASSERT_TRUE(a && b);
        // Raw ioctls, left for release to clean up.
        auto block = a->allocate_block(4096);
        ASSERT_TRUE(block);
        ASSERT_TRUE(b->claim_shared(block->offset, block->size));  // claims are per file
        auto s = read_status(state_, node_);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->open_files, 2u);
        EXPECT_EQ(s->handles, 2u);
        EXPECT_EQ(s->blocks, 1u);
        EXPECT_EQ(s->block_bytes, 8192u);  // 4096 plus the device's spare page
        EXPECT_EQ(s->claims, 1u);
    }
    auto s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
    EXPECT_EQ(s->area_free_bytes, s->bar1_size);
}

TEST_F(NodeTest, ErrnoOfReadWriteAndUnknownIoctl) {
    int fd = ::open(node_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char buf[8];
    EXPECT_EQ(::read(fd, buf, sizeof buf), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(::write(fd, buf, sizeof buf), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(::ioctl(fd, _IO('G', 99)), -1);
    EXPECT_EQ(errno, ENOTTY);
    uint64_t offset = 12345;
    EXPECT_EQ(::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &offset), -1);
    EXPECT_EQ(errno, ENXIO);
    ::close(fd);
}

// Real clients fill in only `metadata` of their create ping (the rest is stack garbage): as
// on the C driver it works, and a command whose offset wraps past 2^64 reaches the device,
// which refuses it (metadata ~0) and holds nothing for it.
TEST_F(NodeTest, PingOffsetsWrapAsOnTheCDriverAndTheDeviceRefusesWhatIsOutsideBar1) {
    constexpr uint64_t kAllocate = 1, kUnallocate = 2, kRefused = ~uint64_t{0};
    for (const uint64_t type : {5u, 6u}) {
        SCOPED_TRACE(type);
        const int fd = ::open(node_.c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        goldfish_address_space_ping create;
        std::memset(&create, 0xff, sizeof create);
        create.metadata = type;
        ASSERT_EQ(::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &create), 0)
            << std::strerror(errno);
        EXPECT_EQ(create.metadata, 0u);

        goldfish_address_space_allocate_block block{.size = 4096, .offset = 0, .phys_addr = 0};
        ASSERT_EQ(::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &block), 0);
        const uint64_t bar1 = block.phys_addr - block.offset;
        // Wrapping to just below BAR1, to 0, and to the block's offset taken as an address.
        for (const uint64_t offset :
             {~uint64_t{0}, uint64_t{0} - bar1, uint64_t{block.offset - bar1}}) {
            for (const uint64_t command : {kAllocate, kUnallocate}) {
                if (type == 6 && command == kAllocate) {
                    continue;  // type 6 picks the slot itself: no address to refuse
                }
                goldfish_address_space_ping ping{};
                ping.offset = offset;
                ping.size = block.size;
                ping.metadata = command;
                ping.version = sizeof ping;
                ASSERT_EQ(::ioctl(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &ping), 0)
                    << std::strerror(errno);
                EXPECT_EQ(ping.metadata, kRefused) << std::hex << offset << " " << command;
                EXPECT_EQ(ping.offset, offset + bar1) << "the wrapped address comes back";
            }
        }
        auto s = read_status(state_, node_);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->contexts[static_cast<uint32_t>(type)], 1u);
        EXPECT_EQ(s->blocks, 1u);
        EXPECT_EQ(s->area_free_bytes, s->bar1_size - block.size) << "only the block is held";
        ::close(fd);
        // FUSE releases after close() returns: the next round starts from nothing held.
        s = wait_idle();
        ASSERT_TRUE(s);
        ASSERT_TRUE(is_idle(*s)) << node::to_json(*s);
    }
    auto s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
    EXPECT_EQ(s->area_free_bytes, s->bar1_size);
}

TEST_F(NodeTest, StatusFileAndToolAgree) {
    auto session = client::Session::open(node_);
    ASSERT_TRUE(session);
    ASSERT_TRUE(session->create_context(hw::ContextType::HostMemoryAllocator));
    std::ifstream in(node::NodeLock::mount_dir_for(state_, node_) + "/status");
    std::stringstream file;
    file << in.rdbuf();
    for (const char* key : {"\"open_files\"", "\"handles\"", "\"blocks\"", "\"block_bytes\"",
                            "\"claims\"", "\"contexts\"", "\"area_free_bytes\""}) {
        EXPECT_NE(file.str().find(key), std::string::npos) << key;
    }
    auto s = node::status_from_json(file.str());
    ASSERT_TRUE(s);
    EXPECT_EQ(s->contexts[5], 1u);
    EXPECT_EQ(s->open_files, 1u);
    // The emulated device has an asg section, with the device's defaults.
    ASSERT_TRUE(s->asg) << file.str();
    EXPECT_EQ(s->asg->sink, "echo");
    EXPECT_EQ(s->asg->buffer_size, 1u << 20);
    EXPECT_EQ(s->asg->write_step, 256u << 10);
    EXPECT_EQ(s->asg->blocks, 0u);
    EXPECT_EQ(s->asg->bytes_in, 0u);

    RunResult json =
        run_program({tool_path(), "--node", node_, "--state-dir", state_, "status", "--json"}, 20s);
    EXPECT_EQ(json.status, 0) << json.output;
    EXPECT_EQ(json.output, file.str());
    RunResult text =
        run_program({tool_path(), "--node", node_, "--state-dir", state_, "status"}, 20s);
    EXPECT_EQ(text.status, 0) << text.output;
    EXPECT_NE(text.output.find("open files: 1"), std::string::npos) << text.output;
    EXPECT_NE(text.output.find("type 5: 1"), std::string::npos) << text.output;
    EXPECT_NE(text.output.find("ASG sink: echo"), std::string::npos) << text.output;
    // The global options work after the command too.
    RunResult after =
        run_program({tool_path(), "status", "--node", node_, "--state-dir", state_}, 20s);
    EXPECT_EQ(after.status, 0) << after.output;
    EXPECT_EQ(after.output, text.output);
}

TEST_F(NodeTest, ToolAllocPingAndHostAlloc) {
    RunResult alloc = run_program({tool_path(), "--node", node_, "alloc", "1"}, 20s);
    EXPECT_EQ(alloc.status, 0) << alloc.output;
    EXPECT_NE(alloc.output.find("offset 0x3fffff000 size 4096"), std::string::npos) << alloc.output;
    RunResult ping = run_program(
        {tool_path(), "--node", node_, "ping", "--type", "6", "--metadata", "1", "--size", "100"},
        20s);
    EXPECT_EQ(ping.status, 0) << ping.output;
    EXPECT_NE(ping.output.find("reply: offset 0x"), std::string::npos) << ping.output;
    EXPECT_NE(ping.output.find("size 4096 metadata 0x0"), std::string::npos) << ping.output;
    for (const char* flag : {"", "--shared-slots"}) {
        std::vector<std::string> argv = {tool_path(), "--node", node_, "host-alloc", "64K"};
        if (*flag) {
            argv.push_back(flag);
        }
        RunResult host = run_program(argv, 20s);
        EXPECT_EQ(host.status, 0) << host.output;
        EXPECT_NE(host.output.find("offset 0x"), std::string::npos) << host.output;
    }
    auto s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
}

// A child that takes every kind of resource, reports ready, and waits to be killed.
pid_t spawn_resource_holder(const std::string& node, int ready_fd) {
    pid_t pid = ::fork();
    if (pid != 0) {
        return pid;
    }
    auto five = client::HostMemoryAllocator::open(node, false);
    auto six = client::HostMemoryAllocator::open(node, true);
    auto plain = client::Session::open(node);
    if (!five || !six || !plain) {
        ::_exit(1);
    }
    auto a = five->allocate(8192);
    auto b = six->allocate(4096);
    auto c = plain->allocate(3 * 4096);
    if (!a || !b || !c) {
        ::_exit(1);
    }
    auto claim = plain->claim(c->offset(), 4096);  // held until the kill
    if (!claim) {
        ::_exit(1);
    }
    char ok = 1;
    (void)!::write(ready_fd, &ok, 1);
    while (true) {
        ::pause();
    }
}

TEST_F(NodeTest, ReleaseCleansUpAfterSigkill) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::vector<pid_t> children;
    for (int i = 0; i < 4; ++i) {
        children.push_back(spawn_resource_holder(node_, fds[1]));
    }
    for (size_t i = 0; i < children.size(); ++i) {
        char ok = 0;
        ASSERT_EQ(::read(fds[0], &ok, 1), 1);
    }
    auto busy = read_status(state_, node_);
    ASSERT_TRUE(busy);
    EXPECT_EQ(busy->open_files, 12u);
    EXPECT_EQ(busy->blocks, 8u);  // a type-5 block and a plain block per child
    EXPECT_EQ(busy->claims, 8u);  // a type-6 slot claim and a plain claim per child
    EXPECT_EQ(busy->contexts[5], 4u);
    EXPECT_EQ(busy->contexts[6], 4u);
    for (pid_t pid : children) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    ::close(fds[0]);
    ::close(fds[1]);
    auto s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
}

TEST_F(NodeTest, ManyProcessesLeaveNoLeak) {
    constexpr int kProcesses = 16;
    constexpr int kIoctls = 2500;
    std::vector<pid_t> children;
    for (int i = 0; i < kProcesses; ++i) {
        pid_t pid = ::fork();
        if (pid == 0) {
            ::_exit(random_traffic(node_, 1000 + i, kIoctls));
        }
        children.push_back(pid);
    }
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    }
    auto s = wait_idle();
    ASSERT_TRUE(s);
    EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
    // The device keeps at most one empty 64 MiB shared-slots slab by design.
    EXPECT_GE(s->area_free_bytes, s->bar1_size - (64ull << 20));
}

TEST_F(NodeTest, SecondDaemonOnTheSamePathIsRefused) {
    RunResult second = run_program({daemon_path(), "--node", node_, "--state-dir", state_}, 20s);
    EXPECT_NE(second.status, 0);
    EXPECT_NE(second.output.find("EBUSY"), std::string::npos) << second.output;
    EXPECT_EQ(std::count(second.output.begin(), second.output.end(), '\n'), 1) << second.output;
    // The first one is unaffected.
    EXPECT_TRUE(client::Session::open(node_));
}

TEST_F(NodeTest, StopsCleanlyUnderLoadAndThePathCanBeServedAgain) {
    constexpr int kClients = 4;
    std::atomic<bool> stop{false};
    std::atomic<int> errors_seen{0}, pinging{0}, not_opened{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back([&] {
            auto session = client::Session::open(node_);
            if (!session) {
                ++not_opened;
                return;
            }
            for (int pings = 0; !stop; ++pings) {
                if (!session->ping(5)) {  // ENODEV or ENOTCONN once the daemon goes
                    ++errors_seen;
                    return;
                }
                pinging += pings == 10;
            }
        });
    }
    // Under load: every client has pinged ten times before the daemon is told to stop (not
    // an ASSERT: the threads end only once the daemon has gone).
    EXPECT_TRUE(eventually([&] { return pinging + not_opened == kClients; }, 30s) &&
                not_opened == 0)
        << pinging << " clients pinging, " << not_opened << " could not open the node";
    std::chrono::milliseconds took{};
    EXPECT_EQ(daemon_->stop(SIGTERM, 5s, &took), 0) << daemon_->output();
    EXPECT_LT(took, 2s);
    stop = true;
    for (std::thread& t : clients) {
        t.join();  // no client hangs: each got an errno
    }
    EXPECT_EQ(errors_seen, kClients);
    struct stat st;
    EXPECT_NE(::stat(node_.c_str(), &st), 0) << "the node was not taken away";

    std::string out;
    auto again = Daemon::start(node_, state_, {}, &out);
    ASSERT_TRUE(again) << out;
    EXPECT_TRUE(client::Session::open(node_));
}

TEST_F(NodeTest, SigkilledDaemonLeavesErrorsNotHangsAndThePathCanBeTakenAgain) {
    auto session = client::Session::open(node_);
    ASSERT_TRUE(session);
    EXPECT_EQ(daemon_->stop(SIGKILL, 5s), -1 /* killed, not exited */);
    auto reply = session->ping(5);
    EXPECT_FALSE(reply);
    std::string out;
    auto again = Daemon::start(node_, state_, {}, &out);
    ASSERT_TRUE(again) << out;
    auto fresh = client::Session::open(node_);
    ASSERT_TRUE(fresh);
    EXPECT_TRUE(fresh->create_context(hw::ContextType::HostMemoryAllocator));
}

TEST(NodeDaemon, ModeAndGroupAreEnforcedByTheKernel) {
    TempDir tmp;
    ASSERT_TRUE(::chmod(tmp.path().c_str(), 0755) == 0);
    std::string node = tmp.path() + "/node", state = tmp.path() + "/state";
    auto daemon = Daemon::start(node, state, {"--mode", "0600"});
    ASSERT_TRUE(daemon);
    struct stat st;
    ASSERT_EQ(::stat(node.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    // `nobody` is refused by the kernel's permission check.
    RunResult denied = run_program({tool_path(), "--node", node, "alloc", "1"}, 20s, 65534);
    EXPECT_NE(denied.status, 0);
    EXPECT_NE(denied.output.find("Permission denied"), std::string::npos) << denied.output;
    daemon.reset();

    auto open_daemon = Daemon::start(node, state, {"--mode", "0666", "--group", "65534"});
    ASSERT_TRUE(open_daemon);
    ASSERT_EQ(::stat(node.c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, 65534u);
    RunResult allowed = run_program({tool_path(), "--node", node, "alloc", "1"}, 20s, 65534);
    EXPECT_EQ(allowed.status, 0) << allowed.output;
}

TEST(NodeDaemon, StartupErrorsAreOneLineAndNonZero) {
    TempDir tmp;
    std::string node = tmp.path() + "/node", state = tmp.path() + "/state";
    RunResult bad = run_program({daemon_path(), "--node", node, "--bogus"}, 20s);
    EXPECT_NE(bad.status, 0);
    EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
    for (const char* mode : {"999", "7777", "4755"}) {
        RunResult bad_mode = run_program({daemon_path(), "--node", node, "--mode", mode}, 20s);
        EXPECT_NE(bad_mode.status, 0) << mode;
        EXPECT_EQ(std::count(bad_mode.output.begin(), bad_mode.output.end(), '\n'), 1)
            << bad_mode.output;
        EXPECT_NE(bad_mode.output.find("--mode"), std::string::npos) << bad_mode.output;
    }
    RunResult not_root =
        run_program({daemon_path(), "--node", node, "--state-dir", state}, 20s, 65534);
    EXPECT_NE(not_root.status, 0);
    EXPECT_NE(not_root.output.find("root"), std::string::npos) << not_root.output;
    EXPECT_EQ(std::count(not_root.output.begin(), not_root.output.end(), '\n'), 1)
        << not_root.output;
    // --pci on a machine without the device (an empty sysfs tree) and with a bad address.
    std::filesystem::create_directories(tmp.path() + "/bus/pci/devices");
    RunResult no_device = run_program({daemon_path(), "--node", node, "--state-dir", state, "--pci",
                                       "auto", "--sysfs-root", tmp.path()},
                                      20s);
    EXPECT_NE(no_device.status, 0);
    EXPECT_NE(no_device.output.find("no goldfish address space device"), std::string::npos)
        << no_device.output;
    EXPECT_EQ(std::count(no_device.output.begin(), no_device.output.end(), '\n'), 1)
        << no_device.output;
    RunResult bad_bdf =
        run_program({daemon_path(), "--node", node, "--state-dir", state, "--pci", "../../x"}, 20s);
    EXPECT_NE(bad_bdf.status, 0);
    EXPECT_NE(bad_bdf.output.find("invalid PCI address"), std::string::npos) << bad_bdf.output;
    RunResult no_dir = run_program({daemon_path(), "--node", tmp.path() + "/missing/node"}, 20s);
    EXPECT_NE(no_dir.status, 0);
    EXPECT_EQ(std::count(no_dir.output.begin(), no_dir.output.end(), '\n'), 1) << no_dir.output;
}

// The ASG options: what the device would refuse is one line naming the option, before
// anything is made; with --pci they are refused (a real device's host side is not ours).
TEST(NodeDaemon, AsgOptionErrorsNameTheOption) {
    TempDir tmp;
    std::string node = tmp.path() + "/node", state = tmp.path() + "/state";
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"--asg-sink", "renderer"}, "--asg-sink renderer: no such sink (echo or discard)"},
        {{"--asg-write-step", "0"}, "--asg-write-step 0: must be at least 1"},
        {{"--asg-buffer-size", "0"}, "--asg-buffer-size 0: must be 1 to 16777216"},
        {{"--asg-buffer-size", "33554432", "--asg-write-step", "4096"},
         "--asg-buffer-size 33554432: must be 1 to 16777216"},
        {{"--asg-buffer-size", "8589934592"}, "--asg-buffer-size 8589934592: more than 16 MiB"},
        {{"--asg-write-step", "300000"},
         "--asg-buffer-size 1048576: not a multiple of --asg-write-step 300000"},
        {{"--asg-buffer-size", "lots"}, "--asg-buffer-size lots: not a number of bytes"},
        {{"--asg-write-step", "-4096"}, "--asg-write-step -4096: not a number of bytes"},
        {{"--asg-write-step", "99999999999999999999"},
         "--asg-write-step 99999999999999999999: not a number of bytes"},
        {{"--pci", "auto", "--asg-sink", "discard"},
         "--asg-sink configures the emulated device: not with --pci"},
        {{"--asg-write-step", "4096", "--pci", "auto"},
         "--asg-write-step configures the emulated device: not with --pci"},
    };
    for (const Case& c : cases) {
        std::vector<std::string> argv = {daemon_path(), "--node", node, "--state-dir", state};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        RunResult r = run_program(argv, 20s);
        EXPECT_NE(r.status, 0) << c.message;
        EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
        EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
        EXPECT_FALSE(std::filesystem::exists(state)) << c.message << ": nothing is made";
    }
}

TEST(NodeDaemon, AsgOptionsReachTheDeviceAndTheStatus) {
    TempDir tmp;
    std::string node = tmp.path() + "/node", state = tmp.path() + "/state", out;
    auto daemon = Daemon::start(
        node, state,
        {"--asg-sink", "discard", "--asg-buffer-size", "49152", "--asg-write-step", "16384"}, &out);
    ASSERT_TRUE(daemon) << out;
    {
        auto session = client::Session::open(node);
        ASSERT_TRUE(session);
        ASSERT_TRUE(session->create_context(hw::ContextType::Graphics));
        auto buffer = session->ping(1);  // GET_BUFFER: the configured size
        ASSERT_TRUE(buffer);
        EXPECT_EQ(buffer->size, 49152u);
        auto s = read_status(state, node);
        ASSERT_TRUE(s);
        ASSERT_TRUE(s->asg);
        EXPECT_EQ(s->asg->sink, "discard");
        EXPECT_EQ(s->asg->buffer_size, 49152u);
        EXPECT_EQ(s->asg->write_step, 16384u);
        EXPECT_EQ(s->asg->blocks, 2u);  // a ring block and a buffer block
        EXPECT_EQ(s->contexts[0], 1u);
    }
    EXPECT_EQ(daemon->stop(SIGTERM, std::chrono::seconds(5)), 0) << daemon->output();
}

// What a failed start could leave behind: the mounts under `root` (from /proc/self/mounts)
// and every entry of the tree below it, each with its type and a symlink's target.
std::vector<std::string> traces_under(const std::string& root) {
    std::vector<std::string> out;
    std::ifstream mounts("/proc/self/mounts");
    for (std::string line; std::getline(mounts, line);) {
        if (line.find(root) != std::string::npos) {
            out.push_back("mount " + line);
        }
    }
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        const auto type = it->symlink_status(ec).type();
        std::string entry = it->path().string() + " " + std::to_string(static_cast<int>(type));
        if (type == std::filesystem::file_type::symlink) {
            entry += " -> " + std::filesystem::read_symlink(it->path(), ec).string();
        }
        out.push_back(entry);
    }
    if (ec) {
        out.push_back("unreadable: " + ec.message());  // e.g. a dead FUSE mount (ENOTCONN)
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Every start-up error, before or after the FUSE mount, leaves the mount table and the
// state and node directories as they were: the daemon undoes what it made. A path that is
// not this daemon's own stale node (a directory, a file, a symlink to anything else) is
// refused with EEXIST and left alone.
TEST(NodeDaemon, FailedStartsLeaveNothingBehind) {
    TempDir tmp;
    const std::string root = tmp.path();
    const std::string state = root + "/state", node = root + "/node";
    ASSERT_TRUE(std::filesystem::create_directory(state));
    std::ofstream(state + "/someone-else's") << "kept\n";  // the state dir is shared
    ASSERT_TRUE(std::filesystem::create_directory(root + "/a-directory"));
    std::ofstream(root + "/a-file") << "not a node\n";
    std::filesystem::create_symlink("/etc/hostname", root + "/foreign-link");
    // A node link of a daemon with another state directory is not ours to replace either.
    std::filesystem::create_symlink(root + "/other-state/x.mnt/goldfish_address_space",
                                    root + "/other-daemons-link");
    std::filesystem::create_directories(root + "/sysfs/bus/pci/devices");  // no device

    struct Case {
        std::string what;
        std::vector<std::string> args;
        std::string expected;  // in the one line of output
    };
    const std::vector<Case> cases = {
        {"existing directory", {"--node", root + "/a-directory"}, "EEXIST"},
        {"existing file", {"--node", root + "/a-file"}, "EEXIST"},
        {"foreign symlink", {"--node", root + "/foreign-link"}, "EEXIST"},
        {"another daemon's symlink", {"--node", root + "/other-daemons-link"}, "EEXIST"},
        {"no machine for this BAR1 size", {"--node", node, "--bar1-size", "3"}, "machine"},
        {"no PCI device",
         {"--node", node, "--pci", "auto", "--sysfs-root", root + "/sysfs"},
         "no goldfish address space device"},
        {"bad --group", {"--node", node, "--group", "no-such-group-here"}, "--group"},
        {"bad --threads", {"--node", node, "--threads", "0"}, "--threads"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.what);
        const std::vector<std::string> before = traces_under(root);
        std::vector<std::string> argv = {daemon_path(), "--state-dir", state};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        RunResult r = run_program(argv, 20s);
        EXPECT_EQ(r.status, 1) << r.output;
        EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
        EXPECT_NE(r.output.find(c.expected), std::string::npos) << r.output;
        // The daemon has exited: its unmount is done. Bounded all the same.
        std::vector<std::string> after = traces_under(root);
        for (int i = 0; i < 50 && after != before; ++i) {
            std::this_thread::sleep_for(100ms);
            after = traces_under(root);
        }
        EXPECT_EQ(after, before) << r.output;
    }

    // A state directory the failed start had to make goes again too.
    const std::string fresh_state = root + "/fresh-state";
    const std::vector<std::string> before = traces_under(root);
    RunResult r = run_program(
        {daemon_path(), "--state-dir", fresh_state, "--node", root + "/a-directory"}, 20s);
    EXPECT_NE(r.output.find("EEXIST"), std::string::npos) << r.output;
    EXPECT_EQ(traces_under(root), before) << r.output;
    EXPECT_FALSE(std::filesystem::exists(fresh_state));

    // The refused paths are untouched, and a good start on the same state dir still works.
    EXPECT_TRUE(std::filesystem::is_directory(root + "/a-directory"));
    EXPECT_EQ(std::filesystem::read_symlink(root + "/foreign-link"), "/etc/hostname");
    auto daemon = Daemon::start(node, state);
    ASSERT_TRUE(daemon);
    EXPECT_EQ(daemon->stop(SIGTERM, 5s), 0) << daemon->output();
}

// A start that fails after the mount has its mount, lock and FUSE directory removed, even
// when something else is mounted on the node path (EBUSY: not ours to detach).
TEST(NodeDaemon, AFailedStartOverAForeignMountLeavesItMounted) {
    TempDir tmp;
    const std::string root = tmp.path();
    const std::string state = root + "/state", node = root + "/node";
    ASSERT_TRUE(std::filesystem::create_directory(state));
    std::ofstream(node) << "";
    std::ofstream(root + "/source") << "";
    ASSERT_EQ(::mount((root + "/source").c_str(), node.c_str(), nullptr, MS_BIND, nullptr), 0)
        << std::strerror(errno);
    const std::vector<std::string> before = traces_under(root);
    RunResult r = run_program({daemon_path(), "--state-dir", state, "--node", node}, 20s);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_NE(r.output.find("EBUSY"), std::string::npos) << r.output;
    EXPECT_EQ(traces_under(root), before) << r.output;
    EXPECT_TRUE(node::is_mount_point(node)) << "the foreign mount stays";
    // TempDir unmounts it at scope exit, whatever happened above.
}

// A state directory that cannot hold the lock and the FUSE directory says so, naming
// --state-dir, and does not claim that another daemon serves the path.
TEST(NodeDaemon, UnusableStateDirectoryHasItsOwnMessage) {
    TempDir tmp;
    const std::string node = tmp.path() + "/node";
    std::ofstream(tmp.path() + "/a-file") << "";
    for (const std::string& state :
         {std::string("/proc"), tmp.path() + "/a-file", tmp.path() + "/missing/state"}) {
        SCOPED_TRACE(state);
        RunResult r = run_program({daemon_path(), "--node", node, "--state-dir", state}, 20s);
        EXPECT_EQ(r.status, 1) << r.output;
        EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
        EXPECT_NE(r.output.find("--state-dir " + state + ": "), std::string::npos) << r.output;
        EXPECT_EQ(r.output.find("already served"), std::string::npos) << r.output;
    }
    EXPECT_FALSE(std::filesystem::exists(node));
    EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/missing"));
}

}  // namespace
}  // namespace gf::testing
