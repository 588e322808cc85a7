// The goldfish address space guest driver: the Rust RFC v3 driver's semantics
// (docs/uapi.md#compared-with-the-rfc-driver), with the C driver's known bugs
// closed (docs/uapi.md#c-driver-bugs). It knows the device only through
// pci::Device; front ends (the FUSE node, tests) reach it through Driver::open()
// and the File it returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "base/result.h"
#include "pci/device.h"
#include "pci/shared_memory_bar.h"

namespace gf::driver {

struct DriverConfig {
    size_t max_blocks_per_file = 65536;  // beyond: ALLOCATE_BLOCK is ENOSPC
    size_t max_claims_per_file = 65536;  // beyond: CLAIM_SHARED is ENOSPC
};

struct DriverStats {
    uint64_t open_files = 0;
    uint64_t blocks = 0;
    uint64_t block_bytes = 0;
    uint64_t claims = 0;
    // Blocks the device refused to free when their file was released: the device still
    // holds them, and nothing in the driver refers to them any more.
    uint64_t abandoned_blocks = 0;
    uint64_t abandoned_block_bytes = 0;
};

class File;
struct Runtime;

struct OpenOptions {
    // Give the file a memory file of its own that maps its blocks and claims (what a kernel
    // driver's mmap gives): File::memory_fd(). Where the platform cannot isolate one file's
    // memory from another's (a real device), the file gets none.
    bool memory = false;
};

class Driver {
    struct PrivateTag {
        explicit PrivateTag() = default;
    };

  public:
    // Binds to `device` (which must outlive the returned Driver): ENODEV if it
    // is not in the match table or not revision 1; otherwise the first error
    // of enabling it, mapping BAR0 or taking BAR1, with everything undone.
    static Result<std::unique_ptr<Driver>> probe(pci::Device& device,
                                                 const DriverConfig& config = {});

    Driver(PrivateTag, std::shared_ptr<Runtime> runtime, pci::ScopedEnable enabled,
           pci::SharedMemoryBar area);
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;
    ~Driver();  // remove()

    // A new open file with its own host handle and ping page; ENODEV once
    // remove() has started.
    Result<std::shared_ptr<File>> open(const OpenOptions& options = {});

    // Unbind: refuse new files and calls (ENODEV), wait for running calls,
    // revoke live files (destroy handle, free blocks), disable the device,
    // then unmap and release both BARs. Idempotent.
    void remove();

    DriverStats stats() const;
    uint64_t bar1_phys_start() const { return bar1_phys_start_; }
    uint64_t bar1_size() const { return bar1_size_; }

  private:
    const std::shared_ptr<Runtime> runtime_;
    const uint64_t bar1_phys_start_;
    const uint64_t bar1_size_;
    std::once_flag removed_;
    // Reset by remove(), in this order after the files are revoked.
    std::optional<pci::ScopedEnable> enabled_;
    std::optional<pci::SharedMemoryBar> area_;
};

}  // namespace gf::driver
