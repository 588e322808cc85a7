// The client library's RAII objects against a real node: a Block, SharedClaim or
// HostAllocation frees through the file it came from however its owner (the Session or
// HostMemoryAllocator) is moved or destroyed, and the node's books show nothing leaked.
// Run under ASan, a dangling owner pointer is a use-after-free report.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "client/host_memory.h"
#include "client/session.h"
#include "node/daemon_fixture.h"

namespace gf::testing {
namespace {

using namespace std::chrono_literals;

class ClientTest : public ServedNodeTest {
  protected:
    node::Status status() {
        auto s = read_status(state_, node_);
        EXPECT_TRUE(s);
        return s.value_or(node::Status{});
    }

    // Nothing of the client is left once FUSE has run its (asynchronous) releases.
    void expect_idle() {
        auto s = wait_for_status(state_, node_, is_idle, 10s);
        ASSERT_TRUE(s);
        EXPECT_TRUE(is_idle(*s)) << node::to_json(*s);
    }
};

TEST_F(ClientTest, BlockAndClaimFreeThroughTheirFileAfterTheSessionMoved) {
    auto opened = client::Session::open(node_);
    ASSERT_TRUE(opened);
    auto first = std::make_unique<client::Session>(std::move(*opened));
    auto block = first->allocate(4096);
    ASSERT_TRUE(block);
    auto claim = first->claim(block->offset(), 4096);
    ASSERT_TRUE(claim);

    // Moved twice, the first owner's memory freed: the fd the objects free through must
    // still be theirs (with raw owner pointers: EBADF through the moved-from owner, or a
    // use-after-free).
    client::Session second = std::move(*first);
    first.reset();
    std::optional<client::Session> third(std::move(second));
    EXPECT_EQ(second.fd(), -1);
    EXPECT_EQ(second.deallocate_block(block->offset()).error(), Error(EBADF)) << "moved from";

    EXPECT_TRUE(claim->release());
    EXPECT_TRUE(block->free());
    node::Status s = status();
    EXPECT_EQ(s.open_files, 1u) << "the session is still open";
    EXPECT_EQ(s.blocks, 0u);
    EXPECT_EQ(s.claims, 0u);
    third.reset();
    expect_idle();
}

TEST_F(ClientTest, ABlockKeepsItsFileOpenUntilItIsFreed) {
    std::optional<client::Block> block;
    {
        auto session = client::Session::open(node_);
        ASSERT_TRUE(session);
        auto allocated = session->allocate(8192);
        ASSERT_TRUE(allocated);
        block.emplace(std::move(*allocated));
        // A new session assigned over this one: the old file stays with the block.
        auto other = client::Session::open(node_);
        ASSERT_TRUE(other);
        *session = std::move(*other);
        EXPECT_EQ(status().open_files, 2u);
    }
    // Both sessions are gone (FUSE releases the closed file asynchronously); the block's
    // file is not.
    auto s = wait_for_status(
        state_, node_, [](const node::Status& st) { return st.open_files == 1; }, 10s);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->open_files, 1u) << node::to_json(*s);
    EXPECT_EQ(s->blocks, 1u);
    auto mapped = block->map();
    if (mapped) {  // the node maps where FUSE passthrough exists
        std::memset(mapped->data(), 0x5a, mapped->length());
        mapped->reset();
    } else {
        EXPECT_EQ(mapped.error(), Error(ENODEV));
    }
    EXPECT_TRUE(block->free());
    EXPECT_EQ(block->map().error(), Error(EBADF)) << "freed";
    block.reset();
    expect_idle();
}

TEST_F(ClientTest, MovedBlocksAndClaimsFreeExactlyOnce) {
    auto session = client::Session::open(node_);
    ASSERT_TRUE(session);
    std::vector<client::Block> blocks;
    for (int i = 0; i < 3; ++i) {
        auto b = session->allocate(4096);
        ASSERT_TRUE(b);
        blocks.push_back(std::move(*b));  // may reallocate: every block moves
    }
    // Assigning over a live block frees it first.
    blocks[0] = std::move(blocks[2]);
    blocks.pop_back();
    EXPECT_EQ(status().blocks, 2u);
    auto claim = session->claim(blocks[0].offset(), 4096);
    ASSERT_TRUE(claim);
    client::SharedClaim moved = std::move(*claim);
    EXPECT_TRUE(claim->release()) << "the moved-from claim owns nothing";
    EXPECT_EQ(status().claims, 1u);
    EXPECT_TRUE(moved.release());
    EXPECT_EQ(status().claims, 0u);
    blocks.clear();
    node::Status s = status();
    EXPECT_EQ(s.blocks, 0u);
    EXPECT_EQ(s.open_files, 1u);
}

TEST_F(ClientTest, HostAllocationsFreeAfterTheirAllocatorMovedAndWasDestroyed) {
    for (const bool shared_slots : {false, true}) {
        SCOPED_TRACE(shared_slots);
        // Mapping where the node can; an ioctl-only node would refuse every mapped allocation.
        const bool map = status().mmap;
        auto opened = client::HostMemoryAllocator::open(node_, shared_slots, map);
        ASSERT_TRUE(opened) << opened.error().value();
        auto allocator = std::make_unique<client::HostMemoryAllocator>(std::move(*opened));
        auto a = allocator->allocate(4096);
        auto b = allocator->allocate(3 * 4096);
        ASSERT_TRUE(a && b);

        // The allocator moves to the heap elsewhere and its first home is freed: the
        // allocations must not reach into that memory (ASan would say so).
        auto moved = std::make_unique<client::HostMemoryAllocator>(std::move(*allocator));
        allocator.reset();
        if (map) {
            std::memset(a->data(), 0x11, a->size());
        }
        EXPECT_TRUE(a->free());
        node::Status s = status();
        EXPECT_EQ(s.open_files, 1u);
        EXPECT_EQ(s.contexts[shared_slots ? 6u : 5u], 1u);
        EXPECT_EQ(s.blocks + s.claims, 1u) << "only b is left: " << node::to_json(s);

        // Even with the allocator gone, b still frees through the context's file.
        moved.reset();
        EXPECT_EQ(status().open_files, 1u) << "b keeps the file";
        client::HostAllocation last = std::move(*b);
        EXPECT_TRUE(b->free()) << "the moved-from allocation owns nothing";
        EXPECT_TRUE(last.free());
        expect_idle();
    }
}

}  // namespace
}  // namespace gf::testing
