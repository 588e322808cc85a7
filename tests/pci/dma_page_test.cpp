#include "pci/dma_page.h"

#include <algorithm>
#include <cerrno>
#include <memory>

#include <gtest/gtest.h>

#include "pci/mock_backend.h"

namespace gf::pci {
namespace {

using testing::MockBackend;

struct DmaPageTest : ::testing::Test {
    DmaPageTest() {
        auto backend = std::make_unique<MockBackend>();
        mock = backend.get();
        device = std::make_unique<Device>(std::move(backend));
    }
    MockBackend* mock;  // owned by device
    std::unique_ptr<Device> device;
};

TEST_F(DmaPageTest, PageIsZeroedAndAddressed) {
    auto page = DmaPage::allocate(*device);
    ASSERT_TRUE(page);
    EXPECT_EQ(page->phys_addr(), MockBackend::kDmaBase);
    ASSERT_EQ(page->bytes().size(), MockBackend::kPageSize);
    EXPECT_TRUE(std::ranges::all_of(page->bytes(), [](std::byte b) { return b == std::byte{0}; }));
    EXPECT_EQ(page->bytes().data(), mock->dma_page(page->phys_addr()));
}

TEST_F(DmaPageTest, FreedOnDestructionOnce) {
    {
        auto page = DmaPage::allocate(*device);
        ASSERT_TRUE(page);
        DmaPage moved = std::move(*page);
        EXPECT_EQ(mock->live_dma_pages(), 1u);
    }
    EXPECT_EQ(mock->live_dma_pages(), 0u);
    EXPECT_EQ(mock->events(),
              (std::vector<std::string>{"dma_alloc 0x80000000", "dma_free 0x80000000"}));
}

TEST_F(DmaPageTest, AllocationFailure) {
    mock->fail_dma = true;
    EXPECT_EQ(DmaPage::allocate(*device).error(), Error(ENOMEM));
}

}  // namespace
}  // namespace gf::pci
