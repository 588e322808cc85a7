#!/usr/bin/env python3
"""Writes the ASG consumer fuzzer's seed corpus (fuzz/corpus/asg_consumer/).

Each seed is a sink byte and a program in the input format that fuzz/asg_consumer_fuzzer.cpp
documents: every operation on its own, well-formed type-1 and mode-3 exchanges with both
sinks, and each hostile case of docs/contexts.md#hostile-guests (descriptors outside the
buffer or past the step, positions that jump, mode 2 and garbage modes, a transfer the guest
abandons, transfer_size 0 with data, a reply ring whose read position jumps or that the guest
never reads, bursts of garbage, DESTROY_HANDLE in the middle of a transfer). Regenerate with
`fuzz/make_asg_corpus.py` (it replaces the directory's contents); seeds are named by content.
"""
import hashlib
import pathlib
import shutil
import struct

# Opcodes, in the order of the harness's enum Op.
(STORE_FIELD, STORE_RAW, PUSH_DESCRIPTOR, WRITE_RING_BUF, WRITE_BUFFER, SMALL_WRITE,
 LARGE_WRITE, NOTIFY, WAIT_IDLE, DRAIN_REPLIES, PING, PAUSE, SCRIBBLE, DESTROY) = range(14)
# Fields, in the order of the harness's kFields.
(TO_HOST_WP, TO_HOST_RP, LARGE_WP, LARGE_RP, FROM_HOST_WP, FROM_HOST_RP, STATE, BUFFER_SIZE,
 FLUSH_INTERVAL, HOST_CONSUMED, GUEST_WRITE_POS, MODE, TRANSFER_SIZE, IN_ERROR, HOST_VERSION,
 GUEST_VERSION) = range(16)
# Indexes into the harness's kSpecials.
SPECIALS = [0, 1, 2, 3, 4, 7, 8, 16, 2047, 2048, 2056, 16383, 16384, 16385, 65528, 65535, 65536,
            65537, 65535, 65537, 1 << 20, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF8, 0xFFFFFFFF]
ECHO, DISCARD = 0, 1
GET_RING, GET_BUFFER, SET_VERSION, NOTIFY_AVAILABLE, GET_CONFIG = range(5)


def u8(v): return struct.pack("<B", v & 0xFF)
def u16(v): return struct.pack("<H", v & 0xFFFF)
def u32(v): return struct.pack("<I", v & 0xFFFFFFFF)


# Values (the harness's value()): raw, current + small delta, a special, another field + delta.
def raw(v): return u8(0) + u32(v)
def nudge(d): return u8(1) + struct.pack("<b", d)
def special(v): return u8(2) + u8(SPECIALS.index(v))
def rel(field, d): return u8(3) + u8(field) + struct.pack("<h", d)


def store(field, value): return u8(STORE_FIELD) + u8(field) + value
def store_raw(offset, v): return u8(STORE_RAW) + u16(offset) + u32(v)
def descriptor(offset, size, notify=True): return u8(PUSH_DESCRIPTOR) + offset + size + u8(notify)
def ring_bytes(pos, data): return u8(WRITE_RING_BUF) + u16(pos) + u8(len(data)) + data
def buffer_bytes(offset, n, seed): return u8(WRITE_BUFFER) + u32(offset) + u16(n) + u8(seed)
def small(n, seed=1): return u8(SMALL_WRITE) + u16(n) + u8(seed)


def large(n, start=True, extra=None, seed=2, overrun=False, quiet=False):
    """A piece of a mode-3 transfer; start announces it (transfer_size n, or n + extra)."""
    flags = (1 if start else 0) | (2 if start and extra is None else 0) | \
        (4 if overrun else 0) | (8 if quiet else 0)
    out = u8(LARGE_WRITE) + u16(n) + u8(flags) + u8(seed)
    if start and extra is not None:
        out += u16(extra)
    return out


notify = u8(NOTIFY)
wait = u8(WAIT_IDLE)
drain = u8(DRAIN_REPLIES)
def ping(command, size=0): return u8(PING) + u8(command) + u8(size)
def pause(tens_of_us): return u8(PAUSE) + u8(tens_of_us)
def scribble(n, seed): return u8(SCRIBBLE) + u8(n) + u32(seed)


destroy = u8(DESTROY)
mode1 = store(MODE, special(1))
exchange = small(33, 9) + wait + drain  # a well-formed exchange, to show recovery


def seeds():
    for sink in (ECHO, DISCARD):
        s = u8(sink)
        yield s
        # Well-formed type-1 traffic, one chunk and many, up to the step and around the ring.
        yield s + small(1) + wait + drain
        yield s + small(16384, 3) + wait + drain
        yield s + b"".join(small(100 + i, i) for i in range(3)) + wait + drain
        yield s + b"".join(small(700, i) + wait + drain for i in range(12))
        # Well-formed mode 3: one piece, then a transfer of several pieces, then type 1 again.
        yield s + large(1000) + wait + mode1 + drain + exchange
        yield s + large(60000, extra=40000) + wait + large(40000, start=False) + wait + \
            mode1 + drain + exchange
        yield s + large(30000) + large(30000, start=False, quiet=True) + notify + wait + \
            mode1 + small(10) + wait + drain
        # A transfer announced larger than what is sent; the guest stops (then resumes).
        yield s + large(5000, extra=10000) + wait + wait
        yield s + large(5000, extra=10000) + wait + large(10000, start=False) + wait + \
            mode1 + drain + exchange

    e = u8(ECHO)
    # Descriptors outside the buffer, past it, past the step, wrapping, huge.
    yield e + descriptor(special(65536), special(1)) + wait + exchange
    yield e + descriptor(special(0xFFFFFFF8), special(16)) + wait + exchange
    yield e + descriptor(special(65528), special(16)) + wait + exchange
    yield e + descriptor(special(0), special(16385)) + wait + exchange
    yield e + descriptor(special(0), special(0xFFFFFFFF)) + wait + exchange
    yield e + descriptor(special(0), special(0)) + wait + exchange
    yield e + descriptor(raw(123), raw(456)) + descriptor(raw(0x10000000), raw(8)) + wait
    # to_host positions: a jump past the ring, a torn descriptor, a read position moved back.
    yield e + store(TO_HOST_WP, rel(TO_HOST_RP, 20000)) + notify + wait + exchange
    yield e + store(TO_HOST_WP, special(0x80000000)) + notify + wait + exchange
    yield e + store(TO_HOST_WP, rel(TO_HOST_RP, 4)) + notify + wait + exchange
    yield e + small(10) + wait + store(TO_HOST_RP, nudge(-8)) + notify + wait + exchange
    yield e + ring_bytes(0, bytes(range(64))) + store(TO_HOST_WP, raw(64)) + notify + wait
    yield e + ring_bytes(2044, b"\x00" * 8) + store(TO_HOST_RP, raw(2044)) + \
        store(TO_HOST_WP, raw(2044)) + small(20) + wait + drain
    # Mode 2 and garbage modes, with descriptors and with large data.
    yield e + store(MODE, special(2)) + descriptor(special(0), special(16)) + wait + mode1 + \
        exchange
    yield e + store(MODE, raw(0xDEADBEEF)) + descriptor(special(0), special(16)) + wait + \
        mode1 + exchange
    yield e + store(MODE, special(0)) + small(50) + wait + mode1 + exchange
    yield e + store(MODE, special(2)) + store(TRANSFER_SIZE, special(65536)) + \
        store(LARGE_WP, rel(LARGE_RP, 100)) + notify + wait + mode1 + exchange
    # The large ring: a jump past the view, data with transfer_size 0, data outside mode 3.
    yield e + large(100) + store(LARGE_WP, special(1 << 20)) + notify + wait + mode1 + exchange
    yield e + store(MODE, special(3)) + store(TRANSFER_SIZE, special(0)) + \
        store(LARGE_WP, rel(LARGE_RP, 64)) + notify + wait + mode1 + exchange
    yield e + store(LARGE_WP, rel(LARGE_RP, 64)) + notify + wait + exchange
    yield e + large(100, overrun=True) + large(65535, start=False, overrun=True) + wait + \
        mode1 + exchange
    yield e + large(20000, extra=0xFFFF) + store(TRANSFER_SIZE, special(0xFFFFFFFF)) + \
        store(LARGE_WP, rel(LARGE_RP, 32767)) + notify + wait + mode1 + exchange
    # Replies: a read position that jumps, a ring the guest never reads, a read back of garbage.
    yield e + store(FROM_HOST_RP, special(0x80000000)) + small(10) + wait + \
        store(FROM_HOST_RP, rel(FROM_HOST_WP, 0)) + exchange
    yield e + large(60000, extra=60000) + wait + large(60000, start=False) + wait + mode1 + \
        small(5) + wait
    yield e + store(FROM_HOST_WP, raw(12345)) + small(100) + wait + drain + exchange
    yield e + small(100) + store(MODE, special(3)) + store(TRANSFER_SIZE, special(16)) + wait + \
        mode1 + store(TRANSFER_SIZE, special(0)) + wait + drain
    # The host's fields and the state, overwritten.
    yield e + store(STATE, special(1)) + small(10) + wait + notify + wait + drain
    yield e + store(STATE, special(4)) + store(IN_ERROR, special(1)) + small(10) + notify + \
        wait + drain
    yield e + store(HOST_CONSUMED, special(0xFFFFFFFF)) + store(BUFFER_SIZE, special(0)) + \
        store(FLUSH_INTERVAL, special(1)) + exchange + ping(GET_CONFIG) + exchange
    yield e + store(GUEST_WRITE_POS, raw(7)) + store(HOST_VERSION, raw(9)) + \
        store(GUEST_VERSION, raw(9)) + exchange
    yield e + store_raw(2176, 0xFFFFFFFF) + store_raw(4104, 5000) + store_raw(8264, 3) + \
        notify + wait + exchange
    # Every command again, while traffic runs.
    yield e + small(100) + ping(GET_RING) + ping(GET_BUFFER) + ping(SET_VERSION, 1) + \
        ping(SET_VERSION, 7) + ping(NOTIFY_AVAILABLE) + ping(GET_CONFIG) + ping(7, 3) + wait + \
        drain
    # The guest's writes race the consumer: garbage bursts, with traffic between them.
    yield e + small(1000) + scribble(200, 1) + pause(5) + scribble(200, 2) + wait + exchange
    yield u8(DISCARD) + large(30000) + scribble(100, 3) + buffer_bytes(0, 4096, 5) + \
        scribble(100, 4) + wait
    yield e + buffer_bytes(60000, 4096, 7) + descriptor(raw(60000), raw(4096)) + pause(1) + \
        buffer_bytes(60000, 4096, 8) + wait + drain
    # The guest gives up half way: DESTROY_HANDLE with a transfer half done, or a reply unread.
    yield e + large(20000, extra=40000) + destroy
    yield e + large(60000) + pause(2) + destroy
    yield u8(DISCARD) + small(16384) + small(16384) + destroy
    yield e + large(60000, extra=60000) + wait + large(60000, start=False) + destroy


def main():
    out = pathlib.Path(__file__).resolve().parent / "corpus" / "asg_consumer"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    count = 0
    for seed in seeds():
        name = hashlib.sha1(seed).hexdigest()[:16]
        (out / name).write_bytes(seed)
        count += 1
    print(f"{count} seeds in {out}")


if __name__ == "__main__":
    main()
