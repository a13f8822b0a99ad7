//! Checking a case: evaluate and store, dry run, read one stored check, and a case's
//! history.
//!
//! Who may read what:
//! - **A case's history** ([`case_history`]): every case officer who gives the case id
//!   reads every check of that case, by any officer. The case id is what an officer has
//!   when the case is theirs to handle; a colleague taking over the case needs its whole
//!   story. Every such read is written to the access log, and each person may look up
//!   at most [`App::case_lookups`] cases a minute: enough for anyone working through cases,
//!   too few to try thousands of case ids to learn who has a case. A stored check's own
//!   page shows its case's story too ([`read_with_case`]), and takes from the same budget:
//!   a check can be made for any case id.
//! - **One check by its number** ([`read`], [`read_with_case`]): the officer who made it,
//!   and admins. Check numbers are sequential, so letting every officer read any number
//!   would let one officer page through every case's profile without knowing any case
//!   id; a check by someone else is [`AppError::NotFound`], like one that does not exist.

use std::sync::Arc;

use super::{App, AppError, access, require};
use crate::auth::{Principal, Role};
use crate::contract::EvaluationReport;
use crate::engine::Evaluation;
use crate::profile::{CaseId, Profile};
use crate::pseudonym::Pseudonym;
use crate::ruleset::RuleSet;
use crate::store::{NewEvaluation, ShadowResult, StoredEvaluation};

/// Roles that may check a case and store it.
pub const CHECK_ROLES: &[Role] = &[Role::Handlaggare];

/// Roles that may evaluate a profile without storing it: case officers trying a case and
/// policy staff trying rules.
pub const DRY_RUN_ROLES: &[Role] = &[Role::Handlaggare, Role::Policy];

/// Roles that may read stored checks: a case's checks by its case id, one check by its
/// number when they made it (admins every check).
pub const READ_ROLES: &[Role] = &[Role::Handlaggare];

/// What a person over the lookup budget is told (the API's problem, the web form).
pub fn lookups_wait_text(retry_after_seconds: u64) -> String {
    format!(
        "Du har hämtat många ärenden på kort tid. Försök igen om {}.",
        crate::present::wait_text(retry_after_seconds)
    )
}

/// Whether every rule of `rules`, and of `shadow` if given, runs in the fast evaluator.
fn runs_fast_only(rules: &RuleSet, shadow: Option<&RuleSet>) -> bool {
    rules.runs_fast_only() && shadow.is_none_or(RuleSet::runs_fast_only)
}

/// `profile` under `rules`, and under `shadow` when given: one check, so the two share
/// its time ([`crate::engine::start_check_time`]) when either has rules in Rhai.
pub(super) fn evaluate_both(
    rules: &RuleSet,
    shadow: Option<&RuleSet>,
    profile: &Arc<Profile>,
) -> (Evaluation, Option<ShadowResult>) {
    let _stop = (!runs_fast_only(rules, shadow)).then(crate::engine::start_check_time);
    let evaluation = rules.evaluate(profile);
    let shadow = shadow.map(|set| ShadowResult::of(set, &set.evaluate(profile)));
    (evaluation, shadow)
}

/// A profile evaluated with the active rule set, and with `shadow` when asked.
struct Evaluated {
    rules: Arc<RuleSet>,
    profile: Arc<Profile>,
    evaluation: Evaluation,
    shadow: Option<ShadowResult>,
}

/// Evaluates `profile` with the active rule set, and with `shadow` if given, and counts
/// it in the metrics. Where every rule runs in the fast evaluator this happens here, in
/// microseconds; otherwise on the blocking pool, since a rule in Rhai may run up to a
/// check's time limit and would hold an async worker, and every request waiting on it,
/// meanwhile.
async fn evaluate(
    app: &App,
    profile: Profile,
    shadow: Option<Arc<RuleSet>>,
) -> Result<Evaluated, AppError> {
    let rules = app.active_rules();
    let profile = Arc::new(profile);
    let (evaluation, shadow) = if runs_fast_only(&rules, shadow.as_deref()) {
        evaluate_both(&rules, shadow.as_deref(), &profile)
    } else {
        let rules = Arc::clone(&rules);
        let profile = Arc::clone(&profile);
        super::evaluating_rules(move || evaluate_both(&rules, shadow.as_deref(), &profile)).await?
    };
    app.metrics.record_evaluation(&rules, &evaluation);
    Ok(Evaluated {
        rules,
        profile,
        evaluation,
        shadow,
    })
}

/// Evaluates a profile with the active rule set and stores the evaluation (case id
/// pseudonymised, flags, rule errors, access-log entry) in one commit; returns the
/// stored id and the report once durable.
pub async fn check(
    app: &App,
    principal: &Principal,
    profile: Profile,
) -> Result<(i64, EvaluationReport), AppError> {
    require(principal, CHECK_ROLES)?;
    let case = app.key.pseudonymise(&profile.case_id);
    let profile_json = crate::store::profile_for_storage(&profile, &case)?;
    // The shadow set runs on the same parsed profile here, beside the live set, so the
    // writer stores both in the same commit; its result never reaches the report.
    let Evaluated {
        rules,
        profile,
        evaluation,
        shadow,
    } = evaluate(app, profile, app.shadow_rules()).await?;
    let report = EvaluationReport::new(&rules, &profile, &evaluation);
    let new = NewEvaluation::of(
        &rules,
        &profile,
        &report,
        case.clone(),
        profile_json,
        // Marked by the token the request was signed in with, not looked up again when
        // the row is written: a token revoked meanwhile must not make a test check real.
        (&principal.name, principal.is_for_tests()),
    )
    .with_shadow(shadow);
    let id = app
        .store
        .insert_evaluation(new, access(principal, "check", Some(case), None))
        .await?;
    tracing::info!(
        evaluation_id = id,
        flags = report.flags.len(),
        errors = report.errors.len(),
        "check stored"
    );
    Ok((id, report))
}

/// Evaluates a profile with the active rule set, storing nothing; returns the rule set
/// it used with the report.
pub async fn dry_run(
    app: &App,
    principal: &Principal,
    profile: Profile,
) -> Result<(Arc<RuleSet>, EvaluationReport), AppError> {
    require(principal, DRY_RUN_ROLES)?;
    let Evaluated {
        rules,
        profile,
        evaluation,
        ..
    } = evaluate(app, profile, None).await?;
    let report = EvaluationReport::new(&rules, &profile, &evaluation);
    Ok((rules, report))
}

/// Whether `principal` may read `evaluation`: checks of its own kind only (a test token
/// test checks, any other token real ones, so neither a test admin nor a test token given
/// a former officer's name reads a real check); of those, admins every check and case
/// officers their own.
pub(super) fn may_read(principal: &Principal, evaluation: &StoredEvaluation) -> bool {
    evaluation.test == (principal.is_for_tests())
        && (principal.role == Role::Admin || principal.name == evaluation.requested_by)
}

/// Stored evaluation `id` when `principal` may read it, else [`AppError::NotFound`], the
/// same answer as for a check that does not exist. Another officer's check is refused
/// with a warning in the log (who, and the check's number), so paging through check
/// numbers leaves a trace.
pub(super) async fn readable(
    app: &App,
    principal: &Principal,
    id: i64,
) -> Result<StoredEvaluation, AppError> {
    let evaluation = app.store.evaluation(id).await?.ok_or(AppError::NotFound)?;
    if !may_read(principal, &evaluation) {
        tracing::warn!(actor = ?principal.name, check = id, "refused: another officer's check");
        return Err(AppError::NotFound);
    }
    Ok(evaluation)
}

/// One stored evaluation that `principal` may read; the read is written to the access
/// log. An evaluation the principal may not read is [`AppError::NotFound`], like one
/// that does not exist.
pub async fn read(app: &App, principal: &Principal, id: i64) -> Result<StoredEvaluation, AppError> {
    require(principal, READ_ROLES)?;
    let evaluation = readable(app, principal, id).await?;
    let case = Pseudonym::from_stored(evaluation.case.clone());
    app.store
        .log_access(access(principal, "read_check", case, Some(id)))
        .await?;
    Ok(evaluation)
}

/// Every stored evaluation of a case, by every officer (oldest first), with the case's
/// pseudonym; the read is written to the access log. A test-purpose token reads the
/// case's test checks, every other token its real ones: the two are separate stories.
pub async fn case_history(
    app: &App,
    principal: &Principal,
    case_id: &CaseId,
) -> Result<(Pseudonym, Vec<StoredEvaluation>), AppError> {
    require(principal, READ_ROLES)?;
    take_case_lookup(app, principal)?;
    let case = app.key.pseudonymise(case_id);
    let test = principal.is_for_tests();
    let evaluations = app.store.evaluations_of_case(case.clone(), test).await?;
    app.store
        .log_access(access(principal, "list_case", Some(case.clone()), None))
        .await?;
    Ok((case, evaluations))
}

/// Takes one case lookup from `principal`'s budget ([`App::case_lookups`]).
fn take_case_lookup(app: &App, principal: &Principal) -> Result<(), AppError> {
    app.case_lookups
        .take(&principal.name)
        .map_err(|retry_after_seconds| {
            tracing::warn!(actor = ?principal.name, "case lookups over the limit");
            AppError::TooManyLookups {
                retry_after_seconds,
            }
        })
}

/// One stored check with its case's story, as [`read_with_case`] gives it.
pub struct CheckWithCase {
    pub evaluation: StoredEvaluation,
    /// The case's checks, oldest first, the check itself among them: by every officer,
    /// or, when `others_withheld`, the check alone.
    pub case: Vec<StoredEvaluation>,
    /// Seconds until the reader's case lookups allow the whole story again, when they
    /// did not now.
    pub others_withheld: Option<u64>,
}

impl CheckWithCase {
    /// `evaluation` without the rest of its case.
    fn alone(evaluation: StoredEvaluation, others_withheld: Option<u64>) -> Self {
        Self {
            case: vec![evaluation.clone()],
            evaluation,
            others_withheld,
        }
    }
}

/// One stored evaluation that `principal` may read (as [`read`]) with the stored
/// evaluations of its case. The whole story, by every officer, is a case lookup: it
/// takes one from the reader's budget ([`App::case_lookups`]), as [`case_history`] does, since
/// a check made for any case id would otherwise show who else has checked that case.
/// Past the budget, only this check is given and the case's other checks are not read
/// at all, so neither the answer nor the time it takes tells whether anyone else has
/// checked the case. Every read is written to the access log.
pub async fn read_with_case(
    app: &App,
    principal: &Principal,
    id: i64,
) -> Result<CheckWithCase, AppError> {
    let evaluation = read(app, principal, id).await?;
    let Some(case) = Pseudonym::from_stored(evaluation.case.clone()) else {
        return Ok(CheckWithCase::alone(evaluation, None));
    };
    match take_case_lookup(app, principal) {
        Ok(()) => {}
        Err(AppError::TooManyLookups {
            retry_after_seconds,
        }) => return Ok(CheckWithCase::alone(evaluation, Some(retry_after_seconds))),
        Err(err) => return Err(err),
    }
    // The story the check belongs to: test checks' or real ones'.
    let evaluations = app
        .store
        .evaluations_of_case(case.clone(), evaluation.test)
        .await?;
    app.store
        .log_access(access(principal, "list_case", Some(case), Some(id)))
        .await?;
    Ok(CheckWithCase {
        evaluation,
        case: evaluations,
        others_withheld: None,
    })
}

/// The case id of each web session's latest check, held in memory only (never written
/// to disk, gone at restart), so the page a check redirects to can fill in the case id
/// for the next check of the same case. The stored check holds only the pseudonym,
/// which cannot be turned back into the case id.
#[derive(Default)]
pub struct RecentCaseIds {
    by_session: std::sync::Mutex<std::collections::HashMap<String, RecentCaseId>>,
}

struct RecentCaseId {
    evaluation_id: i64,
    case_id: CaseId,
    at: std::time::Instant,
}

/// At most this many sessions' case ids are held; the oldest go first.
const RECENT_CASE_IDS_MAX: usize = 10_000;

impl RecentCaseIds {
    /// Remembers `case_id` as the case of `evaluation_id`, made in session `session_key`.
    pub fn remember(&self, session_key: &str, evaluation_id: i64, case_id: CaseId) {
        let Ok(mut map) = self.by_session.lock() else {
            return;
        };
        if map.len() >= RECENT_CASE_IDS_MAX
            && !map.contains_key(session_key)
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, r)| r.at)
                .map(|(key, _)| key.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            session_key.to_owned(),
            RecentCaseId {
                evaluation_id,
                case_id,
                at: std::time::Instant::now(),
            },
        );
    }

    /// The case id of `evaluation_id` if session `session_key` made it, and it was that
    /// session's latest check, within `max_age`.
    pub fn recall(
        &self,
        session_key: &str,
        evaluation_id: i64,
        max_age: std::time::Duration,
    ) -> Option<CaseId> {
        let map = self.by_session.lock().ok()?;
        map.get(session_key)
            .filter(|r| r.evaluation_id == evaluation_id && r.at.elapsed() <= max_age)
            .map(|r| r.case_id.clone())
    }

    /// Forgets the session's case id (at sign-out).
    pub fn forget(&self, session_key: &str) {
        if let Ok(mut map) = self.by_session.lock() {
            map.remove(session_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn case(id: &str) -> CaseId {
        serde_json::from_value(serde_json::Value::from(id)).expect("a case id")
    }

    #[test]
    fn a_sessions_case_id_is_recalled_only_for_its_latest_check() {
        let recent = RecentCaseIds::default();
        let hour = Duration::from_secs(3600);
        recent.remember("s1", 7, case("A-1"));
        recent.remember("s2", 8, case("B-2"));
        assert_eq!(
            recent.recall("s1", 7, hour).map(|c| c.expose().to_owned()),
            Some("A-1".into())
        );
        // Another session's check, or another check of the session: not known.
        assert!(recent.recall("s1", 8, hour).is_none());
        assert!(recent.recall("s3", 7, hour).is_none());
        // A newer check of the session replaces the older one; sign-out forgets it.
        recent.remember("s1", 9, case("C-3"));
        assert!(recent.recall("s1", 7, hour).is_none());
        assert!(recent.recall("s1", 9, hour).is_some());
        recent.forget("s1");
        assert!(recent.recall("s1", 9, hour).is_none());
        assert!(recent.recall("s2", 8, hour).is_some());
    }
}
