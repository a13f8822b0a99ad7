//! `POST /api/v1/checks/{id}/responses`: the officer's answer to one flag of a stored
//! check ([`app::responses::respond`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::problem::{self, ApiError};
use super::{SharedState, json_text, validation};
use crate::answer::{ResponseRequest, StoredResponse};
use crate::app;
use crate::auth::Principal;

/// Answer one flag of a stored check: `handled`, or `not_relevant` with a reason code.
/// Only the officer who made the check answers; a new answer replaces the current one
/// (the history is kept).
#[utoipa::path(
    post, path = "/api/v1/checks/{id}/responses", tag = "checks",
    params(("id" = i64, Path, description = "Evaluation id")),
    request_body(content = ResponseRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored; the answer as stored", body = StoredResponse),
        (status = 400, description = "Malformed JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role not allowed, or another officer's check", body = problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such evaluation visible to you", body = problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = problem::Problem, content_type = "application/problem+json"),
        (status = 408, description = "Body did not arrive whole within body_timeout_seconds", body = problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown rule, a rule that did not flag in this check, or a missing, unexpected or unknown reason; `errors` names the field", body = problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable; nothing stored", body = problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create_response(
    State(state): State<SharedState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: super::body::WholeBody,
) -> Result<(StatusCode, Json<StoredResponse>), ApiError> {
    app::require(&principal, app::responses::ROLES)?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    let text = json_text(&headers, body, &state)?;
    let request: ResponseRequest = crate::profile::parse_json(&text).map_err(validation)?;
    let stored = app::responses::respond(&state, &principal, id, request).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}
