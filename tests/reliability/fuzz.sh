#!/usr/bin/env bash
# Fuzzes every target in fuzz/fuzz_targets (profile_parser, ruleset_loader,
# fast_path_differential, outcome_readers; or only the targets named after the
# seconds) for a bounded time per target (default 60 s; first argument overrides).
# A crash is saved under fuzz/artifacts/<target>/ and fails this script: turn it into
# a regression test. Each run ends with libFuzzer's summary (stat::number_of_executed_units,
# stat::peak_rss_mb) and the corpus size, the figures RELIABILITY.md records.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain use them.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
seconds=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "corpus/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=5 \
        -print_final_stats=1
    echo "== $target: corpus holds $(find "corpus/$target" -type f | wc -l) inputs"
done
