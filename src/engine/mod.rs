//! Evaluating a compiled [`ruleset::RuleSet`] against a [`crate::profile::Profile`] in a sandboxed Rhai engine.
//!
//! One [`rhai::Engine`] is built per process and shared by every rule set and thread.
//! Scripts have no file, network, module or process access, no `print`/`debug` output
//! (a script could otherwise leak profile data into a log), and every script runs under
//! the limits of [`LIMITS`], so a runaway rule ends in an error for that rule alone.
//! The engine counts a rule's operations itself, those of `map`, `filter` and `sort`
//! callbacks included (Rhai counts those on a copy it throws away). The operation limit
//! bounds steps, not time (one step can copy a large list), so one check's scripts
//! together also stop after [`Limits::max_check_time`], and work that runs uploaded
//! scripts against a clock stops them at its own time ([`stop_evaluations_at`]).
//!
//! The hot path: one `Arc` of the profile is pushed as a scope constant once per
//! evaluation; each rule then runs its precompiled AST with its own function-resolution
//! cache, kept from earlier evaluations ([`EvalStatePool`]), and the scope is rewound.
//! BENCHMARKS.md has the measurements behind each of these choices.

mod evaluate;
pub(crate) mod fast_path;
pub mod helpers;
pub(crate) mod lint;
pub mod params;
pub mod reasons;
pub mod ruleset;
pub mod script_api;
pub(crate) mod syntax;
pub mod value;

pub use evaluate::UnchangedRules;

use std::cell::Cell;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use rhai::{Caches, Dynamic, Engine, EvalAltResult, OptimizationLevel, ParseError, Scope};

pub(super) type RhaiResult = Result<Dynamic, Box<EvalAltResult>>;

/// Resource limits applied to every rule script. The default rules use at most ~150
/// operations per profile; the operation limit ends an endless loop in well under
/// 10 ms.
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_function_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_variables: usize,
    /// The longest one check's rules may run in Rhai, all together: past it, the rule
    /// running and every later one fail ([`FailureKind::LimitExceeded`]).
    pub max_check_time: std::time::Duration,
}

pub const LIMITS: Limits = Limits {
    max_operations: 100_000,
    max_call_levels: 32,
    max_expr_depth: 64,
    max_function_expr_depth: 32,
    max_string_size: 10_000,
    max_array_size: 1_000,
    // Rhai counts a map's entries, not the bytes of its keys: 100 keys of a whole text's
    // 10,000 bytes is a map of 1 MB, where 1,000 made one of 10 MB.
    max_map_size: 100,
    max_variables: 200,
    max_check_time: std::time::Duration::from_secs(1),
};

/// The stack a thread that evaluates rules is given. Rhai compares, prints and
/// interpolates lists and maps recursively, and the size limits allow them nested 2,000
/// deep (1,000 lists and 1,000 maps in turn): measured, that takes 4 MiB of stack in a
/// release build and 16 MiB unoptimised, where Rust's default for a new thread is 2 MiB
/// and running out aborts the process. Only the pages a thread touches are used.
pub const STACK_BYTES: usize = 32 << 20;

static ENGINE: LazyLock<Engine> = LazyLock::new(build_engine);

/// Rhai's keywords that scripts cannot use, each with why, for the rule's author.
/// `curry` binds values to a function pointer, where Rhai's limits on the size of lists,
/// maps and texts do not count them: nested, they hold any amount of memory and copying
/// one is a single operation.
pub(crate) const DISABLED_KEYWORDS: &[(&str, &str)] = &[
    (
        "eval",
        "`eval` finns inte för regler: en regel kör bara sin egen text",
    ),
    (
        "curry",
        "`curry` finns inte för regler: värden som binds till en funktion räknas inte in i gränserna för listor och texter",
    ),
];

/// Why `sleep` fails in a rule.
pub(crate) const SLEEP_REFUSED: &str = "`sleep` finns inte för regler: en regel får inte vänta";

thread_local! {
    /// Operations of the rule running on this thread, callbacks included; set to zero
    /// as each rule starts ([`run_rule`]).
    static OPERATIONS: Cell<u64> = const { Cell::new(0) };
    /// When scripts evaluated on this thread must stop, if ever, and why
    /// ([`stop_evaluations_at`], [`start_check_time`]).
    static STOP_AT: Cell<Option<(Instant, StopReason)>> = const { Cell::new(None) };
    /// The stop time has been seen passed: every further operation stops at once.
    static STOPPED: Cell<bool> = const { Cell::new(false) };
    /// Operations since the clock was last read, while a stop time is set. Counted here
    /// rather than taken from Rhai's count, which a callback of `map`, `filter`, `sort`
    /// and the like runs on a copy of and throws away.
    static SINCE_CLOCK_READ: Cell<u32> = const { Cell::new(0) };
    /// A rule's script is running on this thread, under a catch of Rhai's panics.
    static IN_RULE: Cell<bool> = const { Cell::new(false) };
}

/// Whether a panic now is the script engine's inside a rule, which the rule's failure
/// reports ([`run_rule_caught`]): a panic hook need not.
pub fn panicking_inside_a_rule() -> bool {
    IN_RULE.get()
}

/// [`run_rule`], with a panic of Rhai's (a script it parsed but cannot run, such as
/// `const K = #{a: 1}; K.a = 2;`) caught: `None` then.
pub(super) fn run_rule_caught(
    scope: &mut Scope,
    caches: &mut Caches,
    ast: &rhai::AST,
) -> Option<RhaiResult> {
    IN_RULE.set(true);
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_rule(scope, caches, ast)
    }));
    IN_RULE.set(false);
    ran.ok()
}

/// While a stop time is set, a script reads the clock once every this many operations.
const OPERATIONS_BETWEEN_CLOCK_READS: u32 = 256;

/// Past this many operations of one rule, the clock is read every
/// [`OPERATIONS_BETWEEN_CLOCK_READS_LATER`] operations: one operation can take tens of
/// milliseconds (a `replace` building a text far over the size limit before the limit
/// refuses it), and the default rules take at most a few dozen each.
const OPERATIONS_BEFORE_READING_OFTEN: u64 = 32;

/// How often the clock is read past [`OPERATIONS_BEFORE_READING_OFTEN`].
const OPERATIONS_BETWEEN_CLOCK_READS_LATER: u32 = 16;

/// Scripts evaluated on this thread stop at `at` while the returned guard lives: each
/// such rule fails ([`FailureKind::LimitExceeded`]); past `at`, at its first operation.
/// For work that runs uploaded scripts against a time limit; dropping the guard, on the
/// same thread, restores what was set before.
#[must_use = "the stop time holds only while the guard lives"]
pub fn stop_evaluations_at(at: Instant) -> StopGuard {
    stop_at(at, StopReason::TrialTime)
}

/// One check's scripts on this thread stop [`Limits::max_check_time`] from now, unless a
/// stop time at or before that is set already. Each evaluation starts one as its first
/// rule starts in Rhai; a check that evaluates two rule sets (the live and the shadow
/// set) starts one around both, so they share the time.
#[must_use = "the stop time holds only while the guard lives"]
pub fn start_check_time() -> StopGuard {
    stop_at(
        Instant::now() + LIMITS.max_check_time,
        StopReason::CheckTime,
    )
}

fn stop_at(at: Instant, reason: StopReason) -> StopGuard {
    if STOP_AT.get().is_some_and(|(set, _)| set <= at) {
        return StopGuard {
            earlier: None,
            not_send: std::marker::PhantomData,
        };
    }
    StopGuard {
        earlier: Some((
            STOP_AT.replace(Some((at, reason))),
            STOPPED.replace(Instant::now() >= at),
        )),
        not_send: std::marker::PhantomData,
    }
}

/// Keeps a stop time set on this thread ([`stop_evaluations_at`]); it cannot leave the
/// thread, whose stop time it restores.
pub struct StopGuard {
    /// What was set before, when this guard set an earlier stop time.
    earlier: Option<(Option<(Instant, StopReason)>, bool)>,
    not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        if let Some((stop_at, stopped)) = self.earlier {
            STOP_AT.set(stop_at);
            STOPPED.set(stopped);
        }
    }
}

/// Whose time a stop time is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    /// A trial of uploaded scripts ran out of its time ([`stop_evaluations_at`]).
    TrialTime,
    /// One check's scripts ran out of [`Limits::max_check_time`].
    CheckTime,
}

/// Why the progress callback ended a script: the token of Rhai's `ErrorTerminated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Over the operation limit, counting the operations of callbacks.
    TooManyOperations,
    /// Past this thread's stop time.
    StopTime(StopReason),
}

/// Rhai's progress callback, called at every operation, callbacks' included: ends a
/// script over the operation limit as the engine counts it, or once this thread's stop
/// time has passed.
fn on_operation(_operations_rhai_counted: u64) -> Option<Dynamic> {
    let operations = OPERATIONS.get() + 1;
    OPERATIONS.set(operations);
    if operations > LIMITS.max_operations {
        return Some(Dynamic::from(Ended::TooManyOperations));
    }
    past_stop_time().map(|reason| Dynamic::from(Ended::StopTime(reason)))
}

/// Why, when this thread's stop time has passed; reads the clock once every
/// [`OPERATIONS_BETWEEN_CLOCK_READS`] operations, more often in a rule past
/// [`OPERATIONS_BEFORE_READING_OFTEN`].
fn past_stop_time() -> Option<StopReason> {
    let (at, reason) = STOP_AT.get()?;
    if STOPPED.get() {
        return Some(reason);
    }
    let since = SINCE_CLOCK_READ.get() + 1;
    let between = if OPERATIONS.get() > OPERATIONS_BEFORE_READING_OFTEN {
        OPERATIONS_BETWEEN_CLOCK_READS_LATER
    } else {
        OPERATIONS_BETWEEN_CLOCK_READS
    };
    if since < between {
        SINCE_CLOCK_READ.set(since);
        return None;
    }
    SINCE_CLOCK_READ.set(0);
    let passed = Instant::now() >= at;
    STOPPED.set(passed);
    passed.then_some(reason)
}

fn build_engine() -> Engine {
    let mut engine = Engine::new();
    // Output from scripts would go to stdout or a log: drop it.
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    for (keyword, _) in DISABLED_KEYWORDS {
        engine.disable_symbol(*keyword);
    }
    engine.set_strict_variables(true);
    engine.set_optimization_level(OptimizationLevel::Simple);
    engine.on_progress(on_operation);
    // Rhai's `sleep` is one operation that holds the thread for as long as it is asked;
    // no rule has a reason to wait. Lint refuses it; this answers it with an error.
    engine.register_fn("sleep", |_: rhai::INT| -> Result<(), Box<EvalAltResult>> {
        Err(SLEEP_REFUSED.into())
    });
    engine.register_fn(
        "sleep",
        |_: rhai::FLOAT| -> Result<(), Box<EvalAltResult>> { Err(SLEEP_REFUSED.into()) },
    );
    engine
        .set_max_operations(LIMITS.max_operations)
        .set_max_call_levels(LIMITS.max_call_levels)
        .set_max_expr_depths(LIMITS.max_expr_depth, LIMITS.max_function_expr_depth)
        .set_max_string_size(LIMITS.max_string_size)
        .set_max_array_size(LIMITS.max_array_size)
        .set_max_map_size(LIMITS.max_map_size)
        .set_max_variables(LIMITS.max_variables);
    script_api::register(&mut engine);
    engine
}

/// Compiles one rule script in the sandbox. Unknown variables are compile errors.
pub(crate) fn compile(script: &str) -> Result<rhai::AST, ParseError> {
    // `profile` is declared as a plain variable here, not a constant: the optimiser
    // would otherwise propagate the placeholder value into the compiled script.
    let mut scope = Scope::new();
    scope.push(script_api::PROFILE_VARIABLE, ());
    // `param` exists for every script; a use that does not fit the rule's parameters
    // is refused at load (`params::check_uses`).
    scope.push(params::PARAM_VARIABLE, ());
    ENGINE.compile_with_scope(&scope, script)
}

/// What one rule gave for one profile.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleOutcome {
    /// The rule ran and did not flag.
    Clear,
    /// The rule flagged; `message` is the script's own, if it gave one.
    Flagged { message: Option<String> },
    /// The rule did not run: disabled, or not in force on the profile's `checked_on`.
    NotApplicable(NotApplicable),
    /// The rule failed. Never to be read as "no flag".
    Failed(RuleFailure),
}

/// Why a rule did not run. Its name (`disabled`, `not_in_force`) is serde's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotApplicable {
    Disabled,
    NotInForce,
}

/// Why a rule failed, and where in its script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    pub kind: FailureKind,
    /// In Swedish, for the rule author. May quote values from the profile, so it is
    /// returned to the caller but never logged.
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// The kind of a rule failure. Its name (`too_many_operations`, `limit_exceeded`,
/// `runtime`, `bad_result`) is serde's, on the wire and in the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The operation limit was hit (an endless or far too long loop).
    TooManyOperations,
    /// A size or depth limit was hit (string, array, map, call depth, variables), or the
    /// time limit of a trial run ([`stop_evaluations_at`]).
    LimitExceeded,
    /// A runtime error in the script (wrong type, missing value, unknown property…).
    Runtime,
    /// The script ended with something other than `true`, `false`, `()` or a message.
    BadResult,
}

/// The result of evaluating a rule set: one outcome per rule, in rule-set order.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub outcomes: Vec<RuleOutcome>,
}

impl Evaluation {
    pub fn has_failures(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| matches!(o, RuleOutcome::Failed(_)))
    }
}

/// What one evaluation needs besides the profile, kept between evaluations of the same
/// rule set: a scope, and one function-resolution cache per rule.
///
/// Rhai's public `eval_ast_with_scope` starts every run with an empty resolution cache,
/// which would look each function and property call of a rule up in the engine's
/// function tables again on every evaluation. A cache maps a call's name and argument types to
/// the function, which depends only on the engine and the rule's AST, so it stays valid
/// for every later evaluation of the same rule. Each rule keeps its own cache because
/// two rules may define script functions with the same name.
#[derive(Default)]
pub(crate) struct EvalStatePool(Mutex<Vec<EvalState>>);

pub(super) struct EvalState {
    pub(super) scope: Scope<'static>,
    pub(super) caches: Vec<Caches>,
}

impl EvalStatePool {
    pub(super) fn take(&self, rules: usize) -> EvalState {
        let pooled = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut state = pooled.unwrap_or_else(|| EvalState {
            scope: Scope::new(),
            caches: Vec::new(),
        });
        state.caches.resize_with(rules, Caches::new);
        state
    }

    pub(super) fn give_back(&self, mut state: EvalState) {
        // Nothing of a profile stays behind in the pool.
        state.scope.clear();
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(state);
    }
}

/// Runs one rule's statements as `Engine::eval_ast_with_scope` does, with a fresh
/// runtime state (so the operation limit counts this rule alone) but the rule's own
/// persistent resolution cache.
pub(super) fn run_rule(scope: &mut Scope, caches: &mut Caches, ast: &rhai::AST) -> RhaiResult {
    OPERATIONS.set(0);
    let mut global = ENGINE.new_global_runtime_state();
    global.lib.push(ast.shared_lib().clone());
    // The one entry point (under the `internals` feature) that takes the caches.
    #[allow(deprecated)]
    let result = ENGINE.eval_statements_raw(&mut global, caches, scope, ast.statements());
    // A block or script function that failed half-way may leave deeper cache levels.
    caches.rewind_fn_resolution_caches(1);
    result
}

pub(super) fn interpret(result: RhaiResult) -> RuleOutcome {
    match result {
        Ok(value) => interpret_value(value),
        Err(err) => RuleOutcome::Failed(failure_from(&err)),
    }
}

fn interpret_value(value: Dynamic) -> RuleOutcome {
    if value.is_unit() {
        return RuleOutcome::Clear;
    }
    if let Ok(flag) = value.as_bool() {
        return if flag {
            RuleOutcome::Flagged { message: None }
        } else {
            RuleOutcome::Clear
        };
    }
    match value.into_immutable_string() {
        Ok(message)
            if crate::visible::has_hidden_characters(&message, crate::visible::Lines::Many) =>
        {
            RuleOutcome::Failed(RuleFailure {
                kind: FailureKind::BadResult,
                message: "regelns meddelande innehåller tecken som inte syns eller som vänder \
                          texten (styrtecken, nollbreddstecken, riktningstecken)"
                    .to_owned(),
                line: None,
                column: None,
            })
        }
        Ok(message) if !message.trim().is_empty() => RuleOutcome::Flagged {
            message: Some(message.to_string()),
        },
        Ok(_) => RuleOutcome::Failed(RuleFailure {
            kind: FailureKind::BadResult,
            message: "regeln gav ett tomt meddelande; ge en text, true eller false".to_owned(),
            line: None,
            column: None,
        }),
        Err(type_name) => RuleOutcome::Failed(RuleFailure {
            kind: FailureKind::BadResult,
            message: format!(
                "regeln gav {}; en regel ska sluta med true, false eller ett meddelande (text)",
                kind_in_swedish(ENGINE.map_type_name(type_name))
            ),
            line: None,
            column: None,
        }),
    }
}

fn failure_from(err: &EvalAltResult) -> RuleFailure {
    let position = err.position();
    let (kind, message) = match err {
        EvalAltResult::ErrorTooManyOperations(_) => too_many_operations(),
        EvalAltResult::ErrorDataTooLarge(what, _) => (
            FailureKind::LimitExceeded,
            format!(
                "regeln avbröts: {} blev för stor (gränsen är {})",
                match what.as_str() {
                    w if w.contains("string") => "en text",
                    w if w.contains("array") => "en lista",
                    w if w.contains("map") => "en mappning",
                    _ => "ett värde",
                },
                match what.as_str() {
                    w if w.contains("string") => format!("{} byte", LIMITS.max_string_size),
                    w if w.contains("array") => format!("{} element", LIMITS.max_array_size),
                    w if w.contains("map") => format!("{} nycklar", LIMITS.max_map_size),
                    _ => "satt i motorn".to_owned(),
                }
            ),
        ),
        // The message quotes operand values, which may come from the profile.
        EvalAltResult::ErrorArithmetic(..) => (
            FailureKind::Runtime,
            "räknefel (till exempel division med noll eller för stort tal)".to_owned(),
        ),
        EvalAltResult::ErrorStackOverflow(_) => (
            FailureKind::LimitExceeded,
            "regeln avbröts: för djup rekursion".to_owned(),
        ),
        EvalAltResult::ErrorTooManyVariables(_) => (
            FailureKind::LimitExceeded,
            "regeln avbröts: för många variabler".to_owned(),
        ),
        EvalAltResult::ErrorTerminated(token, _) => match token.clone().try_cast::<Ended>() {
            Some(Ended::TooManyOperations) => too_many_operations(),
            Some(Ended::StopTime(StopReason::CheckTime)) => (
                FailureKind::LimitExceeded,
                format!(
                    "regeln avbröts: en kontrolls regler får köra högst {} sekund tillsammans",
                    LIMITS.max_check_time.as_secs()
                ),
            ),
            Some(Ended::StopTime(StopReason::TrialTime)) | None => (
                FailureKind::LimitExceeded,
                "regeln avbröts: tiden för provet tog slut".to_owned(),
            ),
        },
        EvalAltResult::ErrorRuntime(value, _) => (FailureKind::Runtime, value.to_string()),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => return failure_from(inner),
        other => (FailureKind::Runtime, rhai_error_in_swedish(other)),
    };
    RuleFailure {
        kind,
        message,
        line: position.line(),
        column: position.position(),
    }
}

/// Rhai's own run-time errors in Swedish, for the rule author, with the values' kinds by
/// their names in the rules' guide; anything rarer in Rhai's English words.
fn rhai_error_in_swedish(err: &EvalAltResult) -> String {
    use EvalAltResult as E;
    match err {
        E::ErrorVariableNotFound(name, _) => format!(
            "variabeln {name} finns inte (felstavad, eller använd innan den satts med let?)"
        ),
        E::ErrorPropertyNotFound(name, _) => format!("fältet {name} finns inte här"),
        // `name (kind, kind)`; the kinds are Rhai's, the name the script's own.
        E::ErrorFunctionNotFound(signature, _) => match signature.split_once(" (") {
            Some((name, kinds)) if !name.contains(' ') && kinds.ends_with(')') => {
                let kinds_of: Vec<&str> = kinds
                    .split([',', '(', ')', '|'])
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .collect();
                if name == "-" && kinds_of.iter().all(|k| *k == "Date") {
                    "två datum kan inte dras från varandra; räkna dagarna med days_between(från, till)".to_owned()
                } else if name == "contains" && kinds_of.len() == 2 {
                    // `x in y` is Rhai's `contains(y, x)`: the person wrote `in`.
                    format!(
                        "in kan inte söka i {}: in söker i en lista, en text eller ett objekt",
                        kinds_in_swedish(&format!("({})", kinds_of[0]))
                            .trim_start_matches('(')
                            .trim_end_matches(')')
                    )
                } else if kinds_of.contains(&"NoValue") {
                    format!(
                        "{name} fick ett saknat värde (ett fält utan uppgift); kontrollera fältet med has_value() först"
                    )
                } else {
                    format!(
                        "det finns ingen funktion {name} för {}",
                        kinds_in_swedish(&format!("({kinds}"))
                    )
                }
            }
            _ if signature.contains("cannot be sorted") => {
                "listan kan inte sorteras: dess värden går inte att jämföra med varandra".to_owned()
            }
            _ if signature.trim().is_empty() => "en funktion utan namn finns inte".to_owned(),
            _ => kinds_in_swedish(signature),
        },
        E::ErrorMismatchDataType(expected, actual, _)
        | E::ErrorMismatchOutputType(expected, actual, _) => {
            match (kind_in_swedish(expected), kind_in_swedish(actual)) {
                (expected, actual) if expected.is_empty() => format!("fel sorts värde: {actual}"),
                (expected, actual) if actual.is_empty() => {
                    format!("fel sorts värde, väntade {expected}")
                }
                (expected, actual) => format!("fel sorts värde: {actual}, väntade {expected}"),
            }
        }
        // `List [i64]`: what was indexed, then by what.
        E::ErrorIndexingType(kind, _) => match kind.split_once(" [").map_or(kind.as_str(), |k| k.0) {
            "List" | "ListView" => "en lista ur profilen kan inte läsas med [ ]; fråga med `in`, som `\"psychologist\" in profile.specialists`, eller räkna med `.len()`".to_owned(),
            of => format!("{} kan inte läsas med [ ]", kind_in_swedish(of)),
        },
        E::ErrorIndexNotFound(index, _) => format!("index {index} finns inte"),
        E::ErrorArrayBounds(length, index, _) => format!(
            "listan har {length} element, så index {index} finns inte (index räknas från 0)"
        ),
        E::ErrorStringBounds(length, index, _) => {
            format!("texten har {length} tecken, så index {index} finns inte (index räknas från 0)")
        }
        E::ErrorBitFieldBounds(bits, index, _) => format!(
            "ett heltal har {bits} bitar, så bit {index} finns inte (bitar räknas från 0)"
        ),
        E::ErrorFor(_) => {
            "for behöver en lista eller ett intervall (som 0..3) att gå igenom".to_owned()
        }
        E::ErrorAssignmentToConstant(name, _) => {
            format!("{name} är en konstant och kan inte ändras")
        }
        E::ErrorNonPureMethodCallOnConstant(..) => {
            "ett värde som inte får ändras (en konstant) ändras här".to_owned()
        }
        E::ErrorUnboundThis(_) => "this används utanför en metod".to_owned(),
        // `Unknown property 'foo' - a getter is not registered for type 'i64'`
        E::ErrorDotExpr(text, _) if text.starts_with("Unknown property '") => {
            let mut quoted = text.split('\'').skip(1).step_by(2);
            match (quoted.next(), quoted.next()) {
                (Some(name), Some("()")) => {
                    format!("`.{name}` läses på något som inte har något värde")
                }
                (Some(name), Some(kind)) => {
                    format!("{} har inget fält {name}", kind_in_swedish(kind))
                }
                _ => kinds_in_swedish(text),
            }
        }
        // `No writable property 'y' - a setter is not registered for type 'i64'`
        E::ErrorDotExpr(text, _) if text.starts_with("No writable property '") => {
            let mut quoted = text.split('\'').skip(1).step_by(2);
            match (quoted.next(), quoted.next()) {
                (Some(name), Some(kind)) => {
                    format!("`.{name}` kan inte ändras på {}", kind_in_swedish(kind))
                }
                _ => kinds_in_swedish(text),
            }
        }
        // Rhai's words about the script's own text: its names are not kinds.
        E::ErrorParsing(..) => strip_rhai_position(&err.to_string()),
        other => kinds_in_swedish(&strip_rhai_position(&other.to_string())),
    }
}

/// The kinds of values in a message of Rhai's, by their names in the rules' guide; the
/// engine's own types by what a rule author writes or reads about (a date, a field
/// without a value, `profile.gk`), not their Rust paths.
fn kinds_in_swedish(text: &str) -> String {
    let text = text
        .replace("gk_regler::engine::script_api::", "")
        .replace("gk_regler::engine::value::", "")
        .replace("core::ops::range::RangeInclusive", "intervall")
        .replace("core::ops::range::Range", "intervall");
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "i64" | "i32" | "INT" => "heltal",
            "f64" | "f32" | "FLOAT" => "decimaltal",
            "string" | "String" | "ImmutableString" | "&str" => "text",
            "char" => "tecken",
            "bool" => "sant/falskt",
            "array" | "Array" => "lista",
            "map" | "Map" => "mappning",
            "Fn" | "FnPtr" => "funktion",
            "range" | "Range" | "RangeInclusive" => "intervall",
            // The script API's own kinds, by what a rule author writes.
            "Date" | "ScriptDate" => "datum",
            "NoValue" => "saknat värde",
            "List" | "ListView" => "lista ur profilen",
            "Profile" | "ProfileView" => "profile",
            "Person" | "PersonView" => "profile.person",
            "Preparation" | "PreparationView" => "profile.preparation",
            "Gk" | "GkView" => "profile.gk",
            "ActivityLevel" | "ActivityLevelView" => "profile.activity_level",
            "KnownNeeds" | "KnownNeedsView" => "profile.known_needs",
            other => other,
        });
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' || c == '&' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    // Rhai names a text argument by each of its Rust types (`string | ImmutableString`).
    while out.contains("text | text") {
        out = out.replace("text | text", "text");
    }
    out
}

/// [`kinds_in_swedish`] for a message naming one kind, where `()` is no value.
fn kind_in_swedish(kind: &str) -> String {
    match kind.trim() {
        "()" => "inget värde".to_owned(),
        kind => kinds_in_swedish(kind),
    }
}

fn too_many_operations() -> (FailureKind, String) {
    (
        FailureKind::TooManyOperations,
        format!(
            "regeln avbröts efter {} operationer (trolig oändlig loop)",
            LIMITS.max_operations
        ),
    )
}

fn strip_rhai_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::profile::Profile;
    use crate::ruleset::{MANIFEST_FILE, RuleSet};

    /// The repository's root, where the default rules and the development cohort are.
    pub(super) fn repo() -> &'static std::path::Path {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// The default rule set of `rules/`.
    pub(super) fn default_rules() -> RuleSet {
        RuleSet::load(&repo().join("rules")).expect("the default rules load")
    }

    /// Every line of the development cohort in `examples/cohort-2018`, one profile each.
    /// Its absence is a failure: the tests that read it check the engine against it.
    pub(super) fn cohort_lines() -> Vec<String> {
        let path = repo().join("examples/cohort-2018/profiles.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "the development cohort is missing ({}: {err}); see examples/cohort-2018/README.md",
                path.display()
            )
        });
        text.lines().map(str::to_owned).collect()
    }

    /// Builds a one-rule set around `script` in a temporary directory.
    pub(super) fn one_rule(script: &str) -> RuleSet {
        load_one_rule(script).expect("rule set loads")
    }

    /// Loads a one-rule set (rule `r`) around `script` from a temporary directory.
    pub(super) fn load_one_rule(script: &str) -> Result<RuleSet, crate::ruleset::LoadError> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "name: t\nversion: '1'\nrules:\n  - id: r\n    script: r.rhai\n    title: Regel\n    severity: warning\n    grounds: policy\n    rationale: x\n",
        )
        .expect("manifest");
        std::fs::write(dir.path().join("r.rhai"), script).expect("script");
        RuleSet::load(dir.path())
    }

    /// Builds a rule set with one rule per script, ids `r0`, `r1`, ….
    pub(super) fn rules(scripts: &[&str]) -> RuleSet {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut manifest = "name: t\nversion: '1'\nrules:\n".to_owned();
        for (i, script) in scripts.iter().enumerate() {
            manifest += &format!(
                "  - id: r{i}\n    script: r{i}.rhai\n    title: Regel\n    severity: warning\n    grounds: policy\n    rationale: x\n"
            );
            std::fs::write(dir.path().join(format!("r{i}.rhai")), script).expect("script");
        }
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest).expect("manifest");
        RuleSet::load(dir.path()).expect("rule set loads")
    }

    fn run(script: &str, profile_json: &str) -> RuleOutcome {
        let set = one_rule(script);
        let profile = Arc::new(Profile::from_json(profile_json).expect("valid profile"));
        set.evaluate(&profile).outcomes.remove(0)
    }

    const P: &str = r#"{"case_id":"X","checked_on":"2024-05-10","preparation":{"sassam_on":null,"consent_received_on":"2024-05-01"},"gk":{"requested_on":"2024-04-01"},"specialists":["psychologist"],"main_diagnosis":"M54.5"}"#;

    #[test]
    fn results_map_to_outcomes() {
        assert_eq!(run("true", P), RuleOutcome::Flagged { message: None });
        assert_eq!(run("false", P), RuleOutcome::Clear);
        assert_eq!(run("()", P), RuleOutcome::Clear);
        assert_eq!(
            run(r#""se upp""#, P),
            RuleOutcome::Flagged {
                message: Some("se upp".into())
            }
        );
        assert!(matches!(run("42", P), RuleOutcome::Failed(f) if f.kind == FailureKind::BadResult));
        // A function of the script's own, called as a method on a value.
        assert_eq!(
            run("fn plus(n) { this + n }\nlet k = 1;\nk.plus(1) == 2", P),
            RuleOutcome::Flagged { message: None }
        );
    }

    /// Rhai's `pad` with an empty text looped for ever inside one call: every check of
    /// a person the rule reached hung, and so did a candidate trial and the audits
    /// behind it. Ours refuses it; with a text it pads as Rhai's did.
    #[test]
    fn pad_with_an_empty_text_fails_the_rule_instead_of_hanging() {
        let (sender, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(run("let s = \"x\";\ns.pad(5, \"\");\nfalse", P));
        });
        let outcome = received
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the rule ends");
        assert!(
            matches!(&outcome, RuleOutcome::Failed(f) if f.message.contains("pad behöver en utfyllnad")),
            "{outcome:?}"
        );
        assert_eq!(
            run("let s = \"ab\";\ns.pad(7, \"xy\");\ns", P),
            RuleOutcome::Flagged {
                message: Some("abxyxyx".into())
            }
        );
        assert_eq!(
            run("let s = \"abc\";\ns.pad(2, \"-\");\ns", P),
            RuleOutcome::Flagged {
                message: Some("abc".into())
            }
        );
        // The limit is in bytes: 10,000 characters of two bytes each fail with pad's
        // own message, which names the unit.
        let wide = run("let s = \"\";\ns.pad(10000, \"ö\");\nfalse", P);
        assert!(
            matches!(&wide, RuleOutcome::Failed(f) if f.message.contains("pad: en text får vara högst 10000 byte")),
            "{wide:?}"
        );
    }

    /// Rhai panics on some scripts it compiles (an assignment to a field of a constant):
    /// that ended the check with a 500 and the officer's form lost. Caught, it is `None`,
    /// which the rule's run reports as its failure.
    #[test]
    fn a_panic_of_rhai_inside_a_rule_is_caught() {
        let ast = compile("const K = #{a: 1};\nK.a = 2;\nfalse").expect("compiles");
        let mut scope = Scope::new();
        let mut caches = Caches::new();
        assert!(run_rule_caught(&mut scope, &mut caches, &ast).is_none());
        assert!(!panicking_inside_a_rule());
        let ast = compile("1 + 1 == 2").expect("compiles");
        let ran = run_rule_caught(&mut scope, &mut caches, &ast).expect("no panic");
        assert_eq!(ran.expect("runs").as_bool(), Ok(true));
    }

    /// Rhai's own run-time errors reached rule authors in English with Rust type names
    /// (`Array index 3 out of bounds`, `Function not found: f (i64)`).
    #[test]
    fn rhai_run_time_errors_are_told_in_swedish_with_where() {
        for (script, says) in [
            (
                "let lista = [1];\nlista[3] == 1",
                "listan har 1 element, så index 3 finns inte",
            ),
            ("let t = \"ab\";\nt[5] == 'a'", "texten har 2 tecken"),
            ("let n = 3;\nfor x in n { }\ntrue", "for behöver en lista"),
            (
                "let n = \"x\";\nabs(n) == 1",
                "det finns ingen funktion abs för (text)",
            ),
            ("let n = 5;\nn.foo == 1", "heltal har inget fält foo"),
            (
                "let m = #{a: 1};\nm[1] == 1",
                "fel sorts värde: heltal, väntade text",
            ),
            (
                "let l = [3, \"x\"];\nl.sort();\ntrue",
                "listan kan inte sorteras: dess värden går inte att jämföra",
            ),
            (
                "let n = 5;\nn[70]",
                "ett heltal har 64 bitar, så bit 70 finns inte",
            ),
            (
                "let t = \"abc\";\nt.map(|x| x) == 1",
                "det finns ingen funktion map för (text, funktion)",
            ),
            (
                "let x = 1;\nlet y = 5;\nx in y",
                "in kan inte söka i heltal: in söker i en lista, en text eller ett objekt",
            ),
            (
                "let d = profile.checked_on;\nd - d > 1",
                "två datum kan inte dras från varandra",
            ),
            (
                "let s = profile.specialists;\ns[0] == 1",
                "en lista ur profilen kan inte läsas med [ ]",
            ),
            (
                "let a = profile.person.age;\na + 1 > 2",
                "+ fick ett saknat värde (ett fält utan uppgift)",
            ),
            (
                "let u = ();\nu.foo == 1",
                "`.foo` läses på något som inte har något värde",
            ),
            (
                "let n = 1;\nn.y = 2;\ntrue",
                "`.y` kan inte ändras på heltal",
            ),
            ("let r = 0..3;\nr + 1 == 1", "intervall"),
        ] {
            let outcome = run(script, P);
            let RuleOutcome::Failed(failure) = &outcome else {
                panic!("{script}: {outcome:?}");
            };
            assert!(failure.message.contains(says), "{script}: {failure:?}");
            assert!(failure.line.is_some(), "{script}: {failure:?}");
            for english in [
                "not found",
                "out of bounds",
                "expects",
                "i64",
                "string",
                "Indexer",
                "NoValue",
                "Date",
                "List",
                "mappning",
            ] {
                assert!(!failure.message.contains(english), "{script}: {failure:?}");
            }
        }
    }

    #[test]
    fn a_date_pushed_outside_the_years_1_to_9999_fails_the_rule() {
        // `checked_on + i64::MAX` panicked the check (500 for every rule); smaller sums
        // wrapped into nonsense dates such as 1970-01-01.
        for script in [
            "(profile.checked_on + 9223372036854775807).to_string()",
            "profile.checked_on - 9223372036854775807 < profile.checked_on",
            "(profile.checked_on + 3000000).to_string()",
            "profile.checked_on - 740000 < profile.checked_on",
        ] {
            let outcome = run(script, P);
            assert!(
                matches!(&outcome, RuleOutcome::Failed(f) if f.message.contains("1–9999")),
                "{script}: {outcome:?}"
            );
        }
        assert_eq!(
            run("(profile.checked_on + 2900000).to_string()", P),
            RuleOutcome::Flagged {
                message: Some("9964-04-15".into())
            }
        );
    }

    #[test]
    fn comparing_a_date_with_another_kind_of_value_fails_the_rule() {
        // `checked_on >= "2023-01-01"` was always false: a typing mistake became "no
        // flag" without a word. The lint refuses a literal written beside the date at
        // load; a value the lint cannot follow (here, returned by a function) is refused
        // when it is compared.
        for script in [
            r#"profile.checked_on >= other("2023-01-01")"#,
            r#"other("2023-01-01") < profile.checked_on"#,
            r#"profile.checked_on == other("2024-05-10")"#,
            "profile.checked_on != other(20240510)",
            "profile.checked_on > other(1.5)",
            "profile.checked_on == other(true)",
        ] {
            let script = format!("fn other(value) {{ value }}\n{script}");
            let outcome = run(&script, P);
            assert!(
                matches!(&outcome, RuleOutcome::Failed(f) if f.message.contains("kan inte jämföra")),
                "{script}: {outcome:?}"
            );
        }
        // Numbers of both kinds compare, as do values of one kind.
        for script in [
            "1 < 1.5",
            r#"profile.checked_on > date("2023-01-01")"#,
            r#"profile.main_diagnosis == "M54.5""#,
        ] {
            assert_eq!(
                run(script, P),
                RuleOutcome::Flagged { message: None },
                "{script}"
            );
        }
    }

    #[test]
    fn a_message_with_characters_that_do_not_show_fails_the_rule() {
        // A right-to-left override turned the officer's flag around on the page.
        for script in [
            r#""Tolk saknas \u202Eefter begäran""#,
            r#""Tolk\u200B saknas""#,
            r#"`Tolk saknas ${"\u0007"}`"#,
        ] {
            let outcome = run(script, P);
            assert!(
                matches!(&outcome, RuleOutcome::Failed(f) if f.kind == FailureKind::BadResult),
                "{script}: {outcome:?}"
            );
        }
        assert_eq!(
            run(r#""Två rader:\nen till""#, P),
            RuleOutcome::Flagged {
                message: Some("Två rader:\nen till".into())
            }
        );
    }

    #[test]
    fn endless_loop_fails_fast_with_its_kind() {
        let started = std::time::Instant::now();
        let outcome = run("loop { }", P);
        assert!(
            matches!(&outcome, RuleOutcome::Failed(f) if f.kind == FailureKind::TooManyOperations),
            "{outcome:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_stop_time_ends_a_script_that_the_operation_limit_would_end_much_later() {
        // Each step copies a list of 999 texts: the operation limit alone takes seconds.
        let costly = r#"let a = []; a.pad(999, "abcdefghij"); loop { let b = a + []; }"#;
        let started = std::time::Instant::now();
        let stopped = {
            let _stop = stop_evaluations_at(started);
            run(costly, P)
        };
        assert!(
            matches!(&stopped, RuleOutcome::Failed(f)
                if f.kind == FailureKind::LimitExceeded && f.message.contains("tiden")),
            "{stopped:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Scripts run by `map` and `sort` count on a copy of Rhai's operation count: they
        // stop all the same.
        for callbacks in [
            "let a = []; a.pad(1000, 1); a.map(|x| { let b = []; b.pad(1000, x); b.map(|y| y + 1).len() }).len() > 0",
            "let a = []; a.pad(1000, 1); a.sort(|x, y| { let n = 0; while n < 200 { n += 1; } 0 }); true",
        ] {
            let started = std::time::Instant::now();
            let _stop = stop_evaluations_at(started);
            let outcome = run(callbacks, P);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{callbacks}"
            );
            assert!(
                matches!(outcome, RuleOutcome::Failed(_)),
                "{callbacks}: {outcome:?}"
            );
        }
        // Without a stop time (the guard dropped), only the operation limit ends it.
        assert_eq!(STOP_AT.get(), None);
        assert_eq!(
            run("let n = 0; for i in 0..1000 { n += i; } n > 0", P),
            RuleOutcome::Flagged { message: None }
        );
    }

    #[test]
    fn the_operation_limit_counts_the_operations_of_callbacks() {
        // Rhai counts the operations of a `map` or `sort` callback on a copy it throws
        // away: counted by Rhai alone, each of these runs a million and more operations
        // without an error.
        for callbacks in [
            "let a = []; a.pad(1000, 1); a.map(|x| { let b = []; b.pad(1000, x); b.map(|y| y + 1).len() }).len() > 0",
            "let a = []; a.pad(1000, 1); a.sort(|x, y| { let n = 0; while n < 200 { n += 1; } 0 }); true",
            "let a = []; a.pad(1000, 1); a.filter(|x| { let n = 0; while n < 200 { n += 1; } true }).len() > 0",
        ] {
            let outcome = run(callbacks, P);
            assert!(
                matches!(&outcome, RuleOutcome::Failed(f)
                    if f.kind == FailureKind::TooManyOperations && f.message.contains("operationer")),
                "{callbacks}: {outcome:?}"
            );
        }
        // The count starts over with each rule: a rule just under the limit, run again
        // and again on one thread, never fails.
        let near_limit = "let a = []; a.pad(100, 1); a.map(|x| { let n = 0; while n < 100 { n += 1; } x }).len() > 0";
        for _ in 0..5 {
            assert_eq!(run(near_limit, P), RuleOutcome::Flagged { message: None });
        }
    }

    #[test]
    fn one_checks_rules_stop_together_after_the_checks_time_limit() {
        // Each step copies a list of 999 texts: within the operation limit one such rule
        // runs for half a second in a release build, so eight run for several.
        let slow = r#"let a = []; a.pad(999, "abcdefghij"); loop { let b = a + []; }"#;
        // Rules with a function of their own run in Rhai alone.
        let quick = "fn yes() { true } yes()";
        let set = rules(&[slow, slow, slow, slow, slow, slow, slow, slow, quick]);
        let profile = Arc::new(Profile::from_json(P).expect("valid profile"));
        let started = std::time::Instant::now();
        let evaluation = set.evaluate(&profile);
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(4), "{took:?}");
        let failed = |outcome: &RuleOutcome| matches!(outcome, RuleOutcome::Failed(_));
        let out_of_time = |outcome: &RuleOutcome| {
            matches!(outcome, RuleOutcome::Failed(f)
                if f.kind == FailureKind::LimitExceeded
                    && f.message == "regeln avbröts: en kontrolls regler får köra högst 1 sekund tillsammans")
        };
        // Rules that ran before the time was out ended at the operation limit; the one
        // running then, and every later one, the quick one too, stopped.
        let first_stopped = evaluation
            .outcomes
            .iter()
            .position(out_of_time)
            .expect("a rule stopped at the check's time limit");
        for outcome in &evaluation.outcomes[first_stopped..] {
            assert!(out_of_time(outcome), "{outcome:?}");
        }
        assert!(
            evaluation
                .outcomes
                .iter()
                .all(|o| matches!(o, RuleOutcome::Failed(_))),
            "{:?}",
            evaluation.outcomes
        );
        // The next check has a time of its own.
        let quick_only = rules(&[quick]);
        assert_eq!(
            quick_only.evaluate(&profile).outcomes,
            [RuleOutcome::Flagged { message: None }]
        );
        assert_eq!(STOP_AT.get(), None);
        // Two rule sets evaluated for one check (the live and the shadow set) share its
        // time when a stop time is set around both: the second starts out of time.
        {
            let _check = start_check_time();
            assert!(set.evaluate(&profile).outcomes.iter().all(failed));
            let second = quick_only.evaluate(&profile).outcomes.remove(0);
            assert!(out_of_time(&second), "{second:?}");
        }
        // A trial's earlier stop time is kept, and named.
        let _trial = stop_evaluations_at(std::time::Instant::now());
        let outcome = set.evaluate(&profile).outcomes.remove(1);
        assert!(
            matches!(&outcome, RuleOutcome::Failed(f) if f.message.contains("tiden för provet")),
            "{outcome:?}"
        );
    }

    #[test]
    fn curry_and_eval_are_refused_when_loading_saying_why() {
        // Each list of a curried function counts as nothing against the size limits:
        // this script holds 100 million numbers in a few thousand operations.
        let nested = "fn g(x) { x }\nlet a = []; for i in 0..1000 { a.push(i); }\nlet f = Fn(\"g\").curry(a);\nlet b = []; for i in 0..1000 { b.push(f); }\nlet c = []; for i in 0..100 { c.push(Fn(\"g\").curry(b)); }\nc.len() > 5000";
        // A chain of curried functions deep enough to overflow a thread's stack.
        let chained =
            "fn g(x) { x }\nlet f = Fn(\"g\");\nfor i in 0..15000 { f = curry(f, 1); }\nfalse";
        let evaluated = "eval(\"true\")";
        for (script, keyword, line) in [
            (nested, "curry", 3),
            (chained, "curry", 3),
            (evaluated, "eval", 1),
        ] {
            let refused = load_one_rule(script).expect_err(script);
            let why = DISABLED_KEYWORDS
                .iter()
                .find(|(word, _)| *word == keyword)
                .map(|(_, why)| *why)
                .expect("a disabled keyword");
            assert!(
                refused
                    .problems
                    .iter()
                    .any(|p| p.message == why && p.line == Some(line)),
                "{script}: {refused:?}"
            );
            assert!(compile(script).is_err(), "{script}");
        }
        // Function pointers and their calls stay.
        assert_eq!(
            run("fn g(x) { x } let f = Fn(\"g\"); f.call(true)", P),
            RuleOutcome::Flagged { message: None }
        );
    }

    #[test]
    fn sleep_is_refused_when_loading_and_fails_at_once_when_run() {
        let refused = load_one_rule("sleep(30); true").expect_err("refused");
        assert!(
            refused.problems.iter().any(|p| p.message == SLEEP_REFUSED),
            "{refused:?}"
        );
        // Past the lint (a script compiled some other way), it fails without waiting.
        let started = std::time::Instant::now();
        for script in ["sleep(30)", "sleep(30.0)"] {
            let err = ENGINE.eval::<()>(script).expect_err(script);
            assert!(err.to_string().contains("sleep"), "{script}: {err}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn rules_read_no_clock() {
        // `timestamp()` let a rule flag by how long it ran: two replays of one history
        // gave 98 and 45 flags, and the replay reuses unchanged rules' results.
        let refused =
            load_one_rule("let t = timestamp(); t.elapsed > 0.00004").expect_err("refused");
        assert!(
            refused
                .problems
                .iter()
                .any(|p| p.message.contains("timestamp")),
            "{refused:?}"
        );
        assert!(ENGINE.eval::<rhai::Dynamic>("timestamp()").is_err());
    }

    #[test]
    fn runaway_allocation_is_limited() {
        let outcome = run(r#"let s = "x"; loop { s += s; }"#, P);
        assert!(
            matches!(&outcome, RuleOutcome::Failed(f) if f.kind == FailureKind::LimitExceeded),
            "{outcome:?}"
        );
        let outcome = run("fn f(n) { f(n + 1) } f(0)", P);
        assert!(
            matches!(&outcome, RuleOutcome::Failed(f) if f.kind == FailureKind::LimitExceeded),
            "{outcome:?}"
        );
        // Rhai counts a map's entries, not its keys' bytes: a map may have 100 entries.
        let long_keys = r#"let s = "x"; s.pad(9990, "a"); let m = #{};
            for i in 0..N { m[`${i}${s}`] = 1; } m.len() > 0"#;
        assert_eq!(
            run(&long_keys.replace('N', "100"), P),
            RuleOutcome::Flagged { message: None }
        );
        let outcome = run(&long_keys.replace('N', "101"), P);
        assert!(
            matches!(&outcome, RuleOutcome::Failed(f)
                if f.kind == FailureKind::LimitExceeded && f.message.contains("en mappning")),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_call_of_more_than_ten_arguments_is_refused_when_loading() {
        let many = |n: usize| {
            format!(
                "let m = #{{}}; let f = Fn(\"len\"); f.call({}) > 0",
                vec!["m"; n].join(", ")
            )
        };
        let refused = load_one_rule(&many(11)).expect_err("refused");
        assert!(
            refused
                .problems
                .iter()
                .any(|p| p.message.starts_with("ett anrop får ha högst 10 argument")),
            "{refused:?}"
        );
        let set = load_one_rule(
            "fn g(a, b, c, d, e, f, g, h, i, j) { a } g(1, 2, 3, 4, 5, 6, 7, 8, 9, 10) == 1",
        )
        .expect("ten arguments load");
        let profile = Arc::new(Profile::from_json(P).expect("valid profile"));
        assert_eq!(
            set.evaluate(&profile).outcomes,
            [RuleOutcome::Flagged { message: None }]
        );
    }

    #[test]
    fn absent_and_null_differ_in_scripts() {
        assert_eq!(
            run("known(profile.preparation.sassam_on)", P),
            RuleOutcome::Flagged { message: None }
        );
        assert_eq!(
            run("has_value(profile.preparation.sassam_on)", P),
            RuleOutcome::Clear
        );
        assert_eq!(
            run("known(profile.preparation.reconciliation_meeting_on)", P),
            RuleOutcome::Clear
        );
    }

    #[test]
    fn comparing_a_missing_value_fails_visibly() {
        let outcome = run("profile.gk.first_meeting_on > profile.gk.requested_on", P);
        match outcome {
            RuleOutcome::Failed(f) => {
                assert!(
                    f.message.contains("gk.first_meeting_on saknas"),
                    "{}",
                    f.message
                );
                assert_eq!(f.line, Some(1));
            }
            other => panic!("expected failure, got {other:?}"),
        }
        let outcome = run("if profile.activity_level.documented { true }", P);
        assert!(matches!(outcome, RuleOutcome::Failed(_)), "{outcome:?}");
    }

    #[test]
    fn dates_and_helpers() {
        assert_eq!(
            run(
                "days_between(profile.gk.requested_on, profile.checked_on) == 39",
                P
            ),
            RuleOutcome::Flagged { message: None }
        );
        assert_eq!(
            run(
                r#"profile.preparation.consent_received_on > date("2024-04-30")"#,
                P
            ),
            RuleOutcome::Flagged { message: None }
        );
        assert_eq!(
            run(r#""psychologist" in profile.specialists"#, P),
            RuleOutcome::Flagged { message: None }
        );
        assert_eq!(
            run(r#"has(profile.specialists, "social_worker")"#, P),
            RuleOutcome::Clear
        );
        assert_eq!(
            run(
                r#"diagnosis_group(profile.main_diagnosis) == "musculoskeletal""#,
                P
            ),
            RuleOutcome::Flagged { message: None }
        );
        assert_eq!(
            run("is_true(profile.known_needs.interpreter_needed)", P),
            RuleOutcome::Clear
        );
        assert_eq!(
            run(r#"profile.stage == "before_gk""#, P),
            RuleOutcome::Flagged { message: None }
        );
    }

    #[test]
    fn misspelt_list_item_fails() {
        let outcome = run(r#"has(profile.specialists, profile.stage + "_x")"#, P);
        assert!(
            matches!(&outcome, RuleOutcome::Failed(f) if f.message.contains("social_worker")),
            "{outcome:?}"
        );
    }

    #[test]
    fn unknown_property_fails() {
        // Found at load when the section is known…
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "name: t\nversion: '1'\nrules:\n  - id: r\n    script: r.rhai\n    title: R\n    severity: info\n    grounds: policy\n    rationale: x\n",
        )
        .expect("manifest");
        std::fs::write(
            dir.path().join("r.rhai"),
            "profile.activity_level.documentd",
        )
        .expect("script");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert!(
            err.problems[0].message.contains("menade du `documented`?"),
            "{err:?}"
        );
        // …and when the rule runs otherwise.
        let outcome = run(
            "let a = if is_true(profile.gk.interpreter_booked) { profile.gk } else { profile.activity_level }; a.documentd",
            P,
        );
        assert!(matches!(outcome, RuleOutcome::Failed(_)), "{outcome:?}");
    }

    #[test]
    fn scripts_cannot_reach_outside() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "name: t\nversion: '1'\nrules:\n  - id: r\n    script: r.rhai\n    title: R\n    severity: info\n    grounds: policy\n    rationale: x\n",
        )
        .expect("manifest");
        for script in [
            r#"import "x" as y; true"#,
            r#"eval("true")"#,
            "undefined_variable",
        ] {
            std::fs::write(dir.path().join("r.rhai"), script).expect("script");
            assert!(
                RuleSet::load(dir.path()).is_err(),
                "{script} should not compile"
            );
        }
    }

    /// Resolution caches are kept per rule between evaluations: a script function must
    /// still resolve to its own rule's definition, and a cache must not carry values.
    #[test]
    fn kept_caches_resolve_each_rules_own_functions() {
        let set = rules(&[
            "fn f(x) { x.len() > 0 } f(profile.specialists)",
            "fn f(x) { false } f(profile.specialists)",
            r#"fn g(x) { if is_true(x) { throw "stopp" } x == true } g(profile.known_needs.interpreter_needed)"#,
        ]);
        let with = Arc::new(Profile::from_json(P).expect("profile"));
        let without = Arc::new(
            Profile::from_json(
                r#"{"case_id":"Y","checked_on":"2024-05-10","known_needs":{"interpreter_needed":true}}"#,
            )
            .expect("profile"),
        );
        for _ in 0..3 {
            let first = set.evaluate(&with).outcomes;
            assert_eq!(first[0], RuleOutcome::Flagged { message: None });
            assert_eq!(first[1], RuleOutcome::Clear);
            assert!(
                matches!(&first[2], RuleOutcome::Failed(f) if f.message.contains("saknas")),
                "{:?}",
                first[2]
            );
            let second = set.evaluate(&without).outcomes;
            assert_eq!(second[0], RuleOutcome::Clear);
            assert_eq!(second[1], RuleOutcome::Clear);
            assert!(
                matches!(&second[2], RuleOutcome::Failed(f) if f.message.contains("stopp")),
                "{:?}",
                second[2]
            );
        }
    }

    /// The typed helper overloads take their argument by reference; constants must still
    /// be accepted.
    #[test]
    fn helpers_accept_constants() {
        for script in [
            "const ja = true; is_true(ja) && !is_false(ja) && known(ja) && has_value(ja)",
            "const d = profile.checked_on; known(d) && has_value(d) && d >= d && days_between(d, d) == 0",
            "const n = profile.preparation.sassam_on; known(n) && !has_value(n) && !is_true(n)",
            r#"const s = profile.specialists; has_value(s) && "psychologist" in s"#,
        ] {
            assert_eq!(
                run(script, P),
                RuleOutcome::Flagged { message: None },
                "{script}"
            );
        }
    }

    /// rhai's `no_closure` feature (for speed, see BENCHMARKS.md): an anonymous function
    /// cannot capture a variable, which makes the rule fail to load; one that does not
    /// capture still works.
    #[test]
    fn closures_cannot_capture_variables() {
        assert_eq!(
            run("let f = |y| y + 1; f.call(2) == 3", P),
            RuleOutcome::Flagged { message: None }
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "name: t\nversion: '1'\nrules:\n  - id: r\n    script: r.rhai\n    title: R\n    severity: info\n    grounds: policy\n    rationale: x\n",
        )
        .expect("manifest");
        std::fs::write(
            dir.path().join("r.rhai"),
            "let x = 1; let f = |y| x + y; f.call(2) == 3",
        )
        .expect("script");
        assert!(RuleSet::load(dir.path()).is_err());
    }

    #[test]
    fn scope_does_not_grow_across_rules() {
        let set = one_rule("let a = 1; let b = 2; a + b == 3");
        let profile = Arc::new(Profile::from_json(P).expect("profile"));
        for _ in 0..100 {
            let evaluation = set.evaluate(&profile);
            assert_eq!(
                evaluation.outcomes[0],
                RuleOutcome::Flagged { message: None }
            );
        }
    }
}
