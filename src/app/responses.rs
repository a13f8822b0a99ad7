//! Answering a flag: the officer who made a check records, per flag, `handled` or
//! `not_relevant` with a reason code. Only that officer answers: the answer is their
//! judgement of their own check, and the audit counts it per officer-month. Other case
//! officers see the answer with the check; admins read it but do not answer for anyone;
//! analysts and policy staff neither. A new answer replaces the current one and the
//! history is kept. Reason codes are those of the rule set that made the check.

use super::{App, AppError, access, require};
use crate::answer::{ResponseKind, ResponseRequest, StoredResponse};
use crate::auth::{Principal, Role};
use crate::engine::reasons::ReasonCatalog;
use crate::pseudonym::Pseudonym;
use crate::store::responses::NewResponse;

/// Roles that may answer flags (of their own checks).
pub const ROLES: &[Role] = &[Role::Handlaggare];

/// Whether `principal` answers the flags of a check requested by `requested_by`: the case
/// officer who made it, and nobody else (an admin who made a check does not answer it).
pub fn may_answer(principal: &Principal, requested_by: &str) -> bool {
    ROLES.contains(&principal.role) && principal.name == requested_by
}

/// The reason codes of the rule set with `content_hash`: the active set's when it is the
/// active one, otherwise read from the manifest stored with the rule set. A rule set
/// written before reason codes existed (it declares none) takes the active set's codes,
/// so its checks can be answered at all.
pub async fn catalog(app: &App, content_hash: &str) -> Result<ReasonCatalog, AppError> {
    let active = app.active_rules();
    if active.content_hash == content_hash {
        return Ok(ReasonCatalog::of(&active));
    }
    let stored = app
        .store
        .rule_set_manifest(content_hash.to_owned())
        .await?
        .and_then(|text| ReasonCatalog::from_manifest(&text));
    Ok(match stored {
        Some(catalog) if catalog.declares_any() => catalog,
        _ => ReasonCatalog::of(&active),
    })
}

/// Records `request` as the answer to one flag of check `evaluation_id`; returns it once
/// durable. The write and its access-log entry are one commit.
pub async fn respond(
    app: &App,
    principal: &Principal,
    evaluation_id: i64,
    request: ResponseRequest,
) -> Result<StoredResponse, AppError> {
    require(principal, ROLES)?;
    let evaluation = super::check::readable(app, principal, evaluation_id).await?;
    if !may_answer(principal, &evaluation.requested_by) {
        tracing::warn!(actor = ?principal.name, "refused: answering a check that is not the officer's own");
        return Err(AppError::Forbidden);
    }
    let catalog = catalog(app, &evaluation.rule_set_hash).await?;
    let rule_id = request.rule_id;
    let flagged = evaluation.flags.iter().any(|f| f.rule_id == rule_id);
    if !flagged {
        let message = if catalog.has_rule(&rule_id) {
            "regeln flaggade inte vid den här kontrollen"
        } else {
            "okänd regel: den finns inte i regeluppsättningen som gjorde kontrollen"
        };
        return Err(invalid("rule_id", message));
    }
    match (request.response, request.reason.as_deref()) {
        (ResponseKind::NotRelevant, None) => {
            return Err(invalid(
                "reason",
                "en orsak krävs när svaret är not_relevant",
            ));
        }
        (ResponseKind::Handled, Some(_)) => {
            return Err(invalid(
                "reason",
                "en orsak anges bara när svaret är not_relevant",
            ));
        }
        (ResponseKind::NotRelevant, Some(code)) if catalog.label(&rule_id, code).is_none() => {
            return Err(invalid(
                "reason",
                "okänd orsak: regeln har ingen sådan orsakskod",
            ));
        }
        _ => {}
    }
    let case = Pseudonym::from_stored(evaluation.case.clone());
    let stored = app
        .store
        .insert_response(
            NewResponse {
                evaluation_id,
                rule_id,
                response: request.response,
                reason: request.reason,
                answered_by: principal.name.clone(),
            },
            access(principal, "respond", case, Some(evaluation_id)),
        )
        .await?;
    tracing::info!(evaluation_id, "flag answered");
    Ok(stored)
}

fn invalid(field: &'static str, message: &str) -> AppError {
    AppError::Invalid {
        field,
        message: message.to_owned(),
    }
}
