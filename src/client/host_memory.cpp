#include "client/host_memory.h"

#include <cerrno>
#include <utility>

namespace gf::client {
namespace {

constexpr uint64_t kAllocate = 1;
constexpr uint64_t kUnallocate = 2;

// A host command's answer: 0 is success; anything else (~0) is a refusal.
Result<Ping> host_command(const Session& session, uint64_t command, uint64_t offset,
                          uint64_t size) {
    Ping reply = GF_TRY(session.ping(command, offset, size));
    if (reply.metadata != 0) {
        return fail(EPROTO);
    }
    return reply;
}

}  // namespace

HostAllocation::HostAllocation(HostAllocation&& other) noexcept
    : session_(std::move(other.session_)),
      offset_(other.offset_),
      size_(other.size_),
      block_(std::move(other.block_)),
      claim_(std::move(other.claim_)),
      mapping_(std::move(other.mapping_)) {
    other.block_.reset();
    other.claim_.reset();
}

HostAllocation& HostAllocation::operator=(HostAllocation&& other) noexcept {
    if (this != &other) {
        (void)free();
        session_ = std::move(other.session_);
        offset_ = other.offset_;
        size_ = other.size_;
        block_ = std::move(other.block_);
        claim_ = std::move(other.claim_);
        mapping_ = std::move(other.mapping_);
        other.block_.reset();
        other.claim_.reset();
    }
    return *this;
}

Result<void> HostAllocation::free() {
    if (!session_.holds_file()) {
        return {};
    }
    const Session owner = std::move(session_);
    mapping_.reset();  // the client lets go of the memory before the host does
    Result<void> unallocated = host_command(owner, kUnallocate, offset_, 0).map([](auto&&) {});
    Result<void> returned = block_ ? block_->free() : claim_ ? claim_->release() : Result<void>{};
    block_.reset();
    claim_.reset();
    return unallocated ? returned : unallocated;
}

Result<HostMemoryAllocator> HostMemoryAllocator::open(const std::string& path, bool shared_slots,
                                                      bool map) {
    Session session = GF_TRY(Session::open(path));
    GF_TRY(session.create_context(shared_slots ? hw::ContextType::SharedSlotsHostMemoryAllocator
                                               : hw::ContextType::HostMemoryAllocator));
    return HostMemoryAllocator(std::move(session), shared_slots, map);
}

Result<HostAllocation> HostMemoryAllocator::allocate(uint64_t size) const {
    if (shared_slots_) {
        // The host picks the slot and answers with its BAR1 offset and aligned size.
        Ping reply = GF_TRY(host_command(session_, kAllocate, 0, size));
        HostAllocation allocation(session_.share(), reply.offset, reply.size);
        Result<SharedClaim> claim = session_.claim(reply.offset, reply.size);
        if (!claim) {
            return fail(claim.error());  // `allocation` unallocates the slot
        }
        allocation.claim_.emplace(std::move(*claim));
        if (map_) {
            allocation.mapping_ = GF_TRY(allocation.claim_->map());
        }
        return allocation;
    }
    // The guest reserves the range; the host backs it.
    Block block = GF_TRY(session_.allocate(size));
    GF_TRY(host_command(session_, kAllocate, block.offset(), block.size()));
    HostAllocation allocation(session_.share(), block.offset(), block.size());
    allocation.block_.emplace(std::move(block));
    if (map_) {
        // On failure `allocation` unallocates on the host and frees the block.
        allocation.mapping_ = GF_TRY(allocation.block_->map());
    }
    return allocation;
}

}  // namespace gf::client
