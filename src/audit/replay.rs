//! What-if replay: every stored profile evaluated again with the current and with a
//! candidate rule set, storing nothing. Reports per rule how many checks flag under each
//! (gained, lost) and the flagged-versus-not outcome shares under each, side by side
//! ([`super::side_by_side`]), and the audit as it would read under the candidate rules.
//!
//! Rows stream from [`super::data`] in batches, in storage order; each batch is parsed
//! once and evaluated by both rule sets on all cores (`rayon`; a [`RuleSet`] is `Sync`),
//! while the next batch is read; the small records kept for the audit are put in case
//! order at the end.

use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::data::{Collected, StoredCheck, StoredResults, for_each_batch_by_id};
use super::report::{
    AuditReport, Comparison, CsvError, CsvRow, SexGroup, comparison_rows, write_csv,
};
use super::side_by_side::{PairCounts, flagged_vs_not};
use super::{CheckRecord, Options, RuleInfo, Status};
use crate::contract::RuleSetRef;
use crate::engine::{Evaluation, RuleOutcome};
use crate::profile::Profile;
use crate::ruleset::RuleSet;
use crate::store::StoreError;
use crate::store::history::History;

impl From<&RuleOutcome> for Status {
    fn from(outcome: &RuleOutcome) -> Self {
        match outcome {
            RuleOutcome::Flagged { .. } => Status::Flagged,
            RuleOutcome::Failed(_) => Status::Failed,
            RuleOutcome::Clear | RuleOutcome::NotApplicable(_) => Status::Clear,
        }
    }
}

/// How one rule's flags change from the current to the candidate rules, over the checks
/// made in the period.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct RuleChange {
    pub rule_id: String,
    pub title: String,
    pub in_current: bool,
    pub in_candidate: bool,
    pub flagged_current: usize,
    pub flagged_candidate: usize,
    /// Checks flagged by the candidate rules and not by the current ones.
    pub gained: usize,
    /// Checks flagged by the current rules and not by the candidate ones.
    pub lost: usize,
    pub errors_current: usize,
    pub errors_candidate: usize,
    /// Outcomes of the cases the current rules flagged (`a`) and did not flag (`b`) at
    /// the last check before GK, all cases; `null` when the rule is not in the current
    /// set or the period has too few cases.
    pub outcomes_current: Option<Comparison>,
    /// The same under the candidate rules.
    pub outcomes_candidate: Option<Comparison>,
}

impl RuleChange {
    fn add(&mut self, counts: PairCounts) {
        self.flagged_current += counts.flagged_a;
        self.flagged_candidate += counts.flagged_b;
        self.gained += counts.gained;
        self.lost += counts.lost;
        self.errors_current += counts.errors_a;
        self.errors_candidate += counts.errors_b;
    }
}

/// The result of a replay.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReplayReport {
    pub current: RuleSetRef,
    pub candidate: RuleSetRef,
    /// Stored checks read and evaluated (the period's checks and its cases' checks).
    pub checks_evaluated: usize,
    /// Checks made in the period: what `rules` counts.
    pub checks_in_period: usize,
    /// Candidate rules in manifest order, then rules only in the current set.
    pub rules: Vec<RuleChange>,
    /// The audit with the candidate rules' flags.
    pub audit: AuditReport,
}

impl ReplayReport {
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self).map(|text| text + "\n")
    }

    /// The rule changes (section `replay`), each rule's outcome comparison under the
    /// current and the candidate rules (sections `replay_current`, `replay_candidate`),
    /// then the candidate audit's rows.
    pub fn to_csv(&self) -> Result<String, CsvError> {
        let mut rows = Vec::new();
        for rule in &self.rules {
            rows.push(
                CsvRow::new("replay")
                    .set("rule_id", &rule.rule_id)
                    .set("current", rule.flagged_current)
                    .set("candidate", rule.flagged_candidate)
                    .set("gained", rule.gained)
                    .set("lost", rule.lost),
            );
        }
        for rule in &self.rules {
            for (section, comparison) in [
                ("replay_current", &rule.outcomes_current),
                ("replay_candidate", &rule.outcomes_candidate),
            ] {
                if let Some(comparison) = comparison {
                    rows.extend(comparison_rows(
                        section,
                        &rule.rule_id,
                        SexGroup::All,
                        comparison,
                    ));
                }
            }
        }
        rows.extend(self.audit.csv_rows());
        write_csv(rows)
    }
}

/// For each rule of the union, its position in the current and in the candidate set.
struct Union {
    rules: Vec<RuleChange>,
    current: Vec<Option<usize>>,
    candidate: Vec<Option<usize>>,
}

impl Union {
    fn of(current: &RuleSet, candidate: &RuleSet) -> Self {
        let position =
            |set: &RuleSet, id: &str| set.rules.iter().position(|r| r.meta.id.as_str() == id);
        let mut union = Self {
            rules: Vec::new(),
            current: Vec::new(),
            candidate: Vec::new(),
        };
        let ordered = candidate.rules.iter().chain(
            current
                .rules
                .iter()
                .filter(|r| position(candidate, r.meta.id.as_str()).is_none()),
        );
        for rule in ordered {
            let id = rule.meta.id.as_str();
            let in_current = position(current, id);
            let in_candidate = position(candidate, id);
            union.rules.push(RuleChange {
                rule_id: id.to_owned(),
                title: rule.meta.title.clone(),
                in_current: in_current.is_some(),
                in_candidate: in_candidate.is_some(),
                ..RuleChange::default()
            });
            union.current.push(in_current);
            union.candidate.push(in_candidate);
        }
        union
    }

    /// Adds one check's evaluations to the counts.
    fn count(&mut self, current: &Evaluation, candidate: &Evaluation) {
        let status = |evaluation: &Evaluation, index: Option<usize>| {
            index
                .and_then(|i| evaluation.outcomes.get(i))
                .map_or(Status::Clear, Status::from)
        };
        for (k, change) in self.rules.iter_mut().enumerate() {
            let mut counts = PairCounts::default();
            counts.add(
                status(current, self.current[k]),
                status(candidate, self.candidate[k]),
            );
            change.add(counts);
        }
    }
}

/// Replays the stored checks of `options.period`. `progress` is told how many checks
/// each finished batch held.
pub fn replay(
    history: History<'_>,
    current: &RuleSet,
    candidate: &RuleSet,
    options: &Options,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ReplayReport, StoreError> {
    // Reading from SQLite (this thread) overlaps with parsing and evaluating the
    // previous batch (a second thread, fanning out to all cores).
    let (batches, received) = std::sync::mpsc::sync_channel::<Vec<(i64, StoredCheck)>>(2);
    type Evaluated = (Evaluation, Evaluation, CheckRecord, CheckRecord);
    let (union, histories, evaluated, in_period) = std::thread::scope(|scope| {
        let evaluator = scope.spawn(|| {
            let mut union = Union::of(current, candidate);
            // The current rules' and the candidate's checks, for their two audits.
            let mut collected = (Collected::default(), Collected::default());
            let (mut evaluated, mut in_period) = (0, 0);
            for batch in received {
                let results: Vec<Option<Evaluated>> = batch
                    .par_iter()
                    .map(|(_, row)| {
                        let profile = Arc::new(Profile::from_stored_json(&row.profile_json).ok()?);
                        let before = current.evaluate(&profile);
                        let after = candidate.evaluate(&profile);
                        let statuses =
                            |e: &Evaluation| e.outcomes.iter().map(Status::from).collect();
                        let record_before = CheckRecord::new(&profile, statuses(&before));
                        let record_after = CheckRecord::new(&profile, statuses(&after));
                        Some((before, after, record_before, record_after))
                    })
                    .collect();
                let checks = batch.len() as u64;
                for ((id, row), result) in batch.into_iter().zip(results) {
                    let Some((before, after, record_before, record_after)) = result else {
                        collected.0.skip_unreadable();
                        collected.1.skip_unreadable();
                        continue;
                    };
                    evaluated += 1;
                    if options.period.contains(record_after.checked_on) {
                        in_period += 1;
                        union.count(&before, &after);
                    }
                    collected.0.push(
                        row.case.clone(),
                        id,
                        &current.content_hash,
                        row.outcome,
                        record_before,
                    );
                    collected.1.push(
                        row.case,
                        id,
                        &candidate.content_hash,
                        row.outcome,
                        record_after,
                    );
                }
                progress(checks);
            }
            let histories = (collected.0.into_histories(), collected.1.into_histories());
            (union, histories, evaluated, in_period)
        });
        let read = for_each_batch_by_id(history, &options.period, StoredResults::Skip, |batch| {
            // A closed channel means the evaluator stopped; its join below says why.
            let _ = batches.send(batch);
            Ok(())
        });
        drop(batches);
        // A panic while evaluating carries on as the read's panic: the store reports
        // a read that was aborted.
        let evaluated = evaluator
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        read.map(|()| evaluated)
    })?;
    let (current_histories, candidate_histories) = histories;
    let current_input =
        current_histories.finish(history, RuleInfo::of(current), &options.period)?;
    let input = candidate_histories.finish(history, RuleInfo::of(candidate), &options.period)?;
    let (current_audit, mut audit) = rayon::join(
        || super::audit(&current_input, options),
        || super::audit(&input, options),
    );
    // The candidate set was never stored: name it from the set itself.
    audit.rule_sets = vec![super::report::RuleSetJson {
        name: candidate.name.clone(),
        version: candidate.version.clone(),
        content_hash: candidate.content_hash.clone(),
        checks: Some(evaluated),
    }];
    let mut rules = union.rules;
    for rule in &mut rules {
        rule.outcomes_current = flagged_vs_not(&current_audit, &rule.rule_id);
        rule.outcomes_candidate = flagged_vs_not(&audit, &rule.rule_id);
    }
    Ok(ReplayReport {
        current: RuleSetRef::of(current),
        candidate: RuleSetRef::of(candidate),
        checks_evaluated: evaluated,
        checks_in_period: in_period,
        rules,
        audit,
    })
}
