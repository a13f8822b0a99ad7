//! A national-scale cohort for the history benchmarks, made reproducibly from a seed.
//!
//! ```text
//! cargo run --release --example national_cohort -- [--cases N] [--seed S] [--out DIR]
//! ```
//!
//! Writes `DIR/profiles.jsonl` and `DIR/outcomes.jsonl` (defaults: 100,000 cases, seed 1,
//! `target/national-cohort`). It follows the shape of the development cohort
//! (`examples/cohort-2018`) by resampling it: each new case is the case of a check drawn
//! at random from the development cohort (so a case with more checks is drawn more often,
//! which gives about 2.5 checks per case, ≈ 250,000 checks for 100,000 cases), with every
//! check and its outcome. All of the case's dates are moved by one random number of days so
//! that its checks fall in the ten years 2015–2024, the person's age moves by up to two
//! years (within the cohort's ages) and the SGI by up to ±10 %, and the case gets a new
//! id. Every other field is kept, so the mix of diagnoses, missing values, flags and
//! outcomes is the development cohort's.
//! Profiles are written in the order of `checked_on`, as an export of ten years would be;
//! outcomes in the order of `ended_on`.
//!
//! The same seed and case count give the same files byte for byte (the random generator
//! is xoshiro256++, seeded from the number; its crate version is pinned by Cargo.lock).

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use jiff::ToSpan;
use jiff::civil::Date;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value};

const COHORT: &str = "examples/cohort-2018";
const FIRST_CHECK: &str = "2015-01-01";
const LAST_DATE: &str = "2024-12-31";

struct Args {
    cases: usize,
    seed: u64,
    out: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        cases: 100_000,
        seed: 1,
        out: PathBuf::from("target/national-cohort"),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--cases" => args.cases = value()?.parse().map_err(|e| format!("--cases: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--out" => args.out = PathBuf::from(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn read_jsonl(path: &str) -> Result<Vec<Map<String, Value>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err(format!("{path}: a line is not a JSON object")),
        })
        .collect()
}

/// Whether `key` names a date field (docs/profile.md: every date field ends in `_on`).
fn is_date_field(key: &str) -> bool {
    key.ends_with("_on")
}

/// Calls `f` on every date of `object` and its nested objects.
fn for_each_date(object: &Map<String, Value>, f: &mut impl FnMut(Date)) {
    for (key, value) in object {
        match value {
            Value::String(text) if is_date_field(key) => {
                if let Ok(date) = text.parse() {
                    f(date);
                }
            }
            Value::Object(inner) => for_each_date(inner, f),
            _ => {}
        }
    }
}

/// Moves every date of `object` and its nested objects by `days`.
fn shift_dates(object: &mut Map<String, Value>, days: i32) -> Result<(), String> {
    for (key, value) in object.iter_mut() {
        match value {
            Value::String(text) if is_date_field(key) => {
                let date: Date = text.parse().map_err(|e| format!("{key}: {e}"))?;
                let moved = date
                    .checked_add(days.days())
                    .map_err(|e| format!("{key}: {e}"))?;
                *text = moved.to_string();
            }
            Value::Object(inner) => shift_dates(inner, days)?,
            _ => {}
        }
    }
    Ok(())
}

fn date_field(object: &Map<String, Value>, key: &str) -> Result<Date, String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("{key} missing"))
}

fn run() -> Result<(), String> {
    let args = args()?;
    let profiles = read_jsonl(&format!("{COHORT}/profiles.jsonl"))?;
    let outcomes = read_jsonl(&format!("{COHORT}/outcomes.jsonl"))?;

    // The development cohort's cases: their checks in file order, and their outcome.
    let mut case_of_line = Vec::with_capacity(profiles.len());
    let mut cases: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (line, profile) in profiles.iter().enumerate() {
        let id = profile
            .get("case_id")
            .and_then(Value::as_str)
            .ok_or("case_id missing")?;
        let case = *index.entry(id.to_owned()).or_insert_with(|| {
            cases.push(Vec::new());
            cases.len() - 1
        });
        cases[case].push(line);
        case_of_line.push(case);
    }
    let mut outcome_of = vec![None; cases.len()];
    for (i, outcome) in outcomes.iter().enumerate() {
        let id = outcome.get("case_id").and_then(Value::as_str);
        if let Some(&case) = id.and_then(|id| index.get(id)) {
            outcome_of[case] = Some(i);
        }
    }

    // Ages stay within the development cohort's range.
    let ages = profiles
        .iter()
        .filter_map(|p| p.get("person")?.get("age")?.as_i64());
    let (min_age, max_age) = ages.fold((i64::MAX, i64::MIN), |(lo, hi), a| (lo.min(a), hi.max(a)));

    let first_check: Date = FIRST_CHECK.parse().map_err(|e| format!("{e}"))?;
    let last_date: Date = LAST_DATE.parse().map_err(|e| format!("{e}"))?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(args.seed);
    let mut new_profiles: Vec<(Date, usize, String)> = Vec::new();
    let mut new_outcomes: Vec<(Date, usize, String)> = Vec::with_capacity(args.cases);
    for n in 0..args.cases {
        let case = case_of_line[rng.random_range(0..profiles.len())];
        let checks = &cases[case];
        let outcome = outcome_of[case].map(|i| outcomes[i].clone());

        // One shift for the whole case: its first check on or after FIRST_CHECK, its
        // last date (any field, outcome included) on or before LAST_DATE.
        let mut earliest_check = None::<Date>;
        let mut latest = None::<Date>;
        for &line in checks {
            let checked_on = date_field(&profiles[line], "checked_on")?;
            earliest_check = Some(earliest_check.map_or(checked_on, |d| d.min(checked_on)));
            for_each_date(&profiles[line], &mut |d| {
                latest = Some(latest.map_or(d, |l| l.max(d)));
            });
        }
        if let Some(outcome) = &outcome {
            for_each_date(outcome, &mut |d| {
                latest = Some(latest.map_or(d, |l| l.max(d)))
            });
        }
        let (Some(earliest_check), Some(latest)) = (earliest_check, latest) else {
            return Err("a case without dates".to_owned());
        };
        let days = |from: Date, to: Date| -> Result<i32, String> {
            let span = from.until(to).map_err(|e| format!("{e}"))?;
            Ok(span.get_days())
        };
        let low = days(earliest_check, first_check)?;
        let high = days(latest, last_date)?.max(low);
        let shift = rng.random_range(low..=high);
        let age_change: i64 = rng.random_range(-2..=2);
        let sgi_factor: f64 = rng.random_range(0.9..=1.1);

        let mut first_checked_on = None;
        let mut case_profiles = Vec::with_capacity(checks.len());
        for &line in checks {
            let mut profile = profiles[line].clone();
            shift_dates(&mut profile, shift)?;
            let checked_on = date_field(&profile, "checked_on")?;
            first_checked_on.get_or_insert(checked_on);
            if let Some(Value::Object(person)) = profile.get_mut("person") {
                if let Some(age) = person.get("age").and_then(Value::as_i64) {
                    person.insert(
                        "age".into(),
                        (age + age_change).clamp(min_age, max_age).into(),
                    );
                }
                if let Some(sgi) = person.get("sgi").and_then(Value::as_f64) {
                    let moved = (sgi * sgi_factor / 100.0).round() as i64 * 100;
                    person.insert("sgi".into(), moved.into());
                }
            }
            case_profiles.push((checked_on, profile));
        }
        let year = first_checked_on.map_or(0, |d| d.year());
        let case_id = format!("FK-{year}-N{n:07}");
        for (checked_on, mut profile) in case_profiles {
            profile.insert("case_id".into(), case_id.clone().into());
            let text = serde_json::to_string(&profile).map_err(|e| e.to_string())?;
            new_profiles.push((checked_on, n, text));
        }
        if let Some(mut outcome) = outcome {
            shift_dates(&mut outcome, shift)?;
            let ended_on = date_field(&outcome, "ended_on")?;
            outcome.insert("case_id".into(), case_id.into());
            let text = serde_json::to_string(&outcome).map_err(|e| e.to_string())?;
            new_outcomes.push((ended_on, n, text));
        }
    }
    // Stable sorts: a case's checks of one day keep their order.
    new_profiles.sort_by_key(|(date, n, _)| (*date, *n));
    new_outcomes.sort_by_key(|(date, n, _)| (*date, *n));

    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    for (name, lines) in [("profiles", &new_profiles), ("outcomes", &new_outcomes)] {
        let path = args.out.join(format!("{name}.jsonl"));
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = BufWriter::new(file);
        for (_, _, text) in lines {
            writeln!(out, "{text}").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        out.flush()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!(
        "{} cases, {} checks, {} outcomes (seed {}) in {}",
        args.cases,
        new_profiles.len(),
        new_outcomes.len(),
        args.seed,
        args.out.display()
    );
    Ok(())
}

fn main() {
    if let Err(err) = run() {
        eprintln!("national_cohort: {err}");
        std::process::exit(2);
    }
}
