//! Two periods compared (`--compare-from`/`--compare-to`, `compare_from`/`compare_to`):
//! per rule, the change in the share of checks flagged and in the flagged-versus-not
//! difference on leaving the sickness insurance, each with a 95 % interval of the change.
//!
//! Both sides are read off the two finished, protected reports (the same numbers as
//! their detailed tables and summaries), so a change is shown only when both of its
//! sides are. The interval of a change treats the two periods as independent samples,
//! which they are when they do not overlap (a case has one outcome date); a note says so
//! when they overlap.

use serde::Serialize;
use utoipa::ToSchema;

use super::report::{AuditReport, PeriodJson};
use super::stats::{normal_p, normal_quantile, two_proportions};
use super::summary::{self, Difference};

/// The comparison of the report's period (the first) with another (the second).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PeriodComparison {
    /// The period compared with.
    pub compared_period: PeriodJson,
    /// Cases in the compared period's audit (all), when shown.
    pub compared_units: Option<usize>,
    /// Checks made in the compared period (all), when shown.
    pub compared_checks_in_period: Option<usize>,
    pub notes: Vec<String>,
    /// Each rule present in both reports, then `nagon_flagga`, in the report's order.
    pub rules: Vec<RuleChange>,
}

/// One rule in two periods. Changes are first period minus second, in percentage points.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RuleChange {
    pub rule_id: String,
    pub title: String,
    /// Share of the checks made in each period on which the rule flagged (percent).
    pub flagged_checks_pct: Option<f64>,
    pub compared_flagged_checks_pct: Option<f64>,
    /// The change in that share, with its 95 % interval and two-proportion z-test.
    pub flag_rate_change: Difference,
    /// Left the insurance, flagged minus not flagged (all cases), in each period.
    pub flagged_vs_not_flagged_pp: Option<f64>,
    pub compared_flagged_vs_not_flagged_pp: Option<f64>,
    /// The change in that difference, with its 95 % interval.
    pub difference_change: Difference,
}

/// Whether two periods share a day (an open end reaches every day on its side).
fn overlap(a: &PeriodJson, b: &PeriodJson) -> bool {
    let starts_before_end = |from: &Option<String>, to: &Option<String>| match (from, to) {
        (Some(from), Some(to)) => from <= to,
        _ => true,
    };
    starts_before_end(&a.from, &b.to) && starts_before_end(&b.from, &a.to)
}

/// The change `a − b` of two independent estimates, from their intervals.
fn change(a: &Difference, b: &Difference) -> Difference {
    let z = normal_quantile();
    let se = |d: &Difference| Some((d.ci_high_pp? - d.ci_low_pp?) / (2.0 * z));
    match (a.diff_pp, b.diff_pp, se(a), se(b)) {
        (Some(da), Some(db), Some(sa), Some(sb)) => {
            let diff = da - db;
            let se = (sa * sa + sb * sb).sqrt();
            Difference {
                diff_pp: Some(diff),
                ci_low_pp: Some(diff - z * se),
                ci_high_pp: Some(diff + z * se),
                p_value: (se > 0.0).then(|| normal_p(diff / se)),
            }
        }
        _ => Difference::default(),
    }
}

/// `first` (the report's period) compared with `second`.
pub fn of(first: &AuditReport, second: &AuditReport) -> PeriodComparison {
    let mut notes = vec![
        "Förändringen är den första periodens värde minus den jämförda periodens, i procentenheter. Den visas bara när talen i båda perioderna visas."
            .to_owned(),
    ];
    if overlap(&first.period, &second.period) {
        notes.push("Perioderna överlappar. Konfidensintervallen för förändringarna förutsätter att perioderna inte har några ärenden eller kontroller gemensamma, så de är för smala här.".to_owned());
    }
    if second.rules.is_empty() || first.rules.is_empty() {
        notes.push(
            "En av perioderna har för få ärenden för att visa resultat, så ingen jämförelse visas."
                .to_owned(),
        );
    }
    let rules = first
        .rules
        .iter()
        .filter_map(|rule| {
            let other = second.rules.iter().find(|r| r.rule_id == rule.rule_id)?;
            let (a, b) = (summary::row(rule), summary::row(other));
            // Over the checks whose rule set had the rule, as the shares beside it.
            let flag_rate_change = match (
                rule.flagged_checks.all,
                rule.checks_with_rule,
                other.flagged_checks.all,
                other.checks_with_rule,
            ) {
                (Some(x_a), Some(n_a), Some(x_b), Some(n_b)) => two_proportions(x_a, n_a, x_b, n_b)
                    .map(|t| Difference {
                        diff_pp: Some(t.diff * 100.0),
                        ci_low_pp: Some(t.ci_low * 100.0),
                        ci_high_pp: Some(t.ci_high * 100.0),
                        p_value: t.p_value,
                    })
                    .unwrap_or_default(),
                _ => Difference::default(),
            };
            Some(RuleChange {
                rule_id: rule.rule_id.clone(),
                title: rule.title.clone(),
                flagged_checks_pct: a.flagged_checks_pct,
                compared_flagged_checks_pct: b.flagged_checks_pct,
                flag_rate_change,
                flagged_vs_not_flagged_pp: a.flagged_vs_not_flagged.diff_pp,
                compared_flagged_vs_not_flagged_pp: b.flagged_vs_not_flagged.diff_pp,
                difference_change: change(&a.flagged_vs_not_flagged, &b.flagged_vs_not_flagged),
            })
        })
        .collect();
    PeriodComparison {
        compared_period: second.period.clone(),
        compared_units: second.units.all,
        compared_checks_in_period: second.checks_in_period.all,
        notes,
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(from: Option<&str>, to: Option<&str>) -> PeriodJson {
        PeriodJson {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn periods_overlap_when_they_share_a_day() {
        let h1 = period(Some("2024-01-01"), Some("2024-06-30"));
        let h2 = period(Some("2024-07-01"), Some("2024-12-31"));
        assert!(!overlap(&h1, &h2));
        assert!(!overlap(&h2, &h1));
        assert!(overlap(&h1, &period(Some("2024-06-30"), None)));
        assert!(overlap(&h1, &period(None, None)));
    }

    #[test]
    fn the_interval_of_a_change_adds_the_variances() {
        let z = normal_quantile();
        let a = Difference {
            diff_pp: Some(-10.0),
            ci_low_pp: Some(-10.0 - 3.0 * z),
            ci_high_pp: Some(-10.0 + 3.0 * z),
            p_value: None,
        };
        let b = Difference {
            diff_pp: Some(-4.0),
            ci_low_pp: Some(-4.0 - 4.0 * z),
            ci_high_pp: Some(-4.0 + 4.0 * z),
            p_value: None,
        };
        let c = change(&a, &b);
        assert!((c.diff_pp.unwrap_or_default() + 6.0).abs() < 1e-9);
        // se = sqrt(3² + 4²) = 5
        assert!((c.ci_high_pp.unwrap_or_default() - (-6.0 + 5.0 * z)).abs() < 1e-9);
        assert!(change(&a, &Difference::default()).diff_pp.is_none());
    }
}
