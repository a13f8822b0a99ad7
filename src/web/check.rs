//! "Kontrollera ärende": the case form, its result as cards, and the earlier checks of
//! the same case. A submitted form is validated by the API's parser, evaluated and
//! stored by the same use case as `POST /api/v1/checks` ([`app::check::check`]).

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::form::{FieldProblem, FormInput, GroupView, fields};
use super::{CHECK_PAGE, Layout, ResultView, SharedState, Viewer, failure, refusal, render};
use crate::app;
use crate::profile::Date;
use crate::ruleset::RuleSet;
use crate::store::StoredEvaluation;

/// At most this many earlier checks are listed, newest first.
const HISTORY_LIMIT: usize = 20;

#[derive(Serialize)]
struct CheckPage {
    #[serde(flatten)]
    layout: Layout,
    groups: Vec<GroupView>,
    problems: Vec<ProblemView>,
    result: Option<ResultView>,
    history: Option<History>,
}

/// A problem in the summary at the top, linking to its field.
#[derive(Serialize)]
struct ProblemView {
    anchor: Option<String>,
    label: Option<&'static str>,
    message: String,
}

#[derive(Serialize)]
struct History {
    items: Vec<HistoryItem>,
    /// How many older checks are not listed.
    hidden: usize,
}

#[derive(Serialize)]
struct HistoryItem {
    id: i64,
    checked_on: String,
    saved_at: String,
    stage: &'static str,
    ruleset: String,
    by: String,
    current: bool,
    flags: Vec<StoredFlagView>,
    errors: usize,
}

/// A stored flag as the history lists it: the contract's stored flag with its severity's
/// word and its rule's title.
#[derive(Serialize)]
struct StoredFlagView {
    #[serde(flatten)]
    flag: crate::contract::StoredFlagJson,
    severity_label: &'static str,
    title: String,
}

fn page_of(viewer: &Viewer, input: &FormInput, problems: &[FieldProblem]) -> CheckPage {
    let groups = input.view(problems);
    let problems = problems
        .iter()
        .map(|problem| {
            let field = fields().find(|f| f.path == problem.path);
            let view = groups
                .iter()
                .flat_map(|g| &g.fields)
                .find(|f| f.path == problem.path);
            ProblemView {
                anchor: view.map(|v| v.anchor.clone()),
                label: field.map(|f| f.label),
                message: problem.message.clone(),
            }
        })
        .collect();
    CheckPage {
        layout: Layout::new("Kontrollera ärende", Some(viewer), CHECK_PAGE.path),
        groups,
        problems,
        result: None,
        history: None,
    }
}

/// The empty form.
pub(super) async fn page(viewer: Viewer) -> Response {
    if let Some(refused) = refusal(&viewer, &CHECK_PAGE) {
        return refused;
    }
    let input = FormInput::new_for(&Date::today().to_string());
    render(StatusCode::OK, "check.html", &page_of(&viewer, &input, &[]))
}

/// Checks the submitted case: errors beside their fields, or the result, stored.
pub(super) async fn submit(
    State(state): State<SharedState>,
    viewer: Viewer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &CHECK_PAGE) {
        return refused;
    }
    let input = FormInput::from_pairs(&pairs);
    let profile = match input.to_profile() {
        Ok(profile) => profile,
        Err(problems) => {
            tracing::info!(fields = problems.len(), "web check refused: invalid fields");
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "check.html",
                &page_of(&viewer, &input, &problems),
            );
        }
    };
    let case_id = profile.case_id.clone();
    let (id, report) = match app::check::check(&state, &viewer, profile).await {
        Ok(stored) => stored,
        Err(err) => return failure(&viewer, &err),
    };
    let evaluations = match app::check::case_history(&state, &viewer, &case_id).await {
        Ok((_, evaluations)) => evaluations,
        Err(err) => return failure(&viewer, &err),
    };
    let rules = app::rules::active(&state, &viewer);
    let mut page = page_of(&viewer, &input, &[]);
    page.result = Some(ResultView::of(&report, &rules));
    page.history = Some(history(evaluations, id, &rules));
    render(StatusCode::OK, "check.html", &page)
}

fn history(evaluations: Vec<StoredEvaluation>, current: i64, rules: &RuleSet) -> History {
    let total = evaluations.len();
    let items = evaluations
        .into_iter()
        .rev()
        .take(HISTORY_LIMIT)
        .map(|e| {
            let errors = e.errors.len();
            let mut flags: Vec<StoredFlagView> = e
                .flags
                .into_iter()
                .map(|flag| StoredFlagView {
                    severity_label: flag.severity.label_sv(),
                    title: rules
                        .rule(&flag.rule_id)
                        .map_or_else(|| flag.rule_id.clone(), |r| r.meta.title.clone()),
                    flag,
                })
                .collect();
            flags.sort_by_key(|f| std::cmp::Reverse(f.flag.severity));
            HistoryItem {
                id: e.id,
                current: e.id == current,
                checked_on: e.checked_on,
                saved_at: local_time(&e.created_at),
                stage: e.stage.label_sv(),
                ruleset: format!(
                    "{} version {} ({})",
                    e.rule_set_name,
                    e.rule_set_version,
                    e.rule_set_hash.get(..12).unwrap_or_default()
                ),
                by: e.requested_by,
                flags,
                errors,
            }
        })
        .collect();
    History {
        items,
        hidden: total.saturating_sub(HISTORY_LIMIT),
    }
}

/// A stored UTC timestamp as date and time in Sweden, e.g. `2024-03-15 14:05`.
fn local_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| {
            t.to_zoned(crate::profile::stockholm().clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}
