#include "driver/runtime.h"

#include <utility>

#include "driver/file.h"

namespace gf::driver {

Runtime::Runtime(pci::Device& device, ControlBar control, uint64_t area_phys_start,
                 uint64_t area_size, const DriverConfig& config)
    : device(device),
      controller(std::move(control)),
      area_phys_start(area_phys_start),
      area_size(area_size),
      config(config) {}

void Runtime::register_file(File* file) {
    MutexLock lock(files_mutex_);
    files_.insert(file);
}

void Runtime::retire_file(File* file) {
    MutexLock lock(files_mutex_);
    if (files_.erase(file) != 0) {
        file->revoke();
    }
}

void Runtime::revoke_all_files() {
    MutexLock lock(files_mutex_);
    for (File* file : files_) {
        file->revoke();
    }
    files_.clear();
}

DriverStats Runtime::stats() const {
    DriverStats stats;
    stats.open_files = open_files.load(std::memory_order_relaxed);
    stats.blocks = blocks.load(std::memory_order_relaxed);
    stats.block_bytes = block_bytes.load(std::memory_order_relaxed);
    stats.claims = claims.load(std::memory_order_relaxed);
    stats.abandoned_blocks = abandoned_blocks.load(std::memory_order_relaxed);
    stats.abandoned_block_bytes = abandoned_block_bytes.load(std::memory_order_relaxed);
    return stats;
}

}  // namespace gf::driver
