//! The eight default rules (`rules/*.rhai`) on peer rule engines, so the benchmark in
//! `benches/peers.rs` can time gk-regler's engine, the native floor and the peers on the
//! same profiles in one run.
//!
//! Each peer gets the rules in its own language (`rules/gk.rego`, `rules/gk.jdm.json`)
//! and the profile in its own parsed form, made once per profile before timing, as
//! gk-regler gets an already parsed `Profile`:
//! - [`RegoVm`] and [`RegoInterpreter`]: `regorus`, compiled to its RVM bytecode and
//!   interpreted; the input is a `regorus::Value`.
//! - [`ZenExpressions`]: the eight expressions of the decision graph compiled with
//!   `zen-expression` and run in one scope; the input is a `zen_expression::Variable`.
//! - [`ZenDecision`]: the whole decision graph (input → expression node → output) in
//!   `zen-engine`, run on a current-thread tokio runtime.
//!
//! Only flags are computed (no messages); [`native_rules`] is the floor, and the
//! benchmark checks every engine against it before timing anything.

#[path = "../../native_rules.rs"]
pub mod native_rules;
#[path = "../../sample.rs"]
pub mod sample;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use native_rules::{Flags, RULE_IDS};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rules_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules")
        .join(name)
}

type Error = Box<dyn std::error::Error>;

/// Flags from `rule id → bool` lookups, in [`RULE_IDS`] order.
fn flags_from(mut flag: impl FnMut(&str) -> Option<bool>) -> Result<Flags, Error> {
    RULE_IDS
        .iter()
        .enumerate()
        .try_fold(0, |flags, (bit, id)| match flag(id) {
            Some(true) => Ok(flags | (1 << bit)),
            Some(false) => Ok(flags),
            None => Err(format!("no boolean for {id}").into()),
        })
}

/// The Rego rule that holds all eight flags.
pub const REGO_ENTRY_POINT: &str = "data.gk.flags";

fn rego_engine() -> Result<regorus::Engine, Error> {
    let path = rules_file("gk.rego");
    let mut engine = regorus::Engine::new();
    engine.add_policy(path.display().to_string(), std::fs::read_to_string(&path)?)?;
    Ok(engine)
}

/// A profile as Rego input.
pub fn rego_input(profile_json: &str) -> Result<regorus::Value, Error> {
    Ok(regorus::Value::from_json_str(profile_json)?)
}

fn rego_flags(value: &regorus::Value) -> Result<Flags, Error> {
    flags_from(|id| value[id].as_bool().ok().copied())
}

/// `regorus`, the policy compiled to RVM bytecode once.
pub struct RegoVm {
    vm: regorus::rvm::RegoVM,
}

impl RegoVm {
    pub fn load() -> Result<Self, Error> {
        let mut engine = rego_engine()?;
        let compiled = engine.compile_with_entrypoint(&REGO_ENTRY_POINT.into())?;
        let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(
            &compiled,
            &[REGO_ENTRY_POINT],
        )?;
        let mut vm = regorus::rvm::RegoVM::new();
        vm.load_program(program);
        Ok(Self { vm })
    }

    /// The flags object for `input`.
    pub fn evaluate(&mut self, input: &regorus::Value) -> Result<regorus::Value, Error> {
        self.vm.set_input(input.clone());
        Ok(self.vm.execute()?)
    }

    pub fn flags(&mut self, input: &regorus::Value) -> Result<Flags, Error> {
        rego_flags(&self.evaluate(input)?)
    }
}

/// `regorus`, the policy run by its tree-walking interpreter.
pub struct RegoInterpreter {
    engine: regorus::Engine,
}

impl RegoInterpreter {
    pub fn load() -> Result<Self, Error> {
        Ok(Self {
            engine: rego_engine()?,
        })
    }

    pub fn evaluate(&mut self, input: &regorus::Value) -> Result<regorus::Value, Error> {
        self.engine.set_input(input.clone());
        Ok(self.engine.eval_rule(REGO_ENTRY_POINT.to_owned())?)
    }

    pub fn flags(&mut self, input: &regorus::Value) -> Result<Flags, Error> {
        rego_flags(&self.evaluate(input)?)
    }
}

fn decision_content() -> Result<serde_json::Value, Error> {
    Ok(serde_json::from_str(&std::fs::read_to_string(
        rules_file("gk.jdm.json"),
    )?)?)
}

/// A profile as ZEN input.
pub fn zen_input(profile_json: &str) -> Result<zen_expression::Variable, Error> {
    Ok(serde_json::from_str::<serde_json::Value>(profile_json)?.into())
}

fn zen_bool(value: &zen_expression::Variable) -> Option<bool> {
    match value {
        zen_expression::Variable::Bool(b) => Some(*b),
        _ => None,
    }
}

/// The eight expressions of the decision graph's expression node, compiled once.
pub struct ZenExpressions {
    expressions: Vec<zen_expression::Expression<zen_expression::expression::Standard>>,
    vm: zen_expression::vm::VM,
}

impl ZenExpressions {
    pub fn load() -> Result<Self, Error> {
        let content = decision_content()?;
        let node = content["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["type"] == "expressionNode"))
            .ok_or("no expression node in gk.jdm.json")?;
        let mut expressions = Vec::new();
        for (expression, id) in node["content"]["expressions"]
            .as_array()
            .ok_or("no expressions")?
            .iter()
            .zip(RULE_IDS)
        {
            if expression["key"] != id {
                return Err(format!("expression {} is not {id}", expression["key"]).into());
            }
            let source = expression["value"].as_str().ok_or("expression value")?;
            expressions.push(zen_expression::compile_expression(source)?);
        }
        Ok(Self {
            expressions,
            vm: zen_expression::vm::VM::new(),
        })
    }

    /// The eight results for `input`, in [`RULE_IDS`] order.
    pub fn evaluate(
        &mut self,
        input: &zen_expression::Variable,
    ) -> Result<[zen_expression::Variable; 8], Error> {
        let scope = zen_expression::scope::Scope::new(input.clone());
        let mut results: [zen_expression::Variable; 8] = Default::default();
        for (result, expression) in results.iter_mut().zip(&self.expressions) {
            *result = expression.evaluate_with_scope(&scope, &mut self.vm)?;
        }
        Ok(results)
    }

    pub fn flags(&mut self, input: &zen_expression::Variable) -> Result<Flags, Error> {
        let results = self.evaluate(input)?;
        flags_from(|id| {
            RULE_IDS
                .iter()
                .position(|r| *r == id)
                .and_then(|i| zen_bool(&results[i]))
        })
    }
}

/// The whole decision graph in `zen-engine`.
pub struct ZenDecision {
    decision: zen_engine::Decision,
    runtime: tokio::runtime::Runtime,
}

impl ZenDecision {
    pub fn load() -> Result<Self, Error> {
        let content: zen_engine::model::GraphContent = serde_json::from_value(decision_content()?)?;
        let mut decision = zen_engine::Decision::from(Arc::new(content));
        decision.compile();
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        Ok(Self { decision, runtime })
    }

    pub fn evaluate(
        &self,
        input: &zen_expression::Variable,
    ) -> Result<zen_expression::Variable, Error> {
        let response = self
            .runtime
            .block_on(self.decision.evaluate(input.clone()))
            .map_err(|err| format!("{err:?}"))?;
        Ok(response.result)
    }

    pub fn flags(&self, input: &zen_expression::Variable) -> Result<Flags, Error> {
        let result = self.evaluate(input)?;
        let object = result
            .as_object()
            .ok_or("decision result is not an object")?;
        let object = object.borrow();
        flags_from(|id| {
            object
                .iter()
                .find(|(key, _)| AsRef::<str>::as_ref(key) == id)
                .and_then(|(_, value)| zen_bool(value))
        })
    }
}

/// The gk-regler engine's flags for `profile` (panics on a failed rule: the sample must
/// evaluate cleanly for the comparison to mean anything).
pub fn engine_flags(
    rules: &gk_regler::ruleset::RuleSet,
    profile: &Arc<gk_regler::profile::Profile>,
) -> Result<Flags, Error> {
    use gk_regler::engine::RuleOutcome;
    let evaluation = rules.evaluate(profile);
    let mut flags = 0;
    for (rule, outcome) in rules.rules.iter().zip(&evaluation.outcomes) {
        let bit = RULE_IDS
            .iter()
            .position(|id| *id == rule.meta.id.as_str())
            .ok_or_else(|| format!("rule {} is not one of the eight", rule.meta.id))?;
        match outcome {
            RuleOutcome::Flagged { .. } => flags |= 1 << bit,
            RuleOutcome::Clear | RuleOutcome::NotApplicable(_) => {}
            RuleOutcome::Failed(f) => {
                return Err(format!("rule {} failed: {}", rule.meta.id, f.message).into());
            }
        }
    }
    Ok(flags)
}
