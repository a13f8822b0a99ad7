#!/usr/bin/env bash
# Times the history commands on a release build: import, audit and replay of the
# development cohort, then of the national-scale cohort that benches/national_cohort.rs
# makes from a seed (default 100,000 cases, ≈ 250,000 checks over ten years, seed 1).
# Prints wall time and peak memory (GNU time) of each step, and replay's own rate.
#
#   benches/history.sh [CASES] [SEED]
#   GK_REGLER_BIN=/path/to/gk-regler benches/history.sh     # a given binary, no build
#   ONLY=national benches/history.sh                        # skip the development cohort
#
# The generated cohort is kept in target/national-cohort-CASES-SEED and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-100000}
seed=${2:-1}
cohort=examples/cohort-2018
if [[ -n ${GK_REGLER_BIN:-} ]]; then
    bin=$(realpath "$GK_REGLER_BIN")
else
    cargo build --release --locked --quiet --bin gk-regler
    bin=$PWD/target/release/gk-regler
fi
national=$PWD/target/national-cohort-$cases-$seed
if [[ ! -s $national/outcomes.jsonl ]]; then
    cargo run --release --locked --quiet --example national_cohort -- \
        --cases "$cases" --seed "$seed" --out "$national"
fi
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
    rm -f "$GK_REGLER_DATABASE"*
}

[[ ${ONLY:-} == national ]] || run development "$cohort/profiles.jsonl" "$cohort/outcomes.jsonl"
run national "$national/profiles.jsonl" "$national/outcomes.jsonl"
