//! Lint: what can be known about a rule script without running it.
//!
//! Over the compiled Rhai AST (the same AST [`super::fast_path`] translates), every
//! function call is checked against the functions the sandboxed engine has (the helpers
//! of [`super::script_api`] and Rhai's own) and the script's own `fn`s, by name and by
//! number of arguments; every property read from the profile (`profile.gk.requested_on`,
//! also through a variable such as `let gk = profile.gk;`) is checked against
//! [`super::value::PROPERTIES`], the one definition of what a rule can read; and a field
//! compared with a literal of another kind, or with a name it never holds, is found. Each
//! problem comes with its line and column and, where a name is close to a known one, a
//! suggestion ("menade du `days_between`?").
//!
//! The lint also collects the profile fields the script reads, which
//! [`super::ruleset`] compares with the rule's declared `inputs`. Where the value
//! before a `.` is not known when the rule is loaded (a parameter of a function of the
//! script, a value chosen by `if`), every field of that name counts as read, so the
//! collected fields are never fewer than the ones the script can read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use rhai::{AST, ASTNode, Expr, FnCallExpr, Position, Stmt};

use super::ENGINE;
use super::syntax::{MAX_PROBLEMS, ScriptProblem};
use super::value::{
    Kind, ListKind, Property, Read, Section, Value, properties_named, properties_of,
};

/// What the lint found in one script.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub problems: Vec<ScriptProblem>,
    /// Every profile field the script can read (`gk.requested_on`), with the position
    /// of its first read.
    pub reads: BTreeMap<String, (Option<usize>, Option<usize>)>,
}

/// Rhai's keywords that are called like functions but are not in any package.
const KEYWORD_FUNCTIONS: &[&str] = &[
    "Fn",
    "call",
    "type_of",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "print",
    "debug",
];

/// The most arguments a call may have. Rhai copies every argument before it resolves
/// the call, and no size limit counts the copies: a call given the same large map a
/// thousand times held gigabytes.
const MAX_CALL_ARGUMENTS: usize = 10;

/// The functions of the sandboxed engine: name and the numbers of arguments it takes.
static FUNCTIONS: LazyLock<HashMap<String, HashSet<usize>>> = LazyLock::new(|| {
    let mut functions: HashMap<String, HashSet<usize>> = HashMap::new();
    let found = ENGINE.collect_fn_metadata(
        None,
        |info| Some((info.metadata.name.to_string(), info.metadata.num_params)),
        true,
    );
    for (name, params) in found {
        functions.entry(name).or_default().insert(params);
    }
    functions
});

/// Whether `name` is one a person writes: not an operator, getter or internal name.
fn is_plain_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The candidate closest to `name` when it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    // Edits a typo of a name this long plausibly has.
    let allowed = match name.chars().count() {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, f64, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let distance = strsim::damerau_levenshtein(name, candidate);
        if distance > allowed {
            continue;
        }
        // Fewest edits first; among those, the most similar start (Jaro–Winkler).
        let score = strsim::jaro_winkler(name, candidate);
        if best.is_none_or(|(d, s, _)| distance < d || (distance == d && score > s)) {
            best = Some((distance, score, candidate));
        }
    }
    best.map(|(.., candidate)| candidate)
}

/// What a value is, as far as the lint can tell at load.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Known {
    Section(Section),
    List(ListKind),
    /// A field of the profile that holds a value: its section and name.
    Field(Section, &'static str),
    /// Not the profile, a section, a list or a field: a literal, a number, a text…
    Other,
    /// Anything, a section included.
    Unknown,
}

impl Known {
    fn merge(self, other: Self) -> Self {
        if self == other { self } else { Self::Unknown }
    }
}

struct Linter<'a> {
    /// Every variable name bound anywhere in the script, with what all its bindings
    /// hold (flow-insensitive: two different bindings of one name make it unknown).
    variables: HashMap<String, Known>,
    /// The script's own functions: name and numbers of parameters.
    own: HashMap<String, HashSet<usize>>,
    /// Keys of map literals: a closure stored under one is called like a method.
    map_keys: HashSet<String>,
    findings: Findings,
    ast: &'a AST,
}

/// Lints one compiled script.
pub(crate) fn lint(ast: &AST) -> Findings {
    let mut linter = Linter {
        variables: HashMap::new(),
        own: HashMap::new(),
        map_keys: HashSet::new(),
        findings: Findings::default(),
        ast,
    };
    linter.bind_variables();
    linter.check();
    linter.findings.problems.sort_by_key(|p| (p.line, p.column));
    linter.findings
}

fn variable_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Variable(x, ..) => Some(x.1.as_str()),
        _ => None,
    }
}

impl Linter<'_> {
    /// Collects every binding of a name, and the script's functions.
    fn bind_variables(&mut self) {
        let mut bindings: Vec<(String, Option<Expr>)> = Vec::new();
        for function in self.ast.iter_functions() {
            self.own
                .entry(function.name.to_owned())
                .or_default()
                .insert(function.params.len());
            for param in &function.params {
                bindings.push(((*param).to_owned(), None));
            }
        }
        let mut map_keys = HashSet::new();
        self.ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                    bindings.push((x.0.name.to_string(), Some(x.1.clone())));
                }
                Some(ASTNode::Stmt(Stmt::Assignment(x))) => {
                    if let Some(name) = variable_name(&x.1.lhs) {
                        // `x += …` and the like give a number or a text.
                        let value =
                            x.0.get_op_assignment_info()
                                .is_none()
                                .then(|| x.1.rhs.clone());
                        bindings
                            .push((name.to_owned(), value.or(Some(Expr::Unit(Position::NONE)))));
                    }
                }
                Some(ASTNode::Stmt(Stmt::For(x, _))) => {
                    bindings.push((x.0.name.to_string(), None));
                    if let Some(counter) = &x.1 {
                        bindings.push((counter.name.to_string(), None));
                    }
                }
                Some(ASTNode::Stmt(Stmt::TryCatch(x, _))) => {
                    if let Some(name) = variable_name(&x.expr) {
                        bindings.push((name.to_owned(), None));
                    }
                }
                Some(ASTNode::Expr(Expr::Map(x, _))) => {
                    map_keys.extend(x.0.iter().map(|(key, _)| key.name.to_string()));
                }
                // The optimiser folds a map of constants into one value.
                Some(ASTNode::Expr(Expr::DynamicConstant(value, _))) => {
                    if let Some(map) = value.read_lock::<rhai::Map>() {
                        map_keys.extend(map.keys().map(ToString::to_string));
                    }
                }
                _ => {}
            }
            true
        });
        self.map_keys = map_keys;
        // Values may name other variables: settle in a few rounds (every round can only
        // make a name less known).
        for _ in 0..8 {
            let mut next: HashMap<String, Known> = HashMap::new();
            for (name, value) in &bindings {
                let known = value.as_ref().map_or(Known::Unknown, |v| self.value_of(v));
                next.entry(name.clone())
                    .and_modify(|k| *k = k.merge(known))
                    .or_insert(known);
            }
            let settled = next == self.variables;
            self.variables = next;
            if settled {
                break;
            }
        }
    }

    /// What `expr` holds, without reporting anything.
    fn value_of(&self, expr: &Expr) -> Known {
        match expr {
            Expr::Variable(x, ..) => match self.variables.get(x.1.as_str()) {
                Some(known) if x.1 == super::script_api::PROFILE_VARIABLE => {
                    known.merge(Known::Section(Section::Profile))
                }
                Some(known) => *known,
                None if x.1 == super::script_api::PROFILE_VARIABLE => {
                    Known::Section(Section::Profile)
                }
                None => Known::Unknown,
            },
            Expr::Dot(x, ..) => {
                let base = self.value_of(&x.lhs);
                self.chain(base, &x.rhs, None)
            }
            Expr::DynamicConstant(..)
            | Expr::BoolConstant(..)
            | Expr::IntegerConstant(..)
            | Expr::FloatConstant(..)
            | Expr::CharConstant(..)
            | Expr::StringConstant(..)
            | Expr::InterpolatedString(..)
            | Expr::Array(..)
            | Expr::Map(..)
            | Expr::Unit(..)
            | Expr::And(..)
            | Expr::Or(..) => Known::Other,
            Expr::FnCall(call, _) if call.is_operator_call() => Known::Other,
            _ => Known::Unknown,
        }
    }

    /// Applies the right-hand side of a `.` chain to `base`. With `found`, problems and
    /// reads are recorded.
    fn chain(&self, base: Known, rhs: &Expr, mut found: Option<&mut ChainFindings>) -> Known {
        match rhs {
            Expr::Property(x, position) => {
                if let Some(found) = found.as_deref_mut() {
                    found.resolved.insert(*position);
                }
                self.property(base, x.2.as_str(), *position, found)
            }
            Expr::Dot(x, ..) => {
                let step = self.chain(base, &x.lhs, found.as_deref_mut());
                self.chain(step, &x.rhs, found)
            }
            Expr::Index(x, ..) => {
                // `a.b[i]…`: the indexed element, and what follows it, are unknown.
                self.chain(base, &x.lhs, found);
                Known::Unknown
            }
            Expr::MethodCall(call, _) => {
                if let (Known::List(kind), Some(found)) = (base, found)
                    && call.name == "contains"
                    && let [item] = &call.args[..]
                {
                    found.problems.extend(member_problem(kind, item));
                }
                Known::Unknown
            }
            _ => Known::Unknown,
        }
    }

    /// Reads property `name` of `base`.
    fn property(
        &self,
        base: Known,
        name: &str,
        position: Position,
        found: Option<&mut ChainFindings>,
    ) -> Known {
        match base {
            Known::Section(section) => {
                let Some(property) = properties_of(section).find(|p| p.name == name) else {
                    if let Some(found) = found {
                        let suggestion = suggest(name, properties_of(section).map(|p| p.name))
                            .map(|s| format!("; menade du `{s}`?"))
                            .unwrap_or_default();
                        found.problems.push(ScriptProblem {
                            message: format!(
                                "`{}` har inget fält `{name}`{suggestion} (fälten står i regelmappens README.md, avsnitt 4)",
                                section.script_path()
                            ),
                            line: position.line(),
                            column: position.position(),
                        });
                    }
                    return Known::Unknown;
                };
                if let Some(found) = found {
                    found.read(property, position);
                }
                known_of(property)
            }
            Known::Unknown => {
                let mut result: Option<Known> = None;
                let mut found = found;
                for property in properties_named(name) {
                    if let Some(found) = found.as_deref_mut() {
                        found.read(property, position);
                    }
                    // Of a value not known to be the profile (a function's parameter, a
                    // map of the script's own), `x.age` may be anything: never taken for
                    // the profile's field when comparisons are checked.
                    let known = match known_of(property) {
                        Known::Field(..) => Known::Other,
                        known => known,
                    };
                    result = Some(result.map_or(known, |r| r.merge(known)));
                }
                result.unwrap_or(Known::Unknown)
            }
            Known::List(_) | Known::Field(..) | Known::Other => Known::Unknown,
        }
    }

    fn check(&mut self) {
        let mut found = ChainFindings::default();
        let mut calls: Vec<(Call, Position, bool)> = Vec::new();
        let mut properties: Vec<(String, Position)> = Vec::new();
        self.ast.walk(&mut |path: &[ASTNode]| {
            let Some(node) = path.last() else {
                return true;
            };
            match node {
                ASTNode::Expr(Expr::FnCall(call, position))
                | ASTNode::Stmt(Stmt::FnCall(call, position)) => {
                    calls.push((Call::of(call), *position, false));
                    // `"x" in list` (which is `contains(list, "x")`) and `has(list, "x")`.
                    if matches!(call.name.as_str(), "contains" | "has")
                        && let [container, item] = &call.args[..]
                    {
                        if let Known::List(kind) = self.value_of(container) {
                            found.problems.extend(member_problem(kind, item));
                        }
                        // `profile.stage in ["before_gk", …]`
                        if let Some(Operand::Field(property)) = self.operand(item) {
                            found
                                .problems
                                .extend(listed_names_problems(property, container));
                        }
                    }
                    if call.is_operator_call()
                        && COMPARISONS.contains(&call.name.as_str())
                        && let [left, right] = &call.args[..]
                    {
                        found.problems.extend(self.comparison_problem(
                            call.name.as_str(),
                            left,
                            right,
                            *position,
                        ));
                    }
                }
                ASTNode::Expr(Expr::MethodCall(call, position)) => {
                    calls.push((Call::of(call), *position, true));
                }
                ASTNode::Expr(expr @ Expr::Dot(x, ..)) => {
                    // `["before_gk", …].contains(profile.stage)`
                    if let Expr::MethodCall(call, _) = &x.rhs
                        && call.name == "contains"
                        && let [item] = &call.args[..]
                        && let Some(Operand::Field(property)) = self.operand(item)
                    {
                        found
                            .problems
                            .extend(listed_names_problems(property, &x.lhs));
                    }
                    let parent = (path.len() >= 2).then(|| &path[path.len() - 2]);
                    let is_rest_of_chain = matches!(parent, Some(ASTNode::Expr(Expr::Dot(parent, ..))) if std::ptr::eq(&parent.rhs, *expr));
                    // `a[i].b`: Rhai writes it as an index of `a` by `i.b`, the chain
                    // after the index applied to the element, which is unknown.
                    let is_after_index = matches!(parent, Some(ASTNode::Expr(Expr::Index(parent, ..))) if std::ptr::eq(&parent.rhs, *expr));
                    if is_after_index {
                        self.chain(Known::Unknown, &x.rhs, Some(&mut found));
                    } else if !is_rest_of_chain {
                        let base = self.value_of(&x.lhs);
                        self.chain(base, &x.rhs, Some(&mut found));
                    }
                }
                ASTNode::Expr(Expr::Property(x, position)) => {
                    properties.push((x.2.to_string(), *position));
                }
                _ => {}
            }
            true
        });
        found.problems.extend(self.misuse_of_the_profile());
        // A property outside a chain the lint follows: its base is unknown.
        for (name, position) in properties {
            if !found.resolved.contains(&position) {
                self.property(Known::Unknown, &name, position, Some(&mut found));
            }
        }
        for (call, position, method) in calls {
            if found.problems.len() >= MAX_PROBLEMS {
                break;
            }
            if let Some(problem) = self.check_call(&call, position, method) {
                found.problems.push(problem);
            }
        }
        found.problems.truncate(MAX_PROBLEMS);
        self.findings.problems.extend(found.problems);
        self.findings.reads = found.reads;
    }

    /// Uses of the profile and of `param` that can only fail when the rule runs (or, for
    /// a variable of their name, quietly read something else): a variable named `profile`
    /// or `param`, an assignment to them or to a field of the profile, a `for` over a
    /// profile list, and `profile` inside a function of the script's own, which does not
    /// see it.
    fn misuse_of_the_profile(&self) -> Vec<ScriptProblem> {
        const RESERVED: [&str; 2] = [
            super::script_api::PROFILE_VARIABLE,
            super::params::PARAM_VARIABLE,
        ];
        let mut problems = Vec::new();
        let mut problem = |message: String, position: Position| {
            problems.push(ScriptProblem {
                message,
                line: position.line(),
                column: position.position(),
            });
        };
        let reserved = |name: &str| {
            format!(
                "namnet `{name}` är reserverat ({}); välj ett annat namn",
                if name == super::params::PARAM_VARIABLE {
                    "regelns parametrar"
                } else {
                    "profilen"
                }
            )
        };
        self.ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Stmt(Stmt::Var(x, ..))) if RESERVED.contains(&x.0.name.as_str()) => {
                    problem(reserved(x.0.name.as_str()), x.0.pos);
                }
                Some(ASTNode::Stmt(Stmt::For(x, position))) => {
                    for ident in std::iter::once(&x.0).chain(&x.1) {
                        if RESERVED.contains(&ident.name.as_str()) {
                            problem(reserved(ident.name.as_str()), ident.pos);
                        }
                    }
                    if let Known::List(kind) = self.value_of(&x.2.expr) {
                        problem(
                            format!(
                                "det går inte att gå igenom {} med `for`; fråga med `in`, som `\"psychologist\" in profile.specialists`, eller räkna med `.len()`",
                                kind.field()
                            ),
                            *position,
                        );
                    }
                }
                Some(ASTNode::Stmt(Stmt::Assignment(x))) => {
                    let target = &x.1.lhs;
                    let base = match target {
                        Expr::Dot(dot, ..) | Expr::Index(dot, ..) => &dot.lhs,
                        other => other,
                    };
                    // A field of a constant is folded into its value when the script is
                    // compiled (`const K = #{a: 1}; K.a = 2;` assigns to `1`), which
                    // Rhai does not refuse but breaks down on when it runs.
                    if !matches!(
                        target,
                        Expr::Variable(..) | Expr::Dot(..) | Expr::Index(..) | Expr::ThisPtr(..)
                    ) {
                        problem(
                            "det till vänster om `=` är ett fast värde, till exempel en del av en konstant (`const`), och kan inte ändras; skriv `let` i stället för `const` om värdet ska ändras"
                                .to_owned(),
                            target.position(),
                        );
                    }
                    match (variable_name(target), self.value_of(base)) {
                        (Some(name), _) if RESERVED.contains(&name) => {
                            problem(reserved(name), target.position());
                        }
                        (None, Known::Section(_) | Known::List(_)) => problem(
                            "profilen kan inte ändras i en regel; lägg värdet i en egen variabel med `let`"
                                .to_owned(),
                            target.position(),
                        ),
                        _ => {}
                    }
                }
                _ => {}
            }
            true
        });
        // The functions alone: `profile` there is not the profile, unless a function takes
        // it as an argument (`fn f(profile) { … } f(profile)`), as the message advises.
        let takes_the_profile = self
            .ast
            .iter_functions()
            .any(|f| f.params.contains(&super::script_api::PROFILE_VARIABLE));
        let functions = self.ast.clone_functions_only();
        functions.walk(&mut |path: &[ASTNode]| {
            if takes_the_profile {
                return false;
            }
            if let Some(ASTNode::Expr(Expr::Variable(x, _, position))) = path.last()
                && x.1 == super::script_api::PROFILE_VARIABLE
            {
                problem(
                    "en egen funktion ser inte `profile`; skicka in det den behöver som argument, som `fn over(fran, till) { … }`"
                        .to_owned(),
                    *position,
                );
            }
            true
        });
        problems
    }

    /// What one side of a comparison is, when it is a literal or a field of the profile.
    fn operand<'e>(&self, expr: &'e Expr) -> Option<Operand<'e>> {
        match expr {
            Expr::StringConstant(text, _) => Some(Operand::Text(text.as_str())),
            Expr::IntegerConstant(..) | Expr::FloatConstant(..) => Some(Operand::Number),
            Expr::BoolConstant(..) => Some(Operand::Bool),
            _ => match self.value_of(expr) {
                Known::Field(section, name) => properties_of(section)
                    .find(|p| p.name == name)
                    .map(Operand::Field),
                _ => None,
            },
        }
    }

    /// A field compared with a value of another kind (`profile.person.age == "47"`), which
    /// Rhai answers with `false` (`true` for `!=`) or, for a date, with an error on every
    /// profile; or a field of names compared with a name it never holds
    /// (`profile.stage == "before-gk"`), which is never equal.
    fn comparison_problem(
        &self,
        operator: &str,
        left: &Expr,
        right: &Expr,
        position: Position,
    ) -> Option<ScriptProblem> {
        let (field, other) = match (self.operand(left)?, self.operand(right)?) {
            (Operand::Field(field), other) | (other, Operand::Field(field)) => (field, other),
            _ => return None,
        };
        let path = field.script_path();
        let message = match (field.kind, other) {
            (Kind::Structure, _)
            | (
                _,
                Operand::Field(Property {
                    kind: Kind::Structure,
                    ..
                }),
            ) => {
                return None;
            }
            (Kind::Name(names), Operand::Text(text)) if matches!(operator, "==" | "!=") => {
                return name_problem(&path, &names(), text, position);
            }
            (Kind::DiagnosisCode, Operand::Text(text)) if matches!(operator, "==" | "!=") => {
                let stored = crate::profile::DiagnosisCode::parse(text);
                let hint = match &stored {
                    Ok(code) if code.as_str() == text => return None,
                    Ok(code) => format!("koden sparas med versaler, som \"{}\"", code.as_str()),
                    Err(_) => "en kod är en bokstav och två siffror, som \"F32\" eller \"M54.5\""
                        .to_owned(),
                };
                format!(
                    "`{path}` är aldrig \"{}\": {hint}",
                    text.chars().take(40).collect::<String>()
                )
            }
            (kind, other) if family(kind) == family(other.kind()) => return None,
            (kind, other) => {
                let hint = match (kind, other) {
                    (Kind::Date, Operand::Text(_)) => "; skriv datumet som `date(\"2024-01-31\")`",
                    (Kind::Number, Operand::Text(_)) => "; skriv talet utan citattecken",
                    (Kind::Bool, Operand::Text(_)) => {
                        "; skriv `true` eller `false` utan citattecken"
                    }
                    _ => "",
                };
                let outcome = if matches!(kind, Kind::Date) || matches!(other.kind(), Kind::Date) {
                    "regeln ger fel varje gång jämförelsen görs"
                } else {
                    "`==` mellan olika slag är alltid falskt och `!=` alltid sant"
                };
                format!(
                    "`{path}` är {} men jämförs med {}: {outcome}{hint}",
                    kind_word(kind),
                    kind_word(other.kind())
                )
            }
        };
        Some(ScriptProblem {
            message,
            line: position.line(),
            column: position.position(),
        })
    }

    fn check_call(&self, call: &Call, position: Position, method: bool) -> Option<ScriptProblem> {
        if call.arguments > MAX_CALL_ARGUMENTS {
            return Some(ScriptProblem {
                message: format!(
                    "ett anrop får ha högst {MAX_CALL_ARGUMENTS} argument: varje argument \
                     kopieras innan funktionen körs, utanför gränserna för listor och texter"
                ),
                line: position.line(),
                column: position.position(),
            });
        }
        if call.operator || !is_plain_name(&call.name) {
            return None;
        }
        let name = call.name.as_str();
        if name == "sleep" {
            return Some(ScriptProblem {
                message: super::SLEEP_REFUSED.to_owned(),
                line: position.line(),
                column: position.position(),
            });
        }
        if KEYWORD_FUNCTIONS.contains(&name)
            || self.variables.contains_key(name)
            || (method && self.map_keys.contains(name))
        {
            return None;
        }
        // The arguments each could take as written: a method call passes its object
        // first to a helper, but binds it to `this` in a function of the script's own.
        let arities: HashSet<usize> = FUNCTIONS
            .get(name)
            .into_iter()
            .flatten()
            .map(|n| n.saturating_sub(usize::from(method)))
            .chain(self.own.get(name).into_iter().flatten().copied())
            .collect();
        let message = if arities.is_empty() {
            let names = FUNCTIONS
                .keys()
                .chain(self.own.keys())
                .map(String::as_str)
                .filter(|n| is_plain_name(n));
            let suggestion = suggest(name, names)
                .map(|s| format!("; menade du `{s}`?"))
                .unwrap_or_default();
            format!(
                "okänd funktion `{name}`{suggestion} (hjälpfunktionerna finns i rules/README.md avsnitt 6)"
            )
        } else if !arities.contains(&call.arguments) {
            let mut counts: Vec<usize> = arities.into_iter().collect();
            counts.sort_unstable();
            let given = call.arguments;
            let counts: Vec<String> = counts.iter().map(ToString::to_string).collect();
            format!(
                "`{name}` tar {} argument, här {}",
                join_or(&counts),
                if given == 1 {
                    "får den 1".to_owned()
                } else {
                    format!("får den {given}")
                }
            )
        } else {
            return None;
        };
        Some(ScriptProblem {
            message,
            line: position.line(),
            column: position.position(),
        })
    }
}

/// A name a profile list can never hold, written as a literal: a typo that would
/// otherwise fail only when the rule runs.
fn member_problem(kind: ListKind, item: &Expr) -> Option<ScriptProblem> {
    let Expr::StringConstant(name, position) = item else {
        return None;
    };
    unknown_name(&kind.valid_names(), name, *position, |shown| {
        format!("\"{shown}\" kan aldrig finnas i {}", kind.field())
    })
}

/// The operators that compare two values.
const COMPARISONS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

/// One side of a comparison, as far as the lint knows it.
#[derive(Clone, Copy)]
enum Operand<'e> {
    Field(&'static Property),
    Text(&'e str),
    Number,
    Bool,
}

impl Operand<'_> {
    fn kind(self) -> Kind {
        match self {
            Self::Field(property) => property.kind,
            Self::Text(_) => Kind::Text,
            Self::Number => Kind::Number,
            Self::Bool => Kind::Bool,
        }
    }
}

/// Kinds that compare with each other: a text and a name are both texts.
fn family(kind: Kind) -> u8 {
    match kind {
        Kind::Text | Kind::Name(_) | Kind::DiagnosisCode => 0,
        Kind::Number => 1,
        Kind::Bool => 2,
        Kind::Date => 3,
        Kind::Structure => 4,
    }
}

/// The kind in the words of a message.
fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Name(_) | Kind::DiagnosisCode => "en text",
        Kind::Number => "ett tal",
        Kind::Bool => "sant eller falskt",
        Kind::Date => "ett datum",
        Kind::Structure => "en del av profilen",
    }
}

/// A name a field of names never holds, written as a literal.
fn name_problem(
    path: &str,
    names: &[&'static str],
    text: &str,
    position: Position,
) -> Option<ScriptProblem> {
    unknown_name(names, text, position, |shown| {
        format!("`{path}` är aldrig \"{shown}\"")
    })
}

/// `text`, written as a literal where only one of `names` can be, when it is none of
/// them: `what` says so of the text (cut to 40 characters), followed by the closest name
/// and every name.
fn unknown_name(
    names: &[&'static str],
    text: &str,
    position: Position,
    what: impl FnOnce(&str) -> String,
) -> Option<ScriptProblem> {
    if names.contains(&text) {
        return None;
    }
    let suggestion = suggest(text, names.iter().copied())
        .map(|s| format!("menade du \"{s}\"? "))
        .unwrap_or_default();
    Some(ScriptProblem {
        message: format!(
            "{}; {suggestion}giltiga värden: {}",
            what(&text.chars().take(40).collect::<String>()),
            names.join(", ")
        ),
        line: position.line(),
        column: position.position(),
    })
}

/// The literal names of `container` (a list written in the script) that the field of
/// names `property` never holds.
fn listed_names_problems(property: &'static Property, container: &Expr) -> Vec<ScriptProblem> {
    let Kind::Name(names) = property.kind else {
        return Vec::new();
    };
    let names = names();
    let path = property.script_path();
    match container {
        Expr::Array(items, _) => items
            .iter()
            .filter_map(|item| match item {
                Expr::StringConstant(text, at) => name_problem(&path, &names, text, *at),
                _ => None,
            })
            .collect(),
        // The optimiser folds a list of constants into one value.
        Expr::DynamicConstant(value, position) => value
            .read_lock::<rhai::Array>()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        let text = item.read_lock::<rhai::ImmutableString>()?;
                        name_problem(&path, &names, text.as_str(), *position)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A function call as the lint checks it.
struct Call {
    name: String,
    arguments: usize,
    operator: bool,
}

impl Call {
    fn of(call: &FnCallExpr) -> Self {
        Self {
            name: call.name.to_string(),
            arguments: call.args.len(),
            operator: call.is_operator_call(),
        }
    }
}

/// `1`, `1 eller 2`, `1, 2 eller 3`.
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} eller {last}", rest.join(", ")),
    }
}

/// What a property gives: a section, a list or a plain value.
fn known_of(property: &Property) -> Known {
    match &property.read {
        Read::Fixed(Value::Section(section)) => Known::Section(*section),
        Read::Fixed(Value::List(kind)) => Known::List(*kind),
        _ => Known::Field(property.section, property.name),
    }
}

#[derive(Default)]
struct ChainFindings {
    problems: Vec<ScriptProblem>,
    reads: BTreeMap<String, (Option<usize>, Option<usize>)>,
    resolved: HashSet<Position>,
}

impl ChainFindings {
    fn read(&mut self, property: &Property, position: Position) {
        if let Some(path) = property.input_path() {
            self.reads
                .entry(path)
                .or_insert((position.line(), position.position()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(script: &str) -> Findings {
        let ast = super::super::compile(script).expect("compiles");
        lint(&ast)
    }

    fn messages(script: &str) -> Vec<String> {
        findings(script)
            .problems
            .iter()
            .map(|p| {
                format!(
                    "{}:{}: {}",
                    p.line.unwrap_or(0),
                    p.column.unwrap_or(0),
                    p.message
                )
            })
            .collect()
    }

    #[test]
    fn a_misspelt_function_is_found_with_a_suggestion() {
        let found = messages(
            "let a = profile.gk.requested_on;\nhas_value(a) && days_betwen(a, profile.checked_on) > 2",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("2:17: okänd funktion `days_betwen`; menade du `days_between`?"),
            "{found:?}"
        );
    }

    #[test]
    fn a_field_compared_with_a_literal_of_another_kind_is_found() {
        let cases = [
            (
                r#"profile.person.age == "47""#,
                "`profile.person.age` är ett tal men jämförs med en text",
            ),
            (
                r#"let p = profile.person; "47" != p.age"#,
                "`profile.person.age` är ett tal men jämförs med en text",
            ),
            (
                r#"profile.person.born_abroad == "true""#,
                "skriv `true` eller `false` utan citattecken",
            ),
            (
                r#"profile.main_diagnosis == 73"#,
                "`profile.main_diagnosis` är en text men jämförs med ett tal",
            ),
            (
                r#"profile.checked_on >= "2023-01-01""#,
                "regeln ger fel varje gång jämförelsen görs; skriv datumet som `date(",
            ),
            (
                r#"profile.activity_level.documented == profile.person.age"#,
                "är sant eller falskt men jämförs med ett tal",
            ),
        ];
        for (script, expected) in cases {
            let found = messages(script);
            assert_eq!(found.len(), 1, "{script}: {found:?}");
            assert!(found[0].contains(expected), "{script}: {found:?}");
        }
        for script in [
            // A map of the script's own, or a function's parameter, with a key named
            // like a field of the profile.
            r#"fn lookup(m) { m.benefit == "sjukpenning" } lookup(#{benefit: "sjukpenning"})"#,
            r#"fn text_for(row) { row.stage == "förberedelse" && row.age == "x" } text_for(#{stage: "förberedelse", age: "x"})"#,
            r#"profile.person.age == 47 && profile.activity_level.hours_per_week < 10"#,
            r#"profile.activity_level.hours_per_week >= 10.5 && profile.person.sgi > 0"#,
            r#"profile.main_diagnosis == "F32" && profile.person.born_abroad != false"#,
            r#"profile.checked_on >= date("2023-01-01") && profile.stage == "before_gk""#,
            r#"let a = if profile.person.age > 60 { "x" } else { 1 }; a == "x""#,
        ] {
            assert_eq!(messages(script), Vec::<String>::new(), "{script}");
        }
    }

    #[test]
    fn a_name_a_field_of_names_never_holds_is_found_with_a_suggestion() {
        let found = messages(r#"profile.stage == "before-gk""#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(r#"`profile.stage` är aldrig "before-gk"; menade du "before_gk"?"#),
            "{found:?}"
        );
        for (script, expected) in [
            (
                r#"profile.main_diagnosis == "f32""#,
                r#"sparas med versaler, som "F32""#,
            ),
            (
                r#"profile.main_diagnosis != "F3""#,
                "en bokstav och två siffror",
            ),
        ] {
            let found = messages(script);
            assert_eq!(found.len(), 1, "{script}: {found:?}");
            assert!(found[0].contains(expected), "{script}: {found:?}");
        }
        assert!(messages(r#"profile.main_diagnosis == "M54.5""#).is_empty());
        let found = messages(r#"let p = profile.person; p.sex != "kvinna""#);
        assert!(
            found[0].contains("giltiga värden: female, male"),
            "{found:?}"
        );
        let found = messages(r#"profile.benefit in ["sickness_benefit", "sjukpenning"]"#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(r#"aldrig "sjukpenning""#), "{found:?}");
        assert!(messages(r#"profile.person.education in ["doctoral", "unknown"]"#).is_empty());
        let found = messages(r#"["sickness_benefit", "sjukpenning"].contains(profile.benefit)"#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(r#"aldrig "sjukpenning""#), "{found:?}");
    }

    /// Each of these passed the lint and failed (or quietly read something else) only
    /// when the rule ran.
    #[test]
    fn misuses_of_the_profile_and_of_param_are_found() {
        for (script, expected) in [
            (
                "let param = #{max_dagar: 1}; param.max_dagar > 0",
                "namnet `param` är reserverat",
            ),
            (
                "const profile = 3; profile > 1",
                "namnet `profile` är reserverat",
            ),
            (
                r#"profile.stage = "gk_closing"; true"#,
                "profilen kan inte ändras",
            ),
            (
                "let p = profile.person; p.age = 3; true",
                "profilen kan inte ändras",
            ),
            (
                "for s in profile.specialists { } true",
                "gå igenom specialists med `for`",
            ),
            (
                "fn f() { profile.stage } f() == 1",
                "en egen funktion ser inte `profile`",
            ),
            // Compiled to an assignment to `1`, on which Rhai panicked when it ran.
            (
                "const K = #{a: 1};\nK.a = 2;\nfalse",
                "2:1: det till vänster om `=` är ett fast värde",
            ),
        ] {
            let found = messages(script);
            assert!(
                found.iter().any(|m| m.contains(expected)),
                "{script}: {found:?}"
            );
        }
        for script in [
            "let n = 0; for x in [1, 2] { n += x; } n > 2",
            "fn over(a, b) { days_between(a, b) > 21 } has_value(profile.gk.requested_on) && over(profile.gk.requested_on, profile.checked_on)",
            "let s = profile.person; s.age > 3",
            r#"fn f(profile) { profile.stage == "before_gk" } f(profile)"#,
            "let k = #{a: 1}; k.a = 2; k[\"a\"] = 3; k.a == 3",
            "fn inc() { this += 1; } let x = 1; x.inc(); x == 2",
        ] {
            assert_eq!(messages(script), Vec::<String>::new(), "{script}");
        }
    }

    #[test]
    fn a_wrong_number_of_arguments_is_found() {
        let found = messages("days_between(profile.checked_on) > 2");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("`days_between` tar 2 argument, här får den 1"),
            "{found:?}"
        );
        assert!(messages("profile.specialists.len() == 0").is_empty());
        assert!(messages("profile.specialists.len(1) == 0")[0].contains("tar 0 argument"));
        // A function of the script's own called as a method has its object as `this`,
        // not as an argument.
        for script in [
            "fn plus_ett() { this + 1 } let k = 1; k.plus_ett() == 2",
            "fn plus(n) { this + n } let k = 1; k.plus(1) == 2",
        ] {
            assert_eq!(messages(script), Vec::<String>::new(), "{script}");
        }
        let found = messages("fn plus(n) { this + n } let k = 1; k.plus() == 2");
        assert!(
            found[0].contains("`plus` tar 1 argument, här får den 0"),
            "{found:?}"
        );
    }

    #[test]
    fn rhai_functions_own_functions_and_keywords_are_known() {
        for script in [
            r#"let l = []; l.push("a"); l.len() == 1 && "a" in l"#,
            r#"fn over(a, b) { days_between(a, b) > 21 } has_value(profile.gk.requested_on) && over(profile.gk.requested_on, profile.checked_on)"#,
            r#"let f = Fn("is_true"); type_of(f) == "Fn" && f.call(true)"#,
            r#"`${profile.checked_on.to_string()}`.len() > 0"#,
            r#"let m = #{ plus: |x| x + 1 }; m.plus(1) == 2"#,
        ] {
            assert_eq!(messages(script), Vec::<String>::new(), "{script}");
        }
    }

    #[test]
    fn a_misspelt_field_is_found_through_variables_too() {
        let found = messages("profile.gk.requestd_on == profile.checked_on");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "1:12: `profile.gk` har inget fält `requestd_on`; menade du `requested_on`?"
            ),
            "{found:?}"
        );
        let found = messages("let niva = profile.activity_level;\nis_true(niva.documentd)");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "2:14: `profile.activity_level` har inget fält `documentd`; menade du `documented`?"
            ),
            "{found:?}"
        );
        let found = messages("profile.gkk.requested_on");
        assert!(
            found[0].contains("`profile` har inget fält `gkk`; menade du `gk`?"),
            "{found:?}"
        );
    }

    #[test]
    fn reads_are_collected_through_variables_and_unknown_bases() {
        let reads = findings(
            "let forb = profile.preparation;\nlet s = forb.sassam_on;\nfn f(g) { g.first_meeting_on }\nknown(s) && \"x\" in profile.specialists && profile.stage == \"a\" && f(profile.gk) == ()",
        )
        .reads;
        let paths: Vec<&str> = reads.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "gk.first_meeting_on",
                "preparation.sassam_on",
                "specialists",
                "stage"
            ]
        );
        assert_eq!(reads["preparation.sassam_on"], (Some(2), Some(14)));
    }

    #[test]
    fn a_name_bound_to_different_sections_is_not_a_misspelling() {
        let script = "let g = profile.gk;\nlet ok = has_value(g.requested_on);\ng = profile.person;\nok && has_value(g.age)";
        assert!(messages(script).is_empty(), "{:?}", messages(script));
        let reads = findings(script).reads;
        assert!(
            reads.contains_key("gk.requested_on") && reads.contains_key("person.age"),
            "{reads:?}"
        );
    }

    #[test]
    fn a_name_a_list_can_never_hold_is_found() {
        for script in [
            r#""socialworker" in profile.specialists"#,
            r#"has(profile.specialists, "socialworker")"#,
            r#"let s = profile.specialists; s.contains("socialworker")"#,
        ] {
            let found = messages(script);
            assert_eq!(found.len(), 1, "{script}: {found:?}");
            assert!(
                found[0].contains(
                    r#""socialworker" kan aldrig finnas i specialists; menade du "social_worker"?"#
                ),
                "{script}: {found:?}"
            );
        }
        assert!(messages(r#""employer" in profile.gk.external_participants"#).is_empty());
        assert!(
            messages(r#""psychologist" in profile.gk.external_participants"#)[0]
                .contains("gk.external_participants")
        );
    }

    #[test]
    fn a_script_full_of_mistakes_reports_the_first_ones() {
        let script = format!("let a = 1;\n{}a == 1", "nope(a);\n".repeat(500));
        let found = findings(&script);
        assert_eq!(found.problems.len(), MAX_PROBLEMS);
        assert_eq!(found.problems[0].line, Some(2));
    }

    #[test]
    fn suggestions_need_a_close_name() {
        assert_eq!(
            suggest("days_betwen", ["days_between", "date"].into_iter()),
            Some("days_between")
        );
        assert_eq!(suggest("xyz", ["days_between", "date"].into_iter()), None);
        assert_eq!(suggest("foo", ["floor", "Fn"].into_iter()), None);
        // Half of a short name changed is another word, not a typo of it.
        assert_eq!(suggest("nope", ["pop", "push"].into_iter()), None);
        assert_eq!(
            suggest("is_fals", ["is_false", "is_true"].into_iter()),
            Some("is_false")
        );
        assert_eq!(
            suggest("documentd", ["documented", "hours_per_week"].into_iter()),
            Some("documented")
        );
    }
}
