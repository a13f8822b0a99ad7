#!/usr/bin/env python3
"""The disk's fsync latency in a folder, for benches/load.sh.

    benches/fsync-probe.py DIR [COUNT]

Writes one 4 KB block (one SQLite page, about one small check) and waits for fsync
-- what SQLite does at each commit in WAL mode with synchronous=FULL (the bundled
SQLite is built without HAVE_FDATASYNC, so it calls fsync) -- COUNT times (default 2000), each at the next offset of a 4 MB
file that wraps around like a write-ahead log reset after a checkpoint; prints the
p50, p99 and largest wait. The probe file (DIR/fsync-probe.tmp) is removed at the end.
"""
import math
import os
import sys
import time

BLOCK = 4096
WRAP = 4 << 20


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__.strip())
    if not os.path.isdir(sys.argv[1]):
        sys.exit(f"not a folder: {sys.argv[1]}")
    count = sys.argv[2] if len(sys.argv) == 3 else "2000"
    if not count.isdigit() or int(count) == 0:
        sys.exit("COUNT must be a positive whole number")
    count = int(count)
    path = os.path.join(sys.argv[1], "fsync-probe.tmp")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = b"\x5a" * BLOCK
    waits = []
    offset = 0
    try:
        for _ in range(count):
            os.pwrite(fd, block, offset)
            started = time.perf_counter()
            os.fsync(fd)
            waits.append(time.perf_counter() - started)
            offset = (offset + BLOCK) % WRAP
    finally:
        os.close(fd)
        os.remove(path)
    waits.sort()

    def at(q):
        return waits[min(max(math.ceil(len(waits) * q), 1), len(waits)) - 1] * 1000

    print(f"fsync n={count} p50 {at(0.50):.2f} ms  p99 {at(0.99):.2f} ms  max {at(1.0):.2f} ms")


main()
