#!/usr/bin/env bash
# Regenerates expected.json: imports the development cohort with the real binary into a
# throwaway database, then computes the reference numbers from that database with
# reference.py (statsmodels). Run from anywhere; see README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cohort="$repo/examples/cohort-2018"
python="${PYTHON:-python3}"
for file in profiles.jsonl outcomes.jsonl; do
    [[ -f "$cohort/$file" ]] || { echo "missing $cohort/$file" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Only the settings below: an inherited GK_REGLER_* (a retention period, another
# database) must not change what is imported.
for name in $(env | sed -n 's/^\(GK_REGLER_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done
export GK_REGLER_RULES="$repo/rules"
export GK_REGLER_DATABASE="$work/gk-regler.sqlite3"
export GK_REGLER_PSEUDONYM_KEY_FILE="$work/pseudonym.key"
export GK_REGLER_TOKENS_FILE="$work/tokens.yaml"
cargo run --quiet --manifest-path "$repo/Cargo.toml" --bin gk-regler -- \
    import "$cohort/profiles.jsonl" --outcomes "$cohort/outcomes.jsonl"
"$python" "$here/reference.py" "$work/gk-regler.sqlite3" --out "$here/expected.json"
