//! Use cases over the stored history: importing a cohort (profiles evaluated and stored
//! like the service does), the flag-versus-outcome audit, and replaying a candidate rule
//! set against the stored profiles.

use std::sync::Arc;

use rayon::prelude::*;

use super::{AppError, access, require};
use crate::audit::replay::ReplayReport;
use crate::audit::report::AuditReport;
use crate::audit::{self, Options};
use crate::auth::{Principal, Role};
use crate::contract::EvaluationReport;
use crate::profile::Profile;
use crate::pseudonym::PseudonymKey;
use crate::ruleset::RuleSet;
use crate::store::{NewEvaluation, ShadowResult, Store, profile_for_storage};

/// Roles that may import a cohort, audit and replay.
pub const ROLES: &[Role] = &[Role::Analytiker];

/// What an import stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Profiles read and evaluated.
    pub read: usize,
    /// Checks stored (a check stored before is skipped).
    pub stored: usize,
    pub flags: usize,
    pub rule_errors: usize,
}

/// One profile line that could not be used, as `line: error` for the person importing.
pub type LineProblem = (usize, String);

/// Evaluates every profile line with `rules` (each rule in force as of the profile's
/// `checked_on`) and stores the checks like the service does, in one commit. Every line
/// is validated before anything is stored: one bad line and nothing is, and every bad
/// line is returned. `progress` is called once per evaluated line. With `shadow`, every
/// profile is evaluated with the shadow rules too and their results stored apart.
/// The evaluation runs on the blocking pool ([`super::off_workers`]), in parallel.
pub async fn import_cohort(
    store: &Store,
    key: &PseudonymKey,
    principal: &Principal,
    rules: Arc<RuleSet>,
    shadow: Option<Arc<RuleSet>>,
    lines: Vec<(usize, String)>,
    progress: Arc<dyn Fn() + Send + Sync>,
) -> Result<Result<ImportCounts, Vec<LineProblem>>, AppError> {
    require(principal, ROLES)?;
    let evaluated = {
        let rules = Arc::clone(&rules);
        let shadow = shadow.clone();
        let key = key.clone();
        let actor = principal.name.clone();
        super::off_workers(move || {
            evaluate_lines(&rules, shadow.as_deref(), &key, &actor, &lines, &*progress)
        })
        .await?
    };
    let evaluations = match evaluated {
        Ok(evaluations) => evaluations,
        Err(problems) => return Ok(Err(problems)),
    };
    let mut counts = ImportCounts {
        read: evaluations.len(),
        flags: evaluations.iter().map(|e| e.flags.len()).sum(),
        rule_errors: evaluations.iter().map(|e| e.errors.len()).sum(),
        ..ImportCounts::default()
    };
    store.record_rule_set(&rules).await?;
    if let Some(shadow) = &shadow {
        store.record_rule_set(shadow).await?;
    }
    counts.stored = store
        .insert_evaluations(evaluations, access(principal, "import", None, None))
        .await?;
    Ok(Ok(counts))
}

/// Every line parsed and evaluated in parallel; every bad line when there is one.
fn evaluate_lines(
    rules: &RuleSet,
    shadow: Option<&RuleSet>,
    key: &PseudonymKey,
    actor: &str,
    lines: &[(usize, String)],
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<NewEvaluation>, Vec<LineProblem>> {
    let results: Vec<Result<NewEvaluation, LineProblem>> = lines
        .par_iter()
        .map(|(line, text)| {
            let at = |e: &dyn std::fmt::Display| (*line, e.to_string());
            let profile = Profile::from_json(text).map_err(|e| at(&e))?;
            let case = key.pseudonymise(&profile.case_id);
            let stored_form = profile_for_storage(&profile, &case).map_err(|e| at(&e))?;
            let profile = Arc::new(profile);
            let evaluation = rules.evaluate(&profile);
            let report = EvaluationReport::new(rules, &profile, &evaluation);
            progress();
            let shadow = shadow.map(|set| ShadowResult::of(set, &set.evaluate(&profile)));
            Ok(
                NewEvaluation::of(rules, &profile, &report, case, stored_form, actor)
                    .with_shadow(shadow),
            )
        })
        .collect();
    let (evaluations, problems): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    if !problems.is_empty() {
        return Err(problems.into_iter().filter_map(Result::err).collect());
    }
    Ok(evaluations.into_iter().filter_map(Result::ok).collect())
}

/// The flag-versus-outcome audit of what `store` holds for `options.period`, reported
/// against the rules of `active`; the read is written to the access log.
pub async fn audit(
    store: &Store,
    principal: &Principal,
    active: &RuleSet,
    options: Options,
) -> Result<AuditReport, AppError> {
    require(principal, ROLES)?;
    let started = std::time::Instant::now();
    let report = audit::of_store(store, active, options).await?;
    store
        .log_access(access(principal, "audit", None, None))
        .await?;
    tracing::info!(
        units = report.units.all,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "audit computed"
    );
    Ok(report)
}

/// The formats an audit report is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditFormat {
    Json,
    Csv,
    /// The self-contained page of `audit::html`.
    Html,
}

/// An audit and its text in one format.
pub struct RenderedAudit {
    pub report: AuditReport,
    pub text: String,
}

/// [`audit`], written out as `format`; the writing runs off the async workers too
/// (a report's page can be large).
pub async fn audit_rendered(
    store: &Store,
    principal: &Principal,
    active: &RuleSet,
    options: Options,
    format: AuditFormat,
) -> Result<RenderedAudit, AppError> {
    let report = audit(store, principal, active, options).await?;
    super::off_workers(move || {
        let text = match format {
            AuditFormat::Json => report.to_json().map_err(|e| AppError::Report(e.into())),
            AuditFormat::Csv => report.to_csv().map_err(|e| AppError::Report(e.into())),
            AuditFormat::Html => {
                audit::html::render_audit(&report).map_err(|e| AppError::Report(e.into()))
            }
        }?;
        Ok(RenderedAudit { report, text })
    })
    .await?
}

/// [`audit`] as an Excel workbook ([`audit::xlsx`]), written off the async workers.
pub async fn audit_xlsx(
    store: &Store,
    principal: &Principal,
    active: &RuleSet,
    options: Options,
) -> Result<(AuditReport, Vec<u8>), AppError> {
    let report = audit(store, principal, active, options).await?;
    super::off_workers(move || {
        let bytes = audit::xlsx::write(&report).map_err(|e| AppError::Report(e.into()))?;
        Ok((report, bytes))
    })
    .await?
}

/// How many stored checks fall in `options.period` (for a progress bar before a replay).
pub async fn checks_in_period(store: &Store, options: &Options) -> Result<u64, AppError> {
    let period = options.period;
    Ok(store
        .read_history(move |history| audit::data::count_checks(history, &period))
        .await?)
}

/// The stored profiles of `options.period` under the `current` and the `candidate` rules,
/// storing nothing. `progress` is called with the number of checks of each evaluated
/// batch. The read is written to the access log.
pub async fn replay(
    store: &Store,
    principal: &Principal,
    current: RuleSet,
    candidate: RuleSet,
    options: Options,
    progress: Box<dyn Fn(u64) + Send + Sync>,
) -> Result<ReplayReport, AppError> {
    require(principal, ROLES)?;
    let report = store
        .read_history(move |history| {
            audit::replay::replay(history, &current, &candidate, &options, &*progress)
        })
        .await?;
    store
        .log_access(access(principal, "replay", None, None))
        .await?;
    Ok(report)
}
