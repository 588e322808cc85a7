// One daemon per node path: an advisory lock per path in the daemon's state
// directory, and the place of the daemon's own FUSE directory. The kernel drops
// the lock when its holder dies, so a daemon killed with SIGKILL leaves a path
// that the next daemon can take; it also clears that daemon's stale mounts.
#pragma once

#include <string>

#include "base/pid_lock_file.h"
#include "base/result.h"

namespace gf::node {

class NodeLock {
  public:
    // EBUSY when another live daemon serves `node_path`; `holder_pid` then
    // names it when known.
    static Result<NodeLock> acquire(const std::string& state_dir, const std::string& node_path,
                                    int* holder_pid = nullptr);

    NodeLock(NodeLock&& other) noexcept;
    NodeLock& operator=(NodeLock&&) = delete;
    NodeLock(const NodeLock&) = delete;
    NodeLock& operator=(const NodeLock&) = delete;
    ~NodeLock();

    // An empty directory, owned by this lock, where the FUSE file system goes.
    const std::string& mount_dir() const { return mount_dir_; }

    // Where a daemon serving `node_path` keeps its FUSE directory (for clients
    // that want the status file beside the node).
    static std::string mount_dir_for(const std::string& state_dir, const std::string& node_path);

  private:
    NodeLock(PidLockFile lock, std::string mount_dir)
        : lock_(std::move(lock)), mount_dir_(std::move(mount_dir)) {}
    PidLockFile lock_;
    std::string mount_dir_;  // empty once moved from
};

// An absolute, canonical spelling of a node path (its directory resolved), so
// that the daemon and its clients derive the same lock and status paths.
// ENOENT if the directory does not exist.
Result<std::string> canonical_node_path(const std::string& node_path);

// True if `path` is a mount point; `fstype` receives its file-system type.
bool is_mount_point(const std::string& path, std::string* fstype = nullptr);

// Detaches every mount stacked on `path` whose type is one of this daemon's.
// EBUSY if something else is mounted there.
Result<void> detach_stale_mounts(const std::string& path);

// The file-system type our FUSE mounts show in /proc/self/mountinfo.
inline constexpr const char* kFuseType = "fuse.goldfish-asd";

}  // namespace gf::node
