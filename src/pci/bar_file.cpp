#include "pci/bar_file.h"

#include <utility>

#include "pci/device.h"
#include "pci/shared_memory_bar.h"

namespace gf::pci {

Result<BarFile> BarFile::open(Device& device, const SharedMemoryBar& bar) {
    return BarFile(device, GF_TRY(device.backend().open_bar_file(bar.index())));
}

BarFile::BarFile(BarFile&& other) noexcept
    : device_(other.device_), handle_(std::exchange(other.handle_, BarFileHandle{})) {}

BarFile::~BarFile() {
    if (handle_.fd >= 0) {
        device_->backend().close_bar_file(handle_);
    }
}

Result<void> BarFile::bind(uint64_t offset, uint64_t size, BarBinding how) {
    return device_->backend().bind_bar_file(handle_, offset, size, how);
}

void BarFile::unbind(uint64_t offset, uint64_t size) {
    device_->backend().unbind_bar_file(handle_, offset, size);
}

Result<bool> BarFile::retire() {
    return device_->backend().retire_bar_file(handle_);
}

}  // namespace gf::pci
