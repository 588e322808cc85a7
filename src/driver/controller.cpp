#include "driver/controller.h"

#include <climits>
#include <utility>

namespace gf::driver {

namespace {

template <Register kLow, Register kHigh>
void write64(const ControlBar& bar, uint64_t value) {
    bar.write32<kLow>(static_cast<uint32_t>(value));
    bar.write32<kHigh>(static_cast<uint32_t>(value >> 32));
}

template <Register kLow, Register kHigh>
uint64_t read64(const ControlBar& bar) {
    const uint64_t low = bar.read32<kLow>();
    const uint64_t high = bar.read32<kHigh>();
    return (high << 32) | low;
}

void command(const ControlBar& bar, Command cmd) {
    bar.write32<Register::COMMAND>(std::to_underlying(cmd));
}

}  // namespace

Controller::Controller(ControlBar bar) : bar_(std::move(bar)) {}

Result<ControlBar*> Controller::bar_locked() {
    if (!bar_) {
        return fail(ENXIO);
    }
    return &*bar_;
}

Result<void> Controller::status_locked(const ControlBar& bar) {
    // Device-supplied: a positive errno, but nothing stops a device from
    // reporting a value that would turn into a positive "success" when negated.
    const uint32_t status = bar.read32<Register::STATUS>();
    if (status == 0) {
        return {};
    }
    if (status > static_cast<uint32_t>(INT_MAX)) {
        return fail(EIO);
    }
    return fail(static_cast<int>(status));
}

Result<void> Controller::set_guest_page_size(uint32_t page_size) {
    MutexLock lock(registers_lock_);
    const ControlBar* bar = GF_TRY(bar_locked());
    bar->write32<Register::GUEST_PAGE_SIZE>(page_size);
    return {};
}

Result<void> Controller::set_phys_start(uint64_t phys_start) {
    MutexLock lock(registers_lock_);
    const ControlBar* bar = GF_TRY(bar_locked());
    write64<Register::PHYS_START_LOW, Register::PHYS_START_HIGH>(*bar, phys_start);
    return {};
}

Result<HostBlock> Controller::allocate_block(uint64_t size) {
    MutexLock lock(registers_lock_);
    const ControlBar* bar = GF_TRY(bar_locked());
    write64<Register::BLOCK_SIZE_LOW, Register::BLOCK_SIZE_HIGH>(*bar, size);
    command(*bar, Command::ALLOCATE_BLOCK);
    GF_TRY(status_locked(*bar));
    HostBlock block;
    block.offset = read64<Register::BLOCK_OFFSET_LOW, Register::BLOCK_OFFSET_HIGH>(*bar);
    block.size = read64<Register::BLOCK_SIZE_LOW, Register::BLOCK_SIZE_HIGH>(*bar);
    return block;
}

Result<void> Controller::deallocate_block(uint64_t offset) {
    MutexLock lock(registers_lock_);
    const ControlBar* bar = GF_TRY(bar_locked());
    write64<Register::BLOCK_OFFSET_LOW, Register::BLOCK_OFFSET_HIGH>(*bar, offset);
    command(*bar, Command::DEALLOCATE_BLOCK);
    return status_locked(*bar);
}

Result<uint32_t> Controller::gen_handle() {
    MutexLock lock(registers_lock_);
    const ControlBar* bar = GF_TRY(bar_locked());
    command(*bar, Command::GEN_HANDLE);
    const uint32_t handle = bar->read32<Register::HANDLE>();
    if (handle == kInvalidHandle) {
        return fail(EINVAL);
    }
    return handle;
}

Result<void> Controller::destroy_handle(uint32_t handle) {
    MutexLock lock(registers_lock_);
    const ControlBar* bar = GF_TRY(bar_locked());
    bar->write32<Register::HANDLE>(handle);
    command(*bar, Command::DESTROY_HANDLE);
    return {};
}

Result<void> Controller::tell_ping_info_addr(uint32_t handle, uint64_t phys) {
    MutexLock lock(registers_lock_);
    const ControlBar* bar = GF_TRY(bar_locked());
    bar->write32<Register::HANDLE>(handle);
    write64<Register::PING_INFO_ADDR_LOW, Register::PING_INFO_ADDR_HIGH>(*bar, phys);
    command(*bar, Command::TELL_PING_INFO_ADDR);
    // The device keeps the address it was told; anything else means it did not take it.
    if (read64<Register::PING_INFO_ADDR_LOW, Register::PING_INFO_ADDR_HIGH>(*bar) != phys) {
        return fail(EINVAL);
    }
    return {};
}

Result<void> Controller::ping(uint32_t handle) {
    MutexLock lock(registers_lock_);
    const ControlBar* bar = GF_TRY(bar_locked());
    bar->write32<Register::PING>(handle);
    return {};
}

void Controller::shutdown() {
    MutexLock lock(registers_lock_);
    bar_.reset();
}

}  // namespace gf::driver
