#!/usr/bin/env bash
# Liveness under long work, for BENCHMARKS.md: how fast /health/live answers while four
# HTML audits of the cohort render at the same time (two through the API, two through the
# web page), and with LOAD=all also while an import, a replay and a backup run in a loop
# beside them, compared with the idle service in the same run.
#
#   benches/live-under-audit.sh                         # release build, defaults below
#   SAMPLES=500 benches/live-under-audit.sh
#   LOAD=all benches/live-under-audit.sh                # audits + import + replay + backup
#   GK_REGLER_BIN=target/debug/gk-regler benches/live-under-audit.sh   # a given binary
#   COHORT=target/national-cohort-100000-1 benches/live-under-audit.sh  # national scale
#   SERVE_PRIORITY=normal benches/live-under-audit.sh   # the service's long work at normal priority
#   CLIENT_PROCESSES=curl benches/live-under-audit.sh   # a curl process per request
#
# CLIENT_PROCESSES: `long-lived` (default) or `curl`. With `long-lived` the probe and the
# audit requests come from two processes (benches/live-clients.py): the probe opens a new
# connection for each GET /health/live, GAP_MS apart (default 10), and the four audits
# each loop on a kept-alive connection. With `curl` every request is a curl process of
# its own; on two cores their start-ups (about 4 ms of CPU each) compete with the
# service for the cores, which the slowest probes then measure.
#
# LOAD: `audits` (default) or `all`. The import loop imports COHORT into a database of its
# own (removed after each round); the replay (`gk-regler replay --rules rules`) and the
# backup (removed after each round) read the service's database. They are commands in
# processes of their own, at the priority LOAD_PRIORITY gives them
# (GK_REGLER_LONG_WORK_PRIORITY: idle, low, normal; empty: the command's default, normal).
# SERVE_PRIORITY and SERVE_THREADS set the service's long_work_priority and
# long_work_threads (empty: its defaults). Builds that know no long_work_* keys ignore them.
#
# Imports COHORT (default examples/cohort-2018: 6,388 checks, 3,000 outcomes; any folder
# with profiles.jsonl and outcomes.jsonl, such as the one benches/national_cohort.rs makes)
# into a fresh database in a temporary directory (removed at the end), starts `gk-regler serve`, keeps four audit
# requests in flight in a loop, and times SAMPLES sequential GET /health/live with curl.
# Prints p50, p99 and the maximum, idle and loaded, in milliseconds, the load average, and
# how many audits (and imports, replays, backups) were completed during the loaded run.
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${SAMPLES:-300}
PERIOD=${PERIOD:-}   # e.g. "from=2024-01-01&to=2024-06-30"; empty: the whole cohort
COHORT=${COHORT:-examples/cohort-2018}
LOAD=${LOAD:-audits}
CLIENT_PROCESSES=${CLIENT_PROCESSES:-long-lived}
GAP_MS=${GAP_MS:-10}
LOAD_PRIORITY=${LOAD_PRIORITY:-}
SERVE_PRIORITY=${SERVE_PRIORITY:-}
SERVE_THREADS=${SERVE_THREADS:-}
case $LOAD in audits|all) ;; *) echo "LOAD: audits or all" >&2; exit 2 ;; esac
case $CLIENT_PROCESSES in long-lived|curl) ;; *) echo "CLIENT_PROCESSES: long-lived or curl" >&2; exit 2 ;; esac

command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
if [[ $CLIENT_PROCESSES == long-lived ]]; then
    command -v python3 >/dev/null || { echo "python3 is needed (or CLIENT_PROCESSES=curl)" >&2; exit 1; }
fi
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
    # Each loop first, then the command it was running (its child), so none lingers.
    for pid in "${load_pids[@]}"; do
        local children
        children=$(pgrep -P "$pid" || true)
        kill "$pid" 2>/dev/null || true
        [[ -n $children ]] && kill $children 2>/dev/null || true
    done
    for pid in "${load_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
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

# One analyst per audit client: one person may have two audits waiting or running at once.
tokens=()
for i in 1 2 3 4; do
    tokens+=("$("$bin" token create --role analytiker --name "live.bench.$i" 2>/dev/null)")
done
echo "== import $COHORT"
"$bin" import "$COHORT/profiles.jsonl" --outcomes "$COHORT/outcomes.jsonl" >/dev/null

(
    [[ -n $SERVE_PRIORITY ]] && export GK_REGLER_LONG_WORK_PRIORITY=$SERVE_PRIORITY
    [[ -n $SERVE_THREADS ]] && export GK_REGLER_LONG_WORK_THREADS=$SERVE_THREADS
    exec "$bin" serve >"$work/serve.out" 2>"$work/serve.err"
) &
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
    if [[ $CLIENT_PROCESSES == long-lived ]]; then
        python3 benches/live-clients.py probe "$address" "$SAMPLES" "$GAP_MS"
        return
    fi
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

echo "binary: $bin; CLIENT_PROCESSES=$CLIENT_PROCESSES LOAD=$LOAD LOAD_PRIORITY=${LOAD_PRIORITY:-default} SERVE_PRIORITY=${SERVE_PRIORITY:-default} SERVE_THREADS=${SERVE_THREADS:-default}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
sample >"$work/idle.txt"
summary "/health/live, idle service" "$work/idle.txt"

: >"$work/audits.txt"
query=${PERIOD:+&$PERIOD}
web_query=$(printf '%s' "$PERIOD" | sed 's/from=/fran=/; s/to=/till=/')
audit_paths=()
for i in 1 2 3 4; do
    if (( i % 2 )); then
        audit_paths+=("/api/v1/audit?format=html$query")
    else
        audit_paths+=("/uppfoljning${web_query:+?$web_query}")
    fi
done
if [[ $CLIENT_PROCESSES == long-lived ]]; then
    python3 benches/live-clients.py audits "$address" "$(IFS=,; echo "${tokens[*]}")" "$work/audits.txt" \
        "${audit_paths[@]}" 2>"$work/audits.err" &
    load_pids+=($!)
else
    for i in "${!audit_paths[@]}"; do
        path=${audit_paths[$i]}
        token=${tokens[$i]}
        (
            while true; do
                if ! curl -sSf -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" \
                    "http://$address$path" >>"$work/audits.txt" 2>>"$work/audits.err"; then
                    echo "$path failed" >>"$work/audits.err"
                    exit 1
                fi
            done
        ) &
        load_pids+=($!)
    done
fi

# A command of the other long work, in a loop of its own: `name` counts each round that
# succeeded in $work/name.txt.
command_loop() { # name, then the command line (run with "$@"), after cleanup in `round`
    local name=$1
    shift
    : >"$work/$name.txt"
    (
        [[ -n $LOAD_PRIORITY ]] && export GK_REGLER_LONG_WORK_PRIORITY=$LOAD_PRIORITY
        while true; do
            rm -rf "$work/$name.round"*
            if "$@" >/dev/null 2>>"$work/$name.err"; then
                echo done >>"$work/$name.txt"
            fi
        done
    ) &
    load_pids+=($!)
}
loads=(audits)
if [[ $LOAD == all ]]; then
    loads+=(import replay backup)
    command_loop import env GK_REGLER_DATABASE="$work/import.round" \
        "$bin" import "$COHORT/profiles.jsonl" --outcomes "$COHORT/outcomes.jsonl"
    command_loop replay "$bin" replay --rules "$GK_REGLER_RULES" --format json
    command_loop backup "$bin" backup "$work/backup.round"
fi
# Let every load reach the service before measuring.
sleep 1
started=$(date +%s.%N)
: >"$work/audits.txt"
sample >"$work/loaded.txt"
seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [[ -s $work/audits.err ]]; then
    echo "the audit clients stopped:" >&2
    cat "$work/audits.err" >&2
    exit 1
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
summary "/health/live, loaded ($LOAD)" "$work/loaded.txt"
echo "the loaded run took $seconds s; completed in it:"
for name in "${loads[@]}"; do
    if [[ $name == audits ]]; then
        # Each audit's own time (queued and computed), from curl.
        sort -n "$work/audits.txt" | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "  audits: 0"; exit }
            printf "  audits: %d (each took p50 %.2f s, max %.2f s)\n", NR, v[int(NR * 0.5 + 0.5) ? int(NR * 0.5 + 0.5) : 1], v[NR] }'
    else
        echo "  $name: $(wc -l <"$work/$name.txt")"
    fi
done
