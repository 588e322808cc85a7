#include "client/session.h"

#include <cstdint>

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <utility>

namespace gf::client {
namespace {

// The UAPI's version field: real clients send the struct's size.
constexpr uint32_t kPingVersion = sizeof(Ping);
constexpr uint64_t kHostFailure = ~uint64_t{0};

Result<void> call(int fd, unsigned long cmd, void* arg) {
    if (::ioctl(fd, cmd, arg) != 0) {
        return fail(errno);
    }
    return {};
}

}  // namespace

Result<Session> Session::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return fail(errno);
    }
    return adopt(fd);
}

Result<goldfish_address_space_allocate_block> Session::allocate_block(uint64_t size) const {
    goldfish_address_space_allocate_block arg{.size = size, .offset = 0, .phys_addr = 0};
    GF_TRY(call(fd(), GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &arg));
    return arg;
}

Result<void> Session::deallocate_block(uint64_t offset) const {
    return call(fd(), GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &offset);
}

Result<Ping> Session::ping(const Ping& request) const {
    Ping arg = request;
    GF_TRY(call(fd(), GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &arg));
    return arg;
}

Result<Ping> Session::ping(uint64_t metadata, uint64_t offset, uint64_t size) const {
    Ping request{};
    request.offset = offset;
    request.size = size;
    request.metadata = metadata;
    request.version = kPingVersion;
    return ping(request);
}

Result<void> Session::claim_shared(uint64_t offset, uint64_t size) const {
    goldfish_address_space_claim_shared arg{.offset = offset, .size = size};
    return call(fd(), GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &arg);
}

Result<void> Session::unclaim_shared(uint64_t offset) const {
    return call(fd(), GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, &offset);
}

Result<void> Session::create_context(hw::ContextType type) const {
    Ping reply = GF_TRY(ping(static_cast<uint64_t>(type)));
    if (reply.metadata == kHostFailure) {
        return fail(EPROTO);
    }
    return {};
}

Result<Mapping> Session::map(uint64_t offset, uint64_t size, int prot) const {
    if (size == 0 || size > SIZE_MAX || offset > static_cast<uint64_t>(INT64_MAX)) {
        return fail(EINVAL);
    }
    return Mapping::map(static_cast<size_t>(size), prot, MAP_SHARED, fd(),
                        static_cast<off_t>(offset));
}

Result<Mapping> Block::map(int prot) const {
    if (!session_.holds_file()) {
        return fail(EBADF);  // freed or moved from
    }
    return session_.map(offset_, size_, prot);
}

Result<Mapping> SharedClaim::map(int prot) const {
    if (!session_.holds_file()) {
        return fail(EBADF);
    }
    return session_.map(offset_, size_, prot);
}

Result<Block> Session::allocate(uint64_t size) const {
    goldfish_address_space_allocate_block b = GF_TRY(allocate_block(size));
    return Block(share(), b);
}

Result<SharedClaim> Session::claim(uint64_t offset, uint64_t size) const {
    GF_TRY(claim_shared(offset, size));
    return SharedClaim(share(), offset, size);
}

Block& Block::operator=(Block&& other) noexcept {
    if (this != &other) {
        (void)free();
        session_ = std::move(other.session_);
        offset_ = other.offset_;
        size_ = other.size_;
        phys_addr_ = other.phys_addr_;
    }
    return *this;
}

Block::~Block() {
    (void)free();
}

Result<void> Block::free() {
    if (!session_.holds_file()) {
        return {};
    }
    // Whatever the answer, this object no longer owns the block: a failed
    // DEALLOCATE means the node did not know it, and the node frees on close anyway.
    // The last owner of the file closes it after the ioctl.
    const Session owner = std::move(session_);
    return owner.deallocate_block(offset_);
}

SharedClaim& SharedClaim::operator=(SharedClaim&& other) noexcept {
    if (this != &other) {
        (void)release();
        session_ = std::move(other.session_);
        offset_ = other.offset_;
        size_ = other.size_;
    }
    return *this;
}

SharedClaim::~SharedClaim() {
    (void)release();
}

Result<void> SharedClaim::release() {
    if (!session_.holds_file()) {
        return {};
    }
    const Session owner = std::move(session_);
    return owner.unclaim_shared(offset_);
}

}  // namespace gf::client
