#!/usr/bin/env bash
# Checks that two builds of gk-regler give identical rule outcomes and audit numbers on a
# cohort: each binary imports the cohort into its own fresh database (same pseudonym key),
# then writes the audit as HTML, JSON and CSV and the replay as JSON and CSV; the outputs
# must be equal byte for byte, and so must every stored flag and rule error. Used for
# every performance change: build the old commit and the new one, then
#
#   benches/identical.sh OLD_BINARY NEW_BINARY [PROFILES.jsonl OUTCOMES.jsonl]
#
# (default cohort: examples/cohort-2018, the whole development cohort). Needs python3.
#
# RELATIVE=1e-9 allows, in the JSON and CSV outputs only, numbers that differ by at most
# that fraction of their size (everything else, every count and every text, still equal):
# for a change of how the model is fitted, whose full-precision estimates move in their
# last digits. It lists each field that moved and its largest relative difference; the
# HTML report, whose figures are rounded as people read them, must still be equal.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -eq 2 || $# -eq 4 ]] || { sed -n 2,16p "$0" >&2; exit 2; }
old=$(realpath "$1") new=$(realpath "$2")
profiles=$(realpath "${3:-examples/cohort-2018/profiles.jsonl}")
outcomes=$(realpath "${4:-examples/cohort-2018/outcomes.jsonl}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for v in $(env | grep -o '^GK_REGLER_[A-Z_]*' || true); do unset "$v"; done
export GK_REGLER_RULES=$PWD/rules GK_REGLER_PSEUDONYM_KEY_FILE=$work/key RUST_LOG=warn
# One key for both sides, made before either runs (so neither says it made one).
(umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' >"$work/key")

for side in old new; do
    bin=${!side}
    export GK_REGLER_DATABASE=$work/$side.sqlite3
    "$bin" import "$profiles" --outcomes "$outcomes" >"$work/$side-import.txt" 2>/dev/null
    "$bin" audit --format html --out "$work/$side-audit.html" 2>/dev/null
    "$bin" audit --format json --out "$work/$side-audit.json" 2>/dev/null
    "$bin" audit --format csv --out "$work/$side-audit.csv" 2>/dev/null
    "$bin" replay --rules rules --format json --out "$work/$side-replay.json" 2>/dev/null
    "$bin" replay --rules rules --format csv --out "$work/$side-replay.csv" 2>/dev/null
    # Every stored result, by case and date (ids and timestamps differ between runs).
    python3 - "$GK_REGLER_DATABASE" >"$work/$side-stored.txt" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute("""
    SELECT e.case_pseudonym, e.checked_on, e.stage, e.profile_json,
           f.rule_id, f.severity, f.message, NULL, NULL
    FROM evaluations e JOIN flags f ON f.evaluation_id = e.id
    UNION ALL
    SELECT e.case_pseudonym, e.checked_on, e.stage, e.profile_json,
           r.rule_id, r.kind, r.message, r.line, r.col
    FROM evaluations e JOIN rule_errors r ON r.evaluation_id = e.id
    ORDER BY 1, 2, 3, 4, 5"""):
    print(repr(row))
print("evaluations", db.execute("SELECT count(*) FROM evaluations").fetchone()[0])
print("outcomes", db.execute("SELECT count(*) FROM outcomes").fetchone()[0])
PY
done

status=0
for output in import.txt audit.html audit.json audit.csv replay.json replay.csv stored.txt; do
    if cmp -s "$work/old-$output" "$work/new-$output"; then
        echo "identical: $output ($(wc -c <"$work/new-$output") bytes)"
    elif [[ -n ${RELATIVE:-} && $output =~ \.(json|csv)$ ]] \
        && python3 benches/same_numbers.py "$RELATIVE" "$work/old-$output" "$work/new-$output"; then
        echo "equal within $RELATIVE relative: $output ($(wc -c <"$work/new-$output") bytes)"
    else
        echo "DIFFERENT: $output"
        diff "$work/old-$output" "$work/new-$output" | head -20 || true
        status=1
    fi
done
exit $status
