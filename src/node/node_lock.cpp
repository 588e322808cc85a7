#include "node/node_lock.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

namespace gf::node {
namespace {

// A file name for a path: '%' and '/' escaped, so distinct paths never collide.
std::string key_for(const std::string& node_path) {
    std::string key;
    for (char c : node_path) {
        if (c == '%') {
            key += "%25";
        } else if (c == '/') {
            key += "%2F";
        } else {
            key += c;
        }
    }
    return key;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& field) {
    std::string out;
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            int v = 0;
            bool octal = true;
            for (size_t k = 1; k <= 3; ++k) {
                char d = field[i + k];
                octal = octal && d >= '0' && d <= '7';
                v = v * 8 + (d - '0');
            }
            if (octal) {
                out += static_cast<char>(v);
                i += 3;
                continue;
            }
        }
        out += field[i];
    }
    return out;
}

// True if this call made the directory, false if it was there already.
Result<bool> make_dir(const std::string& path, mode_t mode) {
    const bool made = ::mkdir(path.c_str(), mode) == 0;
    if (!made && errno != EEXIST) {
        return fail(errno);
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        return fail(errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        return fail(ENOTDIR);
    }
    return made;
}

}  // namespace

Result<std::string> canonical_node_path(const std::string& node_path) {
    size_t slash = node_path.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string(".")
                            : slash == 0               ? std::string("/")
                                                       : node_path.substr(0, slash);
    const std::string name = slash == std::string::npos ? node_path : node_path.substr(slash + 1);
    if (name.empty() || name == "." || name == "..") {
        return fail(EINVAL);
    }
    char* resolved = ::realpath(dir.c_str(), nullptr);
    if (resolved == nullptr) {
        return fail(errno);
    }
    std::string out = resolved;
    std::free(resolved);
    return (out == "/" ? "" : out) + "/" + name;
}

bool is_mount_point(const std::string& path, std::string* fstype) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    bool found = false;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, mount_point;
        fields >> id >> parent >> devno >> root >> mount_point;
        if (unescape_mountinfo(mount_point) != path) {
            continue;
        }
        // The file-system type follows the " - " separator; the last match is the top mount.
        size_t sep = line.find(" - ");
        std::string type;
        if (sep != std::string::npos) {
            std::istringstream(line.substr(sep + 3)) >> type;
        }
        found = true;
        if (fstype != nullptr) {
            *fstype = type;
        }
    }
    return found;
}

Result<void> detach_stale_mounts(const std::string& path) {
    std::string type;
    // Bounded: each round removes one stacked mount.
    for (int round = 0; round < 16 && is_mount_point(path, &type); ++round) {
        if (type != kFuseType) {
            return fail(EBUSY);
        }
        if (::umount2(path.c_str(), MNT_DETACH) != 0) {
            return fail(errno);
        }
    }
    return is_mount_point(path) ? fail(EBUSY) : Result<void>{};
}

std::string NodeLock::mount_dir_for(const std::string& state_dir, const std::string& node_path) {
    return state_dir + "/" + key_for(node_path) + ".mnt";
}

Result<NodeLock> NodeLock::acquire(const std::string& state_dir, const std::string& node_path,
                                   int* holder_pid, Failure* failure) {
    auto failed = [failure](Failure why, Error error) {
        if (failure != nullptr) {
            *failure = why;
        }
        return fail(error);
    };
    const std::string lock_path = state_dir + "/" + key_for(node_path) + ".lock";
    for (int attempt = 0;; ++attempt) {
        Result<bool> made = make_dir(state_dir, 0755);
        if (!made) {
            return failed(Failure::kStateDir, made.error());
        }
        MadeDir state(*made ? state_dir : std::string());
        std::optional<pid_t> holder;
        auto lock = PidLockFile::acquire(lock_path, 0644, &holder);
        if (!lock) {
            // Bounded: a daemon that made the directory may remove it, empty, between
            // our mkdir and our open, when its start fails or it stops.
            if (lock.error() == Error(ENOENT) && !*made && attempt < 8) {
                continue;
            }
            if (lock.error() == Error(EBUSY)) {
                if (holder_pid != nullptr) {
                    *holder_pid = holder.value_or(0);
                }
                return failed(Failure::kServed, lock.error());
            }
            return failed(Failure::kStateDir, lock.error());
        }
        NodeLock node_lock(std::move(state), std::move(*lock), mount_dir_for(state_dir, node_path));
        // Whatever a dead predecessor left mounted is ours to clear now.
        if (Result<void> cleared = detach_stale_mounts(node_lock.mount_dir_); !cleared) {
            return failed(Failure::kMountDir, cleared.error());
        }
        if (Result<bool> mount_dir = make_dir(node_lock.mount_dir_, 0755); !mount_dir) {
            return failed(Failure::kMountDir, mount_dir.error());
        }
        return node_lock;
    }
}

NodeLock::MadeDir::~MadeDir() {
    if (!path_.empty()) {
        ::rmdir(path_.c_str());  // fails, as it should, while anything is left in it
    }
}

NodeLock::NodeLock(NodeLock&& other) noexcept
    : state_dir_(std::move(other.state_dir_)),
      lock_(std::move(other.lock_)),
      mount_dir_(std::exchange(other.mount_dir_, {})) {}

NodeLock::~NodeLock() {
    if (mount_dir_.empty()) {
        return;
    }
    // While lock_ still holds the path: once it lets go, the directory is the next holder's.
    if (!is_mount_point(mount_dir_)) {
        ::rmdir(mount_dir_.c_str());
    }
}

}  // namespace gf::node
