//! A request's whole body, read within a deadline however slowly it trickles in: the
//! connection's idle timeout bounds only each pause, so without a deadline one byte a
//! minute would hold a connection, one of a capped number, for months.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

use super::SharedState;

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyProblem {
    /// Larger than the body limit.
    TooLarge,
    /// Not whole within the body timeout (config `body_timeout_seconds`).
    TooSlow,
    /// Cut off, or otherwise unreadable.
    Unreadable,
}

/// The request's body, whole, within the body limit and the body timeout. Never rejects:
/// the handler decides what a problem means, after it has checked who is asking.
pub struct WholeBody(pub Result<Bytes, BodyProblem>);

impl FromRequest<SharedState> for WholeBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let read = tokio::time::timeout(state.body_timeout, Bytes::from_request(request, state));
        Ok(Self(match read.await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(BodyProblem::TooLarge)
            }
            Ok(Err(_)) => Err(BodyProblem::Unreadable),
            Err(_) => Err(BodyProblem::TooSlow),
        }))
    }
}
