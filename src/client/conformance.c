/* See conformance.h. Only libc and the UAPI header: this is what any C client sees. */
#define _GNU_SOURCE
#include "client/conformance.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/goldfish_address_space.h>

#define HOST_ALLOCATE 1
#define HOST_UNALLOCATE 2
#define TYPE_HOST_MEMORY_ALLOCATOR 5
#define TYPE_SHARED_SLOTS 6
#define PAGE 4096u
#define ALL_ONES UINT64_MAX

struct run {
    FILE* out;
    int passed;
    int failed;
};

/* Records one step; returns `ok` so callers can stop a sequence early. */
static int step(struct run* r, int ok, const char* name, const char* detail, long value) {
    if (ok) {
        fprintf(r->out, "PASS: %s\n", name);
        r->passed++;
    } else {
        fprintf(r->out, "FAIL: %s: %s (%ld)\n", name, detail, value);
        r->failed++;
    }
    return ok;
}

/* ioctl returning 0 or the errno it failed with. */
static int call(int fd, unsigned long cmd, void* arg) {
    return ioctl(fd, cmd, arg) == 0 ? 0 : errno;
}

static int ping(int fd, uint64_t offset, uint64_t size, uint64_t metadata,
                struct goldfish_address_space_ping* reply) {
    memset(reply, 0, sizeof(*reply));
    reply->offset = offset;
    reply->size = size;
    reply->metadata = metadata;
    reply->version = sizeof(*reply);
    return call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, reply);
}

static int create_context(int fd, uint64_t type, uint64_t* metadata) {
    struct goldfish_address_space_ping p;
    int err = ping(fd, 0, 0, type, &p);
    *metadata = p.metadata;
    return err;
}

static int open_node(struct run* r, const char* path, const char* name) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    step(r, fd >= 0, name, "open failed, errno", fd >= 0 ? 0 : errno);
    return fd;
}

static void host_memory_allocator(struct run* r, const char* path) {
    uint64_t metadata = 0;
    int fd = open_node(r, path, "type 5: open");
    if (fd < 0)
        return;
    int err = create_context(fd, TYPE_HOST_MEMORY_ALLOCATOR, &metadata);
    if (!step(r, err == 0 && metadata == 0, "type 5: create ping gives metadata 0",
              "errno/metadata", err ? err : (long)metadata)) {
        close(fd);
        return;
    }

    struct goldfish_address_space_allocate_block block = {.size = 3 * PAGE + 1};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &block);
    step(r, err == 0, "type 5: ALLOCATE_BLOCK", "errno", err);
    step(r, err == 0 && block.size >= 3 * PAGE + 1 && block.size % PAGE == 0,
         "type 5: granted size covers the request in whole pages", "size", (long)block.size);
    step(r, err == 0 && block.phys_addr > block.offset, "type 5: phys_addr = BAR1 start + offset",
         "phys_addr", (long)block.phys_addr);

    struct goldfish_address_space_allocate_block second = {.size = 1};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &second);
    step(r,
         err == 0 && second.phys_addr - second.offset == block.phys_addr - block.offset &&
             (second.offset + second.size <= block.offset ||
              block.offset + block.size <= second.offset),
         "type 5: a second block is disjoint and has the same BAR1 base", "errno", err);

    struct goldfish_address_space_ping p;
    err = ping(fd, block.offset, block.size, HOST_ALLOCATE, &p);
    step(r, err == 0 && p.metadata == 0, "type 5: Allocate ping maps host memory", "errno/metadata",
         err ? err : (long)p.metadata);
    err = ping(fd, block.offset, block.size, HOST_ALLOCATE, &p);
    step(r, err == 0 && p.metadata != 0, "type 5: a second Allocate on the same GPA fails",
         "errno/metadata", err ? err : (long)p.metadata);
    err = ping(fd, block.offset, 0, HOST_UNALLOCATE, &p);
    step(r, err == 0 && p.metadata == 0, "type 5: Unallocate ping", "errno/metadata",
         err ? err : (long)p.metadata);
    err = ping(fd, block.offset, 0, HOST_UNALLOCATE, &p);
    step(r, err == 0 && p.metadata != 0, "type 5: Unallocate twice fails", "errno/metadata",
         err ? err : (long)p.metadata);
    err = ping(fd, block.offset, block.size, HOST_ALLOCATE, &p);
    step(r, err == 0 && p.metadata == 0, "type 5: Allocate again after Unallocate",
         "errno/metadata", err ? err : (long)p.metadata);

    /* DEALLOCATE_BLOCK while the host still maps the block: the device drops the mapping. */
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &block.offset);
    step(r, err == 0, "type 5: DEALLOCATE_BLOCK", "errno", err);
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &block.offset);
    step(r, err == ENXIO, "type 5: DEALLOCATE_BLOCK twice gives ENXIO", "errno", err);
    uint64_t unknown = second.offset + PAGE / 2;
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &unknown);
    step(r, err == ENXIO, "type 5: DEALLOCATE_BLOCK of an unknown offset gives ENXIO", "errno",
         err);
    err = ping(fd, second.offset + ((uint64_t)16 << 30), PAGE, HOST_ALLOCATE, &p);
    step(r, err != 0 || p.metadata != 0, "type 5: Allocate outside any block fails",
         "errno/metadata", err ? err : (long)p.metadata);
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &second.offset);
    step(r, err == 0, "type 5: DEALLOCATE_BLOCK of the second block", "errno", err);
    step(r, close(fd) == 0, "type 5: close", "errno", errno);
}

static void shared_slots(struct run* r, const char* path) {
    uint64_t metadata = 0;
    int fd = open_node(r, path, "type 6: open");
    if (fd < 0)
        return;
    int err = create_context(fd, TYPE_SHARED_SLOTS, &metadata);
    if (!step(r, err == 0 && metadata == 0, "type 6: create ping gives metadata 0",
              "errno/metadata", err ? err : (long)metadata)) {
        close(fd);
        return;
    }

    struct goldfish_address_space_ping a, b, p;
    err = ping(fd, 0, 100, HOST_ALLOCATE, &a);
    step(r, err == 0 && a.metadata == 0 && a.size == PAGE,
         "type 6: Allocate gives an offset and size rounded to 4096", "size", (long)a.size);
    err = ping(fd, 0, 2 * PAGE, HOST_ALLOCATE, &b);
    step(r, err == 0 && b.metadata == 0 && b.offset == a.offset + a.size,
         "type 6: small allocations are contiguous in one slab", "offset", (long)b.offset);

    struct goldfish_address_space_claim_shared claim = {.offset = a.offset, .size = a.size};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &claim);
    step(r, err == 0 && claim.offset == a.offset && claim.size == a.size, "type 6: CLAIM_SHARED",
         "errno", err);
    struct goldfish_address_space_claim_shared around = {.offset = a.offset,
                                                         .size = a.size + b.size};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &around);
    step(r, err == EINVAL, "type 6: a claim containing another claim gives EINVAL", "errno", err);
    struct goldfish_address_space_claim_shared inside = {.offset = a.offset + 16, .size = 16};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &inside);
    step(r, err == EINVAL, "type 6: a claim inside another claim gives EINVAL", "errno", err);
    struct goldfish_address_space_claim_shared empty = {.offset = b.offset, .size = 0};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &empty);
    step(r, err == EINVAL, "type 6: an empty claim gives EINVAL", "errno", err);
    struct goldfish_address_space_claim_shared wrap = {.offset = b.offset, .size = ALL_ONES};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &wrap);
    step(r, err == EINVAL, "type 6: a claim whose end wraps gives EINVAL", "errno", err);

    /* Only the allocating context may free. */
    int other = open_node(r, path, "type 6: open a second file");
    if (other >= 0) {
        err = create_context(other, TYPE_SHARED_SLOTS, &metadata);
        step(r, err == 0 && metadata == 0, "type 6: second context", "errno/metadata",
             err ? err : (long)metadata);
        err = ping(other, b.offset, 0, HOST_UNALLOCATE, &p);
        step(r, err == 0 && p.metadata != 0, "type 6: another context cannot free the slot",
             "errno/metadata", err ? err : (long)p.metadata);
        close(other);
    }

    err = ping(fd, a.offset, 0, HOST_UNALLOCATE, &p);
    step(r, err == 0 && p.metadata == 0, "type 6: Unallocate", "errno/metadata",
         err ? err : (long)p.metadata);
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, &claim.offset);
    step(r, err == 0, "type 6: UNCLAIM_SHARED", "errno", err);
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, &claim.offset);
    step(r, err == ENXIO, "type 6: UNCLAIM_SHARED twice gives ENXIO", "errno", err);
    err = ping(fd, a.offset, 0, HOST_UNALLOCATE, &p);
    step(r, err == 0 && p.metadata != 0, "type 6: Unallocate twice fails", "errno/metadata",
         err ? err : (long)p.metadata);
    /* b is left allocated: close must return it (DESTROY_HANDLE frees everything). */
    step(r, close(fd) == 0, "type 6: close with a slot still allocated", "errno", errno);
}

static void bad_input(struct run* r, const char* path) {
    uint64_t metadata = 0;
    int fd = open_node(r, path, "input: open");
    if (fd < 0)
        return;
    int err = create_context(fd, 99, &metadata);
    step(r, err == 0 && metadata == ALL_ONES, "input: unknown type gives metadata ~0",
         "errno/metadata", err ? err : (long)metadata);
    err = create_context(fd, TYPE_HOST_MEMORY_ALLOCATOR, &metadata);
    step(r, err == 0 && metadata == 0, "input: the handle stayed uncreated (a later create works)",
         "errno/metadata", err ? err : (long)metadata);

    struct goldfish_address_space_allocate_block zero = {.size = 0};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &zero);
    step(r, err == EINVAL, "input: ALLOCATE_BLOCK of size 0 gives EINVAL", "errno", err);
    struct goldfish_address_space_allocate_block huge = {.size = ALL_ONES};
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &huge);
    step(r, err == ENOMEM || err == EINVAL, "input: ALLOCATE_BLOCK of 2^64-1 bytes fails", "errno",
         err);
    /* BAR1's start is added modulo 2^64, as the C driver does: the host sees an address
     * below BAR1 and refuses the command. */
    struct goldfish_address_space_ping p;
    err = ping(fd, ALL_ONES, PAGE, HOST_ALLOCATE, &p);
    step(r, err == 0 && p.metadata == ALL_ONES,
         "input: PING whose offset wraps past 2^64 reaches the host, which refuses it",
         "errno/metadata", err ? err : (long)p.metadata);
    uint64_t offset = 0;
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, &offset);
    step(r, err == ENXIO, "input: UNCLAIM_SHARED of an unknown offset gives ENXIO", "errno", err);
    err = call(fd, _IO('G', 99), NULL);
    step(r, err == ENOTTY, "input: an unknown ioctl gives ENOTTY", "errno", err);
    err = call(fd, _IOWR('G', 10, uint32_t), &offset);
    /* The size is part of the code: this is not ALLOCATE_BLOCK, so it is unknown. */
    step(r, err == ENOTTY, "input: ALLOCATE_BLOCK's number with another size gives ENOTTY", "errno",
         err);
    step(r, close(fd) == 0, "input: close", "errno", errno);
}

/* Real clients (Android's set_subdevice_type, the gfxstream ASG stream) fill in only
 * `metadata` of their create ping: every other field is whatever was on the stack. */
static void uninitialised_create(struct run* r, const char* path) {
    int fd = open_node(r, path, "garbage: open");
    if (fd < 0)
        return;
    struct goldfish_address_space_ping p;
    memset(&p, 0xff, sizeof p);
    p.metadata = TYPE_SHARED_SLOTS;
    int err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_PING, &p);
    if (!step(r, err == 0 && p.metadata == 0,
              "garbage: a create ping with all ones in every other field works", "errno/metadata",
              err ? err : (long)p.metadata)) {
        close(fd);
        return;
    }
    err = ping(fd, ALL_ONES, 0, HOST_UNALLOCATE, &p);
    step(r, err == 0 && p.metadata == ALL_ONES,
         "garbage: Unallocate at an offset that wraps is refused by the host", "errno/metadata",
         err ? err : (long)p.metadata);
    err = ping(fd, 0, PAGE, HOST_ALLOCATE, &p);
    if (step(r, err == 0 && p.metadata == 0, "garbage: the context then allocates",
             "errno/metadata", err ? err : (long)p.metadata)) {
        err = ping(fd, p.offset, 0, HOST_UNALLOCATE, &p);
        step(r, err == 0 && p.metadata == 0, "garbage: and unallocates", "errno/metadata",
             err ? err : (long)p.metadata);
    }
    step(r, close(fd) == 0, "garbage: close", "errno", errno);
}

static void* map_at(int fd, uint64_t offset, uint64_t size, int prot) {
    return mmap(NULL, size, prot, MAP_SHARED, fd, (off_t)offset);
}

static uint64_t load64(const void* p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void store64(void* p, uint64_t v) {
    memcpy(p, &v, sizeof v);
}

/* Whether a file's mapping of an offset it does not own is what a driver may give: EPERM
 * (a kernel driver's ownership check), or pages of the file's own that read zero and do
 * not reach the owner's (a FUSE node, which cannot refuse the mmap). `owner` is the
 * owner's mapping of the same page, holding `mark`. */
static int unowned_is_isolated(int fd, uint64_t offset, const void* owner, uint64_t mark) {
    void* p = map_at(fd, offset, PAGE, PROT_READ | PROT_WRITE);
    if (p == MAP_FAILED) {
        return errno == EPERM;
    }
    int ok = load64(p) == 0;
    store64(p, ~mark);
    ok = ok && (owner == NULL || load64(owner) == mark);
    munmap(p, PAGE);
    return ok;
}

/* mmap of what a file owns (docs/uapi.md#mmap), checked from the client's side. A node
 * that serves ioctls only answers ENODEV: then these steps are skipped. */
static void shared_memory(struct run* r, const char* path) {
    int fd = open_node(r, path, "mmap: open");
    if (fd < 0)
        return;
    struct goldfish_address_space_allocate_block block = {.size = 2 * PAGE + 1};
    int err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_ALLOCATE_BLOCK, &block);
    if (!step(r, err == 0, "mmap: ALLOCATE_BLOCK", "errno", err)) {
        close(fd);
        return;
    }
    /* PROT_WRITE alone is what the AOSP library asks for. */
    void* w = map_at(fd, block.offset, block.size, PROT_WRITE);
    if (w == MAP_FAILED && errno == ENODEV) {
        fprintf(r->out, "SKIP: mmap: this node maps nothing (ENODEV)\n");
        close(fd);
        return;
    }
    step(r, w != MAP_FAILED, "mmap: an owned block, PROT_WRITE", "errno", errno);
    void* rw = map_at(fd, block.offset, block.size, PROT_READ | PROT_WRITE);
    if (!step(r, w != MAP_FAILED && rw != MAP_FAILED, "mmap: an owned block, PROT_READ|PROT_WRITE",
              "errno", errno)) {
        close(fd);
        return;
    }
    step(r, load64(rw) == 0 && load64((char*)rw + block.size - 8) == 0,
         "mmap: a new block reads zeros", "value", (long)load64(rw));
    store64((char*)w + PAGE + 8, 0x600dcafe);
    step(r, load64((char*)rw + PAGE + 8) == 0x600dcafe, "mmap: two mappings share the pages",
         "value", (long)load64((char*)rw + PAGE + 8));
    void* inner = map_at(fd, block.offset + PAGE, PAGE, PROT_READ | PROT_WRITE);
    step(r, inner != MAP_FAILED && load64((char*)inner + 8) == 0x600dcafe,
         "mmap: a page inside an owned block", "errno", inner == MAP_FAILED ? errno : 0);
    if (inner != MAP_FAILED)
        munmap(inner, PAGE);
    void* unaligned = map_at(fd, block.offset + 8, PAGE, PROT_READ);
    step(r, unaligned == MAP_FAILED && errno == EINVAL, "mmap: an unaligned offset gives EINVAL",
         "errno", unaligned == MAP_FAILED ? errno : 0);

    int other = open_node(r, path, "mmap: a second open");
    if (other >= 0) {
        store64((char*)rw + PAGE, 0xa11ce);
        step(r, unowned_is_isolated(other, block.offset + PAGE, (char*)rw + PAGE, 0xa11ce),
             "mmap: another file at this block's offset sees none of it", "errno", errno);
    }

    /* Type 5: the block's host memory is the block's pages. */
    uint64_t metadata = 0;
    struct goldfish_address_space_ping p;
    err = create_context(fd, TYPE_HOST_MEMORY_ALLOCATOR, &metadata);
    err = err ? err : ping(fd, block.offset, block.size, HOST_ALLOCATE, &p);
    step(r, err == 0 && p.metadata == 0 && load64((char*)rw + PAGE + 8) == 0x600dcafe,
         "mmap: type 5: a host-backed block keeps its mapping", "errno/metadata",
         err ? err : (long)p.metadata);
    err = ping(fd, block.offset, 0, HOST_UNALLOCATE, &p);
    step(r, err == 0 && p.metadata == 0, "mmap: type 5: Unallocate", "errno/metadata",
         err ? err : (long)p.metadata);

    munmap(w, block.size);
    err = call(fd, GOLDFISH_ADDRESS_SPACE_IOCTL_DEALLOCATE_BLOCK, &block.offset);
    step(r, err == 0, "mmap: DEALLOCATE_BLOCK with the block mapped", "errno", err);
    step(r, unowned_is_isolated(fd, block.offset, NULL, 0),
         "mmap: after DEALLOCATE_BLOCK the offset is not the file's", "errno", errno);
    munmap(rw, block.size);

    /* Type 6: a slot of a host slab, claimed and mapped. */
    int fd6 = open_node(r, path, "mmap: type 6: open");
    if (fd6 >= 0) {
        err = create_context(fd6, TYPE_SHARED_SLOTS, &metadata);
        err = err ? err : ping(fd6, 0, 3 * PAGE, HOST_ALLOCATE, &p);
        struct goldfish_address_space_claim_shared claim = {p.offset, p.size};
        if (step(r, err == 0 && p.metadata == 0, "mmap: type 6: Allocate a slot", "errno/metadata",
                 err ? err : (long)p.metadata)) {
            err = call(fd6, GOLDFISH_ADDRESS_SPACE_IOCTL_CLAIM_SHARED, &claim);
            void* slot =
                err ? MAP_FAILED : map_at(fd6, claim.offset, claim.size, PROT_READ | PROT_WRITE);
            step(r, slot != MAP_FAILED, "mmap: type 6: a claimed slot", "errno", err ? err : errno);
            if (slot != MAP_FAILED) {
                store64(slot, 0x5107);
                store64((char*)slot + claim.size - 8, 0x5107);
                step(r, load64((char*)slot + claim.size - 8) == 0x5107,
                     "mmap: type 6: the slot keeps what was written", "value",
                     (long)load64((char*)slot + claim.size - 8));
                if (other >= 0)
                    step(r, unowned_is_isolated(other, claim.offset, slot, 0x5107),
                         "mmap: type 6: another file at the slot's offset sees none of it", "errno",
                         errno);
                munmap(slot, claim.size);
            }
            uint64_t offset = claim.offset;
            err = call(fd6, GOLDFISH_ADDRESS_SPACE_IOCTL_UNCLAIM_SHARED, &offset);
            step(r, err == 0, "mmap: type 6: UNCLAIM_SHARED", "errno", err);
            err = ping(fd6, claim.offset, 0, HOST_UNALLOCATE, &p);
            step(r, err == 0 && p.metadata == 0, "mmap: type 6: Unallocate", "errno/metadata",
                 err ? err : (long)p.metadata);
        }
        close(fd6);
    }
    if (other >= 0)
        close(other);
    step(r, close(fd) == 0, "mmap: close", "errno", errno);
}

int gf_conformance_run(const char* node_path, FILE* out) {
    struct run r = {out, 0, 0};
    host_memory_allocator(&r, node_path);
    shared_slots(&r, node_path);
    bad_input(&r, node_path);
    uninitialised_create(&r, node_path);
    shared_memory(&r, node_path);
    fprintf(out, "conformance: %d passed, %d failed\n", r.passed, r.failed);
    return r.failed;
}
