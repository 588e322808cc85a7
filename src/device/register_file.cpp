#include "device/register_file.h"

#include <algorithm>
#include <bit>

#include "device/registers.h"

namespace gf::device {
namespace {

uint32_t low32(uint64_t v) {
    return static_cast<uint32_t>(v);
}
uint32_t high32(uint64_t v) {
    return static_cast<uint32_t>(v >> 32);
}
void set_low32(uint64_t& reg, uint32_t v) {
    reg = (reg & 0xFFFFFFFF00000000ull) | v;
}
void set_high32(uint64_t& reg, uint32_t v) {
    reg = (reg & 0xFFFFFFFFull) | (static_cast<uint64_t>(v) << 32);
}

}  // namespace

void RegisterFile::reset() {
    status = 0;
    guest_page_size = host_page_size_;
    block_size = 0;
    block_offset = 0;
    ping_info_addr = 0;
    handle = 0;
    phys_start = 0;
}

uint32_t RegisterFile::read(uint64_t offset) const {
    switch (offset) {
        case static_cast<uint64_t>(Reg::STATUS):
            return status;
        case static_cast<uint64_t>(Reg::GUEST_PAGE_SIZE):
            return guest_page_size;
        case static_cast<uint64_t>(Reg::BLOCK_SIZE_LOW):
            return low32(block_size);
        case static_cast<uint64_t>(Reg::BLOCK_SIZE_HIGH):
            return high32(block_size);
        case static_cast<uint64_t>(Reg::BLOCK_OFFSET_LOW):
            return low32(block_offset);
        case static_cast<uint64_t>(Reg::BLOCK_OFFSET_HIGH):
            return high32(block_offset);
        case static_cast<uint64_t>(Reg::PING_INFO_ADDR_LOW):
            return low32(ping_info_addr);
        case static_cast<uint64_t>(Reg::PING_INFO_ADDR_HIGH):
            return high32(ping_info_addr);
        case static_cast<uint64_t>(Reg::HANDLE):
            return handle;
        case static_cast<uint64_t>(Reg::PHYS_START_LOW):
            return low32(phys_start);
        case static_cast<uint64_t>(Reg::PHYS_START_HIGH):
            return high32(phys_start);
        default:
            // COMMAND, PING and PING_WITH_DATA are write-only; unknown offsets read 0.
            return 0;
    }
}

RegisterFile::Write RegisterFile::write(uint64_t offset, uint32_t value) {
    switch (offset) {
        case static_cast<uint64_t>(Reg::COMMAND):
            return Write{Write::Kind::kCommand, value};
        case static_cast<uint64_t>(Reg::GUEST_PAGE_SIZE):
            // Blocks must stay whole host pages: keep max(written, host page); ignore nonsense.
            if (std::has_single_bit(value) && value <= kMaxGuestPageSize) {
                guest_page_size = std::max(value, host_page_size_);
            }
            break;
        case static_cast<uint64_t>(Reg::BLOCK_SIZE_LOW):
            set_low32(block_size, value);
            break;
        case static_cast<uint64_t>(Reg::BLOCK_SIZE_HIGH):
            set_high32(block_size, value);
            break;
        case static_cast<uint64_t>(Reg::BLOCK_OFFSET_LOW):
            set_low32(block_offset, value);
            break;
        case static_cast<uint64_t>(Reg::BLOCK_OFFSET_HIGH):
            set_high32(block_offset, value);
            break;
        case static_cast<uint64_t>(Reg::PING):
        case static_cast<uint64_t>(Reg::PING_WITH_DATA):
            // PING_WITH_DATA is a plain PING of the 40-byte header; the payload is ignored.
            return Write{Write::Kind::kPing, value};
        case static_cast<uint64_t>(Reg::PING_INFO_ADDR_LOW):
            set_low32(ping_info_addr, value);
            break;
        case static_cast<uint64_t>(Reg::PING_INFO_ADDR_HIGH):
            set_high32(ping_info_addr, value);
            break;
        case static_cast<uint64_t>(Reg::HANDLE):
            handle = value;
            break;
        case static_cast<uint64_t>(Reg::PHYS_START_LOW):
            set_low32(phys_start, value);
            break;
        case static_cast<uint64_t>(Reg::PHYS_START_HIGH):
            set_high32(phys_start, value);
            break;
        default:
            break;  // STATUS is read-only; unknown offsets are ignored
    }
    return Write{};
}

}  // namespace gf::device
