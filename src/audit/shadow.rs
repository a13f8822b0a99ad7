//! The audit's `shadow` section: the live flags against the shadow rules' results on the
//! same stored checks (config `shadow_rules_dir`), rule by rule, the way a replay sets a
//! candidate beside the current rules ([`super::side_by_side`]).
//!
//! Only checks that were evaluated with shadow rules are read, for both sides, so the two
//! audits compare the same cases: a case counts when it has an outcome in the period and
//! a check before GK with shadow results. The rules listed are the active rules, then any
//! other rule id found in stored flags or shadow results. Small counts are suppressed as
//! in the audit: a count below `min_cell` is `null`, and so is a second count whenever
//! one hidden count could otherwise be worked out from the others.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::data::Histories;
use super::report::comparison_rows;
use super::report::{Comparison, CsvRow, RuleSetJson, SexGroup};
use super::side_by_side::{OutcomeComparisons, PairCounts};
use super::{CheckRecord, Options, OutcomeRecord, RuleInfo, Status};
use crate::profile::Profile;
use crate::store::StoreError;
use crate::store::history::{History, Range, StoredCheckRow, StoredShadow};

/// Live and shadow rules on the same checks.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ShadowReport {
    /// The shadow rule sets whose results were read, with how many checks each.
    pub rule_sets: Vec<RuleSetJson>,
    /// Checks made in the period that were evaluated with shadow rules: what each rule's
    /// `flagged_*`, `gained` and `lost` count.
    pub checks_in_period: Option<usize>,
    /// Cases compared: an outcome in the period and a check before GK with shadow results.
    pub units: Option<usize>,
    pub rules: Vec<ShadowRule>,
}

/// One rule, live and shadow.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ShadowRule {
    pub rule_id: String,
    pub title: String,
    /// Checks in the period the live rules flagged.
    pub flagged_live: Option<usize>,
    /// Checks in the period the shadow rules flagged.
    pub flagged_shadow: Option<usize>,
    /// Flagged by the shadow rules and not by the live ones.
    pub gained: Option<usize>,
    /// Flagged by the live rules and not by the shadow ones.
    pub lost: Option<usize>,
    pub errors_live: Option<usize>,
    pub errors_shadow: Option<usize>,
    /// Outcomes of the cases the live rules flagged (`a`) and did not flag (`b`) at the
    /// last check before GK, all cases, as in the audit; `null` with too few cases.
    pub outcomes_live: Option<Comparison>,
    /// The same under the shadow rules.
    pub outcomes_shadow: Option<Comparison>,
}

impl ShadowReport {
    /// CSV rows: section `shadow` (counts; `current` is live, `candidate` shadow), then
    /// each rule's outcome comparison (`shadow_live`, `shadow_shadow`).
    pub fn csv_rows(&self) -> Vec<CsvRow> {
        let mut rows = Vec::new();
        for rule in &self.rules {
            rows.push(
                CsvRow::new("shadow")
                    .set("rule_id", &rule.rule_id)
                    .count("current", rule.flagged_live)
                    .count("candidate", rule.flagged_shadow)
                    .count("gained", rule.gained)
                    .count("lost", rule.lost),
            );
        }
        for rule in &self.rules {
            for (section, comparison) in [
                ("shadow_live", &rule.outcomes_live),
                ("shadow_shadow", &rule.outcomes_shadow),
            ] {
                if let Some(comparison) = comparison {
                    rows.extend(comparison_rows(
                        section,
                        &rule.rule_id,
                        SexGroup::All,
                        comparison,
                    ));
                }
            }
        }
        rows
    }
}

/// The counts as published: each count below `min_cell` hidden (zero is shown), and in
/// `flagged_shadow = flagged_live + gained − lost` never exactly one hidden.
fn protect(counts: PairCounts, min_cell: usize) -> [Option<usize>; 6] {
    let small = |n: usize| n > 0 && n < min_cell;
    let relation = [
        counts.flagged_a,
        counts.flagged_b,
        counts.gained,
        counts.lost,
    ];
    let mut hidden = relation.map(small);
    if hidden.iter().filter(|h| **h).count() == 1 {
        // Its partner: the other flagged count, or the other change.
        let partner = [1, 0, 3, 2];
        if let Some(i) = hidden.iter().position(|h| *h) {
            hidden[partner[i]] = true;
        }
    }
    let shown = |i: usize| (!hidden[i]).then_some(relation[i]);
    let errors = |n: usize| (!small(n)).then_some(n);
    [
        shown(0),
        shown(1),
        shown(2),
        shown(3),
        errors(counts.errors_a),
        errors(counts.errors_b),
    ]
}

/// Statuses over `rules` (by `index`) from stored rule ids.
fn statuses(index: &HashMap<&str, usize>, flagged: &[String], failed: &[String]) -> Vec<Status> {
    let mut statuses = vec![Status::Clear; index.len()];
    for (ids, status) in [(flagged, Status::Flagged), (failed, Status::Failed)] {
        for id in ids {
            if let Some(&i) = index.get(id.as_str()) {
                statuses[i] = status;
            }
        }
    }
    statuses
}

/// The `shadow` section for `options.period`, or `None` when no check read was
/// evaluated with shadow rules.
pub fn of_history(
    history: History<'_>,
    active: Vec<RuleInfo>,
    options: &Options,
) -> Result<Option<ShadowReport>, StoreError> {
    let range = Range {
        from: options.period.from,
        to: options.period.to,
        include_test: options.period.include_test,
    };
    if !history.has_shadow_results(range)? {
        return Ok(None);
    }
    // The active rules, then every other rule id stored (live flags, shadow results).
    let mut rules = super::data::rules_to_report(history, active)?;
    for id in history.shadow_rule_ids()? {
        if !rules.iter().any(|r| r.id == id) {
            rules.push(RuleInfo {
                title: id.clone(),
                id,
            });
        }
    }
    let index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();

    let mut counts = vec![PairCounts::default(); rules.len()];
    let (mut live, mut shadowed) = (Histories::default(), Histories::default());
    let mut shadow_sets: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_period = 0;
    history.for_each_shadow_batch(range, |batch: Vec<(StoredCheckRow, StoredShadow)>| {
        let parsed: Vec<Option<(CheckRecord, CheckRecord)>> = batch
            .par_iter()
            .map(|(check, shadow)| {
                let profile = Profile::from_stored_json(&check.profile_json).ok()?;
                let statuses_of = |flagged: &[String], failed: &[String]| {
                    CheckRecord::new(&profile, statuses(&index, flagged, failed))
                };
                Some((
                    statuses_of(&check.flagged, &check.failed),
                    statuses_of(&shadow.flagged, &shadow.failed),
                ))
            })
            .collect();
        for ((check, shadow), records) in batch.iter().zip(parsed) {
            let Some((live_record, shadow_record)) = records else {
                live.skip_unreadable();
                shadowed.skip_unreadable();
                continue;
            };
            if options.period.contains(live_record.checked_on) {
                in_period += 1;
                for (k, pair) in counts.iter_mut().enumerate() {
                    pair.add(live_record.statuses[k], shadow_record.statuses[k]);
                }
            }
            *shadow_sets.entry(shadow.rule_set_hash.clone()).or_default() += 1;
            let outcome = check.outcome.as_ref().map(OutcomeRecord::of);
            live.push(&check.case, &check.rule_set_hash, outcome, live_record);
            shadowed.push(&check.case, &shadow.rule_set_hash, outcome, shadow_record);
        }
        Ok(())
    })?;
    let live_input = live.finish(history, rules.clone(), &options.period)?;
    let shadow_input = shadowed.finish(history, rules.clone(), &options.period)?;
    // Neither audit is shown: the report reads each rule's comparison of outcomes,
    // which needs no model fitted.
    let (live_audit, shadow_audit) = rayon::join(
        || OutcomeComparisons::of(&live_input, options),
        || OutcomeComparisons::of(&shadow_input, options),
    );
    let min_cell = options.min_cell.max(1);
    let mut rule_sets = Vec::with_capacity(shadow_sets.len());
    for (hash, checks) in shadow_sets {
        let (name, version) = history.rule_set_name(&hash)?;
        rule_sets.push(RuleSetJson {
            name,
            version,
            content_hash: hash,
            checks: Some(checks),
        });
    }
    let shown = |n: usize| (n == 0 || n >= min_cell).then_some(n);
    Ok(Some(ShadowReport {
        rule_sets,
        checks_in_period: shown(in_period),
        units: live_audit.units(),
        rules: rules
            .iter()
            .zip(counts)
            .map(|(rule, pair)| {
                let [
                    flagged_live,
                    flagged_shadow,
                    gained,
                    lost,
                    errors_live,
                    errors_shadow,
                ] = protect(pair, min_cell);
                ShadowRule {
                    rule_id: rule.id.clone(),
                    title: rule.title.clone(),
                    flagged_live,
                    flagged_shadow,
                    gained,
                    lost,
                    errors_live,
                    errors_shadow,
                    outcomes_live: live_audit.flagged_vs_not(&rule.id),
                    outcomes_shadow: shadow_audit.flagged_vs_not(&rule.id),
                }
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(flagged_a: usize, flagged_b: usize, gained: usize, lost: usize) -> PairCounts {
        PairCounts {
            flagged_a,
            flagged_b,
            gained,
            lost,
            errors_a: 0,
            errors_b: 3,
        }
    }

    #[test]
    fn small_counts_are_hidden_and_never_alone_in_their_sum() {
        // Nothing small: all shown; zero is shown.
        assert_eq!(
            protect(pair(40, 30, 0, 10), 5),
            [Some(40), Some(30), Some(0), Some(10), Some(0), None]
        );
        // `gained` of 2 alone would follow from the others: `lost` goes too.
        assert_eq!(
            protect(pair(40, 32, 2, 10), 5),
            [Some(40), Some(32), None, None, Some(0), None]
        );
        // A small flagged count hides the other flagged count.
        assert_eq!(
            protect(pair(3, 13, 10, 0), 5),
            [None, None, Some(10), Some(0), Some(0), None]
        );
    }
}
