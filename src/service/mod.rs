//! The HTTP service (`gk-regler serve`): checks cases against the active rule set,
//! stores every evaluation durably before answering, takes outcomes, serves rules,
//! health, metrics and its OpenAPI document.
//!
//! Handlers stay thin: parse the request at the boundary ([`crate::profile`]), call the
//! use case of [`crate::app`], and map its [`app::AppError`] to a status and a problem
//! document ([`problem`]). Status codes live here and nowhere else.

pub mod metrics;
pub mod openapi;
pub mod problem;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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

use crate::app::{self, App};
use crate::auth::Principal;
use crate::contract::{EvaluationReport, RuleSetRef, StoredFlagJson, StoredRuleErrorJson};
use crate::outcome::Outcome;
use crate::profile::{Profile, ProfileError};
use crate::ruleset::RuleSet;
use crate::store::{OutcomeChange, StoredEvaluation};

use self::problem::{ApiError, FieldError};

/// Most outcomes accepted in one request.
pub const MAX_OUTCOMES_PER_REQUEST: usize = 10_000;

type SharedState = Arc<App>;

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

impl FromRequestParts<SharedState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = crate::web::request_token(&parts.headers);
        match token.as_deref().and_then(|t| state.tokens.authenticate(t)) {
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
    app::require(&principal, app::check::CHECK_ROLES)?;
    let text = json_text(&headers, body, state.max_body_bytes)?;
    let profile = Profile::from_json(&text).map_err(validation)?;
    let (id, report) = app::check::check(&state, &principal, profile).await?;
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
    app::require(&principal, app::check::DRY_RUN_ROLES)?;
    let text = json_text(&headers, body, state.max_body_bytes)?;
    let profile = Profile::from_json(&text).map_err(validation)?;
    let (_, report) = app::check::dry_run(&state, &principal, profile)?;
    Ok(Json(CheckResponse {
        evaluation_id: None,
        stored: false,
        report,
    }))
}

/// A stored evaluation.
#[derive(Serialize, ToSchema)]
pub struct StoredEvaluationJson {
    pub evaluation_id: i64,
    /// The case's pseudonym (never the case id).
    pub case_pseudonym: String,
    #[schema(value_type = String)]
    pub stage: crate::profile::Stage,
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
            flags: e.flags,
            errors: e.errors,
        }
    }
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
    app::require(&principal, app::check::READ_ROLES)?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    let evaluation = app::check::read(&state, &principal, id).await?;
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
    app::require(&principal, app::check::READ_ROLES)?;
    let text = json_text(&headers, body, state.max_body_bytes)?;
    let query: CaseQuery = crate::profile::parse_json(&text).map_err(validation)?;
    let (case, evaluations) = app::check::case_history(&state, &principal, &query.case_id).await?;
    Ok(Json(CaseChecksResponse {
        case_pseudonym: case.as_str().to_owned(),
        evaluations: evaluations.into_iter().map(Into::into).collect(),
    }))
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
    app::require(&principal, app::outcomes::ROLES)?;
    let text = json_text(&headers, body, state.max_body_bytes)?;
    let outcomes = parse_outcomes(&text)?;
    let recorded = app::outcomes::record(&state.store, &state.key, &principal, outcomes).await?;
    Ok(Json(OutcomesResponse::of(&recorded)))
}

impl OutcomesResponse {
    fn of(recorded: &app::outcomes::Recorded) -> Self {
        Self {
            created: recorded.count(OutcomeChange::Created),
            replaced: recorded.count(OutcomeChange::Replaced),
            unchanged: recorded.count(OutcomeChange::Unchanged),
            results: recorded.changes.iter().map(|c| c.as_str()).collect(),
        }
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
    #[schema(value_type = Vec<String>)]
    pub grounds: Vec<crate::ruleset::Grounds>,
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
                        crate::ruleset::SeveritySpec::Fixed(s) => serde_json::json!(s),
                        crate::ruleset::SeveritySpec::PerStage {
                            before_gk,
                            gk_closing,
                        } => serde_json::json!({
                            "before_gk": before_gk,
                            "gk_closing": gk_closing,
                        }),
                    },
                    grounds: m.grounds.clone(),
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
    app::require(&principal, app::history::ROLES)?;
    let axum::extract::Query(query) =
        query.map_err(|_| ApiError::BadRequest("ogiltiga frågeparametrar".to_owned()))?;
    let options = query.options(state.audit_min_cell_floor)?;
    let format = query.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html") {
        return Err(field_error("format", "json, csv eller html"));
    }
    let rules = state.active_rules();
    let report = app::history::audit(&state.store, &principal, &rules, options).await?;
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
async fn list_rules(State(state): State<SharedState>, principal: Principal) -> Json<RulesResponse> {
    Json(rules_json(&app::rules::active(&state, &principal)))
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
    app::require(&principal, app::rules::RELOAD_ROLES)?;
    let reloaded = app::rules::reload(&state, &principal).await?;
    Ok(Json(ReloadResponse {
        changed: reloaded.changed,
        previous: reloaded.previous,
        active: reloaded.active,
    }))
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
