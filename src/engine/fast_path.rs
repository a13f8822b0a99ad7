//! A faster evaluator for the part of Rhai the rule scripts use, with Rhai as the
//! reference it defers to.
//!
//! At load, each rule's Rhai AST (after Rhai's own parsing, checking and optimising) is
//! translated into a small tree when every construct in it is one this module models: `let`/`const`, `=`, `+=`, `if`/`else`, `return`, `&&`, `||`, `!`,
//! comparisons, `+`/`-`, `in`, string interpolation, arrays with `push`, `len`,
//! `is_empty` and indexing, properties of the profile ([`super::value`]) and the helper
//! functions of the authoring guide. A rule with anything else (loops, functions of its
//! own, `throw`, maps, `switch`, …) is not translated and always runs in Rhai. The tree
//! is then compiled into closures, a [`Program`] ([`run`]).
//!
//! Rhai stays the reference. Whenever a program meets a case it does not model — a
//! value of an unexpected type, a comparison with a missing value, an unknown list
//! name, an empty message, a string or array grown large — it stops (`Stop::Defer`)
//! and the rule is run again in Rhai, which gives the result, or the error with its
//! line and column. Rules have no side effects, so running one twice is safe. A
//! program therefore never produces an error of its own, and within what it models it
//! gives exactly Rhai's answers: the tests run every default rule both ways on the
//! development cohort and on every rule test.
//!
//! Why: Rhai spends about 1,300 instructions in its call machinery on each of the ~60
//! function and property calls an evaluation of the default rules makes; the program
//! makes the same calls as closures over [`Value`]s (BENCHMARKS.md).

use rhai::{AST, ASTFlags, Expr as RhaiExpr, FnCallExpr, Stmt as RhaiStmt, StmtBlock};

use super::helpers::Test;
use super::params::PARAM_VARIABLE;
use super::value::{ListKind, Property, Read, Section, Value, properties_named};
use super::{LIMITS, script_api::PROFILE_VARIABLE};
use crate::profile::{ExternalParticipant, Specialist};

mod run;

pub(crate) use run::Program;

struct Block(Box<[Stmt]>);

enum Stmt {
    /// `let`/`const`: a new variable in the slot.
    Let(usize, Expr),
    /// `x = value`
    Set(usize, Expr),
    /// `x += value`, `x -= value`
    Update(usize, Arithmetic, Expr),
    /// `x.push(value)`
    Push(usize, Expr),
    /// An expression whose value is the statement's.
    Eval(Expr),
    Return(Expr),
}

enum Expr {
    Literal(Literal),
    /// A value known when the rule is translated: `profile`, a section of it, a list.
    Fixed(Value<'static>),
    Local(usize),
    /// A field of the profile, its section known when the rule is translated.
    Read(&'static Property),
    /// `param.NAME`: the rule's parameter with that index, its value on the check's day.
    Param(usize),
    /// A property of a value known only when the rule runs; the candidates are every
    /// section's property of that name.
    Get(Box<Expr>, Box<[&'static Property]>),
    /// `"name" in list` for a list and a valid name known when the rule is translated.
    InList(Member),
    Not(Box<Expr>),
    All(Box<[Expr]>),
    Any(Box<[Expr]>),
    Compare(Comparison, Box<[Expr; 2]>),
    Arithmetic(Arithmetic, Box<[Expr; 2]>),
    Call(Helper, Box<[Expr]>),
    Interpolate(Box<[Expr]>),
    Array(Box<[Expr]>),
    Index(Box<[Expr; 2]>),
    If(Box<Expr>, Block, Block),
    Block(Block),
}

enum Literal {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Box<str>),
}

#[derive(Clone, Copy)]
enum Member {
    Specialist(Specialist),
    ExternalParticipant(ExternalParticipant),
}

impl Member {
    /// `None` for a name the list can never hold, which Rhai reports as an error.
    fn of(list: ListKind, name: &str) -> Option<Self> {
        match list {
            ListKind::Specialists => Specialist::from_name(name).map(Self::Specialist),
            ListKind::ExternalParticipants => {
                ExternalParticipant::from_name(name).map(Self::ExternalParticipant)
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Arithmetic {
    Add,
    Subtract,
}

#[derive(Clone, Copy)]
enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// A helper of the authoring guide, or a method Rhai has for lists and texts.
#[derive(Clone, Copy)]
enum Helper {
    /// `known`, `has_value`, `is_true`, `is_false`
    Test(Test),
    DaysBetween,
    Date,
    DiagnosisGroup,
    /// `has(list, name)`
    Has,
    /// `contains(container, item)`, which is what `item in container` is.
    Contains,
    Len,
    IsEmpty,
}

impl Helper {
    fn of(name: &str, arity: usize) -> Option<Self> {
        let helper = match name {
            "days_between" => Self::DaysBetween,
            "date" => Self::Date,
            "diagnosis_group" => Self::DiagnosisGroup,
            "has" => Self::Has,
            "contains" => Self::Contains,
            "len" => Self::Len,
            "is_empty" => Self::IsEmpty,
            _ => Self::Test(Test::of_name(name)?),
        };
        let expected = match helper {
            Self::DaysBetween | Self::Has | Self::Contains => 2,
            _ => 1,
        };
        (arity == expected).then_some(helper)
    }
}

/// Strings and arrays are kept well below the sandbox's limits; beyond these sizes the
/// rule is left to Rhai, which enforces the limits with its own errors.
const MAX_TEXT_BYTES: usize = LIMITS.max_string_size / 4;
const MAX_ARRAY_LEN: usize = LIMITS.max_array_size / 10;
const MAX_SLOTS: usize = LIMITS.max_variables / 2;

// ---------------------------------------------------------------------------------
// Translation

/// Translates `ast`, or `None` when it uses anything this module does not model.
/// `params` names the rule's parameters, in the order their values are given to
/// [`Program::run`].
pub(crate) fn translate(ast: &AST, params: &[&str]) -> Option<Program> {
    // A script function could shadow a helper; such rules stay in Rhai.
    if ast.has_functions() {
        return None;
    }
    let mut translator = Translator {
        params: params.iter().map(|p| (*p).to_owned()).collect(),
        ..Translator::default()
    };
    let body = translator.block(ast.statements())?;
    (translator.slots <= MAX_SLOTS).then(|| Program::compile(&body, translator.slots))
}

#[derive(Default)]
struct Translator {
    /// Visible variables, innermost last: name, slot, constant.
    names: Vec<(String, usize, bool)>,
    /// Per slot, the value it holds when that is known at translation (a section or a
    /// list); reads of the slot then use the value directly.
    fixed: Vec<Option<Value<'static>>>,
    slots: usize,
    /// The rule's parameter names, in order.
    params: Vec<String>,
}

impl Translator {
    fn block(&mut self, statements: &[RhaiStmt]) -> Option<Block> {
        let visible = self.names.len();
        let block = statements
            .iter()
            .map(|statement| self.statement(statement))
            .collect::<Option<Box<[Stmt]>>>();
        self.names.truncate(visible);
        block.map(Block)
    }

    fn stmt_block(&mut self, block: &StmtBlock) -> Option<Block> {
        self.block(block.statements())
    }

    fn local(&self, name: &str) -> Option<(usize, bool)> {
        self.names
            .iter()
            .rev()
            .find(|(n, ..)| n == name)
            .map(|&(_, slot, constant)| (slot, constant))
    }

    fn variable(expr: &RhaiExpr) -> Option<&str> {
        match expr {
            RhaiExpr::Variable(x, ..) => Some(x.1.as_str()),
            _ => None,
        }
    }

    /// A variable the statement may change. A variable whose value was taken as
    /// known is not translated further: the rule stays in Rhai.
    fn mutable_local(&self, expr: &RhaiExpr) -> Option<usize> {
        match self.local(Self::variable(expr)?)? {
            (slot, false) if self.fixed[slot].is_none() => Some(slot),
            _ => None,
        }
    }

    fn statement(&mut self, statement: &RhaiStmt) -> Option<Stmt> {
        Some(match statement {
            RhaiStmt::Noop(..) => Stmt::Eval(Expr::Literal(Literal::Unit)),
            RhaiStmt::Var(x, flags, _) => {
                if flags.intersects(!ASTFlags::CONSTANT) {
                    return None;
                }
                let (ident, value, _) = &**x;
                let value = self.expr(value)?;
                let slot = self.slots;
                self.slots += 1;
                self.fixed.push(match &value {
                    Expr::Fixed(fixed) => Some(fixed.clone()),
                    _ => None,
                });
                self.names.push((
                    ident.name.to_string(),
                    slot,
                    flags.contains(ASTFlags::CONSTANT),
                ));
                Stmt::Let(slot, value)
            }
            RhaiStmt::Assignment(x) => {
                let (op, target) = &**x;
                let slot = self.mutable_local(&target.lhs)?;
                let value = self.expr(&target.rhs)?;
                // Rhai's optimiser also turns `x = x - 1` into `x -= 1`.
                match op.get_op_assignment_info() {
                    None => Stmt::Set(slot, value),
                    Some((.., "+")) => Stmt::Update(slot, Arithmetic::Add, value),
                    Some((.., "-")) => Stmt::Update(slot, Arithmetic::Subtract, value),
                    Some(_) => return None,
                }
            }
            RhaiStmt::Expr(expr) => match &**expr {
                // `list.push(x)` changes the variable in place.
                RhaiExpr::Dot(x, flags, _) if !flags.contains(ASTFlags::NEGATED) => match &x.rhs {
                    RhaiExpr::MethodCall(call, _) if call.name == "push" => {
                        let slot = self.mutable_local(&x.lhs)?;
                        match &call.args[..] {
                            [item] => Stmt::Push(slot, self.expr(item)?),
                            _ => return None,
                        }
                    }
                    _ => Stmt::Eval(self.expr(expr)?),
                },
                _ => Stmt::Eval(self.expr(expr)?),
            },
            RhaiStmt::FnCall(call, _) => Stmt::Eval(self.call(call)?),
            RhaiStmt::If(flow, _) => Stmt::Eval(Expr::If(
                Box::new(self.expr(&flow.expr)?),
                self.stmt_block(&flow.body)?,
                self.stmt_block(&flow.branch)?,
            )),
            RhaiStmt::Block(block) => Stmt::Eval(Expr::Block(self.stmt_block(block)?)),
            // `throw` is a `Return` with the BREAK flag.
            RhaiStmt::Return(value, flags, _) if flags.is_empty() => Stmt::Return(match value {
                Some(value) => self.expr(value)?,
                None => Expr::Literal(Literal::Unit),
            }),
            _ => return None,
        })
    }

    fn expr(&mut self, expr: &RhaiExpr) -> Option<Expr> {
        Some(match expr {
            RhaiExpr::Unit(_) => Expr::Literal(Literal::Unit),
            RhaiExpr::BoolConstant(b, _) => Expr::Literal(Literal::Bool(*b)),
            RhaiExpr::IntegerConstant(i, _) => Expr::Literal(Literal::Int(*i)),
            RhaiExpr::FloatConstant(f, _) => Expr::Literal(Literal::Float(**f)),
            RhaiExpr::StringConstant(s, _) => Expr::Literal(Literal::Text(s.as_str().into())),
            // The optimiser folds constant arrays, `[]` included, into one value.
            RhaiExpr::DynamicConstant(value, _) => constant(value)?,
            RhaiExpr::InterpolatedString(parts, _) => Expr::Interpolate(self.exprs(parts)?),
            RhaiExpr::Array(items, _) => Expr::Array(self.exprs(items)?),
            RhaiExpr::Variable(x, ..) => match self.local(&x.1) {
                Some((slot, _)) => match &self.fixed[slot] {
                    Some(fixed) => Expr::Fixed(fixed.clone()),
                    None => Expr::Local(slot),
                },
                None if x.1 == PROFILE_VARIABLE => Expr::Fixed(Value::Section(Section::Profile)),
                None => return None,
            },
            RhaiExpr::Stmt(block) => Expr::Block(self.stmt_block(block)?),
            RhaiExpr::FnCall(call, _) => self.call(call)?,
            // `param.NAME`, unless a variable of the script is called `param`.
            RhaiExpr::Dot(x, flags, _)
                if !flags.contains(ASTFlags::NEGATED)
                    && Self::variable(&x.lhs) == Some(PARAM_VARIABLE)
                    && self.local(PARAM_VARIABLE).is_none() =>
            {
                match &x.rhs {
                    RhaiExpr::Property(property, _) => {
                        Expr::Param(self.params.iter().position(|p| *p == property.2)?)
                    }
                    _ => return None,
                }
            }
            RhaiExpr::Dot(x, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let base = self.expr(&x.lhs)?;
                self.chain(base, &x.rhs)?
            }
            RhaiExpr::Index(x, flags, _)
                if !flags.contains(ASTFlags::NEGATED) && is_plain_operand(&x.rhs) =>
            {
                Expr::Index(Box::new([self.expr(&x.lhs)?, self.expr(&x.rhs)?]))
            }
            RhaiExpr::And(operands, _) => Expr::All(self.exprs(operands)?),
            RhaiExpr::Or(operands, _) => Expr::Any(self.exprs(operands)?),
            _ => return None,
        })
    }

    fn exprs(&mut self, exprs: &[RhaiExpr]) -> Option<Box<[Expr]>> {
        exprs.iter().map(|e| self.expr(e)).collect()
    }

    /// The right-hand side of a `.` chain applied to `base`.
    fn chain(&mut self, base: Expr, rhs: &RhaiExpr) -> Option<Expr> {
        match rhs {
            RhaiExpr::Property(x, _) => {
                let candidates = property(&x.2)?;
                let Expr::Fixed(Value::Section(section)) = base else {
                    return Some(Expr::Get(Box::new(base), candidates));
                };
                // A section without that property is Rhai's error to report.
                let property = candidates.iter().find(|p| p.section == section)?;
                Some(match &property.read {
                    Read::Fixed(value) => Expr::Fixed(value.clone()),
                    Read::Field(_) => Expr::Read(property),
                })
            }
            RhaiExpr::MethodCall(call, _) => self.method(base, call),
            RhaiExpr::Dot(x, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let step = self.chain(base, &x.lhs)?;
                self.chain(step, &x.rhs)
            }
            _ => None,
        }
    }

    fn method(&mut self, receiver: Expr, call: &FnCallExpr) -> Option<Expr> {
        let helper = Helper::of(&call.name, call.args.len() + 1)?;
        let mut args = Vec::with_capacity(call.args.len() + 1);
        args.push(receiver);
        for arg in call.args.iter() {
            args.push(self.expr(arg)?);
        }
        Some(Expr::Call(helper, args.into()))
    }

    fn call(&mut self, call: &FnCallExpr) -> Option<Expr> {
        if call.capture_parent_scope {
            return None;
        }
        if call.is_operator_call() {
            return self.operator(call);
        }
        let helper = Helper::of(&call.name, call.args.len())?;
        let args = self.exprs(&call.args)?;
        Some(match (helper, &args[..]) {
            (
                Helper::Has | Helper::Contains,
                [
                    Expr::Fixed(Value::List(list)),
                    Expr::Literal(Literal::Text(name)),
                ],
            ) => match Member::of(*list, name) {
                Some(member) => Expr::InList(member),
                None => Expr::Call(helper, args),
            },
            _ => Expr::Call(helper, args),
        })
    }

    fn operator(&mut self, call: &FnCallExpr) -> Option<Expr> {
        let comparison = match call.name.as_str() {
            "==" => Some(Comparison::Equal),
            "!=" => Some(Comparison::NotEqual),
            "<" => Some(Comparison::Less),
            "<=" => Some(Comparison::LessOrEqual),
            ">" => Some(Comparison::Greater),
            ">=" => Some(Comparison::GreaterOrEqual),
            _ => None,
        };
        match (call.name.as_str(), &call.args[..]) {
            ("!", [operand]) => Some(Expr::Not(Box::new(self.expr(operand)?))),
            ("+", [a, b]) => Some(Expr::Arithmetic(
                Arithmetic::Add,
                Box::new([self.expr(a)?, self.expr(b)?]),
            )),
            ("-", [a, b]) => Some(Expr::Arithmetic(
                Arithmetic::Subtract,
                Box::new([self.expr(a)?, self.expr(b)?]),
            )),
            (_, [a, b]) => Some(Expr::Compare(
                comparison?,
                Box::new([self.expr(a)?, self.expr(b)?]),
            )),
            _ => None,
        }
    }
}

/// A constant Rhai folded: a plain value or an array of them.
fn constant(value: &rhai::Dynamic) -> Option<Expr> {
    if value.is_array() {
        let items = value.read_lock::<rhai::Array>()?;
        let texts = items
            .iter()
            .map(|item| item.is_string().then(|| constant(item)).flatten());
        return Some(Expr::Array(texts.collect::<Option<_>>()?));
    }
    let literal = if value.is_unit() {
        Literal::Unit
    } else if let Ok(b) = value.as_bool() {
        Literal::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Literal::Int(i)
    } else if let Ok(f) = value.as_float() {
        Literal::Float(f)
    } else if value.is_string() {
        Literal::Text(value.read_lock::<rhai::ImmutableString>()?.as_str().into())
    } else {
        return None;
    };
    Some(Expr::Literal(literal))
}

/// An index the program handles: a literal or a variable, not a chain.
fn is_plain_operand(expr: &RhaiExpr) -> bool {
    matches!(expr, RhaiExpr::IntegerConstant(..) | RhaiExpr::Variable(..))
}

/// Every section's property called `name`; `None` when no section has one.
fn property(name: &str) -> Option<Box<[&'static Property]>> {
    let candidates: Box<[&'static Property]> = properties_named(name).collect();
    (!candidates.is_empty()).then_some(candidates)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rhai::ASTNode;

    use super::super::tests::{cohort_lines, default_rules, one_rule, repo};
    use super::*;
    use crate::engine::RuleOutcome;
    use crate::profile::Profile;
    use crate::ruleset::RuleSet;

    /// Every profile of the development cohort, as JSON values.
    fn cohort() -> Vec<serde_json::Value> {
        cohort_lines()
            .iter()
            .map(|line| serde_json::from_str(line).expect("cohort line is JSON"))
            .collect()
    }

    /// When a rule's program may leave the answer to Rhai.
    #[derive(Clone, Copy, PartialEq)]
    enum Deferral {
        /// Never: the program answers.
        Never,
        /// Only where Rhai fails, since the error and its position are Rhai's to give.
        WhereRhaiFails,
        /// Also where Rhai answers: the script uses something the program does not model.
        Allowed,
    }

    /// Each rule run both ways on `profile`: the outcomes must be equal, and a rule
    /// with a program must get its answer from the program as `deferral` says.
    fn assert_same(set: &RuleSet, profile: &Arc<Profile>, deferral: Deferral, what: &str) {
        let fast = set.evaluate(profile).outcomes;
        let reference = set.evaluate_in_rhai(profile).outcomes;
        assert_eq!(fast, reference, "{what}");
        let mut slots = Vec::new();
        for (rule, expected) in set.rules.iter().zip(&reference) {
            let Some(program) = &rule.program else {
                continue;
            };
            if matches!(expected, RuleOutcome::NotApplicable(_)) {
                continue;
            }
            let rhai_fails = matches!(expected, RuleOutcome::Failed(_));
            if super::super::params::check_values_on(&rule.meta.parameters, profile.checked_on)
                .is_err()
            {
                continue;
            }
            match program.run(profile, &mut slots, &rule.meta.parameters) {
                Some(outcome) => assert_eq!(&outcome, expected, "{} on {what}", rule.meta.id),
                None => assert!(
                    deferral == Deferral::Allowed
                        || (deferral == Deferral::WhereRhaiFails && rhai_fails),
                    "{} deferred to Rhai on {what}, where Rhai gives {expected:?}",
                    rule.meta.id
                ),
            }
        }
    }

    #[test]
    fn every_default_rule_runs_fast() {
        let set = default_rules();
        for rule in &set.rules {
            assert!(rule.runs_fast(), "{} is not translated", rule.meta.id);
        }
        // So a check with the default rules is evaluated where it arrives, without a
        // hand-off to the blocking pool (`app::check`).
        assert!(set.runs_fast_only());
        let with_a_loop =
            super::super::tests::rules(&["let n = 0; for i in 0..3 { n += i; } n > 0"]);
        assert!(!with_a_loop.runs_fast_only());
    }

    #[test]
    fn default_rules_agree_with_rhai_on_every_rule_test() {
        let set = default_rules();
        let suite =
            crate::rule_tests::TestSuite::load(&repo().join("rules"), Some(&set)).expect("tests");
        assert!(suite.cases.len() > 50);
        for case in &suite.cases {
            assert_same(&set, case.profile(), Deferral::WhereRhaiFails, &case.name);
        }
    }

    /// The whole cohort, and for every 40th profile each section field removed
    /// ("uppgift saknas") and set to null, so both kinds of missing value are met.
    #[test]
    fn default_rules_agree_with_rhai_on_the_cohort_and_its_gaps() {
        let set = default_rules();
        let profiles = cohort();
        assert!(profiles.len() > 6000, "{} profiles", profiles.len());
        let mut checked = 0;
        for (i, json) in profiles.iter().enumerate() {
            let profile = Arc::new(Profile::from_value(json.clone()).expect("cohort profile"));
            assert_same(&set, &profile, Deferral::Never, &format!("profile {i}"));
            checked += 1;
            if i % 40 != 0 {
                continue;
            }
            for section in [
                "preparation",
                "gk",
                "activity_level",
                "known_needs",
                "person",
            ] {
                let Some(fields) = json[section].as_object() else {
                    continue;
                };
                for field in fields.keys() {
                    for null in [false, true] {
                        let mut variant = json.clone();
                        let object = variant[section].as_object_mut().expect("object");
                        if null {
                            object.insert(field.clone(), serde_json::Value::Null);
                        } else {
                            object.remove(field);
                        }
                        // Some fields may not be null; those variants are not profiles.
                        let Ok(profile) = Profile::from_value(variant) else {
                            continue;
                        };
                        let what = format!("profile {i} with {section}.{field} null={null}");
                        assert_same(&set, &Arc::new(profile), Deferral::Never, &what);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked} profiles checked");
    }

    const PROFILES: [&str; 3] = [
        r#"{"case_id":"X","checked_on":"2024-05-10","preparation":{"sassam_on":null,"consent_received_on":"2024-05-01"},"gk":{"requested_on":"2024-04-01","first_meeting_on":"2024-04-30","interpreter_booked":true},"specialists":["psychologist","social_worker"],"main_diagnosis":"M54.5","activity_level":{"documented":true,"hours_per_week":12.5},"person":{"age":41,"sex":"female"},"known_needs":{"hearing_impairment":true}}"#,
        r#"{"case_id":"Y","checked_on":"2024-05-10"}"#,
        r#"{"case_id":"Z","stage":"gk_closing","checked_on":"2023-01-31","gk":{"requested_on":null,"first_meeting_on":null},"specialists":[],"main_diagnosis":"F32.1","activity_level":{"documented":false,"hours_per_week":null}}"#,
    ];

    /// Scripts beyond the default rules, each run both ways on three profiles: the
    /// outcomes (flags, messages, errors with their positions) must be equal, each
    /// script is or is not translated as listed, and a translated script's program
    /// answers wherever Rhai does not fail, unless the script is listed as partly
    /// outside what programs model.
    #[test]
    fn scripts_agree_with_rhai_including_their_errors() {
        let answered = [
            "true",
            "false",
            "()",
            r#""""#,
            "42",
            "1.5 < 2.5",
            r#"let a = 1; a += 2; a == 3"#,
            r#"let a = 1; a = a - 5; a < 0"#,
            r#"const x = 3; x > 2"#,
            r#"profile.gk.first_meeting_on > profile.gk.requested_on"#,
            r#"profile.gk.first_meeting_on - 3 <= profile.gk.requested_on + 40"#,
            r#"days_between(profile.gk.requested_on, profile.checked_on) > 30"#,
            r#"profile.preparation.consent_received_on > date("2024-04-30")"#,
            r#"date("not a date") == profile.checked_on"#,
            r#"is_true(profile.known_needs.hearing_impairment) && !is_false(profile.gk.interpreter_booked)"#,
            r#"known(profile.preparation.sassam_on) || has_value(profile.preparation.sassam_on)"#,
            r#"known(()) && !has_value(())"#,
            r#"if profile.activity_level.documented { "dokumenterad" } else { false }"#,
            r#"profile.activity_level.hours_per_week >= 10.0"#,
            r#""psychologist" in profile.specialists"#,
            // A name no list holds, known only when the rule runs (a literal one is
            // refused by the lint at load).
            r#"(profile.stage + "_x") in profile.specialists"#,
            r#"has(profile.gk.external_participants, "employer")"#,
            r#"has(profile.gk.external_participants, profile.stage)"#,
            r#"profile.specialists.len() > 1 && !profile.specialists.is_empty()"#,
            r#"diagnosis_group(profile.main_diagnosis) == "psychiatric""#,
            r#"profile.stage == "gk_closing""#,
            r#"profile.benefit != "sickness_benefit""#,
            r#"let s = profile.preparation.sassam_on; is_true(s) || has_value(s) || known(s)"#,
            "let g = profile.gk;",
            "let g = profile.gk; let l = profile.specialists; { let k = profile.known_needs; } g.requested_on > profile.checked_on",
            r#"profile.person.age + 1 > 40"#,
            r#"let l = []; l.push("a"); l.push("b"); if "b" in l { l[1] + l[0] } else { false }"#,
            r#"let l = ["a"]; l[3]"#,
            r#""ps" in "psykolog""#,
            r#"let s = "x"; s += s; s += s; s"#,
            r#"if profile.gk.requested_on > profile.checked_on { return "framtid"; } return;"#,
            r#"let n = profile.known_needs; let b = { let n = 1; n == 1 }; b && is_true(n.hearing_impairment)"#,
            r#"let a = 9223372036854775807; a + 1 > 0"#,
            r#"!profile.activity_level.documented"#,
            r#"profile.person.sex == profile.stage"#,
        ];
        let partly_outside_the_model = [
            // Rhai's ordering of texts.
            r#"profile.stage < "gk_closing""#,
            // A missing value in a message: Rhai's `to_string` of it.
            r#"`Ålder ${profile.person.age}, möte ${profile.gk.first_meeting_on}, tolk ${profile.gk.interpreter_booked}.`"#,
            r#"`Saknas: ${profile.preparation.sassam_on}`"#,
            r#"let a = profile.person.age; let d = profile.gk.first_meeting_on; let b = profile.gk.interpreter_booked; let s = profile.stage; `${s}: ${a} år, ${d}, ${b}, ${s}`"#,
            // A negative index counts from the end in Rhai.
            r#"let l = ["a"]; l[-1]"#,
            // A list holding a number.
            r#"let l = ["a", profile.stage]; l.push(profile.person.age); l.len() == 3"#,
            // A section without the property, where the lint cannot tell which section
            // it is: Rhai reports it.
            "let g = if is_true(profile.gk.interpreter_booked) { profile.gk } else { profile.gk }; g.sex",
        ];
        let not_translated = [
            r#"let s = "x"; loop { s += s; }"#,
            "fn f(n) { f(n + 1) } f(0)",
            r#"throw "stopp""#,
            "let m = #{a: 1}; m.a == 1",
            "let f = |y| y + 1; f.call(2) == 3",
            "switch 1 { 1 => true, _ => false }",
            r#"profile.specialists.to_string() == """#,
            "let x = 0; for i in 0..3 { x += i } x == 3",
            // Lists of anything but texts.
            "let l = [1, 2]; 2 in l",
            // A variable first holding a section, then changed.
            "let g = profile.gk; g = 1; g == 1",
        ];
        let profiles: Vec<Arc<Profile>> = PROFILES
            .iter()
            .map(|p| Arc::new(Profile::from_json(p).expect("profile")))
            .collect();
        let groups = [
            (&answered[..], true, Deferral::WhereRhaiFails),
            (&partly_outside_the_model[..], true, Deferral::Allowed),
            (&not_translated[..], false, Deferral::Allowed),
        ];
        for (scripts, expect_program, deferral) in groups {
            for script in scripts {
                let set = one_rule(script);
                assert_eq!(set.rules[0].runs_fast(), expect_program, "{script}");
                for (i, profile) in profiles.iter().enumerate() {
                    assert_same(&set, profile, deferral, &format!("{script} on profile {i}"));
                }
            }
        }
    }

    type NodeTest = fn(&ASTNode<'_>) -> bool;

    /// A call of the function or operator `name`, as an expression or a statement.
    fn is_call(node: &ASTNode<'_>, name: &str) -> bool {
        match node {
            ASTNode::Expr(RhaiExpr::FnCall(call, _)) | ASTNode::Stmt(RhaiStmt::FnCall(call, _)) => {
                call.name == name
            }
            _ => false,
        }
    }

    fn is_method(node: &ASTNode<'_>, name: &str) -> bool {
        matches!(node, ASTNode::Expr(RhaiExpr::MethodCall(call, _)) if call.name == name)
    }

    /// One small script per construct the translator reads from rhai's AST. Each must
    /// translate, and its program must give Rhai's answer without deferring. rhai's
    /// AST is read through its `internals` feature, which has no stability promise: a
    /// new rhai whose AST has another shape fails here, naming the construct, instead
    /// of silently sending every rule to the slower Rhai path.
    #[test]
    fn rhai_ast_has_the_shape_the_translator_reads() {
        // Construct, a script that uses it, and the node that shows the script does
        // (the optimiser folds some constructs away).
        let constructs: &[(&str, &str, NodeTest)] = &[
            ("literal true", "true", |n| {
                matches!(n, ASTNode::Expr(RhaiExpr::BoolConstant(true, _)))
            }),
            ("literal false", "false", |n| {
                matches!(n, ASTNode::Expr(RhaiExpr::BoolConstant(false, _)))
            }),
            ("unit ()", "()", |n| {
                matches!(n, ASTNode::Expr(RhaiExpr::Unit(_)))
            }),
            ("integer", "profile.person.age == 41", |n| {
                matches!(n, ASTNode::Expr(RhaiExpr::IntegerConstant(..)))
            }),
            (
                "float",
                "profile.activity_level.hours_per_week > 10.5",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::FloatConstant(..))),
            ),
            ("text", r#""text""#, |n| {
                matches!(n, ASTNode::Expr(RhaiExpr::StringConstant(..)))
            }),
            (
                "let",
                "let a = profile.person.age; a == 41",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::Var(_, flags, _)) if !flags.contains(ASTFlags::CONSTANT)),
            ),
            (
                "const",
                "const a = 1; a == 1",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::Var(_, flags, _)) if flags.contains(ASTFlags::CONSTANT)),
            ),
            (
                "assignment",
                "let a = 1; a = profile.person.age; a == 41",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::Assignment(x)) if x.0.get_op_assignment_info().is_none()),
            ),
            (
                "+=",
                "let a = 1; a += profile.person.age; a == 42",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::Assignment(x)) if matches!(x.0.get_op_assignment_info(), Some((.., "+")))),
            ),
            (
                "x = x - n, optimised to -=",
                "let a = 1; a = a - profile.person.age; a < 0",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::Assignment(x)) if matches!(x.0.get_op_assignment_info(), Some((.., "-")))),
            ),
            (
                "list folded to a constant",
                r#"let l = ["a", "b"]; l.len() == 2"#,
                |n| matches!(n, ASTNode::Expr(RhaiExpr::DynamicConstant(v, _)) if v.is_array()),
            ),
            (
                "list built at run time",
                "let l = [profile.stage]; l.len() == 1",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Array(..))),
            ),
            (
                "push",
                r#"let l = []; l.push("a"); l.len() == 1"#,
                |n| matches!(n, ASTNode::Expr(RhaiExpr::MethodCall(c, _)) if c.name == "push"),
            ),
            (
                "index by a literal",
                r#"let l = ["a"]; l[0] == "a""#,
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Index(x, ..)) if matches!(x.rhs, RhaiExpr::IntegerConstant(..))),
            ),
            (
                "index by a variable",
                r#"let l = ["a"]; let i = 0; l[i] == "a""#,
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Index(x, ..)) if matches!(x.rhs, RhaiExpr::Variable(..))),
            ),
            (
                "if statement",
                "let a = 1; if is_true(profile.gk.interpreter_booked) { a = 2; } a == 2",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::If(..))),
            ),
            (
                "if as a value",
                r#"let m = if is_true(profile.gk.interpreter_booked) { "tolk" } else { false }; m"#,
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Stmt(b)) if matches!(b.statements(), [RhaiStmt::If(..)])),
            ),
            (
                "else if",
                r#"if profile.stage == "gk_closing" { 1 } else if profile.stage == "before_gk" { true } else { false }"#,
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::If(flow, _)) if matches!(flow.branch.statements(), [RhaiStmt::If(..)])),
            ),
            (
                "return with a value",
                r#"if has_value(profile.gk.requested_on) { return "begärd"; } false"#,
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::Return(Some(_), flags, _)) if flags.is_empty()),
            ),
            (
                "return without a value",
                "if has_value(profile.gk.requested_on) { return; } true",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::Return(None, flags, _)) if flags.is_empty()),
            ),
            (
                "block statement",
                "let a = 1; { let b = profile.person.age; a = b; } a == 41",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::Block(..))),
            ),
            (
                "block as a value",
                "let b = { let n = profile.person.age; n == 41 }; b",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Stmt(..))),
            ),
            (
                "function call as a statement",
                "is_true(profile.known_needs.hearing_impairment)",
                |n| matches!(n, ASTNode::Stmt(RhaiStmt::FnCall(..))),
            ),
            (
                "&&",
                "is_true(profile.gk.interpreter_booked) && is_true(profile.known_needs.hearing_impairment)",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::And(..))),
            ),
            (
                "||",
                "is_false(profile.gk.interpreter_booked) || is_true(profile.known_needs.hearing_impairment)",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Or(..))),
            ),
            ("!", "!is_false(profile.gk.interpreter_booked)", |n| {
                is_call(n, "!")
            }),
            ("==", r#"profile.stage == "before_gk""#, |n| {
                is_call(n, "==")
            }),
            ("!=", r#"profile.stage != "gk_closing""#, |n| {
                is_call(n, "!=")
            }),
            ("<", "profile.person.age < 50", |n| is_call(n, "<")),
            ("<=", "profile.person.age <= 41", |n| is_call(n, "<=")),
            (">", "profile.person.age > 40", |n| is_call(n, ">")),
            (">=", "profile.person.age >= 41", |n| is_call(n, ">=")),
            ("+ on numbers", "profile.person.age + 1 == 42", |n| {
                is_call(n, "+")
            }),
            ("- on numbers", "profile.person.age - 1 == 40", |n| {
                is_call(n, "-")
            }),
            (
                "+ on texts",
                r#"profile.stage + "!" == "before_gk!""#,
                |n| is_call(n, "+"),
            ),
            (
                "date + days",
                "profile.gk.requested_on + 29 == profile.gk.first_meeting_on",
                |n| is_call(n, "+"),
            ),
            (
                "date - days",
                "profile.gk.first_meeting_on - 29 == profile.gk.requested_on",
                |n| is_call(n, "-"),
            ),
            (
                "in a profile list",
                r#""psychologist" in profile.specialists"#,
                |n| is_call(n, "contains"),
            ),
            (
                "in a list of texts",
                r#""a" in ["a", profile.stage]"#,
                |n| is_call(n, "contains"),
            ),
            ("in a text", r#""before" in profile.stage"#, |n| {
                is_call(n, "contains")
            }),
            (
                "property of profile",
                r#"profile.stage == "before_gk""#,
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Dot(x, ..)) if matches!(x.rhs, RhaiExpr::Property(..))),
            ),
            (
                "property of a section",
                "has_value(profile.gk.requested_on)",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Dot(x, ..)) if matches!(x.rhs, RhaiExpr::Dot(..))),
            ),
            (
                "property of a section in a variable",
                "let g = profile.gk; has_value(g.requested_on)",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Dot(x, ..)) if matches!(x.lhs, RhaiExpr::Variable(..)) && matches!(x.rhs, RhaiExpr::Property(..))),
            ),
            (
                "property of a value known when the rule runs",
                "let g = if is_true(profile.gk.interpreter_booked) { profile.gk } else { profile.person }; has_value(g.requested_on)",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::Dot(x, ..)) if matches!(x.lhs, RhaiExpr::Variable(..))),
            ),
            ("method len", "profile.specialists.len() == 2", |n| {
                is_method(n, "len")
            }),
            ("method is_empty", "!profile.specialists.is_empty()", |n| {
                is_method(n, "is_empty")
            }),
            ("method contains", r#"profile.stage.contains("gk")"#, |n| {
                is_method(n, "contains")
            }),
            ("function len", "len(profile.specialists) == 2", |n| {
                is_call(n, "len")
            }),
            (
                "string interpolation",
                "`${profile.stage} ${profile.person.age} ${profile.gk.requested_on}`",
                |n| matches!(n, ASTNode::Expr(RhaiExpr::InterpolatedString(..))),
            ),
            ("known", "known(profile.preparation.sassam_on)", |n| {
                is_call(n, "known")
            }),
            (
                "has_value",
                "has_value(profile.preparation.consent_received_on)",
                |n| is_call(n, "has_value"),
            ),
            (
                "is_true",
                "is_true(profile.known_needs.hearing_impairment) == true",
                |n| is_call(n, "is_true"),
            ),
            (
                "is_false",
                "is_false(profile.known_needs.hearing_impairment) == false",
                |n| is_call(n, "is_false"),
            ),
            ("date", r#"profile.checked_on == date("2024-05-10")"#, |n| {
                is_call(n, "date")
            }),
            (
                "days_between",
                "days_between(profile.gk.requested_on, profile.gk.first_meeting_on) == 29",
                |n| is_call(n, "days_between"),
            ),
            (
                "diagnosis_group",
                r#"diagnosis_group(profile.main_diagnosis) == "musculoskeletal""#,
                |n| is_call(n, "diagnosis_group"),
            ),
            ("has", r#"has(profile.specialists, "social_worker")"#, |n| {
                is_call(n, "has")
            }),
        ];
        let profile = Arc::new(Profile::from_json(PROFILES[0]).expect("profile"));
        let mut broken = Vec::new();
        for &(construct, script, uses) in constructs {
            let ast = super::super::compile(script)
                .unwrap_or_else(|err| panic!("{construct}: `{script}` does not compile: {err}"));
            if ast.walk(&mut |path: &[ASTNode]| !path.last().is_some_and(uses)) {
                broken.push(format!("{construct}: `{script}` no longer has its node"));
                continue;
            }
            let Some(program) = translate(&ast, &[]) else {
                broken.push(format!("{construct}: `{script}` is no longer translated"));
                continue;
            };
            let set = one_rule(script);
            let expected = set.evaluate_in_rhai(&profile).outcomes.remove(0);
            assert!(
                matches!(expected, RuleOutcome::Clear | RuleOutcome::Flagged { .. }),
                "{construct}: `{script}` must give an answer in Rhai, gave {expected:?}"
            );
            match program.run(&profile, &mut Vec::new(), &[]) {
                Some(outcome) if outcome == expected => {}
                Some(outcome) => broken.push(format!(
                    "{construct}: `{script}` gives {outcome:?}, Rhai gives {expected:?}"
                )),
                None => broken.push(format!(
                    "{construct}: `{script}` defers to Rhai, which gives {expected:?}"
                )),
            }
        }
        assert!(
            broken.is_empty(),
            "rhai's AST no longer has the shape the fast evaluator reads:\n{}",
            broken.join("\n")
        );
    }

    /// Within what it models, a program answers without Rhai.
    #[test]
    fn programs_answer_what_they_model() {
        let profile = Arc::new(Profile::from_json(PROFILES[0]).expect("profile"));
        for (script, expected) in [
            (
                r#"let l = []; l.push("a"); l.push("b"); l[1] + l[0]"#,
                Some("ba"),
            ),
            (
                r#"`${profile.person.age} ${profile.gk.first_meeting_on}`"#,
                Some("41 2024-04-30"),
            ),
            (
                "days_between(profile.gk.requested_on, profile.checked_on) == 39",
                None,
            ),
        ] {
            let set = one_rule(script);
            let program = set.rules[0].program.as_ref().expect("translated");
            let outcome = program.run(&profile, &mut Vec::new(), &[]);
            assert_eq!(
                outcome,
                Some(RuleOutcome::Flagged {
                    message: expected.map(str::to_owned)
                }),
                "{script}"
            );
        }
        // A comparison with a missing value is Rhai's to report.
        let set = one_rule("profile.preparation.sassam_on > profile.checked_on");
        let program = set.rules[0].program.as_ref().expect("translated");
        assert_eq!(program.run(&profile, &mut Vec::new(), &[]), None);
    }
}
