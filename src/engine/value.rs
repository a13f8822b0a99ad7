//! The profile as rule scripts see it, whichever evaluator runs the script: its
//! sections, the properties of each, and the value every property reads as.
//!
//! Both evaluators read the profile through [`PROPERTIES`]: the Rhai getters of
//! [`super::script_api`] turn a [`Value`] into a `Dynamic`, and the fast path of
//! [`super::fast_path`] uses it as is. A property is therefore defined once, and so is
//! each helper ([`super::helpers`]), which answers over a [`Value`].

use std::borrow::Cow;

use crate::profile::{
    Benefit, Date, Education, ExternalParticipant, Field, MaritalStatus, Profile, Sex, Specialist,
    Stage,
};

/// A part of the profile that scripts reach with a property, e.g. `profile.gk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Profile,
    Person,
    Preparation,
    Gk,
    ActivityLevel,
    KnownNeeds,
}

impl Section {
    /// The section's path in the profile followed by `.` (empty for the profile
    /// itself), as docs/profile.md writes field paths.
    pub fn path_prefix(self) -> &'static str {
        match self {
            Self::Profile => "",
            Self::Person => "person.",
            Self::Preparation => "preparation.",
            Self::Gk => "gk.",
            Self::ActivityLevel => "activity_level.",
            Self::KnownNeeds => "known_needs.",
        }
    }

    /// How a script reaches the section, for messages: `profile.gk`.
    pub fn script_path(self) -> String {
        format!("profile.{}", self.path_prefix())
            .trim_end_matches('.')
            .to_owned()
    }
}

/// Which list of names a list value reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Specialists,
    ExternalParticipants,
}

impl ListKind {
    /// The list's path in the profile, for messages.
    pub fn field(self) -> &'static str {
        match self {
            Self::Specialists => "specialists",
            Self::ExternalParticipants => "gk.external_participants",
        }
    }

    /// The names the list holds in `profile`.
    pub fn names(self, profile: &Profile) -> impl Iterator<Item = &'static str> + '_ {
        let (specialists, participants): (&[Specialist], &[ExternalParticipant]) = match self {
            Self::Specialists => (&profile.specialists, &[]),
            Self::ExternalParticipants => (&[], &profile.gk.external_participants),
        };
        specialists
            .iter()
            .map(|s| s.as_str())
            .chain(participants.iter().map(|p| p.as_str()))
    }

    pub fn len(self, profile: &Profile) -> usize {
        match self {
            Self::Specialists => profile.specialists.len(),
            Self::ExternalParticipants => profile.gk.external_participants.len(),
        }
    }

    /// Every name the list can hold.
    pub fn valid_names(self) -> Vec<&'static str> {
        match self {
            Self::Specialists => Specialist::names(),
            Self::ExternalParticipants => ExternalParticipant::names(),
        }
    }

    /// Membership, refusing a name the list can never hold: a typo in a rule must not
    /// silently read as "not engaged". The error is in Swedish, for the rule author.
    pub fn contains(self, profile: &Profile, name: &str) -> Result<bool, String> {
        let valid = match self {
            Self::Specialists => Specialist::from_name(name).is_some(),
            Self::ExternalParticipants => ExternalParticipant::from_name(name).is_some(),
        };
        if !valid {
            return Err(format!(
                "{name:?} kan aldrig finnas i {}; giltiga värden: {}",
                self.field(),
                self.valid_names().join(", ")
            ));
        }
        Ok(self.names(profile).any(|n| n == name))
    }
}

/// A field without a value: `absent` when the officer left it out ("uppgift saknas"),
/// otherwise it was `null` ("has not happened").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoValue {
    pub field: &'static str,
    pub absent: bool,
}

impl NoValue {
    pub fn describe(self) -> String {
        if self.absent {
            format!("{} saknas i profilen (uppgift saknas)", self.field)
        } else {
            format!("{} är null (har inte skett)", self.field)
        }
    }
}

/// What a property reads as. `'a` is the lifetime of the profile (and, in the fast
/// path, of the compiled rule, whose string literals are borrowed).
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    Date(Date),
    Missing(NoValue),
    Section(Section),
    List(ListKind),
    /// Rules build lists of texts only; a flat list keeps `Value` non-recursive, so
    /// dropping one is cheap.
    Array(Vec<Cow<'a, str>>),
    /// A script value of a type no property gives and the fast evaluator never builds
    /// (a map, a list of numbers, a function pointer…), as Rhai passes it to a helper.
    Other,
}

/// One readable property of a section.
pub struct Property {
    pub section: Section,
    pub name: &'static str,
    pub kind: Kind,
    pub read: Read,
}

/// What kind of value a property reads as when it has one: what the lint expects a
/// literal it is compared with to be (Rhai answers `false` for `==` between kinds, and
/// `true` for `!=`, without an error).
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Text,
    /// A text from a closed set of names (`profile.stage`): every name it can be.
    Name(fn() -> Vec<&'static str>),
    /// A diagnosis code as the profile stores it: ICD-10, capital letters
    /// (`crate::profile::DiagnosisCode`).
    DiagnosisCode,
    Number,
    Bool,
    Date,
    /// A section or a list, which holds no value of its own.
    Structure,
}

/// How a property is read.
pub enum Read {
    /// A field of the profile.
    Field(for<'a> fn(&'a Profile) -> Value<'a>),
    /// The same for every profile: a section or a list, which reads the profile only
    /// when it is itself read.
    Fixed(Value<'static>),
}

impl Property {
    /// The profile field the property reads (`gk.requested_on`, `specialists`), or
    /// `None` for a section, which holds no data of its own.
    pub fn input_path(&self) -> Option<String> {
        match &self.read {
            Read::Fixed(Value::Section(_)) => None,
            _ => Some(format!("{}{}", self.section.path_prefix(), self.name)),
        }
    }

    /// How a script reads the property, for messages: `profile.gk.requested_on`.
    pub fn script_path(&self) -> String {
        format!("profile.{}{}", self.section.path_prefix(), self.name)
    }

    pub fn value<'a>(&self, profile: &'a Profile) -> Value<'a> {
        match &self.read {
            Read::Field(read) => read(profile),
            Read::Fixed(value) => value.clone(),
        }
    }
}

fn absent(field: &'static str) -> Value<'static> {
    Value::Missing(NoValue {
        field,
        absent: true,
    })
}

fn opt_bool(value: Option<bool>, field: &'static str) -> Value<'static> {
    value.map_or_else(|| absent(field), Value::Bool)
}

fn opt_name(value: Option<&'static str>, field: &'static str) -> Value<'static> {
    value.map_or_else(|| absent(field), |name| Value::Text(Cow::Borrowed(name)))
}

fn opt_date(value: Option<Date>, field: &'static str) -> Value<'static> {
    value.map_or_else(|| absent(field), Value::Date)
}

fn field_value<'a, T>(
    value: &'a Field<T>,
    field: &'static str,
    to_value: impl Fn(&'a T) -> Value<'a>,
) -> Value<'a> {
    match value {
        Field::Value(v) => to_value(v),
        Field::Null => Value::Missing(NoValue {
            field,
            absent: false,
        }),
        Field::Absent => absent(field),
    }
}

fn field_date<'a>(value: &'a Field<Date>, field: &'static str) -> Value<'a> {
    field_value(value, field, |d| Value::Date(*d))
}

macro_rules! properties {
    ($($section:ident . $name:literal : $kind:expr => $read:ident($value:expr);)+) => {
        &[$(Property { section: Section::$section, name: $name, kind: $kind, read: Read::$read($value) }),+]
    };
}

/// Every property a script can read, by section. The one definition of what the
/// profile looks like from inside a rule.
pub static PROPERTIES: &[Property] = properties! {
    Profile.            "stage": Kind::Name(Stage::names) => Field(|p| Value::Text(Cow::Borrowed(p.stage.as_str())));
    Profile.            "checked_on": Kind::Date => Field(|p| Value::Date(p.checked_on));
    Profile.            "benefit": Kind::Name(Benefit::names) => Field(|p| opt_name(p.benefit.map(Benefit::as_str), "benefit"));
    Profile.            "sick_leave_started_on": Kind::Date => Field(|p| opt_date(p.sick_leave_started_on, "sick_leave_started_on"));
    Profile.            "main_diagnosis": Kind::DiagnosisCode => Field(|p| p.main_diagnosis.as_ref().map_or_else(
        || absent("main_diagnosis"),
        |code| Value::Text(Cow::Borrowed(code.as_str())),
    ));
    Profile.            "person": Kind::Structure => Fixed(Value::Section(Section::Person));
    Profile.            "preparation": Kind::Structure => Fixed(Value::Section(Section::Preparation));
    Profile.            "gk": Kind::Structure => Fixed(Value::Section(Section::Gk));
    Profile.            "activity_level": Kind::Structure => Fixed(Value::Section(Section::ActivityLevel));
    Profile.            "known_needs": Kind::Structure => Fixed(Value::Section(Section::KnownNeeds));
    Profile.            "specialists": Kind::Structure => Fixed(Value::List(ListKind::Specialists));
    Person.             "sex": Kind::Name(Sex::names) => Field(|p| opt_name(p.person.sex.map(Sex::as_str), "person.sex"));
    Person.             "age": Kind::Number => Field(|p| p.person.age.map_or_else(
        || absent("person.age"),
        |a| Value::Int(i64::from(a.years())),
    ));
    Person.             "born_abroad": Kind::Bool => Field(|p| opt_bool(p.person.born_abroad, "person.born_abroad"));
    Person.             "marital_status": Kind::Name(MaritalStatus::names) => Field(|p| opt_name(
        p.person.marital_status.map(MaritalStatus::as_str),
        "person.marital_status",
    ));
    Person.             "children_0_17": Kind::Bool => Field(|p| opt_bool(p.person.children_0_17, "person.children_0_17"));
    Person.             "education": Kind::Name(Education::names) => Field(|p| opt_name(p.person.education.map(Education::as_str), "person.education"));
    Person.             "returner_ever": Kind::Bool => Field(|p| opt_bool(p.person.returner_ever, "person.returner_ever"));
    Person.             "sgi": Kind::Number => Field(|p| p.person.sgi.map_or_else(
        || absent("person.sgi"),
        |s| Value::Int(i64::from(s.sek_per_year())),
    ));
    Preparation.        "assessed_for_fs_on": Kind::Date => Field(|p| field_date(&p.preparation.assessed_for_fs_on, "preparation.assessed_for_fs_on"));
    Preparation.        "consent_received_on": Kind::Date => Field(|p| field_date(&p.preparation.consent_received_on, "preparation.consent_received_on"));
    Preparation.        "sassam_on": Kind::Date => Field(|p| field_date(&p.preparation.sassam_on, "preparation.sassam_on"));
    Preparation.        "reconciliation_meeting_on": Kind::Date => Field(|p| field_date(&p.preparation.reconciliation_meeting_on, "preparation.reconciliation_meeting_on"));
    Preparation.        "other_personal_meeting_on": Kind::Date => Field(|p| field_date(&p.preparation.other_personal_meeting_on, "preparation.other_personal_meeting_on"));
    Preparation.        "phone_contact": Kind::Bool => Field(|p| opt_bool(p.preparation.phone_contact, "preparation.phone_contact"));
    Preparation.        "care_contact": Kind::Bool => Field(|p| opt_bool(p.preparation.care_contact, "preparation.care_contact"));
    Preparation.        "employer_contact": Kind::Bool => Field(|p| opt_bool(p.preparation.employer_contact, "preparation.employer_contact"));
    Preparation.        "in_depth_medical_assessment": Kind::Bool => Field(|p| opt_bool(p.preparation.in_depth_medical_assessment, "preparation.in_depth_medical_assessment"));
    Preparation.        "insurance_physician_consulted": Kind::Bool => Field(|p| opt_bool(p.preparation.insurance_physician_consulted, "preparation.insurance_physician_consulted"));
    Gk.                 "requested_on": Kind::Date => Field(|p| field_date(&p.gk.requested_on, "gk.requested_on"));
    Gk.                 "first_meeting_on": Kind::Date => Field(|p| field_date(&p.gk.first_meeting_on, "gk.first_meeting_on"));
    Gk.                 "external_participants": Kind::Structure => Fixed(Value::List(ListKind::ExternalParticipants));
    Gk.                 "interpreter_booked": Kind::Bool => Field(|p| opt_bool(p.gk.interpreter_booked, "gk.interpreter_booked"));
    ActivityLevel.      "documented": Kind::Bool => Field(|p| opt_bool(p.activity_level.documented, "activity_level.documented"));
    ActivityLevel.      "hours_per_week": Kind::Number => Field(|p| field_value(
        &p.activity_level.hours_per_week,
        "activity_level.hours_per_week",
        |h| Value::Float(h.hours()),
    ));
    KnownNeeds.         "social_or_family_problems": Kind::Bool => Field(|p| opt_bool(p.known_needs.social_or_family_problems, "known_needs.social_or_family_problems"));
    KnownNeeds.         "hearing_impairment": Kind::Bool => Field(|p| opt_bool(p.known_needs.hearing_impairment, "known_needs.hearing_impairment"));
    KnownNeeds.         "vision_impairment": Kind::Bool => Field(|p| opt_bool(p.known_needs.vision_impairment, "known_needs.vision_impairment"));
    KnownNeeds.         "interpreter_needed": Kind::Bool => Field(|p| opt_bool(p.known_needs.interpreter_needed, "known_needs.interpreter_needed"));
};

/// Every section's property called `name`.
pub fn properties_named(name: &str) -> impl Iterator<Item = &'static Property> + '_ {
    PROPERTIES.iter().filter(move |p| p.name == name)
}

/// Every profile field a rule can read, as a path (`gk.requested_on`): what a rule may
/// declare under `inputs` in the manifest. Derived from [`PROPERTIES`].
pub fn input_paths() -> impl Iterator<Item = String> {
    PROPERTIES.iter().filter_map(Property::input_path)
}

/// The properties of one section.
pub fn properties_of(section: Section) -> impl Iterator<Item = &'static Property> {
    PROPERTIES.iter().filter(move |p| p.section == section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_are_unique_within_a_section() {
        for (i, a) in PROPERTIES.iter().enumerate() {
            for b in &PROPERTIES[i + 1..] {
                assert!(
                    a.section != b.section || a.name != b.name,
                    "{:?}.{} twice",
                    a.section,
                    a.name
                );
            }
        }
    }

    #[test]
    fn input_paths_are_the_fields_of_the_schema() {
        let paths: Vec<String> = input_paths().collect();
        for path in [
            "checked_on",
            "stage",
            "specialists",
            "gk.requested_on",
            "gk.external_participants",
            "activity_level.hours_per_week",
            "preparation.sassam_on",
        ] {
            assert!(paths.iter().any(|p| p == path), "{path} in {paths:?}");
        }
        assert!(
            !paths.iter().any(|p| p == "gk" || p == "person"),
            "{paths:?}"
        );
        assert_eq!(Section::Gk.script_path(), "profile.gk");
        assert_eq!(Section::Profile.script_path(), "profile");
    }

    #[test]
    fn every_profile_field_of_the_schema_is_readable() {
        // The schema's top-level sections and their fields, as the rules see them.
        let schema = serde_json::to_value(Profile::json_schema()).expect("schema");
        let props = &schema["properties"];
        let sections = [
            ("person", Section::Person),
            ("preparation", Section::Preparation),
            ("gk", Section::Gk),
            ("activity_level", Section::ActivityLevel),
            ("known_needs", Section::KnownNeeds),
        ];
        for (name, section) in sections {
            let reference = &props[name]["$ref"];
            let fields = match reference.as_str() {
                Some(path) => {
                    let key = path.rsplit('/').next().unwrap_or_default();
                    schema["$defs"][key]["properties"].clone()
                }
                None => props[name]["properties"].clone(),
            };
            let fields = fields.as_object().cloned().unwrap_or_default();
            assert!(!fields.is_empty(), "no fields found for {name}");
            for field in fields.keys() {
                assert!(
                    properties_of(section).any(|p| p.name == field),
                    "{name}.{field} cannot be read by a rule"
                );
            }
        }
    }
}
