#!/usr/bin/env bash
# Paired runs of two builds, for the ratios in BENCHMARKS.md: on a shared, noisy machine a
# single run of one binary moves by ± 15 %, so the two builds run in turn (new, old, new,
# old, …) and each pair's ratio is taken on its own.
#
#   benches/paired.sh audit  OLD_BINARY NEW_BINARY     # gk-regler audit --format json
#   benches/paired.sh replay OLD_BINARY NEW_BINARY     # gk-regler replay --rules rules --format json
#   PAIRS=15 benches/paired.sh audit OLD NEW           # pairs (default 9)
#   COHORT=examples/cohort-2018 benches/paired.sh audit OLD NEW
#   RELATIVE=1e-9 benches/paired.sh audit OLD NEW      # outputs equal within that fraction
#
# The cohort (default: the national one benches/history.sh uses, target/national-cohort-
# 100000-1, made by benches/national_cohort.rs if missing) is imported once by NEW into a
# fresh database in a temporary directory (removed at the end); both builds then read that
# database. Prints each pair (wall seconds, CPU seconds, peak MiB, whether the two outputs
# are equal byte for byte, or with RELATIVE within that fraction: benches/same_numbers.py),
# then the medians and the median of the pair ratios NEW / OLD. Exits non-zero if any
# pair's outputs differ. Needs python3 and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -eq 3 && $1 =~ ^(audit|replay)$ ]] || { sed -n 2,18p "$0" >&2; exit 2; }
step=$1 old=$(realpath "$2") new=$(realpath "$3")
pairs=${PAIRS:-9}
source benches/common.sh
cohort=$(cohort_folder) || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
use_clean_environment "$work"
export GK_REGLER_DATABASE=$work/history.sqlite3
"$new" import "$cohort/profiles.jsonl" --outcomes "$cohort/outcomes.jsonl" >/dev/null 2>&1
case $step in
audit) args=(audit --format json) ;;
replay) args=(replay --rules rules --format json) ;;
esac
echo "== $step, $pairs pairs on $(basename "$cohort"); $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== old: $old"
echo "== new: $new"
# run SIDE BINARY: appends "SIDE seconds cpu_seconds kilobytes" to $work/times
run() {
    /usr/bin/time -o "$work/one" -f "%e %U %S %M" "$2" "${args[@]}" --out "$work/$1.json" \
        >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r s u k kb <"$work/one"
    echo "$1 $s $(awk -v u="$u" -v k="$k" 'BEGIN { print u + k }') $kb" >>"$work/times"
}
: >"$work/times"
differ=0
for i in $(seq "$pairs"); do
    run new "$new"
    run old "$old"
    same=equal
    if ! cmp -s "$work/new.json" "$work/old.json"; then
        if [[ -n ${RELATIVE:-} ]] \
            && python3 benches/same_numbers.py "$RELATIVE" "$work/old.json" "$work/new.json" >"$work/moved"; then
            same="within $RELATIVE"
        else
            cat "$work/moved" 2>/dev/null || true
            same=DIFFERENT; differ=1
        fi
    fi
    tail -2 "$work/times" | awk -v i="$i" -v same="$same" '
        { s[$1] = $2; c[$1] = $3; m[$1] = int($4 / 1024) }
        END { printf "pair %2d  new %.2f s (cpu %.2f, %d MiB)  old %.2f s (cpu %.2f, %d MiB)  ratio %.2f  output %s\n",
              i, s["new"], c["new"], m["new"], s["old"], c["old"], m["old"], (s["old"] > 0 ? s["new"] / s["old"] : 0), same }'
done
python3 - "$work/times" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
side = {name: [r for r in rows if r[0] == name] for name in ("new", "old")}
for name, runs in side.items():
    wall = [float(r[1]) for r in runs]
    print(f"{name}: median {statistics.median(wall):.2f} s ({min(wall):.2f}–{max(wall):.2f}), "
          f"cpu {statistics.median(float(r[2]) for r in runs):.2f} s, "
          f"peak median {int(statistics.median(int(r[3]) for r in runs) / 1024)} MiB")
ratios = sorted(float(n[1]) / max(float(o[1]), 0.01) for n, o in zip(side["new"], side["old"]))
print(f"new / old: median of pair ratios {statistics.median(ratios):.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f})")
EOF
[[ $differ == 0 ]] || { echo "outputs differ in some pairs" >&2; exit 1; }
