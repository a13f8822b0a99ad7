//! Per rule and sex group: outcome shares of flagged and unflagged cases and of resolved
//! and still-flagged ones, their differences and tests; the adjusted estimate from a
//! linear probability model with the controls of SFR 2018:11 tabell 20; and the alert
//! burden (flags per month). Small cells are suppressed here, once, for every output.

use std::collections::BTreeMap;

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::report::{
    Adjusted, AuditReport, Comparison, GroupAudit, Measure, MonthCounts, OutcomeComparison,
    PeriodJson, RuleAudit, RuleSetJson, SexCounts, SexGroup, ShownCounts,
};
use super::stats::{independent_columns, ols_hc1, t_inference, two_proportions};
use super::suppress::{Cell, Grid};
use super::units::{self, Unit, any_status};
use super::{ANY_FLAG_ID, AuditInput, Covariates, Options, Period, Status};
use crate::profile::{DiagnosisGroup, Education, MaritalStatus, Sex};

/// The title of the "any flag" row.
pub const ANY_FLAG_TITLE: &str = "Någon flagga";

/// Months of alert burden are listed gap-free up to this span; a longer span lists only
/// the months with checks, so the report grows with the data, not with the dates.
pub const MAX_FILLED_MONTHS: usize = 120;

pub(super) fn run(input: &AuditInput, options: &Options) -> AuditReport {
    let min_cell = options.min_cell.max(1);
    let built = units::build(input, &options.period);

    let mut unit_counts = SexCounts::default();
    for unit in &built.units {
        unit_counts.add(unit.covariates.sex);
    }
    if unit_counts.all < min_cell {
        return too_few_cases(input, options, min_cell);
    }
    let burden = Burden::count(input, &options.period);
    let months = burden.months();

    let rule_rows: Vec<(&str, &str)> = input
        .rules
        .iter()
        .map(|r| (r.id.as_str(), r.title.as_str()))
        .chain(std::iter::once((ANY_FLAG_ID, ANY_FLAG_TITLE)))
        .collect();
    // Each rule's comparisons and model are independent: one rule per core.
    let rules = rule_rows
        .into_par_iter()
        .enumerate()
        .map(|(index, (id, title))| {
            let groups: Vec<GroupAudit> = SexGroup::ALL
                .iter()
                .map(|&group| group_audit(&built.units, index, group, min_cell))
                .collect();
            let mut notes = Vec::new();
            let ever = built.units.iter().filter(|u| u.rules[index].ever).count();
            if ever == 0 {
                notes.push(
                    "Regeln flaggade inte vid någon kontroll före GK bland ärendena i perioden; det finns inget att jämföra."
                        .to_owned(),
                );
            }
            RuleAudit {
                rule_id: id.to_owned(),
                title: title.to_owned(),
                groups,
                flagged_checks: ShownCounts::of(burden.flagged[index]),
                flags_per_month: months
                    .iter()
                    .map(|month| MonthCounts {
                        month: month.clone(),
                        count: ShownCounts::of(
                            burden.flagged_by_month[index]
                                .get(month)
                                .copied()
                                .unwrap_or_default(),
                        ),
                    })
                    .collect(),
                rule_errors: Some(burden.errors[index]),
                notes,
            }
        })
        .collect();

    let mut report = AuditReport {
        period: PeriodJson {
            from: options.period.from.map(|d| d.to_string()),
            to: options.period.to.map(|d| d.to_string()),
        },
        min_cell,
        rule_sets: input
            .rule_sets
            .iter()
            .map(|r| RuleSetJson {
                name: r.name.clone(),
                version: r.version.clone(),
                content_hash: r.content_hash.clone(),
                checks: Some(r.checks),
            })
            .collect(),
        units: ShownCounts::of(unit_counts),
        cases_without_check_before_gk: Some(built.without_check),
        checks_in_period: ShownCounts::of(burden.checks),
        checks_per_month: months
            .iter()
            .map(|month| MonthCounts {
                month: month.clone(),
                count: ShownCounts::of(
                    burden
                        .checks_by_month
                        .get(month)
                        .copied()
                        .unwrap_or_default(),
                ),
            })
            .collect(),
        notes: Vec::new(),
        rules,
    };
    let raw = Raw::of(&report);
    let t = std::time::Instant::now();
    protect(&mut report, &raw, min_cell);
    for (rule, &failed) in report.rules.iter_mut().zip(&raw.failed) {
        if failed == 0 {
            continue;
        }
        let shown = rule
            .groups
            .iter()
            .find(|g| g.sex == SexGroup::All)
            .and_then(|g| g.unknown_at_last_check);
        let how_many = shown.map_or_else(|| "Några".to_owned(), |n| n.to_string());
        rule.notes.push(format!(
            "{how_many} ärenden hade regelfel vid den senaste kontrollen före GK; om regeln flaggade är okänt, så de ingår inte i regelns jämförelser."
        ));
    }
    eprintln!("PROTECT {:?}", t.elapsed());
    report.notes = report_notes(input, &report, &raw, min_cell);
    report
}

/// The report of a period with fewer cases than `min_cell`: a note, and no table, chart
/// or count at all.
fn too_few_cases(input: &AuditInput, options: &Options, min_cell: usize) -> AuditReport {
    AuditReport {
        period: PeriodJson {
            from: options.period.from.map(|d| d.to_string()),
            to: options.period.to.map(|d| d.to_string()),
        },
        min_cell,
        rule_sets: input
            .rule_sets
            .iter()
            .map(|r| RuleSetJson {
                name: r.name.clone(),
                version: r.version.clone(),
                content_hash: r.content_hash.clone(),
                checks: None,
            })
            .collect(),
        units: ShownCounts::default(),
        cases_without_check_before_gk: None,
        checks_in_period: ShownCounts::default(),
        checks_per_month: Vec::new(),
        notes: vec![too_few_cases_note(min_cell)],
        rules: Vec::new(),
    }
}

/// The one note of a period with too few cases.
pub fn too_few_cases_note(min_cell: usize) -> String {
    format!(
        "För få fall i perioden för att visa resultat: uppföljningen visas bara när minst {min_cell} ärenden med utfall i perioden har en kontroll före GK, så att ingen enskild person kan pekas ut. Välj en längre period."
    )
}

/// The counts of the report before suppression (every count is `Some` until then),
/// with the ones never printed (cases whose sex is not given, cases left out of the
/// adjusted model) that follow from them.
struct Raw {
    unknown_sex: usize,
    without_check: usize,
    /// Per rule: cases left out of the adjusted model for a missing control, per sex
    /// group (flagged, not flagged).
    left_out_of_model: Vec<Vec<(usize, usize)>>,
    /// Per rule: cases (all) whose last check before GK had an error in the rule.
    failed: Vec<usize>,
}

impl Raw {
    fn of(report: &AuditReport) -> Self {
        let units = report.units;
        let raw = |v: Option<usize>| v.unwrap_or_default();
        Self {
            unknown_sex: raw(units.all)
                .saturating_sub(raw(units.female))
                .saturating_sub(raw(units.male)),
            without_check: raw(report.cases_without_check_before_gk),
            left_out_of_model: report
                .rules
                .iter()
                .map(|rule| {
                    rule.groups
                        .iter()
                        .map(|g| {
                            let c = &g.flagged_vs_not_flagged;
                            (
                                raw(c.n_a).saturating_sub(raw(g.adjusted.n_flagged)),
                                raw(c.n_b).saturating_sub(raw(g.adjusted.n_not_flagged)),
                            )
                        })
                        .collect()
                })
                .collect(),
            failed: report
                .rules
                .iter()
                .map(|rule| {
                    rule.groups
                        .iter()
                        .find(|g| g.sex == SexGroup::All)
                        .map_or(0, |g| raw(g.unknown_at_last_check))
                })
                .collect(),
        }
    }
}

/// Cells for women, men, sex not given and all, tied by women + men + not given = all.
/// The third (not given) is never printed; it follows from the others, so it is
/// protected like them.
fn by_sex(grid: &mut Grid, counts: ShownCounts) -> [Cell; 4] {
    let raw = |v: Option<usize>| v.unwrap_or_default();
    let (female, male, all) = (raw(counts.female), raw(counts.male), raw(counts.all));
    let unknown = all.saturating_sub(female).saturating_sub(male);
    let cells = [
        grid.cell(female),
        grid.cell(male),
        grid.cell(unknown),
        grid.cell(female + male + unknown),
    ];
    grid.sum(&cells[..3], cells[3]);
    cells
}

fn shown(grid: &Grid, cells: [Cell; 4]) -> ShownCounts {
    ShownCounts {
        female: grid.shown(cells[0]),
        male: grid.shown(cells[1]),
        all: grid.shown(cells[3]),
    }
}

/// The counts of one comparison or model, per sex group, in [`SexGroup::ALL`] order.
fn column(rule: &RuleAudit, pick: impl Fn(&GroupAudit) -> Option<usize>) -> ShownCounts {
    let of = |sex: SexGroup| rule.groups.iter().find(|g| g.sex == sex).and_then(&pick);
    ShownCounts {
        female: of(SexGroup::Female),
        male: of(SexGroup::Male),
        all: of(SexGroup::All),
    }
}

/// Ties a series (months) to its total, for each sex cell.
fn series(grid: &mut Grid, months: &[[Cell; 4]], total: [Cell; 4]) {
    for k in 0..4 {
        let parts: Vec<Cell> = months.iter().map(|m| m[k]).collect();
        grid.sum(&parts, total[k]);
    }
}

/// Suppresses every count of `report` below `min_cell`, and every count that would give
/// a suppressed one away (see [`super::suppress`]), in one grid so that a count shared
/// by two tables is hidden in both; then hides every share, difference, test and
/// estimate that rests on a hidden count.
fn protect(report: &mut AuditReport, raw: &Raw, min_cell: usize) {
    let mut grid = Grid::new();
    let units = by_sex(&mut grid, report.units);
    let without = grid.cell(raw.without_check);
    let rule_sets: Vec<Cell> = report
        .rule_sets
        .iter()
        .map(|r| grid.cell(r.checks.unwrap_or_default()))
        .collect();
    let checks_total = by_sex(&mut grid, report.checks_in_period);
    let checks_months: Vec<[Cell; 4]> = report
        .checks_per_month
        .iter()
        .map(|m| by_sex(&mut grid, m.count))
        .collect();
    series(&mut grid, &checks_months, checks_total);

    struct RuleCells {
        flagged: [Cell; 4],
        clear: [Cell; 4],
        failed: [Cell; 4],
        resolved: [Cell; 4],
        /// In the model, per group in [`SexGroup::ALL`] order: flagged, not flagged,
        /// observations, and flagged and not flagged left out for a missing control.
        model: Vec<(Cell, Cell, Cell, Cell, Cell)>,
        flagged_checks: [Cell; 4],
        months: Vec<[Cell; 4]>,
        errors: Cell,
    }
    let mut rule_cells = Vec::new();
    for rule in &report.rules {
        let flagged = by_sex(&mut grid, column(rule, |g| g.flagged_vs_not_flagged.n_a));
        let clear = by_sex(&mut grid, column(rule, |g| g.flagged_vs_not_flagged.n_b));
        let failed = by_sex(&mut grid, column(rule, |g| g.unknown_at_last_check));
        let resolved = by_sex(&mut grid, column(rule, |g| g.resolved_vs_still_flagged.n_a));
        for k in 0..4 {
            grid.sum(&[flagged[k], clear[k], failed[k]], units[k]);
        }
        // Not flagged = resolved + never flagged before GK.
        let raw_of = |grid: &Grid, c: Cell| grid.value(c);
        let never: Vec<Cell> = (0..4)
            .map(|k| {
                let n = raw_of(&grid, clear[k]).saturating_sub(raw_of(&grid, resolved[k]));
                grid.cell(n)
            })
            .collect();
        for k in 0..4 {
            grid.sum(&[resolved[k], never[k]], clear[k]);
        }
        grid.sum(&never[..3], never[3]);
        // The adjusted model: women's and men's samples make up the sample of all
        // (which needs sex given); each sample is the cases of its group with every
        // control given.
        let mut model = Vec::new();
        for (index, group) in rule.groups.iter().enumerate() {
            let k = match group.sex {
                SexGroup::Female => 0,
                SexGroup::Male => 1,
                SexGroup::All => 3,
            };
            let a = &group.adjusted;
            let n_flagged = grid.cell(a.n_flagged.unwrap_or_default());
            let n_clear = grid.cell(a.n_not_flagged.unwrap_or_default());
            let observations = grid.cell(a.observations.unwrap_or_default());
            grid.sum(&[n_flagged, n_clear], observations);
            let (out_flagged, out_clear) = raw
                .left_out_of_model
                .get(rule_cells.len())
                .and_then(|groups: &Vec<(usize, usize)>| groups.get(index))
                .copied()
                .unwrap_or_default();
            let out_flagged = grid.cell(out_flagged);
            let out_clear = grid.cell(out_clear);
            grid.sum(&[n_flagged, out_flagged], flagged[k]);
            grid.sum(&[n_clear, out_clear], clear[k]);
            model.push((n_flagged, n_clear, observations, out_flagged, out_clear));
        }
        if model.len() == 3 {
            grid.sum(&[model[0].0, model[1].0], model[2].0);
            grid.sum(&[model[0].1, model[1].1], model[2].1);
        }
        let flagged_checks = by_sex(&mut grid, rule.flagged_checks);
        let months: Vec<[Cell; 4]> = rule
            .flags_per_month
            .iter()
            .map(|m| by_sex(&mut grid, m.count))
            .collect();
        series(&mut grid, &months, flagged_checks);
        let errors = grid.cell(rule.rule_errors.unwrap_or_default());
        rule_cells.push(RuleCells {
            flagged,
            clear,
            failed,
            resolved,
            model,
            flagged_checks,
            months,
            errors,
        });
    }

    grid.suppress(min_cell);

    report.units = shown(&grid, units);
    report.cases_without_check_before_gk = grid.shown(without);
    for (rule_set, cell) in report.rule_sets.iter_mut().zip(rule_sets) {
        rule_set.checks = grid.shown(cell);
    }
    report.checks_in_period = shown(&grid, checks_total);
    for (month, cells) in report.checks_per_month.iter_mut().zip(checks_months) {
        month.count = shown(&grid, cells);
    }
    for (rule, cells) in report.rules.iter_mut().zip(rule_cells) {
        for (index, group) in rule.groups.iter_mut().enumerate() {
            let k = match group.sex {
                SexGroup::Female => 0,
                SexGroup::Male => 1,
                SexGroup::All => 3,
            };
            group.unknown_at_last_check = grid.shown(cells.failed[k]);
            let flagged = grid.shown(cells.flagged[k]);
            let clear = grid.shown(cells.clear[k]);
            let resolved = grid.shown(cells.resolved[k]);
            hide_comparison(&mut group.flagged_vs_not_flagged, flagged, clear);
            hide_comparison(&mut group.resolved_vs_still_flagged, resolved, flagged);
            if let Some(&(n_flagged, n_clear, observations, out_flagged, out_clear)) =
                cells.model.get(index)
            {
                let a = &mut group.adjusted;
                a.n_flagged = grid.shown(n_flagged);
                a.n_not_flagged = grid.shown(n_clear);
                a.observations = grid.shown(observations);
                if (a.n_flagged.is_none() || a.n_not_flagged.is_none()) && a.coefficient.is_some() {
                    a.coefficient = None;
                    a.robust_se = None;
                    a.p_value = None;
                    a.ci_low = None;
                    a.ci_high = None;
                    a.r_squared = None;
                    a.notes.push(
                        "Justerad skattning visas inte: antalen i modellen döljs, eftersom de annars skulle avslöja ett dolt antal."
                            .to_owned(),
                    );
                }
                let left_out = grid.value(out_flagged) + grid.value(out_clear);
                if left_out > 0 {
                    let note = match (grid.shown(out_flagged), grid.shown(out_clear)) {
                        (Some(_), Some(_)) => format!(
                            "{left_out} ärenden saknar uppgift om någon kontrollvariabel och ingår inte i skattningen."
                        ),
                        _ => "Några ärenden saknar uppgift om någon kontrollvariabel och ingår inte i skattningen (antalet visas inte, eftersom det är litet eller skulle avslöja ett dolt antal)."
                            .to_owned(),
                    };
                    a.notes.insert(0, note);
                }
            }
        }
        rule.flagged_checks = shown(&grid, cells.flagged_checks);
        for (month, m) in rule.flags_per_month.iter_mut().zip(cells.months) {
            month.count = shown(&grid, m);
        }
        rule.rule_errors = grid.shown(cells.errors);
    }
}

fn report_notes(
    input: &AuditInput,
    report: &AuditReport,
    raw: &Raw,
    min_cell: usize,
) -> Vec<String> {
    let mut notes = vec![format!(
        "Antal under {min_cell}, och andelar och skattningar som vilar på färre än {min_cell} ärenden, visas inte; inte heller antal som skulle avslöja ett dolt antal."
    )];
    if raw.without_check > 0 {
        notes.push(match report.cases_without_check_before_gk {
            Some(n) => format!("{n} ärenden med utfall i perioden saknar kontroll före GK och ingår inte."),
            None => "Några ärenden med utfall i perioden saknar kontroll före GK och ingår inte (antalet är för litet för att visas).".to_owned(),
        });
    }
    if raw.unknown_sex > 0 {
        // The number follows from the units shown, so it is shown exactly when they
        // all are.
        let units = report.units;
        notes.push(match (units.female, units.male, units.all) {
            (Some(_), Some(_), Some(_)) => format!(
                "{} ärenden saknar uppgift om kön och ingår bara i Totalt.",
                raw.unknown_sex
            ),
            _ => "Några ärenden saknar uppgift om kön och ingår bara i Totalt.".to_owned(),
        });
    }
    if input.unreadable_checks > 0 {
        notes.push(format!(
            "{} sparade kontroller kunde inte läsas och ingår inte.",
            input.unreadable_checks
        ));
    }
    notes
}

fn group_audit(units: &[Unit<'_>], index: usize, group: SexGroup, min_cell: usize) -> GroupAudit {
    let members: Vec<&Unit<'_>> = units
        .iter()
        .filter(|u| group.includes(u.covariates.sex))
        .collect();
    let status = |u: &Unit<'_>| u.rules[index];
    let flagged: Vec<&Unit<'_>> = members
        .iter()
        .copied()
        .filter(|u| status(u).last == Status::Flagged)
        .collect();
    let clear: Vec<&Unit<'_>> = members
        .iter()
        .copied()
        .filter(|u| status(u).last == Status::Clear)
        .collect();
    let resolved: Vec<&Unit<'_>> = clear
        .iter()
        .copied()
        .filter(|u| status(u).resolved())
        .collect();
    GroupAudit {
        sex: group,
        unknown_at_last_check: Some(members.len() - flagged.len() - clear.len()),
        flagged_vs_not_flagged: compare(&flagged, &clear, min_cell),
        resolved_vs_still_flagged: compare(&resolved, &flagged, min_cell),
        adjusted: adjusted(&flagged, &clear, group, min_cell),
    }
}

fn percent(value: f64) -> f64 {
    value * 100.0
}

/// Compares groups `a` and `b` on every outcome, suppressing small cells.
fn compare(a: &[&Unit<'_>], b: &[&Unit<'_>], min_cell: usize) -> Comparison {
    let (n_a, n_b) = (a.len(), b.len());
    let shown = |n: usize| n >= min_cell;
    let outcomes = Measure::ALL
        .iter()
        .map(|&measure| {
            let x_a = a.iter().filter(|u| measure.of(&u.outcome)).count();
            let x_b = b.iter().filter(|u| measure.of(&u.outcome)).count();
            let share = |x: usize, n: usize| shown(n).then(|| percent(x as f64 / n as f64));
            let test = (shown(n_a) && shown(n_b))
                .then(|| two_proportions(x_a, n_a, x_b, n_b))
                .flatten();
            OutcomeComparison {
                outcome: measure,
                share_a_pct: share(x_a, n_a),
                share_b_pct: share(x_b, n_b),
                diff_pp: test.map(|t| percent(t.diff)),
                ci_low_pp: test.map(|t| percent(t.ci_low)),
                ci_high_pp: test.map(|t| percent(t.ci_high)),
                p_value: test.and_then(|t| t.p_value),
            }
        })
        .collect();
    Comparison {
        n_a: Some(n_a),
        n_b: Some(n_b),
        outcomes,
    }
}

/// Sets the comparison's counts as published, hiding what rests on a hidden one.
fn hide_comparison(comparison: &mut Comparison, n_a: Option<usize>, n_b: Option<usize>) {
    comparison.n_a = n_a;
    comparison.n_b = n_b;
    for outcome in &mut comparison.outcomes {
        if n_a.is_none() {
            outcome.share_a_pct = None;
        }
        if n_b.is_none() {
            outcome.share_b_pct = None;
        }
        if n_a.is_none() || n_b.is_none() {
            outcome.diff_pp = None;
            outcome.ci_low_pp = None;
            outcome.ci_high_pp = None;
            outcome.p_value = None;
        }
    }
}

/// One control of the adjusted model: one column, or one dummy per category but the
/// reference (the first category present, in the order listed).
struct Control {
    key: &'static str,
    label: &'static str,
    columns: Vec<Vec<f64>>,
}

/// Categories in a fixed order, so the reference category does not depend on the data
/// (the estimate of the flag does not depend on it either).
const DIAGNOSES: [DiagnosisGroup; 4] = [
    DiagnosisGroup::Psychiatric,
    DiagnosisGroup::Musculoskeletal,
    DiagnosisGroup::Injury,
    DiagnosisGroup::Other,
];

/// SGI enters in units of 100,000 SEK a year.
const SGI_UNIT: f64 = 100_000.0;

/// Whether `c` gives every control the model needs (SGI is handled apart).
fn complete(c: &Covariates, with_sex: bool) -> bool {
    (!with_sex || c.sex.is_some())
        && c.age.is_some()
        && c.diagnosis.is_some()
        && c.education.is_some()
        && c.marital_status.is_some()
        && c.children_0_17.is_some()
        && c.born_abroad.is_some()
        && c.returner_ever.is_some()
}

fn categorical<T: PartialEq + Copy>(
    key: &'static str,
    label: &'static str,
    order: &[T],
    values: &[Option<T>],
) -> Control {
    let present: Vec<T> = order
        .iter()
        .copied()
        .filter(|level| values.contains(&Some(*level)))
        .collect();
    let columns = present
        .iter()
        .skip(1)
        .map(|level| {
            values
                .iter()
                .map(|v| if *v == Some(*level) { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    Control {
        key,
        label,
        columns,
    }
}

fn numeric(key: &'static str, label: &'static str, values: Vec<f64>) -> Control {
    let varies = values.iter().any(|v| Some(v) != values.first());
    Control {
        key,
        label,
        columns: if varies { vec![values] } else { vec![] },
    }
}

fn binary(key: &'static str, label: &'static str, values: impl Iterator<Item = bool>) -> Control {
    numeric(
        key,
        label,
        values.map(|b| if b { 1.0 } else { 0.0 }).collect(),
    )
}

fn controls(sample: &[&Unit<'_>], with_sex: bool, with_sgi: bool) -> Vec<Control> {
    let covariates: Vec<&Covariates> = sample.iter().map(|u| u.covariates).collect();
    let mut controls = Vec::new();
    if with_sex {
        controls.push(binary(
            "sex",
            "kön",
            covariates.iter().map(|c| c.sex == Some(Sex::Female)),
        ));
    }
    controls.push(numeric(
        "age",
        "ålder",
        covariates
            .iter()
            .map(|c| f64::from(c.age.unwrap_or_default()))
            .collect(),
    ));
    let diagnoses: Vec<_> = covariates.iter().map(|c| c.diagnosis).collect();
    controls.push(categorical(
        "diagnosis_group",
        "diagnosgrupp",
        &DIAGNOSES,
        &diagnoses,
    ));
    let education: Vec<_> = covariates.iter().map(|c| c.education).collect();
    controls.push(categorical(
        "education",
        "utbildning",
        Education::ALL,
        &education,
    ));
    let marital: Vec<_> = covariates.iter().map(|c| c.marital_status).collect();
    controls.push(categorical(
        "marital_status",
        "civilstånd",
        MaritalStatus::ALL,
        &marital,
    ));
    controls.push(binary(
        "children_0_17",
        "barn 0–17 år",
        covariates.iter().map(|c| c.children_0_17 == Some(true)),
    ));
    controls.push(binary(
        "born_abroad",
        "utrikesfödd",
        covariates.iter().map(|c| c.born_abroad == Some(true)),
    ));
    controls.push(binary(
        "returner_ever",
        "återvändare",
        covariates.iter().map(|c| c.returner_ever == Some(true)),
    ));
    if with_sgi {
        controls.push(numeric(
            "sgi",
            "SGI",
            covariates
                .iter()
                .map(|c| f64::from(c.sgi.unwrap_or_default()) / SGI_UNIT)
                .collect(),
        ));
    }
    controls
}

/// Leaving the insurance on the flag (1 for `flagged`, 0 for `clear`) and controls.
fn adjusted(
    flagged: &[&Unit<'_>],
    clear: &[&Unit<'_>],
    group: SexGroup,
    min_cell: usize,
) -> Adjusted {
    let with_sex = group == SexGroup::All;
    let mut notes = Vec::new();
    let known = flagged.len() + clear.len();
    let sample: Vec<(&Unit<'_>, bool)> = flagged
        .iter()
        .map(|u| (*u, true))
        .chain(clear.iter().map(|u| (*u, false)))
        .filter(|(u, _)| complete(u.covariates, with_sex))
        .collect();
    // How many were left out for a missing control is told once the counts are
    // protected (`protect`).
    let n_flagged = sample.iter().filter(|(_, f)| *f).count();
    let n_not_flagged = sample.len() - n_flagged;
    let mut result = Adjusted {
        observations: Some(sample.len()),
        n_flagged: Some(n_flagged),
        n_not_flagged: Some(n_not_flagged),
        ..Adjusted::default()
    };
    if n_flagged < min_cell || n_not_flagged < min_cell {
        if known > 0 {
            notes.push(format!(
                "Justerad skattning visas inte: färre än {min_cell} flaggade eller ej flaggade ärenden i modellen."
            ));
        }
        result.notes = notes;
        return result;
    }

    let with_sgi = sample.iter().all(|(u, _)| u.covariates.sgi.is_some());
    if !with_sgi {
        let missing = sample
            .iter()
            .filter(|(u, _)| u.covariates.sgi.is_none())
            .count();
        // The two parts are told only when neither is small (their sum, the
        // observations, may be hidden; the parts alone do not give it away).
        notes.push(if missing >= min_cell && sample.len() - missing >= min_cell {
            format!("SGI ingår inte bland kontrollerna: uppgiften saknas för {missing} ärenden i modellen.")
        } else {
            "SGI ingår inte bland kontrollerna: uppgiften saknas för några av ärendena i modellen.".to_owned()
        });
    }
    let units: Vec<&Unit<'_>> = sample.iter().map(|(u, _)| *u).collect();
    let mut columns: Vec<Vec<f64>> = vec![vec![1.0; sample.len()]];
    let mut owners: Vec<Option<usize>> = vec![None];
    let all_controls = controls(&units, with_sex, with_sgi);
    for (index, control) in all_controls.iter().enumerate() {
        if control.columns.is_empty() {
            notes.push(format!(
                "Kontrollen {} varierar inte bland ärendena i modellen och har tagits bort.",
                control.label
            ));
        }
        for column in &control.columns {
            columns.push(column.clone());
            owners.push(Some(index));
        }
    }
    // The flag goes last, so that when it is a combination of the controls it is the
    // flag that is found dependent, and no estimate is given.
    columns.push(
        sample
            .iter()
            .map(|(_, f)| if *f { 1.0 } else { 0.0 })
            .collect(),
    );
    owners.push(None);
    let flag_column = columns.len() - 1;
    let x = DMatrix::from_fn(sample.len(), columns.len(), |i, j| columns[j][i]);
    let kept = independent_columns(&x);
    if kept.last() != Some(&flag_column) {
        notes.push(
            "Flaggan går inte att skilja från kontrollvariablerna (kollinjäritet); ingen justerad skattning."
                .to_owned(),
        );
        result.notes = notes;
        return result;
    }
    let mut used = vec![false; all_controls.len()];
    for (index, control) in all_controls.iter().enumerate() {
        let total = owners.iter().filter(|o| **o == Some(index)).count();
        let left = kept.iter().filter(|&&j| owners[j] == Some(index)).count();
        used[index] = left > 0;
        if left < total {
            notes.push(format!(
                "Kontrollen {}: {} av {} kolumner togs bort eftersom de är linjärt beroende av andra kontroller.",
                control.label,
                total - left,
                total
            ));
        }
    }
    result.controls = all_controls
        .iter()
        .zip(&used)
        .filter(|(_, used)| **used)
        .map(|(c, _)| c.key)
        .collect();

    let x = x.select_columns(&kept);
    let y = DVector::from_iterator(
        sample.len(),
        sample
            .iter()
            .map(|(u, _)| if u.outcome.left_insurance { 1.0 } else { 0.0 }),
    );
    match ols_hc1(&x, &y) {
        Ok(fit) => {
            let last = fit.coefficients.len() - 1;
            let coefficient = fit.coefficients[last];
            let se = fit.robust_se[last];
            result.coefficient = Some(coefficient);
            result.robust_se = Some(se);
            result.r_squared = fit.r_squared;
            match t_inference(coefficient, se, fit.df_resid) {
                Some(inference) => {
                    result.p_value = Some(inference.p_value);
                    result.ci_low = Some(inference.ci_low);
                    result.ci_high = Some(inference.ci_high);
                }
                None => notes.push(
                    "Standardfelet är noll (utfallet varierar inte); p-värde och konfidensintervall kan inte beräknas."
                        .to_owned(),
                ),
            }
        }
        Err(err) => notes.push(format!("Modellen kunde inte skattas: {err}.")),
    }
    result.notes = notes;
    result
}

/// Alert burden: checks and flags per month of `checked_on` in the period, by sex.
struct Burden {
    checks: SexCounts,
    checks_by_month: BTreeMap<String, SexCounts>,
    /// Per rule, then "any flag".
    flagged: Vec<SexCounts>,
    flagged_by_month: Vec<BTreeMap<String, SexCounts>>,
    errors: Vec<usize>,
}

impl Burden {
    fn count(input: &AuditInput, period: &Period) -> Self {
        let rows = input.rules.len() + 1;
        let mut burden = Self {
            checks: SexCounts::default(),
            checks_by_month: BTreeMap::new(),
            flagged: vec![SexCounts::default(); rows],
            flagged_by_month: vec![BTreeMap::new(); rows],
            errors: vec![0; rows],
        };
        let checks = input.cases.iter().flat_map(|c| &c.checks);
        for check in checks.filter(|c| period.contains(c.checked_on)) {
            let sex = check.covariates.sex;
            let month = month_of(check.checked_on);
            burden.checks.add(sex);
            burden
                .checks_by_month
                .entry(month.clone())
                .or_default()
                .add(sex);
            // "Any flag" counts a check with a rule error anywhere, flagged or not.
            let any_flagged = any_status(&check.statuses) == Status::Flagged;
            let any_failed = check.statuses.contains(&Status::Failed);
            let statuses = check
                .statuses
                .iter()
                .map(|s| (*s == Status::Flagged, *s == Status::Failed))
                .chain(std::iter::once((any_flagged, any_failed)));
            for (index, (flagged, failed)) in statuses.enumerate() {
                if flagged {
                    burden.flagged[index].add(sex);
                    burden.flagged_by_month[index]
                        .entry(month.clone())
                        .or_default()
                        .add(sex);
                }
                if failed {
                    burden.errors[index] += 1;
                }
            }
        }
        burden
    }

    /// Every month from the first to the last with a check, gaps included, when they
    /// span at most [`MAX_FILLED_MONTHS`]; otherwise only the months with checks. Either
    /// way the list is no longer than the checks (plus [`MAX_FILLED_MONTHS`]).
    fn months(&self) -> Vec<String> {
        let (Some(first), Some(last)) = (
            self.checks_by_month.keys().next(),
            self.checks_by_month.keys().next_back(),
        ) else {
            return Vec::new();
        };
        let parse = |m: &str| -> Option<(i32, u32)> {
            let (y, m) = m.split_once('-')?;
            Some((y.parse().ok()?, m.parse().ok()?))
        };
        let (Some(mut at), Some(end)) = (parse(first), parse(last)) else {
            return self.checks_by_month.keys().cloned().collect();
        };
        let span = i64::from(end.0 - at.0) * 12 + i64::from(end.1) - i64::from(at.1) + 1;
        if span > MAX_FILLED_MONTHS as i64 {
            return self.checks_by_month.keys().cloned().collect();
        }
        let mut months = Vec::new();
        while at <= end {
            months.push(format!("{:04}-{:02}", at.0, at.1));
            at = if at.1 == 12 {
                (at.0 + 1, 1)
            } else {
                (at.0, at.1 + 1)
            };
        }
        months
    }
}

fn month_of(date: crate::profile::Date) -> String {
    let text = date.to_string();
    text.get(..7).unwrap_or(&text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{CaseHistory, CheckRecord, OutcomeRecord, RuleInfo};
    use crate::profile::{Date, Stage};

    fn date(text: &str) -> Date {
        Date::parse(text).expect("date")
    }

    /// A case checked once before GK on `on`, with `sex`, flagged by the one rule or not.
    fn case(on: &str, ended: &str, sex: Option<Sex>, flagged: bool) -> CaseHistory {
        CaseHistory {
            outcome: Some(OutcomeRecord {
                ended_on: date(ended),
                left_insurance: flagged,
                work_or_studies: !flagged,
                worsened_health: false,
            }),
            checks: vec![CheckRecord {
                stage: Stage::BeforeGk,
                checked_on: date(on),
                first_meeting_on: None,
                covariates: Covariates {
                    sex,
                    ..Covariates::default()
                },
                statuses: vec![if flagged {
                    Status::Flagged
                } else {
                    Status::Clear
                }],
            }],
        }
    }

    fn input(cases: Vec<CaseHistory>) -> AuditInput {
        AuditInput {
            rules: vec![RuleInfo {
                id: "regel".into(),
                title: "Regel".into(),
            }],
            rule_sets: vec![],
            cases,
            unreadable_checks: 0,
        }
    }

    fn options() -> Options {
        Options::default()
    }

    #[test]
    fn a_span_of_nine_thousand_years_gives_a_small_report() {
        // Checks at both ends of what a date can hold, enough cases to show tables.
        let cases = (0..12)
            .map(|i| {
                let on = if i % 2 == 0 {
                    "0000-01-01"
                } else {
                    "9999-12-31"
                };
                case(on, "9999-12-31", Some(Sex::Female), i % 3 == 0)
            })
            .collect();
        let report = run(&input(cases), &options());
        assert_eq!(report.units.all, Some(12));
        assert_eq!(
            report.checks_per_month.len(),
            2,
            "only the months with checks"
        );
        for rule in &report.rules {
            assert_eq!(rule.flags_per_month.len(), 2);
        }
        let json = report.to_json().expect("json");
        let csv = report.to_csv().expect("csv");
        let html = crate::audit::html::render_audit(&report).expect("html");
        assert!(json.len() < 100_000, "JSON of {} bytes", json.len());
        assert!(csv.len() < 100_000, "CSV of {} bytes", csv.len());
        assert!(html.len() < 200_000, "HTML of {} bytes", html.len());
    }

    #[test]
    fn a_short_span_lists_every_month_gaps_included() {
        let cases = (0..6)
            .map(|i| {
                let on = if i % 2 == 0 {
                    "2024-01-10"
                } else {
                    "2024-04-10"
                };
                case(on, "2024-06-30", Some(Sex::Male), i % 2 == 0)
            })
            .collect();
        let report = run(&input(cases), &options());
        let months: Vec<&str> = report
            .checks_per_month
            .iter()
            .map(|m| m.month.as_str())
            .collect();
        assert_eq!(months, ["2024-01", "2024-02", "2024-03", "2024-04"]);
    }

    #[test]
    fn too_few_cases_give_a_note_and_nothing_else() {
        let cases = (0..4)
            .map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Female), i == 0))
            .collect();
        let report = run(&input(cases), &options());
        assert_eq!(report.notes, [too_few_cases_note(DEFAULT_MIN)]);
        assert!(report.rules.is_empty() && report.checks_per_month.is_empty());
        assert_eq!(report.units, ShownCounts::default());
        assert_eq!(report.checks_in_period, ShownCounts::default());
        assert_eq!(report.cases_without_check_before_gk, None);
        let html = crate::audit::html::render_audit(&report).expect("html");
        assert!(!html.contains("<table") && !html.contains("<svg"));
        assert!(html.contains("För få fall i perioden"));
    }

    const DEFAULT_MIN: usize = crate::audit::DEFAULT_MIN_CELL;

    #[test]
    fn a_small_number_of_rule_errors_is_told_without_the_number() {
        let mut cases: Vec<CaseHistory> = (0..8)
            .map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Male), i % 2 == 0))
            .collect();
        cases[1].checks[0].statuses = vec![Status::Failed];
        let report = run(&input(cases), &options());
        let rule = &report.rules[0];
        let all = rule
            .groups
            .iter()
            .find(|g| g.sex == SexGroup::All)
            .expect("all");
        assert_eq!(all.unknown_at_last_check, None);
        assert!(
            rule.notes
                .iter()
                .any(|n| n.starts_with("Några ärenden hade regelfel")),
            "{:?}",
            rule.notes
        );
        assert_eq!(
            rule.rule_errors, None,
            "1 rule error is below the threshold"
        );
    }

    /// Women + men (+ sex not given) = all, for every published count of sex: never
    /// exactly one hidden when nobody lacks sex.
    fn assert_not_one_hidden(what: &str, counts: ShownCounts) {
        let hidden = [counts.female, counts.male, counts.all]
            .iter()
            .filter(|c| c.is_none())
            .count();
        assert_ne!(hidden, 1, "{what}: {counts:?}");
    }

    #[test]
    fn a_small_sex_is_hidden_with_a_complement_everywhere_and_its_shares_too() {
        // 3 women (one flagged), 20 men (8 flagged).
        let mut cases: Vec<CaseHistory> = (0..3)
            .map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Female), i == 0))
            .collect();
        cases.extend((0..20).map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Male), i % 5 < 2)));
        let report = run(&input(cases), &options());
        assert_eq!(report.units.female, None);
        assert_not_one_hidden("units", report.units);
        assert_not_one_hidden("checks", report.checks_in_period);
        for rule in &report.rules {
            assert_not_one_hidden("flagged checks", rule.flagged_checks);
            for month in &rule.flags_per_month {
                assert_not_one_hidden("flags per month", month.count);
            }
            let column = |pick: fn(&GroupAudit) -> Option<usize>| column(rule, pick);
            assert_not_one_hidden("flagged", column(|g| g.flagged_vs_not_flagged.n_a));
            assert_not_one_hidden("not flagged", column(|g| g.flagged_vs_not_flagged.n_b));
            for group in &rule.groups {
                let c = &group.flagged_vs_not_flagged;
                // flagged + not flagged (+ errors, none here) = the group's units.
                let row = [c.n_a, c.n_b, report.units.get(group.sex)];
                assert_ne!(
                    row.iter().filter(|v| v.is_none()).count(),
                    1,
                    "{:?}",
                    group.sex
                );
                for outcome in &c.outcomes {
                    if c.n_a.is_none() {
                        assert_eq!(outcome.share_a_pct, None);
                        assert_eq!(outcome.diff_pp, None);
                    }
                    if c.n_b.is_none() {
                        assert_eq!(outcome.share_b_pct, None);
                    }
                }
                for n in [c.n_a, c.n_b, group.adjusted.observations] {
                    assert!(n.is_none_or(|n| n == 0 || n >= DEFAULT_MIN), "{n:?}");
                }
            }
        }
        // Hiding the 3 women hides the men too (the smaller complement); the total,
        // which no longer gives either away, stays with its shares.
        let all = report.rules[0]
            .groups
            .iter()
            .find(|g| g.sex == SexGroup::All)
            .expect("all");
        assert_eq!(all.flagged_vs_not_flagged.n_a, Some(9));
        assert_eq!(
            all.flagged_vs_not_flagged.outcomes[0].share_a_pct,
            Some(100.0)
        );
        assert_eq!(report.units.all, Some(23));
    }
}
