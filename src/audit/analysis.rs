//! Per rule and sex group: outcome shares of flagged and unflagged cases and of resolved
//! and still-flagged ones, their differences and tests; the adjusted estimate from a
//! linear probability model with the controls of SFR 2018:11 tabell 20; and the alert
//! burden (flags per month). Small cells are suppressed here, once, for every output.

use std::collections::{BTreeMap, BTreeSet};

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::report::{
    Adjusted, AuditReport, Comparison, GroupAudit, Measure, MonthCounts, OutcomeComparison,
    PeriodJson, RuleAudit, RuleSetJson, SexCounts, SexGroup, ShownCounts,
};
use super::stats::{Design, t_inference, two_proportions};
use super::suppress::{Cell, Grid};
use super::units::{self, Unit, any_status};
use super::{ANY_FLAG_ID, AuditInput, Covariates, Options, Period, Status};
use crate::present::count_noun;
use crate::profile::{DiagnosisGroup, Education, MaritalStatus, Sex};

/// The title of the "any flag" row.
pub const ANY_FLAG_TITLE: &str = "Någon flagga";

/// Months of alert burden are listed gap-free up to this span; a longer span lists only
/// the months with checks, so the report grows with the data, not with the dates.
pub const MAX_FILLED_MONTHS: usize = 120;

/// What an audit computes of each rule's adjusted model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Model {
    /// The estimate, its errors and its notes: the published audit.
    Estimate,
    /// Only the counts of the model's sample, which the protection of the comparisons
    /// needs; no fit. For an audit read only for its flagged-versus-not comparisons,
    /// which come out as they would with [`Model::Estimate`].
    CountsOnly,
}

pub(super) fn run(input: &AuditInput, options: &Options, model: Model) -> AuditReport {
    let min_cell = options.min_cell.max(1);
    let built = units::build(input, &options.period);

    let mut unit_counts = SexCounts::default();
    for unit in &built.units {
        unit_counts.add(unit.covariates.sex);
    }
    if unit_counts.all < min_cell {
        return too_few_cases(input, options, min_cell, unit_counts.all == 0);
    }
    let rule_rows: Vec<(&str, &str)> = rule_rows(input).collect();
    // Each rule's comparisons and model in each sex group are independent of the
    // others and of the alert burden: all of them share the cores, the largest (every
    // case of a rule) beside the smaller ones.
    let (burden, mut by_group) = rayon::join(
        || Burden::count(input, &options.period, false),
        || {
            (0..rule_rows.len())
                .flat_map(|index| SexGroup::ALL.iter().map(move |&group| (index, group)))
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|(index, group)| group_audit(&built.units, index, group, min_cell, model))
                .collect::<Vec<(GroupAudit, GroupOutcomes)>>()
                .into_iter()
        },
    );
    let months = burden.months();
    // The real checks' part of the counts that test checks join: what is hidden is
    // decided on it ([`Grid::cell_with_real`]).
    let real_burden = input
        .cases
        .iter()
        .any(|c| c.test)
        .then(|| Burden::count(input, &options.period, true));
    let real = RealCounts {
        burden: real_burden.as_ref().unwrap_or(&burden),
        rule_sets: input
            .rule_sets
            .iter()
            .map(|r| r.checks.saturating_sub(r.test_checks))
            .collect(),
        months: &months,
    };
    // Per rule: whether some unit's last check was made by a rule set without it (the
    // unknown cases are then not all rule errors).
    let not_in_set_at_last: Vec<bool> = (0..rule_rows.len())
        .map(|index| {
            built
                .units
                .iter()
                .any(|u| u.rules[index].last == Status::NotInSet)
        })
        .collect();
    let rules = rule_rows
        .into_iter()
        .enumerate()
        .map(|(index, (id, title))| {
            let (groups, outcomes): (Vec<GroupAudit>, Vec<GroupOutcomes>) =
                by_group.by_ref().take(SexGroup::ALL.len()).unzip();
            let mut notes = Vec::new();
            let ever = built.units.iter().filter(|u| u.rules[index].ever).count();
            if burden.with_rule[index].all == 0 {
                notes.push(
                    "Regeln fanns inte i regeluppsättningen vid någon av periodens kontroller: \
                     den har inte prövats på ärendena i perioden, och inget om den kan bedömas."
                        .to_owned(),
                );
            } else if ever == 0 {
                notes.push(
                    "Regeln flaggade inte vid någon kontroll före GK bland ärendena i perioden; det finns inget att jämföra."
                        .to_owned(),
                );
            }
            // Some check in the period was made by a rule set without the rule.
            if (1..burden.checks.all).contains(&burden.with_rule[index].all) {
                notes.push(
                    "Regeln fanns inte i regeluppsättningen vid en del av periodens kontroller. \
                     Flaggade kontroller, flaggor per månad och andelen flaggade kontroller \
                     räknas bara på de kontroller där den fanns."
                        .to_owned(),
                );
            }
            let rule = RuleAudit {
                rule_id: id.to_owned(),
                title: title.to_owned(),
                groups,
                flagged_checks: ShownCounts::of(burden.flagged[index]),
                checks_with_rule: Some(burden.with_rule[index].all),
                months_without_rule: burden.months_without_rule[index]
                    .iter()
                    .cloned()
                    .collect(),
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
                responses: Default::default(),
            };
            (rule, outcomes)
        })
        .collect::<Vec<(RuleAudit, Vec<GroupOutcomes>)>>();
    let (rules, rule_outcomes): (Vec<RuleAudit>, Vec<Vec<GroupOutcomes>>) =
        rules.into_iter().unzip();
    // Per sex group, per outcome: the units with it (the same for every rule).
    let unit_outcomes: Vec<[usize; 3]> = SexGroup::ALL
        .iter()
        .map(|&group| {
            Measure::ALL.map(|measure| {
                built
                    .units
                    .iter()
                    .filter(|u| group.includes(u.covariates.sex) && measure.of(&u.outcome))
                    .count()
            })
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
        excluded_test_checks: 0,
        include_test: options.period.include_test,
        summary: Vec::new(),
        rules,
        comparison: None,
        shadow: None,
    };
    let mut raw = Raw::of(&report);
    raw.outcomes = rule_outcomes;
    raw.unit_outcomes = unit_outcomes;
    protect(&mut report, &raw, &real, min_cell);
    for (index, (rule, &failed)) in report.rules.iter_mut().zip(&raw.failed).enumerate() {
        // A rule no check of the period had is said so once, above.
        if failed == 0 || rule.checks_with_rule == Some(0) {
            continue;
        }
        let shown = rule
            .groups
            .iter()
            .find(|g| g.sex == SexGroup::All)
            .and_then(|g| g.unknown_at_last_check);
        let how_many = shown.map_or_else(
            || "Några ärenden".to_owned(),
            |n| count_noun(n, "ärende", "ärenden"),
        );
        let they = if shown == Some(1) { "det" } else { "de" };
        let why = if not_in_set_at_last[index] {
            "har inget känt resultat för regeln vid den senaste kontrollen före GK (regeln \
             fanns inte i regeluppsättningen då, eller fick regelfel)"
        } else {
            "hade regelfel vid den senaste kontrollen före GK"
        };
        rule.notes.push(format!(
            "{how_many} {why}; om regeln flaggade är okänt, så {they} ingår inte i regelns jämförelser."
        ));
    }
    report.notes = report_notes(input, &report, &raw, min_cell);
    report
}

/// The id and title of each rule the report has a row for, in its order: `input`'s
/// rules, then "any flag".
pub(super) fn rule_rows(input: &AuditInput) -> impl Iterator<Item = (&str, &str)> {
    input
        .rules
        .iter()
        .map(|r| (r.id.as_str(), r.title.as_str()))
        .chain(std::iter::once((ANY_FLAG_ID, ANY_FLAG_TITLE)))
}

/// The report of a period with fewer cases than `min_cell`: a note, and no table, chart
/// or count at all; with `none`, the cases' count, 0 (a zero tells nothing of anyone).
fn too_few_cases(
    input: &AuditInput,
    options: &Options,
    min_cell: usize,
    none: bool,
) -> AuditReport {
    let zero = ShownCounts {
        female: Some(0),
        male: Some(0),
        all: Some(0),
    };
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
        units: if none { zero } else { ShownCounts::default() },
        cases_without_check_before_gk: None,
        checks_in_period: ShownCounts::default(),
        checks_per_month: Vec::new(),
        notes: std::iter::once(if none {
            NO_CASES_NOTE.to_owned()
        } else {
            too_few_cases_note(min_cell)
        })
        .chain(unreadable_note(input))
        .collect(),
        excluded_test_checks: 0,
        include_test: options.period.include_test,
        summary: Vec::new(),
        rules: Vec::new(),
        comparison: None,
        shadow: None,
    }
}

/// What the period selects, told wherever cases and checks are counted side by side.
pub const PERIOD_SELECTS_NOTE: &str = "Perioden väljer två saker. Ärendena som jämförs är de vars utfall (datum för avslut) ligger i perioden och som har minst en kontroll före GK; deras kontroller kan vara gjorda före perioden. Kontrollerna och flaggorna per månad räknas i stället efter kontrolldatum: alla kontroller gjorda i perioden, också för ärenden som ännu inte har något utfall. Därför skiljer sig antalet kontroller från antalet ärenden.";

/// The one note of a period without a case to compare.
pub const NO_CASES_NOTE: &str = "Inga ärenden att jämföra: inget ärende med utfall (datum för avslut) i perioden har en kontroll före GK. Välj en period där ärendena har fått sina utfall.";

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
    /// Per rule, per sex group: how many of each comparison group had each outcome.
    outcomes: Vec<Vec<GroupOutcomes>>,
    /// Per sex group, per outcome: how many units had it.
    unit_outcomes: Vec<[usize; 3]>,
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
            outcomes: Vec::new(),
            unit_outcomes: Vec::new(),
        }
    }
}

/// How many cases of each comparison group of one rule and sex group had each outcome
/// (in [`Measure::ALL`] order): the numerators of the shares.
#[derive(Clone, Copy, Debug, Default)]
struct GroupOutcomes {
    flagged: [usize; 3],
    clear: [usize; 3],
    resolved: [usize; 3],
}

/// Whether the share `x` of `n` may be shown: at least `min_cell` cases with the
/// outcome and at least `min_cell` without. Fewer would point out a few people's
/// outcome; none (0 %) or all (100 %) would tell every member's.
pub fn share_is_safe(x: usize, n: usize, min_cell: usize) -> bool {
    x >= min_cell && n.saturating_sub(x) >= min_cell
}

/// Cells for women, men, sex not given and all, tied by women + men + not given = all.
/// The third (not given) is never printed; it follows from the others, so it is
/// protected like them.
fn by_sex(grid: &mut Grid, counts: ShownCounts) -> [Cell; 4] {
    by_sex_with_real(grid, counts.or_zero(), counts.or_zero())
}

/// [`by_sex`] for counts of checks, of which `real` are real checks (the rest test
/// checks, which a report that includes them counts too).
fn by_sex_with_real(grid: &mut Grid, counts: SexCounts, real: SexCounts) -> [Cell; 4] {
    let unknown = |c: SexCounts| c.all.saturating_sub(c.female).saturating_sub(c.male);
    let cells = [
        grid.cell_with_real(counts.female, real.female),
        grid.cell_with_real(counts.male, real.male),
        grid.cell_with_real(unknown(counts), unknown(real)),
        grid.cell_with_real(
            counts.female + counts.male + unknown(counts),
            real.female + real.male + unknown(real),
        ),
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

/// Cells for `total` less `part`, per sex cell, tied to both: a count never printed that
/// follows from two that are.
fn remainder(grid: &mut Grid, total: [Cell; 4], part: [Cell; 4]) -> [Cell; 4] {
    let cells = [0, 1, 2, 3].map(|k| rest(grid, total[k], part[k]));
    for k in 0..4 {
        grid.sum(&[part[k], cells[k]], total[k]);
    }
    grid.sum(&cells[..3], cells[3]);
    cells
}

/// A cell for `total` less `part`, its real part the real parts' difference.
fn rest(grid: &mut Grid, total: Cell, part: Cell) -> Cell {
    grid.cell_with_real(
        grid.value(total).saturating_sub(grid.value(part)),
        grid.real(total).saturating_sub(grid.real(part)),
    )
}

/// What [`protect`] takes the real part of each count of checks from: the same as the
/// published counts, unless the report includes test checks.
struct RealCounts<'a> {
    burden: &'a Burden,
    /// Per rule set of the report, its real checks.
    rule_sets: Vec<usize>,
    /// The report's months, in order.
    months: &'a [String],
}

impl RealCounts<'_> {
    fn month(&self, by_month: &BTreeMap<String, SexCounts>, index: usize) -> SexCounts {
        self.months
            .get(index)
            .and_then(|month| by_month.get(month))
            .copied()
            .unwrap_or_default()
    }
}

/// Ties a series (months) to its total, for each sex cell.
fn series(grid: &mut Grid, months: &[[Cell; 4]], total: [Cell; 4]) {
    for k in 0..4 {
        let parts: Vec<Cell> = months.iter().map(|m| m[k]).collect();
        grid.sum(&parts, total[k]);
    }
}

/// The grid cells of one rule's tables.
struct RuleCells {
    with_rule: Cell,
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
    /// Per outcome: how many with it among the flagged, the not flagged and the
    /// resolved (the shares' numerators), per sex cell.
    x_flagged: [[Cell; 4]; 3],
    x_clear: [[Cell; 4]; 3],
    x_resolved: [[Cell; 4]; 3],
}

/// Suppresses every count of `report` below `min_cell`, and every count that would give
/// a suppressed one away (see [`super::suppress`]), in one grid so that a count shared
/// by two tables is hidden in both; then hides every share, difference, test and
/// estimate that rests on a hidden count.
fn protect(report: &mut AuditReport, raw: &Raw, real: &RealCounts<'_>, min_cell: usize) {
    let mut grid = Grid::new();
    let units = by_sex(&mut grid, report.units);
    let without = grid.cell(raw.without_check);
    let rule_sets: Vec<Cell> = report
        .rule_sets
        .iter()
        .zip(&real.rule_sets)
        .map(|(r, &real)| grid.cell_with_real(r.checks.unwrap_or_default(), real))
        .collect();
    let checks_total = by_sex_with_real(
        &mut grid,
        report.checks_in_period.or_zero(),
        real.burden.checks,
    );
    // The rule sets' checks add up to the checks read: those made in the period and the
    // units' checks made outside it (a count not shown, which the two would give).
    let read_value: usize = rule_sets.iter().map(|c| grid.value(*c)).sum();
    let read_real: usize = rule_sets.iter().map(|c| grid.real(*c)).sum();
    let read = grid.cell_with_real(read_value, read_real);
    grid.sum(&rule_sets, read);
    if read_value >= grid.value(checks_total[3]) {
        let outside = rest(&mut grid, read, checks_total[3]);
        grid.sum(&[checks_total[3], outside], read);
    }
    // The margins every table rests on: hidden when small themselves, never to protect
    // one small count elsewhere while another cell would.
    for &cell in units.iter().chain(&checks_total) {
        grid.keep_shown(cell);
    }
    // The cases with sex given: never printed, but the women and men together.
    let with_sex = grid.cell(grid.value(units[0]) + grid.value(units[1]));
    grid.sum(&[units[0], units[1]], with_sex);
    let checks_months: Vec<[Cell; 4]> = report
        .checks_per_month
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let real = real.month(&real.burden.checks_by_month, index);
            by_sex_with_real(&mut grid, m.count.or_zero(), real)
        })
        .collect();
    series(&mut grid, &checks_months, checks_total);

    let mut rule_cells = Vec::new();
    for (index, rule) in report.rules.iter().enumerate() {
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
            // The cases a model could hold left out of it (a control not given, or a
            // rule error): never printed, but those cases less the model's; a few of them
            // is a count like any other (1 woman or man left out of the model of all told
            // that at most one had a rule error). The model of all needs sex given.
            let could_hold = if k < 3 { units[k] } else { with_sex };
            let left_out = grid.cell(
                grid.value(could_hold)
                    .saturating_sub(grid.value(observations)),
            );
            grid.sum(&[observations, left_out], could_hold);
            model.push((n_flagged, n_clear, observations, out_flagged, out_clear));
        }
        if model.len() == 3 {
            grid.sum(&[model[0].0, model[1].0], model[2].0);
            grid.sum(&[model[0].1, model[1].1], model[2].1);
        }
        let flagged_checks = by_sex_with_real(
            &mut grid,
            rule.flagged_checks.or_zero(),
            real.burden.flagged[index],
        );
        let months: Vec<[Cell; 4]> = rule
            .flags_per_month
            .iter()
            .enumerate()
            .map(|(month, m)| {
                let real = real.month(&real.burden.flagged_by_month[index], month);
                by_sex_with_real(&mut grid, m.count.or_zero(), real)
            })
            .collect();
        series(&mut grid, &months, flagged_checks);
        // The checks the rule did not flag (it found nothing, or it failed), in the period
        // and per month: never printed, but the checks less the flagged ones, so a small
        // one (the one man checked in a month and not flagged) is protected like any count.
        let unflagged = remainder(&mut grid, checks_total, flagged_checks);
        // The checks made by a rule set that had the rule (published: the share's
        // whole) and those made without it: together the checks; the first less the
        // flagged ones and the second, together the unflagged ones.
        // A rule every check's set had: its checks are the period's, one count in two
        // places, so the same cell. Otherwise its checks and those made without it make
        // the period's, and its unflagged checks and those made without it the unflagged.
        let with_rule = if rule.checks_with_rule == report.checks_in_period.all {
            checks_total[3]
        } else {
            let value = rule.checks_with_rule.unwrap_or_default();
            let with_rule = grid.cell_with_real(value, real.burden.with_rule[index].all);
            let without_rule = rest(&mut grid, checks_total[3], with_rule);
            grid.sum(&[with_rule, without_rule], checks_total[3]);
            let unflagged_with_rule = rest(&mut grid, with_rule, flagged_checks[3]);
            grid.sum(&[flagged_checks[3], unflagged_with_rule], with_rule);
            grid.sum(&[unflagged_with_rule, without_rule], unflagged[3]);
            with_rule
        };
        let unflagged_months: Vec<[Cell; 4]> = checks_months
            .iter()
            .zip(&months)
            .map(|(checks, flagged)| remainder(&mut grid, *checks, *flagged))
            .collect();
        series(&mut grid, &unflagged_months, unflagged);
        let errors = grid.cell_with_real(
            rule.rule_errors.unwrap_or_default(),
            real.burden.errors[index],
        );
        rule_cells.push(RuleCells {
            with_rule,
            flagged,
            clear,
            failed,
            resolved,
            model,
            flagged_checks,
            months,
            errors,
            x_flagged: [[errors; 4]; 3],
            x_clear: [[errors; 4]; 3],
            x_resolved: [[errors; 4]; 3],
        });
    }

    grid.suppress(min_cell);
    protect_outcomes(&mut grid, raw, min_cell, &mut rule_cells);

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
            let shown_x = |x: &[[Cell; 4]; 3]| x.map(|by_sex| !grid.is_hidden(by_sex[k]));
            let (x_flagged, x_clear) = (shown_x(&cells.x_flagged), shown_x(&cells.x_clear));
            hide_comparison(
                &mut group.flagged_vs_not_flagged,
                (flagged, clear),
                x_flagged,
                x_clear,
            );
            hide_comparison(
                &mut group.resolved_vs_still_flagged,
                (resolved, flagged),
                shown_x(&cells.x_resolved),
                x_flagged,
            );
            // The estimate with no controls that vary is the difference of the shares
            // of leaving the insurance, so it is shown only when both shares are.
            let left = Measure::ALL
                .iter()
                .position(|m| *m == Measure::LeftInsurance)
                .unwrap_or_default();
            let shares_hidden = !(x_flagged[left] && x_clear[left]);
            if let Some(&(n_flagged, n_clear, observations, out_flagged, out_clear)) =
                cells.model.get(index)
            {
                let a = &mut group.adjusted;
                a.n_flagged = grid.shown(n_flagged);
                a.n_not_flagged = grid.shown(n_clear);
                a.observations = grid.shown(observations);
                let counts_hidden = a.n_flagged.is_none() || a.n_not_flagged.is_none();
                if (counts_hidden || shares_hidden) && a.coefficient.is_some() {
                    a.coefficient = None;
                    a.robust_se = None;
                    a.p_value = None;
                    a.ci_low = None;
                    a.ci_high = None;
                    a.r_squared = None;
                    a.notes.push(if counts_hidden {
                        "Justerad skattning visas inte: antalen i modellen döljs, eftersom de annars skulle avslöja ett dolt antal."
                            .to_owned()
                    } else {
                        "Justerad skattning visas inte: andelen som lämnat sjukförsäkringen bland flaggade eller ej flaggade visas inte, och skattningen skulle kunna avslöja den."
                            .to_owned()
                    });
                }
                let left_out = grid.value(out_flagged) + grid.value(out_clear);
                if left_out > 0 {
                    let note = match (grid.shown(out_flagged), grid.shown(out_clear)) {
                        (Some(_), Some(_)) => format!(
                            "{} saknar uppgift om någon kontrollvariabel och ingår inte i skattningen.",
                            count_noun(left_out, "ärende", "ärenden")
                        ),
                        _ => "Några ärenden saknar uppgift om någon kontrollvariabel och ingår inte i skattningen (antalet visas inte, eftersom det är litet eller skulle avslöja ett dolt antal)."
                            .to_owned(),
                    };
                    a.notes.insert(0, note);
                }
            }
        }
        rule.flagged_checks = shown(&grid, cells.flagged_checks);
        rule.checks_with_rule = grid.shown(cells.with_rule);
        for (month, m) in rule.flags_per_month.iter_mut().zip(cells.months) {
            month.count = shown(&grid, m);
        }
        rule.rule_errors = grid.shown(cells.errors);
    }
}

/// Protects the shares' numerators like the counts: each is a cell, tied by women, men
/// and sex not given summing to all, flagged, not flagged and rule error summing to every
/// case with the outcome (the same for every rule, so that one rule's shares cannot give away
/// another's), and resolved and never flagged summing to not flagged. A numerator is hidden first
/// when its share may not be shown ([`share_is_safe`]) or its group's size is hidden;
/// then complementary suppression hides whatever would give a hidden one away. Counts
/// are suppressed before, so their hiding does not depend on the outcomes.
fn protect_outcomes(grid: &mut Grid, raw: &Raw, min_cell: usize, rule_cells: &mut [RuleCells]) {
    let counts = |pick: &dyn Fn(usize) -> usize| ShownCounts {
        female: Some(pick(0)),
        male: Some(pick(1)),
        all: Some(pick(2)),
    };
    let with_outcome: Vec<[Cell; 4]> = (0..Measure::ALL.len())
        .map(|m| {
            by_sex(
                grid,
                counts(&|g| raw.unit_outcomes.get(g).map_or(0, |x| x[m])),
            )
        })
        .collect();
    let mut pending = Vec::new();
    for (rule, cells) in rule_cells.iter_mut().enumerate() {
        let Some(outcomes) = raw.outcomes.get(rule) else {
            continue;
        };
        let of = |pick: fn(&GroupOutcomes) -> [usize; 3], m: usize, g: usize| {
            outcomes.get(g).map_or(0, |o| pick(o)[m])
        };
        for (m, total) in with_outcome.iter().enumerate() {
            let flagged = by_sex(grid, counts(&|g| of(|o| o.flagged, m, g)));
            let clear = by_sex(grid, counts(&|g| of(|o| o.clear, m, g)));
            let resolved = by_sex(grid, counts(&|g| of(|o| o.resolved, m, g)));
            let failed: Vec<Cell> = (0..4)
                .map(|k| {
                    let rest = grid
                        .value(total[k])
                        .saturating_sub(grid.value(flagged[k]))
                        .saturating_sub(grid.value(clear[k]));
                    grid.cell(rest)
                })
                .collect();
            let never: Vec<Cell> = (0..4)
                .map(|k| {
                    let rest = grid.value(clear[k]).saturating_sub(grid.value(resolved[k]));
                    grid.cell(rest)
                })
                .collect();
            for k in 0..4 {
                grid.sum(&[flagged[k], clear[k], failed[k]], total[k]);
                grid.sum(&[resolved[k], never[k]], clear[k]);
            }
            grid.sum(&failed[..3], failed[3]);
            grid.sum(&never[..3], never[3]);
            for k in [0, 1, 3] {
                pending.push((flagged[k], cells.flagged[k]));
                pending.push((clear[k], cells.clear[k]));
                pending.push((resolved[k], cells.resolved[k]));
            }
            cells.x_flagged[m] = flagged;
            cells.x_clear[m] = clear;
            cells.x_resolved[m] = resolved;
        }
    }
    for (x, n) in pending {
        let (x_value, n_value) = (grid.value(x), grid.value(n));
        if n_value > 0 && (grid.is_hidden(n) || !share_is_safe(x_value, n_value, min_cell)) {
            grid.hide(x);
        }
    }
    grid.suppress(min_cell);
}

fn report_notes(
    input: &AuditInput,
    report: &AuditReport,
    raw: &Raw,
    min_cell: usize,
) -> Vec<String> {
    let mut notes = vec![
        PERIOD_SELECTS_NOTE.to_owned(),
        format!(
            "Antal under {min_cell}, och andelar och skattningar som vilar på färre än {min_cell} ärenden, visas inte; inte heller antal som skulle avslöja ett dolt antal. En andel visas bara när minst {min_cell} i gruppen hade utfallet och minst {min_cell} inte hade det (0 % och 100 % visas alltså inte heller), och det som vilar på en dold andel visas inte."
        ),
    ];
    if raw.without_check > 0 {
        notes.push(match report.cases_without_check_before_gk {
            Some(n) => format!(
                "{} med utfall i perioden saknar kontroll före GK och ingår inte.",
                count_noun(n, "ärende", "ärenden")
            ),
            None => "Några ärenden med utfall i perioden saknar kontroll före GK och ingår inte (antalet är för litet för att visas).".to_owned(),
        });
    }
    if raw.unknown_sex > 0 {
        // The number follows from the units shown, so it is shown exactly when they
        // all are.
        let units = report.units;
        notes.push(match (units.female, units.male, units.all) {
            (Some(_), Some(_), Some(_)) => format!(
                "{} saknar uppgift om kön och ingår bara i Totalt.",
                count_noun(raw.unknown_sex, "ärende", "ärenden")
            ),
            _ => "Några ärenden saknar uppgift om kön och ingår bara i Totalt.".to_owned(),
        });
    }
    notes.extend(unreadable_note(input));
    notes
}

/// How many stored checks could not be read back, when any: said in every report, also
/// one with too few cases, so a broken row never drops out unseen.
fn unreadable_note(input: &AuditInput) -> Option<String> {
    (input.unreadable_checks > 0).then(|| {
        format!(
            "{} kunde inte läsas och ingår inte.",
            count_noun(
                input.unreadable_checks,
                "sparad kontroll",
                "sparade kontroller"
            )
        )
    })
}

fn group_audit(
    units: &[Unit<'_>],
    index: usize,
    group: SexGroup,
    min_cell: usize,
    model: Model,
) -> (GroupAudit, GroupOutcomes) {
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
    let with = |set: &[&Unit<'_>]| {
        Measure::ALL.map(|measure| set.iter().filter(|u| measure.of(&u.outcome)).count())
    };
    let outcomes = GroupOutcomes {
        flagged: with(&flagged),
        clear: with(&clear),
        resolved: with(&resolved),
    };
    let audit = GroupAudit {
        sex: group,
        unknown_at_last_check: Some(members.len() - flagged.len() - clear.len()),
        flagged_vs_not_flagged: compare(&flagged, &clear),
        resolved_vs_still_flagged: compare(&resolved, &flagged),
        adjusted: adjusted(&flagged, &clear, group, min_cell, model),
    };
    (audit, outcomes)
}

fn percent(value: f64) -> f64 {
    value * 100.0
}

/// Compares groups `a` and `b` on every outcome. Everything is computed; what may be
/// shown is decided with the other tables' counts in [`protect`].
fn compare(a: &[&Unit<'_>], b: &[&Unit<'_>]) -> Comparison {
    let (n_a, n_b) = (a.len(), b.len());
    let outcomes = Measure::ALL
        .iter()
        .map(|&measure| {
            let x_a = a.iter().filter(|u| measure.of(&u.outcome)).count();
            let x_b = b.iter().filter(|u| measure.of(&u.outcome)).count();
            let share = |x: usize, n: usize| (n > 0).then(|| percent(x as f64 / n as f64));
            let test = two_proportions(x_a, n_a, x_b, n_b);
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

/// Sets the comparison's counts as published, and hides each share whose numerator is
/// hidden (`shown_a`, `shown_b` per outcome), with everything that rests on it.
fn hide_comparison(
    comparison: &mut Comparison,
    (n_a, n_b): (Option<usize>, Option<usize>),
    shown_a: [bool; 3],
    shown_b: [bool; 3],
) {
    comparison.n_a = n_a;
    comparison.n_b = n_b;
    for (m, outcome) in comparison.outcomes.iter_mut().enumerate() {
        let a = n_a.is_some() && shown_a[m];
        let b = n_b.is_some() && shown_b[m];
        if !a {
            outcome.share_a_pct = None;
        }
        if !b {
            outcome.share_b_pct = None;
        }
        if !a || !b {
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

/// Leaving the insurance on the flag (1 for `flagged`, 0 for `clear`) and controls; with
/// [`Model::CountsOnly`], only the sample's counts.
fn adjusted(
    flagged: &[&Unit<'_>],
    clear: &[&Unit<'_>],
    group: SexGroup,
    min_cell: usize,
    model: Model,
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
    if model == Model::CountsOnly {
        return result;
    }
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
            format!(
                "SGI ingår inte bland kontrollvariablerna: uppgiften saknas för {} i modellen.",
                count_noun(missing, "ärende", "ärenden")
            )
        } else {
            "SGI ingår inte bland kontrollvariablerna: uppgiften saknas för några av ärendena i modellen.".to_owned()
        });
    }
    let units: Vec<&Unit<'_>> = sample.iter().map(|(u, _)| *u).collect();
    let mut all_controls = controls(&units, with_sex, with_sgi);
    // The design matrix in column-major order, written once: the intercept, each
    // control's columns, and the flag.
    let mut design: Vec<f64> = vec![1.0; sample.len()];
    let mut owners: Vec<Option<usize>> = vec![None];
    for (index, control) in all_controls.iter_mut().enumerate() {
        if control.columns.is_empty() {
            notes.push(format!(
                "Kontrollen {} varierar inte bland ärendena i modellen och har tagits bort.",
                control.label
            ));
        }
        for column in std::mem::take(&mut control.columns) {
            design.extend(column);
            owners.push(Some(index));
        }
    }
    // The flag goes last, so that when it is a combination of the controls it is the
    // flag that is found dependent, and no estimate is given.
    design.extend(sample.iter().map(|(_, f)| if *f { 1.0 } else { 0.0 }));
    owners.push(None);
    let flag_column = owners.len() - 1;
    let design = Design::new(DMatrix::from_vec(sample.len(), owners.len(), design));
    let kept = design.independent_columns();
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
                "Kontrollen {}: {} av {} togs bort eftersom {} linjärt beroende av andra kontroller.",
                control.label,
                total - left,
                count_noun(total, "kolumn", "kolumner"),
                if total - left == 1 { "den är" } else { "de är" }
            ));
        }
    }
    result.controls = all_controls
        .iter()
        .zip(&used)
        .filter(|(_, used)| **used)
        .map(|(c, _)| c.key)
        .collect();
    // With no control left the estimate is the difference of the model's two shares of
    // leaving, and with its standard error gives both away: shown only as such shares
    // would be, and so would the shares of the cases left out for a missing control,
    // which the group's shown shares less the model's would give.
    if result.controls.is_empty() {
        let in_model = |flag: bool| {
            sample
                .iter()
                .filter(move |(_, f)| *f == flag)
                .map(|(u, _)| *u)
        };
        let left_out_shown = |units: &[&Unit<'_>]| {
            let missing: Vec<&Unit<'_>> = units
                .iter()
                .copied()
                .filter(|u| !complete(u.covariates, with_sex))
                .collect();
            missing.is_empty() || leaving_share_shown(missing.into_iter(), min_cell)
        };
        if !(leaving_share_shown(in_model(true), min_cell)
            && leaving_share_shown(in_model(false), min_cell)
            && left_out_shown(flagged)
            && left_out_shown(clear))
        {
            notes.push(
                "Justerad skattning visas inte: utan kontroller är den skillnaden mellan två andelar, och de bygger på för få ärenden."
                    .to_owned(),
            );
            result.notes = notes;
            return result;
        }
    }

    let design = if kept.len() == design.columns() {
        design
    } else {
        design.select_columns(&kept)
    };
    let y = DVector::from_iterator(
        sample.len(),
        sample
            .iter()
            .map(|(u, _)| if u.outcome.left_insurance { 1.0 } else { 0.0 }),
    );
    match design.ols_hc1(&y) {
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

/// Whether the share of `units` that left the insurance may be shown: at least
/// `min_cell` of them left and at least as many did not.
fn leaving_share_shown<'a, 'u: 'a>(
    units: impl Iterator<Item = &'a Unit<'u>>,
    min_cell: usize,
) -> bool {
    let (n, left) = units.fold((0, 0), |(n, left), unit| {
        (n + 1, left + usize::from(unit.outcome.left_insurance))
    });
    left >= min_cell && n - left >= min_cell
}

/// Alert burden: checks and flags per month of `checked_on` in the period, by sex.
struct Burden {
    checks: SexCounts,
    checks_by_month: BTreeMap<String, SexCounts>,
    /// Per rule, then "any flag".
    flagged: Vec<SexCounts>,
    flagged_by_month: Vec<BTreeMap<String, SexCounts>>,
    errors: Vec<usize>,
    /// Per rule, then "any flag": the checks made by a rule set that had it.
    with_rule: Vec<SexCounts>,
    /// Per rule, then "any flag": the months with a check made by a rule set without it.
    months_without_rule: Vec<BTreeSet<String>>,
}

impl Burden {
    /// Counts the checks `period` selects by their own date; with `real_only`, only those
    /// not made with a test-purpose token.
    fn count(input: &AuditInput, period: &Period, real_only: bool) -> Self {
        let rows = input.rules.len() + 1;
        let mut burden = Self {
            checks: SexCounts::default(),
            checks_by_month: BTreeMap::new(),
            flagged: vec![SexCounts::default(); rows],
            flagged_by_month: vec![BTreeMap::new(); rows],
            errors: vec![0; rows],
            with_rule: vec![SexCounts::default(); rows],
            months_without_rule: vec![BTreeSet::new(); rows],
        };
        let checks = input
            .cases
            .iter()
            .filter(|c| !(real_only && c.test))
            .flat_map(|c| &c.checks);
        for check in checks.filter(|c| period.contains(c.checked_on)) {
            let sex = check.covariates.sex;
            let month = month_of(check.checked_on);
            burden.checks.add(sex);
            burden
                .checks_by_month
                .entry(month.clone())
                .or_default()
                .add(sex);
            for (index, status) in check.statuses.iter().enumerate() {
                if *status == Status::NotInSet {
                    burden.months_without_rule[index].insert(month.clone());
                } else {
                    burden.with_rule[index].add(sex);
                }
            }
            burden.with_rule[input.rules.len()].add(sex);
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
            test: false,
        }
    }

    /// The adjusted model without a control that varies is the difference of two shares:
    /// with its standard error and the groups' shares it told the outcomes of the few
    /// cases left out for a missing control (1 of 5 flagged women without an age left the
    /// insurance), which the audit hides as a share of a few.
    /// A case checked once before GK (2024-03-20) with `covariates`, its rule's
    /// `status`, and its outcome on 2024-06-01 (`left` the insurance or not).
    fn modelled_case(left: bool, covariates: Covariates, status: Status) -> CaseHistory {
        CaseHistory {
            outcome: Some(OutcomeRecord {
                ended_on: date("2024-06-01"),
                left_insurance: left,
                work_or_studies: false,
                worsened_health: false,
            }),
            checks: vec![CheckRecord {
                stage: Stage::BeforeGk,
                checked_on: date("2024-03-20"),
                first_meeting_on: None,
                covariates,
                statuses: vec![status],
            }],
            test: false,
        }
    }

    #[test]
    fn a_model_without_controls_shows_no_estimate_a_few_cases_would_follow_from() {
        let case_with = |flagged: bool, left: bool, age: Option<u8>| {
            let status = if flagged {
                Status::Flagged
            } else {
                Status::Clear
            };
            modelled_case(
                left,
                Covariates {
                    sex: Some(Sex::Female),
                    age,
                    diagnosis: Some(DiagnosisGroup::Other),
                    education: Some(crate::profile::Education::ALL[0]),
                    marital_status: Some(crate::profile::MaritalStatus::ALL[0]),
                    children_0_17: Some(false),
                    born_abroad: Some(false),
                    returner_ever: Some(false),
                    sgi: Some(300_000),
                },
                status,
            )
        };
        let mut cases = Vec::new();
        for (flagged, complete, left, n) in [
            (true, true, 5, 10),
            (true, false, 1, 5),
            (false, true, 5, 10),
            (false, false, 2, 5),
        ] {
            for i in 0..n {
                cases.push(case_with(flagged, i < left, complete.then_some(45)));
            }
        }
        let report = run(&input(cases), &options(), Model::Estimate);
        for group in &report.rules[0].groups {
            assert_eq!(group.adjusted.coefficient, None, "{:?}", group.sex);
            assert_eq!(group.adjusted.robust_se, None, "{:?}", group.sex);
            assert_eq!(group.adjusted.r_squared, None, "{:?}", group.sex);
        }
    }

    /// With cases without sex, the women and men less the model's cases were the few left
    /// out of it: one man with a rule error made that 1, and so at most one woman or man
    /// had a rule error, though the report hid that count.
    #[test]
    fn the_few_women_and_men_left_out_of_the_model_do_not_follow() {
        let case_with = |sex: Option<Sex>, i: usize, status: Status| {
            let covariates = Covariates {
                sex,
                age: Some(25 + (i % 30) as u8),
                diagnosis: Some(DiagnosisGroup::Other),
                education: Some(crate::profile::Education::ALL[i % 2]),
                marital_status: Some(crate::profile::MaritalStatus::ALL[0]),
                children_0_17: Some(i.is_multiple_of(2)),
                born_abroad: Some(i.is_multiple_of(5)),
                returner_ever: Some(false),
                sgi: Some(200_000 + 1_000 * i as u32),
            };
            modelled_case(i.is_multiple_of(3), covariates, status)
        };
        let flag = |i: usize| {
            if i.is_multiple_of(4) {
                Status::Flagged
            } else {
                Status::Clear
            }
        };
        let mut cases: Vec<CaseHistory> = (0..60)
            .map(|i| case_with(Some(Sex::Female), i, flag(i)))
            .collect();
        cases.extend((0..40).map(|i| case_with(Some(Sex::Male), i, flag(i + 1))));
        cases.extend((0..6).map(|i| case_with(None, i, flag(i))));
        cases[70].checks[0].statuses = vec![Status::Failed];
        let report = run(&input(cases), &options(), Model::Estimate);
        assert_eq!(report.units.all, Some(106), "the report stays");
        let all = report.rules[0]
            .groups
            .iter()
            .find(|g| g.sex == SexGroup::All)
            .expect("all");
        if let (Some(women), Some(men), Some(in_model)) = (
            report.units.female,
            report.units.male,
            all.adjusted.observations,
        ) {
            let left_out = women + men - in_model;
            assert!(
                left_out == 0 || left_out >= DEFAULT_MIN,
                "{left_out} women and men left out of the model follow"
            );
        }
        // Nor of one sex's model: its cases less the model's.
        for group in &report.rules[0].groups {
            let cases = match group.sex {
                SexGroup::Female => report.units.female,
                SexGroup::Male => report.units.male,
                SexGroup::All => continue,
            };
            if let (Some(cases), Some(in_model)) = (cases, group.adjusted.observations) {
                let left_out = cases - in_model;
                assert!(
                    left_out == 0 || left_out >= DEFAULT_MIN,
                    "{:?}: {left_out}",
                    group.sex
                );
            }
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
                    "0001-01-01"
                } else {
                    "9999-12-31"
                };
                case(on, "9999-12-31", Some(Sex::Female), i % 3 == 0)
            })
            .collect();
        let report = run(&input(cases), &options(), Model::Estimate);
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

    /// Whoever made the test checks a report takes in knows how many they were, when, and
    /// what flagged them, and can take them off every published count: the report hides
    /// what a report of the real checks alone would hide, whatever the test checks add.
    #[test]
    fn test_checks_taken_in_cannot_be_taken_off_to_read_a_hidden_count() {
        let test_check = |on: &str| {
            let mut check = case(on, "2024-06-30", Some(Sex::Female), true);
            check.outcome = None;
            check.test = true;
            check
        };
        // 20 real cases in January, three flagged women in March; ten test checks in
        // March and six in May, all flagged.
        let real = || {
            (0..20)
                .map(|i| {
                    let sex = if i % 2 == 0 { Sex::Female } else { Sex::Male };
                    case("2024-01-10", "2024-06-30", Some(sex), i % 4 == 0)
                })
                .chain((0..3).map(|_| case("2024-03-10", "2024-06-30", Some(Sex::Female), true)))
        };
        let only_real = run(&input(real().collect()), &options(), Model::Estimate);
        let with_tests = input(
            real()
                .chain((0..10).map(|_| test_check("2024-03-20")))
                .chain((0..6).map(|_| test_check("2024-05-20")))
                .collect(),
        );
        let mut taken_in = options();
        taken_in.period.include_test = true;
        let report = run(&with_tests, &taken_in, Model::Estimate);

        let month = |report: &AuditReport, month: &str| {
            let checks = report
                .checks_per_month
                .iter()
                .find(|m| m.month == month)
                .map(|m| m.count);
            let flags = report.rules[0]
                .flags_per_month
                .iter()
                .find(|m| m.month == month)
                .map(|m| m.count);
            (checks, flags)
        };
        // March's 13 checks, 3 of them real, show as the 3 would: hidden.
        let (checks, flags) = month(&report, "2024-03");
        let (checks, flags) = (checks.expect("March"), flags.expect("March"));
        assert_eq!((checks.female, checks.all), (None, None), "{checks:?}");
        assert_eq!((flags.female, flags.all), (None, None), "{flags:?}");
        // May holds test checks alone: no one's count, shown.
        let (checks, _) = month(&report, "2024-05");
        assert_eq!(checks.expect("May").all, Some(6));
        // Every count the real report hides stays hidden, and every count it shows is
        // shown, with the test checks in it.
        for m in &only_real.checks_per_month {
            let (checks, flags) = month(&report, &m.month);
            let (checks, flags) = (checks.expect("month"), flags.expect("month"));
            let real_flags = month(&only_real, &m.month).1.expect("month");
            for group in SexGroup::ALL {
                assert_eq!(checks.get(group).is_some(), m.count.get(group).is_some());
                assert_eq!(flags.get(group).is_some(), real_flags.get(group).is_some());
            }
        }
        let (real_all, all) = (&only_real.rules[0], &report.rules[0]);
        for group in SexGroup::ALL {
            assert_eq!(
                all.flagged_checks.get(group).is_some(),
                real_all.flagged_checks.get(group).is_some()
            );
        }
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
        let report = run(&input(cases), &options(), Model::Estimate);
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
        let report = run(&input(cases), &options(), Model::Estimate);
        assert_eq!(report.notes, [too_few_cases_note(DEFAULT_MIN)]);
        assert!(report.rules.is_empty() && report.checks_per_month.is_empty());
        assert_eq!(report.units, ShownCounts::default());
        assert_eq!(report.checks_in_period, ShownCounts::default());
        assert_eq!(report.cases_without_check_before_gk, None);
        let html = crate::audit::html::render_audit(&report).expect("html");
        assert!(!html.contains("<table") && !html.contains("<svg"));
        assert!(html.contains("För få fall i perioden"));
    }

    #[test]
    fn unreadable_stored_checks_are_said_even_with_too_few_cases() {
        let cases = (0..4)
            .map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Female), i == 0))
            .collect();
        let mut input = input(cases);
        input.unreadable_checks = 2;
        let report = run(&input, &options(), Model::Estimate);
        assert_eq!(
            report.notes,
            [
                too_few_cases_note(DEFAULT_MIN),
                "2 sparade kontroller kunde inte läsas och ingår inte.".to_owned()
            ]
        );
    }

    const DEFAULT_MIN: usize = crate::audit::DEFAULT_MIN_CELL;

    #[test]
    fn a_small_number_of_rule_errors_is_told_without_the_number() {
        let mut cases: Vec<CaseHistory> = (0..8)
            .map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Male), i % 2 == 0))
            .collect();
        cases[1].checks[0].statuses = vec![Status::Failed];
        let report = run(&input(cases), &options(), Model::Estimate);
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

    #[test]
    fn the_few_checks_a_rule_did_not_flag_cannot_be_worked_out_from_the_checks() {
        // 20 women (10 flagged) and 7 men, 6 of them flagged: the one man not flagged
        // would be 7 − 6.
        let mut cases: Vec<CaseHistory> = (0..20)
            .map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Female), i % 2 == 0))
            .collect();
        cases.extend((0..7).map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Male), i > 0)));
        let report = run(&input(cases), &options(), Model::Estimate);
        assert_eq!(report.checks_in_period.male, Some(7));
        for rule in &report.rules {
            let flagged = rule.flagged_checks;
            let checks = report.checks_in_period;
            for (sex, flagged, checks) in [
                ("women", flagged.female, checks.female),
                ("men", flagged.male, checks.male),
                ("all", flagged.all, checks.all),
            ] {
                if let (Some(flagged), Some(checks)) = (flagged, checks) {
                    let clear = checks - flagged;
                    assert!(
                        clear == 0 || clear >= DEFAULT_MIN,
                        "{}: {sex}: {checks} checks and {flagged} flagged shown",
                        rule.rule_id
                    );
                }
            }
            assert_eq!(flagged.male, None, "{}", rule.rule_id);
            assert_not_one_hidden("flagged checks", flagged);
            for (month, checks) in rule.flags_per_month.iter().zip(&report.checks_per_month) {
                if let (Some(flagged), Some(checks)) = (month.count.male, checks.count.male) {
                    let clear = checks - flagged;
                    assert!(clear == 0 || clear >= DEFAULT_MIN, "{}", rule.rule_id);
                }
            }
        }
    }

    #[test]
    fn a_rule_new_to_a_few_checks_hides_its_own_count_not_the_reports_counts_by_sex() {
        // Nine checks under a second rule set hid every count by sex of the report when
        // the new rule's checks were split by sex.
        let mut cases: Vec<CaseHistory> = (0..40)
            .map(|i| {
                let sex = if i % 2 == 0 { Sex::Female } else { Sex::Male };
                case("2024-01-10", "2024-06-30", Some(sex), i % 3 == 0)
            })
            .collect();
        for case in cases.iter_mut().skip(3) {
            case.checks[0].statuses = vec![Status::NotInSet];
        }
        let report = run(&input(cases), &options(), Model::Estimate);
        assert_eq!(report.checks_in_period.female, Some(20));
        assert_eq!(report.checks_in_period.male, Some(20));
        let rule = &report.rules[0];
        assert_eq!(rule.checks_with_rule, None, "3 checks: hidden");
        assert!(
            rule.notes
                .iter()
                .any(|n| n.contains("fanns inte i regeluppsättningen")),
            "{:?}",
            rule.notes
        );
    }

    /// A rule no check of the period was made with was summed up as if its cases were too
    /// few, and its note ran 22 spaces into its sentence.
    #[test]
    fn a_rule_in_no_rule_set_of_the_period_says_so_in_its_note_and_summary() {
        let mut cases: Vec<CaseHistory> = (0..40)
            .map(|i| case("2024-01-10", "2024-06-30", Some(Sex::Female), i % 3 == 0))
            .collect();
        for case in &mut cases {
            case.checks[0].statuses = vec![Status::NotInSet];
        }
        let report = run(&input(cases), &options(), Model::Estimate);
        let note = "Regeln fanns inte i regeluppsättningen vid någon av periodens kontroller: \
                    den har inte prövats på ärendena i perioden, och inget om den kan bedömas.";
        assert_eq!(report.rules[0].notes, [note]);
        let summary = crate::audit::summary::of(&report);
        assert!(
            summary[0]
                .sentence
                .starts_with("Regeln fanns inte i regeluppsättningen"),
            "{}",
            summary[0].sentence
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
        let report = run(&input(cases), &options(), Model::Estimate);
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
        // All 9 flagged left the insurance: 100 % would tell each one's outcome.
        assert_eq!(all.flagged_vs_not_flagged.outcomes[0].share_a_pct, None);
        assert_eq!(all.flagged_vs_not_flagged.outcomes[0].diff_pp, None);
        assert_eq!(report.units.all, Some(23));
    }

    /// `women` and `men` cases, each flagged, of which the first `left` of each sex
    /// left the insurance; and 20 cases not flagged of which 10 left.
    fn outcome_cases(
        women: usize,
        women_left: usize,
        men: usize,
        men_left: usize,
    ) -> Vec<CaseHistory> {
        let mut cases = Vec::new();
        for (sex, n, left) in [(Sex::Female, women, women_left), (Sex::Male, men, men_left)] {
            for i in 0..n {
                let mut c = case("2024-01-10", "2024-06-30", Some(sex), true);
                if let Some(o) = c.outcome.as_mut() {
                    o.left_insurance = i < left;
                }
                cases.push(c);
            }
        }
        for i in 0..20 {
            let sex = if i % 2 == 0 { Sex::Female } else { Sex::Male };
            let mut c = case("2024-01-10", "2024-06-30", Some(sex), false);
            if let Some(o) = c.outcome.as_mut() {
                o.left_insurance = i < 10;
            }
            cases.push(c);
        }
        cases
    }

    fn flagged_left_share(report: &AuditReport, sex: SexGroup) -> (Option<usize>, Option<f64>) {
        let group = report.rules[0]
            .groups
            .iter()
            .find(|g| g.sex == sex)
            .expect("group");
        let c = &group.flagged_vs_not_flagged;
        (c.n_a, c.outcomes[0].share_a_pct)
    }

    #[test]
    fn a_share_is_shown_only_with_enough_cases_with_and_without_the_outcome() {
        assert!(share_is_safe(5, 10, 5));
        assert!(!share_is_safe(4, 10, 5), "4 with the outcome");
        assert!(!share_is_safe(6, 10, 5), "4 without");
        assert!(!share_is_safe(0, 100, 5), "0 %: nobody had it");
        assert!(!share_is_safe(100, 100, 5), "100 %: everybody had it");
    }

    #[test]
    fn one_flagged_woman_of_five_with_the_outcome_is_not_revealed_by_any_share() {
        // 5 flagged women, 1 left; 12 flagged men, 6 left.
        let report = run(
            &input(outcome_cases(5, 1, 12, 6)),
            &options(),
            Model::Estimate,
        );
        let (n, share) = flagged_left_share(&report, SexGroup::Female);
        assert_eq!(n, Some(5), "the group is shown");
        assert_eq!(share, None, "20 % of 5 would reveal the one");
        // Nor may it follow from the men and the total: one of them is hidden as well.
        let (n_m, men) = flagged_left_share(&report, SexGroup::Male);
        let (n_all, all) = flagged_left_share(&report, SexGroup::All);
        assert_eq!((n_m, n_all), (Some(12), Some(17)));
        assert!(men.is_none() || all.is_none(), "{men:?} {all:?}");
        // And the resolved-vs-still-flagged comparison shows the flagged women's share
        // as its group b: hidden there too.
        for group in &report.rules[0].groups {
            let c = &group.resolved_vs_still_flagged;
            if group.sex == SexGroup::Female {
                assert_eq!(c.outcomes[0].share_b_pct, None);
            }
        }
        // Nothing resting on the hidden share is shown.
        for group in &report.rules[0].groups {
            for outcome in &group.flagged_vs_not_flagged.outcomes {
                if outcome.share_a_pct.is_none() || outcome.share_b_pct.is_none() {
                    assert_eq!(
                        (
                            outcome.diff_pp,
                            outcome.ci_low_pp,
                            outcome.ci_high_pp,
                            outcome.p_value
                        ),
                        (None, None, None, None)
                    );
                }
            }
        }
    }

    #[test]
    fn shares_with_enough_on_both_sides_are_shown() {
        // 10 flagged women, 5 left; 12 flagged men, 6 left.
        let report = run(
            &input(outcome_cases(10, 5, 12, 6)),
            &options(),
            Model::Estimate,
        );
        assert_eq!(flagged_left_share(&report, SexGroup::Female).1, Some(50.0));
        assert_eq!(flagged_left_share(&report, SexGroup::Male).1, Some(50.0));
        assert_eq!(flagged_left_share(&report, SexGroup::All).1, Some(50.0));
    }

    #[test]
    fn nobody_with_the_outcome_is_not_shown_as_zero_percent() {
        // 10 flagged women, none left.
        let report = run(
            &input(outcome_cases(10, 0, 12, 6)),
            &options(),
            Model::Estimate,
        );
        let (n, share) = flagged_left_share(&report, SexGroup::Female);
        assert_eq!((n, share), (Some(10), None));
    }

    #[test]
    fn a_count_of_one_reads_in_the_singular_in_the_report() {
        // A threshold of 1 (only below the floor in tests) shows counts of 1.
        let mut data = input(vec![
            case("2024-01-10", "2024-06-30", Some(Sex::Female), true),
            case("2024-01-10", "2024-06-30", Some(Sex::Male), false),
        ]);
        data.rule_sets = vec![crate::audit::RuleSetUse {
            name: "gk-standard".into(),
            version: "1".into(),
            content_hash: "abcdef0123456789".into(),
            checks: 1,
            test_checks: 0,
        }];
        data.unreadable_checks = 1;
        let report = run(
            &data,
            &Options {
                min_cell: 1,
                ..Options::default()
            },
            Model::Estimate,
        );
        let html = crate::audit::html::render_audit(&report).expect("html");
        assert!(html.contains("(abcdef012345), 1 kontroll"), "rule set line");
        assert!(html.contains("1 flaggad kontroll ("), "burden line");
        assert!(!html.contains("1 kontroller") && !html.contains("1 flaggade kontroller"));
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.starts_with("1 sparad kontroll kunde inte läsas")),
            "{:?}",
            report.notes
        );
    }

    /// The flags-per-month chart of the first rule in `html`.
    fn month_svg(html: &str) -> &str {
        let start = html
            .find("aria-label=\"Flaggor per månad")
            .expect("a month chart");
        let end = start + html[start..].find("</svg>").expect("end of chart");
        &html[start..end]
    }

    #[test]
    fn the_monthly_series_has_axes_with_values_rates_checks_and_every_month_labelled() {
        // Six months, 2024-01 … 2024-06, 10 checks a month, flags in 2 or 5 of them.
        let cases = (0..60)
            .map(|i| {
                let on = format!("2024-{:02}-10", i % 6 + 1);
                let flagged = i % 6 < 3 && i < 30 || i % 6 >= 3 && i < 12;
                case(&on, "2024-06-30", Some(Sex::Female), flagged)
            })
            .collect();
        let report = run(&input(cases), &options(), Model::Estimate);
        let html = crate::audit::html::render_audit(&report).expect("html");
        let svg = month_svg(&html);
        assert!(svg.contains("Flaggor per 100 kontroller"), "{svg}");
        assert!(svg.contains("Antal kontroller (grå) och flaggor (färgade)"));
        for month in 1..=6 {
            assert!(
                svg.contains(&format!(">2024-{month:02}</text>")),
                "month {month} labelled: {svg}"
            );
        }
        // Checks are drawn beside the flags, and the y-axes carry values.
        assert_eq!(svg.matches("class=\"checks\"").count(), 6, "{svg}");
        assert!(svg.contains(">10 kontroller<") || svg.contains("10 kontroller</title>"));
        assert!(svg.contains("text-anchor=\"end\">0</text>"), "{svg}");
        assert!(svg.contains("flaggor per 100 kontroller</title>"), "{svg}");
        // And the table beside gives the rate per 100 checks.
        assert!(html.contains("<th>Flaggor per 100 kontroller</th>"));
    }

    #[test]
    fn many_months_are_labelled_by_quarter() {
        // 30 months from 2022-01, 2 checks a month.
        let cases = (0..60)
            .map(|i| {
                let month = i % 30;
                let on = format!("{}-{:02}-10", 2022 + month / 12, month % 12 + 1);
                case(&on, "2024-06-30", Some(Sex::Male), i % 2 == 0)
            })
            .collect();
        let report = run(&input(cases), &options(), Model::Estimate);
        let html = crate::audit::html::render_audit(&report).expect("html");
        let svg = month_svg(&html);
        let labels: Vec<&str> = svg
            .split("text-anchor=\"middle\">")
            .skip(1)
            .filter_map(|t| t.split('<').next())
            .collect();
        assert_eq!(labels.len(), 10, "{labels:?}");
        assert!(
            labels
                .iter()
                .all(|l| ["01", "04", "07", "10"].contains(&&l[5..])),
            "{labels:?}"
        );
    }

    /// The development cohort as an audit's input: each case's checks in date order,
    /// three rules flagging and failing by a fixed pattern, the outcomes as recorded.
    fn cohort_input() -> AuditInput {
        let outcomes = crate::outcome::read_outcomes_text(
            include_str!("../../examples/cohort-2018/outcomes.jsonl"),
            false,
        )
        .expect("outcomes");
        let outcome_of: std::collections::HashMap<String, OutcomeRecord> = outcomes
            .iter()
            .map(|o| (o.case_id.expose().to_owned(), OutcomeRecord::of(o)))
            .collect();
        let mut by_case: BTreeMap<String, Vec<CheckRecord>> = BTreeMap::new();
        let profiles = include_str!("../../examples/cohort-2018/profiles.jsonl");
        for (n, line) in profiles.lines().enumerate() {
            let profile = crate::profile::Profile::from_stored_json(line).expect("profile");
            let statuses = (0..3)
                .map(|k| match (n * 7 + k * 3) % 10 {
                    0..=3 => Status::Flagged,
                    9 if k == 2 => Status::Failed,
                    _ => Status::Clear,
                })
                .collect();
            by_case
                .entry(profile.case_id.expose().to_owned())
                .or_default()
                .push(CheckRecord::new(&profile, statuses));
        }
        let cases = by_case
            .into_iter()
            .map(|(case, mut checks)| {
                checks.sort_by_key(|c| c.checked_on);
                CaseHistory {
                    outcome: outcome_of.get(&case).copied(),
                    checks,
                    test: false,
                }
            })
            .collect();
        AuditInput {
            rules: ["a", "b", "c"]
                .map(|id| RuleInfo {
                    id: id.into(),
                    title: id.into(),
                })
                .into(),
            rule_sets: vec![],
            cases,
            unreadable_checks: 0,
        }
    }

    #[test]
    fn counting_the_models_only_gives_the_comparisons_an_estimated_audit_gives() {
        let input = cohort_input();
        // The default threshold, and one high enough to hide cells of the comparisons.
        for min_cell in [5, 150] {
            let options = Options {
                min_cell,
                ..Options::default()
            };
            let estimated = run(&input, &options, Model::Estimate);
            let counted = run(&input, &options, Model::CountsOnly);
            assert_eq!(counted.units, estimated.units);
            assert_eq!(counted.rules.len(), estimated.rules.len());
            let mut fitted = 0;
            let mut hidden = 0;
            for (e, c) in estimated.rules.iter().zip(&counted.rules) {
                assert_eq!(c.rule_id, e.rule_id);
                for (e, c) in e.groups.iter().zip(&c.groups) {
                    let json = |v: &Comparison| serde_json::to_string(v).expect("json");
                    assert_eq!(
                        json(&c.flagged_vs_not_flagged),
                        json(&e.flagged_vs_not_flagged),
                        "{:?} min_cell {min_cell}",
                        c.sex
                    );
                    assert_eq!(
                        json(&c.resolved_vs_still_flagged),
                        json(&e.resolved_vs_still_flagged)
                    );
                    assert_eq!(c.unknown_at_last_check, e.unknown_at_last_check);
                    assert_eq!(c.adjusted.coefficient, None);
                    fitted += usize::from(e.adjusted.coefficient.is_some());
                    hidden += e
                        .flagged_vs_not_flagged
                        .outcomes
                        .iter()
                        .filter(|o| o.share_a_pct.is_none() || o.share_b_pct.is_none())
                        .count();
                }
            }
            if min_cell == 5 {
                assert!(fitted > 0, "the estimated audit shows estimates");
            } else {
                assert!(hidden > 0, "some shares are hidden at min_cell {min_cell}");
            }
        }
    }
}
