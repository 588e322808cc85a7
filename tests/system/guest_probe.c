/*
 * guest_probe: runs inside the test VM (static, no libraries) and drives the goldfish
 * address space device the way the guest driver does, through sysfs and BAR0 only:
 * enable, map resource0, GUEST_PAGE_SIZE, GEN_HANDLE, TELL_PING_INFO_ADDR with a locked
 * page whose physical address comes from /proc/self/pagemap, a create ping of type 5, a
 * type-5 allocation in a block of BAR1 (PHYS_START left 0, so the device must use the
 * BAR1 base the guest programmed), then teardown. It also times register round trips.
 *
 * Every result is one "probe: ..." line on stdout; the last is "probe: PASS" or
 * "probe: FAIL <why>". Exit status 0 only on PASS.
 */
#define _GNU_SOURCE
#include "guest_regs.h"

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    gr_prefix = "probe";
    char dir[512];
    find_device(dir, sizeof dir);

    unsigned long revision = 0, klass = 0;
    read_hex_file(dir, "revision", &revision);
    read_hex_file(dir, "class", &klass);
    printf("probe: identity 607d:f153 revision %lu class 0x%06lx\n", revision, klass);

    enable_device(dir);
    uint64_t start[2], size[2];
    read_bars(dir, start, size);
    const uint64_t bar0_size = size[0], bar1_size = size[1];
    printf("probe: bar0 0x%" PRIx64 " size 0x%" PRIx64 " bar1 0x%" PRIx64 " size 0x%" PRIx64 "\n",
           start[0], bar0_size, start[1], bar1_size);
    if (start[0] == 0 || bar0_size != 0x1000 || start[1] == 0) {
        fail("BARs not placed as expected");
    }

    const int fd = open_resource(dir, 0);
    void* bar0 = map_resource(fd, 0, 0x1000);
    regs = bar0;

    /* What the driver's probe writes; PHYS_START is deliberately left 0. */
    wr(REG_GUEST_PAGE_SIZE, 4096);
    printf("probe: GUEST_PAGE_SIZE %u PHYS_START %u\n", rd(REG_GUEST_PAGE_SIZE),
           rd(REG_PHYS_START_LOW));
    if (rd(REG_GUEST_PAGE_SIZE) != 4096) {
        fail("GUEST_PAGE_SIZE does not read back");
    }

    /* The ping page: locked so that its frame stays put while the device uses it. */
    struct ping_info* ping = locked_page();
    const uint64_t ping_phys = physical_address(ping);

    uint32_t status = command(CMD_GEN_HANDLE);
    const uint32_t handle = rd(REG_HANDLE);
    printf("probe: GEN_HANDLE status %u handle %u\n", status, handle);
    if (status != 0) {
        fail("GEN_HANDLE");
    }
    wr(REG_PING_INFO_ADDR_LOW, (uint32_t)ping_phys);
    wr(REG_PING_INFO_ADDR_HIGH, (uint32_t)(ping_phys >> 32));
    wr(REG_HANDLE, handle);
    status = command(CMD_TELL_PING_INFO_ADDR);
    const uint64_t back = (uint64_t)rd(REG_PING_INFO_ADDR_HIGH) << 32 | rd(REG_PING_INFO_ADDR_LOW);
    printf("probe: TELL_PING_INFO_ADDR 0x%" PRIx64 " status %u readback %s\n", ping_phys, status,
           back == ping_phys ? "ok" : "MISMATCH");
    if (status != 0 || back != ping_phys) {
        fail("TELL_PING_INFO_ADDR");
    }

    /* Create ping: a host memory allocator context (type 5); the answer is in our page. */
    ping->metadata = 5;
    wr(REG_PING, handle);
    printf("probe: create ping type 5 metadata %" PRIu64 "\n", ping->metadata);
    if (ping->metadata != 0) {
        fail("create ping");
    }

    /* A block of BAR1, backed by host memory through the type-5 context. */
    wr(REG_BLOCK_SIZE_LOW, 4096);
    wr(REG_BLOCK_SIZE_HIGH, 0);
    status = command(CMD_ALLOCATE_BLOCK);
    const uint64_t offset = (uint64_t)rd(REG_BLOCK_OFFSET_HIGH) << 32 | rd(REG_BLOCK_OFFSET_LOW);
    printf("probe: ALLOCATE_BLOCK status %u offset 0x%" PRIx64 "\n", status, offset);
    if (status != 0 || offset >= bar1_size) {
        fail("ALLOCATE_BLOCK");
    }
    memset(ping, 0, sizeof *ping);
    ping->phys_addr = start[1] + offset;
    ping->size = 4096;
    ping->metadata = 1; /* Allocate */
    wr(REG_PING, handle);
    printf("probe: type-5 allocate at bar1+0x%" PRIx64 " metadata %" PRIu64 "\n", offset,
           ping->metadata);
    if (ping->metadata != 0) {
        fail("type-5 allocate (PHYS_START fallback to the programmed BAR1 base)");
    }
    ping->metadata = 2; /* Unallocate */
    wr(REG_PING, handle);
    if (ping->metadata != 0) {
        fail("type-5 unallocate");
    }

    /* Round trips: each register read is one trapped access and one protocol message. */
    enum { N = 1000 };
    double t0 = now_us();
    uint32_t sink = 0;
    for (int i = 0; i < N; ++i) {
        sink += rd(REG_GUEST_PAGE_SIZE);
    }
    const double read_us = (now_us() - t0) / N;
    t0 = now_us();
    for (int i = 0; i < N; ++i) {
        wr(REG_PING, handle); /* metadata 2 on nothing allocated: a quick failing command */
    }
    const double ping_us = (now_us() - t0) / N;
    printf("probe: register read round trip %.1f us (%d reads, sum %u)\n", read_us, N, sink);
    printf("probe: ping round trip %.1f us (%d pings)\n", ping_us, N);

    wr(REG_BLOCK_OFFSET_LOW, (uint32_t)offset);
    wr(REG_BLOCK_OFFSET_HIGH, (uint32_t)(offset >> 32));
    const uint32_t dealloc = command(CMD_DEALLOCATE_BLOCK);
    wr(REG_HANDLE, handle);
    const uint32_t destroy = command(CMD_DESTROY_HANDLE);
    printf("probe: DEALLOCATE_BLOCK status %u DESTROY_HANDLE status %u\n", dealloc, destroy);
    if (dealloc != 0 || destroy != 0) {
        fail("teardown");
    }
    munmap(bar0, 0x1000);
    close(fd);
    printf("probe: PASS\n");
    return 0;
}
