# Shared by the benchmark scripts (sourced, not run): the binary they time and the cohort
# they time it on.

# The binary to time: GK_REGLER_BIN when set, otherwise a fresh release build. Prints its path.
release_binary() {
    if [[ -n ${GK_REGLER_BIN:-} ]]; then
        realpath "$GK_REGLER_BIN"
    else
        cargo build --release --locked --quiet --bin gk-regler >&2 || return 1
        echo "$PWD/target/release/gk-regler"
    fi
}

# The cohort folder: COHORT when set, otherwise the national-scale cohort of CASES cases
# (default 100,000) from SEED (default 1), made by benches/national_cohort.rs into
# target/national-cohort-CASES-SEED when missing. Prints its path.
cohort_folder() {
    if [[ -n ${COHORT:-} ]]; then
        realpath "$COHORT"
        return
    fi
    local cases=${CASES:-100000} seed=${SEED:-1}
    local folder=$PWD/target/national-cohort-$cases-$seed
    if [[ ! -s $folder/outcomes.jsonl ]]; then
        cargo run --release --locked --quiet --example national_cohort -- \
            --cases "$cases" --seed "$seed" --out "$folder" >&2 || return 1
    fi
    echo "$folder"
}

# The environment the binary runs in: none of the caller's GK_REGLER_* settings, the
# repository's rules, a pseudonym key in the folder $1, warnings only in the log.
use_clean_environment() {
    local name
    for name in $(env | grep -o '^GK_REGLER_[A-Z_]*' || true); do unset "$name"; done
    export GK_REGLER_RULES=$PWD/rules GK_REGLER_PSEUDONYM_KEY_FILE=$1/key RUST_LOG=warn
}
