//! Evaluation of a loaded [`RuleSet`] on one profile: each rule in the fast evaluator
//! where it has a program that answers, otherwise in Rhai; a second rule set's
//! evaluation that reuses the outcomes of the rules it shares with the first
//! ([`UnchangedRules`]); and the flags and failures of an evaluation resolved against the
//! rules' metadata.

use std::borrow::Cow;
use std::sync::Arc;

use super::params::{self, Parameter};
use super::ruleset::{Rule, RuleMeta, RuleSet, Severity};
use super::{
    EvalState, EvalStatePool, Evaluation, FailureKind, NotApplicable, RuleFailure, RuleOutcome,
    StopGuard, interpret, run_rule_caught, script_api, start_check_time,
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

    /// Runs every rule on `profile` that `unchanged` does not pair with a rule of the
    /// set `previous` came from, and takes the outcome of each paired rule from
    /// `previous`, the evaluation of the same profile by that set. The result is what
    /// [`RuleSet::evaluate`] gives. `unchanged` must have been made by
    /// `self.unchanged_from(other)`, with `previous` from `other`; when the sets do not
    /// match it, every rule runs.
    pub fn evaluate_after(
        &self,
        profile: &Arc<Profile>,
        previous: Evaluation,
        unchanged: &UnchangedRules,
    ) -> Evaluation {
        let mut previous = previous.outcomes;
        // The same content hash means the same rules, so `pairs` fits this set.
        if unchanged.to != self.content_hash || unchanged.from_rules != previous.len() {
            return self.evaluate(profile);
        }
        // Rule ids are unique in a set, so each earlier outcome is taken at most once.
        self.run_rules(profile, true, |index| {
            unchanged.pairs[index]
                .map(|from| std::mem::replace(&mut previous[from], RuleOutcome::Clear))
        })
    }

    fn evaluate_with(&self, profile: &Arc<Profile>, fast: bool) -> Evaluation {
        self.run_rules(profile, fast, |_| None)
    }

    /// Runs the rules on `profile`, except those for which `known` already gives the
    /// outcome.
    fn run_rules(
        &self,
        profile: &Arc<Profile>,
        fast: bool,
        mut known: impl FnMut(usize) -> Option<RuleOutcome>,
    ) -> Evaluation {
        let mut rhai = RhaiRun {
            pool: &self.eval_state,
            profile,
            rules: self.rules.len(),
            state: None,
            stop: None,
        };
        // Scratch space shared by the rules, allocated once at the size the largest rule
        // needs; a program fills it up to its own size as it runs.
        let mut slots = Vec::with_capacity(self.max_program_slots);
        let outcomes = self
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                if let Some(outcome) = known(index) {
                    return outcome;
                }
                if !rule.meta.enabled {
                    return RuleOutcome::NotApplicable(NotApplicable::Disabled);
                }
                if !rule.meta.in_force_on(profile.checked_on) {
                    return RuleOutcome::NotApplicable(NotApplicable::NotInForce);
                }
                // A rule's parameters are constants for one check, their values on its day;
                // a rule cannot run before every parameter has one.
                let parameters = &rule.meta.parameters;
                if let Err(message) = params::check_values_on(parameters, profile.checked_on) {
                    return runtime_failure(message);
                }
                let program = rule.program.as_ref().filter(|_| fast);
                match program.and_then(|program| program.run(profile, &mut slots, parameters)) {
                    Some(outcome) => outcome,
                    None => rhai.run(index, &rule.ast, parameters),
                }
            })
            .collect();
        Evaluation { outcomes }
    }
}

/// Which rules of one rule set give, on every profile, the outcome of a rule of another:
/// made by [`RuleSet::unchanged_from`] and used by [`RuleSet::evaluate_after`], so that
/// trying a changed rule set on many profiles runs only the rules that changed.
#[derive(Debug)]
pub struct UnchangedRules {
    /// For each rule of the later set, the position of its unchanged rule in the earlier.
    pairs: Vec<Option<usize>>,
    /// The later set's content hash and the earlier set's number of rules.
    to: String,
    from_rules: usize,
}

impl UnchangedRules {
    /// Whether the later set's rule at `index` is unchanged from a rule of the earlier.
    pub fn is_unchanged(&self, index: usize) -> bool {
        self.pairs.get(index).is_some_and(Option::is_some)
    }
}

impl RuleSet {
    /// Pairs each rule of this set with the rule of `earlier` that has the same id and,
    /// for every profile, gives the same outcome: the same script text, the same
    /// parameters with the same dated values, enabled alike, and in force on the same
    /// days. Title, message, severity and the rest of the metadata do not change an
    /// outcome and are not compared.
    pub fn unchanged_from(&self, earlier: &RuleSet) -> UnchangedRules {
        let pairs = self
            .rules
            .iter()
            .map(|rule| {
                let position = earlier
                    .rules
                    .iter()
                    .position(|e| e.meta.id.as_str() == rule.meta.id.as_str())?;
                let before = &earlier.rules[position];
                let same_script = match (self.script_text(rule), earlier.script_text(before)) {
                    (Some(now), Some(then)) => now == then,
                    _ => false,
                };
                let (now, then) = (&rule.meta, &before.meta);
                (same_script
                    && now.parameters == then.parameters
                    && now.enabled == then.enabled
                    && now.valid_from == then.valid_from
                    && now.valid_to == then.valid_to)
                    .then_some(position)
            })
            .collect();
        UnchangedRules {
            pairs,
            to: self.content_hash.clone(),
            from_rules: earlier.rules.len(),
        }
    }

    /// The text of `rule`'s script as loaded.
    fn script_text(&self, rule: &Rule) -> Option<&str> {
        self.sources
            .iter()
            .find(|source| source.name == rule.meta.script)
            .map(|source| source.text.as_str())
    }
}

/// A rule that could not run on the check's day, with why.
fn runtime_failure(message: String) -> RuleOutcome {
    RuleOutcome::Failed(RuleFailure {
        kind: FailureKind::Runtime,
        message,
        line: None,
        column: None,
    })
}

/// The Rhai side of one evaluation, set up only when a rule first needs it.
struct RhaiRun<'a> {
    pool: &'a EvalStatePool,
    profile: &'a Arc<Profile>,
    rules: usize,
    state: Option<(EvalState, usize)>,
    /// The evaluation's stop time, set as its first rule starts in Rhai.
    stop: Option<StopGuard>,
}

impl RhaiRun<'_> {
    fn run(&mut self, index: usize, ast: &rhai::AST, parameters: &[Parameter]) -> RuleOutcome {
        self.stop.get_or_insert_with(start_check_time);
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
            let values = match params::values_on(parameters, self.profile.checked_on) {
                Ok(values) => values,
                Err(message) => return runtime_failure(message),
            };
            let view =
                script_api::ParamView::new(parameters.iter().map(|p| p.name.as_str()).zip(&values));
            scope.push_constant(params::PARAM_VARIABLE, view);
        }
        // Rhai itself can panic on a script it parsed (`const K = #{a: 1}; K.a = 2;`
        // reaches an `unreachable!`): that is this rule's failure, not the check's. The
        // state it ran in may be half-changed, so it is dropped, not given back.
        let Some(result) = run_rule_caught(scope, &mut caches[index], ast) else {
            self.state = None;
            return runtime_failure(ENGINE_PANIC_MESSAGE.to_owned());
        };
        // Top-level `let`s stay in the scope; drop them before the next rule.
        scope.rewind(*base);
        interpret(result)
    }
}

/// A rule's failure when the script engine itself broke down on it.
const ENGINE_PANIC_MESSAGE: &str = "regeln avbröts: skriptmotorn kunde inte köra skriptet (ett fel i motorn, inte i profilen). Det händer till exempel när en del av en konstant (const) ändras; skriv om den delen.";

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{cohort_lines, default_rules, repo};
    use super::*;
    use crate::engine::RuleOutcome;

    /// The development cohort's profiles.
    fn cohort() -> Vec<Arc<Profile>> {
        cohort_lines()
            .iter()
            .map(|line| Arc::new(Profile::from_json(line).expect("a valid profile")))
            .collect()
    }

    /// A copy of the default rules with `edit` applied to the named file's text.
    fn edited_rules(edits: &[(&str, &str, &str)]) -> (tempfile::TempDir, RuleSet) {
        let dir = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(repo().join("rules")).expect("rules") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                let mut text = std::fs::read_to_string(&path).expect("rule file");
                for (file, from, to) in edits {
                    if *file == name {
                        assert!(text.contains(from), "{name} has no {from:?}");
                        text = text.replacen(from, to, 1);
                    }
                }
                std::fs::write(dir.path().join(&name), text).expect("write");
            }
        }
        let set = RuleSet::load(dir.path()).expect("the edited rules load");
        (dir, set)
    }

    fn flagged(outcome: &RuleOutcome) -> bool {
        matches!(outcome, RuleOutcome::Flagged { .. })
    }

    /// A candidate with a script, a parameter and the enabling of three rules changed,
    /// and a title changed elsewhere, evaluated after the current rules gives exactly
    /// what evaluating it whole gives: its changed rules are run, and the rest take the
    /// current outcomes.
    #[test]
    fn a_changed_set_evaluated_after_the_current_gives_what_it_gives_alone() {
        let current = default_rules();
        let (_dir, candidate) = edited_rules(&[
            // A script: another message, and the message is the candidate's.
            (
                "personligt_mote_saknas.rhai",
                "Ta reda på om ett möte hölls före GK och dokumentera det.",
                "Ta reda på om ett möte hölls före GK.",
            ),
            // A parameter: flags more cases.
            (
                "manifest.yaml",
                "{ from: 2000-01-01, value: 21 }",
                "{ from: 2000-01-01, value: 10 }",
            ),
            // Disabled.
            (
                "manifest.yaml",
                "  - id: tolk_ej_bokad\n",
                "  - id: tolk_ej_bokad\n    enabled: false\n",
            ),
            // A title does not change an outcome.
            (
                "manifest.yaml",
                "title: Aktivitetsnivå saknas",
                "title: Aktivitetsnivån saknas",
            ),
        ]);
        let unchanged = candidate.unchanged_from(&current);
        assert_eq!(
            unchanged.pairs.iter().flatten().count(),
            candidate.rules.len() - 3
        );
        let position = |id: &str| {
            candidate
                .rules
                .iter()
                .position(|r| r.meta.id.as_str() == id)
                .expect("rule")
        };
        let (meeting, first, interpreter) = (
            position("personligt_mote_saknas"),
            position("forsta_mote_efter_tre_veckor"),
            position("tolk_ej_bokad"),
        );
        let (mut messages, mut gained, mut disabled) = (0, 0, 0);
        for (line, profile) in cohort().iter().enumerate() {
            let before = current.evaluate(profile);
            let alone = candidate.evaluate(profile);
            if before.outcomes[meeting] != alone.outcomes[meeting] {
                messages += 1;
            }
            if flagged(&alone.outcomes[first]) && !flagged(&before.outcomes[first]) {
                gained += 1;
            }
            if flagged(&before.outcomes[interpreter]) {
                disabled += 1;
            }
            let after = candidate.evaluate_after(profile, before, &unchanged);
            assert_eq!(
                after.outcomes,
                alone.outcomes,
                "profile on line {}",
                line + 1
            );
        }
        // Each change shows in the cohort, so reusing a changed rule's outcome would fail.
        assert!(
            messages > 0 && gained > 0 && disabled > 0,
            "{messages} {gained} {disabled}"
        );
    }

    /// A pairing made for other sets is not trusted: every rule runs.
    #[test]
    fn a_pairing_of_other_sets_runs_every_rule() {
        let current = default_rules();
        let (_dir, candidate) = edited_rules(&[(
            "manifest.yaml",
            "{ from: 2000-01-01, value: 21 }",
            "{ from: 2000-01-01, value: 10 }",
        )]);
        // Made the other way round: the current set as the later one.
        let reversed = current.unchanged_from(&candidate);
        let first = candidate
            .rules
            .iter()
            .position(|r| r.meta.id.as_str() == "forsta_mote_efter_tre_veckor")
            .expect("rule");
        let mut checked = 0;
        for profile in cohort() {
            let before = current.evaluate(&profile);
            let alone = candidate.evaluate(&profile);
            if before.outcomes[first] == alone.outcomes[first] {
                continue;
            }
            checked += 1;
            // Every rule of `before` marked as if unchanged would give the current outcome.
            let wrong = UnchangedRules {
                pairs: (0..candidate.rules.len()).map(Some).collect(),
                to: "another set".to_owned(),
                from_rules: current.rules.len(),
            };
            for pairing in [&reversed, &wrong] {
                let after = candidate.evaluate_after(&profile, current.evaluate(&profile), pairing);
                assert_eq!(after.outcomes, alone.outcomes);
            }
        }
        assert!(checked > 0);
    }
}
