// The pid lock file on its own: one holder per path, the holder's pid for the
// loser, release by unlinking, and no symlink followed.
#include "base/pid_lock_file.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace gf {
namespace {

class PidLockFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = (std::filesystem::temp_directory_path() / "pid-lock-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir = pattern;
        path = dir + "/x.lock";
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    static std::string contents(const std::string& file) {
        std::ifstream in(file);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    std::string dir;
    std::string path;
};

TEST_F(PidLockFileTest, OneHolderAndTheLoserLearnsItsPid) {
    auto first = PidLockFile::acquire(path, 0600);
    ASSERT_TRUE(first) << first.error().value();
    EXPECT_EQ(first->path(), path);
    EXPECT_EQ(contents(path), std::to_string(::getpid()) + "\n");
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    std::optional<pid_t> holder;
    auto second = PidLockFile::acquire(path, 0600, &holder);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error(), Error(EBUSY));
    EXPECT_EQ(holder, ::getpid());
}

TEST_F(PidLockFileTest, ReleaseUnlinksAndTheNextHolderTakesThePath) {
    {
        auto lock = PidLockFile::acquire(path, 0644);
        ASSERT_TRUE(lock);
        PidLockFile moved = std::move(*lock);  // the moved-from owner unlinks nothing
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_TRUE(PidLockFile::acquire(path, 0644));
}

TEST_F(PidLockFileTest, TheKernelDropsTheLockOfADeadHolder) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // _exit skips the destructor: the file stays, only the lock goes.
        ::_exit(PidLockFile::acquire(path, 0600) ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_EQ(WEXITSTATUS(status), 0);
    EXPECT_TRUE(std::filesystem::exists(path));
    EXPECT_TRUE(PidLockFile::acquire(path, 0600));
}

TEST_F(PidLockFileTest, AHolderThatRecordedNoPidIsUnknown) {
    auto lock = PidLockFile::acquire(path, 0600);
    ASSERT_TRUE(lock);
    std::ofstream(path, std::ios::trunc) << "12x\n";
    std::optional<pid_t> holder = 1;
    EXPECT_EQ(PidLockFile::acquire(path, 0600, &holder).error(), Error(EBUSY));
    EXPECT_EQ(holder, std::nullopt);
}

TEST_F(PidLockFileTest, SymlinksAreNotFollowed) {
    const std::string victim = dir + "/victim";
    std::ofstream(victim) << "keep";
    std::filesystem::create_symlink(victim, path);
    EXPECT_EQ(PidLockFile::acquire(path, 0600).error(), Error(ELOOP));
    EXPECT_EQ(contents(victim), "keep");
}

TEST_F(PidLockFileTest, AMissingDirectoryIsTheErrnoOfOpen) {
    EXPECT_EQ(PidLockFile::acquire(dir + "/none/x.lock", 0600).error(), Error(ENOENT));
}

}  // namespace
}  // namespace gf
