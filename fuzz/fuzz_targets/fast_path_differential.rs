//! Differential fuzzing of the fast evaluator against Rhai.
//!
//! The input bytes drive a generator of profiles: each field is left out, set to
//! `null` or given a value (dates near `checked_on` or anywhere from year 1 to 9999,
//! where a date outside the plausible window makes a profile that must be refused, as
//! does a date of something that has happened after `checked_on`, or a first GK meeting
//! before the request;
//! numbers at and beyond the ends of their ranges, lists with any subset of their
//! names, in any order). A profile the generator knows to be valid must parse and one
//! it knows to be out of range must be refused. Every parsed profile is evaluated by
//! the default rules of the repository's `rules/` twice: as the product does (the fast
//! evaluator, deferring to Rhai where it must) and in Rhai alone. The outcomes —
//! flagged or not, the messages, the errors with their positions — must be identical.
#![no_main]

use std::sync::{Arc, LazyLock};

use gk_regler::profile::{
    Benefit, Date, Education, ExternalParticipant, MaritalStatus, PlausibleDates, Profile, Sex,
    Specialist, Stage,
};
use gk_regler::ruleset::RuleSet;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// The dates the parser accepts today: a generated date outside it makes the profile one
/// that must be refused.
static WINDOW: LazyLock<PlausibleDates> = LazyLock::new(PlausibleDates::now);

/// The default rules. A rule set that does not load is a broken setup: fail at once
/// rather than fuzz nothing.
static RULES: LazyLock<RuleSet> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let rules = RuleSet::load(&dir).unwrap_or_else(|err| {
        panic!(
            "the default rules in {} do not load: {err}: {:?}",
            dir.display(),
            err.problems
        )
    });
    assert!(!rules.rules.is_empty(), "no rules in {}", dir.display());
    rules
});

/// Builds one profile from the fuzz input; `valid` turns false when a value outside
/// its range is written.
struct Generator<'u, 'd> {
    u: &'u mut Unstructured<'d>,
    checked_on: Date,
    valid: bool,
}

/// What a field is given.
enum Slot {
    Absent,
    Null,
    Value,
}

impl Generator<'_, '_> {
    fn slot(&mut self) -> Result<Slot> {
        Ok(match self.u.int_in_range(0..=5u8)? {
            0 => Slot::Absent,
            1 => Slot::Null,
            _ => Slot::Value,
        })
    }

    /// Inserts `name` into `object` as absent, `null` or `value()`.
    fn field(
        &mut self,
        object: &mut Map<String, Value>,
        name: &str,
        value: impl FnOnce(&mut Self) -> Result<Value>,
    ) -> Result<()> {
        match self.slot()? {
            Slot::Absent => {}
            Slot::Null => {
                object.insert(name.to_owned(), Value::Null);
            }
            Slot::Value => {
                let value = value(self)?;
                object.insert(name.to_owned(), value);
            }
        }
        Ok(())
    }

    fn name(&mut self, names: &[&'static str]) -> Result<Value> {
        Ok(Value::from(*self.u.choose(names)?))
    }

    fn boolean(&mut self) -> Result<Value> {
        Ok(Value::from(self.u.arbitrary::<bool>()?))
    }

    /// A date near `checked_on` (where the rules' thresholds lie), further away, or
    /// anywhere in the years a date can have.
    fn date(&mut self) -> Result<Value> {
        let date = self.draw_date(true)?;
        Ok(self.checked(date))
    }

    /// The date of something that has happened: mostly on or before `checked_on`, now
    /// and then anywhere (a date after the check must be refused).
    fn happened(&mut self) -> Result<Value> {
        let date = within_years(self.draw_date(false)?);
        if date > self.checked_on {
            self.valid = false;
        }
        Ok(self.checked(date))
    }

    /// Within 60 or 4,000 days of `checked_on` (before it only, unless `after`), or
    /// anywhere in the years a date can have.
    fn draw_date(&mut self, after: bool) -> Result<Date> {
        let (near, far) = if after { (60, 4000) } else { (0, 0) };
        Ok(match self.u.int_in_range(0..=3u8)? {
            0 | 1 => self.checked_on.plus_days(self.u.int_in_range(-60..=near)?),
            2 => self.checked_on.plus_days(self.u.int_in_range(-4000..=far)?),
            _ => any_date(self.u)?,
        })
    }

    /// `date` within the years a date can have, as JSON; a date outside the plausible
    /// window makes the profile one the parser must refuse.
    fn checked(&mut self, date: Date) -> Value {
        let date = within_years(date);
        if WINDOW.check("date", date, false).is_err() {
            self.valid = false;
        }
        Value::from(date.to_string())
    }

    /// An integer in `range`, or now and then one just outside it.
    fn integer(&mut self, low: i64, high: i64) -> Result<Value> {
        Ok(Value::from(match self.u.int_in_range(0..=9u8)? {
            0 => low,
            1 => high,
            2 => {
                self.valid = false;
                low - 1
            }
            3 => {
                self.valid = false;
                high.saturating_add(self.u.int_in_range(1..=1000)?)
            }
            _ => self.u.int_in_range(low..=high)?,
        }))
    }

    fn hours(&mut self) -> Result<Value> {
        let hours = match self.u.int_in_range(0..=9u8)? {
            0 => 0.0,
            1 => 168.0,
            2 => {
                self.valid = false;
                -0.5
            }
            3 => {
                self.valid = false;
                168.5
            }
            // Quarter hours from 0 to 168.
            _ => f64::from(self.u.int_in_range(0..=672u16)?) / 4.0,
        };
        Ok(json!(hours))
    }

    fn diagnosis(&mut self) -> Result<Value> {
        let letter = char::from(self.u.int_in_range(b'A'..=b'Z')?);
        let number = self.u.int_in_range(0..=99u8)?;
        let code = match self.u.int_in_range(0..=2u8)? {
            0 => format!("{letter}{number:02}"),
            1 => format!("{letter}{number:02}.{}", self.u.int_in_range(0..=9u8)?),
            _ => format!("{letter}{number:02}{}", self.u.int_in_range(0..=99u8)?),
        };
        Ok(Value::from(code))
    }

    /// Any subset of `names`, in any order.
    fn subset(&mut self, names: &[&'static str]) -> Result<Value> {
        let mut pool = names.to_vec();
        let mut chosen = Vec::new();
        while !pool.is_empty() && self.u.arbitrary::<bool>()? {
            let index = self.u.choose_index(pool.len())?;
            chosen.push(Value::from(pool.swap_remove(index)));
        }
        Ok(Value::Array(chosen))
    }

    /// A section: left out, or an object with each of its fields left out, `null` or set.
    fn section(
        &mut self,
        profile: &mut Map<String, Value>,
        name: &str,
        fields: impl FnOnce(&mut Self, &mut Map<String, Value>) -> Result<()>,
    ) -> Result<()> {
        if self.u.int_in_range(0..=7u8)? == 0 {
            return Ok(());
        }
        let mut object = Map::new();
        fields(self, &mut object)?;
        profile.insert(name.to_owned(), Value::Object(object));
        Ok(())
    }

    fn profile(&mut self) -> Result<Value> {
        let mut p = Map::new();
        p.insert("case_id".to_owned(), Value::from("FUZZ-1"));
        p.insert(
            "checked_on".to_owned(),
            Value::from(self.checked_on.to_string()),
        );
        if self.u.arbitrary::<bool>()? {
            let stage = self.name(&names(Stage::ALL, |s| s.as_str()))?;
            p.insert("stage".to_owned(), stage);
        }
        self.field(&mut p, "benefit", |g| {
            g.name(&names(Benefit::ALL, |b| b.as_str()))
        })?;
        self.field(&mut p, "sick_leave_started_on", Self::date)?;
        self.field(&mut p, "main_diagnosis", Self::diagnosis)?;
        if self.u.int_in_range(0..=7u8)? != 0 {
            let specialists = self.subset(&names(Specialist::ALL, |s| s.as_str()))?;
            p.insert("specialists".to_owned(), specialists);
        }
        self.section(&mut p, "person", |g, o| {
            g.field(o, "sex", |g| g.name(&names(Sex::ALL, |s| s.as_str())))?;
            g.field(o, "age", |g| g.integer(0, 130))?;
            g.field(o, "born_abroad", Self::boolean)?;
            g.field(o, "marital_status", |g| {
                g.name(&names(MaritalStatus::ALL, |s| s.as_str()))
            })?;
            g.field(o, "children_0_17", Self::boolean)?;
            g.field(o, "education", |g| {
                g.name(&names(Education::ALL, |e| e.as_str()))
            })?;
            g.field(o, "returner_ever", Self::boolean)?;
            g.field(o, "sgi", |g| g.integer(0, i64::from(u32::MAX)))
        })?;
        self.section(&mut p, "preparation", |g, o| {
            for date in [
                "assessed_for_fs_on",
                "consent_received_on",
                "sassam_on",
                "reconciliation_meeting_on",
                "other_personal_meeting_on",
            ] {
                g.field(o, date, Self::happened)?;
            }
            for flag in [
                "phone_contact",
                "care_contact",
                "employer_contact",
                "in_depth_medical_assessment",
                "insurance_physician_consulted",
            ] {
                g.field(o, flag, Self::boolean)?;
            }
            Ok(())
        })?;
        self.section(&mut p, "gk", |g, o| {
            g.field(o, "requested_on", Self::happened)?;
            g.field(o, "first_meeting_on", Self::date)?;
            // A first meeting before the request must be refused.
            if let (Some(Value::String(requested)), Some(Value::String(first))) =
                (o.get("requested_on"), o.get("first_meeting_on"))
                && first < requested
            {
                g.valid = false;
            }
            g.field(o, "interpreter_booked", Self::boolean)?;
            if g.u.arbitrary::<bool>()? {
                let participants = g.subset(&names(ExternalParticipant::ALL, |e| e.as_str()))?;
                o.insert("external_participants".to_owned(), participants);
            }
            Ok(())
        })?;
        self.section(&mut p, "activity_level", |g, o| {
            g.field(o, "documented", Self::boolean)?;
            g.field(o, "hours_per_week", Self::hours)
        })?;
        self.section(&mut p, "known_needs", |g, o| {
            for flag in [
                "social_or_family_problems",
                "hearing_impairment",
                "vision_impairment",
                "interpreter_needed",
            ] {
                g.field(o, flag, Self::boolean)?;
            }
            Ok(())
        })?;
        Ok(Value::Object(p))
    }
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|v| name(*v)).collect()
}

fn any_date(u: &mut Unstructured<'_>) -> Result<Date> {
    let year = u.int_in_range(1..=9999u16)?;
    let month = u.int_in_range(1..=12u8)?;
    let day = u.int_in_range(1..=31u8)?;
    let text = format!("{year:04}-{month:02}-{day:02}");
    // A day the month does not have: the 28th, which every month has.
    Ok(Date::parse(&text).unwrap_or_else(|_| {
        Date::parse(&format!("{year:04}-{month:02}-28")).expect("the 28th is a date")
    }))
}

/// `date`, moved into the years 0001–9999 that a profile's dates can have.
fn within_years(date: Date) -> Date {
    let first = Date::parse("0001-01-01").expect("date");
    let last = Date::parse("9999-12-31").expect("date");
    date.clamp(first, last)
}

fn checked_on(u: &mut Unstructured<'_>) -> Result<Date> {
    if u.int_in_range(0..=15u8)? == 0 {
        return any_date(u);
    }
    // The years the product is used in.
    let base = Date::parse("2015-01-01").expect("date");
    Ok(base.plus_days(u.int_in_range(0..=4400)?))
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let checked_on = checked_on(&mut u)?;
    let mut generator = Generator {
        u: &mut u,
        checked_on,
        valid: true,
    };
    let json = generator.profile()?;
    let valid = generator.valid && WINDOW.check("checked_on", checked_on, true).is_ok();
    let profile = match Profile::from_value(json.clone()) {
        Ok(profile) => Arc::new(profile),
        Err(err) => {
            assert!(!valid, "a valid profile was refused ({err}): {json}");
            return Ok(());
        }
    };
    assert!(valid, "an out-of-range profile was accepted: {json}");
    let rules = &*RULES;
    let fast = rules.evaluate(&profile).outcomes;
    let reference = rules.evaluate_in_rhai(&profile).outcomes;
    assert_eq!(fast.len(), rules.rules.len());
    for ((rule, fast), reference) in rules.rules.iter().zip(&fast).zip(&reference) {
        assert_eq!(
            fast, reference,
            "rule {}: the fast evaluator and Rhai differ on {json}",
            rule.meta.id
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    // Input too short to finish a profile is not a profile.
    let _ = run(data);
});
