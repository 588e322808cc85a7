// The lingering check's cheap step: other processes' mappings of a file, from maps files in a
// fake /proc tree, and from a real process.
#include "node/mapping_scan.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "base/unique_fd.h"

namespace gf::node {
namespace {

namespace fs = std::filesystem;

class MappingScanTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char dir[] = "/tmp/gf-mapping-scan-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        root_ = dir;
        file_.node_dev = makedev(0, 0x27);
        file_.node_ino = 2;
        file_.memory_dev = makedev(0, 1);
        file_.memory_ino = 4565;
        file_.ranges = {{0x3ffffe000, 0x1000}, {0x400000000, 0x2000}};
    }
    void TearDown() override { fs::remove_all(root_); }

    void process(const std::string& pid, const std::string& maps) {
        fs::create_directories(root_ + "/" + pid);
        std::ofstream(root_ + "/" + pid + "/maps") << maps;
    }
    MappingScan scan(pid_t self = 1) { return scan_for_mappings(file_, self, root_); }

    std::string root_;
    MappedFile file_;
};

constexpr const char* kOther =
    "55d1c0a00000-55d1c0a02000 r--p 00000000 08:01 131 /usr/bin/cat\n"
    "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n";

TEST_F(MappingScanTest, ASharedMappingOfTheNodeOverTheFilesRangeIsSeen) {
    process("10", kOther);
    process("11",
            std::string(kOther) +
                "7f81109bb000-7f81109bc000 rw-s 3ffffe000 00:27 2 /mnt/goldfish_address_space\n");
    EXPECT_EQ(scan(), MappingScan::kMapped);
}

TEST_F(MappingScanTest, TheMemoryFileItselfIsSeenToo) {
    process("12", "7f81109bb000-7f81109be000 r--s 3ffffd000 00:01 4565 /memfd:goldfish-bar1\n");
    EXPECT_EQ(scan(), MappingScan::kMapped);
}

TEST_F(MappingScanTest, PrivateOtherOffsetsOtherFilesAndItselfAreNot) {
    process("10", kOther);
    // Private: never blocks the seal.
    process("11", "7f81109bb000-7f81109bc000 rw-p 3ffffe000 00:27 2 /mnt/goldfish_address_space\n");
    // Offsets the file never held (another open's own zeros), on either side of its ranges.
    process("12",
            "7f81109bb000-7f81109bc000 rw-s 3ffffd000 00:27 2 /mnt/goldfish_address_space\n"
            "7f81109bb000-7f81109bc000 rw-s 400002000 00:27 2 /mnt/goldfish_address_space\n");
    // Another file, another device.
    process("13",
            "7f81109bb000-7f81109bc000 rw-s 3ffffe000 00:28 2 /other\n"
            "7f81109bb000-7f81109bc000 rw-s 3ffffe000 00:27 3 /other\n");
    // The scanning process itself (the daemon maps the files into BAR1).
    process("1", "7f81109bb000-7f81109bc000 rw-s 3ffffe000 00:27 2 /mnt/goldfish_address_space\n");
    fs::create_directories(root_ + "/self");  // not a pid
    EXPECT_EQ(scan(), MappingScan::kNotSeen);
}

TEST_F(MappingScanTest, AMappingThatOverlapsOnlyTheEndOfARangeCounts) {
    process("10", "7f0000000000-7f0000003000 rw-s 3ffffc000 00:27 2 /n\n");
    EXPECT_EQ(scan(), MappingScan::kMapped);
}

TEST_F(MappingScanTest, ALineSplitBetweenTwoReadsIsStillParsed) {
    std::string maps;
    while (maps.size() < 64 * 1024 - 20) {
        maps += kOther;
    }
    maps.resize(64 * 1024 - 20);  // cuts a filler line: it must not be taken for anything
    maps += "\n7f81109bb000-7f81109bc000 rw-s 400001000 00:27 2 /mnt/goldfish_address_space\n";
    process("10", maps);
    EXPECT_EQ(scan(), MappingScan::kMapped);
}

TEST_F(MappingScanTest, MapsThatCannotBeReadMakeTheAnswerUnknown) {
    fs::create_directories(root_ + "/10/maps");  // a directory: read fails
    EXPECT_EQ(scan(), MappingScan::kUnknown);
    process("11", "7f81109bb000-7f81109bc000 rw-s 3ffffe000 00:27 2 /n\n");
    EXPECT_EQ(scan(), MappingScan::kMapped) << "a mapping seen is an answer";
}

TEST_F(MappingScanTest, AFileWithoutRangesIsNeverMapped) {
    process("11", "7f81109bb000-7f81109bc000 rw-s 3ffffe000 00:27 2 /n\n");
    file_.ranges.clear();
    EXPECT_EQ(scan(), MappingScan::kNotSeen);
}

TEST(MappingScanRealTest, AnotherProcessesMappingOfAMemfdIsSeenUntilItGoes) {
    UniqueFd fd(::memfd_create("mapping-scan", MFD_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::ftruncate(fd.get(), 1 << 20), 0);
    struct stat st {};
    ASSERT_EQ(::fstat(fd.get(), &st), 0);
    MappedFile file;
    file.memory_dev = st.st_dev;
    file.memory_ino = st.st_ino;
    file.ranges = {{0x10000, 0x1000}};
    int ready[2], go[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(go), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(go[1]);
        void* p = ::mmap(nullptr, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0xe000);
        (void)!::write(ready[1], p == MAP_FAILED ? "f" : "r", 1);
        char c;
        (void)!::read(go[0], &c, 1);
        ::_exit(0);
    }
    ::close(go[0]);
    ::close(ready[1]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ASSERT_EQ(c, 'r');
    // This process maps it too: only others count.
    void* own = ::mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0x10000);
    ASSERT_NE(own, MAP_FAILED);
    EXPECT_EQ(scan_for_mappings(file, ::getpid()), MappingScan::kMapped);
    ::close(go[1]);
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    const MappingScan after = scan_for_mappings(file, ::getpid());
    EXPECT_NE(after, MappingScan::kMapped);
    ::munmap(own, 0x1000);
    ::close(ready[0]);
}

}  // namespace
}  // namespace gf::node
