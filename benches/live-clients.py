#!/usr/bin/env python3
"""The clients of benches/live-under-audit.sh, each one long-lived process, so that what
the benchmark times is the service and not the start-up of a client process per request.

    benches/live-clients.py probe HOST:PORT SAMPLES [GAP_MS]
    benches/live-clients.py audits HOST:PORT TOKENS OUT PATH...

`probe` times SAMPLES sequential GET /health/live, each on a new TCP connection (as a
load balancer's or an orchestrator's health check makes it), GAP_MS apart (default 10),
and prints each time in milliseconds, one per line: from opening the connection to the
end of the response.

`audits` keeps one request per PATH in flight, each in a loop on a kept-alive
connection with `Authorization: Bearer TOKEN`, the PATHs taking the comma-separated
TOKENS in turn (one person may have two audits at a time), reads every response to its end, and
appends each request's seconds to OUT. It runs until it is stopped. Any answer but 200
stops it with the status, so a refused request can never pass for a fast audit.
"""

import http.client
import socket
import sys
import threading
import time


def probe(address, samples, gap_ms):
    host, port = address.rsplit(":", 1)
    request = f"GET /health/live HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode()
    for _ in range(samples):
        started = time.perf_counter()
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(request)
            answer = b""
            while chunk := connection.recv(4096):
                answer += chunk
        elapsed = time.perf_counter() - started
        if not answer.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"/health/live answered {answer[:40]!r}")
        print(f"{elapsed * 1000:.3f}", flush=True)
        time.sleep(gap_ms / 1000)


def audits(address, tokens, out, paths):
    host, port = address.rsplit(":", 1)
    lock = threading.Lock()
    failure = []
    tokens = tokens.split(",")

    def loop(path, token):
        connection = http.client.HTTPConnection(host, int(port), timeout=600)
        while not failure:
            started = time.perf_counter()
            connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                failure.append(f"{path} answered {response.status}")
                return
            with lock, open(out, "a") as times:
                times.write(f"{elapsed:.4f}\n")

    threads = [
        threading.Thread(target=loop, args=(path, tokens[i % len(tokens)]), daemon=True)
        for i, path in enumerate(paths)
    ]
    for thread in threads:
        thread.start()
    while not failure and all(thread.is_alive() for thread in threads):
        time.sleep(0.05)
    raise SystemExit(failure[0] if failure else "an audit client stopped")


def main(args):
    if len(args) >= 3 and args[0] == "probe":
        gap_ms = float(args[3]) if len(args) > 3 else 10.0
        probe(args[1], int(args[2]), gap_ms)
    elif len(args) >= 5 and args[0] == "audits":
        audits(args[1], args[2], args[3], args[4:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
