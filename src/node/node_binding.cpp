#include "node/node_binding.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "node/node_lock.h"

namespace gf::node {
namespace {

// The symlink's target, or nullopt if `path` is not a symlink.
std::optional<std::string> link_target(const std::string& path) {
    std::vector<char> buf(4096);
    const ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0 || static_cast<size_t>(n) >= buf.size()) {
        return std::nullopt;
    }
    return std::string(buf.data(), static_cast<size_t>(n));
}

// `path` with its directory resolved: the link must work from wherever it sits.
Result<std::string> absolute(const std::string& path) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    char* resolved = ::realpath(dir.empty() ? "/" : dir.c_str(), nullptr);
    if (resolved == nullptr) {
        return fail(errno);
    }
    std::string out = resolved;
    std::free(resolved);
    return (out == "/" ? "" : out) + "/" +
           (slash == std::string::npos ? path : path.substr(slash + 1));
}

bool inside(const std::string& path, const std::string& dir) {
    return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
           path[dir.size()] == '/';
}

}  // namespace

Result<NodeBinding> NodeBinding::bind(const std::string& target_path, const std::string& node_path,
                                      const std::string& state_dir) {
    const std::string target = GF_TRY(absolute(target_path));
    const std::string state = GF_TRY(absolute(state_dir + "/."));
    // An older daemon bound its node file here; a dead one's binding is ours to clear.
    GF_TRY(detach_stale_mounts(node_path));
    struct stat st;
    if (::lstat(node_path.c_str(), &st) == 0) {
        std::optional<std::string> old =
            S_ISLNK(st.st_mode) ? link_target(node_path) : std::nullopt;
        if (!old || !inside(*old, state.substr(0, state.size() - 2))) {
            return fail(EEXIST);
        }
        if (::unlink(node_path.c_str()) != 0 && errno != ENOENT) {
            return fail(errno);
        }
    } else if (errno != ENOENT) {
        return fail(errno);
    }
    if (::symlink(target.c_str(), node_path.c_str()) != 0) {
        return fail(errno);
    }
    return NodeBinding(node_path, target);
}

NodeBinding::NodeBinding(NodeBinding&& other) noexcept
    : node_path_(std::move(other.node_path_)),
      target_(std::move(other.target_)),
      bound_(std::exchange(other.bound_, false)) {}

void NodeBinding::unbind() {
    if (!std::exchange(bound_, false)) {
        return;
    }
    // Only our own link: a successor may have replaced it already.
    if (link_target(node_path_) == target_) {
        ::unlink(node_path_.c_str());
    }
}

}  // namespace gf::node
