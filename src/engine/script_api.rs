//! What a rule script sees: the profile as registered Rhai types with getters, and the
//! helper functions of the rule authoring guide (`rules/README.md`).
//!
//! The profile is never converted into Rhai maps. Each section (`profile.preparation`,
//! …) is a view holding an `Arc` of the parsed [`Profile`], so property access costs a
//! reference-count increment instead of a deep copy. Values the officer left out come
//! back as a [`NoValue`] that refuses to be compared or used as a condition, so a rule
//! that forgets "uppgift saknas" fails visibly instead of silently not flagging.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT, ImmutableString, Position};

use crate::profile::{
    Benefit, Date, DiagnosisGroup, Education, ExternalParticipant, Field, MaritalStatus, Profile,
    Sex, Specialist, Stage,
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

/// Which list of names a [`ListView`] reads.
#[derive(Clone, Copy)]
enum ListKind {
    Specialists,
    ExternalParticipants,
}

/// `profile.specialists` or `profile.gk.external_participants`: a list of names that
/// supports `"x" in list` and `has(list, "x")` without building a Rhai array.
#[derive(Clone)]
pub struct ListView {
    profile: Arc<Profile>,
    kind: ListKind,
}

impl ListView {
    fn field(&self) -> &'static str {
        match self.kind {
            ListKind::Specialists => "specialists",
            ListKind::ExternalParticipants => "gk.external_participants",
        }
    }

    fn names(&self) -> Box<dyn Iterator<Item = &'static str> + '_> {
        match self.kind {
            ListKind::Specialists => Box::new(self.profile.specialists.iter().map(|s| s.as_str())),
            ListKind::ExternalParticipants => Box::new(
                self.profile
                    .gk
                    .external_participants
                    .iter()
                    .map(|s| s.as_str()),
            ),
        }
    }

    fn len(&self) -> usize {
        match self.kind {
            ListKind::Specialists => self.profile.specialists.len(),
            ListKind::ExternalParticipants => self.profile.gk.external_participants.len(),
        }
    }

    /// Membership, refusing a name the list can never hold (a typo in a rule must not
    /// silently read as "not engaged").
    fn contains(&self, name: &str) -> ScriptResult<bool> {
        let valid = match self.kind {
            ListKind::Specialists => Specialist::from_name(name).is_some(),
            ListKind::ExternalParticipants => ExternalParticipant::from_name(name).is_some(),
        };
        if !valid {
            let allowed: Vec<&str> = match self.kind {
                ListKind::Specialists => Specialist::ALL.iter().map(|s| s.as_str()).collect(),
                ListKind::ExternalParticipants => ExternalParticipant::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            };
            return Err(script_error(format!(
                "{name:?} kan aldrig finnas i {}; giltiga värden: {}",
                self.field(),
                allowed.join(", ")
            )));
        }
        Ok(self.names().any(|n| n == name))
    }
}

/// A calendar date in a script: compares with other dates, `+`/`-` whole days.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScriptDate(pub Date);

/// A field without a value: `absent` when the officer left it out ("uppgift saknas"),
/// otherwise it was `null` ("has not happened").
#[derive(Clone, Copy)]
pub struct NoValue {
    field: &'static str,
    absent: bool,
}

impl NoValue {
    fn describe(self) -> String {
        if self.absent {
            format!("{} saknas i profilen (uppgift saknas)", self.field)
        } else {
            format!("{} är null (har inte skett)", self.field)
        }
    }
}

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

fn name(text: &'static str) -> Dynamic {
    NAMES
        .get(text)
        .map_or_else(|| Dynamic::from(text), |s| Dynamic::from(s.clone()))
}

fn absent(field: &'static str) -> Dynamic {
    Dynamic::from(NoValue {
        field,
        absent: true,
    })
}

fn opt_bool(value: Option<bool>, field: &'static str) -> Dynamic {
    value.map_or_else(|| absent(field), Dynamic::from_bool)
}

fn opt_name(value: Option<&'static str>, field: &'static str) -> Dynamic {
    value.map_or_else(|| absent(field), name)
}

fn opt_date(value: Option<Date>, field: &'static str) -> Dynamic {
    value.map_or_else(|| absent(field), |d| Dynamic::from(ScriptDate(d)))
}

fn field_value<T>(
    value: &Field<T>,
    field: &'static str,
    to_dynamic: impl Fn(&T) -> Dynamic,
) -> Dynamic {
    match value {
        Field::Value(v) => to_dynamic(v),
        Field::Null => Dynamic::from(NoValue {
            field,
            absent: false,
        }),
        Field::Absent => absent(field),
    }
}

fn field_date(value: &Field<Date>, field: &'static str) -> Dynamic {
    field_value(value, field, |d| Dynamic::from(ScriptDate(*d)))
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
    register_lists(engine);
    register_helpers(engine);
}

fn register_profile(engine: &mut Engine) {
    engine
        .register_type_with_name::<ProfileView>("Profile")
        .register_get("stage", |p: &mut ProfileView| name(p.0.stage.as_str()))
        .register_get("checked_on", |p: &mut ProfileView| {
            ScriptDate(p.0.checked_on)
        })
        .register_get("benefit", |p: &mut ProfileView| {
            opt_name(p.0.benefit.map(Benefit::as_str), "benefit")
        })
        .register_get("sick_leave_started_on", |p: &mut ProfileView| {
            opt_date(p.0.sick_leave_started_on, "sick_leave_started_on")
        })
        .register_get("main_diagnosis", |p: &mut ProfileView| {
            p.0.main_diagnosis.as_ref().map_or_else(
                || absent("main_diagnosis"),
                |code| Dynamic::from(code.as_str().to_owned()),
            )
        })
        .register_get("person", |p: &mut ProfileView| PersonView(p.0.clone()))
        .register_get("preparation", |p: &mut ProfileView| {
            PreparationView(p.0.clone())
        })
        .register_get("gk", |p: &mut ProfileView| GkView(p.0.clone()))
        .register_get("activity_level", |p: &mut ProfileView| {
            ActivityLevelView(p.0.clone())
        })
        .register_get("known_needs", |p: &mut ProfileView| {
            KnownNeedsView(p.0.clone())
        })
        .register_get("specialists", |p: &mut ProfileView| ListView {
            profile: p.0.clone(),
            kind: ListKind::Specialists,
        });

    engine
        .register_type_with_name::<PersonView>("Person")
        .register_get("sex", |p: &mut PersonView| {
            opt_name(p.0.person.sex.map(Sex::as_str), "person.sex")
        })
        .register_get("age", |p: &mut PersonView| {
            p.0.person.age.map_or_else(
                || absent("person.age"),
                |a| Dynamic::from_int(INT::from(a.years())),
            )
        })
        .register_get("born_abroad", |p: &mut PersonView| {
            opt_bool(p.0.person.born_abroad, "person.born_abroad")
        })
        .register_get("marital_status", |p: &mut PersonView| {
            opt_name(
                p.0.person.marital_status.map(MaritalStatus::as_str),
                "person.marital_status",
            )
        })
        .register_get("children_0_17", |p: &mut PersonView| {
            opt_bool(p.0.person.children_0_17, "person.children_0_17")
        })
        .register_get("education", |p: &mut PersonView| {
            opt_name(
                p.0.person.education.map(Education::as_str),
                "person.education",
            )
        })
        .register_get("returner_ever", |p: &mut PersonView| {
            opt_bool(p.0.person.returner_ever, "person.returner_ever")
        })
        .register_get("sgi", |p: &mut PersonView| {
            p.0.person.sgi.map_or_else(
                || absent("person.sgi"),
                |s| Dynamic::from_int(INT::from(s.sek_per_year())),
            )
        });

    engine
        .register_type_with_name::<PreparationView>("Preparation")
        .register_get("assessed_for_fs_on", |p: &mut PreparationView| {
            field_date(
                &p.0.preparation.assessed_for_fs_on,
                "preparation.assessed_for_fs_on",
            )
        })
        .register_get("consent_received_on", |p: &mut PreparationView| {
            field_date(
                &p.0.preparation.consent_received_on,
                "preparation.consent_received_on",
            )
        })
        .register_get("sassam_on", |p: &mut PreparationView| {
            field_date(&p.0.preparation.sassam_on, "preparation.sassam_on")
        })
        .register_get("reconciliation_meeting_on", |p: &mut PreparationView| {
            field_date(
                &p.0.preparation.reconciliation_meeting_on,
                "preparation.reconciliation_meeting_on",
            )
        })
        .register_get("other_personal_meeting_on", |p: &mut PreparationView| {
            field_date(
                &p.0.preparation.other_personal_meeting_on,
                "preparation.other_personal_meeting_on",
            )
        })
        .register_get("phone_contact", |p: &mut PreparationView| {
            opt_bool(p.0.preparation.phone_contact, "preparation.phone_contact")
        })
        .register_get("care_contact", |p: &mut PreparationView| {
            opt_bool(p.0.preparation.care_contact, "preparation.care_contact")
        })
        .register_get("employer_contact", |p: &mut PreparationView| {
            opt_bool(
                p.0.preparation.employer_contact,
                "preparation.employer_contact",
            )
        })
        .register_get("in_depth_medical_assessment", |p: &mut PreparationView| {
            opt_bool(
                p.0.preparation.in_depth_medical_assessment,
                "preparation.in_depth_medical_assessment",
            )
        })
        .register_get(
            "insurance_physician_consulted",
            |p: &mut PreparationView| {
                opt_bool(
                    p.0.preparation.insurance_physician_consulted,
                    "preparation.insurance_physician_consulted",
                )
            },
        );

    engine
        .register_type_with_name::<GkView>("Gk")
        .register_get("requested_on", |p: &mut GkView| {
            field_date(&p.0.gk.requested_on, "gk.requested_on")
        })
        .register_get("first_meeting_on", |p: &mut GkView| {
            field_date(&p.0.gk.first_meeting_on, "gk.first_meeting_on")
        })
        .register_get("external_participants", |p: &mut GkView| ListView {
            profile: p.0.clone(),
            kind: ListKind::ExternalParticipants,
        })
        .register_get("interpreter_booked", |p: &mut GkView| {
            opt_bool(p.0.gk.interpreter_booked, "gk.interpreter_booked")
        });

    engine
        .register_type_with_name::<ActivityLevelView>("ActivityLevel")
        .register_get("documented", |p: &mut ActivityLevelView| {
            opt_bool(p.0.activity_level.documented, "activity_level.documented")
        })
        .register_get("hours_per_week", |p: &mut ActivityLevelView| {
            field_value(
                &p.0.activity_level.hours_per_week,
                "activity_level.hours_per_week",
                |h| Dynamic::from_float(h.hours() as FLOAT),
            )
        });

    engine
        .register_type_with_name::<KnownNeedsView>("KnownNeeds")
        .register_get("social_or_family_problems", |p: &mut KnownNeedsView| {
            opt_bool(
                p.0.known_needs.social_or_family_problems,
                "known_needs.social_or_family_problems",
            )
        })
        .register_get("hearing_impairment", |p: &mut KnownNeedsView| {
            opt_bool(
                p.0.known_needs.hearing_impairment,
                "known_needs.hearing_impairment",
            )
        })
        .register_get("vision_impairment", |p: &mut KnownNeedsView| {
            opt_bool(
                p.0.known_needs.vision_impairment,
                "known_needs.vision_impairment",
            )
        })
        .register_get("interpreter_needed", |p: &mut KnownNeedsView| {
            opt_bool(
                p.0.known_needs.interpreter_needed,
                "known_needs.interpreter_needed",
            )
        });
}

fn register_dates(engine: &mut Engine) {
    engine
        .register_type_with_name::<ScriptDate>("Date")
        .register_fn("date", |text: &str| -> ScriptResult<ScriptDate> {
            Date::parse(text).map(ScriptDate).map_err(script_error)
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
        .register_fn("+", |a: ScriptDate, days: INT| {
            ScriptDate(a.0.plus_days(i32::try_from(days).unwrap_or(i32::MAX)))
        })
        .register_fn("-", |a: ScriptDate, days: INT| {
            ScriptDate(a.0.plus_days(i32::try_from(days).map_or(i32::MIN, |d| -d)))
        })
        .register_fn("days_between", |from: &mut ScriptDate, to: ScriptDate| {
            from.0.days_until(to.0)
        })
        // Anything but two dates: the error names what was wrong.
        .register_fn(
            "days_between",
            |from: Dynamic, to: Dynamic| -> ScriptResult<INT> {
                let from = expect_date(&from, "days_between")?;
                let to = expect_date(&to, "days_between")?;
                Ok(from.days_until(to))
            },
        );
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
        .register_fn("len", |list: &mut ListView| list.len() as INT)
        .register_fn("is_empty", |list: &mut ListView| list.len() == 0)
        .register_fn("to_string", |list: &mut ListView| {
            list.names().collect::<Vec<_>>().join(", ")
        })
        .register_fn("to_debug", |list: &mut ListView| {
            format!("[{}]", list.names().collect::<Vec<_>>().join(", "))
        });
}

/// Registers `known`, `has_value`, `is_true` and `is_false` once per type a getter can
/// return, so a call resolves on its exact argument type; the `Dynamic` versions in
/// [`register_helpers`] stay for every other type and give the same answers.
fn register_typed_helpers(engine: &mut Engine) {
    macro_rules! plain_value {
        ($($ty:ty),+) => {$(
            engine
                .register_fn("known", |_: &mut $ty| true)
                .register_fn("has_value", |_: &mut $ty| true)
                .register_fn("is_true", |_: &mut $ty| false)
                .register_fn("is_false", |_: &mut $ty| false);
        )+};
    }
    plain_value!(ScriptDate, INT, FLOAT, ImmutableString, ListView);
    engine
        .register_fn("known", |_: &mut bool| true)
        .register_fn("has_value", |_: &mut bool| true)
        .register_fn("is_true", |b: &mut bool| *b)
        .register_fn("is_false", |b: &mut bool| !*b)
        .register_fn("known", |v: &mut NoValue| !v.absent)
        .register_fn("has_value", |_: &mut NoValue| false)
        .register_fn("is_true", |_: &mut NoValue| false)
        .register_fn("is_false", |_: &mut NoValue| false);
}

fn register_helpers(engine: &mut Engine) {
    register_typed_helpers(engine);
    engine
        .register_fn("known", |value: Dynamic| {
            value.read_lock::<NoValue>().is_none_or(|v| !v.absent)
        })
        .register_fn("has_value", |value: Dynamic| {
            !value.is_unit() && !value.is::<NoValue>()
        })
        .register_fn("is_true", |value: Dynamic| value.as_bool() == Ok(true))
        .register_fn("is_false", |value: Dynamic| value.as_bool() == Ok(false))
        .register_fn("diagnosis_group", |code: Dynamic| {
            if code.is::<NoValue>() {
                return name("unknown");
            }
            match code.into_immutable_string() {
                Ok(text) => name(DiagnosisGroup::of_code(&text).as_str()),
                Err(_) => name("unknown"),
            }
        });
}
