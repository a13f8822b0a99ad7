#!/usr/bin/env bash
# Times the history commands on a release build, one row of BENCHMARKS.md per step:
#
#   benches/history.sh import     # import ≈ 250,000 profiles + 100,000 outcomes (fresh db each round)
#   benches/history.sh audit      # audit of 100,000 cases as JSON (db imported once, untimed)
#   benches/history.sh replay     # replay of every stored check with the live and a second rule set
#   benches/history.sh            # all three
#
# The cohort is the national-scale one benches/national_cohort.rs makes from a seed
# (CASES=100000, SEED=1: 100,000 cases, 251,697 checks over ten years), kept in
# target/national-cohort-CASES-SEED and reused. Each step runs ROUNDS times (default 3);
# it prints every round's wall time and peak memory (GNU time) and the median.
#
#   GK_REGLER_BIN=/path/to/gk-regler benches/history.sh audit   # a given binary, no build
#   COHORT=examples/cohort-2018 benches/history.sh              # another cohort directory
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-all}
[[ $steps == all ]] && steps="import audit replay"
for s in $steps; do
    [[ $s =~ ^(import|audit|replay)$ ]] || { sed -n 2,15p "$0" >&2; exit 2; }
done
rounds=${ROUNDS:-3}
source benches/common.sh
bin=$(release_binary) || exit 1
cohort=$(cohort_folder) || exit 1
profiles=$cohort/profiles.jsonl outcomes=$cohort/outcomes.jsonl
checks=$(wc -l <"$profiles")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
use_clean_environment "$work"
export GK_REGLER_DATABASE=$work/history.sqlite3
echo "== $(basename "$cohort"): $checks checks, $(wc -l <"$outcomes") outcomes; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

timed() { # label, command... → appends "seconds kilobytes" to $work/times
    /usr/bin/time -f "%e %M" -o "$work/one" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    read -r s kb <"$work/one"
    echo "$s $kb" >>"$work/times"
    printf "  %s: %s s wall, %s MB peak\n" "$2" "$s" "$((kb / 1024))"
}

median() { sort -n "$work/times" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
peak() { sort -n -k2 "$work/times" | tail -1 | awk '{ print int($2 / 1024) }'; }

import_once() { rm -f "$GK_REGLER_DATABASE"*; "$bin" import "$profiles" --outcomes "$outcomes" >/dev/null 2>&1; }

for step in $steps; do
    : >"$work/times"
    echo "-- $step, $rounds rounds"
    case $step in
    import)
        for _ in $(seq "$rounds"); do
            rm -f "$GK_REGLER_DATABASE"*
            timed "$bin" import "$profiles" --outcomes "$outcomes"
        done
        m=$(median)
        echo "import: median $m s, $(awk -v n="$checks" -v s="$m" 'BEGIN { printf "%d", n / s }') profiles/s, peak $(peak) MB" ;;
    audit)
        [[ -s $GK_REGLER_DATABASE ]] || import_once
        for _ in $(seq "$rounds"); do timed "$bin" audit --format json --out "$work/audit.json"; done
        echo "audit: median $(median) s, peak $(peak) MB" ;;
    replay)
        [[ -s $GK_REGLER_DATABASE ]] || import_once
        for _ in $(seq "$rounds"); do timed "$bin" replay --rules rules --format json --out "$work/replay.json"; done
        m=$(median)
        echo "replay: median $m s, $(awk -v n="$checks" -v s="$m" 'BEGIN { printf "%d", n / s }') checks/s, peak $(peak) MB" ;;
    esac
done
