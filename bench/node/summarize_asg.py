#!/usr/bin/env python3
"""Medians and the ASG stream's ratios to memcpy from one asg_bench run.

    asg_bench --benchmark_out=asg_bench.json --benchmark_out_format=json
    bench/node/summarize_asg.py asg_bench.json

(asg_bench runs 5 interleaved repetitions and reports aggregates unless given
--benchmark_repetitions.)
"""
import sys

from summarize import fmt_time, medians, ns

CASES = [
    ("Memcpy/4096", "memcpy 4 KiB"),
    ("Memcpy/1048576", "memcpy 1 MiB"),
    ("Throughput/size:4096/transfer:0", "ASG write 4 KiB (auto: type 1), discard sink"),
    ("Throughput/size:1048576/transfer:0", "ASG write 1 MiB (auto: mode 3), discard sink"),
    ("Throughput/size:1048576/transfer:1", "ASG write 1 MiB (type-1 chunks), discard sink"),
    ("EchoAwake", "echo 64 B round trip, consumer awake"),
    ("EchoAsleep", "echo 64 B round trip, consumer asleep"),
]


def main():
    context, m = medians(sys.argv[1])
    m = {k.removesuffix("/manual_time"): v for k, v in m.items()}
    reps = next((b.get("repetitions") for b in m.values()), "?")
    print(f"medians of {reps} repetitions; load average {context.get('load_avg')}")
    print()
    print(f"| {'case':46} | {'median':>10} | {'throughput':>11} | {'notifies':>14} |")
    print(f"|{'-' * 48}|{'-' * 12}|{'-' * 13}|{'-' * 16}|")
    for key, label in CASES:
        b = m.get(key)
        if b is None:
            print(f"| {label:46} | {'not run':>10} | {'':>11} | {'':>14} |")
            continue
        rate = b.get("bytes_per_second")
        rate = f"{rate / 2**30:.2f} GiB/s" if rate else ""
        notifies = next((f"{b[c]:.3g}/{c.split('/')[1]}" for c in ("notifies/write", "notifies/trip")
                         if c in b), "")
        print(f"| {label:46} | {fmt_time(ns(b)):>10} | {rate:>11} | {notifies:>14} |")

    def rate_ratio(a, b):
        if a in m and b in m and m[b].get("bytes_per_second"):
            return m[a].get("bytes_per_second", 0) / m[b]["bytes_per_second"]
        return float("nan")

    print()
    print("| comparison (throughput) | ratio | target |")
    print("|---|---|---|")
    rows = [
        ("ASG write 1 MiB (mode 3) / memcpy 1 MiB",
         rate_ratio("Throughput/size:1048576/transfer:0", "Memcpy/1048576"), ">= 0.50"),
        ("ASG write 1 MiB (type-1 chunks) / memcpy 1 MiB",
         rate_ratio("Throughput/size:1048576/transfer:1", "Memcpy/1048576"), ""),
        ("ASG write 4 KiB (type 1) / memcpy 4 KiB",
         rate_ratio("Throughput/size:4096/transfer:0", "Memcpy/4096"), ""),
    ]
    for label, r, target in rows:
        print(f"| {label} | {r:.3f} | {target} |")
    print()
    print("| echo 64 B, single round trips (medians over repetitions) | p10 | p50 |")
    print("|---|---|---|")
    for key, label in (("EchoAwake", "consumer awake"), ("EchoAsleep", "consumer asleep")):
        if key in m and "p50_us" in m[key]:
            b = m[key]
            print(f"| {label} | {fmt_time(b['p10_us'] * 1e3)} | {fmt_time(b['p50_us'] * 1e3)} |")
    print()
    print("echo targets: awake median < 5 us with ~0 notifies per round trip; "
          "asleep 1 notify per round trip")


if __name__ == "__main__":
    main()
