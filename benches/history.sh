#!/usr/bin/env bash
# Times the history commands on a release build: import, audit and replay of the
# development cohort, then of a synthetic cohort of N cases (default 100,000) made by
# replicating the development cohort under new case ids. Prints wall time and peak
# memory of each step. Usage: benches/history.sh [N]
# Needs GNU time (/usr/bin/time). The cohort is examples/cohort-2018.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-100000}
cohort=examples/cohort-2018
cargo build --release --quiet --bin gk-regler
bin=$PWD/target/release/gk-regler
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for v in $(env | grep -o '^GK_REGLER_[A-Z_]*' || true); do unset "$v"; done
export GK_REGLER_RULES=$PWD/rules GK_REGLER_PSEUDONYM_KEY_FILE=$work/key RUST_LOG=warn

step() { # name, command...
    local name=$1; shift
    /usr/bin/time -f "$name: %e s wall, %M KB peak" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    grep -E "^$name:|kontroller per sekund" "$work/err"
}

run() { # label, profiles, outcomes
    export GK_REGLER_DATABASE=$work/$1.sqlite3
    echo "== $1: $(wc -l <"$2") checks, $(wc -l <"$3") outcomes"
    step import "$bin" import "$2" --outcomes "$3"
    step audit "$bin" audit --format json --out "$work/$1-audit.json"
    step replay "$bin" replay --rules rules --format json --out "$work/$1-replay.json"
}

run development "$cohort/profiles.jsonl" "$cohort/outcomes.jsonl"

copies=$(( (cases + 2999) / 3000 ))
python3 - "$cohort" "$work" "$copies" <<'PY'
import json, sys
cohort, work, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ("profiles", "outcomes"):
    lines = open(f"{cohort}/{name}.jsonl").read().splitlines()
    with open(f"{work}/synthetic-{name}.jsonl", "w") as out:
        for copy in range(copies):
            for line in lines:
                record = json.loads(line)
                record["case_id"] = f"{record['case_id']}-S{copy}"
                out.write(json.dumps(record) + "\n")
PY
run synthetic "$work/synthetic-profiles.jsonl" "$work/synthetic-outcomes.jsonl"
