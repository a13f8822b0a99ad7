//! The audit as one self-contained HTML page in plain Swedish (`audit.html`, rendered
//! with `minijinja`): per rule a bar chart of outcome shares for flagged and unflagged
//! cases (kvinnor, män, totalt) as inline SVG, the table beneath it in the layout of
//! SFR 2018:11 ("Diff. (p-värde)", robust standard errors in parentheses), the alert
//! burden, and a reading guide. No scripts, fonts or images from the network.
//!
//! Numbers are formatted here, the Swedish way: decimal comma, a real minus sign,
//! thin spaces between thousands, "–" for what is not shown.

use minijinja::Environment;
use minijinja::value::Serde;
use serde::Serialize;

use super::replay::ReplayReport;
use super::report::{AuditReport, Comparison, GroupAudit, Measure, RuleAudit, SexGroup};
use crate::present::noun;

const TEMPLATE: &str = include_str!("audit.html");

/// Why the page could not be rendered (a bug in the template).
#[derive(Debug, thiserror::Error)]
#[error("kunde inte skapa HTML-sidan: {0}")]
pub struct HtmlError(String);

/// The audit page.
pub fn render_audit(report: &AuditReport) -> Result<String, HtmlError> {
    render(page(report, None))
}

/// The replay page: the rule changes first, then the audit under the candidate rules.
pub fn render_replay(report: &ReplayReport) -> Result<String, HtmlError> {
    render(page(&report.audit, Some(replay_view(report))))
}

fn render(page: Page) -> Result<String, HtmlError> {
    let mut env = Environment::new();
    env.add_template("audit.html", TEMPLATE)
        .map_err(|e| HtmlError(e.to_string()))?;
    env.get_template("audit.html")
        .and_then(|t| t.render(Serde(&page)))
        .map_err(|e| HtmlError(e.to_string()))
}

// ---------------------------------------------------------------------------------------
// Swedish number formatting.
// ---------------------------------------------------------------------------------------

const NOT_SHOWN: &str = "–";

/// `value` with `decimals` decimals, a decimal comma and a real minus sign.
pub fn number(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    // "-0,0" reads oddly: a value that rounds to zero has no sign.
    let zero = text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.');
    let text = if zero {
        text.trim_start_matches('-').to_owned()
    } else {
        text
    };
    text.replace('.', ",").replace('-', "\u{2212}")
}

/// A count with thin no-break spaces between thousands: 6 388.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(c);
    }
    out
}

/// A count as published: "–" when suppressed.
pub fn shown_count(n: Option<usize>) -> String {
    n.map_or_else(|| NOT_SHOWN.to_owned(), count)
}

fn share(value: Option<f64>) -> String {
    value.map_or_else(|| NOT_SHOWN.to_owned(), |v| number(v, 1))
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        "<0,001".to_owned()
    } else {
        number(p, 3)
    }
}

/// The report's "Diff. (p-värde)": `−13,0 (0,002)`.
fn diff_with_p(diff: Option<f64>, p: Option<f64>) -> String {
    match diff {
        Some(d) => format!(
            "{} ({})",
            number(d, 1),
            p.map_or_else(|| NOT_SHOWN.to_owned(), p_value)
        ),
        None => NOT_SHOWN.to_owned(),
    }
}

fn interval(low: Option<f64>, high: Option<f64>, decimals: usize) -> String {
    match (low, high) {
        (Some(l), Some(h)) => format!("{} till {}", number(l, decimals), number(h, decimals)),
        _ => NOT_SHOWN.to_owned(),
    }
}

/// Significance stars as in the report: *** p<0,01, ** p<0,05, * p<0,1.
fn stars(p: Option<f64>) -> &'static str {
    match p {
        Some(p) if p < 0.01 => "***",
        Some(p) if p < 0.05 => "**",
        Some(p) if p < 0.1 => "*",
        _ => "",
    }
}

fn date_sv(text: &str) -> String {
    const MONTHS: [&str; 12] = [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ];
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return text.to_owned();
    };
    match (m.parse::<usize>(), d.parse::<u32>()) {
        (Ok(m @ 1..=12), Ok(d)) => format!("{d} {} {y}", MONTHS[m - 1]),
        _ => text.to_owned(),
    }
}

fn period_text(report: &AuditReport) -> String {
    match (&report.period.from, &report.period.to) {
        (None, None) => "alla sparade utfall".to_owned(),
        (Some(f), None) => format!("utfall från och med {}", date_sv(f)),
        (None, Some(t)) => format!("utfall till och med {}", date_sv(t)),
        (Some(f), Some(t)) => format!("utfall {} – {}", date_sv(f), date_sv(t)),
    }
}

// ---------------------------------------------------------------------------------------
// The view the template renders.
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct Page {
    period: String,
    generated_on: String,
    min_cell: usize,
    /// Too few cases in the period: the page is its notes alone.
    too_few: bool,
    rule_sets: Vec<String>,
    units: Vec<Labelled>,
    without_check: String,
    checks_in_period: String,
    notes: Vec<String>,
    replay: Option<ReplayView>,
    summary: Vec<SummaryView>,
    comparison: Option<ComparisonView>,
    /// The live rules against the shadow rules, when the report has a `shadow` section.
    shadow: Option<ShadowView>,
    rules: Vec<RuleView>,
}

/// One row of the summary table.
#[derive(Serialize)]
struct SummaryView {
    id: String,
    title: String,
    flagged_share: String,
    flagged_vs_not: String,
    flagged_vs_not_ci: String,
    adjusted: String,
    adjusted_ci: String,
    resolved: String,
    resolved_ci: String,
    strength: &'static str,
    /// `clear`, `uncertain` or `not_assessable`: the row's colour.
    strength_class: String,
    sentence: String,
    /// Officers' answers to the flags, in words ("besvarade 40 %, inte relevanta 12 %,
    /// obesvarade som låg kvar 30 %"); `–` without flags in the period.
    responses: String,
}

#[derive(Serialize)]
struct ComparisonView {
    period: String,
    units: String,
    units_noun: &'static str,
    notes: Vec<String>,
    rows: Vec<ComparisonRow>,
}

#[derive(Serialize)]
struct ComparisonRow {
    id: String,
    title: String,
    share: String,
    compared_share: String,
    share_change: String,
    difference: String,
    compared_difference: String,
    difference_change: String,
}

#[derive(Serialize)]
struct ShadowView {
    /// The shadow rule sets, "name version (hash)".
    sets: String,
    checks_in_period: String,
    rows: Vec<ReplayRow>,
    outcomes: Vec<ReplayOutcomeRow>,
}

#[derive(Serialize)]
struct Labelled {
    label: &'static str,
    value: String,
}

#[derive(Serialize)]
struct RuleView {
    id: String,
    title: String,
    is_any: bool,
    chart: Chart,
    /// The same chart for a phone: panels stacked ([`NARROW`]).
    narrow_chart: Chart,
    flagged: TableView,
    resolved: TableView,
    adjusted: Vec<AdjustedRow>,
    adjusted_notes: Vec<String>,
    burden: BurdenView,
    responses: Vec<super::responses::VersionView>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct TableView {
    label_a: &'static str,
    label_b: &'static str,
    counts: Vec<CountRow>,
    rows: Vec<TableRow>,
}

#[derive(Serialize)]
struct CountRow {
    group: &'static str,
    n_a: String,
    n_b: String,
}

#[derive(Serialize)]
struct TableRow {
    /// The outcome's name on its first row, empty on the next two.
    outcome: &'static str,
    rows: usize,
    group: &'static str,
    a: String,
    b: String,
    diff: String,
    ci: String,
}

#[derive(Serialize)]
struct AdjustedRow {
    group: &'static str,
    estimate: String,
    se: String,
    p: String,
    ci: String,
    observations: String,
    r_squared: String,
}

#[derive(Serialize)]
struct BurdenView {
    flagged: String,
    /// "flaggad kontroll" or "flaggade kontroller", agreeing with `flagged`.
    flagged_noun: &'static str,
    share_of_checks: String,
    rule_errors: String,
    months: Vec<MonthRow>,
    chart: MonthChart,
    /// The same for a phone ([`NARROW_WIDTH`]).
    narrow_chart: MonthChart,
}

#[derive(Serialize)]
struct MonthRow {
    month: String,
    female: String,
    male: String,
    all: String,
    checks: String,
    per_100: String,
}

/// The replay's side-by-side tables as the pages show them (also on the Regler page's
/// candidate upload).
#[derive(Serialize)]
pub struct ReplayView {
    current: String,
    candidate: String,
    checks_in_period: String,
    checks_noun: &'static str,
    rows: Vec<ReplayRow>,
    /// Per rule and outcome: shares for flagged and other cases, now and with the candidate.
    outcomes: Vec<ReplayOutcomeRow>,
    /// What the candidate's own tests gave, when they were run.
    candidate_tests: Option<String>,
}

#[derive(Serialize)]
struct ReplayOutcomeRow {
    id: String,
    title: String,
    /// The title under the rules that apply now, when it differs.
    title_current: Option<String>,
    /// Whether this is the rule's first row (the rule's name spans its rows).
    first: bool,
    outcome: &'static str,
    current_flagged: String,
    current_not_flagged: String,
    candidate_flagged: String,
    candidate_not_flagged: String,
}

#[derive(Serialize)]
struct ReplayRow {
    id: String,
    title: String,
    /// The title under the rules that apply now, when it differs.
    title_current: Option<String>,
    current: String,
    candidate: String,
    gained: String,
    lost: String,
    errors: String,
}

fn page(report: &AuditReport, replay: Option<ReplayView>) -> Page {
    Page {
        period: period_text(report),
        generated_on: crate::profile::Date::today().to_string(),
        min_cell: report.min_cell,
        too_few: report.rules.is_empty() && report.units.all.is_none(),
        rule_sets: report
            .rule_sets
            .iter()
            .map(|r| {
                format!(
                    "{} {} ({}), {} {}",
                    r.name,
                    r.version,
                    r.content_hash.get(..12).unwrap_or(&r.content_hash),
                    shown_count(r.checks),
                    noun(r.checks, "kontroll", "kontroller")
                )
            })
            .collect(),
        units: SexGroup::ALL
            .iter()
            .map(|&g| Labelled {
                label: g.label_sv(),
                value: shown_count(report.units.get(g)),
            })
            .collect(),
        without_check: shown_count(report.cases_without_check_before_gk),
        checks_in_period: shown_count(report.checks_in_period.all),
        // The page tells what the period selects in its own words, beside the counts.
        notes: report
            .notes
            .iter()
            .filter(|n| n.as_str() != super::analysis::PERIOD_SELECTS_NOTE)
            .cloned()
            .collect(),
        replay,
        summary: report.summary.iter().map(summary_view).collect(),
        comparison: report.comparison.as_ref().map(comparison_view),
        shadow: report.shadow.as_ref().map(shadow_view),
        rules: report
            .rules
            .iter()
            .map(|rule| rule_view(report, rule))
            .collect(),
    }
}

/// A difference alone: "−8,2", "–" when not shown.
fn estimate_text(d: &super::summary::Difference) -> String {
    d.diff_pp
        .map_or_else(|| NOT_SHOWN.to_owned(), |diff| number(diff, 1))
}

/// The interval of a difference in parentheses, empty when not shown.
fn interval_text(d: &super::summary::Difference) -> String {
    match (d.ci_low_pp, d.ci_high_pp) {
        (Some(low), Some(high)) => format!("({} till {})", number(low, 1), number(high, 1)),
        _ => String::new(),
    }
}

/// A difference and its interval in one cell: "−8,2 (−12,1 till −4,3)".
fn difference_text(d: &super::summary::Difference) -> String {
    match d.diff_pp {
        Some(diff) => match (d.ci_low_pp, d.ci_high_pp) {
            (Some(low), Some(high)) => format!(
                "{} ({} till {})",
                number(diff, 1),
                number(low, 1),
                number(high, 1)
            ),
            _ => number(diff, 1),
        },
        None => NOT_SHOWN.to_owned(),
    }
}

fn summary_view(row: &super::summary::SummaryRow) -> SummaryView {
    SummaryView {
        id: row.rule_id.clone(),
        title: row.title.clone(),
        flagged_share: share(row.flagged_checks_pct),
        flagged_vs_not: estimate_text(&row.flagged_vs_not_flagged),
        flagged_vs_not_ci: interval_text(&row.flagged_vs_not_flagged),
        adjusted: estimate_text(&row.adjusted),
        adjusted_ci: interval_text(&row.adjusted),
        resolved: estimate_text(&row.resolved_vs_still_flagged),
        resolved_ci: interval_text(&row.resolved_vs_still_flagged),
        strength: row.evidence.strength.label_sv(),
        strength_class: crate::names::name_of(&row.evidence.strength),
        sentence: row.sentence.clone(),
        responses: row
            .responses
            .as_ref()
            .map_or_else(|| NOT_SHOWN.to_owned(), responses_text),
    }
}

/// The summary's answers cell: each share in words, `–` where it is hidden.
fn responses_text(r: &super::summary::SummaryResponses) -> String {
    let percent =
        |v: Option<f64>| v.map_or_else(|| NOT_SHOWN.to_owned(), |v| format!("{} %", number(v, 1)));
    format!(
        "besvarade {}, åtgärdade {}, inte relevanta {}, obesvarade som låg kvar {}",
        percent(r.answered_pct),
        percent(r.handled_pct),
        percent(r.not_relevant_pct),
        percent(r.ignored_pct)
    )
}

fn comparison_view(c: &super::compare::PeriodComparison) -> ComparisonView {
    let period = match (&c.compared_period.from, &c.compared_period.to) {
        (None, None) => "alla sparade utfall".to_owned(),
        (Some(f), None) => format!("utfall från och med {}", date_sv(f)),
        (None, Some(t)) => format!("utfall till och med {}", date_sv(t)),
        (Some(f), Some(t)) => format!("utfall {} – {}", date_sv(f), date_sv(t)),
    };
    let points = |v: Option<f64>| v.map_or_else(|| NOT_SHOWN.to_owned(), |v| number(v, 1));
    ComparisonView {
        period,
        units: shown_count(c.compared_units),
        units_noun: noun(c.compared_units, "ärende", "ärenden"),
        notes: c.notes.clone(),
        rows: c
            .rules
            .iter()
            .map(|r| ComparisonRow {
                id: r.rule_id.clone(),
                title: r.title.clone(),
                share: share(r.flagged_checks_pct),
                compared_share: share(r.compared_flagged_checks_pct),
                share_change: difference_text(&r.flag_rate_change),
                difference: points(r.flagged_vs_not_flagged_pp),
                compared_difference: points(r.compared_flagged_vs_not_flagged_pp),
                difference_change: difference_text(&r.difference_change),
            })
            .collect(),
    }
}

pub fn replay_view(report: &ReplayReport) -> ReplayView {
    let label = |r: &crate::contract::RuleSetRef| {
        format!(
            "{} {} ({})",
            r.name,
            r.version,
            r.content_hash.get(..12).unwrap_or(&r.content_hash)
        )
    };
    ReplayView {
        candidate_tests: report.candidate_tests.clone(),
        current: label(&report.current),
        candidate: label(&report.candidate),
        checks_in_period: count(report.checks_in_period),
        checks_noun: noun(Some(report.checks_in_period), "kontroll", "kontroller"),
        rows: report
            .rules
            .iter()
            .map(|r| ReplayRow {
                id: r.rule_id.clone(),
                title: r.title.clone(),
                title_current: r.title_current.clone(),
                current: if r.in_current {
                    count(r.flagged_current)
                } else {
                    "(finns inte)".to_owned()
                },
                candidate: if r.in_candidate {
                    count(r.flagged_candidate)
                } else {
                    "(tas bort)".to_owned()
                },
                gained: count(r.gained),
                lost: count(r.lost),
                errors: format!(
                    "{} → {}",
                    count(r.errors_current),
                    count(r.errors_candidate)
                ),
            })
            .collect(),
        outcomes: report
            .rules
            .iter()
            .flat_map(|r| {
                Measure::ALL.iter().enumerate().map(move |(m, &measure)| {
                    let shares = |c: &Option<super::report::Comparison>| {
                        let o = c
                            .as_ref()
                            .and_then(|c| c.outcomes.iter().find(|o| o.outcome == measure));
                        (
                            share(o.and_then(|o| o.share_a_pct)),
                            share(o.and_then(|o| o.share_b_pct)),
                        )
                    };
                    let (current_flagged, current_not_flagged) = shares(&r.outcomes_current);
                    let (candidate_flagged, candidate_not_flagged) = shares(&r.outcomes_candidate);
                    ReplayOutcomeRow {
                        id: r.rule_id.clone(),
                        title: r.title.clone(),
                        title_current: r.title_current.clone(),
                        first: m == 0,
                        outcome: measure.label_sv(),
                        current_flagged,
                        current_not_flagged,
                        candidate_flagged,
                        candidate_not_flagged,
                    }
                })
            })
            .collect(),
    }
}

fn shadow_view(shadow: &super::shadow::ShadowReport) -> ShadowView {
    let shares = |c: &Option<super::report::Comparison>, measure: Measure| {
        let o = c
            .as_ref()
            .and_then(|c| c.outcomes.iter().find(|o| o.outcome == measure));
        (
            share(o.and_then(|o| o.share_a_pct)),
            share(o.and_then(|o| o.share_b_pct)),
        )
    };
    ShadowView {
        sets: shadow
            .rule_sets
            .iter()
            .map(|r| {
                format!(
                    "{} {} ({})",
                    r.name,
                    r.version,
                    r.content_hash.get(..12).unwrap_or(&r.content_hash)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        checks_in_period: shown_count(shadow.checks_in_period),
        rows: shadow
            .rules
            .iter()
            .map(|r| ReplayRow {
                id: r.rule_id.clone(),
                title: r.title.clone(),
                title_current: None,
                current: shown_count(r.flagged_live),
                candidate: shown_count(r.flagged_shadow),
                gained: shown_count(r.gained),
                lost: shown_count(r.lost),
                errors: format!(
                    "{} → {}",
                    shown_count(r.errors_live),
                    shown_count(r.errors_shadow)
                ),
            })
            .collect(),
        outcomes: shadow
            .rules
            .iter()
            .flat_map(|r| {
                Measure::ALL.iter().enumerate().map(move |(m, &measure)| {
                    let (current_flagged, current_not_flagged) = shares(&r.outcomes_live, measure);
                    let (candidate_flagged, candidate_not_flagged) =
                        shares(&r.outcomes_shadow, measure);
                    ReplayOutcomeRow {
                        id: r.rule_id.clone(),
                        title: r.title.clone(),
                        title_current: None,
                        first: m == 0,
                        outcome: measure.label_sv(),
                        current_flagged,
                        current_not_flagged,
                        candidate_flagged,
                        candidate_not_flagged,
                    }
                })
            })
            .collect(),
    }
}

fn group(rule: &RuleAudit, sex: SexGroup) -> Option<&GroupAudit> {
    rule.groups.iter().find(|g| g.sex == sex)
}

fn table(
    rule: &RuleAudit,
    pick: fn(&GroupAudit) -> &Comparison,
    label_a: &'static str,
    label_b: &'static str,
) -> TableView {
    let counts = SexGroup::ALL
        .iter()
        .filter_map(|&sex| {
            let comparison = pick(group(rule, sex)?);
            Some(CountRow {
                group: sex.label_sv(),
                n_a: shown_count(comparison.n_a),
                n_b: shown_count(comparison.n_b),
            })
        })
        .collect();
    let mut rows = Vec::new();
    for (m, measure) in Measure::ALL.iter().enumerate() {
        for (i, &sex) in SexGroup::ALL.iter().enumerate() {
            let Some(outcome) = group(rule, sex).and_then(|g| pick(g).outcomes.get(m)) else {
                continue;
            };
            rows.push(TableRow {
                outcome: if i == 0 { measure.label_sv() } else { "" },
                rows: SexGroup::ALL.len(),
                group: sex.label_sv(),
                a: share(outcome.share_a_pct),
                b: share(outcome.share_b_pct),
                diff: diff_with_p(outcome.diff_pp, outcome.p_value),
                ci: interval(outcome.ci_low_pp, outcome.ci_high_pp, 1),
            });
        }
    }
    TableView {
        label_a,
        label_b,
        counts,
        rows,
    }
}

fn rule_view(report: &AuditReport, rule: &RuleAudit) -> RuleView {
    let mut adjusted_notes = Vec::new();
    let adjusted = SexGroup::ALL
        .iter()
        .filter_map(|&sex| {
            let a = &group(rule, sex)?.adjusted;
            for note in &a.notes {
                adjusted_notes.push(format!("{}: {note}", sex.label_sv()));
            }
            Some(AdjustedRow {
                group: sex.label_sv(),
                estimate: a.coefficient.map_or_else(
                    || NOT_SHOWN.to_owned(),
                    |c| format!("{}{}", number(c, 3), stars(a.p_value)),
                ),
                se: a
                    .robust_se
                    .map_or_else(String::new, |s| format!("({})", number(s, 4))),
                p: a.p_value.map_or_else(|| NOT_SHOWN.to_owned(), p_value),
                ci: interval(a.ci_low, a.ci_high, 3),
                observations: shown_count(a.observations),
                r_squared: a
                    .r_squared
                    .filter(|_| a.coefficient.is_some())
                    .map_or_else(|| NOT_SHOWN.to_owned(), |r| number(r, 3)),
            })
        })
        .collect();
    RuleView {
        id: rule.rule_id.clone(),
        title: rule.title.clone(),
        is_any: rule.rule_id == super::ANY_FLAG_ID,
        chart: chart(rule, WIDE),
        narrow_chart: chart(rule, NARROW),
        flagged: table(
            rule,
            |g| &g.flagged_vs_not_flagged,
            "Flaggade",
            "Ej flaggade",
        ),
        resolved: table(
            rule,
            |g| &g.resolved_vs_still_flagged,
            "Lösta före GK",
            "Kvarstående",
        ),
        adjusted,
        adjusted_notes,
        burden: burden(report, rule),
        responses: super::responses::view(&rule.responses),
        notes: rule.notes.clone(),
    }
}

fn burden(report: &AuditReport, rule: &RuleAudit) -> BurdenView {
    // Its share is of the checks whose rule set had it, as in the summary.
    let checks = rule.checks_with_rule;
    let flagged = rule.flagged_checks.all;
    let months: Vec<MonthRow> = rule
        .flags_per_month
        .iter()
        .zip(&report.checks_per_month)
        .map(|(flags, checks)| MonthRow {
            month: flags.month.clone(),
            female: shown_count(flags.count.female),
            male: shown_count(flags.count.male),
            all: shown_count(flags.count.all),
            checks: shown_count(checks.count.all),
            per_100: rule
                .flags_per_100(flags, checks.count.all)
                .map_or_else(|| NOT_SHOWN.to_owned(), |rate| number(rate, 1)),
        })
        .collect();
    BurdenView {
        flagged: shown_count(flagged),
        flagged_noun: noun(flagged, "flaggad kontroll", "flaggade kontroller"),
        share_of_checks: match (flagged, checks) {
            (Some(flagged), Some(checks)) if checks > 0 => {
                number(100.0 * flagged as f64 / checks as f64, 1)
            }
            _ => NOT_SHOWN.to_owned(),
        },
        rule_errors: shown_count(rule.rule_errors),
        months,
        chart: month_chart(report, rule, CHART_WIDTH),
        narrow_chart: month_chart(report, rule, NARROW_WIDTH),
    }
}

// ---------------------------------------------------------------------------------------
// Charts: geometry is computed here; the template only draws it.
// ---------------------------------------------------------------------------------------

const CHART_WIDTH: f64 = 720.0;
const CHART_HEIGHT: f64 = 250.0;
/// The width of the charts drawn for a phone: at a 375 px screen they are shown at about
/// their own size, so an 11 px label stays 11 px.
const NARROW_WIDTH: f64 = 310.0;

/// How the panels (kvinnor, män, totalt) of an outcome chart are laid out.
#[derive(Clone, Copy)]
struct Layout {
    width: f64,
    /// Panels side by side in a row; more go on the next row.
    columns: usize,
    /// The height of a row of panels.
    row_height: f64,
}

const WIDE: Layout = Layout {
    width: CHART_WIDTH,
    columns: 3,
    row_height: CHART_HEIGHT,
};

const NARROW: Layout = Layout {
    width: NARROW_WIDTH,
    columns: 1,
    row_height: 200.0,
};
const LEFT: f64 = 44.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;
const BAR: f64 = 24.0;
const GAP: f64 = 3.0;

#[derive(Serialize)]
struct Chart {
    width: f64,
    height: f64,
    description: String,
    ticks: Vec<Tick>,
    panels: Vec<Text>,
    categories: Vec<Text>,
    bars: Vec<Bar>,
    labels: Vec<Text>,
    left: f64,
    right: f64,
    /// The baseline of each row of panels.
    baselines: Vec<f64>,
}

#[derive(Serialize)]
struct Tick {
    y: f64,
    label: String,
}

#[derive(Serialize)]
struct Text {
    x: f64,
    y: f64,
    text: String,
}

#[derive(Serialize)]
struct Bar {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    /// `flagged`, `clear` or `checks`.
    class: &'static str,
    title: String,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Shares of each outcome, flagged against not flagged, one panel per sex group.
fn chart(rule: &RuleAudit, layout: Layout) -> Chart {
    let plot_height = layout.row_height - TOP - BOTTOM;
    let columns = layout.columns.max(1);
    let rows = SexGroup::ALL.len().div_ceil(columns);
    let panel_width = (layout.width - LEFT) / columns as f64;
    let cluster_width = panel_width / Measure::ALL.len() as f64;
    let baselines: Vec<f64> = (0..rows)
        .map(|row| layout.row_height * row as f64 + TOP + plot_height)
        .collect();
    let ticks = baselines
        .iter()
        .flat_map(|&baseline| {
            (0..=4).map(move |i| {
                let value = 25.0 * f64::from(i);
                Tick {
                    y: round1(baseline - plot_height * value / 100.0),
                    label: format!("{value:.0} %"),
                }
            })
        })
        .collect();
    let mut panels = Vec::new();
    let mut categories = Vec::new();
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (p, &sex) in SexGroup::ALL.iter().enumerate() {
        let panel_x = LEFT + panel_width * (p % columns) as f64;
        let baseline = baselines.get(p / columns).copied().unwrap_or_default();
        let panel_top = baseline - plot_height;
        panels.push(Text {
            x: round1(panel_x + panel_width / 2.0),
            y: panel_top - 12.0,
            text: sex.label_sv().to_owned(),
        });
        let Some(group) = group(rule, sex) else {
            continue;
        };
        for (m, measure) in Measure::ALL.iter().enumerate() {
            let center = panel_x + cluster_width * (m as f64 + 0.5);
            categories.push(Text {
                x: round1(center),
                y: baseline + 16.0,
                text: measure.short_label_sv().to_owned(),
            });
            let Some(outcome) = group.flagged_vs_not_flagged.outcomes.get(m) else {
                continue;
            };
            let values = [
                ("flagged", "flaggade", outcome.share_a_pct),
                ("clear", "ej flaggade", outcome.share_b_pct),
            ];
            for (k, (class, name, value)) in values.into_iter().enumerate() {
                let x = if k == 0 {
                    center - GAP / 2.0 - BAR
                } else {
                    center + GAP / 2.0
                };
                let label_x = round1(x + BAR / 2.0);
                match value {
                    Some(v) => {
                        let height = plot_height * v.clamp(0.0, 100.0) / 100.0;
                        bars.push(Bar {
                            x: round1(x),
                            y: round1(baseline - height),
                            width: BAR,
                            height: round1(height),
                            class,
                            title: format!("{}, {name}: {} %", sex.label_sv(), number(v, 1)),
                        });
                        labels.push(Text {
                            x: label_x,
                            y: round1(baseline - height - 4.0),
                            text: number(v, 0),
                        });
                    }
                    None => labels.push(Text {
                        x: label_x,
                        y: baseline - 4.0,
                        text: NOT_SHOWN.to_owned(),
                    }),
                }
            }
        }
    }
    Chart {
        width: layout.width,
        height: layout.row_height * rows as f64,
        description: format!(
            "Andel ärenden per utfall, flaggade mot ej flaggade, för kvinnor, män och totalt: {}",
            rule.title
        ),
        ticks,
        panels,
        categories,
        bars,
        labels,
        left: LEFT,
        right: layout.width,
        baselines,
    }
}

#[derive(Serialize)]
struct MonthChart {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    /// One per panel: its title, y-axis ticks and baseline.
    panels: Vec<MonthPanel>,
    bars: Vec<Bar>,
    /// Month labels under the lower panel.
    labels: Vec<Text>,
}

#[derive(Serialize)]
struct MonthPanel {
    title: Text,
    ticks: Vec<Tick>,
    bottom: f64,
}

/// The smallest of 1, 2, 2.5 and 5 times a power of ten that is at least `value` (and
/// at least 1): the top of an axis whose four steps read as round numbers.
fn nice_top(value: f64) -> f64 {
    let value = value.max(1.0);
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|top| *top >= value - 1e-9)
        .unwrap_or(10.0 * power)
}

/// How many steps divide an axis from 0 to `top` (from [`nice_top`]) into round
/// numbers: four for 2, 20, 200 …; five for 1, 2.5, 5 and their powers of ten.
fn axis_steps(top: f64) -> u32 {
    let mantissa = top / 10f64.powf(top.log10().floor());
    if (mantissa - 2.0).abs() < 1e-9 { 4 } else { 5 }
}

/// Every how many months a label fits (at least [`MONTH_LABEL_WIDTH`] apart): every
/// month, every quarter, every year, or every few years.
fn label_every(step: f64) -> usize {
    [1, 3, 12, 24, 60, 120]
        .into_iter()
        .find(|k| step * *k as f64 >= MONTH_LABEL_WIDTH)
        .unwrap_or(120)
}

/// The width a month label (`2024-01`) needs at 11 px.
const MONTH_LABEL_WIDTH: f64 = 46.0;

/// Flags per 100 checks (upper panel) and the number of checks with the number of flags
/// beside it (lower panel), per month, each with a y-axis with values.
fn month_chart(report: &AuditReport, rule: &RuleAudit, chart_width: f64) -> MonthChart {
    const PANEL: f64 = 90.0;
    const TITLE: f64 = 24.0;
    let months = &rule.flags_per_month;
    let checks: Vec<Option<usize>> = months
        .iter()
        .map(|m| {
            report
                .checks_per_month
                .iter()
                .find(|c| c.month == m.month)
                .and_then(|c| c.count.all)
        })
        .collect();
    let rates: Vec<Option<f64>> = months
        .iter()
        .zip(&checks)
        .map(|(m, c)| rule.flags_per_100(m, *c))
        .collect();
    let step = if months.is_empty() {
        0.0
    } else {
        (chart_width - LEFT) / months.len() as f64
    };
    let width = (step * 0.8).max(1.0);
    let rate_bottom = TITLE + PANEL;
    let count_bottom = rate_bottom + TITLE + PANEL;
    let height = count_bottom + 20.0;
    let axis = |bottom: f64, top: f64, label: &dyn Fn(f64) -> String| -> Vec<Tick> {
        let steps = axis_steps(top);
        (0..=steps)
            .map(|i| {
                let value = top * f64::from(i) / f64::from(steps);
                Tick {
                    y: round1(bottom - PANEL * value / top),
                    label: label(value),
                }
            })
            .collect()
    };
    let rate_top = nice_top(rates.iter().flatten().copied().fold(0.0, f64::max));
    let count_top = nice_top(
        checks
            .iter()
            .chain(months.iter().map(|m| &m.count.all))
            .flatten()
            .copied()
            .max()
            .unwrap_or(0) as f64,
    );
    let decimals = |top: f64| if top < 4.0 { 1 } else { 0 };
    let panels = vec![
        MonthPanel {
            title: Text {
                x: LEFT,
                y: TITLE - 8.0,
                text: "Flaggor per 100 kontroller".to_owned(),
            },
            ticks: axis(rate_bottom, rate_top, &|v| number(v, decimals(rate_top))),
            bottom: rate_bottom,
        },
        MonthPanel {
            title: Text {
                x: LEFT,
                y: rate_bottom + TITLE - 8.0,
                text: if chart_width < CHART_WIDTH {
                    "Kontroller (grå), flaggor (färg)"
                } else {
                    "Antal kontroller (grå) och flaggor (färgade)"
                }
                .to_owned(),
            },
            ticks: axis(count_bottom, count_top, &|v| {
                if count_top < 4.0 {
                    number(v, 1)
                } else {
                    count(v.round() as usize)
                }
            }),
            bottom: count_bottom,
        },
    ];
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    let every = label_every(step);
    for (i, month) in months.iter().enumerate() {
        let x = LEFT + step * i as f64 + (step - width) / 2.0;
        // A suppressed count (or a rate resting on one) draws no bar.
        if let Some(rate) = rates[i] {
            let h = PANEL * rate / rate_top;
            bars.push(Bar {
                x: round1(x),
                y: round1(rate_bottom - h),
                width: round1(width),
                height: round1(h),
                class: "flagged",
                title: format!(
                    "{}: {} flaggor per 100 kontroller",
                    month.month,
                    number(rate, 1)
                ),
            });
        }
        let half = width / 2.0;
        for (offset, value, class, one, many) in [
            (0.0, checks[i], "checks", "kontroll", "kontroller"),
            (half, month.count.all, "flagged", "flagga", "flaggor"),
        ] {
            if let Some(n) = value {
                let h = PANEL * n as f64 / count_top;
                bars.push(Bar {
                    x: round1(x + offset),
                    y: round1(count_bottom - h),
                    width: round1(half),
                    height: round1(h),
                    class,
                    title: format!("{}: {} {}", month.month, count(n), noun(Some(n), one, many)),
                });
            }
        }
        let number_of_month = month
            .month
            .get(5..7)
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(1);
        // Every month, or the first of each quarter (year, …) when months are many.
        let labelled = match every {
            1 => true,
            3 => number_of_month % 3 == 1,
            k => {
                let year = month
                    .month
                    .get(..4)
                    .and_then(|y| y.parse::<usize>().ok())
                    .unwrap_or(0);
                number_of_month == 1 && year % (k / 12) == 0
            }
        };
        if labelled {
            labels.push(Text {
                x: round1(LEFT + step * i as f64 + step / 2.0),
                y: height - 4.0,
                text: month.month.clone(),
            });
        }
    }
    MonthChart {
        width: chart_width,
        height,
        left: LEFT,
        right: chart_width,
        panels,
        bars,
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_at_round_numbers() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(3.2), 5.0);
        assert_eq!(nice_top(18.0), 20.0);
        assert_eq!(nice_top(21.0), 25.0);
        assert_eq!(nice_top(312.0), 500.0);
        assert_eq!(nice_top(1000.0), 1000.0);
        // Each step of the axis is a round number.
        for top in [
            1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 200.0, 250.0, 500.0,
        ] {
            let step = top / f64::from(axis_steps(top));
            let scaled = step * 10.0;
            assert!((scaled - scaled.round()).abs() < 1e-9, "{top}: step {step}");
            assert!(step * 10.0 >= 2.0 || top <= 1.0, "{top}: step {step}");
        }
        assert_eq!(axis_steps(50.0), 5);
        assert_eq!(axis_steps(20.0), 4);
    }

    #[test]
    fn months_are_labelled_each_when_they_fit_else_by_quarter_or_year() {
        let step = |months: usize| (CHART_WIDTH - LEFT) / months as f64;
        assert_eq!(label_every(step(12)), 1);
        assert_eq!(label_every(step(14)), 1);
        assert_eq!(label_every(step(24)), 3);
        assert_eq!(label_every(step(36)), 3);
        assert_eq!(label_every(step(120)), 12);
    }

    #[test]
    fn numbers_read_the_swedish_way() {
        assert_eq!(number(-13.04, 1), "\u{2212}13,0");
        assert_eq!(number(-0.01, 1), "0,0");
        assert_eq!(number(0.1644, 3), "0,164");
        assert_eq!(count(6388), "6\u{202F}388");
        assert_eq!(count(1_234_567), "1\u{202F}234\u{202F}567");
        assert_eq!(count(999), "999");
        assert_eq!(p_value(0.0004), "<0,001");
        assert_eq!(
            diff_with_p(Some(-13.0), Some(0.0021)),
            "\u{2212}13,0 (0,002)"
        );
        assert_eq!(diff_with_p(None, None), "–");
        assert_eq!(stars(Some(0.004)), "***");
        assert_eq!(date_sv("2024-06-30"), "30 juni 2024");
    }
}
