//! The audit's only I/O: reads stored checks (profile, flags, rule errors) and outcomes
//! from SQLite in one streaming query, in batches, oldest check of each case first.
//!
//! A period selects the rows the audit needs: every check of a case whose outcome ended
//! in the period (for its unit) and every check made in the period (for alert burden).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use rusqlite::{Connection, params};

use super::report::AuditReport;
use super::{
    AuditInput, CaseHistory, CheckRecord, Options, OutcomeRecord, Period, RuleInfo, RuleSetUse,
    Status,
};
use crate::outcome::{EndReason, Outcome, OutcomeKind};
use crate::profile::{CaseId, Date, Profile};
use crate::store::StoreError;

/// Rows handed over at a time: bounds memory and lets the caller work in parallel.
pub const BATCH: usize = 4096;

/// One stored check as read, before its profile is parsed.
pub struct StoredCheck {
    pub case: String,
    pub rule_set_hash: String,
    pub profile_json: String,
    /// Ids of the rules that flagged, as stored.
    pub flagged: Vec<String>,
    /// Ids of the rules that failed, as stored.
    pub failed: Vec<String>,
    pub outcome: Option<OutcomeRecord>,
}

const FILTER: &str = "(o.ended_on BETWEEN ?1 AND ?2) OR (e.checked_on BETWEEN ?1 AND ?2)";

fn bounds(period: &Period) -> (String, String) {
    (
        period
            .from
            .map_or_else(|| "0000-01-01".to_owned(), |d| d.to_string()),
        period
            .to
            .map_or_else(|| "9999-12-31".to_owned(), |d| d.to_string()),
    )
}

/// How many stored checks a run over `period` reads (for a progress bar).
pub fn count_checks(conn: &Connection, period: &Period) -> Result<u64, StoreError> {
    let (from, to) = bounds(period);
    let sql = format!(
        "SELECT count(*) FROM evaluations e LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym WHERE {FILTER}"
    );
    let count: i64 = conn.query_row(&sql, params![from, to], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Whether [`for_each_batch`] reads the flags and rule errors stored with each check.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StoredResults {
    Read,
    /// Leave [`StoredCheck::flagged`] and [`StoredCheck::failed`] empty (a replay
    /// evaluates the profiles again).
    Skip,
}

/// Streams the checks of `period`, ordered by case, `checked_on` and storage order, to
/// `on_batch` in batches of up to [`BATCH`]. A case's checks may span two batches.
pub fn for_each_batch(
    conn: &Connection,
    period: &Period,
    stored_results: StoredResults,
    mut on_batch: impl FnMut(Vec<StoredCheck>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let (from, to) = bounds(period);
    // The stored flags and errors cost two lookups per check, a third of the read.
    let results = match stored_results {
        StoredResults::Read => {
            "(SELECT group_concat(f.rule_id, ' ') FROM flags f WHERE f.evaluation_id = e.id),
             (SELECT group_concat(r.rule_id, ' ') FROM rule_errors r WHERE r.evaluation_id = e.id)"
        }
        StoredResults::Skip => "NULL, NULL",
    };
    let sql = format!(
        "SELECT e.case_pseudonym, e.rule_set_hash, e.profile_json, {results},
                o.ended_on, o.outcome, o.reasons_json
         FROM evaluations e LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym
         WHERE {FILTER}
         ORDER BY e.case_pseudonym, e.checked_on, e.id"
    );
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query(params![from, to])?;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(row) = rows.next()? {
        let case: String = row.get(0)?;
        let ids = |text: Option<String>| -> Vec<String> {
            text.map(|t| t.split(' ').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let ended_on: Option<String> = row.get(5)?;
        let outcome = match ended_on {
            Some(ended_on) => Some(stored_outcome(
                &case,
                &ended_on,
                &row.get::<_, String>(6)?,
                &row.get::<_, String>(7)?,
            )?),
            None => None,
        };
        batch.push(StoredCheck {
            rule_set_hash: row.get(1)?,
            profile_json: row.get(2)?,
            flagged: ids(row.get(3)?),
            failed: ids(row.get(4)?),
            outcome,
            case,
        });
        if batch.len() == BATCH {
            on_batch(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
        }
    }
    if !batch.is_empty() {
        on_batch(batch)?;
    }
    Ok(())
}

/// An outcome row back as the derived outcomes of docs/profile.md, through [`Outcome`] so
/// the derivations are the same as everywhere else.
fn stored_outcome(
    case: &str,
    ended_on: &str,
    outcome: &str,
    reasons_json: &str,
) -> Result<OutcomeRecord, StoreError> {
    let invalid = || StoreError::Internal("ett sparat utfall går inte att läsa".to_owned());
    let reasons: Vec<String> = serde_json::from_str(reasons_json).map_err(|_| invalid())?;
    let outcome = Outcome {
        case_id: CaseId::parse(case).map_err(|_| invalid())?,
        ended_on: Date::parse(ended_on).map_err(|_| invalid())?,
        outcome: OutcomeKind::from_name(outcome).ok_or_else(invalid)?,
        reasons: reasons
            .iter()
            .map(|r| EndReason::from_name(r).ok_or_else(invalid))
            .collect::<Result<_, _>>()?,
    };
    Ok(OutcomeRecord::of(&outcome))
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
        mut self,
        conn: &Connection,
        rules: Vec<RuleInfo>,
        period: &Period,
    ) -> Result<AuditInput, StoreError> {
        let (from, to) = bounds(period);
        let mut orphans = conn.prepare_cached(
            "SELECT o.case_pseudonym, o.ended_on, o.outcome, o.reasons_json FROM outcomes o
             WHERE o.ended_on BETWEEN ?1 AND ?2
               AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.case_pseudonym = o.case_pseudonym)",
        )?;
        let mut rows = orphans.query(params![from, to])?;
        while let Some(row) = rows.next()? {
            let case: String = row.get(0)?;
            let outcome = stored_outcome(
                &case,
                &row.get::<_, String>(1)?,
                &row.get::<_, String>(2)?,
                &row.get::<_, String>(3)?,
            )?;
            self.cases.push(CaseHistory {
                outcome: Some(outcome),
                checks: Vec::new(),
            });
        }
        drop(rows);
        let mut statement =
            conn.prepare_cached("SELECT name, version FROM rule_sets WHERE content_hash = ?1")?;
        let mut rule_sets = Vec::with_capacity(self.rule_sets.len());
        for (hash, checks) in self.rule_sets {
            let (name, version) = statement
                .query_row([&hash], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap_or_else(|_| (String::new(), String::new()));
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
    conn: &Connection,
    active: Vec<RuleInfo>,
) -> Result<Vec<RuleInfo>, StoreError> {
    let mut statement =
        conn.prepare("SELECT rule_id FROM flags UNION SELECT rule_id FROM rule_errors ORDER BY 1")?;
    let stored: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
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
    conn: &Connection,
    active: Vec<RuleInfo>,
    options: &Options,
) -> Result<AuditReport, StoreError> {
    let rules = rules_to_report(conn, active)?;
    let index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut histories = Histories::default();
    for_each_batch(conn, &options.period, StoredResults::Read, |batch| {
        let records: Vec<Option<CheckRecord>> = batch
            .par_iter()
            .map(|row| {
                let profile = Profile::from_json(&row.profile_json).ok()?;
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
        for (row, record) in batch.iter().zip(records) {
            match record {
                Some(record) => histories.push(&row.case, &row.rule_set_hash, row.outcome, record),
                None => histories.skip_unreadable(),
            }
        }
        Ok(())
    })?;
    let input = histories.finish(conn, rules, &options.period)?;
    Ok(super::audit(&input, options))
}
