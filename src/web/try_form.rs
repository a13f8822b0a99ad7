//! "Prova" with the Kontrollera ärende form: the same fields, checked by the same form
//! code, but evaluated with [`app::check::dry_run`] (nothing stored, no case history).
//! For everyone who may try profiles on the Regler page.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::form::{FieldProblem, FormInput, GroupView, fields};
use super::{DRY_RUN_TOOL, Layout, RULES_PAGE, ResultView, SharedState, Viewer, failure, render};
use crate::app;
use crate::profile::Date;

#[derive(Serialize)]
struct TryFormPage {
    #[serde(flatten)]
    layout: Layout,
    groups: Vec<GroupView>,
    problems: Vec<ProblemView>,
    result: Option<ResultView>,
}

/// A problem in the summary at the top, linking to its field.
#[derive(Serialize)]
struct ProblemView {
    anchor: Option<String>,
    label: Option<&'static str>,
    message: String,
}

fn page_of(viewer: &Viewer, input: &FormInput, problems: &[FieldProblem]) -> TryFormPage {
    let groups = input.view(problems);
    let problems = problems
        .iter()
        .map(|problem| ProblemView {
            anchor: groups
                .iter()
                .flat_map(|g| &g.fields)
                .find(|f| f.path == problem.path)
                .map(|v| v.anchor.clone()),
            label: fields().find(|f| f.path == problem.path).map(|f| f.label),
            message: problem.message.clone(),
        })
        .collect();
    TryFormPage {
        layout: Layout::new("Prova reglerna", Some(viewer), RULES_PAGE.path),
        groups,
        problems,
        result: None,
    }
}

/// The empty form.
pub(super) async fn page(viewer: Viewer) -> Response {
    if let Some(refused) = super::refusal(&viewer, &DRY_RUN_TOOL) {
        return refused;
    }
    let input = FormInput::new_for(&Date::today().to_string());
    render(
        StatusCode::OK,
        "try_form.html",
        &page_of(&viewer, &input, &[]),
    )
}

/// Tries the submitted form with the active rules: errors beside their fields, or the
/// flags as cards. Nothing is stored.
pub(super) async fn submit(
    state: &SharedState,
    viewer: &Viewer,
    pairs: &[(String, String)],
) -> Response {
    let input = FormInput::from_pairs(pairs);
    let profile = match input.to_profile() {
        Ok(profile) => profile,
        Err(problems) => {
            tracing::info!(
                fields = problems.len(),
                "web dry run refused: invalid fields"
            );
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "try_form.html",
                &page_of(viewer, &input, &problems),
            );
        }
    };
    let (rules, report) = match app::check::dry_run(state, viewer, profile).await {
        Ok(done) => done,
        Err(err) => return failure(viewer, &err),
    };
    tracing::info!(flags = report.flags.len(), "web dry run from the form");
    let mut page = page_of(viewer, &input, &[]);
    page.result = Some(ResultView::of(&report, &rules));
    render(StatusCode::OK, "try_form.html", &page)
}
