// One daemon per node path: an advisory lock per path in the daemon's state
// directory, and the place of the daemon's own FUSE directory. The kernel drops
// the lock when its holder dies, so a daemon killed with SIGKILL leaves a path
// that the next daemon can take; it also clears that daemon's stale mounts.
#pragma once

#include <string>
#include <utility>

#include "base/pid_lock_file.h"
#include "base/result.h"

namespace gf::node {

class NodeLock {
  public:
    // Which step of acquire() failed, so that each gets its own message.
    enum class Failure {
        kStateDir,  // the state directory cannot be made or cannot hold the lock file
        kServed,    // another live daemon holds the path (EBUSY)
        kMountDir,  // the FUSE directory cannot be cleared of stale mounts or made
    };

    // EBUSY (kServed) when another live daemon serves `node_path`; `holder_pid`
    // then names it when known. A state directory made here is removed again
    // with the lock if nothing else is left in it.
    static Result<NodeLock> acquire(const std::string& state_dir, const std::string& node_path,
                                    int* holder_pid = nullptr, Failure* failure = nullptr);

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
    // A directory this process made: removed on destruction if it is empty by then.
    class MadeDir {
      public:
        MadeDir() = default;
        explicit MadeDir(std::string path) : path_(std::move(path)) {}
        MadeDir(MadeDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
        MadeDir& operator=(MadeDir&&) = delete;
        ~MadeDir();

      private:
        std::string path_;  // empty: nothing to remove
    };

    NodeLock(MadeDir state_dir, PidLockFile lock, std::string mount_dir)
        : state_dir_(std::move(state_dir)),
          lock_(std::move(lock)),
          mount_dir_(std::move(mount_dir)) {}
    // Destroyed in reverse: the mount directory (the destructor's body), then the lock
    // file, then the state directory if this lock made it.
    MadeDir state_dir_;
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
