//! Trying a candidate rule set without risk: policy staff upload a `.zip` or `.tar.gz`
//! of a rules directory; it is unpacked into a private temporary directory (removed
//! before the answer), loaded and checked like the live set, its own tests run, and the
//! stored history replayed under the live and the candidate set side by side. Nothing is
//! stored (only the access-log entry) and nothing goes live.

use std::path::Path;

use super::{App, AppError, access, off_workers, require};
use crate::audit::replay::ReplayReport;
use crate::audit::{self, Options};
use crate::auth::{Principal, Role};
use crate::candidate_archive;
use crate::contract::RuleSetRef;
use crate::rule_tests::TestSuite;
use crate::ruleset::RuleSet;

/// Roles that may try a candidate rule set: those who may reload the rules.
pub const CANDIDATE_ROLES: &[Role] = &[Role::Policy];

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
    /// The candidate could not be loaded: every problem as `file:line:col: message`.
    Problems(Vec<String>),
    /// Loaded: its tests and the replay beside the live set.
    Tried {
        candidate: RuleSetRef,
        tests: TestSummary,
        replay: Box<ReplayReport>,
    },
}

/// A problem as `file:line:col: message`, the file named within the candidate.
fn problem_text(root: &Path, problem: &crate::ruleset::Problem) -> String {
    let file = Path::new(&problem.file)
        .strip_prefix(root)
        .map_or_else(|_| problem.file.clone(), |p| p.display().to_string());
    match (problem.line, problem.column) {
        (Some(line), Some(column)) => format!("{file}:{line}:{column}: {}", problem.message),
        (Some(line), None) => format!("{file}:{line}: {}", problem.message),
        _ => format!("{file}: {}", problem.message),
    }
}

/// Unpacks, loads and tests the candidate in `archive`; the temporary directory is gone
/// when this returns.
fn load_candidate(archive: &[u8]) -> Result<(RuleSet, TestSummary), Box<CandidateOutcome>> {
    let unpacked = candidate_archive::unpack(archive)
        .map_err(|refused| Box::new(CandidateOutcome::Refused(refused)))?;
    let root = unpacked.root();
    let rules = RuleSet::load(root).map_err(|err| {
        Box::new(CandidateOutcome::Problems(
            err.problems.iter().map(|p| problem_text(root, p)).collect(),
        ))
    })?;
    let tests = match TestSuite::load(root, Some(&rules)) {
        Err(err) => TestSummary {
            problems: err.problems.iter().map(|p| problem_text(root, p)).collect(),
            ..TestSummary::default()
        },
        Ok(suite) => {
            let results = suite.run(&rules);
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
    Ok((rules, tests))
}

/// Tries the candidate rule set in `archive` (at most
/// [`candidate_archive::MAX_ARCHIVE_BYTES`]): loaded, tested and replayed over the whole
/// stored history beside the active set, off the async workers. Stores nothing.
pub async fn try_candidate(
    app: &App,
    principal: &Principal,
    archive: Vec<u8>,
) -> Result<CandidateOutcome, AppError> {
    require(principal, CANDIDATE_ROLES)?;
    let loaded = off_workers(move || load_candidate(&archive)).await?;
    let (candidate, tests) = match loaded {
        Ok(loaded) => loaded,
        Err(outcome) => {
            tracing::info!("candidate rule set refused");
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
    let replay = app
        .store
        .read_history(move |history| {
            audit::replay::replay(history, &current, &candidate, &options, &|_| {})
        })
        .await?;
    app.store
        .log_access(access(principal, "try_candidate", None, None))
        .await?;
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
