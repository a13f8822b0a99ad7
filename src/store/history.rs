//! The stored history as the audit and the replay read it: checks (profile, flags, rule
//! errors) joined with their case's outcome, streamed in batches oldest check of each case
//! first, outcomes of cases without checks, rule-set names, and rule ids ever stored.
//!
//! A date range selects the rows: every check of a case whose outcome ended in the range
//! and every check made in the range. An open end is unbounded. Test checks (made with a
//! test-purpose token) are left out unless the range includes them.

use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::facts::CheckFacts;
use crate::outcome::{EndReason, Outcome, OutcomeKind};
use crate::profile::{CaseId, Date, Stage};

/// Rows handed over at a time: bounds memory and lets the caller work in parallel.
pub const BATCH: usize = 4096;

/// A date range; either end may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// Read test checks too (by default they are left out).
    pub include_test: bool,
}

impl Range {
    fn bounds(self) -> (String, String) {
        (
            self.from
                .map_or_else(|| "0000-01-01".to_owned(), |d| d.to_string()),
            self.to
                .map_or_else(|| "9999-12-31".to_owned(), |d| d.to_string()),
        )
    }
}

/// One stored check as read, before its profile is parsed.
pub struct StoredCheckRow {
    pub case: String,
    pub rule_set_hash: String,
    pub profile_json: String,
    /// Ids of the rules that flagged, as stored.
    pub flagged: Vec<String>,
    /// Ids of the rules that failed, as stored.
    pub failed: Vec<String>,
    /// The case's outcome, if one is recorded.
    pub outcome: Option<Outcome>,
}

/// What the shadow rules gave on one stored check.
pub struct StoredShadow {
    pub rule_set_hash: String,
    /// Ids of the rules that flagged.
    pub flagged: Vec<String>,
    /// Ids of the rules that failed.
    pub failed: Vec<String>,
}

/// A stored check with its id (storage order), from [`History::for_each_batch_by_id`].
#[cfg(test)]
pub struct StoredCheckById {
    pub id: i64,
    pub row: StoredCheckRow,
}

/// A stored check as [`History::for_each_check_batch`] reads it.
pub struct CheckRow<O> {
    /// The check's id: storage order.
    pub id: i64,
    pub case: String,
    /// Empty unless the stored results are read.
    pub rule_set_hash: String,
    pub profile_json: String,
    /// Ids of the rules that flagged, as stored (empty unless the results are read).
    pub flagged: Vec<String>,
    /// Ids of the rules that failed, as stored (empty unless the results are read).
    pub failed: Vec<String>,
    /// The case's outcome, if one is recorded.
    pub outcome: Option<O>,
}

/// The rule ids of a table keyed by (evaluation_id, rule_id), read alongside the checks
/// in id order: each check takes the ids with its own evaluation id.
pub(super) struct MergedIds<'s> {
    rows: Option<rusqlite::Rows<'s>>,
    next: Option<(i64, String)>,
}

impl<'s> MergedIds<'s> {
    pub(super) fn new(
        read: bool,
        statement: &'s mut rusqlite::Statement<'_>,
    ) -> Result<Self, StoreError> {
        let mut merged = Self {
            rows: if read {
                Some(statement.query([])?)
            } else {
                None
            },
            next: None,
        };
        merged.advance()?;
        Ok(merged)
    }

    fn advance(&mut self) -> Result<(), StoreError> {
        self.next = match self.rows.as_mut() {
            Some(rows) => match rows.next()? {
                Some(row) => Some((row.get(0)?, row.get(1)?)),
                None => None,
            },
            None => None,
        };
        Ok(())
    }

    /// The ids stored for evaluation `id`; ids must be asked for in increasing order.
    pub(super) fn of(&mut self, id: i64) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        while let Some((evaluation, _)) = &self.next {
            if *evaluation > id {
                break;
            }
            if let Some((evaluation, rule)) = self.next.take()
                && evaluation == id
            {
                ids.push(rule);
            }
            self.advance()?;
        }
        Ok(ids)
    }
}

/// The case's outcome read from `row`: `ended_on`, `outcome` and `reasons_json` in the
/// three columns from `first`, all NULL for a case without one.
fn outcome_at(
    row: &rusqlite::Row<'_>,
    first: usize,
    case: &str,
) -> Result<Option<Outcome>, StoreError> {
    let ended_on: Option<String> = row.get(first)?;
    ended_on
        .map(|ended_on| {
            stored_outcome(
                case,
                &ended_on,
                &row.get::<_, String>(first + 1)?,
                &row.get::<_, String>(first + 2)?,
            )
        })
        .transpose()
}

/// Every stored outcome, read once into memory in rowid order (the order
/// [`History::outcomes_without_checks`] reads them in), each parsed when first needed,
/// and marked as the checks go by with whether its case has a check that counts.
struct OutcomesInMemory<O> {
    rows: Vec<OutcomeInMemory<O>>,
}

/// An outcome row as stored.
struct OutcomeInMemory<O> {
    ended_on: String,
    outcome: String,
    reasons_json: String,
    /// Whether the case has a check that counts (a test check only if the range
    /// includes them), in or out of the range.
    has_checks: bool,
    mapped: Option<O>,
}

impl<O: Copy> OutcomesInMemory<O> {
    /// Reads every outcome, handing each one's case pseudonym to `case` in order: the
    /// outcome's index is its place in that order.
    fn read(conn: &Connection, mut case: impl FnMut(&str)) -> Result<Self, StoreError> {
        let mut statement = conn.prepare(
            "SELECT case_pseudonym, ended_on, outcome, reasons_json FROM outcomes ORDER BY rowid",
        )?;
        let mut rows = statement.query([])?;
        let mut outcomes = Vec::new();
        while let Some(row) = rows.next()? {
            case(text_at(row, 0)?);
            outcomes.push(OutcomeInMemory {
                ended_on: row.get(1)?,
                outcome: row.get(2)?,
                reasons_json: row.get(3)?,
                has_checks: false,
                mapped: None,
            });
        }
        Ok(Self { rows: outcomes })
    }

    /// Marks outcome `index` (if there is one) as having a check that counts; its
    /// `ended_on`.
    fn checked(&mut self, index: usize) -> Option<&str> {
        let row = self.rows.get_mut(index)?;
        row.has_checks = true;
        Some(&row.ended_on)
    }

    /// Outcome `index` of `case` as `of_outcome` maps it, parsed the first time.
    fn mapped(
        &mut self,
        index: usize,
        case: &str,
        of_outcome: impl Fn(&Outcome) -> O,
    ) -> Result<Option<O>, StoreError> {
        let Some(row) = self.rows.get_mut(index) else {
            return Ok(None);
        };
        if row.mapped.is_none() {
            let parsed = stored_outcome(case, &row.ended_on, &row.outcome, &row.reasons_json)?;
            row.mapped = Some(of_outcome(&parsed));
        }
        Ok(row.mapped)
    }

    /// The outcomes whose `ended_on` is `within` the range and whose case has no check
    /// that counts; `cases` in the order [`Self::read`] gave them.
    fn without_checks<'c>(
        &self,
        cases: impl Iterator<Item = &'c str>,
        within: impl Fn(&str) -> bool,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut without_checks = Vec::new();
        for (case, row) in cases.zip(&self.rows) {
            if !row.has_checks && within(&row.ended_on) {
                without_checks.push(stored_outcome(
                    case,
                    &row.ended_on,
                    &row.outcome,
                    &row.reasons_json,
                )?);
            }
        }
        Ok(without_checks)
    }
}

/// The checks a range selects: a real check by its own date or its case's outcome date, a
/// test check (when the range includes them) by its own date only, since its case id may
/// be a real person's, whose outcome it must never be joined with.
const FILTER: &str = "((o.ended_on BETWEEN ?1 AND ?2 AND e.test = 0) OR (e.checked_on BETWEEN ?1 AND ?2)) AND (?3 OR e.test = 0)";

/// What a test check's case is keyed by in the history's reads: its pseudonym behind a
/// prefix no pseudonym (hex digits) starts with, so that it is a case of its own, apart
/// from the real case with the same case id and that case's outcome.
pub(crate) fn test_case_key(pseudonym: &str) -> String {
    format!("test:{pseudonym}")
}

/// Whether a case key of the history's reads is a test check's ([`test_case_key`]).
pub(crate) fn is_test_case_key(key: &str) -> bool {
    key.starts_with("test:")
}

/// [`test_case_key`] in SQL, for a check `e`.
const CASE_KEY: &str =
    "CASE WHEN e.test = 0 THEN e.case_pseudonym ELSE 'test:' || e.case_pseudonym END";

/// A check's outcome in SQL: only a real check is joined with its case's outcome.
const OUTCOME_JOIN: &str =
    "LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym AND e.test = 0";

/// The stored history on one read-only connection: everything the audit and the replay
/// read, with the SQL kept here.
#[derive(Clone, Copy)]
pub struct History<'a> {
    pub(super) conn: &'a Connection,
}

impl<'a> History<'a> {
    pub(crate) fn new(conn: &'a Connection) -> Self {
        Self { conn }
    }

    /// How many stored checks a run over `range` reads (for a progress bar).
    pub fn count_checks(&self, range: Range) -> Result<u64, StoreError> {
        let count: i64 = if range.from.is_none() && range.to.is_none() {
            // An open range selects every check by its own date: no outcome is looked
            // up, and SQLite counts from its smallest index.
            self.conn.query_row(
                "SELECT count(*) FROM evaluations WHERE ?1 OR test = 0",
                [range.include_test],
                |row| row.get(0),
            )?
        } else {
            let (from, to) = range.bounds();
            self.conn.query_row(
                &format!("SELECT count(*) FROM evaluations e {OUTCOME_JOIN} WHERE {FILTER}"),
                params![from, to, range.include_test],
                |row| row.get(0),
            )?
        };
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// How many test checks the date range selects that `range` leaves out (none when it
    /// includes them).
    pub fn count_excluded_test_checks(&self, range: Range) -> Result<u64, StoreError> {
        if range.include_test {
            return Ok(0);
        }
        // Usually there are none: the partial index answers that without a scan.
        let any: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM evaluations WHERE test = 1)",
            [],
            |row| row.get(0),
        )?;
        if !any {
            return Ok(0);
        }
        let (from, to) = range.bounds();
        // By the check's own date only: a test check may carry a real person's case id,
        // and counted by that case's outcome date it told when the person's case ended.
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM evaluations WHERE checked_on BETWEEN ?1 AND ?2 AND test = 1",
            params![from, to],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The checks of `range` in storage order (by check id), with each
    /// row's [`StoredCheckById::id`]; flags and rule errors (with `read_results`) merged
    /// alongside. The joined query the tests hold [`Self::for_each_check_batch`]'s scan to.
    #[cfg(test)]
    pub fn for_each_batch_by_id(
        &self,
        range: Range,
        read_results: bool,
        mut on_batch: impl FnMut(Vec<StoredCheckById>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (from, to) = range.bounds();
        let sql = format!(
            "SELECT e.id, {CASE_KEY}, e.rule_set_hash, e.profile_json,
                    o.ended_on, o.outcome, o.reasons_json
             FROM evaluations e {OUTCOME_JOIN}
             WHERE {FILTER}
             ORDER BY e.id"
        );
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query(params![from, to, range.include_test])?;
        // Both tables are keyed by (evaluation_id, rule_id): read in that order.
        let mut flags = self
            .conn
            .prepare("SELECT evaluation_id, rule_id FROM flags ORDER BY evaluation_id, rule_id")?;
        let mut errors = self.conn.prepare(
            "SELECT evaluation_id, rule_id FROM rule_errors ORDER BY evaluation_id, rule_id",
        )?;
        let mut flags = MergedIds::new(read_results, &mut flags)?;
        let mut errors = MergedIds::new(read_results, &mut errors)?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let case: String = row.get(1)?;
            let outcome = outcome_at(row, 4, &case)?;
            batch.push(StoredCheckById {
                id,
                row: StoredCheckRow {
                    rule_set_hash: row.get(2)?,
                    profile_json: row.get(3)?,
                    flagged: flags.of(id)?,
                    failed: errors.of(id)?,
                    outcome,
                    case,
                },
            });
            if batch.len() == BATCH {
                on_batch(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
            }
        }
        if !batch.is_empty() {
            on_batch(batch)?;
        }
        Ok(())
    }

    /// The checks of `range` in storage order (by check id), to `on_batch` in batches
    /// of up to [`BATCH`], each with its case's outcome as `of_outcome` maps it. With
    /// `read_results`, each row also has its rule-set hash and the ids of the rules
    /// that flagged and failed (merged in id order, not looked up per check); without,
    /// those stay empty. Returns what [`Self::outcomes_without_checks`] returns, from
    /// the same read.
    ///
    /// Selects exactly the checks a join of each check to its case's outcome selects
    /// (the tests hold it to that join), but reads the outcomes into memory first and scans the checks alone instead of looking up each
    /// check's outcome in SQLite; each outcome is parsed once, when first needed, and
    /// the profile text is read only for the checks selected.
    pub fn for_each_check_batch<O: Copy>(
        &self,
        range: Range,
        read_results: bool,
        of_outcome: impl Fn(&Outcome) -> O,
        mut on_batch: impl FnMut(Vec<CheckRow<O>>) -> Result<(), StoreError>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let (from, to) = range.bounds();
        // SQLite's BETWEEN on text: byte order, as `str` compares.
        let within = |date: &str| from.as_str() <= date && date <= to.as_str();
        let mut cases = Vec::new();
        let mut outcomes = OutcomesInMemory::read(self.conn, |case| cases.push(case.to_owned()))?;
        let by_case: std::collections::HashMap<&str, usize> = cases
            .iter()
            .enumerate()
            .map(|(i, case)| (case.as_str(), i))
            .collect();
        let mut statement = self.conn.prepare(if read_results {
            "SELECT id, case_pseudonym, checked_on, test, profile_json, rule_set_hash
             FROM evaluations ORDER BY id"
        } else {
            "SELECT id, case_pseudonym, checked_on, test, profile_json, NULL
             FROM evaluations ORDER BY id"
        })?;
        let mut rows = statement.query([])?;
        // Both tables are keyed by (evaluation_id, rule_id): read in that order.
        let mut flags = self
            .conn
            .prepare("SELECT evaluation_id, rule_id FROM flags ORDER BY evaluation_id, rule_id")?;
        let mut errors = self.conn.prepare(
            "SELECT evaluation_id, rule_id FROM rule_errors ORDER BY evaluation_id, rule_id",
        )?;
        let mut flags = MergedIds::new(read_results, &mut flags)?;
        let mut errors = MergedIds::new(read_results, &mut errors)?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = rows.next()? {
            let test = row.get::<_, i64>(3)? != 0;
            if !range.include_test && test {
                continue;
            }
            // A test check is a case of its own, never joined with the outcome of a real
            // case that has its case id: test and real checks are two stories.
            let case = text_at(row, 1)?;
            let case = if test {
                std::borrow::Cow::Owned(test_case_key(case))
            } else {
                std::borrow::Cow::Borrowed(case)
            };
            let index = if test {
                None
            } else {
                by_case.get(case.as_ref()).copied()
            };
            let ended_in_range = index.and_then(|i| outcomes.checked(i)).is_some_and(within);
            if !ended_in_range && !within(text_at(row, 2)?) {
                continue;
            }
            let outcome = match index {
                Some(i) => outcomes.mapped(i, &cases[i], &of_outcome)?,
                None => None,
            };
            let id: i64 = row.get(0)?;
            batch.push(CheckRow {
                id,
                case: case.into_owned(),
                rule_set_hash: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                profile_json: row.get(4)?,
                flagged: flags.of(id)?,
                failed: errors.of(id)?,
                outcome,
            });
            if batch.len() == BATCH {
                on_batch(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
            }
        }
        if !batch.is_empty() {
            on_batch(batch)?;
        }
        outcomes.without_checks(cases.iter().map(String::as_str), within)
    }

    /// Whether any check of `range` was also evaluated with shadow rules.
    pub fn has_shadow_results(&self, range: Range) -> Result<bool, StoreError> {
        let (from, to) = range.bounds();
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM shadow_results s JOIN evaluations e ON e.id = s.evaluation_id
             {OUTCOME_JOIN} WHERE {FILTER})"
        );
        Ok(self
            .conn
            .query_row(&sql, params![from, to, range.include_test], |row| {
                row.get(0)
            })?)
    }

    /// How many checks `range` selects that have no shadow results (made before the
    /// shadow rules were set, or imported without them).
    pub fn checks_without_shadow_results(&self, range: Range) -> Result<i64, StoreError> {
        let (from, to) = range.bounds();
        let sql = format!(
            "SELECT count(*) FROM evaluations e
             {OUTCOME_JOIN} WHERE {FILTER}
             AND NOT EXISTS (SELECT 1 FROM shadow_results s WHERE s.evaluation_id = e.id)"
        );
        Ok(self
            .conn
            .query_row(&sql, params![from, to, range.include_test], |row| {
                row.get(0)
            })?)
    }

    /// Every rule id found in stored shadow results, sorted.
    pub fn shadow_rule_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT DISTINCT flagged || ' ' || failed FROM shadow_results")?;
        let mut ids = std::collections::BTreeSet::new();
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let text: String = row.get(0)?;
            ids.extend(text.split_whitespace().map(str::to_owned));
        }
        Ok(ids.into_iter().collect())
    }

    /// Streams the checks of `range` that were also evaluated with shadow rules, ordered
    /// by case, `checked_on` and storage order, with their live results and their shadow
    /// result.
    pub fn for_each_shadow_batch(
        &self,
        range: Range,
        mut on_batch: impl FnMut(Vec<(StoredCheckRow, StoredShadow)>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (from, to) = range.bounds();
        let sql = format!(
            "SELECT {CASE_KEY} AS case_key, e.rule_set_hash, e.profile_json,
                    (SELECT group_concat(f.rule_id, ' ') FROM flags f WHERE f.evaluation_id = e.id),
                    (SELECT group_concat(r.rule_id, ' ') FROM rule_errors r WHERE r.evaluation_id = e.id),
                    o.ended_on, o.outcome, o.reasons_json,
                    s.rule_set_hash, s.flagged, s.failed
             FROM evaluations e JOIN shadow_results s ON s.evaluation_id = e.id
             {OUTCOME_JOIN}
             WHERE {FILTER}
             ORDER BY case_key, e.checked_on, e.id"
        );
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query(params![from, to, range.include_test])?;
        let ids = |text: Option<String>| -> Vec<String> {
            text.map(|t| t.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = rows.next()? {
            let case: String = row.get(0)?;
            let outcome = outcome_at(row, 5, &case)?;
            let shadow = StoredShadow {
                rule_set_hash: row.get(8)?,
                flagged: ids(row.get(9)?),
                failed: ids(row.get(10)?),
            };
            let check = StoredCheckRow {
                rule_set_hash: row.get(1)?,
                profile_json: row.get(2)?,
                flagged: ids(row.get(3)?),
                failed: ids(row.get(4)?),
                outcome,
                case,
            };
            batch.push((check, shadow));
            if batch.len() == BATCH {
                on_batch(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
            }
        }
        if !batch.is_empty() {
            on_batch(batch)?;
        }
        Ok(())
    }

    /// The outcomes ended in `range` of cases with no stored real check at all (e.g. purged
    /// by retention): a test check is never its case id's real case.
    pub fn outcomes_without_checks(&self, range: Range) -> Result<Vec<Outcome>, StoreError> {
        let (from, to) = range.bounds();
        let mut statement = self.conn.prepare_cached(
            "SELECT o.case_pseudonym, o.ended_on, o.outcome, o.reasons_json FROM outcomes o
             WHERE o.ended_on BETWEEN ?1 AND ?2
               AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.case_pseudonym = o.case_pseudonym
                                 AND e.test = 0)",
        )?;
        let mut rows = statement.query(params![from, to])?;
        let mut outcomes = Vec::new();
        while let Some(row) = rows.next()? {
            let case: String = row.get(0)?;
            outcomes.push(stored_outcome(
                &case,
                &row.get::<_, String>(1)?,
                &row.get::<_, String>(2)?,
                &row.get::<_, String>(3)?,
            )?);
        }
        Ok(outcomes)
    }

    /// The name and version recorded for the rule set with `content_hash`; empty when it
    /// was never recorded.
    pub fn rule_set_name(&self, content_hash: &str) -> Result<(String, String), StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT name, version FROM rule_sets WHERE content_hash = ?1")?;
        Ok(statement
            .query_row([content_hash], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?
            .unwrap_or_default())
    }

    /// The manifest's text of the rule set with `content_hash`; `None` when it was never
    /// recorded.
    pub fn rule_set_manifest(&self, content_hash: &str) -> Result<Option<String>, StoreError> {
        super::responses::manifest_of(self.conn, content_hash)
    }

    /// Every rule id found in stored flags or rule errors, sorted.
    pub fn stored_rule_ids(&self) -> Result<Vec<String>, StoreError> {
        // The flags' ids are found by a skip scan of `flags_by_rule`: one index seek per
        // distinct id instead of a read of every flag. Rule errors are few.
        let mut statement = self.conn.prepare(
            "WITH RECURSIVE flagged(rule_id) AS (
                 SELECT min(rule_id) FROM flags
                 UNION ALL
                 SELECT (SELECT min(rule_id) FROM flags WHERE rule_id > flagged.rule_id)
                 FROM flagged WHERE flagged.rule_id IS NOT NULL
             )
             SELECT rule_id FROM flagged WHERE rule_id IS NOT NULL
             UNION SELECT rule_id FROM rule_errors ORDER BY 1",
        )?;
        let ids = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }
}

/// Distinct texts numbered in the order first seen, each stored once.
#[derive(Default)]
struct Interner {
    texts: Vec<String>,
    /// Each text's number, found by the text's hash; the text itself is kept once, in
    /// `texts`.
    numbers: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    /// The last text asked for: consecutive rows often repeat it.
    last: Option<u32>,
}

impl Interner {
    fn number(&mut self, text: &str) -> u32 {
        if let Some(last) = self.last
            && self.texts[last as usize] == text
        {
            return last;
        }
        let Self {
            texts,
            numbers,
            hasher,
            ..
        } = self;
        let hash = std::hash::BuildHasher::hash_one(&*hasher, text);
        let number = match numbers.find(hash, |&n| texts[n as usize] == text) {
            Some(&number) => number,
            None => {
                let number = u32::try_from(texts.len()).unwrap_or(u32::MAX);
                texts.push(text.to_owned());
                numbers.insert_unique(hash, number, |&n| {
                    std::hash::BuildHasher::hash_one(&*hasher, &texts[n as usize])
                });
                number
            }
        };
        self.last = Some(number);
        number
    }
}

/// One stored check as [`History::scan_checks`] reads it, from the cheap columns and
/// `check_facts`, never from the stored profile.
pub struct ScannedCheck<O> {
    /// The check's id: storage order.
    pub id: i64,
    /// Index into [`CheckScan::cases`].
    pub case: u32,
    pub stage: Stage,
    pub checked_on: Date,
    /// Index into [`CheckScan::rule_sets`].
    pub rule_set: u32,
    /// Index into [`CheckScan::requesters`].
    pub requested_by: u32,
    /// What the stored profile gives; `None` when it could not be read back.
    pub facts: Option<CheckFacts>,
    /// The case's outcome, if one is recorded (read only for checks the range selects).
    pub outcome: Option<O>,
    /// Whether the range selects the check: its case's outcome ended in the range, or it
    /// was made in the range.
    pub selected: bool,
    /// Whether it was made in the range (by `checked_on`).
    pub made_in_range: bool,
    /// Its rule ids in [`CheckScan`]'s list: flagged from `rules.0` to `rules.1`, failed
    /// from `rules.1` to `rules.2`.
    rules: (u32, u32, u32),
}

/// Every stored check (test checks only if the range includes them), read once for the
/// audit and the audit of answers. Texts repeated from check to check (case, rule set,
/// requester, rule id) are stored once and numbered.
pub struct CheckScan<O> {
    /// Case pseudonyms.
    pub cases: Vec<String>,
    /// Rule-set hashes.
    pub rule_sets: Vec<String>,
    /// Token names of the requesters.
    pub requesters: Vec<String>,
    /// Rule ids.
    pub rule_ids: Vec<String>,
    /// Indexes into `rule_ids`, the checks' ranges one after another.
    rule_refs: Vec<u32>,
    /// In storage order.
    pub checks: Vec<ScannedCheck<O>>,
    /// What [`History::outcomes_without_checks`] returns, from the same read.
    pub without_checks: Vec<Outcome>,
    /// By case number: the case's place in text order.
    case_order: Vec<u32>,
}

impl<O> CheckScan<O> {
    /// The rules that flagged at `check` (indexes into [`Self::rule_ids`], in id order).
    pub fn flagged(&self, check: &ScannedCheck<O>) -> &[u32] {
        &self.rule_refs[check.rules.0 as usize..check.rules.1 as usize]
    }

    /// The rules that failed at `check` (indexes into [`Self::rule_ids`], in id order).
    pub fn failed(&self, check: &ScannedCheck<O>) -> &[u32] {
        &self.rule_refs[check.rules.1 as usize..check.rules.2 as usize]
    }

    /// Each case's place when the cases are in text order (by [`ScannedCheck::case`]).
    pub fn case_order(&self) -> &[u32] {
        &self.case_order
    }
}

/// Each of `cases`' place when they are in text order.
fn text_order(cases: &[String]) -> Vec<u32> {
    let mut sorted: Vec<u32> = (0..u32::try_from(cases.len()).unwrap_or(u32::MAX)).collect();
    // Interned texts are distinct, so the order is total and sorting on all cores gives
    // the one order.
    sorted.par_sort_unstable_by(|&a, &b| cases[a as usize].cmp(&cases[b as usize]));
    let mut order = vec![0; cases.len()];
    for (place, case) in sorted.into_iter().enumerate() {
        order[case as usize] = u32::try_from(place).unwrap_or(u32::MAX);
    }
    order
}

impl History<'_> {
    /// Every stored check (test checks only if `range` includes them) in storage order,
    /// each marked with whether `range` selects it (the checks
    /// [`Self::for_each_check_batch`] reads) and whether it was made in `range`, with its
    /// case's outcome as `of_outcome` maps it (for the checks selected). Reads the cheap
    /// columns through the `evaluations_scan` index and the rest from `check_facts`,
    /// both front to back in id order; never a stored profile.
    pub fn scan_checks<O: Copy>(
        &self,
        range: Range,
        of_outcome: impl Fn(&Outcome) -> O,
    ) -> Result<CheckScan<O>, StoreError> {
        let (from, to) = range.bounds();
        let within = |date: &str| from.as_str() <= date && date <= to.as_str();
        // The cases with an outcome are numbered first, so a case's number is its
        // outcome's index.
        let mut cases = Interner::default();
        let mut outcomes = OutcomesInMemory::read(self.conn, |case| {
            cases.number(case);
        })?;
        let mut rule_sets = Interner::default();
        let mut requesters = Interner::default();
        let mut rule_ids = Interner::default();
        // Room for every check up front (the largest id bounds their number; room not
        // written to takes no memory), so the list is not copied as it grows. A bound
        // too large to reserve leaves the list to grow as it goes.
        let most: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM evaluations", [], |row| {
                    row.get(0)
                })?;
        let mut checks = Vec::new();
        let _ = checks.try_reserve(usize::try_from(most).unwrap_or(0));
        let mut rule_refs = Vec::new();
        let mut statement = self.conn.prepare(
            "SELECT id, case_pseudonym, checked_on, test, stage, rule_set_hash, requested_by
             FROM evaluations INDEXED BY evaluations_scan ORDER BY id",
        )?;
        let mut rows = statement.query([])?;
        let mut facts_statement = self.conn.prepare(&format!(
            "SELECT evaluation_id, {} FROM check_facts ORDER BY evaluation_id",
            super::facts::COLUMNS
        ))?;
        let mut facts_rows = facts_statement.query([])?;
        let mut facts_row = facts_rows.next()?;
        // A check without facts (its profile does not read back) still has its rules.
        let mut flags_of = self
            .conn
            .prepare("SELECT rule_id FROM flags WHERE evaluation_id = ?1 ORDER BY rule_id")?;
        let mut errors_of = self
            .conn
            .prepare("SELECT rule_id FROM rule_errors WHERE evaluation_id = ?1 ORDER BY rule_id")?;
        while let Some(row) = rows.next()? {
            let test = row.get::<_, i64>(3)? != 0;
            if !range.include_test && test {
                continue;
            }
            let id: i64 = row.get(0)?;
            // A test check is a case of its own, numbered after every case with an
            // outcome, so it is never joined with a real case's outcome.
            let case = if test {
                cases.number(&test_case_key(text_at(row, 1)?))
            } else {
                cases.number(text_at(row, 1)?)
            };
            let checked_on_text = text_at(row, 2)?;
            let made_in_range = within(checked_on_text);
            let ended_in_range = !test && outcomes.checked(case as usize).is_some_and(within);
            let selected = ended_in_range || made_in_range;
            let outcome = if selected {
                outcomes.mapped(case as usize, &cases.texts[case as usize], &of_outcome)?
            } else {
                None
            };
            while let Some(f) = facts_row
                && f.get::<_, i64>(0)? < id
            {
                facts_row = facts_rows.next()?;
            }
            let start = u32::try_from(rule_refs.len()).unwrap_or(u32::MAX);
            let (facts, flagged_end) = match facts_row {
                Some(f) if f.get::<_, i64>(0)? == id => {
                    let facts = super::facts::read(f, 1)?;
                    for rule in text_at(f, 11)?.split_whitespace() {
                        rule_refs.push(rule_ids.number(rule));
                    }
                    let flagged_end = u32::try_from(rule_refs.len()).unwrap_or(u32::MAX);
                    for rule in text_at(f, 12)?.split_whitespace() {
                        rule_refs.push(rule_ids.number(rule));
                    }
                    (Some(facts), flagged_end)
                }
                _ => {
                    let mut rows = flags_of.query([id])?;
                    while let Some(rule) = rows.next()? {
                        rule_refs.push(rule_ids.number(text_at(rule, 0)?));
                    }
                    let flagged_end = u32::try_from(rule_refs.len()).unwrap_or(u32::MAX);
                    let mut rows = errors_of.query([id])?;
                    while let Some(rule) = rows.next()? {
                        rule_refs.push(rule_ids.number(text_at(rule, 0)?));
                    }
                    (None, flagged_end)
                }
            };
            let end = u32::try_from(rule_refs.len()).unwrap_or(u32::MAX);
            checks.push(ScannedCheck {
                id,
                case,
                stage: Stage::from_name(text_at(row, 4)?)
                    .ok_or(StoreError::UnknownValue("evaluations.stage"))?,
                checked_on: Date::parse(checked_on_text)
                    .map_err(|_| StoreError::UnknownValue("evaluations.checked_on"))?,
                rule_set: rule_sets.number(text_at(row, 5)?),
                requested_by: requesters.number(text_at(row, 6)?),
                facts,
                outcome,
                selected,
                made_in_range,
                rules: (start, flagged_end, end),
            });
        }
        let without_checks =
            outcomes.without_checks(cases.texts.iter().map(String::as_str), within)?;
        Ok(CheckScan {
            case_order: text_order(&cases.texts),
            cases: cases.texts,
            rule_sets: rule_sets.texts,
            requesters: requesters.texts,
            rule_ids: rule_ids.texts,
            rule_refs,
            checks,
            without_checks,
        })
    }
}

/// Column `index` of `row` as text, borrowed from the row.
fn text_at<'r>(row: &'r rusqlite::Row<'_>, index: usize) -> Result<&'r str, StoreError> {
    let value = row.get_ref(index)?;
    Ok(value.as_str().map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(index, value.data_type(), Box::new(err))
    })?)
}

/// An outcome row read back; an unreadable row is an error, never a default.
fn stored_outcome(
    case: &str,
    ended_on: &str,
    outcome: &str,
    reasons_json: &str,
) -> Result<Outcome, StoreError> {
    let invalid = || StoreError::UnreadableOutcome;
    let reasons: Vec<String> = serde_json::from_str(reasons_json).map_err(|_| invalid())?;
    Ok(Outcome {
        case_id: CaseId::parse(case).map_err(|_| invalid())?,
        ended_on: Date::parse(ended_on).map_err(|_| invalid())?,
        outcome: OutcomeKind::from_name(outcome).ok_or_else(invalid)?,
        reasons: reasons
            .iter()
            .map(|r| EndReason::from_name(r).ok_or_else(invalid))
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interner_numbers_texts_in_the_order_first_seen() {
        let mut interner = Interner::default();
        let numbers: Vec<u32> = ["b", "a", "a", "c", "b", "a", "d"]
            .iter()
            .map(|text| interner.number(text))
            .collect();
        assert_eq!(numbers, [0, 1, 1, 2, 0, 1, 3]);
        assert_eq!(interner.texts, ["b", "a", "c", "d"]);
        // Many texts: each keeps its number once the table has grown.
        let many: Vec<String> = (0..10_000).map(|i| format!("case-{i}")).collect();
        let first: Vec<u32> = many.iter().map(|t| interner.number(t)).collect();
        let again: Vec<u32> = many.iter().rev().map(|t| interner.number(t)).collect();
        assert!(first.iter().eq(again.iter().rev()));
        assert_eq!(first[0], 4);
        assert_eq!(interner.texts.len(), 10_004);
    }

    /// A migrated in-memory store with rows that probe every edge of the selection:
    /// outcomes inside and outside the dates, checks inside and outside, cases without
    /// an outcome, test checks, and outcomes whose only checks are test checks or none.
    fn history_store() -> Connection {
        let mut conn = Connection::open_in_memory().expect("database");
        super::super::migrations()
            .to_latest(&mut conn)
            .expect("migrations");
        conn.execute(
            "INSERT INTO rule_sets VALUES ('h', 'gk', '1', '[]', '2020-01-01T00:00:00Z')",
            [],
        )
        .expect("rule set");
        let case = |n: u32| format!("{n:064x}");
        // (case, ended_on): cases 1..=4 have outcomes; 5 has only test checks; 6 none.
        for (n, ended_on) in [
            (1, "2021-06-30"),
            (2, "2023-01-15"),
            (3, "2019-02-01"),
            (5, "2021-03-01"),
            (6, "2021-04-01"),
            (4, "2022-12-31"),
        ] {
            conn.execute(
                "INSERT INTO outcomes VALUES (?1, ?2, 'returned_to_fk', '[\"goal_reached\"]', '', '')",
                params![case(n), ended_on],
            )
            .expect("outcome");
        }
        // (case, checked_on, test), in storage order.
        for (n, checked_on, test) in [
            (2, "2021-05-01", false),
            (1, "2020-01-10", false),
            (7, "2021-07-01", false),
            (3, "2018-12-01", false),
            (5, "2021-02-01", true),
            (2, "2022-12-01", true),
            (1, "2021-06-01", false),
            (7, "2019-01-01", false),
            (4, "2022-12-31", false),
        ] {
            conn.execute(
                "INSERT INTO evaluations (case_pseudonym, stage, checked_on, created_at, rule_set_hash,
                                          requested_by, profile_json, test)
                 VALUES (?1, 'before_gk', ?2, '', 'h', 't', ?3, ?4)",
                params![case(n), checked_on, format!("{{\"n\":{n}}}"), test],
            )
            .expect("check");
        }
        conn
    }

    type Selected = Vec<(i64, String, String, Option<String>)>;

    fn read_by_id(history: History<'_>, range: Range) -> Selected {
        let mut rows = Vec::new();
        history
            .for_each_batch_by_id(range, false, |batch| {
                rows.extend(batch.into_iter().map(|r| {
                    let outcome = r.row.outcome.map(|o| o.ended_on.to_string());
                    (r.id, r.row.case, r.row.profile_json, outcome)
                }));
                Ok(())
            })
            .expect("read by id");
        rows
    }

    fn read_for_replay(history: History<'_>, range: Range) -> (Selected, Vec<String>) {
        let mut rows = Vec::new();
        let without = history
            .for_each_check_batch(
                range,
                false,
                |o| o.ended_on,
                |batch| {
                    rows.extend(batch.into_iter().map(|r| {
                        let outcome = r.outcome.map(|d| d.to_string());
                        (r.id, r.case, r.profile_json, outcome)
                    }));
                    Ok(())
                },
            )
            .expect("read for replay");
        (
            rows,
            without.iter().map(|o| o.ended_on.to_string()).collect(),
        )
    }

    #[test]
    fn the_stored_rule_ids_are_every_flagged_and_failed_rule_once_in_order() {
        let conn = history_store();
        let history = History::new(&conn);
        assert!(history.stored_rule_ids().expect("ids").is_empty());
        // Checks 1..=9 exist; ids repeat across checks, and one is only ever an error.
        for (check, rule) in [(1, "m"), (2, "b"), (3, "m"), (4, "b"), (5, "zz"), (6, "a")] {
            conn.execute(
                "INSERT INTO flags VALUES (?1, ?2, 'warning', '')",
                params![check, rule],
            )
            .expect("flag");
        }
        for (check, rule) in [(7, "c"), (8, "b"), (9, "c")] {
            conn.execute(
                "INSERT INTO rule_errors VALUES (?1, ?2, 'runtime', '', NULL, NULL)",
                params![check, rule],
            )
            .expect("rule error");
        }
        assert_eq!(
            history.stored_rule_ids().expect("ids"),
            ["a", "b", "c", "m", "zz"]
        );
    }

    #[test]
    fn the_replay_reads_the_checks_and_outcomes_the_joined_queries_read() {
        let conn = history_store();
        let history = History::new(&conn);
        let date = |text: &str| Some(Date::parse(text).expect("date"));
        let mut ranges = Vec::new();
        for (from, to) in [
            (None, None),
            (date("2021-01-01"), date("2021-12-31")),
            (date("2022-12-31"), None),
            (None, date("2019-01-01")),
            (date("2030-01-01"), None),
        ] {
            for include_test in [false, true] {
                ranges.push(Range {
                    from,
                    to,
                    include_test,
                });
            }
        }
        for range in ranges {
            let (rows, without) = read_for_replay(history, range);
            assert_eq!(rows, read_by_id(history, range), "{range:?}");
            let expected: Vec<String> = history
                .outcomes_without_checks(range)
                .expect("without checks")
                .iter()
                .map(|o| o.ended_on.to_string())
                .collect();
            assert_eq!(without, expected, "{range:?}");
            assert_eq!(
                history.count_checks(range).expect("count"),
                rows.len() as u64,
                "{range:?}"
            );
        }
        // The open range reads every check but the test ones, the outcomes in order.
        let (rows, without) = read_for_replay(history, Range::default());
        assert_eq!(rows.len(), 7);
        // Cases 5 (test checks only) and 6 (none), by their distinct end dates.
        assert_eq!(without, ["2021-03-01", "2021-04-01"]);
    }

    type WithResults = Vec<(
        i64,
        String,
        String,
        Vec<String>,
        Vec<String>,
        Option<String>,
    )>;

    #[test]
    fn the_check_scan_reads_the_results_the_joined_query_reads() {
        let conn = history_store();
        // Rule ids on checks in and out of every range, one check with both kinds.
        conn.execute_batch(
            "INSERT INTO flags (evaluation_id, rule_id, severity, message) VALUES
               (1, 'b', 'info', ''), (1, 'a', 'info', ''), (3, 'c', 'info', ''),
               (5, 'd', 'info', ''), (7, 'e', 'info', ''), (9, 'f', 'info', '');
             INSERT INTO rule_errors (evaluation_id, rule_id, kind, message) VALUES
               (2, 'x', 'runtime', ''), (7, 'y', 'runtime', ''), (8, 'z', 'runtime', '');",
        )
        .expect("results");
        let history = History::new(&conn);
        let date = |text: &str| Some(Date::parse(text).expect("date"));
        for (from, to) in [
            (None, None),
            (date("2021-01-01"), date("2021-12-31")),
            (date("2022-12-31"), None),
        ] {
            for include_test in [false, true] {
                let range = Range {
                    from,
                    to,
                    include_test,
                };
                let mut expected: WithResults = Vec::new();
                history
                    .for_each_batch_by_id(range, true, |batch| {
                        expected.extend(batch.into_iter().map(|r| {
                            (
                                r.id,
                                r.row.case,
                                r.row.rule_set_hash,
                                r.row.flagged,
                                r.row.failed,
                                r.row.outcome.map(|o| o.ended_on.to_string()),
                            )
                        }));
                        Ok(())
                    })
                    .expect("joined");
                let mut scanned: WithResults = Vec::new();
                let without = history
                    .for_each_check_batch(
                        range,
                        true,
                        |o| o.ended_on,
                        |batch| {
                            scanned.extend(batch.into_iter().map(|r| {
                                (
                                    r.id,
                                    r.case,
                                    r.rule_set_hash,
                                    r.flagged,
                                    r.failed,
                                    r.outcome.map(|d| d.to_string()),
                                )
                            }));
                            Ok(())
                        },
                    )
                    .expect("scan");
                assert_eq!(scanned, expected, "{range:?}");
                assert!(scanned.iter().any(|r| !r.3.is_empty()), "{range:?}");
                let expected_without: Vec<Date> = history
                    .outcomes_without_checks(range)
                    .expect("without checks")
                    .iter()
                    .map(|o| o.ended_on)
                    .collect();
                let without: Vec<Date> = without.iter().map(|o| o.ended_on).collect();
                assert_eq!(without, expected_without, "{range:?}");
            }
        }
    }

    #[test]
    fn the_scan_selects_the_checks_and_outcomes_the_check_batches_read() {
        let conn = history_store();
        conn.execute_batch(
            "INSERT INTO flags (evaluation_id, rule_id, severity, message) VALUES
               (1, 'b', 'info', ''), (1, 'a', 'info', ''), (7, 'e', 'info', '');
             INSERT INTO rule_errors (evaluation_id, rule_id, kind, message) VALUES
               (7, 'y', 'runtime', ''), (8, 'z', 'runtime', '');
             INSERT INTO check_facts (evaluation_id, first_meeting_on, sex, flagged, failed)
               VALUES (7, '2021-06-20', 'female', 'e', 'y');",
        )
        .expect("results");
        let history = History::new(&conn);
        let date = |text: &str| Some(Date::parse(text).expect("date"));
        for (from, to) in [
            (None, None),
            (date("2021-01-01"), date("2021-12-31")),
            (date("2022-12-31"), None),
            (None, date("2019-01-01")),
            (date("2030-01-01"), None),
        ] {
            for include_test in [false, true] {
                let range = Range {
                    from,
                    to,
                    include_test,
                };
                let mut expected: WithResults = Vec::new();
                let expected_without = history
                    .for_each_check_batch(
                        range,
                        true,
                        |o| o.ended_on,
                        |batch| {
                            expected.extend(batch.into_iter().map(|r| {
                                (
                                    r.id,
                                    r.case,
                                    r.rule_set_hash,
                                    r.flagged,
                                    r.failed,
                                    r.outcome.map(|d| d.to_string()),
                                )
                            }));
                            Ok(())
                        },
                    )
                    .expect("batches");
                let scan = history.scan_checks(range, |o| o.ended_on).expect("scan");
                let ids = |refs: &[u32]| -> Vec<String> {
                    refs.iter()
                        .map(|&i| scan.rule_ids[i as usize].clone())
                        .collect()
                };
                let scanned: WithResults = scan
                    .checks
                    .iter()
                    .filter(|c| c.selected)
                    .map(|c| {
                        (
                            c.id,
                            scan.cases[c.case as usize].clone(),
                            scan.rule_sets[c.rule_set as usize].clone(),
                            ids(scan.flagged(c)),
                            ids(scan.failed(c)),
                            c.outcome.map(|d| d.to_string()),
                        )
                    })
                    .collect();
                assert_eq!(scanned, expected, "{range:?}");
                let ended = |o: &[Outcome]| o.iter().map(|o| o.ended_on).collect::<Vec<_>>();
                assert_eq!(
                    ended(&scan.without_checks),
                    ended(&expected_without),
                    "{range:?}"
                );
                // Made in the range: by `checked_on` alone.
                for check in &scan.checks {
                    let made = from.is_none_or(|d| d <= check.checked_on)
                        && to.is_none_or(|d| check.checked_on <= d);
                    assert_eq!(check.made_in_range, made);
                    assert_eq!(check.facts.is_some(), check.id == 7);
                }
                assert_eq!(
                    scan.checks.len(),
                    if include_test { 9 } else { 7 },
                    "{range:?}"
                );
            }
        }
        // Facts are read from their row, never from the stored profile.
        let scan = history
            .scan_checks(Range::default(), |o| o.ended_on)
            .expect("scan");
        let facts = scan
            .checks
            .iter()
            .find_map(|c| c.facts.as_ref())
            .expect("facts");
        assert_eq!(facts.first_meeting_on, date("2021-06-20"));
        assert_eq!(facts.covariates.sex, Some(crate::profile::Sex::Female));
        assert_eq!(facts.covariates.sgi, None);
        // Case order: by text.
        let order = scan.case_order();
        let mut by_order: Vec<&String> = scan.cases.iter().collect();
        by_order.sort();
        for (case, &place) in scan.cases.iter().zip(order) {
            assert_eq!(by_order[place as usize], case);
        }
    }

    #[test]
    fn a_facts_row_with_an_unknown_name_is_an_error_naming_the_column() {
        let conn = history_store();
        conn.execute(
            "INSERT INTO check_facts (evaluation_id, sex, flagged, failed) VALUES (1, 'kvinna', '', '')",
            [],
        )
        .expect("facts");
        let err = History::new(&conn)
            .scan_checks(Range::default(), |o| o.ended_on)
            .err()
            .expect("unknown name");
        assert!(
            matches!(err, StoreError::UnknownValue("check_facts.sex")),
            "{err:?}"
        );
    }

    #[test]
    fn an_unreadable_outcome_of_a_check_read_is_an_error() {
        let conn = history_store();
        conn.execute(
            "UPDATE outcomes SET reasons_json = 'x' WHERE ended_on = '2021-06-30'",
            [],
        )
        .expect("spoil");
        let history = History::new(&conn);
        let err = history
            .for_each_check_batch(Range::default(), false, |o| o.ended_on, |_| Ok(()))
            .expect_err("unreadable");
        assert!(matches!(err, StoreError::UnreadableOutcome), "{err:?}");
        let err = history
            .scan_checks(Range::default(), |o| o.ended_on)
            .err()
            .expect("unreadable");
        assert!(matches!(err, StoreError::UnreadableOutcome), "{err:?}");
        // Outside the dates read it is never looked at, as in the joined query.
        let later = Range {
            from: Some(Date::parse("2022-01-01").expect("date")),
            ..Range::default()
        };
        assert!(
            history
                .for_each_check_batch(later, false, |o| o.ended_on, |_| Ok(()))
                .is_ok()
        );
        assert!(history.scan_checks(later, |o| o.ended_on).is_ok());
    }

    #[test]
    fn merged_ids_give_each_check_its_own_rules_and_pass_over_checks_not_read() {
        let conn = Connection::open_in_memory().expect("database");
        conn.execute_batch(
            "CREATE TABLE f (evaluation_id INTEGER, rule_id TEXT);
             INSERT INTO f VALUES (1, 'a'), (1, 'b'), (2, 'c'), (4, 'd'), (7, 'e');",
        )
        .expect("table");
        let mut statement = conn
            .prepare("SELECT evaluation_id, rule_id FROM f ORDER BY 1, 2")
            .expect("statement");
        let mut merged = MergedIds::new(true, &mut statement).expect("query");
        assert_eq!(merged.of(1).expect("1"), ["a", "b"]);
        // Check 2 is outside the period read: its rule is passed over, not given to 3.
        assert!(merged.of(3).expect("3").is_empty());
        assert_eq!(merged.of(4).expect("4"), ["d"]);
        assert!(merged.of(8).expect("8").is_empty());
        assert!(merged.of(9).expect("9").is_empty());
        drop(merged);

        let mut unread = MergedIds::new(false, &mut statement).expect("not read");
        assert!(unread.of(1).expect("1").is_empty());
    }
}
