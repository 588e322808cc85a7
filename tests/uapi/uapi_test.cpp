// The UAPI header as C++ sees it, pinned at compile time, and compared with
// what the C compiler made of the same header.
#include <linux/goldfish_address_space.h>

#include <cstddef>
#include <cstring>

#include <gtest/gtest.h>

#include "uapi/uapi_c_layout.h"

namespace {

using Allocate = goldfish_address_space_allocate_block;
using Ping = goldfish_address_space_ping;
using Claim = goldfish_address_space_claim_shared;

static_assert(sizeof(Allocate) == 24);
static_assert(offsetof(Allocate, size) == 0);
static_assert(offsetof(Allocate, offset) == 8);
static_assert(offsetof(Allocate, phys_addr) == 16);
static_assert(sizeof(Ping) == 40);
static_assert(offsetof(Ping, offset) == 0);
static_assert(offsetof(Ping, size) == 8);
static_assert(offsetof(Ping, metadata) == 16);
static_assert(offsetof(Ping, version) == 24);
static_assert(offsetof(Ping, wait_fd) == 28);
static_assert(offsetof(Ping, wait_flags) == 32);
static_assert(offsetof(Ping, direction) == 36);
static_assert(sizeof(Claim) == 16);
static_assert(offsetof(Claim, offset) == 0);
static_assert(offsetof(Claim, size) == 8);
static_assert(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK == 0xC018470Au);
static_assert(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK == 0xC008470Bu);
static_assert(GOLDFISH_ADDRESS_SPACE_IOCTL_PING == 0xC028470Cu);
static_assert(GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED == 0xC010470Du);
static_assert(GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED == 0xC008470Eu);

// The codes decode to what the kernel's FUSE layer will copy: read+write, 'G', size.
static_assert(_IOC_DIR(GOLDFISH_ADDRESS_SPACE_IOCTL_PING) == (_IOC_READ | _IOC_WRITE));
static_assert(_IOC_TYPE(GOLDFISH_ADDRESS_SPACE_IOCTL_PING) == 'G');
static_assert(_IOC_SIZE(GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK) == sizeof(Allocate));
static_assert(_IOC_SIZE(GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK) == sizeof(__u64));
static_assert(_IOC_SIZE(GOLDFISH_ADDRESS_SPACE_IOCTL_PING) == sizeof(Ping));
static_assert(_IOC_SIZE(GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED) == sizeof(Claim));
static_assert(_IOC_SIZE(GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED) == sizeof(__u64));

TEST(Uapi, CAndCppAgreeOnLayout) {
    const gf_uapi_c_layout c = gf_uapi_c_layout_get();
    EXPECT_EQ(c.allocate_block_size, sizeof(Allocate));
    EXPECT_EQ(c.ping_size, sizeof(Ping));
    EXPECT_EQ(c.claim_shared_size, sizeof(Claim));
    EXPECT_EQ(c.ping_direction_offset, offsetof(Ping, direction));
}

TEST(Uapi, CAndCppAgreeOnIoctlNumbers) {
    const gf_uapi_c_layout c = gf_uapi_c_layout_get();
    EXPECT_EQ(c.ioctl_allocate, 0xC018470Aul);
    EXPECT_EQ(c.ioctl_deallocate, 0xC008470Bul);
    EXPECT_EQ(c.ioctl_ping, 0xC028470Cul);
    EXPECT_EQ(c.ioctl_claim, 0xC010470Dul);
    EXPECT_EQ(c.ioctl_unclaim, 0xC008470Eul);
}

TEST(Uapi, DeviceName) {
    EXPECT_STREQ(GOLDFISH_ADDRESS_SPACE_DEVICE_NAME, "goldfish_address_space");
    EXPECT_STREQ(gf_uapi_c_layout_get().device_name, GOLDFISH_ADDRESS_SPACE_DEVICE_NAME);
}

}  // namespace
