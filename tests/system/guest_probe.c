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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* BAR0 registers and commands (docs/device.md#registers, #commands). */
enum {
    REG_COMMAND = 0x00,
    REG_STATUS = 0x04,
    REG_GUEST_PAGE_SIZE = 0x08,
    REG_BLOCK_SIZE_LOW = 0x0C,
    REG_BLOCK_SIZE_HIGH = 0x10,
    REG_BLOCK_OFFSET_LOW = 0x14,
    REG_BLOCK_OFFSET_HIGH = 0x18,
    REG_PING = 0x1C,
    REG_PING_INFO_ADDR_LOW = 0x20,
    REG_PING_INFO_ADDR_HIGH = 0x24,
    REG_HANDLE = 0x28,
    REG_PHYS_START_LOW = 0x2C,
};
enum {
    CMD_ALLOCATE_BLOCK = 1,
    CMD_DEALLOCATE_BLOCK = 2,
    CMD_GEN_HANDLE = 3,
    CMD_DESTROY_HANDLE = 4,
    CMD_TELL_PING_INFO_ADDR = 5,
};

/* The 40-byte ping struct at the start of the ping page (docs/device.md#ping-page). */
struct ping_info {
    uint64_t phys_addr;
    uint64_t size;
    uint64_t metadata;
    uint64_t wait_phys_addr;
    uint32_t wait_flags;
    uint32_t direction;
};

static volatile uint32_t* regs;

static void fail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("probe: FAIL ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

/*
 * BAR0 is mapped uncached; each access traps to the VMM, which answers synchronously.
 * The device reads and writes the ping page behind the compiler's back (like DMA), so
 * every register access is also a compiler memory barrier, as readl/writel are.
 */
static uint32_t rd(uint32_t reg) {
    __asm__ volatile("" ::: "memory");
    const uint32_t v = regs[reg / 4];
    __asm__ volatile("" ::: "memory");
    return v;
}
static void wr(uint32_t reg, uint32_t value) {
    __asm__ volatile("" ::: "memory");
    regs[reg / 4] = value;
    __asm__ volatile("" ::: "memory");
}
static uint32_t command(uint32_t cmd) {
    wr(REG_COMMAND, cmd);
    return rd(REG_STATUS);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int read_hex_file(const char* dir, const char* name, unsigned long* out) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE* f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    int ok = fscanf(f, "%lx", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

/* The sysfs directory of the one 607d:f153 function. */
static void find_device(char* out, size_t size) {
    DIR* d = opendir("/sys/bus/pci/devices");
    if (!d) {
        fail("no /sys/bus/pci/devices: %s", strerror(errno));
    }
    struct dirent* e;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char dir[512];
        unsigned long vendor = 0, device = 0;
        snprintf(dir, sizeof dir, "/sys/bus/pci/devices/%s", e->d_name);
        if (read_hex_file(dir, "vendor", &vendor) == 0 &&
            read_hex_file(dir, "device", &device) == 0 && vendor == 0x607d && device == 0xf153) {
            snprintf(out, size, "%s", dir);
            printf("probe: found %s\n", e->d_name);
            ++found;
        }
    }
    closedir(d);
    if (found != 1) {
        fail("%d goldfish address space devices (want 1)", found);
    }
}

/* Physical address of the page at `page` (mapped and locked), from /proc/self/pagemap. */
static uint64_t physical_address(const void* page) {
    const long page_size = sysconf(_SC_PAGESIZE);
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail("open pagemap: %s", strerror(errno));
    }
    uint64_t entry = 0;
    const off_t at = (off_t)((uintptr_t)page / (uintptr_t)page_size) * 8;
    if (pread(fd, &entry, sizeof entry, at) != (ssize_t)sizeof entry) {
        fail("read pagemap: %s", strerror(errno));
    }
    close(fd);
    const uint64_t pfn = entry & ((1ull << 55) - 1);
    if (!(entry >> 63) || pfn == 0) {
        fail("pagemap gives no frame (present %d, pfn 0: not root?)", (int)(entry >> 63));
    }
    return pfn * (uint64_t)page_size;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[512], path[600];
    find_device(dir, sizeof dir);

    unsigned long revision = 0, klass = 0;
    read_hex_file(dir, "revision", &revision);
    read_hex_file(dir, "class", &klass);
    printf("probe: identity 607d:f153 revision %lu class 0x%06lx\n", revision, klass);

    snprintf(path, sizeof path, "%s/enable", dir);
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, "1", 1) != 1) {
        fail("enable: %s", strerror(errno));
    }
    close(fd);

    /* Lines of `resource`: start end flags, one per BAR. */
    snprintf(path, sizeof path, "%s/resource", dir);
    FILE* res = fopen(path, "r");
    uint64_t start[2] = {0}, end[2] = {0}, flags[2] = {0};
    for (int i = 0; res && i < 2; ++i) {
        if (fscanf(res, "%" SCNx64 " %" SCNx64 " %" SCNx64, &start[i], &end[i], &flags[i]) != 3) {
            fail("cannot parse %s", path);
        }
    }
    if (res) {
        fclose(res);
    }
    const uint64_t bar0_size = end[0] - start[0] + 1, bar1_size = end[1] - start[1] + 1;
    printf("probe: bar0 0x%" PRIx64 " size 0x%" PRIx64 " bar1 0x%" PRIx64 " size 0x%" PRIx64 "\n",
           start[0], bar0_size, start[1], bar1_size);
    if (start[0] == 0 || bar0_size != 0x1000 || start[1] == 0) {
        fail("BARs not placed as expected");
    }

    snprintf(path, sizeof path, "%s/resource0", dir);
    fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0) {
        fail("open resource0: %s", strerror(errno));
    }
    void* bar0 = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bar0 == MAP_FAILED) {
        fail("mmap resource0: %s", strerror(errno));
    }
    regs = bar0;

    /* What the driver's probe writes; PHYS_START is deliberately left 0. */
    wr(REG_GUEST_PAGE_SIZE, 4096);
    printf("probe: GUEST_PAGE_SIZE %u PHYS_START %u\n", rd(REG_GUEST_PAGE_SIZE),
           rd(REG_PHYS_START_LOW));
    if (rd(REG_GUEST_PAGE_SIZE) != 4096) {
        fail("GUEST_PAGE_SIZE does not read back");
    }

    /* The ping page: locked so that its frame stays put while the device uses it. */
    struct ping_info* ping = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
    if (ping == MAP_FAILED) {
        fail("ping page: %s", strerror(errno));
    }
    memset(ping, 0, 4096);
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
