#define FUSE_USE_VERSION 35
#include "node/fuse_node.h"

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "driver/driver.h"
#include "driver/file.h"

namespace gf::node {
namespace {

constexpr fuse_ino_t kNodeIno = 2;
constexpr fuse_ino_t kStatusIno = 3;
constexpr double kAttrTimeout = 1.0;
}  // namespace

// What fi->fh points to for an open of the node or of the status file.
struct FuseNode::OpenNode {
    std::shared_ptr<driver::File> file;  // the node
    std::string status;                  // the status file: a snapshot taken at open
};

struct FuseNode::Ops {
    static FuseNode& self(fuse_req_t req) {
        return *static_cast<FuseNode*>(fuse_req_userdata(req));
    }

    static struct stat attributes(const FuseNode& node, fuse_ino_t ino) {
        struct stat st {};
        st.st_ino = ino;
        st.st_nlink = ino == FUSE_ROOT_ID ? 2 : 1;
        st.st_atime = st.st_mtime = st.st_ctime = node.start_time_;
        if (ino == FUSE_ROOT_ID) {
            st.st_mode = S_IFDIR | 0755;
        } else if (ino == kNodeIno) {
            st.st_mode = S_IFREG | (node.config_.mode & 07777);
            st.st_uid = node.config_.uid;
            st.st_gid = node.config_.gid;
        } else {
            st.st_mode = S_IFREG | 0444;
        }
        return st;
    }

    static void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
        fuse_ino_t ino = 0;
        if (parent == FUSE_ROOT_ID && std::strcmp(name, kNodeFileName) == 0) {
            ino = kNodeIno;
        } else if (parent == FUSE_ROOT_ID && std::strcmp(name, kStatusFileName) == 0) {
            ino = kStatusIno;
        } else {
            fuse_reply_err(req, ENOENT);
            return;
        }
        fuse_entry_param e{};
        e.ino = ino;
        e.attr = attributes(self(req), ino);
        e.attr_timeout = kAttrTimeout;
        e.entry_timeout = kAttrTimeout;
        fuse_reply_entry(req, &e);
    }

    static void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
        if (ino != FUSE_ROOT_ID && ino != kNodeIno && ino != kStatusIno) {
            fuse_reply_err(req, ENOENT);
            return;
        }
        struct stat st = attributes(self(req), ino);
        fuse_reply_attr(req, &st, kAttrTimeout);
    }

    static void setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
        fuse_reply_err(req, EPERM);  // the mode is the daemon's --mode / --group
    }

    static void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
        if (ino != FUSE_ROOT_ID) {
            fuse_reply_err(req, ENOTDIR);
            return;
        }
        struct Entry {
            const char* name;
            fuse_ino_t ino;
            mode_t type;
        };
        const Entry entries[] = {{".", FUSE_ROOT_ID, S_IFDIR},
                                 {"..", FUSE_ROOT_ID, S_IFDIR},
                                 {kNodeFileName, kNodeIno, S_IFREG},
                                 {kStatusFileName, kStatusIno, S_IFREG}};
        std::vector<char> buf(size);
        size_t used = 0;
        for (off_t i = off; i >= 0 && i < static_cast<off_t>(std::size(entries)); ++i) {
            struct stat st {};
            st.st_ino = entries[i].ino;
            st.st_mode = entries[i].type;
            size_t need =
                fuse_add_direntry(req, buf.data() + used, size - used, entries[i].name, &st, i + 1);
            if (need > size - used) {
                break;
            }
            used += need;
        }
        fuse_reply_buf(req, buf.data(), used);
    }

    static void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
        FuseNode& node = self(req);
        auto open_node = std::make_unique<OpenNode>();
        if (ino == kNodeIno) {
            Result<std::shared_ptr<driver::File>> file = node.driver_.open();
            if (!file) {
                fuse_reply_err(req, file.error().value());
                return;
            }
            open_node->file = std::move(*file);
        } else if (ino == kStatusIno) {
            if ((fi->flags & O_ACCMODE) != O_RDONLY) {
                fuse_reply_err(req, EACCES);
                return;
            }
            open_node->status = node.status_();
        } else {
            fuse_reply_err(req, EISDIR);
            return;
        }
        // A device, not a file: no page cache, no seeking.
        fi->direct_io = 1;
        fi->nonseekable = 1;
        fi->fh = reinterpret_cast<uint64_t>(open_node.get());
        {
            MutexLock lock(node.open_mutex_);
            node.open_nodes_.insert(open_node.get());
        }
        OpenNode* raw = open_node.release();
        if (fuse_reply_open(req, fi) != 0) {
            // The opener is gone (interrupted): nobody will release this file.
            drop(node, raw);
        }
    }

    // Ends an open file: its driver file releases its handle and blocks.
    static void drop(FuseNode& node, OpenNode* open_node) {
        {
            MutexLock lock(node.open_mutex_);
            if (node.open_nodes_.erase(open_node) == 0) {
                return;  // stop() already ended it
            }
        }
        std::unique_ptr<OpenNode> owned(open_node);
        if (owned->file) {
            owned->file->release();
        }
    }

    static void release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
        // Sound: fh is the OpenNode this node's open() handed to the kernel, and
        // the kernel sends exactly one release per successful open.
        drop(self(req), reinterpret_cast<OpenNode*>(fi->fh));
        fuse_reply_err(req, 0);
    }

    static void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
        if (ino != kStatusIno) {
            fuse_reply_err(req, EINVAL);  // the kernel driver has no read: EINVAL
            return;
        }
        const std::string& text = reinterpret_cast<OpenNode*>(fi->fh)->status;
        if (off < 0 || static_cast<uint64_t>(off) >= text.size()) {
            fuse_reply_buf(req, nullptr, 0);
            return;
        }
        // Reply from a copy: once the kernel has the reply it may release the
        // file (and free `text`) on another worker before this call returns.
        std::string slice = text.substr(static_cast<size_t>(off), size);
        fuse_reply_buf(req, slice.data(), slice.size());
    }

    static void write(fuse_req_t req, fuse_ino_t ino, const char*, size_t, off_t, fuse_file_info*) {
        fuse_reply_err(req, ino == kNodeIno ? EINVAL : EBADF);
    }

    static void ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void*, fuse_file_info* fi,
                      unsigned flags, const void* in_buf, size_t in_bufsz, size_t out_bufsz) {
        if (ino != kNodeIno) {
            fuse_reply_err(req, ENOTTY);
            return;
        }
        if (flags & FUSE_IOCTL_UNRESTRICTED) {
            fuse_reply_err(req, ENOTTY);  // never sent for regular files; refuse anyway
            return;
        }
        // The kernel copied _IOC_SIZE(cmd) bytes in (for _IOC_WRITE) and will copy
        // out_bufsz bytes back (for _IOC_READ); the driver sees one in/out buffer.
        // FUSE_IOCTL_COMPAT needs nothing: the goldfish structs are the same for
        // 32-bit callers.
        size_t size = std::max(in_bufsz, out_bufsz);
        alignas(8) std::byte small[64];
        std::vector<std::byte> large;
        std::byte* buf = small;
        if (size > sizeof small) {
            large.resize(size);
            buf = large.data();
        }
        std::memset(buf, 0, size);
        if (in_bufsz > 0) {
            std::memcpy(buf, in_buf, in_bufsz);
        }
        // Sound: fh is the OpenNode of this open (see release), live until release,
        // which the kernel never runs during an ioctl on the same file.
        OpenNode* open_node = reinterpret_cast<OpenNode*>(fi->fh);
        int rc = open_node->file->ioctl(cmd, std::span<std::byte>(buf, size));
        if (rc < 0) {
            fuse_reply_err(req, -rc);
            return;
        }
        fuse_reply_ioctl(req, rc, buf, out_bufsz);
    }

    static constexpr fuse_lowlevel_ops table() {
        fuse_lowlevel_ops ops{};
        ops.lookup = lookup;
        ops.getattr = getattr;
        ops.setattr = setattr;
        ops.readdir = readdir;
        ops.open = open;
        ops.release = release;
        ops.read = read;
        ops.write = write;
        ops.ioctl = ioctl;
        return ops;
    }
};

FuseNode::FuseNode(FuseNodeConfig config, driver::Driver& driver, StatusFn status)
    : config_(std::move(config)), driver_(driver), status_(std::move(status)) {}

Result<std::unique_ptr<FuseNode>> FuseNode::mount(const FuseNodeConfig& config,
                                                  driver::Driver& driver, StatusFn status) {
    if (config.threads == 0) {
        return fail(EINVAL);
    }
    std::unique_ptr<FuseNode> node(new FuseNode(config, driver, std::move(status)));
    node->start_time_ = ::time(nullptr);

    // Mount options: anyone may use the node as far as its mode allows, and the
    // kernel checks that mode (default_permissions).
    std::string fsname = "fsname=goldfish-asd,subtype=goldfish-asd";
    const char* argv[] = {"goldfish-asd", "-o", "allow_other,default_permissions", "-o",
                          fsname.c_str()};
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(std::size(argv)), const_cast<char**>(argv));
    static constexpr fuse_lowlevel_ops ops = Ops::table();
    node->session_ = fuse_session_new(&args, &ops, sizeof ops, node.get());
    fuse_opt_free_args(&args);  // fuse_session_new may have copied them onto the heap
    if (node->session_ == nullptr) {
        return fail(EINVAL);
    }
    if (fuse_session_mount(node->session_, config.mount_dir.c_str()) != 0) {
        return fail(ENODEV);
    }
    node->mounted_ = true;
    node->workers_ = std::make_unique<FuseWorkers>(node->session_, config.threads);
    return node;
}

std::string FuseNode::node_file() const {
    return config_.mount_dir + "/" + kNodeFileName;
}

void FuseNode::stop() {
    if (session_ == nullptr) {
        return;
    }
    workers_.reset();  // calls being processed finish first
    if (mounted_) {
        fuse_session_unmount(session_);
        mounted_ = false;
    }
    // Closing /dev/fuse aborts the connection: a client still holding a file
    // gets ENOTCONN instead of waiting for a daemon that is gone.
    fuse_session_destroy(session_);
    session_ = nullptr;

    std::set<OpenNode*> left;
    {
        MutexLock lock(open_mutex_);
        left.swap(open_nodes_);
    }
    for (OpenNode* open_node : left) {
        std::unique_ptr<OpenNode> owned(open_node);
        if (owned->file) {
            owned->file->release();
        }
    }
}

FuseNode::~FuseNode() {
    stop();
}

}  // namespace gf::node
