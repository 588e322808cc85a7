/*
 * guest_regs.h: what the static guest programs of the VM system tests (guest_probe.c,
 * guest_bar1.c) share: the device's BAR0 registers, commands and ping page layout
 * (docs/device.md), register accessors, and the sysfs steps a driver's probe takes:
 * finding 607d:f153, enabling it, reading its BARs from `resource`, mapping `resourceN`,
 * and the physical address of a locked page from /proc/self/pagemap.
 *
 * Every helper prints through the program's prefix (gr_prefix, e.g. "probe") and ends the
 * program with "<prefix>: FAIL <why>" and exit status 1 when a step cannot be done.
 */
#ifndef GF_TESTS_SYSTEM_GUEST_REGS_H
#define GF_TESTS_SYSTEM_GUEST_REGS_H

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

/* Set by each program before calling anything here: the start of every line it prints. */
static const char* gr_prefix = "guest";
static volatile uint32_t* regs;

static inline void fail(const char* fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static inline void fail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s: FAIL ", gr_prefix);
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
static inline uint32_t rd(uint32_t reg) {
    __asm__ volatile("" ::: "memory");
    const uint32_t v = regs[reg / 4];
    __asm__ volatile("" ::: "memory");
    return v;
}
static inline void wr(uint32_t reg, uint32_t value) {
    __asm__ volatile("" ::: "memory");
    regs[reg / 4] = value;
    __asm__ volatile("" ::: "memory");
}
static inline uint32_t command(uint32_t cmd) {
    wr(REG_COMMAND, cmd);
    return rd(REG_STATUS);
}
static inline uint64_t rd64(uint32_t low) {
    return (uint64_t)rd(low + 4) << 32 | rd(low);
}
static inline void wr64(uint32_t low, uint64_t value) {
    wr(low, (uint32_t)value);
    wr(low + 4, (uint32_t)(value >> 32));
}

static inline double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int read_hex_file(const char* dir, const char* name, unsigned long* out) {
    char path[640];
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
static inline void find_device(char* out, size_t size) {
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
            printf("%s: found %s\n", gr_prefix, e->d_name);
            ++found;
        }
    }
    closedir(d);
    if (found != 1) {
        fail("%d goldfish address space devices (want 1)", found);
    }
}

/* Turns on memory decoding, as pci_enable_device does. */
static inline void enable_device(const char* dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/enable", dir);
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, "1", 1) != 1) {
        fail("enable: %s", strerror(errno));
    }
    close(fd);
}

/* BAR0 and BAR1 from the lines of `resource` (start end flags, one per BAR). */
static inline void read_bars(const char* dir, uint64_t start[2], uint64_t size[2]) {
    char path[600];
    snprintf(path, sizeof path, "%s/resource", dir);
    FILE* res = fopen(path, "r");
    if (!res) {
        fail("open %s: %s", path, strerror(errno));
    }
    for (int i = 0; i < 2; ++i) {
        uint64_t end = 0, flags = 0;
        if (fscanf(res, "%" SCNx64 " %" SCNx64 " %" SCNx64, &start[i], &end, &flags) != 3) {
            fail("cannot parse %s", path);
        }
        size[i] = start[i] != 0 ? end - start[i] + 1 : 0;
    }
    fclose(res);
}

/* Opens `resourceN` (uncached: every access reaches the device). */
static inline int open_resource(const char* dir, int bar) {
    char path[600];
    snprintf(path, sizeof path, "%s/resource%d", dir, bar);
    int fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) {
        fail("open resource%d: %s", bar, strerror(errno));
    }
    return fd;
}

/* Maps `size` bytes of the BAR behind `fd` from `offset` (both page multiples). */
static inline void* map_resource(int fd, uint64_t offset, uint64_t size) {
    void* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
    if (p == MAP_FAILED) {
        fail("mmap resource at 0x%" PRIx64 " size 0x%" PRIx64 ": %s", offset, size,
             strerror(errno));
    }
    return p;
}

/* A zeroed page of RAM that stays at its frame: a ping page. */
static inline struct ping_info* locked_page(void) {
    void* p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        fail("ping page: %s", strerror(errno));
    }
    memset(p, 0, 4096);
    return p;
}

/* Physical address of the page at `page` (mapped and locked), from /proc/self/pagemap. */
static inline uint64_t physical_address(const void* page) {
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

#endif /* GF_TESTS_SYSTEM_GUEST_REGS_H */
