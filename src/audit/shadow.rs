//! The audit's `shadow` section: the live flags against the shadow rules' results on the
//! same stored checks (config `shadow_rules_dir`), rule by rule, the way a replay sets a
//! candidate beside the current rules ([`super::side_by_side`]).
//!
//! Only checks that were evaluated with shadow rules are read, for both sides, so the two
//! audits compare the same cases: a case counts when it has an outcome in the period and
//! a check before GK with shadow results. The rules listed are the active rules, then any
//! other rule id found in stored flags or shadow results. Counts are suppressed as in the
//! audit ([`super::suppress`]): a count below `min_cell` is `null`, and so is any count
//! that would follow from shown ones; with fewer than `min_cell` checks in the period
//! none is shown.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::data::Histories;
use super::report::comparison_rows;
use super::report::{AuditReport, Comparison, CsvRow, Measure, RuleSetJson, SexGroup};
use super::side_by_side::{OutcomeComparisons, PairCounts};
use super::suppress::{Cell, Elsewhere, Grid};
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

/// The section's counts as published.
struct Protected {
    checks_in_period: Option<usize>,
    /// Per shadow rule set, in the order given.
    rule_sets: Vec<Option<usize>>,
    /// Per rule: flagged live, flagged shadow, gained, lost, errors live, errors shadow.
    rules: Vec<[Option<usize>; 6]>,
}

/// The section's counts as published, suppressed like the audit's ([`Grid`]): a count
/// below `min_cell` is hidden (zero is shown), and so is any count that would follow from
/// shown ones. Each side of a rule ties flagged + not flagged + rule error = the checks in
/// the period (so with 7 checks and 6 flagged, the 6 is hidden: it would tell the one not
/// flagged); `flagged_live − lost = flagged_shadow − gained` (the checks both flag); the
/// rule sets' checks add up to the checks read. With fewer than `min_cell` checks in the
/// period nothing is shown, as the audit shows nothing of fewer cases: beside a hidden
/// count, a rule's zero would tell that the few checks were not flagged by it.
fn protect(
    (in_period, checks_in_audit): (usize, Elsewhere),
    rule_sets: &[usize],
    pairs: &[(PairCounts, Elsewhere)],
    min_cell: usize,
) -> Protected {
    let mut grid = Grid::new();
    let checks = grid.cell(in_period);
    grid.tie(checks, checks_in_audit);
    let sets: Vec<Cell> = rule_sets.iter().map(|&n| grid.cell(n)).collect();
    // The rule sets' checks add up to the checks read: those made in the period and the
    // units' checks made outside it (a count not shown, which the two would give).
    let read_value: usize = rule_sets.iter().sum();
    let read = grid.cell(read_value);
    grid.sum(&sets, read);
    if let Some(outside) = read_value.checked_sub(in_period) {
        let outside = grid.cell(outside);
        grid.sum(&[checks, outside], read);
    }
    let mut cells = Vec::with_capacity(pairs.len());
    for (pair, flagged_in_audit) in pairs {
        let [
            flagged_live,
            flagged_shadow,
            gained,
            lost,
            errors_live,
            errors_shadow,
        ] = [
            pair.flagged_a,
            pair.flagged_b,
            pair.gained,
            pair.lost,
            pair.errors_a,
            pair.errors_b,
        ]
        .map(|n| grid.cell(n));
        for (flagged, errors) in [(flagged_live, errors_live), (flagged_shadow, errors_shadow)] {
            let clear = in_period - grid.value(flagged) - grid.value(errors);
            let clear = grid.cell(clear);
            grid.sum(&[flagged, clear, errors], checks);
        }
        grid.tie(flagged_live, *flagged_in_audit);
        let both = grid.cell(pair.flagged_a - pair.lost);
        grid.sum(&[both, lost], flagged_live);
        grid.sum(&[both, gained], flagged_shadow);
        cells.push([
            flagged_live,
            flagged_shadow,
            gained,
            lost,
            errors_live,
            errors_shadow,
        ]);
    }
    if in_period > 0 && in_period < min_cell {
        for cell in std::iter::once(checks).chain(sets.iter().copied()) {
            grid.hide(cell);
        }
        for cell in cells.iter().flatten() {
            grid.hide(*cell);
        }
    }
    grid.suppress(min_cell);
    Protected {
        checks_in_period: grid.shown(checks),
        rule_sets: sets.iter().map(|&c| grid.shown(c)).collect(),
        rules: cells
            .iter()
            .map(|c| c.map(|cell| grid.shown(cell)))
            .collect(),
    }
}

/// Statuses over `rules` (by `index`) from stored rule ids, starting from `before` (the
/// rule set's, [`super::data::statuses_before_results`]; all clear when not given).
fn statuses(
    before: Option<&Vec<Status>>,
    index: &HashMap<&str, usize>,
    flagged: &[String],
    failed: &[String],
) -> Vec<Status> {
    let mut statuses = before.map_or_else(|| vec![Status::Clear; index.len()], Clone::clone);
    for (ids, status) in [(flagged, Status::Flagged), (failed, Status::Failed)] {
        for id in ids {
            if let Some(&i) = index.get(id.as_str()) {
                statuses[i] = status;
            }
        }
    }
    statuses
}

/// What the audit shows of the shadow rules.
pub enum ShadowSection {
    Report(ShadowReport),
    /// Some checks the audit reads have no shadow results: the section is not shown, since
    /// its figures taken from the audit's would leave those checks' cases, however few.
    Incomplete,
}

/// The `shadow` section of `audit` (the audit of `options.period`, suppressed), or `None`
/// when no check read was evaluated with shadow rules.
///
/// It is part of the same report, so it is shown only when it covers the audit's cases
/// exactly (every check read has shadow results), its counts on the live side are tied to
/// the audit's (hidden where the audit hides them, never taken as a complement where it
/// shows them), the live rules' comparison of outcomes is the audit's own, and the
/// comparison under the shadow rules is shown only when the cases whose flag the shadow
/// rules change are none or enough on each side, with each outcome among them as the audit
/// would show a share: the two comparisons differ by those cases alone.
pub fn of_history(
    history: History<'_>,
    active: Vec<RuleInfo>,
    options: &Options,
    audit: &AuditReport,
) -> Result<Option<ShadowSection>, StoreError> {
    let range = Range {
        from: options.period.from,
        to: options.period.to,
        include_test: options.period.include_test,
    };
    if !history.has_shadow_results(range)? {
        return Ok(None);
    }
    if history.checks_without_shadow_results(range)? > 0 {
        return Ok(Some(ShadowSection::Incomplete));
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
    // Each rule set's statuses before results, read once per set.
    let mut before: HashMap<String, Vec<Status>> = HashMap::new();
    history.for_each_shadow_batch(range, |batch: Vec<(StoredCheckRow, StoredShadow)>| {
        for (check, shadow) in &batch {
            for hash in [&check.rule_set_hash, &shadow.rule_set_hash] {
                super::data::read_statuses_before_results(&mut before, history, &rules, hash)?;
            }
        }
        let parsed: Vec<Option<(CheckRecord, CheckRecord)>> = batch
            .par_iter()
            .map(|(check, shadow)| {
                let profile = Profile::from_stored_json(&check.profile_json).ok()?;
                let statuses_of = |hash: &str, flagged: &[String], failed: &[String]| {
                    let before = before.get(hash);
                    CheckRecord::new(&profile, statuses(before, &index, flagged, failed))
                };
                Some((
                    statuses_of(&check.rule_set_hash, &check.flagged, &check.failed),
                    statuses_of(&shadow.rule_set_hash, &shadow.flagged, &shadow.failed),
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
    let min_cell = options.min_cell.max(1);
    let changes_shown = changes_may_show(&live_input, &shadow_input, options, min_cell);
    // Not shown: the report reads each rule's comparison of outcomes, which needs no
    // model fitted.
    let shadow_audit = OutcomeComparisons::of(&shadow_input, options);
    let in_audit = |rule_id: &str| {
        audit
            .rules
            .iter()
            .find(|rule| rule.rule_id == rule_id)
            .map(|rule| rule.flagged_checks.all)
    };
    let pairs: Vec<(PairCounts, Elsewhere)> = rules
        .iter()
        .zip(counts)
        .map(|(rule, pair)| (pair, Elsewhere::of(in_audit(&rule.id), pair.flagged_a)))
        .collect();
    let published = protect(
        (
            in_period,
            Elsewhere::of(Some(audit.checks_in_period.all), in_period),
        ),
        &shadow_sets.values().copied().collect::<Vec<_>>(),
        &pairs,
        min_cell,
    );
    let mut rule_sets = Vec::with_capacity(shadow_sets.len());
    for (hash, checks) in shadow_sets.into_keys().zip(published.rule_sets) {
        let (name, version) = history.rule_set_name(&hash)?;
        rule_sets.push(RuleSetJson {
            name,
            version,
            content_hash: hash,
            checks,
        });
    }
    Ok(Some(ShadowSection::Report(ShadowReport {
        rule_sets,
        checks_in_period: published.checks_in_period,
        units: audit.units.all,
        rules: rules
            .iter()
            .enumerate()
            .zip(published.rules)
            .map(|((k, rule), counts)| {
                let [
                    flagged_live,
                    flagged_shadow,
                    gained,
                    lost,
                    errors_live,
                    errors_shadow,
                ] = counts;
                ShadowRule {
                    rule_id: rule.id.clone(),
                    title: rule.title.clone(),
                    flagged_live,
                    flagged_shadow,
                    gained,
                    lost,
                    errors_live,
                    errors_shadow,
                    outcomes_live: super::side_by_side::flagged_vs_not(audit, &rule.id),
                    outcomes_shadow: changes_shown.get(k).copied().flatten().and_then(|shown| {
                        Some(only_shown(shadow_audit.flagged_vs_not(&rule.id)?, shown))
                    }),
                }
            })
            .collect(),
    })))
}

/// What of the comparison of outcomes under the shadow rules may be shown beside the
/// audit's: the two differ by the cases (units) whose status at the last check before GK
/// the shadow rules change (flagged, not flagged, rule error: gained, lost, or moved
/// between not flagged and a rule error). The comparison is shown when each group of a
/// change is empty or has at least `min_cell` cases, and an outcome's shares only when,
/// in each group, the cases with it and those without are none or at least `min_cell`,
/// as the audit shows a share. Per rule, `None` when nothing may be shown.
fn changes_may_show(
    live: &super::AuditInput,
    shadow: &super::AuditInput,
    options: &Options,
    min_cell: usize,
) -> Vec<Option<[bool; 3]>> {
    let (live_units, shadow_units) = (
        super::units::build(live, &options.period).units,
        super::units::build(shadow, &options.period).units,
    );
    let rule_count = live.rules.len();
    if live_units.len() != shadow_units.len() {
        return vec![None; rule_count];
    }
    let enough = |n: usize| n == 0 || n >= min_cell;
    (0..rule_count)
        .map(|k| {
            // The changed cases by (live status, shadow status).
            let mut changes: BTreeMap<(u8, u8), Vec<&OutcomeRecord>> = BTreeMap::new();
            let code = |status: Status| match status {
                Status::Flagged => 0,
                Status::Clear => 1,
                Status::Failed => 2,
                Status::NotInSet => 3,
            };
            for (live, shadow) in live_units.iter().zip(&shadow_units) {
                let (from, to) = (live.rules[k].last, shadow.rules[k].last);
                if from != to {
                    changes
                        .entry((code(from), code(to)))
                        .or_default()
                        .push(&live.outcome);
                }
            }
            changes.values().all(|group| enough(group.len())).then(|| {
                Measure::ALL.map(|measure| {
                    changes.values().all(|group| {
                        let with = group.iter().filter(|o| measure.of(o)).count();
                        enough(with) && enough(group.len() - with)
                    })
                })
            })
        })
        .collect()
}

/// `comparison` with the shares of the outcomes `shown` does not allow left out.
fn only_shown(mut comparison: Comparison, shown: [bool; 3]) -> Comparison {
    for outcome in &mut comparison.outcomes {
        let allowed = Measure::ALL
            .iter()
            .zip(shown)
            .any(|(measure, ok)| *measure == outcome.outcome && ok);
        if !allowed {
            outcome.share_a_pct = None;
            outcome.share_b_pct = None;
            outcome.diff_pp = None;
            outcome.ci_low_pp = None;
            outcome.ci_high_pp = None;
            outcome.p_value = None;
        }
    }
    comparison
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
            errors_b: 0,
        }
    }

    /// `pairs` apart from the audit's counts.
    fn apart(pairs: &[PairCounts]) -> Vec<(PairCounts, Elsewhere)> {
        pairs.iter().map(|p| (*p, Elsewhere::Apart)).collect()
    }

    fn rules(in_period: usize, pairs: &[PairCounts]) -> Vec<[Option<usize>; 6]> {
        protect(
            (in_period, Elsewhere::Apart),
            &[in_period],
            &apart(pairs),
            5,
        )
        .rules
    }

    #[test]
    fn small_counts_are_hidden_and_never_alone_in_their_sum() {
        // Nothing small: all shown; zero is shown.
        assert_eq!(
            rules(100, &[pair(40, 30, 0, 10)]),
            [[Some(40), Some(30), Some(0), Some(10), Some(0), Some(0)]]
        );
        // A few rule errors hide the smaller of the side's other counts.
        let errors = PairCounts {
            errors_b: 3,
            ..pair(40, 30, 0, 10)
        };
        let [counts] = rules(100, &[errors])[..] else {
            panic!("one rule")
        };
        assert_eq!(counts[5], None);
        assert_eq!(counts[1], None, "{counts:?}");
        // `gained` of 2 alone would follow from the others: more goes with it.
        let [counts] = rules(100, &[pair(40, 32, 2, 10)])[..] else {
            panic!("one rule")
        };
        assert_eq!(counts[2], None);
        assert!(
            counts[..4].iter().filter(|c| c.is_none()).count() >= 2,
            "{counts:?}"
        );
        // A small flagged count hides another count of its relations.
        let [counts] = rules(100, &[pair(3, 13, 10, 0)])[..] else {
            panic!("one rule")
        };
        assert_eq!(counts[0], None);
        assert!(
            counts[..4].iter().filter(|c| c.is_none()).count() >= 2,
            "{counts:?}"
        );
    }

    #[test]
    fn the_one_check_a_rule_did_not_flag_is_protected_like_the_one_it_flagged() {
        // 7 checks, 6 flagged live: the 6 would tell the one check not flagged.
        let [counts] = rules(7, &[pair(6, 6, 0, 0)])[..] else {
            panic!("one rule")
        };
        assert_eq!(counts[0], None, "{counts:?}");
        assert_eq!(counts[1], None, "{counts:?}");
    }

    #[test]
    fn with_fewer_checks_than_min_cell_nothing_is_shown() {
        let published = protect(
            (1, Elsewhere::Apart),
            &[1],
            &apart(&[pair(1, 0, 0, 1), PairCounts::default()]),
            5,
        );
        assert_eq!(published.checks_in_period, None);
        assert_eq!(published.rule_sets, [None]);
        for counts in published.rules {
            assert_eq!(counts, [None; 6], "a zero beside a hidden count tells");
        }
        // No check in the period (30 read, of cases with outcomes): the zeros are shown.
        let none = protect(
            (0, Elsewhere::Apart),
            &[30],
            &apart(&[PairCounts::default()]),
            5,
        );
        assert_eq!(none.checks_in_period, Some(0));
        assert_eq!(none.rules, [[Some(0); 6]]);
        // A rule set's few checks are hidden beside another's many.
        let sets = protect((40, Elsewhere::Apart), &[38, 2], &[], 5);
        assert_eq!(sets.rule_sets, [None, None]);
    }

    #[test]
    fn the_live_counts_stand_as_the_audit_shows_them() {
        // The audit hides the live rules' 40 (a complement there): hidden here too, with
        // what would give it away.
        let [counts] = protect(
            (100, Elsewhere::Shown),
            &[100],
            &[(pair(40, 30, 0, 10), Elsewhere::Hidden)],
            5,
        )
        .rules[..] else {
            panic!("one rule")
        };
        assert_eq!(counts[0], None);
        assert!(counts[1..4].iter().any(Option::is_none), "{counts:?}");
        // The audit shows the 40 and the 100: a small `gained` is hidden with another
        // count, never with them.
        let published = protect(
            (100, Elsewhere::Shown),
            &[100],
            &[(pair(40, 32, 2, 10), Elsewhere::Shown)],
            5,
        );
        assert_eq!(published.checks_in_period, Some(100));
        let [counts] = published.rules[..] else {
            panic!("one rule")
        };
        assert_eq!(counts[0], Some(40));
        assert_eq!(counts[2], None);
        assert!(counts[1].is_none() || counts[3].is_none(), "{counts:?}");
    }

    /// Two cases with a rule error under the shadow rules and none live leave the
    /// comparison's not-flagged group: its outcomes under the two would differ by theirs.
    #[test]
    fn cases_moved_between_not_flagged_and_a_rule_error_count_as_changed() {
        use crate::audit::{AuditInput, CaseHistory, CheckRecord, RuleInfo};
        use crate::profile::{Date, Stage};
        let date = |text: &str| Date::parse(text).expect("date");
        let input = |failed: usize| AuditInput {
            rules: vec![RuleInfo {
                id: "regel".into(),
                title: "Regel".into(),
            }],
            rule_sets: vec![],
            cases: (0..30)
                .map(|i| CaseHistory {
                    outcome: Some(OutcomeRecord {
                        ended_on: date("2024-06-01"),
                        left_insurance: i % 2 == 0,
                        work_or_studies: i % 2 == 1,
                        worsened_health: false,
                    }),
                    checks: vec![CheckRecord {
                        stage: Stage::BeforeGk,
                        checked_on: date("2024-03-20"),
                        first_meeting_on: None,
                        covariates: Default::default(),
                        statuses: vec![if i < failed {
                            Status::Failed
                        } else {
                            Status::Clear
                        }],
                    }],
                    test: false,
                })
                .collect(),
            unreadable_checks: 0,
        };
        let options = Options::default();
        assert_eq!(
            changes_may_show(&input(0), &input(0), &options, 5),
            [Some([true; 3])]
        );
        assert_eq!(changes_may_show(&input(0), &input(2), &options, 5), [None]);
    }
}
