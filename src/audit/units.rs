//! From case histories to audit units (docs/audit.md).
//!
//! A unit is a case with an outcome in the period. Its flags are those of its *last*
//! check before GK: stage `before_gk`, made on or before the first GK meeting when that
//! date is known. The date is taken from the newest check that gives one (a planned
//! meeting may have moved; the newest profile knows best). A flag raised at an earlier
//! check before GK and gone at the last one is *resolved*. A case with no check before
//! GK has no unit: there is nothing to compare.

use super::{AuditInput, CaseHistory, CheckRecord, Covariates, OutcomeRecord, Period, Status};
use crate::profile::Stage;

/// One rule's (or "any flag"'s) part of a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitRule {
    /// At the last check before GK.
    pub last: Status,
    /// Flagged at any check before GK, the last included.
    pub ever: bool,
}

impl UnitRule {
    /// Flagged before GK and no longer at the last check.
    pub fn resolved(self) -> bool {
        self.ever && self.last == Status::Clear
    }
}

/// One case in the audit.
pub struct Unit<'a> {
    pub covariates: &'a Covariates,
    pub outcome: OutcomeRecord,
    /// One entry per rule of the input, then "any flag" last.
    pub rules: Vec<UnitRule>,
}

/// The units of a period and the cases that could not be units.
pub struct Units<'a> {
    pub units: Vec<Unit<'a>>,
    /// Cases with an outcome in the period but no check before GK.
    pub without_check: usize,
}

/// Builds the units of `period` from `input`.
pub fn build<'a>(input: &'a AuditInput, period: &Period) -> Units<'a> {
    let rule_count = input.rules.len();
    let mut units = Vec::new();
    let mut without_check = 0;
    for case in &input.cases {
        let Some(outcome) = case.outcome.filter(|o| period.contains(o.ended_on)) else {
            continue;
        };
        match unit_of(case, outcome, rule_count) {
            Some(unit) => units.push(unit),
            None => without_check += 1,
        }
    }
    Units {
        units,
        without_check,
    }
}

/// The checks of `case` made before GK, oldest first.
pub fn checks_before_gk(case: &CaseHistory) -> impl Iterator<Item = &CheckRecord> {
    let gk_date = case.checks.iter().rev().find_map(|c| c.first_meeting_on);
    case.checks.iter().filter(move |check| {
        check.stage == Stage::BeforeGk && gk_date.is_none_or(|date| check.checked_on <= date)
    })
}

fn unit_of(case: &CaseHistory, outcome: OutcomeRecord, rule_count: usize) -> Option<Unit<'_>> {
    let mut rules = vec![
        UnitRule {
            last: Status::Clear,
            ever: false,
        };
        rule_count + 1
    ];
    let mut last = None;
    for check in checks_before_gk(case) {
        for (entry, status) in rules.iter_mut().zip(&check.statuses) {
            entry.ever |= *status == Status::Flagged;
        }
        rules[rule_count].ever |= check.statuses.contains(&Status::Flagged);
        last = Some(check);
    }
    let last = last?;
    for (entry, status) in rules.iter_mut().zip(&last.statuses) {
        entry.last = *status;
    }
    rules[rule_count].last = any_status(&last.statuses);
    Some(Unit {
        covariates: &last.covariates,
        outcome,
        rules,
    })
}

/// "Any flag" at one check: flagged if any rule flagged; otherwise not known if any
/// rule failed; otherwise clear.
pub fn any_status(statuses: &[Status]) -> Status {
    if statuses.contains(&Status::Flagged) {
        Status::Flagged
    } else if statuses.contains(&Status::Failed) {
        Status::Failed
    } else {
        Status::Clear
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Covariates, RuleInfo};
    use crate::profile::Date;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("date")
    }

    fn check(stage: Stage, on: &str, meeting: Option<&str>, statuses: &[Status]) -> CheckRecord {
        CheckRecord {
            stage,
            checked_on: date(on),
            first_meeting_on: meeting.map(date),
            covariates: Covariates::default(),
            statuses: statuses.to_vec(),
        }
    }

    fn outcome(on: &str) -> OutcomeRecord {
        OutcomeRecord {
            ended_on: date(on),
            left_insurance: true,
            work_or_studies: false,
            worsened_health: false,
        }
    }

    fn input(cases: Vec<CaseHistory>) -> AuditInput {
        AuditInput {
            rules: vec![
                RuleInfo {
                    id: "a".into(),
                    title: "A".into(),
                },
                RuleInfo {
                    id: "b".into(),
                    title: "B".into(),
                },
            ],
            rule_sets: vec![],
            cases,
            unreadable_checks: 0,
        }
    }

    use Status::{Clear as C, Failed as E, Flagged as F};

    #[test]
    fn last_check_before_gk_decides_and_earlier_flags_are_resolved() {
        let case = CaseHistory {
            outcome: Some(outcome("2024-06-01")),
            checks: vec![
                check(Stage::BeforeGk, "2024-01-01", None, &[F, F]),
                check(Stage::BeforeGk, "2024-02-01", Some("2024-03-01"), &[C, F]),
                // After the first GK meeting: not a check before GK.
                check(Stage::BeforeGk, "2024-03-05", Some("2024-03-01"), &[F, C]),
                check(Stage::GkClosing, "2024-04-01", Some("2024-03-01"), &[F, F]),
            ],
            test: false,
        };
        let input = input(vec![case]);
        let units = build(&input, &Period::default());
        assert_eq!(units.units.len(), 1);
        let unit = &units.units[0];
        assert_eq!(
            unit.rules[0],
            UnitRule {
                last: C,
                ever: true
            }
        );
        assert!(unit.rules[0].resolved());
        assert_eq!(
            unit.rules[1],
            UnitRule {
                last: F,
                ever: true
            }
        );
        assert!(!unit.rules[1].resolved());
        assert_eq!(
            unit.rules[2],
            UnitRule {
                last: F,
                ever: true
            }
        );
    }

    #[test]
    fn the_newest_meeting_date_counts() {
        // The first check planned GK for 2024-02-10; it moved to 2024-01-20.
        let case = CaseHistory {
            outcome: Some(outcome("2024-06-01")),
            checks: vec![
                check(Stage::BeforeGk, "2024-01-10", Some("2024-02-10"), &[F, C]),
                check(Stage::BeforeGk, "2024-01-25", Some("2024-01-20"), &[C, C]),
            ],
            test: false,
        };
        let input = input(vec![case]);
        let units = build(&input, &Period::default());
        assert_eq!(
            units.units[0].rules[0],
            UnitRule {
                last: F,
                ever: true
            }
        );
    }

    #[test]
    fn period_selects_by_outcome_date_and_cases_without_checks_are_counted() {
        let cases = vec![
            CaseHistory {
                outcome: Some(outcome("2024-06-01")),
                checks: vec![check(Stage::GkClosing, "2024-01-01", None, &[F, F])],
                test: false,
            },
            CaseHistory {
                outcome: Some(outcome("2023-06-01")),
                checks: vec![check(Stage::BeforeGk, "2023-01-01", None, &[F, F])],
                test: false,
            },
            CaseHistory {
                outcome: None,
                checks: vec![check(Stage::BeforeGk, "2024-01-01", None, &[F, F])],
                test: false,
            },
        ];
        let input = input(cases);
        let period = Period::new(Some(date("2024-01-01")), None).expect("period");
        let units = build(&input, &period);
        assert_eq!(units.units.len(), 0);
        assert_eq!(units.without_check, 1);
    }

    #[test]
    fn any_flag_is_unknown_only_when_nothing_flagged_and_something_failed() {
        assert_eq!(any_status(&[C, F, E]), F);
        assert_eq!(any_status(&[C, E]), E);
        assert_eq!(any_status(&[C, C]), C);
        assert_eq!(any_status(&[]), C);
    }
}
