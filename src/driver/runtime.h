// What a bound driver shares with its open files (the Rust driver's Arc'd
// runtime): the controller, the operation gate, BAR1's placement, the limits,
// the counters, and the list of live files that unbind revokes. Files hold it
// by shared_ptr, so it outlives the Driver object if files outlive the unbind.
#pragma once

#include <atomic>
#include <cstdint>
#include <unordered_set>

#include "base/mutex.h"
#include "driver/controller.h"
#include "driver/driver.h"
#include "driver/operation_gate.h"
#include "pci/device.h"

namespace gf::driver {

class File;

struct Runtime {
    Runtime(pci::Device& device, ControlBar control, uint64_t area_phys_start, uint64_t area_size,
            const DriverConfig& config);
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // A file registers itself at open and retires itself in release() (which
    // its destructor runs); retiring cleans up a file that unbind has not
    // revoked yet, since release cannot pass the closed gate to do so itself.
    void register_file(File* file) GF_EXCLUDES(files_mutex_);
    void retire_file(File* file) GF_EXCLUDES(files_mutex_);
    // Unbind: destroy every live file's handle and free its blocks. The gate
    // is closed and drained, so no file call runs concurrently.
    void revoke_all_files() GF_EXCLUDES(files_mutex_);

    DriverStats stats() const;

    // Not owned; the device outlives the bound driver, and nothing reaches it
    // through the runtime after unbind (the gate is closed, files revoked).
    pci::Device& device;
    Controller controller;
    OperationGate gate;
    const uint64_t area_phys_start;
    const uint64_t area_size;
    const DriverConfig config;

    std::atomic<uint64_t> open_files{0};
    std::atomic<uint64_t> blocks{0};
    std::atomic<uint64_t> block_bytes{0};
    std::atomic<uint64_t> claims{0};
    std::atomic<uint64_t> abandoned_blocks{0};
    std::atomic<uint64_t> abandoned_block_bytes{0};

  private:
    Mutex files_mutex_;
    // Not owned: a File retires itself in release() under files_mutex_ before
    // it is destroyed, so every pointer here is alive while the mutex is held.
    std::unordered_set<File*> files_ GF_GUARDED_BY(files_mutex_);
};

}  // namespace gf::driver
