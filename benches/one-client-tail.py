#!/usr/bin/env python3
"""Where one client's slow checks fall in the write-ahead log's fold cycle, for
benches/load.sh tail.

Sends COUNT durable checks of PROFILE one after the other over one keep-alive connection
to the service at ADDRESS, with the bearer token in the environment's TOKEN (as
benches/load-wrk.lua takes it, so it is not on the command line), and after each answer reads the WAL's frame count from the
database's WAL index (DATABASE-shm: `mxFrame`, offset 16 of its header in SQLite's
documented WAL-index format). The service's writer nudges its checkpoint thread each time
the WAL grows past a multiple of --nudge-every frames (250, the service's policy), so each
check is placed by how many checks came after the last nudge: 0 is the check whose commit
nudged. Prints the latency percentiles of all checks and of each place in the cycle, and
how many of the slowest 1 % each place holds. With --pause-ms the client sleeps between
checks, as a case officer's checks come one at a time rather than back to back.

Latencies are the client's own: Python adds about 0.1 ms against wrk, so compare the
places with each other, not with wrk's figures.
"""
import argparse
import collections
import http.client
import os
import struct
import time

LAST_PLACE = 6


def positive(text):
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return int(text)


def at(values, q):
    return values[min(int(len(values) * q), len(values) - 1)]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("address", help="host:port of a running service")
    parser.add_argument("profile", help="the profile to check, a JSON file")
    parser.add_argument("database", help="the service's database file")
    parser.add_argument("count", nargs="?", type=positive, default=20000,
                        help="how many checks (default 20000)")
    parser.add_argument("--nudge-every", type=positive, default=250,
                        help="WAL frames between the writer's nudges (default 250)")
    parser.add_argument("--pause-ms", type=float, default=0.0,
                        help="sleep between checks, in milliseconds (default 0)")
    args = parser.parse_args()
    if args.pause_ms < 0:
        parser.error("--pause-ms must not be negative")
    token = os.environ.get("TOKEN", "")
    if not token:
        parser.error("TOKEN must hold a handläggare's bearer token")
    host, _, port = args.address.rpartition(":")
    with open(args.profile, "rb") as file:
        body = file.read()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    index = os.open(args.database + "-shm", os.O_RDONLY)

    def wal_frames():
        return struct.unpack("<I", os.pread(index, 4, 16))[0]

    connection = http.client.HTTPConnection(host, int(port))
    places = collections.defaultdict(list)
    latencies = []
    since_nudge = LAST_PLACE
    before = wal_frames()
    try:
        for _ in range(args.count):
            started = time.perf_counter()
            connection.request("POST", "/api/v1/checks", body, headers)
            response = connection.getresponse()
            response.read()
            took = (time.perf_counter() - started) * 1000
            if not 200 <= response.status < 300:
                parser.exit(1, f"the service answered {response.status}\n")
            after = wal_frames()
            crossed = after // args.nudge_every != before // args.nudge_every
            since_nudge = 0 if after > before and crossed else min(since_nudge + 1, LAST_PLACE)
            places[since_nudge].append(took)
            latencies.append(took)
            before = after
            if args.pause_ms:
                time.sleep(args.pause_ms / 1000)
    finally:
        os.close(index)
        connection.close()

    latencies.sort()
    slowest = at(latencies, 0.99)
    apart = f", {args.pause_ms:g} ms apart" if args.pause_ms else ""
    print(f"{args.count} checks{apart}: p50 {at(latencies, 0.5):.3f} ms  "
          f"p90 {at(latencies, 0.9):.3f} ms  p99 {slowest:.3f} ms  max {latencies[-1]:.3f} ms")
    print("checks after the nudge   count    p50     p90     p99   of the slowest 1 %")
    for place in sorted(places):
        times = sorted(places[place])
        label = f"{place}" if place < LAST_PLACE else f"{LAST_PLACE} or more"
        print(f"{label:>21} {len(times):8d} {at(times, 0.5):7.3f} {at(times, 0.9):7.3f} "
              f"{at(times, 0.99):7.3f}   {sum(1 for t in times if t >= slowest):5d}")


main()
