/* What the C compiler makes of the UAPI header, for comparison from C++. */
#ifndef GF_TESTS_UAPI_C_LAYOUT_H
#define GF_TESTS_UAPI_C_LAYOUT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gf_uapi_c_layout {
    size_t allocate_block_size;
    size_t ping_size;
    size_t claim_shared_size;
    size_t ping_direction_offset;
    unsigned long ioctl_allocate;
    unsigned long ioctl_deallocate;
    unsigned long ioctl_ping;
    unsigned long ioctl_claim;
    unsigned long ioctl_unclaim;
    const char* device_name;
};

struct gf_uapi_c_layout gf_uapi_c_layout_get(void);

#ifdef __cplusplus
}
#endif

#endif
