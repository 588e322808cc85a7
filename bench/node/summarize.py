#!/usr/bin/env python3
"""Medians and the node's ratios from one node_bench run.

    node_bench --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true \
        --benchmark_out=node_bench.json --benchmark_out_format=json
    bench/node/summarize.py node_bench.json
"""
import json
import sys


def medians(path):
    with open(path) as f:
        data = json.load(f)
    out = {}
    rows = sorted(data["benchmarks"],
                  key=lambda b: (b.get("family_index", 0), b.get("per_family_instance_index", 0)))
    for b in rows:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median":
            name = b["run_name"].removeprefix("BM_").removesuffix("/real_time")
            name = "/".join(p for p in name.split("/") if not p.startswith("iterations:"))
            out[name] = b
    return data.get("context", {}), out


def ns(b):
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
    return b["real_time"] * scale


def fmt_time(t):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t:.3g} ns"


def main():
    context, m = medians(sys.argv[1])
    reps = next((b.get("repetitions") for b in m.values()), "?")
    print(f"medians of {reps} repetitions; load average {context.get('load_avg')}")
    print()
    print(f"| {'benchmark':44} | {'median':>10} | {'throughput':>11} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 13}|")
    for name, b in m.items():
        if name.startswith("Paired"):
            continue
        rate = b.get("bytes_per_second")
        rate = f"{rate / 2**30:.2f} GiB/s" if rate else ""
        print(f"| {name:44} | {fmt_time(ns(b)):>10} | {rate:>11} |")

    def ratio(a, b):
        return ns(m[a]) / ns(m[b]) if a in m and b in m else float("nan")

    print()
    print("| comparison | ratio | target |")
    print("|---|---|---|")
    rows = [
        ("1. memcpy throughput, node block / anonymous", 1 / ratio("MemcpyNodeBlock", "MemcpyAnon"), ">= 0.95"),
        ("   memcpy throughput, node block / plain memfd", 1 / ratio("MemcpyNodeBlock", "MemcpyMemfd"), ""),
        ("2. first touch, node / memfd (teardown untimed)",
         ratio("FirstTouchNodeBlock/teardown_timed:0", "FirstTouchMemfd/teardown_timed:0"), "<= 1.2"),
        ("   first touch, node / memfd (teardown timed)",
         ratio("FirstTouchNodeBlock/teardown_timed:1", "FirstTouchMemfd/teardown_timed:1"), "<= 1.2"),
        ("3. open+close, empty per-open inode / empty fixed inode",
         ratio("OpenCloseEmptyPerOpenInode", "OpenCloseEmptyFixedInode"), ""),
        ("   open+close, node --no-mmap / empty fixed inode",
         ratio("OpenCloseNodeNoMmap", "OpenCloseEmptyFixedInode"), ""),
        ("   open+close, node / empty fixed inode", ratio("OpenCloseNode", "OpenCloseEmptyFixedInode"), ""),
        ("   open+close, node / node --no-mmap", ratio("OpenCloseNode", "OpenCloseNodeNoMmap"), ""),
        ("   open+close, goldfish-asd / goldfish-asd --no-mmap",
         ratio("OpenCloseDaemon", "OpenCloseDaemonNoMmap"), ""),
        ("4. PING, node (mmap on) / empty FUSE ioctl", ratio("NodePing", "EmptyFusePing"), "<= 1.0"),
        ("   ALLOCATE+DEALLOCATE, node (mmap on) / empty FUSE",
         ratio("NodeAllocateDeallocate", "EmptyFuseAllocateDeallocate"), ""),
    ]
    for label, r, target in rows:
        print(f"| {label} | {r:.3f} | {target} |")

    paired = {
        "PairedMemcpy": "1. memcpy 64 MiB: anonymous / node block (time; throughput ratio is 1/x)",
        "PairedFirstTouch/teardown_timed:0": "2. first touch 64 MiB, teardown untimed: memfd / node block",
        "PairedFirstTouch/teardown_timed:1": "2. first touch 64 MiB, teardown timed: memfd / node block",
        "PairedOpenClose/pair:0": "3. open+close: empty fixed inode / node",
        "PairedOpenClose/pair:1": "3. open+close: empty fixed inode / node --no-mmap",
        "PairedOpenClose/pair:2": "3. open+close: node --no-mmap / node",
        "PairedOpenClose/pair:3": "3. open+close: goldfish-asd --no-mmap / goldfish-asd",
        "PairedPing": "4. PING: empty FUSE ioctl / node (mmap on)",
    }
    print()
    print("paired (alternating within each run; medians over repetitions of per-run medians):")
    print()
    print("| pair (base / node) | base | node | node/base |")
    print("|---|---|---|---|")
    for key, label in paired.items():
        if key in m:
            b = m[key]
            print(f"| {label} | {fmt_time(b['base_us'] * 1e3)} | {fmt_time(b['node_us'] * 1e3)} "
                  f"| {b['node/base']:.3f} |")

    def t(name):
        return ns(m[name]) if name in m else float("nan")

    print()
    print("open+close split (in process, medians):")
    fixed, per_open = t("OpenCloseEmptyFixedInode"), t("OpenCloseEmptyPerOpenInode")
    no_mmap, node = t("OpenCloseNodeNoMmap"), t("OpenCloseNode")
    print(f"  FUSE fixed inode (OPEN/RELEASE)         {fmt_time(fixed)}")
    print(f"  + per-open inode (LOOKUP/FORGET)        {fmt_time(per_open - fixed)}")
    print(f"  + driver file (handle, ping page)       {fmt_time(no_mmap - per_open)}")
    print(f"  + memory file (memfd, passthrough)      {fmt_time(node - no_mmap)}")
    print(f"  goldfish-asd: --no-mmap {fmt_time(t('OpenCloseDaemonNoMmap'))}, "
          f"mmap {fmt_time(t('OpenCloseDaemon'))} "
          f"(memory file part {fmt_time(t('OpenCloseDaemon') - t('OpenCloseDaemonNoMmap'))})")


if __name__ == "__main__":
    main()
