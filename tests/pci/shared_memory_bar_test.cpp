#include "pci/shared_memory_bar.h"

#include <cerrno>
#include <memory>
#include <type_traits>

#include <gtest/gtest.h>

#include "pci/mock_backend.h"

namespace gf::pci {
namespace {

using testing::MockBackend;

static_assert(!std::is_copy_constructible_v<SharedMemoryBar>);
static_assert(!std::is_copy_assignable_v<SharedMemoryBar>);
static_assert(std::is_nothrow_move_constructible_v<SharedMemoryBar>);
static_assert(std::is_nothrow_move_assignable_v<SharedMemoryBar>);

struct SharedMemoryBarTest : ::testing::Test {
    SharedMemoryBarTest() {
        auto backend = std::make_unique<MockBackend>();
        mock = backend.get();
        device = std::make_unique<Device>(std::move(backend));
    }
    MockBackend* mock;  // owned by device
    std::unique_ptr<Device> device;
};

TEST_F(SharedMemoryBarTest, ReportsStartAndSize) {
    auto bar = SharedMemoryBar::create(*device, 1, "area");
    ASSERT_TRUE(bar);
    EXPECT_EQ(bar->phys_start(), 0x4'0000'0000u);
    EXPECT_EQ(bar->size(), 0x4'0000'0000u);
    EXPECT_TRUE(device->region_held(1));
    EXPECT_EQ(mock->live_mappings(), 1u);
}

TEST_F(SharedMemoryBarTest, InvalidIndexIsEinval) {
    EXPECT_EQ(SharedMemoryBar::create(*device, 6, "area").error(), Error(EINVAL));
    EXPECT_EQ(SharedMemoryBar::create(*device, 100, "area").error(), Error(EINVAL));
    EXPECT_TRUE(mock->events().empty());
}

TEST_F(SharedMemoryBarTest, ZeroLengthBarIsEnxio) {
    mock->bars[1].length = 0;
    EXPECT_EQ(SharedMemoryBar::create(*device, 1, "area").error(), Error(ENXIO));
    EXPECT_FALSE(device->region_held(1));
}

TEST_F(SharedMemoryBarTest, HeldRegionIsEbusy) {
    auto first = SharedMemoryBar::create(*device, 1, "area");
    ASSERT_TRUE(first);
    EXPECT_EQ(SharedMemoryBar::create(*device, 1, "area").error(), Error(EBUSY));
    // The failed attempt must not have disturbed the first owner.
    EXPECT_TRUE(device->region_held(1));
    EXPECT_EQ(mock->live_mappings(), 1u);
}

TEST_F(SharedMemoryBarTest, FailedMappingIsEnomemAndReleasesTheRegion) {
    mock->fail_map[1] = true;
    EXPECT_EQ(SharedMemoryBar::create(*device, 1, "area").error(), Error(ENOMEM));
    EXPECT_FALSE(device->region_held(1));
    EXPECT_EQ(mock->events(),
              (std::vector<std::string>{"request_region 1", "map 1", "release_region 1"}));
    mock->fail_map[1] = false;
    EXPECT_TRUE(SharedMemoryBar::create(*device, 1, "area"));
}

TEST_F(SharedMemoryBarTest, DestructorUnmapsThenReleases) {
    {
        auto bar = SharedMemoryBar::create(*device, 1, "area");
        ASSERT_TRUE(bar);
    }
    EXPECT_EQ(mock->events(), (std::vector<std::string>{"request_region 1", "map 1", "unmap 1",
                                                        "release_region 1"}));
    EXPECT_FALSE(device->region_held(1));
    EXPECT_EQ(mock->live_mappings(), 0u);
}

TEST_F(SharedMemoryBarTest, MoveTransfersOwnership) {
    auto created = SharedMemoryBar::create(*device, 1, "area");
    ASSERT_TRUE(created);
    SharedMemoryBar owner = std::move(*created);
    created = fail(EIO);  // destroys the moved-from object: must not unmap
    EXPECT_TRUE(device->region_held(1));
    EXPECT_EQ(mock->live_mappings(), 1u);
    EXPECT_EQ(owner.phys_start(), 0x4'0000'0000u);

    // Move assignment releases what the target held before taking over.
    mock->bars[2] = {0x8'0000'0000, 0x2000, kResourceMem};
    auto other = SharedMemoryBar::create(*device, 2, "other");
    ASSERT_TRUE(other);
    mock->clear_events();
    owner = std::move(*other);
    EXPECT_EQ(mock->events(), (std::vector<std::string>{"unmap 1", "release_region 1"}));
    EXPECT_FALSE(device->region_held(1));
    EXPECT_TRUE(device->region_held(2));
    EXPECT_EQ(owner.size(), 0x2000u);
}

}  // namespace
}  // namespace gf::pci
