/* The installed UAPI header from strict C99, through pkg-config's -I alone. */
#include <linux/goldfish_address_space.h>
#include <stdio.h>

int main(void) {
    printf("C: ALLOCATE_BLOCK 0x%lx, ping %zu bytes\n",
           (unsigned long)GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK,
           sizeof(struct goldfish_address_space_ping));
    return sizeof(struct goldfish_address_space_ping) == 40 ? 0 : 1;
}
