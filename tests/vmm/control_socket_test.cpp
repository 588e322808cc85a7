// The control socket through a real UNIX socket: the host's view of BAR1 read and written
// while the device serves, the counters, and a clear error for every bad request.
#include "vmm/control_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace gf::vmm {
namespace {

class ControlSocketTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("gf-control-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / "control.sock").string();
        device_ = ProxyDevice::create({}).value();
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string ask(std::string_view request) { return control_request(path_, request).value(); }

    std::filesystem::path dir_;
    std::string path_;
    std::unique_ptr<ProxyDevice> device_;
};

TEST_F(ControlSocketTest, ReadsAndWritesBar1AsTheHostSeesIt) {
    auto control = ControlSocket::listen(*device_, path_).value();
    EXPECT_EQ(ask("write-bar1 0x1000 efbeadde01"), "ok");
    std::byte bytes[5];
    ASSERT_TRUE(device_->device().read_bar1(0x1000, bytes));
    EXPECT_EQ(bytes[0], std::byte{0xEF});
    EXPECT_EQ(bytes[4], std::byte{0x01});
    EXPECT_EQ(ask("read-bar1 4096 6"), "ok efbeadde0100");
    EXPECT_EQ(ask("  read-bar1   0x1002  2  "), "ok adde");
    const std::string stats = ask("stats");
    ASSERT_EQ(stats.rfind("ok {", 0), 0u) << stats;
    auto j = nlohmann::json::parse(stats.substr(3));
    EXPECT_EQ(j["handles"], 0);
    EXPECT_EQ(j["unbacked_bar1_accesses"], 0);
}

TEST_F(ControlSocketTest, BadRequestsGetAnError) {
    auto control = ControlSocket::listen(*device_, path_).value();
    const uint64_t end = device_->device().bar1_size();
    const struct {
        std::string request;
        const char* says;
    } cases[] = {
        {"", "error empty request"},
        {"peek 0 4", "error unknown request 'peek'"},
        {"read-bar1 0", "error unknown request 'read-bar1'"},
        {"read-bar1 0 0", "error read-bar1 OFFSET LENGTH: LENGTH from 1 to 4096"},
        {"read-bar1 0 4097", "error read-bar1 OFFSET LENGTH"},
        {"read-bar1 zero 4", "error read-bar1 OFFSET LENGTH"},
        {"read-bar1 " + std::to_string(end - 2) + " 4", "error read-bar1: "},
        {"read-bar1 18446744073709551615 4", "error read-bar1: "},
        {"write-bar1 0 abc", "error write-bar1 OFFSET HEX"},
        {"write-bar1 0 zz", "error write-bar1 OFFSET HEX"},
        {"write-bar1 " + std::to_string(end) + " 00", "error write-bar1: "},
        {"stats now", "error unknown request 'stats'"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.request);
        const std::string reply = ask(c.request);
        EXPECT_EQ(reply.rfind(c.says, 0), 0u) << reply;
    }
    // A request longer than any valid one is refused, not buffered without end.
    const std::string huge(20000, 'a');
    EXPECT_EQ(ask(huge).rfind("error cannot read the request", 0), 0u);
}

TEST_F(ControlSocketTest, ThePathIsItsOwn) {
    { std::ofstream(path_) << "not a socket"; }
    auto refused = ControlSocket::listen(*device_, path_);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().value(), EEXIST);
    std::filesystem::remove(path_);
    {
        auto control = ControlSocket::listen(*device_, path_).value();
        struct stat st {};
        ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
    }
    EXPECT_FALSE(std::filesystem::exists(path_));  // removed when the server ends
    auto none = control_request(path_, "stats");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().value(), ENOENT);
    // A socket a dead server left behind is replaced.
    {
        UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
        ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    auto again = ControlSocket::listen(*device_, path_).value();
    EXPECT_EQ(ask("read-bar1 0 1"), "ok 00");
}

}  // namespace
}  // namespace gf::vmm
