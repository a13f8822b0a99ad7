#!/usr/bin/env bash
# Liveness under audit load, for BENCHMARKS.md: how fast /health/live answers while four
# HTML audits of the development cohort render at the same time (two through the API,
# two through the web page), compared with an idle service.
#
#   benches/live-under-audit.sh                         # release build, defaults below
#   SAMPLES=500 benches/live-under-audit.sh
#   GK_REGLER_BIN=target/debug/gk-regler benches/live-under-audit.sh   # a given binary
#   COHORT=target/national-cohort-100000-1 benches/live-under-audit.sh  # national scale
#
# Imports COHORT (default examples/cohort-2018: 6,388 checks, 3,000 outcomes; any folder
# with profiles.jsonl and outcomes.jsonl, such as the one benches/national_cohort.rs makes)
# into a fresh database in a temporary directory (removed at the end), starts `gk-regler serve`, keeps four audit
# requests in flight in a loop, and times SAMPLES sequential GET /health/live with curl.
# Prints p50, p99 and the maximum, idle and loaded, in milliseconds, and how many audits
# were completed during the loaded run.
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${SAMPLES:-300}
PERIOD=${PERIOD:-}   # e.g. "from=2024-01-01&to=2024-06-30"; empty: the whole cohort
COHORT=${COHORT:-examples/cohort-2018}

command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
if [[ -n ${GK_REGLER_BIN:-} ]]; then
    bin=$(realpath "$GK_REGLER_BIN")
else
    echo "== cargo build --release --locked"
    cargo build --release --locked
    bin=$PWD/target/release/gk-regler
fi

work=$(mktemp -d)
server_pid=
load_pids=()
cleanup() {
    for pid in "${load_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

while IFS='=' read -r name _; do
    [[ $name == GK_REGLER_* ]] && unset "$name"
done < <(env)
export GK_REGLER_LISTEN=127.0.0.1:0
export GK_REGLER_RULES=$PWD/rules
export GK_REGLER_DATABASE=$work/gk-regler.sqlite3
export GK_REGLER_TOKENS_FILE=$work/tokens.yaml
export GK_REGLER_PSEUDONYM_KEY_FILE=$work/pseudonym.key
export RUST_LOG=warn

token=$("$bin" token create --role analytiker --name live.bench 2>/dev/null)
echo "== import $COHORT"
"$bin" import "$COHORT/profiles.jsonl" --outcomes "$COHORT/outcomes.jsonl" >/dev/null

"$bin" serve >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
address=
for _ in $(seq 1 3000); do
    address=$(sed -n 's/^gk-regler lyssnar på http:\/\/\([^ ]*\).*/\1/p' "$work/serve.out")
    if [[ -n $address ]] && curl -fsS -o /dev/null "http://$address/health/ready" 2>/dev/null; then
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
    sleep 0.01
done
[[ -n $address ]] || { echo "serve did not start" >&2; exit 1; }

# SAMPLES timings of /health/live in milliseconds, one per line.
sample() {
    for _ in $(seq 1 "$SAMPLES"); do
        curl -sS -o /dev/null -w '%{time_total}\n' "http://$address/health/live"
    done | awk '{ printf "%.3f\n", $1 * 1000 }'
}

summary() { # label file
    sort -n "$2" | awk -v label="$1" '
        { v[NR] = $1 }
        END {
            p50 = v[int(NR * 0.50 + 0.5)]; p99 = v[int(NR * 0.99 + 0.5)]
            printf "%-34s n=%d  p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", label, NR, p50, p99, v[NR]
        }'
}

sample >"$work/idle.txt"
summary "/health/live, idle service" "$work/idle.txt"

: >"$work/audits.txt"
query=${PERIOD:+&$PERIOD}
web_query=$(printf '%s' "$PERIOD" | sed 's/from=/fran=/; s/to=/till=/')
for i in 1 2 3 4; do
    if (( i % 2 )); then
        url="http://$address/api/v1/audit?format=html$query"
    else
        url="http://$address/uppfoljning${web_query:+?$web_query}"
    fi
    (
        while true; do
            curl -s -o /dev/null -H "Authorization: Bearer $token" "$url" \
                && echo done >>"$work/audits.txt"
        done
    ) &
    load_pids+=($!)
done
# Let all four reach the service before measuring.
sleep 1
sample >"$work/loaded.txt"
summary "/health/live, 4 audits rendering" "$work/loaded.txt"
echo "audits completed during the loaded run: $(wc -l <"$work/audits.txt")"
