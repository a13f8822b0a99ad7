//! A plain loop over `RuleSet::evaluate` for profilers (callgrind, `perf record`), where
//! criterion's timing loop would only get in the way.
//!
//! Run: `cargo bench --bench profile_engine -- [rounds] [rule-id]`; every round evaluates
//! each profile of the sample once (with only `rule-id` when given). It prints the median
//! time per profile over the rounds.
//! Under callgrind, `--toggle-collect='*evaluate_with*'` counts only the evaluation:
//! see BENCHMARKS.md.

mod sample;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use gk_regler::profile::Profile;
use gk_regler::ruleset::RuleSet;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rules = RuleSet::load(&root.join("rules")).expect("the default rules load");
    if let Some(only) = args.get(1) {
        rules.rules.retain(|rule| rule.meta.id.as_str() == only);
        assert_eq!(rules.rules.len(), 1, "no rule {only}");
    }
    let (texts, source) = sample::profile_texts(root);
    let profiles: Vec<Arc<Profile>> = texts
        .iter()
        .map(|t| Arc::new(Profile::from_json(t).expect("sample profiles are valid")))
        .collect();
    let mut per_profile_ns: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            for profile in &profiles {
                black_box(rules.evaluate(black_box(profile)));
            }
            started.elapsed().as_nanos() as f64 / profiles.len() as f64
        })
        .collect();
    per_profile_ns.sort_by(f64::total_cmp);
    let median = per_profile_ns.get(rounds / 2).copied().unwrap_or(f64::NAN);
    let best = per_profile_ns.first().copied().unwrap_or(f64::NAN);
    println!(
        "{source}: {rounds} rounds x {} profiles; per profile: median {:.2} µs, best {:.2} µs",
        profiles.len(),
        median / 1000.0,
        best / 1000.0
    );
}
