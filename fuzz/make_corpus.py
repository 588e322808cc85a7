#!/usr/bin/env python3
"""Writes the driver fuzzer's seed corpus (fuzz/corpus/driver/).

Each seed is a short operation sequence in the input format that fuzz/driver_fuzzer.cpp
documents; together they reach every operation, every ioctl, both context types with all
their commands, every peer command, every fault and BAR1 exhaustion. Regenerate with
`fuzz/make_corpus.py` (it replaces the directory's contents); seeds are named by content.
"""
import hashlib
import pathlib
import shutil
import struct

# Opcodes, in the harness's enum order.
(OPEN, CLOSE, IOCTL_RAW, ALLOCATE, DEALLOCATE, PING, CLAIM, UNCLAIM, RAW_WRITE, RAW_READ, PEER,
 FAULT, HOST_MALLOC, HOST_FREE, REBIND, DEVICE_RESET) = range(16)

ALLOCATE_BLOCK, DEALLOCATE_BLOCK, PING_IOCTL, CLAIM_SHARED, UNCLAIM_SHARED, PING_WITH_DATA = range(6)


def u8(v): return bytes([v & 0xFF])
def u16(v): return struct.pack("<H", v & 0xFFFF)
def u32(v): return struct.pack("<I", v & 0xFFFFFFFF)
def u64(v): return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# Sizes.
def pages(n): return u8(0) + u8(n - 1)
def nbytes(n): return u8(1) + u16(n)
def any_size(v): return u8(2) + u64(v)
def near_slab(steps=0, page=False): return u8(3) + u8(steps) + u8(1 if page else 0)
def near_bar(shift, steps=0, page=False): return u8(4) + u8(shift) + u8(steps) + u8(1 if page else 0)


# Offsets: raw, or near something real (kind 1 own, 2 a file's, 3 device block, 4 slab/piece).
def at(v): return u8(0) + u64(v)
def near(kind, index=0, steps=0, page=False, fallback=0):
    return u8(kind) + u8(index) + u16(fallback) + u8(steps) + u8(1 if page else 0)
def own(index=0, steps=0, page=False): return near(1, index, steps, page)
def files_block(slot, steps=0, page=False): return near(2, slot, steps, page)
def device_block(index=0, steps=0, page=False): return near(3, index, steps, page)
def slab(index=0, steps=0, page=False): return near(4, index, steps, page)
def page_no(n): return near(5, 0, 0, False, n)


# Metadata: create types and commands by index, or raw.
TYPE5, TYPE6, CMD_ALLOCATE, CMD_UNALLOCATE, CMD_CHECK, ZERO, ALL_ONES = (u8(i) for i in range(7))
def meta(v): return u8(0xF0) + u64(v)


def open_(): return u8(OPEN)
def close(slot): return u8(CLOSE) + u8(slot)
def ioctl(slot, which, arg, cmd=None):
    body = u8(IOCTL_RAW) + u8(slot) + u8(which)
    if cmd is not None:
        body = u8(IOCTL_RAW) + u8(slot) + u8(6) + u32(cmd)
    return body + u8(len(arg)) + arg
def allocate(slot, size): return u8(ALLOCATE) + u8(slot) + size
def deallocate(slot, offset): return u8(DEALLOCATE) + u8(slot) + offset
def ping(slot, metadata, offset=None, size=None, version=40):
    body = u8(PING) + u8(slot) + metadata + (offset or at(0)) + (size or nbytes(0))
    return body + (u8(1) if version == 40 else u8(0) + u32(version))
def claim(slot, offset, size): return u8(CLAIM) + u8(slot) + offset + size
def unclaim(slot, offset): return u8(UNCLAIM) + u8(slot) + offset
def access_size(n):  # a byte >= 0xF0 selects size byte % 9; below, 4
    return u8(0) if n == 4 else u8(next(b for b in range(0xF0, 0x100) if b % 9 == n))
def register(index, far=None):  # index % 14 selects a register; `far` any offset instead
    return u8(index) if far is None else u8(0xF0) + u16(far)
def raw_write(reg, value, kind=0, index=0, access=4, far=None):
    return u8(RAW_WRITE) + register(reg, far) + u8(kind) + u8(index) + u32(value) + access_size(access)
def raw_read(reg, access=4, far=None): return u8(RAW_READ) + register(reg, far) + access_size(access)
def peer(kind, slot, rest=b""): return u8(PEER) + u8(kind) + u8(slot) + rest
def fault(kind, skip=0, every=1, times=1):
    return u8(FAULT) + u8(kind) + u8(skip) + u8(every) + u8(times)
def refuse_page(slot): return u8(FAULT) + u8(5) + u8(slot)
def refuse_ram(): return u8(FAULT) + u8(6)
def clear_faults(): return u8(FAULT) + u8(7)
def host_malloc(slot, shared, size): return u8(HOST_MALLOC) + u8(slot) + u8(shared) + size
def host_free(slot, shared, index=0): return u8(HOST_FREE) + u8(slot) + u8(shared) + u8(index)


def block_arg(size): return u64(size) + u64(0) + u64(0)
def ping_arg(metadata, offset=0, size=0): return u64(offset) + u64(size) + u64(metadata) + u32(40) + u32(0) * 3


# Peer kinds.
P_DESTROY, P_DEALLOCATE, P_GEN_FLOOD, P_PHYS_START, P_TELL, P_PING, P_ALLOCATE = range(7)
# Fault kinds (DeviceFault order).
F_BLOCK, F_HOST_MEMORY, F_GEN_HANDLE, F_READ_BACK, F_STATUS = range(5)

type5_cycle = (open_() + ping(0, TYPE5) + allocate(0, pages(2)) + ping(0, CMD_ALLOCATE, own(), pages(1))
               + ping(0, CMD_UNALLOCATE, own()) + deallocate(0, own()) + close(0))
type6_cycle = (open_() + ping(0, TYPE6) + host_malloc(0, 1, nbytes(100)) + host_malloc(0, 1, pages(3))
               + host_free(0, 1, 0) + host_free(0, 1, 0) + close(0))

SEEDS = {
    "open_close": open_() + close(0),
    "open_eight": open_() * 9 + close(3) + open_(),
    "ioctl_allocate": open_() + ioctl(0, ALLOCATE_BLOCK, block_arg(4096)),
    "ioctl_deallocate": open_() + ioctl(0, ALLOCATE_BLOCK, block_arg(1)) + deallocate(0, own())
                        + ioctl(0, DEALLOCATE_BLOCK, u64(0x1000)),
    "ioctl_ping": open_() + ioctl(0, PING_IOCTL, ping_arg(5)) + ioctl(0, PING_IOCTL, ping_arg(1, 0, 4096)),
    "ioctl_claim_unclaim": open_() + ioctl(0, CLAIM_SHARED, u64(0x10000) + u64(0x1000))
                           + ioctl(0, UNCLAIM_SHARED, u64(0x10000)),
    "ioctl_ping_with_data": open_() + ioctl(0, PING_WITH_DATA, bytes(56)),
    "ioctl_wrong_sizes": open_() + ioctl(0, ALLOCATE_BLOCK, bytes(8)) + ioctl(0, PING_IOCTL, bytes(24))
                         + ioctl(0, CLAIM_SHARED, bytes(40)),
    "ioctl_unknown": open_() + ioctl(0, 0, b"", cmd=0xC0184709) + ioctl(0, 0, bytes(8), cmd=0x4008470B),
    "allocate_deallocate": open_() + allocate(0, pages(1)) + allocate(0, nbytes(1)) + allocate(0, nbytes(4097))
                           + deallocate(0, own(0)) + deallocate(0, own(0, 1)) + deallocate(0, own(0)),
    "allocate_odd_sizes": open_() + allocate(0, any_size(0)) + allocate(0, any_size(2**64 - 1))
                          + allocate(0, near_bar(0)) + allocate(0, near_bar(1, 1, True)),
    "exhaust_bar1": open_() + allocate(0, near_bar(2)) * 5 + allocate(0, pages(1)),
    "type5_cycle": type5_cycle,
    "type5_host_malloc": open_() + ping(0, TYPE5) + host_malloc(0, 0, nbytes(300)) + host_free(0, 0),
    "type5_near_blocks": open_() + ping(0, TYPE5) + allocate(0, pages(4))
                         + ping(0, CMD_ALLOCATE, own(0, 1, True), pages(1))
                         + ping(0, CMD_ALLOCATE, own(0, 0xFF, True), pages(1))
                         + ping(0, CMD_ALLOCATE, own(0, 3, True), pages(2))
                         + ping(0, CMD_ALLOCATE, own(0, 1), pages(1))
                         + ping(0, CMD_ALLOCATE, own(), pages(1)) * 2
                         + ping(0, CMD_UNALLOCATE, own()) * 2,
    "type5_other_files_block": open_() * 2 + ping(1, TYPE5) + allocate(0, pages(2))
                               + ping(1, CMD_ALLOCATE, files_block(0), pages(1)) + deallocate(0, own())
                               + ping(1, CMD_UNALLOCATE, files_block(0)),
    "type5_block_freed_under_mapping": open_() + ping(0, TYPE5) + allocate(0, pages(2))
                                       + ping(0, CMD_ALLOCATE, own(), pages(1)) + deallocate(0, own())
                                       + ping(0, CMD_UNALLOCATE, own()),
    "type6_cycle": type6_cycle,
    "type6_commands": open_() + ping(0, TYPE6) + ping(0, CMD_CHECK) + ping(0, ZERO) + ping(0, ALL_ONES)
                      + ping(0, meta(77)) + ping(0, CMD_ALLOCATE, None, any_size(2**64 - 1)),
    "type6_unallocate_near": open_() * 2 + ping(0, TYPE6) + ping(1, TYPE6) + ping(0, CMD_ALLOCATE, None, pages(1))
                             + ping(1, CMD_UNALLOCATE, slab(1)) + ping(0, CMD_UNALLOCATE, slab(1, 1, True))
                             + ping(0, CMD_UNALLOCATE, slab(1)) + ping(0, CMD_UNALLOCATE, slab(1)),
    "type6_slabs_exhaust": open_() + ping(0, TYPE6) + host_malloc(0, 1, near_slab()) * 5
                           + host_free(0, 1, 1) + host_free(0, 1, 0),
    "type6_large_piece": open_() + ping(0, TYPE6) + host_malloc(0, 1, near_slab(1, True)) + close(0),
    "create_failures": open_() + ping(0, ZERO) + ping(0, ALL_ONES) + ping(0, meta(10)) + ping(0, TYPE5)
                       + ping(0, TYPE6),
    "ping_version_and_offsets": open_() + ping(0, TYPE5, at(2**64 - 4096), pages(1), version=0)
                                + ping(0, CMD_ALLOCATE, at(2**63), any_size(2**64 - 1)),
    "claims": open_() + allocate(0, pages(1)) + claim(0, own(), pages(1)) + claim(0, own(0, 1), pages(1))
              + claim(0, at(2**64 - 4096), pages(2)) + claim(0, page_no(7), nbytes(0))
              + unclaim(0, own()) + unclaim(0, own()),
    "mixed_files": open_() * 4 + ping(0, TYPE5) + ping(1, TYPE6) + allocate(0, pages(3))
                   + host_malloc(1, 1, pages(2)) + host_malloc(2, 0, pages(1)) + close(1) + close(0)
                   + host_free(2, 0) + close(2),
    "raw_registers_read": b"".join(raw_read(r) for r in range(14)) + raw_read(0, 4, far=0x38) + raw_read(0, 4, far=0xFFC) + raw_read(1, 2) + raw_read(3, 1),
    "raw_registers_write": open_() + b"".join(raw_write(r, 0x1000) for r in (2, 3, 4, 5, 6, 8, 9, 10))
                           + raw_write(2, 3, access=2) + raw_write(0, 7, far=0x40) + allocate(0, pages(1)),
    "raw_commands": open_() + raw_write(0, 3) + raw_write(10, 0, kind=1) + raw_write(0, 4)
                    + raw_write(0, 1) + raw_write(0, 9),
    "peer_destroy_handle": open_() + ping(0, TYPE6) + host_malloc(0, 1, pages(1)) + peer(P_DESTROY, 0)
                           + ping(0, CMD_ALLOCATE, None, pages(1)) + close(0),
    "peer_deallocate_block": open_() * 2 + allocate(0, pages(1)) + peer(P_DEALLOCATE, 0, own())
                             + allocate(1, pages(1)) + deallocate(0, own()) + close(0),
    "peer_gen_flood": peer(P_GEN_FLOOD, 0, u8(15)) + open_() + peer(P_GEN_FLOOD, 0, u8(40)) + close(0),
    "peer_phys_start": open_() + ping(0, TYPE5) + allocate(0, pages(2)) + peer(P_PHYS_START, 0, u8(0) + u8(1) + u8(1))
                       + ping(0, CMD_ALLOCATE, own(), pages(1)) + peer(P_PHYS_START, 0, u8(1) + u64(0)),
    "peer_tell_and_ping": open_() * 2 + ping(0, TYPE5) + peer(P_TELL, 0, u8(1) + u16(0)) + ping(1, TYPE6)
                          + peer(P_PING, 0, u32(0)) + peer(P_PING, 5, u32(7)),
    "peer_allocate": peer(P_ALLOCATE, 0, pages(16)) + open_() + allocate(0, pages(1)),
    "fault_block_allocation": open_() + fault(F_BLOCK) + allocate(0, pages(1)) + allocate(0, pages(1)),
    "fault_host_memory_type5": open_() + ping(0, TYPE5) + allocate(0, pages(1)) + fault(F_HOST_MEMORY)
                               + ping(0, CMD_ALLOCATE, own(), pages(1)) + ping(0, CMD_ALLOCATE, own(), pages(1)),
    "fault_host_memory_type6": open_() + ping(0, TYPE6) + fault(F_HOST_MEMORY, 1)
                               + host_malloc(0, 1, pages(1)) + host_malloc(0, 1, pages(1)),
    "fault_gen_handle": fault(F_GEN_HANDLE) + open_() + open_(),
    "fault_read_back": fault(F_READ_BACK, 1) + open_() * 3,
    "fault_status": open_() + allocate(0, pages(1)) + fault(F_STATUS, 0, 1, 0) + allocate(0, pages(1))
                    + deallocate(0, own()) + close(0) + clear_faults(),
    "fault_unreadable_page": open_() + ping(0, TYPE5) + refuse_page(0) + ping(0, CMD_ALLOCATE)
                             + clear_faults() + ping(0, CMD_CHECK),
    "fault_unreadable_ram": refuse_ram() + open_() + clear_faults() + open_(),
    "rebind": open_() * 2 + allocate(0, pages(1)) + ping(1, TYPE6) + host_malloc(1, 1, pages(1))
              + u8(REBIND) + open_() + allocate(0, pages(1)) + allocate(1, pages(1)),
    "rebind_after_abandoned_block": open_() + allocate(0, pages(1)) + fault(F_STATUS) + close(0)
                                    + u8(REBIND) + open_() + allocate(0, pages(1)),
    "device_reset": open_() + ping(0, TYPE5) + allocate(0, pages(2)) + ping(0, CMD_ALLOCATE, own(), pages(1))
                    + u8(DEVICE_RESET) + ping(0, CMD_UNALLOCATE, own()) + deallocate(0, own()) + open_(),
}


def main():
    out = pathlib.Path(__file__).resolve().parent / "corpus" / "driver"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name, data in SEEDS.items():
        digest = hashlib.sha1(data).hexdigest()[:12]
        (out / f"{name}-{digest}").write_bytes(data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
