//! What-if replay: every stored profile evaluated again with the current and with a
//! candidate rule set, storing nothing. Reports per rule how many checks flag under each
//! (gained, lost) and the flagged-versus-not outcome shares under each, side by side
//! ([`super::side_by_side`]), and the audit as it would read under the candidate rules.
//!
//! Rows stream from [`History::for_each_check_batch`] in batches, in storage order;
//! each batch is parsed once and evaluated by both rule sets as tasks of the `rayon`
//! pool the replay runs on (the pool of long work; a [`RuleSet`] is `Sync`), while the
//! calling thread reads the next batch. The candidate set runs only its
//! rules that differ from the current set's ([`RuleSet::unchanged_from`]); an unchanged
//! rule's outcome is the current one. Only the small records the audits need are kept;
//! they are put in case order once, for both audits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use rayon::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::data::{self, Histories};
use super::report::{
    AuditReport, Comparison, CsvError, CsvRow, SexGroup, comparison_rows, write_csv,
};
use super::side_by_side::{OutcomeComparisons, PairCounts, flagged_vs_not};
use super::{AuditInput, CheckRecord, Options, OutcomeRecord, RuleInfo, Status};
use crate::contract::RuleSetRef;
use crate::engine::{Evaluation, RuleOutcome};
use crate::long_work::Deadline;
use crate::outcome::Outcome;
use crate::profile::Profile;
use crate::ruleset::RuleSet;
use crate::store::StoreError;
use crate::store::history::{CheckRow, History};

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
    /// The candidate's title, or the current set's for a rule the candidate removes.
    pub title: String,
    /// The current set's title when it differs from the candidate's (a parameter in the
    /// title, such as a number of days, that the candidate changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_current: Option<String>,
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
    /// What the candidate's own tests gave, in a sentence, when they were run (the
    /// command line's replay runs them; a report of a candidate that fails them says so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_tests: Option<String>,
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
    /// Checks counted: those made in the period.
    in_period: usize,
}

impl Union {
    /// The rules of both sets, candidate's first, titled as on `titled_on`.
    fn of(current: &RuleSet, candidate: &RuleSet, titled_on: crate::profile::Date) -> Self {
        let position =
            |set: &RuleSet, id: &str| set.rules.iter().position(|r| r.meta.id.as_str() == id);
        let mut union = Self {
            rules: Vec::new(),
            current: Vec::new(),
            candidate: Vec::new(),
            in_period: 0,
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
            let title = rule.meta.title_on(titled_on).into_owned();
            let title_current = in_current
                .map(|i| current.rules[i].meta.title_on(titled_on).into_owned())
                .filter(|current| *current != title);
            union.rules.push(RuleChange {
                rule_id: id.to_owned(),
                title,
                title_current,
                in_current: in_current.is_some(),
                in_candidate: in_candidate.is_some(),
                ..RuleChange::default()
            });
            union.current.push(in_current);
            union.candidate.push(in_candidate);
        }
        union
    }

    /// Adds one check made in the period, by each rule's status under either set.
    fn count(&mut self, current: &[Status], candidate: &[Status]) {
        self.in_period += 1;
        let status = |statuses: &[Status], index: Option<usize>| {
            index
                .and_then(|i| statuses.get(i))
                .copied()
                .unwrap_or(Status::Clear)
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

/// One stored check under both rule sets, or why it has none.
enum Evaluated {
    Both(CheckRecord, CheckRecord),
    /// The stored profile cannot be read (counted, not evaluated).
    Unreadable,
    /// Evaluated, but finished after the deadline, which stops scripts mid-way: not
    /// counted (the candidate's record only tells which rules failed).
    Cut(CheckRecord),
    /// The deadline had passed before its turn.
    Skipped,
}

/// Batches read ahead and not yet evaluated: what a replay holds in memory beyond the
/// small records it keeps.
const BATCHES_IN_FLIGHT: usize = 2;

/// What the evaluated batches have added up to so far.
struct Tally {
    union: Union,
    replayed: Vec<Replayed>,
    unreadable: usize,
    /// Whether each candidate rule failed on a check evaluated so far.
    failed: Vec<bool>,
    /// The deadline passed: some check was skipped, or cut short.
    stopped: bool,
}

impl Tally {
    /// Adds one evaluated batch (`records` in the order of `batch`).
    fn add(
        &mut self,
        batch: Vec<CheckRow<OutcomeRecord>>,
        records: Vec<Evaluated>,
        options: &Options,
    ) {
        for (row, record) in batch.into_iter().zip(records) {
            let (before, after) = match record {
                Evaluated::Both(before, after) => (before, after),
                Evaluated::Unreadable => {
                    self.unreadable += 1;
                    continue;
                }
                Evaluated::Cut(after) => {
                    self.note_failures(&after);
                    self.stopped = true;
                    continue;
                }
                Evaluated::Skipped => {
                    self.stopped = true;
                    continue;
                }
            };
            self.note_failures(&after);
            if options.period.contains(after.checked_on) {
                self.union.count(&before.statuses, &after.statuses);
            }
            self.replayed.push(Replayed {
                case: row.case,
                id: row.id,
                outcome: row.outcome,
                current: before,
                candidate: after,
            });
        }
    }

    fn note_failures(&mut self, candidate: &CheckRecord) {
        for (failed, status) in self.failed.iter_mut().zip(&candidate.statuses) {
            *failed |= *status == Status::Failed;
        }
    }
}

/// A panic while adding up carries on at the end of the scope; the tally is not read
/// after one.
fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many batches are being evaluated; the reader waits for fewer than a bound,
/// evaluating pending batches itself meanwhile when the pool has them queued.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    changed: Condvar,
    /// A batch's task panicked: the reader stops, and the scope carries the panic on.
    panicked: AtomicBool,
}

/// One batch being evaluated: counted in [`InFlight`] until dropped, also when its task
/// panics.
struct Started<'a>(&'a InFlight);

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.panicked.store(true, Ordering::Relaxed);
        }
        *self.0.count.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.0.changed.notify_all();
    }
}

impl InFlight {
    fn start(&self) -> Started<'_> {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Started(self)
    }

    fn panicked(&self) -> bool {
        self.panicked.load(Ordering::Relaxed)
    }

    fn wait_below(&self, bound: usize) {
        loop {
            // A queued batch this thread can evaluate itself (always so in a pool of
            // one thread, where nothing else would).
            while rayon::yield_local() == Some(rayon::Yield::Executed) {}
            let count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
            if *count < bound {
                return;
            }
            // Another thread has the batches; wake when one is done (or soon, to help
            // with one queued meanwhile).
            let _ = self
                .changed
                .wait_timeout(count, std::time::Duration::from_millis(5));
        }
    }
}

/// One stored check evaluated under both rule sets.
struct Replayed {
    case: String,
    id: i64,
    outcome: Option<OutcomeRecord>,
    current: CheckRecord,
    candidate: CheckRecord,
}

/// Why a replay gave no report.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deadline passed before every check was evaluated; nothing was reported.
    #[error("omkörningen avbröts: den tog för lång tid")]
    OutOfTime(OutOfTime),
}

/// How far a replay stopped at its deadline got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutOfTime {
    /// Checks evaluated under both sets before it stopped.
    pub checks_evaluated: usize,
    /// Ids of the candidate's new or changed rules that failed on a check evaluated so
    /// far (an endless loop ends in a failure), in manifest order.
    pub failing_rules: Vec<String>,
    /// Ids of its rules unchanged from the current set that failed: they fail in the
    /// current set too.
    pub failing_unchanged: Vec<String>,
}

/// Replays the stored checks of `options.period`. `progress` is told how many checks
/// each finished batch held. Past `deadline`, once a check has been evaluated, it stops
/// evaluating and gives [`ReplayError::OutOfTime`].
pub fn replay(
    history: History<'_>,
    current: &RuleSet,
    candidate: &RuleSet,
    options: &Options,
    deadline: Deadline,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ReplayReport, ReplayError> {
    let unchanged = candidate.unchanged_from(current);
    // The deadline stops a replay only once some check has been evaluated, so that what
    // it reports names the rules that failed even when reading took all the time.
    let evaluated_one = AtomicBool::new(false);
    let evaluate = |row: &CheckRow<OutcomeRecord>| {
        if deadline.passed() && evaluated_one.load(Ordering::Relaxed) {
            return Evaluated::Skipped;
        }
        // The scripts stop at the deadline too: no one check outlasts it by more than a
        // few hundred operations a rule.
        let _stop = deadline.at().map(crate::engine::stop_evaluations_at);
        let Ok(profile) = Profile::from_stored_json(&row.profile_json) else {
            return Evaluated::Unreadable;
        };
        let profile = Arc::new(profile);
        let statuses =
            |evaluation: &Evaluation| evaluation.outcomes.iter().map(Status::from).collect();
        let before = current.evaluate(&profile);
        let before_statuses = statuses(&before);
        let after = candidate.evaluate_after(&profile, before, &unchanged);
        if !evaluated_one.load(Ordering::Relaxed) {
            evaluated_one.store(true, Ordering::Relaxed);
        }
        let after = CheckRecord::new(&profile, statuses(&after));
        // Finished after the deadline: its scripts may have been stopped mid-way.
        if deadline.passed() {
            return Evaluated::Cut(after);
        }
        Evaluated::Both(CheckRecord::new(&profile, before_statuses), after)
    };
    let tally = Mutex::new(Tally {
        union: Union::of(current, candidate, options.period.titled_on()),
        replayed: Vec::new(),
        unreadable: 0,
        failed: vec![false; candidate.rules.len()],
        stopped: false,
    });
    let in_flight = InFlight::default();
    // This thread reads from SQLite (its connection stays here); each batch read is
    // parsed and evaluated as a task of the pool this runs on (the pool of long work),
    // so the other threads of the pool evaluate while this one reads the next batch.
    // A pool of one thread reads and evaluates in turn.
    let without_checks = rayon::in_place_scope(|scope| {
        history.for_each_check_batch(
            data::range(&options.period),
            false,
            OutcomeRecord::of,
            |batch| {
                in_flight.wait_below(BATCHES_IN_FLIGHT);
                // A task that panicked carries its panic on at the end of the scope.
                if lock(&tally).stopped || in_flight.panicked() {
                    return Err(StoreError::ReadStopped);
                }
                let started = in_flight.start();
                let (tally, evaluate) = (&tally, &evaluate);
                scope.spawn(move |_| {
                    let records: Vec<Evaluated> = batch.par_iter().map(evaluate).collect();
                    let checks = batch.len() as u64;
                    lock(tally).add(batch, records, options);
                    drop(started);
                    progress(checks);
                });
                Ok(())
            },
        )
    });
    let Tally {
        union,
        replayed,
        unreadable,
        failed,
        stopped,
    } = tally.into_inner().unwrap_or_else(PoisonError::into_inner);
    if stopped {
        let failing = |unchanged_ones: bool| {
            candidate
                .rules
                .iter()
                .zip(&failed)
                .enumerate()
                .filter(|(index, (_, failed))| {
                    **failed && unchanged.is_unchanged(*index) == unchanged_ones
                })
                .map(|(_, (rule, _))| rule.meta.id.to_string())
                .collect()
        };
        return Err(ReplayError::OutOfTime(OutOfTime {
            checks_evaluated: replayed.len(),
            failing_rules: failing(false),
            failing_unchanged: failing(true),
        }));
    }
    let without_checks = without_checks?;
    let evaluated = replayed.len();
    let in_period = union.in_period;
    let (current_input, input) = histories(
        history,
        (current, candidate),
        options.period.titled_on(),
        replayed,
        unreadable,
        &without_checks,
    )?;
    // Only the candidate's audit is shown; of the current rules' audit the report
    // reads each rule's comparison of outcomes, which needs no model fitted.
    let (current_audit, mut audit) = rayon::join(
        || OutcomeComparisons::of(&current_input, options),
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
        rule.outcomes_current = current_audit.flagged_vs_not(&rule.rule_id);
        rule.outcomes_candidate = flagged_vs_not(&audit, &rule.rule_id);
    }
    Ok(ReplayReport {
        current: RuleSetRef::of(current),
        candidate: RuleSetRef::of(candidate),
        checks_evaluated: evaluated,
        checks_in_period: in_period,
        rules,
        audit,
        candidate_tests: None,
    })
}

/// The audit inputs under the current and the candidate rules: the checks put in case
/// order (by case, `checked_on` and id) once for both.
fn histories(
    history: History<'_>,
    (current, candidate): (&RuleSet, &RuleSet),
    titled_on: crate::profile::Date,
    mut replayed: Vec<Replayed>,
    unreadable: usize,
    without_checks: &[Outcome],
) -> Result<(AuditInput, AuditInput), StoreError> {
    // The order is total (ids are unique), so sorting on all cores gives the one order.
    replayed.par_sort_unstable_by(|a, b| {
        (a.case.as_str(), a.candidate.checked_on, a.id).cmp(&(
            b.case.as_str(),
            b.candidate.checked_on,
            b.id,
        ))
    });
    let mut before = Histories::default();
    let mut after = Histories::default();
    for check in replayed {
        before.push(
            &check.case,
            &current.content_hash,
            check.outcome,
            check.current,
        );
        after.push(
            &check.case,
            &candidate.content_hash,
            check.outcome,
            check.candidate,
        );
    }
    for _ in 0..unreadable {
        before.skip_unreadable();
        after.skip_unreadable();
    }
    Ok((
        before.finish_with(history, RuleInfo::of(current, titled_on), without_checks)?,
        after.finish_with(history, RuleInfo::of(candidate, titled_on), without_checks)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads "batches" as the replay does, each task panicking: the reader must stop
    /// and the panic come out of the scope, never a reader waiting for ever.
    fn read_with_panicking_tasks() -> std::thread::Result<usize> {
        let in_flight = InFlight::default();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut spawned = 0;
            rayon::in_place_scope(|scope| {
                for _ in 0..10 {
                    in_flight.wait_below(BATCHES_IN_FLIGHT);
                    if in_flight.panicked() {
                        return;
                    }
                    let started = in_flight.start();
                    spawned += 1;
                    scope.spawn(move |_| {
                        let _started = started;
                        panic!("a bug while evaluating");
                    });
                }
            });
            spawned
        }))
    }

    #[test]
    fn a_batch_that_panics_stops_the_reader_and_the_panic_carries_on() {
        let (answer, answered) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = answer.send(read_with_panicking_tasks().is_err());
        });
        let panicked = answered
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the reader stopped instead of waiting for ever");
        assert!(panicked, "the task's panic carries on out of the scope");
    }
}
