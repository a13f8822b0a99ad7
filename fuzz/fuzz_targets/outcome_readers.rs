//! Fuzzes the three outcome readers the product uses: the body of
//! `POST /api/v1/outcomes` (`parse_outcomes_json`, one object or an array), and the
//! JSONL and CSV files of `gk-regler import-outcomes` and `replay --outcomes`
//! (`read_outcomes_text`). The first byte picks the reader (`b` body, `l` JSONL,
//! `c` CSV, anything else by its value modulo three); the rest is the text.
//!
//! What must hold:
//! - no reader panics;
//! - every accepted outcome round-trips: written as JSON it is read back unchanged by
//!   the body reader and the JSONL reader, and a CSV file's outcomes written as CSV are
//!   read back unchanged by the CSV reader;
//! - a refusal names where: a field path (or `.` for the whole body) with a message, or
//!   a line of the file that exists;
//! - a refusal never repeats a string value of the input that could be a case id
//!   (long, with a digit), except the product's own vocabulary.
#![no_main]

use gk_regler::outcome::{
    CSV_COLUMNS, EndReason, Outcome, OutcomeKind, parse_outcomes_json, read_outcomes_text,
};
use gk_regler::service::MAX_OUTCOMES_PER_REQUEST;
use libfuzzer_sys::fuzz_target;

/// Input values at least this long, with a digit (as case ids have), must never appear
/// in an error; shorter ones (a date, a number) may coincide with the product's own text.
const MIN_SECRET_LEN: usize = 12;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // The service and the file reader both refuse non-UTF-8 before these readers.
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match selector {
        b'b' => body(text),
        b'l' => jsonl(text),
        b'c' => csv_file(text),
        other => match other % 3 {
            0 => body(text),
            1 => jsonl(text),
            _ => csv_file(text),
        },
    }
});

fn body(text: &str) {
    match parse_outcomes_json(text, MAX_OUTCOMES_PER_REQUEST) {
        Ok(outcomes) => {
            assert!(!outcomes.is_empty() && outcomes.len() <= MAX_OUTCOMES_PER_REQUEST);
            outcomes.iter().for_each(round_trips_as_json);
        }
        Err(err) => {
            assert!(!err.path.is_empty(), "a refused body names a path");
            assert!(!err.message.is_empty(), "a refused body says what is wrong");
            assert!(
                path_names_fields(&err.path, text, &json_keys(text)),
                "the path {:?} names fields and indexes only",
                err.path
            );
            repeats_no_value(&err.to_string(), &json_string_values(text), text, |t| {
                parse_outcomes_json(t, MAX_OUTCOMES_PER_REQUEST)
                    .err()
                    .map(|e| e.to_string())
            });
        }
    }
}

fn jsonl(text: &str) {
    match read_outcomes_text(text, false) {
        Ok(outcomes) => {
            outcomes.iter().for_each(round_trips_as_json);
            let lines: Vec<String> = outcomes.iter().map(to_json).collect();
            let again =
                read_outcomes_text(&lines.join("\n"), false).expect("written JSONL is read back");
            assert_eq!(lines, again.iter().map(to_json).collect::<Vec<_>>());
        }
        Err(err) => {
            let lines = text.lines().count();
            assert!(
                err.line >= 1 && err.line <= lines.max(1),
                "line {} of {lines}",
                err.line
            );
            assert!(!err.message.is_empty());
            let values: Vec<String> = text.lines().flat_map(json_string_values).collect();
            repeats_no_value(&err.to_string(), &values, text, |t| {
                read_outcomes_text(t, false).err().map(|e| e.to_string())
            });
        }
    }
}

fn csv_file(text: &str) {
    match read_outcomes_text(text, true) {
        Ok(outcomes) => {
            outcomes.iter().for_each(round_trips_as_json);
            let written = to_csv(&outcomes);
            let again = read_outcomes_text(&written, true).expect("written CSV is read back");
            assert_eq!(
                outcomes.iter().map(to_json).collect::<Vec<_>>(),
                again.iter().map(to_json).collect::<Vec<_>>()
            );
        }
        Err(err) => {
            // A lone `\r` ends a line too, as the CSV reader reads it.
            let lines = 1 + text.bytes().filter(|b| matches!(b, b'\n' | b'\r')).count();
            assert!(
                err.line >= 1 && err.line <= lines,
                "line {} of {lines}",
                err.line
            );
            assert!(!err.message.is_empty());
            // The header's column names are repeated on purpose (a misnamed column is
            // named); the data rows' cells never are.
            repeats_no_value(&err.to_string(), &csv_data_cells(text), text, |t| {
                read_outcomes_text(t, true).err().map(|e| e.to_string())
            });
        }
    }
}

fn to_json(outcome: &Outcome) -> String {
    serde_json::to_string(outcome).expect("an outcome serialises")
}

fn round_trips_as_json(outcome: &Outcome) {
    let json = to_json(outcome);
    let again = parse_outcomes_json(&json, 1).expect("a written outcome is read back");
    assert_eq!(again.len(), 1);
    assert_eq!(json, to_json(&again[0]), "an outcome round-trips unchanged");
}

fn to_csv(outcomes: &[Outcome]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS).expect("header");
    for outcome in outcomes {
        let reasons: Vec<&str> = outcome.reasons.iter().map(|r| r.as_str()).collect();
        writer
            .write_record([
                outcome.case_id.expose(),
                &outcome.ended_on.to_string(),
                outcome.outcome.as_str(),
                &reasons.join(";"),
            ])
            .expect("record");
    }
    String::from_utf8(writer.into_inner().expect("flush")).expect("UTF-8")
}

/// A path of field names and indexes (`[3].reasons[0]`), or `.` for the whole body. A
/// field name is one of ours or a key the input wrote (an unknown field is named): a key
/// of the parsed text or, where the text is not one JSON document, a part of the text.
fn path_names_fields(path: &str, text: &str, keys: &[String]) -> bool {
    path == "."
        || path
            .split(['.', '[', ']'])
            .filter(|part| !part.is_empty())
            .all(|part| {
                part.bytes().all(|b| b.is_ascii_digit())
                    || CSV_COLUMNS.contains(&part)
                    || part == "?"
                    || keys.iter().any(|key| key.contains(part))
                    || (keys.is_empty() && text.contains(part))
            })
}

/// Every object key in a JSON text, if it parses as JSON.
fn json_keys(text: &str) -> Vec<String> {
    fn collect(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, into)),
            serde_json::Value::Object(map) => {
                into.extend(map.keys().cloned());
                map.values().for_each(|v| collect(v, into));
            }
            _ => {}
        }
    }
    let mut keys = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        collect(&value, &mut keys);
    }
    keys
}

/// Whether the product itself may write `text` (a field or value name).
fn vocabulary(text: &str) -> bool {
    CSV_COLUMNS.contains(&text)
        || OutcomeKind::from_name(text).is_some()
        || EndReason::from_name(text).is_some()
}

/// Asserts that `error` repeats no input value that could be a case id. A value found
/// in the error counts as repeated only when the error follows it: read again with the
/// value changed (same length, every letter and digit shifted), the error must not show
/// the changed value. Otherwise the text is the product's own (a fuzzer may well copy a
/// message of ours into the input).
fn repeats_no_value(
    error: &str,
    values: &[String],
    text: &str,
    read: impl Fn(&str) -> Option<String>,
) {
    for value in values {
        let value = value.trim();
        if value.len() >= MIN_SECRET_LEN
            && value.bytes().any(|b| b.is_ascii_digit())
            && !vocabulary(value)
            && error.contains(value)
        {
            let changed = shifted(value);
            let again = read(&text.replace(value, &changed));
            assert!(
                !again.is_some_and(|again| again.contains(&changed)),
                "the error {error:?} repeats an input value"
            );
        }
    }
}

/// `text` with every ASCII letter and digit replaced by the next one (`z` by `a`,
/// `9` by `0`): the same length and shape, a different value.
fn shifted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            c if c.is_ascii_alphanumeric() => char::from(c as u8 + 1),
            c => c,
        })
        .collect()
}

/// Every string value (not key) in a JSON text, if it parses as JSON.
fn json_string_values(text: &str) -> Vec<String> {
    fn collect(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => into.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, into)),
            serde_json::Value::Object(map) => map.values().for_each(|v| collect(v, into)),
            _ => {}
        }
    }
    let mut values = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        collect(&value, &mut values);
    }
    values
}

/// The cells of every record after the header, as far as the file reads as CSV.
fn csv_data_cells(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut cells = Vec::new();
    for record in reader.records() {
        let Ok(record) = record else { break };
        cells.extend(record.iter().map(str::to_owned));
    }
    cells
}
