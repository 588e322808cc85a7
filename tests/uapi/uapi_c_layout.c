/* Compiled as C99 with -pedantic: the UAPI header must be plain C.
 * The compile-time checks use the negative-array idiom, which C99 accepts. */
#include <stddef.h>

#include <linux/goldfish_address_space.h>

#include "uapi/uapi_c_layout.h"

#define GF_C_CHECK(name, cond) typedef char gf_c_check_##name[(cond) ? 1 : -1]

GF_C_CHECK(allocate_size, sizeof(struct goldfish_address_space_allocate_block) == 24);
GF_C_CHECK(allocate_size_off, offsetof(struct goldfish_address_space_allocate_block, size) == 0);
GF_C_CHECK(allocate_offset_off,
           offsetof(struct goldfish_address_space_allocate_block, offset) == 8);
GF_C_CHECK(allocate_phys_off,
           offsetof(struct goldfish_address_space_allocate_block, phys_addr) == 16);
GF_C_CHECK(ping_size, sizeof(struct goldfish_address_space_ping) == 40);
GF_C_CHECK(ping_offset_off, offsetof(struct goldfish_address_space_ping, offset) == 0);
GF_C_CHECK(ping_size_off, offsetof(struct goldfish_address_space_ping, size) == 8);
GF_C_CHECK(ping_metadata_off, offsetof(struct goldfish_address_space_ping, metadata) == 16);
GF_C_CHECK(ping_version_off, offsetof(struct goldfish_address_space_ping, version) == 24);
GF_C_CHECK(ping_wait_fd_off, offsetof(struct goldfish_address_space_ping, wait_fd) == 28);
GF_C_CHECK(ping_wait_flags_off, offsetof(struct goldfish_address_space_ping, wait_flags) == 32);
GF_C_CHECK(ping_direction_off, offsetof(struct goldfish_address_space_ping, direction) == 36);
GF_C_CHECK(claim_size, sizeof(struct goldfish_address_space_claim_shared) == 16);
GF_C_CHECK(claim_offset_off, offsetof(struct goldfish_address_space_claim_shared, offset) == 0);
GF_C_CHECK(claim_size_off, offsetof(struct goldfish_address_space_claim_shared, size) == 8);
GF_C_CHECK(ioctl_allocate, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK == 0xC018470Au);
GF_C_CHECK(ioctl_deallocate, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK == 0xC008470Bu);
GF_C_CHECK(ioctl_ping, GOLDFISH_ADDRESS_SPACE_IOCTL_PING == 0xC028470Cu);
GF_C_CHECK(ioctl_claim, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED == 0xC010470Du);
GF_C_CHECK(ioctl_unclaim, GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED == 0xC008470Eu);

struct gf_uapi_c_layout gf_uapi_c_layout_get(void) {
    struct gf_uapi_c_layout layout;
    layout.allocate_block_size = sizeof(struct goldfish_address_space_allocate_block);
    layout.ping_size = sizeof(struct goldfish_address_space_ping);
    layout.claim_shared_size = sizeof(struct goldfish_address_space_claim_shared);
    layout.ping_direction_offset = offsetof(struct goldfish_address_space_ping, direction);
    layout.ioctl_allocate = GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK;
    layout.ioctl_deallocate = GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK;
    layout.ioctl_ping = GOLDFISH_ADDRESS_SPACE_IOCTL_PING;
    layout.ioctl_claim = GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED;
    layout.ioctl_unclaim = GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED;
    layout.device_name = GOLDFISH_ADDRESS_SPACE_DEVICE_NAME;
    return layout;
}
