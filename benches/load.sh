#!/usr/bin/env bash
# Service figures for BENCHMARKS.md ("Targets and current figures"), one row per command:
#
#   benches/load.sh cold      # cold start to ready: process start → first 200 from
#                             # /health/ready, fresh database, default rules (ROUNDS runs,
#                             # timed in one process by benches/cold-start.py)
#   benches/load.sh checks    # durable POST /api/v1/checks, then dry-run
#                             # POST /api/v1/checks/dry-run, same profiles, same clients;
#                             # prints the durable / dry-run ratio (target ≥ 0.50)
#   benches/load.sh live      # GET /health/live, same clients
#   benches/load.sh single    # one client, durable, beside the disk's fsync latency in the
#                             # database's folder (target: p99 ≤ fsync p99 + 0.5 ms);
#                             # then, to read the tail by, one client on dry-run and
#                             # the fsync after a lone check's WAL frames
#   benches/load.sh tail      # one client's checks placed in the WAL's fold cycle
#                             # (benches/one-client-tail.py; TAIL_CHECKS checks,
#                             # TAIL_PAUSE_MS apart), beside the fsync probe as far apart
#   benches/load.sh           # cold, checks, live and single, in that order
#
#   DURATION=10s CLIENTS=64 ROUNDS=11 GK_REGLER_BIN=path benches/load.sh checks
#
# Builds the release binary (unless GK_REGLER_BIN names one), runs `gk-regler serve` with a fresh database, key and tokens in
# a temporary directory (removed at the end; TMPDIR chooses the disk), and drives it with
# `wrk` (Debian's `wrk` package) or `oha`. The fsync probe is benches/fsync-probe.py
# (python3). Every valid profile in examples/ is sent in
# turn. Each load prints one line: requests/s, p50, p99, max latency and errors.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
case $what in cold | checks | live | single | tail | all) ;; *)
    echo "usage: benches/load.sh [cold|checks|live|single|tail|all]" >&2
    exit 2
    ;;
esac
DURATION=${DURATION:-10s}       # per profile and kind, loaded runs
IDLE_DURATION=${IDLE_DURATION:-10s}
CLIENTS=${CLIENTS:-64}
ROUNDS=${ROUNDS:-11}            # cold starts (benches/cold-start.py)
FSYNCS=${FSYNCS:-2000}          # fsync probe writes
TAIL_CHECKS=${TAIL_CHECKS:-20000} # checks sent by `tail`
TAIL_PAUSE_MS=${TAIL_PAUSE_MS:-0} # `tail`: milliseconds between checks (and between the probe's fsyncs)
LONE_CHECK_FRAMES=${LONE_CHECK_FRAMES:-10} # WAL frames of a lone check's commit (BENCHMARKS.md, "One client")

command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
if ! command -v wrk >/dev/null && ! command -v oha >/dev/null; then
    echo "wrk (apt-get install wrk) or oha (cargo install oha --locked) is needed" >&2
    exit 1
fi

if [[ -n ${GK_REGLER_BIN:-} ]]; then
    bin=$(realpath "$GK_REGLER_BIN")
else
    echo "== cargo build --release --locked"
    cargo build --release --locked
    bin=$PWD/target/release/gk-regler
fi
probe=$PWD/benches/fsync-probe.py
echo "== binary: $bin"
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg)"

work=$(mktemp -d)
server_pid=
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT

# Only this run's configuration: nothing inherited from the caller's environment.
while IFS='=' read -r name _; do
    [[ $name == GK_REGLER_* ]] && unset "$name"
done < <(env)
export GK_REGLER_LISTEN=127.0.0.1:0
export GK_REGLER_RULES=$PWD/rules
export RUST_LOG=warn

# Starts serve on a fresh database in $1 and waits for its first 200 from /health/ready;
# sets server_pid and address (from the line serve prints).
start_server() {
    local dir=$1 ready= out
    mkdir -p "$dir"
    export GK_REGLER_DATABASE=$dir/gk-regler.sqlite3
    export GK_REGLER_TOKENS_FILE=$work/tokens.yaml
    export GK_REGLER_PSEUDONYM_KEY_FILE=$work/pseudonym.key
    out=$dir/serve.out
    address=
    "$bin" serve >"$out" 2>"$dir/serve.err" &
    server_pid=$!
    for _ in $(seq 1 20000); do
        if [[ -z $address ]]; then
            address=$(sed -n 's/^gk-regler lyssnar på http:\/\/\([^ ]*\).*/\1/p' "$out")
        fi
        if [[ -n $address ]] && curl -fsS -o /dev/null "http://$address/health/ready" 2>/dev/null; then
            ready=yes
            break
        fi
        kill -0 "$server_pid" 2>/dev/null || { cat "$dir/serve.err" >&2; exit 1; }
        sleep 0.001
    done
    [[ -n $ready ]] || { echo "serve did not become ready" >&2; cat "$dir/serve.err" >&2; exit 1; }
}

profiles=()
for file in examples/*.json; do
    # The examples include a deliberately invalid profile; it would measure 422s.
    [[ $(basename "$file") == ogiltig-* ]] || profiles+=("$file")
done

# load CLIENTS DURATION URL [PROFILE]: one line, "requests/s N  p50 … p99 … max … errors N".
load() {
    if command -v wrk >/dev/null; then
        TOKEN=$token PROFILE=${4:-} wrk -t "$(( $1 < 2 ? 1 : 2 ))" -c "$1" -d "$2" \
            -s benches/load-wrk.lua "$3" | tail -1
    else
        local args=()
        [[ -n ${4:-} ]] && args=(-m POST -H "Authorization: Bearer $token" -T application/json -D "$4")
        oha --no-tui -c "$1" -z "$2" "${args[@]}" "$3" |
            awk '/Requests\/sec:/ {rps=$2} /99.00%/ {p99=$3*1000} /50.00%/ {p50=$3*1000}
                 END {printf "requests/s %.0f  p50 %.2f ms  p99 %.2f ms\n", rps, p50, p99}'
    fi
}
# The rate of a load line; a load with errors is no figure.
rate() {
    if [[ $1 != *"errors 0"* && $1 == *errors* ]]; then
        echo "load had errors: $1" >&2
        exit 1
    fi
    awk '{print $2}' <<<"$1"
}

if [[ $what == cold || $what == all ]]; then
    echo
    echo "== cold start to /health/ready, fresh database each time ($ROUNDS runs; target ≤ 50 ms)"
    python3 benches/cold-start.py "$bin" "$ROUNDS"
fi

[[ $what == cold ]] && exit 0
start_server "$work/serve"
# Tokens live in the database and count at once, also in a running service.
token=$("$bin" token create --role handlaggare --name load.test 2>/dev/null)
base="http://$address"
echo "== warm-up (5 s, $CLIENTS clients, durable)"
load "$CLIENTS" 5s "$base/api/v1/checks" "${profiles[0]}" >/dev/null

if [[ $what == checks || $what == all ]]; then
    durable_sum=0
    dry_sum=0
    for profile in "${profiles[@]}"; do
        echo
        echo "== $CLIENTS clients, $DURATION each, $profile"
        durable=$(load "$CLIENTS" "$DURATION" "$base/api/v1/checks" "$profile")
        echo "durable  $durable"
        dry=$(load "$CLIENTS" "$DURATION" "$base/api/v1/checks/dry-run" "$profile")
        echo "dry-run  $dry"
        durable_sum=$(( durable_sum + $(rate "$durable") ))
        dry_sum=$(( dry_sum + $(rate "$dry") ))
        awk -v d="$(rate "$durable")" -v r="$(rate "$dry")" \
            'BEGIN {printf "durable / dry-run %.2f\n", d / r}'
    done
    echo
    awk -v d="$durable_sum" -v r="$dry_sum" -v n="${#profiles[@]}" \
        'BEGIN {printf "== all profiles: durable %.0f/s, dry-run %.0f/s (means), durable / dry-run %.2f (target ≥ 0.50)\n", d / n, r / n, d / r}'
fi

if [[ $what == live || $what == all ]]; then
    echo
    echo "== /health/live, $CLIENTS clients, $DURATION"
    echo "live     $(load "$CLIENTS" "$DURATION" "$base/health/live")"
fi

if [[ $what == single || $what == all ]]; then
    echo
    echo "== one client, durable, $IDLE_DURATION per profile; fsync probe in the database's folder before and after"
    before=$("$probe" "$work/serve" "$FSYNCS")
    echo "$before"
    worst=0
    for profile in "${profiles[@]}"; do
        one=$(load 1 "$IDLE_DURATION" "$base/api/v1/checks" "$profile")
        echo "1 client $one  ($profile)"
        worst=$(awk -v a="$worst" -v b="$(awk '{print $7}' <<<"$one")" 'BEGIN {print (b > a ? b : a)}')
    done
    after=$("$probe" "$work/serve" "$FSYNCS")
    echo "$after"
    fsync=$(awk '{print $7}' <<<"$before"$'\n'"$after" | sort -g | tail -1)
    awk -v w="$worst" -v f="$fsync" \
        'BEGIN {printf "== one client: worst p99 %.2f ms; fsync p99 %.2f ms (the larger of the two probes); target ≤ %.2f ms: %s\n", w, f, f + 0.5, (w <= f + 0.5 ? "met" : "not met")}'
    # Context for reading the tail, not part of the target: the same client on dry-run,
    # which never touches the disk, and the disk's own fsync after a lone check's typical
    # commit (LONE_CHECK_FRAMES frames of the database's page size).
    page=$(python3 -c 'import sys
size = int.from_bytes(open(sys.argv[1], "rb").read(18)[16:18], "big")
print(65536 if size == 1 else size)' "$GK_REGLER_DATABASE")
    echo "== beside it, not the target: one client on dry-run (no disk), and fsync after ${LONE_CHECK_FRAMES} frames of $page B"
    echo "1 client dry-run $(load 1 "$IDLE_DURATION" "$base/api/v1/checks/dry-run" "${profiles[0]}")  (${profiles[0]})"
    "$probe" "$work/serve" "$FSYNCS" --frames "$LONE_CHECK_FRAMES" --page "$page"
fi

if [[ $what == tail ]]; then
    echo
    apart="back to back"
    [[ $TAIL_PAUSE_MS == 0 ]] || apart="$TAIL_PAUSE_MS ms apart"
    echo "== one client, $TAIL_CHECKS durable checks of ${profiles[0]} $apart, placed in the WAL's fold cycle; the fsync probe likewise"
    TOKEN=$token python3 benches/one-client-tail.py "$address" "${profiles[0]}" "$GK_REGLER_DATABASE" \
        "$TAIL_CHECKS" --pause-ms "$TAIL_PAUSE_MS"
    "$probe" "$work/serve" "$FSYNCS" --pause-ms "$TAIL_PAUSE_MS"
fi
