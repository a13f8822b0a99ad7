#!/usr/bin/env python3
"""What a fold of the write-ahead log does to the next commits' fsync, with the disk alone.

Plays a lone check's commits and the checkpoint thread's folds with plain files in DIR:
each commit writes 10 WAL frames of 16 KiB (a 24-byte header and a page each) over the
start of a file, as a WAL that starts over does, and waits for fsync; every 25 commits
(250 frames, the service's nudge) a second thread writes FOLD_BYTES (default 336 KiB) to
another file and waits for its fsync, as a fold into the database file does (a fold of
250 frames of one client's checks copies about 21 distinct pages, 336 KiB). Runs three
ways: no fold, the fold growing its file (the database file grows at its end), and the
fold over blocks the file already has. For each it prints the commits' fsync latency
percentiles and the median of the commit made right after the fold began and of the
others. COMMITS (default 5000) per way. The files are removed at the end.
"""
import argparse
import os
import shutil
import tempfile
import threading
import time

PAGE = 16384
FRAME = 24 + PAGE
FRAMES_PER_COMMIT = 10
COMMITS_PER_FOLD = 25
WAL_FRAMES = 250
FOLD_PAGES = 21


def positive(text):
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return int(text)


def at(values, q):
    values = sorted(values)
    return values[min(int(len(values) * q), len(values) - 1)]


def run(folder, way, commits, fold_bytes):
    wal = os.open(os.path.join(folder, "wal"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    database = os.open(os.path.join(folder, "db"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    frame = b"\x5a" * FRAME
    for i in range(WAL_FRAMES + FRAMES_PER_COMMIT):
        os.pwrite(wal, frame, i * FRAME)
    os.fsync(wal)
    room = 0
    if way == "over":
        block = b"\x11" * (1 << 20)
        room = max(64 << 20, 4 * fold_bytes)
        for offset in range(0, room, len(block)):
            os.pwrite(database, block, offset)
        os.fsync(database)
    fold_start = threading.Event()
    done = False

    def folder_thread():
        end = 0
        data = b"\x22" * fold_bytes
        while not done:
            if not fold_start.wait(0.2):
                continue
            fold_start.clear()
            if way == "none":
                continue
            os.pwrite(database, data, end if way == "grow" else end % (room - fold_bytes))
            end += fold_bytes
            os.fsync(database)

    thread = threading.Thread(target=folder_thread)
    thread.start()
    after_fold, others, all_waits = [], [], []
    offset = 0
    try:
        for i in range(commits):
            if i % COMMITS_PER_FOLD == 0:
                fold_start.set()
            for _ in range(FRAMES_PER_COMMIT):
                os.pwrite(wal, frame, offset)
                offset = (offset + FRAME) % (WAL_FRAMES * FRAME)
            started = time.perf_counter()
            os.fsync(wal)
            took = (time.perf_counter() - started) * 1000
            all_waits.append(took)
            (after_fold if i % COMMITS_PER_FOLD == 0 else others).append(took)
            time.sleep(0.0003)
    finally:
        done = True
        fold_start.set()
        thread.join()
        os.close(wal)
        os.close(database)
    print(f"{way:>5}: fsync p50 {at(all_waits, 0.5):.2f} ms  p90 {at(all_waits, 0.9):.2f} ms  "
          f"p99 {at(all_waits, 0.99):.2f} ms;  median right after a fold began "
          f"{at(after_fold, 0.5):.2f} ms, of the others {at(others, 0.5):.2f} ms")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="the folder to play it in (the database's)")
    parser.add_argument("commits", nargs="?", type=positive, default=5000,
                        help="commits per way (default 5000)")
    parser.add_argument("fold_bytes", nargs="?", type=positive, default=FOLD_PAGES * PAGE,
                        help=f"bytes of a fold (default {FOLD_PAGES * PAGE})")
    args = parser.parse_args()
    if not os.path.isdir(args.dir):
        parser.error(f"not a folder: {args.dir}")
    folder = tempfile.mkdtemp(prefix="fsync-beside-fold.", dir=args.dir)
    try:
        for way in ("none", "grow", "over"):
            run(folder, way, args.commits, args.fold_bytes)
    finally:
        shutil.rmtree(folder)


main()
