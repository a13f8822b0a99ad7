//! The HTTP service (`gk-regler serve`): checks cases against the active rule set,
//! stores every evaluation durably before answering, takes outcomes, serves rules,
//! health, metrics and its OpenAPI document.
//!
//! Handlers stay thin: parse at the boundary ([`crate::profile`]), evaluate
//! ([`crate::engine`]), store ([`crate::store`]). The active rule set sits behind an
//! `ArcSwap`: a request takes one snapshot and uses it throughout, so no request ever
//! sees two rule sets; a reload builds the new set completely before swapping.

pub mod metrics;
pub mod openapi;
pub mod problem;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;

use crate::auth::{Principal, Role, Tokens};
use crate::contract::{EvaluationReport, ProblemJson, RuleSetRef};
use crate::engine::Evaluation;
use crate::outcome::Outcome;
use crate::profile::{Profile, ProfileError};
use crate::pseudonym::PseudonymKey;
use crate::ruleset::RuleSet;
use crate::store::{Access, NewEvaluation, NewOutcome, Store, StoredEvaluation};

use self::metrics::Metrics;
use self::problem::{ApiError, FieldError};

/// Most outcomes accepted in one request.
pub const MAX_OUTCOMES_PER_REQUEST: usize = 10_000;

/// Shared state of the running service.
pub struct AppState {
    pub rules: ArcSwap<RuleSet>,
    pub rules_dir: PathBuf,
    reload_lock: tokio::sync::Mutex<()>,
    pub store: Store,
    pub key: PseudonymKey,
    pub tokens: Tokens,
    pub metrics: Metrics,
    pub max_body_bytes: usize,
    /// The lowest `min_cell` an audit may be asked for (config `audit_min_cell_floor`).
    pub audit_min_cell_floor: usize,
}

impl AppState {
    pub fn new(
        rules: RuleSet,
        rules_dir: PathBuf,
        store: Store,
        key: PseudonymKey,
        tokens: Tokens,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            rules: ArcSwap::from_pointee(rules),
            rules_dir,
            reload_lock: tokio::sync::Mutex::new(()),
            store,
            key,
            tokens,
            metrics: Metrics::new(),
            max_body_bytes,
            audit_min_cell_floor: crate::audit::DEFAULT_MIN_CELL,
        }
    }

    /// Sets the lowest `min_cell` an audit may be asked for.
    pub fn with_audit_min_cell_floor(mut self, floor: usize) -> Self {
        self.audit_min_cell_floor = floor;
        self
    }
}

type SharedState = Arc<AppState>;

/// The router with every route and middleware.
pub fn router(state: SharedState) -> Router {
    let max_body = state.max_body_bytes;
    let api = Router::new()
        .route("/api/v1/checks", post(create_check))
        .route("/api/v1/checks/dry-run", post(dry_run_check))
        .route("/api/v1/checks/{id}", get(get_check))
        .route("/api/v1/cases/checks", post(case_checks))
        .route("/api/v1/outcomes", post(record_outcomes))
        .route("/api/v1/audit", get(audit_report))
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/rules/reload", post(reload_rules))
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics_text));
    let api = api.merge(crate::web::routes());
    api.layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            metrics::track,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            // The span carries method, route and request id; never a body or a query.
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let route = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("unmatched", |p| p.as_str());
                tracing::info_span!("request", method = %request.method(), route, request_id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The name of the cookie that carries a signed-in person's token on the web pages.
pub const TOKEN_COOKIE: &str = "gk_token";

/// The token of a request: `Authorization: Bearer …`, or the web pages' cookie.
fn request_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='))
    })
}

impl FromRequestParts<SharedState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = request_token(&parts.headers);
        match token.and_then(|t| state.tokens.authenticate(t)) {
            Some(principal) => Ok(principal),
            None => {
                tracing::warn!(
                    path = %parts.uri.path(),
                    token_given = token.is_some(),
                    "refused: missing or unknown token"
                );
                Err(ApiError::Unauthorized)
            }
        }
    }
}

pub(crate) fn require(principal: &Principal, roles: &[Role]) -> Result<(), ApiError> {
    if principal.has_any(roles) {
        Ok(())
    } else {
        tracing::warn!(actor = %principal.name, role = principal.role.as_str(), "refused: role not allowed");
        Err(ApiError::Forbidden)
    }
}

/// The body as UTF-8 JSON text: checks the content type and the size limit.
fn json_text(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<String, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadRequest("kunde inte läsa begäran".to_owned())
        }
    })?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::BadRequest("begäran är inte giltig UTF-8".to_owned()))
}

fn validation(err: ProfileError) -> ApiError {
    if err.syntax {
        return ApiError::BadRequest(err.message);
    }
    ApiError::Validation(vec![FieldError {
        field: err.path,
        detail: err.message,
    }])
}

/// The result of a check as the API returns it.
#[derive(Serialize, ToSchema)]
pub struct CheckResponse {
    /// Id of the stored evaluation; absent for a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation_id: Option<i64>,
    /// Whether the evaluation was stored.
    pub stored: bool,
    #[serde(flatten)]
    pub report: EvaluationReport,
}

pub(crate) fn evaluate(
    state: &AppState,
    profile: Profile,
) -> (Arc<RuleSet>, Arc<Profile>, Evaluation) {
    let rules = state.rules.load_full();
    let profile = Arc::new(profile);
    let evaluation = rules.evaluate(&profile);
    state.metrics.record_evaluation(&rules, &evaluation);
    (rules, profile, evaluation)
}

/// Evaluates a parsed profile with the active rule set and stores the evaluation (case
/// id pseudonymised, flags, rule errors, access-log entry) in one commit; returns the
/// stored id and the report once durable. The API and the web pages both check this way.
pub(crate) async fn check_and_store(
    state: &AppState,
    principal: &Principal,
    profile: Profile,
) -> Result<(i64, EvaluationReport), ApiError> {
    let case = state.key.pseudonymise(&profile.case_id);
    let profile_json = crate::store::profile_for_storage(&profile, &case)?;
    let (rules, profile, evaluation) = evaluate(state, profile);
    let report = EvaluationReport::new(&rules, &profile, &evaluation);
    let new = NewEvaluation::of(
        &rules,
        &profile,
        &report,
        case.clone(),
        profile_json,
        &principal.name,
    );
    let access = Access {
        actor: principal.name.clone(),
        role: principal.role.as_str(),
        action: "check",
        case: Some(case),
        evaluation_id: None,
    };
    let id = state.store.insert_evaluation(new, access).await?;
    tracing::info!(
        evaluation_id = id,
        flags = report.flags.len(),
        errors = report.errors.len(),
        "check stored"
    );
    Ok((id, report))
}

/// Check a case and store the evaluation.
#[utoipa::path(
    post, path = "/api/v1/checks", tag = "checks",
    request_body(content = openapi::ProfileBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored; flags and rule errors", body = CheckResponse),
        (status = 400, description = "Malformed JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid profile", body = problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable; nothing stored", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn create_check(
    State(state): State<SharedState>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(&principal, &[Role::Handlaggare])?;
    let text = json_text(&headers, body, state.max_body_bytes)?;
    let profile = Profile::from_json(&text).map_err(validation)?;
    let (id, report) = check_and_store(&state, &principal, profile).await?;
    let mut response = (
        StatusCode::CREATED,
        Json(CheckResponse {
            evaluation_id: Some(id),
            stored: true,
            report,
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/checks/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Evaluate a profile without storing anything (for trying rules).
#[utoipa::path(
    post, path = "/api/v1/checks/dry-run", tag = "checks",
    request_body(content = openapi::ProfileBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Flags and rule errors; nothing stored", body = CheckResponse),
        (status = 400, description = "Malformed JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid profile", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn dry_run_check(
    State(state): State<SharedState>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CheckResponse>, ApiError> {
    require(&principal, &[Role::Handlaggare, Role::Policy])?;
    let text = json_text(&headers, body, state.max_body_bytes)?;
    let profile = Profile::from_json(&text).map_err(validation)?;
    let (rules, profile, evaluation) = evaluate(&state, profile);
    Ok(Json(CheckResponse {
        evaluation_id: None,
        stored: false,
        report: EvaluationReport::new(&rules, &profile, &evaluation),
    }))
}

/// A stored flag as read back.
#[derive(Serialize, ToSchema)]
pub struct StoredFlagJson {
    pub rule_id: String,
    pub severity: &'static str,
    pub message: String,
}

/// A stored rule error as read back.
#[derive(Serialize, ToSchema)]
pub struct StoredRuleErrorJson {
    pub rule_id: String,
    pub kind: &'static str,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// A stored evaluation.
#[derive(Serialize, ToSchema)]
pub struct StoredEvaluationJson {
    pub evaluation_id: i64,
    /// The case's pseudonym (never the case id).
    pub case_pseudonym: String,
    pub stage: String,
    pub checked_on: String,
    pub created_at: String,
    pub ruleset: RuleSetRef,
    pub requested_by: String,
    pub flags: Vec<StoredFlagJson>,
    pub errors: Vec<StoredRuleErrorJson>,
}

impl From<StoredEvaluation> for StoredEvaluationJson {
    fn from(e: StoredEvaluation) -> Self {
        Self {
            evaluation_id: e.id,
            case_pseudonym: e.case,
            stage: e.stage,
            checked_on: e.checked_on,
            created_at: e.created_at,
            ruleset: RuleSetRef {
                name: e.rule_set_name,
                version: e.rule_set_version,
                content_hash: e.rule_set_hash,
            },
            requested_by: e.requested_by,
            flags: e
                .flags
                .into_iter()
                .map(|f| StoredFlagJson {
                    rule_id: f.rule_id,
                    severity: f.severity,
                    message: f.message,
                })
                .collect(),
            errors: e
                .errors
                .into_iter()
                .map(|f| StoredRuleErrorJson {
                    rule_id: f.rule_id,
                    kind: f.kind,
                    message: f.message,
                    line: f.line,
                    column: f.column,
                })
                .collect(),
        }
    }
}

/// Whether `principal` may read an evaluation requested by `requested_by`: case
/// officers read their own checks, admins every check.
fn may_read(principal: &Principal, requested_by: &str) -> bool {
    principal.role == Role::Admin || principal.name == requested_by
}

/// Read one stored evaluation.
#[utoipa::path(
    get, path = "/api/v1/checks/{id}", tag = "checks",
    params(("id" = i64, Path, description = "Evaluation id")),
    responses(
        (status = 200, description = "The evaluation", body = StoredEvaluationJson),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such evaluation visible to you", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_check(
    State(state): State<SharedState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<StoredEvaluationJson>, ApiError> {
    require(&principal, &[Role::Handlaggare])?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    let evaluation = state
        .store
        .evaluation(id)
        .await?
        .filter(|e| may_read(&principal, &e.requested_by))
        .ok_or(ApiError::NotFound)?;
    state
        .store
        .log_access(Access {
            actor: principal.name.clone(),
            role: principal.role.as_str(),
            action: "read_check",
            case: crate::pseudonym::Pseudonym::from_stored(evaluation.case.clone()),
            evaluation_id: Some(id),
        })
        .await?;
    Ok(Json(evaluation.into()))
}

/// Which case to list (the case id goes in the body, never in a URL).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    #[schema(value_type = String)]
    pub case_id: crate::profile::CaseId,
}

/// The stored evaluations of one case.
#[derive(Serialize, ToSchema)]
pub struct CaseChecksResponse {
    pub case_pseudonym: String,
    pub evaluations: Vec<StoredEvaluationJson>,
}

/// List the stored evaluations of one case.
#[utoipa::path(
    post, path = "/api/v1/cases/checks", tag = "checks",
    request_body(content = CaseQuery, content_type = "application/json"),
    responses(
        (status = 200, description = "Evaluations of the case visible to you, oldest first", body = CaseChecksResponse),
        (status = 400, description = "Malformed JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn case_checks(
    State(state): State<SharedState>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CaseChecksResponse>, ApiError> {
    require(&principal, &[Role::Handlaggare])?;
    let text = json_text(&headers, body, state.max_body_bytes)?;
    let query: CaseQuery = crate::profile::parse_json(&text).map_err(validation)?;
    let (case, evaluations) = checks_of_case(&state, &principal, &query.case_id).await?;
    Ok(Json(CaseChecksResponse {
        case_pseudonym: case.as_str().to_owned(),
        evaluations: evaluations.into_iter().map(Into::into).collect(),
    }))
}

/// The stored evaluations of a case that `principal` may read (oldest first), with the
/// case's pseudonym; the read is written to the access log. Shared by the API and the
/// web pages.
pub(crate) async fn checks_of_case(
    state: &AppState,
    principal: &Principal,
    case_id: &crate::profile::CaseId,
) -> Result<(crate::pseudonym::Pseudonym, Vec<StoredEvaluation>), ApiError> {
    let case = state.key.pseudonymise(case_id);
    let evaluations: Vec<StoredEvaluation> = state
        .store
        .evaluations_of_case(case.clone())
        .await?
        .into_iter()
        .filter(|e| may_read(principal, &e.requested_by))
        .collect();
    state
        .store
        .log_access(Access {
            actor: principal.name.clone(),
            role: principal.role.as_str(),
            action: "list_case",
            case: Some(case.clone()),
            evaluation_id: None,
        })
        .await?;
    Ok((case, evaluations))
}

/// What recording outcomes did, per outcome in request order.
#[derive(Serialize, ToSchema)]
pub struct OutcomesResponse {
    pub created: usize,
    pub replaced: usize,
    pub unchanged: usize,
    /// `created`, `replaced` or `unchanged`, in request order.
    pub results: Vec<&'static str>,
}

/// Parses one outcome or an array of them, naming the path of a bad field.
fn parse_outcomes(text: &str) -> Result<Vec<Outcome>, ApiError> {
    crate::outcome::parse_outcomes_json(text, MAX_OUTCOMES_PER_REQUEST).map_err(validation)
}

/// Record outcomes: one object or an array; idempotent per case.
#[utoipa::path(
    post, path = "/api/v1/outcomes", tag = "outcomes",
    request_body(content = openapi::OutcomesBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded (all or nothing)", body = OutcomesResponse),
        (status = 400, description = "Malformed JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid outcome", body = problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable; nothing stored", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn record_outcomes(
    State(state): State<SharedState>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<OutcomesResponse>, ApiError> {
    require(&principal, &[Role::Analytiker])?;
    let text = json_text(&headers, body, state.max_body_bytes)?;
    let outcomes = parse_outcomes(&text)?;
    let changes = record_outcome_list(&state.store, &state.key, outcomes, &principal).await?;
    Ok(Json(summarise_changes(&changes)))
}

/// Pseudonymises and stores outcomes in one commit; shared by the API and the CLI.
pub async fn record_outcome_list(
    store: &Store,
    key: &PseudonymKey,
    outcomes: Vec<Outcome>,
    principal: &Principal,
) -> Result<Vec<crate::store::OutcomeChange>, crate::store::StoreError> {
    let new: Vec<NewOutcome> = outcomes
        .into_iter()
        .map(|outcome| NewOutcome {
            case: key.pseudonymise(&outcome.case_id),
            outcome,
        })
        .collect();
    store
        .upsert_outcomes(
            new,
            Access {
                actor: principal.name.clone(),
                role: principal.role.as_str(),
                action: "record_outcome",
                case: None,
                evaluation_id: None,
            },
        )
        .await
}

pub fn summarise_changes(changes: &[crate::store::OutcomeChange]) -> OutcomesResponse {
    use crate::store::OutcomeChange as C;
    let count = |kind: C| changes.iter().filter(|c| **c == kind).count();
    OutcomesResponse {
        created: count(C::Created),
        replaced: count(C::Replaced),
        unchanged: count(C::Unchanged),
        results: changes.iter().map(|c| c.as_str()).collect(),
    }
}

/// One rule's metadata.
#[derive(Serialize, ToSchema)]
pub struct RuleJson {
    pub id: String,
    pub title: String,
    /// `info`/`warning`/`critical`, or an object of severities per stage.
    #[schema(value_type = Value)]
    pub severity: serde_json::Value,
    pub grounds: Vec<&'static str>,
    pub rationale: String,
    pub sources: Vec<String>,
    pub enabled: bool,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub script: String,
}

/// The active rule set.
#[derive(Serialize, ToSchema)]
pub struct RulesResponse {
    pub ruleset: RuleSetRef,
    pub rules: Vec<RuleJson>,
}

pub fn rules_json(rules: &RuleSet) -> RulesResponse {
    RulesResponse {
        ruleset: RuleSetRef::of(rules),
        rules: rules
            .rules
            .iter()
            .map(|r| {
                let m = &r.meta;
                RuleJson {
                    id: m.id.to_string(),
                    title: m.title.clone(),
                    severity: match m.severity {
                        crate::ruleset::SeveritySpec::Fixed(s) => serde_json::json!(s.as_str()),
                        crate::ruleset::SeveritySpec::PerStage {
                            before_gk,
                            gk_closing,
                        } => serde_json::json!({
                            "before_gk": before_gk.as_str(),
                            "gk_closing": gk_closing.as_str(),
                        }),
                    },
                    grounds: m.grounds.iter().map(|g| g.as_str()).collect(),
                    rationale: m.rationale.clone(),
                    sources: m.sources.clone(),
                    enabled: m.enabled,
                    valid_from: m.valid_from.map(|d| d.to_string()),
                    valid_to: m.valid_to.map(|d| d.to_string()),
                    script: m.script.clone(),
                }
            })
            .collect(),
    }
}

/// The audit's period, threshold and format, as query parameters (no personal data).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// First day of the period (YYYY-MM-DD), by outcome date.
    from: Option<String>,
    /// Last day of the period (YYYY-MM-DD).
    to: Option<String>,
    /// `json` (default), `csv` or `html`.
    format: Option<String>,
    /// Suppress counts below this, and shares and estimates resting on fewer cases
    /// (default 5, or the configured floor when higher). A value below the configured
    /// floor (`audit_min_cell_floor`, default 5) is refused.
    min_cell: Option<String>,
}

fn field_error(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: field.to_owned(),
        detail: detail.into(),
    }])
}

impl AuditQuery {
    fn options(&self, floor: usize) -> Result<crate::audit::Options, ApiError> {
        let date = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| crate::profile::Date::parse(v).map_err(|e| field_error(field, e)))
                .transpose()
        };
        let floor = floor.max(1);
        let below = || field_error("min_cell", format!("ett heltal som är minst {floor} krävs"));
        let requested = match self.min_cell.as_deref() {
            None => None,
            Some(text) => Some(text.trim().parse::<usize>().map_err(|_| below())?),
        };
        let min_cell = crate::audit::min_cell_within(requested, floor).map_err(|_| below())?;
        Ok(crate::audit::Options {
            period: crate::audit::Period::new(date("from", &self.from)?, date("to", &self.to)?)
                .map_err(|e| field_error("to", e))?,
            min_cell,
        })
    }
}

/// The flag-versus-outcome audit of the stored checks for a period (analysts).
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "The audit report (JSON; or CSV or a self-contained HTML page by `format`)", content(
            (crate::audit::report::AuditReport = "application/json"),
            (String = "text/csv"),
            (String = "text/html"),
        )),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid period, threshold or format", body = problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn audit_report(
    State(state): State<SharedState>,
    principal: Principal,
    query: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require(&principal, &[Role::Analytiker])?;
    let axum::extract::Query(query) =
        query.map_err(|_| ApiError::BadRequest("ogiltiga frågeparametrar".to_owned()))?;
    let options = query.options(state.audit_min_cell_floor)?;
    let format = query.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html") {
        return Err(field_error("format", "json, csv eller html"));
    }
    let rules = state.rules.load_full();
    let report = crate::audit::of_store(&state.store, &rules, options).await?;
    state
        .store
        .log_access(Access {
            actor: principal.name.clone(),
            role: principal.role.as_str(),
            action: "audit",
            case: None,
            evaluation_id: None,
        })
        .await?;
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(e.to_string());
    let (content_type, body) = match format {
        "csv" => (
            "text/csv; charset=utf-8",
            report.to_csv().map_err(|e| internal(&e))?,
        ),
        "html" => (
            "text/html; charset=utf-8",
            crate::audit::html::render_audit(&report).map_err(|e| internal(&e))?,
        ),
        _ => (
            "application/json",
            report.to_json().map_err(|e| internal(&e))?,
        ),
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// List the active rules and the rule-set version.
#[utoipa::path(
    get, path = "/api/v1/rules", tag = "rules",
    responses(
        (status = 200, description = "The active rule set", body = RulesResponse),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_rules(
    State(state): State<SharedState>,
    _principal: Principal,
) -> Json<RulesResponse> {
    Json(rules_json(&state.rules.load()))
}

/// Result of a successful reload.
#[derive(Serialize, ToSchema)]
pub struct ReloadResponse {
    /// Whether the content changed.
    pub changed: bool,
    pub previous: RuleSetRef,
    pub active: RuleSetRef,
}

/// Reload the rules from disk: all or nothing; a refused set leaves the old one active.
#[utoipa::path(
    post, path = "/api/v1/rules/reload", tag = "rules",
    responses(
        (status = 200, description = "Reloaded and swapped in", body = ReloadResponse),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused with every problem; the old rules keep running", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn reload_rules(
    State(state): State<SharedState>,
    principal: Principal,
) -> Result<Json<ReloadResponse>, ApiError> {
    require(&principal, &[Role::Policy])?;
    reload_rule_set(&state).await.map(Json)
}

/// Loads the rules directory again and swaps the new set in: all or nothing; a refused
/// set leaves the old one active and lists every problem. Shared by the API and the web
/// pages.
pub(crate) async fn reload_rule_set(state: &AppState) -> Result<ReloadResponse, ApiError> {
    let _one_reload_at_a_time = state.reload_lock.lock().await;
    let dir = state.rules_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || RuleSet::load(&dir))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match loaded {
        Ok(rules) => {
            state.store.record_rule_set(&rules).await?;
            let previous = RuleSetRef::of(&state.rules.load());
            let active = RuleSetRef::of(&rules);
            state.rules.store(Arc::new(rules));
            state.metrics.record_reload(true);
            tracing::info!(version = %active.version, hash = %active.content_hash, "rules reloaded");
            Ok(ReloadResponse {
                changed: previous.content_hash != active.content_hash,
                previous,
                active,
            })
        }
        Err(err) => {
            state.metrics.record_reload(false);
            tracing::warn!(problems = err.problems.len(), "rule reload refused");
            Err(ApiError::RulesRefused(
                err.problems.iter().map(ProblemJson::from).collect(),
            ))
        }
    }
}

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruleset: Option<RuleSetRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
async fn live() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok",
        ruleset: None,
        database: None,
    })
}

/// Readiness: the database answers and rules are loaded.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "Not ready", body = HealthResponse),
    ))]
async fn ready(State(state): State<SharedState>) -> (StatusCode, Json<HealthResponse>) {
    let database_ok = tokio::time::timeout(Duration::from_secs(2), state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let status = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(HealthResponse {
            status: if database_ok { "ok" } else { "unavailable" },
            ruleset: Some(RuleSetRef::of(&state.rules.load())),
            database: Some(if database_ok { "ok" } else { "unavailable" }),
        }),
    )
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Metrics (OpenMetrics text)", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
async fn metrics_text(State(state): State<SharedState>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => ApiError::Internal(err).into_response(),
    }
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document_text(),
    )
        .into_response()
}
