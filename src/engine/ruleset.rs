//! Loading a rule set from disk: the YAML manifest, one Rhai script per rule, all
//! compiled up front. A load is all-or-nothing: any problem refuses the whole set and
//! every problem found is reported with file, line and column.
//!
//! The layout of a rules directory is documented in `rules/README.md`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::visible::Lines;

use crate::engine;
pub use crate::engine::params::{ParamValue, Parameter, Template};
use crate::engine::reasons::{self, Reason};
use crate::profile::{Date, Stage};

/// The manifest's file name inside a rules directory.
pub const MANIFEST_FILE: &str = "manifest.yaml";

/// A rule's identifier: lowercase ASCII letters, digits and `_`, starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(String);

impl RuleId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut chars = text.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && text.len() <= 64 {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "regel-id {text:?} är ogiltigt: använd små bokstäver a–z, siffror och _ (högst 64 tecken), börja med en bokstav"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How serious a flag is. Its name (`info`, `warning`, `critical`) is serde's.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// The word people read (terminal, web pages, rule-test reports), shown beside any
    /// colour, never instead of it.
    pub fn label_sv(self) -> &'static str {
        match self {
            Self::Info => "Information",
            Self::Warning => "Varning",
            Self::Critical => "Kritisk",
        }
    }
}

/// A severity that is either the same at every stage or given per stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeveritySpec {
    Fixed(Severity),
    PerStage {
        before_gk: Severity,
        gk_closing: Severity,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeverityPerStage {
    before_gk: Severity,
    gk_closing: Severity,
}

impl<'de> Deserialize<'de> for SeveritySpec {
    // Written out rather than `#[serde(untagged)]`, so that a wrong value is reported
    // at its own line and column instead of at the start of the rule.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> serde::de::Visitor<'de> for SpecVisitor {
            type Value = SeveritySpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("info, warning or critical, or a map with before_gk and gk_closing")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SeveritySpec, E> {
                crate::names::parse_name::<Severity>(text)
                    .map(SeveritySpec::Fixed)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "okänd severity {text:?}: använd info, warning eller critical"
                        ))
                    })
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                map: M,
            ) -> Result<SeveritySpec, M::Error> {
                let per_stage = SeverityPerStage::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(SeveritySpec::PerStage {
                    before_gk: per_stage.before_gk,
                    gk_closing: per_stage.gk_closing,
                })
            }
        }
        deserializer.deserialize_any(SpecVisitor)
    }
}

impl SeveritySpec {
    pub fn for_stage(self, stage: Stage) -> Severity {
        match (self, stage) {
            (Self::Fixed(s), _) => s,
            (Self::PerStage { before_gk, .. }, Stage::BeforeGk) => before_gk,
            (Self::PerStage { gk_closing, .. }, Stage::GkClosing) => gk_closing,
        }
    }
}

/// What a rule rests on. Its name (`empirical`, `policy`, `legal`) is serde's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grounds {
    Empirical,
    Policy,
    Legal,
}

impl Grounds {
    /// The words people read.
    pub fn label_sv(self) -> &'static str {
        match self {
            Self::Empirical => "empiriskt stöd",
            Self::Policy => "metodstöd eller överenskommelse",
            Self::Legal => "rättsligt krav",
        }
    }
}

fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(item) => vec![item],
        OneOrMany::Many(items) => items,
    })
}

fn yes() -> bool {
    true
}

/// The manifest as written by policy staff.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
    /// Reason codes every rule accepts for "not relevant".
    #[serde(default)]
    common_reasons: Vec<Reason>,
    /// Parsed entry by entry, so one bad entry does not hide the problems of the others.
    rules: Vec<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestRule {
    id: RuleId,
    script: String,
    title: String,
    #[serde(default)]
    message: Option<String>,
    severity: SeveritySpec,
    #[serde(deserialize_with = "one_or_many")]
    grounds: Vec<Grounds>,
    rationale: String,
    #[serde(default, deserialize_with = "one_or_many")]
    sources: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    valid_from: Option<Date>,
    #[serde(default)]
    valid_to: Option<Date>,
    #[serde(default)]
    inputs: Option<Vec<String>>,
    #[serde(default)]
    how_to_clear: Option<String>,
    #[serde(default = "yes")]
    clearable: bool,
    /// The rule's own reason codes for "not relevant" (besides `common_reasons`).
    #[serde(default)]
    reasons: Vec<Reason>,
    /// Named values with the days they apply from, read in the script as `param.NAME`.
    #[serde(default)]
    parameters: Option<serde_yaml::Mapping>,
}

/// Everything about a rule except its compiled script.
#[derive(Clone, Debug)]
pub struct RuleMeta {
    pub id: RuleId,
    /// The script's file name, relative to the rules directory.
    pub script: String,
    /// The title as lists without a check date show it: each `${param.NAME}` with the
    /// value in force on the day the set was loaded (or its first value, when none is
    /// yet). A flag's title is [`RuleMeta::title_on`] its check date.
    pub title: String,
    /// The message used when the script flags without giving one, as `title`.
    pub default_message: Option<String>,
    /// The title and message as written, with their `${param.NAME}` placeholders.
    pub title_template: Template,
    pub message_template: Option<Template>,
    /// The rule's dated parameters (`param.NAME` in its script), in manifest order.
    pub parameters: Vec<Parameter>,
    pub severity: SeveritySpec,
    pub grounds: Vec<Grounds>,
    pub rationale: String,
    pub sources: Vec<String>,
    pub enabled: bool,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
    /// The profile fields the script reads (`gk.requested_on`), as the manifest
    /// declares them under `inputs`: the rule's documented use of personal data. The
    /// lint checks at load that the script reads no other field. `None` when the
    /// manifest does not declare them.
    pub inputs: Option<Vec<String>>,
    /// "Så försvinner flaggan": what makes the flag go away, in Swedish; for a rule
    /// that is not `clearable`, what the officer can do instead.
    pub how_to_clear: Option<String>,
    /// Whether a later change of the profile can clear the flag (`clearable: false`
    /// for a fact that stays, such as consent that came in late).
    pub clearable: bool,
    /// The rule's own reason codes for "not relevant"; the rule set's common ones apply
    /// as well ([`crate::engine::reasons::ReasonCatalog`]).
    pub reasons: Vec<Reason>,
}

impl RuleMeta {
    /// Whether the rule is in force on `date` (both ends inclusive).
    pub fn in_force_on(&self, date: Date) -> bool {
        self.valid_from.is_none_or(|from| from <= date) && self.valid_to.is_none_or(|to| date <= to)
    }

    /// The title of a flag from a check on `date`: each parameter's value on that day.
    pub fn title_on(&self, date: Date) -> Cow<'_, str> {
        if self.title_template.has_params() {
            Cow::Owned(
                self.title_template
                    .render(&self.parameters, |p| p.shown_on(date)),
            )
        } else {
            Cow::Borrowed(&self.title)
        }
    }

    /// The message of a flag from a check on `date` whose script gave none: the
    /// manifest's `message` on that day, or else the title.
    pub fn default_message_on(&self, date: Date) -> Cow<'_, str> {
        match (&self.message_template, &self.default_message) {
            (Some(template), _) if template.has_params() => {
                Cow::Owned(template.render(&self.parameters, |p| p.shown_on(date)))
            }
            (_, Some(message)) => Cow::Borrowed(message),
            _ => self.title_on(date),
        }
    }
}

/// One compiled rule.
pub struct Rule {
    pub meta: RuleMeta,
    pub(crate) ast: rhai::AST,
    /// The rule for the fast evaluator, when it uses only what that models.
    pub(crate) program: Option<engine::fast_path::Program>,
}

impl Rule {
    /// Whether the rule runs in the fast evaluator (otherwise always in Rhai).
    pub fn runs_fast(&self) -> bool {
        self.program.is_some()
    }
}

/// A source file of the rule set, kept so any stored flag can be traced to its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// A loaded, fully compiled rule set. Immutable once built; share it behind an `Arc`.
pub struct RuleSet {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    /// Reason codes every rule accepts for "not relevant".
    pub common_reasons: Vec<Reason>,
    /// SHA-256 over the manifest and every script, hex.
    pub content_hash: String,
    pub rules: Vec<Rule>,
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// The manifest first, then each script in manifest order.
    pub sources: Vec<SourceFile>,
    /// Scopes and resolution caches reused by [`RuleSet::evaluate`].
    pub(crate) eval_state: engine::EvalStatePool,
    /// The most variables a rule's fast program keeps, as loaded: an evaluation sizes
    /// its scratch space by it once. Only a size: should `rules` change, evaluating
    /// stays correct.
    pub(crate) max_program_slots: usize,
    /// Whether every rule that may run runs in the fast evaluator, as loaded
    /// ([`RuleSet::runs_fast_only`]).
    fast_only: bool,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("content_hash", &self.content_hash)
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// One problem found while loading rules or rule tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Path as given by the user (rules directory joined with the file name).
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// For a problem in a script: the script's line at [`Problem::line`], shown with a
    /// caret under the column.
    pub code: Option<Box<CodeLine>>,
    /// The failing rule test this problem is, when the test gate refused the set.
    pub test: Option<Box<FailedTest>>,
}

/// A rule test that failed, as the test gate reports it: which case, what it expected
/// and what the rule gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedTest {
    pub rule: String,
    pub name: String,
    pub expected: String,
    pub actual: String,
}

/// A line of a script, as a problem shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeLine {
    /// The line, a long one cut to the part around the column (marked `…`).
    pub text: String,
    /// The 1-based character column of the caret within `text`.
    pub caret: usize,
}

impl CodeLine {
    /// The text to print under [`CodeLine::text`]: as many spaces as each character
    /// before the caret takes on screen (two for a wide one such as `中` or an emoji,
    /// none for a combining mark; tabs kept), so the caret lines up, and a `^`.
    pub fn caret_line(&self) -> String {
        let mut line = String::new();
        for c in self.text.chars().take(self.caret.saturating_sub(1)) {
            if c == '\t' {
                line.push('\t');
            } else {
                let width = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                line.extend(std::iter::repeat_n(' ', width));
            }
        }
        line.push('^');
        line
    }
}

/// The longest part of a script line a problem shows.
const MAX_CODE_CHARS: usize = 120;

impl Problem {
    /// The problem with its file named within `dir` (as policy staff see the folder,
    /// and as a candidate's unpacked folder, gone by the time anyone reads it, named it),
    /// not by its absolute path.
    pub fn within(&self, dir: &Path) -> Self {
        let mut problem = self.clone();
        if let Ok(inside) = Path::new(&problem.file).strip_prefix(dir) {
            problem.file = inside.display().to_string();
        }
        problem
    }

    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.display().to_string(),
            line: None,
            column: None,
            message: message.into(),
            code: None,
            test: None,
        }
    }

    /// Keeps the line of `script` the problem is on, to show it with a caret. A long
    /// line is cut to the part around the column.
    pub(crate) fn with_code_from(mut self, script: &str) -> Self {
        let (Some(line), Some(column)) = (self.line, self.column) else {
            return self;
        };
        let Some(text) = line
            .checked_sub(1)
            .and_then(|index| script.lines().nth(index))
        else {
            return self;
        };
        // Control, format and other invisible characters (an escape sequence, a
        // bidirectional override inside a text) are shown as `�`: the line goes to a
        // terminal and a web page as it is.
        let chars: Vec<char> = text
            .trim_end()
            .chars()
            .map(|c| {
                if c != '\t' && crate::profile::CaseId::is_invisible(c) {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect();
        let column = column.max(1);
        if chars.len() <= MAX_CODE_CHARS {
            self.code = Some(Box::new(CodeLine {
                text: chars.into_iter().collect(),
                caret: column,
            }));
            return self;
        }
        // Cut so the column stays in view.
        let start = column
            .saturating_sub(MAX_CODE_CHARS / 2)
            .min(chars.len() - MAX_CODE_CHARS);
        let end = start + MAX_CODE_CHARS;
        let mut cut = String::new();
        if start > 0 {
            cut.push('…');
        }
        cut.extend(&chars[start..end]);
        if end < chars.len() {
            cut.push('…');
        }
        self.code = Some(Box::new(CodeLine {
            text: cut,
            caret: column - start + usize::from(start > 0),
        }));
        self
    }

    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    /// A problem from a YAML parse error, with its position when the parser gave one.
    pub fn from_yaml(file: &Path, err: &serde_yaml::Error) -> Self {
        let location = err.location();
        Self::new(file, describe_serde_message(&err.to_string())).at(
            location.as_ref().map(|l| l.line()),
            location.as_ref().map(|l| l.column()),
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// The parser messages end in "at line L column C"; the position is printed up front
/// instead.
fn strip_position_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// The longest name from a rule file an error message repeats.
const MAX_QUOTED_TOKEN: usize = 40;

/// A deserialization message from serde about a rule file, in Swedish, keeping the kind
/// of error and the names the schema knows but never a value from the file: a value can
/// be anything the file holds. Unknown field or variant names are the offending token
/// and are kept, cut to [`MAX_QUOTED_TOKEN`] characters.
pub fn describe_serde_message(message: &str) -> String {
    describe_serde_message_with(message, UnknownVariants::Quoted)
}

/// Whether a described serde message repeats the name of an unknown variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownVariants {
    /// Quoted, cut to [`MAX_QUOTED_TOKEN`] characters (rule files: the name is a typo).
    Quoted,
    /// Left out (configuration: the "variant" may be a secret pasted into a role).
    Hidden,
}

/// A serde path with each list index as people count: `cases[1].expect` is the second
/// case, `fall 2: expect`.
fn counted_from_one(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let Ok(index) = rest[open + 1..close].parse::<usize>() else {
            break;
        };
        let name = &rest[..open];
        let name = name.strip_prefix('.').unwrap_or(name);
        if !out.is_empty() {
            out.push_str(", ");
        }
        match name {
            "cases" => out.push_str(&format!("fall {}", index + 1)),
            _ => out.push_str(&format!("{name} nr {}", index + 1)),
        }
        rest = &rest[close + 1..];
    }
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    match (out.is_empty(), rest.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => out,
        (false, false) => format!("{out}, {rest}"),
    }
}

/// [`describe_serde_message`], with the name of an unknown variant kept or left out.
pub fn describe_serde_message_with(message: &str, variants: UnknownVariants) -> String {
    let message = strip_position_suffix(message);
    // A nested field's message starts with its path (`cases[0].expect.flagged: …`).
    if let Some((path, rest)) = message.split_once(": ")
        && !path.is_empty()
        && !path.contains(' ')
    {
        return format!(
            "{}: {}",
            counted_from_one(path),
            describe_serde_message_with(rest, variants)
        );
    }
    let (head, expected) = match message.rfind(", expected ") {
        Some(index) => (
            &message[..index],
            Some(expected_text(&message[index + 11..])),
        ),
        None => (message.as_str(), None),
    };
    let expected_suffix = expected
        .as_deref()
        .map(|e| format!(", väntade {e}"))
        .unwrap_or_default();
    if let Some(unexpected) = head.strip_prefix("invalid type: ") {
        return format!("ogiltig typ: {}{expected_suffix}", value_kind(unexpected));
    }
    if let Some(unexpected) = head.strip_prefix("invalid value: ") {
        return format!(
            "ogiltigt värde: {}{expected_suffix}",
            value_kind(unexpected)
        );
    }
    if let Some(length) = head.strip_prefix("invalid length ") {
        return format!("ogiltig längd {length}{expected_suffix}");
    }
    if let Some(name) = head.strip_prefix("unknown field ") {
        return format!("okänt fält {}{expected_suffix}", quoted_token(name));
    }
    if let Some(name) = head.strip_prefix("unknown variant ") {
        return match variants {
            UnknownVariants::Quoted => {
                format!("okänt värde {}{expected_suffix}", quoted_token(name))
            }
            UnknownVariants::Hidden => format!("okänt värde{expected_suffix}"),
        };
    }
    if let Some(name) = head.strip_prefix("missing field ") {
        return format!("fältet {} saknas", quoted_token(name));
    }
    if let Some(name) = head.strip_prefix("duplicate field ") {
        return format!("fältet {} står mer än en gång", quoted_token(name));
    }
    if head.starts_with("data did not match any variant of untagged enum") {
        return "ogiltigt värde här: det är varken ett värde eller en lista av värden av rätt slag"
            .to_owned();
    }
    // The YAML parser's messages name no value; the common ones in Swedish.
    if let Some(swedish) = yaml_parser_message(&message) {
        return swedish;
    }
    message
}

/// The YAML parser's most common messages in Swedish (a tab, an indentation that does
/// not line up, a `:` or `-` out of place); the position is given beside the message.
fn yaml_parser_message(message: &str) -> Option<String> {
    const KNOWN: [(&str, &str); 7] = [
        (
            "found a tab character",
            "en tabb i indraget: YAML dras in med mellanslag, aldrig med tabb",
        ),
        (
            "did not find expected key",
            "indraget stämmer inte: raden ligger inte i linje med fälten ovanför",
        ),
        (
            "mapping values are not allowed in this context",
            "ett `:` där det inte får stå: skriv texten inom citattecken, eller rätta indraget",
        ),
        (
            "did not find expected '-' indicator",
            "indraget stämmer inte: raden ligger inte i linje med listans `-` ovanför",
        ),
        (
            "found character that cannot start any token",
            "ett tecken som inte får inleda ett värde (som `@` eller `` ` ``): skriv värdet inom citattecken",
        ),
        ("did not find expected node content", "ett värde saknas här"),
        (
            "found unexpected end of stream",
            "filen tar slut mitt i ett värde: ett citattecken eller en hakparentes stängs inte",
        ),
    ];
    KNOWN
        .iter()
        .find(|(english, _)| message.contains(english))
        .map(|(_, swedish)| (*swedish).to_owned())
}

/// serde's `Unexpected` as a kind of value (`string "…"` → `text`).
fn value_kind(unexpected: &str) -> &'static str {
    let kind = unexpected
        .split(['`', '"'])
        .next()
        .unwrap_or(unexpected)
        .trim();
    match kind {
        "boolean" => "sant/falskt",
        "integer" => "heltal",
        "floating point" => "decimaltal",
        "character" | "string" | "borrowed string" => "text",
        "unit value" | "null" => "tomt värde",
        "sequence" => "lista",
        "map" => "mappning",
        _ => "värde",
    }
}

/// What serde expected, in Swedish where it names a kind; schema names are kept.
fn expected_text(expected: &str) -> String {
    match expected {
        "a boolean" => "sant/falskt".to_owned(),
        "a string" | "a borrowed string" => "text".to_owned(),
        "a sequence" => "en lista".to_owned(),
        "a map" => "en mappning".to_owned(),
        "a list of distinct values" => "en lista med olika värden".to_owned(),
        _ if expected.starts_with("struct ") => "en mappning (fält: värde)".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "ett heltal, 0 eller större".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "ett heltal".to_owned(),
        "f32" | "f64" => "ett tal".to_owned(),
        "socket address" => "en adress med port, som 127.0.0.1:8480".to_owned(),
        _ => expected
            .replace("one of ", "något av ")
            .replace("` or `", "` eller `"),
    }
}

/// A `token` from a serde message, cut to [`MAX_QUOTED_TOKEN`] characters.
fn quoted_token(token: &str) -> String {
    let inner = token.trim().trim_matches('`');
    if inner.chars().count() > MAX_QUOTED_TOKEN {
        let cut: String = inner.chars().take(MAX_QUOTED_TOKEN).collect();
        format!("`{cut}…`")
    } else {
        format!("`{inner}`")
    }
}

/// The deepest nesting a rule file may have, by indentation, `- ` and `[` or `{`. The YAML
/// parser's time grows with the square of the depth (300,000 `[` took 91 s) and its
/// memory with the depth, so depth is counted before it runs; a manifest needs 4 levels,
/// a rule test 6.
pub const MAX_YAML_DEPTH: usize = 64;

/// Where (line, column, from 1) `text` first nests deeper than [`MAX_YAML_DEPTH`], or
/// `None`. A line nests as deep as the indentations open above it (each deeper indentation
/// is a level, a shallower one closes the deeper ones) and the `- ` that start it (`- - x`
/// is a list in a list), plus the `[` and `{` still open. Every bracket counts, in quoted
/// text and comments too, and so does every indentation, in a block of text too: telling
/// those apart is the parser's work, and a scan that tried could be led to count too
/// few. Only a line indented less than the line the open brackets started on closes
/// them all, as YAML requires of a flow collection's lines. No real rule file comes
/// near 64.
pub fn yaml_too_deep(text: &str) -> Option<(usize, usize)> {
    let mut brackets = 0usize;
    // The indentation of the line the outermost open `[` or `{` is on.
    let mut opened_at: Option<usize> = None;
    let mut indentations: Vec<usize> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        let mut dashes = 0;
        if !rest.trim().is_empty() && !rest.starts_with('#') {
            // A line indented less than the one a flow collection opened on is outside it
            // (its lines must be indented more than its parent): a `{` in a quoted text
            // (`message_excludes: ["${"]`) then counts no further.
            if opened_at.is_some_and(|opened| indent < opened) {
                brackets = 0;
                opened_at = None;
            }
            while indentations.last().is_some_and(|&open| open >= indent) {
                indentations.pop();
            }
            indentations.push(indent);
            if brackets + indentations.len() > MAX_YAML_DEPTH {
                return Some((index + 1, indent + 1));
            }
            // `- - - x`: each dash opens a list inside the one before.
            let mut after = rest;
            while let Some(next) = after.strip_prefix('-')
                && (next.is_empty() || next.starts_with([' ', '\t']))
            {
                dashes += 1;
                if brackets + indentations.len() + dashes > MAX_YAML_DEPTH {
                    return Some((index + 1, line.len() - after.len() + 1));
                }
                after = next.trim_start_matches([' ', '\t']);
            }
        }
        let block = indentations.len() + dashes;
        for (at, c) in line.chars().enumerate() {
            match c {
                '[' | '{' => {
                    if brackets == 0 {
                        opened_at = Some(indent);
                    }
                    brackets += 1;
                    if brackets + block > MAX_YAML_DEPTH {
                        return Some((index + 1, at + 1));
                    }
                }
                ']' | '}' => brackets = brackets.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}

/// `text` of the rule file `path` as YAML, refused with its position when nested deeper
/// than [`MAX_YAML_DEPTH`].
pub fn parse_rule_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, Problem> {
    if let Some((line, column)) = yaml_too_deep(text) {
        return Err(Problem::new(
            path,
            format!("nästlad djupare än {MAX_YAML_DEPTH} nivåer (indrag, - och [ eller {{)"),
        )
        .at(Some(line), Some(column)));
    }
    count_yaml_values(text).map_err(|err| Problem::from_yaml(path, &err))?;
    serde_yaml::from_str(text).map_err(|err| Problem::from_yaml(path, &err))
}

/// The most values (scalars, lists and mappings, aliases expanded) a rule file may hold.
/// The default rules' largest file holds a few thousand; an alias repeats everything its
/// anchor holds, so a small file can expand without bound (a billion laughs stays within
/// the parser's own alias limit when each alias repeats a large anchor).
pub const MAX_YAML_VALUES: usize = 100_000;

/// The most bytes of text a rule file may hold with its aliases expanded: an alias to a
/// long text repeats the text (600 KB under 2,500 aliases took 1.8 GB).
pub const MAX_YAML_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// Walks `text` as YAML without building anything, counting values and their text with
/// aliases expanded, and stops at the first value past [`MAX_YAML_VALUES`] or the first
/// byte past [`MAX_YAML_TEXT_BYTES`].
pub(crate) fn count_yaml_values(text: &str) -> Result<(), serde_yaml::Error> {
    use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
    use std::cell::Cell;

    /// The values and the bytes of text still allowed.
    struct Count<'a>(&'a Cell<(usize, usize)>);

    impl Count<'_> {
        fn take<E: serde::de::Error>(&self) -> Result<(), E> {
            self.take_text(0)
        }

        fn take_text<E: serde::de::Error>(&self, bytes: usize) -> Result<(), E> {
            let (values, text) = self.0.get();
            let Some(values) = values.checked_sub(1) else {
                return Err(E::custom(format!(
                    "filen har fler än {MAX_YAML_VALUES} värden (alias inräknade)"
                )));
            };
            let Some(text) = text.checked_sub(bytes) else {
                return Err(E::custom(format!(
                    "filens text blir större än {} MiB med alias ersatta av det de står för",
                    MAX_YAML_TEXT_BYTES / (1024 * 1024)
                )));
            };
            self.0.set((values, text));
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for Count<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Count<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("YAML")
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
            self.take()
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
            self.take()
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
            self.take()
        }
        fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
            self.take()
        }
        fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
            self.take()
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
            self.take()
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<(), E> {
            self.take_text(text.len())
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
            self.take()
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
            self.take()
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
        fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            self.take()?;
            while seq.next_element_seed(Count(self.0))?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            self.take()?;
            while map.next_key_seed(Count(self.0))?.is_some() {
                map.next_value_seed(Count(self.0))?;
            }
            Ok(())
        }
        fn visit_enum<A: serde::de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            // A tagged value (`!tag x`): no rule file has one.
            Err(A::Error::custom(
                "taggade värden (!tagg) används inte i regelfiler",
            ))
        }
    }

    let left = Cell::new((MAX_YAML_VALUES, MAX_YAML_TEXT_BYTES));
    Count(&left).deserialize(serde_yaml::Deserializer::from_str(text))
}

/// The largest rule file read (manifest, script or rule test).
pub const MAX_RULE_FILE_BYTES: u64 = 1024 * 1024;

/// The largest rule script: the default rules' largest is 2.5 KB, and compiling and
/// linting a script take longer than in proportion to its size.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;

/// The most variables (`let`, `const`) a script may declare. Compiling and linting take
/// time that grows with the square of their number, and cannot be stopped mid-way: a
/// script of 4,400 took 0.16 s, so a set of 200 such scripts over half a minute. A rule
/// cannot use more than 200 at once anyway ([`crate::engine::Limits::max_variables`]).
pub const MAX_DECLARATIONS: usize = 1_000;

/// The most rules a rule set may have: every check runs each of them.
pub const MAX_RULES: usize = 200;

/// Why a rule file was not read. The reason names no content of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError(pub String);

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads the rule file at `relative` (plain names, such as `tests/tolk.yaml`) inside
/// the rules directory `dir`: the only way any rule file is read.
///
/// Only a regular file inside `dir` is read. A path leading outside, a symbolic link in
/// any component below `dir`, a FIFO, a socket or a device is refused before anything is
/// opened, so nothing of a refused file ever reaches an error message and a FIFO cannot
/// block; so is a file or folder every user may write (whoever writes the rules decides
/// what every check says). The file is opened without following links and without
/// blocking, and the opened file must be the one that was checked (same device and
/// inode), which closes the race with a file swapped in between.
pub fn read_rule_file(dir: &Path, relative: &Path) -> Result<String, RuleFileError> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    use std::path::Component;

    let refuse = |reason: &str| Err(RuleFileError(reason.to_owned()));
    // Whoever may write the rules decides what every check says and stores.
    const WRITABLE_BY_ALL: &str =
        "kan skrivas av alla användare; ta bort den rättigheten (chmod o-w)";
    let root = std::fs::metadata(dir).map_err(|err| io_reason(&err))?;
    if root.mode() & 0o002 != 0 {
        return Err(RuleFileError(format!(
            "ligger i en regelmapp som {WRITABLE_BY_ALL}"
        )));
    }
    let mut path = dir.to_path_buf();
    let mut checked = None;
    let mut components = relative.components().peekable();
    if components.peek().is_none() {
        return refuse("ingen fil angiven");
    }
    while let Some(component) = components.next() {
        let Component::Normal(name) = component else {
            return refuse("ligger utanför regelmappen; bara filer i regelmappen läses");
        };
        path.push(name);
        let meta = std::fs::symlink_metadata(&path).map_err(|err| io_reason(&err))?;
        if meta.file_type().is_symlink() {
            return refuse("är en symbolisk länk; bara vanliga filer i regelmappen läses");
        }
        if meta.mode() & 0o002 != 0 {
            return refuse(WRITABLE_BY_ALL);
        }
        if components.peek().is_some() {
            if !meta.is_dir() {
                return refuse("är inte en mapp");
            }
        } else if !meta.is_file() {
            return refuse("är inte en vanlig fil; bara vanliga filer i regelmappen läses");
        } else {
            checked = Some(meta);
        }
    }
    let Some(checked) = checked else {
        return refuse("är inte en vanlig fil");
    };
    if checked.len() > MAX_RULE_FILE_BYTES {
        return refuse("är större än 1 MiB");
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|err| io_reason(&err))?;
    let opened = file.metadata().map_err(|err| io_reason(&err))?;
    if !opened.is_file() || opened.dev() != checked.dev() || opened.ino() != checked.ino() {
        return refuse("byttes ut medan den lästes; försök igen");
    }
    let mut bytes = Vec::new();
    file.take(MAX_RULE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| io_reason(&err))?;
    if bytes.len() as u64 > MAX_RULE_FILE_BYTES {
        return refuse("är större än 1 MiB");
    }
    String::from_utf8(bytes).map_err(|_| RuleFileError("är inte UTF-8-text".to_owned()))
}

/// An I/O error as a reason in Swedish (the OS message names no file content).
fn io_reason(err: &std::io::Error) -> RuleFileError {
    use std::io::ErrorKind;
    RuleFileError(match err.kind() {
        ErrorKind::NotFound => "finns inte".to_owned(),
        ErrorKind::PermissionDenied => "får inte läsas (behörighet saknas)".to_owned(),
        _ if err.raw_os_error() == Some(libc::ELOOP) => {
            "är en symbolisk länk; bara vanliga filer i regelmappen läses".to_owned()
        }
        _ => format!("kan inte läsas ({err})"),
    })
}

/// A refused rule set: every problem found, in file order.
#[derive(Clone, Debug, thiserror::Error)]
#[error("regeluppsättningen kunde inte laddas ({} fel)", problems.len())]
pub struct LoadError {
    pub problems: Vec<Problem>,
}

/// Whether a manifest line is the `id:` line of rule `id` (`- id: x`, `id: "x"`, …).
fn is_id_line(line: &str, id: &str) -> bool {
    let line = line.trim().trim_start_matches('-').trim_start();
    line.strip_prefix("id:").map(|rest| {
        rest.split(" #")
            .next()
            .unwrap_or(rest)
            .trim()
            .trim_matches(['"', '\''])
    }) == Some(id)
}

/// The 1-based line and column of the value of `key:` within the manifest entry of rule
/// `id` (the entry's `id:` line when the key is not written). Used to place problems
/// that are found after parsing, such as a missing script file or a bad value.
fn key_position(lines: &[&str], id: &str, key: &str) -> Option<(usize, usize)> {
    let start = lines.iter().position(|l| is_id_line(l, id))?;
    let entry_end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with("- id:"))
        .map_or(lines.len(), |offset| start + 1 + offset);
    let prefix = format!("{key}:");
    let found = (start..entry_end).find_map(|i| {
        let line = lines[i];
        let key_at = line.find(&prefix)?;
        let before = &line[..key_at];
        before.chars().all(|c| c == ' ' || c == '-').then(|| {
            let after = &line[key_at + prefix.len()..];
            let value_offset = after.len() - after.trim_start().len();
            let column = if after.trim().is_empty() {
                key_at + 1
            } else {
                key_at + prefix.len() + value_offset + 1
            };
            (i + 1, column)
        })
    });
    Some(found.unwrap_or((start + 1, 1)))
}

/// Where the `nth` (from 0) `item` of the list under rule `id`'s `key` stands, as a
/// whole word (`[a, b]` or `- a` lines), else where the key stands.
fn item_position(
    lines: &[&str],
    id: &str,
    key: &str,
    item: &str,
    nth: usize,
) -> Option<(usize, usize)> {
    let (key_line, key_column) = key_position(lines, id, key)?;
    let in_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut seen = 0;
    for (index, line) in lines.iter().enumerate().skip(key_line - 1) {
        let line = without_comment(line);
        // The entry's next key (or the next entry) ends the list.
        let trimmed = line.trim_start();
        if index + 1 > key_line
            && !trimmed.starts_with('-')
            && !trimmed.is_empty()
            && trimmed.contains(':')
        {
            break;
        }
        let from = if index + 1 == key_line {
            key_column - 1
        } else {
            0
        };
        let mut search = from.min(line.len());
        while let Some(offset) = line.get(search..).and_then(|rest| rest.find(item)) {
            let at = search + offset;
            let end = at + item.len();
            let before = line[..at].chars().next_back();
            let after = line[end..].chars().next();
            if !before.is_some_and(in_word) && !after.is_some_and(in_word) {
                if seen == nth {
                    return Some((index + 1, line[..at].chars().count() + 1));
                }
                seen += 1;
            }
            search = end;
        }
    }
    Some((key_line, key_column))
}

/// A YAML line without its comment: from a `#` at the start or after a space, outside
/// quotes.
fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') if previous.is_whitespace() => return &line[..at],
            (None, '"' | '\'') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            _ => {}
        }
        previous = c;
    }
    line
}

fn key_line(lines: &[&str], id: &str, key: &str) -> Option<usize> {
    key_position(lines, id, key).map(|(line, _)| line)
}

impl RuleSet {
    /// Whether every rule that may run runs in the fast evaluator, whose programs have no
    /// loops: an evaluation then takes microseconds, where a rule in Rhai may take up to
    /// a check's time limit ([`crate::engine::Limits::max_check_time`]).
    pub fn runs_fast_only(&self) -> bool {
        self.fast_only
    }

    /// Loads, checks and compiles the rule set in `dir`. All or nothing.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest_text =
            read_rule_file(dir, Path::new(MANIFEST_FILE)).map_err(|err| LoadError {
                problems: vec![Problem::new(
                    &manifest_path,
                    format!("manifestet kan inte läsas: filen {err}"),
                )],
            })?;
        let manifest: Manifest =
            parse_rule_yaml(&manifest_path, &manifest_text).map_err(|problem| LoadError {
                problems: vec![problem],
            })?;

        let mut problems = Vec::new();
        let manifest_lines: Vec<&str> = manifest_text.lines().collect();
        for (field, text) in [("name", &manifest.name), ("version", &manifest.version)] {
            if let Some(why) = crate::visible::unreadable_text(text, crate::visible::Lines::One) {
                let line = manifest_lines
                    .iter()
                    .position(|l| l.starts_with(&format!("{field}:")))
                    .map(|i| i + 1);
                problems
                    .push(Problem::new(&manifest_path, format!("{field} {why}")).at(line, None));
            }
        }
        let mut seen_ids = HashSet::new();
        let mut hasher = Sha256::new();
        hash_file(&mut hasher, MANIFEST_FILE, &manifest_text);
        let mut sources = vec![SourceFile {
            name: MANIFEST_FILE.to_owned(),
            text: manifest_text.clone(),
        }];
        let mut rules = Vec::with_capacity(manifest.rules.len());
        if manifest.rules.is_empty() {
            problems.push(Problem::new(
                &manifest_path,
                "manifestet innehåller inga regler",
            ));
        }
        // Each rule is compiled and linted on its own, and every check runs them all.
        if manifest.rules.len() > MAX_RULES {
            return Err(LoadError {
                problems: vec![Problem::new(
                    &manifest_path,
                    format!(
                        "manifestet har {} regler; en regeluppsättning får ha högst {MAX_RULES}",
                        manifest.rules.len()
                    ),
                )],
            });
        }

        let common_line = manifest_lines
            .iter()
            .position(|l| l.starts_with("common_reasons:"))
            .map(|i| i + 1);
        for problem in reasons::problems(&manifest.common_reasons, None) {
            problems.push(
                Problem::new(&manifest_path, format!("common_reasons: {problem}"))
                    .at(common_line, None),
            );
        }
        for (index, raw) in manifest.rules.into_iter().enumerate() {
            let entry: ManifestRule = match serde_path_to_error::deserialize(raw.clone()) {
                Ok(entry) => entry,
                Err(err) => {
                    let key = err.path().iter().next().map(|segment| segment.to_string());
                    let id = raw.get("id").and_then(|v| v.as_str()).map(str::to_owned);
                    let position = id.as_deref().and_then(|id| {
                        key_position(&manifest_lines, id, key.as_deref().unwrap_or("id"))
                    });
                    let script_line = id
                        .as_deref()
                        .and_then(|id| key_line(&manifest_lines, id, "script"));
                    let who = id.unwrap_or_else(|| format!("regel nr {}", index + 1));
                    // The entry cannot be read, but its script can: its problems are
                    // listed too, so that one refusal names them all.
                    if let Some(script) = raw.get("script").and_then(|v| v.as_str()) {
                        read_and_lint_script(
                            dir,
                            &manifest_path,
                            &who,
                            script,
                            script_line,
                            &mut problems,
                        );
                    }
                    let field = err.path().to_string();
                    problems.push(
                        Problem::new(
                            &manifest_path,
                            format!(
                                "{who}: {field}: {}",
                                describe_serde_message(&err.inner().to_string())
                            ),
                        )
                        .at(position.map(|p| p.0), position.map(|p| p.1)),
                    );
                    continue;
                }
            };
            let line_of = |key: &str| key_line(&manifest_lines, entry.id.as_str(), key);
            if !seen_ids.insert(entry.id.clone()) {
                let last_entry = manifest_lines
                    .iter()
                    .rposition(|l| is_id_line(l, entry.id.as_str()))
                    .map(|i| i + 1);
                problems.push(
                    Problem::new(
                        &manifest_path,
                        format!("regel-id {} förekommer mer än en gång", entry.id),
                    )
                    .at(last_entry, None),
                );
            }
            if let (Some(from), Some(to)) = (entry.valid_from, entry.valid_to)
                && from > to
            {
                problems.push(
                    Problem::new(
                        &manifest_path,
                        format!(
                            "{}: valid_from ({from}) ligger efter valid_to ({to})",
                            entry.id
                        ),
                    )
                    .at(line_of("valid_from"), None),
                );
            }
            let texts = [
                ("title", Some(&entry.title), Lines::One),
                ("message", entry.message.as_ref(), Lines::Many),
                ("rationale", Some(&entry.rationale), Lines::Many),
                ("how_to_clear", entry.how_to_clear.as_ref(), Lines::Many),
            ]
            .into_iter()
            .chain(
                entry
                    .sources
                    .iter()
                    .map(|source| ("sources", Some(source), Lines::One)),
            );
            for (field, text, lines) in texts {
                if let Some(why) =
                    text.and_then(|text| crate::visible::unreadable_text(text, lines))
                {
                    problems.push(
                        Problem::new(&manifest_path, format!("{}: {field} {why}", entry.id))
                            .at(line_of(field), None),
                    );
                }
            }
            if !entry.clearable
                && entry
                    .how_to_clear
                    .as_deref()
                    .is_none_or(|text| text.trim().is_empty())
            {
                problems.push(
                    Problem::new(
                        &manifest_path,
                        format!(
                            "{}: en regel med clearable: false behöver how_to_clear som säger vad handläggaren kan göra i stället",
                            entry.id
                        ),
                    )
                    .at(line_of("clearable"), None),
                );
            }
            if entry.grounds.is_empty() {
                problems.push(
                    Problem::new(
                        &manifest_path,
                        format!("{}: grounds får inte vara tom", entry.id),
                    )
                    .at(line_of("grounds"), None),
                );
            }

            for problem in reasons::problems(&entry.reasons, Some(&manifest.common_reasons)) {
                problems.push(
                    Problem::new(&manifest_path, format!("{}: reasons: {problem}", entry.id))
                        .at(line_of("reasons"), None),
                );
            }
            let mut parameters = Vec::new();
            for (key, spec) in entry.parameters.iter().flatten() {
                let name = key.as_str().unwrap_or_default();
                let at = key_line(&manifest_lines, entry.id.as_str(), "parameters");
                let spec =
                    match serde_yaml::from_value::<engine::params::ParameterSpec>(spec.clone()) {
                        Ok(spec) => spec,
                        Err(err) => {
                            problems.push(
                                Problem::new(
                                    &manifest_path,
                                    format!(
                                        "{}: parametern {name}: {}",
                                        entry.id,
                                        describe_serde_message(&err.to_string())
                                    ),
                                )
                                .at(at, None),
                            );
                            continue;
                        }
                    };
                match engine::params::parameter(name, spec) {
                    Ok(parameter) => parameters.push(parameter),
                    Err(messages) => problems.extend(messages.into_iter().map(|message| {
                        Problem::new(&manifest_path, format!("{}: {message}", entry.id))
                            .at(at, None)
                    })),
                }
            }
            let today = Date::today();
            let template = |key: &str, text: &str| {
                Template::parse(text, &parameters).map_err(|message| {
                    Problem::new(&manifest_path, format!("{}: {key}: {message}", entry.id))
                        .at(line_of(key), None)
                })
            };
            // A parameter the manifest declares but could not read is its own problem: its
            // uses in the title, the message and the script are not reported besides.
            let unreadable: Vec<String> = entry
                .parameters
                .iter()
                .flatten()
                .filter_map(|(key, _)| key.as_str())
                .filter(|name| !parameters.iter().any(|p| p.name == *name))
                .map(|name| format!("param.{name}"))
                .collect();
            let about_unreadable = |message: &str| {
                unreadable.iter().any(|use_of| {
                    message.match_indices(use_of.as_str()).any(|(at, _)| {
                        !message[at + use_of.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    })
                })
            };
            let mut report = |problem: Problem| {
                if !about_unreadable(&problem.message) {
                    problems.push(problem);
                }
            };
            let title_template = match template("title", &entry.title) {
                Ok(t) => Some(t),
                Err(problem) => {
                    report(problem);
                    None
                }
            };
            let message_template = match entry.message.as_deref().map(|m| template("message", m)) {
                Some(Ok(t)) => Some(Some(t)),
                None => Some(None),
                Some(Err(problem)) => {
                    report(problem);
                    None
                }
            };

            // Only the title and the message are templates: elsewhere `${param.NAMN}` would
            // reach the officer as it is written.
            for (key, text) in [
                ("how_to_clear", entry.how_to_clear.as_deref()),
                ("rationale", Some(entry.rationale.as_str())),
            ] {
                if text.is_some_and(|text| text.contains("${")) {
                    problems.push(
                        Problem::new(
                            &manifest_path,
                            format!(
                                "{}: {key}: `${{…}}` fungerar bara i title och message; skriv värdet här, eller hänvisa till titeln",
                                entry.id
                            ),
                        )
                        .at(line_of(key), None),
                    );
                }
            }

            let script_path = dir.join(&entry.script);
            let before_script = problems.len();
            let Some((script_text, ast, findings)) = read_and_lint_script(
                dir,
                &manifest_path,
                entry.id.as_str(),
                &entry.script,
                line_of("script"),
                &mut problems,
            ) else {
                continue;
            };
            hash_file(&mut hasher, &entry.script, &script_text);
            // A misspelt field is its own problem: the inputs it would leave unread are
            // compared once the script reads what it means to.
            let script_clean = problems.len() == before_script;
            if let Some(inputs) = &entry.inputs
                && script_clean
            {
                problems.extend(check_inputs(
                    &entry.id,
                    inputs,
                    &findings.reads,
                    (&manifest_path, &manifest_lines),
                    (&script_path, &script_text),
                ));
            }
            sources.push(SourceFile {
                name: entry.script.clone(),
                text: script_text,
            });
            let uses = engine::params::check_uses(&ast, &parameters);
            let no_parameters_read = parameters.is_empty() && !unreadable.is_empty();
            // "no parameters" is untrue of a rule whose declared ones could not be read.
            let said_already = |message: &str| {
                about_unreadable(message)
                    || (no_parameters_read && message.contains("inga parametrar"))
            };
            let uses_reported = uses.iter().filter(|(message, ..)| !said_already(message));
            for (message, line, column) in uses_reported {
                problems.push(
                    Problem::new(&script_path, format!("{}: {message}", entry.id))
                        .at(*line, *column),
                );
            }
            let (Some(title_template), Some(message_template)) = (title_template, message_template)
            else {
                continue;
            };
            if !uses.is_empty() {
                continue;
            }
            let shown = |template: &Template| template.render(&parameters, |p| p.shown_on(today));
            let param_names: Vec<&str> = parameters.iter().map(|p| p.name.as_str()).collect();
            let program = engine::fast_path::translate(&ast, &param_names);
            rules.push(Rule {
                meta: RuleMeta {
                    id: entry.id,
                    script: entry.script,
                    title: shown(&title_template),
                    default_message: message_template.as_ref().map(shown),
                    title_template,
                    message_template,
                    parameters,
                    severity: entry.severity,
                    grounds: entry.grounds,
                    rationale: entry.rationale,
                    sources: entry.sources,
                    enabled: entry.enabled,
                    valid_from: entry.valid_from,
                    valid_to: entry.valid_to,
                    inputs: entry.inputs,
                    how_to_clear: entry.how_to_clear,
                    clearable: entry.clearable,
                    reasons: entry.reasons,
                },
                program,
                ast,
            });
        }

        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        // Each file was read on its own: a folder swapped meanwhile (a link to it moved
        // to a new version, an editor saving several files) could have given a set
        // nobody wrote, recorded under the new version. Read again, every file must be
        // what was loaded.
        if let Some(changed) = changed_since_read(dir, &sources) {
            return Err(LoadError {
                problems: vec![Problem::new(
                    &dir.join(&changed.name),
                    "ändrades medan reglerna lästes (filen eller hela regelmappen byttes ut); inget laddades, försök igen",
                )],
            });
        }
        Ok(Self {
            name: manifest.name,
            version: manifest.version,
            description: manifest.description,
            common_reasons: manifest.common_reasons,
            content_hash: hex::encode(hasher.finalize()),
            max_program_slots: rules
                .iter()
                .filter_map(|rule| rule.program.as_ref().map(super::fast_path::Program::slots))
                .max()
                .unwrap_or(0),
            fast_only: rules
                .iter()
                .all(|rule| rule.runs_fast() || !rule.meta.enabled),
            rules,
            dir: dir.to_path_buf(),
            sources,
            eval_state: engine::EvalStatePool::default(),
        })
    }

    /// `version+hash12`, the label shown to people.
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.name, self.version, self.short_hash())
    }

    pub fn short_hash(&self) -> &str {
        self.content_hash.get(..12).unwrap_or(&self.content_hash)
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.meta.id.as_str() == id)
    }
}

/// The first of `sources` (read from `dir`) that reads otherwise now, or no longer reads.
fn changed_since_read<'s>(dir: &Path, sources: &'s [SourceFile]) -> Option<&'s SourceFile> {
    sources.iter().find(|source| {
        read_rule_file(dir, Path::new(&source.name)).ok().as_deref() != Some(source.text.as_str())
    })
}

/// The script `name` of the rule `who`, read from `dir`, compiled and linted: its text,
/// program and findings, with every problem found pushed to `problems` (`line` is the
/// manifest's line naming the script); `None` when it cannot be compiled.
fn read_and_lint_script(
    dir: &Path,
    manifest_path: &Path,
    who: &str,
    name: &str,
    line: Option<usize>,
    problems: &mut Vec<Problem>,
) -> Option<(String, rhai::AST, engine::lint::Findings)> {
    let script_path = dir.join(name);
    if !is_plain_file_name(name) {
        problems.push(
            Problem::new(
                manifest_path,
                format!(
                    "{who}: script {name:?} måste vara ett filnamn i regelmappen som slutar på .rhai"
                ),
            )
            .at(line, None),
        );
        return None;
    }
    let script_text = match read_rule_file(dir, Path::new(name)) {
        // Compiling and linting take longer than in proportion to a script's size.
        Ok(text) if text.len() > MAX_SCRIPT_BYTES => {
            problems.push(
                Problem::new(
                    manifest_path,
                    format!(
                        "{who}: script {name} är större än {} KiB; en regel får vara högst så stor",
                        MAX_SCRIPT_BYTES / 1024
                    ),
                )
                .at(line, None),
            );
            return None;
        }
        Ok(text) => text,
        Err(err) => {
            problems.push(
                Problem::new(manifest_path, format!("{who}: script {name} {err}")).at(line, None),
            );
            return None;
        }
    };
    if engine::syntax::declarations(&script_text) > MAX_DECLARATIONS {
        problems.push(
            Problem::new(
                manifest_path,
                format!(
                    "{who}: script {name} deklarerar fler än {MAX_DECLARATIONS} variabler (let och const); en regel får deklarera högst så många"
                ),
            )
            .at(line, None),
        );
        return None;
    }
    let ast = match engine::compile(&script_text) {
        Ok(ast) => ast,
        Err(err) => {
            problems.extend(
                engine::syntax::describe(&err, &script_text)
                    .into_iter()
                    .map(|p| script_problem(&script_path, &script_text, p)),
            );
            return None;
        }
    };
    let mut findings = engine::lint::lint(&ast);
    problems.extend(
        std::mem::take(&mut findings.problems)
            .into_iter()
            .map(|p| script_problem(&script_path, &script_text, p)),
    );
    Some((script_text, ast, findings))
}

/// A problem the syntax check or the lint found in a script, with its code line.
fn script_problem(path: &Path, script: &str, found: engine::syntax::ScriptProblem) -> Problem {
    Problem::new(path, found.message)
        .at(found.line, found.column)
        .with_code_from(script)
}

/// Compares a rule's declared `inputs` with the fields its script reads: each declared
/// input must be a profile field and be read, and each field read must be declared.
fn check_inputs(
    id: &RuleId,
    inputs: &[String],
    reads: &std::collections::BTreeMap<String, (Option<usize>, Option<usize>)>,
    (manifest_path, manifest_lines): (&Path, &[&str]),
    (script_path, script): (&Path, &str),
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let fields: Vec<String> = engine::value::input_paths().collect();
    // Each problem at its own item: the how-manieth time that input is listed.
    let in_manifest = |message: String, input: &str, nth: usize| {
        let at = item_position(manifest_lines, id.as_str(), "inputs", input, nth);
        Problem::new(manifest_path, message).at(at.map(|a| a.0), at.map(|a| a.1))
    };
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for input in inputs {
        let nth = *seen
            .entry(input.as_str())
            .and_modify(|n| *n += 1)
            .or_insert(0);
        if nth > 0 {
            problems.push(in_manifest(
                format!("{id}: inputs: `{input}` står mer än en gång"),
                input,
                nth,
            ));
        } else if !fields.contains(input) {
            let suggestion = engine::lint::suggest(input, fields.iter().map(String::as_str))
                .map(|s| format!("; menade du `{s}`?"))
                .unwrap_or_default();
            problems.push(in_manifest(
                format!(
                    "{id}: inputs: `{}` är inget fält i profilen{suggestion} (fälten står i regelmappens README.md, avsnitt 4)",
                    truncate_token(input)
                ),
                input,
                0,
            ));
        } else if !reads.contains_key(input) {
            problems.push(in_manifest(
                format!(
                    "{id}: inputs: `{input}` står under inputs, men skriptet läser det aldrig; ta bort det"
                ),
                input,
                0,
            ));
        }
    }
    for (path, (line, column)) in reads {
        if !inputs.contains(path) {
            problems.push(
                Problem::new(
                    script_path,
                    format!(
                        "skriptet läser `{path}`, som inte står under inputs för {id} i manifestet; lägg till det där (inputs är regelns redovisade användning av personuppgifter)"
                    ),
                )
                .at(*line, *column)
                .with_code_from(script),
            );
        }
    }
    problems
}

/// A name from a rule file for a message, cut to [`MAX_QUOTED_TOKEN`] characters.
fn truncate_token(text: &str) -> String {
    if text.chars().count() > MAX_QUOTED_TOKEN {
        let cut: String = text.chars().take(MAX_QUOTED_TOKEN).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

fn is_plain_file_name(name: &str) -> bool {
    let path = Path::new(name);
    path.components().count() == 1
        && path.extension().is_some_and(|e| e == "rhai")
        && !name.starts_with('.')
}

fn hash_file(hasher: &mut Sha256, name: &str, text: &str) {
    // Length-prefixed so that moving bytes between name and text changes the hash.
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update((text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write test file");
    }

    const MANIFEST: &str = "name: t\nversion: '1'\nrules:\n  - id: a\n    script: a.rhai\n    title: A\n    severity: warning\n    grounds: policy\n    rationale: r\n";

    /// The caret stood two or three columns off under a line with emoji, CJK or a
    /// letter and a combining mark before it.
    #[test]
    fn the_caret_lines_up_under_wide_and_combining_characters() {
        for (text, caret, expected) in [
            ("let x = 1;", 5, "    ^"),
            ("\"中文\" + y", 6, "       ^"),
            ("\"🙂\" + y", 5, "     ^"),
            ("\"a\u{308}\" + y", 6, "    ^"),
            ("\tx + y", 3, "\t ^"),
        ] {
            let code = CodeLine {
                text: text.to_owned(),
                caret,
            };
            assert_eq!(code.caret_line(), expected, "{text}");
        }
    }

    /// A rules folder swapped while it was read, file by file, went live as a set
    /// nobody wrote (one version's manifest with another's scripts), and the real set of
    /// that version was refused for good. The files read are read again at the end.
    #[test]
    fn a_file_that_reads_otherwise_after_loading_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), MANIFEST_FILE, MANIFEST);
        write(dir.path(), "a.rhai", "true");
        let set = RuleSet::load(dir.path()).expect("loads");
        assert!(changed_since_read(dir.path(), &set.sources).is_none());
        write(dir.path(), "a.rhai", "false");
        let changed = changed_since_read(dir.path(), &set.sources).expect("changed");
        assert_eq!(changed.name, "a.rhai");
        std::fs::remove_file(dir.path().join("a.rhai")).expect("remove");
        assert!(changed_since_read(dir.path(), &set.sources).is_some());
    }

    #[test]
    fn loads_and_hashes() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), MANIFEST_FILE, MANIFEST);
        write(dir.path(), "a.rhai", "true");
        let set = RuleSet::load(dir.path()).expect("loads");
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.content_hash.len(), 64);
        let first = set.content_hash.clone();
        write(dir.path(), "a.rhai", "false");
        let set = RuleSet::load(dir.path()).expect("loads");
        assert_ne!(
            set.content_hash, first,
            "a script change changes the version"
        );
    }

    #[test]
    fn yaml_nested_deeper_than_the_parser_allows_is_refused_before_it_is_parsed() {
        // 300,000 `[` took the parser 91 s (its time grows with the square of the depth)
        // on the thread that runs audits; a rule test file did the same on each view of
        // the rules page.
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = format!("name: t\nversion: '1'\nrules: {}\n", "[".repeat(300_000));
        write(dir.path(), MANIFEST_FILE, &deep);
        let refused = RuleSet::load(dir.path()).expect_err("too deep");
        assert_eq!(refused.problems.len(), 1, "{refused:?}");
        let problem = &refused.problems[0];
        assert!(problem.message.contains("djupare än"), "{problem}");
        // The mapping `rules:` is in is the first level.
        assert_eq!(
            (problem.line, problem.column),
            (Some(3), Some(7 + MAX_YAML_DEPTH))
        );
        assert_eq!(yaml_too_deep("a: [[1], {b: [2]}]\n"), None);
        // Quoted or not: a quote inside a plain value (`a: it's`) must not hide the rest.
        let deep = "[".repeat(MAX_YAML_DEPTH + 1);
        for text in [
            format!("a: \"{deep}\"\n"),
            format!("a: it's\nb: {deep}\n"),
            format!("a: 1 #\u{a0}x\nb: {deep}\n"),
        ] {
            assert!(yaml_too_deep(&text).is_some(), "{text}");
        }
        let quoted = deep;
        // `a:`, its indented value and the `- ` are three levels before the brackets.
        assert_eq!(
            yaml_too_deep(&format!("a:\n  - {quoted}")),
            Some((2, 5 + MAX_YAML_DEPTH - 3))
        );
        // Nesting without brackets: by indentation, and by `- - -` on one line (500,000
        // levels held the parser 0.73 s and 290 MB).
        let indented: String = (0..=MAX_YAML_DEPTH)
            .map(|level| format!("{}a{level}:\n", " ".repeat(level)))
            .collect();
        assert_eq!(
            yaml_too_deep(&indented),
            Some((MAX_YAML_DEPTH + 1, MAX_YAML_DEPTH + 1))
        );
        let dashes = format!("a:\n{}x\n", "- ".repeat(MAX_YAML_DEPTH));
        assert_eq!(
            yaml_too_deep(&dashes),
            Some((2, 2 * (MAX_YAML_DEPTH - 1) + 1))
        );
        // Shallower lines close the deeper ones; comments and blank lines open nothing.
        let wave: String = (0..200)
            .map(|n| format!("{}k{n}: 1\n   # x\n\n", " ".repeat(n % 8)))
            .collect();
        assert_eq!(yaml_too_deep(&wave), None);
        assert_eq!(yaml_too_deep("- a\n- - b\n  - c: [1, {d: e}]\n"), None);
        // A `{` in quoted text, case after case, is closed by the next case's line.
        let cases: String = (0..200)
            .map(|n| {
                format!("  - name: fall {n}\n    expect:\n      message_excludes: [\"${{\"]\n")
            })
            .collect();
        assert_eq!(yaml_too_deep(&format!("rule: a\ncases:\n{cases}")), None);
        // At the top level, a flow collection's lines may start at column 1: still counted.
        let top = "[\n".repeat(MAX_YAML_DEPTH + 1);
        assert!(yaml_too_deep(&top).is_some());
        let decreasing: String = (0..=MAX_YAML_DEPTH)
            .map(|n| format!("{}[\n", " ".repeat(MAX_YAML_DEPTH + 1 - n)))
            .collect();
        assert!(yaml_too_deep(&format!("a:{decreasing}")).is_some());
    }

    #[test]
    fn yaml_that_expands_to_more_values_than_a_rule_file_holds_is_refused_early() {
        // One anchor of 1,000 numbers under 330,000 aliases, in under 1 MiB, made the
        // parser build 10.7 GB and ended the service on a reload.
        let numbers: Vec<String> = (0..1000).map(|n| n.to_string()).collect();
        let aliases = vec!["*a"; 2_000].join(",");
        let text = format!("l0: &a [{}]\nl1: [{aliases}]\n", numbers.join(","));
        let problem = parse_rule_yaml::<serde_json::Value>(Path::new("t.yaml"), &text)
            .expect_err("too many values");
        assert!(problem.message.contains("värden"), "{problem}");
        // An alias to a long text repeats the text.
        let long = "x".repeat(600_000);
        let text = format!("a: &a {long}\nb: [{}]\n", ["*a"; 10].join(","));
        let problem = parse_rule_yaml::<serde_json::Value>(Path::new("t.yaml"), &text)
            .expect_err("too much text");
        assert!(problem.message.contains("MiB"), "{problem}");
        // A file of ordinary size reads.
        let ordinary = format!("l0: &a [{}]\nl1: [*a, *a]\n", numbers.join(","));
        parse_rule_yaml::<serde_json::Value>(Path::new("t.yaml"), &ordinary).expect("reads");
    }

    #[test]
    fn texts_people_read_are_visible_and_not_empty() {
        // A version with a zero-width space read as the real one beside it; a title with a
        // right-to-left override read backwards on the officers' pages.
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.rhai", "true");
        for (manifest, says) in [
            (
                MANIFEST.replace("version: '1'", "version: \"1\u{200b}\""),
                "version innehåller",
            ),
            (
                MANIFEST.replace("name: t", "name: ''"),
                "name måste innehålla",
            ),
            (
                MANIFEST.replace("version: '1'", "version: \"1\u{a0}\""),
                "version innehåller",
            ),
            (
                MANIFEST.replace("version: '1'", "version: \"1\\n2\""),
                "version innehåller",
            ),
            (
                MANIFEST.replace("title: A", "title: \"A\u{202e}B\""),
                "a: title innehåller",
            ),
            (
                MANIFEST.replace("title: A", "title: ' '"),
                "a: title måste innehålla",
            ),
            (
                MANIFEST.replace("title: A", "title: \"\u{2800}\u{3164}\""),
                "a: title",
            ),
            (
                MANIFEST.replace("rationale: r", "rationale: r\n    sources: [' ']"),
                "a: sources måste innehålla",
            ),
            (
                MANIFEST.replace(
                    "rules:",
                    "common_reasons:\n  - {code: annat, label: \"annat\u{202e}\"}\nrules:",
                ),
                "label innehåller",
            ),
            (
                MANIFEST.replace(
                    "rationale: r\n",
                    "rationale: r\n    parameters:\n      txt:\n        description: d\n        values:\n          - { from: 2023-01-01, value: \"x\u{202e}\" }\n",
                ),
                "bara har tecken som syns",
            ),
            (
                MANIFEST.replace("rationale: r", "rationale: \"r\u{2066}\""),
                "a: rationale innehåller",
            ),
        ] {
            write(dir.path(), MANIFEST_FILE, &manifest);
            let refused = RuleSet::load(dir.path()).expect_err(says);
            assert!(
                refused.problems.iter().any(|p| p.message.contains(says)),
                "{says}: {refused:?}"
            );
        }
        write(
            dir.path(),
            MANIFEST_FILE,
            &MANIFEST.replace("rationale: r", "rationale: \"rad ett\\nrad två\""),
        );
        RuleSet::load(dir.path()).expect("line breaks are text");
    }

    #[test]
    fn scripts_over_their_caps_and_a_set_of_too_many_rules_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), MANIFEST_FILE, MANIFEST);
        let long = format!(
            "{}true",
            "// en kommentar som gör skriptet långt\n".repeat(2000)
        );
        assert!(long.len() > MAX_SCRIPT_BYTES);
        write(dir.path(), "a.rhai", &long);
        let refused = RuleSet::load(dir.path()).expect_err("too large");
        assert!(
            refused.problems[0]
                .message
                .contains("a: script a.rhai är större än 64 KiB"),
            "{refused:?}"
        );

        let declaring = |n: usize| format!("{}true", "let z = 1;\n".repeat(n));
        write(dir.path(), "a.rhai", &declaring(MAX_DECLARATIONS + 1));
        let refused = RuleSet::load(dir.path()).expect_err("too many variables");
        assert!(
            refused.problems[0]
                .message
                .contains("a: script a.rhai deklarerar fler än 1000 variabler"),
            "{refused:?}"
        );
        write(dir.path(), "a.rhai", &declaring(MAX_DECLARATIONS));
        RuleSet::load(dir.path()).expect("as many as allowed");

        write(dir.path(), "a.rhai", "true");
        let mut manifest = "name: t\nversion: '1'\nrules:\n".to_owned();
        for i in 0..=MAX_RULES {
            manifest += &format!(
                "  - id: r{i}\n    script: a.rhai\n    title: A\n    severity: warning\n    grounds: policy\n    rationale: r\n"
            );
        }
        write(dir.path(), MANIFEST_FILE, &manifest);
        let refused = RuleSet::load(dir.path()).expect_err("too many");
        assert!(
            refused.problems[0].message.contains("högst 200"),
            "{refused:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = format!(
            "{MANIFEST}  - id: b\n    script: b.rhai\n    title: B\n    severity: info\n    grounds: policy\n    rationale: r\n  - id: c\n    script: missing.rhai\n    title: C\n    severity: info\n    grounds: legal\n    rationale: r\n"
        );
        write(dir.path(), MANIFEST_FILE, &manifest);
        write(dir.path(), "a.rhai", "let x = ;");
        write(dir.path(), "b.rhai", "true\n  (((");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert_eq!(err.problems.len(), 3, "{:#?}", err.problems);
        assert!(err.problems[0].file.ends_with("a.rhai"));
        assert_eq!(err.problems[0].line, Some(1));
        assert!(err.problems[1].file.ends_with("b.rhai"));
        assert_eq!(err.problems[1].line, Some(2));
        assert!(err.problems[2].message.contains("missing.rhai"));
        assert_eq!(err.problems[2].line, Some(17));
    }

    /// `${param.max_dagar}` in how_to_clear reached the officer as it was written.
    #[test]
    fn a_placeholder_outside_the_title_and_the_message_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            MANIFEST_FILE,
            &format!("{MANIFEST}    how_to_clear: Boka inom ${{param.max_dagar}} dagar.\n"),
        );
        write(dir.path(), "a.rhai", "true");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert_eq!(err.problems.len(), 1, "{:#?}", err.problems);
        assert!(
            err.problems[0]
                .message
                .contains("how_to_clear: `${…}` fungerar bara i title och message"),
            "{}",
            err.problems[0]
        );
        assert_eq!(err.problems[0].line, Some(10));
    }

    #[test]
    fn manifest_value_error_has_its_line_and_other_problems_still_show() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = format!(
            "{}  - id: b\n    script: b.rhai\n    title: B\n    severity: info\n    grounds: policy\n    rationale: r\n",
            MANIFEST.replace("warning", "severe")
        );
        write(dir.path(), MANIFEST_FILE, &manifest);
        // The entry that cannot be read still has its script checked.
        write(
            dir.path(),
            "a.rhai",
            "days_betwen(profile.checked_on, profile.checked_on) > 1",
        );
        write(dir.path(), "b.rhai", "let = ;");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert_eq!(err.problems.len(), 3, "{:#?}", err.problems);
        assert!(
            err.problems[0].file.ends_with("a.rhai"),
            "{}",
            err.problems[0]
        );
        assert!(
            err.problems[0]
                .message
                .contains("okänd funktion `days_betwen`"),
            "{}",
            err.problems[0]
        );
        assert_eq!(err.problems[1].line, Some(7), "{}", err.problems[1]);
        assert!(
            err.problems[1].message.contains("severity"),
            "{}",
            err.problems[1]
        );
        assert!(err.problems[2].file.ends_with("b.rhai"));
    }

    #[test]
    fn manifest_syntax_error_has_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), MANIFEST_FILE, "name: t\nversion: [1\n");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert_eq!(err.problems.len(), 1);
        assert!(
            err.problems[0].line.is_some() && err.problems[0].column.is_some(),
            "{}",
            err.problems[0]
        );
    }

    #[test]
    fn duplicate_ids_and_path_escapes_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = format!(
            "{MANIFEST}  - id: a\n    script: ../a.rhai\n    title: A2\n    severity: info\n    grounds: policy\n    rationale: r\n"
        );
        write(dir.path(), MANIFEST_FILE, &manifest);
        write(dir.path(), "a.rhai", "true");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        let text: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|p| p.contains(":10: regel-id a förekommer")),
            "{text:#?}"
        );
        assert!(text.iter().any(|p| p.contains("../a.rhai")), "{text:#?}");
    }

    const PARAM_MANIFEST: &str = "name: t\nversion: '1'\nrules:\n  - id: a\n    script: a.rhai\n    title: Mer än ${param.max_dagar} dagar\n    message: Gränsen är ${param.max_dagar} dagar.\n    severity: warning\n    grounds: policy\n    rationale: r\n    parameters:\n      max_dagar:\n        description: d\n        values:\n          - { from: 2023-01-01, value: 21 }\n          - { from: 2025-01-01, value: 14 }\n";

    fn profile_on(day: &str, requested: &str) -> std::sync::Arc<crate::profile::Profile> {
        std::sync::Arc::new(
            crate::profile::Profile::from_json(&format!(
                r#"{{"case_id":"X","checked_on":"{day}","gk":{{"requested_on":"{requested}"}}}}"#
            ))
            .expect("profile"),
        )
    }

    /// One mistake, one problem: a parameter value of the wrong kind also reported every
    /// `param.max_dagar` as used "without parameters", and a misspelt field also advised
    /// removing the field it meant from `inputs`.
    #[test]
    fn a_mistake_is_not_reported_again_as_its_consequences() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            MANIFEST_FILE,
            &PARAM_MANIFEST.replace("value: 14", "value: 14.5"),
        );
        write(
            dir.path(),
            "a.rhai",
            "days_between(profile.gk.requested_on, profile.checked_on) > param.max_dagar",
        );
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert_eq!(err.problems.len(), 1, "{:#?}", err.problems);
        assert!(
            err.problems[0].message.contains("decimaltal"),
            "{}",
            err.problems[0]
        );

        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            MANIFEST_FILE,
            &format!("{MANIFEST}    inputs: [gk.requested_on, checked_on]\n"),
        );
        write(
            dir.path(),
            "a.rhai",
            "days_between(profile.gk.requested_onn, profile.checked_on) > 3",
        );
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert_eq!(err.problems.len(), 1, "{:#?}", err.problems);
        assert!(
            err.problems[0].message.contains("menade du `requested_on`"),
            "{}",
            err.problems[0]
        );
    }

    /// `param.NAME` reads the value in force on `checked_on`, the same in the fast
    /// evaluator and in Rhai (a script with its own function runs in Rhai alone), and
    /// titles and messages show the value of the check's day.
    #[test]
    fn parameters_take_the_value_of_the_checks_day_in_both_evaluators() {
        for script in [
            "days_between(profile.gk.requested_on, profile.checked_on) > param.max_dagar",
            "fn over(d, m) { d > m } over(days_between(profile.gk.requested_on, profile.checked_on), param[\"max_dagar\"])",
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            write(dir.path(), MANIFEST_FILE, PARAM_MANIFEST);
            write(dir.path(), "a.rhai", script);
            let set = RuleSet::load(dir.path()).expect("loads");
            let fast = !script.starts_with("fn");
            assert_eq!(set.rules[0].runs_fast(), fast, "{script}");
            // 15 days: over 14 (from 2025) but not over 21 (before).
            for (day, requested, flagged) in [
                ("2024-12-31", "2024-12-16", false),
                ("2025-01-01", "2024-12-17", true),
                ("2024-12-31", "2024-12-09", true),
            ] {
                let profile = profile_on(day, requested);
                for evaluation in [set.evaluate(&profile), set.evaluate_in_rhai(&profile)] {
                    assert_eq!(
                        matches!(evaluation.outcomes[0], engine::RuleOutcome::Flagged { .. }),
                        flagged,
                        "{script} on {day}: {:?}",
                        evaluation.outcomes[0]
                    );
                }
            }
            let meta = &set.rules[0].meta;
            let day = |d: &str| Date::parse(d).expect("date");
            assert_eq!(meta.title_on(day("2024-06-01")), "Mer än 21 dagar");
            assert_eq!(meta.title_on(day("2025-06-01")), "Mer än 14 dagar");
            assert_eq!(
                meta.default_message_on(day("2025-06-01")),
                "Gränsen är 14 dagar."
            );
            // Before the first value: the rule fails, it never reads as "no flag".
            let early = set.evaluate(&profile_on("2022-06-01", "2022-05-01"));
            assert!(
                matches!(&early.outcomes[0], engine::RuleOutcome::Failed(f) if f.message.contains("max_dagar") && f.message.contains("2023-01-01")),
                "{:?}",
                early.outcomes[0]
            );
        }
    }

    #[test]
    fn unknown_parameters_are_refused_at_load_with_their_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), MANIFEST_FILE, PARAM_MANIFEST);
        write(dir.path(), "a.rhai", "let x = 1;\nparam.max_dagr > x");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert_eq!(err.problems.len(), 1, "{:#?}", err.problems);
        assert_eq!(err.problems[0].line, Some(2), "{}", err.problems[0]);
        assert!(
            err.problems[0].message.contains("max_dagr"),
            "{}",
            err.problems[0]
        );

        // A rule without parameters may not use `param`.
        write(dir.path(), MANIFEST_FILE, MANIFEST);
        write(dir.path(), "a.rhai", "param.max_dagar > 1");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert!(
            err.problems[0].message.contains("inga parametrar"),
            "{}",
            err.problems[0]
        );

        // A placeholder naming no parameter, and values out of order.
        write(
            dir.path(),
            MANIFEST_FILE,
            &PARAM_MANIFEST
                .replace("Mer än ${param.max_dagar}", "Mer än ${param.dagar}")
                .replace("2025-01-01", "2022-01-01"),
        );
        write(dir.path(), "a.rhai", "param.max_dagar > 1");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        let text: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|p| p.contains("datumordning")), "{text:#?}");
        assert!(
            text.iter()
                .any(|p| p.contains("title") && p.contains("param.dagar")),
            "{text:#?}"
        );
    }

    #[test]
    fn every_default_rule_declares_its_inputs_and_how_to_clear() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let set = RuleSet::load(&dir).expect("the default rules load");
        for rule in &set.rules {
            let inputs = rule.meta.inputs.as_ref().expect("inputs declared");
            assert!(!inputs.is_empty(), "{}", rule.meta.id);
            assert!(rule.meta.how_to_clear.is_some(), "{}", rule.meta.id);
        }
        let consent = set.rule("samtycke_saknas").expect("rule");
        assert!(!consent.meta.clearable);
    }

    #[test]
    fn declared_inputs_are_checked_against_the_schema_and_the_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            MANIFEST_FILE,
            &MANIFEST.replace(
                "    rationale: r\n",
                "    rationale: r\n    inputs: [gk.requestd_on, stage, person.age]\n",
            ),
        );
        write(
            dir.path(),
            "a.rhai",
            "profile.stage == \"before_gk\" && known(profile.checked_on)",
        );
        let err = RuleSet::load(dir.path()).expect_err("refused");
        let text: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(
            text[0].contains(
                "`gk.requestd_on` är inget fält i profilen; menade du `gk.requested_on`?"
            ),
            "{text:#?}"
        );
        // Each at its own item, not at `inputs:`.
        assert!(text[0].contains("manifest.yaml:10:14:"), "{text:#?}");
        assert!(
            text[1].contains("`person.age` står under inputs, men skriptet läser det aldrig"),
            "{text:#?}"
        );
        assert!(text[1].contains("manifest.yaml:10:37:"), "{text:#?}");
        assert!(
            text[2].contains("a.rhai:1:47: skriptet läser `checked_on`"),
            "{text:#?}"
        );
        let code = err.problems[2].code.as_ref().expect("code line");
        assert_eq!(code.caret_line(), format!("{}^", " ".repeat(46)));

        // In a block list, an input given twice is pointed at where it stands again;
        // comments, even with the field's name or a colon in them, are passed over.
        write(
            dir.path(),
            MANIFEST_FILE,
            &MANIFEST.replace(
                "    rationale: r\n",
                "    rationale: r\n    inputs: # stage: först\n      # stage igen\n      - stage # stage\n      - checked_on\n      - stage\n",
            ),
        );
        let err = RuleSet::load(dir.path()).expect_err("refused");
        let text: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:#?}");
        assert!(
            text[0].contains("manifest.yaml:14:9: a: inputs: `stage` står mer än en gång"),
            "{text:#?}"
        );
    }

    #[test]
    fn a_field_read_through_an_index_counts_as_read() {
        // `[profile.person][0].sgi` read the SGI under `inputs: [stage]`.
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            MANIFEST_FILE,
            &MANIFEST.replace(
                "    rationale: r\n",
                "    rationale: r\n    inputs: [stage]\n",
            ),
        );
        for script in [
            "let s = [profile.person]; profile.stage == \"gk_closing\" || s[0].sgi > 0",
            "profile.stage == \"gk_closing\" || [profile][0].main_diagnosis == \"F32\"",
            "let s = [profile.person, profile.known_needs]; profile.stage == \"gk_closing\" || s[1].social_or_family_problems",
        ] {
            write(dir.path(), "a.rhai", script);
            let err = RuleSet::load(dir.path()).expect_err(script);
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.message.contains("skriptet läser")),
                "{script}: {err:?}"
            );
        }
    }

    #[test]
    fn a_rule_that_cannot_clear_says_what_to_do_instead() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            MANIFEST_FILE,
            &MANIFEST.replace(
                "    rationale: r\n",
                "    rationale: r\n    clearable: false\n",
            ),
        );
        write(dir.path(), "a.rhai", "true");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        assert!(err.problems[0].message.contains("how_to_clear"), "{err:?}");
    }

    #[test]
    fn a_code_line_shows_no_invisible_characters() {
        let problem = Problem::new(Path::new("a.rhai"), "m")
            .at(Some(1), Some(3))
            .with_code_from("x \"\u{1b}[2J\u{202e}\" y");
        let code = problem.code.expect("code");
        assert_eq!(code.text, "x \"\u{fffd}[2J\u{fffd}\" y");
    }

    #[test]
    fn a_long_code_line_is_cut_around_the_column() {
        let script = format!("let a = 1;\n{}x", "a + ".repeat(60));
        let problem = Problem::new(Path::new("a.rhai"), "m")
            .at(Some(2), Some(241))
            .with_code_from(&script);
        let code = problem.code.expect("code");
        assert!(code.text.starts_with('…') && code.text.chars().count() <= MAX_CODE_CHARS + 2);
        assert_eq!(code.text.chars().nth(code.caret - 1), Some('x'));
    }

    #[test]
    fn reason_codes_are_checked_at_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = MANIFEST.replace(
            "rules:\n",
            "common_reasons:\n  - {code: annat, label: annat}\nrules:\n",
        ) + "    reasons:\n      - {code: annat, label: igen}\n      - {code: Fel, label: x}\n";
        write(dir.path(), MANIFEST_FILE, &manifest);
        write(dir.path(), "a.rhai", "true");
        let err = RuleSet::load(dir.path()).expect_err("refused");
        let text: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:#?}");
        assert!(
            text[0].contains(":12:") && text[0].contains("annat finns redan"),
            "{text:#?}"
        );
        assert!(text[1].contains("ogiltig"), "{text:#?}");
        let fixed = manifest.replace(
            "      - {code: annat, label: igen}\n      - {code: Fel, label: x}\n",
            "      - {code: avbojer, label: personen avböjer}\n",
        );
        write(dir.path(), MANIFEST_FILE, &fixed);
        let set = RuleSet::load(dir.path()).expect("loads");
        assert_eq!(set.common_reasons.len(), 1);
        assert_eq!(set.rules[0].meta.reasons[0].code, "avbojer");
    }

    #[test]
    fn rule_ids_are_checked() {
        assert!(RuleId::parse("aktivitetsniva_saknas").is_ok());
        assert!(RuleId::parse("Åtgärd").is_err());
        assert!(RuleId::parse("1abc").is_err());
        assert!(RuleId::parse("").is_err());
    }

    #[test]
    fn validity_window_is_inclusive() {
        let meta = RuleMeta {
            id: RuleId::parse("a").expect("id"),
            script: "a.rhai".into(),
            title: "A".into(),
            default_message: None,
            severity: SeveritySpec::Fixed(Severity::Info),
            grounds: vec![Grounds::Policy],
            rationale: String::new(),
            sources: vec![],
            enabled: true,
            valid_from: Some(Date::parse("2023-01-01").expect("date")),
            valid_to: Some(Date::parse("2023-12-31").expect("date")),
            inputs: None,
            how_to_clear: None,
            clearable: true,
            reasons: vec![],
            title_template: Template::parse("A", &[]).expect("template"),
            message_template: None,
            parameters: Vec::new(),
        };
        assert!(meta.in_force_on(Date::parse("2023-01-01").expect("date")));
        assert!(meta.in_force_on(Date::parse("2023-12-31").expect("date")));
        assert!(!meta.in_force_on(Date::parse("2022-12-31").expect("date")));
        assert!(!meta.in_force_on(Date::parse("2024-01-01").expect("date")));
    }

    #[test]
    fn rule_files_are_read_only_as_regular_files_inside_the_folder() {
        let outside = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        write(outside.path(), "secret", "hemligt");
        write(dir.path(), "a.rhai", "true");
        std::fs::create_dir(dir.path().join("tests")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("l.rhai"))
            .expect("symlink");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("ut")).expect("symlink");
        write(outside.path(), "x.yaml", "hemligt");

        assert_eq!(
            read_rule_file(dir.path(), Path::new("a.rhai")),
            Ok("true".to_owned())
        );
        for (relative, reason) in [
            ("l.rhai", "symbolisk länk"),
            ("ut/x.yaml", "symbolisk länk"),
            ("../x.yaml", "utanför"),
            ("tests", "inte en vanlig fil"),
            ("saknas.rhai", "finns inte"),
        ] {
            let err = read_rule_file(dir.path(), Path::new(relative)).expect_err(relative);
            assert!(err.0.contains(reason), "{relative}: {err}");
            assert!(!err.0.contains("hemligt"), "{relative}: {err}");
        }
        assert!(read_rule_file(outside.path(), Path::new("/etc/passwd")).is_err());

        // A file, a folder or the rules folder that every user may write.
        use std::os::unix::fs::PermissionsExt as _;
        let chmod = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        write(&dir.path().join("tests"), "t.yaml", "rule: a");
        for (path, relative) in [
            (dir.path().join("a.rhai"), "a.rhai"),
            (dir.path().join("tests"), "tests/t.yaml"),
            (dir.path().to_path_buf(), "a.rhai"),
        ] {
            let before = std::fs::metadata(&path).expect("meta").permissions().mode();
            chmod(&path, before | 0o002);
            let err = read_rule_file(dir.path(), Path::new(relative)).expect_err(relative);
            assert!(err.0.contains("kan skrivas av alla"), "{relative}: {err}");
            chmod(&path, before);
            assert!(
                read_rule_file(dir.path(), Path::new(relative)).is_ok(),
                "{relative}"
            );
        }
    }

    #[test]
    fn list_positions_in_a_problem_are_counted_from_one() {
        assert_eq!(counted_from_one("cases[1].expect"), "fall 2, expect");
        assert_eq!(
            counted_from_one("rules[0].inputs[2]"),
            "rules nr 1, inputs nr 3"
        );
        assert_eq!(counted_from_one("cases[0]"), "fall 1");
        assert_eq!(counted_from_one("name"), "name");
    }

    #[test]
    fn serde_messages_keep_the_kind_but_not_the_value() {
        for (message, want) in [
            (
                "invalid type: string \"5ec7e7\", expected struct TestFile at line 1 column 1",
                "ogiltig typ: text, väntade en mappning (fält: värde)",
            ),
            (
                "invalid type: integer `42`, expected a boolean",
                "ogiltig typ: heltal, väntade sant/falskt",
            ),
            ("missing field `rule`", "fältet `rule` saknas"),
            (
                "unknown variant `before-gk`, expected `before_gk` or `gk_closing`",
                "okänt värde `before-gk`, väntade `before_gk` eller `gk_closing`",
            ),
            (
                "data did not match any variant of untagged enum OneOrMany",
                "ogiltigt värde här: det är varken ett värde eller en lista av värden av rätt slag",
            ),
            (
                "found a tab character that violates indentation at line 5 column 1, while scanning a plain scalar at line 4 column 5",
                "en tabb i indraget: YAML dras in med mellanslag, aldrig med tabb",
            ),
            (
                "invalid type: string \"60\", expected f64",
                "ogiltig typ: text, väntade ett tal",
            ),
            (
                "unknown variant `fatal`, expected one of `info`, `warning`",
                "okänt värde `fatal`, väntade något av `info`, `warning`",
            ),
        ] {
            assert_eq!(describe_serde_message(message), want);
        }
        // Nested fields come with their path first: the value stays out there too.
        let nested = describe_serde_message(
            "cases[0].expect.flagged: invalid type: string \"gkr_SECRET_42\", expected a boolean at line 3 column 5",
        );
        assert_eq!(
            nested,
            "fall 1, expect.flagged: ogiltig typ: text, väntade sant/falskt"
        );
        let long = format!("unknown field `{}`, expected `rule`", "k".repeat(64));
        let described = describe_serde_message(&long);
        assert!(!described.contains(&"k".repeat(41)), "{described}");
    }
}
