//! Rule tests written as YAML by policy staff: each case states only the fields that
//! matter over a shared base profile, and what the rule should give.
//!
//! Layout (documented in `rules/README.md`): `tests/base-profile.yaml` beside the
//! manifest holds the base profile; every other `tests/*.yaml` holds the cases of one
//! rule.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::engine::RuleOutcome;
use crate::profile::Profile;
use crate::ruleset::{
    FailedTest, LoadError, Problem, RuleSet, Severity, parse_rule_yaml, read_rule_file,
};

pub const TESTS_DIR: &str = "tests";
pub const BASE_PROFILE_FILE: &str = "base-profile.yaml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    rule: String,
    cases: Vec<TestCaseSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCaseSpec {
    name: String,
    #[serde(default)]
    profile: Option<StrictValue>,
    #[serde(default)]
    remove: Vec<String>,
    expect: Expectation,
}

/// What a test case expects of its rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    #[serde(default)]
    pub flagged: Option<bool>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub message_contains: Vec<String>,
    /// Texts the message must not contain, e.g. a statement the rule cannot know.
    #[serde(default)]
    pub message_excludes: Vec<String>,
    /// `true` when the rule is expected to fail (used for deliberately broken input).
    #[serde(default)]
    pub error: bool,
}

/// One test case, ready to run: its profile is already merged and validated.
pub struct TestCase {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub rule: String,
    pub name: String,
    profile: Arc<Profile>,
    pub expect: Expectation,
}

impl TestCase {
    /// The case's profile: the base profile with the case's changes.
    pub fn profile(&self) -> &Arc<Profile> {
        &self.profile
    }
}

/// The outcome of one case.
pub struct CaseResult {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub rule: String,
    pub name: String,
    /// `None` when the case passed; otherwise what was expected and what came out.
    pub failure: Option<Mismatch>,
}

pub struct Mismatch {
    pub expected: String,
    pub actual: String,
}

/// All test cases of a rules directory, loaded and checked (nothing evaluated yet).
#[derive(Default)]
pub struct TestSuite {
    pub cases: Vec<TestCase>,
    /// Rules that no test file covers.
    pub untested_rules: Vec<String>,
}

impl TestSuite {
    /// Reads the base profile and every test file under `rules_dir/tests`, checking
    /// each case's profile against the schema and each rule id against `rules` (when
    /// the rule set itself could not be loaded, pass `None`: the cases are still read
    /// and checked, so `lint` can show every problem at once).
    pub fn load(rules_dir: &Path, rules: Option<&RuleSet>) -> Result<Self, LoadError> {
        let (suite, problems) = Self::read(rules_dir, rules);
        if problems.is_empty() {
            Ok(suite)
        } else {
            Err(LoadError { problems })
        }
    }

    /// [`Self::load`], giving the cases that could be read together with every problem
    /// found, so a refusal can list the failing tests of the readable files beside the
    /// problems of the others.
    pub fn read(rules_dir: &Path, rules: Option<&RuleSet>) -> (Self, Vec<Problem>) {
        let tests_dir = rules_dir.join(TESTS_DIR);
        let base_path = tests_dir.join(BASE_PROFILE_FILE);
        let mut problems = Vec::new();
        let tests_dir_kind = std::fs::symlink_metadata(&tests_dir).map(|m| m.file_type());
        if tests_dir_kind.is_err() {
            // No tests at all is not an error in the rules, but every rule is untested.
            let suite = Self {
                cases: Vec::new(),
                untested_rules: rules
                    .into_iter()
                    .flat_map(|rules| &rules.rules)
                    .map(|r| r.meta.id.to_string())
                    .collect(),
            };
            return (suite, Vec::new());
        }
        if tests_dir_kind.is_ok_and(|kind| !kind.is_dir()) {
            // A link (or anything but a folder) is not listed: its names are not ours.
            let problem = Problem::new(
                &tests_dir,
                "testmappen måste vara en vanlig mapp i regelmappen, inte en symbolisk länk",
            );
            return (Self::default(), vec![problem]);
        }
        let base = match read_rule_file(rules_dir, &Path::new(TESTS_DIR).join(BASE_PROFILE_FILE)) {
            Ok(text) => match parse_rule_yaml::<StrictValue>(&base_path, &text).map(|v| v.0) {
                Ok(value @ serde_json::Value::Object(_)) => Some(value),
                Ok(_) => {
                    problems.push(Problem::new(
                        &base_path,
                        "basprofilen måste vara en mappning (fält: värde)",
                    ));
                    None
                }
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
            Err(err) => {
                problems.push(Problem::new(
                    &base_path,
                    format!("basprofilen kan inte läsas: filen {err}"),
                ));
                None
            }
        };

        let mut files: Vec<PathBuf> = match std::fs::read_dir(&tests_dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "yaml" || e == "yml")
                        && p.file_name().is_some_and(|n| n != BASE_PROFILE_FILE)
                })
                .collect(),
            Err(err) => {
                problems.push(Problem::new(
                    &tests_dir,
                    format!("kan inte läsa testmappen: {err}"),
                ));
                Vec::new()
            }
        };
        files.sort();

        let mut cases = Vec::new();
        let mut tested = std::collections::HashSet::new();
        for path in files {
            let relative = path.strip_prefix(rules_dir).unwrap_or(&path);
            let text = match read_rule_file(rules_dir, relative) {
                Ok(text) => text,
                Err(err) => {
                    problems.push(Problem::new(&path, format!("filen {err}")));
                    continue;
                }
            };
            let file: TestFile = match parse_rule_yaml(&path, &text) {
                Ok(file) => file,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            if rules.is_some_and(|rules| rules.rule(&file.rule).is_none()) {
                problems.push(
                    Problem::new(
                        &path,
                        format!("regeln {:?} finns inte i manifestet", file.rule),
                    )
                    .at(line_of(&text, "rule:", &file.rule), None),
                );
                continue;
            }
            tested.insert(file.rule.clone());
            let Some(base) = &base else { continue };
            // A case is found by its name: two of one name would be told apart by nothing.
            let mut named: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            for spec in file.cases {
                let earlier = named.entry(spec.name.clone()).or_default();
                let line = nth_line_of(&text, "name:", &spec.name, *earlier);
                *earlier += 1;
                if *earlier > 1 {
                    problems.push(
                        Problem::new(
                            &path,
                            format!(
                                "{}: ett testfall till har samma namn; ge varje fall ett eget namn",
                                spec.name
                            ),
                        )
                        .at(line, None),
                    );
                }
                let expect = &spec.expect;
                if expect.flagged == Some(false)
                    && (!expect.message_contains.is_empty() || expect.severity.is_some())
                {
                    problems.push(
                        Problem::new(
                            &path,
                            format!(
                                "{}: flagged: false går inte ihop med message_contains eller severity: bara en flagga har ett meddelande och en allvarlighet",
                                spec.name
                            ),
                        )
                        .at(line, None),
                    );
                }
                let mut value = base.clone();
                if let Some(overlay) = spec.profile {
                    merge(&mut value, overlay.0);
                }
                for field in &spec.remove {
                    if !remove_path(&mut value, field) {
                        // At the field itself when it stands on the `remove:` line.
                        let (at, column) = line
                            .and_then(|line| key_in_case(&text, line, "remove"))
                            .map_or((line, None), |(at, column)| {
                                let written = text.lines().nth(at - 1).unwrap_or_default();
                                let column = written
                                    .find(field.as_str())
                                    .map_or(column, |byte| written[..byte].chars().count() + 1);
                                (Some(at), Some(column))
                            });
                        problems.push(
                            Problem::new(
                                &path,
                                format!(
                                    "{}: remove: fältet {field} finns inte i profilen",
                                    spec.name
                                ),
                            )
                            .at(at, column),
                        );
                    }
                }
                match Profile::from_value(value) {
                    Ok(profile) => cases.push(TestCase {
                        file: path.clone(),
                        line,
                        rule: file.rule.clone(),
                        name: spec.name,
                        profile: Arc::new(profile),
                        expect: spec.expect,
                    }),
                    Err(err) => {
                        // At the field's own line in the case, when the case sets it.
                        let key = err.path.rsplit('.').next().unwrap_or_default();
                        let key = key.split('[').next().unwrap_or_default();
                        let (at, column) = line
                            .and_then(|line| key_in_case(&text, line, key))
                            .map_or((line, None), |(at, column)| (Some(at), Some(column)));
                        problems.push(
                            Problem::new(&path, format!("{}: ogiltig profil: {err}", spec.name))
                                .at(at, column),
                        );
                    }
                }
            }
        }
        let untested_rules = rules
            .into_iter()
            .flat_map(|rules| &rules.rules)
            .map(|r| r.meta.id.to_string())
            .filter(|id| !tested.contains(id))
            .collect();
        let suite = Self {
            cases,
            untested_rules,
        };
        (suite, problems)
    }

    /// Runs every case against `rules`.
    pub fn run(&self, rules: &RuleSet) -> Vec<CaseResult> {
        self.results(rules).collect()
    }

    /// Runs the cases against `rules` one at a time, as the results are taken.
    pub fn results<'a>(&'a self, rules: &'a RuleSet) -> impl Iterator<Item = CaseResult> + 'a {
        self.cases.iter().map(|case| CaseResult {
            file: case.file.clone(),
            line: case.line,
            rule: case.rule.clone(),
            name: case.name.clone(),
            failure: check_case(case, rules),
        })
    }
}

/// A rule set that loaded and whose own tests all passed: the only kind that may go
/// live (`serve`, every reload).
pub struct Tested {
    pub rules: RuleSet,
    /// How many test cases ran (all passed).
    pub cases: usize,
}

/// A rule set that loaded, with its tests run, and what they found wrong.
pub struct Checked {
    pub rules: RuleSet,
    /// How many test cases ran.
    pub cases: usize,
    /// Test files that cannot be read, and failing tests.
    pub problems: Vec<Problem>,
}

/// The test gate: loads the rule set at `dir`, reads its tests and runs them. A set
/// that does not load, whose tests cannot be read, or with any failing test is refused;
/// each failing test is one problem naming its file and line, what it expected and what
/// the rule gave. A set without a `tests/` folder has nothing to fail and passes.
pub fn load_tested(dir: &Path) -> Result<Tested, LoadError> {
    let checked = load_and_test(dir)?;
    if checked.problems.is_empty() {
        Ok(Tested {
            rules: checked.rules,
            cases: checked.cases,
        })
    } else {
        Err(LoadError {
            problems: checked.problems,
        })
    }
}

/// [`load_tested`], with a set that loads kept whatever its tests found, so that a
/// caller can add what else it finds wrong with the set to one refusal. Refused only
/// when the set itself does not load (with its test files' problems too).
pub fn load_and_test(dir: &Path) -> Result<Checked, LoadError> {
    let rules = match RuleSet::load(dir) {
        Ok(rules) => rules,
        Err(mut refused) => {
            // The test files' own problems too: one refusal lists everything found.
            refused.problems.extend(TestSuite::read(dir, None).1);
            return Err(refused);
        }
    };
    // The readable files' tests run even when another file has problems.
    let (suite, mut problems) = TestSuite::read(dir, Some(&rules));
    let results = suite.run(&rules);
    problems.extend(results.iter().filter_map(|result| {
        let failure = result.failure.as_ref()?;
        let mut problem = Problem::new(
            &result.file,
            format!(
                "testet \u{201d}{}\u{201d} för regeln {} misslyckades: förväntat {}, fick {}",
                result.name, result.rule, failure.expected, failure.actual
            ),
        )
        .at(result.line, None);
        problem.test = Some(Box::new(FailedTest {
            rule: result.rule.clone(),
            name: result.name.clone(),
            expected: failure.expected.clone(),
            actual: failure.actual.clone(),
        }));
        Some(problem)
    }));
    Ok(Checked {
        rules,
        cases: results.len(),
        problems,
    })
}

fn check_case(case: &TestCase, rules: &RuleSet) -> Option<Mismatch> {
    // A test of a rule the set does not have fails: it cannot have passed.
    let Some(index) = rules
        .rules
        .iter()
        .position(|r| r.meta.id.as_str() == case.rule)
    else {
        return Some(Mismatch {
            expected: describe_expectation(&case.expect),
            actual: format!("regeln {} finns inte i regeluppsättningen", case.rule),
        });
    };
    let rule = &rules.rules[index].meta;
    let evaluation = rules.evaluate(&case.profile);
    let outcome = &evaluation.outcomes[index];
    let severity = rule.severity.for_stage(case.profile.stage);
    let default_message = rule.default_message_on(case.profile.checked_on);
    let message = match outcome {
        RuleOutcome::Flagged { message } => Some(message.as_deref().unwrap_or(&default_message)),
        _ => None,
    };
    let actual = describe_outcome(outcome, severity, message, &rule.script);
    let expect = &case.expect;

    let failed_as_expected = matches!(outcome, RuleOutcome::Failed(_)) == expect.error;
    let flag_ok = expect
        .flagged
        .is_none_or(|want| want == matches!(outcome, RuleOutcome::Flagged { .. }));
    let severity_ok = expect
        .severity
        .is_none_or(|want| message.is_some() && want == severity);
    let message_ok = message_matches(expect, message);
    if failed_as_expected && flag_ok && severity_ok && message_ok {
        None
    } else if !failed_as_expected {
        Some(Mismatch {
            expected: describe_expectation(expect),
            actual,
        })
    } else {
        // Only what was not met: a test may expect six things of one flag.
        let lower = message.map(str::to_lowercase);
        let has = |needle: &str| {
            lower
                .as_deref()
                .is_some_and(|m| m.contains(&needle.to_lowercase()))
        };
        let unmet = Expectation {
            error: false,
            flagged: expect.flagged.filter(|_| !flag_ok),
            severity: expect.severity.filter(|_| !severity_ok),
            message_contains: (expect.message_contains.iter())
                .filter(|needle| !has(needle))
                .cloned()
                .collect(),
            message_excludes: (expect.message_excludes.iter())
                .filter(|needle| lower.is_none() || has(needle))
                .cloned()
                .collect(),
        };
        let nothing_named = unmet.flagged.is_none()
            && unmet.severity.is_none()
            && unmet.message_contains.is_empty()
            && unmet.message_excludes.is_empty();
        Some(Mismatch {
            expected: describe_expectation(if nothing_named { expect } else { &unmet }),
            actual,
        })
    }
}

/// Whether the message holds every `message_contains` text and none of the
/// `message_excludes` texts, ignoring case. Either list needs a flag (a message).
fn message_matches(expect: &Expectation, message: Option<&str>) -> bool {
    if expect.message_contains.is_empty() && expect.message_excludes.is_empty() {
        return true;
    }
    let Some(message) = message.map(str::to_lowercase) else {
        return false;
    };
    expect
        .message_contains
        .iter()
        .all(|needle| message.contains(&needle.to_lowercase()))
        && !expect
            .message_excludes
            .iter()
            .any(|needle| message.contains(&needle.to_lowercase()))
}

fn describe_expectation(expect: &Expectation) -> String {
    if expect.error {
        return "att regeln misslyckas".to_owned();
    }
    let mut parts = Vec::new();
    match expect.flagged {
        Some(true) => parts.push("flagga".to_owned()),
        Some(false) => parts.push("ingen flagga".to_owned()),
        None => {}
    }
    if let Some(severity) = expect.severity {
        parts.push(format!(
            "allvarlighet {}",
            severity.label_sv().to_lowercase()
        ));
    }
    for needle in &expect.message_contains {
        parts.push(format!("meddelande som innehåller {needle:?}"));
    }
    for needle in &expect.message_excludes {
        parts.push(format!("meddelande utan {needle:?}"));
    }
    if parts.is_empty() {
        "att regeln körs utan fel".to_owned()
    } else {
        parts.join(", ")
    }
}

/// What came out, in the words of the test report; a failure with where in `script` it
/// happened (`script:line:column`), when the engine knows.
fn describe_outcome(
    outcome: &RuleOutcome,
    severity: Severity,
    message: Option<&str>,
    script: &str,
) -> String {
    match (outcome, message) {
        (RuleOutcome::Flagged { .. }, Some(message)) => {
            format!(
                "flagga ({}): {message:?}",
                severity.label_sv().to_lowercase()
            )
        }
        (RuleOutcome::Clear, _) | (RuleOutcome::Flagged { .. }, None) => "ingen flagga".to_owned(),
        (RuleOutcome::NotApplicable(_), _) => {
            "regeln gällde inte (avstängd eller utanför giltighetstid)".to_owned()
        }
        (RuleOutcome::Failed(failure), _) => match (failure.line, failure.column) {
            (Some(line), Some(column)) => {
                format!("fel i {script}:{line}:{column}: {}", failure.message)
            }
            (Some(line), None) => format!("fel i {script}:{line}: {}", failure.message),
            _ => format!("fel: {}", failure.message),
        },
    }
}

/// A YAML value read as JSON, refusing a key written twice in one mapping (which
/// would otherwise silently keep the last).
struct StrictValue(serde_json::Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, SeqAccess, Visitor};
        use serde_json::Value;
        struct StrictVisitor;
        impl<'de> Visitor<'de> for StrictVisitor {
            type Value = StrictValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value")
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Bool(v)))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_unit<E: Error>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_none<E: Error>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<StrictValue, D::Error> {
                StrictValue::deserialize(deserializer)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
                let mut items = Vec::new();
                while let Some(StrictValue(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(StrictValue(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if object.contains_key(&key) {
                        return Err(A::Error::custom(format!(
                            "fältet {key:?} står mer än en gång"
                        )));
                    }
                    let StrictValue(value) = map.next_value()?;
                    object.insert(key, value);
                }
                Ok(StrictValue(Value::Object(object)))
            }
        }
        deserializer.deserialize_any(StrictVisitor)
    }
}

/// Merges `overlay` into `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut serde_json::Value, overlay: serde_json::Value) {
    match (base, overlay) {
        (serde_json::Value::Object(base), serde_json::Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Removes the field at a dotted path; false when there was no such field.
fn remove_path(value: &mut serde_json::Value, path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut current = value;
    for part in parts {
        match current.get_mut(part) {
            Some(next) => current = next,
            None => return false,
        }
    }
    current
        .as_object_mut()
        .is_some_and(|object| object.remove(last).is_some())
}

/// The 1-based line where `key` is followed by `value` (e.g. a case's `name:`).
fn line_of(text: &str, key: &str, value: &str) -> Option<usize> {
    nth_line_of(text, key, value, 0)
}

/// The line and column of `key:` within the test case whose `name:` is on `case_line`
/// (up to the next case), for a problem with one of its fields; `None` when the case does
/// not write it (the field came from the base profile).
fn key_in_case(text: &str, case_line: usize, key: &str) -> Option<(usize, usize)> {
    if key.is_empty() {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = case_line.checked_sub(1)?;
    let indent = |line: &str| line.len() - line.trim_start().len();
    let case_indent = indent(lines.get(start)?);
    for (index, line) in lines.iter().enumerate().skip(start + 1) {
        let trimmed = line.trim_start();
        if trimmed.starts_with("- ") && indent(line) <= case_indent {
            break;
        }
        // `key:` on its own line or inside a flow mapping (`gk: { key: true }`).
        let wanted = format!("{key}:");
        let found = line.match_indices(&wanted).find(|&(at, _)| {
            at == 0 || matches!(line.as_bytes()[at - 1], b' ' | b'{' | b',' | b'-')
        });
        if let Some((at, _)) = found {
            return Some((index + 1, line[..at].chars().count() + 1));
        }
    }
    None
}

/// [`line_of`] for the `n`th such line, from 0.
fn nth_line_of(text: &str, key: &str, value: &str, n: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim().trim_start_matches('-').trim_start();
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim().trim_matches(['"', '\'']) == value)
        })
        .nth(n)
        .map(|(index, _)| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_is_deep_and_replaces_leaves() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        merge(&mut base, json!({"a": {"c": [3]}, "e": null}));
        assert_eq!(base, json!({"a": {"b": 1, "c": [3]}, "d": 1, "e": null}));
    }

    #[test]
    fn remove_path_removes_nested_fields_only_when_present() {
        let mut value = json!({"a": {"b": 1, "c": 2}});
        assert!(remove_path(&mut value, "a.b"));
        assert_eq!(value, json!({"a": {"c": 2}}));
        assert!(!remove_path(&mut value, "a.x"));
        assert!(!remove_path(&mut value, "x.y"));
    }

    fn expect(contains: &[&str], excludes: &[&str]) -> Expectation {
        Expectation {
            flagged: Some(true),
            severity: None,
            message_contains: contains.iter().map(|s| (*s).to_owned()).collect(),
            message_excludes: excludes.iter().map(|s| (*s).to_owned()).collect(),
            error: false,
        }
    }

    #[test]
    fn message_excludes_fails_on_any_listed_text_ignoring_case() {
        let message = Some("Personen behöver tolk, men uppgift saknas om tolk är bokad.");
        assert!(message_matches(
            &expect(&["uppgift saknas"], &["ingen tolk"]),
            message
        ));
        assert!(!message_matches(
            &expect(&[], &["INGEN TOLK", "Uppgift saknas"]),
            message
        ));
        assert!(!message_matches(&expect(&["tolk"], &["är bokad"]), message));
        // Nothing to match against: a rule that did not flag fails either list.
        assert!(!message_matches(&expect(&[], &["tolk"]), None));
        assert!(message_matches(&expect(&[], &[]), None));
    }

    /// A rules folder with one rule `a` that flags every profile, a base profile and an
    /// empty tests folder.
    fn one_rule_that_flags() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = dir.path();
        std::fs::create_dir(rules.join(TESTS_DIR)).expect("tests dir");
        std::fs::write(
            rules.join("manifest.yaml"),
            "name: t\nversion: \"1\"\nrules:\n  - id: a\n    script: a.rhai\n    title: A\n    severity: warning\n    grounds: policy\n    rationale: r\n",
        )
        .expect("manifest");
        std::fs::write(rules.join("a.rhai"), "true").expect("script");
        std::fs::write(
            rules.join(TESTS_DIR).join(BASE_PROFILE_FILE),
            "case_id: T\n",
        )
        .expect("base profile");
        dir
    }

    #[test]
    fn a_refusal_lists_the_test_files_problems_and_the_failing_tests_together() {
        // It took five reloads to see every problem: a rule problem hid the test files',
        // and one bad test file hid every failing test.
        let dir = one_rule_that_flags();
        let rules = dir.path();
        std::fs::write(
            rules.join(TESTS_DIR).join("a.yaml"),
            "rule: a\ncases:\n  - name: fel\n    expect:\n      flagged: false\n",
        )
        .expect("a failing test");
        std::fs::write(rules.join(TESTS_DIR).join("b.yaml"), "rule: [\n").expect("a bad file");
        let listed = |dir: &Path| {
            load_tested(dir)
                .err()
                .expect("refused")
                .problems
                .iter()
                .map(|p| p.file.rsplit('/').next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        };
        let mut files = listed(rules);
        files.sort();
        assert_eq!(files, ["a.yaml", "b.yaml"]);
        // With the rule set itself refused, the test files' problems are still listed.
        std::fs::write(rules.join("a.rhai"), "(").expect("script");
        let mut files = listed(rules);
        files.sort();
        assert_eq!(files, ["a.rhai", "b.yaml"]);
    }

    /// Two cases of one name were reported at the first one's line; a case expecting no
    /// flag and a message passed as if it made sense.
    #[test]
    fn cases_of_one_name_and_contradicting_expectations_are_refused() {
        let dir = one_rule_that_flags();
        let rules = dir.path();
        std::fs::write(
            rules.join(TESTS_DIR).join("a.yaml"),
            "rule: a\ncases:\n  - name: samma\n    expect:\n      flagged: true\n  - name: samma\n    expect:\n      flagged: true\n  - name: motsägande\n    expect:\n      flagged: false\n      message_contains: [\"x\"]\n",
        )
        .expect("tests");
        let problems = load_tested(rules).err().expect("refused").problems;
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            problems
                .iter()
                .any(|p| p.line == Some(6) && p.message.contains("samma namn")),
            "{shown:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.line == Some(9) && p.message.contains("går inte ihop")),
            "{shown:#?}"
        );
    }

    #[test]
    fn message_excludes_is_read_from_yaml_and_fails_the_case() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = dir.path();
        std::fs::create_dir(rules.join(TESTS_DIR)).expect("tests dir");
        std::fs::write(
            rules.join("manifest.yaml"),
            "name: t\nversion: \"1\"\nrules:\n  - id: tolk\n    script: tolk.rhai\n    title: Tolk\n    severity: warning\n    grounds: policy\n    rationale: r\n",
        )
        .expect("manifest");
        std::fs::write(
            rules.join("tolk.rhai"),
            "if is_true(profile.known_needs.interpreter_needed) { \"Ingen tolk är bokad.\" } else { false }",
        )
        .expect("script");
        std::fs::write(
            rules.join(TESTS_DIR).join(BASE_PROFILE_FILE),
            "case_id: T\nknown_needs:\n  interpreter_needed: true\n",
        )
        .expect("base profile");
        std::fs::write(
            rules.join(TESTS_DIR).join("tolk.yaml"),
            "rule: tolk\ncases:\n  - name: utan\n    expect:\n      flagged: true\n      message_excludes: [\"uppgift saknas\"]\n  - name: med\n    expect:\n      flagged: true\n      message_excludes: [\"ingen tolk\"]\n",
        )
        .expect("tests");
        let set = RuleSet::load(rules).expect("rules load");
        let suite = TestSuite::load(rules, Some(&set)).expect("tests load");
        let results = suite.run(&set);
        let failed: Vec<&str> = results
            .iter()
            .filter(|r| r.failure.is_some())
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(failed, ["med"]);
        let mismatch = results[1].failure.as_ref().expect("failure");
        // Only what was not met: the flag was there.
        assert_eq!(mismatch.expected, "meddelande utan \"ingen tolk\"");
    }

    #[test]
    fn a_test_of_a_rule_the_set_does_not_have_fails_naming_the_rule() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let suite = TestSuite::load(&repo, None).expect("the repository's tests load");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(crate::ruleset::MANIFEST_FILE),
            "name: t\nversion: '1'\nrules:\n  - id: annan_regel\n    script: r.rhai\n    title: Regel\n    severity: warning\n    grounds: policy\n    rationale: x\n",
        )
        .expect("manifest");
        std::fs::write(dir.path().join("r.rhai"), "false").expect("script");
        let other = RuleSet::load(dir.path()).expect("rule set loads");
        let results = suite.run(&other);
        assert!(!results.is_empty());
        for result in &results {
            let failure = result.failure.as_ref().expect("a missing rule fails");
            assert!(
                failure.actual.contains(&result.rule) && failure.actual.contains("finns inte"),
                "{}",
                failure.actual
            );
        }
    }

    /// A test profile's bad field was reported at its case's `name:` line, with no
    /// column, and a `remove:` problem one line early.
    #[test]
    fn a_field_problem_points_at_the_field_within_its_case() {
        let text = "cases:\n  - name: a\n    profile:\n      gk: { booked: 7 }\n    remove: [x.y]\n  - name: b\n    profile:\n      booked: true\n";
        assert_eq!(key_in_case(text, 2, "booked"), Some((4, 13)));
        assert_eq!(key_in_case(text, 2, "remove"), Some((5, 5)));
        assert_eq!(key_in_case(text, 6, "booked"), Some((8, 7)));
        // Not written in the case (it came from the base profile), or the next case's.
        assert_eq!(key_in_case(text, 2, "missing"), None);
        assert_eq!(
            key_in_case("cases:\n  - name: a\n  - name: b\n    x: 1\n", 2, "x"),
            None
        );
    }

    #[test]
    fn line_of_finds_quoted_and_plain_values() {
        let text = "rule: r\ncases:\n  - name: first\n  - name: \"second one\"\n";
        assert_eq!(line_of(text, "name:", "first"), Some(3));
        assert_eq!(line_of(text, "name:", "second one"), Some(4));
        assert_eq!(line_of(text, "rule:", "r"), Some(1));
    }
}
