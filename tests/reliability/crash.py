#!/usr/bin/env python3
"""Crash safety: several clients stream checks and outcomes at the service while it is
killed hard (SIGKILL) at random moments, several times, and restarted on the same
database. Afterwards every acknowledged write must be in the database, nothing
unacknowledged may be half there, and PRAGMA integrity_check must say ok.

Usage: tests/reliability/crash.py [--kills 5] [--clients 8] [--seconds-per-run 3]
Needs a built binary (cargo build); uses only loopback and a temporary directory.
"""
import argparse, json, os, random, re, signal, sqlite3, subprocess, sys, tempfile, threading, time
import urllib.request, urllib.error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("GK_REGLER_BIN", os.path.join(ROOT, "target", "debug", "gk-regler"))


def start(env):
    proc = subprocess.Popen([BINARY, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"lyssnar på http://([0-9.:]+)", line)
        if match:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, match.group(1)
    proc.kill()
    sys.exit("service did not start")


def post(address, path, token, body):
    request = urllib.request.Request(f"http://{address}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds-per-run", type=float, default=3.0)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="gk-crash-")
    env = dict(os.environ, GK_REGLER_LISTEN="127.0.0.1:0", GK_REGLER_DATABASE=f"{work}/db.sqlite3",
               GK_REGLER_TOKENS_FILE=f"{work}/tokens.yaml", GK_REGLER_PSEUDONYM_KEY_FILE=f"{work}/key",
               GK_REGLER_RULES=os.path.join(ROOT, "rules"), RUST_LOG="warn")
    token = {}
    for role in ("handlaggare", "analytiker"):
        token[role] = subprocess.run([BINARY, "token", "create", "--role", role, "--name", role], env=env,
                                     capture_output=True, text=True, check=True).stdout.strip()
    base = json.load(open(os.path.join(ROOT, "examples", "specialist-saknas.json")))
    acked_checks, acked_outcomes, lock = {}, {}, threading.Lock()
    reused = []  # evaluation ids acknowledged twice: an id handed out again after a kill
    sent = 0
    for run in range(args.kills):
        proc, address = start(env)
        stop = threading.Event()

        def client(number):
            nonlocal sent
            i = 0
            while not stop.is_set():
                i += 1
                case = f"CRASH-{run}-{number}-{i}"
                try:
                    if i % 5 == 0:
                        outcome = {"case_id": case, "ended_on": "2024-06-01",
                                   "outcome": random.choice(["left_insurance", "returned_to_fk"]), "reasons": ["other"]}
                        status, body = post(address, "/api/v1/outcomes", token["analytiker"], outcome)
                        if status == 200:
                            with lock:
                                acked_outcomes[case] = outcome["outcome"]
                    else:
                        profile = dict(base, case_id=case)
                        with lock:
                            sent += 1
                        status, body = post(address, "/api/v1/checks", token["handlaggare"], profile)
                        if status == 201:
                            with lock:
                                eid = body["evaluation_id"]
                                if eid in acked_checks:
                                    reused.append(eid)
                                acked_checks[eid] = sorted(f["rule_id"] for f in body["flags"])
                except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                    pass  # killed mid-request: not acknowledged, may or may not be stored

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.3, args.seconds_per_run))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
        print(f"run {run + 1}: killed; {len(acked_checks)} checks and {len(acked_outcomes)} outcomes acknowledged so far")

    proc, _ = start(env)  # a clean restart must work after the last kill
    proc.send_signal(signal.SIGTERM)
    exit_code = proc.wait(timeout=20)

    db = sqlite3.connect(f"{work}/db.sqlite3")
    problems = []
    if exit_code != 0:
        problems.append(f"the clean restart exited with {exit_code} on SIGTERM")
    if reused:
        problems.append(f"{len(reused)} evaluation ids acknowledged twice (reused after a kill): {reused[:5]}")
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    for eid, flags in acked_checks.items():
        stored = sorted(r[0] for r in db.execute("SELECT rule_id FROM flags WHERE evaluation_id = ?", (eid,)))
        if not db.execute("SELECT 1 FROM evaluations WHERE id = ?", (eid,)).fetchone():
            problems.append(f"acknowledged evaluation {eid} is missing")
        elif stored != flags:
            problems.append(f"evaluation {eid}: flags {stored} != acknowledged {flags}")
    stored_outcomes = db.execute("SELECT count(*) FROM outcomes").fetchone()[0]
    if stored_outcomes < len(acked_outcomes):
        problems.append(f"{len(acked_outcomes)} outcomes acknowledged, {stored_outcomes} stored")
    # Half-written: an evaluation without its access-log row or its flags (all written in one transaction).
    orphans = db.execute("""SELECT count(*) FROM evaluations e WHERE NOT EXISTS
                            (SELECT 1 FROM access_log a WHERE a.evaluation_id = e.id)""").fetchone()[0]
    if orphans:
        problems.append(f"{orphans} evaluations without their access-log entry (half-written)")
    flagless = db.execute("""SELECT count(*) FROM evaluations e WHERE NOT EXISTS
                             (SELECT 1 FROM flags f WHERE f.evaluation_id = e.id)""").fetchone()[0]
    if flagless:
        problems.append(f"{flagless} evaluations without flags, though every profile sent raises flags")
    total = db.execute("SELECT count(*) FROM evaluations").fetchone()[0]
    print(f"{args.kills} hard kills; {sent} checks sent, {len(acked_checks)} acknowledged, {total} stored; "
          f"{len(acked_outcomes)} outcomes acknowledged, {stored_outcomes} stored; integrity {integrity}")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems[:20]))
        sys.exit(1)
    print(f"1 passed, 0 failed")


if __name__ == "__main__":
    main()
