//! The JSON that programs outside the crate see: written on purpose, kept apart from
//! the engine's internal types. `check --json` and the HTTP API both speak it.

use serde::Serialize;

use crate::engine::{Evaluation, FailureKind, NotApplicable, RuleOutcome};
use crate::profile::{Profile, Stage};
use crate::ruleset::{Grounds, Problem, RuleSet, Severity};

/// Which rule set produced a result: name, version and content hash.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetRef {
    pub name: String,
    pub version: String,
    /// SHA-256 over the manifest and every script: names the exact rule text.
    pub content_hash: String,
    /// The first 12 characters of `content_hash`, as shown to people beside name and
    /// version.
    pub short_hash: String,
}

impl RuleSetRef {
    pub fn new(name: String, version: String, content_hash: String) -> Self {
        Self {
            short_hash: content_hash.get(..12).unwrap_or(&content_hash).to_owned(),
            name,
            version,
            content_hash,
        }
    }

    pub fn of(rules: &RuleSet) -> Self {
        Self::new(
            rules.name.clone(),
            rules.version.clone(),
            rules.content_hash.clone(),
        )
    }

    /// The first 12 characters of the content hash, as shown to people.
    pub fn short_hash(&self) -> &str {
        &self.short_hash
    }
}

/// One raised flag with everything the officer needs to act on it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FlagJson {
    pub rule_id: String,
    // `info`, `warning` or `critical`.
    #[schema(value_type = String)]
    pub severity: Severity,
    pub title: String,
    pub message: String,
    // `empirical`, `policy` or `legal`.
    #[schema(value_type = Vec<String>)]
    pub grounds: Vec<Grounds>,
    pub rationale: String,
    pub sources: Vec<String>,
}

/// A rule that failed at run time: reported, never read as "no flag".
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RuleErrorJson {
    pub rule_id: String,
    #[schema(value_type = String)]
    pub kind: FailureKind,
    pub message: String,
    pub script: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// A rule that did not run for this profile, and why.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct NotApplicableJson {
    pub rule_id: String,
    /// `disabled` or `not_in_force`.
    #[schema(value_type = String)]
    pub reason: NotApplicable,
}

/// The result of checking one profile.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EvaluationReport {
    pub ruleset: RuleSetRef,
    #[schema(value_type = String)]
    pub stage: Stage,
    pub checked_on: String,
    /// Most severe first.
    pub flags: Vec<FlagJson>,
    pub errors: Vec<RuleErrorJson>,
    pub not_applicable: Vec<NotApplicableJson>,
}

impl EvaluationReport {
    pub fn new(rules: &RuleSet, profile: &Profile, evaluation: &Evaluation) -> Self {
        let flags = rules
            .flags(evaluation, profile)
            .into_iter()
            .map(|flag| FlagJson {
                rule_id: flag.rule.id.to_string(),
                severity: flag.severity,
                title: flag.title.into_owned(),
                message: flag.message.into_owned(),
                grounds: flag.rule.grounds.clone(),
                rationale: flag.rule.rationale.clone(),
                sources: flag.rule.sources.clone(),
            })
            .collect();
        let errors = rules
            .failures(evaluation)
            .map(|(rule, failure)| RuleErrorJson {
                rule_id: rule.id.to_string(),
                kind: failure.kind,
                message: failure.message.clone(),
                script: rule.script.clone(),
                line: failure.line,
                column: failure.column,
            })
            .collect();
        let not_applicable = rules
            .rules
            .iter()
            .zip(&evaluation.outcomes)
            .filter_map(|(rule, outcome)| match outcome {
                RuleOutcome::NotApplicable(reason) => Some(NotApplicableJson {
                    rule_id: rule.meta.id.to_string(),
                    reason: *reason,
                }),
                _ => None,
            })
            .collect();
        Self {
            ruleset: RuleSetRef::of(rules),
            stage: profile.stage,
            checked_on: profile.checked_on.to_string(),
            flags,
            errors,
            not_applicable,
        }
    }
}

/// A stored flag as read back.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StoredFlagJson {
    pub rule_id: String,
    #[schema(value_type = String)]
    pub severity: Severity,
    pub message: String,
}

/// A stored rule error as read back.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StoredRuleErrorJson {
    pub rule_id: String,
    #[schema(value_type = String)]
    pub kind: FailureKind,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// A problem in a rule set or rule test, with its position.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemJson {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// Present when the problem is a failing rule test (the test gate refused the set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<FailedTestJson>,
}

/// A failing rule test: its rule and case, what it expected and what the rule gave.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FailedTestJson {
    pub rule: String,
    pub name: String,
    pub expected: String,
    pub actual: String,
}

impl From<&Problem> for ProblemJson {
    fn from(problem: &Problem) -> Self {
        Self {
            file: problem.file.clone(),
            line: problem.line,
            column: problem.column,
            message: problem.message.clone(),
            test: problem.test.as_ref().map(|t| FailedTestJson {
                rule: t.rule.clone(),
                name: t.name.clone(),
                expected: t.expected.clone(),
                actual: t.actual.clone(),
            }),
        }
    }
}
