//! The profiles every benchmark runs on: a few hundred real-shaped profiles from the
//! development cohort (`examples/cohort-2018/profiles.jsonl`, or the file named
//! by `GK_BENCH_PROFILES`), evenly spread over the file; the repository's examples when
//! the cohort is not there.

use std::path::{Path, PathBuf};

/// How many profiles the benchmarks use.
pub const SAMPLE_SIZE: usize = 400;

/// JSON texts of the sample, and where they came from.
pub fn profile_texts(repo_root: &Path) -> (Vec<String>, String) {
    let cohort = std::env::var_os("GK_BENCH_PROFILES").map_or_else(
        || repo_root.join("examples/cohort-2018/profiles.jsonl"),
        PathBuf::from,
    );
    if let Ok(text) = std::fs::read_to_string(&cohort) {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let step = (lines.len() / SAMPLE_SIZE).max(1);
        let sample: Vec<String> = lines
            .iter()
            .step_by(step)
            .take(SAMPLE_SIZE)
            .map(|l| (*l).to_owned())
            .collect();
        let source = format!(
            "{} profiles (every {step}th) of {}",
            sample.len(),
            cohort.display()
        );
        return (sample, source);
    }
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo_root.join("examples"))
        .map(|dir| {
            dir.filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    examples.sort();
    let texts: Vec<String> = examples
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        // The examples include a deliberately invalid profile.
        .filter(|t| gk_regler::profile::Profile::from_json(t).is_ok())
        .collect();
    let source = format!(
        "{} example profiles (cohort not found at {})",
        texts.len(),
        cohort.display()
    );
    (texts, source)
}
