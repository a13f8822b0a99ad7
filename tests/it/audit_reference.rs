//! The audit pinned to an independent implementation: `tests/audit_reference/reference.py`
//! computed every number of the audit of the development cohort
//! (`examples/cohort-2018`) with statsmodels, from the database `gk-regler import`
//! wrote, and saved them in `tests/audit_reference/expected.json`. This test imports the
//! same cohort with the real binary into a fresh database, runs `gk-regler audit
//! --format json`, and requires every number to agree to at least 6 significant digits,
//! every suppressed or undefined cell to be null, and no number in the report to be left
//! unchecked. How to regenerate the expected numbers: `tests/audit_reference/README.md`.
//!
//! The reference does not suppress; the audit does. So a count the report hides is
//! accepted when the reference's value is below `min_cell` (which must be hidden) or when
//! it is a complement. A share the report hides is accepted when its group's count is
//! hidden, when fewer than `min_cell` of the group had the outcome or fewer than
//! `min_cell` did not (0 % and 100 % included; then it must be hidden), or as a
//! complement. A difference, interval or p-value is accepted hidden only when one of its
//! two shares is; an adjusted estimate only when its model's counts or its group's
//! shares of leaving the insurance are. Everything shown must still agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Output, arg, default_rules, run_command};

/// Relative tolerance: 6 significant digits with room to spare.
const RELATIVE: f64 = 1e-6;

/// For signed quantities that can be near zero by cancellation (a difference, an
/// interval bound, a coefficient), an absolute tolerance in their own unit (percentage
/// points, or probability units for the model) on top of the relative one. Shares,
/// p-values, standard errors and R² are compared relatively only.
const ABSOLUTE: f64 = 1e-9;
const SIGNED_FIELDS: [&str; 6] = [
    "diff_pp",
    "ci_low_pp",
    "ci_high_pp",
    "coefficient",
    "ci_low",
    "ci_high",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The development cohort in `examples/cohort-2018`; its absence is a failure, not a skip:
/// without it the statistics are not pinned.
fn cohort() -> PathBuf {
    let dir = repo().join("examples/cohort-2018");
    for file in ["profiles.jsonl", "outcomes.jsonl"] {
        assert!(
            dir.join(file).is_file(),
            "the development cohort is missing: expected {} (see \
             examples/cohort-2018/README.md). The audit reference test cannot run without it.",
            dir.join(file).display()
        );
    }
    dir
}

/// `gk-regler ARGS` with a database, key and tokens file of its own in `dir` and the
/// repository's rules; no inherited `GK_REGLER_*`.
fn gk(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gk-regler"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GK_REGLER_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .current_dir(dir)
        .env("GK_REGLER_RULES", default_rules())
        .env("GK_REGLER_DATABASE", dir.join("gk-regler.sqlite3"))
        .env("GK_REGLER_PSEUDONYM_KEY_FILE", dir.join("pseudonym.key"))
        .env("GK_REGLER_TOKENS_FILE", dir.join("tokens.yaml"));
    run_command(command, &args.join(" "), None)
}

/// A JSON value at a path of keys; array elements are found by their identifying
/// member (`rule_id`, `sex`, `outcome` or `month`) rather than by position.
type Key = Vec<String>;

/// Every number (and every null, which stands for a suppressed or undefined number)
/// of the report under its key, leaving out what is not a result of the data
/// (`period`, `min_cell`, `rule_sets`), what is read off the numbers checked here
/// (`summary`, `comparison`: tests/it/verdict.rs holds them equal to the tables) and the
/// test checks left out (the cohort has none).
fn numbers(report: &Value) -> BTreeMap<Key, Value> {
    fn walk(value: &Value, key: &mut Key, out: &mut BTreeMap<Key, Value>) {
        match value {
            Value::Number(_) | Value::Null => {
                out.insert(key.clone(), value.clone());
            }
            Value::Object(map) => {
                for (name, member) in map {
                    // The answers to flags (`rules[].responses`) are not in the reference:
                    // the cohort holds no answers, and src/audit/responses.rs and
                    // tests/it/responses.rs pin those numbers.
                    if name == "responses" && key.first().is_some_and(|k| k == "rules") {
                        continue;
                    }
                    key.push(name.clone());
                    walk(member, key, out);
                    key.pop();
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    let id = ["rule_id", "sex", "outcome", "month"]
                        .iter()
                        .find_map(|k| item.get(k).and_then(Value::as_str))
                        .map_or_else(|| index.to_string(), str::to_owned);
                    key.push(id);
                    walk(item, key, out);
                    key.pop();
                }
            }
            Value::Bool(_) | Value::String(_) => {}
        }
    }
    let mut out = BTreeMap::new();
    let object = report.as_object().expect("the report is an object");
    for (name, member) in object {
        if [
            "period",
            "min_cell",
            "rule_sets",
            "summary",
            "comparison",
            "excluded_test_checks",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        let mut key = vec![name.clone()];
        walk(member, &mut key, &mut out);
    }
    out
}

/// Where the report holds the number an expected row describes.
fn key_of(row: &Value) -> Key {
    let text = |name: &str| row[name].as_str().map(str::to_owned);
    let section = text("section").expect("every row has a section");
    let group = text("group");
    let measure = text("measure");
    let field = text("field").expect("every row has a field");
    let need = |part: Option<String>, what: &str| {
        part.unwrap_or_else(|| panic!("expected row without {what}: {row}"))
    };
    let report_level = match section.as_str() {
        "units" | "checks_in_period" => Some(vec![section.clone(), need(group.clone(), "group")]),
        "cases_without_check_before_gk" => Some(vec![section.clone()]),
        "checks_per_month" => Some(vec![
            section.clone(),
            need(measure.clone(), "month"),
            "count".into(),
            need(group.clone(), "group"),
        ]),
        _ => None,
    };
    if let Some(key) = report_level {
        return key;
    }
    let mut key = vec!["rules".to_owned(), need(text("rule_id"), "rule_id")];
    match section.as_str() {
        "flagged_checks" => key.extend([section, need(group, "group")]),
        "flags_per_month" => key.extend([
            section,
            need(measure, "month"),
            "count".into(),
            need(group, "group"),
        ]),
        "rule_errors" | "checks_with_rule" => key.push(section),
        "unknown_at_last_check" => key.extend(["groups".into(), need(group, "group"), section]),
        "adjusted" => key.extend(["groups".into(), need(group, "group"), section, field]),
        "flagged_vs_not_flagged" | "resolved_vs_still_flagged" => {
            key.extend(["groups".into(), need(group, "group"), section]);
            if let Some(measure) = measure {
                key.extend(["outcomes".into(), measure]);
            }
            key.push(field);
        }
        other => panic!("unknown section {other:?} in expected.json"),
    }
    key
}

/// The count a share at `key` is a share of (`n_a` for `share_a_pct`, `n_b` for
/// `share_b_pct`); `None` for any other number.
fn count_of_share(key: &Key) -> Option<Key> {
    let field = key.last()?;
    let at = key.iter().position(|k| k == "outcomes")?;
    let name = match field.as_str() {
        "share_a_pct" => "n_a",
        "share_b_pct" => "n_b",
        _ => return None,
    };
    let mut k = key[..at].to_vec();
    k.push(name.to_owned());
    Some(k)
}

/// What a difference, interval, p-value or estimate at `key` rests on: a comparison's
/// two shares of the same outcome (and their counts); a model's `n_flagged` and
/// `n_not_flagged` and its group's two shares of leaving the insurance.
fn rests_on(key: &Key) -> Vec<Key> {
    if let Some(at) = key.iter().position(|k| k == "outcomes") {
        let mut base = key[..key.len() - 1].to_vec();
        let mut shares: Vec<Key> = ["share_a_pct", "share_b_pct"]
            .iter()
            .map(|name| {
                let mut k = base.clone();
                k.push((*name).to_owned());
                k
            })
            .collect();
        base.truncate(at);
        for name in ["n_a", "n_b"] {
            let mut k = base.clone();
            k.push(name.to_owned());
            shares.push(k);
        }
        return shares;
    }
    if let Some(at) = key.iter().position(|k| k == "adjusted") {
        let base = key[..key.len() - 1].to_vec();
        let mut on: Vec<Key> = ["n_flagged", "n_not_flagged"]
            .iter()
            .map(|name| {
                let mut k = base.clone();
                k.push((*name).to_owned());
                k
            })
            .collect();
        for share in ["share_a_pct", "share_b_pct"] {
            let mut k = key[..at].to_vec();
            k.extend(
                [
                    "flagged_vs_not_flagged",
                    "outcomes",
                    "left_insurance",
                    share,
                ]
                .map(str::to_owned),
            );
            on.push(k);
        }
        return on;
    }
    Vec::new()
}

/// The number of cases with the outcome behind a share in percent of `n`.
fn numerator(share_pct: f64, n: u64) -> u64 {
    (share_pct / 100.0 * n as f64).round() as u64
}

/// How far `actual` is from `expected`, relative to `expected`.
fn relative_difference(actual: f64, expected: f64) -> f64 {
    if expected == 0.0 {
        if actual == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        (actual - expected).abs() / expected.abs()
    }
}

#[test]
fn audit_of_the_development_cohort_matches_the_statsmodels_reference() {
    let cohort = cohort();
    let expected_path = repo().join("tests/audit_reference/expected.json");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", expected_path.display())),
    )
    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", expected_path.display()));
    let min_cell = expected["min_cell"]
        .as_u64()
        .expect("expected.json has min_cell");
    assert!(
        expected["period"]["from"].is_null() && expected["period"]["to"].is_null(),
        "this test audits the whole cohort; expected.json was made for a period"
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let import = gk(
        dir.path(),
        &[
            "import",
            arg(&cohort.join("profiles.jsonl")),
            "--outcomes",
            arg(&cohort.join("outcomes.jsonl")),
        ],
    );
    assert_eq!(import.code, 0, "{import}");
    let min_cell_n = min_cell;
    let min_cell = min_cell.to_string();
    let audit = gk(
        dir.path(),
        &["audit", "--format", "json", "--min-cell", &min_cell],
    );
    assert_eq!(audit.code, 0, "{audit}");
    let report = audit.json();
    eprintln!(
        "import took {:?}, audit {:?} (this build)",
        import.elapsed, audit.elapsed
    );
    warn_if_slow("import", import.elapsed);
    warn_if_slow("audit", audit.elapsed);

    // Same rules as the reference was made with; if not, the numbers cannot agree and
    // the fix is to regenerate, not to loosen the test.
    let rule_set = |v: &Value| {
        (
            v["name"].clone(),
            v["version"].clone(),
            v["content_hash"].clone(),
        )
    };
    let used: Vec<_> = report["rule_sets"]
        .as_array()
        .expect("rule_sets")
        .iter()
        .map(rule_set)
        .collect();
    let reference: Vec<_> = expected["rule_sets"]
        .as_array()
        .expect("expected.json has rule_sets")
        .iter()
        .map(rule_set)
        .collect();
    assert_eq!(
        used, reference,
        "the rules in rules/ are not those expected.json was made with; regenerate it \
         (tests/audit_reference/README.md) and review the change in the numbers"
    );
    let rules: Vec<&str> = report["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["rule_id"].as_str().expect("rule_id"))
        .collect();
    let mut expected_rules: Vec<&str> = expected["rules"]
        .as_array()
        .expect("expected.json has rules")
        .iter()
        .map(|r| r.as_str().expect("rule id"))
        .collect();
    let mut sorted = rules.clone();
    sorted.sort_unstable();
    expected_rules.sort_unstable();
    assert_eq!(sorted, expected_rules, "the rules reported");

    let mut actual = numbers(&report);
    let rows = expected["rows"].as_array().expect("expected.json has rows");
    let mut failures = Vec::new();
    let (mut compared, mut nulls) = (0usize, 0usize);
    let (mut small_hidden, mut complements) = (0usize, 0usize);
    let (mut small_shares, mut share_complements) = (0usize, 0usize);
    let every_number = numbers(&report);
    // The reference's counts, to tell how many cases a share rests on.
    let reference_counts: BTreeMap<Key, u64> = rows
        .iter()
        .filter_map(|row| Some((key_of(row), row["value"].as_u64()?)))
        .collect();
    let unsafe_share = |key: &Key, share: f64| -> Option<(u64, u64)> {
        let n = *reference_counts.get(&count_of_share(key)?)?;
        let x = numerator(share, n);
        (x < min_cell_n || n - x < min_cell_n).then_some((x, n))
    };
    let hidden = |key: &Key| every_number.get(key).is_some_and(Value::is_null);
    let mut worst: (f64, String) = (0.0, String::new());
    for row in rows {
        let key = key_of(row);
        let Some(value) = actual.remove(&key) else {
            failures.push(format!("{}: not in the report", key.join(".")));
            continue;
        };
        let status = row["status"].as_str().expect("row status");
        let want = &row["value"];
        match status {
            "suppressed" | "undefined" => {
                nulls += 1;
                if !value.is_null() {
                    failures.push(format!(
                        "{}: {status} in the reference, but the report shows {value}",
                        key.join(".")
                    ));
                }
            }
            "value" => {
                let Some(got) = value.as_f64() else {
                    // Hidden by the audit's small-cell protection?
                    let accepted = if let Some(count) = want.as_u64() {
                        if count < min_cell_n {
                            small_hidden += 1;
                        } else {
                            complements += 1;
                        }
                        true
                    } else if let Some(n) = count_of_share(&key) {
                        let primary = want
                            .as_f64()
                            .and_then(|share| unsafe_share(&key, share))
                            .is_some();
                        if hidden(&n) || primary {
                            small_shares += 1;
                        } else {
                            share_complements += 1;
                        }
                        true
                    } else {
                        rests_on(&key).iter().any(&hidden)
                    };
                    if !accepted {
                        failures.push(format!(
                            "{}: the reference has {want}, the report null",
                            key.join(".")
                        ));
                    }
                    continue;
                };
                compared += 1;
                if let Some(count) = want.as_u64()
                    && count > 0
                    && count < min_cell_n
                {
                    failures.push(format!(
                        "{}: a count of {count}, below min_cell {min_cell_n}, is shown",
                        key.join(".")
                    ));
                    continue;
                }
                if want.is_u64() {
                    // Counts are exact.
                    if value.as_u64() != want.as_u64() {
                        failures.push(format!("{}: expected {want}, got {value}", key.join(".")));
                    }
                    continue;
                }
                let want = want.as_f64().expect("a number");
                if let Some((x, n)) = unsafe_share(&key, want) {
                    failures.push(format!(
                        "{}: a share of {x} of {n} is shown; fewer than {min_cell_n} with or \
                         without the outcome must be hidden",
                        key.join(".")
                    ));
                    continue;
                }
                let difference = relative_difference(got, want);
                let field = row["field"].as_str().unwrap_or_default();
                let absolute_ok = SIGNED_FIELDS.contains(&field) && (got - want).abs() <= ABSOLUTE;
                if difference > worst.0 && !absolute_ok {
                    worst = (difference, key.join("."));
                }
                if difference > RELATIVE && !absolute_ok {
                    failures.push(format!(
                        "{}: expected {want:e}, got {got:e} (relative difference {difference:.2e})",
                        key.join(".")
                    ));
                }
            }
            other => panic!("unknown status {other:?} in expected.json"),
        }
    }
    // Nothing the audit reports may go unchecked.
    for key in actual.keys() {
        failures.push(format!(
            "{}: in the report but not in expected.json",
            key.join(".")
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} numbers disagree with the statsmodels reference \
         (tests/audit_reference/expected.json):\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    assert!(
        compared > 1000 && nulls > 0,
        "{compared} compared, {nulls} null"
    );
    assert!(
        small_hidden > 0,
        "the cohort has counts below min_cell and the report hides them"
    );
    // The cohort's first months have a check or two each. Hiding them and their
    // complements must not blank the whole history: the period's checks, most months and
    // every rule's share of flagged checks stay shown.
    assert!(
        report["checks_in_period"]["all"].as_u64().is_some(),
        "{}",
        report["checks_in_period"]
    );
    let months = report["checks_per_month"]
        .as_array()
        .expect("checks_per_month");
    let hidden_months = months
        .iter()
        .filter(|m| m["count"]["all"].is_null())
        .count();
    assert!(
        hidden_months * 4 < months.len(),
        "{hidden_months} of {} months hidden",
        months.len()
    );
    for rule in report["summary"].as_array().expect("summary") {
        assert!(rule["flagged_checks_pct"].is_f64(), "{rule}");
    }
    assert!(
        small_shares > 0,
        "the cohort has shares of few cases and the report hides them"
    );
    eprintln!(
        "{compared} numbers agree with the reference (largest relative difference {:.1e} at {}), {nulls} suppressed or undefined cells are null; the audit hides {small_hidden} counts below min_cell and {complements} complementary counts, {small_shares} shares of few cases and {share_complements} complementary shares",
        worst.0, worst.1
    );
}

/// The cohort is meant to import and audit in seconds; say so when it did not (a busy
/// machine can be slower, so this is a note, not a failure).
fn warn_if_slow(what: &str, took: Duration) {
    if took > Duration::from_secs(10) {
        eprintln!("note: the {what} of the development cohort took {took:?}");
    }
}
