//! gk-regler's engine, the native floor and the peer engines on the same eight rules and
//! the same sample profiles, in one run so the ratios between them are comparable.
//!
//! Every iteration handles one profile, going round the sample; each engine starts from
//! its own already parsed form of the profile (see the crate documentation) and ends at
//! its own result value. The `parse+…` figures start from the JSON text instead. Before anything is timed, every engine must give the native
//! floor's flags on every profile of the sample.
//!
//! Run from the repository root: `cargo bench -p gk-regler-peers`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use gk_regler::profile::Profile;
use gk_regler::ruleset::RuleSet;
use gk_regler_peers::native_rules;
use gk_regler_peers::{
    RegoInterpreter, RegoVm, ZenDecision, ZenExpressions, engine_flags, rego_input, repo_root,
    sample, zen_input,
};

fn peers(c: &mut Criterion) {
    let root = repo_root();
    let rules = RuleSet::load(&root.join("rules")).expect("the default rules load");
    let (texts, source) = sample::profile_texts(&root);
    assert!(!texts.is_empty(), "no profiles to benchmark");
    let profiles: Vec<Arc<Profile>> = texts
        .iter()
        .map(|t| Arc::new(Profile::from_json(t).expect("sample profiles are valid")))
        .collect();
    let rego_inputs: Vec<regorus::Value> = texts
        .iter()
        .map(|t| rego_input(t).expect("Rego input"))
        .collect();
    let zen_inputs: Vec<zen_expression::Variable> = texts
        .iter()
        .map(|t| zen_input(t).expect("ZEN input"))
        .collect();

    let mut rego_vm = RegoVm::load().expect("Rego policy compiles to RVM");
    let mut rego_interpreter = RegoInterpreter::load().expect("Rego policy loads");
    let mut zen_expressions = ZenExpressions::load().expect("ZEN expressions compile");
    let zen_decision = ZenDecision::load().expect("ZEN decision loads");

    // Every engine must compute the floor's flags, or the timings compare nothing.
    for (i, profile) in profiles.iter().enumerate() {
        let native = native_rules::names(native_rules::evaluate(profile));
        let check = |engine: &str, flags: Result<native_rules::Flags, _>| {
            let flags: native_rules::Flags =
                flags.unwrap_or_else(|err| panic!("{engine} failed on profile {i}: {err}"));
            assert_eq!(
                native,
                native_rules::names(flags),
                "{engine} and the native floor disagree on profile {i}"
            );
        };
        check("gk-regler", engine_flags(&rules, profile));
        check("regorus RVM", rego_vm.flags(&rego_inputs[i]));
        check(
            "regorus interpreter",
            rego_interpreter.flags(&rego_inputs[i]),
        );
        check("zen-expression", zen_expressions.flags(&zen_inputs[i]));
        check("zen-engine decision", zen_decision.flags(&zen_inputs[i]));
    }
    eprintln!("sample: {source}; every engine agrees with the native floor on every profile");

    let n = profiles.len();
    let mut group = c.benchmark_group("peers");
    let mut i = 0;
    group.bench_function("native/evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            native_rules::evaluate(black_box(&profiles[i]))
        })
    });
    let mut i = 0;
    group.bench_function("gk-regler/evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            rules.evaluate(black_box(&profiles[i]))
        })
    });
    let mut i = 0;
    group.bench_function("zen-expression/evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            zen_expressions.evaluate(black_box(&zen_inputs[i]))
        })
    });
    let mut i = 0;
    group.bench_function("zen-engine/decision", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            zen_decision.evaluate(black_box(&zen_inputs[i]))
        })
    });
    let mut i = 0;
    group.bench_function("regorus/rvm", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            rego_vm.evaluate(black_box(&rego_inputs[i]))
        })
    });
    let mut i = 0;
    group.bench_function("regorus/interpreter", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            rego_interpreter.evaluate(black_box(&rego_inputs[i]))
        })
    });

    // The same from the JSON text: each engine parses the profile into its own form first.
    let mut i = 0;
    group.bench_function("gk-regler/parse+evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            Profile::from_json(black_box(&texts[i])).map(|p| rules.evaluate(&Arc::new(p)))
        })
    });
    let mut i = 0;
    group.bench_function("zen-expression/parse+evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            zen_input(black_box(&texts[i])).and_then(|input| zen_expressions.evaluate(&input))
        })
    });
    let mut i = 0;
    group.bench_function("zen-engine/parse+decision", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            zen_input(black_box(&texts[i])).and_then(|input| zen_decision.evaluate(&input))
        })
    });
    let mut i = 0;
    group.bench_function("regorus/parse+rvm", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            rego_input(black_box(&texts[i])).and_then(|input| rego_vm.evaluate(&input))
        })
    });
    group.finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
