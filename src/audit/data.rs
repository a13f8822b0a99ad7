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
use crate::profile::{Date, Profile};
use crate::store::StoreError;
use crate::store::history::{History, Range};

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
#[derive(Default)]
pub struct Collected {
    rule_sets: Vec<String>,
    checks: Vec<CollectedCheck>,
    unreadable: usize,
}

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
    /// Checks read per rule-set hash.
    rule_sets: BTreeMap<String, usize>,
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
        *self.rule_sets.entry(rule_set_hash.to_owned()).or_default() += 1;
        match self.cases.last_mut() {
            Some(history) if self.current.as_deref() == Some(case) => history.checks.push(check),
            _ => {
                self.current = Some(case.to_owned());
                self.cases.push(CaseHistory {
                    outcome,
                    checks: vec![check],
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
            });
        }
        let mut rule_sets = Vec::with_capacity(self.rule_sets.len());
        for (hash, checks) in self.rule_sets {
            let (name, version) = history.rule_set_name(&hash)?;
            rule_sets.push(RuleSetUse {
                name,
                version,
                content_hash: hash,
                checks,
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
    stored_audit_knowing(history, active, options).map(|(report, _)| report)
}

/// The `gk.first_meeting_on` of each check whose profile an audit read, by check id,
/// so the audit of answers need not read those profiles again.
#[derive(Default)]
pub struct FirstMeetings(Vec<(i64, Option<Date>)>);

impl FirstMeetings {
    /// What the profile of check `id` gives (`Some(None)`: no date), if it was read.
    pub fn of(&self, id: i64) -> Option<Option<Date>> {
        self.0
            .binary_search_by_key(&id, |&(i, _)| i)
            .ok()
            .map(|i| self.0[i].1)
    }
}

/// [`stored_audit`], with the first meetings of the checks it read.
pub fn stored_audit_knowing(
    history: History<'_>,
    active: Vec<RuleInfo>,
    options: &Options,
) -> Result<(AuditReport, FirstMeetings), StoreError> {
    let rules = rules_to_report(history, active)?;
    let index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut collected = Collected::default();
    let mut first_meetings = Vec::new();
    // Outcomes read once, not joined to every check; the cases without checks come
    // from the same read.
    let without_checks =
        history.for_each_check_batch(range(&options.period), true, OutcomeRecord::of, |batch| {
            let records: Vec<Option<CheckRecord>> = batch
                .par_iter()
                .map(|row| {
                    let profile = Profile::from_stored_json(&row.profile_json).ok()?;
                    let mut statuses = vec![Status::Clear; rules.len()];
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
                        first_meetings.push((row.id, record.first_meeting_on));
                        collected.push(row.case, row.id, &row.rule_set_hash, row.outcome, record);
                    }
                    None => collected.skip_unreadable(),
                }
            }
            Ok(())
        })?;
    let histories = collected.into_histories();
    let input = histories.finish_with(history, rules, &without_checks)?;
    let mut report = super::audit(&input, options);
    report.excluded_test_checks = history.count_excluded_test_checks(range(&options.period))?;
    report.notes.extend(test_checks_note(&report));
    // Read in storage order, so already sorted by id.
    first_meetings.sort_unstable_by_key(|&(id, _)| id);
    Ok((report, FirstMeetings(first_meetings)))
}

/// What the report says about test checks: how many it left out, or that it includes
/// them. Test checks are not about real people, so their number is never suppressed.
fn test_checks_note(report: &AuditReport) -> Option<String> {
    if report.include_test {
        return Some(
            "Testkontroller (gjorda med en token för test) ingår i uppföljningen.".to_owned(),
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
