//! The audit's result, as programs receive it (JSON, CSV) and as [`super::html`]
//! renders it. Shares are in percent, differences and their intervals in percentage
//! points (`a − b`), the adjusted estimate in probability units like SFR 2018:11
//! tabell 20 (0.164 = 16.4 percentage points). `null` (JSON) or an empty cell (CSV)
//! means suppressed or not computable; `notes` say which. Counts are suppressed as well
//! as shares: a count below `min_cell`, and any count that would give a suppressed one
//! away by subtraction ([`super::suppress`]); a share or estimate is shown only when the
//! counts it rests on are.

use serde::Serialize;
use utoipa::ToSchema;

use super::OutcomeRecord;
use crate::profile::Sex;

/// Women, men, or everyone (including cases whose sex is not given).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SexGroup {
    Female,
    Male,
    All,
}

impl SexGroup {
    pub const ALL: [SexGroup; 3] = [SexGroup::Female, SexGroup::Male, SexGroup::All];

    pub fn includes(self, sex: Option<Sex>) -> bool {
        match self {
            Self::Female => sex == Some(Sex::Female),
            Self::Male => sex == Some(Sex::Male),
            Self::All => true,
        }
    }

    /// As official Swedish follow-up writes it.
    pub fn label_sv(self) -> &'static str {
        match self {
            Self::Female => "Kvinnor",
            Self::Male => "Män",
            Self::All => "Totalt",
        }
    }
}

/// The outcomes compared (docs/profile.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Left the sickness insurance.
    LeftInsurance,
    /// Ended in work (with or without support) or regular studies.
    WorkOrStudies,
    /// Ended with worsened health.
    WorsenedHealth,
}

impl Measure {
    pub const ALL: [Measure; 3] = [
        Measure::LeftInsurance,
        Measure::WorkOrStudies,
        Measure::WorsenedHealth,
    ];

    pub fn of(self, outcome: &OutcomeRecord) -> bool {
        match self {
            Self::LeftInsurance => outcome.left_insurance,
            Self::WorkOrStudies => outcome.work_or_studies,
            Self::WorsenedHealth => outcome.worsened_health,
        }
    }

    pub fn label_sv(self) -> &'static str {
        match self {
            Self::LeftInsurance => "Lämnat sjukförsäkringen",
            Self::WorkOrStudies => "Arbete eller studier",
            Self::WorsenedHealth => "Försämrad hälsa",
        }
    }

    /// Short form for chart labels.
    pub fn short_label_sv(self) -> &'static str {
        match self {
            Self::LeftInsurance => "Lämnat",
            Self::WorkOrStudies => "Arbete/studier",
            Self::WorsenedHealth => "Sämre hälsa",
        }
    }
}

/// The audit of a period.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuditReport {
    pub period: PeriodJson,
    /// Counts below this, and shares and estimates resting on fewer cases, are
    /// suppressed (never below the configured floor).
    pub min_cell: usize,
    /// The rule sets that produced the checks read, with how many each.
    pub rule_sets: Vec<RuleSetJson>,
    /// Cases in the audit: an outcome in the period and a check before GK.
    pub units: ShownCounts,
    /// Cases with an outcome in the period but no check before GK (not in the audit).
    pub cases_without_check_before_gk: Option<usize>,
    /// Stored checks (both stages) made in the period: the alert-burden denominator.
    pub checks_in_period: ShownCounts,
    /// Checks per month of `checked_on` in the period: every month from the first to
    /// the last with a check when they span at most ten years, otherwise only the
    /// months with checks. Empty when the period has too few cases to show anything.
    pub checks_per_month: Vec<MonthCounts>,
    pub notes: Vec<String>,
    /// Checks made with a test-purpose token that the period selects and the audit left
    /// out; 0 when `include_test`.
    pub excluded_test_checks: u64,
    /// Whether test checks are part of the audit.
    pub include_test: bool,
    /// One row per rule and `nagon_flagga`, strongest evidence first, each read off the
    /// detailed tables of `rules` (docs/audit.md, "Summary").
    pub summary: Vec<super::summary::SummaryRow>,
    /// Each rule, then `nagon_flagga` (any rule flagged) last.
    pub rules: Vec<RuleAudit>,
    /// The live flags against the shadow rules' results, when checks in the period were
    /// evaluated with shadow rules (config `shadow_rules_dir`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<super::shadow::ShadowReport>,
    /// This period compared with another, when one was asked for (`compare_from`,
    /// `compare_to`).
    pub comparison: Option<super::compare::PeriodComparison>,
}

#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct PeriodJson {
    /// First day of the period (by outcome date), or null for no lower bound.
    pub from: Option<String>,
    /// Last day of the period, or null for no upper bound.
    pub to: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RuleSetJson {
    pub name: String,
    pub version: String,
    pub content_hash: String,
    pub checks: Option<usize>,
}

/// A count for women, men and all (all includes cases whose sex is not given).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SexCounts {
    pub female: usize,
    pub male: usize,
    pub all: usize,
}

impl SexCounts {
    pub fn add(&mut self, sex: Option<Sex>) {
        self.all += 1;
        match sex {
            Some(Sex::Female) => self.female += 1,
            Some(Sex::Male) => self.male += 1,
            None => {}
        }
    }

    pub fn get(&self, group: SexGroup) -> usize {
        match group {
            SexGroup::Female => self.female,
            SexGroup::Male => self.male,
            SexGroup::All => self.all,
        }
    }
}

/// A count for women, men and all as published: `null` when suppressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ShownCounts {
    pub female: Option<usize>,
    pub male: Option<usize>,
    pub all: Option<usize>,
}

impl ShownCounts {
    /// The counts, a hidden one as 0 (before suppression every one is shown).
    pub fn or_zero(self) -> SexCounts {
        SexCounts {
            female: self.female.unwrap_or_default(),
            male: self.male.unwrap_or_default(),
            all: self.all.unwrap_or_default(),
        }
    }

    pub fn get(&self, group: SexGroup) -> Option<usize> {
        match group {
            SexGroup::Female => self.female,
            SexGroup::Male => self.male,
            SexGroup::All => self.all,
        }
    }

    /// Every count shown.
    pub fn of(counts: SexCounts) -> Self {
        Self {
            female: Some(counts.female),
            male: Some(counts.male),
            all: Some(counts.all),
        }
    }
}

/// A month (`YYYY-MM`) and a count in it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MonthCounts {
    pub month: String,
    pub count: ShownCounts,
}

/// One rule (or `nagon_flagga`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RuleAudit {
    pub rule_id: String,
    pub title: String,
    /// Women, men, all.
    pub groups: Vec<GroupAudit>,
    /// Checks in the period on which the rule flagged.
    pub flagged_checks: ShownCounts,
    /// Checks in the period made by a rule set that had the rule: what its share of
    /// flagged checks is taken of. For all cases only: split by sex, a rule new to a few
    /// checks would hide the report's every count by sex.
    pub checks_with_rule: Option<usize>,
    /// The months with a check made by a rule set without the rule: their flags per 100
    /// checks are not shown, since the month's checks are not all checks the rule ran on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub months_without_rule: Vec<String>,
    /// Per month of `checked_on`; the same months as `checks_per_month`.
    pub flags_per_month: Vec<MonthCounts>,
    /// Checks in the period on which the rule failed.
    pub rule_errors: Option<usize>,
    pub notes: Vec<String>,
    /// What officers answered to the rule's flags, per rule-set version
    /// ([`super::responses`]).
    pub responses: super::responses::RuleResponses,
}

impl RuleAudit {
    /// Flags per 100 checks in `month` (its flags, and `checks`, the month's checks):
    /// shown only when both are and every check of the month was made by a rule set
    /// with the rule.
    pub fn flags_per_100(&self, month: &MonthCounts, checks: Option<usize>) -> Option<f64> {
        if self.months_without_rule.contains(&month.month) {
            return None;
        }
        super::summary::percent_of(month.count.all, checks)
    }
}

/// One rule for one sex group.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GroupAudit {
    pub sex: SexGroup,
    /// Units whose last check before GK had an error in this rule: whether it flagged
    /// is not known, so they are left out of this rule's comparisons.
    pub unknown_at_last_check: Option<usize>,
    /// `a` = flagged at the last check before GK, `b` = not flagged.
    pub flagged_vs_not_flagged: Comparison,
    /// Among the units flagged at some check before GK: `a` = resolved by the last
    /// check, `b` = still flagged.
    pub resolved_vs_still_flagged: Comparison,
    /// Leaving the insurance on the flag, with controls (linear probability model).
    pub adjusted: Adjusted,
}

/// Two groups compared on each outcome.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Comparison {
    pub n_a: Option<usize>,
    pub n_b: Option<usize>,
    pub outcomes: Vec<OutcomeComparison>,
}

/// One outcome in two groups.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OutcomeComparison {
    pub outcome: Measure,
    pub share_a_pct: Option<f64>,
    pub share_b_pct: Option<f64>,
    /// `share_a_pct − share_b_pct`.
    pub diff_pp: Option<f64>,
    /// 95 % confidence interval of the difference (unpooled standard error).
    pub ci_low_pp: Option<f64>,
    pub ci_high_pp: Option<f64>,
    /// Two-sided two-proportion z-test with pooled standard error.
    pub p_value: Option<f64>,
}

/// The flag's coefficient in an OLS of leaving the insurance on the flag and controls,
/// with HC1 robust standard error (SFR 2018:11 tabell 20).
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Adjusted {
    /// Units in the model (those with every control given).
    pub observations: Option<usize>,
    pub n_flagged: Option<usize>,
    pub n_not_flagged: Option<usize>,
    /// Probability units: 0.164 is 16.4 percentage points.
    pub coefficient: Option<f64>,
    pub robust_se: Option<f64>,
    /// Two-sided t-test on n − k degrees of freedom.
    pub p_value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub r_squared: Option<f64>,
    /// The controls in the model (`sex`, `age`, `diagnosis_group`, `education`,
    /// `marital_status`, `children_0_17`, `born_abroad`, `returner_ever`, `sgi`).
    pub controls: Vec<&'static str>,
    pub notes: Vec<String>,
}

/// Why a CSV could not be written.
#[derive(Debug, thiserror::Error)]
#[error("kunde inte skriva CSV: {0}")]
pub struct CsvError(String);

/// The columns of the audit CSV (the replay and shadow rows fill the last four, `current`
/// to `lost`; the answers to flags, section `responses`, fill `ruleset`, `metric`, `count`
/// and `value`).
pub const CSV_HEADER: [&str; 28] = [
    "section",
    "rule_id",
    "sex",
    "outcome",
    "month",
    "n_a",
    "n_b",
    "share_a_pct",
    "share_b_pct",
    "diff_pp",
    "ci_low_pp",
    "ci_high_pp",
    "p_value",
    "coefficient",
    "robust_se",
    "coef_ci_low",
    "coef_ci_high",
    "r_squared",
    "observations",
    "count",
    "note",
    "ruleset",
    "metric",
    "value",
    "current",
    "candidate",
    "gained",
    "lost",
];

/// One CSV row under [`CSV_HEADER`]; unset cells are empty.
#[derive(Default)]
pub struct CsvRow {
    cells: [String; 28],
}

impl CsvRow {
    pub fn new(section: &str) -> Self {
        let mut row = Self::default();
        row.cells[0] = section.to_owned();
        row
    }

    /// Sets column `name` (one of [`CSV_HEADER`]) to a text. A text that a spreadsheet
    /// would take for a formula (`=`, `+`, `-`, `@`, a tab or a carriage return first,
    /// as a rule set's name may be) gets a `'` before it, so that it stays a text.
    pub fn set(self, name: &str, value: impl ToString) -> Self {
        let text = value.to_string();
        if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            self.put(name, format!("'{text}"))
        } else {
            self.put(name, text)
        }
    }

    fn put(mut self, name: &str, text: String) -> Self {
        if let Some(index) = CSV_HEADER.iter().position(|h| *h == name) {
            self.cells[index] = text;
        }
        self
    }

    /// Sets column `name` to a number, or leaves it empty for `None`.
    pub fn num(self, name: &str, value: Option<f64>) -> Self {
        match value {
            Some(v) => self.put(name, v.to_string()),
            None => self,
        }
    }

    /// Sets column `name` to a count, or leaves it empty for a suppressed one.
    pub fn count(self, name: &str, value: Option<usize>) -> Self {
        match value {
            Some(v) => self.put(name, v.to_string()),
            None => self,
        }
    }
}

/// Writes rows under [`CSV_HEADER`].
pub fn write_csv(rows: impl IntoIterator<Item = CsvRow>) -> Result<String, CsvError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(CSV_HEADER)
        .map_err(|e| CsvError(e.to_string()))?;
    for row in rows {
        writer
            .write_record(&row.cells)
            .map_err(|e| CsvError(e.to_string()))?;
    }
    let bytes = writer.into_inner().map_err(|e| CsvError(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| CsvError(e.to_string()))
}

impl AuditReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self).map(|text| text + "\n")
    }

    /// The report in long form, one row per rule, sex and outcome (see [`CSV_HEADER`]),
    /// then the `shadow` section's rows when there is one.
    pub fn to_csv(&self) -> Result<String, CsvError> {
        let shadow = self.shadow.iter().flat_map(|s| s.csv_rows());
        write_csv(self.csv_rows().into_iter().chain(shadow))
    }

    /// The rows of [`Self::to_csv`].
    pub fn csv_rows(&self) -> Vec<CsvRow> {
        let mut rows = Vec::new();
        for note in &self.notes {
            rows.push(CsvRow::new("note").set("note", note));
        }
        // What the JSON and the page say of the whole period, before the tables.
        for rule_set in &self.rule_sets {
            rows.push(
                CsvRow::new("rule_set")
                    .set(
                        "ruleset",
                        format!(
                            "{} {} ({})",
                            rule_set.name,
                            rule_set.version,
                            rule_set.content_hash.get(..12).unwrap_or_default()
                        ),
                    )
                    .count("count", rule_set.checks),
            );
        }
        for (section, counts) in [
            ("units", &self.units),
            ("checks_in_period", &self.checks_in_period),
        ] {
            for group in SexGroup::ALL {
                rows.push(
                    CsvRow::new(section)
                        .set("sex", crate::names::name_of(&group))
                        .count("count", counts.get(group)),
                );
            }
        }
        rows.push(
            CsvRow::new("cases_without_check_before_gk")
                .count("count", self.cases_without_check_before_gk),
        );
        for row in &self.summary {
            rows.push(
                CsvRow::new("summary")
                    .set("rule_id", &row.rule_id)
                    .set("metric", "flagged_checks_pct")
                    .num("value", row.flagged_checks_pct),
            );
            rows.push(
                CsvRow::new("summary")
                    .set("rule_id", &row.rule_id)
                    .set("metric", "evidence")
                    .set("value", crate::names::name_of(&row.evidence.strength))
                    .set("note", &row.sentence),
            );
        }
        for month in &self.checks_per_month {
            for group in SexGroup::ALL {
                rows.push(
                    CsvRow::new("checks_per_month")
                        .set("sex", crate::names::name_of(&group))
                        .set("month", &month.month)
                        .count("count", month.count.get(group)),
                );
            }
        }
        for rule in &self.rules {
            for note in &rule.notes {
                rows.push(
                    CsvRow::new("note")
                        .set("rule_id", &rule.rule_id)
                        .set("note", note),
                );
            }
            for group in &rule.groups {
                let sex = crate::names::name_of(&group.sex);
                for (section, comparison) in [
                    ("flagged_vs_not_flagged", &group.flagged_vs_not_flagged),
                    (
                        "resolved_vs_still_flagged",
                        &group.resolved_vs_still_flagged,
                    ),
                ] {
                    rows.extend(comparison_rows(
                        section,
                        &rule.rule_id,
                        group.sex,
                        comparison,
                    ));
                }
                let adjusted = &group.adjusted;
                rows.push(
                    CsvRow::new("adjusted")
                        .set("rule_id", &rule.rule_id)
                        .set("sex", &sex)
                        .set("outcome", crate::names::name_of(&Measure::LeftInsurance))
                        .count("n_a", adjusted.n_flagged)
                        .count("n_b", adjusted.n_not_flagged)
                        .num("coefficient", adjusted.coefficient)
                        .num("robust_se", adjusted.robust_se)
                        .num("p_value", adjusted.p_value)
                        .num("coef_ci_low", adjusted.ci_low)
                        .num("coef_ci_high", adjusted.ci_high)
                        .num("r_squared", adjusted.r_squared)
                        .count("observations", adjusted.observations),
                );
                for note in &adjusted.notes {
                    rows.push(
                        CsvRow::new("note")
                            .set("rule_id", &rule.rule_id)
                            .set("sex", &sex)
                            .set("note", note),
                    );
                }
            }
            for month in &rule.flags_per_month {
                for group in SexGroup::ALL {
                    rows.push(
                        CsvRow::new("flags_per_month")
                            .set("rule_id", &rule.rule_id)
                            .set("sex", crate::names::name_of(&group))
                            .set("month", &month.month)
                            .count("count", month.count.get(group)),
                    );
                }
            }
            rows.push(
                CsvRow::new("rule_errors")
                    .set("rule_id", &rule.rule_id)
                    .count("count", rule.rule_errors),
            );
            rows.extend(super::responses::csv_rows(&rule.rule_id, &rule.responses));
        }
        rows
    }
}

/// The CSV rows of one comparison (one per outcome) of `rule_id` for `sex`, in `section`:
/// the audit's columns, shared by the audit, the replay and the shadow section.
pub fn comparison_rows(
    section: &str,
    rule_id: &str,
    sex: SexGroup,
    comparison: &Comparison,
) -> Vec<CsvRow> {
    comparison
        .outcomes
        .iter()
        .map(|outcome| {
            CsvRow::new(section)
                .set("rule_id", rule_id)
                .set("sex", crate::names::name_of(&sex))
                .set("outcome", crate::names::name_of(&outcome.outcome))
                .count("n_a", comparison.n_a)
                .count("n_b", comparison.n_b)
                .num("share_a_pct", outcome.share_a_pct)
                .num("share_b_pct", outcome.share_b_pct)
                .num("diff_pp", outcome.diff_pp)
                .num("ci_low_pp", outcome.ci_low_pp)
                .num("ci_high_pp", outcome.ci_high_pp)
                .num("p_value", outcome.p_value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule set named `=HYPERLINK(…)` was a formula in the CSV opened in a spreadsheet.
    #[test]
    fn a_text_a_spreadsheet_would_run_stays_a_text_and_numbers_stay_numbers() {
        let row = CsvRow::new("rule_set")
            .set("ruleset", "=HYPERLINK(\"x\") 1")
            .set("note", "-ingen")
            .num("value", Some(-3.5))
            .count("count", Some(7));
        let at = |name: &str| {
            let index = CSV_HEADER
                .iter()
                .position(|h| *h == name)
                .expect("a column");
            row.cells[index].clone()
        };
        assert_eq!(at("ruleset"), "'=HYPERLINK(\"x\") 1");
        assert_eq!(at("note"), "'-ingen");
        assert_eq!(at("value"), "-3.5");
        assert_eq!(at("count"), "7");
    }
}
