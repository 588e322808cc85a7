// Puts the node at the path programs open (/dev/goldfish_address_space) as a symlink to the
// node file inside the daemon's FUSE mount. Only a symlink makes every open look the name
// up afresh, which gives each open an inode, and so memory, of its own (a bind mount or a
// file-root mount would share one inode among all opens).
#pragma once

#include <string>

#include "base/result.h"

namespace gf::node {

class NodeBinding {
  public:
    // Creates the symlink at `node_path` pointing to `target`. A symlink already there that
    // points into `state_dir` (a dead daemon's) is replaced, and so is a stale bind mount
    // of an older daemon; anything else at the path is EEXIST (e.g. the character device of
    // a kernel driver), something else mounted there EBUSY.
    static Result<NodeBinding> bind(const std::string& target, const std::string& node_path,
                                    const std::string& state_dir);

    NodeBinding(NodeBinding&& other) noexcept;
    NodeBinding& operator=(NodeBinding&&) = delete;
    NodeBinding(const NodeBinding&) = delete;
    NodeBinding& operator=(const NodeBinding&) = delete;
    ~NodeBinding() { unbind(); }

    // Takes the node away: new opens of the path fail; files already open stay.
    void unbind();

  private:
    NodeBinding(std::string node_path, std::string target)
        : node_path_(std::move(node_path)), target_(std::move(target)), bound_(true) {}
    std::string node_path_;
    std::string target_;
    bool bound_ = false;
};

}  // namespace gf::node
