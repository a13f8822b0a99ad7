//! The outcome record of docs/profile.md: how a case's participation ended.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::name_enum;
use crate::profile::{CaseId, Date, PlausibleDates, ProfileError};

name_enum!(OutcomeKind {
    LeftInsurance,
    ReturnedToFk,
});

name_enum!(EndReason {
    WorkUnsupported,
    WorkSupported,
    RegularStudies,
    LabourMarketTraining,
    BusinessStart,
    JobSeeker,
    RehabBenefitStopped,
    GoalReached,
    HealthWorsenedRelated,
    HealthWorsenedUnrelated,
    NoWorkCapacityProgress,
    DeclinedHelp,
    Other,
});

/// One outcome, as clients send it.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub case_id: CaseId,
    pub ended_on: Date,
    pub outcome: OutcomeKind,
    #[serde(default, deserialize_with = "crate::profile::distinct")]
    #[schemars(with = "Vec<EndReason>", extend("uniqueItems" = true))]
    pub reasons: Vec<EndReason>,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outcome { <redacted> }")
    }
}

impl Outcome {
    /// "Avslut jobb": work with or without support, or regular studies.
    pub fn work_or_studies(&self) -> bool {
        self.reasons.iter().any(|r| {
            matches!(
                r,
                EndReason::WorkUnsupported | EndReason::WorkSupported | EndReason::RegularStudies
            )
        })
    }

    /// Either kind of worsened health.
    pub fn worsened_health(&self) -> bool {
        self.reasons.iter().any(|r| {
            matches!(
                r,
                EndReason::HealthWorsenedRelated | EndReason::HealthWorsenedUnrelated
            )
        })
    }

    /// Refuses an `ended_on` outside the plausible dates.
    pub fn check_dates(&self, window: &PlausibleDates) -> Result<(), ProfileError> {
        window.check("ended_on", self.ended_on, false)
    }

    /// Parses one CSV record whose columns `columns` has already checked, where
    /// `reasons` is separated by `;` or `|`.
    pub fn from_csv_record(
        record: &csv::StringRecord,
        columns: &CsvColumns,
    ) -> Result<Self, String> {
        let field = |index: usize| Cow::Borrowed(record.get(index).unwrap_or("").trim());
        let case_id =
            CaseId::parse(&field(columns.case_id)).map_err(|e| format!("case_id: {e}"))?;
        let ended_on =
            Date::parse(&field(columns.ended_on)).map_err(|e| format!("ended_on: {e}"))?;
        let outcome_text = field(columns.outcome);
        // The value is one of our names or a typing error; it is no personal data, but
        // it is not repeated either: the valid names are.
        let outcome = OutcomeKind::from_name(&outcome_text).ok_or_else(|| {
            "outcome: okänt värde; giltiga värden: left_insurance, returned_to_fk".to_owned()
        })?;
        let mut reasons = Vec::new();
        if let Some(index) = columns.reasons {
            for name in field(index)
                .split([';', '|'])
                .map(str::trim)
                .filter(|r| !r.is_empty())
            {
                let reason =
                    EndReason::from_name(name).ok_or_else(|| "reasons: okänt värde".to_owned())?;
                if reasons.contains(&reason) {
                    return Err("reasons: samma värde står flera gånger i listan".to_owned());
                }
                reasons.push(reason);
            }
        }
        let outcome = Self {
            case_id,
            ended_on,
            outcome,
            reasons,
        };
        outcome
            .check_dates(&PlausibleDates::now())
            .map_err(|e| e.to_string())?;
        Ok(outcome)
    }
}

/// Where each column of an outcomes CSV file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvColumns {
    pub case_id: usize,
    pub ended_on: usize,
    pub outcome: usize,
    pub reasons: Option<usize>,
}

/// The columns an outcomes CSV file may have; `reasons` may be left out.
pub const CSV_COLUMNS: [&str; 4] = ["case_id", "ended_on", "outcome", "reasons"];

/// The longest column name an error message repeats.
const MAX_QUOTED_COLUMN: usize = 40;

/// An unknown column as an error names it: by its name when that looks like a column
/// name (letters and `_` only, as every real column is), otherwise by its position, so a
/// header row that is really a data row (a case id, a date) is never repeated.
fn unknown_column(index: usize, name: &str) -> String {
    let looks_like_a_name = !name.is_empty()
        && name.chars().count() <= MAX_QUOTED_COLUMN
        && name.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
    if looks_like_a_name {
        format!("kolumnen {name:?}")
    } else {
        format!(
            "kolumn {} i rubrikraden (är första raden en rubrikrad?)",
            index + 1
        )
    }
}

impl CsvColumns {
    /// Reads the header: every column must be known and appear once, and `case_id`,
    /// `ended_on` and `outcome` must be there. A misnamed column would otherwise be
    /// silently ignored (a `reason` column storing no reasons).
    pub fn from_header(header: &csv::StringRecord) -> Result<Self, String> {
        let mut found: [Option<usize>; 4] = [None; 4];
        for (index, name) in header.iter().enumerate() {
            let name = name.trim();
            let Some(known) = CSV_COLUMNS.iter().position(|c| *c == name) else {
                return Err(format!(
                    "{} är okänd; tillåtna kolumner: {}",
                    unknown_column(index, name),
                    CSV_COLUMNS.join(", ")
                ));
            };
            if found[known].replace(index).is_some() {
                return Err(format!("kolumnen {name:?} står mer än en gång"));
            }
        }
        let required =
            |i: usize| found[i].ok_or_else(|| format!("kolumnen {:?} saknas", CSV_COLUMNS[i]));
        Ok(Self {
            case_id: required(0)?,
            ended_on: required(1)?,
            outcome: required(2)?,
            reasons: found[3],
        })
    }
}

/// A refused outcomes file: the line (1-based) and what was wrong on it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rad {line}: {message}")]
pub struct OutcomeFileError {
    pub line: usize,
    pub message: String,
}

/// Reads outcomes from the text of a file: CSV with a header (`case_id,ended_on,outcome`
/// and optionally `reasons`) when `csv` is true, else JSONL (one object per line). A
/// UTF-8 byte order mark at the start is accepted. All or nothing: the first bad line
/// refuses the file.
pub fn read_outcomes_text(text: &str, csv: bool) -> Result<Vec<Outcome>, OutcomeFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let window = PlausibleDates::now();
    let mut outcomes = Vec::new();
    // The line of each case's outcome: a file records one outcome per case.
    let mut line_of_case = std::collections::HashMap::new();
    let mut once =
        |outcome: &Outcome, line: usize| match line_of_case.insert(outcome.case_id.clone(), line) {
            Some(earlier) => Err(OutcomeFileError {
                line,
                message: repeated_case(&format!("rad {earlier}")),
            }),
            None => Ok(()),
        };
    if csv {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let at_header = |message: String| OutcomeFileError { line: 1, message };
        let header = reader
            .headers()
            .map_err(|e| at_header(csv_error_text(&e)))?
            .clone();
        let columns = CsvColumns::from_header(&header).map_err(at_header)?;
        let mut lines = LineCounter::new(text);
        for (index, record) in reader.records().enumerate() {
            // The line the record starts on: blank lines and quoted line breaks make it
            // differ from the record's number.
            let mut line_of = |position: Option<&csv::Position>| {
                position.map_or(index + 2, |p| lines.line_at(p.byte()))
            };
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    return Err(OutcomeFileError {
                        line: line_of(e.position()),
                        message: csv_error_text(&e),
                    });
                }
            };
            let line = line_of(record.position());
            let at = |message: String| OutcomeFileError { line, message };
            let outcome = Outcome::from_csv_record(&record, &columns).map_err(at)?;
            once(&outcome, line)?;
            outcomes.push(outcome);
        }
    } else {
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = |err: ProfileError| OutcomeFileError {
                line: index + 1,
                message: err.to_string(),
            };
            let outcome: Outcome = crate::profile::parse_json(line).map_err(at)?;
            outcome.check_dates(&window).map_err(at)?;
            once(&outcome, index + 1)?;
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

/// The refusal of a case's second outcome in one file or request, pointing at the first
/// (`rad 3`, `[0]`) and never at the case id.
fn repeated_case(first: &str) -> String {
    format!(
        "samma ärende har redan ett utfall på {first}: ett ärende får ett utfall åt gången \
         (skicka det nya för sig för att ersätta det gamla)"
    )
}

/// The 1-based line a CSV record starts on, from the byte offset where the reader
/// began reading it (before any blank lines it skips), counted onwards from the last
/// offset asked for. The csv crate's own line count misses line breaks inside quoted
/// fields.
struct LineCounter<'a> {
    text: &'a str,
    byte: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            byte: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> usize {
        let byte = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        if byte < self.byte {
            (self.byte, self.line) = (0, 1);
        }
        let bytes = self.text.as_bytes();
        let blank = bytes[byte..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let start = byte + blank;
        // A line ends with `\n`, `\r\n` or, as the csv crate also reads it, a lone `\r`.
        self.line += (self.byte..start)
            .filter(|&i| {
                bytes[i] == b'\n' || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
            })
            .count();
        self.byte = start;
        self.line
    }
}

/// A CSV reader error without the record's content.
fn csv_error_text(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("raden har {len} fält, men rubrikraden har {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "raden är inte UTF-8-text".to_owned(),
        _ => "raden kan inte läsas som CSV".to_owned(),
    }
}

/// An outcome that must be written as a JSON object: serde's derived structs would
/// also take an array of the field values.
struct OutcomeObject(Outcome);

impl<'de> Deserialize<'de> for OutcomeObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
            type Value = OutcomeObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("ett JSON-objekt")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                Outcome::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(OutcomeObject)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Parses the body of `POST /api/v1/outcomes`: one outcome object, or a non-empty
/// array of at most `max` of them. A refusal names the field's path (`[3].ended_on`
/// in an array). Duplicate keys are refused, since every outcome is read straight from
/// the text into its typed fields.
pub fn parse_outcomes_json(text: &str, max: usize) -> Result<Vec<Outcome>, ProfileError> {
    let first = text.trim_start_matches(['\u{feff}', ' ', '\t', '\n', '\r']);
    let outcomes: Vec<Outcome> = if first.starts_with('[') {
        let outcomes: Vec<OutcomeObject> = crate::profile::parse_json_document(text)?;
        let outcomes: Vec<Outcome> = outcomes.into_iter().map(|o| o.0).collect();
        let whole = |message: String| ProfileError {
            path: ".".to_owned(),
            message,
            syntax: false,
            implausible: false,
        };
        if outcomes.is_empty() {
            return Err(whole("listan är tom".to_owned()));
        }
        if outcomes.len() > max {
            return Err(whole(format!("högst {max} utfall per begäran")));
        }
        outcomes
    } else {
        vec![crate::profile::parse_json(text)?]
    };
    let window = PlausibleDates::now();
    let single = outcomes.len() == 1 && !first.starts_with('[');
    let mut index_of_case = std::collections::HashMap::new();
    for (index, outcome) in outcomes.iter().enumerate() {
        outcome.check_dates(&window).map_err(|mut err| {
            if !single {
                err.path = format!("[{index}].{}", err.path);
            }
            err
        })?;
        if let Some(earlier) = index_of_case.insert(&outcome.case_id, index) {
            return Err(ProfileError {
                path: format!("[{index}].case_id"),
                message: repeated_case(&format!("[{earlier}]")),
                syntax: false,
                implausible: false,
            });
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_outcome_parses_and_derives() {
        let o: Outcome = serde_json::from_str(
            r#"{"case_id":"A","ended_on":"2024-01-01","outcome":"left_insurance","reasons":["work_supported"]}"#,
        )
        .expect("valid");
        assert!(o.work_or_studies());
        assert!(!o.worsened_health());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_str::<Outcome>(
                r#"{"case_id":"A","ended_on":"2024-01-01","outcome":"left_insurance","extra":1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn csv_record_parses() {
        let headers = CsvColumns::from_header(&csv::StringRecord::from(vec![
            "case_id", "ended_on", "outcome", "reasons",
        ]))
        .expect("known columns");
        let record = csv::StringRecord::from(vec![
            "A",
            "2024-02-01",
            "returned_to_fk",
            "health_worsened_related;other",
        ]);
        let o = Outcome::from_csv_record(&record, &headers).expect("valid");
        assert!(o.worsened_health());
        let bad = csv::StringRecord::from(vec!["A", "2024-02-01", "left", ""]);
        assert!(
            Outcome::from_csv_record(&bad, &headers)
                .unwrap_err()
                .starts_with("outcome")
        );
    }

    #[test]
    fn csv_header_must_be_known_and_unique() {
        let header =
            |names: &[&str]| CsvColumns::from_header(&csv::StringRecord::from(names.to_vec()));
        assert_eq!(
            header(&["outcome", "case_id", "ended_on"]),
            Ok(CsvColumns {
                case_id: 1,
                ended_on: 2,
                outcome: 0,
                reasons: None
            })
        );
        assert!(
            header(&["case_id", "ended_on", "outcome", "reason"])
                .unwrap_err()
                .contains("\"reason\" är okänd")
        );
        assert!(
            header(&["case_id", "ended_on", "outcome", "outcome"])
                .unwrap_err()
                .contains("mer än en gång")
        );
        // A data row read as the header: named by position, its values never repeated.
        let err = header(&["ärende-2024-0042", "2024-03-01", "work"]).unwrap_err();
        assert!(err.contains("kolumn 1 i rubrikraden"), "{err}");
        assert!(!err.contains("2024"), "{err}");
        assert!(
            header(&["case_id", "outcome"])
                .unwrap_err()
                .contains("\"ended_on\" saknas")
        );
    }

    #[test]
    fn outcome_bodies_are_objects_with_distinct_keys_and_reasons() {
        let one = r#"{"case_id":"A","ended_on":"2024-01-01","outcome":"left_insurance"}"#;
        let other = r#"{"case_id":"B","ended_on":"2024-01-01","outcome":"left_insurance"}"#;
        assert_eq!(parse_outcomes_json(one, 10).map(|o| o.len()), Ok(1));
        assert_eq!(
            parse_outcomes_json(&format!("[{one},{other}]"), 10).map(|o| o.len()),
            Ok(2)
        );
        assert_eq!(
            parse_outcomes_json(&format!("[{one},{other}]"), 1)
                .unwrap_err()
                .path,
            "."
        );
        let twice = parse_outcomes_json(&format!("[{one},{other},{one}]"), 10).unwrap_err();
        assert_eq!(twice.path, "[2].case_id");
        assert!(twice.message.contains("[0]"), "{}", twice.message);
        assert_eq!(parse_outcomes_json("[]", 10).unwrap_err().path, ".");
        let as_array = r#"[["A","2024-01-01","left_insurance",[]]]"#;
        assert_eq!(parse_outcomes_json(as_array, 10).unwrap_err().path, "[0]");
        let twice =
            r#"{"case_id":"A","case_id":"B","ended_on":"2024-01-01","outcome":"left_insurance"}"#;
        assert_eq!(parse_outcomes_json(twice, 10).unwrap_err().path, "case_id");
        let repeated = r#"{"case_id":"A","ended_on":"2024-01-01","outcome":"left_insurance","reasons":["other","other"]}"#;
        assert_eq!(
            parse_outcomes_json(repeated, 10).unwrap_err().path,
            "reasons"
        );
        let empty_key =
            r#"{"":"x","case_id":"A","ended_on":"2024-01-01","outcome":"left_insurance"}"#;
        assert_eq!(parse_outcomes_json(empty_key, 10).unwrap_err().path, ".");
        let late = r#"{"case_id":"A","ended_on":"2999-01-01","outcome":"left_insurance"}"#;
        assert_eq!(parse_outcomes_json(late, 10).unwrap_err().path, "ended_on");
    }

    #[test]
    fn an_unknown_key_that_is_not_a_field_name_is_never_repeated() {
        // Found by the outcome_readers fuzz target: a key with a quote in it (and so any
        // value typed as a key, such as a case id) came back verbatim in the path.
        let quoted =
            r#"{"case_i\":"GK-2024-0001","ended_on":"2024-03-01","outcome":"left_insurance"}"#;
        let err = parse_outcomes_json(quoted, 10).unwrap_err();
        assert_eq!(err.path, ".");
        assert!(!err.to_string().contains("case_i\""), "{err}");
        let case_id_as_key = r#"[{"case_id":"A","ended_on":"2024-03-01","outcome":"left_insurance","GK-2024-000123":1}]"#;
        let err = parse_outcomes_json(case_id_as_key, 10).unwrap_err();
        assert_eq!(err.path, "[0]");
        assert!(!err.to_string().contains("000123"), "{err}");
        let misspelt =
            r#"{"case_id":"A","ended_on":"2024-03-01","outcome":"left_insurance","reason":[]}"#;
        let err = parse_outcomes_json(misspelt, 10).unwrap_err();
        assert!(err.to_string().contains("`reason`"), "{err}");
    }

    #[test]
    fn outcome_files_accept_a_byte_order_mark() {
        let csv = "\u{feff}case_id,ended_on,outcome\nA,2024-01-01,left_insurance\n";
        assert_eq!(read_outcomes_text(csv, true).map(|o| o.len()), Ok(1));
        let jsonl = "\u{feff}{\"case_id\":\"A\",\"ended_on\":\"2024-01-01\",\"outcome\":\"left_insurance\"}\n";
        assert_eq!(read_outcomes_text(jsonl, false).map(|o| o.len()), Ok(1));
        let bad =
            "case_id,ended_on,outcome\nA,2024-01-01,left_insurance\nB,1999-12-31,left_insurance\n";
        assert_eq!(read_outcomes_text(bad, true).unwrap_err().line, 3);
    }

    #[test]
    fn csv_errors_name_the_line_the_record_starts_on() {
        let blank =
            "case_id,ended_on,outcome\n\nA,2024-01-01,left_insurance\n\nB,2024-01-01,left\n";
        assert_eq!(read_outcomes_text(blank, true).unwrap_err().line, 5);
        let quoted = "case_id,ended_on,outcome,reasons\nA,2024-01-01,left_insurance,\"other;\n\nregular_studies\"\nB,2024-01-01,left,\n";
        assert_eq!(read_outcomes_text(quoted, true).unwrap_err().line, 5);
        let short = "case_id,ended_on,outcome\n\nA,2024-01-01\n";
        assert_eq!(read_outcomes_text(short, true).unwrap_err().line, 3);
        let crlf = "case_id,ended_on,outcome\r\n\r\nA,2024-01-01,left_insurance\r\nB,x,left\r\n";
        assert_eq!(read_outcomes_text(crlf, true).unwrap_err().line, 4);
        let cr = "case_id,ended_on,outcome\rA,2024-01-01,left_insurance\rB,x,left\r";
        assert_eq!(read_outcomes_text(cr, true).unwrap_err().line, 3);
    }
}
