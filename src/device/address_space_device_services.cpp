// The device's side of DeviceServices: what contexts may ask of it, always under its lock.
#include <cerrno>

#include "device/address_space_device.h"

namespace gf::device {

uint64_t AddressSpaceDevice::phys_start_locked() const {
    return regs_.phys_start != 0 ? regs_.phys_start : phys_start_hint_;
}

std::optional<GuestBlock> AddressSpaceDevice::guest_block_containing_locked(uint64_t offset) const {
    return books_.guest_block_containing(offset);
}

Result<uint64_t> AddressSpaceDevice::alloc_shared_host_region_locked(uint64_t size) {
    return books_.alloc_host_region(size, faults_);
}

Result<void> AddressSpaceDevice::free_shared_host_region_locked(uint64_t offset) {
    return books_.free_host_region(offset);
}

Result<void> AddressSpaceDevice::add_memory_mapping_locked(uint64_t offset, uint64_t size,
                                                           uint32_t owner) {
    return books_.add_mapping(offset, size, owner, faults_);
}

Result<void> AddressSpaceDevice::remove_memory_mapping_locked(uint64_t offset, uint64_t size) {
    // The pages go back to the kernel and read as zero for whoever backs them next.
    return books_.remove_mapping(offset, size);
}

void AddressSpaceDevice::scrub_locked(uint64_t offset, uint64_t size) {
    (void)bar1_->scrub(offset, size);
}

SharedSlotsPool& AddressSpaceDevice::shared_slots_pool_locked() {
    return shared_slots_;
}

}  // namespace gf::device
