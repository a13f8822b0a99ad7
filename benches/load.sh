#!/usr/bin/env bash
# Service figures for BENCHMARKS.md ("Service, replay and audit"): cold start, a loaded
# service (64 concurrent clients) and a single client on an idle service, all against
# POST /api/v1/checks (durable: the answer comes after the commit) on loopback.
#
#   benches/load.sh                      # defaults below
#   DURATION=30s CLIENTS=64 benches/load.sh
#
# Builds the release binary once, runs `gk-regler serve` with a fresh database, key and
# tokens in a temporary directory (removed at the end), and drives it with `oha`
# (installed with `cargo install oha --locked` when missing). Every valid profile in
# examples/ is sent in turn; each run prints oha's summary (requests/s, latency
# percentiles, status codes).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}       # per profile, loaded run
IDLE_DURATION=${IDLE_DURATION:-10s}
CLIENTS=${CLIENTS:-64}

command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
# oha, or wrk (Debian's `wrk` package, quicker to install) when oha is missing.
if ! command -v oha >/dev/null && ! command -v wrk >/dev/null; then
    # oha's default TLS backend builds with cmake (Debian: apt-get install cmake).
    command -v cmake >/dev/null || { echo "installing oha needs cmake (or install wrk)" >&2; exit 1; }
    echo "== installing oha (cargo install oha --locked)"
    cargo install oha --locked
fi

echo "== cargo build --release --locked"
cargo build --release --locked
bin=$PWD/target/release/gk-regler

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Only this run's configuration: nothing inherited from the caller's environment.
while IFS='=' read -r name _; do
    [[ $name == GK_REGLER_* ]] && unset "$name"
done < <(env)
export GK_REGLER_LISTEN=127.0.0.1:0
export GK_REGLER_RULES=$PWD/rules
export GK_REGLER_DATABASE=$work/gk-regler.sqlite3
export GK_REGLER_TOKENS_FILE=$work/tokens.yaml
export GK_REGLER_PSEUDONYM_KEY_FILE=$work/pseudonym.key
export RUST_LOG=warn

token=$("$bin" token create --role handlaggare --name load.test)

# Cold start: process start to the first 200 from /health/ready (database created,
# migrations run, rules compiled). The address comes from the line serve prints.
started=$(date +%s%N)
"$bin" serve >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
address=
ready=
for _ in $(seq 1 6000); do
    if [[ -z $address ]]; then
        address=$(sed -n 's/^gk-regler lyssnar på http:\/\/\([^ ]*\).*/\1/p' "$work/serve.out")
    fi
    if [[ -n $address ]] && curl -fsS -o /dev/null "http://$address/health/ready" 2>/dev/null; then
        ready=$(date +%s%N)
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
    sleep 0.002
done
[[ -n $ready ]] || { echo "serve did not become ready" >&2; cat "$work/serve.err" >&2; exit 1; }
echo "== cold start to /health/ready: $(( (ready - started) / 1000000 )) ms"

url="http://$address/api/v1/checks"
profiles=()
for file in examples/*.json; do
    # The examples include a deliberately invalid profile; it would measure 422s.
    [[ $(basename "$file") == ogiltig-* ]] || profiles+=("$file")
done

load() { # clients duration profile
    if command -v oha >/dev/null; then
        oha --no-tui -c "$1" -z "$2" -m POST \
            -H "Authorization: Bearer $token" -T application/json -D "$3" "$url"
    else
        TOKEN=$token PROFILE=$3 wrk -t "$(( $1 < 2 ? 1 : 2 ))" -c "$1" -d "$2" --latency \
            -s benches/load-wrk.lua "$url" | tail -1
    fi
}

echo "== warm-up (5 s, $CLIENTS clients)"
load "$CLIENTS" 5s "${profiles[0]}" >/dev/null

for profile in "${profiles[@]}"; do
    echo
    echo "== loaded: $CLIENTS clients, $DURATION, $profile"
    load "$CLIENTS" "$DURATION" "$profile"
done

for profile in "${profiles[@]}"; do
    echo
    echo "== idle: 1 client, $IDLE_DURATION, $profile"
    load 1 "$IDLE_DURATION" "$profile"
done
