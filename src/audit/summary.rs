//! The summary that opens the audit: one row per rule and one for "någon flagga", each
//! read off the finished (already protected) report, so every number in it is a number
//! of the detailed tables, suppressed where they are.
//!
//! A row has the share of checks flagged, flagged versus not flagged on leaving the
//! sickness insurance (difference with 95 % interval), the adjusted estimate with its
//! interval, resolved versus still flagged, a strength of evidence and one plain Swedish
//! sentence. Rows are ordered by strength of evidence ([`Evidence`]).

use serde::Serialize;
use utoipa::ToSchema;

use super::html::number;
use super::report::{AuditReport, Comparison, Measure, RuleAudit, SexGroup};

/// A difference in percentage points with its 95 % interval; `null` where the detailed
/// table shows nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct Difference {
    pub diff_pp: Option<f64>,
    pub ci_low_pp: Option<f64>,
    pub ci_high_pp: Option<f64>,
    pub p_value: Option<f64>,
}

impl Difference {
    /// Whether the 95 % interval lies wholly on one side of zero.
    pub fn excludes_zero(&self) -> Option<bool> {
        let (low, high) = (self.ci_low_pp?, self.ci_high_pp?);
        Some(low > 0.0 || high < 0.0)
    }

    /// The distance of the estimate from zero in half-widths of its interval: at least 1
    /// exactly when the interval excludes zero.
    pub fn score(&self) -> Option<f64> {
        let (diff, low, high) = (self.diff_pp?, self.ci_low_pp?, self.ci_high_pp?);
        let half = (high - low) / 2.0;
        (half > 0.0).then(|| diff.abs() / half)
    }

    fn shown(&self) -> bool {
        self.diff_pp.is_some() && self.ci_low_pp.is_some() && self.ci_high_pp.is_some()
    }
}

/// How strongly the data speak for an association between the flag and leaving the
/// insurance, judged on the adjusted estimate when it is shown, otherwise on the
/// unadjusted difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// The 95 % interval excludes zero.
    Clear,
    /// The interval includes zero.
    Uncertain,
    /// Neither estimate is shown (too few cases, or hidden to protect individuals).
    NotAssessable,
}

impl Strength {
    pub fn label_sv(self) -> &'static str {
        match self {
            Self::Clear => "Tydligt samband",
            Self::Uncertain => "Osäkert samband",
            Self::NotAssessable => "Kan inte bedömas",
        }
    }
}

/// What the evidence rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Adjusted,
    Unadjusted,
    None,
}

/// The strength of evidence of a row: its class and its score (the estimate's distance
/// from zero in half-widths of its 95 % interval). Rows are ordered by class, then by
/// score, largest first.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
pub struct Evidence {
    pub strength: Strength,
    pub basis: Basis,
    pub score: Option<f64>,
}

/// One row of the summary.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SummaryRow {
    pub rule_id: String,
    pub title: String,
    /// Checks made in the period on which the rule flagged, in percent of the checks made
    /// in the period with a rule set that had the rule (`flagged_checks.all` /
    /// `checks_with_rule`).
    pub flagged_checks_pct: Option<f64>,
    /// Left the insurance, flagged minus not flagged at the last check before GK (all
    /// cases): the detailed table's `flagged_vs_not_flagged` row.
    pub flagged_vs_not_flagged: Difference,
    /// The adjusted estimate (all cases), in percentage points (the coefficient × 100).
    pub adjusted: Difference,
    /// Left the insurance, resolved before GK minus still flagged (all cases).
    pub resolved_vs_still_flagged: Difference,
    pub evidence: Evidence,
    /// One sentence in Swedish; it always says association, not effect.
    pub sentence: String,
    /// What officers answered to the flags raised by the newest rule-set version with the
    /// rule that made checks in the period (the `responses` object of the rule's
    /// details); `None` when no such version made a check in the period.
    pub responses: Option<SummaryResponses>,
}

/// Officers' answers to one rule's flags, in percent of the flags (suppressed shares stay
/// `None`): read off the newest entry of the rule's `responses.versions`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SummaryResponses {
    pub ruleset: String,
    pub version: String,
    pub answered_pct: Option<f64>,
    pub handled_pct: Option<f64>,
    pub not_relevant_pct: Option<f64>,
    pub ignored_pct: Option<f64>,
}

fn responses_of(rule: &RuleAudit) -> Option<SummaryResponses> {
    rule.responses.versions.last().map(|v| SummaryResponses {
        ruleset: v.ruleset.clone(),
        version: v.version.clone(),
        answered_pct: v.answered_pct,
        handled_pct: v.handled_pct,
        not_relevant_pct: v.not_relevant_pct,
        ignored_pct: v.ignored_pct,
    })
}

fn left_insurance(comparison: &Comparison) -> Difference {
    comparison
        .outcomes
        .iter()
        .find(|o| o.outcome == Measure::LeftInsurance)
        .map(|o| Difference {
            diff_pp: o.diff_pp,
            ci_low_pp: o.ci_low_pp,
            ci_high_pp: o.ci_high_pp,
            p_value: o.p_value,
        })
        .unwrap_or_default()
}

/// The share of `part` in `whole`, in percent, when both are shown.
pub fn percent_of(part: Option<usize>, whole: Option<usize>) -> Option<f64> {
    match (part, whole) {
        (Some(part), Some(whole)) if whole > 0 => Some(part as f64 * 100.0 / whole as f64),
        _ => None,
    }
}

/// The row of one rule of a report.
pub fn row(rule: &RuleAudit) -> SummaryRow {
    let all = rule.groups.iter().find(|g| g.sex == SexGroup::All);
    let flagged_vs_not_flagged = all
        .map(|g| left_insurance(&g.flagged_vs_not_flagged))
        .unwrap_or_default();
    let resolved_vs_still_flagged = all
        .map(|g| left_insurance(&g.resolved_vs_still_flagged))
        .unwrap_or_default();
    let pp = |v: Option<f64>| v.map(|v| v * 100.0);
    let adjusted = all
        .map(|g| Difference {
            diff_pp: pp(g.adjusted.coefficient),
            ci_low_pp: pp(g.adjusted.ci_low),
            ci_high_pp: pp(g.adjusted.ci_high),
            p_value: g.adjusted.p_value,
        })
        .unwrap_or_default();
    let (basis, judged) = if adjusted.shown() {
        (Basis::Adjusted, adjusted)
    } else if flagged_vs_not_flagged.shown() {
        (Basis::Unadjusted, flagged_vs_not_flagged)
    } else {
        (Basis::None, Difference::default())
    };
    let strength = match judged.excludes_zero() {
        Some(true) => Strength::Clear,
        Some(false) => Strength::Uncertain,
        None => Strength::NotAssessable,
    };
    let evidence = Evidence {
        strength,
        basis,
        score: judged.score(),
    };
    SummaryRow {
        rule_id: rule.rule_id.clone(),
        title: rule.title.clone(),
        flagged_checks_pct: percent_of(rule.flagged_checks.all, rule.checks_with_rule),
        sentence: if rule.checks_with_rule == Some(0) {
            NOT_IN_ANY_SET.to_owned()
        } else {
            sentence(&flagged_vs_not_flagged, &adjusted, evidence)
        },
        flagged_vs_not_flagged,
        adjusted,
        resolved_vs_still_flagged,
        evidence,
        responses: responses_of(rule),
    }
}

/// The summary of `report`, strongest evidence first (ties keep the report's order).
pub fn of(report: &AuditReport) -> Vec<SummaryRow> {
    let mut rows: Vec<SummaryRow> = report.rules.iter().map(row).collect();
    rows.sort_by(|a, b| {
        a.evidence.strength.cmp(&b.evidence.strength).then_with(|| {
            let score = |r: &SummaryRow| r.evidence.score.unwrap_or(0.0);
            score(b).total_cmp(&score(a))
        })
    });
    rows
}

/// "8,2 procentenheter mer sällan" / "oftare" / "lika ofta".
fn how_often(diff: f64) -> String {
    let size = number(diff.abs(), 1);
    if size == "0,0" {
        "lika ofta som".to_owned()
    } else if diff > 0.0 {
        format!("{size} procentenheter oftare än")
    } else {
        format!("{size} procentenheter mer sällan än")
    }
}

fn interval_sv(d: &Difference) -> String {
    match (d.ci_low_pp, d.ci_high_pp) {
        (Some(low), Some(high)) => {
            format!("95 % KI {} till {}", number(low, 1), number(high, 1))
        }
        _ => "inget intervall visas".to_owned(),
    }
}

/// The sentence of a rule that no rule set of the period's checks had: too few cases is
/// not why it cannot be judged.
const NOT_IN_ANY_SET: &str = "Regeln fanns inte i regeluppsättningen vid någon av periodens kontroller, så den har inte prövats och kan inte bedömas.";

/// The row's sentence: what was seen, how sure it is, and that it is an association.
fn sentence(unadjusted: &Difference, adjusted: &Difference, evidence: Evidence) -> String {
    const NOT_EFFECT: &str = "Det är ett samband, inte en effekt av regeln.";
    let mut parts = Vec::new();
    if let Some(diff) = unadjusted.diff_pp {
        parts.push(format!(
            "Flaggade ärenden lämnade sjukförsäkringen {} ej flaggade ({}).",
            how_often(diff),
            interval_sv(unadjusted)
        ));
    }
    if let Some(coefficient) = adjusted.diff_pp {
        parts.push(format!(
            "Med hänsyn till kön, ålder, diagnos och andra bakgrundsfaktorer: {} ({}).",
            how_often(coefficient).replace(" än", ""),
            interval_sv(adjusted)
        ));
    }
    match evidence.strength {
        Strength::Clear => parts.push(
            "Intervallet innehåller inte 0, så skillnaden beror knappast på slumpen.".to_owned(),
        ),
        Strength::Uncertain => parts.push(
            "Intervallet innehåller 0, så det går inte att säga att det finns någon skillnad."
                .to_owned(),
        ),
        Strength::NotAssessable => parts.push(
            "Underlaget räcker inte för en jämförelse: för få ärenden, eller tal som döljs för att ingen ska kunna pekas ut."
                .to_owned(),
        ),
    }
    parts.push(NOT_EFFECT.to_owned());
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(d: f64, low: f64, high: f64) -> Difference {
        Difference {
            diff_pp: Some(d),
            ci_low_pp: Some(low),
            ci_high_pp: Some(high),
            p_value: None,
        }
    }

    #[test]
    fn the_score_is_at_least_one_exactly_when_the_interval_excludes_zero() {
        let clear = diff(-8.0, -12.0, -4.0);
        assert_eq!(clear.excludes_zero(), Some(true));
        assert_eq!(clear.score(), Some(2.0));
        let unsure = diff(2.0, -2.0, 6.0);
        assert_eq!(unsure.excludes_zero(), Some(false));
        assert_eq!(unsure.score(), Some(0.5));
        assert_eq!(Difference::default().excludes_zero(), None);
        assert_eq!(Difference::default().score(), None);
    }

    #[test]
    fn every_sentence_says_association_not_effect() {
        for (u, a, strength) in [
            (
                diff(-8.2, -12.1, -4.3),
                diff(-6.1, -9.0, -3.2),
                Strength::Clear,
            ),
            (
                diff(1.0, -3.0, 5.0),
                Difference::default(),
                Strength::Uncertain,
            ),
            (
                Difference::default(),
                Difference::default(),
                Strength::NotAssessable,
            ),
        ] {
            let evidence = Evidence {
                strength,
                basis: Basis::Adjusted,
                score: None,
            };
            let text = sentence(&u, &a, evidence);
            assert!(
                text.ends_with("Det är ett samband, inte en effekt av regeln."),
                "{text}"
            );
        }
        let text = sentence(
            &diff(-8.2, -12.1, -4.3),
            &diff(-6.1, -9.0, -3.2),
            Evidence {
                strength: Strength::Clear,
                basis: Basis::Adjusted,
                score: Some(2.0),
            },
        );
        assert!(
            text.starts_with("Flaggade ärenden lämnade sjukförsäkringen 8,2 procentenheter mer sällan än ej flaggade (95 % KI −12,1 till −4,3)."),
            "{text}"
        );
        assert!(
            text.contains(
                "bakgrundsfaktorer: 6,1 procentenheter mer sällan (95 % KI −9,0 till −3,2)"
            ),
            "{text}"
        );
    }
}
