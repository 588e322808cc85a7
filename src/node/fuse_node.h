// The device node as a FUSE file system (docs/node.md): a directory holding the node file,
// whose open/ioctl/release are driver files, a read-only `status` file and a root-only
// `bar1` file (the host's view of BAR1).
//
// Shared memory: every open of the node is an inode of its own (each lookup of the name
// gives a fresh node id, never cached), backed through FUSE passthrough by that driver
// file's private memory file. mmap of the node therefore maps exactly the pages of that
// open file: its blocks and claims, shared with the host, and nothing of anyone else's.
// A node id is opened at most once in its life, which closes the re-open routes
// (/proc/PID/fd, map_files, open_by_handle_at) into another open file's memory.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>

#include "base/mutex.h"
#include "base/result.h"
#include "node/fuse_passthrough.h"
#include "node/fuse_workers.h"

struct fuse_session;

namespace gf::driver {
class Driver;
class File;
}  // namespace gf::driver

namespace gf::node {

inline constexpr const char* kNodeFileName = "goldfish_address_space";
inline constexpr const char* kStatusFileName = "status";
inline constexpr const char* kBar1FileName = "bar1";

// The host's view of BAR1, for the `bar1` file: bytes moved, or errno.
struct Bar1Access {
    uint64_t size = 0;
    std::function<Result<size_t>(uint64_t offset, std::span<std::byte> out)> read;
    std::function<Result<size_t>(uint64_t offset, std::span<const std::byte> in)> write;
};

struct FuseNodeConfig {
    std::string mount_dir;  // an empty directory
    mode_t mode = 0660;     // of the node file; the kernel enforces it
    uid_t uid = 0;
    gid_t gid = 0;
    unsigned threads = 8;  // worker threads: one slow call does not stall other files
    // Empty: offer mmap through FUSE passthrough where the kernel has it. Otherwise mmap
    // stays off, and this says why (for people).
    std::string no_mmap_reason;
    uint64_t node_size = 0;          // the node's st_size: BAR1's size
    std::optional<Bar1Access> bar1;  // absent: no bar1 file
};

class FuseNode {
  public:
    using StatusFn = std::function<std::string()>;

    // Mounts and starts serving once the kernel's INIT is answered. `driver` and `status`
    // must outlive the node.
    static Result<std::unique_ptr<FuseNode>> mount(const FuseNodeConfig& config,
                                                   driver::Driver& driver, StatusFn status);
    ~FuseNode();
    FuseNode(const FuseNode&) = delete;
    FuseNode& operator=(const FuseNode&) = delete;

    // The node file inside the mount directory (what the node path links to).
    std::string node_file() const;
    // Whether opens of the node can be mapped, and if not, why (one line for people).
    bool mmap_available() const GF_EXCLUDES(mmap_mutex_);
    std::string mmap_unavailable_reason() const GF_EXCLUDES(mmap_mutex_);
    // Files closed while a client still maps their memory: kept (blocks, handle) until the
    // last writable mapping is gone, as a kernel driver's release waits for munmap.
    uint64_t lingering_files() const GF_EXCLUDES(open_mutex_);
    // How often a closed file's mappings were looked for in other processes' maps (the cheap
    // check, without any lock of the device's; mapping_scan.h).
    uint64_t mapping_scans() const { return mapping_scans_.load(std::memory_order_relaxed); }

    // Stops the workers (after the calls they are running), unmounts, aborts the
    // connection so clients still holding files get errors, never a hang, and releases
    // every file left. Idempotent; the destructor calls it.
    void stop();

    // The FUSE callbacks reach the node through these (fuse_node.cpp).
    struct OpenNode;
    struct Ops;

  private:
    FuseNode(FuseNodeConfig config, driver::Driver& driver, StatusFn status);

    // A looked-up name of the node: how many lookups the kernel holds, whether it was opened.
    struct NodeEntry {
        uint64_t lookups = 0;
        bool opened = false;
    };

    // Retries lingering files until each can go; runs while any is lingering.
    void reap_lingering() GF_EXCLUDES(open_mutex_);
    // Releases the open's driver file if no client maps its memory any more: first the cheap
    // scan of other processes' maps (not when `force`, nor for a file that held few ranges),
    // then, unless that saw a mapping, the driver's authoritative check. True once released.
    bool release_if_unmapped(OpenNode& open_node, bool force);

    FuseNodeConfig config_;
    driver::Driver& driver_;
    StatusFn status_;
    passthrough::Shim shim_;
    int fuse_fd_ = -1;  // owned by session_ once installed
    fuse_session* session_ = nullptr;
    bool mounted_ = false;
    // Decided once INIT is answered, while workers already serve the mount.
    mutable Mutex mmap_mutex_;
    bool mmap_available_ GF_GUARDED_BY(mmap_mutex_) = false;
    std::string mmap_reason_ GF_GUARDED_BY(mmap_mutex_);
    std::unique_ptr<FuseWorkers> workers_;
    time_t start_time_ = 0;

    Mutex nodes_mutex_;
    std::map<uint64_t, NodeEntry> nodes_ GF_GUARDED_BY(nodes_mutex_);  // node id -> entry
    uint64_t next_node_id_ GF_GUARDED_BY(nodes_mutex_);
    std::mt19937_64 generations_ GF_GUARDED_BY(nodes_mutex_);

    // Files the kernel has not released yet, and released ones still mapped (lingering):
    // both are freed at stop() if nothing else frees them.
    mutable Mutex open_mutex_;
    std::set<OpenNode*> open_nodes_ GF_GUARDED_BY(open_mutex_);
    std::set<OpenNode*> lingering_ GF_GUARDED_BY(open_mutex_);
    bool stopping_ GF_GUARDED_BY(open_mutex_) = false;
    std::condition_variable lingering_cv_;
    std::thread reaper_;
    // The mount's device: mappings of the node show it in /proc/<pid>/maps.
    dev_t mount_dev_ = 0;
    std::atomic<uint64_t> mapping_scans_{0};
};

}  // namespace gf::node
