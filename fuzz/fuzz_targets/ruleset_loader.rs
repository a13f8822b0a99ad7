//! Fuzzes the rule-set loader: the input is split at the first NUL byte into a
//! manifest and one script (`r.rhai`). Loading must never panic; it either gives a
//! rule set or a non-empty list of problems.
#![no_main]

use std::sync::LazyLock;

use gk_regler::ruleset::{MANIFEST_FILE, RuleSet};
use libfuzzer_sys::fuzz_target;

static DIR: LazyLock<std::path::PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("gk-regler-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
});

fuzz_target!(|data: &[u8]| {
    let (manifest, script) = match data.iter().position(|b| *b == 0) {
        Some(split) => (&data[..split], &data[split + 1..]),
        None => (data, &b"true"[..]),
    };
    if std::fs::write(DIR.join(MANIFEST_FILE), manifest).is_err()
        || std::fs::write(DIR.join("r.rhai"), script).is_err()
    {
        return;
    }
    if let Err(err) = RuleSet::load(&DIR) {
        assert!(
            !err.problems.is_empty(),
            "a refused rule set names its problems"
        );
    }
});
