//! Trying a candidate rule set without risk: policy staff upload a `.zip` or `.tar.gz`
//! of a rules directory; it is unpacked into a private temporary directory (removed
//! before the answer), loaded and checked like the live set, its own tests run, and the
//! stored history replayed under the live and the candidate set side by side. Nothing
//! goes live, and nothing is stored but the trial's record: an access-log entry with the
//! candidate's rule files (`candidate_trials`), since its scripts ask questions of
//! people's stored checks and the replay answers them with counts.

use std::time::Duration;

use super::{App, AppError, access, off_workers, require};
use crate::audit::replay::{ReplayError, ReplayReport};
use crate::audit::{self, Options};
use crate::auth::{Principal, Role};
use crate::candidate_archive;
use crate::contract::RuleSetRef;
use crate::long_work::Deadline;
use crate::rule_tests::TestSuite;
use crate::ruleset::RuleSet;

/// Roles that may try a candidate rule set: those who may reload the rules.
pub const CANDIDATE_ROLES: &[Role] = &[Role::Policy];

/// The most bytes a candidate's manifest and scripts may take as stored with each trial
/// (`candidate_trials`, JSON: a control character takes six bytes there). The shipped
/// rule set takes about 23 KB.
pub const MAX_CANDIDATE_SOURCE_BYTES: usize = 1 << 20;

/// One failing test of the candidate.
#[derive(Clone, Debug)]
pub struct FailedTest {
    /// `tests/FILE.yaml:LINE`, within the candidate's directory.
    pub at: String,
    pub rule: String,
    pub name: String,
    pub expected: String,
    pub actual: String,
}

/// What the candidate's own tests gave.
#[derive(Clone, Debug, Default)]
pub struct TestSummary {
    pub total: usize,
    pub passed: usize,
    pub failed: Vec<FailedTest>,
    /// The tests could not be read: every problem as `file:line:col: message`.
    pub problems: Vec<String>,
    /// Rules that no test covers (what `gk-regler lint` notes).
    pub untested: Vec<String>,
}

/// What trying a candidate showed.
#[derive(Clone, Debug)]
pub enum CandidateOutcome {
    /// The archive was refused (a Swedish sentence naming the entry).
    Refused(String),
    /// The person has tried as many candidates as an hour allows
    /// (`candidate_trials_per_hour`); nothing was read.
    OverBudget { retry_after_seconds: u64 },
    /// The candidate could not be loaded: every problem, its file named within the
    /// candidate (with a script's line of code when there is one).
    Problems(Vec<crate::ruleset::Problem>),
    /// Its tests, or its replay, ran past the time limit and were stopped; nothing of
    /// the replay is shown.
    OutOfTime {
        stage: Stage,
        limit: Duration,
        /// Ids of the candidate's new or changed rules that failed on a stored check
        /// before the replay stopped (an endless loop ends in a failure); empty when the
        /// tests stopped.
        failing_rules: Vec<String>,
        /// Ids of its rules unchanged from the live set that failed (they fail live too).
        failing_unchanged: Vec<String>,
    },
    /// Loaded: its tests and the replay beside the live set.
    Tried {
        candidate: RuleSetRef,
        tests: TestSummary,
        replay: Box<ReplayReport>,
    },
}

/// What was running when a candidate ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Tests,
    Replay,
}

/// Unpacks, loads and tests the candidate in `archive`, the tests stopped `limit` after
/// it began; the temporary directory is gone when this returns. With its files as the
/// trial's record stores them ([`crate::store::sources_json`]), measured against
/// [`MAX_CANDIDATE_SOURCE_BYTES`] once.
fn load_candidate(
    archive: &[u8],
    limit: Duration,
) -> Result<(RuleSet, TestSummary, String), Box<CandidateOutcome>> {
    // Unpacking and loading count against the tests' time too; they cannot be stopped
    // mid-way, only refused after.
    let deadline = Deadline::after(limit);
    let unpacked = candidate_archive::unpack(archive)
        .map_err(|refused| Box::new(CandidateOutcome::Refused(refused)))?;
    let root = unpacked.root();
    let rules = RuleSet::load(root).map_err(|err| {
        Box::new(CandidateOutcome::Problems(
            err.problems.iter().map(|p| p.within(root)).collect(),
        ))
    })?;
    let sources_json = crate::store::sources_json(&rules);
    let source_bytes = sources_json.len();
    if source_bytes > MAX_CANDIDATE_SOURCE_BYTES {
        return Err(Box::new(CandidateOutcome::Refused(format!(
            "Kandidaten refuserades: manifestet och skripten tar tillsammans mer än 1 MiB när de sparas ({} KiB). Varje provning sparas med regelfilerna.",
            source_bytes.div_ceil(1024)
        ))));
    }
    let tests = match TestSuite::load(root, Some(&rules)) {
        Err(err) => TestSummary {
            problems: err
                .problems
                .iter()
                .map(|p| p.within(root).to_string())
                .collect(),
            ..TestSummary::default()
        },
        Ok(suite) => {
            // A case's scripts stop at the deadline too, so no one case outlasts it.
            let _stop = deadline.at().map(crate::engine::stop_evaluations_at);
            let results: Vec<_> = suite
                .results(&rules)
                .take_while(|_| !deadline.passed())
                .collect();
            // Cases were left, or the last ran into the deadline (its result says nothing).
            if deadline.passed() {
                return Err(Box::new(CandidateOutcome::OutOfTime {
                    stage: Stage::Tests,
                    limit,
                    failing_rules: Vec::new(),
                    failing_unchanged: Vec::new(),
                }));
            }
            let total = results.len();
            let failed: Vec<FailedTest> = results
                .into_iter()
                .filter_map(|result| {
                    let failure = result.failure?;
                    let file = result
                        .file
                        .strip_prefix(root)
                        .unwrap_or(&result.file)
                        .display()
                        .to_string();
                    Some(FailedTest {
                        at: match result.line {
                            Some(line) => format!("{file}:{line}"),
                            None => file,
                        },
                        rule: result.rule,
                        name: result.name,
                        expected: failure.expected,
                        actual: failure.actual,
                    })
                })
                .collect();
            TestSummary {
                total,
                passed: total - failed.len(),
                failed,
                problems: Vec::new(),
                untested: suite.untested_rules.clone(),
            }
        }
    };
    drop(unpacked);
    Ok((rules, tests, sources_json))
}

/// Tries the candidate rule set in `archive` (at most
/// [`candidate_archive::MAX_ARCHIVE_BYTES`]): loaded, tested and replayed over the whole
/// stored history beside the active set, off the async workers. Its tests, and then its
/// replay, each stop after [`App::candidate_time_limit`]: a candidate's scripts are
/// uploaded code, and an endless loop, ended after its operation limit on every check,
/// would otherwise hold a thread of long work for hours. Stores nothing.
pub async fn try_candidate(
    app: &App,
    principal: &Principal,
    archive: Vec<u8>,
) -> Result<CandidateOutcome, AppError> {
    require(principal, CANDIDATE_ROLES)?;
    super::refuse_for_tests(principal, super::history::TEST_TOKENS_READ_NO_HISTORY)?;
    let _slot = app.long_work_slot(principal)?;
    if let Err(retry_after_seconds) = app.candidate_trials.take(&principal.name) {
        tracing::warn!(actor = ?principal.name, "candidate trials over the limit");
        return Ok(CandidateOutcome::OverBudget {
            retry_after_seconds,
        });
    }
    let limit = app.candidate_time_limit;
    let loaded = off_workers(move || load_candidate(&archive, limit)).await?;
    let (candidate, tests, sources_json) = match loaded {
        Ok(loaded) => loaded,
        Err(outcome) => {
            if matches!(*outcome, CandidateOutcome::OutOfTime { .. }) {
                tracing::warn!(
                    seconds = limit.as_secs(),
                    "candidate rule set's tests stopped: out of time"
                );
            } else {
                tracing::info!("candidate rule set refused");
            }
            return Ok(*outcome);
        }
    };
    let current = app.active_rules();
    let options = Options {
        min_cell: audit::min_cell_within(None, app.audit_min_cell_floor)
            .unwrap_or(audit::DEFAULT_MIN_CELL),
        ..Options::default()
    };
    let candidate_ref = RuleSetRef::of(&candidate);
    // On record before the history is read, however the trial ends.
    app.store
        .record_candidate_trial(
            access(principal, "try_candidate", None, None),
            candidate.content_hash.clone(),
            sources_json,
        )
        .await?;
    let replayed = app
        .store
        .read_history(move |history| {
            // The time limit counts from when a thread of long work takes the replay up.
            let deadline = Deadline::after(limit);
            Ok(audit::replay::replay(
                history,
                &current,
                &candidate,
                &options,
                deadline,
                &|_| {},
            ))
        })
        .await?;
    let replay = match replayed {
        Ok(replay) => replay,
        Err(ReplayError::Store(err)) => return Err(err.into()),
        Err(ReplayError::OutOfTime(stopped)) => {
            tracing::warn!(
                seconds = limit.as_secs(),
                checks = stopped.checks_evaluated,
                "candidate rule set's replay stopped: out of time"
            );
            return Ok(CandidateOutcome::OutOfTime {
                stage: Stage::Replay,
                limit,
                failing_rules: stopped.failing_rules,
                failing_unchanged: stopped.failing_unchanged,
            });
        }
    };
    tracing::info!(
        checks = replay.checks_evaluated,
        tests_failed = tests.failed.len(),
        "candidate rule set tried"
    );
    Ok(CandidateOutcome::Tried {
        candidate: candidate_ref,
        tests,
        replay: Box::new(replay),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.tar.gz` of the repository's rules directory, as policy staff would upload it.
    fn archive_of_the_default_rules() -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        builder
            .append_dir_all("regler", "rules")
            .expect("archive the rules");
        builder
            .into_inner()
            .and_then(flate2::write::GzEncoder::finish)
            .expect("finish the archive")
    }

    #[test]
    fn a_candidate_whose_tests_run_out_of_time_is_stopped_and_says_so() {
        let archive = archive_of_the_default_rules();
        let (rules, tests, _) =
            load_candidate(&archive, Duration::from_secs(600)).expect("the defaults load");
        assert!(tests.total > 0 && tests.failed.is_empty(), "{tests:?}");
        assert_eq!(rules.name, "GK standardregler");

        let stopped = load_candidate(&archive, Duration::ZERO).expect_err("out of time");
        assert!(
            matches!(
                &*stopped,
                CandidateOutcome::OutOfTime {
                    stage: Stage::Tests,
                    failing_rules,
                    ..
                } if failing_rules.is_empty()
            ),
            "{stopped:?}"
        );
    }
}
