//! Checking a case: evaluate and store, dry run, read one stored check, and a case's
//! history. Who may read a check: case officers read the checks they requested
//! themselves, admins every check ([`may_read`]).

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

/// Roles that may read stored checks (their own; admins every check).
pub const READ_ROLES: &[Role] = &[Role::Handlaggare];

/// Evaluates `profile` with the active rule set and counts it in the metrics.
fn evaluate(app: &App, profile: Profile) -> (Arc<RuleSet>, Arc<Profile>, Evaluation) {
    let rules = app.active_rules();
    let profile = Arc::new(profile);
    let evaluation = rules.evaluate(&profile);
    app.metrics.record_evaluation(&rules, &evaluation);
    (rules, profile, evaluation)
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
    let (rules, profile, evaluation) = evaluate(app, profile);
    let report = EvaluationReport::new(&rules, &profile, &evaluation);
    // The shadow set runs on the same parsed profile here, beside the live set, so the
    // writer stores both in the same commit; its result never reaches the report.
    let shadow = app
        .shadow_rules()
        .map(|shadow| ShadowResult::of(&shadow, &shadow.evaluate(&profile)));
    let new = NewEvaluation::of(
        &rules,
        &profile,
        &report,
        case.clone(),
        profile_json,
        &principal.name,
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
pub fn dry_run(
    app: &App,
    principal: &Principal,
    profile: Profile,
) -> Result<(Arc<RuleSet>, EvaluationReport), AppError> {
    require(principal, DRY_RUN_ROLES)?;
    let (rules, profile, evaluation) = evaluate(app, profile);
    let report = EvaluationReport::new(&rules, &profile, &evaluation);
    Ok((rules, report))
}

/// Whether `principal` may read an evaluation requested by `requested_by`: case
/// officers read their own checks, admins every check.
fn may_read(principal: &Principal, requested_by: &str) -> bool {
    principal.role == Role::Admin || principal.name == requested_by
}

/// One stored evaluation that `principal` may read; the read is written to the access
/// log. An evaluation the principal may not read is [`AppError::NotFound`], like one
/// that does not exist.
pub async fn read(app: &App, principal: &Principal, id: i64) -> Result<StoredEvaluation, AppError> {
    require(principal, READ_ROLES)?;
    let evaluation = app
        .store
        .evaluation(id)
        .await?
        .filter(|e| may_read(principal, &e.requested_by))
        .ok_or(AppError::NotFound)?;
    let case = Pseudonym::from_stored(evaluation.case.clone());
    app.store
        .log_access(access(principal, "read_check", case, Some(id)))
        .await?;
    Ok(evaluation)
}

/// The stored evaluations of a case that `principal` may read (oldest first), with the
/// case's pseudonym; the read is written to the access log.
pub async fn case_history(
    app: &App,
    principal: &Principal,
    case_id: &CaseId,
) -> Result<(Pseudonym, Vec<StoredEvaluation>), AppError> {
    require(principal, READ_ROLES)?;
    let case = app.key.pseudonymise(case_id);
    let evaluations: Vec<StoredEvaluation> = app
        .store
        .evaluations_of_case(case.clone())
        .await?
        .into_iter()
        .filter(|e| may_read(principal, &e.requested_by))
        .collect();
    app.store
        .log_access(access(principal, "list_case", Some(case.clone()), None))
        .await?;
    Ok((case, evaluations))
}
