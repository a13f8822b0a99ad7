#!/usr/bin/env bash
# SQLite's own floor under the import, for BENCHMARKS.md: how long SQLite alone takes to
# write the rows an import of the national cohort writes (every check with its stored
# profile, its flags and rule errors, the audit's facts, the outcomes, the access log)
# into the same schema, with the same page size and the settings of the import's writer
# when it has the database to itself (a rollback journal, synchronous=FULL, foreign keys,
# the bulk write's 64 MiB page cache), in one transaction, the database set back to WAL
# mode at the end.
# The rows come by INSERT … SELECT from a database the import wrote: no parsing, no
# validation, no evaluation, no statement per row. Each round also times the import
# itself into a fresh database, so the two are measured in the same sitting.
#
#   benches/sqlite-floor.sh
#   ROUNDS=5 GK_REGLER_BIN=target/release/gk-regler benches/sqlite-floor.sh
#   COHORT=examples/cohort-2018 benches/sqlite-floor.sh
#
# The cohort is the one benches/history.sh uses (made by benches/national_cohort.rs if
# missing). Needs the sqlite3 command-line shell (Debian's sqlite3 package) and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v sqlite3 >/dev/null || { echo "the sqlite3 shell is needed (apt-get install sqlite3)" >&2; exit 1; }
rounds=${ROUNDS:-3}
source benches/common.sh
bin=$(release_binary) || exit 1
cohort=$(cohort_folder) || exit 1
profiles=$cohort/profiles.jsonl outcomes=$cohort/outcomes.jsonl
checks=$(wc -l <"$profiles")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
use_clean_environment "$work"

echo "== $(basename "$cohort"): $checks checks; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
GK_REGLER_DATABASE=$work/source.sqlite3 "$bin" import "$profiles" --outcomes "$outcomes" >/dev/null 2>&1

page_size=$(sqlite3 "$work/source.sqlite3" "PRAGMA page_size")

# Parents before children, for the foreign keys.
tables="rule_sets accounts sessions evaluations flags rule_errors check_facts shadow_results outcomes outcome_history flag_responses access_log"
{
    echo "PRAGMA journal_mode = DELETE;"
    echo "PRAGMA synchronous = FULL;"
    echo "PRAGMA foreign_keys = ON;"
    echo "PRAGMA cache_size = -65536;"
    echo "ATTACH '$work/source.sqlite3' AS source;"
    echo "BEGIN IMMEDIATE;"
    # A table is read in its own key order, the order the import wrote it in.
    for t in $tables; do echo "INSERT INTO main.$t SELECT * FROM source.$t;"; done
    echo "COMMIT;"
    echo "PRAGMA journal_mode = WAL;"
} >"$work/floor.sql"

count_rows() { for t in $tables; do sqlite3 "$1" "SELECT '$t', count(*) FROM $t"; done; }
imported_rows=$(count_rows "$work/source.sqlite3")
# Runs a command, stdin passed on; prints its wall time in seconds, or its errors and fails.
seconds() { /usr/bin/time -f "%e" -o "$work/one" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }; cat "$work/one"; }
: >"$work/pairs"
for round in $(seq "$rounds"); do
    rm -f "$work"/floor.sqlite3* "$work"/import.sqlite3*
    # The import's page size first, so that both write pages of one size.
    { echo "PRAGMA page_size = $page_size;"; sqlite3 "$work/source.sqlite3" .schema | grep -v '^CREATE TABLE sqlite_'; } |
        sqlite3 "$work/floor.sqlite3"
    floor=$(seconds sqlite3 -bail "$work/floor.sqlite3" <"$work/floor.sql") || exit 1
    # The copy must hold every row the import wrote.
    [[ $(count_rows "$work/floor.sqlite3") == "$imported_rows" ]] ||
        { echo "the copy's rows differ from the import's" >&2; exit 1; }
    import=$(seconds env GK_REGLER_DATABASE="$work/import.sqlite3" "$bin" import "$profiles" --outcomes "$outcomes") || exit 1
    echo "$floor $import" >>"$work/pairs"
    printf "  round %s: SQLite alone %s s, gk-regler import %s s\n" "$round" "$floor" "$import"
done
python3 - "$work/pairs" "$checks" <<'EOF'
import statistics, sys
pairs = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
checks = int(sys.argv[2])
floor = statistics.median(p[0] for p in pairs)
imp = statistics.median(p[1] for p in pairs)
ratio = statistics.median(p[1] / p[0] for p in pairs)
print(f"SQLite alone: median {floor:.2f} s = {checks / floor:,.0f} profiles/s")
print(f"import:       median {imp:.2f} s = {checks / imp:,.0f} profiles/s")
print(f"import / SQLite alone: {ratio:.2f} (median of the rounds' ratios)")
EOF
