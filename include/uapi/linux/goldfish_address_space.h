/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Userspace API of the goldfish address space device node.
 *
 * The structures and command codes are the ABI that Android guest userspace
 * (goldfish-opengl, gfxstream) already uses; they are facts, restated here in
 * this project's own words. Every field is naturally aligned, so the layout is
 * the same for 32-bit and 64-bit callers and has no implicit padding.
 *
 * Usable from C99 and C++.
 */
#ifndef GOLDFISH_UAPI_LINUX_GOLDFISH_ADDRESS_SPACE_H
#define GOLDFISH_UAPI_LINUX_GOLDFISH_ADDRESS_SPACE_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Name of the device node: /dev/goldfish_address_space. */
#define GOLDFISH_ADDRESS_SPACE_DEVICE_NAME "goldfish_address_space"

/* Argument of ALLOCATE_BLOCK (24 bytes). */
struct goldfish_address_space_allocate_block {
    __u64 size;      /* in: bytes wanted; out: bytes granted (host-rounded) */
    __u64 offset;    /* out: offset of the block inside BAR1 */
    __u64 phys_addr; /* out: BAR1 guest-physical start + offset */
};

/* Argument of PING (40 bytes); the driver forwards it to the host's ping page. */
struct goldfish_address_space_ping {
    __u64 offset;     /* BAR1-relative; the driver adds BAR1's physical start */
    __u64 size;       /* opaque to the driver */
    __u64 metadata;   /* type on the first ping, command later; host result out */
    __u32 version;    /* opaque; userspace passes sizeof(struct) == 40 */
    __u32 wait_fd;    /* opaque */
    __u32 wait_flags; /* opaque */
    __u32 direction;  /* opaque */
};

/* Argument of CLAIM_SHARED (16 bytes): a BAR1 range the host handed out. */
struct goldfish_address_space_claim_shared {
    __u64 offset;
    __u64 size;
};

/*
 * Command codes, magic 'G'. Each is spelled out with _IOWR directly so that
 * the codes can be found by grep. DEALLOCATE_BLOCK and UNCLAIM_SHARED take a
 * pointer to one __u64 offset.
 */
#define GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK \
    _IOWR('G', 10, struct goldfish_address_space_allocate_block)            /* 0xC018470A */
#define GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK _IOWR('G', 11, __u64) /* 0xC008470B */
#define GOLDFISH_ADDRESS_SPACE_IOCTL_PING \
    _IOWR('G', 12, struct goldfish_address_space_ping) /* 0xC028470C */
#define GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED \
    _IOWR('G', 13, struct goldfish_address_space_claim_shared)            /* 0xC010470D */
#define GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED _IOWR('G', 14, __u64) /* 0xC008470E */

#endif /* GOLDFISH_UAPI_LINUX_GOLDFISH_ADDRESS_SPACE_H */
