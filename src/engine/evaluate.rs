//! Evaluation of a loaded [`RuleSet`] on one profile: each rule in the fast evaluator
//! where it has a program that answers, otherwise in Rhai; and the flags and failures of
//! an evaluation resolved against the rules' metadata.

use std::sync::Arc;

use std::borrow::Cow;

use super::params::{self, Parameter};
use super::ruleset::{RuleMeta, RuleSet, Severity};
use super::value::Value;
use super::{
    EvalState, EvalStatePool, Evaluation, FailureKind, NotApplicable, RuleFailure, RuleOutcome,
    interpret, run_rule, script_api,
};
use crate::profile::Profile;

impl RuleSet {
    /// Runs every rule on `profile`: in the fast evaluator where a rule has a program
    /// and the program gives an answer, otherwise in Rhai. Thread-safe; allocates the
    /// outcome vector, the program's variables and, for flags, the messages.
    pub fn evaluate(&self, profile: &Arc<Profile>) -> Evaluation {
        self.evaluate_with(profile, true)
    }

    /// Runs every rule in Rhai alone: the reference the fast evaluator is held to, for
    /// tests and benchmarks.
    pub fn evaluate_in_rhai(&self, profile: &Arc<Profile>) -> Evaluation {
        self.evaluate_with(profile, false)
    }

    fn evaluate_with(&self, profile: &Arc<Profile>, fast: bool) -> Evaluation {
        let mut rhai = RhaiRun {
            pool: &self.eval_state,
            profile,
            rules: self.rules.len(),
            state: None,
        };
        let mut slots = Vec::new();
        let mut params = Vec::new();
        let outcomes = self
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                if !rule.meta.enabled {
                    return RuleOutcome::NotApplicable(NotApplicable::Disabled);
                }
                if !rule.meta.in_force_on(profile.checked_on) {
                    return RuleOutcome::NotApplicable(NotApplicable::NotInForce);
                }
                // A rule's parameters are constants for one check: their values on its day.
                // One buffer for every rule, so an evaluation allocates it at most once.
                if let Err(message) =
                    params::fill_values_on(&rule.meta.parameters, profile.checked_on, &mut params)
                {
                    return RuleOutcome::Failed(RuleFailure {
                        kind: FailureKind::Runtime,
                        message,
                        line: None,
                        column: None,
                    });
                }
                let program = rule.program.as_ref().filter(|_| fast);
                match program.and_then(|program| program.run(profile, &mut slots, &params)) {
                    Some(outcome) => outcome,
                    None => rhai.run(index, &rule.ast, &rule.meta.parameters, &params),
                }
            })
            .collect();
        Evaluation { outcomes }
    }
}

/// The Rhai side of one evaluation, set up only when a rule first needs it.
struct RhaiRun<'a> {
    pool: &'a EvalStatePool,
    profile: &'a Arc<Profile>,
    rules: usize,
    state: Option<(EvalState, usize)>,
}

impl RhaiRun<'_> {
    fn run(
        &mut self,
        index: usize,
        ast: &rhai::AST,
        parameters: &[Parameter],
        values: &[Value<'_>],
    ) -> RuleOutcome {
        let (state, base) = self.state.get_or_insert_with(|| {
            let mut state = self.pool.take(self.rules);
            state.scope.push_constant(
                script_api::PROFILE_VARIABLE,
                script_api::ProfileView(Arc::clone(self.profile)),
            );
            let base = state.scope.len();
            (state, base)
        });
        let EvalState { scope, caches } = state;
        if !parameters.is_empty() {
            let view =
                script_api::ParamView::new(parameters.iter().map(|p| p.name.as_str()).zip(values));
            scope.push_constant(params::PARAM_VARIABLE, view);
        }
        let result = run_rule(scope, &mut caches[index], ast);
        // Top-level `let`s stay in the scope; drop them before the next rule.
        scope.rewind(*base);
        interpret(result)
    }
}

impl Drop for RhaiRun<'_> {
    fn drop(&mut self) {
        if let Some((state, _)) = self.state.take() {
            self.pool.give_back(state);
        }
    }
}

/// A flag, resolved against its rule's metadata.
pub struct FlagView<'a> {
    pub rule: &'a RuleMeta,
    pub severity: Severity,
    /// The rule's title with its parameters' values on the check's day.
    pub title: Cow<'a, str>,
    pub message: Cow<'a, str>,
}

impl RuleSet {
    /// The flags of `evaluation`, most severe first (rule-set order within a severity).
    pub fn flags<'a>(&'a self, evaluation: &'a Evaluation, profile: &Profile) -> Vec<FlagView<'a>> {
        let mut flags: Vec<FlagView<'a>> = self
            .rules
            .iter()
            .zip(&evaluation.outcomes)
            .filter_map(|(rule, outcome)| match outcome {
                RuleOutcome::Flagged { message } => Some(FlagView {
                    rule: &rule.meta,
                    severity: rule.meta.severity.for_stage(profile.stage),
                    title: rule.meta.title_on(profile.checked_on),
                    message: match message {
                        Some(message) => Cow::Borrowed(message.as_str()),
                        None => rule.meta.default_message_on(profile.checked_on),
                    },
                }),
                _ => None,
            })
            .collect();
        flags.sort_by_key(|flag| std::cmp::Reverse(flag.severity));
        flags
    }

    /// The failed rules of `evaluation`.
    pub fn failures<'a>(
        &'a self,
        evaluation: &'a Evaluation,
    ) -> impl Iterator<Item = (&'a RuleMeta, &'a RuleFailure)> {
        self.rules
            .iter()
            .zip(&evaluation.outcomes)
            .filter_map(|(rule, outcome)| match outcome {
                RuleOutcome::Failed(failure) => Some((&rule.meta, failure)),
                _ => None,
            })
    }
}
