#!/usr/bin/env bash
# Fuzzes the profile parser, the rule-set loader and the fast evaluator against Rhai
# (fast_path_differential) for a bounded time per target (default 60 s; first argument
# overrides). A crash is saved under fuzz/artifacts/<target>/ and fails this script:
# turn it into a regression test.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain use them.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in profile_parser ruleset_loader fast_path_differential; do
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "corpus/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=5
done
