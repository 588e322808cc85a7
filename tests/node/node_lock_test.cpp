// The per-path lock and the status document, without a daemon.
#include "node/node_lock.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "node/daemon_fixture.h"
#include "node/status.h"

namespace gf::node {
namespace {

TEST(NodeLock, OneHolderPerPathAndTheKernelDropsItOnDeath) {
    testing::TempDir tmp;
    const std::string state = tmp.path() + "/state", node = tmp.path() + "/node";
    int ready[2], hold[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(hold), 0);
    pid_t child = ::fork();
    if (child == 0) {
        auto lock = NodeLock::acquire(state, node);
        char c = lock ? 1 : 0;
        (void)!::write(ready[1], &c, 1);
        (void)!::read(hold[0], &c, 1);  // until killed
        ::_exit(0);
    }
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ASSERT_EQ(c, 1);
    int holder = 0;
    auto second = NodeLock::acquire(state, node, &holder);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().value(), EBUSY);
    EXPECT_EQ(holder, child);
    // Another path is independent.
    EXPECT_TRUE(NodeLock::acquire(state, node + "2"));

    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    auto after = NodeLock::acquire(state, node);
    ASSERT_TRUE(after) << after.error().value();
    struct stat st;
    EXPECT_EQ(::stat(after->mount_dir().c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST(NodeLock, SaysWhichStepFailedAndRemovesOnlyTheStateDirectoryItMade) {
    testing::TempDir tmp;
    const std::string node = tmp.path() + "/node";
    NodeLock::Failure failure{};
    auto in_proc = NodeLock::acquire("/proc", node, nullptr, &failure);
    ASSERT_FALSE(in_proc);
    EXPECT_EQ(failure, NodeLock::Failure::kStateDir);
    auto under_missing = NodeLock::acquire(tmp.path() + "/a/b", node, nullptr, &failure);
    ASSERT_FALSE(under_missing);
    EXPECT_EQ(under_missing.error().value(), ENOENT);
    EXPECT_EQ(failure, NodeLock::Failure::kStateDir);

    const std::string made = tmp.path() + "/made";
    {
        auto lock = NodeLock::acquire(made, node, nullptr, &failure);
        ASSERT_TRUE(lock) << lock.error().value();
        int holder = 0;
        auto second = NodeLock::acquire(made, node, &holder, &failure);
        ASSERT_FALSE(second);
        EXPECT_EQ(failure, NodeLock::Failure::kServed);
        EXPECT_EQ(holder, ::getpid());
        NodeLock moved(std::move(*lock));  // the moved-from lock removes nothing
    }
    EXPECT_EQ(::access(made.c_str(), F_OK), -1) << "made by the lock, left empty: removed";

    const std::string kept = tmp.path() + "/kept";
    ASSERT_EQ(::mkdir(kept.c_str(), 0755), 0);
    { ASSERT_TRUE(NodeLock::acquire(kept, node)); }
    struct stat st;
    EXPECT_EQ(::stat(kept.c_str(), &st), 0) << "there before: stays";
}

TEST(NodeLock, DistinctPathsNeverShareAMountDirectory) {
    EXPECT_NE(NodeLock::mount_dir_for("/s", "/a/b_c"), NodeLock::mount_dir_for("/s", "/a_b/c"));
    EXPECT_NE(NodeLock::mount_dir_for("/s", "/a/b"), NodeLock::mount_dir_for("/s", "/a%2Fb"));
}

TEST(NodeLock, CanonicalNodePath) {
    testing::TempDir tmp;
    auto p = canonical_node_path(tmp.path() + "/./x/../node");
    EXPECT_FALSE(p);  // "x" does not exist
    auto q = canonical_node_path(tmp.path() + "/../" + tmp.path().substr(5) + "/node");
    ASSERT_TRUE(q);
    EXPECT_EQ(*q, tmp.path() + "/node");
    EXPECT_EQ(canonical_node_path(tmp.path() + "/").error().value(), EINVAL);
    EXPECT_FALSE(is_mount_point(tmp.path()));
    EXPECT_TRUE(is_mount_point("/proc"));
}

TEST(Status, JsonRoundTripAndText) {
    Status s;
    s.node = "/dev/goldfish_address_space";
    s.device = "emulated";
    s.bar1_phys_start = 0x100000000;
    s.bar1_size = 16ull << 30;
    s.open_files = 2;
    s.handles = 2;
    s.blocks = 3;
    s.block_bytes = 3 * 8192;
    s.claims = 1;
    s.contexts = {{5, 1}, {6, 1}};
    s.area_free_bytes = (16ull << 30) - 3 * 8192;
    // A real device (--pci): no asg section, and none read back.
    auto back = status_from_json(to_json(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(to_json(*back), to_json(s));
    EXPECT_FALSE(back->asg);
    EXPECT_EQ(to_json(s).find("\"asg\""), std::string::npos);
    std::string text = to_text(s);
    EXPECT_NE(text.find("open files: 2"), std::string::npos) << text;
    EXPECT_NE(text.find("type 5: 1, type 6: 1"), std::string::npos) << text;
    EXPECT_EQ(text.find("ASG"), std::string::npos) << text;

    // The emulated device: every asg field survives the trip.
    s.contexts[0] = 2;
    s.asg = AsgStatus{};
    s.asg->sink = "discard";
    s.asg->buffer_size = 48u << 10;
    s.asg->write_step = 16u << 10;
    s.asg->blocks = 2;
    s.asg->protocol_errors = 3;
    s.asg->bytes_in = 1ull << 40;
    s.asg->bytes_out = 12345;
    back = status_from_json(to_json(s));
    ASSERT_TRUE(back);
    ASSERT_TRUE(back->asg);
    EXPECT_EQ(*back->asg, *s.asg);
    EXPECT_EQ(to_json(*back), to_json(s));
    text = to_text(s);
    EXPECT_NE(text.find("ASG sink: discard (buffer 49152 bytes, write step 16384 bytes)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("ASG bytes: 1099511627776 in, 12345 out"), std::string::npos) << text;
    EXPECT_NE(text.find("ASG protocol errors: 3"), std::string::npos) << text;
    EXPECT_NE(text.find("type 0: 2"), std::string::npos) << text;
}

TEST(Status, RejectsOtherDocuments) {
    EXPECT_FALSE(status_from_json("not json"));
    EXPECT_FALSE(status_from_json("[]"));
    EXPECT_FALSE(status_from_json("{\"open_files\": -1}"));
    std::string bad_context = to_json(Status{});
    bad_context.replace(bad_context.find("{}"), 2, "{\"x\": 1}");
    EXPECT_FALSE(status_from_json(bad_context));
    // An asg section must be whole.
    Status with_asg;
    with_asg.asg = AsgStatus{};
    const std::string good = to_json(with_asg);
    ASSERT_TRUE(status_from_json(good));
    for (const char* field : {"\"sink\": \"\"", "\"blocks\": 0", "\"bytes_out\": 0"}) {
        std::string partial = good;
        const size_t at = partial.find(field);
        ASSERT_NE(at, std::string::npos) << field;
        partial.replace(at, std::strlen(field), "\"other\": 0");
        EXPECT_FALSE(status_from_json(partial)) << partial;
    }
    std::string not_an_object = good;
    const size_t asg = not_an_object.find("\"asg\": {");
    ASSERT_NE(asg, std::string::npos);
    not_an_object.replace(asg, not_an_object.rfind('}') - asg, "\"asg\": []\n");
    EXPECT_FALSE(status_from_json(not_an_object)) << not_an_object;
}

}  // namespace
}  // namespace gf::node
