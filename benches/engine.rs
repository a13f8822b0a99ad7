//! The engine per profile with the default rules, against the hand-written native floor.
//!
//! Every iteration handles one profile, going round the sample, so each figure is a
//! time per profile for all eight rules:
//! - `engine/evaluate`: `RuleSet::evaluate` on an already parsed `Arc<Profile>`; this
//!   includes getting the profile into the scripts.
//! - `engine/parse+evaluate`: the same from JSON text (`Profile::from_json` first).
//! - `engine-rhai-only/evaluate`: `RuleSet::evaluate_in_rhai`, every rule in Rhai
//!   without the fast evaluator (the engine before it, and its reference).
//! - `native/evaluate`, `native/parse+evaluate`: the rules in plain Rust (the floor).
//! - `parse`: `Profile::from_json` alone.
//!
//! Run: `cargo bench --bench engine`.

mod native_rules;
mod sample;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use gk_regler::engine::RuleOutcome;
use gk_regler::profile::Profile;
use gk_regler::ruleset::RuleSet;

/// The engine's flags for `profile` as a [`native_rules::Flags`] set; panics if a rule
/// failed or a rule id is not one of the eight.
fn engine_flags(rules: &RuleSet, profile: &Arc<Profile>) -> native_rules::Flags {
    let evaluation = rules.evaluate(profile);
    rules
        .rules
        .iter()
        .zip(&evaluation.outcomes)
        .fold(0, |flags, (rule, outcome)| {
            let bit = native_rules::RULE_IDS
                .iter()
                .position(|id| *id == rule.meta.id.as_str())
                .unwrap_or_else(|| panic!("rule {} is not one of the eight", rule.meta.id));
            match outcome {
                RuleOutcome::Flagged { .. } => flags | (1 << bit),
                RuleOutcome::Clear | RuleOutcome::NotApplicable(_) => flags,
                RuleOutcome::Failed(f) => panic!("rule {} failed: {}", rule.meta.id, f.message),
            }
        })
}

fn per_profile(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = RuleSet::load(&root.join("rules")).expect("the default rules load");
    let (texts, source) = sample::profile_texts(root);
    let profiles: Vec<Arc<Profile>> = texts
        .iter()
        .map(|t| Arc::new(Profile::from_json(t).expect("sample profiles are valid")))
        .collect();
    assert!(!profiles.is_empty(), "no profiles to benchmark");

    // The floor is only honest if it computes the same thing.
    let mut flag_counts = [0usize; 8];
    for (i, profile) in profiles.iter().enumerate() {
        let native = native_rules::evaluate(profile);
        let engine = engine_flags(&rules, profile);
        assert_eq!(
            native_rules::names(native),
            native_rules::names(engine),
            "native and engine disagree on profile {i}"
        );
        for (bit, count) in flag_counts.iter_mut().enumerate() {
            *count += usize::from(native & (1 << bit) != 0);
        }
    }
    eprintln!(
        "sample: {source}; native and engine agree on all; flags per rule: {:?}",
        native_rules::RULE_IDS
            .iter()
            .zip(flag_counts)
            .map(|(id, n)| format!("{id}={n}"))
            .collect::<Vec<_>>()
    );

    let mut group = c.benchmark_group("per_profile");
    let n = profiles.len();

    let mut i = 0;
    group.bench_function("native/evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            native_rules::evaluate(black_box(&profiles[i]))
        })
    });
    let mut i = 0;
    group.bench_function("engine/evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            rules.evaluate(black_box(&profiles[i]))
        })
    });
    let mut i = 0;
    group.bench_function("engine-rhai-only/evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            rules.evaluate_in_rhai(black_box(&profiles[i]))
        })
    });
    let mut i = 0;
    group.bench_function("parse", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            Profile::from_json(black_box(&texts[i])).map(Arc::new)
        })
    });
    let mut i = 0;
    group.bench_function("native/parse+evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            Profile::from_json(black_box(&texts[i])).map(|p| native_rules::evaluate(&p))
        })
    });
    let mut i = 0;
    group.bench_function("engine/parse+evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            Profile::from_json(black_box(&texts[i])).map(|p| rules.evaluate(&Arc::new(p)))
        })
    });
    group.finish();
}

criterion_group!(benches, per_profile);
criterion_main!(benches);
