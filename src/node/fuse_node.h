// The device node as a FUSE file system: a directory holding the node file,
// whose open/ioctl/release are driver files, and a read-only `status` file.
// FUSE carries _IOWR ioctls of fixed size on a regular file, which is all the
// goldfish UAPI needs; mmap is not offered (MAP_SHARED gives ENODEV).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "base/mutex.h"
#include "base/result.h"
#include "node/fuse_workers.h"

struct fuse_session;

namespace gf::driver {
class Driver;
class File;
}  // namespace gf::driver

namespace gf::node {

inline constexpr const char* kNodeFileName = "goldfish_address_space";
inline constexpr const char* kStatusFileName = "status";

struct FuseNodeConfig {
    std::string mount_dir;  // an empty directory
    mode_t mode = 0660;     // of the node file; the kernel enforces it
    uid_t uid = 0;
    gid_t gid = 0;
    unsigned threads = 8;  // worker threads: one slow call does not stall other files
};

class FuseNode {
  public:
    using StatusFn = std::function<std::string()>;

    // Mounts and starts serving. `driver` and `status` must outlive the node.
    static Result<std::unique_ptr<FuseNode>> mount(const FuseNodeConfig& config,
                                                   driver::Driver& driver, StatusFn status);
    ~FuseNode();
    FuseNode(const FuseNode&) = delete;
    FuseNode& operator=(const FuseNode&) = delete;

    // The node file inside the mount directory (the bind source).
    std::string node_file() const;
    // Stops the workers (after the calls they are running), unmounts, and
    // aborts the connection so clients still holding files get errors, never a
    // hang. Idempotent; the destructor calls it.
    void stop();

    // The FUSE callbacks reach the node through these (fuse_node.cpp).
    struct OpenNode;
    struct Ops;

  private:
    FuseNode(FuseNodeConfig config, driver::Driver& driver, StatusFn status);

    FuseNodeConfig config_;
    driver::Driver& driver_;
    StatusFn status_;
    fuse_session* session_ = nullptr;
    bool mounted_ = false;
    std::unique_ptr<FuseWorkers> workers_;
    time_t start_time_ = 0;

    // Files the kernel has not released yet, freed at stop() if it never does.
    Mutex open_mutex_;
    std::set<OpenNode*> open_nodes_ GF_GUARDED_BY(open_mutex_);
};

}  // namespace gf::node
