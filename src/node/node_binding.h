// Puts the FUSE file at the node path with a bind mount, so programs open the
// path they expect (/dev/goldfish_address_space) while the file system lives in
// the daemon's own directory.
#pragma once

#include <string>

#include "base/result.h"

namespace gf::node {

class NodeBinding {
  public:
    // Creates an empty file at `node_path` if nothing is there (and removes it
    // again on unbind); an existing path must be a regular file (EEXIST otherwise,
    // e.g. the character device of a kernel driver). Stale bindings of a dead
    // daemon are cleared first; something else mounted there is EBUSY.
    static Result<NodeBinding> bind(const std::string& source, const std::string& node_path);

    NodeBinding(NodeBinding&& other) noexcept;
    NodeBinding& operator=(NodeBinding&&) = delete;
    NodeBinding(const NodeBinding&) = delete;
    NodeBinding& operator=(const NodeBinding&) = delete;
    ~NodeBinding() { unbind(); }

    // Takes the node away: new opens of the path fail; files already open stay.
    void unbind();

  private:
    NodeBinding(std::string node_path, bool created)
        : node_path_(std::move(node_path)), created_(created), bound_(true) {}
    std::string node_path_;
    bool created_ = false;
    bool bound_ = false;
};

}  // namespace gf::node
