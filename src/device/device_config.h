// How the VMM sets the device up: BAR1's size, width and placement, and the host page size.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace gf::device {

struct DeviceConfig {
    // A power of two; a 32-bit BAR1 is at most 2 GiB (e.g. 256 MiB for QEMU's proxy device).
    uint64_t bar1_size = 16ull << 30;
    bool bar1_64bit = true;
    // A power of two, at least the host's page size: granularity of host memory behind BAR1
    // and the default GUEST_PAGE_SIZE.
    uint32_t host_page_size = 4096;
    // Where the VMM placed BAR1; used while the guest has not written PHYS_START (or wrote 0).
    uint64_t bar1_default_phys_start = 0;
    // How long DESTROY_HANDLE and reset wait for a context's own thread to stop (context.h);
    // one that takes longer has lost its BAR1 access already and is joined later.
    std::chrono::milliseconds context_stop_timeout{1000};
    // At most this many BAR1 ranges bound to users' memory files at once: each is a mapping
    // of the process's, and the process must stay clear of vm.max_map_count.
    size_t max_bar1_bindings = 30000;
};

}  // namespace gf::device
