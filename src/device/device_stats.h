// Counters of what the device holds (tests, the daemon's status file): cheap, taken under the
// device lock.
#pragma once

#include <cstdint>
#include <map>

namespace gf::device {

struct DeviceStats {
    uint64_t handles = 0;                           // live handles
    std::map<uint32_t, uint64_t> contexts_by_type;  // type -> live contexts
    uint64_t guest_blocks = 0;                      // ALLOCATE_BLOCK ranges
    uint64_t guest_block_bytes = 0;
    uint64_t host_regions = 0;  // host-owned BAR1 ranges (type-6 slabs)
    uint64_t host_region_bytes = 0;
    uint64_t area_free_bytes = 0;
    uint64_t memory_mappings = 0;  // backed ranges
    uint64_t backed_bytes = 0;
    uint64_t file_bindings = 0;  // BAR1 ranges bound to users' memory files
    // Closed files with bindings checked for mappings by sealing (Bar1Memory::retire_file),
    // and ranges that could not be mapped back after a failed seal (each logged).
    uint64_t file_seal_checks = 0;
    uint64_t file_remap_failures = 0;
    uint64_t shared_slot_slabs = 0;
    uint64_t asg_blocks = 0;           // 16 MiB blocks behind ASG rings and buffers
    uint64_t asg_protocol_errors = 0;  // what ASG guests wrote that the consumers refused
    uint64_t asg_bytes_in = 0;         // bytes the ASG consumers handed to their sinks
    uint64_t asg_bytes_out = 0;        // reply bytes the ASG consumers wrote to guests
    uint64_t asg_reply_refused = 0;    // reply bytes sinks wrote past their queue's room
    uint64_t refused_pings = 0;        // unknown handle, no ping page yet, or page not in RAM
    uint64_t stalled_contexts = 0;     // ended, but their threads overran context_stop_timeout
    uint64_t faults_fired = 0;         // injected faults that took effect (see inject())
};

}  // namespace gf::device
