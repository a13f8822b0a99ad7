//! The stored history as the audit and the replay read it: checks (profile, flags, rule
//! errors) joined with their case's outcome, streamed in batches oldest check of each case
//! first, outcomes of cases without checks, rule-set names, and rule ids ever stored.
//!
//! A date range selects the rows: every check of a case whose outcome ended in the range
//! and every check made in the range. An open end is unbounded. Test checks (made with a
//! test-purpose token) are left out unless the range includes them.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::outcome::{EndReason, Outcome, OutcomeKind};
use crate::profile::{CaseId, Date};

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
pub struct StoredCheckById {
    pub id: i64,
    pub row: StoredCheckRow,
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

const FILTER: &str =
    "((o.ended_on BETWEEN ?1 AND ?2) OR (e.checked_on BETWEEN ?1 AND ?2)) AND (?3 OR e.test = 0)";

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
        let (from, to) = range.bounds();
        let sql = format!(
            "SELECT count(*) FROM evaluations e LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym WHERE {FILTER}"
        );
        let count: i64 =
            self.conn
                .query_row(&sql, params![from, to, range.include_test], |row| {
                    row.get(0)
                })?;
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
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM evaluations e LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym
             WHERE ((o.ended_on BETWEEN ?1 AND ?2) OR (e.checked_on BETWEEN ?1 AND ?2)) AND e.test = 1",
            params![from, to],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Streams the checks of `range`, ordered by case, `checked_on` and storage order, to
    /// `on_batch` in batches of up to [`BATCH`]. A case's checks may span two batches. With
    /// `read_results` false, [`StoredCheckRow::flagged`] and [`StoredCheckRow::failed`] stay
    /// empty (a replay evaluates the profiles again; the lookups are a third of the read).
    pub fn for_each_batch(
        &self,
        range: Range,
        read_results: bool,
        mut on_batch: impl FnMut(Vec<StoredCheckRow>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (from, to) = range.bounds();
        let results = if read_results {
            "(SELECT group_concat(f.rule_id, ' ') FROM flags f WHERE f.evaluation_id = e.id),
             (SELECT group_concat(r.rule_id, ' ') FROM rule_errors r WHERE r.evaluation_id = e.id)"
        } else {
            "NULL, NULL"
        };
        let sql = format!(
            "SELECT e.case_pseudonym, e.rule_set_hash, e.profile_json, {results},
                    o.ended_on, o.outcome, o.reasons_json
             FROM evaluations e LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym
             WHERE {FILTER}
             ORDER BY e.case_pseudonym, e.checked_on, e.id"
        );
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query(params![from, to, range.include_test])?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = rows.next()? {
            let case: String = row.get(0)?;
            let ids = |text: Option<String>| -> Vec<String> {
                text.map(|t| t.split(' ').map(str::to_owned).collect())
                    .unwrap_or_default()
            };
            let outcome = outcome_at(row, 5, &case)?;
            batch.push(StoredCheckRow {
                rule_set_hash: row.get(1)?,
                profile_json: row.get(2)?,
                flagged: ids(row.get(3)?),
                failed: ids(row.get(4)?),
                outcome,
                case,
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

    /// Like [`Self::for_each_batch`], but in storage order (by check id), which reads
    /// the table front to back instead of one random page per check, and with each
    /// row's [`StoredCheckById::id`] so the caller can order a case's checks. Flags and
    /// rule errors (with `read_results`) are read in the same order and merged, not
    /// looked up per check.
    pub fn for_each_batch_by_id(
        &self,
        range: Range,
        read_results: bool,
        mut on_batch: impl FnMut(Vec<StoredCheckById>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (from, to) = range.bounds();
        let sql = format!(
            "SELECT e.id, e.case_pseudonym, e.rule_set_hash, e.profile_json,
                    o.ended_on, o.outcome, o.reasons_json
             FROM evaluations e LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym
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

    /// Whether any check of `range` was also evaluated with shadow rules.
    pub fn has_shadow_results(&self, range: Range) -> Result<bool, StoreError> {
        let (from, to) = range.bounds();
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM shadow_results s JOIN evaluations e ON e.id = s.evaluation_id
             LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym WHERE {FILTER})"
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

    /// Streams the checks of `range` that were also evaluated with shadow rules, like
    /// [`Self::for_each_batch`] with the live results read, each with its shadow result.
    pub fn for_each_shadow_batch(
        &self,
        range: Range,
        mut on_batch: impl FnMut(Vec<(StoredCheckRow, StoredShadow)>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (from, to) = range.bounds();
        let sql = format!(
            "SELECT e.case_pseudonym, e.rule_set_hash, e.profile_json,
                    (SELECT group_concat(f.rule_id, ' ') FROM flags f WHERE f.evaluation_id = e.id),
                    (SELECT group_concat(r.rule_id, ' ') FROM rule_errors r WHERE r.evaluation_id = e.id),
                    o.ended_on, o.outcome, o.reasons_json,
                    s.rule_set_hash, s.flagged, s.failed
             FROM evaluations e JOIN shadow_results s ON s.evaluation_id = e.id
             LEFT JOIN outcomes o ON o.case_pseudonym = e.case_pseudonym
             WHERE {FILTER}
             ORDER BY e.case_pseudonym, e.checked_on, e.id"
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

    /// The outcomes ended in `range` of cases with no stored check at all (e.g. purged by
    /// retention), test checks counting only when `range` includes them.
    pub fn outcomes_without_checks(&self, range: Range) -> Result<Vec<Outcome>, StoreError> {
        let (from, to) = range.bounds();
        let mut statement = self.conn.prepare_cached(
            "SELECT o.case_pseudonym, o.ended_on, o.outcome, o.reasons_json FROM outcomes o
             WHERE o.ended_on BETWEEN ?1 AND ?2
               AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.case_pseudonym = o.case_pseudonym
                                 AND (?3 OR e.test = 0))",
        )?;
        let mut rows = statement.query(params![from, to, range.include_test])?;
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

    /// Every rule id found in stored flags or rule errors, sorted.
    pub fn stored_rule_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT rule_id FROM flags UNION SELECT rule_id FROM rule_errors ORDER BY 1",
        )?;
        let ids = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }
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
