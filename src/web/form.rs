//! The case form of "Kontrollera ärende" and its mapping to and from the profile JSON of
//! docs/profile.md.
//!
//! Every profile field is one entry of [`GROUPS`], named by its profile path (the form's
//! input names are those paths). [`FormInput::to_profile`] turns the posted form into
//! profile JSON and validates it with the same parser as the API
//! ([`Profile::from_value`]); a refused field is mapped back to its input by its path, so
//! the error can be shown beside the field.
//!
//! Dates are typed as `2026-11-09`, `2026-11-9` or `20261109` ([`normalise_date`]), or
//! picked in the browser's calendar (`<input type="date">`, named `kalender:PATH`) beside
//! the text input; without JavaScript the two are not linked, so the calendar is sent with
//! the value it was shown with (`kalender-fore:PATH`), and the one the officer changed
//! counts.
//!
//! Three states are kept apart where the rules keep them apart (rules/README.md §5):
//! a yes/no field is "Vet ej" (left out), "Ja" or "Nej"; a date that may be `null` is
//! "Vet ej" (left out), "Har inte skett" (`null`) or a date. A choice has one unknown,
//! "Vet ej": left out, except for civilstånd and utbildningsnivå, whose "Vet ej" is the
//! profile's own `unknown` (so the audit's adjusted model keeps the case, with
//! "unknown" as a category, as for register data).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::profile::Profile;

/// How a field is entered and how it maps to JSON.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Required free text (the case id).
    Text,
    /// An ICD-10 code; empty is left out.
    Code,
    /// A date; empty is left out (`checked_on` then defaults to today).
    Date,
    /// Left out, `null` (labelled `none`) or a date (labelled `some`).
    NullableDate {
        none: &'static str,
        some: &'static str,
    },
    /// Left out, `null` (labelled `none`) or a number (labelled `some`; decimal comma
    /// accepted).
    NullableNumber {
        none: &'static str,
        some: &'static str,
    },
    /// A whole number; spaces are ignored ("380 000"); empty is left out.
    Integer,
    /// Vet ej (left out) / Ja / Nej.
    Bool,
    /// One of `options`, or (unless `required`) "Vet ej": left out, or the profile's
    /// own value for an unknown answer when the field has one (`unknown`, e.g.
    /// `person.marital_status: "unknown"`), so each question has one unknown.
    Choice {
        options: &'static [(&'static str, &'static str)],
        required: bool,
        unknown: Option<&'static str>,
    },
    /// Any of `options`; none ticked is an empty list.
    Multi {
        options: &'static [(&'static str, &'static str)],
    },
}

/// One profile field on the form.
#[derive(Debug)]
pub struct FieldSpec {
    /// The profile path, e.g. `person.age`; also the input's name.
    pub path: &'static str,
    pub label: &'static str,
    /// A short hint under the label.
    pub hint: Option<&'static str>,
    pub kind: Kind,
    /// What to tell the officer when the value is refused.
    pub error: &'static str,
}

/// A group of fields as an officer thinks of the case.
#[derive(Debug)]
pub struct GroupSpec {
    pub id: &'static str,
    pub title: &'static str,
    pub fields: &'static [FieldSpec],
}

const DATE_ERROR: &str = "Ange ett datum som ÅÅÅÅ-MM-DD, till exempel 2024-03-15 (2024-3-15 och 20240315 går också), från 2000-01-01 och högst ett år framåt.";
/// The check's own date is at most tomorrow.
const CHECKED_ON_ERROR: &str = "Ange ett datum som ÅÅÅÅ-MM-DD, till exempel 2024-03-15 (2024-3-15 och 20240315 går också), från 2000-01-01 och högst i morgon.";
const CHOICE_ERROR: &str = "Välj ett av alternativen.";
const BOOL_ERROR: &str = "Välj Vet ej, Ja eller Nej.";

const STAGES: &[(&str, &str)] = &[("before_gk", "Före GK"), ("gk_closing", "Vid avslut av GK")];
const BENEFITS: &[(&str, &str)] = &[
    ("sickness_benefit", "Sjukpenning"),
    ("activity_compensation", "Aktivitetsersättning"),
    ("sickness_compensation", "Sjukersättning"),
    ("other", "Annan ersättning"),
    ("none", "Ingen ersättning"),
];
const SEXES: &[(&str, &str)] = &[("female", "Kvinna"), ("male", "Man")];
const MARITAL: &[(&str, &str)] = &[
    ("married", "Gift eller registrerad partner"),
    ("unmarried", "Ogift"),
    ("divorced", "Skild"),
    ("widowed", "Änka eller änkling"),
];
const EDUCATION: &[(&str, &str)] = &[
    ("compulsory_short", "Förgymnasial, kortare än 9 år"),
    ("compulsory", "Förgymnasial, 9 år"),
    ("upper_secondary", "Gymnasial"),
    ("post_secondary_short", "Eftergymnasial, kortare än 3 år"),
    ("post_secondary_long", "Eftergymnasial, 3 år eller längre"),
    ("doctoral", "Forskarutbildning"),
];
const EXTERNAL: &[(&str, &str)] = &[
    ("physician", "Läkare"),
    ("employer", "Arbetsgivare"),
    ("af_specialist", "Specialist från Arbetsförmedlingen"),
    ("union", "Facklig företrädare"),
    ("relative", "Anhörig"),
    ("other", "Annan"),
];
const SPECIALISTS: &[(&str, &str)] = &[
    (
        "occupational_therapist",
        "Arbetsterapeut eller fysioterapeut",
    ),
    ("psychologist", "Psykolog"),
    ("social_worker", "Socialkonsulent"),
    ("vision_specialist", "Synspecialist"),
    ("deaf_counsellor", "Dövkonsulent"),
    ("audiologist", "Audionom"),
];

const fn bool_field(path: &'static str, label: &'static str) -> FieldSpec {
    FieldSpec {
        path,
        label,
        hint: None,
        kind: Kind::Bool,
        error: BOOL_ERROR,
    }
}

const fn nullable_date(
    path: &'static str,
    label: &'static str,
    none: &'static str,
    some: &'static str,
) -> FieldSpec {
    FieldSpec {
        path,
        label,
        hint: None,
        kind: Kind::NullableDate { none, some },
        error: DATE_ERROR,
    }
}

const fn choice(
    path: &'static str,
    label: &'static str,
    options: &'static [(&'static str, &'static str)],
) -> FieldSpec {
    FieldSpec {
        path,
        label,
        hint: None,
        kind: Kind::Choice {
            options,
            required: false,
            unknown: None,
        },
        error: CHOICE_ERROR,
    }
}

/// A choice whose "Vet ej" is stored as the profile's value `unknown`, as `hint` says.
const fn choice_with_unknown(
    path: &'static str,
    label: &'static str,
    hint: &'static str,
    options: &'static [(&'static str, &'static str)],
) -> FieldSpec {
    FieldSpec {
        path,
        label,
        hint: Some(hint),
        kind: Kind::Choice {
            options,
            required: false,
            unknown: Some("unknown"),
        },
        error: CHOICE_ERROR,
    }
}

/// Every field of the profile (docs/profile.md), grouped and in form order.
pub static GROUPS: &[GroupSpec] = &[
    GroupSpec {
        id: "arende",
        title: "Ärende och kontroll",
        fields: &[
            FieldSpec {
                path: "case_id",
                label: "Ärende-id",
                hint: Some("Sparas bara som pseudonym. Samma id visar tidigare kontroller."),
                kind: Kind::Text,
                error: "Ange ärende-id (högst 128 tecken).",
            },
            FieldSpec {
                path: "stage",
                label: "Läge",
                hint: None,
                kind: Kind::Choice {
                    options: STAGES,
                    required: true,
                    unknown: None,
                },
                error: CHOICE_ERROR,
            },
            FieldSpec {
                path: "checked_on",
                label: "Datum för kontrollen",
                hint: Some(
                    "ÅÅÅÅ-MM-DD, eller välj i kalendern. Tomt betyder dagens datum i Sverige.",
                ),
                kind: Kind::Date,
                error: CHECKED_ON_ERROR,
            },
        ],
    },
    GroupSpec {
        id: "person",
        title: "Person",
        fields: &[
            choice("person.sex", "Kön", SEXES),
            FieldSpec {
                path: "person.age",
                label: "Ålder",
                hint: Some("Hela år."),
                kind: Kind::Integer,
                error: "Ange åldern i hela år, från 0 till 130.",
            },
            bool_field("person.born_abroad", "Utrikesfödd"),
            choice_with_unknown(
                "person.marital_status",
                "Civilstånd",
                "Vet ej sparas som okänt civilstånd.",
                MARITAL,
            ),
            bool_field("person.children_0_17", "Hemmavarande barn 0–17 år"),
            choice_with_unknown(
                "person.education",
                "Utbildningsnivå",
                "Vet ej sparas som okänd utbildningsnivå.",
                EDUCATION,
            ),
            FieldSpec {
                path: "person.returner_ever",
                label: "Återvändare",
                hint: Some(
                    "Har någon gång tidigare nått maxgränsen i sjukförsäkringen, som återvändare \
                     i Socialförsäkringsrapport 2018:11. Att ha kommit åter till Försäkringskassan \
                     efter förstärkt samarbete räknas inte.",
                ),
                kind: Kind::Bool,
                error: BOOL_ERROR,
            },
            FieldSpec {
                path: "person.sgi",
                label: "Sjukpenninggrundande inkomst (SGI)",
                hint: Some("Kronor per år."),
                kind: Kind::Integer,
                error: "Ange SGI i hela kronor per år, till exempel 380000.",
            },
        ],
    },
    GroupSpec {
        id: "sjukfall",
        title: "Sjukfall",
        fields: &[
            choice("benefit", "Ersättning", BENEFITS),
            FieldSpec {
                path: "sick_leave_started_on",
                label: "Sjukfallets start",
                hint: Some("ÅÅÅÅ-MM-DD."),
                kind: Kind::Date,
                error: DATE_ERROR,
            },
            FieldSpec {
                path: "main_diagnosis",
                label: "Huvuddiagnos (ICD-10)",
                hint: Some("Till exempel F32.1."),
                kind: Kind::Code,
                error: "Ange en ICD-10-kod: en bokstav och två siffror, till exempel F32.1.",
            },
        ],
    },
    GroupSpec {
        id: "forberedelser",
        title: "Förberedelser före GK",
        fields: &[
            nullable_date(
                "preparation.assessed_for_fs_on",
                "Bedömning att förstärkt samarbete är aktuellt",
                "Har inte gjorts",
                "Har gjorts",
            ),
            nullable_date(
                "preparation.consent_received_on",
                "Samtycke till informationsutbyte",
                "Har inte kommit in",
                "Har kommit in",
            ),
            nullable_date(
                "preparation.sassam_on",
                "SASSAM-kartläggning",
                "Har inte skett",
                "Har skett",
            ),
            nullable_date(
                "preparation.reconciliation_meeting_on",
                "Avstämningsmöte",
                "Har inte skett",
                "Har skett",
            ),
            nullable_date(
                "preparation.other_personal_meeting_on",
                "Annat personligt möte",
                "Har inte skett",
                "Har skett",
            ),
            bool_field("preparation.phone_contact", "Telefonkontakt"),
            bool_field("preparation.care_contact", "Kontakt med vården"),
            bool_field("preparation.employer_contact", "Kontakt med arbetsgivaren"),
            bool_field(
                "preparation.in_depth_medical_assessment",
                "Fördjupad medicinsk utredning (AFU, TMU eller SLU)",
            ),
            bool_field(
                "preparation.insurance_physician_consulted",
                "Konsultation med försäkringsmedicinsk rådgivare (FMR)",
            ),
        ],
    },
    GroupSpec {
        id: "gk",
        title: "Gemensam kartläggning (GK)",
        fields: &[
            nullable_date(
                "gk.requested_on",
                "Begäran om GK",
                "Inte skickad",
                "Skickad",
            ),
            nullable_date(
                "gk.first_meeting_on",
                "Första GK-mötet (planerat eller hållet)",
                "Inget möte bokat",
                "Bokat eller hållet",
            ),
            FieldSpec {
                path: "gk.external_participants",
                label: "Externa deltagare i GK",
                hint: Some("Kryssa i alla som deltar."),
                kind: Kind::Multi { options: EXTERNAL },
                error: CHOICE_ERROR,
            },
            bool_field("gk.interpreter_booked", "Tolk bokad till GK"),
        ],
    },
    GroupSpec {
        id: "aktivitetsniva",
        title: "Aktivitetsnivå",
        fields: &[
            FieldSpec {
                path: "activity_level.documented",
                label: "Aktivitetsnivån är dokumenterad",
                hint: Some(
                    "Timmar per vecka räknas bara när bedömningen är dokumenterad: står det Nej \
                     eller Vet ej här flaggas aktivitetsnivån även om timmar är ifyllda.",
                ),
                kind: Kind::Bool,
                error: BOOL_ERROR,
            },
            FieldSpec {
                path: "activity_level.hours_per_week",
                label: "Bedömd aktivitetsnivå, timmar per vecka",
                hint: Some(
                    "Till exempel 10 eller 12,5. Timmar utan att aktivitetsnivån är markerad \
                     som dokumenterad ger ändå flaggan: bedömningen räknas först när den är \
                     dokumenterad.",
                ),
                kind: Kind::NullableNumber {
                    none: "Inte bedömd",
                    some: "Bedömd",
                },
                error: "Ange timmar per vecka som ett tal från 0 till 168, till exempel 12,5.",
            },
        ],
    },
    GroupSpec {
        id: "behov",
        title: "Kända behov",
        fields: &[
            bool_field(
                "known_needs.social_or_family_problems",
                "Sociala problem eller svår familjesituation",
            ),
            bool_field("known_needs.hearing_impairment", "Hörselnedsättning"),
            bool_field("known_needs.vision_impairment", "Synnedsättning"),
            bool_field("known_needs.interpreter_needed", "Behov av tolk"),
        ],
    },
    GroupSpec {
        id: "specialister",
        title: "Specialister",
        fields: &[FieldSpec {
            path: "specialists",
            label: "Specialister från Arbetsförmedlingen som deltar eller är planerade",
            hint: Some("Kryssa i alla som deltar eller är planerade."),
            kind: Kind::Multi {
                options: SPECIALISTS,
            },
            error: CHOICE_ERROR,
        }],
    },
];

/// Every field, in form order.
pub fn fields() -> impl Iterator<Item = &'static FieldSpec> {
    GROUPS.iter().flat_map(|g| g.fields.iter())
}

/// The field a parser error path belongs to: `specialists[0]` belongs to `specialists`.
fn field_of_path(path: &str) -> Option<&'static FieldSpec> {
    let base = path.split('[').next().unwrap_or(path);
    fields().find(|f| f.path == base)
}

/// The radio value for "Vet ej".
pub const STATE_UNKNOWN: &str = "unknown";
/// The radio value for "Har inte skett" (`null`).
pub const STATE_NONE: &str = "none";
/// The radio value for "a date / a number".
pub const STATE_VALUE: &str = "value";

/// The name of the three-way choice that goes with a nullable field.
pub fn state_name(path: &str) -> String {
    format!("state:{path}")
}

/// What the officer entered, by field path. Unknown names are ignored.
#[derive(Clone, Debug, Default)]
pub struct FormInput {
    values: BTreeMap<&'static str, Entered>,
    /// Single-value fields posted more than once (refused: which one was meant?).
    repeated: Vec<&'static str>,
}

#[derive(Clone, Debug, Default)]
struct Entered {
    text: String,
    /// For nullable fields: `unknown`, `none` or `value`.
    state: String,
    /// For lists: the ticked values.
    ticked: Vec<String>,
    /// For dates: the value of the date picker beside the text input, and the value it
    /// was shown with (to tell which of the two the officer changed).
    picked: Option<String>,
    picked_before: Option<String>,
}

/// One answer of a stored check as the case's story shows it.
#[derive(Debug, Serialize)]
pub struct AnswerView {
    pub path: &'static str,
    pub label: &'static str,
    pub value: String,
    /// What the check before said, when it said something else ("Vet ej" when it left
    /// the field out); set by the story.
    pub before: Option<String>,
}

/// The answers of a stored profile (`profile_json`), in form order and in the words of
/// the form; fields left out ("Vet ej") and the case id are not listed.
pub fn answers_of(profile_json: &Value) -> Vec<AnswerView> {
    let label_of = |options: &[(&'static str, &'static str)], value: &str| {
        options
            .iter()
            .find(|(v, _)| *v == value)
            .map_or_else(|| value.to_owned(), |(_, l)| (*l).to_owned())
    };
    fields()
        .filter(|f| !matches!(f.kind, Kind::Text))
        .filter_map(|field| {
            let stored = field
                .path
                .split('.')
                .try_fold(profile_json, |node, part| node.get(part))?;
            let value = match (field.kind, stored) {
                (
                    Kind::NullableDate { none, .. } | Kind::NullableNumber { none, .. },
                    Value::Null,
                ) => none.to_owned(),
                (Kind::Bool, Value::Bool(b)) => if *b { "Ja" } else { "Nej" }.to_owned(),
                (Kind::Choice { unknown, .. }, Value::String(v))
                    if unknown.is_some_and(|u| u == v) =>
                {
                    UNKNOWN.to_owned()
                }
                (Kind::Choice { options, .. }, Value::String(v)) => label_of(options, v),
                (Kind::Multi { options }, Value::Array(items)) if items.is_empty() => {
                    let _ = options;
                    "Inga".to_owned()
                }
                (Kind::Multi { options }, Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|v| label_of(options, v))
                    .collect::<Vec<_>>()
                    .join(", "),
                (Kind::NullableNumber { .. }, value) => format!("{} timmar", scalar_text(value)),
                (_, value) => scalar_text(value),
            };
            Some(AnswerView {
                path: field.path,
                label: field.label,
                value,
                before: None,
            })
        })
        .collect()
}

/// The answers of a check beside those of the check before it (`before`), in form
/// order: each that differs carries the earlier value, and a field the check before
/// answered and this one left out is listed as "Vet ej" with what it said.
pub fn answers_since(now: Vec<AnswerView>, before: &[AnswerView]) -> Vec<AnswerView> {
    let mut answers = now;
    for answer in &mut answers {
        let was = before
            .iter()
            .find(|b| b.path == answer.path)
            .map_or(UNKNOWN, |b| b.value.as_str());
        if was != answer.value {
            answer.before = Some(was.to_owned());
        }
    }
    let dropped: Vec<AnswerView> = before
        .iter()
        .filter(|b| b.value != UNKNOWN && !answers.iter().any(|a| a.path == b.path))
        .map(|b| AnswerView {
            path: b.path,
            label: b.label,
            value: UNKNOWN.to_owned(),
            before: Some(b.value.clone()),
        })
        .collect();
    answers.extend(dropped);
    answers.sort_by_key(|a| form_position(a.path));
    answers
}

/// Where the field at `path` stands in the form; `None` (first) for a path not on it.
fn form_position(path: &str) -> Option<usize> {
    fields().position(|f| f.path == path)
}

/// How the form and the story word a field left out.
pub(super) const UNKNOWN: &str = "Vet ej";

/// A stored scalar as the form shows it: text as is, numbers with a decimal comma.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(n) => n.to_string().replace('.', ","),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The name prefix of a date field's picker (`kalender:gk.requested_on`).
pub const PICKER_PREFIX: &str = "kalender:";
/// The name prefix of the value a date picker was shown with.
pub const PICKER_BEFORE_PREFIX: &str = "kalender-fore:";

fn is_date(field: &FieldSpec) -> bool {
    matches!(field.kind, Kind::Date | Kind::NullableDate { .. })
}

/// A date as the officer may type it, in ISO form: `2026-11-9` and `2026-1-09` become
/// `2026-11-09` and `2026-01-09`, `20261109` becomes `2026-11-09`. Anything else is
/// returned as typed (trimmed), for the profile parser to refuse by its field.
pub fn normalise_date(text: &str) -> String {
    let text = text.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if text.len() == 8 && digits(text) {
        return format!("{}-{}-{}", &text[..4], &text[4..6], &text[6..]);
    }
    let parts: Vec<&str> = text.split('-').collect();
    if let [year, month, day] = parts[..]
        && year.len() == 4
        && digits(year)
        && (1..=2).contains(&month.len())
        && digits(month)
        && (1..=2).contains(&day.len())
        && digits(day)
    {
        return format!("{year}-{month:0>2}-{day:0>2}");
    }
    text.to_owned()
}

/// Whether `text` has the form `YYYY-MM-DD` (what a date picker shows and sends).
fn is_iso_form(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

impl Entered {
    /// The date the officer means: the typed text (normalised), or the picker's date
    /// when only the picker was changed. Both changed to different dates is an error.
    fn date_text(&self) -> Result<String, &'static str> {
        let typed = normalise_date(&self.text);
        let picked = self.picked.as_deref().map(str::trim).unwrap_or_default();
        let before = self
            .picked_before
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if picked == before || picked.is_empty() || picked == typed {
            return Ok(typed);
        }
        // The picker was changed. The typed text still shows the date the picker was
        // shown with (or nothing): the picker's date is meant.
        if typed.is_empty() || typed == before {
            return Ok(picked.to_owned());
        }
        Err(
            "Du har ändrat datumet både i fältet och i kalendern, till olika datum. Ange ett av dem.",
        )
    }
}

/// A field the officer must correct.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The profile path; empty for a problem with the form as a whole.
    pub path: String,
    pub message: String,
}

impl FormInput {
    /// A fresh form: the check made today, before GK, everything else not known.
    pub fn new_for(today: &str) -> Self {
        let mut input = Self::default();
        input.set_text("checked_on", today);
        input.set_text("stage", "before_gk");
        input
    }

    /// The form as posted (`application/x-www-form-urlencoded` pairs).
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut input = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            // Every name but a multiple choice's ticks comes once: a second value of a
            // field or of its helpers (its state, its calendar) is refused, not chosen.
            let again = seen.contains(&name.as_str());
            if !again {
                seen.push(name);
            }
            let repeated = |input: &mut Self, path: &'static str| {
                if again && !input.repeated.contains(&path) {
                    input.repeated.push(path);
                }
            };
            if let Some(path) = name.strip_prefix("state:") {
                if let Some(field) = fields().find(|f| f.path == path) {
                    repeated(&mut input, field.path);
                    input.values.entry(field.path).or_default().state = value.clone();
                }
            } else if let Some(path) = name.strip_prefix(PICKER_BEFORE_PREFIX) {
                if let Some(field) = fields().find(|f| f.path == path && is_date(f)) {
                    repeated(&mut input, field.path);
                    input.values.entry(field.path).or_default().picked_before = Some(value.clone());
                }
            } else if let Some(path) = name.strip_prefix(PICKER_PREFIX) {
                if let Some(field) = fields().find(|f| f.path == path && is_date(f)) {
                    repeated(&mut input, field.path);
                    input.values.entry(field.path).or_default().picked = Some(value.clone());
                }
            } else if let Some(field) = fields().find(|f| f.path == name) {
                let entered = input.values.entry(field.path).or_default();
                if matches!(field.kind, Kind::Multi { .. }) {
                    entered.ticked.push(value.clone());
                } else {
                    entered.text = value.clone();
                    repeated(&mut input, field.path);
                }
            }
        }
        input
    }

    /// The form filled from a stored profile (`profile_json`, whose case id is the
    /// pseudonym): every field as it was, with `case_id` in place of the pseudonym
    /// (empty when the case id is not known here). `checked_on` is left for the new
    /// check's date: `today`.
    pub fn from_stored(profile_json: &Value, case_id: &str, today: &str) -> Self {
        let mut input = Self::default();
        let at = |path: &str| {
            path.split('.')
                .try_fold(profile_json, |node, part| node.get(part))
        };
        for field in fields() {
            let stored = at(field.path);
            let entered = input.values.entry(field.path).or_default();
            match field.kind {
                Kind::Text => entered.text = case_id.to_owned(),
                Kind::Date if field.path == "checked_on" => entered.text = today.to_owned(),
                Kind::Multi { .. } => {
                    entered.ticked = stored
                        .and_then(Value::as_array)
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                }
                Kind::NullableDate { .. } | Kind::NullableNumber { .. } => match stored {
                    None => entered.state = STATE_UNKNOWN.to_owned(),
                    Some(Value::Null) => entered.state = STATE_NONE.to_owned(),
                    Some(value) => {
                        entered.state = STATE_VALUE.to_owned();
                        entered.text = scalar_text(value);
                    }
                },
                Kind::Choice { unknown, .. } => {
                    let text = stored.map(scalar_text).unwrap_or_default();
                    entered.text = if unknown.is_some_and(|u| u == text) {
                        String::new()
                    } else {
                        text
                    };
                }
                _ => entered.text = stored.map(scalar_text).unwrap_or_default(),
            }
        }
        input
    }

    /// Puts `case_id` in the case id field.
    pub fn set_case_id(&mut self, case_id: &str) {
        self.set_text("case_id", case_id);
    }

    fn set_text(&mut self, path: &str, text: &str) {
        if let Some(field) = fields().find(|f| f.path == path) {
            self.values.entry(field.path).or_default().text = text.to_owned();
        }
    }

    fn entered(&self, path: &str) -> Option<&Entered> {
        self.values.get(path)
    }

    /// The profile JSON the form describes and the problems found before parsing
    /// (contradictions between a three-way choice and its value).
    fn to_json(&self) -> (Value, Vec<FieldProblem>) {
        let mut root = Map::new();
        let mut problems: Vec<FieldProblem> = self
            .repeated
            .iter()
            .map(|path| FieldProblem {
                path: (*path).to_owned(),
                message: "Fältet skickades mer än en gång. Fyll i det en gång.".to_owned(),
            })
            .collect();
        let empty = Entered::default();
        for field in fields() {
            let entered = self.entered(field.path).unwrap_or(&empty);
            let resolved;
            let text = if is_date(field) {
                match entered.date_text() {
                    Ok(date) => {
                        resolved = date;
                        resolved.as_str()
                    }
                    Err(message) => {
                        problems.push(FieldProblem {
                            path: field.path.to_owned(),
                            message: message.to_owned(),
                        });
                        continue;
                    }
                }
            } else {
                entered.text.trim()
            };
            let value = match field.kind {
                Kind::Text => Some(Value::from(text)),
                Kind::Code | Kind::Date => (!text.is_empty()).then(|| Value::from(text)),
                Kind::Choice { unknown, .. } if text.is_empty() => unknown.map(Value::from),
                Kind::Choice { .. } => Some(Value::from(text)),
                Kind::Integer => {
                    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                    if digits.is_empty() {
                        None
                    } else {
                        // Not a number: pass the text on, so the parser refuses it by path.
                        Some(
                            digits
                                .parse::<i64>()
                                .map_or(Value::from(digits), Value::from),
                        )
                    }
                }
                Kind::Bool => match text {
                    "" => None,
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    other => Some(Value::from(other)),
                },
                Kind::Multi { .. } => Some(Value::Array(
                    entered
                        .ticked
                        .iter()
                        .map(|t| Value::from(t.as_str()))
                        .collect(),
                )),
                Kind::NullableDate { none, .. } | Kind::NullableNumber { none, .. } => {
                    let number = matches!(field.kind, Kind::NullableNumber { .. });
                    match (entered.state.as_str(), text.is_empty()) {
                        (STATE_NONE, true) => Some(Value::Null),
                        (STATE_NONE, false) => {
                            problems.push(FieldProblem {
                                path: field.path.to_owned(),
                                message: format!(
                                    "Du har valt \u{201d}{none}\u{201d} men också fyllt i {}. Välj det ena.",
                                    if number { "ett antal" } else { "ett datum" }
                                ),
                            });
                            None
                        }
                        (STATE_VALUE, true) => {
                            problems.push(FieldProblem {
                                path: field.path.to_owned(),
                                message: if number {
                                    "Fyll i antalet timmar, eller välj Vet ej.".to_owned()
                                } else {
                                    "Fyll i datumet, eller välj Vet ej.".to_owned()
                                },
                            });
                            None
                        }
                        // "Vet ej" (or nothing chosen) with nothing entered: left out.
                        (_, true) => None,
                        // A value entered: it counts, whichever choice was left as it was.
                        (_, false) if number => {
                            let decimal = text.replace(',', ".");
                            Some(
                                decimal
                                    .parse::<f64>()
                                    .ok()
                                    .filter(|h| h.is_finite())
                                    .and_then(serde_json::Number::from_f64)
                                    .map_or(Value::from(text), Value::Number),
                            )
                        }
                        (_, false) => Some(Value::from(text)),
                    }
                }
            };
            if let Some(value) = value {
                insert_path(&mut root, field.path, value);
            }
        }
        (Value::Object(root), problems)
    }

    /// The profile, validated by the API's parser, or every field to correct, in the
    /// order of the form.
    pub fn to_profile(&self) -> Result<Profile, Vec<FieldProblem>> {
        self.parse_profile().map_err(|mut problems| {
            problems.sort_by_key(|p| form_position(&p.path));
            problems
        })
    }

    fn parse_profile(&self) -> Result<Profile, Vec<FieldProblem>> {
        let (mut json, mut problems) = self.to_json();
        // The parser stops at the first refused field: take that field out (or put a
        // stand-in for the required case id) and parse again, so every refused field is
        // found in one submission.
        for _ in 0..=fields().count() {
            match Profile::from_value(json.clone()) {
                Ok(profile) if problems.is_empty() => return Ok(profile),
                Ok(_) => return Err(problems),
                Err(err) => {
                    let Some(field) = field_of_path(&err.path) else {
                        problems.push(FieldProblem {
                            path: String::new(),
                            message: "Uppgifterna kunde inte läsas. Kontrollera formuläret."
                                .to_owned(),
                        });
                        return Err(problems);
                    };
                    if problems.iter().any(|p| p.path == field.path) {
                        // Already reported and still refused: stop rather than loop.
                        return Err(problems);
                    }
                    problems.push(FieldProblem {
                        path: field.path.to_owned(),
                        // A date that contradicts another says why, in the parser's words,
                        // and so does a case id or a date the parser refused: its words
                        // name what is wrong (an invisible character, a day the calendar
                        // does not have), where the form's own would only repeat the rule.
                        message: match field.kind {
                            _ if err.implausible => capitalised(&err.message),
                            // The case id's own words, whole: the parser's message is
                            // cut at the first quote, which may stand before a value.
                            Kind::Text => {
                                let text = self.entered(field.path).map_or("", |e| &e.text);
                                match crate::profile::CaseId::parse(text) {
                                    Err(why) => capitalised(&why),
                                    Ok(_) => capitalised(&err.message),
                                }
                            }
                            // A date that does not exist says so; one not written as a
                            // date gets the form's text, which says how.
                            Kind::Date | Kind::NullableDate { .. }
                                if !err.message.contains(crate::profile::Date::NOT_A_DATE) =>
                            {
                                format!("{} {}", capitalised(&err.message), field.error)
                            }
                            _ => field.error.to_owned(),
                        },
                    });
                    if field.path == "case_id" {
                        insert_path_in(&mut json, field.path, Value::from("-"));
                    } else {
                        remove_path(&mut json, field.path);
                    }
                }
            }
        }
        Err(problems)
    }

    /// The form as the template shows it: every group and field with what was entered
    /// and the problem to show beside it.
    pub fn view(&self, problems: &[FieldProblem]) -> Vec<GroupView> {
        let empty = Entered::default();
        GROUPS
            .iter()
            .map(|group| GroupView {
                id: group.id,
                title: group.title,
                fields: group
                    .fields
                    .iter()
                    .map(|field| {
                        let entered = self.entered(field.path).unwrap_or(&empty);
                        field_view(field, entered, problems)
                    })
                    .collect(),
            })
            .collect()
    }
}

/// Where a link to the field of profile path `path` lands, with the field's label:
/// its input, or the first checkbox of a list. `None` for a path not on the form.
pub fn field_link(path: &str) -> Option<(&'static str, String)> {
    let field = fields().find(|f| f.path == path)?;
    let id = input_id(field.path);
    let anchor = match field.kind {
        Kind::Multi { options } => options
            .first()
            .map_or_else(|| id.clone(), |(value, _)| format!("{id}-{value}")),
        _ => id,
    };
    Some((field.label, anchor))
}

/// The id of a field's input, e.g. `f-person-age`.
pub fn input_id(path: &str) -> String {
    format!("f-{}", path.replace(['.', '_'], "-"))
}

fn field_view(field: &FieldSpec, entered: &Entered, problems: &[FieldProblem]) -> FieldView {
    let (kind, options, none_label, some_label) = match field.kind {
        Kind::Text => ("text", &[][..], None, None),
        Kind::Code => ("code", &[][..], None, None),
        Kind::Date => ("date", &[][..], None, None),
        Kind::Integer => ("integer", &[][..], None, None),
        Kind::Bool => ("bool", &[("true", "Ja"), ("false", "Nej")][..], None, None),
        Kind::Choice {
            options, required, ..
        } => (
            if required { "select" } else { "choice" },
            options,
            None,
            None,
        ),
        Kind::Multi { options } => ("multi", options, None, None),
        Kind::NullableDate { none, some } => ("nullable_date", &[][..], Some(none), Some(some)),
        Kind::NullableNumber { none, some } => ("nullable_number", &[][..], Some(none), Some(some)),
    };
    let id = input_id(field.path);
    // Where a link to the field should land: the first checkbox of a list.
    let anchor = field_link(field.path).map_or_else(|| id.clone(), |(_, anchor)| anchor);
    let text = if is_date(field) {
        entered.date_text().unwrap_or_else(|_| entered.text.clone())
    } else {
        entered.text.clone()
    };
    let state = match entered.state.as_str() {
        STATE_NONE => STATE_NONE,
        STATE_VALUE => STATE_VALUE,
        // A value without a choice (a fresh form or an unchanged "Vet ej") reads as a value.
        _ if !text.trim().is_empty() => STATE_VALUE,
        _ => STATE_UNKNOWN,
    };
    FieldView {
        path: field.path,
        id,
        anchor,
        state_name: state_name(field.path),
        label: field.label,
        hint: field.hint,
        kind,
        options: options
            .iter()
            .map(|(value, label)| OptionView {
                value,
                label,
                selected: if matches!(field.kind, Kind::Multi { .. }) {
                    entered.ticked.iter().any(|t| t == value)
                } else {
                    text == *value
                },
            })
            .collect(),
        none_label,
        some_label,
        iso: if is_date(field) {
            Some(normalise_date(&text))
                .filter(|d| is_iso_form(d))
                .unwrap_or_default()
        } else {
            String::new()
        },
        value: text,
        state,
        error: problems
            .iter()
            .find(|p| p.path == field.path)
            .map(|p| p.message.clone()),
    }
}

/// A group as the template sees it.
#[derive(Debug, Serialize)]
pub struct GroupView {
    pub id: &'static str,
    pub title: &'static str,
    pub fields: Vec<FieldView>,
}

/// A field as the template sees it.
#[derive(Debug, Serialize)]
pub struct FieldView {
    pub path: &'static str,
    pub id: String,
    /// The id a link to this field (from the error summary) points at.
    pub anchor: String,
    pub state_name: String,
    pub label: &'static str,
    pub hint: Option<&'static str>,
    /// `text`, `code`, `date`, `integer`, `bool`, `select`, `choice`, `multi`,
    /// `nullable_date` or `nullable_number`.
    pub kind: &'static str,
    pub options: Vec<OptionView>,
    pub none_label: Option<&'static str>,
    pub some_label: Option<&'static str>,
    pub value: String,
    /// For nullable fields: `unknown`, `none` or `value`.
    pub state: &'static str,
    /// For dates: the date in ISO form for the date picker, empty when there is none.
    pub iso: String,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OptionView {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn insert_path(root: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = root;
    for part in parts {
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        current = next;
    }
    current.insert(last.to_owned(), value);
}

fn insert_path_in(json: &mut Value, path: &str, value: Value) {
    if let Value::Object(root) = json {
        insert_path(root, path, value);
    }
}

fn remove_path(json: &mut Value, path: &str) {
    let mut current = json;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = current else { return };
        if parts.peek().is_none() {
            map.remove(part);
            return;
        }
        let Some(next) = map.get_mut(part) else {
            return;
        };
        current = next;
    }
}

/// `text` with a capital first letter and a full stop, as a sentence on the page.
pub(super) fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Field, Stage};

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Every leaf path of the profile's JSON Schema, with `$ref`s followed.
    fn schema_leaves() -> Vec<String> {
        let schema = serde_json::to_value(Profile::json_schema()).expect("schema");
        let defs = schema["$defs"].clone();
        let mut leaves = Vec::new();
        fn walk(node: &Value, defs: &Value, prefix: &str, leaves: &mut Vec<String>) {
            let Some(properties) = node["properties"].as_object() else {
                return;
            };
            for (name, property) in properties {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                let target = property["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .map_or(property, |name| &defs[name]);
                if target["properties"].is_object() {
                    walk(target, defs, &path, leaves);
                } else {
                    leaves.push(path);
                }
            }
        }
        walk(&schema, &defs, "", &mut leaves);
        leaves.sort();
        leaves
    }

    #[test]
    fn the_form_has_every_field_of_the_profile_once() {
        let mut paths: Vec<String> = fields().map(|f| f.path.to_owned()).collect();
        paths.sort();
        let before = paths.len();
        paths.dedup();
        assert_eq!(before, paths.len(), "a field is on the form twice");
        assert_eq!(paths, schema_leaves());
    }

    #[test]
    fn options_are_exactly_the_profile_names() {
        use crate::profile as p;
        fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|v| name(*v)).collect()
        }
        let values = |o: &[(&'static str, &str)]| o.iter().map(|(v, _)| *v).collect::<Vec<_>>();
        assert_eq!(values(STAGES), names(p::Stage::ALL, p::Stage::as_str));
        assert_eq!(values(BENEFITS), names(p::Benefit::ALL, p::Benefit::as_str));
        assert_eq!(values(SEXES), names(p::Sex::ALL, p::Sex::as_str));
        // The profile's "unknown" is the form's "Vet ej", not an option of its own.
        let with_unknown = |o: &[(&'static str, &str)]| {
            let mut v = values(o);
            v.push("unknown");
            v
        };
        assert_eq!(
            with_unknown(MARITAL),
            names(p::MaritalStatus::ALL, p::MaritalStatus::as_str)
        );
        assert_eq!(
            with_unknown(EDUCATION),
            names(p::Education::ALL, p::Education::as_str)
        );
        assert_eq!(
            values(EXTERNAL),
            names(p::ExternalParticipant::ALL, p::ExternalParticipant::as_str)
        );
        assert_eq!(
            values(SPECIALISTS),
            names(p::Specialist::ALL, p::Specialist::as_str)
        );
    }

    #[test]
    fn unknown_none_and_a_date_are_three_different_things() {
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("state:preparation.sassam_on", "unknown"),
            ("preparation.sassam_on", ""),
            ("state:preparation.reconciliation_meeting_on", "none"),
            ("preparation.reconciliation_meeting_on", ""),
            ("state:preparation.other_personal_meeting_on", "value"),
            ("preparation.other_personal_meeting_on", "2024-02-10"),
        ]));
        let profile = input.to_profile().expect("valid");
        assert_eq!(profile.preparation.sassam_on, Field::Absent);
        assert_eq!(profile.preparation.reconciliation_meeting_on, Field::Null);
        assert_eq!(
            profile
                .preparation
                .other_personal_meeting_on
                .value()
                .map(ToString::to_string),
            Some("2024-02-10".to_owned())
        );
    }

    #[test]
    fn yes_no_and_unknown_stay_apart() {
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("known_needs.social_or_family_problems", "true"),
            ("known_needs.hearing_impairment", "false"),
            ("known_needs.vision_impairment", ""),
        ]));
        let profile = input.to_profile().expect("valid");
        assert_eq!(profile.known_needs.social_or_family_problems, Some(true));
        assert_eq!(profile.known_needs.hearing_impairment, Some(false));
        assert_eq!(profile.known_needs.vision_impairment, None);
    }

    /// Civilstånd and utbildningsnivå have one unknown each: "Vet ej", stored as the
    /// profile's `unknown`; the other choices still leave "Vet ej" out.
    #[test]
    fn vet_ej_is_the_one_unknown_of_civil_status_and_education() {
        use crate::profile::{Education, MaritalStatus};
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("person.marital_status", ""),
            ("person.education", ""),
            ("person.sex", ""),
        ]));
        let profile = input.to_profile().expect("valid");
        assert_eq!(profile.person.marital_status, Some(MaritalStatus::Unknown));
        assert_eq!(profile.person.education, Some(Education::Unknown));
        assert_eq!(profile.person.sex, None);
        let view = input.view(&[]);
        let field = |path: &str| {
            view.iter()
                .flat_map(|g| &g.fields)
                .find(|f| f.path == path)
                .unwrap_or_else(|| panic!("{path} is on the form"))
        };
        for path in ["person.marital_status", "person.education"] {
            let labels: Vec<&str> = field(path).options.iter().map(|o| o.label).collect();
            assert!(
                labels.iter().all(|l| !l.starts_with("Okän")),
                "{path}: {labels:?}"
            );
            assert!(
                field(path)
                    .hint
                    .is_some_and(|h| h.starts_with("Vet ej sparas som okän"))
            );
        }
        let returner = field("person.returner_ever");
        assert_eq!(returner.label, "Återvändare");
        assert!(
            returner
                .hint
                .is_some_and(|h| h.contains("maxgränsen i sjukförsäkringen")
                    && h.contains("Socialförsäkringsrapport 2018:11")),
            "{:?}",
            returner.hint
        );
    }

    #[test]
    fn lists_numbers_and_defaults_map_to_the_profile() {
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "  A-1 "),
            ("stage", "gk_closing"),
            ("person.sgi", "380 000"),
            ("activity_level.hours_per_week", "12,5"),
            ("specialists", "social_worker"),
            ("specialists", "psychologist"),
            ("not_a_field", "ignored"),
        ]));
        let profile = input.to_profile().expect("valid");
        assert_eq!(profile.stage, Stage::GkClosing);
        assert_eq!(profile.person.sgi.map(|s| s.sek_per_year()), Some(380_000));
        assert_eq!(
            profile
                .activity_level
                .hours_per_week
                .value()
                .map(|h| h.hours()),
            Some(12.5)
        );
        assert_eq!(profile.specialists.len(), 2);
        assert_eq!(profile.case_id.expose(), "A-1");
    }

    /// The message beside the field at `path`; the test fails when there is none.
    fn message_for(problems: &[FieldProblem], path: &str) -> String {
        problems
            .iter()
            .find(|p| p.path == path)
            .map(|p| p.message.clone())
            .unwrap_or_else(|| panic!("no problem for {path}: {problems:?}"))
    }

    #[test]
    fn dates_that_contradict_each_other_are_explained_beside_their_field() {
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("checked_on", "2024-03-15"),
            ("preparation.sassam_on", "2024-03-20"),
            ("gk.requested_on", "2024-03-10"),
            ("gk.first_meeting_on", "2024-03-01"),
        ]));
        let problems = input.to_profile().expect_err("refused");
        let message = |path: &str| message_for(&problems, path);
        let sassam = message("preparation.sassam_on");
        assert!(
            sassam.starts_with("Datumet ligger efter kontrolldagen"),
            "{sassam}"
        );
        assert!(sassam.ends_with('.'), "{sassam}");
        assert!(message("gk.first_meeting_on").contains("före begäran om GK"));
        // Hours without a documented assessment are no error.
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("activity_level.documented", "false"),
            ("activity_level.hours_per_week", "12"),
        ]));
        assert!(input.to_profile().is_ok());
    }

    #[test]
    fn every_refused_field_is_reported_by_its_path() {
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", ""),
            ("person.age", "fyrtio"),
            ("main_diagnosis", "XYZ"),
            ("activity_level.hours_per_week", "200"),
            ("specialists", "trollkarl"),
            ("state:gk.requested_on", "none"),
            ("gk.requested_on", "2024-03-01"),
        ]));
        let problems = input.to_profile().expect_err("refused");
        // In the order of the form, as the error summary lists them.
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        let mut in_form_order = paths.clone();
        in_form_order.sort_by_key(|path| form_position(path));
        assert_eq!(paths, in_form_order);
        let mut paths = paths;
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "activity_level.hours_per_week",
                "case_id",
                "gk.requested_on",
                "main_diagnosis",
                "person.age",
                "specialists"
            ]
        );
        // The messages are Swedish and never repeat the value.
        for problem in &problems {
            assert!(!problem.message.contains("fyrtio") && !problem.message.contains("XYZ"));
        }
    }

    /// The form said "Ange ärende-id (högst 128 tecken)." of an 8-character case id with
    /// a zero-width space in it, and its general date text of 2024-02-30.
    #[test]
    fn a_refused_case_id_or_date_is_told_why() {
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "ärende\u{200b}42"),
            ("checked_on", "2024-02-30"),
        ]));
        let problems = input.to_profile().expect_err("refused");
        let message = |path: &str| message_for(&problems, path);
        assert!(
            message("case_id").starts_with("Ärende-id får bara innehålla synliga tecken"),
            "{problems:?}"
        );
        assert!(
            message("checked_on").starts_with("Datumet finns inte i kalendern. Ange ett datum"),
            "{problems:?}"
        );
        // A look-alike letter is named with what it looks like, the sentence whole; a
        // date not written as one gets the form's text once.
        let input =
            FormInput::from_pairs(&pairs(&[("case_id", "Анна-1"), ("checked_on", "15 mars")]));
        let problems = input.to_profile().expect_err("refused");
        let case_id = message_for(&problems, "case_id");
        assert!(case_id.contains("U+0410"), "{case_id}");
        assert_eq!(
            case_id,
            capitalised(&crate::profile::CaseId::parse("Анна-1").expect_err("refused"))
        );
        assert_eq!(message_for(&problems, "checked_on"), CHECKED_ON_ERROR);
        // Any date that the calendar does not have says so, and the form's text for it
        // does not speak of the check's date.
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("preparation.consent_received_on", "2024-19-01"),
        ]));
        let problems = input.to_profile().expect_err("refused");
        assert_eq!(
            message_for(&problems, "preparation.consent_received_on"),
            format!("Datumet finns inte i kalendern. {DATE_ERROR}")
        );
        assert!(!DATE_ERROR.contains("i morgon"));
    }

    /// The story counted "3 ändrade" when a meeting had gone from "Har inte skett" to
    /// unknown and sex, age and income had been left out: a field the check before
    /// answered and this one left out was never compared.
    #[test]
    fn answers_left_out_since_the_check_before_are_changes() {
        let before = answers_of(&serde_json::json!({
            "person": {"sex": "female", "age": 44, "marital_status": "unknown"},
            "benefit": "sickness_benefit",
        }));
        let now = answers_of(&serde_json::json!({
            "person": {"age": 45, "marital_status": "unknown"},
            "benefit": "sickness_benefit",
        }));
        let since = answers_since(now, &before);
        let changes: Vec<(&str, &str, Option<&str>)> = since
            .iter()
            .map(|a| (a.path, a.value.as_str(), a.before.as_deref()))
            .collect();
        assert_eq!(
            changes,
            [
                ("person.sex", "Vet ej", Some("Kvinna")),
                ("person.age", "45", Some("44")),
                ("person.marital_status", "Vet ej", None),
                ("benefit", since[3].value.as_str(), None),
            ]
        );
    }

    #[test]
    fn the_view_keeps_what_was_entered_and_places_the_error() {
        let input = FormInput::from_pairs(&pairs(&[("case_id", "A-1"), ("person.age", "fyrtio")]));
        let problems = input.to_profile().expect_err("refused");
        let view = input.view(&problems);
        let age = view
            .iter()
            .flat_map(|g| &g.fields)
            .find(|f| f.path == "person.age")
            .expect("age field");
        assert_eq!(age.value, "fyrtio");
        assert_eq!(age.id, "f-person-age");
        assert!(age.error.as_deref().is_some_and(|e| e.contains("hela år")));
    }

    #[test]
    fn a_date_without_its_choice_counts_as_a_date() {
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("state:gk.requested_on", "unknown"),
            ("gk.requested_on", "2024-03-01"),
        ]));
        let profile = input.to_profile().expect("valid");
        assert!(profile.gk.requested_on.value().is_some());
        let view = input.view(&[]);
        let field = view
            .iter()
            .flat_map(|g| &g.fields)
            .find(|f| f.path == "gk.requested_on")
            .expect("field");
        assert_eq!(field.state, STATE_VALUE);
    }
    #[test]
    fn dates_are_read_as_officers_type_them() {
        assert_eq!(normalise_date("2026-11-9"), "2026-11-09");
        assert_eq!(normalise_date(" 2026-1-09 "), "2026-01-09");
        assert_eq!(normalise_date("20261109"), "2026-11-09");
        assert_eq!(normalise_date("2026-11-09"), "2026-11-09");
        // Anything else is left for the parser to refuse by its field.
        for text in [
            "26-11-09",
            "2026/11/09",
            "2026-111-09",
            "202611091",
            "9 nov 2026",
            "",
        ] {
            assert_eq!(normalise_date(text), text.trim(), "{text}");
        }
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("checked_on", "2024-3-5"),
            ("state:gk.requested_on", "value"),
            ("gk.requested_on", "20240301"),
        ]));
        let profile = input.to_profile().expect("valid");
        assert_eq!(profile.checked_on.to_string(), "2024-03-05");
        assert_eq!(
            profile.gk.requested_on.value().map(ToString::to_string),
            Some("2024-03-01".to_owned())
        );
    }

    #[test]
    fn the_calendar_counts_when_only_it_was_changed() {
        let entered = |text: &str, picked: &str, before: &str| Entered {
            text: text.to_owned(),
            picked: Some(picked.to_owned()),
            picked_before: Some(before.to_owned()),
            ..Entered::default()
        };
        // Nothing picked, or the picker left as shown: the text.
        assert_eq!(
            entered("2024-2-9", "", "").date_text(),
            Ok("2024-02-09".into())
        );
        assert_eq!(
            entered("2024-2-9", "2024-02-10", "2024-02-10").date_text(),
            Ok("2024-02-09".into())
        );
        // Picked, the text empty or still the date shown: the picker.
        assert_eq!(
            entered("", "2024-02-12", "").date_text(),
            Ok("2024-02-12".into())
        );
        assert_eq!(
            entered("2024-02-10", "2024-02-12", "2024-02-10").date_text(),
            Ok("2024-02-12".into())
        );
        // Both agree: fine. Both changed to different dates: which one?
        assert_eq!(
            entered("2024-2-12", "2024-02-12", "2024-02-10").date_text(),
            Ok("2024-02-12".into())
        );
        assert!(
            entered("2024-02-11", "2024-02-12", "2024-02-10")
                .date_text()
                .is_err()
        );
        // The picker's names belong to date fields only.
        let input = FormInput::from_pairs(&pairs(&[
            ("case_id", "A-1"),
            ("kalender:person.age", "2024-01-01"),
            ("kalender:preparation.sassam_on", "2024-02-12"),
            ("kalender-fore:preparation.sassam_on", ""),
        ]));
        let profile = input.to_profile().expect("valid");
        assert_eq!(profile.person.age, None);
        assert_eq!(
            profile
                .preparation
                .sassam_on
                .value()
                .map(ToString::to_string),
            Some("2024-02-12".to_owned())
        );
        let view = input.view(&[]);
        let sassam = view
            .iter()
            .flat_map(|g| &g.fields)
            .find(|f| f.path == "preparation.sassam_on")
            .expect("field");
        assert_eq!(
            (sassam.value.as_str(), sassam.iso.as_str()),
            ("2024-02-12", "2024-02-12")
        );
        assert_eq!(sassam.state, STATE_VALUE);
    }

    /// A stored profile fills the form so that checking it again gives the same profile.
    #[test]
    fn the_form_filled_from_a_stored_check_gives_the_same_profile() {
        let stored = serde_json::json!({
            "case_id": "0123abcd",
            "stage": "gk_closing",
            "checked_on": "2024-03-15",
            "benefit": "sickness_benefit",
            "main_diagnosis": "F32.1",
            "person": { "sex": "female", "age": 45, "marital_status": "unknown",
                        "education": "upper_secondary", "sgi": 380000, "born_abroad": false },
            "preparation": { "sassam_on": "2024-02-10", "reconciliation_meeting_on": null,
                             "phone_contact": true },
            "gk": { "requested_on": "2024-02-20", "external_participants": ["physician", "employer"] },
            "activity_level": { "documented": true, "hours_per_week": 12.5 },
            "known_needs": { "hearing_impairment": false },
            "specialists": ["social_worker"]
        });
        let input = FormInput::from_stored(&stored, "A-1", "2024-04-01");
        let profile = input.to_profile().expect("valid");
        let mut again = serde_json::to_value(&profile).expect("JSON");
        assert_eq!(again["case_id"], "A-1");
        assert_eq!(again["checked_on"], "2024-04-01", "the new check's date");
        again["case_id"] = stored["case_id"].clone();
        again["checked_on"] = stored["checked_on"].clone();
        assert_eq!(again, stored);
        // Without a case id the form asks for one.
        let problems = FormInput::from_stored(&stored, "", "2024-04-01")
            .to_profile()
            .expect_err("no case id");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "case_id");

        // The story lists the answers in the form's words, "Vet ej" left out.
        let answers = answers_of(&stored);
        let answer = |path: &str| {
            answers
                .iter()
                .find(|a| a.path == path)
                .map(|a| a.value.as_str())
        };
        assert_eq!(answer("person.sex"), Some("Kvinna"));
        assert_eq!(answer("person.marital_status"), Some("Vet ej"));
        assert_eq!(
            answer("preparation.reconciliation_meeting_on"),
            Some("Har inte skett")
        );
        assert_eq!(answer("activity_level.documented"), Some("Ja"));
        assert_eq!(answer("activity_level.hours_per_week"), Some("12,5 timmar"));
        assert_eq!(
            answer("gk.external_participants"),
            Some("Läkare, Arbetsgivare")
        );
        assert_eq!(answer("known_needs.vision_impairment"), None);
        assert_eq!(answer("case_id"), None, "the pseudonym is never shown");
    }
}
