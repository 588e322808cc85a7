/*
 * guest_bar1: runs inside the test VM (static, no libraries) and checks that BAR1 is
 * memory the guest shares with the device, through sysfs only: resource0 for the
 * registers, resource1 mapped at a block's offset for BAR1 (the same physical pages a
 * kernel driver's mmap remaps).
 *
 *   1. GUEST_PAGE_SIZE, GEN_HANDLE, TELL_PING_INFO_ADDR (a locked page, its physical
 *      address from /proc/self/pagemap), a type-5 create ping, a plain 64 KiB block.
 *   2. Timings, printed before any check can fail (so an old device gives them too):
 *      medians of a register read, a PING (an unknown type-5 command: the context answers
 *      all-ones at once), a 4-byte load and a 4-byte store through the BAR1 mapping.
 *   3. Tagged stores of widths 1, 2, 4 and 8, aligned, unaligned, across a page and in
 *      the last bytes, each read back at its width and byte by byte, with the bytes either
 *      side unchanged: in the plain block, in a type-5 block (Allocate ping inside it) and
 *      in a claimed type-6 slot (host memory: the Allocate ping returns its BAR1 offset).
 *   4. The host store: the guest stores a tag in the type-6 slot and prints
 *      "bar1: host store wanted at offset 0x<BAR1 offset> after guest tag 0x<tag>"; the
 *      host reads the tag there (8 bytes, little-endian) and writes its complement; the
 *      guest polls until it sees the complement (about 20 s at most).
 *   5. An offset outside every block and slot reads 0 and drops a store.
 *   6. A freed block is zero when allocated again.
 *   7. Teardown: unmap, Unallocate pings, DEALLOCATE_BLOCK, DESTROY_HANDLE.
 *
 * Every result is one "bar1: ..." line on stdout; the last is "bar1: PASS" or
 * "bar1: FAIL <why>". A data check that fails is counted and the program goes on, so one
 * run shows all of them; a register step that fails ends it at once. Exit 0 only on PASS.
 */
#define _GNU_SOURCE
#include "guest_regs.h"

#if !defined(__x86_64__)
#error "guest_bar1 runs in the x86-64 test VM: its BAR1 accesses are x86 instructions"
#endif

/*
 * One instruction per access, of exactly the width asked for, at exactly the address:
 * the compiler may neither split, merge nor reorder them (C pointer casts would let it,
 * and unaligned ones are undefined). Each is also a compiler memory barrier.
 */
static uint64_t load(const volatile void* p, int width) {
    uint64_t v = 0;
    switch (width) {
        case 1: {
            uint8_t b;
            __asm__ volatile("movb %1, %0" : "=q"(b) : "m"(*(const volatile uint8_t*)p) : "memory");
            v = b;
            break;
        }
        case 2: {
            uint16_t h;
            __asm__ volatile("movw %1, %0"
                             : "=r"(h)
                             : "m"(*(const volatile uint16_t*)p)
                             : "memory");
            v = h;
            break;
        }
        case 4: {
            uint32_t w;
            __asm__ volatile("movl %1, %0"
                             : "=r"(w)
                             : "m"(*(const volatile uint32_t*)p)
                             : "memory");
            v = w;
            break;
        }
        default:
            __asm__ volatile("movq %1, %0"
                             : "=r"(v)
                             : "m"(*(const volatile uint64_t*)p)
                             : "memory");
            break;
    }
    return v;
}
static void store(volatile void* p, int width, uint64_t v) {
    switch (width) {
        case 1:
            __asm__ volatile("movb %1, %0"
                             : "=m"(*(volatile uint8_t*)p)
                             : "q"((uint8_t)v)
                             : "memory");
            break;
        case 2:
            __asm__ volatile("movw %1, %0"
                             : "=m"(*(volatile uint16_t*)p)
                             : "r"((uint16_t)v)
                             : "memory");
            break;
        case 4:
            __asm__ volatile("movl %1, %0"
                             : "=m"(*(volatile uint32_t*)p)
                             : "r"((uint32_t)v)
                             : "memory");
            break;
        default:
            __asm__ volatile("movq %1, %0" : "=m"(*(volatile uint64_t*)p) : "r"(v) : "memory");
            break;
    }
}
static uint64_t width_mask(int width) {
    return width == 8 ? ~0ull : (1ull << (8 * width)) - 1;
}

static struct {
    int checks;
    int failed;
    char first[160];
} result;

static void check(int ok, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char* fmt, ...) {
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ++result.checks;
    if (!ok) {
        if (result.failed++ == 0) {
            snprintf(result.first, sizeof result.first, "%s", what);
        }
    }
    printf("bar1: %s %s\n", what, ok ? "ok" : "FAILED");
}

/* A tag with no zero byte, different for every region, offset and width. */
static uint64_t tag_for(uint64_t seed, uint64_t at, int width) {
    uint64_t x = seed ^ (at * 0x9e3779b97f4a7c15ull) ^ (uint64_t)width << 56;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    for (int i = 0; i < 8; ++i) {
        if (((x >> (8 * i)) & 0xff) == 0) {
            x |= 0x5aull << (8 * i);
        }
    }
    return x;
}

/*
 * Tagged stores of every width into a mapped region of `size` bytes: aligned, unaligned,
 * across a page boundary (when the region has two pages) and in its last bytes. Each is
 * read back at its own width and byte by byte (memory order: little-endian), and the bytes
 * just before and after must not have changed.
 */
static void store_checks(const char* name, volatile uint8_t* base, uint64_t size, uint64_t seed) {
    static const int widths[] = {1, 2, 4, 8};
    const int before = result.failed;
    const int checks_before = result.checks;
    for (int wi = 0; wi < 4; ++wi) {
        const int w = widths[wi];
        /*
         * The aligned and unaligned cases have slots of their own; the page-crossing and
         * last-bytes cases of different widths overlap, which is fine: each store is read
         * back before the next one.
         */
        uint64_t at[4];
        const char* kind[4] = {"aligned", "unaligned", w == 1 ? "page's last" : "page-crossing",
                               "last bytes"};
        int n = 0;
        at[n++] = 0x100 + (uint64_t)wi * 0x40;
        at[n++] = 0x100 + (uint64_t)wi * 0x40 + 0x10 + (w == 1 ? 1 : (uint64_t)w - 1);
        if (size >= 0x2000) {
            at[n++] = 0x1000 - (uint64_t)(w == 1 ? 1 : w / 2); /* a byte: the page's last */
        } else {
            kind[2] = kind[3];
            n = 2;
        }
        at[n++] = size - (uint64_t)w;
        for (int c = 0; c < n; ++c) {
            volatile uint8_t* p = base + at[c];
            const uint64_t tag = tag_for(seed, at[c], w) & width_mask(w);
            const int has_prev = at[c] > 0, has_next = at[c] + (uint64_t)w < size;
            const uint64_t prev = has_prev ? load(p - 1, 1) : 0;
            const uint64_t next = has_next ? load(p + w, 1) : 0;
            store(p, w, tag);
            const uint64_t got = load(p, w);
            uint64_t bytes = 0;
            for (int i = 0; i < w; ++i) {
                bytes |= load(p + i, 1) << (8 * i);
            }
            const int sides =
                (!has_prev || load(p - 1, 1) == prev) && (!has_next || load(p + w, 1) == next);
            check(got == tag && bytes == tag && sides,
                  "%s store %d at +0x%" PRIx64 " (%s) tag 0x%0*" PRIx64 " read 0x%0*" PRIx64
                  " bytes 0x%0*" PRIx64 "%s",
                  name, w, at[c], kind[c], 2 * w, tag, 2 * w, got, 2 * w, bytes,
                  sides ? "" : " neighbours changed");
        }
    }
    printf("bar1: %s %d of %d stores read back\n", name,
           (result.checks - checks_before) - (result.failed - before),
           result.checks - checks_before);
}

static int cmp_double(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

enum { SAMPLES = 1001 };
static double samples[SAMPLES];

/* The median, minimum and 90th percentile of the samples, in one line. */
static void report_time(const char* what) {
    qsort(samples, SAMPLES, sizeof samples[0], cmp_double);
    printf("bar1: time %s median %.1f us (n %d, min %.1f, p90 %.1f)\n", what, samples[SAMPLES / 2],
           SAMPLES, samples[0], samples[SAMPLES * 9 / 10]);
}

static uint32_t new_handle(struct ping_info* page, uint64_t* page_phys) {
    *page_phys = physical_address(page);
    const uint32_t status = command(CMD_GEN_HANDLE);
    const uint32_t handle = rd(REG_HANDLE);
    if (status != 0 || handle == 0xFFFFFFFFu) {
        fail("GEN_HANDLE status %u handle 0x%x", status, handle);
    }
    wr64(REG_PING_INFO_ADDR_LOW, *page_phys);
    wr(REG_HANDLE, handle);
    const uint32_t told = command(CMD_TELL_PING_INFO_ADDR);
    const uint64_t back = rd64(REG_PING_INFO_ADDR_LOW);
    printf("bar1: handle %u ping page 0x%" PRIx64 " TELL status %u readback %s\n", handle,
           *page_phys, told, back == *page_phys ? "ok" : "MISMATCH");
    if (told != 0 || back != *page_phys) {
        fail("TELL_PING_INFO_ADDR");
    }
    return handle;
}

/* One ping: fills the request, writes PING, returns the answer in metadata. */
static uint64_t ping_cmd(struct ping_info* page, uint32_t handle, uint64_t phys, uint64_t size,
                         uint64_t metadata) {
    memset(page, 0, sizeof *page);
    page->phys_addr = phys;
    page->size = size;
    page->metadata = metadata;
    page->wait_phys_addr = 40; /* `version` = 40, as real clients send */
    wr(REG_PING, handle);
    return page->metadata;
}

/* ALLOCATE_BLOCK of `size` bytes: the block's offset, and in *granted its real size. */
static uint64_t allocate_block(uint64_t size, uint64_t* granted_out) {
    wr64(REG_BLOCK_SIZE_LOW, size);
    const uint32_t status = command(CMD_ALLOCATE_BLOCK);
    const uint64_t offset = rd64(REG_BLOCK_OFFSET_LOW), granted = rd64(REG_BLOCK_SIZE_LOW);
    printf("bar1: ALLOCATE_BLOCK 0x%" PRIx64 " status %u offset 0x%" PRIx64 " size 0x%" PRIx64 "\n",
           size, status, offset, granted);
    if (status != 0 || granted < size || offset % 4096 != 0) {
        fail("ALLOCATE_BLOCK");
    }
    *granted_out = granted;
    return offset;
}

static uint32_t deallocate_block(uint64_t offset) {
    wr64(REG_BLOCK_OFFSET_LOW, offset);
    return command(CMD_DEALLOCATE_BLOCK);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    gr_prefix = "bar1";
    char dir[512];
    find_device(dir, sizeof dir);
    enable_device(dir);
    uint64_t bar_start[2], bar_size[2];
    read_bars(dir, bar_start, bar_size);
    const uint64_t bar1 = bar_start[1], bar1_size = bar_size[1];
    printf("bar1: bar0 0x%" PRIx64 " bar1 0x%" PRIx64 " size 0x%" PRIx64 "\n", bar_start[0], bar1,
           bar1_size);
    if (bar_start[0] == 0 || bar_size[0] != 0x1000 || bar1 == 0 || bar1_size < (1u << 24)) {
        fail("BARs not placed as expected");
    }
    const int fd0 = open_resource(dir, 0);
    void* bar0 = map_resource(fd0, 0, 0x1000);
    regs = bar0;
    const int fd1 = open_resource(dir, 1);

    wr(REG_GUEST_PAGE_SIZE, 4096);
    if (rd(REG_GUEST_PAGE_SIZE) != 4096) {
        fail("GUEST_PAGE_SIZE does not read back");
    }

    /* Handle A: a type-5 context, used for the PING timing and the type-5 block. */
    struct ping_info* page_a = locked_page();
    uint64_t phys_a = 0;
    const uint32_t handle_a = new_handle(page_a, &phys_a);
    uint64_t answer = ping_cmd(page_a, handle_a, 0, 0, 5);
    printf("bar1: create ping type 5 metadata 0x%" PRIx64 "\n", answer);
    if (answer != 0) {
        fail("create ping type 5");
    }

    /* The plain block: only ALLOCATE_BLOCK, no context behind it. */
    uint64_t plain_size = 0;
    const uint64_t plain = allocate_block(64 << 10, &plain_size);
    volatile uint8_t* plain_map = map_resource(fd1, plain, plain_size);

    /* ---- Timings: before any check, so that an old device prints them too. ---- */
    for (int i = 0; i < SAMPLES; ++i) {
        const double t0 = now_us();
        samples[i] = now_us() - t0;
    }
    report_time("clock overhead");
    uint32_t sink = 0;
    for (int i = 0; i < SAMPLES; ++i) {
        const double t0 = now_us();
        sink += rd(REG_STATUS);
        samples[i] = now_us() - t0;
    }
    report_time("register-read");
    for (int i = 0; i < SAMPLES; ++i) {
        page_a->metadata = 0x7f; /* no such type-5 command: answered all-ones at once */
        const double t0 = now_us();
        wr(REG_PING, handle_a);
        samples[i] = now_us() - t0;
        sink += (uint32_t)page_a->metadata;
    }
    report_time("ping");
    for (int i = 0; i < SAMPLES; ++i) {
        const double t0 = now_us();
        sink += (uint32_t)load(plain_map + 0x40, 4);
        samples[i] = now_us() - t0;
    }
    report_time("bar1-load-4");
    for (int i = 0; i < SAMPLES; ++i) {
        const double t0 = now_us();
        store(plain_map + 0x40, 4, (uint64_t)i);
        samples[i] = now_us() - t0;
    }
    report_time("bar1-store-4");
    printf("bar1: timings done (sink 0x%x)\n", sink);

    /* ---- The plain block. ---- */
    store_checks("plain", plain_map, plain_size, 0x1111);

    /* ---- A type-5 block: host memory behind a block the guest allocated. ---- */
    uint64_t t5_size = 0;
    const uint64_t t5 = allocate_block(16 << 10, &t5_size);
    answer = ping_cmd(page_a, handle_a, bar1 + t5, t5_size, 1 /* Allocate */);
    printf("bar1: type-5 allocate at bar1+0x%" PRIx64 " size 0x%" PRIx64 " metadata 0x%" PRIx64
           "\n",
           t5, t5_size, answer);
    if (answer != 0) {
        fail("type-5 allocate");
    }
    volatile uint8_t* t5_map = map_resource(fd1, t5, t5_size);
    store_checks("type-5", t5_map, t5_size, 0x5555);

    /* ---- A claimed type-6 slot: host memory at an offset the host chose. ---- */
    struct ping_info* page_b = locked_page();
    uint64_t phys_b = 0;
    const uint32_t handle_b = new_handle(page_b, &phys_b);
    answer = ping_cmd(page_b, handle_b, 0, 0, 6);
    printf("bar1: create ping type 6 metadata 0x%" PRIx64 "\n", answer);
    if (answer != 0) {
        fail("create ping type 6");
    }
    answer = ping_cmd(page_b, handle_b, 0, 8192, 1 /* Allocate */);
    const uint64_t slot = page_b->phys_addr, slot_size = page_b->size;
    printf("bar1: type-6 allocate metadata 0x%" PRIx64 " offset 0x%" PRIx64 " size 0x%" PRIx64 "\n",
           answer, slot, slot_size);
    if (answer != 0 || slot % 4096 != 0 || slot_size < 8192 || slot + slot_size > bar1_size) {
        fail("type-6 allocate");
    }
    volatile uint8_t* slot_map = map_resource(fd1, slot, slot_size);
    store_checks("type-6", slot_map, slot_size, 0x6666);

    /* ---- The host store, in the type-6 slot. ---- */
    {
        const uint64_t at = 0x800;
        const uint64_t tag = tag_for(0x4057, slot + at, 8);
        const uint64_t want = ~tag;
        store(slot_map + at, 8, tag);
        const uint64_t mine = load(slot_map + at, 8);
        printf("bar1: host store wanted at offset 0x%" PRIx64 " after guest tag 0x%016" PRIx64 "\n",
               slot + at, tag);
        fflush(stdout);
        const double t0 = now_us();
        uint64_t got = mine;
        int polls = 0;
        while (got != want && now_us() - t0 < 20e6) {
            usleep(2000);
            got = load(slot_map + at, 8);
            ++polls;
        }
        if (got == want) {
            printf("bar1: host store seen after %.0f ms (%d polls) value 0x%016" PRIx64 "\n",
                   (now_us() - t0) / 1e3, polls, got);
        }
        check(got == want,
              "host store: guest read its tag 0x%016" PRIx64 " back, then 0x%016" PRIx64
              " (want the host's 0x%016" PRIx64 ")",
              mine, got, want);
    }

    /* ---- Outside every block and slot. ---- */
    {
        /*
         * The allocator takes blocks from the top of the free range they split (best fit,
         * docs/allocator.md), so BAR1's second page is free: make sure it is none of ours.
         */
        const uint64_t at = 0x1000;
        const int ours = (at < plain + plain_size && plain < at + 4096) ||
                         (at < t5 + t5_size && t5 < at + 4096) ||
                         (at < slot + slot_size && slot < at + 4096);
        if (ours) {
            fail("BAR1 offset 0x%" PRIx64 " is in a range of ours", at);
        }
        volatile uint8_t* stray = map_resource(fd1, at, 4096);
        const uint64_t first = load(stray + 8, 8);
        store(stray + 8, 4, 0xdeadbeef);
        const uint64_t after = load(stray + 8, 8);
        check(first == 0 && after == 0,
              "unbacked offset 0x%" PRIx64 " reads 0x%" PRIx64 ", after a store 0x%" PRIx64, at,
              first, after);
        munmap((void*)stray, 4096);
    }

    /* ---- A freed block is zero when it is allocated again. ---- */
    munmap((void*)plain_map, plain_size);
    uint32_t status = deallocate_block(plain);
    if (status != 0) {
        fail("DEALLOCATE_BLOCK of the plain block: status %u", status);
    }
    {
        uint64_t again_size = 0;
        const uint64_t again = allocate_block(64 << 10, &again_size);
        if (again_size != plain_size) {
            fail("the block allocated again is 0x%" PRIx64 " bytes, not 0x%" PRIx64, again_size,
                 plain_size);
        }
        volatile uint8_t* map = map_resource(fd1, again, plain_size);
        uint64_t nonzero = 0, first_at = 0;
        for (uint64_t at = 0; at < plain_size; at += 8) {
            if (load(map + at, 8) != 0 && nonzero++ == 0) {
                first_at = at;
            }
        }
        check(nonzero == 0,
              "block allocated again at 0x%" PRIx64 " (was 0x%" PRIx64 ") reads zero (%" PRIu64
              " non-zero words, first at +0x%" PRIx64 ")",
              again, plain, nonzero, first_at);
        munmap((void*)map, plain_size);
        status = deallocate_block(again);
        if (status != 0) {
            fail("DEALLOCATE_BLOCK of the block allocated again: status %u", status);
        }
    }

    /* ---- Teardown, in the driver's order: unmap, unallocate, handles, blocks. ---- */
    munmap((void*)t5_map, t5_size);
    munmap((void*)slot_map, slot_size);
    const uint64_t un5 = ping_cmd(page_a, handle_a, bar1 + t5, 0, 2 /* Unallocate */);
    const uint64_t un6 = ping_cmd(page_b, handle_b, bar1 + slot, 0, 2 /* Unallocate */);
    wr(REG_HANDLE, handle_a);
    const uint32_t destroy_a = command(CMD_DESTROY_HANDLE);
    wr(REG_HANDLE, handle_b);
    const uint32_t destroy_b = command(CMD_DESTROY_HANDLE);
    const uint32_t dealloc = deallocate_block(t5);
    printf("bar1: teardown unallocate type-5 0x%" PRIx64 " type-6 0x%" PRIx64
           " DESTROY_HANDLE %u %u DEALLOCATE_BLOCK %u\n",
           un5, un6, destroy_a, destroy_b, dealloc);
    if (un5 != 0 || un6 != 0 || destroy_a != 0 || destroy_b != 0 || dealloc != 0) {
        fail("teardown");
    }
    munmap(bar0, 0x1000);
    close(fd0);
    close(fd1);

    if (result.failed != 0) {
        fail("%d of %d checks failed (first: %s)", result.failed, result.checks, result.first);
    }
    printf("bar1: PASS (%d checks)\n", result.checks);
    return 0;
}
