//! The flag-versus-outcome audit (docs/audit.md) and the what-if replay of rule changes.
//!
//! Policy staff ask of each rule: do flagged cases end worse than unflagged ones, and
//! does resolving a flag before GK go with better outcomes? The audit answers the way
//! SFR 2018:11 does (tabell 2, 20, 24), for women, men and all.
//!
//! | module | what |
//! |---|---|
//! | [`data`] | the only I/O: reads stored checks and outcomes from SQLite into [`CaseHistory`]s |
//! | [`units`] | one unit per case with an outcome in the period: its last check before GK, its resolved flags |
//! | [`analysis`] | per rule and sex: shares, differences, z-tests, the adjusted model, alert burden |
//! | [`stats`] | the statistics: two-proportion z-test, OLS with HC1 robust standard errors |
//! | [`suppress`] | small-cell suppression of counts, with complementary suppression |
//! | [`summary`] | the summary first: one row per rule, read off the detailed tables, strongest evidence first |
//! | [`compare`] | two periods compared: changes in flag rate and in the flagged-vs-not difference |
//! | [`xlsx`] | the report as an Excel workbook, a sheet per section |
//! | [`report`] | the result ([`report::AuditReport`]) and its JSON and CSV forms |
//! | [`html`] | the self-contained HTML page (template `audit.html`) |
//! | [`replay`] | re-evaluating stored profiles with a candidate rule set |
//! | [`responses`] | what officers answered to the flags: answered, ignored, resolved, alert burden per officer |
//! | [`shadow`] | the audit's `shadow` section: live flags against the shadow rules' results |
//! | [`side_by_side`] | two rule sets on the same checks, rule by rule: flagged, gained, lost, outcome shares |
//!
//! Invariants: the audit stores nothing; it never sees a case id (stored profiles carry
//! the pseudonym); every count below `min_cell`, every count that would give a hidden
//! one away, and every share or estimate resting on a hidden count or on fewer than
//! `min_cell` cases is suppressed in every output; a period with fewer cases than
//! `min_cell` gives a note only; what the audit lists grows with the data, never with
//! the span of dates; statistics that cannot be computed are `None`, never NaN.

pub mod analysis;
pub mod compare;
pub mod data;
pub mod html;
pub mod replay;
pub mod report;
pub mod responses;
pub mod shadow;
pub mod side_by_side;
pub mod stats;
pub mod summary;
pub mod suppress;
pub mod units;
pub mod xlsx;

use crate::outcome::Outcome;
pub use crate::profile::Covariates;
use crate::profile::{Date, Profile, Stage};

/// The default small-cell threshold: fewer cases than this and nothing is shown. Also
/// the default of the configured floor (`audit_min_cell_floor`).
pub const DEFAULT_MIN_CELL: usize = 5;

/// The threshold an audit runs with: `requested` (by a request or `--min-cell`), or
/// the default, never below `floor`. `Err(floor)` for a request below the floor.
pub fn min_cell_within(requested: Option<usize>, floor: usize) -> Result<usize, usize> {
    let floor = floor.max(1);
    match requested {
        None => Ok(DEFAULT_MIN_CELL.max(floor)),
        Some(n) if n < floor => Err(floor),
        Some(n) => Ok(n),
    }
}

/// The id under which "any rule flagged" is reported beside the rules.
pub const ANY_FLAG_ID: &str = "nagon_flagga";

/// A closed date range; either end may be open. Units are selected by `ended_on`,
/// alert burden by `checked_on`. Checks made with a test-purpose token are read only
/// with `include_test`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Period {
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// Read test checks as well (left out by default, and counted).
    pub include_test: bool,
}

impl Period {
    pub fn contains(&self, date: Date) -> bool {
        self.from.is_none_or(|from| from <= date) && self.to.is_none_or(|to| date <= to)
    }

    /// The day a report of this period titles its rules as on: its last day, or today
    /// when it ends later or is open.
    pub fn titled_on(&self) -> Date {
        let today = Date::today();
        self.to.map_or(today, |to| to.min(today))
    }

    /// Refuses a period that ends before it starts.
    pub fn new(from: Option<Date>, to: Option<Date>) -> Result<Self, String> {
        match (from, to) {
            (Some(from), Some(to)) if to < from => {
                Err("perioden slutar före den börjar (--to är tidigare än --from)".to_owned())
            }
            _ => Ok(Self {
                from,
                to,
                include_test: false,
            }),
        }
    }
}

impl Options {
    /// What was asked for, as the access log keeps it: `from=2024-01-01 to=2024-06-30
    /// compare_from=… compare_to=… include_test=false min_cell=5` (an open end is `-`).
    pub fn describe(&self) -> String {
        let day = |date: Option<Date>| date.map_or_else(|| "-".to_owned(), |d| d.to_string());
        let mut text = format!("from={} to={}", day(self.period.from), day(self.period.to));
        if let Some(compare) = &self.compare {
            text.push_str(&format!(
                " compare_from={} compare_to={}",
                day(compare.from),
                day(compare.to)
            ));
        }
        text.push_str(&format!(
            " include_test={} min_cell={}",
            self.period.include_test, self.min_cell
        ));
        text
    }
}

/// What the audit is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub period: Period,
    /// Shares and estimates resting on fewer cases than this are suppressed (≥ 1).
    pub min_cell: usize,
    /// A second period to compare `period` with ([`compare`]); its test checks are read
    /// as `period`'s are.
    pub compare: Option<Period>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            period: Period::default(),
            min_cell: DEFAULT_MIN_CELL,
            compare: None,
        }
    }
}

/// A rule as the audit lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
}

impl RuleInfo {
    /// The rules of a rule set, in manifest order, titled as on `day` (a title may name a
    /// parameter whose value changes on a date).
    pub fn of(rules: &crate::ruleset::RuleSet, day: Date) -> Vec<Self> {
        rules
            .rules
            .iter()
            .map(|r| Self {
                id: r.meta.id.to_string(),
                title: r.meta.title_on(day).into_owned(),
            })
            .collect()
    }
}

/// What one rule gave at one check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    /// Ran without flagging, or did not apply (disabled, not in force).
    #[default]
    Clear,
    Flagged,
    /// Failed at run time: whether it would have flagged is not known.
    Failed,
    /// Not in the rule set that made the check (added after it, or removed before):
    /// whether it would have flagged is not known either, but it is no rule error.
    NotInSet,
}

/// One stored check, reduced to what the audit needs.
pub struct CheckRecord {
    pub stage: Stage,
    pub checked_on: Date,
    pub first_meeting_on: Option<Date>,
    pub covariates: Covariates,
    /// One status per rule of [`AuditInput::rules`], in that order.
    pub statuses: Vec<Status>,
}

impl CheckRecord {
    pub fn new(profile: &Profile, statuses: Vec<Status>) -> Self {
        Self {
            stage: profile.stage,
            checked_on: profile.checked_on,
            first_meeting_on: profile.gk.first_meeting_on.value().copied(),
            covariates: Covariates::of(profile),
            statuses,
        }
    }
}

/// How a case's participation ended, with the derived outcomes of docs/profile.md.
#[derive(Clone, Copy)]
pub struct OutcomeRecord {
    pub ended_on: Date,
    pub left_insurance: bool,
    pub work_or_studies: bool,
    pub worsened_health: bool,
}

impl OutcomeRecord {
    pub fn of(outcome: &Outcome) -> Self {
        Self {
            ended_on: outcome.ended_on,
            left_insurance: outcome.outcome == crate::outcome::OutcomeKind::LeftInsurance,
            work_or_studies: outcome.work_or_studies(),
            worsened_health: outcome.worsened_health(),
        }
    }
}

/// Every check of one case, oldest first (by `checked_on`, then storage order), and
/// its outcome if one is recorded.
pub struct CaseHistory {
    pub outcome: Option<OutcomeRecord>,
    pub checks: Vec<CheckRecord>,
    /// Made with a test-purpose token (read only when the period includes test checks):
    /// a case of its own, never with an outcome.
    pub test: bool,
}

/// A rule set that produced stored checks, and how many of the checks read.
#[derive(Clone, Debug)]
pub struct RuleSetUse {
    pub name: String,
    pub version: String,
    pub content_hash: String,
    pub checks: usize,
    /// How many of `checks` were made with a test-purpose token.
    pub test_checks: usize,
}

/// Everything the audit computes from.
pub struct AuditInput {
    pub rules: Vec<RuleInfo>,
    pub rule_sets: Vec<RuleSetUse>,
    pub cases: Vec<CaseHistory>,
    /// Stored checks whose profile could not be read back (left out).
    pub unreadable_checks: usize,
}

/// Runs the audit on `input`, its summary read off its detailed tables. Pure: no I/O,
/// deterministic.
pub fn audit(input: &AuditInput, options: &Options) -> report::AuditReport {
    let mut report = analysis::run(input, options, analysis::Model::Estimate);
    report.summary = summary::of(&report);
    report
}

/// The note of a report with test checks, which leaves out the sections that count
/// answers and shadow results.
pub const WITHOUT_ANSWERS_AND_SHADOW_WITH_TESTS: &str = "Handläggarnas svar på flaggorna och skuggreglerna visas inte när testkontroller tas med. Ta fram rapporten utan testkontroller för att se dem.";

/// The audit of what `store` holds for `options.period`, reported against the rules of
/// `active` (plus any rule found only in stored flags), computed on a reader connection
/// off the async threads. The CLI, the API and the web pages all audit this way.
pub async fn of_store(
    store: &crate::store::Store,
    active: &crate::ruleset::RuleSet,
    options: Options,
) -> Result<report::AuditReport, crate::store::StoreError> {
    let rules = RuleInfo::of(active, options.period.titled_on());
    store
        .read_history(move |history| {
            // A report with test checks has neither the officers' answers nor the shadow
            // rules: each suppresses counts by a grid of its own, tied to the audit's
            // counts, which test checks then change; whoever made the test checks could
            // take them off and read what those sections hide.
            let with_tests = options.period.include_test;
            let mut report = if with_tests {
                data::stored_audit(history, rules.clone(), &options)?
            } else {
                data::stored_audit_with_responses(history, rules.clone(), &options)?
            };
            // The summary reads the answers too: read it again now they are there.
            report.summary = summary::of(&report);
            if with_tests {
                report.notes.push(WITHOUT_ANSWERS_AND_SHADOW_WITH_TESTS.to_owned());
            } else if report.units.all.is_some() {
                // A period too small to show anything shows no shadow comparison either.
                match shadow::of_history(history, rules.clone(), &options, &report)? {
                    Some(shadow::ShadowSection::Report(shadow)) => report.shadow = Some(shadow),
                    Some(shadow::ShadowSection::Incomplete) => report.notes.push(
                        "Skuggreglerna visas inte: några kontroller i perioden gjordes utan skuggregler (före skuggreglerna eller importerade utan dem). Välj en period där alla kontroller har skuggresultat.".to_owned(),
                    ),
                    None => {}
                }
            } else if history.has_shadow_results(data::range(&options.period))? {
                report.notes.push(
                    "Skuggreglerna visas inte: perioden visar inga resultat, och då inte skuggreglernas heller.".to_owned(),
                );
            }
            if let Some(period) = options.compare {
                let other = Options {
                    period: Period {
                        include_test: options.period.include_test,
                        ..period
                    },
                    compare: None,
                    ..options
                };
                let other = data::stored_audit(history, rules, &other)?;
                report.comparison = Some(compare::of(&report, &other));
            }
            Ok(report)
        })
        .await
}
