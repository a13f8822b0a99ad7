//! The one HTTP error type. Expected errors map to their status with an RFC 9457
//! `application/problem+json` body; unexpected ones become a 500 that is logged with
//! the request id and never echoed to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::{AppError, error_chain};
use crate::contract::ProblemJson;
use crate::store::StoreError;

/// One invalid field of a request.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `activity_level.hours_per_week`; `.` for the body.
    pub field: String,
    pub detail: String,
}

/// A problem document (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Invalid fields, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Rule-set problems, for a refused reload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<ProblemJson>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("ogiltig begäran: {0}")]
    BadRequest(String),
    #[error("valideringsfel")]
    Validation(Vec<FieldError>),
    #[error("saknar eller ogiltig token")]
    Unauthorized,
    #[error("rollen saknar behörighet")]
    Forbidden,
    /// Forbidden, with the reason for the person.
    #[error("{0}")]
    ForbiddenBecause(&'static str),
    #[error("hittades inte")]
    NotFound,
    /// The person already has as much long work waiting or running as one may.
    #[error("för mycket på en gång")]
    TooMuchAtOnce(String),
    /// The request clashes with the stored state; the message says how.
    #[error("konflikt: {0}")]
    Conflict(String),
    #[error("för stor begäran")]
    PayloadTooLarge(usize),
    #[error("fel innehållstyp")]
    UnsupportedMediaType,
    /// The body did not arrive whole within this many seconds (`body_timeout_seconds`).
    #[error("begäran kom inte fram i tid")]
    RequestTimeout(u64),
    #[error("regeluppsättningen vägrades")]
    RulesRefused(Vec<ProblemJson>),
    /// Too many lookups in a short time; the client may try again after this many seconds.
    #[error("för många förfrågningar")]
    TooManyRequests(u64),
    /// The database cannot take writes now; the cause goes to the log only.
    #[error("tjänsten är inte tillgänglig")]
    Unavailable(#[source] StoreError),
    /// A bug or a corrupt database; the cause goes to the log only.
    #[error("internt fel")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        if err.is_unavailable() {
            Self::Unavailable(err)
        } else {
            Self::Internal(Box::new(err))
        }
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Forbidden => Self::Forbidden,
            AppError::NotForTests(reason) => Self::ForbiddenBecause(reason),
            AppError::NotFound => Self::NotFound,
            AppError::Rules(err) => {
                Self::RulesRefused(err.problems.iter().map(ProblemJson::from).collect())
            }
            AppError::Store(err) => err.into(),
            AppError::TooManyLookups {
                retry_after_seconds,
            } => Self::TooManyRequests(retry_after_seconds),
            AppError::Input(message) => Self::BadRequest(message),
            AppError::Conflict(message) => Self::Conflict(message),
            AppError::TooMuchAtOnce(at_once) => Self::TooMuchAtOnce(format!(
                "Du har redan {at_once} uppföljningar eller prov som körs; vänta tills de är klara."
            )),
            AppError::Invalid { field, message } => Self::Validation(vec![FieldError {
                field: field.to_owned(),
                detail: message,
            }]),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::RulesRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ForbiddenBecause(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests(_) | Self::TooMuchAtOnce(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(self) -> Problem {
        let status = self.status().as_u16();
        let (kind, title, detail, errors, problems) = match self {
            Self::BadRequest(detail) => (
                "bad-request",
                "Ogiltig begäran",
                Some(detail),
                vec![],
                vec![],
            ),
            Self::Validation(errors) => (
                "validation",
                "Ogiltiga uppgifter",
                Some("Ett eller flera fält är felaktiga; se errors.".to_owned()),
                errors,
                vec![],
            ),
            Self::Unauthorized => (
                "unauthorized",
                "Inloggning krävs",
                Some("Ange en giltig token i Authorization: Bearer.".to_owned()),
                vec![],
                vec![],
            ),
            Self::Forbidden => (
                "forbidden",
                "Behörighet saknas",
                Some("Din roll får inte göra detta.".to_owned()),
                vec![],
                vec![],
            ),
            Self::ForbiddenBecause(reason) => (
                "forbidden",
                "Behörighet saknas",
                Some(reason.to_owned()),
                vec![],
                vec![],
            ),
            Self::NotFound => ("not-found", "Hittades inte", None, vec![], vec![]),
            Self::PayloadTooLarge(limit) => (
                "payload-too-large",
                "För stor begäran",
                Some(format!("Begäran får vara högst {limit} byte.")),
                vec![],
                vec![],
            ),
            Self::UnsupportedMediaType => (
                "unsupported-media-type",
                "Fel innehållstyp",
                Some("Skicka JSON med Content-Type: application/json.".to_owned()),
                vec![],
                vec![],
            ),
            Self::RequestTimeout(seconds) => (
                "request-timeout",
                "Begäran kom inte fram i tid",
                Some(format!(
                    "Hela begäran ska komma fram inom {seconds} sekunder."
                )),
                vec![],
                vec![],
            ),
            Self::RulesRefused(problems) => (
                "rules-refused",
                "Regeluppsättningen vägrades",
                Some(
                    "Den tidigare regeluppsättningen används fortfarande; se problems.".to_owned(),
                ),
                vec![],
                problems,
            ),
            Self::Conflict(detail) => ("conflict", "Konflikt", Some(detail), vec![], vec![]),
            Self::TooMuchAtOnce(detail) => (
                "too-much-at-once",
                "För mycket på en gång",
                Some(detail),
                vec![],
                vec![],
            ),
            Self::TooManyRequests(seconds) => (
                "too-many-requests",
                "För många förfrågningar",
                Some(crate::app::check::lookups_wait_text(seconds)),
                vec![],
                vec![],
            ),
            Self::Unavailable(_) => (
                "unavailable",
                "Tjänsten är tillfälligt otillgänglig",
                Some(
                    "Databasen är inte tillgänglig just nu. Inget sparades; försök igen."
                        .to_owned(),
                ),
                vec![],
                vec![],
            ),
            Self::Internal(_) => ("internal", "Internt fel", None, vec![], vec![]),
        };
        Problem {
            kind: format!("urn:gk-regler:problem:{kind}"),
            title: title.to_owned(),
            status,
            detail,
            errors,
            problems,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            // The details of unexpected errors go to the log (inside the request's span,
            // which carries the request id), never to the client.
            Self::Internal(_) => tracing::error!(error = %error_chain(&self), "internal error"),
            Self::Unavailable(_) => {
                tracing::warn!(error = %error_chain(&self), "store unavailable")
            }
            _ => {}
        }
        let www_authenticate = matches!(self, Self::Unauthorized);
        // The rest of a body that stopped arriving is never read: the connection ends.
        let close = matches!(self, Self::RequestTimeout(_));
        let retry_after = match self {
            Self::TooManyRequests(seconds) => Some(seconds),
            _ => None,
        };
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if www_authenticate {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
