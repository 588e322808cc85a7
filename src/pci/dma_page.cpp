#include "pci/dma_page.h"

#include <utility>

#include "base/shared_memory.h"

namespace gf::pci {

Result<DmaPage> DmaPage::allocate(Device& device) {
    DmaPage page(device, GF_TRY(device.allocate_dma_page()));
    // Zeroed so the device never sees stale data (a bug of the C driver).
    fill_shared(page.bytes(), std::byte{0});
    return page;
}

DmaPage::DmaPage(DmaPage&& other) noexcept
    : device_(std::exchange(other.device_, nullptr)), buffer_(other.buffer_) {}

DmaPage& DmaPage::operator=(DmaPage&& other) noexcept {
    if (this != &other) {
        reset();
        device_ = std::exchange(other.device_, nullptr);
        buffer_ = other.buffer_;
    }
    return *this;
}

DmaPage::~DmaPage() {
    reset();
}

void DmaPage::reset() {
    if (device_ != nullptr) {
        std::exchange(device_, nullptr)->free_dma_page(buffer_);
    }
}

}  // namespace gf::pci
