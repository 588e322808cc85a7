// How the VMM sets the device up: BAR1's size, width and placement, and the host page size.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "device/asg_sink.h"

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
    // ASG (type 0, docs/contexts.md#asg): the transfer buffer of each context and the write
    // step (flush_interval) the guest chunks it by. The buffer is at most 16 MiB (one block)
    // and a multiple of the step. Defaults: gfxstream's kAsgWriteBufferSize/kAsgWriteStepSize.
    uint32_t asg_buffer_size = 1u << 20;
    uint32_t asg_write_step = 256u << 10;
    // Where each ASG context's consumer hands the guest's bytes: a built-in sink by name
    // ("echo", "discard"), unless asg_sink_factory is set, which then makes every sink.
    std::string asg_sink = "echo";
    AsgSinkFactory
        asg_sink_factory{};  // {}: g++ wants every member initialized in designated lists
};

}  // namespace gf::device
