#!/usr/bin/env python3
"""How long the machine itself keeps a running thread off its core, for reading a p99
of a few milliseconds (BENCHMARKS.md, "Long work and liveness").

    benches/stall-probe.py [SECONDS] [CORES]

Runs one thread per core (CORES, default every core; each a process pinned to its core)
that does nothing but read the clock for SECONDS (default 10), and prints, per core,
how often two readings were more than 1, 3 and 5 ms apart and the largest gaps. Nothing
else of the benchmarks runs meanwhile. A gap is time the thread did not run: the
hypervisor running another guest on the virtual CPU, or a kernel thread or other
process given the core. On a machine of its own the gaps stay well under 1 ms.
"""

import os
import sys
import time
from multiprocessing import Process, Queue


def spin(core, seconds, results):
    os.sched_setaffinity(0, {core})
    gaps = []
    last = time.perf_counter()
    end = last + seconds
    while last < end:
        now = time.perf_counter()
        if now - last > 0.001:
            gaps.append(now - last)
        last = now
    results.put((core, sorted(gaps)))


def main(args):
    seconds = float(args[0]) if args else 10.0
    cores = int(args[1]) if len(args) > 1 else os.cpu_count()
    results = Queue()
    spinners = [Process(target=spin, args=(core, seconds, results)) for core in range(cores)]
    for spinner in spinners:
        spinner.start()
    found = sorted(results.get() for _ in spinners)
    for spinner in spinners:
        spinner.join()
    for core, gaps in found:
        counts = ", ".join(
            f"{sum(gap > limit / 1000 for gap in gaps)} > {limit} ms" for limit in (1, 3, 5)
        )
        largest = " ".join(f"{gap * 1000:.1f}" for gap in gaps[-5:]) or "-"
        print(f"core {core}, {seconds:g} s: {counts}; largest (ms): {largest}")


if __name__ == "__main__":
    main(sys.argv[1:])
