#include "node/node_binding.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "node/node_lock.h"

namespace gf::node {

Result<NodeBinding> NodeBinding::bind(const std::string& source, const std::string& node_path) {
    GF_TRY(detach_stale_mounts(node_path));
    bool created = false;
    struct stat st;
    if (::lstat(node_path.c_str(), &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            return fail(EEXIST);
        }
    } else if (errno == ENOENT) {
        int fd = ::open(node_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            return fail(errno);
        }
        ::close(fd);
        created = true;
    } else {
        return fail(errno);
    }
    if (::mount(source.c_str(), node_path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        int err = errno;
        if (created) {
            ::unlink(node_path.c_str());
        }
        return fail(err);
    }
    return NodeBinding(node_path, created);
}

NodeBinding::NodeBinding(NodeBinding&& other) noexcept
    : node_path_(std::move(other.node_path_)),
      created_(other.created_),
      bound_(std::exchange(other.bound_, false)) {}

void NodeBinding::unbind() {
    if (!std::exchange(bound_, false)) {
        return;
    }
    // Lazy: clients that hold the node open keep their files until the driver revokes them.
    ::umount2(node_path_.c_str(), MNT_DETACH);
    if (created_) {
        ::unlink(node_path_.c_str());
    }
}

}  // namespace gf::node
