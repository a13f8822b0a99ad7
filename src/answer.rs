//! An officer's answer to a flag: `handled` (Åtgärdas/åtgärdat) or `not_relevant`
//! (Inte relevant) with a reason code from the manifest. No free text, so an answer
//! never holds personal data. A new answer to the same flag replaces the current one;
//! every earlier answer is kept in the store.

use serde::{Deserialize, Serialize};

/// What the officer answered. Its name (`handled`, `not_relevant`) is serde's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKind {
    /// The officer acts on the flag or has done so.
    Handled,
    /// The flag does not apply to this case; a reason code says why.
    NotRelevant,
}

impl ResponseKind {
    /// The words on the card's button and in the history.
    pub fn label_sv(self) -> &'static str {
        match self {
            Self::Handled => "Åtgärdas/åtgärdat",
            Self::NotRelevant => "Inte relevant",
        }
    }
}

/// The body of `POST /api/v1/checks/{id}/responses`. `reason` is required for
/// `not_relevant` and refused for `handled` (a handled flag needs no explanation, and a
/// reason there would mix two questions in the audit).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseRequest {
    /// A rule that flagged in this check.
    pub rule_id: String,
    pub response: ResponseKind,
    /// A reason code of the rule (or a common one) from the rule set that made the check.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A flag's answer as stored and read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredResponse {
    pub rule_id: String,
    pub response: ResponseKind,
    /// The reason code; `null` for `handled`.
    pub reason: Option<String>,
    /// RFC 3339, UTC.
    pub answered_at: String,
    /// The token name of the officer who answered.
    pub answered_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_contract() {
        assert_eq!(
            crate::names::name_of(&ResponseKind::NotRelevant),
            "not_relevant"
        );
        let request: ResponseRequest =
            crate::profile::parse_json(r#"{"rule_id":"a","response":"handled"}"#).expect("ok");
        assert_eq!(request.response, ResponseKind::Handled);
        assert!(request.reason.is_none());
        let err =
            crate::profile::parse_json::<ResponseRequest>(r#"{"rule_id":"a","response":"klar"}"#)
                .expect_err("unknown response");
        assert_eq!(err.path, "response");
        let err = crate::profile::parse_json::<ResponseRequest>(
            r#"{"rule_id":"a","response":"handled","note":"x"}"#,
        )
        .expect_err("no free text");
        assert!(err.message.contains("note"), "{err:?}");
    }
}
