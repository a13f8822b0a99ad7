#!/usr/bin/env python3
"""Cold start to ready: from starting `gk-regler serve` on a fresh database to its first
200 from GET /health/ready, timed in one process (no shell or curl start-up in the figure).

    benches/cold-start.py BINARY [ROUNDS]

Each round uses a new temporary directory (database, pseudonym key and tokens are made
fresh) and the rules in rules/. Prints each round in ms and the median.
"""

import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def one_start(binary, rules):
    work = tempfile.mkdtemp(prefix="gk-cold-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GK_REGLER_")}
    env.update(
        GK_REGLER_LISTEN="127.0.0.1:0",
        GK_REGLER_RULES=rules,
        GK_REGLER_DATABASE=os.path.join(work, "gk-regler.sqlite3"),
        GK_REGLER_PSEUDONYM_KEY_FILE=os.path.join(work, "pseudonym.key"),
        GK_REGLER_TOKENS_FILE=os.path.join(work, "tokens.yaml"),
        RUST_LOG="warn",
    )
    started = time.perf_counter()
    server = subprocess.Popen(
        [binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        address = None
        for line in server.stdout:
            found = re.search(r"lyssnar på http://(\S+)", line)
            if found:
                address = found.group(1)
                break
        if address is None:
            raise SystemExit("serve stopped before it listened")
        host, port = address.rsplit(":", 1)
        while True:
            try:
                connection = http.client.HTTPConnection(host, int(port), timeout=5)
                connection.request("GET", "/health/ready")
                status = connection.getresponse().status
                connection.close()
                if status == 200:
                    return (time.perf_counter() - started) * 1000
            except OSError:
                pass
            if server.poll() is not None:
                raise SystemExit("serve stopped before it was ready")
            time.sleep(0.0005)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    binary = os.path.realpath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) == 3 else 11
    rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rules")
    times = [one_start(binary, os.path.realpath(rules)) for _ in range(rounds)]
    print("cold start to ready (ms):", " ".join(f"{t:.1f}" for t in times))
    print(f"cold start: median {statistics.median(times):.1f} ms over {rounds} starts")


if __name__ == "__main__":
    main()
