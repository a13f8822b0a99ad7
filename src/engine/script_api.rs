//! What a rule script sees: the profile as registered Rhai types with getters, and the
//! helper functions of the rule authoring guide (`rules/README.md`).
//!
//! The properties themselves are defined once, in [`super::value`]. The profile is
//! never converted into Rhai maps. Each section (`profile.preparation`,
//! …) is a view holding an `Arc` of the parsed [`Profile`], so property access costs a
//! reference-count increment instead of a deep copy. Values the officer left out come
//! back as a [`NoValue`] that refuses to be compared or used as a condition, so a rule
//! that forgets "uppgift saknas" fails visibly instead of silently not flagging.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT, ImmutableString, Position};

use super::helpers::{self, Test};
use super::value::{ListKind, NoValue, Section, Value, properties_of};
use crate::profile::{
    Benefit, Date, DiagnosisGroup, Education, MaritalStatus, Profile, Sex, Stage,
};

type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// The name under which rule scripts see the profile.
pub const PROFILE_VARIABLE: &str = "profile";

/// The whole profile, as `profile` in a script.
#[derive(Clone)]
pub struct ProfileView(pub Arc<Profile>);

macro_rules! section_views {
    ($($name:ident),+) => {$(
        #[derive(Clone)]
        pub struct $name(Arc<Profile>);
    )+};
}
section_views!(
    PersonView,
    PreparationView,
    GkView,
    ActivityLevelView,
    KnownNeedsView
);

/// `profile.specialists` or `profile.gk.external_participants`: a list of names that
/// supports `"x" in list` and `has(list, "x")` without building a Rhai array.
#[derive(Clone)]
pub struct ListView {
    profile: Arc<Profile>,
    kind: ListKind,
}

impl ListView {
    fn contains(&self, name: &str) -> ScriptResult<bool> {
        self.kind
            .contains(&self.profile, name)
            .map_err(script_error)
    }

    fn joined(&self) -> String {
        self.kind
            .names(&self.profile)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A rule's parameters as `param` in its script: each name with its value on the
/// profile's `checked_on`. `param.NAME` reads a value (through the indexer, Rhai's
/// fallback for a property without a getter); an unknown name is an error.
#[derive(Clone)]
pub struct ParamView(Arc<[(String, Dynamic)]>);

impl ParamView {
    /// The values of `parameters`, in order, as `param` shows them.
    pub fn new<'a>(parameters: impl Iterator<Item = (&'a str, &'a Value<'a>)>) -> Self {
        Self(
            parameters
                .map(|(name, value)| {
                    let value = match value {
                        Value::Int(i) => Dynamic::from_int(*i),
                        Value::Float(f) => Dynamic::from_float(*f as FLOAT),
                        Value::Text(t) => Dynamic::from(ImmutableString::from(t.as_ref())),
                        _ => Dynamic::UNIT,
                    };
                    (name.to_owned(), value)
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> ScriptResult<Dynamic> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| {
                script_error(format!(
                    "regeln har ingen parameter som heter {}; den har {}",
                    name.chars().take(40).collect::<String>(),
                    self.0
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// A calendar date in a script: compares with other dates, `+`/`-` whole days.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScriptDate(pub Date);

fn script_error(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.into(), Position::NONE))
}

/// Interned names, so reading `profile.stage` does not allocate a new string each time.
static NAMES: LazyLock<HashMap<&'static str, ImmutableString>> = LazyLock::new(|| {
    let all = Stage::ALL
        .iter()
        .map(|v| v.as_str())
        .chain(Benefit::ALL.iter().map(|v| v.as_str()))
        .chain(Sex::ALL.iter().map(|v| v.as_str()))
        .chain(MaritalStatus::ALL.iter().map(|v| v.as_str()))
        .chain(Education::ALL.iter().map(|v| v.as_str()))
        .chain(
            [
                DiagnosisGroup::Psychiatric,
                DiagnosisGroup::Musculoskeletal,
                DiagnosisGroup::Injury,
                DiagnosisGroup::Other,
            ]
            .iter()
            .map(|g| g.as_str()),
        )
        .chain(std::iter::once("unknown"));
    all.map(|name| (name, ImmutableString::from(name)))
        .collect()
});

fn name(text: &str) -> Dynamic {
    NAMES.get(text).map_or_else(
        || Dynamic::from(text.to_owned()),
        |s| Dynamic::from(s.clone()),
    )
}

/// A property's value as a Rhai value; sections and lists become views of `profile`.
fn to_dynamic(value: Value<'_>, profile: &Arc<Profile>) -> Dynamic {
    match value {
        Value::Unit => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(b),
        Value::Int(i) => Dynamic::from_int(i),
        Value::Float(f) => Dynamic::from_float(f as FLOAT),
        Value::Text(text) => name(&text),
        Value::Date(date) => Dynamic::from(ScriptDate(date)),
        Value::Missing(missing) => Dynamic::from(missing),
        Value::Section(section) => {
            let profile = Arc::clone(profile);
            match section {
                Section::Profile => Dynamic::from(ProfileView(profile)),
                Section::Person => Dynamic::from(PersonView(profile)),
                Section::Preparation => Dynamic::from(PreparationView(profile)),
                Section::Gk => Dynamic::from(GkView(profile)),
                Section::ActivityLevel => Dynamic::from(ActivityLevelView(profile)),
                Section::KnownNeeds => Dynamic::from(KnownNeedsView(profile)),
            }
        }
        Value::List(kind) => Dynamic::from(ListView {
            profile: Arc::clone(profile),
            kind,
        }),
        Value::Array(items) => Dynamic::from_array(items.iter().map(|item| name(item)).collect()),
        // No property reads as one.
        Value::Other => Dynamic::UNIT,
    }
}

/// A Rhai value as the helpers read it; a text is borrowed, not copied.
fn with_value<R>(value: &Dynamic, read: impl FnOnce(&Value<'_>) -> R) -> R {
    if value.is_unit() {
        return read(&Value::Unit);
    }
    if let Ok(b) = value.as_bool() {
        return read(&Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return read(&Value::Int(i));
    }
    if let Ok(f) = value.as_float() {
        return read(&Value::Float(f));
    }
    if let Some(text) = value.read_lock::<ImmutableString>() {
        return read(&Value::Text(Cow::Borrowed(text.as_str())));
    }
    if let Some(date) = value.read_lock::<ScriptDate>() {
        return read(&Value::Date(date.0));
    }
    if let Some(missing) = value.read_lock::<NoValue>() {
        return read(&Value::Missing(*missing));
    }
    if let Some(list) = value.read_lock::<ListView>() {
        return read(&Value::List(list.kind));
    }
    let section = if value.is::<ProfileView>() {
        Section::Profile
    } else if value.is::<PersonView>() {
        Section::Person
    } else if value.is::<PreparationView>() {
        Section::Preparation
    } else if value.is::<GkView>() {
        Section::Gk
    } else if value.is::<ActivityLevelView>() {
        Section::ActivityLevel
    } else if value.is::<KnownNeedsView>() {
        Section::KnownNeeds
    } else {
        return read(&Value::Other);
    };
    read(&Value::Section(section))
}

fn expect_date(value: &Dynamic, helper: &str) -> ScriptResult<Date> {
    if let Some(date) = value.clone().try_cast::<ScriptDate>() {
        return Ok(date.0);
    }
    if let Some(missing) = value.clone().try_cast::<NoValue>() {
        return Err(script_error(format!(
            "{helper}: {}; kontrollera med has_value() först",
            missing.describe()
        )));
    }
    Err(script_error(format!(
        "{helper} behöver ett datum, fick {}",
        value.type_name()
    )))
}

/// Registers the profile types, their getters and the rule helpers on `engine`.
pub fn register(engine: &mut Engine) {
    register_profile(engine);
    register_dates(engine);
    register_no_value(engine);
    register_mismatched_comparisons(engine);
    register_lists(engine);
    register_helpers(engine);
    engine
        .register_type_with_name::<ParamView>("Parametrar")
        .register_indexer_get(|params: &mut ParamView, name: &str| params.get(name));
}

/// Registers each section type with a getter for every property of [`PROPERTIES`].
fn register_profile(engine: &mut Engine) {
    macro_rules! section {
        ($view:ty, $type_name:literal, $section:expr) => {
            engine.register_type_with_name::<$view>($type_name);
            for property in properties_of($section) {
                engine.register_get(property.name, move |view: &mut $view| {
                    to_dynamic(property.value(&view.0), &view.0)
                });
            }
        };
    }
    section!(ProfileView, "Profile", Section::Profile);
    section!(PersonView, "Person", Section::Person);
    section!(PreparationView, "Preparation", Section::Preparation);
    section!(GkView, "Gk", Section::Gk);
    section!(ActivityLevelView, "ActivityLevel", Section::ActivityLevel);
    section!(KnownNeedsView, "KnownNeeds", Section::KnownNeeds);
}

fn register_dates(engine: &mut Engine) {
    engine
        .register_type_with_name::<ScriptDate>("Date")
        .register_fn("date", |text: &str| -> ScriptResult<ScriptDate> {
            helpers::date(text).map(ScriptDate).map_err(script_error)
        })
        .register_fn("to_string", |d: &mut ScriptDate| d.0.to_string())
        .register_fn("to_debug", |d: &mut ScriptDate| d.0.to_string())
        // `&mut` first parameters (pure, like every function here) let Rhai pass a
        // variable by reference instead of copying it (a copy of a custom type allocates).
        .register_fn("==", |a: &mut ScriptDate, b: ScriptDate| *a == b)
        .register_fn("!=", |a: &mut ScriptDate, b: ScriptDate| *a != b)
        .register_fn("<", |a: &mut ScriptDate, b: ScriptDate| *a < b)
        .register_fn("<=", |a: &mut ScriptDate, b: ScriptDate| *a <= b)
        .register_fn(">", |a: &mut ScriptDate, b: ScriptDate| *a > b)
        .register_fn(">=", |a: &mut ScriptDate, b: ScriptDate| *a >= b)
        .register_fn(
            "+",
            |a: ScriptDate, days: INT| -> ScriptResult<ScriptDate> {
                helpers::plus_days(a.0, days)
                    .map(ScriptDate)
                    .ok_or_else(|| script_error(helpers::date_out_of_range('+', days)))
            },
        )
        .register_fn(
            "-",
            |a: ScriptDate, days: INT| -> ScriptResult<ScriptDate> {
                helpers::minus_days(a.0, days)
                    .map(ScriptDate)
                    .ok_or_else(|| script_error(helpers::date_out_of_range('-', days)))
            },
        )
        .register_fn("days_between", |from: &mut ScriptDate, to: ScriptDate| {
            helpers::days_between(from.0, to.0)
        })
        // Anything but two dates: the error names what was wrong.
        .register_fn(
            "days_between",
            |from: Dynamic, to: Dynamic| -> ScriptResult<INT> {
                let from = expect_date(&from, "days_between")?;
                let to = expect_date(&to, "days_between")?;
                Ok(helpers::days_between(from, to))
            },
        );
}

/// A date compared with a value of another kind (text, a number, a truth value) is an
/// error the rule author sees: Rhai answers it `false`, so `checked_on >= "2023-01-01"`
/// would never flag and nobody would know. Rhai's own types (numbers, text, truth values)
/// compared with one another are Rhai's: overloading them would take its fast operators
/// away, 40 % of each evaluation.
fn register_mismatched_comparisons(engine: &mut Engine) {
    fn refuse<T: rhai::Variant + Clone>(engine: &mut Engine, other: &'static str) {
        const HINT: &str = "; skriv ett datum som date(\"ÅÅÅÅ-MM-DD\")";
        for op in ["==", "!=", "<", "<=", ">", ">="] {
            engine.register_fn(op, move |_: ScriptDate, _: T| -> ScriptResult<bool> {
                Err(script_error(format!(
                    "kan inte jämföra ett datum med {other} ({op}){HINT}"
                )))
            });
            engine.register_fn(op, move |_: T, _: ScriptDate| -> ScriptResult<bool> {
                Err(script_error(format!(
                    "kan inte jämföra {other} med ett datum ({op}){HINT}"
                )))
            });
        }
    }
    refuse::<ImmutableString>(engine, "text");
    refuse::<INT>(engine, "ett heltal");
    refuse::<FLOAT>(engine, "ett decimaltal");
    refuse::<bool>(engine, "sant/falskt");
}

fn register_no_value(engine: &mut Engine) {
    engine
        .register_type_with_name::<NoValue>("NoValue")
        .register_fn("to_string", |v: &mut NoValue| {
            if v.absent { "saknas" } else { "null" }.to_owned()
        })
        .register_fn("to_debug", |v: &mut NoValue| v.describe());
    // Any comparison with a missing value is an error the rule author sees, never a
    // silent `false`.
    for op in ["==", "!=", "<", "<=", ">", ">="] {
        engine.register_fn(op, move |v: NoValue, _: Dynamic| -> ScriptResult<bool> {
            Err(script_error(format!(
                "kan inte jämföra med {op}: {}; använd known() eller has_value() först",
                v.describe()
            )))
        });
        engine.register_fn(op, move |_: Dynamic, v: NoValue| -> ScriptResult<bool> {
            Err(script_error(format!(
                "kan inte jämföra med {op}: {}; använd known() eller has_value() först",
                v.describe()
            )))
        });
    }
}

fn register_lists(engine: &mut Engine) {
    engine
        .register_type_with_name::<ListView>("List")
        .register_fn("contains", |list: &mut ListView, item: &str| {
            list.contains(item)
        })
        .register_fn("has", |list: ListView, item: &str| list.contains(item))
        .register_fn("len", |list: &mut ListView| {
            list.kind.len(&list.profile) as INT
        })
        .register_fn("is_empty", |list: &mut ListView| {
            list.kind.len(&list.profile) == 0
        })
        .register_fn("to_string", |list: &mut ListView| list.joined())
        .register_fn("to_debug", |list: &mut ListView| {
            format!("[{}]", list.joined())
        });
}

/// Registers `known`, `has_value`, `is_true` and `is_false` once per type a getter can
/// return, so a call resolves on its exact argument type (taken by reference: a copy
/// of a custom type allocates), and once for any other value. Every version asks the
/// same [`Test`].
fn register_tests(engine: &mut Engine) {
    for test in Test::ALL {
        let name = test.name();
        engine
            .register_fn(name, move |b: &mut bool| test.answer(&Value::Bool(*b)))
            .register_fn(name, move |i: &mut INT| test.answer(&Value::Int(*i)))
            .register_fn(name, move |f: &mut FLOAT| test.answer(&Value::Float(*f)))
            .register_fn(name, move |s: &mut ImmutableString| {
                test.answer(&Value::Text(Cow::Borrowed(s.as_str())))
            })
            .register_fn(name, move |d: &mut ScriptDate| {
                test.answer(&Value::Date(d.0))
            })
            .register_fn(name, move |v: &mut NoValue| {
                test.answer(&Value::Missing(*v))
            })
            .register_fn(name, move |l: &mut ListView| {
                test.answer(&Value::List(l.kind))
            })
            .register_fn(name, move |value: Dynamic| {
                with_value(&value, |value| test.answer(value))
            });
    }
}

fn register_helpers(engine: &mut Engine) {
    register_tests(engine);
    engine.register_fn("diagnosis_group", |code: Dynamic| {
        name(with_value(&code, helpers::diagnosis_group))
    });
    // Rhai's own `pad` with an empty text loops for ever inside one call, where no
    // operation is counted and no time limit is read: this one, found first, refuses it.
    engine.register_fn(
        "pad",
        |text: &mut ImmutableString, len: INT, padding: &str| -> ScriptResult<()> {
            if padding.is_empty() {
                return Err(script_error(
                    "pad behöver en utfyllnad som inte är tom".to_owned(),
                ));
            }
            let Ok(len) = usize::try_from(len) else {
                return Ok(());
            };
            // The limit is in bytes, as Rhai's own; a length in characters above it
            // can never fit.
            let too_long = || {
                script_error(format!(
                    "pad: en text får vara högst {} byte",
                    super::LIMITS.max_string_size
                ))
            };
            if len > super::LIMITS.max_string_size {
                return Err(too_long());
            }
            let have = text.chars().count();
            if have < len {
                let padded: String = text
                    .chars()
                    .chain(padding.chars().cycle().take(len - have))
                    .collect();
                if padded.len() > super::LIMITS.max_string_size {
                    return Err(too_long());
                }
                *text = padded.into();
            }
            Ok(())
        },
    );
}
