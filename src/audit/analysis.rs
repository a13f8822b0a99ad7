//! Per rule and sex group: outcome shares of flagged and unflagged cases and of resolved
//! and still-flagged ones, their differences and tests; the adjusted estimate from a
//! linear probability model with the controls of SFR 2018:11 tabell 20; and the alert
//! burden (flags per month). Small cells are suppressed here, once, for every output.

use std::collections::BTreeMap;

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::report::{
    Adjusted, AuditReport, Comparison, GroupAudit, Measure, MonthCounts, OutcomeComparison,
    PeriodJson, RuleAudit, RuleSetJson, SexCounts, SexGroup,
};
use super::stats::{independent_columns, ols_hc1, t_inference, two_proportions};
use super::units::{self, Unit, any_status};
use super::{ANY_FLAG_ID, AuditInput, Covariates, Options, Period, Status};
use crate::profile::{DiagnosisGroup, Education, MaritalStatus, Sex};

/// The title of the "any flag" row.
pub const ANY_FLAG_TITLE: &str = "Någon flagga";

pub(super) fn run(input: &AuditInput, options: &Options) -> AuditReport {
    let min_cell = options.min_cell.max(1);
    let built = units::build(input, &options.period);
    let burden = Burden::count(input, &options.period);
    let months = burden.months();

    let mut unit_counts = SexCounts::default();
    for unit in &built.units {
        unit_counts.add(unit.covariates.sex);
    }

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
            let unknown = groups
                .iter()
                .find(|g| g.sex == SexGroup::All)
                .map_or(0, |g| g.unknown_at_last_check);
            if unknown > 0 {
                notes.push(format!(
                    "{unknown} ärenden hade regelfel vid den senaste kontrollen före GK; om regeln flaggade är okänt, så de ingår inte i regelns jämförelser."
                ));
            }
            RuleAudit {
                rule_id: id.to_owned(),
                title: title.to_owned(),
                groups,
                flagged_checks: burden.flagged[index],
                flags_per_month: months
                    .iter()
                    .map(|month| MonthCounts {
                        month: month.clone(),
                        count: burden.flagged_by_month[index]
                            .get(month)
                            .copied()
                            .unwrap_or_default(),
                    })
                    .collect(),
                rule_errors: burden.errors[index],
                notes,
            }
        })
        .collect();

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
                checks: r.checks,
            })
            .collect(),
        units: unit_counts,
        cases_without_check_before_gk: built.without_check,
        checks_in_period: burden.checks,
        checks_per_month: months
            .iter()
            .map(|month| MonthCounts {
                month: month.clone(),
                count: burden
                    .checks_by_month
                    .get(month)
                    .copied()
                    .unwrap_or_default(),
            })
            .collect(),
        notes: report_notes(input, &built, unit_counts, min_cell),
        rules,
    }
}

fn report_notes(
    input: &AuditInput,
    built: &units::Units<'_>,
    counts: SexCounts,
    min_cell: usize,
) -> Vec<String> {
    let mut notes = vec![format!(
        "Andelar och skattningar som vilar på färre än {min_cell} ärenden visas inte."
    )];
    if counts.all == 0 {
        notes.push(
            "Inga ärenden med utfall i perioden har en kontroll före GK; det finns inget att jämföra."
                .to_owned(),
        );
    }
    if built.without_check > 0 {
        notes.push(format!(
            "{} ärenden med utfall i perioden saknar kontroll före GK och ingår inte.",
            built.without_check
        ));
    }
    let unknown_sex = counts.all - counts.female - counts.male;
    if unknown_sex > 0 {
        notes.push(format!(
            "{unknown_sex} ärenden saknar uppgift om kön och ingår bara i Totalt."
        ));
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
        unknown_at_last_check: members.len() - flagged.len() - clear.len(),
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
    Comparison { n_a, n_b, outcomes }
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
    if sample.len() < known {
        notes.push(format!(
            "{} ärenden saknar uppgift om någon kontrollvariabel och ingår inte i skattningen.",
            known - sample.len()
        ));
    }
    let n_flagged = sample.iter().filter(|(_, f)| *f).count();
    let mut result = Adjusted {
        observations: sample.len(),
        n_flagged,
        n_not_flagged: sample.len() - n_flagged,
        ..Adjusted::default()
    };
    if n_flagged < min_cell || result.n_not_flagged < min_cell {
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
        notes.push(format!(
            "SGI ingår inte bland kontrollerna: uppgiften saknas för {missing} av {} ärenden.",
            sample.len()
        ));
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

    /// Every month from the first to the last with a check, gaps included.
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
