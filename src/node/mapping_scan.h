// Whether another process still maps a closed file's memory, read from /proc/<pid>/maps: the
// lingering check's cheap first step (docs/node.md#mmap). It takes no lock of the device's,
// and it is a hint: the authoritative answer is the seal (Bar1Memory::retire_file), which
// runs only when this says the file may be unmapped.
//
// A mapping of the node shows in maps as the node's inode (the FUSE inode every open shares,
// kernels that show the user's path) or as the memory file itself (kernels that show the
// backing file): a file's mapping is one of either kind that is shared and overlaps the
// file's own ranges (the blocks and claims it held), by file offset.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace gf::node {

struct MappedFile {
    dev_t node_dev = 0;
    ino_t node_ino = 0;
    dev_t memory_dev = 0;
    ino_t memory_ino = 0;
    std::map<uint64_t, uint64_t> ranges;  // file offset -> size: what the file held
};

enum class MappingScan {
    kMapped,   // some other process maps an overlapping range shared
    kNotSeen,  // none seen (it may still be mapped in ways maps did not show in time)
    kUnknown,  // some process's maps could not be read
};

// Scans every process under `proc_root` except `self`.
MappingScan scan_for_mappings(const MappedFile& file, pid_t self,
                              const std::string& proc_root = "/proc");

}  // namespace gf::node
