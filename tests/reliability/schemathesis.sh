#!/usr/bin/env bash
# Runs schemathesis against the service's own OpenAPI document on loopback: starts
# `gk-regler serve` with a temporary database and an admin token (admin may call every
# route), then checks every operation for server errors (no 5xx) and for responses that
# do not match the document (status codes, content types, bodies, headers).
# Bounded: --max-examples per operation (default 100; first argument overrides).
# Needs `pip install schemathesis`; uses GK_REGLER_BIN or builds target/debug/gk-regler.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
examples=${1:-100}
command -v st >/dev/null || { echo "schemathesis missing: pip install schemathesis" >&2; exit 2; }
bin=${GK_REGLER_BIN:-}
if [[ -z "$bin" ]]; then
    (cd "$root" && cargo build -q --bin gk-regler)
    bin="$root/target/debug/gk-regler"
fi
work=$(mktemp -d /tmp/gk-schemathesis.XXXXXX)
export GK_REGLER_LISTEN=127.0.0.1:0 GK_REGLER_DATABASE="$work/db.sqlite3" \
    GK_REGLER_TOKENS_FILE="$work/tokens.yaml" GK_REGLER_PSEUDONYM_KEY_FILE="$work/key" \
    GK_REGLER_RULES="$root/rules" RUST_LOG=warn
token=$("$bin" token create --role admin --name schemathesis)
"$bin" serve >"$work/stdout" 2>"$work/stderr" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
address=
for _ in $(seq 200); do
    address=$(sed -n 's/^gk-regler lyssnar på http:\/\/\([0-9.:]*\).*/\1/p' "$work/stdout")
    [[ -n "$address" ]] && break
    sleep 0.1
done
[[ -n "$address" ]] || { echo "the service did not start" >&2; cat "$work/stderr" >&2; exit 1; }
echo "== schemathesis against http://$address (max $examples examples per operation)"
cd "$work" # schemathesis keeps its cache in the working directory
st run "http://$address/api/v1/openapi.json" --url "http://$address" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "$examples" --workers 2 --seed 7 --no-color
