//! The audit as an Excel workbook (`--format xlsx`), written with `rust_xlsxwriter`: a
//! sheet per section with Swedish headers, numbers stored as numbers (shares as
//! fractions in a percent format, percentage points and estimates with decimals), so
//! Swedish Excel shows them with decimal commas and can compute with them. A suppressed
//! or incomputable number is an empty cell; a note on each sheet's first header cell and
//! the sheet "Läs först" say why cells are empty.
//!
//! Every number is the report's own (the JSON's): shares in percent are divided by 100
//! and shown as percent, nothing is recomputed.

use rust_xlsxwriter::{Format, Note, Workbook, Worksheet, XlsxError};

use super::report::{AuditReport, Comparison, GroupAudit, SexGroup};
use super::summary::Difference;

/// The media type of an xlsx file.
pub const CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Why a workbook could not be written (a bug, never the data).
#[derive(Debug, thiserror::Error)]
#[error("kunde inte skriva Excel-filen: {0}")]
pub struct XlsxWriteError(#[from] XlsxError);

/// One cell as the workbook stores it.
enum Value<'a> {
    Text(&'a str),
    Owned(String),
    Count(Option<usize>),
    /// A share in percent (the report's unit), stored as a fraction shown as percent.
    Percent(Option<f64>),
    /// Percentage points, one decimal.
    Points(Option<f64>),
    /// A p-value, an estimate in probability units, R²: three decimals.
    Fine(Option<f64>),
}

struct Formats {
    header: Format,
    percent: Format,
    points: Format,
    fine: Format,
    count: Format,
}

impl Formats {
    fn new() -> Self {
        Self {
            header: Format::new().set_bold().set_text_wrap(),
            percent: Format::new().set_num_format("0.0%"),
            points: Format::new().set_num_format("0.0"),
            fine: Format::new().set_num_format("0.000"),
            count: Format::new().set_num_format("0"),
        }
    }
}

/// Why a cell may be empty, told on every sheet.
fn empty_cells_note(min_cell: usize) -> String {
    format!(
        "En tom cell är ett tal som inte visas: antal under {min_cell}, andelar och skattningar som vilar på färre än {min_cell} ärenden och tal som skulle avslöja ett dolt tal döljs, så att ingen enskild person kan pekas ut. En tom cell kan också betyda att talet inte går att beräkna."
    )
}

/// A sheet written row by row.
struct Sheet<'a> {
    sheet: &'a mut Worksheet,
    formats: &'a Formats,
    row: u32,
}

impl<'a> Sheet<'a> {
    fn new(
        workbook: &'a mut Workbook,
        formats: &'a Formats,
        name: &str,
        headers: &[&str],
        note: &str,
    ) -> Result<Self, XlsxError> {
        let sheet = workbook.add_worksheet();
        sheet.set_name(name)?;
        for (col, header) in headers.iter().enumerate() {
            let col = col as u16;
            sheet.write_string_with_format(0, col, *header, &formats.header)?;
            sheet.set_column_width(col, if col < 2 { 28 } else { 14 })?;
        }
        if !headers.is_empty() {
            sheet.insert_note(
                0,
                0,
                &Note::new(note)
                    .add_author_prefix(false)
                    .set_width(400)
                    .set_height(160),
            )?;
            sheet.set_freeze_panes(1, 0)?;
        }
        Ok(Self {
            sheet,
            formats,
            row: 1,
        })
    }

    fn push(&mut self, cells: &[Value<'_>]) -> Result<(), XlsxError> {
        let f = self.formats;
        for (col, cell) in cells.iter().enumerate() {
            let (row, col) = (self.row, col as u16);
            match cell {
                Value::Text(text) => {
                    self.sheet.write_string(row, col, *text)?;
                }
                Value::Owned(text) => {
                    self.sheet.write_string(row, col, text.as_str())?;
                }
                Value::Count(Some(n)) => {
                    self.sheet
                        .write_number_with_format(row, col, *n as f64, &f.count)?;
                }
                Value::Percent(Some(v)) => {
                    self.sheet
                        .write_number_with_format(row, col, v / 100.0, &f.percent)?;
                }
                Value::Points(Some(v)) => {
                    self.sheet
                        .write_number_with_format(row, col, *v, &f.points)?;
                }
                Value::Fine(Some(v)) => {
                    self.sheet.write_number_with_format(row, col, *v, &f.fine)?;
                }
                Value::Count(None)
                | Value::Percent(None)
                | Value::Points(None)
                | Value::Fine(None) => {}
            }
        }
        self.row += 1;
        Ok(())
    }
}

fn sex_sv(sex: SexGroup) -> &'static str {
    sex.label_sv()
}

fn difference<'a>(d: &Difference) -> [Value<'a>; 4] {
    [
        Value::Points(d.diff_pp),
        Value::Points(d.ci_low_pp),
        Value::Points(d.ci_high_pp),
        Value::Fine(d.p_value),
    ]
}

/// The workbook of `report`.
pub fn write(report: &AuditReport) -> Result<Vec<u8>, XlsxWriteError> {
    let mut workbook = Workbook::new();
    let formats = Formats::new();
    let note = empty_cells_note(report.min_cell);

    {
        let mut sheet = Sheet::new(
            &mut workbook,
            &formats,
            "Läs först",
            &["Uppgift", "Värde"],
            &note,
        )?;
        let period = |d: &Option<String>| d.clone().unwrap_or_else(|| "öppen".to_owned());
        sheet.push(&[
            Value::Text("Period från (utfallsdatum)"),
            Value::Owned(period(&report.period.from)),
        ])?;
        sheet.push(&[
            Value::Text("Period till (utfallsdatum)"),
            Value::Owned(period(&report.period.to)),
        ])?;
        for group in SexGroup::ALL {
            sheet.push(&[
                Value::Owned(format!(
                    "Ärenden i uppföljningen, {}",
                    sex_sv(group).to_lowercase()
                )),
                Value::Count(report.units.get(group)),
            ])?;
        }
        sheet.push(&[
            Value::Text("Ärenden med utfall men utan kontroll före GK"),
            Value::Count(report.cases_without_check_before_gk),
        ])?;
        sheet.push(&[
            Value::Text("Kontroller gjorda i perioden (efter kontrolldatum)"),
            Value::Count(report.checks_in_period.all),
        ])?;
        sheet.push(&[
            Value::Text("Testkontroller som inte ingår"),
            Value::Count(usize::try_from(report.excluded_test_checks).ok()),
        ])?;
        sheet.push(&[
            Value::Text("Minsta antal som visas"),
            Value::Count(Some(report.min_cell)),
        ])?;
        sheet.push(&[Value::Text("Tomma celler"), Value::Owned(note.clone())])?;
        sheet.push(&[
            Value::Text("Samband, inte effekter"),
            Value::Text("Siffrorna visar hur flaggor och utfall hänger ihop, inte att flaggan eller åtgärden orsakar utfallet."),
        ])?;
        for n in &report.notes {
            sheet.push(&[Value::Text("Anteckning"), Value::Text(n)])?;
        }
        for rule in &report.rules {
            for n in &rule.notes {
                sheet.push(&[
                    Value::Owned(format!("Anteckning, {}", rule.rule_id)),
                    Value::Text(n),
                ])?;
            }
        }
    }

    {
        let mut sheet = Sheet::new(
            &mut workbook,
            &formats,
            "Sammanfattning",
            &[
                "Regel",
                "Regel-id",
                "Andel kontroller med flagga",
                "Lämnat: flaggade − ej flaggade (procentenheter)",
                "95 % KI, lägre",
                "95 % KI, övre",
                "p-värde",
                "Justerat samband (procentenheter)",
                "95 % KI, lägre",
                "95 % KI, övre",
                "p-värde",
                "Lämnat: lösta − kvarstående (procentenheter)",
                "95 % KI, lägre",
                "95 % KI, övre",
                "p-värde",
                "Underlag",
                "Sammanfattning",
                "Svar: besvarade",
                "Svar: åtgärdade",
                "Svar: inte relevanta",
                "Svar: obesvarade som låg kvar",
            ],
            &note,
        )?;
        for row in &report.summary {
            let mut cells = vec![
                Value::Text(&row.title),
                Value::Text(&row.rule_id),
                Value::Percent(row.flagged_checks_pct),
            ];
            cells.extend(difference(&row.flagged_vs_not_flagged));
            cells.extend(difference(&row.adjusted));
            cells.extend(difference(&row.resolved_vs_still_flagged));
            cells.push(Value::Text(row.evidence.strength.label_sv()));
            cells.push(Value::Text(&row.sentence));
            let answers = row.responses.as_ref();
            cells.extend([
                Value::Percent(answers.and_then(|r| r.answered_pct)),
                Value::Percent(answers.and_then(|r| r.handled_pct)),
                Value::Percent(answers.and_then(|r| r.not_relevant_pct)),
                Value::Percent(answers.and_then(|r| r.ignored_pct)),
            ]);
            sheet.push(&cells)?;
        }
    }

    for (name, label_a, label_b, pick) in [
        (
            "Flaggade mot ej flaggade",
            "flaggade",
            "ej flaggade",
            (|g: &GroupAudit| &g.flagged_vs_not_flagged) as fn(&GroupAudit) -> &Comparison,
        ),
        (
            "Lösta mot kvarstående",
            "lösta före GK",
            "kvarstående",
            (|g: &GroupAudit| &g.resolved_vs_still_flagged) as fn(&GroupAudit) -> &Comparison,
        ),
    ] {
        let headers = [
            "Regel".to_owned(),
            "Regel-id".to_owned(),
            "Kön".to_owned(),
            "Utfall".to_owned(),
            format!("Antal {label_a}"),
            format!("Antal {label_b}"),
            format!("Andel {label_a}"),
            format!("Andel {label_b}"),
            "Diff. (procentenheter)".to_owned(),
            "95 % KI, lägre".to_owned(),
            "95 % KI, övre".to_owned(),
            "p-värde".to_owned(),
        ];
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut sheet = Sheet::new(&mut workbook, &formats, name, &headers, &note)?;
        for rule in &report.rules {
            for group in &rule.groups {
                let comparison = pick(group);
                for outcome in &comparison.outcomes {
                    sheet.push(&[
                        Value::Text(&rule.title),
                        Value::Text(&rule.rule_id),
                        Value::Text(sex_sv(group.sex)),
                        Value::Text(outcome.outcome.label_sv()),
                        Value::Count(comparison.n_a),
                        Value::Count(comparison.n_b),
                        Value::Percent(outcome.share_a_pct),
                        Value::Percent(outcome.share_b_pct),
                        Value::Points(outcome.diff_pp),
                        Value::Points(outcome.ci_low_pp),
                        Value::Points(outcome.ci_high_pp),
                        Value::Fine(outcome.p_value),
                    ])?;
                }
            }
        }
    }

    {
        let mut sheet = Sheet::new(
            &mut workbook,
            &formats,
            "Justerat samband",
            &[
                "Regel",
                "Regel-id",
                "Kön",
                "Skattning (sannolikhet; 0,164 = 16,4 procentenheter)",
                "Robust standardfel",
                "p-värde",
                "95 % KI, lägre",
                "95 % KI, övre",
                "R²",
                "Observationer",
                "Flaggade",
                "Ej flaggade",
            ],
            &note,
        )?;
        for rule in &report.rules {
            for group in &rule.groups {
                let a = &group.adjusted;
                sheet.push(&[
                    Value::Text(&rule.title),
                    Value::Text(&rule.rule_id),
                    Value::Text(sex_sv(group.sex)),
                    Value::Fine(a.coefficient),
                    Value::Fine(a.robust_se),
                    Value::Fine(a.p_value),
                    Value::Fine(a.ci_low),
                    Value::Fine(a.ci_high),
                    Value::Fine(a.r_squared),
                    Value::Count(a.observations),
                    Value::Count(a.n_flagged),
                    Value::Count(a.n_not_flagged),
                ])?;
            }
        }
    }

    {
        let mut sheet = Sheet::new(
            &mut workbook,
            &formats,
            "Flaggor per månad",
            &[
                "Regel",
                "Regel-id",
                "Månad",
                "Flaggor, kvinnor",
                "Flaggor, män",
                "Flaggor totalt",
                "Kontroller totalt",
                "Flaggor per 100 kontroller",
            ],
            &note,
        )?;
        for rule in &report.rules {
            for (month, checks) in rule.flags_per_month.iter().zip(&report.checks_per_month) {
                let per_100 = rule.flags_per_100(month, checks.count.all);
                sheet.push(&[
                    Value::Text(&rule.title),
                    Value::Text(&rule.rule_id),
                    Value::Text(&month.month),
                    Value::Count(month.count.female),
                    Value::Count(month.count.male),
                    Value::Count(month.count.all),
                    Value::Count(checks.count.all),
                    Value::Points(per_100),
                ])?;
            }
        }
        let mut months = Sheet::new(
            &mut workbook,
            &formats,
            "Kontroller per månad",
            &["Månad", "Kvinnor", "Män", "Totalt"],
            &note,
        )?;
        for month in &report.checks_per_month {
            months.push(&[
                Value::Text(&month.month),
                Value::Count(month.count.female),
                Value::Count(month.count.male),
                Value::Count(month.count.all),
            ])?;
        }
    }

    if let Some(comparison) = &report.comparison {
        let mut sheet = Sheet::new(
            &mut workbook,
            &formats,
            "Jämförelse",
            &[
                "Regel",
                "Regel-id",
                "Andel kontroller med flagga",
                "Andel, jämförd period",
                "Förändring (procentenheter)",
                "95 % KI, lägre",
                "95 % KI, övre",
                "p-värde",
                "Lämnat: flaggade − ej flaggade (procentenheter)",
                "Samma, jämförd period",
                "Förändring (procentenheter)",
                "95 % KI, lägre",
                "95 % KI, övre",
                "p-värde",
            ],
            &note,
        )?;
        for rule in &comparison.rules {
            let mut cells = vec![
                Value::Text(&rule.title),
                Value::Text(&rule.rule_id),
                Value::Percent(rule.flagged_checks_pct),
                Value::Percent(rule.compared_flagged_checks_pct),
            ];
            cells.extend(difference(&rule.flag_rate_change));
            cells.push(Value::Points(rule.flagged_vs_not_flagged_pp));
            cells.push(Value::Points(rule.compared_flagged_vs_not_flagged_pp));
            cells.extend(difference(&rule.difference_change));
            sheet.push(&cells)?;
        }
        for n in &comparison.notes {
            sheet.push(&[Value::Text("Anteckning"), Value::Text(n)])?;
        }
    }

    Ok(workbook.save_to_buffer()?)
}
