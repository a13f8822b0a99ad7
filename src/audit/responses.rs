//! What the officers' answers to flags say, per rule and per rule-set version
//! (docs/audit.md, "Svaren på flaggorna").
//!
//! The flags counted are those raised at checks made in the period (by `checked_on`),
//! each attributed to the rule set (name and version) that raised it:
//! - **answered**, **handled**, **not relevant** (in all and per reason code): the flag's
//!   current answer;
//! - **ignored**: no answer, and the rule still flags at the case's next check, or the
//!   flag was raised before GK and the rule still flags at the case's last check before
//!   GK (when the flag's own check is that last check, the flag was never acted on);
//! - **resolution**: per case, a rule that flagged at some check before GK (its first
//!   such check in the period) and not at the last check before GK is resolved; the days
//!   to resolution run from that first flag to the first check after which the rule no
//!   longer flagged. A rule the last check's rule set did not have is not resolved.
//!   "Before GK" is [`super::units::checks_before_gk`]'s;
//! - **alert burden**: per officer and month (of checks made in the period with that rule
//!   set), the number of the rule's flags, as median and 90th percentile over the
//!   officer-months. Officers are never named, and the figures are shown only when at
//!   least `min_cell` officers and `min_cell` officer-months lie behind them.
//!
//! Every count is a cell of one [`Grid`]: each count below `min_cell` is hidden, and so
//! is any that would follow from the others (answered = handled + not relevant; not
//! relevant = the sum of its reasons; flags = answered + unanswered; unanswered =
//! ignored + not ignored; flagged cases = resolved + unresolved; "any flag" = the sum of
//! the rules; a rule's flags = the sum of its rule-set versions). A share or a median is shown
//! only when the counts it rests on are, and they are at least `min_cell`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use utoipa::ToSchema;

use super::suppress::{Cell, Elsewhere, Grid};
use super::{ANY_FLAG_ID, Period};
use crate::answer::ResponseKind;
use crate::engine::reasons::ReasonCatalog;
use crate::profile::Date;
use crate::store::responses::AnsweredHistory;

/// The answers to one rule's flags (or to every flag, under `nagon_flagga`).
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct RuleResponses {
    /// One entry per rule set (name and version) that raised the rule's flags in the
    /// period, oldest first.
    pub versions: Vec<VersionResponses>,
}

/// The answers to one rule's flags raised by one rule-set version.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VersionResponses {
    pub ruleset: String,
    pub version: String,
    /// Flags raised at checks in the period.
    pub flags: Option<usize>,
    pub answered: Option<usize>,
    pub handled: Option<usize>,
    pub not_relevant: Option<usize>,
    pub not_relevant_by_reason: Vec<ReasonCount>,
    /// Flags with no answer.
    pub unanswered: Option<usize>,
    /// Unanswered flags still raised at the case's next check or at its last check
    /// before GK.
    pub ignored: Option<usize>,
    /// Shares of `flags`, in percent.
    pub answered_pct: Option<f64>,
    pub handled_pct: Option<f64>,
    pub not_relevant_pct: Option<f64>,
    pub ignored_pct: Option<f64>,
    /// Cases whose first flag of the rule before GK was raised in the period by this
    /// version.
    pub cases_flagged_before_gk: Option<usize>,
    /// Of those, cases the rule no longer flagged at the last check before GK.
    pub resolved: Option<usize>,
    /// `resolved` as a share of `cases_flagged_before_gk`, in percent.
    pub resolved_pct: Option<f64>,
    pub median_days_to_resolution: Option<f64>,
    /// The rule's flags per officer and month.
    pub burden: Burden,
}

/// One reason code's count of "not relevant" answers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReasonCount {
    pub code: String,
    pub label: String,
    pub count: Option<usize>,
    /// Share of all the version's flags, in percent.
    pub pct: Option<f64>,
}

/// Flags per officer and month, over the officer-months with checks in the period.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Burden {
    pub officer_months: Option<usize>,
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

/// One stored check, reduced to what this module needs.
struct Check {
    id: i64,
    before_gk_stage: bool,
    checked_on: Date,
    first_meeting_on: Option<Date>,
    version: usize,
    officer: usize,
    flagged: BTreeSet<usize>,
}

/// The counts of one rule (or "any flag") and one version, before suppression.
#[derive(Default)]
struct Tally {
    flags: usize,
    answered: usize,
    handled: usize,
    not_relevant: usize,
    reasons: BTreeMap<String, usize>,
    ignored: usize,
    cases_flagged: usize,
    resolved: usize,
    days: Vec<i64>,
    burden: HashMap<(usize, String), usize>,
}

/// A rule-set version as reported: `name version`, the reasons' labels.
struct Version {
    name: String,
    version: String,
    catalog: ReasonCatalog,
    /// Whether its manifest was read: a set whose manifest was not is taken to have had
    /// every rule, as in the audit.
    manifest_read: bool,
}

impl Version {
    /// Whether this version's rule set had the rule `id`.
    fn had_rule(&self, id: &str) -> bool {
        !self.manifest_read || self.catalog.has_rule(id)
    }
}

/// What the `responses` objects are published from: every count, before suppression.
pub struct Tallied {
    rule_ids: Vec<String>,
    any: Option<usize>,
    versions: Vec<Version>,
    officer_months: Vec<BTreeSet<(usize, String)>>,
    tallies: BTreeMap<(usize, usize), Tally>,
    min_cell: usize,
}

/// What the audit published of one rule, which this section's counts add up to.
#[derive(Clone, Copy, Debug)]
pub struct RuleInAudit {
    /// Checks in the period the rule flagged (`None`: hidden there).
    pub flagged_checks: Option<usize>,
    /// Whether the audit hides any of its cases flagged at the last check before GK,
    /// resolved before it, or with a rule error at it (all of them): the cases flagged
    /// before GK and those resolved, counted here, would give the hidden one away.
    pub resolution_hidden: bool,
}

impl Tallied {
    /// The `responses` object of each rule. The two tables are one report: the sum of a
    /// rule's flags over its versions is the audit's count of flagged checks, so it stays
    /// shown here only where the audit shows it, and is hidden where the audit hides it;
    /// the cases flagged before GK and those resolved are hidden wherever the audit hides
    /// the counts they add up from. Rules past the end of `in_audit` are not tied.
    pub fn publish(&self, in_audit: &[RuleInAudit]) -> Vec<RuleResponses> {
        publish(
            &self.rule_ids,
            self.any,
            &self.versions,
            &self.officer_months,
            &self.tallies,
            in_audit,
            self.min_cell,
        )
    }
}

/// Counts the `responses` of each rule of `rule_ids` (the report's rules, with
/// `nagon_flagga` last) from `history` for `period`, to publish with the audit
/// ([`attach`]).
pub fn tally(
    history: AnsweredHistory,
    rule_ids: &[String],
    period: &Period,
    min_cell: usize,
) -> Tallied {
    let min_cell = min_cell.max(1);
    let rule_index: HashMap<&str, usize> = rule_ids
        .iter()
        .enumerate()
        .filter(|(_, id)| id.as_str() != ANY_FLAG_ID)
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let any = rule_ids.iter().position(|id| id == ANY_FLAG_ID);

    // Versions by `name version`, in the order the rule sets were first seen.
    let mut versions: Vec<Version> = Vec::new();
    let mut version_of_hash: HashMap<String, usize> = HashMap::new();
    for set in history.rule_sets {
        let index = match versions
            .iter()
            .position(|v| v.name == set.name && v.version == set.version)
        {
            Some(index) => index,
            None => {
                let catalog = set
                    .manifest
                    .as_deref()
                    .and_then(ReasonCatalog::from_manifest);
                versions.push(Version {
                    name: set.name,
                    version: set.version,
                    manifest_read: catalog.is_some(),
                    catalog: catalog.unwrap_or_default(),
                });
                versions.len() - 1
            }
        };
        version_of_hash.insert(set.content_hash, index);
    }
    let answers: HashMap<(i64, usize), (ResponseKind, Option<String>)> = history
        .answers
        .into_iter()
        .filter_map(|a| {
            let rule = *rule_index.get(a.rule_id.as_str())?;
            Some(((a.evaluation_id, rule), (a.response, a.reason)))
        })
        .collect();

    // Each rule set's version and each stored rule id's place, looked up once.
    let version_of_set: Vec<Option<usize>> = history
        .rule_set_hashes
        .iter()
        .map(|hash| version_of_hash.get(hash).copied())
        .collect();
    let rule_of_id: Vec<Option<usize>> = history
        .rule_ids
        .iter()
        .map(|id| rule_index.get(id.as_str()).copied())
        .collect();
    // Officers numbered in order of first appearance.
    let mut officers: HashMap<u32, usize> = HashMap::new();
    let mut tallies: BTreeMap<(usize, usize), Tally> = BTreeMap::new();
    // The officer-months of each version's checks in the period.
    let mut officer_months: Vec<BTreeSet<(usize, String)>> = vec![BTreeSet::new(); versions.len()];
    let mut cases: Vec<Vec<Check>> = Vec::new();
    let mut current_case: Option<u32> = None;
    for row in history.checks {
        let Some(Some(version)) = version_of_set.get(row.rule_set as usize).copied() else {
            continue;
        };
        let next_officer = officers.len();
        let officer = *officers.entry(row.requested_by).or_insert(next_officer);
        let check = Check {
            id: row.evaluation_id,
            before_gk_stage: row.stage == crate::profile::Stage::BeforeGk,
            checked_on: row.checked_on,
            first_meeting_on: row.first_meeting_on,
            version,
            officer,
            flagged: row
                .flagged
                .iter()
                .filter_map(|&id| rule_of_id.get(id as usize).copied().flatten())
                .collect(),
        };
        if current_case != Some(row.case) {
            current_case = Some(row.case);
            cases.push(Vec::new());
        }
        if let Some(case) = cases.last_mut() {
            case.push(check);
        }
    }

    for case in &cases {
        let gk_date = case.iter().rev().find_map(|c| c.first_meeting_on);
        let before_gk =
            |c: &Check| c.before_gk_stage && gk_date.is_none_or(|date| c.checked_on <= date);
        let last_before = case.iter().rev().find(|c| before_gk(c));
        for (i, check) in case.iter().enumerate() {
            if !period.contains(check.checked_on) {
                continue;
            }
            let month = month_of(check.checked_on);
            officer_months[check.version].insert((check.officer, month.clone()));
            for &rule in &check.flagged {
                let ignored = !answers.contains_key(&(check.id, rule))
                    && (case
                        .get(i + 1)
                        .is_some_and(|next| next.flagged.contains(&rule))
                        || (before_gk(check)
                            && last_before.is_some_and(|last| last.flagged.contains(&rule))));
                for key in std::iter::once(rule).chain(any) {
                    let tally = tallies.entry((key, check.version)).or_default();
                    tally.flags += 1;
                    *tally
                        .burden
                        .entry((check.officer, month.clone()))
                        .or_default() += 1;
                    match answers.get(&(check.id, rule)) {
                        Some((ResponseKind::Handled, _)) => {
                            tally.answered += 1;
                            tally.handled += 1;
                        }
                        Some((ResponseKind::NotRelevant, reason)) => {
                            tally.answered += 1;
                            tally.not_relevant += 1;
                            *tally
                                .reasons
                                .entry(reason.clone().unwrap_or_default())
                                .or_default() += 1;
                        }
                        None => tally.ignored += usize::from(ignored),
                    }
                }
            }
        }
        // Resolution, per rule and for any flag.
        let before: Vec<&Check> = case.iter().filter(|c| before_gk(c)).collect();
        let Some(last) = before.last() else { continue };
        let keys = rule_index
            .values()
            .map(|&rule| (rule, Some(rule)))
            .chain(any.map(|a| (a, None)));
        for (key, rule) in keys {
            let flags = |c: &Check| match rule {
                Some(rule) => c.flagged.contains(&rule),
                None => !c.flagged.is_empty(),
            };
            let Some(first) = before.iter().find(|c| flags(c)) else {
                continue;
            };
            if !period.contains(first.checked_on) {
                continue;
            }
            let tally = tallies.entry((key, first.version)).or_default();
            tally.cases_flagged += 1;
            // A rule the last check's rule set did not have may still flag: not resolved,
            // as the audit counts that case as not known.
            let not_in_set = rule.is_some_and(|r| !versions[last.version].had_rule(&rule_ids[r]));
            if !flags(last) && !not_in_set {
                tally.resolved += 1;
                let last_flagged = before.iter().rposition(|c| flags(c));
                if let Some(clearing) = last_flagged.and_then(|i| before.get(i + 1)) {
                    tally
                        .days
                        .push(first.checked_on.days_until(clearing.checked_on));
                }
            }
        }
    }

    // Every version with checks in the period gets a row for each rule it had, with no
    // flags too: that a rule raised a flag is itself a count (one at least), and with the
    // period's counts hidden, which rules had a row told which rules had flagged.
    for (version, months) in officer_months.iter().enumerate() {
        if months.is_empty() {
            continue;
        }
        for (key, id) in rule_ids.iter().enumerate() {
            if Some(key) == any || versions[version].had_rule(id) {
                tallies.entry((key, version)).or_default();
            }
        }
    }

    Tallied {
        rule_ids: rule_ids.to_vec(),
        any,
        versions,
        officer_months,
        tallies,
        min_cell,
    }
}

/// The cells of one tally in the grid.
struct Cells {
    flags: Cell,
    answered: Cell,
    handled: Cell,
    not_relevant: Cell,
    reasons: Vec<(String, Cell)>,
    unanswered: Cell,
    ignored: Cell,
    cases_flagged: Cell,
    resolved: Cell,
}

fn publish(
    rule_ids: &[String],
    any: Option<usize>,
    versions: &[Version],
    officer_months: &[BTreeSet<(usize, String)>],
    tallies: &BTreeMap<(usize, usize), Tally>,
    in_audit: &[RuleInAudit],
    min_cell: usize,
) -> Vec<RuleResponses> {
    let mut grid = Grid::new();
    let mut cells: BTreeMap<(usize, usize), Cells> = BTreeMap::new();
    for (&key, tally) in tallies {
        let flags = grid.cell(tally.flags);
        let answered = grid.cell(tally.answered);
        let handled = grid.cell(tally.handled);
        let not_relevant = grid.cell(tally.not_relevant);
        let reasons: Vec<(String, Cell)> = tally
            .reasons
            .iter()
            .map(|(code, &n)| (code.clone(), grid.cell(n)))
            .collect();
        let unanswered = grid.cell(tally.flags - tally.answered);
        let ignored = grid.cell(tally.ignored);
        let not_ignored = grid.cell(tally.flags - tally.answered - tally.ignored);
        let cases_flagged = grid.cell(tally.cases_flagged);
        let resolved = grid.cell(tally.resolved);
        let unresolved = grid.cell(tally.cases_flagged - tally.resolved);
        grid.sum(&[answered, unanswered], flags);
        grid.sum(&[handled, not_relevant], answered);
        let reason_cells: Vec<Cell> = reasons.iter().map(|(_, c)| *c).collect();
        grid.sum(&reason_cells, not_relevant);
        grid.sum(&[ignored, not_ignored], unanswered);
        grid.sum(&[resolved, unresolved], cases_flagged);
        cells.insert(
            key,
            Cells {
                flags,
                answered,
                handled,
                not_relevant,
                reasons,
                unanswered,
                ignored,
                cases_flagged,
                resolved,
            },
        );
    }
    // "Any flag" is the sum of the rules, version by version.
    if let Some(any) = any {
        for version in 0..versions.len() {
            let Some(total) = cells.get(&(any, version)) else {
                continue;
            };
            let parts: Vec<&Cells> = cells
                .iter()
                .filter(|((key, v), _)| *v == version && *key != any)
                .map(|(_, c)| c)
                .collect();
            for pick in [
                |c: &Cells| c.flags,
                |c: &Cells| c.answered,
                |c: &Cells| c.handled,
                |c: &Cells| c.not_relevant,
                |c: &Cells| c.unanswered,
                |c: &Cells| c.ignored,
            ] {
                let members: Vec<Cell> = parts.iter().map(|c| pick(c)).collect();
                grid.sum(&members, pick(total));
            }
            for (code, total_cell) in &total.reasons {
                let members: Vec<Cell> = parts
                    .iter()
                    .flat_map(|c| &c.reasons)
                    .filter(|(c, _)| c == code)
                    .map(|(_, cell)| *cell)
                    .collect();
                grid.sum(&members, *total_cell);
            }
        }
    }
    // A rule's flags over every version: the audit's "flagged checks" publishes it, and
    // as it publishes it (never "any flag", whose flags are not its flagged checks).
    for key in 0..rule_ids.len() {
        let over_versions = |grid: &mut Grid, pick: fn(&Cells) -> Cell| {
            let parts: Vec<Cell> = cells
                .iter()
                .filter(|((k, _), _)| *k == key)
                .map(|(_, c)| pick(c))
                .collect();
            (!parts.is_empty()).then(|| {
                let total = grid.cell(parts.iter().map(|c| grid.value(*c)).sum());
                grid.sum(&parts, total);
                total
            })
        };
        let Some(flags) = over_versions(&mut grid, |c| c.flags) else {
            continue;
        };
        let cases_flagged = over_versions(&mut grid, |c| c.cases_flagged);
        let resolved = over_versions(&mut grid, |c| c.resolved);
        let Some(audit) = in_audit.get(key) else {
            continue;
        };
        // "Any flag"'s flags are the rules' together, not its flagged checks.
        if Some(key) != any {
            let elsewhere = Elsewhere::of(Some(audit.flagged_checks), grid.value(flags));
            grid.tie(flags, elsewhere);
        }
        if audit.resolution_hidden {
            for total in [cases_flagged, resolved].into_iter().flatten() {
                grid.hide(total);
            }
        }
    }
    grid.suppress(min_cell);

    let share = |part: Cell, whole: Cell| -> Option<f64> {
        let (part, whole) = (grid.shown(part)?, grid.shown(whole)?);
        (whole >= min_cell).then(|| round1(100.0 * part as f64 / whole as f64))
    };
    (0..rule_ids.len())
        .map(|key| RuleResponses {
            versions: cells
                .iter()
                .filter(|((k, _), _)| *k == key)
                .map(|(&(_, version), c)| {
                    let tally = &tallies[&(key, version)];
                    let info = &versions[version];
                    let rule_id = rule_ids[key].as_str();
                    let resolved_shown = grid.shown(c.resolved).filter(|n| *n >= min_cell);
                    VersionResponses {
                        ruleset: info.name.clone(),
                        version: info.version.clone(),
                        flags: grid.shown(c.flags),
                        answered: grid.shown(c.answered),
                        handled: grid.shown(c.handled),
                        not_relevant: grid.shown(c.not_relevant),
                        not_relevant_by_reason: c
                            .reasons
                            .iter()
                            .map(|(code, cell)| ReasonCount {
                                label: reason_label(&info.catalog, rule_id, code),
                                code: code.clone(),
                                count: grid.shown(*cell),
                                pct: share(*cell, c.flags),
                            })
                            .collect(),
                        unanswered: grid.shown(c.unanswered),
                        ignored: grid.shown(c.ignored),
                        answered_pct: share(c.answered, c.flags),
                        handled_pct: share(c.handled, c.flags),
                        not_relevant_pct: share(c.not_relevant, c.flags),
                        ignored_pct: share(c.ignored, c.flags),
                        cases_flagged_before_gk: grid.shown(c.cases_flagged),
                        resolved: grid.shown(c.resolved),
                        resolved_pct: share(c.resolved, c.cases_flagged),
                        median_days_to_resolution: resolved_shown
                            .and_then(|_| percentile(&tally.days, 0.5)),
                        // Its percentiles tell the largest counts, and with few flags
                        // their total: shown only beside the flags.
                        burden: if grid.is_hidden(c.flags) {
                            Burden::default()
                        } else {
                            burden(tally, &officer_months[version], min_cell)
                        },
                    }
                })
                .collect(),
        })
        .collect()
}

/// The label of a reason code: the rule's, else any rule's of the same rule set (for
/// "any flag"), else the code itself.
fn reason_label(catalog: &ReasonCatalog, rule_id: &str, code: &str) -> String {
    catalog
        .label(rule_id, code)
        .or_else(|| catalog.any_label(code))
        .unwrap_or(code)
        .to_owned()
}

/// The median and 90th percentile of the flags per officer-month, over every
/// officer-month with checks (months without a flag count as 0); `None` unless at least
/// `min_cell` officers and officer-months lie behind them.
fn burden(tally: &Tally, months: &BTreeSet<(usize, String)>, min_cell: usize) -> Burden {
    let officers: BTreeSet<usize> = months.iter().map(|(o, _)| *o).collect();
    if months.len() < min_cell || officers.len() < min_cell {
        return Burden::default();
    }
    let values: Vec<i64> = months
        .iter()
        .map(|key| i64::try_from(tally.burden.get(key).copied().unwrap_or(0)).unwrap_or(i64::MAX))
        .collect();
    Burden {
        officer_months: Some(months.len()),
        median: percentile(&values, 0.5),
        p90: percentile(&values, 0.9),
    }
}

/// The `q` quantile of `values` (linear between the closest ranks, as R's type 7 and
/// numpy's default); `None` for no values.
fn percentile(values: &[i64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let position = q * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = position.ceil() as usize;
    let fraction = position - low as f64;
    Some(round1(
        sorted[low] as f64 + (sorted[high] as f64 - sorted[low] as f64) * fraction,
    ))
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn month_of(date: Date) -> String {
    let text = date.to_string();
    text.get(..7).unwrap_or(&text).to_owned()
}

/// Fills the `responses` object of each rule of `report`, published from `tallied`
/// ([`tally`] counted it for the same rules in the same order) beside the report's
/// suppressed counts. A report with too few cases lists no rules and gets nothing.
pub fn attach(report: &mut super::report::AuditReport, tallied: &Tallied) {
    use super::report::SexGroup;
    let in_audit: Vec<RuleInAudit> = report
        .rules
        .iter()
        .map(|rule| {
            let all = rule.groups.iter().find(|g| g.sex == SexGroup::All);
            RuleInAudit {
                flagged_checks: rule.flagged_checks.all,
                resolution_hidden: all.is_none_or(|g| {
                    g.flagged_vs_not_flagged.n_a.is_none()
                        || g.resolved_vs_still_flagged.n_a.is_none()
                        || g.unknown_at_last_check.is_none()
                }),
            }
        })
        .collect();
    let computed = tallied.publish(&in_audit);
    for (rule, responses) in report.rules.iter_mut().zip(computed) {
        rule.responses = responses;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::responses::{AnsweredCheckRow, CurrentAnswerRow, RuleSetRow};

    /// The rule ids the tests' checks may flag, numbered by place.
    const RULE_IDS: [&str; 3] = ["a", "b", "c"];

    /// Case `c<n>` is case number `n`; an officer is numbered by the first letter of
    /// their name.
    fn check(id: i64, case: &str, on: &str, by: &str, flagged: &[&str]) -> AnsweredCheckRow {
        AnsweredCheckRow {
            evaluation_id: id,
            case: case[1..].parse().expect("case number"),
            stage: crate::profile::Stage::BeforeGk,
            checked_on: Date::parse(on).expect("date"),
            first_meeting_on: None,
            rule_set: 0,
            requested_by: u32::from(by.as_bytes()[0]),
            flagged: flagged
                .iter()
                .map(|f| {
                    let at = RULE_IDS.iter().position(|id| id == f).expect("rule id");
                    u32::try_from(at).expect("place")
                })
                .collect(),
        }
    }

    fn history(checks: Vec<AnsweredCheckRow>, answers: Vec<CurrentAnswerRow>) -> AnsweredHistory {
        AnsweredHistory {
            checks,
            answers,
            rule_set_hashes: vec!["h1".into()],
            rule_ids: RULE_IDS.iter().map(|&id| id.to_owned()).collect(),
            rule_sets: vec![RuleSetRow {
                content_hash: "h1".into(),
                name: "GK".into(),
                version: "1".into(),
                manifest: Some(
                    "name: GK\nversion: '1'\ncommon_reasons:\n  - {code: annat, label: annat skäl}\nrules:\n  - id: a\n"
                        .into(),
                ),
            }],
        }
    }

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into(), ANY_FLAG_ID.into()]
    }

    /// Three ways the section gave back what the audit hides: "any flag"'s flagged
    /// cases beside the audit's any-flag cases still flagged; the officers' burden, whose
    /// 90th percentile told a hidden count of one flag; and a 0 handled under a hidden 0
    /// answered, which told that a few flags were not handled.
    #[test]
    fn what_the_audit_hides_stays_hidden_for_any_flag_the_burden_and_the_answers() {
        // Seven officers, a month each; one check of c1 flagged by `a`, and ten cases
        // flagged by `b` at both checks, three more by `b` at the first only.
        let mut checks = vec![check(1, "c1", "2024-01-10", "a", &["a"])];
        let mut id = 2;
        for case in 2..15 {
            let officer = ["b", "c", "d", "e", "f", "g"][case % 6];
            checks.push(check(
                id,
                &format!("c{case}"),
                "2024-01-05",
                officer,
                &["b"],
            ));
            let still = if case < 12 { &["b"][..] } else { &[][..] };
            checks.push(check(
                id + 1,
                &format!("c{case}"),
                "2024-01-20",
                officer,
                still,
            ));
            id += 2;
        }
        let hidden = RuleInAudit {
            flagged_checks: None,
            resolution_hidden: true,
        };
        let tallied = tally(history(checks, Vec::new()), &ids(), &Period::default(), 5);
        let out = tallied.publish(&[hidden, hidden, hidden]);
        let any = &out[2].versions[0];
        assert_eq!(any.cases_flagged_before_gk, None, "{any:?}");
        assert_eq!(any.resolved, None, "{any:?}");
        let a = &out[0].versions[0];
        assert_eq!(a.flags, None);
        assert_eq!(a.burden.p90, None, "{a:?}");
        assert_eq!(a.burden.median, None, "{a:?}");
        assert_eq!(a.handled, None, "a 0 under a hidden 0: {a:?}");
        assert_eq!(a.not_relevant, None, "{a:?}");
    }

    /// A period with one check, flagged by `b` alone: the audit hid every rule's count,
    /// and the section listed a row for `b` and "any flag" only, which told which rule
    /// had flagged that one person.
    #[test]
    fn every_rule_of_a_version_with_checks_has_a_row_so_a_row_tells_no_flag() {
        let mut history = history(vec![check(1, "c1", "2024-08-10", "x", &["b"])], Vec::new());
        history.rule_sets[0].manifest = Some(
            "name: GK\nversion: '1'\ncommon_reasons:\n  - {code: annat, label: annat skäl}\nrules:\n  - id: a\n  - id: b\n"
                .into(),
        );
        let hidden = RuleInAudit {
            flagged_checks: None,
            resolution_hidden: true,
        };
        let out = tally(history, &ids(), &Period::default(), 5).publish(&[hidden; 3]);
        for (rule, published) in ["a", "b", ANY_FLAG_ID].iter().zip(&out) {
            assert_eq!(published.versions.len(), 1, "{rule}: {published:?}");
            let row = &published.versions[0];
            assert_eq!(
                (
                    row.flags,
                    row.answered,
                    row.cases_flagged_before_gk,
                    row.resolved
                ),
                (None, None, None, None),
                "{rule}: {row:?}"
            );
        }
        let shown = |r: &RuleResponses| format!("{:?}", r.versions[0]);
        assert_eq!(
            shown(&out[0]),
            shown(&out[1]),
            "a's row and b's tell the same"
        );
    }

    #[test]
    fn answers_ignored_flags_and_resolution_are_counted_per_version() {
        let checks = vec![
            check(1, "c1", "2024-01-10", "x", &["a", "b"]),
            check(2, "c1", "2024-01-20", "x", &["b"]),
            // A case whose only flag was answered "handled" and never came back.
            check(3, "c2", "2024-02-01", "y", &["a"]),
        ];
        let answers = vec![
            CurrentAnswerRow {
                evaluation_id: 1,
                rule_id: "a".into(),
                response: ResponseKind::NotRelevant,
                reason: Some("annat".into()),
            },
            CurrentAnswerRow {
                evaluation_id: 3,
                rule_id: "a".into(),
                response: ResponseKind::Handled,
                reason: None,
            },
        ];
        let out = tally(history(checks, answers), &ids(), &Period::default(), 1).publish(&[]);
        let a = &out[0].versions[0];
        assert_eq!((a.ruleset.as_str(), a.version.as_str()), ("GK", "1"));
        assert_eq!(a.flags, Some(2));
        assert_eq!(
            (a.answered, a.handled, a.not_relevant),
            (Some(2), Some(1), Some(1))
        );
        assert_eq!(a.not_relevant_by_reason[0].label, "annat skäl");
        assert_eq!(a.not_relevant_by_reason[0].count, Some(1));
        assert_eq!(a.ignored, Some(0));
        assert_eq!(a.answered_pct, Some(100.0));
        // Case c1: flagged at the first check, gone at the last; c2: still flagged.
        assert_eq!((a.cases_flagged_before_gk, a.resolved), (Some(2), Some(1)));
        assert_eq!(a.median_days_to_resolution, Some(10.0));
        let b = &out[1].versions[0];
        // Both of b's flags went unanswered and were still there at the next or last check.
        assert_eq!(
            (b.flags, b.unanswered, b.ignored),
            (Some(2), Some(2), Some(2))
        );
        assert_eq!(b.ignored_pct, Some(100.0));
        assert_eq!(b.resolved, Some(0));
        let any = &out[2].versions[0];
        assert_eq!(
            (any.flags, any.answered, any.ignored),
            (Some(4), Some(2), Some(2))
        );
        // c1 still has a flag at its last check; c2 too.
        assert_eq!(
            (any.cases_flagged_before_gk, any.resolved),
            (Some(2), Some(0))
        );
        // Two officers, two officer-months: the burden is shown only with min_cell 1.
        assert_eq!(any.burden.officer_months, Some(2));
        assert_eq!(any.burden.median, Some(2.0));
    }

    #[test]
    fn small_counts_and_what_follows_from_them_are_hidden() {
        let mut checks = Vec::new();
        let mut answers = Vec::new();
        for i in 0..12 {
            checks.push(check(i, &format!("c{i}"), "2024-03-01", "x", &["a"]));
            if i < 2 {
                answers.push(CurrentAnswerRow {
                    evaluation_id: i,
                    rule_id: "a".into(),
                    response: ResponseKind::Handled,
                    reason: None,
                });
            }
        }
        let out = tally(history(checks, answers), &ids(), &Period::default(), 5).publish(&[]);
        let a = &out[0].versions[0];
        assert_eq!(a.flags, Some(12));
        assert_eq!(a.handled, None, "2 < 5");
        assert_eq!(a.answered, None, "answered = handled + 0");
        assert_eq!(
            a.unanswered, None,
            "flags − unanswered would give answered away"
        );
        assert_eq!(a.answered_pct, None);
        assert_eq!(a.burden.officer_months, None, "one officer");
        assert_eq!(a.median_days_to_resolution, None);
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[3, 1, 2], 0.5), Some(2.0));
        assert_eq!(percentile(&[0, 0, 0, 0, 10], 0.9), Some(6.0));
    }
}

/// One rule-set version's answers as the HTML report shows them.
#[derive(Serialize)]
pub struct VersionView {
    pub version: String,
    pub flags: String,
    pub answered: String,
    pub handled: String,
    pub not_relevant: String,
    pub ignored: String,
    pub resolved: String,
    pub median_days: String,
    pub burden: String,
    /// "personen avböjer: 5 (2,1 %)", per reason.
    pub reasons: Vec<String>,
}

/// The HTML report's rows for `responses`, one per rule-set version.
pub fn view(responses: &RuleResponses) -> Vec<VersionView> {
    use super::html::{number, shown_count};
    let with_pct = |count: Option<usize>, pct: Option<f64>| match pct {
        Some(pct) => format!("{} ({} %)", shown_count(count), number(pct, 1)),
        None => shown_count(count),
    };
    let value = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| number(v, 1));
    responses
        .versions
        .iter()
        .map(|v| VersionView {
            version: format!("{} {}", v.ruleset, v.version),
            flags: shown_count(v.flags),
            answered: with_pct(v.answered, v.answered_pct),
            handled: with_pct(v.handled, v.handled_pct),
            not_relevant: with_pct(v.not_relevant, v.not_relevant_pct),
            ignored: with_pct(v.ignored, v.ignored_pct),
            resolved: match v.resolved_pct {
                Some(pct) => format!(
                    "{} av {} ({} %)",
                    shown_count(v.resolved),
                    shown_count(v.cases_flagged_before_gk),
                    number(pct, 1)
                ),
                None => format!(
                    "{} av {}",
                    shown_count(v.resolved),
                    shown_count(v.cases_flagged_before_gk)
                ),
            },
            median_days: value(v.median_days_to_resolution),
            burden: format!("{} / {}", value(v.burden.median), value(v.burden.p90)),
            reasons: v
                .not_relevant_by_reason
                .iter()
                .map(|r| format!("{}: {}", r.label, with_pct(r.count, r.pct)))
                .collect(),
        })
        .collect()
}

/// The CSV rows of `responses` of `rule_id`: section `responses`, one row per rule-set
/// version and measure (`metric`), the count in `count` and a share, median or
/// percentile in `value`.
pub fn csv_rows(rule_id: &str, responses: &RuleResponses) -> Vec<super::report::CsvRow> {
    use super::report::CsvRow;
    let mut rows = Vec::new();
    for v in &responses.versions {
        let row = |metric: &str| {
            CsvRow::new("responses")
                .set("rule_id", rule_id)
                .set("ruleset", format!("{} {}", v.ruleset, v.version))
                .set("metric", metric)
        };
        for (metric, count, value) in [
            ("flags", v.flags, None),
            ("answered", v.answered, v.answered_pct),
            ("handled", v.handled, v.handled_pct),
            ("not_relevant", v.not_relevant, v.not_relevant_pct),
            ("unanswered", v.unanswered, None),
            ("ignored", v.ignored, v.ignored_pct),
            ("cases_flagged_before_gk", v.cases_flagged_before_gk, None),
            ("resolved", v.resolved, v.resolved_pct),
            (
                "median_days_to_resolution",
                None,
                v.median_days_to_resolution,
            ),
            ("burden_officer_months", v.burden.officer_months, None),
            ("burden_median", None, v.burden.median),
            ("burden_p90", None, v.burden.p90),
        ] {
            rows.push(row(metric).count("count", count).num("value", value));
        }
        for reason in &v.not_relevant_by_reason {
            rows.push(
                row(&format!("not_relevant:{}", reason.code))
                    .count("count", reason.count)
                    .num("value", reason.pct)
                    .set("note", &reason.label),
            );
        }
    }
    rows
}
