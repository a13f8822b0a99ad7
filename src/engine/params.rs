//! Dated rule parameters: a rule's named values (`param.max_dagar` in its script), each
//! with the days from which a value applies, read for the profile's `checked_on`; and
//! the `${param.NAME}` placeholders of a rule's manifest title and message.
//!
//! OpenFisca's dated parameters are the model: changing a threshold is one new entry in
//! the manifest, and checks made before that day keep the old value.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use super::value::Value;
use crate::profile::Date;

/// The name under which rule scripts see their parameters (`param.max_dagar`).
pub const PARAM_VARIABLE: &str = "param";

/// A parameter's value on some days: a whole number, a decimal number or a text.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl ParamValue {
    fn kind(&self) -> &'static str {
        match self {
            Self::Int(_) => "heltal",
            Self::Float(_) => "decimaltal",
            Self::Text(_) => "text",
        }
    }

    /// The value as both evaluators read it.
    pub fn value(&self) -> Value<'_> {
        match self {
            Self::Int(i) => Value::Int(*i),
            Self::Float(f) => Value::Float(*f),
            Self::Text(t) => Value::Text(Cow::Borrowed(t)),
        }
    }
}

impl fmt::Display for ParamValue {
    /// As people read it in a title or message: a decimal comma, as in Swedish text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => f.write_str(&x.to_string().replace('.', ",")),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// One named parameter of a rule with its dated values, sorted by day.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub description: String,
    /// `(from, value)`: the value applies from that day (inclusive) until the next.
    pub values: Vec<(Date, ParamValue)>,
}

impl Parameter {
    /// The value in force on `day`, or `None` before the first `from`.
    pub fn on(&self, day: Date) -> Option<&ParamValue> {
        let after = self.values.partition_point(|(from, _)| *from <= day);
        after.checked_sub(1).map(|index| &self.values[index].1)
    }

    /// The value for lists shown without a check date: the one in force on `day`, or the
    /// first one when none is yet.
    pub fn shown_on(&self, day: Date) -> Option<&ParamValue> {
        self.on(day).or_else(|| self.values.first().map(|(_, v)| v))
    }
}

/// The values of a rule's parameters on one day, in declaration order; or why there is
/// none (a day before a parameter's first value).
pub fn values_on(parameters: &[Parameter], day: Date) -> Result<Vec<Value<'_>>, String> {
    parameters
        .iter()
        .map(|p| {
            p.on(day)
                .map(ParamValue::value)
                .ok_or_else(|| no_value(p, day))
        })
        .collect()
}

/// Refuses `day` when one of `parameters` has no value on it yet: what
/// [`values_on`] refuses, without collecting the values.
pub fn check_values_on(parameters: &[Parameter], day: Date) -> Result<(), String> {
    match parameters.iter().find(|p| p.on(day).is_none()) {
        Some(p) => Err(no_value(p, day)),
        None => Ok(()),
    }
}

/// Why parameter `p` has no value on `day`, for the rule author.
fn no_value(p: &Parameter, day: Date) -> String {
    format!(
        "parametern {} har inget värde för {day}: dess första värde gäller från {}",
        p.name,
        p.values
            .first()
            .map_or_else(String::new, |(from, _)| from.to_string())
    )
}

/// `parameters:` of one rule as written in the manifest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParameterSpec {
    description: String,
    values: Vec<DatedValueSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatedValueSpec {
    from: Date,
    value: serde_yaml::Value,
}

/// A parameter's name: as a rule id (lowercase a–z, digits and `_`, a letter first).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

/// Checks one parameter's spec: a valid name, a description, at least one value, every
/// value a number or a text and all of one type, days strictly increasing. Every
/// problem is returned (in Swedish, naming the parameter, never a value).
pub(crate) fn parameter(name: &str, spec: ParameterSpec) -> Result<Parameter, Vec<String>> {
    let mut problems = Vec::new();
    if !valid_name(name) {
        problems.push(format!(
            "parametern {name:?}: namnet får bara ha små bokstäver a–z, siffror och _ och ska börja med en bokstav"
        ));
    }
    if spec.description.trim().is_empty() {
        problems.push(format!("parametern {name}: description får inte vara tom"));
    }
    if spec.values.is_empty() {
        problems.push(format!(
            "parametern {name}: values behöver minst ett värde med from och value"
        ));
    }
    let mut values: Vec<(Date, ParamValue)> = Vec::with_capacity(spec.values.len());
    for (index, dated) in spec.values.into_iter().enumerate() {
        let value = match dated.value {
            serde_yaml::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Some(ParamValue::Int(i)),
                (None, Some(f)) if f.is_finite() => Some(ParamValue::Float(f)),
                _ => None,
            },
            // A text value reaches titles and messages: it shows as it is written.
            serde_yaml::Value::String(text)
                if !text.trim().is_empty()
                    && !crate::visible::has_hidden_characters(
                        &text,
                        crate::visible::Lines::One,
                    ) =>
            {
                Some(ParamValue::Text(text))
            }
            _ => None,
        };
        let Some(value) = value else {
            problems.push(format!(
                "parametern {name}: värde nr {} måste vara ett tal eller en text som inte är tom \
                 och bara har tecken som syns",
                index + 1
            ));
            continue;
        };
        if let Some((previous_from, previous)) = values.last() {
            if dated.from == *previous_from {
                problems.push(format!(
                    "parametern {name}: två värden gäller från {}; varje dag får bara ha ett värde",
                    dated.from
                ));
            } else if dated.from < *previous_from {
                problems.push(format!(
                    "parametern {name}: värdena ska stå i datumordning, äldst först ({} står efter {previous_from})",
                    dated.from
                ));
            }
            if previous.kind() != value.kind() {
                problems.push(format!(
                    "parametern {name}: alla värden ska vara av samma slag (värde nr {} är {}, de före är {})",
                    index + 1,
                    value.kind(),
                    previous.kind()
                ));
            }
        }
        values.push((dated.from, value));
    }
    if problems.is_empty() {
        Ok(Parameter {
            name: name.to_owned(),
            description: spec.description,
            values,
        })
    } else {
        Err(problems)
    }
}

/// A manifest text (a rule's title or message) with `${param.NAME}` placeholders.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    /// The index of a parameter of the rule.
    Param(usize),
}

impl Template {
    /// Parses `text`, resolving each `${param.NAME}` against `parameters`. Any other
    /// `${…}` is refused, so a misspelt placeholder never reaches an officer.
    pub fn parse(text: &str, parameters: &[Parameter]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err("${ utan avslutande }: skriv ${param.NAMN}".to_owned());
            };
            let inner = after[..end].trim();
            let Some(name) = inner.strip_prefix("param.") else {
                return Err(
                    "bara parametrar kan stå i ${…} i manifestet: skriv ${param.NAMN}".to_owned(),
                );
            };
            let Some(index) = parameters.iter().position(|p| p.name == name.trim()) else {
                return Err(format!(
                    "${{param.{}}}: regeln har ingen parameter med det namnet",
                    cut(name.trim())
                ));
            };
            parts.push(Part::Param(index));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Whether the text has a placeholder.
    pub fn has_params(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Param(_)))
    }

    /// The text with each placeholder replaced by the parameter's value from `pick`.
    pub fn render<'p>(
        &self,
        parameters: &'p [Parameter],
        pick: impl Fn(&'p Parameter) -> Option<&'p ParamValue>,
    ) -> String {
        let mut text = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => text.push_str(t),
                Part::Param(index) => {
                    if let Some(value) = parameters.get(*index).and_then(&pick) {
                        text.push_str(&value.to_string());
                    }
                }
            }
        }
        text
    }
}

/// A name from a manifest quoted in a message, cut to 40 characters.
fn cut(name: &str) -> String {
    name.chars().take(40).collect()
}

/// Every use of `param` in a compiled script that does not fit the rule's parameters:
/// `param.NAME` with a name the rule does not declare, or `param` at all in a rule
/// without parameters. Each with its line and column.
pub(crate) fn check_uses(
    ast: &rhai::AST,
    parameters: &[Parameter],
) -> Vec<(String, Option<usize>, Option<usize>)> {
    use rhai::{ASTNode, Expr};
    let mut problems = Vec::new();
    let is_param = |expr: &Expr| matches!(expr, Expr::Variable(x, ..) if x.1 == PARAM_VARIABLE);
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(expr)) = path.last() else {
            return true;
        };
        match expr {
            Expr::Dot(x, ..) if is_param(&x.lhs) => {
                if let Expr::Property(property, position) = &x.rhs {
                    let name = property.2.as_str();
                    if !parameters.iter().any(|p| p.name == name) {
                        problems.push((
                            if parameters.is_empty() {
                                format!(
                                    "param.{} används, men regeln har inga parametrar i manifestet",
                                    cut(name)
                                )
                            } else {
                                format!(
                                    "param.{}: regeln har ingen parameter med det namnet (den har {})",
                                    cut(name),
                                    parameters
                                        .iter()
                                        .map(|p| p.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            },
                            position.line(),
                            position.position(),
                        ));
                    }
                }
            }
            Expr::Variable(x, _, position)
                if x.1 == PARAM_VARIABLE && parameters.is_empty() =>
            {
                // Reported once per use, unless the `.NAME` case above already did.
                let reported = problems
                    .iter()
                    .any(|(_, line, column)| *line == position.line() && *column == position.position());
                if !reported {
                    problems.push((
                        "param används, men regeln har inga parametrar i manifestet".to_owned(),
                        position.line(),
                        position.position(),
                    ));
                }
            }
            _ => {}
        }
        true
    });
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Date {
        Date::parse(text).expect("date")
    }

    fn spec(yaml: &str) -> ParameterSpec {
        serde_yaml::from_str(yaml).expect("spec")
    }

    #[test]
    fn the_value_in_force_is_the_last_one_from_on_or_before_the_day() {
        let p = parameter(
            "max_dagar",
            spec("description: d\nvalues:\n  - { from: 2023-01-01, value: 21 }\n  - { from: 2026-01-01, value: 14 }\n"),
        )
        .expect("valid");
        assert_eq!(p.on(day("2022-12-31")), None);
        assert_eq!(p.on(day("2023-01-01")), Some(&ParamValue::Int(21)));
        assert_eq!(p.on(day("2025-12-31")), Some(&ParamValue::Int(21)));
        assert_eq!(p.on(day("2026-01-01")), Some(&ParamValue::Int(14)));
        assert_eq!(p.shown_on(day("2020-01-01")), Some(&ParamValue::Int(21)));
        let err = values_on(std::slice::from_ref(&p), day("2022-05-01")).expect_err("too early");
        assert!(
            err.contains("max_dagar") && err.contains("2023-01-01"),
            "{err}"
        );
        assert_eq!(
            check_values_on(std::slice::from_ref(&p), day("2022-05-01")),
            Err(err)
        );
        assert_eq!(
            check_values_on(std::slice::from_ref(&p), day("2023-01-01")),
            Ok(())
        );
    }

    #[test]
    fn values_are_checked_for_order_duplicates_and_types() {
        for (yaml, want) in [
            (
                "description: d\nvalues:\n  - { from: 2024-01-01, value: 1 }\n  - { from: 2023-01-01, value: 2 }\n",
                "datumordning",
            ),
            (
                "description: d\nvalues:\n  - { from: 2024-01-01, value: 1 }\n  - { from: 2024-01-01, value: 2 }\n",
                "två värden",
            ),
            (
                "description: d\nvalues:\n  - { from: 2024-01-01, value: 1 }\n  - { from: 2025-01-01, value: x }\n",
                "samma slag",
            ),
            (
                "description: d\nvalues:\n  - { from: 2024-01-01, value: true }\n",
                "tal eller en text",
            ),
            ("description: d\nvalues: []\n", "minst ett värde"),
            (
                "description: ''\nvalues:\n  - { from: 2024-01-01, value: 1 }\n",
                "description",
            ),
        ] {
            let problems = parameter("p", spec(yaml)).expect_err(want);
            assert!(problems.iter().any(|p| p.contains(want)), "{problems:?}");
        }
        assert!(
            parameter(
                "Max",
                spec("description: d\nvalues:\n  - { from: 2024-01-01, value: 1 }\n")
            )
            .is_err()
        );
    }

    #[test]
    fn templates_replace_known_parameters_and_refuse_others() {
        let p = parameter(
            "max_dagar",
            spec(
                "description: d\nvalues:\n  - { from: 2023-01-01, value: 21 }\n  - { from: 2026-01-01, value: 2.5 }\n",
            ),
        );
        // Mixed kinds are refused; use one kind for the template test.
        assert!(p.is_err());
        let p = parameter(
            "max_dagar",
            spec("description: d\nvalues:\n  - { from: 2023-01-01, value: 21 }\n  - { from: 2026-01-01, value: 14 }\n"),
        )
        .expect("valid");
        let params = [p];
        let t = Template::parse("Mer än ${param.max_dagar} dagar", &params).expect("parses");
        assert!(t.has_params());
        assert_eq!(
            t.render(&params, |p| p.on(day("2024-01-01"))),
            "Mer än 21 dagar"
        );
        assert_eq!(
            t.render(&params, |p| p.on(day("2026-06-01"))),
            "Mer än 14 dagar"
        );
        assert!(Template::parse("${param.okand}", &params).is_err());
        assert!(Template::parse("${profile.stage}", &params).is_err());
        assert!(Template::parse("${param.max_dagar", &params).is_err());
        assert!(
            !Template::parse("Ingen", &params)
                .expect("plain")
                .has_params()
        );
        assert_eq!(ParamValue::Float(2.5).to_string(), "2,5");
    }
}
