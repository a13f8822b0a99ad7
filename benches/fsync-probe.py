#!/usr/bin/env python3
"""The disk's fsync latency in a folder, for benches/load.sh.

Writes one 4 KB block and waits for fsync -- what SQLite does at each commit in WAL mode
with synchronous=FULL (the bundled SQLite is built without HAVE_FDATASYNC, so it calls
fsync) -- COUNT times, each at the next offset of a 4 MB file that wraps around like a
write-ahead log reset after a checkpoint; prints the p50, p99 and largest wait. The
probe file (DIR/fsync-probe.tmp) is removed at the end.

With --frames each fsync follows a commit's worth of WAL frames instead: that many times
a 24-byte frame header and a --page-byte page, written apart as SQLite writes them;
`benches/fsync-probe.py db --frames 10 --page 16384` is the disk's own share of a lone
check's commit in a database with 16 KiB pages. With --pause-ms the probe sleeps between
fsyncs, as a disk sees checks that come one at a time rather than back to back. Only the
fsync is timed; the writes before it go to the page cache.
"""
import argparse
import math
import os
import time

FRAME_HEADER = 24
WRAP = 4 << 20


def positive(text):
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return int(text)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="the folder to probe (the database's)")
    parser.add_argument("count", nargs="?", type=positive, default=2000,
                        help="how many fsyncs (default 2000)")
    parser.add_argument("--frames", type=positive,
                        help="WAL frames written before each fsync (default: one plain block)")
    parser.add_argument("--page", type=positive, default=4096,
                        help="bytes of a block or a frame's page (default 4096)")
    parser.add_argument("--pause-ms", type=float, default=0.0,
                        help="sleep between fsyncs, in milliseconds (default 0)")
    args = parser.parse_args()
    if not os.path.isdir(args.dir):
        parser.error(f"not a folder: {args.dir}")
    if args.pause_ms < 0:
        parser.error("--pause-ms must not be negative")

    if args.frames is None:
        pieces = [b"\x5a" * args.page]
    else:
        pieces = [b"\xa5" * FRAME_HEADER, b"\x5a" * args.page] * args.frames
    size = sum(len(piece) for piece in pieces)
    path = os.path.join(args.dir, "fsync-probe.tmp")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    waits = []
    offset = 0
    try:
        for _ in range(args.count):
            if offset + size > max(WRAP, size):
                offset = 0
            for piece in pieces:
                os.pwrite(fd, piece, offset)
                offset += len(piece)
            started = time.perf_counter()
            os.fsync(fd)
            waits.append(time.perf_counter() - started)
            if args.pause_ms:
                time.sleep(args.pause_ms / 1000)
    finally:
        os.close(fd)
        os.remove(path)
    waits.sort()

    def at(q):
        return waits[min(max(math.ceil(len(waits) * q), 1), len(waits)) - 1] * 1000

    what = "fsync"
    if args.frames is not None:
        what += f" after {args.frames} frames of {args.page} B"
    if args.pause_ms:
        what += f", {args.pause_ms:g} ms apart"
    print(f"{what} n={args.count} p50 {at(0.50):.2f} ms  p99 {at(0.99):.2f} ms  max {at(1.0):.2f} ms")


main()
