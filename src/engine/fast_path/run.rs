//! Running a translated rule: its tree compiled, once at load, into nested closures.
//!
//! Each node of the tree becomes a closure made for its form, so that running a rule
//! calls straight from one node to the next without matching on the kind of every
//! node again, and the frequent forms get closures of their own: a condition on a
//! variable reads it in place, `is_true(x.field)` calls the field's reader directly, a
//! truth value stored in a variable is never built as a [`Value`] on the way.
//!
//! Each closure runs its operands in the script's order and stops the program with
//! [`Stop::Defer`] on any value it does not model, so that the rule runs in Rhai
//! instead. The differential tests of [`super`] hold the closures to Rhai.

use std::borrow::Cow;

use super::{
    Arithmetic, Block, Comparison, Expr, Helper, Literal, MAX_ARRAY_LEN, MAX_TEXT_BYTES, Member,
    Stmt,
};
use crate::engine::RuleOutcome;
use crate::engine::helpers::{self, Test};
use crate::engine::params::{ParamValue, Parameter};
use crate::engine::value::{Property, Read, Value};
use crate::profile::{Date, Profile};

/// A rule translated from its Rhai AST and compiled for running.
pub(crate) struct Program {
    body: Run,
    /// The texts of the rule's literals; a literal's value borrows its text from here.
    texts: Box<[Box<str>]>,
    slots: usize,
}

/// Why a program stopped before the end of its rule. Kept without data, so a
/// [`Step`] is no larger than a [`Value`]; a returned value waits in the frame.
enum Stop {
    /// `return`; the value is in [`Frame::returned`].
    Return,
    /// Leave this rule to Rhai.
    Defer,
}

type Step<'a> = Result<Value<'a>, Stop>;

/// What one run of a program works on.
struct Frame<'a, 's> {
    profile: &'a Profile,
    texts: &'a [Box<str>],
    slots: &'s mut Vec<Value<'a>>,
    /// The rule's parameters; a program reads each one's value on the check's day.
    parameters: &'a [Parameter],
    returned: Value<'a>,
}

/// An expression: its value.
type Run = Box<dyn for<'a> Fn(&mut Frame<'a, '_>) -> Step<'a> + Send + Sync>;
/// A condition: its truth value, which must be one.
type Cond = Box<dyn for<'a> Fn(&mut Frame<'a, '_>) -> Result<bool, Stop> + Send + Sync>;
/// A statement run for its effect.
type Exec = Box<dyn for<'a> Fn(&mut Frame<'a, '_>) -> Result<(), Stop> + Send + Sync>;

impl Program {
    /// Compiles a translated body that uses `slots` variables.
    pub(super) fn compile(body: &Block, slots: usize) -> Self {
        let mut compiler = Compiler::default();
        let body = compiler.block_value(body);
        Self {
            body,
            texts: compiler.texts.into(),
            slots,
        }
    }

    /// How many variables the program keeps: the length of `slots` it needs.
    pub(crate) fn slots(&self) -> usize {
        self.slots
    }

    /// The rule's outcome, or `None` when the rule must be run in Rhai instead.
    /// `slots` is scratch space, reused across rules to save allocations; `parameters`
    /// are the rule's, in declaration order, each with a value on the check's day.
    pub(crate) fn run<'a>(
        &'a self,
        profile: &'a Profile,
        slots: &mut Vec<Value<'a>>,
        parameters: &'a [Parameter],
    ) -> Option<RuleOutcome> {
        // Every variable is written by its `let` before it is read, so values left by
        // an earlier rule are never seen; they are dropped with `slots`.
        if slots.len() < self.slots {
            slots.resize_with(self.slots, || Value::Unit);
        }
        let mut frame = Frame {
            profile,
            texts: &self.texts,
            slots,
            parameters,
            returned: Value::Unit,
        };
        let value = match (self.body)(&mut frame) {
            Ok(value) => value,
            Err(Stop::Return) => frame.returned,
            Err(Stop::Defer) => return None,
        };
        match value {
            Value::Unit | Value::Bool(false) => Some(RuleOutcome::Clear),
            Value::Bool(true) => Some(RuleOutcome::Flagged { message: None }),
            Value::Text(message)
                if !message.trim().is_empty()
                    && !crate::visible::has_hidden_characters(
                        &message,
                        crate::visible::Lines::Many,
                    ) =>
            {
                Some(RuleOutcome::Flagged {
                    message: Some(message.into_owned()),
                })
            }
            // An empty message, one with characters that do not show, or a value of
            // another type: Rhai words the failure.
            _ => None,
        }
    }
}

/// A value an operation only looks at: a variable is lent in place, anything else is
/// run and let go afterwards.
enum Operand {
    Local(usize),
    Run(Run),
}

impl Operand {
    #[inline(always)]
    fn lend<'a, R>(
        &self,
        frame: &mut Frame<'a, '_>,
        use_value: impl FnOnce(&Value<'a>) -> Result<R, Stop>,
    ) -> Result<R, Stop> {
        match self {
            Self::Local(slot) => use_value(&frame.slots[*slot]),
            Self::Run(run) => {
                let value = run(frame)?;
                let answer = use_value(&value);
                discard(value);
                answer
            }
        }
    }
}

/// Hands the values of `a` and `b` to `use_values`. `a` runs before `b`; reading a
/// variable has no effect and cannot stop, so when one of the two is a variable the
/// other may run first.
#[inline(always)]
fn lend_both<'a, R>(
    a: &Operand,
    b: &Operand,
    frame: &mut Frame<'a, '_>,
    use_values: impl FnOnce(&Value<'a>, &Value<'a>) -> Result<R, Stop>,
) -> Result<R, Stop> {
    match (a, b) {
        (Operand::Local(x), Operand::Local(y)) => use_values(&frame.slots[*x], &frame.slots[*y]),
        (Operand::Local(x), Operand::Run(b)) => {
            let b = b(frame)?;
            let answer = use_values(&frame.slots[*x], &b);
            discard(b);
            answer
        }
        (Operand::Run(a), Operand::Local(y)) => {
            let a = a(frame)?;
            let answer = use_values(&a, &frame.slots[*y]);
            discard(a);
            answer
        }
        (Operand::Run(a), Operand::Run(b)) => {
            let a = a(frame)?;
            let b = match b(frame) {
                Ok(b) => b,
                Err(stop) => {
                    discard(a);
                    return Err(stop);
                }
            };
            let answer = use_values(&a, &b);
            discard(a);
            discard(b);
            answer
        }
    }
}

/// Drops `value` without a call to `Value`'s drop for the kinds that own nothing: most
/// values a rule handles (truth values, dates, missing fields, borrowed texts), whose
/// drop through that call is otherwise about a tenth of an evaluation.
#[inline(always)]
fn discard(value: Value<'_>) {
    // Every kind named, so that a new kind that owns something cannot be forgotten here.
    match &value {
        Value::Text(Cow::Owned(_)) | Value::Array(_) => drop(value),
        Value::Unit
        | Value::Bool(_)
        | Value::Int(_)
        | Value::Float(_)
        | Value::Text(Cow::Borrowed(_))
        | Value::Date(_)
        | Value::Missing(_)
        | Value::Section(_)
        | Value::List(_)
        | Value::Other => std::mem::forget(value),
    }
}

/// Whether `expr` is a condition: its value is a truth value built by [`Compiler::cond`].
fn is_condition(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Not(_)
            | Expr::All(_)
            | Expr::Any(_)
            | Expr::Compare(..)
            | Expr::InList(_)
            | Expr::Call(Helper::Test(_), _)
    )
}

/// Whether `statement` binds a variable to a value known at translation (`let gk =
/// profile.gk`). The translator reads such a variable as that value, never from its
/// slot, so the binding has nothing to do when the rule runs.
fn binds_fixed_value(statement: &Stmt) -> bool {
    matches!(statement, Stmt::Let(_, Expr::Fixed(_)))
}

/// The reader of a profile field, when `expr` reads one.
fn field_reader(expr: &Expr) -> Option<for<'p> fn(&'p Profile) -> Value<'p>> {
    match expr {
        Expr::Read(Property {
            read: Read::Field(read),
            ..
        }) => Some(*read),
        _ => None,
    }
}

#[derive(Default)]
struct Compiler {
    texts: Vec<Box<str>>,
}

impl Compiler {
    /// Keeps `text` for the program; its index in [`Frame::texts`].
    fn text(&mut self, text: &str) -> usize {
        self.texts.push(text.into());
        self.texts.len() - 1
    }

    /// The block's value: its last statement's, `()` when empty.
    fn block_value(&mut self, block: &Block) -> Run {
        let Some((last, leading)) = block.0.split_last() else {
            return Box::new(|_| Ok(Value::Unit));
        };
        let leading = self.execs(leading);
        let last = self.stmt_value(last);
        if leading.is_empty() {
            return last;
        }
        Box::new(move |frame| {
            for statement in &leading {
                statement(frame)?;
            }
            last(frame)
        })
    }

    /// The statements that do something, each run for its effect.
    fn execs(&mut self, statements: &[Stmt]) -> Box<[Exec]> {
        statements
            .iter()
            .filter(|s| !binds_fixed_value(s))
            .map(|s| self.exec(s))
            .collect()
    }

    /// The statement's value: an expression's, `()` for the others.
    fn stmt_value(&mut self, statement: &Stmt) -> Run {
        match statement {
            Stmt::Eval(expr) => self.expr(expr),
            _ => {
                let exec = self.exec(statement);
                Box::new(move |frame| exec(frame).map(|()| Value::Unit))
            }
        }
    }

    /// The statement run for its effect alone.
    fn exec(&mut self, statement: &Stmt) -> Exec {
        match statement {
            _ if binds_fixed_value(statement) => Box::new(|_| Ok(())),
            Stmt::Let(slot, value) | Stmt::Set(slot, value) => {
                let slot = *slot;
                if is_condition(value) {
                    let cond = self.cond(value);
                    return Box::new(move |frame| {
                        let value = Value::Bool(cond(frame)?);
                        discard(std::mem::replace(&mut frame.slots[slot], value));
                        Ok(())
                    });
                }
                let value = self.expr(value);
                Box::new(move |frame| {
                    let value = value(frame)?;
                    discard(std::mem::replace(&mut frame.slots[slot], value));
                    Ok(())
                })
            }
            Stmt::Update(slot, op, value) => {
                let (slot, op) = (*slot, *op);
                let value = self.expr(value);
                Box::new(move |frame| {
                    let value = value(frame)?;
                    match (op, &mut frame.slots[slot], &value) {
                        // `text += more` grows the variable's own text in place.
                        (Arithmetic::Add, Value::Text(Cow::Owned(text)), Value::Text(more))
                            if text.len() + more.len() <= MAX_TEXT_BYTES =>
                        {
                            text.push_str(more);
                        }
                        (_, current, _) => *current = arithmetic(op, current, &value)?,
                    }
                    Ok(())
                })
            }
            Stmt::Push(slot, item) => {
                let slot = *slot;
                let item = self.expr(item);
                Box::new(move |frame| {
                    let Value::Text(item) = item(frame)? else {
                        return Err(Stop::Defer);
                    };
                    match &mut frame.slots[slot] {
                        Value::Array(items) if items.len() < MAX_ARRAY_LEN => items.push(item),
                        _ => return Err(Stop::Defer),
                    }
                    Ok(())
                })
            }
            // An `if` statement: its branches run for their effects.
            Stmt::Eval(Expr::If(test, then, otherwise)) => {
                let test = self.cond(test);
                let then = self.execs(&then.0);
                let otherwise = self.execs(&otherwise.0);
                Box::new(move |frame| {
                    let branch = if test(frame)? { &then } else { &otherwise };
                    for statement in branch {
                        statement(frame)?;
                    }
                    Ok(())
                })
            }
            Stmt::Eval(expr) if is_condition(expr) => {
                let cond = self.cond(expr);
                Box::new(move |frame| cond(frame).map(|_| ()))
            }
            Stmt::Eval(expr) => {
                let expr = self.expr(expr);
                Box::new(move |frame| expr(frame).map(drop))
            }
            Stmt::Return(value) => {
                let value = self.expr(value);
                Box::new(move |frame| {
                    frame.returned = value(frame)?;
                    Err(Stop::Return)
                })
            }
        }
    }

    /// A condition (`if`, `!`, `&&`, `||`): the value must be a truth value. The common
    /// forms are answered without building a [`Value`].
    fn cond(&mut self, expr: &Expr) -> Cond {
        match expr {
            Expr::Not(operand) => {
                let operand = self.cond(operand);
                Box::new(move |frame| Ok(!operand(frame)?))
            }
            Expr::All(operands) => self.short_circuit(operands, false),
            Expr::Any(operands) => self.short_circuit(operands, true),
            Expr::InList(member) => {
                let member = *member;
                Box::new(move |frame| Ok(member.is_in(frame.profile)))
            }
            Expr::Call(Helper::Test(test), args) => match &**args {
                [arg] => self.test(*test, arg),
                _ => Box::new(|_| Err(Stop::Defer)),
            },
            Expr::Compare(comparison, operands) => {
                let comparison = *comparison;
                let [a, b] = &**operands;
                if let (Some(read), Expr::Literal(Literal::Text(text))) = (field_reader(a), b) {
                    let text = text.clone();
                    return Box::new(move |frame| {
                        let value = read(frame.profile);
                        let answer =
                            compare(comparison, &value, &Value::Text(Cow::Borrowed(&text)));
                        discard(value);
                        answer
                    });
                }
                let (a, b) = (self.operand(a), self.operand(b));
                Box::new(move |frame| lend_both(&a, &b, frame, |a, b| compare(comparison, a, b)))
            }
            Expr::Local(slot) => {
                let slot = *slot;
                Box::new(move |frame| match &frame.slots[slot] {
                    Value::Bool(b) => Ok(*b),
                    _ => Err(Stop::Defer),
                })
            }
            _ => {
                let run = self.expr(expr);
                Box::new(move |frame| match run(frame)? {
                    Value::Bool(b) => Ok(b),
                    other => {
                        discard(other);
                        Err(Stop::Defer)
                    }
                })
            }
        }
    }

    /// `&&` (`decisive` false) or `||` (`decisive` true): the operands in turn until
    /// one is `decisive`.
    fn short_circuit(&mut self, operands: &[Expr], decisive: bool) -> Cond {
        let operands: Vec<Cond> = operands.iter().map(|o| self.cond(o)).collect();
        match <[Cond; 2]>::try_from(operands) {
            Ok([a, b]) => Box::new(move |frame| {
                if a(frame)? == decisive {
                    Ok(decisive)
                } else {
                    b(frame)
                }
            }),
            Err(operands) => Box::new(move |frame| {
                for operand in &operands {
                    if operand(frame)? == decisive {
                        return Ok(decisive);
                    }
                }
                Ok(!decisive)
            }),
        }
    }

    /// `known(x)`, `has_value(x)`, `is_true(x)`, `is_false(x)`: a profile field is read
    /// and a variable looked at in place.
    fn test(&mut self, test: Test, arg: &Expr) -> Cond {
        if let Some(read) = field_reader(arg) {
            return Box::new(move |frame| {
                let value = read(frame.profile);
                let answer = test.answer(&value);
                discard(value);
                Ok(answer)
            });
        }
        match self.operand(arg) {
            Operand::Local(slot) => Box::new(move |frame| Ok(test.answer(&frame.slots[slot]))),
            arg => Box::new(move |frame| arg.lend(frame, |value| Ok(test.answer(value)))),
        }
    }

    fn operand(&mut self, expr: &Expr) -> Operand {
        match expr {
            Expr::Local(slot) => Operand::Local(*slot),
            _ => Operand::Run(self.expr(expr)),
        }
    }

    fn exprs(&mut self, exprs: &[Expr]) -> Box<[Run]> {
        exprs.iter().map(|e| self.expr(e)).collect()
    }

    fn expr(&mut self, expr: &Expr) -> Run {
        match expr {
            Expr::Literal(literal) => match literal {
                Literal::Unit => Box::new(|_| Ok(Value::Unit)),
                &Literal::Bool(b) => Box::new(move |_| Ok(Value::Bool(b))),
                &Literal::Int(i) => Box::new(move |_| Ok(Value::Int(i))),
                &Literal::Float(f) => Box::new(move |_| Ok(Value::Float(f))),
                Literal::Text(text) => {
                    let index = self.text(text);
                    Box::new(move |frame| Ok(Value::Text(Cow::Borrowed(&frame.texts[index]))))
                }
            },
            Expr::Fixed(value) => match *value {
                Value::Section(section) => Box::new(move |_| Ok(Value::Section(section))),
                Value::List(list) => Box::new(move |_| Ok(Value::List(list))),
                _ => {
                    let value = value.clone();
                    Box::new(move |_| Ok(value.clone()))
                }
            },
            Expr::Local(slot) => {
                let slot = *slot;
                Box::new(move |frame| Ok(frame.slots[slot].clone()))
            }
            Expr::Read(property) => match field_reader(expr) {
                Some(read) => Box::new(move |frame| Ok(read(frame.profile))),
                None => {
                    let property: &'static Property = property;
                    Box::new(move |frame| Ok(property.value(frame.profile)))
                }
            },
            Expr::Param(index) => {
                let index = *index;
                Box::new(move |frame| {
                    frame
                        .parameters
                        .get(index)
                        .and_then(|p| p.on(frame.profile.checked_on))
                        .map(ParamValue::value)
                        .ok_or(Stop::Defer)
                })
            }
            Expr::Get(base, candidates) => {
                let base = self.expr(base);
                let candidates = candidates.clone();
                Box::new(move |frame| match base(frame)? {
                    Value::Section(section) => Ok(candidates
                        .iter()
                        .find(|p| p.section == section)
                        .ok_or(Stop::Defer)?
                        .value(frame.profile)),
                    other => {
                        discard(other);
                        Err(Stop::Defer)
                    }
                })
            }
            Expr::Not(_) | Expr::All(_) | Expr::Any(_) | Expr::Compare(..) | Expr::InList(_) => {
                let cond = self.cond(expr);
                Box::new(move |frame| Ok(Value::Bool(cond(frame)?)))
            }
            Expr::Arithmetic(op, operands) => {
                let op = *op;
                let [a, b] = &**operands;
                let (a, b) = (self.operand(a), self.operand(b));
                Box::new(move |frame| lend_both(&a, &b, frame, |a, b| arithmetic(op, a, b)))
            }
            Expr::Call(helper, args) => self.call(*helper, args),
            Expr::Interpolate(parts) => self.interpolate(parts),
            // A list literal larger than the program keeps lists is Rhai's to build.
            Expr::Array(items) if items.len() > MAX_ARRAY_LEN => Box::new(|_| Err(Stop::Defer)),
            Expr::Array(items) => {
                let items = self.exprs(items);
                Box::new(move |frame| {
                    let mut values = Vec::with_capacity(items.len());
                    for item in &items {
                        match item(frame)? {
                            Value::Text(text) => values.push(text),
                            other => {
                                discard(other);
                                return Err(Stop::Defer);
                            }
                        }
                    }
                    Ok(Value::Array(values))
                })
            }
            Expr::Index(operands) => {
                let [base, index] = &**operands;
                let index = self.expr(index);
                let base = self.operand(base);
                Box::new(move |frame| {
                    let index = match index(frame)? {
                        Value::Int(i) => usize::try_from(i).map_err(|_| Stop::Defer)?,
                        other => {
                            discard(other);
                            return Err(Stop::Defer);
                        }
                    };
                    // A variable's array is indexed in place rather than copied.
                    base.lend(frame, |base| match base {
                        Value::Array(items) => items
                            .get(index)
                            .cloned()
                            .map(Value::Text)
                            .ok_or(Stop::Defer),
                        _ => Err(Stop::Defer),
                    })
                })
            }
            Expr::If(test, then, otherwise) => {
                let test = self.cond(test);
                let then = self.block_value(then);
                let otherwise = self.block_value(otherwise);
                Box::new(move |frame| {
                    if test(frame)? {
                        then(frame)
                    } else {
                        otherwise(frame)
                    }
                })
            }
            Expr::Block(block) => self.block_value(block),
        }
    }

    /// A helper of the authoring guide, or a method Rhai has for lists and texts.
    fn call(&mut self, helper: Helper, args: &[Expr]) -> Run {
        let (first, second) = match args {
            [first] => (first, None),
            [first, second] => (first, Some(second)),
            _ => return Box::new(|_| Err(Stop::Defer)),
        };
        match helper {
            Helper::Len | Helper::IsEmpty => {
                let arg = self.operand(first);
                let is_len = matches!(helper, Helper::Len);
                Box::new(move |frame| {
                    let profile = frame.profile;
                    arg.lend(frame, |value| {
                        let len = match value {
                            Value::List(kind) => kind.len(profile),
                            Value::Array(items) => items.len(),
                            _ => return Err(Stop::Defer),
                        };
                        Ok(if is_len {
                            Value::Int(i64::try_from(len).map_err(|_| Stop::Defer)?)
                        } else {
                            Value::Bool(len == 0)
                        })
                    })
                })
            }
            Helper::Test(test) => {
                let cond = self.test(test, first);
                Box::new(move |frame| Ok(Value::Bool(cond(frame)?)))
            }
            Helper::Date => {
                let arg = self.expr(first);
                Box::new(move |frame| match arg(frame)? {
                    Value::Text(text) => {
                        Ok(Value::Date(helpers::date(&text).map_err(|_| Stop::Defer)?))
                    }
                    other => {
                        discard(other);
                        Err(Stop::Defer)
                    }
                })
            }
            Helper::DiagnosisGroup => {
                let arg = self.operand(first);
                Box::new(move |frame| {
                    arg.lend(frame, |value| {
                        Ok(Value::Text(Cow::Borrowed(helpers::diagnosis_group(value))))
                    })
                })
            }
            Helper::DaysBetween | Helper::Has | Helper::Contains => {
                let Some(second) = second else {
                    return Box::new(|_| Err(Stop::Defer));
                };
                let (a, b) = (self.operand(first), self.operand(second));
                Box::new(move |frame| {
                    let profile = frame.profile;
                    lend_both(&a, &b, frame, |a, b| two_argument(helper, profile, a, b))
                })
            }
        }
    }

    /// `` `text ${value} text` ``: the literal parts are copied, the others formatted.
    fn interpolate(&mut self, parts: &[Expr]) -> Run {
        enum Part {
            Text(Box<str>),
            Value(Operand),
        }
        let literal_len: usize = parts
            .iter()
            .map(|part| match part {
                Expr::Literal(Literal::Text(t)) => t.len(),
                _ => 0,
            })
            .sum();
        let parts: Box<[Part]> = parts
            .iter()
            .map(|part| match part {
                Expr::Literal(Literal::Text(t)) => Part::Text(t.clone()),
                _ => Part::Value(self.operand(part)),
            })
            .collect();
        // When every value is a variable, read in place with no effect, the text's length
        // is measured first and the text allocated once at that size; a message that
        // names a long text (a sentence kept in a variable) is otherwise grown, and
        // copied, as it is built.
        let only_variables = parts
            .iter()
            .all(|part| matches!(part, Part::Text(_) | Part::Value(Operand::Local(_))));
        let guessed_len = literal_len
            + 16 * parts
                .iter()
                .filter(|part| matches!(part, Part::Value(_)))
                .count();
        Box::new(move |frame| {
            let capacity = if only_variables {
                let mut len = literal_len;
                for part in &parts {
                    if let Part::Value(Operand::Local(slot)) = part {
                        len += formatted_len(&frame.slots[*slot]);
                    }
                }
                len
            } else {
                guessed_len
            };
            let mut text = String::with_capacity(capacity);
            for part in &parts {
                match part {
                    Part::Text(t) => text.push_str(t),
                    Part::Value(value) => value.lend(frame, |value| {
                        match value {
                            Value::Text(t) => text.push_str(t),
                            Value::Int(i) => text.push_str(itoa::Buffer::new().format(*i)),
                            Value::Bool(b) => text.push_str(if *b { "true" } else { "false" }),
                            Value::Date(d) => push_date(&mut text, *d),
                            _ => return Err(Stop::Defer),
                        }
                        Ok(())
                    })?,
                }
            }
            checked_text(text)
        })
    }
}

/// The length of `value` as interpolation writes it, or at least enough for it: a
/// number's longest, a date's usual ten characters.
fn formatted_len(value: &Value<'_>) -> usize {
    match value {
        Value::Text(t) => t.len(),
        Value::Int(_) => 20,
        Value::Date(_) => 10,
        Value::Bool(_) => 5,
        // Not written: interpolation leaves the rule to Rhai.
        _ => 0,
    }
}

/// Writes `date` as Rhai shows it, the profile's `YYYY-MM-DD`.
fn push_date(text: &mut String, date: Date) {
    match date.iso_digits() {
        Some(digits) => text.push_str(digits.as_str()),
        None => {
            use std::fmt::Write as _;
            let _ = write!(text, "{date}");
        }
    }
}

fn two_argument<'a>(helper: Helper, profile: &Profile, a: &Value<'a>, b: &Value<'a>) -> Step<'a> {
    Ok(match helper {
        Helper::DaysBetween => match (a, b) {
            (Value::Date(from), Value::Date(to)) => Value::Int(helpers::days_between(*from, *to)),
            _ => return Err(Stop::Defer),
        },
        _ => Value::Bool(match (a, b) {
            (Value::List(kind), Value::Text(name)) => {
                kind.contains(profile, name).map_err(|_| Stop::Defer)?
            }
            (Value::Array(items), Value::Text(text)) if matches!(helper, Helper::Contains) => {
                items.contains(text)
            }
            (Value::Text(text), Value::Text(part)) if matches!(helper, Helper::Contains) => {
                text.contains(&**part)
            }
            _ => return Err(Stop::Defer),
        }),
    })
}

fn checked_text(text: String) -> Step<'static> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Stop::Defer);
    }
    Ok(Value::Text(Cow::Owned(text)))
}

fn arithmetic<'a>(op: Arithmetic, a: &Value<'a>, b: &Value<'a>) -> Step<'a> {
    Ok(match (op, a, b) {
        (Arithmetic::Add, Value::Int(a), Value::Int(b)) => {
            Value::Int(a.checked_add(*b).ok_or(Stop::Defer)?)
        }
        (Arithmetic::Subtract, Value::Int(a), Value::Int(b)) => {
            Value::Int(a.checked_sub(*b).ok_or(Stop::Defer)?)
        }
        (Arithmetic::Add, Value::Text(a), Value::Text(b)) => {
            let mut text = String::with_capacity(a.len() + b.len());
            text.push_str(a);
            text.push_str(b);
            checked_text(text)?
        }
        // Outside the years 1–9999: Rhai runs the rule again and names the error.
        (Arithmetic::Add, Value::Date(d), Value::Int(days)) => {
            Value::Date(helpers::plus_days(*d, *days).ok_or(Stop::Defer)?)
        }
        (Arithmetic::Subtract, Value::Date(d), Value::Int(days)) => {
            Value::Date(helpers::minus_days(*d, *days).ok_or(Stop::Defer)?)
        }
        _ => return Err(Stop::Defer),
    })
}

fn compare(comparison: Comparison, a: &Value<'_>, b: &Value<'_>) -> Result<bool, Stop> {
    use std::cmp::Ordering;
    let ordering = match (a, b) {
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::Date(a), Value::Date(b)) => a.cmp(b),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b).ok_or(Stop::Defer)?,
        // Text and truth values: equality only; Rhai's ordering of them is its own.
        (Value::Text(a), Value::Text(b)) => return equality(comparison, a == b),
        (Value::Bool(a), Value::Bool(b)) => return equality(comparison, a == b),
        _ => return Err(Stop::Defer),
    };
    Ok(match comparison {
        Comparison::Equal => ordering == Ordering::Equal,
        Comparison::NotEqual => ordering != Ordering::Equal,
        Comparison::Less => ordering == Ordering::Less,
        Comparison::LessOrEqual => ordering != Ordering::Greater,
        Comparison::Greater => ordering == Ordering::Greater,
        Comparison::GreaterOrEqual => ordering != Ordering::Less,
    })
}

fn equality(comparison: Comparison, equal: bool) -> Result<bool, Stop> {
    match comparison {
        Comparison::Equal => Ok(equal),
        Comparison::NotEqual => Ok(!equal),
        _ => Err(Stop::Defer),
    }
}

impl Member {
    fn is_in(self, profile: &Profile) -> bool {
        match self {
            Self::Specialist(s) => profile.specialists.contains(&s),
            Self::ExternalParticipant(p) => profile.gk.external_participants.contains(&p),
        }
    }
}
