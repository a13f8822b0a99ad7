//! Two rule sets' results on the same checks, rule by rule: how often each flagged, what
//! one gains and loses against the other, and each one's flagged-versus-not outcome
//! comparison as its own audit computed it (small cells already suppressed there).
//! The replay (current against candidate) and the audit's `shadow` section (live against
//! shadow) both report this way.

use super::analysis::{self, Model};
use super::report::{AuditReport, Comparison, SexGroup};
use super::{AuditInput, Options, Status};

/// One rule's flag counts over the same checks under two rule sets, `a` and `b`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairCounts {
    pub flagged_a: usize,
    pub flagged_b: usize,
    /// Flagged under `b` and not under `a`.
    pub gained: usize,
    /// Flagged under `a` and not under `b`.
    pub lost: usize,
    pub errors_a: usize,
    pub errors_b: usize,
}

impl PairCounts {
    /// Adds one check on which the rule gave `a` under one set and `b` under the other.
    pub fn add(&mut self, a: Status, b: Status) {
        let (was, is) = (a == Status::Flagged, b == Status::Flagged);
        self.flagged_a += usize::from(was);
        self.flagged_b += usize::from(is);
        self.gained += usize::from(is && !was);
        self.lost += usize::from(was && !is);
        self.errors_a += usize::from(a == Status::Failed);
        self.errors_b += usize::from(b == Status::Failed);
    }
}

/// The flagged-versus-not comparison of `rule_id` for all cases in `audit`: `n_a` and
/// the `share_a_pct`s are the flagged cases, `n_b` and the `share_b_pct`s the others.
/// `None` when the audit has no such rule (not in that set, or too few cases).
pub fn flagged_vs_not(audit: &AuditReport, rule_id: &str) -> Option<Comparison> {
    audit
        .rules
        .iter()
        .find(|r| r.rule_id == rule_id)?
        .groups
        .iter()
        .find(|g| g.sex == SexGroup::All)
        .map(|g| g.flagged_vs_not_flagged.clone())
}

/// What the side-by-side reports read of one rule set's audit: each rule's
/// flagged-versus-not comparison and the number of cases, as the audit of the same input
/// and options publishes them (small cells hidden the same way). Computed without
/// fitting the adjusted models, on which neither depends: for a rule set whose audit is
/// not itself shown.
pub struct OutcomeComparisons(AuditReport);

impl OutcomeComparisons {
    pub fn of(input: &AuditInput, options: &Options) -> Self {
        Self(analysis::run(input, options, Model::CountsOnly))
    }

    /// As [`flagged_vs_not`] of the audit.
    pub fn flagged_vs_not(&self, rule_id: &str) -> Option<Comparison> {
        flagged_vs_not(&self.0, rule_id)
    }

    /// The number of cases (all), as the audit shows it.
    pub fn units(&self) -> Option<usize> {
        self.0.units.get(SexGroup::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{Clear as C, Failed as E, Flagged as F};

    #[test]
    fn gained_and_lost_count_changes_in_each_direction() {
        let mut counts = PairCounts::default();
        for (a, b) in [(F, F), (F, C), (C, F), (C, F), (E, F), (F, E), (C, C)] {
            counts.add(a, b);
        }
        assert_eq!(
            counts,
            PairCounts {
                flagged_a: 3,
                flagged_b: 4,
                gained: 3,
                lost: 2,
                errors_a: 1,
                errors_b: 1,
            }
        );
    }
}
