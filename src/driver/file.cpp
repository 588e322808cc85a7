#include "driver/file.h"

#include <bit>
#include <cstring>
#include <utility>

#include "base/checked.h"
#include "base/scope_guard.h"
#include "base/shared_memory.h"
#include "driver/hardware.h"
#include "driver/runtime.h"

namespace gf::driver {

// The ping page is little-endian by contract; so is every host we build for.
static_assert(std::endian::native == std::endian::little);
static_assert(sizeof(goldfish_address_space_ping) == kPingRequestSize);

namespace {

// Copies the argument in, runs `op` on it and copies the result back; the
// caller's bytes are untouched on failure.
template <typename Arg, typename Op>
int with_argument(std::span<std::byte> arg, Op&& op) {
    if (arg.size() != sizeof(Arg)) {
        return -EINVAL;
    }
    Arg value;
    std::memcpy(&value, arg.data(), sizeof(Arg));
    const Result<void> result = op(value);
    if (!result) {
        return result.error().negative();
    }
    std::memcpy(arg.data(), &value, sizeof(Arg));
    return 0;
}

}  // namespace

Result<std::shared_ptr<File>> File::open(const std::shared_ptr<Runtime>& runtime,
                                         const pci::SharedMemoryBar* area) {
    auto operation = GF_TRY(runtime->gate.enter());
    std::optional<pci::BarFile> memory;
    if (area != nullptr) {
        Result<pci::BarFile> opened = pci::BarFile::open(runtime->device, *area);
        if (opened) {
            memory.emplace(std::move(*opened));
        } else if (opened.error().value() != ENODEV) {
            return fail(opened.error());  // ENODEV: this platform maps nothing
        }
    }
    pci::DmaPage ping_page = GF_TRY(pci::DmaPage::allocate(runtime->device));
    const uint32_t handle = GF_TRY(runtime->controller.gen_handle());
    ScopeGuard destroy_handle([&] { (void)runtime->controller.destroy_handle(handle); });
    GF_TRY(runtime->controller.tell_ping_info_addr(handle, ping_page.phys_addr()));

    auto file = std::make_shared<File>(PrivateTag{}, runtime, handle, std::move(ping_page),
                                       std::move(memory));
    // From here the file owns the handle: its release() destroys it.
    destroy_handle.dismiss();
    runtime->register_file(file.get());
    runtime->open_files.fetch_add(1, std::memory_order_relaxed);
    return file;
}

File::File(PrivateTag, std::shared_ptr<Runtime> runtime, uint32_t handle, pci::DmaPage ping_page,
           std::optional<pci::BarFile> memory)
    : runtime_(std::move(runtime)),
      handle_(handle),
      ping_page_(std::move(ping_page)),
      memory_(std::move(memory)) {}

File::~File() {
    release();
}

int File::ioctl(uint32_t cmd, std::span<std::byte> arg) {
    switch (cmd) {
        case GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK:
            return with_argument<goldfish_address_space_allocate_block>(
                arg, [this](goldfish_address_space_allocate_block& block) -> Result<void> {
                    block = GF_TRY(allocate_block(block.size));
                    return {};
                });
        case GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK:
            return with_argument<uint64_t>(
                arg, [this](uint64_t& offset) { return deallocate_block(offset); });
        case GOLDFISH_ADDRESS_SPACE_IOCTL_PING:
            return with_argument<goldfish_address_space_ping>(
                arg, [this](goldfish_address_space_ping& request) -> Result<void> {
                    request = GF_TRY(ping(request));
                    return {};
                });
        case GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED:
            return with_argument<goldfish_address_space_claim_shared>(
                arg, [this](goldfish_address_space_claim_shared& claim) {
                    return claim_shared(claim.offset, claim.size);
                });
        case GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED:
            return with_argument<uint64_t>(
                arg, [this](uint64_t& offset) { return unclaim_shared(offset); });
        default:
            return -ENOTTY;
    }
}

Result<void> File::check_live_locked() const {
    if (!live_) {
        return fail(ENODEV);
    }
    return {};
}

Result<goldfish_address_space_allocate_block> File::allocate_block(uint64_t size) {
    auto operation = GF_TRY(runtime_->gate.enter());
    MutexLock lock(mutex_);
    GF_TRY(check_live_locked());
    if (blocks_.count() >= runtime_->config.max_blocks_per_file) {
        return fail(ENOSPC);
    }
    Controller& controller = runtime_->controller;
    const HostBlock block = GF_TRY(controller.allocate_block(size));
    ScopeGuard free_on_host([&] { (void)controller.deallocate_block(block.offset); });

    // Device-supplied: trusted only once it is a block of at least the size
    // asked for, wholly inside BAR1.
    if (block.size == 0 || block.size < size ||
        !range_within(block.offset, block.size, runtime_->area_size)) {
        return fail(EIO);
    }
    const uint64_t phys_addr = GF_TRY(checked_add(runtime_->area_phys_start, block.offset));
    if (!blocks_.insert(block.offset, block.size)) {
        // The device handed out a range this file already holds. If it is the
        // same block, freeing it would free the one we track: keep it.
        if (blocks_.find(block.offset)) {
            free_on_host.dismiss();
        }
        return fail(EIO);
    }
    // What a kernel driver's mmap would map: the block's BAR1 pages, here bound
    // into this file's memory file once, at allocation.
    if (memory_) {
        if (Result<void> bound = memory_->bind(block.offset, block.size, pci::BarBinding::kFresh);
            !bound) {
            blocks_.erase(block.offset);
            // ENOMEM is a limit; any other refusal means the device's books disagree
            // with the block it just handed out.
            return fail(bound.error().value() == ENOMEM ? ENOMEM : EIO);
        }
    }
    free_on_host.dismiss();
    runtime_->blocks.fetch_add(1, std::memory_order_relaxed);
    runtime_->block_bytes.fetch_add(block.size, std::memory_order_relaxed);

    goldfish_address_space_allocate_block reply{};
    reply.size = block.size;
    reply.offset = block.offset;
    reply.phys_addr = phys_addr;
    return reply;
}

Result<void> File::deallocate_block(uint64_t offset) {
    auto operation = GF_TRY(runtime_->gate.enter());
    MutexLock lock(mutex_);
    GF_TRY(check_live_locked());
    const auto size = blocks_.find(offset);
    if (!size) {
        return fail(ENXIO);
    }
    // Host first: if it refuses, it still holds the block, so we keep tracking it.
    GF_TRY(runtime_->controller.deallocate_block(offset));
    blocks_.erase(offset);
    runtime_->blocks.fetch_sub(1, std::memory_order_relaxed);
    runtime_->block_bytes.fetch_sub(*size, std::memory_order_relaxed);
    return {};
}

Result<goldfish_address_space_ping> File::ping(const goldfish_address_space_ping& request) {
    auto operation = GF_TRY(runtime_->gate.enter());
    MutexLock lock(mutex_);
    GF_TRY(check_live_locked());
    goldfish_address_space_ping header = request;
    // Modulo 2^64, as the C driver: real clients leave `offset` uninitialised in their create
    // ping, and the device validates every address it uses (a wrapped one lies below BAR1).
    header.offset = request.offset + runtime_->area_phys_start;

    // A live file always has its page. The page is ours alone under the file
    // lock; a well-behaved device touches it only during the PING register write
    // below, which returns once the device is done. A hostile one may write it
    // at any time (a PING of our handle of its own): every access is atomic.
    std::span<std::byte> page = ping_page_->bytes();
    fill_shared(page, std::byte{0});  // data_size (bytes 40..47) stays 0
    copy_to_shared(page, std::as_bytes(std::span{&header, 1}));
    // The host reads the page by the physical address it was told at open.
    GF_TRY(ping_page_->verify());
    GF_TRY(runtime_->controller.ping(handle_));

    goldfish_address_space_ping reply;
    copy_from_shared(std::as_writable_bytes(std::span{&reply, 1}), page);
    return reply;
}

Result<void> File::claim_shared(uint64_t offset, uint64_t size) {
    auto operation = GF_TRY(runtime_->gate.enter());
    MutexLock lock(mutex_);
    GF_TRY(check_live_locked());
    // Unlike the C and Rust drivers, a claim must be a real range inside BAR1
    // that overlaps none of this file's other claims (containment included).
    if (size == 0 || !range_within(offset, size, runtime_->area_size) ||
        claims_.overlaps(offset, size)) {
        return fail(EINVAL);
    }
    if (claims_.count() >= runtime_->config.max_claims_per_file) {
        return fail(ENOSPC);
    }
    claims_.insert(offset, size);
    runtime_->claims.fetch_add(1, std::memory_order_relaxed);
    if (memory_) {
        // Refused when the range is not host memory, or another file holds it: the
        // claim then stays bookkeeping, and no file ever sees another's memory.
        (void)memory_->bind(offset, size, pci::BarBinding::kHeld);
    }
    return {};
}

Result<void> File::unclaim_shared(uint64_t offset) {
    auto operation = GF_TRY(runtime_->gate.enter());
    MutexLock lock(mutex_);
    GF_TRY(check_live_locked());
    const auto size = claims_.find(offset);
    if (!size) {
        return fail(ENXIO);
    }
    if (memory_) {
        memory_->unbind(offset, *size);  // the host gets its memory back, with what we wrote
    }
    claims_.erase(offset);
    runtime_->claims.fetch_sub(1, std::memory_order_relaxed);
    return {};
}

FileBooks File::books() const {
    MutexLock lock(mutex_);
    FileBooks books;
    books.live = live_;
    books.handle = handle_;
    if (ping_page_) {
        books.ping_page_phys = ping_page_->phys_addr();
    }
    books.blocks = blocks_.ranges();
    books.claims = claims_.ranges();
    return books;
}

std::optional<int> File::memory_fd() const {
    MutexLock lock(mutex_);
    if (!memory_) {
        return std::nullopt;
    }
    return memory_->fd();
}

void File::release() {
    release_impl(/*only_if_unmapped=*/false);
}

bool File::release_if_unmapped() {
    return release_impl(/*only_if_unmapped=*/true);
}

bool File::release_impl(bool only_if_unmapped) {
    {
        // The usual path, without the runtime-wide lock.
        auto operation = runtime_->gate.enter();
        if (operation) {
            MutexLock lock(mutex_);
            if (only_if_unmapped && live_ && memory_) {
                // An error here (the platform could not tell) releases anyway.
                Result<bool> retired = memory_->retire();
                if (retired && !*retired) {
                    return false;
                }
            }
            cleanup_locked();
        }
    }
    // Once unbind has started the gate refuses us; retiring then cleans up
    // under the file list's lock, before unbind's revocation reaches this file
    // (and while BAR0 is still mapped) or after it (a no-op).
    runtime_->retire_file(this);
    return true;
}

void File::revoke() {
    MutexLock lock(mutex_);
    cleanup_locked();
}

void File::cleanup_locked() {
    if (!live_) {
        return;
    }
    live_ = false;
    Controller& controller = runtime_->controller;
    // Handle first, then blocks, as the C and Rust drivers. A host refusal
    // cannot be acted on here: the file is going away either way.
    (void)controller.destroy_handle(handle_);
    for (const auto& [offset, size] : blocks_.ranges()) {
        if (!controller.deallocate_block(offset)) {
            // Counted, so the driver's books still add up to what the device holds.
            runtime_->abandoned_blocks.fetch_add(1, std::memory_order_relaxed);
            runtime_->abandoned_block_bytes.fetch_add(size, std::memory_order_relaxed);
        }
        runtime_->blocks.fetch_sub(1, std::memory_order_relaxed);
        runtime_->block_bytes.fetch_sub(size, std::memory_order_relaxed);
    }
    blocks_.clear();
    // Claims are host-owned ranges: the host gets back what this file held of
    // them (the device took the blocks out of the memory file as it freed them).
    if (memory_) {
        for (const auto& [offset, size] : claims_.ranges()) {
            memory_->unbind(offset, size);
        }
    }
    runtime_->claims.fetch_sub(claims_.count(), std::memory_order_relaxed);
    claims_.clear();
    memory_.reset();
    ping_page_.reset();
    runtime_->open_files.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace gf::driver
