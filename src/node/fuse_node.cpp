#define FUSE_USE_VERSION 35
#include "node/fuse_node.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/checked.h"
#include "base/unique_fd.h"
#include "driver/driver.h"
#include "driver/file.h"
#include "node/mapping_scan.h"

namespace gf::node {
namespace {

// Inode numbers: the root and the two fixed files keep theirs; every lookup of the node
// gets a fresh node id from kFirstNodeId up, while stat() always shows kNodeIno.
constexpr fuse_ino_t kNodeIno = 2;
constexpr fuse_ino_t kStatusIno = 3;
constexpr fuse_ino_t kBar1Ino = 4;
constexpr uint64_t kFirstNodeId = 16;
constexpr double kFixedTimeout = 1.0;
constexpr auto kInitLimit = std::chrono::seconds(10);
// How often files closed with live mappings are checked again: soon at first, then less
// often while none goes. Each check scans other processes' maps (no lock of the device's);
// only when that shows no mapping does the driver's check park the file's ranges.
constexpr auto kLingerFirstRetry = std::chrono::milliseconds(20);
constexpr auto kLingerMaxRetry = std::chrono::milliseconds(1000);
// The scan is a hint that can err towards "mapped" (a process mapping its own file at the
// same offsets): every so many checks of a file the authoritative one runs regardless.
constexpr unsigned kAuthoritativeEvery = 16;
// The scan reads every process's maps: for a file with few ranges the authoritative check
// (a few short holds of BAR1's layout lock) costs less, and runs straight away.
constexpr size_t kScanAboveRanges = 256;

bool is_node(fuse_ino_t ino) {
    return ino >= kFirstNodeId;
}

std::string kernel_release() {
    utsname u{};
    return ::uname(&u) == 0 ? u.release : "unknown";
}

}  // namespace

// What fi->fh points to for an open of the node, the status file or the bar1 file.
struct FuseNode::OpenNode {
    fuse_ino_t ino = 0;
    std::shared_ptr<driver::File> file;  // the node
    int32_t backing_id = 0;              // the node's passthrough registration, if any
    std::string status;                  // the status file: a snapshot taken at open
    unsigned lingering_checks = 0;       // by the reaper, its only user once lingering
};

struct FuseNode::Ops {
    static FuseNode& self(fuse_req_t req) {
        return static_cast<passthrough::Shim*>(fuse_req_userdata(req))->context<FuseNode>();
    }

    static struct stat attributes(const FuseNode& node, fuse_ino_t ino) {
        struct stat st {};
        st.st_ino = is_node(ino) ? kNodeIno : ino;
        st.st_nlink = ino == FUSE_ROOT_ID ? 2 : 1;
        st.st_atime = st.st_mtime = st.st_ctime = node.start_time_;
        if (ino == FUSE_ROOT_ID) {
            st.st_mode = S_IFDIR | 0755;
        } else if (is_node(ino) || ino == kNodeIno) {
            st.st_mode = S_IFREG | (node.config_.mode & 07777);
            st.st_uid = node.config_.uid;
            st.st_gid = node.config_.gid;
            st.st_size = static_cast<off_t>(node.config_.node_size);
        } else if (ino == kBar1Ino) {
            st.st_mode = S_IFREG | 0600;  // root only: it shows every file's memory
            st.st_size = static_cast<off_t>(node.config_.bar1 ? node.config_.bar1->size : 0);
        } else {
            st.st_mode = S_IFREG | 0444;
        }
        return st;
    }

    static bool is_live_node(FuseNode& node, fuse_ino_t ino) {
        MutexLock lock(node.nodes_mutex_);
        return node.nodes_.contains(ino);
    }

    static void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
        FuseNode& node = self(req);
        fuse_entry_param e{};
        if (parent == FUSE_ROOT_ID && std::strcmp(name, kNodeFileName) == 0) {
            // A fresh node id that is never cached: every open walks the name again and
            // gets an inode, and so a memory file, of its own.
            {
                MutexLock lock(node.nodes_mutex_);
                e.ino = node.next_node_id_++;
                e.generation = node.generations_();
                node.nodes_[e.ino] = NodeEntry{1, false};
            }
            e.attr = attributes(node, e.ino);
            if (fuse_reply_entry(req, &e) != 0) {
                MutexLock lock(node.nodes_mutex_);
                node.nodes_.erase(e.ino);  // the kernel never got it, so never forgets it
            }
            return;
        }
        fuse_ino_t ino = 0;
        if (parent == FUSE_ROOT_ID && std::strcmp(name, kStatusFileName) == 0) {
            ino = kStatusIno;
        } else if (parent == FUSE_ROOT_ID && std::strcmp(name, kBar1FileName) == 0 &&
                   node.config_.bar1) {
            ino = kBar1Ino;
        } else {
            fuse_reply_err(req, ENOENT);
            return;
        }
        e.ino = ino;
        e.attr = attributes(node, ino);
        e.attr_timeout = kFixedTimeout;
        e.entry_timeout = kFixedTimeout;
        fuse_reply_entry(req, &e);
    }

    static void forget_one(FuseNode& node, fuse_ino_t ino, uint64_t nlookup) {
        if (!is_node(ino)) {
            return;
        }
        MutexLock lock(node.nodes_mutex_);
        auto it = node.nodes_.find(ino);
        if (it == node.nodes_.end()) {
            return;
        }
        it->second.lookups -= std::min(it->second.lookups, nlookup);
        if (it->second.lookups == 0) {
            node.nodes_.erase(it);
        }
    }

    static void forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        forget_one(self(req), ino, nlookup);
        fuse_reply_none(req);
    }

    static void forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
        FuseNode& node = self(req);
        for (size_t i = 0; i < count; ++i) {
            forget_one(node, forgets[i].ino, forgets[i].nlookup);
        }
        fuse_reply_none(req);
    }

    static void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
        FuseNode& node = self(req);
        const bool known = ino == FUSE_ROOT_ID || ino == kStatusIno ||
                           (ino == kBar1Ino && node.config_.bar1) ||
                           (is_node(ino) && is_live_node(node, ino));
        if (!known) {
            fuse_reply_err(req, ENOENT);
            return;
        }
        struct stat st = attributes(node, ino);
        fuse_reply_attr(req, &st, is_node(ino) ? 0.0 : kFixedTimeout);
    }

    static void setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
        fuse_reply_err(req, EPERM);  // modes are the daemon's --mode / --group; sizes are fixed
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
        std::vector<Entry> entries = {{".", FUSE_ROOT_ID, S_IFDIR},
                                      {"..", FUSE_ROOT_ID, S_IFDIR},
                                      {kNodeFileName, kNodeIno, S_IFREG},
                                      {kStatusFileName, kStatusIno, S_IFREG}};
        if (self(req).config_.bar1) {
            entries.push_back({kBar1FileName, kBar1Ino, S_IFREG});
        }
        std::vector<char> buf(size);
        size_t used = 0;
        for (off_t i = off; i >= 0 && i < static_cast<off_t>(entries.size()); ++i) {
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

    // Opens a driver file for node id `ino`, with its memory registered for passthrough.
    static int open_node_file(FuseNode& node, fuse_ino_t ino, OpenNode& open_node) {
        {
            // Once in its life: a second OPEN of a node id comes from a re-open route
            // (/proc/PID/fd, map_files, a file handle) into that file's memory.
            MutexLock lock(node.nodes_mutex_);
            auto it = node.nodes_.find(ino);
            if (it == node.nodes_.end() || it->second.opened) {
                return EBUSY;
            }
            it->second.opened = true;
        }
        driver::OpenOptions options;
        options.memory = node.mmap_available();
        Result<std::shared_ptr<driver::File>> file = node.driver_.open(options);
        if (!file) {
            return file.error().value();
        }
        open_node.file = std::move(*file);
        if (std::optional<int> memory = open_node.file->memory_fd()) {
            Result<int32_t> id = passthrough::Shim::open_backing(node.fuse_fd_, *memory);
            if (!id) {
                open_node.file->release();
                return id.error().value();
            }
            open_node.backing_id = *id;
            passthrough::Shim::set_backing_id_for_this_reply(*id);
        }
        return 0;
    }

    static void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
        FuseNode& node = self(req);
        auto open_node = std::make_unique<OpenNode>();
        open_node->ino = ino;
        // A device, not a file: no page cache, so read and write reach the daemon (which
        // refuses them on the node) while mmap goes to the memory file. The kernel refuses
        // (EIO) a passthrough open that is also non-seekable, so only status is.
        fi->direct_io = 1;
        if (is_node(ino)) {
            if (int err = open_node_file(node, ino, *open_node); err != 0) {
                fuse_reply_err(req, err);
                return;
            }
        } else if (ino == kStatusIno) {
            if ((fi->flags & O_ACCMODE) != O_RDONLY) {
                fuse_reply_err(req, EACCES);
                return;
            }
            open_node->status = node.status_();
            fi->nonseekable = 1;
        } else if (ino == kBar1Ino && node.config_.bar1) {
            // pread/pwrite address BAR1 by file offset.
        } else {
            fuse_reply_err(req, EISDIR);
            return;
        }
        fi->fh = reinterpret_cast<uint64_t>(open_node.get());
        {
            MutexLock lock(node.open_mutex_);
            node.open_nodes_.insert(open_node.get());
        }
        OpenNode* raw = open_node.release();
        if (fuse_reply_open(req, fi) != 0) {
            // The opener is gone (interrupted): nobody will release this file.
            finish(node, raw);
        }
    }

    // Ends an open file: its driver file releases its handle and blocks, unless a client
    // still maps its memory; then it lingers until the reaper finds the mapping gone.
    static void finish(FuseNode& node, OpenNode* open_node) {
        {
            MutexLock lock(node.open_mutex_);
            if (node.open_nodes_.erase(open_node) == 0) {
                return;  // stop() already ended it
            }
        }
        std::unique_ptr<OpenNode> owned(open_node);
        if (owned->backing_id > 0) {
            // Only a lookup handle: mappings keep the memory file itself.
            passthrough::Shim::close_backing(node.fuse_fd_, owned->backing_id);
            owned->backing_id = 0;
        }
        if (!owned->file || node.release_if_unmapped(*owned, /*force=*/false)) {
            return;
        }
        {
            MutexLock lock(node.open_mutex_);
            if (!node.stopping_) {
                node.lingering_.insert(owned.release());
            }
        }
        node.lingering_cv_.notify_one();
        if (owned) {
            owned->file->release();  // stopping: no one would check it again
        }
    }

    static void release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
        // Sound: fh is the OpenNode this node's open() handed to the kernel, and
        // the kernel sends exactly one release per successful open.
        finish(self(req), reinterpret_cast<OpenNode*>(fi->fh));
        fuse_reply_err(req, 0);
    }

    static void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
        FuseNode& node = self(req);
        if (ino == kBar1Ino && node.config_.bar1) {
            const Bar1Access& bar1 = *node.config_.bar1;
            if (off < 0 || static_cast<uint64_t>(off) >= bar1.size) {
                fuse_reply_err(req, ENXIO);  // outside BAR1
                return;
            }
            const uint64_t n = std::min<uint64_t>(size, bar1.size - static_cast<uint64_t>(off));
            std::vector<std::byte> buf(n);
            Result<size_t> got = bar1.read(static_cast<uint64_t>(off), buf);
            if (!got) {
                fuse_reply_err(req, got.error().value());
                return;
            }
            fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), *got);
            return;
        }
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

    static void write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
                      fuse_file_info*) {
        FuseNode& node = self(req);
        if (ino == kBar1Ino && node.config_.bar1) {
            const Bar1Access& bar1 = *node.config_.bar1;
            if (off < 0 || !range_within(static_cast<uint64_t>(off), size, bar1.size)) {
                fuse_reply_err(req, ENXIO);  // not wholly inside BAR1: nothing written
                return;
            }
            Result<size_t> put =
                bar1.write(static_cast<uint64_t>(off),
                           std::span(reinterpret_cast<const std::byte*>(data), size));
            if (!put) {
                fuse_reply_err(req, put.error().value());
                return;
            }
            fuse_reply_write(req, *put);
            return;
        }
        fuse_reply_err(req, is_node(ino) ? EINVAL : EBADF);
    }

    static void ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void*, fuse_file_info* fi,
                      unsigned flags, const void* in_buf, size_t in_bufsz, size_t out_bufsz) {
        if (!is_node(ino)) {
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
        ops.forget = forget;
        ops.forget_multi = forget_multi;
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
    : config_(std::move(config)),
      driver_(driver),
      status_(std::move(status)),
      shim_(config_.no_mmap_reason.empty(), this),
      next_node_id_(kFirstNodeId),
      generations_(std::random_device{}()) {}

Result<std::unique_ptr<FuseNode>> FuseNode::mount(const FuseNodeConfig& config,
                                                  driver::Driver& driver, StatusFn status) {
    if (config.threads == 0) {
        return fail(EINVAL);
    }
    std::unique_ptr<FuseNode> node(new FuseNode(config, driver, std::move(status)));
    node->start_time_ = ::time(nullptr);

    UniqueFd fuse_fd(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
    if (!fuse_fd) {
        return fail(errno);
    }
    // A directory-root mount that anyone may use as far as the files' modes allow, with
    // the kernel checking those modes (default_permissions). The daemon mounts it itself
    // (it is root) because the shim must own the /dev/fuse fd.
    const std::string options = "fd=" + std::to_string(fuse_fd.get()) +
                                ",rootmode=40000,user_id=0,group_id=0,allow_other,"
                                "default_permissions";
    if (::mount("goldfish-asd", config.mount_dir.c_str(), "fuse.goldfish-asd", MS_NOSUID | MS_NODEV,
                options.c_str()) != 0) {
        return fail(errno);
    }
    node->mounted_ = true;

    const char* argv[] = {"goldfish-asd"};
    fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
    static constexpr fuse_lowlevel_ops ops = Ops::table();
    node->session_ = fuse_session_new(&args, &ops, sizeof ops, &node->shim_);
    fuse_opt_free_args(&args);  // fuse_session_new may have copied them onto the heap
    if (node->session_ == nullptr) {
        return fail(EINVAL);
    }
    node->fuse_fd_ = fuse_fd.get();
    GF_TRY(node->shim_.install(node->session_, fuse_fd.get()));
    fuse_fd.release();  // the session closes it
    node->workers_ = std::make_unique<FuseWorkers>(node->session_, config.threads);

    // The kernel sends INIT as soon as the mount exists; the answer says whether
    // passthrough (and so mmap) is on.
    const auto deadline = std::chrono::steady_clock::now() + kInitLimit;
    while (!node->shim_.init_done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return fail(ETIMEDOUT);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // Served by the workers: the root's device is the one a mapping of the node shows.
    if (struct stat st{}; ::stat(config.mount_dir.c_str(), &st) == 0) {
        node->mount_dev_ = st.st_dev;
    }
    bool available = false;
    std::string reason;
    if (!config.no_mmap_reason.empty()) {
        reason = config.no_mmap_reason;
    } else if ((node->shim_.kernel_flags() & passthrough::kInitPassthrough) == 0) {
        reason = "kernel " + kernel_release() +
                 " has no FUSE passthrough (it needs Linux 6.9 or later built with "
                 "CONFIG_FUSE_PASSTHROUGH)";
    } else if (!node->shim_.negotiated()) {
        reason = "the kernel did not accept FUSE passthrough";
    } else {
        // Registering a backing file needs CAP_SYS_ADMIN in the initial user namespace.
        UniqueFd probe(::memfd_create("goldfish-asd-probe", MFD_CLOEXEC));
        Result<int32_t> id = probe ? passthrough::Shim::open_backing(node->fuse_fd_, probe.get())
                                   : Result<int32_t>(fail(errno));
        if (id) {
            passthrough::Shim::close_backing(node->fuse_fd_, *id);
            available = true;
        } else {
            reason = std::string("FUSE passthrough refused a backing file: ") +
                     std::strerror(id.error().value()) +
                     (id.error().value() == EPERM ? " (it needs CAP_SYS_ADMIN)" : "");
        }
    }
    {
        MutexLock lock(node->mmap_mutex_);
        node->mmap_available_ = available;
        node->mmap_reason_ = std::move(reason);
    }
    node->reaper_ = std::thread([raw = node.get()] { raw->reap_lingering(); });
    return node;
}

std::string FuseNode::node_file() const {
    return config_.mount_dir + "/" + kNodeFileName;
}

bool FuseNode::mmap_available() const {
    MutexLock lock(mmap_mutex_);
    return mmap_available_;
}

std::string FuseNode::mmap_unavailable_reason() const {
    MutexLock lock(mmap_mutex_);
    return mmap_reason_;
}

uint64_t FuseNode::lingering_files() const {
    MutexLock lock(open_mutex_);
    return lingering_.size();
}

bool FuseNode::release_if_unmapped(OpenNode& open_node, bool force) {
    driver::File& file = *open_node.file;
    const std::optional<int> memory = file.memory_fd();
    if (!force && memory) {
        MappedFile mapped;
        mapped.node_dev = mount_dev_;
        mapped.node_ino = kNodeIno;
        struct stat st {};
        if (::fstat(*memory, &st) == 0) {
            mapped.memory_dev = st.st_dev;
            mapped.memory_ino = st.st_ino;
        }
        const driver::FileBooks books = file.books();
        mapped.ranges.insert(books.blocks.begin(), books.blocks.end());
        mapped.ranges.insert(books.claims.begin(), books.claims.end());
        if (mapped.ranges.size() > kScanAboveRanges) {
            mapping_scans_.fetch_add(1, std::memory_order_relaxed);
            if (scan_for_mappings(mapped, ::getpid()) == MappingScan::kMapped) {
                return false;
            }
        }
    }
    return file.release_if_unmapped();
}

void FuseNode::reap_lingering() {
    auto retry = kLingerFirstRetry;
    for (;;) {
        std::vector<OpenNode*> candidates;
        {
            MutexLock lock(open_mutex_);
            if (stopping_) {
                return;
            }
            candidates.assign(lingering_.begin(), lingering_.end());
        }
        bool released = false;
        for (OpenNode* open_node : candidates) {
            // Only this thread and stop() (after joining it) take files out of lingering_.
            const bool force = ++open_node->lingering_checks % kAuthoritativeEvery == 0;
            if (release_if_unmapped(*open_node, force)) {
                MutexLock lock(open_mutex_);
                lingering_.erase(open_node);
                delete open_node;
                released = true;
            }
        }
        retry = released || candidates.empty() ? kLingerFirstRetry
                                               : std::min(2 * retry, kLingerMaxRetry);
        std::unique_lock<std::mutex> wait(open_mutex_.native());
        // Sound: `wait` holds open_mutex_, which the predicates read under.
        if (candidates.empty()) {
            lingering_cv_.wait(wait, [this]() GF_NO_THREAD_SAFETY_ANALYSIS {
                return stopping_ || !lingering_.empty();
            });
        } else {
            lingering_cv_.wait_for(wait, retry,
                                   [this]() GF_NO_THREAD_SAFETY_ANALYSIS { return stopping_; });
        }
    }
}

void FuseNode::stop() {
    {
        MutexLock lock(open_mutex_);
        stopping_ = true;
    }
    lingering_cv_.notify_all();
    if (reaper_.joinable()) {
        reaper_.join();
    }
    workers_.reset();  // calls being processed finish first
    if (mounted_) {
        ::umount2(config_.mount_dir.c_str(), MNT_DETACH);
        mounted_ = false;
    }
    if (session_ != nullptr) {
        // Closing /dev/fuse aborts the connection: a client still holding a file
        // gets ENOTCONN instead of waiting for a daemon that is gone.
        fuse_session_destroy(session_);
        session_ = nullptr;
    }
    std::set<OpenNode*> left;
    {
        MutexLock lock(open_mutex_);
        left.swap(open_nodes_);
        left.merge(lingering_);
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
