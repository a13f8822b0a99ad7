//! Answering a flag on its card: "Åtgärdas/åtgärdat", or "Inte relevant" with a reason
//! from the rule set that made the check. `POST /kontroll/{id}/svar` records the answer
//! through the same use case as the API ([`app::responses::respond`]) and sends the
//! browser back to the stored check's card (`303 See Other`), so a refresh stores
//! nothing twice. Only the officer who made the check sees the forms; everyone who may
//! see the check sees the current answers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::{
    CHECK_PAGE, ErrorPage, Layout, ResultView, SharedState, Viewer, failure, refusal, render,
};
use crate::answer::{ResponseKind, ResponseRequest, StoredResponse};
use crate::app::{self, AppError};
use crate::engine::reasons::ReasonCatalog;

/// The answer part of one flag card.
#[derive(Serialize)]
pub(super) struct AnswerView {
    /// The stored check the card belongs to.
    evaluation_id: i64,
    /// The forms are shown only to the officer who made the check.
    may_answer: bool,
    csrf: String,
    reasons: Vec<ReasonOption>,
    current: Option<CurrentAnswer>,
}

#[derive(Serialize)]
struct ReasonOption {
    code: String,
    label: String,
    selected: bool,
}

/// The flag's current answer, in words.
#[derive(Serialize)]
struct CurrentAnswer {
    response: ResponseKind,
    label: &'static str,
    reason_label: Option<String>,
    answered_at: String,
    by: String,
}

impl ResultView {
    /// Adds to each flag card of stored check `evaluation_id` its current answer and,
    /// for the officer who made the check (`may_answer`), the answer forms.
    pub(super) fn with_answers(
        mut self,
        viewer: &Viewer,
        evaluation_id: i64,
        may_answer: bool,
        responses: &[StoredResponse],
        catalog: &ReasonCatalog,
    ) -> Self {
        for card in &mut self.flags {
            let rule_id = card.flag.rule_id.as_str();
            let current = responses.iter().find(|r| r.rule_id == rule_id);
            card.answer = Some(AnswerView {
                evaluation_id,
                may_answer,
                csrf: viewer.csrf.clone(),
                reasons: catalog
                    .for_rule(rule_id)
                    .map(|r| ReasonOption {
                        selected: current.and_then(|c| c.reason.as_deref()) == Some(&r.code),
                        code: r.code.clone(),
                        label: r.label.clone(),
                    })
                    .collect(),
                current: current.map(|c| CurrentAnswer {
                    response: c.response,
                    label: c.response.label_sv(),
                    reason_label: c
                        .reason
                        .as_deref()
                        .map(|code| catalog.label(rule_id, code).unwrap_or(code).to_owned()),
                    answered_at: crate::present::swedish_time(&c.answered_at),
                    by: c.answered_by.clone(),
                }),
            });
        }
        self
    }
}

/// The answer form as posted (the CSRF token is checked before this runs).
#[derive(Deserialize)]
pub(super) struct AnswerForm {
    rule_id: String,
    response: String,
    #[serde(default)]
    reason: String,
}

/// Records the answer to one flag and sends the browser back to the check's card.
pub(super) async fn answer(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path(id): Path<String>,
    super::PageForm(form): super::PageForm<AnswerForm>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &CHECK_PAGE) {
        return refused;
    }
    let Ok(id) = id.parse::<i64>() else {
        return refused_answer(
            &viewer,
            StatusCode::NOT_FOUND,
            "Kontrollen finns inte.",
            None,
        );
    };
    let Some(response) = crate::names::parse_name::<ResponseKind>(&form.response) else {
        return refused_answer(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Svaret måste vara Åtgärdas/åtgärdat eller Inte relevant.",
            Some(id),
        );
    };
    // The "Åtgärdas/åtgärdat" form has no reason; a stray one is not an answer to it.
    let reason =
        (response == ResponseKind::NotRelevant && !form.reason.is_empty()).then_some(form.reason);
    let request = ResponseRequest {
        rule_id: form.rule_id,
        response,
        reason,
    };
    match app::responses::respond(&state, &viewer, id, request).await {
        Ok(stored) => Redirect::to(&format!(
            "{}/{id}#flagga-{}",
            CHECK_PAGE.path, stored.rule_id
        ))
        .into_response(),
        Err(AppError::NotFound) => refused_answer(
            &viewer,
            StatusCode::NOT_FOUND,
            "Kontrollen finns inte, eller så är den inte din.",
            None,
        ),
        Err(AppError::Forbidden) => refused_answer(
            &viewer,
            StatusCode::FORBIDDEN,
            "Bara den som gjorde kontrollen kan svara på dess flaggor.",
            Some(id),
        ),
        Err(AppError::Invalid { field, .. }) => {
            let message = match field {
                "reason" => "Välj en orsak i listan när du svarar Inte relevant.",
                _ => "Flaggan finns inte i den här kontrollen.",
            };
            refused_answer(&viewer, StatusCode::UNPROCESSABLE_ENTITY, message, Some(id))
        }
        Err(err) => failure(&viewer, &err),
    }
}

/// A refused answer: nothing was stored; a link back to the check when there is one.
fn refused_answer(
    viewer: &Viewer,
    status: StatusCode,
    message: &str,
    back_to: Option<i64>,
) -> Response {
    render(
        status,
        "error.html",
        &ErrorPage {
            layout: Layout::new("Svaret sparades inte", Some(viewer), CHECK_PAGE.path),
            heading: "Svaret sparades inte",
            message: format!("{message} Inget sparades."),
            link: back_to.map(|id| {
                (
                    format!("/kontroll/{id}"),
                    "Tillbaka till kontrollen för att försöka igen",
                )
            }),
        },
    )
}
