#!/usr/bin/env python3
"""Writes the shim fuzzer's seed corpus (fuzz/corpus/fuse_shim/).

Each seed is one request and one reply in the input format that fuzz/fuse_shim_fuzzer.cpp
documents: INIT as a 6.9+ kernel offers it and libfuse 3.14 answers it, INIT from an old
kernel, OPEN replies that the shim patches (split as libfuse writes them and split across
the patched fields), error and wrong-size replies, malformed requests and a probe offset
near SIZE_MAX. Regenerate with `fuzz/make_shim_corpus.py` (it replaces the directory's
contents); seeds are named by content.
"""
import hashlib
import pathlib
import shutil
import struct

# <linux/fuse.h>
FUSE_LOOKUP, FUSE_GETATTR, FUSE_OPEN, FUSE_INIT = 1, 3, 14, 26
FUSE_ASYNC_READ, FUSE_BIG_WRITES, FUSE_WRITEBACK_CACHE = 1 << 0, 1 << 5, 1 << 16
FUSE_MAX_PAGES, FUSE_INIT_EXT = 1 << 22, 1 << 30
FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE = 1 << 0, 1 << 1
# The kernel 6.18 offer measured for docs/node.md#mmap: passthrough included.
KERNEL_OFFER = 0x5FD73FFFFFB
ENOENT, EACCES, ENOSYS = 2, 13, 38


def u16(v): return struct.pack("<H", v & 0xFFFF)
def u32(v): return struct.pack("<I", v & 0xFFFFFFFF)
def i32(v): return struct.pack("<i", v)
def u64(v): return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def request(opcode, unique, body=b"", nodeid=1, length=None):
    n = 40 + len(body) if length is None else length
    return u32(n) + u32(opcode) + u64(unique) + u64(nodeid) + u32(0) + u32(0) + u32(4242) + \
        u16(0) + u16(0) + body


def reply(unique, error=0, payload=b""):
    return u32(16 + len(payload)) + i32(error) + u64(unique) + payload


def init_in(minor, flags, flags2=None):
    body = u32(7) + u32(minor) + u32(128 * 1024) + u32(flags)
    if flags2 is not None:
        body += u32(flags2) + bytes(44)  # 7.36+: flags2 and unused[11]
    return body


def init_out(flags, minor=31, flags2=0, size=64):
    body = u32(7) + u32(minor) + u32(128 * 1024) + u32(flags) + u16(12) + u16(9) + \
        u32(1 << 20) + u32(1) + u16(256) + u16(0) + u32(flags2) + bytes(28)
    return body[:size]


def open_out(fh, flags, padding=0):
    return u64(fh) + u32(flags) + u32(padding)


def seed(req, rep, cuts=(16,), backing_id=1, probe=0, null_empty=False):
    """cuts: where the reply is split (ascending offsets; repeats give empty iovecs)."""
    lengths, at = [], 0
    for c in cuts:
        lengths.append(c - at)
        at = c
    assert all(0 <= n <= 255 for n in lengths) and at <= len(rep)
    return u16(len(req)) + req + bytes([1 if null_empty else 0]) + i32(backing_id) + \
        u32(probe) + bytes([len(lengths)]) + bytes(lengths) + rep


SEEDS = {
    # INIT as it happens: the kernel's full offer, libfuse's 64-byte reply in two iovecs.
    "init": seed(request(FUSE_INIT, 2, init_in(45, KERNEL_OFFER & 0xFFFFFFFF, KERNEL_OFFER >> 32)),
                 reply(2, 0, init_out(FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_WRITEBACK_CACHE |
                                      FUSE_MAX_PAGES))),
    # The same reply cut inside flags, flags2 and max_stack_depth, with empty iovecs.
    "init_split": seed(request(FUSE_INIT, 2, init_in(45, FUSE_INIT_EXT, 0x20)),
                       reply(2, 0, init_out(FUSE_WRITEBACK_CACHE)),
                       cuts=(3, 16, 29, 29, 31, 49, 54), null_empty=True),
    # An old kernel: a 16-byte INIT body, and a pre-7.23 (24-byte) reply the shim leaves.
    "init_old_kernel": seed(request(FUSE_INIT, 2, init_in(22, FUSE_ASYNC_READ)),
                            reply(2, 0, init_out(FUSE_ASYNC_READ, minor=22, size=24))),
    # INIT_EXT claimed with the body ending before flags2; libfuse's refusal.
    "init_short_ext": seed(request(FUSE_INIT, 2, init_in(36, FUSE_INIT_EXT) + u16(0)),
                           reply(2, -71)),
    # OPEN as the shim patches it: fuse_open_out after the header, backing id 1.
    "open": seed(request(FUSE_OPEN, 10, u32(2) + u32(0), nodeid=1000),
                 reply(10, 0, open_out(0xF00D, FOPEN_DIRECT_IO)), backing_id=1),
    # Split across open_flags and the backing id; a large id.
    "open_split": seed(request(FUSE_OPEN, 11, u32(2) + u32(0), nodeid=1002),
                       reply(11, 0, open_out(0xF00D, FOPEN_DIRECT_IO | FOPEN_KEEP_CACHE)),
                       cuts=(16, 25, 27, 27, 30), backing_id=0x7FFFFFFF, null_empty=True),
    # Empty iovecs (null bases) before, inside and after the header.
    "empty_iovecs": seed(request(FUSE_OPEN, 19, u32(2) + u32(0)),
                         reply(19, 0, open_out(0xF00D, FOPEN_DIRECT_IO)),
                         cuts=(0, 0, 5, 5, 16, 16, 32), backing_id=4, null_empty=True),
    # An OPEN refused, and one with no backing id.
    "open_error": seed(request(FUSE_OPEN, 12, u32(0) + u32(0)), reply(12, -EACCES), backing_id=3),
    "open_no_id": seed(request(FUSE_OPEN, 13, u32(0) + u32(0)),
                       reply(13, 0, open_out(1, FOPEN_DIRECT_IO)), backing_id=0),
    # Other requests and replies: LOOKUP's name, a GETATTR reply, ENOSYS.
    "lookup": seed(request(FUSE_LOOKUP, 14, b"goldfish_address_space\0"),
                   reply(14, -ENOENT), probe=0),
    "getattr": seed(request(FUSE_GETATTR, 15, u32(0) + u32(0) + u64(0)),
                    reply(15, 0, u64(1) + u32(0) + u32(0) + bytes(88)), cuts=(16, 40), probe=100),
    # Malformed requests: a length field that disagrees, and one shorter than a header.
    "bad_length": seed(request(FUSE_GETATTR, 16, bytes(16), length=57), reply(16, -ENOSYS)),
    "short_request": seed(request(FUSE_INIT, 17)[:39], reply(17, 0, bytes(3)), cuts=(8,)),
    # A probe offset near SIZE_MAX (16 + offset must not wrap into the header).
    "probe_wraps": seed(request(FUSE_OPEN, 18, bytes(8)), reply(18, 0, open_out(2, 0)),
                        probe=0x8000000F),
}


def main():
    out = pathlib.Path(__file__).resolve().parent / "corpus" / "fuse_shim"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name, data in SEEDS.items():
        digest = hashlib.sha1(data).hexdigest()[:12]
        (out / f"{name}-{digest}").write_bytes(data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
