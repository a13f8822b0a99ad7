//! "Kontrollera ärende": the case form, the stored check's own page with its cards, and
//! the case's whole story.
//!
//! - `GET /kontroll`: the empty form, and a case-id form that fills it from the case's
//!   latest check.
//! - `POST /kontroll`: validated by the API's parser, evaluated and stored by the same use
//!   case as `POST /api/v1/checks` ([`app::check::check`]); then a `303 See Other` to the
//!   stored check's page, so a refresh stores nothing twice (Post/Redirect/Get).
//! - `GET /kontroll/{id}`: the stored check (for the officer who made it, as the API's
//!   `GET /api/v1/checks/{id}`), the case's story and the form filled for the next check.
//! - `POST /kontroll/arende`: a case id in the body; the case's story by every officer and
//!   the form filled from the latest check ([`app::check::case_history`]).
//!
//! The form first shows the fields the rules read; the others, which only feed the
//! follow-up, sit in a folded section.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use super::form::{
    AnswerView, FieldProblem, FormInput, GroupView, answers_of, answers_since, fields,
};
use super::{
    CHECK_PAGE, ErrorPage, Layout, ResultView, SharedState, Viewer, failure, refusal, render,
};
use crate::app::{self, AppError};
use crate::contract::{EvaluationReport, FlagJson, NotApplicableJson, RuleErrorJson, RuleSetRef};
use crate::engine::NotApplicable;
use crate::engine::reasons::ReasonCatalog;
use crate::profile::{CaseId, Date};
use crate::ruleset::RuleSet;
use crate::store::StoredEvaluation;

/// At most this many checks of a case are listed, newest first.
const HISTORY_LIMIT: usize = 20;

#[derive(Serialize)]
struct CheckPage {
    #[serde(flatten)]
    layout: Layout,
    /// The fields the rules read (and the case id), by group.
    groups: Vec<GroupView>,
    /// The fields only the follow-up reads, by group: shown folded.
    followup: Vec<GroupView>,
    followup_count: usize,
    /// Unfolded when one of its fields has an error.
    followup_open: bool,
    problems: Vec<ProblemView>,
    result: Option<ResultView>,
    /// The stored check the page is about.
    stored: Option<StoredHead>,
    history: Option<History>,
    /// What the case-id form found.
    lookup: Option<Lookup>,
}

/// A problem in the summary at the top, linking to its field.
#[derive(Serialize)]
struct ProblemView {
    anchor: Option<String>,
    label: Option<&'static str>,
    message: String,
}

/// The stored check a page shows: what identifies it in the case file.
#[derive(Serialize)]
struct StoredHead {
    id: i64,
    /// The case id, when this browser's session made the check and it is still known.
    case_id: Option<String>,
    checked_on: String,
    stage: &'static str,
    saved_at: String,
    by: String,
    ruleset: String,
}

#[derive(Serialize)]
struct Lookup {
    case_id: String,
    checks: usize,
    /// The case id in capitals, when it differs: case ids are told apart by case, and
    /// one typed in small letters finds none of the checks made in capitals.
    in_capitals: Option<String>,
}

#[derive(Serialize)]
struct History {
    items: Vec<HistoryItem>,
    /// How many older checks are not listed.
    hidden: usize,
    /// Whether the story includes a check by someone other than the viewer.
    by_others: bool,
    /// Why the check is listed alone, when the case lookups of the last minute used up
    /// the viewer's budget.
    withheld: Option<String>,
}

#[derive(Serialize)]
struct HistoryItem {
    id: i64,
    checked_on: String,
    saved_at: String,
    stage: &'static str,
    ruleset: String,
    by: String,
    mine: bool,
    current: bool,
    flags: Vec<StoredFlagView>,
    /// Flags of the check before this one that this check no longer raised.
    resolved: Vec<String>,
    errors: usize,
    answers: Vec<AnswerView>,
    /// How many answers differ from the check before.
    changed: usize,
    /// How many fields the check answered ("Vet ej" is no answer).
    filled: usize,
}

/// A stored flag as the story lists it: the contract's stored flag with its severity's
/// word and its rule's title.
#[derive(Serialize)]
struct StoredFlagView {
    #[serde(flatten)]
    flag: crate::contract::StoredFlagJson,
    severity_label: &'static str,
    title: String,
    /// The current answer to the flag, in words ("Inte relevant: personen avböjer").
    response: Option<String>,
}

/// What a rule declares in the manifest about the personal data it reads and how its
/// flag clears: the one place the web pages read these declarations from.
struct Declared<'a> {
    /// The profile paths it reads (`inputs`), when declared.
    inputs: Option<Vec<&'a str>>,
    /// "Så försvinner flaggan" (`how_to_clear`).
    how_to_clear: Option<&'a str>,
    /// Whether a change of the profile can clear the flag (`clearable`, default true).
    clearable: bool,
}

fn declared(rule: &crate::ruleset::Rule) -> Declared<'_> {
    Declared {
        inputs: rule
            .meta
            .inputs
            .as_ref()
            .map(|inputs| inputs.iter().map(String::as_str).collect()),
        how_to_clear: rule.meta.how_to_clear.as_deref(),
        clearable: rule.meta.clearable,
    }
}

/// How a flag's card says the flag clears, with links to the form's fields it reads.
#[derive(Serialize)]
pub(super) struct ClearView {
    text: String,
    clearable: bool,
    fields: Vec<FieldLink>,
}

#[derive(Serialize)]
struct FieldLink {
    label: &'static str,
    anchor: String,
}

/// The fields of the profile a rule reads: its declared `inputs`, or for a rule without
/// them, the fields its script's code (comments left out) reads as a property: a field
/// counts when its last name (`.requested_on`) follows a dot anywhere in the script.
fn fields_read_by(rules: &RuleSet, rule: &crate::ruleset::Rule) -> Vec<&'static str> {
    if let Some(inputs) = declared(rule).inputs {
        return fields()
            .map(|f| f.path)
            .filter(|path| inputs.contains(path))
            .collect();
    }
    let code: String = rules
        .sources
        .iter()
        .filter(|s| s.name == rule.meta.script)
        .flat_map(|s| s.text.lines())
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let reads = |name: &str| {
        let needle = format!(".{name}");
        code.match_indices(&needle).any(|(at, _)| {
            !code[at + needle.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    };
    fields()
        .map(|f| f.path)
        .filter(|path| reads(path.rsplit('.').next().unwrap_or(path)))
        .collect()
}

/// The profile fields the rules of `rules` read. The case id and the stage are always
/// among them.
pub fn read_by_rules(rules: &RuleSet) -> BTreeSet<&'static str> {
    let mut read: BTreeSet<&'static str> = ["case_id", "stage"].into();
    for rule in &rules.rules {
        read.extend(fields_read_by(rules, rule));
    }
    read
}

/// Adds to each card of `result` how its flag clears (when the rule says) and links to
/// the fields of the form its rule reads.
fn with_how_to_clear(mut result: ResultView, rules: &RuleSet) -> ResultView {
    for card in &mut result.flags {
        let Some(rule) = rules.rule(&card.flag.rule_id) else {
            continue;
        };
        let declared = declared(rule);
        let fields: Vec<FieldLink> = fields_read_by(rules, rule)
            .into_iter()
            .filter(|path| !matches!(*path, "stage" | "checked_on"))
            .filter_map(super::form::field_link)
            .map(|(label, anchor)| FieldLink { label, anchor })
            .collect();
        let text = match declared.how_to_clear {
            Some(text) => text.to_owned(),
            None if fields.is_empty() => continue,
            None => String::new(),
        };
        card.clear = Some(ClearView {
            text,
            clearable: declared.clearable,
            fields,
        });
    }
    result
}

fn page_of(
    viewer: &Viewer,
    rules: &RuleSet,
    input: &FormInput,
    problems: &[FieldProblem],
) -> CheckPage {
    let all = input.view(problems);
    let problems: Vec<ProblemView> = problems
        .iter()
        .map(|problem| {
            let field = fields().find(|f| f.path == problem.path);
            let view = all
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
    let read = read_by_rules(rules);
    let mut groups = Vec::new();
    let mut followup = Vec::new();
    for group in all {
        let (first, rest): (Vec<_>, Vec<_>) = group
            .fields
            .into_iter()
            .partition(|f| read.contains(f.path));
        for (target, fields) in [(&mut groups, first), (&mut followup, rest)] {
            if !fields.is_empty() {
                target.push(GroupView {
                    id: group.id,
                    title: group.title,
                    fields,
                });
            }
        }
    }
    let followup_count = followup.iter().map(|g| g.fields.len()).sum();
    let followup_open = followup
        .iter()
        .flat_map(|g| &g.fields)
        .any(|f| f.error.is_some());
    CheckPage {
        layout: Layout::new("Kontrollera ärende", Some(viewer), CHECK_PAGE.path),
        groups,
        followup,
        followup_count,
        followup_open,
        problems,
        result: None,
        stored: None,
        history: None,
        lookup: None,
    }
}

/// The empty form.
pub(super) async fn page(State(state): State<SharedState>, viewer: Viewer) -> Response {
    if let Some(refused) = refusal(&viewer, &CHECK_PAGE) {
        return refused;
    }
    let rules = app::rules::active(&state, &viewer);
    let input = FormInput::new_for(&Date::today().to_string());
    render(
        StatusCode::OK,
        "check.html",
        &page_of(&viewer, &rules, &input, &[]),
    )
}

/// Checks the submitted case: errors beside their fields, or the check stored and the
/// browser sent to its page.
pub(super) async fn submit(
    State(state): State<SharedState>,
    viewer: Viewer,
    super::PageForm(pairs): super::PageForm<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &CHECK_PAGE) {
        return refused;
    }
    let input = FormInput::from_pairs(&pairs);
    let profile = match input.to_profile() {
        Ok(profile) => profile,
        Err(problems) => {
            tracing::info!(fields = problems.len(), "web check refused: invalid fields");
            let rules = app::rules::active(&state, &viewer);
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "check.html",
                &page_of(&viewer, &rules, &input, &problems),
            );
        }
    };
    let case_id = profile.case_id.clone();
    let id = match app::check::check(&state, &viewer, profile).await {
        Ok((id, _)) => id,
        Err(err) => return failure(&viewer, &err),
    };
    if !viewer.session_id.is_empty() {
        state
            .recent_case_ids
            .remember(&session_key(&viewer), id, case_id);
    }
    Redirect::to(&format!("{}/{id}", CHECK_PAGE.path)).into_response()
}

/// The key under which a session's recent case id is held: the session id's hash, so
/// the memory holds nothing that signs anyone in.
pub(super) fn session_key(viewer: &Viewer) -> String {
    hex::encode(crate::auth::token_hash(&viewer.session_id))
}

/// A stored check's own page: its cards, the case's story and the form for the next
/// check of the case.
pub(super) async fn stored(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &CHECK_PAGE) {
        return refused;
    }
    let Ok(id) = id.parse::<i64>() else {
        return not_found(&viewer);
    };
    let app::check::CheckWithCase {
        evaluation,
        case: evaluations,
        others_withheld,
    } = match app::check::read_with_case(&state, &viewer, id).await {
        Ok(found) => found,
        Err(AppError::NotFound) => return not_found(&viewer),
        Err(err) => return failure(&viewer, &err),
    };
    let case_id = (!viewer.session_id.is_empty())
        .then(|| {
            state
                .recent_case_ids
                .recall(&session_key(&viewer), id, state.web.session_idle)
        })
        .flatten();
    let rules = app::rules::active(&state, &viewer);
    let profile_json: serde_json::Value =
        serde_json::from_str(&evaluation.profile_json).unwrap_or_default();
    let input = FormInput::from_stored(
        &profile_json,
        case_id.as_ref().map_or("", CaseId::expose),
        &evaluation.checked_on,
    );
    let catalog = match app::responses::catalog(&state, &evaluation.rule_set_hash).await {
        Ok(catalog) => catalog,
        Err(err) => return failure(&viewer, &err),
    };
    let mut page = page_of(&viewer, &rules, &input, &[]);
    page.result = Some(with_how_to_clear(
        ResultView::of(&report_of(&evaluation, &rules), &rules).with_answers(
            &viewer,
            id,
            app::responses::may_answer(&viewer, &evaluation.requested_by),
            &evaluation.responses,
            &catalog,
        ),
        &rules,
    ));
    page.stored = Some(StoredHead {
        id,
        case_id: case_id.map(|c| c.expose().to_owned()),
        checked_on: evaluation.checked_on.clone(),
        stage: evaluation.stage.label_sv(),
        saved_at: crate::present::swedish_time(&evaluation.created_at),
        by: evaluation.requested_by.clone(),
        ruleset: ruleset_label(&evaluation),
    });
    let mut story = history(evaluations, Some(id), &viewer, &rules);
    story.withheld = others_withheld.map(|seconds| {
        format!(
            "Ärendets andra kontroller visas inte nu, om det finns några. {}",
            app::check::lookups_wait_text(seconds)
        )
    });
    page.history = Some(story);
    render(StatusCode::OK, "check.html", &page)
}

/// The case-id form: the case's story by every officer, and the form filled from its
/// latest check.
pub(super) async fn lookup(
    State(state): State<SharedState>,
    viewer: Viewer,
    super::PageForm(pairs): super::PageForm<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &CHECK_PAGE) {
        return refused;
    }
    let rules = app::rules::active(&state, &viewer);
    let today = Date::today().to_string();
    let typed: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name == "case_id")
        .map(|(_, value)| value.trim())
        .collect();
    let case_id = match typed[..] {
        [one] => CaseId::parse(one),
        _ => Err("ange ett ärende-id".to_owned()),
    };
    let case_id = match case_id {
        Ok(case_id) => case_id,
        Err(why) => {
            let mut page = page_of(&viewer, &rules, &FormInput::new_for(&today), &[]);
            page.problems.push(ProblemView {
                anchor: Some("f-arende-sok".to_owned()),
                label: Some("Ärende-id att hämta"),
                message: format!("Ange ärende-id för att hämta ärendets kontroller: {why}."),
            });
            return render(StatusCode::UNPROCESSABLE_ENTITY, "check.html", &page);
        }
    };
    let evaluations = match app::check::case_history(&state, &viewer, &case_id).await {
        Ok((_, evaluations)) => evaluations,
        Err(AppError::TooManyLookups {
            retry_after_seconds,
        }) => {
            let mut page = page_of(&viewer, &rules, &FormInput::new_for(&today), &[]);
            page.problems.push(ProblemView {
                anchor: Some("f-arende-sok".to_owned()),
                label: Some("Ärende-id att hämta"),
                message: app::check::lookups_wait_text(retry_after_seconds),
            });
            let mut response = render(StatusCode::TOO_MANY_REQUESTS, "check.html", &page);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_seconds),
            );
            return response;
        }
        Err(err) => return failure(&viewer, &err),
    };
    let input = match evaluations.last() {
        Some(latest) => {
            let json: serde_json::Value =
                serde_json::from_str(&latest.profile_json).unwrap_or_default();
            FormInput::from_stored(&json, case_id.expose(), &today)
        }
        None => {
            let mut input = FormInput::new_for(&today);
            input.set_case_id(case_id.expose());
            input
        }
    };
    let mut page = page_of(&viewer, &rules, &input, &[]);
    let in_capitals = case_id.expose().to_uppercase();
    page.lookup = Some(Lookup {
        case_id: case_id.expose().to_owned(),
        checks: evaluations.len(),
        in_capitals: (in_capitals != case_id.expose()).then_some(in_capitals),
    });
    if !evaluations.is_empty() {
        page.history = Some(history(evaluations, None, &viewer, &rules));
    }
    render(StatusCode::OK, "check.html", &page)
}

fn not_found(viewer: &Viewer) -> Response {
    render(
        StatusCode::NOT_FOUND,
        "error.html",
        &ErrorPage {
            layout: Layout::new("Hittades inte", Some(viewer), ""),
            heading: "Kontrollen hittades inte",
            message: "Det finns ingen kontroll med det numret som du kan öppna. En kontroll \
                      öppnas med sitt nummer av den som gjorde den; ärendets alla kontroller \
                      visas när du anger ärende-id under Kontrollera ärende."
                .to_owned(),
            link: None,
        },
    )
}

/// The rule set of a stored check in words: name, version and the start of its hash.
fn ruleset_label(e: &StoredEvaluation) -> String {
    let reference = RuleSetRef::new(
        e.rule_set_name.clone(),
        e.rule_set_version.clone(),
        e.rule_set_hash.clone(),
    );
    format!(
        "{} version {} ({})",
        reference.name,
        reference.version,
        reference.short_hash()
    )
}

/// A stored check as a report for the cards: each flag's texts from the active rule set
/// (the rule's id when it is no longer there); which rules did not apply is known only
/// when the check was made with the active rule set.
fn report_of(e: &StoredEvaluation, rules: &RuleSet) -> EvaluationReport {
    let same_rules = e.rule_set_hash == rules.content_hash;
    let mut flags: Vec<FlagJson> = e
        .flags
        .iter()
        .map(|flag| {
            let meta = rules.rule(&flag.rule_id).map(|r| &r.meta);
            FlagJson {
                rule_id: flag.rule_id.clone(),
                severity: flag.severity,
                title: meta.map_or_else(|| flag.rule_id.clone(), |m| m.title.clone()),
                message: flag.message.clone(),
                grounds: meta.map(|m| m.grounds.clone()).unwrap_or_default(),
                rationale: meta.map(|m| m.rationale.clone()).unwrap_or_default(),
                sources: meta.map(|m| m.sources.clone()).unwrap_or_default(),
            }
        })
        .collect();
    flags.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let errors = e
        .errors
        .iter()
        .map(|err| RuleErrorJson {
            rule_id: err.rule_id.clone(),
            kind: err.kind,
            message: err.message.clone(),
            script: rules
                .rule(&err.rule_id)
                .map_or_else(|| err.rule_id.clone(), |r| r.meta.script.clone()),
            line: err.line,
            column: err.column,
        })
        .collect();
    let checked_on: Option<Date> = e.checked_on.parse().ok();
    let not_applicable = if same_rules {
        rules
            .rules
            .iter()
            .filter_map(|rule| {
                let reason = if !rule.meta.enabled {
                    NotApplicable::Disabled
                } else if checked_on.is_some_and(|d| !rule.meta.in_force_on(d)) {
                    NotApplicable::NotInForce
                } else {
                    return None;
                };
                Some(NotApplicableJson {
                    rule_id: rule.meta.id.to_string(),
                    reason,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    EvaluationReport {
        ruleset: RuleSetRef::new(
            e.rule_set_name.clone(),
            e.rule_set_version.clone(),
            e.rule_set_hash.clone(),
        ),
        stage: e.stage,
        checked_on: e.checked_on.clone(),
        flags,
        errors,
        not_applicable,
    }
}

/// The case's story, newest first: each check with who made it, with which rules, its
/// answers, its flags and the flags of the check before it that it no longer raised.
fn history(
    evaluations: Vec<StoredEvaluation>,
    current: Option<i64>,
    viewer: &Viewer,
    rules: &RuleSet,
) -> History {
    let total = evaluations.len();
    let title = |rule_id: &str| {
        rules
            .rule(rule_id)
            .map_or_else(|| rule_id.to_owned(), |r| r.meta.title.clone())
    };
    let catalog = ReasonCatalog::of(rules);
    let mut items = Vec::with_capacity(total);
    let mut previous: Option<&StoredEvaluation> = None;
    let mut previous_answers: Option<Vec<AnswerView>> = None;
    for e in &evaluations {
        let resolved = previous
            .map(|before| {
                before
                    .flags
                    .iter()
                    .filter(|f| {
                        !e.flags.iter().any(|g| g.rule_id == f.rule_id)
                            && !e.errors.iter().any(|g| g.rule_id == f.rule_id)
                    })
                    .map(|f| title(&f.rule_id))
                    .collect()
            })
            .unwrap_or_default();
        let mut flags: Vec<StoredFlagView> = e
            .flags
            .iter()
            .map(|flag| StoredFlagView {
                severity_label: flag.severity.label_sv(),
                title: title(&flag.rule_id),
                response: e
                    .responses
                    .iter()
                    .find(|r| r.rule_id == flag.rule_id)
                    .map(|r| answer_words(r, &catalog)),
                flag: flag.clone(),
            })
            .collect();
        flags.sort_by_key(|f| std::cmp::Reverse(f.flag.severity));
        let profile: serde_json::Value = serde_json::from_str(&e.profile_json).unwrap_or_default();
        let answers = answers_of(&profile);
        let shown = match &previous_answers {
            Some(before) => answers_since(answers_of(&profile), before),
            None => answers_of(&profile),
        };
        let changed = shown.iter().filter(|a| a.before.is_some()).count();
        let filled = answers
            .iter()
            .filter(|a| a.value != super::form::UNKNOWN)
            .count();
        items.push(HistoryItem {
            id: e.id,
            current: Some(e.id) == current,
            mine: e.requested_by == viewer.name,
            checked_on: e.checked_on.clone(),
            saved_at: crate::present::swedish_time(&e.created_at),
            stage: e.stage.label_sv(),
            ruleset: ruleset_label(e),
            by: e.requested_by.clone(),
            flags,
            resolved,
            errors: e.errors.len(),
            answers: shown,
            changed,
            filled,
        });
        previous_answers = Some(answers);
        previous = Some(e);
    }
    let by_others = evaluations.iter().any(|e| e.requested_by != viewer.name);
    items.reverse();
    items.truncate(HISTORY_LIMIT);
    History {
        items,
        hidden: total.saturating_sub(HISTORY_LIMIT),
        by_others,
        withheld: None,
    }
}

/// An answer in words: "Åtgärdas/åtgärdat", or "Inte relevant: " and the reason's label
/// (its code when `catalog` does not know it).
fn answer_words(response: &crate::answer::StoredResponse, catalog: &ReasonCatalog) -> String {
    match &response.reason {
        Some(code) => format!(
            "{}: {}",
            response.response.label_sv(),
            catalog.label(&response.rule_id, code).unwrap_or(code)
        ),
        None => response.response.label_sv().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default rules read about 15 fields; the others only feed the follow-up.
    #[test]
    fn the_fields_the_default_rules_read() {
        let rules = RuleSet::load(std::path::Path::new("rules")).expect("the default rules");
        let read: Vec<&str> = read_by_rules(&rules).into_iter().collect();
        assert_eq!(
            read,
            [
                "activity_level.documented",
                "activity_level.hours_per_week",
                "case_id",
                "checked_on",
                "gk.first_meeting_on",
                "gk.interpreter_booked",
                "gk.requested_on",
                "known_needs.hearing_impairment",
                "known_needs.interpreter_needed",
                "known_needs.social_or_family_problems",
                "known_needs.vision_impairment",
                "preparation.consent_received_on",
                "preparation.other_personal_meeting_on",
                "preparation.reconciliation_meeting_on",
                "preparation.sassam_on",
                "specialists",
                "stage",
            ]
        );
    }
}
