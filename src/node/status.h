// The daemon's live state, as the JSON document served beside the node and
// printed by `goldfish-as status`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace gf::node {

// The emulated device's ASG (type-0) side: its configuration and the consumers' counters
// (DeviceStats), all zeroed by reset but the configuration.
struct AsgStatus {
    std::string sink;  // the built-in sink's name
    uint64_t buffer_size = 0;
    uint64_t write_step = 0;
    uint64_t blocks = 0;           // 16 MiB blocks behind rings and buffers
    uint64_t protocol_errors = 0;  // guest input the consumers refused
    uint64_t bytes_in = 0;         // handed to sinks
    uint64_t bytes_out = 0;        // replies written to guests
    uint64_t reply_refused = 0;    // reply bytes sinks wrote past their queue's room
    bool operator==(const AsgStatus&) const = default;
};

struct Status {
    std::string node;    // the path served
    std::string device;  // "emulated" or a PCI address
    uint64_t bar1_phys_start = 0;
    uint64_t bar1_size = 0;
    uint64_t open_files = 0;
    uint64_t handles = 0;
    uint64_t blocks = 0;
    uint64_t block_bytes = 0;
    uint64_t claims = 0;
    std::map<uint32_t, uint64_t> contexts;  // live contexts by type
    uint64_t area_free_bytes = 0;
    bool mmap = false;        // whether opens of the node can be mapped
    std::string mmap_reason;  // if not, why
    // Files closed while a client still maps their memory: kept until the mapping goes.
    uint64_t lingering_files = 0;
    // How closed files were checked for mappings: scans of other processes' maps (no device
    // lock), and seals tried (the authoritative check, one range at a time under BAR1's
    // layout lock) with the ranges that could not be mapped back after a failed one.
    uint64_t mapping_scans = 0;
    uint64_t seal_checks = 0;
    uint64_t remap_failures = 0;
    // Ended contexts whose threads overran the stop bound and still run (kept until they do).
    uint64_t stalled_contexts = 0;
    // Absent with --pci: a guest cannot see the host's state.
    std::optional<AsgStatus> asg;
};

std::string to_json(const Status& status);
// EINVAL for a document that is not a status document.
Result<Status> status_from_json(std::string_view json);
// For people: one "key: value" line each.
std::string to_text(const Status& status);

}  // namespace gf::node
