//! The HTTP service (`gk-regler serve`): checks cases against the active rule set,
//! stores every evaluation durably before answering, takes outcomes, serves rules,
//! health, metrics and its OpenAPI document.
//!
//! Handlers stay thin: parse the request at the boundary ([`crate::profile`]), call the
//! use case of [`crate::app`], and map its [`app::AppError`] to a status and a problem
//! document ([`problem`]). Status codes live here and nowhere else.

mod body;
pub mod metrics;
pub mod openapi;
pub mod problem;
mod responses;
pub mod server;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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

use self::body::{BodyProblem, WholeBody};
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
        .route(
            "/api/v1/checks/{id}/responses",
            post(responses::create_response),
        )
        .route("/api/v1/cases/checks", post(case_checks))
        .route("/api/v1/outcomes", post(record_outcomes))
        .route("/api/v1/audit", get(audit_report))
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/rules/reload", post(reload_rules))
        .route("/api/v1/rules/history", get(rules_history))
        .route("/api/v1/admin/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/admin/tokens/{id}/revoke", post(revoke_token))
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics_text));
    let api = api.merge(crate::web::routes(Arc::clone(&state)));
    api.layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(no_store_unless_set))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::web::guard::refuse_cross_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            metrics::track,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            // The span carries method, route and request id; never a body or a query. The
            // method is one of the standard ones or `other`: a client may send any name.
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let route = crate::web::guard::route_of(request.extensions());
                let method = metrics::method_label(request.method());
                tracing::info_span!("request", method, route, request_id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(only_uuid_request_ids))
        .with_state(state)
}

/// Drops a client's `X-Request-Id` unless it is a UUID, so that the service makes its
/// own: the id goes into every log line of the request and back in the answer, and a
/// client that used a case id as its correlation id would have logged it.
async fn only_uuid_request_ids(mut request: axum::extract::Request) -> axum::extract::Request {
    let given = request.headers().get("x-request-id");
    let is_uuid = given
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| uuid::Uuid::try_parse(v).is_ok());
    if given.is_some() && !is_uuid {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// Serves on `listener` within `limits` until `shutdown` resolves, then lets in-flight
/// requests finish within the grace period ([`server`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    limits: server::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router(state), limits, shutdown).await
}

/// Every answer that does not say otherwise (only the stylesheet does) is never stored
/// by a browser or proxy: checks, case histories, outcomes and audits hold personal
/// data or statistics about it. Nor is any answer read as another type than it says (a
/// CSV or JSON answer taken for HTML by a browser that guesses).
async fn no_store_unless_set(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The headers of the audit as a stand-alone HTML page: its own inline style only, no
/// scripts, no framing, no sniffing, no referrer.
const AUDIT_HTML_HEADERS: [(header::HeaderName, &str); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
         form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

impl FromRequestParts<SharedState> for Principal {
    type Rejection = ApiError;

    /// The API takes only `Authorization: Bearer …` (the scheme in any case); the web
    /// pages' session cookie is not accepted here, so no API call rides on a browser's
    /// cookie.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::auth::bearer_token);
        let principal = match token {
            Some(token) => app::accounts::authenticate(&state.store, token).await?,
            None => None,
        };
        match principal {
            Some(principal) => Ok(principal),
            None => {
                tracing::warn!(
                    route = crate::web::guard::route_of(&parts.extensions),
                    token_given = token.is_some(),
                    "refused: missing or unknown token"
                );
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// The body as UTF-8 JSON text: checks the content type, the size limit and that it came
/// whole in time.
fn json_text(headers: &HeaderMap, body: WholeBody, app: &App) -> Result<String, ApiError> {
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
    let bytes = body.0.map_err(|problem| match problem {
        BodyProblem::TooLarge => ApiError::PayloadTooLarge(app.max_body_bytes),
        BodyProblem::TooSlow => ApiError::RequestTimeout(app.body_timeout.as_secs()),
        BodyProblem::Unreadable => ApiError::BadRequest("kunde inte läsa begäran".to_owned()),
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
        (status = 408, description = "Body did not arrive whole within body_timeout_seconds", body = problem::Problem, content_type = "application/problem+json"),
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
    body: WholeBody,
) -> Result<Response, ApiError> {
    app::require(&principal, app::check::CHECK_ROLES)?;
    let text = json_text(&headers, body, &state)?;
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
        (status = 408, description = "Body did not arrive whole within body_timeout_seconds", body = problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid profile", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn dry_run_check(
    State(state): State<SharedState>,
    principal: Principal,
    headers: HeaderMap,
    body: WholeBody,
) -> Result<Json<CheckResponse>, ApiError> {
    app::require(&principal, app::check::DRY_RUN_ROLES)?;
    let text = json_text(&headers, body, &state)?;
    let profile = Profile::from_json(&text).map_err(validation)?;
    let (_, report) = app::check::dry_run(&state, &principal, profile).await?;
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
    /// The current answer to each answered flag (`POST …/responses`), by rule id.
    pub responses: Vec<crate::answer::StoredResponse>,
}

impl From<StoredEvaluation> for StoredEvaluationJson {
    fn from(e: StoredEvaluation) -> Self {
        Self {
            evaluation_id: e.id,
            case_pseudonym: e.case,
            stage: e.stage,
            checked_on: e.checked_on,
            created_at: e.created_at,
            ruleset: RuleSetRef::new(e.rule_set_name, e.rule_set_version, e.rule_set_hash),
            requested_by: e.requested_by,
            flags: e.flags,
            errors: e.errors,
            responses: e.responses,
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

/// List every stored evaluation of one case, by every officer (the case id in the body).
#[utoipa::path(
    post, path = "/api/v1/cases/checks", tag = "checks",
    request_body(content = CaseQuery, content_type = "application/json"),
    responses(
        (status = 200, description = "Every stored evaluation of the case, by every officer, oldest first", body = CaseChecksResponse),
        (status = 400, description = "Malformed JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = problem::Problem, content_type = "application/problem+json"),
        (status = 408, description = "Body did not arrive whole within body_timeout_seconds", body = problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "More case lookups than `case_lookups_per_minute` allows; `Retry-After` says when to try again", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn case_checks(
    State(state): State<SharedState>,
    principal: Principal,
    headers: HeaderMap,
    body: WholeBody,
) -> Result<Json<CaseChecksResponse>, ApiError> {
    app::require(&principal, app::check::READ_ROLES)?;
    let text = json_text(&headers, body, &state)?;
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
    #[schema(value_type = Vec<String>)]
    pub results: Vec<OutcomeChange>,
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
        (status = 408, description = "Body did not arrive whole within body_timeout_seconds", body = problem::Problem, content_type = "application/problem+json"),
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
    body: WholeBody,
) -> Result<Json<OutcomesResponse>, ApiError> {
    app::require(&principal, app::outcomes::ROLES)?;
    let text = json_text(&headers, body, &state)?;
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
            results: recorded.changes.clone(),
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
    /// The profile fields the rule reads (`gk.requested_on`), as its manifest declares
    /// them; the lint checks at load that the script reads no other field. Empty when
    /// the manifest declares none.
    pub inputs: Vec<String>,
    /// "Så försvinner flaggan": in Swedish, what makes the flag go away; for a rule
    /// that is not `clearable`, what the officer can do instead.
    pub how_to_clear: Option<String>,
    /// Whether a later change of the profile can clear the flag.
    pub clearable: bool,
    /// The rule's dated parameters (`param.NAME` in its script), by name.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// The reason codes an answer "not relevant" may give: the rule's own, then the rule
    /// set's common ones.
    pub reasons: Vec<crate::engine::reasons::Reason>,
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
                    inputs: m.inputs.clone().unwrap_or_default(),
                    how_to_clear: m.how_to_clear.clone(),
                    clearable: m.clearable,
                    parameters: m
                        .parameters
                        .iter()
                        .map(|p| {
                            let values: Vec<serde_json::Value> = p
                                .values
                                .iter()
                                .map(|(from, value)| {
                                    serde_json::json!({
                                        "from": from.to_string(),
                                        "value": match value {
                                            crate::ruleset::ParamValue::Int(i) => serde_json::json!(i),
                                            crate::ruleset::ParamValue::Float(f) => serde_json::json!(f),
                                            crate::ruleset::ParamValue::Text(t) => serde_json::json!(t),
                                        },
                                    })
                                })
                                .collect();
                            (
                                p.name.clone(),
                                serde_json::json!({
                                    "description": p.description,
                                    "values": values,
                                }),
                            )
                        })
                        .collect(),
                    reasons: m
                        .reasons
                        .iter()
                        .chain(&rules.common_reasons)
                        .cloned()
                        .collect(),
                }
            })
            .collect(),
    }
}

/// The audit's period, threshold and format, as query parameters (no personal data).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// First day of the period (YYYY-MM-DD), by outcome date.
    from: Option<String>,
    /// Last day of the period (YYYY-MM-DD).
    to: Option<String>,
    /// `json` (default), `csv`, `html` or `xlsx`.
    format: Option<String>,
    /// `true` to include checks made with a test-purpose token (left out by default;
    /// the report's `excluded_test_checks` says how many).
    include_test: Option<String>,
    /// First day of a period to compare with (YYYY-MM-DD); the report's `comparison`.
    compare_from: Option<String>,
    /// Last day of the period to compare with (YYYY-MM-DD).
    compare_to: Option<String>,
    /// Suppress counts below this, and shares and estimates resting on fewer cases
    /// (default 5, or the configured floor when higher). A value below the configured
    /// floor (`audit_min_cell_floor`, default 5) is refused.
    min_cell: Option<String>,
}

/// A query string that could not be read, saying which names the route takes; the
/// names given are not repeated (a case id could stand as one).
fn query_refused(allowed: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "okänd, upprepad eller oläslig frågeparameter; tillåtna är {allowed}"
    ))
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
        let include_test = match self.include_test.as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(field_error("include_test", "true eller false")),
        };
        let mut period =
            crate::audit::Period::new(date("from", &self.from)?, date("to", &self.to)?)
                .map_err(|e| field_error("to", e))?;
        period.include_test = include_test;
        let compare = match (
            date("compare_from", &self.compare_from)?,
            date("compare_to", &self.compare_to)?,
        ) {
            (None, None) => None,
            (from, to) => Some(crate::audit::Period::new(from, to).map_err(|_| {
                field_error("compare_to", "jämförelseperioden slutar före den börjar")
            })?),
        };
        Ok(crate::audit::Options {
            period,
            min_cell,
            compare,
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
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed, or a test token (which reads no real history)", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid period, threshold or format", body = problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "This person already has two audits (or candidate trials) waiting or running", body = problem::Problem, content_type = "application/problem+json"),
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
    let _slot = state.long_work_slot(&principal)?;
    // An unknown name (the web page's `fran`, a misspelling) must not be taken as no
    // period, the audit of all time.
    let axum::extract::Query(query) = query.map_err(|_| {
        query_refused("from, to, compare_from, compare_to, include_test, min_cell och format")
    })?;
    let options = query.options(state.audit_min_cell_floor)?;
    use app::history::AuditFormat;
    let (format, content_type) = match query.format.as_deref().unwrap_or("json") {
        "json" => (AuditFormat::Json, "application/json"),
        "csv" => (AuditFormat::Csv, "text/csv; charset=utf-8"),
        "html" => (AuditFormat::Html, "text/html; charset=utf-8"),
        "xlsx" => {
            let rules = state.active_rules();
            let (_, bytes) =
                app::history::audit_xlsx(&state.store, &principal, &rules, options).await?;
            return Ok((
                [(header::CONTENT_TYPE, crate::audit::xlsx::CONTENT_TYPE)],
                bytes,
            )
                .into_response());
        }
        _ => return Err(field_error("format", "json, csv, html eller xlsx")),
    };
    let rules = state.active_rules();
    let rendered =
        app::history::audit_rendered(&state.store, &principal, &rules, options, format).await?;
    let mut response = ([(header::CONTENT_TYPE, content_type)], rendered.text).into_response();
    if format == AuditFormat::Html {
        for (name, value) in AUDIT_HTML_HEADERS {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(response)
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
    /// How many of the set's own rule tests ran and passed before it went live.
    pub tests_passed: usize,
}

/// Reload the rules from disk: all or nothing; a refused set leaves the old one active.
#[utoipa::path(
    post, path = "/api/v1/rules/reload", tag = "rules",
    responses(
        (status = 200, description = "Reloaded and swapped in", body = ReloadResponse),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused with every problem (file:line:col; a failing rule test also with `test`: rule, name, expected, actual), or because the content changed under an unchanged version; the old rules keep running", body = problem::Problem, content_type = "application/problem+json"),
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
        tests_passed: reloaded.tests_passed,
    }))
}

/// One rule set in the history.
#[derive(Serialize, ToSchema)]
pub struct RuleSetUseJson {
    pub name: String,
    pub version: String,
    pub content_hash: String,
    /// The first 12 characters of `content_hash`, as shown to people.
    pub short_hash: String,
    /// Whether it is the rule set in use now.
    pub active: bool,
    /// When the service first loaded it (RFC 3339, UTC).
    pub first_seen_at: String,
    /// The first stored check made with it; absent without checks.
    pub first_used_at: Option<String>,
    /// The last stored check made with it; absent without checks.
    pub last_used_at: Option<String>,
    /// Stored checks made with it.
    pub checks: u64,
}

/// Every rule set used, and optionally a diff between two of them.
#[derive(Serialize, ToSchema)]
pub struct RulesHistoryResponse {
    pub active: RuleSetRef,
    /// First loaded first.
    pub rule_sets: Vec<RuleSetUseJson>,
    /// The line diff `from` → `to`, when both were asked for.
    pub diff: Option<app::rules::RuleSetDiff>,
}

/// Two rule sets to compare, each by content hash or its first 12 or more characters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The older rule set.
    from: Option<String>,
    /// The newer rule set.
    to: Option<String>,
}

/// Every rule set the service has used: version, content hash, first and last use,
/// number of checks; with `from` and `to`, the line diff of manifest and scripts
/// between those two (policy staff and analysts).
#[utoipa::path(
    get, path = "/api/v1/rules/history", tag = "rules",
    params(HistoryQuery),
    responses(
        (status = 200, description = "The rule-set history", body = RulesHistoryResponse),
        (status = 400, description = "A malformed hash, or only one of from and to", body = problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed, or a test token (which reads no real history)", body = problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No recorded rule set has that hash", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn rules_history(
    State(state): State<SharedState>,
    principal: Principal,
    query: Result<axum::extract::Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RulesHistoryResponse>, ApiError> {
    app::require(&principal, app::rules::HISTORY_ROLES)?;
    let axum::extract::Query(query) = query.map_err(|_| query_refused("from och to"))?;
    let diff = match (query.from.as_deref(), query.to.as_deref()) {
        (Some(from), Some(to)) => Some(app::rules::diff(&state, &principal, from, to).await?),
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "ange både from och to för att jämföra två regeluppsättningar".to_owned(),
            ));
        }
    };
    let active = RuleSetRef::of(&state.active_rules());
    let rule_sets = app::rules::history(&state, &principal)
        .await?
        .into_iter()
        .map(|used| RuleSetUseJson {
            short_hash: used.content_hash.get(..12).unwrap_or_default().to_owned(),
            active: used.content_hash == active.content_hash,
            name: used.name,
            version: used.version,
            content_hash: used.content_hash,
            first_seen_at: used.first_seen_at,
            first_used_at: used.first_used_at,
            last_used_at: used.last_used_at,
            checks: used.checks,
        })
        .collect();
    Ok(Json(RulesHistoryResponse {
        active,
        rule_sets,
        diff,
    }))
}

/// A token to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Who gets the token (shown in the access log), 1–64 visible characters; unique
    /// among active tokens.
    pub name: String,
    #[schema(value_type = String, example = "handlaggare")]
    pub role: crate::auth::Role,
    /// `normal` (default) or `test`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "normal")]
    pub purpose: crate::auth::Purpose,
    /// Last day (`YYYY-MM-DD`, UTC) or a duration such as `90d`; absent: no end.
    #[serde(default)]
    pub expires: Option<String>,
}

/// A token just created: the token is shown here once and never again.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: i64,
    pub name: String,
    pub role: &'static str,
    pub purpose: &'static str,
    pub token: String,
    pub expires_at: Option<String>,
}

/// An account as listed: never its token or hash.
#[derive(Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: &'static str,
    pub purpose: &'static str,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// Create a token (admin). It works at once; only its hash is stored.
#[utoipa::path(
    post, path = "/api/v1/admin/tokens", tag = "admin",
    request_body(content = CreateTokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the token is in this answer only", body = CreatedToken),
        (status = 400, description = "Invalid name or expiry, or an active token has that name", body = problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn create_token(
    State(state): State<SharedState>,
    principal: Principal,
    headers: HeaderMap,
    body: WholeBody,
) -> Result<Response, ApiError> {
    app::require(&principal, app::accounts::ADMIN_ROLES)?;
    let text = json_text(&headers, body, &state)?;
    // The strict parser: duplicate keys refused, the field named, no value repeated.
    let request: CreateTokenRequest = crate::profile::parse_json(&text).map_err(validation)?;
    let expires = request
        .expires
        .as_deref()
        .map(app::accounts::Expiry::parse)
        .transpose()?;
    let new = app::accounts::NewToken {
        name: request.name,
        role: request.role,
        purpose: request.purpose,
        expires,
    };
    let created = app::accounts::create(&state.store, &principal, new.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: created.id,
            name: created.name,
            role: new.role.as_str(),
            purpose: new.purpose.as_str(),
            token: created.token,
            expires_at: created.expires_at,
        }),
    )
        .into_response())
}

/// List every token (admin): names, roles, validity; never a token or hash.
#[utoipa::path(
    get, path = "/api/v1/admin/tokens", tag = "admin",
    responses(
        (status = 200, description = "Every account, newest first", body = [TokenInfo]),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_tokens(
    State(state): State<SharedState>,
    principal: Principal,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let accounts = app::accounts::list(&state.store, &principal).await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| TokenInfo {
                id: a.id,
                name: a.name,
                role: a.role.as_str(),
                purpose: a.purpose.as_str(),
                created_at: a.created_at,
                created_by: a.created_by,
                expires_at: a.expires_at,
                revoked_at: a.revoked_at,
            })
            .collect(),
    ))
}

/// Revoke a token (admin): refused from the next request on; its web sessions end.
#[utoipa::path(
    post, path = "/api/v1/admin/tokens/{id}/revoke", tag = "admin",
    params(("id" = i64, Path, description = "The token's number from the list")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active token has that number", body = problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active admin token: never revoked", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn revoke_token(
    State(state): State<SharedState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app::require(&principal, app::accounts::ADMIN_ROLES)?;
    let id = id.parse::<i64>().map_err(|_| ApiError::NotFound)?;
    app::accounts::revoke(&state.store, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruleset: Option<RuleSetRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    /// Why the service is not ready, for the person running it (Swedish), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl HealthResponse {
    /// The liveness answer: the process answers. Also what the accept loop answers a
    /// liveness probe at the connection cap ([`server`]).
    pub const LIVE: Self = Self {
        status: "ok",
        ruleset: None,
        database: None,
        detail: None,
    };
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
async fn live() -> Json<HealthResponse> {
    Json(HealthResponse::LIVE)
}

/// Readiness: the database file is still the one opened, the database answers and takes
/// writes, and rules are loaded.
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
            detail: state
                .store
                .file_problem()
                .map(|problem| problem.to_string()),
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
        Err(err) => ApiError::Internal(err.into()).into_response(),
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
