//! The participant profile of docs/profile.md, parsed and validated once at the boundary.
//!
//! Everything past [`Profile::from_json`] sees only checked values: dates are real
//! dates, enumerations are closed, unknown fields were refused, and "absent" is kept
//! apart from "null" where the schema allows null ([`Field`]).
//!
//! Profiles are health data about real people, so [`Profile`] and [`CaseId`] print
//! nothing personal through `Debug`.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::name_enum;

/// A value that may be absent from the profile (not known), explicitly `null`
/// ("has not happened" / "none"), or present.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Field<T> {
    /// The officer left the field out: the value is not known.
    #[default]
    Absent,
    /// The field is `null`: known not to have happened.
    Null,
    /// The field holds a value.
    Value(T),
}

impl<T> Field<T> {
    /// The value, if there is one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            Field::Absent | Field::Null => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Field::Null, Field::Value))
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Field<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        <Option<T>>::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <Option<T>>::json_schema(generator)
    }
}

fn field_is_absent<T>(field: &Field<T>) -> bool {
    matches!(field, Field::Absent)
}

const STOCKHOLM: &str = "Europe/Stockholm";
/// Sweden's rule as a POSIX TZ string: CET (UTC+1), CEST (UTC+2) from 02:00 on the last
/// Sunday of March to 03:00 on the last Sunday of October.
const STOCKHOLM_RULE: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

/// The time zone of the agencies and of every date the product makes (a check's
/// default `checked_on`, times shown to officers): Europe/Stockholm, never the
/// machine's zone. Looked up in the system's time-zone database, then in the copy
/// bundled into the binary (jiff's `tzdb-bundle-always`, for machines without
/// `/usr/share/zoneinfo`), and as a last resort [`STOCKHOLM_RULE`].
pub fn stockholm() -> &'static jiff::tz::TimeZone {
    static ZONE: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| {
        jiff::tz::db()
            .get(STOCKHOLM)
            .or_else(|_| jiff::tz::TimeZoneDatabase::bundled().get(STOCKHOLM))
            .or_else(|_| jiff::tz::TimeZone::posix(STOCKHOLM_RULE))
            .unwrap_or_else(|_| jiff::tz::TimeZone::fixed(jiff::tz::offset(1)))
    })
}

/// A calendar date (`YYYY-MM-DD`), stored as a day number so rules compare and
/// subtract dates without parsing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days_since_epoch: i32,
}

impl Date {
    const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

    /// What [`Self::parse`] says of a text not written `YYYY-MM-DD`.
    pub const NOT_A_DATE: &str = "datumet ska skrivas ÅÅÅÅ-MM-DD";

    /// Parses strictly `YYYY-MM-DD`; no time part, no other format.
    /// The error does not repeat `text`: callers add context where it is safe to.
    pub fn parse(text: &str) -> Result<Self, String> {
        let shape_ok = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(Self::NOT_A_DATE.to_owned());
        }
        // The shape is checked, so every digit position holds an ASCII digit.
        let bytes = text.as_bytes();
        let number = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0_i32, |n, b| n * 10 + i32::from(b - b'0'))
        };
        let (year, month, day) = (number(0..4), number(5..7), number(8..10));
        // Year 0 is no year of the calendar dates are written in (1 BC comes before 1 AD).
        if year == 0
            || !(1..=12).contains(&month)
            || day < 1
            || day > Self::days_in_month(year, month)
        {
            return Err("datumet finns inte i kalendern".to_owned());
        }
        Ok(Self {
            days_since_epoch: Self::days_from_civil(year, month, day),
        })
    }

    /// Days in `month` (1–12) of `year` in the proleptic Gregorian calendar.
    fn days_in_month(year: i32, month: i32) -> i32 {
        match month {
            2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// The day number of a valid proleptic Gregorian date (1970-01-01 is 0), by Howard
    /// Hinnant's `days_from_civil`: years counted from March, in 400-year eras.
    const fn days_from_civil(year: i32, month: i32, day: i32) -> i32 {
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// Today's date in Sweden (Europe/Stockholm), whatever the machine's time zone.
    pub fn today() -> Self {
        Today::now().date
    }

    /// The date in Sweden (Europe/Stockholm) at the instant `now`.
    pub fn today_in_stockholm(now: jiff::Timestamp) -> Self {
        Self::from_civil(now.to_zoned(stockholm().clone()).date())
    }

    /// The first day of the given year.
    const fn new_year(year: i16) -> jiff::civil::Date {
        jiff::civil::date(year, 1, 1)
    }

    /// The first and last day a date may be: 0001-01-01 and 9999-12-31, the years ISO 8601
    /// writes with four digits.
    const FIRST_DAY: i32 = Self::days_from_civil(1, 1, 1);
    const LAST_DAY: i32 = Self::days_from_civil(9999, 12, 31);

    /// The date `days` days after this one (before, when negative), or `None` when that
    /// falls outside the years 1–9999.
    pub fn checked_plus_days(self, days: i64) -> Option<Self> {
        let day = i64::from(self.days_since_epoch).checked_add(days)?;
        i32::try_from(day)
            .ok()
            .filter(|day| (Self::FIRST_DAY..=Self::LAST_DAY).contains(day))
            .map(|days_since_epoch| Self { days_since_epoch })
    }

    /// The date `days` days after this one (before, when negative).
    pub fn plus_days(self, days: i32) -> Self {
        Self {
            days_since_epoch: self.days_since_epoch.saturating_add(days),
        }
    }

    fn from_civil(date: jiff::civil::Date) -> Self {
        let seconds = date.duration_since(Self::EPOCH).as_secs();
        Self {
            // Civil dates lie within ±10,000 years, so the day count fits in i32.
            days_since_epoch: i32::try_from(seconds / 86_400).unwrap_or(i32::MAX),
        }
    }

    /// Days from `self` to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Date) -> i64 {
        i64::from(later.days_since_epoch) - i64::from(self.days_since_epoch)
    }

    /// Hinnant's `civil_from_days`, the inverse of [`Self::days_from_civil`]:
    /// (year, month, day).
    fn civil_from_days(days: i32) -> (i32, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + i32::from(month <= 2);
        // Month and day lie in 1..=12 and 1..=31 by construction.
        (year, month.unsigned_abs(), day.unsigned_abs())
    }

    fn to_civil(self) -> jiff::civil::Date {
        jiff::Span::new()
            .try_days(i64::from(self.days_since_epoch))
            .and_then(|span| Self::EPOCH.checked_add(span))
            .unwrap_or(Self::EPOCH)
    }
}

/// The dates a profile or an outcome may hold: real cases of this product lie between
/// [`PlausibleDates::EARLIEST`] and one year after today, and a check is made at the
/// latest tomorrow (one day of slack for clocks and time zones). Anything outside is a
/// typing error or an attack (a date in year 9999 would stretch every audit period).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlausibleDates {
    pub earliest: Date,
    /// The latest date of any field: one year after today.
    pub latest: Date,
    /// The latest `checked_on`: tomorrow.
    pub latest_checked_on: Date,
}

impl PlausibleDates {
    /// The first plausible date, as the documentation writes it.
    pub const EARLIEST: &'static str = "2000-01-01";

    /// The window as it stands today (Europe/Stockholm).
    pub fn now() -> Self {
        Today::now().window
    }

    /// The window as it stands on `today`.
    pub fn around(today: Date) -> Self {
        let civil = today.to_civil();
        let latest = civil
            .checked_add(jiff::Span::new().years(1))
            .map_or(today.plus_days(365), Date::from_civil);
        Self {
            earliest: Date::from_civil(Date::new_year(2000)),
            latest,
            latest_checked_on: today.plus_days(1),
        }
    }

    /// Refuses `date` in field `path` when it lies outside the window (`checked_on`
    /// selects the tighter upper bound). The message names the window, never the date.
    pub fn check(&self, path: &str, date: Date, checked_on: bool) -> Result<(), ProfileError> {
        let latest = if checked_on {
            self.latest_checked_on
        } else {
            self.latest
        };
        if checked_on && date > latest && date >= self.earliest {
            return Err(ProfileError {
                path: path.to_owned(),
                message: format!(
                    "datumet ligger för långt fram: kontrolldagen får vara högst en dag efter \
                     i dag (senast {latest}), eftersom en kontroll gäller ärendet som det ser \
                     ut nu"
                ),
                syntax: false,
                implausible: true,
            });
        }
        if date < self.earliest || date > latest {
            let message = if checked_on {
                format!(
                    "datumet måste ligga mellan {} och {latest} (högst en dag framåt)",
                    self.earliest
                )
            } else {
                format!(
                    "datumet måste ligga mellan {} och {latest} (högst ett år framåt)",
                    self.earliest
                )
            };
            return Err(ProfileError {
                path: path.to_owned(),
                message,
                syntax: false,
                implausible: false,
            });
        }
        Ok(())
    }
}

/// Today's date in Sweden and its plausible-date window, kept per thread for the
/// Stockholm day they belong to: every profile checks its dates against the window, and
/// working it out from the clock and the time-zone rules costs more than the rest of
/// the date checks together.
#[derive(Clone, Copy)]
struct Today {
    /// The first second of the day (Unix time) and the first second of the next.
    from: i64,
    until: i64,
    date: Date,
    window: PlausibleDates,
}

impl Today {
    fn now() -> Self {
        thread_local! {
            static TODAY: std::cell::Cell<Option<Today>> = const { std::cell::Cell::new(None) };
        }
        let now = jiff::Timestamp::now();
        let second = now.as_second();
        TODAY.with(|cell| {
            if let Some(today) = cell.get()
                && (today.from..today.until).contains(&second)
            {
                return today;
            }
            let date = Date::today_in_stockholm(now);
            let mut today = Self {
                from: 0,
                until: 0,
                date,
                window: PlausibleDates::around(date),
            };
            // The day's bounds in Stockholm (23 or 25 hours long when the clocks
            // change); without them nothing is kept and the next call works it out again.
            let zoned = now.to_zoned(stockholm().clone());
            if let (Ok(start), Ok(next)) = (
                zoned.start_of_day(),
                zoned.tomorrow().and_then(|t| t.start_of_day()),
            ) && start.timestamp() <= now
                && now < next.timestamp()
            {
                today.from = start.timestamp().as_second();
                today.until = next.timestamp().as_second();
                cell.set(Some(today));
            }
            today
        })
    }
}

impl Date {
    /// The date as `YYYY-MM-DD`, or `None` for a year outside 0–9999. Written digit
    /// by digit: formatting dates is on the path of every flag message that names one.
    pub fn iso_digits(self) -> Option<IsoDigits> {
        let (year, month, day) = Self::civil_from_days(self.days_since_epoch);
        let Ok(year @ 0..=9999) = u32::try_from(year) else {
            return None;
        };
        let digit = |n: u32| b'0' + (n % 10) as u8;
        Some(IsoDigits([
            digit(year / 1000),
            digit(year / 100),
            digit(year / 10),
            digit(year),
            b'-',
            digit(month / 10),
            digit(month),
            b'-',
            digit(day / 10),
            digit(day),
        ]))
    }
}

/// A date's `YYYY-MM-DD`: ASCII digits and dashes only.
#[derive(Clone, Copy)]
pub struct IsoDigits([u8; 10]);

impl IsoDigits {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and dashes are ever written.
        std::str::from_utf8(&self.0).unwrap_or("0000-00-00")
    }
}

/// `YYYY-MM-DD`, as jiff writes a civil date, through [`Date::iso_digits`]: dates are
/// written into every stored profile, report and message.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.iso_digits() {
            Some(digits) => f.write_str(digits.as_str()),
            None => write!(f, "{}", self.to_civil()),
        }
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer, Self::parse)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Date {
    fn schema_name() -> Cow<'static, str> {
        "Date".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date", "description": "YYYY-MM-DD" })
    }
}

/// Reads a JSON string with `parse`, straight from the input text (or serde's scratch
/// buffer when the string holds escapes) without copying it first. Anything but a
/// string is refused as "expected a string".
fn from_text<'de, D, T>(
    deserializer: D,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Text<T>(fn(&str) -> Result<T, String>);
    impl<T> serde::de::Visitor<'_> for Text<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.0)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Text(parse))
}

/// The case reference as the client sent it. It never prints through `Debug`;
/// storage and logs only ever see its pseudonym.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct CaseId(#[schemars(length(min = 1, max = 128))] String);

impl CaseId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("ärende-id får inte vara tomt".to_owned());
        }
        if trimmed.len() > Self::MAX_LEN {
            return Err(format!(
                "ärende-id får vara högst {} byte långt",
                Self::MAX_LEN
            ));
        }
        // A space pasted from a document looks like an ordinary one.
        if let Some(c) = trimmed
            .chars()
            .find(|c| c.is_whitespace() && *c != ' ' && !c.is_control())
        {
            return Err(format!(
                "ärende-id innehåller ett mellanslag som inte är ett vanligt mellanslag \
                 (U+{:04X}, ofta från en kopierad text); skriv ärende-id med vanliga tecken",
                u32::from(c)
            ));
        }
        if trimmed.chars().any(Self::is_invisible) {
            return Err(
                "ärende-id får bara innehålla synliga tecken (inga styrtecken, osynliga tecken eller riktningstecken)"
                    .to_owned(),
            );
        }
        // A character taken for an ASCII one (a non-breaking hyphen pasted from a word
        // processor, a full-width or Cyrillic letter): one case id to the eye, another
        // pseudonym, and its checks and outcome would never meet.
        // A combining mark left after NFC has no letter of its own to join (`o` and a
        // stroke for `ø`, `ı` and a dot for `i`, `1` and an accent): it draws one letter
        // as another.
        if let Some(c) = trimmed.chars().find(|c| Self::is_combining_mark(*c)) {
            return Err(format!(
                "ärende-id innehåller tecknet U+{:04X}, ett tecken som sätts på ett annat; \
                 skriv bokstaven som ett enda tecken (Å, Ä, Ö)",
                u32::from(c)
            ));
        }
        // Punctuation, symbols and modifier letters from outside ASCII (`ˍ`, `—`, `ー`)
        // look like ASCII ones more often than Unicode's tables say.
        if let Some(c) = trimmed.chars().find(|c| Self::is_foreign_punctuation(*c)) {
            return Err(format!(
                "ärende-id innehåller tecknet U+{:04X}; skiljetecken och symboler i ett \
                 ärende-id ska vara vanliga (ASCII), som - / . _",
                u32::from(c)
            ));
        }
        if let Some((c, like)) = trimmed
            .chars()
            .find_map(|c| crate::look_alike::passes_for_another(c).map(|like| (c, like)))
        {
            return Err(format!(
                "ärende-id innehåller tecknet U+{:04X}, som kan tas för \u{201d}{like}\u{201d} \
                 men är ett annat tecken; skriv ärende-id med vanliga tecken",
                u32::from(c)
            ));
        }
        // `Å` as one character or as `A` and a ring: one case id would have two
        // pseudonyms, and its checks and outcome would never meet.
        if !unicode_normalization::is_nfc(trimmed) {
            return Err(
                "ärende-id ska vara skrivet i Unicode-normalform NFC (till exempel Å som ett tecken, inte som A följt av en ring)"
                    .to_owned(),
            );
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// A combining mark (general categories Mn, Mc, Me; none is ASCII).
    fn is_combining_mark(c: char) -> bool {
        use unicode_general_category::{GeneralCategory as G, get_general_category};
        !c.is_ascii()
            && matches!(
                get_general_category(c),
                G::NonspacingMark | G::SpacingMark | G::EnclosingMark
            )
    }

    /// Punctuation, a symbol or a modifier letter from outside ASCII.
    fn is_foreign_punctuation(c: char) -> bool {
        use unicode_general_category::{GeneralCategory as G, get_general_category};
        !c.is_ascii()
            && matches!(
                get_general_category(c),
                G::ConnectorPunctuation
                    | G::DashPunctuation
                    | G::OpenPunctuation
                    | G::ClosePunctuation
                    | G::InitialPunctuation
                    | G::FinalPunctuation
                    | G::OtherPunctuation
                    | G::MathSymbol
                    | G::CurrencySymbol
                    | G::ModifierSymbol
                    | G::OtherSymbol
                    | G::ModifierLetter
            )
    }

    /// Characters that do not show, or change how the rest shows, so two case ids that
    /// look alike would be different: control characters, format characters (zero
    /// width, byte order mark, bidirectional overrides), spaces other than the ASCII one
    /// (a no-break space looks like it), line and paragraph separators, private-use,
    /// surrogate and unassigned code points, and the letters and symbols that draw
    /// nothing (the Hangul fillers, the blank braille pattern), and the marks Unicode
    /// makes default-ignorable (the combining grapheme joiner, variation selectors,
    /// Mongolian free variation selectors, the Khmer inherent vowels), which draw nothing
    /// either.
    pub fn is_invisible(c: char) -> bool {
        // In ASCII only the control characters are invisible (general category Cc).
        if c.is_ascii() {
            return c.is_ascii_control();
        }
        if matches!(
            c,
            '\u{115f}'
                | '\u{1160}'
                | '\u{3164}'
                | '\u{ffa0}'
                | '\u{2800}'
                | '\u{034f}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{e0100}'..='\u{e01ef}'
        ) {
            return true;
        }
        use unicode_general_category::{GeneralCategory as G, get_general_category};
        matches!(
            get_general_category(c),
            G::Control
                | G::Format
                | G::SpaceSeparator
                | G::LineSeparator
                | G::ParagraphSeparator
                | G::PrivateUse
                | G::Surrogate
                | G::Unassigned
        )
    }

    /// The raw reference, for pseudonymisation only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaseId(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for CaseId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer, Self::parse)
    }
}

/// An ICD-10 code such as `F32.1`: a letter, two digits, optionally a dot and up to
/// four more characters.
#[derive(Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct DiagnosisCode(
    #[schemars(regex(pattern = r"^[A-Z][0-9]{2}(\.?[0-9A-Z]{1,4})?$"))] String,
);

impl DiagnosisCode {
    pub fn parse(text: &str) -> Result<Self, String> {
        let code = text.trim().to_ascii_uppercase();
        let bytes = code.as_bytes();
        let head_ok = bytes.len() >= 3
            && bytes[0].is_ascii_uppercase()
            && bytes[1].is_ascii_digit()
            && bytes[2].is_ascii_digit();
        let tail = code.get(3..).unwrap_or("");
        let tail = tail.strip_prefix('.').unwrap_or(tail);
        let tail_ok = tail.len() <= 4 && tail.bytes().all(|b| b.is_ascii_alphanumeric());
        if head_ok && tail_ok && !(code.ends_with('.')) {
            Ok(Self(code))
        } else {
            Err("en diagnoskod enligt ICD-10 ska anges, som F32.1".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The diagnosis group the reports use (SFR 2018:11 tabell A5).
    pub fn group(&self) -> DiagnosisGroup {
        DiagnosisGroup::of_code(&self.0)
    }
}

impl<'de> Deserialize<'de> for DiagnosisCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The error deliberately does not echo the value: a diagnosis is health data.
        from_text(deserializer, Self::parse)
    }
}

name_enum!(
    /// Diagnosis groups as in the report: F psychiatric, M musculoskeletal, S/T injuries.
    DiagnosisGroup {
        Psychiatric,
        Musculoskeletal,
        Injury,
        Other,
    }
);

impl DiagnosisGroup {
    pub fn of_code(code: &str) -> Self {
        match code.as_bytes().first().map(u8::to_ascii_uppercase) {
            Some(b'F') => Self::Psychiatric,
            Some(b'M') => Self::Musculoskeletal,
            Some(b'S' | b'T') => Self::Injury,
            _ => Self::Other,
        }
    }
}

/// A list in which each value may appear once: a repeated entry is refused at the first
/// repeat, so a list is never longer than its vocabulary, however long the body.
pub(crate) fn distinct<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + PartialEq,
{
    struct Distinct<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de> + PartialEq> serde::de::Visitor<'de> for Distinct<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of distinct values")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut list = Vec::new();
            while let Some(item) = seq.next_element::<T>()? {
                if list.contains(&item) {
                    return Err(serde::de::Error::custom(
                        "samma värde står flera gånger i listan",
                    ));
                }
                list.push(item);
            }
            Ok(list)
        }
    }
    deserializer.deserialize_seq(Distinct(std::marker::PhantomData))
}

name_enum!(
    /// When the check is made.
    #[derive(Default)]
    Stage {
        #[default]
        BeforeGk,
        GkClosing,
    }
);

impl Stage {
    /// The words people read, after "Kontroll" or a severity ("Varning före GK").
    pub fn label_sv(self) -> &'static str {
        match self {
            Stage::BeforeGk => "före GK",
            Stage::GkClosing => "vid avslut av GK",
        }
    }
}

name_enum!(Benefit {
    SicknessBenefit,
    ActivityCompensation,
    SicknessCompensation,
    Other,
    None,
});

name_enum!(Sex { Female, Male });

name_enum!(MaritalStatus {
    Married,
    Unmarried,
    Divorced,
    Widowed,
    Unknown,
});

name_enum!(Education {
    CompulsoryShort,
    Compulsory,
    UpperSecondary,
    PostSecondaryShort,
    PostSecondaryLong,
    Doctoral,
    Unknown,
});

name_enum!(ExternalParticipant {
    Physician,
    Employer,
    AfSpecialist,
    Union,
    Relative,
    Other,
});

name_enum!(Specialist {
    OccupationalTherapist,
    Psychologist,
    SocialWorker,
    VisionSpecialist,
    DeafCounsellor,
    Audiologist,
});

/// Age in whole years, 0–130.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Age(#[schemars(range(min = 0, max = 130))] u8);

impl Age {
    pub fn years(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let years = i64::deserialize(deserializer)?;
        u8::try_from(years)
            .ok()
            .filter(|y| *y <= 130)
            .map(Age)
            .ok_or_else(|| serde::de::Error::custom("ålder anges i hela år från 0 till 130"))
    }
}

/// Assessed activity level in hours per week, 0–168.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct HoursPerWeek(#[schemars(range(min = 0, max = 168))] f64);

impl HoursPerWeek {
    pub fn hours(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for HoursPerWeek {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hours = f64::deserialize(deserializer)?;
        if hours.is_finite() && (0.0..=168.0).contains(&hours) {
            Ok(Self(hours))
        } else {
            Err(serde::de::Error::custom(
                "timmar per vecka anges som ett tal från 0 till 168",
            ))
        }
    }
}

/// SGI, sickness-benefit-qualifying income in SEK per year (non-negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Sgi(u32);

impl Sgi {
    pub fn sek_per_year(self) -> u32 {
        self.0
    }
}

fn today() -> Date {
    Date::today()
}

/// The schema must not carry the date it was generated on as `checked_on`'s default.
fn default_is_today(schema: &mut Schema) {
    schema.remove("default");
    schema.insert(
        "description".to_owned(),
        serde_json::Value::from("YYYY-MM-DD; default: today in Sweden (Europe/Stockholm)"),
    );
}

/// A participant profile (docs/profile.md). Field names are the normative API names.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "GK participant profile", description = "docs/profile.md")]
pub struct Profile {
    pub case_id: CaseId,
    #[serde(default)]
    pub stage: Stage,
    #[serde(default = "today")]
    #[schemars(transform = default_is_today)]
    pub checked_on: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefit: Option<Benefit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sick_leave_started_on: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_diagnosis: Option<DiagnosisCode>,
    #[serde(default)]
    pub person: Person,
    #[serde(default)]
    pub preparation: Preparation,
    #[serde(default)]
    pub gk: Gk,
    #[serde(default)]
    pub activity_level: ActivityLevel,
    #[serde(default)]
    pub known_needs: KnownNeeds,
    #[serde(default, deserialize_with = "distinct")]
    #[schemars(with = "Vec<Specialist>", extend("uniqueItems" = true))]
    pub specialists: Vec<Specialist>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<Age>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born_abroad: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marital_status: Option<MaritalStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children_0_17: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub education: Option<Education>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returner_ever: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgi: Option<Sgi>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Preparation {
    #[serde(default, skip_serializing_if = "field_is_absent")]
    pub assessed_for_fs_on: Field<Date>,
    #[serde(default, skip_serializing_if = "field_is_absent")]
    pub consent_received_on: Field<Date>,
    #[serde(default, skip_serializing_if = "field_is_absent")]
    pub sassam_on: Field<Date>,
    #[serde(default, skip_serializing_if = "field_is_absent")]
    pub reconciliation_meeting_on: Field<Date>,
    #[serde(default, skip_serializing_if = "field_is_absent")]
    pub other_personal_meeting_on: Field<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_contact: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub care_contact: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employer_contact: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_depth_medical_assessment: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurance_physician_consulted: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gk {
    #[serde(default, skip_serializing_if = "field_is_absent")]
    pub requested_on: Field<Date>,
    #[serde(default, skip_serializing_if = "field_is_absent")]
    pub first_meeting_on: Field<Date>,
    #[serde(default, deserialize_with = "distinct")]
    #[schemars(with = "Vec<ExternalParticipant>", extend("uniqueItems" = true))]
    pub external_participants: Vec<ExternalParticipant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter_booked: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityLevel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documented: Option<bool>,
    #[serde(default, skip_serializing_if = "field_is_absent")]
    pub hours_per_week: Field<HoursPerWeek>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownNeeds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub social_or_family_problems: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hearing_impairment: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision_impairment: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter_needed: Option<bool>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A profile is health data: its Debug output must be safe to end up in a log.
        f.write_str("Profile { <redacted> }")
    }
}

/// Why a profile was refused: the JSON path of the offending field and what was wrong.
/// The message never repeats the offending value (it may be personal data).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ProfileError {
    /// Dotted path such as `activity_level.hours_per_week`; `.` for the whole document.
    pub path: String,
    pub message: String,
    /// The text is not JSON at all (as opposed to JSON with a bad field).
    pub syntax: bool,
    /// The value is well-formed but contradicts another field or the day of the check
    /// (a meeting after the check, a first meeting before the request): `message`
    /// explains why, for the person who typed it.
    pub implausible: bool,
}

impl ProfileError {
    fn from_serde(err: &serde_json::Error, path: String) -> Self {
        use serde_json::error::Category;
        match err.classify() {
            // Syntax messages name no value; keep the position so the error can be found.
            Category::Syntax | Category::Eof | Category::Io => Self {
                path: ".".to_owned(),
                // A syntax message quotes no value (only the characters it expected), so
                // it is not cut at its first quote the way a data message is.
                message: format!(
                    "ogiltig JSON på rad {} kolumn {}: {}",
                    err.line(),
                    err.column(),
                    message_in_swedish(
                        err.to_string()
                            .split(" at line ")
                            .next()
                            .unwrap_or_default()
                    )
                ),
                syntax: true,
                implausible: false,
            },
            Category::Data => {
                let message = redact_serde_message(&err.to_string());
                // An unknown key written as `""` gives an empty path: it stands in the
                // document itself.
                let parent = if path == "?" || path.is_empty() {
                    ".".to_owned()
                } else {
                    path
                };
                // serde places a missing or repeated field at its parent; name the
                // field itself.
                let duplicate = duplicate_field_name(&message);
                let path = match missing_field_name(&message).or(duplicate) {
                    Some(field) if parent == "." => field.to_owned(),
                    Some(field) => format!("{parent}.{field}"),
                    None => parent,
                };
                let message = if duplicate.is_some() {
                    "fältet står mer än en gång i objektet".to_owned()
                } else {
                    message_in_swedish(&message)
                };
                Self {
                    path,
                    message,
                    syntax: false,
                    implausible: false,
                }
            }
        }
    }
}

/// A parser message (serde's English, already stripped of any value) in plain Swedish:
/// every refusal of a profile or an outcome is read by people (officers on the pages,
/// policy staff at the terminal, integrators in the API's `detail`). What was expected
/// keeps the schema's own names; a message of a kind not listed here is kept as it is.
fn message_in_swedish(message: &str) -> String {
    let names = |list: &str| {
        list.replace("one of ", "")
            .replace('`', "")
            .replace(" or ", " eller ")
    };
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown variant") {
        let expected = rest.split_once("expected ").map_or("", |(_, e)| e);
        return format!("okänt värde; tillåtna värden är {}", names(expected));
    }
    if let Some(rest) = message.strip_prefix("unknown field") {
        // The name as the redaction left it: quoted, or said not to be shown.
        let name = rest.split_once(',').map_or(rest, |(name, _)| name).trim();
        let field = if name.is_empty() {
            "okänt fält".to_owned()
        } else {
            format!("okänt fält {name}")
        };
        let expected = rest.split_once("expected ").map_or("", |(_, e)| e);
        return if expected.is_empty() {
            field
        } else {
            format!("{field}; tillåtna fält är {}", names(expected))
        };
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        return format!("fältet {} saknas", field.replace('`', ""));
    }
    if let Some(field) = message.strip_prefix("duplicate field ") {
        return format!("fältet {} står två gånger", field.replace('`', ""));
    }
    // What serde says it expected (a Rust type or its own words), as people say it.
    let wanted = |expected: &str| match expected {
        e if e.starts_with('u') && e[1..].bytes().all(|b| b.is_ascii_digit()) => {
            "ett heltal, 0 eller större".to_owned()
        }
        e if e.starts_with('i') || e.starts_with('u') || e.contains("integer") => {
            "ett heltal".to_owned()
        }
        e if e.starts_with('f') => "ett tal".to_owned(),
        "a boolean" | "bool" => "sant eller falskt (true eller false)".to_owned(),
        "a list of distinct values" => "en lista där varje värde står en gång".to_owned(),
        e if e.contains("string") || e.contains("date") => "en text".to_owned(),
        e if e.contains("sequence") => "en lista".to_owned(),
        e if e.contains("map") || e.contains("struct") => "ett objekt".to_owned(),
        e => names(e),
    };
    if let Some(rest) = message.strip_prefix("invalid type:") {
        let expected = rest.split_once("expected ").map_or("", |(_, e)| e);
        return format!("fel sorts värde; här ska stå {}", wanted(expected));
    }
    if message.starts_with("invalid value") || message.starts_with("invalid length") {
        let expected = message.split_once("expected ").map_or("", |(_, e)| e);
        return format!("ogiltigt värde; här ska stå {}", wanted(expected));
    }
    if message.starts_with("EOF while parsing") {
        return "texten tar slut mitt i profilen (saknas en avslutande } eller \"?)".to_owned();
    }
    if message.starts_with("expected value") {
        return "ett värde väntades här (är det JSON?)".to_owned();
    }
    if message.starts_with("trailing characters") || message.starts_with("trailing comma") {
        return "det står något efter profilens slut, eller ett kommatecken för mycket".to_owned();
    }
    if message.starts_with("key must be a string") {
        return "ett fältnamn ska stå inom citattecken".to_owned();
    }
    if message.starts_with("expected `,` or `}`") || message.starts_with("expected `,` or `]`") {
        return "ett kommatecken eller en avslutande klammer väntades".to_owned();
    }
    if message.starts_with("expected `:`") {
        return "ett kolon (:) väntades efter fältnamnet".to_owned();
    }
    // serde_json's other syntax errors (its `ErrorCode`s), as people say them.
    const SYNTAX: &[(&str, &str)] = &[
        (
            "expected ident",
            "ett ord som JSON inte känner; skriv true, false eller null, eller text inom citattecken",
        ),
        ("expected `\"`", "ett citattecken väntades"),
        ("invalid escape", "ogiltigt tecken efter \\ i en text"),
        ("invalid number", "ogiltigt tal"),
        ("number out of range", "talet är för stort"),
        (
            "invalid unicode code point",
            "ogiltig teckenkod (\\u) i en text",
        ),
        (
            "lone leading surrogate",
            "ogiltig teckenkod (\\u) i en text",
        ),
        (
            "unexpected end of hex escape",
            "ogiltig teckenkod (\\u) i en text",
        ),
        (
            "control character",
            "en text innehåller ett styrtecken, till exempel en radbrytning; skriv det som \\n",
        ),
        ("recursion limit exceeded", "profilen är nästlad för djupt"),
        (
            "float key must be finite",
            "ett fältnamn ska stå inom citattecken",
        ),
    ];
    if let Some((_, said)) = SYNTAX.iter().find(|(code, _)| message.starts_with(code)) {
        return (*said).to_owned();
    }
    message.to_owned()
}

/// The field named by serde's "missing field `x`" message.
fn missing_field_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|name| !name.is_empty())
}

/// The field named by serde's "duplicate field `x`" message.
fn duplicate_field_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("duplicate field `")?
        .split('`')
        .next()
        .filter(|name| !name.is_empty())
}

/// serde's derived structs also accept a JSON array of their field values; every input
/// of this product is an object, so anything else is refused before serde sees it.
fn not_an_object() -> ProfileError {
    ProfileError {
        path: ".".to_owned(),
        message: "ett JSON-objekt krävs här".to_owned(),
        syntax: false,
        implausible: false,
    }
}

/// Parses JSON text holding one object into `T`, naming the path of the first offending
/// field. Used for every JSON input (profiles, outcomes, queries) so their errors read
/// alike.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ProfileError> {
    // A UTF-8 byte order mark, as some editors write one, is not part of the JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.trim_start_matches([' ', '\t', '\n', '\r']);
    if !first.is_empty() && !first.starts_with('{') {
        // Let a syntax error stay a syntax error; only well-formed non-objects end here.
        if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            return Err(not_an_object());
        }
    }
    parse_json_document(text)
}

/// Like [`parse_json`] for any JSON document (an array of objects, for instance).
pub(crate) fn parse_json_document<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, ProfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Valid input, the common case, is read without tracking the path (which costs
    // about as much as the parsing); only a refusal is read again to name the field.
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = path_text(err.path());
        let mut error = ProfileError::from_serde(err.inner(), path.clone());
        if error.syntax && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            // Well-formed JSON that serde reports as a syntax error: a value of the
            // wrong JSON type where an enumeration was expected (`"stage": 1`).
            error = ProfileError {
                path: if path == "?" { ".".to_owned() } else { path },
                message: "fel typ av värde: väntade text".to_owned(),
                syntax: false,
                implausible: false,
            };
        }
        error
    })?;
    deserializer
        .end()
        .map_err(|err| ProfileError::from_serde(&err, ".".to_owned()))?;
    Ok(value)
}

/// Like [`parse_json`], from an already-parsed JSON value.
pub fn from_json_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ProfileError> {
    if !value.is_object() {
        return Err(not_an_object());
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = path_text(err.path());
        ProfileError::from_serde(err.inner(), path)
    })
}

impl Profile {
    /// Parses and validates a profile from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ProfileError> {
        let profile: Self = parse_json(text)?;
        profile.check_dates(&PlausibleDates::now())?;
        Ok(profile)
    }

    /// Parses a profile as stored with a check. The plausible-date window is a rule for
    /// input on the day it arrives, not for storage: a check stored under an earlier
    /// window (or long ago) still reads back.
    pub fn from_stored_json(text: &str) -> Result<Self, ProfileError> {
        parse_json(text)
    }

    /// Parses and validates a profile from an already-parsed JSON value.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ProfileError> {
        let profile: Self = from_json_value(value)?;
        profile.check_dates(&PlausibleDates::now())?;
        Ok(profile)
    }

    /// Refuses the first date outside `window`, naming its field.
    pub fn check_dates(&self, window: &PlausibleDates) -> Result<(), ProfileError> {
        window.check("checked_on", self.checked_on, true)?;
        let fields = [
            ("sick_leave_started_on", self.sick_leave_started_on),
            (
                "preparation.assessed_for_fs_on",
                self.preparation.assessed_for_fs_on.value().copied(),
            ),
            (
                "preparation.consent_received_on",
                self.preparation.consent_received_on.value().copied(),
            ),
            (
                "preparation.sassam_on",
                self.preparation.sassam_on.value().copied(),
            ),
            (
                "preparation.reconciliation_meeting_on",
                self.preparation.reconciliation_meeting_on.value().copied(),
            ),
            (
                "preparation.other_personal_meeting_on",
                self.preparation.other_personal_meeting_on.value().copied(),
            ),
            ("gk.requested_on", self.gk.requested_on.value().copied()),
            (
                "gk.first_meeting_on",
                self.gk.first_meeting_on.value().copied(),
            ),
        ];
        for (path, date) in fields {
            if let Some(date) = date {
                window.check(path, date, false)?;
            }
        }
        self.check_order()
    }

    /// Refuses dates that contradict each other. The preparation dates and the request
    /// for GK record what has happened, so none lies after the day of the check; the
    /// first GK meeting may be booked ahead, but not before GK was requested. The
    /// message names the other field, never a date.
    fn check_order(&self) -> Result<(), ProfileError> {
        let implausible = |path: &str, message: String| ProfileError {
            path: path.to_owned(),
            message,
            syntax: false,
            implausible: true,
        };
        let happened = [
            (
                "preparation.assessed_for_fs_on",
                &self.preparation.assessed_for_fs_on,
                "när bedömningen att förstärkt samarbete är aktuellt gjordes",
            ),
            (
                "preparation.consent_received_on",
                &self.preparation.consent_received_on,
                "när samtycket kom in",
            ),
            (
                "preparation.sassam_on",
                &self.preparation.sassam_on,
                "när SASSAM-kartläggningen gjordes",
            ),
            (
                "preparation.reconciliation_meeting_on",
                &self.preparation.reconciliation_meeting_on,
                "när avstämningsmötet hölls",
            ),
            (
                "preparation.other_personal_meeting_on",
                &self.preparation.other_personal_meeting_on,
                "när det personliga mötet hölls",
            ),
            ("gk.requested_on", &self.gk.requested_on, "när GK begärdes"),
        ];
        for (path, field, what) in happened {
            if field.value().is_some_and(|date| *date > self.checked_on) {
                return Err(implausible(
                    path,
                    format!(
                        "datumet ligger efter kontrolldagen: fältet anger {what}, och \
                         det som ännu inte har skett registreras inte. Ange att det inte har \
                         skett ännu, eller rätta datumet"
                    ),
                ));
            }
        }
        if let (Some(first), Some(requested)) = (
            self.gk.first_meeting_on.value(),
            self.gk.requested_on.value(),
        ) && first < requested
        {
            return Err(implausible(
                "gk.first_meeting_on",
                "det första GK-mötet ligger före begäran om GK: mötet kan \
                 inte hållas innan GK har begärts. Rätta ett av datumen"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The JSON Schema of the profile, generated from these types.
    pub fn json_schema() -> Schema {
        schemars::schema_for!(Profile)
    }
}

/// serde's messages quote the offending value (`invalid type: integer `1912…`` or
/// `unknown variant `…``). Keep what was expected (the schema's own names) and the
/// names of unknown or missing fields, but never the value, so a case id or a
/// diagnosis sent in the wrong place does not travel into an error trace.
/// The longest key an error repeats; the product's own field names are far shorter.
const MAX_QUOTED_KEY: usize = 40;

/// Whether a JSON key may be repeated in an error: it looks like one of the product's
/// field names (ASCII letters and `_`), or is one of the few of them with digits
/// (`children_0_17`). Anything else, such as a case id, a personal identity number or a
/// diagnosis code written as a key by mistake, may be personal data and is never quoted.
fn looks_like_a_field_name(key: &str) -> bool {
    let letters = !key.is_empty()
        && key.len() <= MAX_QUOTED_KEY
        && key.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
    letters || FIELD_NAMES_WITH_DIGITS.contains(key)
}

/// The profile's field names that hold a digit, read from its schema once (the
/// outcome's have none).
static FIELD_NAMES_WITH_DIGITS: std::sync::LazyLock<std::collections::HashSet<String>> =
    std::sync::LazyLock::new(|| {
        fn collect(value: &serde_json::Value, names: &mut std::collections::HashSet<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                        names.extend(
                            properties
                                .keys()
                                .filter(|k| k.bytes().any(|b| b.is_ascii_digit()))
                                .cloned(),
                        );
                    }
                    map.values().for_each(|v| collect(v, names));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, names)),
                _ => {}
            }
        }
        let mut names = std::collections::HashSet::new();
        collect(
            &serde_json::to_value(Profile::json_schema()).unwrap_or_default(),
            &mut names,
        );
        names
    });

/// A field path as errors show it (`gk.requested_on`, `[3].ended_on`). A key that does
/// not look like a field name is left out at the end (the error then names the object
/// holding it) and shown as `?` inside the path.
fn path_text(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    if let Some(Segment::Map { key }) = segments.last()
        && !looks_like_a_field_name(key)
    {
        segments.pop();
    }
    let mut text = String::new();
    for segment in segments {
        if !matches!(segment, Segment::Seq { .. }) && !text.is_empty() {
            text.push('.');
        }
        match segment {
            Segment::Seq { index } => text.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key }
                if looks_like_a_field_name(key) =>
            {
                text.push_str(key)
            }
            Segment::Map { .. } | Segment::Enum { .. } | Segment::Unknown => text.push('?'),
        }
    }
    if text.is_empty() {
        ".".to_owned()
    } else {
        text
    }
}

fn redact_serde_message(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    // The key ends where serde's own words begin, at the last of them: a key may itself
    // hold "`, expected `…".
    if let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| {
            rest.rfind("`, expected")
                .or_else(|| rest.rfind("`, there are no fields"))
                .map(|end| &rest[..end])
        })
        .filter(|key| !looks_like_a_field_name(key))
    {
        // serde quotes the unknown key verbatim; it may be a value typed as a key.
        return message.replacen(&format!("`{key}`"), "(namnet visas inte)", 1);
    }
    if message.starts_with("unknown field")
        || message.starts_with("missing field")
        || message.starts_with("duplicate field")
    {
        return message.to_owned();
    }
    // The value can only stand before the last ", expected": the rest is ours.
    let (head, expected) = match message.rfind(", expected") {
        Some(index) => message.split_at(index),
        None => (message, ""),
    };
    let head = match head.find(['`', '"']) {
        Some(index) => format!("{}…", &head[..index]),
        None => head.to_owned(),
    };
    format!("{head}{expected}")
}

/// The background variables of a profile, as the audit's adjusted model uses them
/// (SFR 2018:11 tabell 20's controls) and `check_facts` stores them. Personal data: no `Debug`.
#[derive(Clone, Default)]
pub struct Covariates {
    pub sex: Option<Sex>,
    pub age: Option<u8>,
    pub diagnosis: Option<DiagnosisGroup>,
    pub education: Option<Education>,
    pub marital_status: Option<MaritalStatus>,
    pub children_0_17: Option<bool>,
    pub born_abroad: Option<bool>,
    pub returner_ever: Option<bool>,
    pub sgi: Option<u32>,
}

impl Covariates {
    pub fn of(profile: &Profile) -> Self {
        let person = &profile.person;
        Self {
            sex: person.sex,
            age: person.age.map(|a| a.years()),
            diagnosis: profile.main_diagnosis.as_ref().map(|d| d.group()),
            education: person.education,
            marital_status: person.marital_status,
            children_0_17: person.children_0_17,
            born_abroad: person.born_abroad,
            returner_ever: person.returner_ever,
            sgi: person.sgi.map(|s| s.sek_per_year()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Profile, ProfileError> {
        Profile::from_json(json)
    }

    #[test]
    fn minimal_profile_takes_defaults() {
        let p = parse(r#"{"case_id":"A-1","checked_on":"2024-03-01"}"#).expect("valid");
        assert_eq!(p.stage, Stage::BeforeGk);
        assert_eq!(p.checked_on.to_string(), "2024-03-01");
        assert!(p.specialists.is_empty());
        assert_eq!(p.preparation.sassam_on, Field::Absent);
    }

    #[test]
    fn null_and_absent_dates_differ() {
        let p = parse(r#"{"case_id":"A","preparation":{"sassam_on":null}}"#).expect("valid");
        assert_eq!(p.preparation.sassam_on, Field::Null);
        assert_eq!(p.preparation.reconciliation_meeting_on, Field::Absent);
    }

    #[test]
    fn unknown_field_is_refused_with_its_path() {
        let err = parse(r#"{"case_id":"A","activity_level":{"documentd":true}}"#).unwrap_err();
        assert_eq!(err.path, "activity_level.documentd");
        assert!(err.message.contains("documented"), "{}", err.message);
        // A key with digits is repeated only when it is one of the product's own: a
        // personal identity number, a case id or a diagnosis code sent as a key is not.
        for key in ["198001011234", "FK2024000311", "anna_19800101", "F321"] {
            let err =
                parse(&format!(r#"{{"case_id":"A","person":{{"{key}":true}}}}"#)).unwrap_err();
            assert_eq!(err.path, "person", "{key}");
            assert!(!err.to_string().contains(key), "{key}: {err}");
        }
        let err = parse(r#"{"case_id":"A","person":{"children_0_17":"ja"}}"#).unwrap_err();
        assert_eq!(err.path, "person.children_0_17");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse(r#"{"case_id":"A","person":{"age":"forty"}}"#).unwrap_err();
        assert_eq!(err.path, "person.age");
    }

    #[test]
    fn missing_case_id_is_refused() {
        let err = parse(r#"{"stage":"before_gk"}"#).unwrap_err();
        assert!(err.message.contains("case_id"), "{}", err.message);
    }

    #[test]
    fn empty_case_id_is_refused() {
        let err = parse(r#"{"case_id":"  "}"#).unwrap_err();
        assert_eq!(err.path, "case_id");
    }

    #[test]
    fn dates_are_strict() {
        for bad in [
            "2024-2-01",
            "2024-02-30",
            "20240201",
            "2024-02-01T10:00",
            "0000-01-01",
        ] {
            let json = format!(r#"{{"case_id":"A","checked_on":"{bad}"}}"#);
            let err = parse(&json).unwrap_err();
            assert_eq!(err.path, "checked_on", "{bad}");
        }
    }

    #[test]
    fn bad_diagnosis_error_does_not_echo_the_value() {
        let err = parse(r#"{"case_id":"A","main_diagnosis":"XYZ-secret"}"#).unwrap_err();
        assert_eq!(err.path, "main_diagnosis");
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn repeated_list_entries_are_refused_at_the_list() {
        let err = parse(r#"{"case_id":"A","specialists":["psychologist","psychologist"]}"#);
        let err = err.expect_err("a repeated specialist");
        assert_eq!(err.path, "specialists");
        assert!(err.message.contains("flera gånger"), "{}", err.message);
        let many = format!(
            r#"{{"case_id":"A","gk":{{"external_participants":[{}]}}}}"#,
            vec![r#""physician""#; 10_000].join(",")
        );
        assert_eq!(
            parse(&many).expect_err("10 000 repeats").path,
            "gk.external_participants"
        );
        let ok = parse(r#"{"case_id":"A","specialists":["audiologist","psychologist"]}"#);
        assert_eq!(ok.map(|p| p.specialists.len()).ok(), Some(2));
    }

    #[test]
    fn unknown_enum_value_names_the_valid_ones() {
        let err = parse(r#"{"case_id":"A","specialists":["psykolog"]}"#).unwrap_err();
        assert_eq!(err.path, "specialists[0]");
        assert!(err.message.contains("psychologist"), "{}", err.message);
    }

    #[test]
    fn values_in_the_wrong_place_are_never_echoed() {
        for json in [
            r#"{"case_id":191212121234}"#,
            r#"{"case_id":"A","stage":"SECRET-XYZ"}"#,
            r#"{"case_id":"A","specialists":["SECRET-XYZ"]}"#,
            r#"{"case_id":"A","checked_on":"x\"SECRET-XYZ, expected"}"#,
            r#"{"case_id":"A","person":{"age":"SECRET-XYZ"}}"#,
            // A key that holds serde's own words: the number came back in the message.
            r#"{"case_id":"A","x`, expected `SECRET-191212":1}"#,
        ] {
            let err = parse(json).unwrap_err();
            let text = err.to_string();
            assert!(
                !text.contains("SECRET") && !text.contains("191212"),
                "{json} -> {text}"
            );
        }
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let err = parse("{\"case_id\":\"A\",\n").unwrap_err();
        assert!(err.syntax);
        assert_eq!(err.path, ".");
        assert!(err.message.contains("rad 2"), "{}", err.message);
    }

    #[test]
    fn schema_does_not_depend_on_the_date() {
        let schema = serde_json::to_string(&Profile::json_schema()).expect("schema");
        assert!(!schema.contains(&Date::today().to_string()));
    }

    #[test]
    fn trailing_garbage_is_refused() {
        assert!(parse(r#"{"case_id":"A"} x"#).is_err());
    }

    #[test]
    fn hours_out_of_range_are_refused() {
        let err = parse(r#"{"case_id":"A","activity_level":{"hours_per_week":200}}"#).unwrap_err();
        assert_eq!(err.path, "activity_level.hours_per_week");
    }

    #[test]
    fn debug_output_is_redacted() {
        let p = parse(r#"{"case_id":"SECRET-1","main_diagnosis":"F32.1"}"#).expect("valid");
        let debug = format!("{p:?}");
        assert!(!debug.contains("SECRET") && !debug.contains("F32"));
    }

    #[test]
    fn diagnosis_groups_follow_the_report() {
        assert_eq!(
            DiagnosisGroup::of_code("F32.1"),
            DiagnosisGroup::Psychiatric
        );
        assert_eq!(
            DiagnosisGroup::of_code("M54"),
            DiagnosisGroup::Musculoskeletal
        );
        assert_eq!(DiagnosisGroup::of_code("S82.2"), DiagnosisGroup::Injury);
        assert_eq!(DiagnosisGroup::of_code("T14"), DiagnosisGroup::Injury);
        assert_eq!(DiagnosisGroup::of_code("G35"), DiagnosisGroup::Other);
    }

    /// The calendar arithmetic of [`Date::parse`] against jiff's parser: every day of
    /// 1890–2110 and of the years around the ends of the range and the century rules,
    /// and every impossible day and month of those years.
    #[test]
    fn dates_parse_as_jiff_reads_them() {
        let jiff_reading = |text: &str| {
            text.parse::<jiff::civil::Date>()
                .ok()
                .map(|d| Date::from_civil(d).days_since_epoch)
        };
        // Year 0, which jiff reads, is refused (see `dates_are_strict`).
        let years =
            (1890..=2110).chain([1, 4, 99, 100, 101, 399, 400, 401, 1600, 1700, 9998, 9999]);
        let mut valid = 0;
        for year in years {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    let ours = Date::parse(&text).ok().map(|d| d.days_since_epoch);
                    assert_eq!(ours, jiff_reading(&text), "{text}");
                    valid += usize::from(ours.is_some());
                }
            }
        }
        assert_eq!(
            valid,
            221 * 365 + 53 + 12 * 365 + 3,
            "every real day was read"
        );
        assert_eq!(
            Date::parse("2024-02-30").expect_err("no such day"),
            "datumet finns inte i kalendern"
        );
        assert_eq!(Date::parse("1970-01-01").map(|d| d.days_since_epoch), Ok(0));
    }

    /// [`Date`]'s own writing against jiff's, on every day of years 0–9999 and on days
    /// outside them, which are left to jiff; reading back, from year 1.
    #[test]
    fn dates_are_written_as_jiff_writes_them() {
        let first = Date::from_civil(jiff::civil::date(0, 1, 1)).days_since_epoch;
        let last = Date::from_civil(jiff::civil::date(9999, 12, 31)).days_since_epoch;
        for days in (first - 400)..=(last + 400) {
            let date = Date {
                days_since_epoch: days,
            };
            let ours = date.to_string();
            assert_eq!(ours, date.to_civil().to_string(), "day {days}");
            if (Date::FIRST_DAY..=last).contains(&days) {
                assert_eq!(Date::parse(&ours), Ok(date), "{ours}");
            } else if (first..=last).contains(&days) {
                assert!(Date::parse(&ours).is_err(), "year 0: {ours}");
            }
        }
    }

    #[test]
    fn today_and_its_window_are_those_of_the_clock() {
        for _ in 0..3 {
            let before = Date::today_in_stockholm(jiff::Timestamp::now());
            let today = Date::today();
            let window = PlausibleDates::now();
            let after = Date::today_in_stockholm(jiff::Timestamp::now());
            assert!(
                today == before || today == after,
                "{today} {before} {after}"
            );
            assert!(
                window == PlausibleDates::around(before) || window == PlausibleDates::around(after)
            );
        }
    }

    #[test]
    fn ascii_visibility_follows_the_general_category() {
        use unicode_general_category::{GeneralCategory, get_general_category};
        for c in (0_u8..=127).map(char::from) {
            let control = get_general_category(c) == GeneralCategory::Control;
            assert_eq!(CaseId::is_invisible(c), control, "{c:?}");
        }
    }

    #[test]
    fn date_arithmetic() {
        let a = Date::parse("2024-02-28").expect("date");
        let b = Date::parse("2024-03-01").expect("date");
        assert_eq!(a.days_until(b), 2);
        assert_eq!(a.plus_days(2), b);
        assert_eq!(b.to_string(), "2024-03-01");
    }

    #[test]
    fn profile_round_trips_through_json() {
        let text = r#"{"case_id":"A","checked_on":"2024-01-02","preparation":{"sassam_on":null},"activity_level":{"hours_per_week":12.5}}"#;
        let p = parse(text).expect("valid");
        let again = parse(&serde_json::to_string(&p).expect("serialize")).expect("valid");
        assert_eq!(again.preparation.sassam_on, Field::Null);
        assert_eq!(again.preparation.consent_received_on, Field::Absent);
        assert_eq!(
            again
                .activity_level
                .hours_per_week
                .value()
                .map(|h| h.hours()),
            Some(12.5)
        );
    }

    #[test]
    fn plausible_dates_run_from_2000_to_a_year_ahead() {
        let today = Date::parse("2026-02-28").expect("date");
        let window = PlausibleDates::around(today);
        assert_eq!(window.earliest.to_string(), PlausibleDates::EARLIEST);
        assert_eq!(window.latest.to_string(), "2027-02-28");
        assert_eq!(window.latest_checked_on.to_string(), "2026-03-01");
        let date = |t: &str| Date::parse(t).expect("date");
        assert!(window.check("x", date("2000-01-01"), false).is_ok());
        assert!(window.check("x", date("1999-12-31"), false).is_err());
        assert!(window.check("x", date("2027-02-28"), false).is_ok());
        assert!(window.check("x", date("2027-03-01"), false).is_err());
        assert!(window.check("checked_on", date("2026-03-01"), true).is_ok());
        let err = window
            .check("checked_on", date("2026-03-02"), true)
            .expect_err("too late");
        assert_eq!(err.path, "checked_on");
        assert!(!err.message.contains("2026-03-02"), "{err}");
        assert!(
            err.implausible && err.message.contains("högst en dag"),
            "{err}"
        );
    }

    #[test]
    fn dates_that_contradict_each_other_are_refused_naming_the_field() {
        let profile = |extra: &str| {
            parse(&format!(
                r#"{{"case_id":"A","checked_on":"2024-03-15",{extra}}}"#
            ))
        };
        for field in [
            "assessed_for_fs_on",
            "consent_received_on",
            "sassam_on",
            "reconciliation_meeting_on",
            "other_personal_meeting_on",
        ] {
            let err =
                profile(&format!(r#""preparation":{{"{field}":"2024-03-16"}}"#)).expect_err(field);
            assert_eq!(err.path, format!("preparation.{field}"));
            assert!(err.implausible, "{err}");
            assert!(err.message.contains("efter kontrolldagen"), "{err}");
            assert!(!err.message.contains("2024-03-16"), "{err}");
            assert!(
                profile(&format!(r#""preparation":{{"{field}":"2024-03-15"}}"#)).is_ok(),
                "{field} on the day of the check"
            );
        }
        let err = profile(r#""gk":{"requested_on":"2024-03-16"}"#).expect_err("request");
        assert_eq!(err.path, "gk.requested_on");
        let err = profile(r#""gk":{"requested_on":"2024-03-10","first_meeting_on":"2024-03-09"}"#)
            .expect_err("meeting before request");
        assert_eq!(err.path, "gk.first_meeting_on");
        assert!(err.message.contains("före begäran"), "{err}");
        // A booked meeting ahead, and hours without a documented assessment, are fine.
        assert!(
            profile(r#""gk":{"requested_on":"2024-03-10","first_meeting_on":"2024-04-20"},"activity_level":{"documented":false,"hours_per_week":12}"#)
                .is_ok()
        );
        // A stored profile reads back whatever it holds.
        assert!(
            Profile::from_stored_json(
                r#"{"case_id":"A","checked_on":"2024-03-15","gk":{"requested_on":"2024-03-20"}}"#
            )
            .is_ok()
        );
    }

    #[test]
    fn case_ids_must_be_visible() {
        for id in [
            "\u{200b}",
            "A\u{200d}1",
            "\u{feff}A",
            "A\u{202e}B",
            "A\u{2069}",
            "A\u{2028}B",
            "A\u{e000}",
        ] {
            assert!(CaseId::parse(id).is_err(), "{id:?}");
        }
        for id in ["ÄRENDE-2024-1", "Å 12/34", "ärende_ø"] {
            assert!(CaseId::parse(id).is_ok(), "{id:?}");
        }
    }

    /// A space pasted from a document was refused as invisible, though the officer sees
    /// a space; a look-alike's message was cut at its quote in the API's and the
    /// command line's refusal, which drop what serde quotes.
    #[test]
    fn a_pasted_space_and_a_look_alike_are_named_in_full_in_every_refusal() {
        let err = parse(r#"{"case_id":"FK-2024\u00a0311"}"#).expect_err("refused");
        assert_eq!(err.path, "case_id");
        assert!(
            err.message
                .contains("mellanslag som inte är ett vanligt mellanslag (U+00A0"),
            "{err}"
        );
        let err = parse(r#"{"case_id":"FK-2024-\u041e11"}"#).expect_err("refused");
        assert!(
            err.message
                .ends_with("som kan tas för \u{201d}O\u{201d} men är ett annat tecken; skriv ärende-id med vanliga tecken"),
            "{err}"
        );
    }

    #[test]
    fn wrong_json_type_in_an_enumeration_is_a_field_error() {
        let err = parse(r#"{"case_id":"A","stage":1}"#).expect_err("refused");
        assert!(!err.syntax, "{err}");
        assert_eq!(err.path, "stage");
    }
}

#[cfg(test)]
mod schema_file_tests {
    #[test]
    fn checked_in_schema_matches_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/profile.schema.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        let generated =
            serde_json::to_string_pretty(&super::Profile::json_schema()).unwrap_or_default();
        assert!(
            checked_in.trim_end() == generated,
            "src/profile.schema.json is out of date: run `cargo run -- schema > src/profile.schema.json`"
        );
    }
}

#[cfg(test)]
mod stockholm_tests {
    use super::*;
    use jiff::Timestamp;
    use jiff::tz::{TimeZone, TimeZoneDatabase};

    fn at(instant: &str) -> Timestamp {
        instant.parse().expect("a valid instant")
    }

    fn date_in(zone: &TimeZone, instant: Timestamp) -> String {
        instant.to_zoned(zone.clone()).date().to_string()
    }

    /// (instant, date in Stockholm): around midnight in winter and summer time and on
    /// both days the clocks change.
    const CASES: [(&str, &str); 8] = [
        ("2024-01-15T22:59:00Z", "2024-01-15"),
        ("2024-01-15T23:00:00Z", "2024-01-16"),
        ("2024-03-30T23:30:00Z", "2024-03-31"),
        ("2024-06-15T11:00:00Z", "2024-06-15"),
        ("2024-06-15T21:59:00Z", "2024-06-15"),
        ("2024-06-15T22:00:00Z", "2024-06-16"),
        ("2024-10-26T21:59:00Z", "2024-10-26"),
        ("2024-10-26T22:00:00Z", "2024-10-27"),
    ];

    #[test]
    fn today_is_the_date_in_stockholm_at_the_instant() {
        for (instant, date) in CASES {
            assert_eq!(
                Date::today_in_stockholm(at(instant)).to_string(),
                date,
                "{instant}"
            );
        }
    }

    /// The same instants in the machine zones of a server in Los Angeles or on
    /// Kiritimati (UTC+14) fall on other dates; the answer is Stockholm's all the same.
    #[test]
    fn the_machine_zone_does_not_matter() {
        let bundled = TimeZoneDatabase::bundled();
        let los_angeles = bundled.get("America/Los_Angeles").expect("bundled zone");
        let kiritimati = bundled.get("Pacific/Kiritimati").expect("bundled zone");
        let instant = at("2024-06-15T22:30:00Z");
        assert_eq!(date_in(&los_angeles, instant), "2024-06-15");
        assert_eq!(Date::today_in_stockholm(instant).to_string(), "2024-06-16");
        let instant = at("2024-06-15T11:00:00Z");
        assert_eq!(date_in(&kiritimati, instant), "2024-06-16");
        assert_eq!(Date::today_in_stockholm(instant).to_string(), "2024-06-15");
    }

    /// Every source of the zone gives the same dates: the system's database (when the
    /// machine has one), the bundled copy and the fallback rule.
    #[test]
    fn the_bundled_zone_and_the_fallback_rule_agree() {
        let bundled = TimeZoneDatabase::bundled()
            .get(STOCKHOLM)
            .expect("the bundled database has Europe/Stockholm");
        let rule = TimeZone::posix(STOCKHOLM_RULE).expect("a valid POSIX TZ string");
        for (instant, date) in CASES {
            assert_eq!(date_in(&bundled, at(instant)), date, "bundled, {instant}");
            assert_eq!(date_in(&rule, at(instant)), date, "rule, {instant}");
            assert_eq!(date_in(stockholm(), at(instant)), date, "{instant}");
        }
    }
}

#[cfg(test)]
mod parse_message_tests {
    use super::message_in_swedish;

    #[test]
    fn common_parser_messages_read_in_swedish() {
        for (english, swedish) in [
            (
                "unknown variant …, expected `before_gk` or `gk_closing`",
                "okänt värde; tillåtna värden är before_gk eller gk_closing",
            ),
            (
                "invalid type: string …, expected i64",
                "fel sorts värde; här ska stå ett heltal",
            ),
            ("missing field `case_id`", "fältet case_id saknas"),
            (
                "EOF while parsing a value",
                "texten tar slut mitt i profilen (saknas en avslutande } eller \"?)",
            ),
        ] {
            assert_eq!(message_in_swedish(english), swedish);
        }
    }

    /// `{"case_id": tru}` was answered "ogiltig JSON på rad 1 kolumn 16: expected ident".
    #[test]
    fn every_syntax_error_of_the_json_parser_reads_in_swedish() {
        for text in [
            r#"{"case_id": tru}"#,
            r#"{"case_id": "a\q"}"#,
            "{\"case_id\": \"a\nb\"}",
            r#"{"case_id": "\ud800"}"#,
            r#"{"case_id": 1.}"#,
            r#"{"case_id": -}"#,
            r#"{case_id: 1}"#,
            r#"{"case_id" 1}"#,
            r#"{"case_id": 1,}"#,
            r#"{"case_id": 1} x"#,
            r#"{"case_id": 1"#,
            &format!("{}1{}", "[".repeat(200), "]".repeat(200)),
        ] {
            let err = serde_json::from_str::<serde_json::Value>(text).expect_err(text);
            let english = err.to_string();
            let english = english.split(" at line ").next().unwrap_or_default();
            let said = message_in_swedish(english);
            assert_ne!(said, english, "{text}: {english}");
            assert!(
                !said.contains("expected") && !said.contains("EOF"),
                "{text}: {said}"
            );
        }
    }
}
