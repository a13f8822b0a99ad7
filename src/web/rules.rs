//! "Regler": the active rule set with each rule's text, script and tests (read from the
//! rules directory and run against the active set), and for policy staff a dry run on a
//! pasted or uploaded profile (nothing stored) and a reload from disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{
    DRY_RUN_TOOL, Layout, RELOAD_TOOL, RULES_PAGE, ResultView, SharedState, Viewer, failure,
    refusal, render,
};
use crate::app::{self, AppError};
use crate::contract::RuleSetRef;
use crate::profile::{Profile, Stage};
use crate::rule_tests::{Expectation, TestSuite};
use crate::ruleset::{RuleSet, SeveritySpec};

#[derive(Serialize)]
struct RulesPage {
    #[serde(flatten)]
    layout: Layout,
    ruleset: RuleSetView,
    /// The shadow rule set, for policy staff and analysts (never for case officers).
    shadow: Option<ShadowView>,
    rules: Vec<RuleView>,
    /// Problems reading the tests directory (the rules themselves are loaded).
    test_problems: Vec<String>,
    tests_passed: usize,
    tests_total: usize,
    /// Whether the viewer may try profiles (the roles of an API dry run).
    can_dry_run: bool,
    /// Whether the viewer may reload the rules (policy staff).
    can_reload: bool,
    /// Whether the viewer signed in with a test token: the tools that change the live
    /// rules or read the stored history are then explained, not offered.
    test_token: bool,
    dry_run: Option<DryRunView>,
    reload: Option<ReloadView>,
    /// What an uploaded candidate rule set gave.
    candidate: Option<CandidateView>,
    profile_text: String,
    /// Every rule set used, for the roles that may read the history.
    history: Option<HistoryView>,
}

#[derive(Serialize)]
struct HistoryView {
    sets: Vec<HistoryRow>,
    /// The hashes chosen in the comparison form.
    from: String,
    to: String,
    diff: Option<DiffView>,
    error: Option<String>,
}

#[derive(Serialize)]
struct HistoryRow {
    label: String,
    content_hash: String,
    active: bool,
    first_used: String,
    last_used: String,
    checks: u64,
}

#[derive(Serialize)]
struct DiffView {
    from: String,
    to: String,
    files: Vec<DiffFileView>,
}

#[derive(Serialize)]
struct DiffFileView {
    name: String,
    change: &'static str,
    /// Each line of the unified diff with its kind: `add`, `del`, `hunk` or `ctx`.
    lines: Vec<(&'static str, String)>,
}

/// The comparison chosen on the page: `?fran=HASH&till=HASH`.
#[derive(serde::Deserialize, Default)]
pub(super) struct HistoryQuery {
    fran: Option<String>,
    till: Option<String>,
}

/// A stored time as people read it ([`crate::present::swedish_time`]); a dash for none.
fn time_text(rfc3339: Option<&str>) -> String {
    rfc3339.map_or_else(|| "\u{2013}".to_owned(), crate::present::swedish_time)
}

fn change_label(change: &str) -> &'static str {
    match change {
        "added" => "ny fil",
        "removed" => "borttagen",
        "changed" => "ändrad",
        _ => "oförändrad",
    }
}

/// A rule set as people read it: `GK standardregler version 2026.2 (5a5d2d43c17f)`.
fn named(set: &RuleSetRef) -> String {
    format!(
        "{} version {} ({})",
        set.name,
        set.version,
        set.short_hash()
    )
}

/// The history section: every rule set used and, when asked, the diff of two.
async fn history_of(
    state: &SharedState,
    viewer: &Viewer,
    query: &HistoryQuery,
) -> Result<Option<HistoryView>, AppError> {
    // Its counts and times are real checks: not for a test token.
    if !viewer.has_any(app::rules::HISTORY_ROLES) || viewer.is_for_tests() {
        return Ok(None);
    }
    let active = state.active_rules();
    let sets = app::rules::history(state, viewer)
        .await?
        .into_iter()
        .map(|used| HistoryRow {
            label: format!(
                "{} version {} ({})",
                used.name,
                used.version,
                used.content_hash.get(..12).unwrap_or_default()
            ),
            active: used.content_hash == active.content_hash,
            first_used: time_text(used.first_used_at.as_deref()),
            last_used: time_text(used.last_used_at.as_deref()),
            checks: used.checks,
            content_hash: used.content_hash,
        })
        .collect();
    let from = query.fran.clone().unwrap_or_default();
    let to = query.till.clone().unwrap_or_default();
    let (diff, error) = if from.is_empty() || to.is_empty() {
        (None, None)
    } else {
        match app::rules::diff(state, viewer, &from, &to).await {
            Ok(diff) => (
                Some(DiffView {
                    from: named(&diff.from),
                    to: named(&diff.to),
                    files: diff
                        .files
                        .into_iter()
                        .map(|file| DiffFileView {
                            lines: file
                                .unified
                                .lines()
                                // The two header lines name the file, shown above.
                                .skip(2)
                                .map(|line| {
                                    let kind = match line.as_bytes().first() {
                                        Some(b'+') => "add",
                                        Some(b'-') => "del",
                                        Some(b'@') => "hunk",
                                        _ => "ctx",
                                    };
                                    (kind, line.to_owned())
                                })
                                .collect(),
                            name: file.name,
                            change: change_label(file.change),
                        })
                        .collect(),
                }),
                None,
            ),
            Err(AppError::NotFound) => (
                None,
                Some("Ingen använd regeluppsättning har den innehållskoden.".to_owned()),
            ),
            Err(AppError::Input(message)) => (None, Some(message)),
            Err(err) => return Err(err),
        }
    };
    Ok(Some(HistoryView {
        sets,
        from,
        to,
        diff,
        error,
    }))
}

#[derive(Serialize)]
struct CandidateView {
    file_name: String,
    /// The archive was refused.
    error: Option<String>,
    /// The candidate could not be loaded.
    problems: Vec<ProblemView>,
    /// Loaded: "name version (hash)".
    label: Option<String>,
    tests_total: usize,
    tests_passed: usize,
    tests_failed: Vec<FailedTestView>,
    test_problems: Vec<String>,
    /// Rules without tests.
    untested: Vec<String>,
    replay: Option<crate::audit::html::ReplayView>,
}

#[derive(Serialize)]
struct FailedTestView {
    at: String,
    rule: String,
    name: String,
    expected: String,
    actual: String,
}

#[derive(Serialize)]
struct ShadowView {
    #[serde(flatten)]
    set: RuleSetView,
    /// The shadow set's own tests, run against it.
    tests_passed: usize,
    tests_total: usize,
    test_problems: usize,
}

#[derive(Serialize)]
struct RuleSetView {
    name: String,
    version: String,
    content_hash: String,
    description: Option<String>,
    dir: String,
}

#[derive(Serialize)]
struct SeverityView {
    when: Option<&'static str>,
    severity: crate::ruleset::Severity,
    label: &'static str,
}

/// A profile field a rule declares it reads: the form's label for it, and its name.
#[derive(Serialize)]
struct InputView {
    label: Option<&'static str>,
    path: String,
}

#[derive(Serialize)]
struct RuleView {
    id: String,
    title: String,
    severities: Vec<SeverityView>,
    grounds: Vec<&'static str>,
    rationale: String,
    sources: Vec<String>,
    enabled: bool,
    valid_from: Option<String>,
    valid_to: Option<String>,
    script_name: String,
    script: String,
    parameters: Vec<ParamView>,
    tests: Vec<TestView>,
    test_file: Option<FileView>,
    /// The profile fields the manifest declares the rule reads.
    inputs: Vec<InputView>,
    how_to_clear: Option<String>,
    clearable: bool,
    /// The reasons an officer may give for "Inte relevant": the rule's own, then the
    /// common ones, as `(code, label)`.
    reasons: Vec<(String, String)>,
}

#[derive(Serialize)]
struct ParamView {
    name: String,
    description: String,
    /// `(from, value)`, oldest first; `current` marks the one in force today.
    values: Vec<ParamValueView>,
}

#[derive(Serialize)]
struct ParamValueView {
    from: String,
    value: String,
    current: bool,
}

#[derive(Clone, Serialize)]
struct TestView {
    name: String,
    expected: String,
    passed: bool,
    /// What came out instead, when the case failed.
    actual: Option<String>,
}

#[derive(Clone, Serialize)]
struct FileView {
    name: String,
    text: String,
}

#[derive(Serialize)]
struct DryRunView {
    source: String,
    error: Option<String>,
    result: Option<ResultView>,
}

#[derive(Serialize)]
struct ReloadView {
    ok: bool,
    message: String,
    problems: Vec<ProblemView>,
}

/// A problem of a refused rule set: `file:line:col: message`, and for a problem in a
/// script its line of code with a caret under the column.
#[derive(Serialize)]
struct ProblemView {
    text: String,
    /// The line number as shown beside the code, the code line and the caret line.
    code: Option<(String, String, String)>,
}

impl ProblemView {
    fn of(dir: &Path, problem: &crate::ruleset::Problem) -> Self {
        let number = problem.line.map(|l| l.to_string()).unwrap_or_default();
        Self {
            text: problem.within(dir).to_string(),
            code: problem.code.as_ref().map(|code| {
                (
                    number.clone(),
                    code.text.clone(),
                    format!("{} | {}", " ".repeat(number.len()), code.caret_line()),
                )
            }),
        }
    }
}

/// The tests of the rules directory, run against `rules`; problems if they cannot be read.
#[derive(Clone)]
struct TestRun {
    by_rule: Vec<(String, Vec<TestView>, Option<FileView>)>,
    problems: Vec<String>,
}

/// The tests of `dir` run against `rules`, as the Regler page shows them: the run is
/// kept while neither the rule set nor any test file changes ([`tests_fingerprint`]), so visitors
/// to the page do not each run the whole suite (a slow one held a thread of rule
/// evaluation per visitor, and officers' checks waited behind them). A run that is not
/// kept runs on the pool of long work, never on the threads that evaluate checks.
async fn tests_of(dir: PathBuf, rules: Arc<RuleSet>) -> Result<TestRun, AppError> {
    /// Runs kept: the live set's and the shadow set's, and one of each before a change.
    const KEPT: usize = 4;
    /// The folder, the rule set's content hash and the test files' fingerprint.
    type Key = (PathBuf, String, [u8; 32]);
    static RUNS: std::sync::Mutex<Vec<(Key, TestRun)>> = std::sync::Mutex::new(Vec::new());
    let kept = |key: &Key| {
        let runs = RUNS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        runs.iter()
            .find(|(k, _)| k == key)
            .map(|(_, run)| run.clone())
    };
    let key_dir = dir.clone();
    let hash = rules.content_hash.clone();
    let key: Option<Key> =
        app::briefly(move || tests_fingerprint(&key_dir).map(|files| (key_dir, hash, files)))
            .await?;
    if let Some(run) = key.as_ref().and_then(kept) {
        return Ok(run);
    }
    // One run at a time: visitors who arrive while it runs take its result.
    static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = RUNNING.lock().await;
    if let Some(run) = key.as_ref().and_then(kept) {
        return Ok(run);
    }
    let run = app::off_workers(move || run_tests(dir, &rules)).await?;
    if let Some(key) = key {
        let mut runs = RUNS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        runs.insert(0, (key, run.clone()));
        runs.truncate(KEPT);
    }
    Ok(run)
}

/// SHA-256 over the day and the names and bytes of the test files in `dir`'s tests
/// folder (those the tests read: `*.yaml`, `*.yml`), in name order, each read as the
/// tests read it ([`crate::ruleset::read_rule_file`]: no links, no FIFOs or devices, at
/// most 1 MiB, not writable by all). `None` when the folder or one of them cannot be read
/// so: the run is then not kept, and reports what it could not read. The day is in it
/// because a test's dates are checked against it.
fn tests_fingerprint(dir: &std::path::Path) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let tests = std::path::Path::new(crate::rule_tests::TESTS_DIR);
    let mut hasher = Sha256::new();
    hasher.update(crate::profile::Date::today().to_string().as_bytes());
    match std::fs::symlink_metadata(dir.join(tests)) {
        Ok(meta) if meta.is_dir() => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Some(hasher.finalize().into());
        }
        _ => return None,
    }
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir.join(tests))
        .ok()?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .ok()?;
    names.retain(|name| {
        std::path::Path::new(name)
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml")
    });
    names.sort();
    for name in &names {
        let text = crate::ruleset::read_rule_file(dir, &tests.join(name)).ok()?;
        hasher.update(name.as_encoded_bytes());
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    Some(hasher.finalize().into())
}

fn run_tests(dir: PathBuf, rules: &RuleSet) -> TestRun {
    let suite = match TestSuite::load(&dir, Some(rules)) {
        Ok(suite) => suite,
        Err(err) => {
            return TestRun {
                by_rule: Vec::new(),
                problems: err
                    .problems
                    .iter()
                    .map(|p| p.within(&dir).to_string())
                    .collect(),
            };
        }
    };
    let results = suite.run(rules);
    let mut by_rule: Vec<(String, Vec<TestView>, Option<FileView>)> = Vec::new();
    for (case, result) in suite.cases.iter().zip(results) {
        let view = TestView {
            name: case.name.clone(),
            expected: expectation_text(&case.expect),
            passed: result.failure.is_none(),
            actual: result.failure.map(|f| f.actual),
        };
        match by_rule.iter_mut().find(|(rule, _, _)| *rule == case.rule) {
            Some((_, tests, _)) => tests.push(view),
            None => {
                let relative = case.file.strip_prefix(&dir).unwrap_or(&case.file);
                let file = crate::ruleset::read_rule_file(&dir, relative)
                    .ok()
                    .map(|text| FileView {
                        name: case
                            .file
                            .strip_prefix(&dir)
                            .unwrap_or(&case.file)
                            .display()
                            .to_string(),
                        text,
                    });
                by_rule.push((case.rule.clone(), vec![view], file));
            }
        }
    }
    TestRun {
        by_rule,
        problems: Vec::new(),
    }
}

fn expectation_text(expect: &Expectation) -> String {
    let mut parts = Vec::new();
    if expect.error {
        parts.push("regeln ska misslyckas".to_owned());
    }
    match expect.flagged {
        Some(true) => parts.push("ska flagga".to_owned()),
        Some(false) => parts.push("ska inte flagga".to_owned()),
        None => {}
    }
    if let Some(severity) = expect.severity {
        parts.push(format!(
            "allvarlighet {}",
            severity.label_sv().to_lowercase()
        ));
    }
    for needle in &expect.message_contains {
        parts.push(format!("meddelandet innehåller \u{201d}{needle}\u{201d}"));
    }
    for needle in &expect.message_excludes {
        parts.push(format!(
            "meddelandet innehåller inte \u{201d}{needle}\u{201d}"
        ));
    }
    if parts.is_empty() {
        "inget särskilt förväntat".to_owned()
    } else {
        parts.join(", ")
    }
}

fn severities(spec: &SeveritySpec) -> Vec<SeverityView> {
    let view = |when, s: crate::ruleset::Severity| SeverityView {
        when,
        severity: s,
        label: s.label_sv(),
    };
    match *spec {
        SeveritySpec::Fixed(s) => vec![view(None, s)],
        SeveritySpec::PerStage {
            before_gk,
            gk_closing,
        } => vec![
            view(Some(Stage::BeforeGk.label_sv()), before_gk),
            view(Some(Stage::GkClosing.label_sv()), gk_closing),
        ],
    }
}

/// Builds the page for the active rule set (tests are read and run off the async
/// threads).
async fn page_of(state: &SharedState, viewer: &Viewer) -> Result<RulesPage, AppError> {
    let rules: Arc<RuleSet> = app::rules::active(state, viewer);
    let dir = state.rules_dir.clone();
    let mut tests = tests_of(dir, Arc::clone(&rules)).await?;
    let tests_total = tests.by_rule.iter().map(|(_, t, _)| t.len()).sum();
    let tests_passed = tests
        .by_rule
        .iter()
        .flat_map(|(_, t, _)| t)
        .filter(|t| t.passed)
        .count();
    let views = rules
        .rules
        .iter()
        .map(|rule| {
            let m = &rule.meta;
            let (tests, test_file) = tests
                .by_rule
                .iter_mut()
                .find(|(id, _, _)| id == m.id.as_str())
                .map(|(_, t, f)| (std::mem::take(t), f.take()))
                .unwrap_or_default();
            RuleView {
                id: m.id.to_string(),
                title: m.title.clone(),
                severities: severities(&m.severity),
                grounds: m.grounds.iter().map(|g| g.label_sv()).collect(),
                rationale: m.rationale.clone(),
                sources: m.sources.clone(),
                enabled: m.enabled,
                valid_from: m.valid_from.map(|d| d.to_string()),
                valid_to: m.valid_to.map(|d| d.to_string()),
                script_name: m.script.clone(),
                parameters: m
                    .parameters
                    .iter()
                    .map(|p| {
                        let today = crate::profile::Date::today();
                        let current = p.values.partition_point(|(from, _)| *from <= today);
                        ParamView {
                            name: p.name.clone(),
                            description: p.description.clone(),
                            values: p
                                .values
                                .iter()
                                .enumerate()
                                .map(|(index, (from, value))| ParamValueView {
                                    from: from.to_string(),
                                    value: value.to_string(),
                                    current: index + 1 == current,
                                })
                                .collect(),
                        }
                    })
                    .collect(),
                script: rules
                    .sources
                    .iter()
                    .find(|s| s.name == m.script)
                    .map(|s| s.text.clone())
                    .unwrap_or_default(),
                tests,
                test_file,
                inputs: m
                    .inputs
                    .iter()
                    .flatten()
                    .map(|path| InputView {
                        label: super::form::field_link(path).map(|(label, _)| label),
                        path: path.clone(),
                    })
                    .collect(),
                how_to_clear: m.how_to_clear.clone(),
                clearable: m.clearable,
                reasons: m
                    .reasons
                    .iter()
                    .chain(&rules.common_reasons)
                    .map(|r| (r.code.clone(), r.label.clone()))
                    .collect(),
            }
        })
        .collect();
    Ok(RulesPage {
        layout: Layout::new("Regler", Some(viewer), RULES_PAGE.path),
        ruleset: RuleSetView {
            name: rules.name.clone(),
            version: rules.version.clone(),
            content_hash: rules.content_hash.clone(),
            description: rules.description.clone(),
            dir: state.rules_dir.display().to_string(),
        },
        shadow: shadow_view(state, viewer).await?,
        rules: views,
        test_problems: tests.problems,
        tests_passed,
        tests_total,
        can_dry_run: viewer.has_any(DRY_RUN_TOOL.roles),
        can_reload: viewer.has_any(RELOAD_TOOL.roles),
        test_token: viewer.is_for_tests(),
        dry_run: None,
        reload: None,
        candidate: None,
        profile_text: String::new(),
        history: history_of(state, viewer, &HistoryQuery::default()).await?,
    })
}

/// The shadow rule set as the page shows it, with its own tests run against it: to
/// policy staff and analysts only, so no case officer is ever pointed to rules that do
/// not apply to their cases.
async fn shadow_view(state: &app::App, viewer: &Viewer) -> Result<Option<ShadowView>, AppError> {
    if !viewer.has_any(&[crate::auth::Role::Policy, crate::auth::Role::Analytiker]) {
        return Ok(None);
    }
    let (Some(shadow), Some(dir)) = (state.shadow_rules(), state.shadow_rules_dir.clone()) else {
        return Ok(None);
    };
    let set = RuleSetView {
        name: shadow.name.clone(),
        version: shadow.version.clone(),
        content_hash: shadow.content_hash.clone(),
        description: shadow.description.clone(),
        dir: dir.display().to_string(),
    };
    let tests = tests_of(dir, shadow).await?;
    let all = || tests.by_rule.iter().flat_map(|(_, t, _)| t);
    Ok(Some(ShadowView {
        set,
        tests_passed: all().filter(|t| t.passed).count(),
        tests_total: all().count(),
        test_problems: tests.problems.len(),
    }))
}

fn respond(status: StatusCode, page: Result<RulesPage, AppError>, viewer: &Viewer) -> Response {
    match page {
        Ok(page) => render(status, "rules.html", &page),
        Err(err) => failure(viewer, &err),
    }
}

pub(super) async fn page(
    State(state): State<SharedState>,
    viewer: Viewer,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &RULES_PAGE) {
        return refused;
    }
    // A malformed query string shows the page without a comparison.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let page = match page_of(&state, &viewer).await {
        Ok(mut page) if query.fran.is_some() || query.till.is_some() => {
            match history_of(&state, &viewer, &query).await {
                Ok(history) => {
                    page.history = history;
                    Ok(page)
                }
                Err(err) => Err(err),
            }
        }
        other => other,
    };
    respond(StatusCode::OK, page, &viewer)
}

/// What the page says of a form axum could not read (its own words are English), with
/// the status to answer: 413 for a body over the limit, 400 for the rest.
fn unreadable_form(status: StatusCode) -> (String, StatusCode) {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        (
            "Det som skickades är för stort för formuläret.".to_owned(),
            status,
        )
    } else {
        (
            "Formuläret kunde inte läsas: det kom inte fram helt, eller inte som ett formulär med en fil. Ladda om sidan och försök igen.".to_owned(),
            StatusCode::BAD_REQUEST,
        )
    }
}

/// Reads the dry-run form: the uploaded file when one was chosen, else the text box.
async fn read_profile_form(
    mut multipart: Multipart,
) -> Result<(String, String), (String, StatusCode)> {
    let mut pasted = String::new();
    let mut file: Option<(String, String)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(unreadable_form(err.status())),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(ToOwned::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|err| unreadable_form(err.status()))?;
        match name.as_str() {
            "profil" => pasted = String::from_utf8_lossy(&bytes).into_owned(),
            "fil" if !bytes.is_empty() => {
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    (
                        "Filen är inte text i UTF-8.".to_owned(),
                        StatusCode::BAD_REQUEST,
                    )
                })?;
                file = Some((file_name.unwrap_or_else(|| "fil".to_owned()), text));
            }
            _ => {}
        }
    }
    match file {
        Some((name, text)) => Ok((format!("filen {name}"), text)),
        None => Ok(("den inklistrade profilen".to_owned(), pasted)),
    }
}

/// Evaluates a profile with the active rules; stores nothing. The profile comes as
/// pasted or uploaded JSON (a multipart form on the Regler page) or as the fields of the
/// Kontrollera ärende form ([`super::try_form`]).
pub(super) async fn dry_run(
    State(state): State<SharedState>,
    viewer: Viewer,
    request: axum::extract::Request,
) -> Response {
    use axum::extract::FromRequest;
    if let Some(refused) = refusal(&viewer, &DRY_RUN_TOOL) {
        return refused;
    }
    let is_form = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return match axum::Form::<Vec<(String, String)>>::from_request(request, &state).await {
            Ok(axum::Form(pairs)) => super::try_form::submit(&state, &viewer, &pairs).await,
            Err(_) => failure(
                &viewer,
                &AppError::Input("Formuläret kunde inte läsas.".to_owned()),
            ),
        };
    }
    let multipart: Result<Multipart, MultipartRejection> =
        Multipart::from_request(request, &state).await;
    let form = match multipart {
        Ok(multipart) => read_profile_form(multipart).await,
        Err(rejection) => Err(unreadable_form(rejection.status())),
    };
    let (dry_run, text, status) = match form {
        Err((error, status)) => (
            DryRunView {
                source: String::new(),
                error: Some(error),
                result: None,
            },
            String::new(),
            status,
        ),
        Ok((source, text)) if text.trim().is_empty() => (
            DryRunView {
                source,
                error: Some("Klistra in en profil i JSON eller välj en fil.".to_owned()),
                result: None,
            },
            text,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Ok((source, text)) => match Profile::from_json(&text) {
            Err(err) => (
                DryRunView {
                    source,
                    error: Some(swedish_profile_error(&err)),
                    result: None,
                },
                text,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Ok(profile) => {
                let (rules, report) = match app::check::dry_run(&state, &viewer, profile).await {
                    Ok(done) => done,
                    Err(err) => return failure(&viewer, &err),
                };
                tracing::info!(flags = report.flags.len(), "web dry run");
                (
                    DryRunView {
                        source,
                        error: None,
                        result: Some(ResultView::of(&report, &rules)),
                    },
                    text,
                    StatusCode::OK,
                )
            }
        },
    };
    let page = page_of(&state, &viewer).await.map(|mut page| {
        page.dry_run = Some(dry_run);
        page.profile_text = text;
        page
    });
    respond(status, page, &viewer)
}

/// A profile parser error as a sentence: where, and what is wrong (the profile's errors
/// are in Swedish already).
fn swedish_profile_error(err: &crate::profile::ProfileError) -> String {
    if err.syntax {
        // "ogiltig JSON på rad R kolumn K: MESSAGE"
        return match err.message.split_once(": ") {
            Some((head, message)) => format!(
                "Profilen är inte giltig JSON {}: {message}.",
                head.trim_start_matches("ogiltig JSON").trim(),
            ),
            None => format!("Profilen är inte giltig JSON: {}.", err.message),
        };
    }
    let message = &err.message;
    if err.path == "." {
        format!("Profilen är fel: {message}.")
    } else {
        format!("Fältet {} är fel: {message}.", err.path)
    }
}

/// Reloads the rules from disk: the new set, or every problem with file:line.
pub(super) async fn reload(State(state): State<SharedState>, viewer: Viewer) -> Response {
    if let Some(refused) = refusal(&viewer, &RELOAD_TOOL) {
        return refused;
    }
    let (view, status) = match app::rules::reload(&state, &viewer).await {
        Ok(done) => (
            ReloadView {
                ok: true,
                message: if done.changed {
                    format!(
                        "Reglerna är omladdade och alla deras {} tester gick igenom. Nu gäller {} (tidigare {}).",
                        done.tests_passed,
                        named(&done.active),
                        named(&done.previous)
                    )
                } else {
                    format!(
                        "Reglerna är omladdade. Inget hade ändrats: {} gäller som förut.",
                        named(&done.active)
                    )
                },
                problems: Vec::new(),
            },
            StatusCode::OK,
        ),
        Err(AppError::Rules(refused)) => {
            let running = named(&RuleSetRef::of(&app::rules::active(&state, &viewer)));
            let failed_tests = refused.problems.iter().filter(|p| p.test.is_some()).count();
            let cause = if failed_tests == refused.problems.len() {
                format!(
                    "{failed_tests} {} misslyckades",
                    if failed_tests == 1 { "test" } else { "tester" }
                )
            } else {
                format!("{} fel hittades", refused.problems.len())
            };
            (
                ReloadView {
                    ok: false,
                    message: format!(
                        "Reglerna laddades inte om: {cause}. De tidigare reglerna gäller fortfarande: {running}."
                    ),
                    problems: refused
                        .problems
                        .iter()
                        .map(|p| ProblemView::of(&state.rules_dir, p))
                        .collect(),
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(err) => return failure(&viewer, &err),
    };
    let page = page_of(&state, &viewer).await.map(|mut page| {
        page.reload = Some(view);
        page
    });
    respond(status, page, &viewer)
}

/// Reads the candidate form: the archive's file name and bytes.
async fn read_candidate_form(
    mut multipart: Multipart,
) -> Result<(String, Vec<u8>), (String, StatusCode)> {
    let mut archive: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(unreadable_form(err.status())),
        };
        if field.name() != Some("arkiv") {
            continue;
        }
        let file_name = field.file_name().unwrap_or("arkivet").to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|err| unreadable_form(err.status()))?;
        if !bytes.is_empty() {
            archive = Some((file_name, bytes.to_vec()));
        }
    }
    archive.ok_or_else(|| {
        (
            "Välj en fil: regelmappen packad som .zip eller .tar.gz.".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    })
}

/// What the page says when a candidate's tests or replay were stopped at the time limit.
fn out_of_time_text(
    stage: app::candidate::Stage,
    limit: std::time::Duration,
    failing_rules: &[String],
    failing_unchanged: &[String],
) -> String {
    let seconds = crate::present::count_noun(
        usize::try_from(limit.as_secs()).unwrap_or(usize::MAX),
        "sekund",
        "sekunder",
    );
    match stage {
        app::candidate::Stage::Tests => format!(
            "Kandidatens egna tester tog längre än {seconds} och stoppades. \
             Ingen omkörning mot historiken gjordes. Se efter om någon regel har en loop \
             som aldrig tar slut."
        ),
        app::candidate::Stage::Replay => {
            let mut cause = if failing_rules.is_empty() {
                "Ingen ny eller ändrad regel gav fel: reglerna tar för lång tid för varje \
                 kontroll, eller så hade tjänsten mycket annat att göra. Försök igen en stund \
                 senare."
                    .to_owned()
            } else {
                format!(
                    "Nya eller ändrade regler som gav fel under omkörningen: {}. En regel med \
                     en loop som aldrig tar slut avbryts efter {} operationer för varje \
                     kontroll, och över hela historiken tar det lång tid.",
                    failing_rules.join(", "),
                    crate::engine::LIMITS.max_operations
                )
            };
            if !failing_unchanged.is_empty() {
                cause.push_str(&format!(
                    " Oförändrade regler som gav fel, och som ger fel i drift också: {}.",
                    failing_unchanged.join(", ")
                ));
            }
            format!(
                "Omkörningen mot historiken tog längre än {seconds} och \
                 stoppades, så inga siffror visas. {cause}"
            )
        }
    }
}

/// Tries an uploaded candidate rule set: its problems, its tests and a replay over the
/// stored history beside the live rules. Nothing is stored and nothing goes live.
pub(super) async fn try_candidate(
    State(state): State<SharedState>,
    viewer: Viewer,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &RELOAD_TOOL) {
        return refused;
    }
    let form = match multipart {
        Ok(multipart) => read_candidate_form(multipart).await,
        Err(rejection) => Err(unreadable_form(rejection.status())),
    };
    let empty = |file_name: String| CandidateView {
        file_name,
        error: None,
        problems: Vec::new(),
        label: None,
        tests_total: 0,
        tests_passed: 0,
        tests_failed: Vec::new(),
        test_problems: Vec::new(),
        untested: Vec::new(),
        replay: None,
    };
    let (view, status) = match form {
        Err((error, status)) => (
            CandidateView {
                error: Some(error),
                ..empty(String::new())
            },
            status,
        ),
        Ok((file_name, bytes)) => {
            match app::candidate::try_candidate(&state, &viewer, bytes).await {
                Err(err) => return failure(&viewer, &err),
                Ok(app::candidate::CandidateOutcome::OverBudget {
                    retry_after_seconds,
                }) => (
                    CandidateView {
                        error: Some(format!(
                            "Du har provat många kandidater på kort tid. Försök igen om {}.",
                            crate::present::wait_text(retry_after_seconds)
                        )),
                        ..empty(file_name)
                    },
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                Ok(app::candidate::CandidateOutcome::Refused(error)) => (
                    CandidateView {
                        error: Some(error),
                        ..empty(file_name)
                    },
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                Ok(app::candidate::CandidateOutcome::OutOfTime {
                    stage,
                    limit,
                    failing_rules,
                    failing_unchanged,
                }) => (
                    CandidateView {
                        error: Some(out_of_time_text(
                            stage,
                            limit,
                            &failing_rules,
                            &failing_unchanged,
                        )),
                        ..empty(file_name)
                    },
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                Ok(app::candidate::CandidateOutcome::Problems(problems)) => (
                    CandidateView {
                        // Named within the candidate already.
                        problems: problems
                            .iter()
                            .map(|p| ProblemView::of(Path::new(""), p))
                            .collect(),
                        ..empty(file_name)
                    },
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                Ok(app::candidate::CandidateOutcome::Tried {
                    candidate,
                    tests,
                    replay,
                }) => (
                    CandidateView {
                        label: Some(format!(
                            "{} version {} ({})",
                            candidate.name,
                            candidate.version,
                            candidate
                                .content_hash
                                .get(..12)
                                .unwrap_or(&candidate.content_hash)
                        )),
                        tests_total: tests.total,
                        tests_passed: tests.passed,
                        tests_failed: tests
                            .failed
                            .into_iter()
                            .map(|f| FailedTestView {
                                at: f.at,
                                rule: f.rule,
                                name: f.name,
                                expected: f.expected,
                                actual: f.actual,
                            })
                            .collect(),
                        test_problems: tests.problems,
                        untested: tests.untested,
                        replay: Some(crate::audit::html::replay_view(&replay)),
                        ..empty(file_name)
                    },
                    StatusCode::OK,
                ),
            }
        }
    };
    let page = page_of(&state, &viewer).await.map(|mut page| {
        page.candidate = Some(view);
        page
    });
    respond(status, page, &viewer)
}
