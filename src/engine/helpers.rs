//! The helper functions of the rule authoring guide (`rules/README.md`), each defined
//! once over the engine's [`Value`]: Rhai's registration ([`super::script_api`]) and
//! the fast evaluator ([`super::fast_path`]) both call these functions.
//!
//! Only the answers live here. Where a helper refuses its arguments (a missing date, a
//! name a list can never hold), the error and its position come from Rhai: the fast
//! evaluator leaves such a call to Rhai instead of wording an error of its own.

use super::value::Value;
use crate::profile::{Date, DiagnosisGroup};

/// The questions any value answers: `known(x)`, `has_value(x)`, `is_true(x)` and
/// `is_false(x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    Known,
    HasValue,
    IsTrue,
    IsFalse,
}

impl Test {
    pub const ALL: [Self; 4] = [Self::Known, Self::HasValue, Self::IsTrue, Self::IsFalse];

    /// The helper's name in a script.
    pub fn name(self) -> &'static str {
        match self {
            Self::Known => "known",
            Self::HasValue => "has_value",
            Self::IsTrue => "is_true",
            Self::IsFalse => "is_false",
        }
    }

    pub fn of_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|test| test.name() == name)
    }

    /// The answer for `value`.
    #[inline]
    pub fn answer(self, value: &Value<'_>) -> bool {
        match self {
            Self::Known => known(value),
            Self::HasValue => has_value(value),
            Self::IsTrue => is_true(value),
            Self::IsFalse => is_false(value),
        }
    }
}

/// `known(x)`: false only for a field the officer left out ("uppgift saknas"); a
/// `null` field ("has not happened") is known.
#[inline]
pub fn known(value: &Value<'_>) -> bool {
    !matches!(value, Value::Missing(missing) if missing.absent)
}

/// `has_value(x)`: a real value, neither missing, `null` nor `()`.
#[inline]
pub fn has_value(value: &Value<'_>) -> bool {
    !matches!(value, Value::Unit | Value::Missing(_))
}

/// `is_true(x)`: `x` is the truth value `true`; anything else, missing values
/// included, is not.
#[inline]
pub fn is_true(value: &Value<'_>) -> bool {
    matches!(value, Value::Bool(true))
}

/// `is_false(x)`: `x` is the truth value `false`; a missing value is not.
#[inline]
pub fn is_false(value: &Value<'_>) -> bool {
    matches!(value, Value::Bool(false))
}

/// `diagnosis_group(code)`: the group of an ICD-10 code; `"unknown"` for a missing
/// diagnosis or anything that is not a text.
pub fn diagnosis_group(code: &Value<'_>) -> &'static str {
    match code {
        Value::Text(code) => DiagnosisGroup::of_code(code).as_str(),
        _ => "unknown",
    }
}

/// `date("YYYY-MM-DD")`.
pub fn date(text: &str) -> Result<Date, String> {
    Date::parse(text)
}

/// `days_between(from, to)`: days from `from` to `to`, negative when `to` is earlier.
#[inline]
pub fn days_between(from: Date, to: Date) -> i64 {
    from.days_until(to)
}

/// `date + days`; `None` when the sum falls outside the years 1–9999.
#[inline]
pub fn plus_days(date: Date, days: i64) -> Option<Date> {
    date.checked_plus_days(days)
}

/// `date - days`; `None` when the difference falls outside the years 1–9999.
#[inline]
pub fn minus_days(date: Date, days: i64) -> Option<Date> {
    date.checked_plus_days(days.checked_neg()?)
}

/// The error of a date sum outside the years 1–9999 (the date itself, a profile's, is
/// left out).
pub fn date_out_of_range(sign: char, days: i64) -> String {
    format!("datum {sign} {days} dagar hamnar utanför åren 1–9999")
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::engine::value::NoValue;

    fn missing(absent: bool) -> Value<'static> {
        Value::Missing(NoValue {
            field: "gk.requested_on",
            absent,
        })
    }

    #[test]
    fn tests_tell_absent_null_and_values_apart() {
        let day = Date::parse("2024-05-10").expect("date");
        // (value, known, has_value, is_true, is_false)
        let cases = [
            (missing(true), false, false, false, false),
            (missing(false), true, false, false, false),
            (Value::Unit, true, false, false, false),
            (Value::Bool(true), true, true, true, false),
            (Value::Bool(false), true, true, false, true),
            (Value::Int(0), true, true, false, false),
            (Value::Text(Cow::Borrowed("")), true, true, false, false),
            (Value::Date(day), true, true, false, false),
        ];
        for (value, known, has_value, is_true, is_false) in cases {
            let answers = Test::ALL.map(|test| test.answer(&value));
            assert_eq!(answers, [known, has_value, is_true, is_false], "{value:?}");
        }
        for test in Test::ALL {
            assert_eq!(Test::of_name(test.name()), Some(test));
        }
    }

    #[test]
    fn diagnosis_groups_of_codes_and_of_missing_values() {
        let group = |value: Value<'_>| diagnosis_group(&value);
        assert_eq!(group(Value::Text(Cow::Borrowed("F32.1"))), "psychiatric");
        assert_eq!(
            group(Value::Text(Cow::Borrowed("M54.5"))),
            "musculoskeletal"
        );
        assert_eq!(group(missing(true)), "unknown");
        assert_eq!(group(missing(false)), "unknown");
        assert_eq!(group(Value::Int(32)), "unknown");
    }

    #[test]
    fn dates_move_by_days_and_saturate_at_the_ends() {
        let day = Date::parse("2024-02-28").expect("date");
        let later = |days| plus_days(day, days).expect("a date");
        assert_eq!(later(2).to_string(), "2024-03-01");
        assert_eq!(
            minus_days(day, 59).expect("a date").to_string(),
            "2023-12-31"
        );
        assert_eq!(days_between(day, later(21)), 21);
        assert_eq!(days_between(later(21), day), -21);
        assert_eq!(plus_days(day, i64::MAX), None);
        assert_eq!(plus_days(day, i64::MIN), None);
        assert_eq!(minus_days(day, i64::MIN), None);
        assert_eq!(plus_days(day, 3_000_000), None);
        assert!(date("2024-02-30").is_err());
    }
}
