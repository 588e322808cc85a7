// A C++ client over the goldfish address space UAPI, on any fd that speaks it:
// the node served by goldfish-asd or a kernel driver's node in a real guest.
#pragma once

#include <linux/goldfish_address_space.h>
#include <sys/mman.h>

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "hw/context_types.h"

namespace gf::client {

inline constexpr const char* kDefaultNodePath = "/dev/" GOLDFISH_ADDRESS_SPACE_DEVICE_NAME;

using Ping = goldfish_address_space_ping;

class Block;
class SharedClaim;
class HostAllocation;
class HostMemoryAllocator;

// One open file of the node: its own host handle. Move-only. The file is closed once the
// session and everything handed out from it (Block, SharedClaim, HostAllocation) are gone:
// those share the file's ownership, so moving or destroying the session never leaves them
// freeing through a closed or reused fd.
class Session {
  public:
    static Result<Session> open(const std::string& path = kDefaultNodePath);
    // Takes ownership of an fd that is already open on a node.
    static Session adopt(int fd) { return Session(std::make_shared<const UniqueFd>(fd)); }

    // The moved-from session holds no file: its calls fail with EBADF.
    Session(Session&& other) noexcept = default;
    Session& operator=(Session&& other) noexcept = default;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session() = default;

    int fd() const { return file_ ? file_->get() : -1; }  // -1 once moved from

    // The raw ioctls, errno on failure.
    Result<goldfish_address_space_allocate_block> allocate_block(uint64_t size) const;
    Result<void> deallocate_block(uint64_t offset) const;
    Result<Ping> ping(const Ping& request) const;
    Result<void> claim_shared(uint64_t offset, uint64_t size) const;
    Result<void> unclaim_shared(uint64_t offset) const;

    // A ping with only metadata and version set (the form real clients send).
    Result<Ping> ping(uint64_t metadata, uint64_t offset = 0, uint64_t size = 0) const;
    // The create ping: EPROTO if the host refused the type (metadata ~0).
    Result<void> create_context(hw::ContextType type) const;

    // RAII forms: the Block / SharedClaim undoes itself when destroyed, through this
    // session's file, which it keeps open until then.
    Result<Block> allocate(uint64_t size) const;
    Result<SharedClaim> claim(uint64_t offset, uint64_t size) const;

    // mmap(MAP_SHARED) of BAR1 [offset, offset + size): memory this session's file holds
    // (a block or a claim), shared with the host. Errno as the node gives it: ENODEV where
    // it maps nothing (an ioctl-only node), EINVAL for an unaligned offset, EPERM from a
    // kernel driver for a range the file does not own.
    Result<Mapping> map(uint64_t offset, uint64_t size, int prot = PROT_READ | PROT_WRITE) const;

  private:
    friend class Block;
    friend class SharedClaim;
    friend class HostAllocation;
    friend class HostMemoryAllocator;
    explicit Session(std::shared_ptr<const UniqueFd> file) : file_(std::move(file)) {}
    // Another session on the same open file (no new fd): what a RAII object frees through.
    Session share() const { return Session(file_); }
    bool holds_file() const { return file_ != nullptr; }

    std::shared_ptr<const UniqueFd> file_;  // null once moved from
};

// A block of BAR1 owned by a session's file; DEALLOCATE_BLOCK on destruction.
class Block {
  public:
    Block(Block&& other) noexcept = default;  // `other` is left owning nothing
    Block& operator=(Block&& other) noexcept;
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;
    ~Block();

    uint64_t offset() const { return offset_; }
    uint64_t size() const { return size_; }
    uint64_t phys_addr() const { return phys_addr_; }
    // Frees now and reports the result; the destructor then does nothing.
    Result<void> free();
    // The block's memory (Session::map); unmap it before the block is freed.
    Result<Mapping> map(int prot = PROT_READ | PROT_WRITE) const;

  private:
    friend class Session;
    Block(Session session, const goldfish_address_space_allocate_block& b)
        : session_(std::move(session)), offset_(b.offset), size_(b.size), phys_addr_(b.phys_addr) {}
    Session session_;  // shares the file; holds none once freed or moved from
    uint64_t offset_ = 0, size_ = 0, phys_addr_ = 0;
};

// A claimed host-owned range; UNCLAIM_SHARED on destruction.
class SharedClaim {
  public:
    SharedClaim(SharedClaim&& other) noexcept = default;  // `other` is left owning nothing
    SharedClaim& operator=(SharedClaim&& other) noexcept;
    SharedClaim(const SharedClaim&) = delete;
    SharedClaim& operator=(const SharedClaim&) = delete;
    ~SharedClaim();

    uint64_t offset() const { return offset_; }
    uint64_t size() const { return size_; }
    Result<void> release();
    // The claimed memory (Session::map).
    Result<Mapping> map(int prot = PROT_READ | PROT_WRITE) const;

  private:
    friend class Session;
    SharedClaim(Session session, uint64_t offset, uint64_t size)
        : session_(std::move(session)), offset_(offset), size_(size) {}
    Session session_;  // shares the file; holds none once released or moved from
    uint64_t offset_ = 0, size_ = 0;
};

}  // namespace gf::client
