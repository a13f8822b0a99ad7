//! The audit's input, built from the stored history that [`crate::store::history`]
//! reads (every query lives there): checks with their statuses collected into case
//! histories, and the rules to report on.
//!
//! A period selects the rows the audit needs: every check of a case whose outcome ended
//! in the period (for its unit) and every check made in the period (for alert burden).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use super::report::AuditReport;
use super::{
    AuditInput, CaseHistory, CheckRecord, Options, OutcomeRecord, Period, RuleInfo, RuleSetUse,
    Status,
};
use crate::outcome::Outcome;
#[cfg(test)]
use crate::profile::Profile;
use crate::store::StoreError;
use crate::store::facts::CheckFacts;
use crate::store::history::{CheckScan, History, Range, ScannedCheck, is_test_case_key};

pub(super) fn range(period: &Period) -> Range {
    Range {
        from: period.from,
        to: period.to,
        include_test: period.include_test,
    }
}

/// How many stored checks a run over `period` reads (for a progress bar).
pub fn count_checks(history: History<'_>, period: &Period) -> Result<u64, StoreError> {
    history.count_checks(range(period))
}

/// One check collected in storage order.
#[cfg(test)]
struct CollectedCheck {
    case: String,
    id: i64,
    /// Index into [`Collected::rule_sets`].
    rule_set: usize,
    outcome: Option<OutcomeRecord>,
    record: CheckRecord,
}

/// Checks collected in any order, then handed to [`Histories`] ordered by case,
/// `checked_on` and id, the order an audit reads a case's history in.
#[cfg(test)]
#[derive(Default)]
pub struct Collected {
    rule_sets: Vec<String>,
    checks: Vec<CollectedCheck>,
    unreadable: usize,
}

#[cfg(test)]
impl Collected {
    /// Adds check `id` of `case`.
    pub fn push(
        &mut self,
        case: String,
        id: i64,
        rule_set_hash: &str,
        outcome: Option<OutcomeRecord>,
        record: CheckRecord,
    ) {
        let rule_set = match self.rule_sets.iter().position(|h| h == rule_set_hash) {
            Some(index) => index,
            None => {
                self.rule_sets.push(rule_set_hash.to_owned());
                self.rule_sets.len() - 1
            }
        };
        self.checks.push(CollectedCheck {
            case,
            id,
            rule_set,
            outcome,
            record,
        });
    }

    /// Counts a check whose stored profile could not be read back.
    pub fn skip_unreadable(&mut self) {
        self.unreadable += 1;
    }

    /// The case histories, as if the checks had been read in case order.
    pub fn into_histories(mut self) -> Histories {
        self.checks.sort_unstable_by(|a, b| {
            (a.case.as_str(), a.record.checked_on, a.id).cmp(&(
                b.case.as_str(),
                b.record.checked_on,
                b.id,
            ))
        });
        let mut histories = Histories::default();
        for check in self.checks {
            histories.push(
                &check.case,
                &self.rule_sets[check.rule_set],
                check.outcome,
                check.record,
            );
        }
        for _ in 0..self.unreadable {
            histories.skip_unreadable();
        }
        histories
    }
}

/// Collects checks into case histories as they stream by, ordered by case.
#[derive(Default)]
pub struct Histories {
    cases: Vec<CaseHistory>,
    current: Option<String>,
    /// Checks read per rule-set hash: all, and those made with a test-purpose token.
    rule_sets: BTreeMap<String, (usize, usize)>,
    unreadable: usize,
}

impl Histories {
    /// Adds the next check (in stream order) of `case`.
    pub fn push(
        &mut self,
        case: &str,
        rule_set_hash: &str,
        outcome: Option<OutcomeRecord>,
        check: CheckRecord,
    ) {
        let test = is_test_case_key(case);
        // Looked up before it is inserted: a check of a known rule set (nearly every
        // one) copies no hash.
        match self.rule_sets.get_mut(rule_set_hash) {
            Some((checks, test_checks)) => {
                *checks += 1;
                *test_checks += usize::from(test);
            }
            None => {
                self.rule_sets
                    .insert(rule_set_hash.to_owned(), (1, usize::from(test)));
            }
        }
        match self.cases.last_mut() {
            Some(history) if self.current.as_deref() == Some(case) => history.checks.push(check),
            _ => {
                self.current = Some(case.to_owned());
                self.cases.push(CaseHistory {
                    outcome,
                    checks: vec![check],
                    test,
                });
            }
        }
    }

    /// Counts a check whose stored profile could not be read back.
    pub fn skip_unreadable(&mut self) {
        self.unreadable += 1;
    }

    /// The audit's input; the rule sets named from the `rule_sets` table. Cases with an
    /// outcome in `period` but no stored check at all (e.g. purged by retention) are
    /// added without checks, so the report counts them among the cases it cannot use.
    pub fn finish(
        self,
        history: History<'_>,
        rules: Vec<RuleInfo>,
        period: &Period,
    ) -> Result<AuditInput, StoreError> {
        let without_checks = history.outcomes_without_checks(range(period))?;
        self.finish_with(history, rules, &without_checks)
    }

    /// [`Self::finish`] with the outcomes of the cases without checks already read.
    pub fn finish_with(
        mut self,
        history: History<'_>,
        rules: Vec<RuleInfo>,
        without_checks: &[Outcome],
    ) -> Result<AuditInput, StoreError> {
        for outcome in without_checks {
            self.cases.push(CaseHistory {
                outcome: Some(OutcomeRecord::of(outcome)),
                checks: Vec::new(),
                test: false,
            });
        }
        let mut rule_sets = Vec::with_capacity(self.rule_sets.len());
        for (hash, (checks, test_checks)) in self.rule_sets {
            let (name, version) = history.rule_set_name(&hash)?;
            rule_sets.push(RuleSetUse {
                name,
                version,
                content_hash: hash,
                checks,
                test_checks,
            });
        }
        Ok(AuditInput {
            rules,
            rule_sets,
            cases: self.cases,
            unreadable_checks: self.unreadable,
        })
    }
}

/// The rules to report on: `active` in manifest order, then any other rule id found in
/// stored flags or errors (rules since removed), sorted.
pub fn rules_to_report(
    history: History<'_>,
    active: Vec<RuleInfo>,
) -> Result<Vec<RuleInfo>, StoreError> {
    let stored = history.stored_rule_ids()?;
    let mut rules = active;
    for id in stored {
        if !rules.iter().any(|r| r.id == id) {
            rules.push(RuleInfo {
                title: id.clone(),
                id,
            });
        }
    }
    Ok(rules)
}

/// The audit of the stored flags: reads `period` and computes the report.
pub fn stored_audit(
    history: History<'_>,
    active: Vec<RuleInfo>,
    options: &Options,
) -> Result<AuditReport, StoreError> {
    audit_of_history(history, active, options, false)
}

/// [`stored_audit`] with the audit of answers to flags attached
/// ([`super::responses`]). Both are read from one scan of the checks and computed side
/// by side, on the cores of the pool this runs on.
pub fn stored_audit_with_responses(
    history: History<'_>,
    active: Vec<RuleInfo>,
    options: &Options,
) -> Result<AuditReport, StoreError> {
    audit_of_history(history, active, options, true)
}

/// Scans the checks once, builds the audit's input, and computes the audit, with the
/// audit of answers beside it when `with_responses`.
fn audit_of_history(
    history: History<'_>,
    active: Vec<RuleInfo>,
    options: &Options,
    with_responses: bool,
) -> Result<AuditReport, StoreError> {
    let rules = rules_to_report(history, active)?;
    let scan = history.scan_checks(range(&options.period), OutcomeRecord::of)?;
    let input = input_of_scan(history, rules, &scan)?;
    let answered = with_responses
        .then(|| history.answered_history_of_scan(&scan))
        .transpose()?;
    drop(scan);
    let (mut report, responses) = rayon::join(
        || super::audit(&input, options),
        || {
            answered.map(|answered| {
                let rule_ids: Vec<String> = super::analysis::rule_rows(&input)
                    .map(|(id, _)| id.to_owned())
                    .collect();
                super::responses::tally(answered, &rule_ids, &options.period, options.min_cell)
            })
        },
    );
    if let Some(responses) = responses {
        super::responses::attach(&mut report, &responses);
    }
    report.excluded_test_checks = history.count_excluded_test_checks(range(&options.period))?;
    report.notes.extend(test_checks_note(&report));
    Ok(report)
}

/// The audit's input from the checks `scan` selects: their case histories in case order
/// (each oldest first, by `checked_on`, then storage order), the checks without facts
/// (whose stored profile could not be read back) counted and left out.
fn input_of_scan(
    history: History<'_>,
    rules: Vec<RuleInfo>,
    scan: &CheckScan<OutcomeRecord>,
) -> Result<AuditInput, StoreError> {
    let index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    // Each stored rule id's place among the rules reported on, looked up once.
    let place: Vec<Option<usize>> = scan
        .rule_ids
        .iter()
        .map(|id| index.get(id.as_str()).copied())
        .collect();
    let in_set = rules_in_sets(history, &rules, &scan.rule_sets)?;
    let order = scan.case_order();
    let mut unreadable = 0;
    let mut selected: Vec<(&ScannedCheck<OutcomeRecord>, &CheckFacts)> = scan
        .checks
        .iter()
        .filter(|c| c.selected)
        .filter_map(|c| match &c.facts {
            Some(facts) => Some((c, facts)),
            None => {
                unreadable += 1;
                None
            }
        })
        .collect();
    // The key is total (ids are unique), so sorting on all cores gives the one order.
    selected.par_sort_unstable_by_key(|(c, _)| (order[c.case as usize], c.checked_on, c.id));
    // Per rule set: the checks, and those made with a test-purpose token.
    let mut checks_per_rule_set = vec![(0_usize, 0_usize); scan.rule_sets.len()];
    let mut histories = Histories {
        unreadable,
        ..Histories::default()
    };
    let mut current = None;
    for (check, facts) in selected {
        let mut statuses = in_set[check.rule_set as usize].clone();
        for (ids, status) in [
            (scan.flagged(check), Status::Flagged),
            (scan.failed(check), Status::Failed),
        ] {
            for &id in ids {
                if let Some(i) = place[id as usize] {
                    statuses[i] = status;
                }
            }
        }
        let record = CheckRecord {
            stage: check.stage,
            checked_on: check.checked_on,
            first_meeting_on: facts.first_meeting_on,
            covariates: facts.covariates.clone(),
            statuses,
        };
        let test = is_test_case_key(&scan.cases[check.case as usize]);
        let (checks, test_checks) = &mut checks_per_rule_set[check.rule_set as usize];
        *checks += 1;
        *test_checks += usize::from(test);
        match histories.cases.last_mut() {
            Some(case) if current == Some(check.case) => case.checks.push(record),
            _ => {
                current = Some(check.case);
                histories.cases.push(CaseHistory {
                    outcome: check.outcome,
                    checks: vec![record],
                    test,
                });
            }
        }
    }
    histories.rule_sets = scan
        .rule_sets
        .iter()
        .zip(checks_per_rule_set)
        .filter(|&(_, (checks, _))| checks > 0)
        .map(|(hash, counts)| (hash.clone(), counts))
        .collect();
    histories.finish_with(history, rules, &scan.without_checks)
}

/// For each rule set in `hashes`, [`statuses_before_results`].
fn rules_in_sets(
    history: History<'_>,
    rules: &[RuleInfo],
    hashes: &[String],
) -> Result<Vec<Vec<Status>>, StoreError> {
    hashes
        .iter()
        .map(|hash| statuses_before_results(history, rules, hash))
        .collect()
}

/// Each rule's status at a check made by the rule set `hash`, before the check's flags
/// and errors are read: [`Status::Clear`] where the set had the rule,
/// [`Status::NotInSet`] where it did not. A set whose manifest was not recorded or cannot
/// be read is taken to have had every rule, as its stored flags are all there is to go by.
pub(super) fn statuses_before_results(
    history: History<'_>,
    rules: &[RuleInfo],
    hash: &str,
) -> Result<Vec<Status>, StoreError> {
    let catalog = history
        .rule_set_manifest(hash)?
        .and_then(|text| crate::engine::reasons::ReasonCatalog::from_manifest(&text));
    Ok(rules
        .iter()
        .map(|rule| match &catalog {
            Some(catalog) if !catalog.has_rule(&rule.id) => Status::NotInSet,
            _ => Status::Clear,
        })
        .collect())
}

/// [`statuses_before_results`] of the rule set `hash` into `read`, unless read already:
/// for the readers that meet rule sets batch by batch.
pub(super) fn read_statuses_before_results(
    read: &mut HashMap<String, Vec<Status>>,
    history: History<'_>,
    rules: &[RuleInfo],
    hash: &str,
) -> Result<(), StoreError> {
    if !read.contains_key(hash) {
        read.insert(
            hash.to_owned(),
            statuses_before_results(history, rules, hash)?,
        );
    }
    Ok(())
}

/// The audit input as read before `check_facts`: every selected stored profile parsed.
/// The tests hold [`input_of_scan`] to it.
#[cfg(test)]
pub(crate) fn input_of_profiles(
    history: History<'_>,
    rules: Vec<RuleInfo>,
    options: &Options,
) -> Result<AuditInput, StoreError> {
    let index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut collected = Collected::default();
    let mut before: HashMap<String, Vec<Status>> = HashMap::new();
    let without_checks =
        history.for_each_check_batch(range(&options.period), true, OutcomeRecord::of, |batch| {
            for row in &batch {
                read_statuses_before_results(&mut before, history, &rules, &row.rule_set_hash)?;
            }
            let records: Vec<Option<CheckRecord>> = batch
                .par_iter()
                .map(|row| {
                    let profile = Profile::from_stored_json(&row.profile_json).ok()?;
                    let mut statuses = before[&row.rule_set_hash].clone();
                    for (ids, status) in [
                        (&row.flagged, Status::Flagged),
                        (&row.failed, Status::Failed),
                    ] {
                        for id in ids {
                            if let Some(&i) = index.get(id.as_str()) {
                                statuses[i] = status;
                            }
                        }
                    }
                    Some(CheckRecord::new(&profile, statuses))
                })
                .collect();
            for (row, record) in batch.into_iter().zip(records) {
                match record {
                    Some(record) => {
                        collected.push(row.case, row.id, &row.rule_set_hash, row.outcome, record)
                    }
                    None => collected.skip_unreadable(),
                }
            }
            Ok(())
        })?;
    collected
        .into_histories()
        .finish_with(history, rules, &without_checks)
}

/// What the report says about test checks: how many it left out, or that it includes
/// them. Test checks are not about real people, so their number is never suppressed.
fn test_checks_note(report: &AuditReport) -> Option<String> {
    if report.include_test {
        return Some(
            "Testkontroller (gjorda med en token för test) ingår i antalen kontroller och \
             flaggor, aldrig som ärenden med utfall. Vilka antal som döljs avgörs av de \
             riktiga kontrollerna, så att ingen kan räkna fram ett dolt antal genom att dra \
             bort testkontrollerna."
                .to_owned(),
        );
    }
    let n = usize::try_from(report.excluded_test_checks).unwrap_or(usize::MAX);
    (n > 0).then(|| {
        format!(
            "{} ingår inte i uppföljningen ({} gjordes med en token för test). De kan tas med på begäran.",
            crate::present::count_noun(n, "testkontroll", "testkontroller"),
            if n == 1 { "den" } else { "de" }
        )
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OptionalExtension, params};

    use super::*;
    use crate::profile::Date;

    const RULES: [&str; 3] = ["a", "b", "c"];

    /// A database at the schema before `check_facts` (7) with checks of the development
    /// cohort's first profiles, their outcomes, flags and rule errors, one test check and
    /// one stored profile that does not read back; then migrated to the latest schema,
    /// which fills `check_facts` in.
    fn migrated_history() -> (Connection, Vec<(i64, Option<Profile>)>) {
        let mut conn = Connection::open_in_memory().expect("database");
        let migrations = crate::store::migrations();
        migrations.to_version(&mut conn, 7).expect("schema 7");
        conn.execute(
            "INSERT INTO rule_sets VALUES ('h', 'gk', '1', '[]', '2020-01-01T00:00:00Z'),
                                          ('k', 'gk', '2', '[]', '2021-01-01T00:00:00Z')",
            [],
        )
        .expect("rule sets");
        let profiles = include_str!("../../examples/cohort-2018/profiles.jsonl");
        let mut stored = Vec::new();
        for (n, line) in profiles.lines().take(600).enumerate() {
            let profile = Profile::from_stored_json(line).expect("profile");
            let n = i64::try_from(n).expect("n");
            // One stored profile in 97 does not read back (the case and dates stay).
            let text = if n % 97 == 5 {
                line.replacen("\"stage\":", "\"stage\":7,\"x\":", 1)
            } else {
                line.to_owned()
            };
            conn.execute(
                "INSERT INTO evaluations (case_pseudonym, stage, checked_on, created_at, rule_set_hash,
                                          requested_by, profile_json, test)
                 VALUES (?1, ?2, ?3, '', ?4, 'officer', ?5, ?6)",
                params![
                    profile.case_id.expose(),
                    profile.stage.as_str(),
                    profile.checked_on.to_string(),
                    if n % 3 == 0 { "h" } else { "k" },
                    text,
                    n % 50 == 7,
                ],
            )
            .expect("check");
            let id = conn.last_insert_rowid();
            for (k, rule) in RULES.iter().enumerate() {
                let k = i64::try_from(k).expect("k");
                if (n + k) % 4 == 0 {
                    conn.execute(
                        "INSERT INTO flags VALUES (?1, ?2, 'info', 'm')",
                        params![id, rule],
                    )
                    .expect("flag");
                } else if (n + k) % 11 == 0 {
                    conn.execute(
                        "INSERT INTO rule_errors VALUES (?1, ?2, 'runtime', 'm', NULL, NULL)",
                        params![id, rule],
                    )
                    .expect("error");
                }
            }
            // A rule no longer in the rule set.
            if n % 13 == 0 {
                conn.execute(
                    "INSERT INTO flags VALUES (?1, 'gone', 'info', 'm')",
                    params![id],
                )
                .expect("flag");
            }
            stored.push((id, Profile::from_stored_json(&text).ok()));
        }
        let outcomes = include_str!("../../examples/cohort-2018/outcomes.jsonl");
        for line in outcomes.lines() {
            let outcome: serde_json::Value = serde_json::from_str(line).expect("outcome");
            conn.execute(
                "INSERT OR IGNORE INTO outcomes VALUES (?1, ?2, ?3, ?4, '', '')",
                params![
                    outcome["case_id"].as_str(),
                    outcome["ended_on"].as_str(),
                    outcome["outcome"].as_str(),
                    outcome["reasons"].to_string(),
                ],
            )
            .expect("outcome");
        }
        migrations.to_latest(&mut conn).expect("migrated");
        (conn, stored)
    }

    /// Everything of an audit input, as text.
    fn projected(input: &AuditInput) -> Vec<String> {
        let mut lines = vec![format!(
            "unreadable {} rules {:?} rule sets {:?}",
            input.unreadable_checks,
            input.rules.iter().map(|r| &r.id).collect::<Vec<_>>(),
            input
                .rule_sets
                .iter()
                .map(|r| (
                    &r.content_hash,
                    &r.name,
                    &r.version,
                    r.checks,
                    r.test_checks
                ))
                .collect::<Vec<_>>()
        )];
        for case in &input.cases {
            lines.push(format!(
                "case test {} {:?}",
                case.test,
                case.outcome.map(|o| (
                    o.ended_on,
                    o.left_insurance,
                    o.work_or_studies,
                    o.worsened_health
                ))
            ));
            for check in &case.checks {
                let c = &check.covariates;
                lines.push(format!(
                    "{:?} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                    check.stage,
                    check.checked_on,
                    check.first_meeting_on,
                    c.sex,
                    c.age,
                    c.diagnosis,
                    c.education,
                    c.marital_status,
                    c.children_0_17,
                    c.born_abroad,
                    c.returner_ever,
                    c.sgi,
                    check.statuses
                ));
            }
        }
        lines
    }

    #[test]
    fn the_migration_fills_in_the_facts_of_every_profile_that_reads_back() {
        let (conn, stored) = migrated_history();
        let unreadable = stored.iter().filter(|(_, p)| p.is_none()).count();
        assert!(unreadable >= 5, "{unreadable}");
        for (id, profile) in &stored {
            let row = conn
                .query_row(
                    &format!(
                        "SELECT {} FROM check_facts WHERE evaluation_id = ?1",
                        crate::store::facts::COLUMNS
                    ),
                    [id],
                    |row| {
                        Ok((
                            crate::store::facts::read(row, 0).map_err(|e| {
                                rusqlite::Error::InvalidParameterName(e.to_string())
                            })?,
                            row.get::<_, String>(10)?,
                            row.get::<_, String>(11)?,
                        ))
                    },
                )
                .optional()
                .expect("facts");
            let Some(profile) = profile else {
                assert!(row.is_none(), "an unreadable profile has no facts");
                continue;
            };
            let (facts, flagged, failed) = row.expect("facts of a readable profile");
            let expected = CheckFacts::of(profile);
            let (a, b) = (&facts.covariates, &expected.covariates);
            assert_eq!(facts.first_meeting_on, expected.first_meeting_on);
            assert_eq!(
                (a.sex, a.age, a.diagnosis, a.education, a.marital_status),
                (b.sex, b.age, b.diagnosis, b.education, b.marital_status)
            );
            assert_eq!(
                (a.children_0_17, a.born_abroad, a.returner_ever, a.sgi),
                (b.children_0_17, b.born_abroad, b.returner_ever, b.sgi)
            );
            let ids = |table: &str| -> String {
                let mut statement = conn
                    .prepare(&format!(
                        "SELECT rule_id FROM {table} WHERE evaluation_id = ?1 ORDER BY rule_id"
                    ))
                    .expect("statement");
                let ids: Vec<String> = statement
                    .query_map([id], |row| row.get(0))
                    .expect("ids")
                    .collect::<Result<_, _>>()
                    .expect("ids");
                ids.join(" ")
            };
            assert_eq!(flagged, ids("flags"));
            assert_eq!(failed, ids("rule_errors"));
        }
    }

    #[test]
    fn the_audit_input_from_the_facts_equals_the_one_from_the_profiles() {
        let (conn, _) = migrated_history();
        let history = History::new(&conn);
        let rules: Vec<RuleInfo> = RULES
            .iter()
            .map(|id| RuleInfo {
                id: (*id).to_owned(),
                title: (*id).to_owned(),
            })
            .collect();
        let rules = rules_to_report(history, rules).expect("rules");
        let date = |text: &str| Some(Date::parse(text).expect("date"));
        for (from, to) in [
            (None, None),
            (date("2021-01-01"), date("2021-12-31")),
            (date("2024-06-01"), None),
            (None, date("2021-06-30")),
        ] {
            for include_test in [false, true] {
                let options = Options {
                    period: Period {
                        from,
                        to,
                        include_test,
                    },
                    ..Options::default()
                };
                let scan = history
                    .scan_checks(range(&options.period), OutcomeRecord::of)
                    .expect("scan");
                let scanned = input_of_scan(history, rules.clone(), &scan).expect("scanned");
                let parsed = input_of_profiles(history, rules.clone(), &options).expect("parsed");
                assert!(scanned.cases.iter().any(|c| !c.checks.is_empty()));
                assert!(scanned.cases.iter().any(|c| c.outcome.is_some()));
                // Only a period that includes test checks has a test case, never with
                // an outcome; the whole history has some.
                let test_cases = scanned.cases.iter().any(|c| c.test);
                let test_checks = scanned.rule_sets.iter().any(|r| r.test_checks > 0);
                if !include_test || from.is_none() && to.is_none() {
                    assert_eq!((test_cases, test_checks), (include_test, include_test));
                }
                assert!(scanned.cases.iter().all(|c| !c.test || c.outcome.is_none()));
                if from.is_none() && to.is_none() {
                    assert!(scanned.unreadable_checks > 0);
                }
                assert_eq!(
                    projected(&scanned),
                    projected(&parsed),
                    "{:?}",
                    options.period
                );
            }
        }
    }
}
