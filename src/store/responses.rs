//! Officers' answers to flags (`flag_responses`): appended, never updated, so the newest
//! row per (check, rule) is the current answer and the older rows its history.

use rusqlite::{Connection, OptionalExtension, params};

use super::writer::{Op, Reply, log_access};
use super::{Access, Store, StoreError, named, now_rfc3339};
use crate::answer::{ResponseKind, StoredResponse};
use crate::profile::{Date, Stage};

/// An answer about to be stored.
#[derive(Clone, Debug)]
pub struct NewResponse {
    pub evaluation_id: i64,
    pub rule_id: String,
    pub response: ResponseKind,
    pub reason: Option<String>,
    pub answered_by: String,
}

impl Store {
    /// Stores an answer with its access-log entry in one commit; returns it as stored
    /// once durable.
    pub async fn insert_response(
        &self,
        response: NewResponse,
        access: Access,
    ) -> Result<StoredResponse, StoreError> {
        match self.write(Op::Response(Box::new(response), access)).await? {
            Reply::Response(stored) => Ok(stored),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// The manifest text recorded for the rule set with `content_hash`, if recorded.
    pub async fn rule_set_manifest(
        &self,
        content_hash: String,
    ) -> Result<Option<String>, StoreError> {
        self.read(move |conn| manifest_of(conn, &content_hash))
            .await
    }
}

/// The manifest's text of the rule set stored under `content_hash`, or `None` when no
/// such set was recorded.
pub(super) fn manifest_of(
    conn: &Connection,
    content_hash: &str,
) -> Result<Option<String>, StoreError> {
    let sources: Option<String> = conn
        .prepare_cached("SELECT sources_json FROM rule_sets WHERE content_hash = ?1")?
        .query_row([content_hash], |row| row.get(0))
        .optional()?;
    let Some(sources) = sources else {
        return Ok(None);
    };
    let files: Vec<serde_json::Value> = serde_json::from_str(&sources).map_err(StoreError::Json)?;
    Ok(files
        .first()
        .and_then(|f| f.get("text"))
        .and_then(|t| t.as_str())
        .map(str::to_owned))
}

/// Inserts `response` and its access-log entry (within the writer's transaction).
pub(super) fn insert(
    conn: &Connection,
    response: &NewResponse,
    access: &Access,
) -> Result<StoredResponse, StoreError> {
    let now = now_rfc3339();
    conn.prepare_cached(
        "INSERT INTO flag_responses (evaluation_id, rule_id, response, reason, answered_at, answered_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        response.evaluation_id,
        response.rule_id,
        crate::names::name_of(&response.response),
        response.reason,
        now,
        response.answered_by,
    ])?;
    log_access(conn, access, &now)?;
    Ok(StoredResponse {
        rule_id: response.rule_id.clone(),
        response: response.response,
        reason: response.reason.clone(),
        answered_at: now,
        answered_by: response.answered_by.clone(),
    })
}

/// The current answer to each answered flag of a check, by rule id.
pub(super) fn current(
    conn: &Connection,
    evaluation_id: i64,
) -> Result<Vec<StoredResponse>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT r.rule_id, r.response, r.reason, r.answered_at, r.answered_by
         FROM flag_responses r
         WHERE r.evaluation_id = ?1
           AND r.id = (SELECT max(l.id) FROM flag_responses l
                       WHERE l.evaluation_id = r.evaluation_id AND l.rule_id = r.rule_id)
         ORDER BY r.rule_id",
    )?;
    let responses = statement
        .query_map([evaluation_id], |row| {
            Ok(StoredResponse {
                rule_id: row.get(0)?,
                response: named(row, 1, "flag_responses.response")?,
                reason: row.get(2)?,
                answered_at: row.get(3)?,
                answered_by: row.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(responses)
}

/// One stored check as the audit of answers reads it: every check of each case that
/// has a check made in the period, oldest first per case. Texts repeated from check to
/// check are numbered.
pub struct AnsweredCheckRow {
    pub evaluation_id: i64,
    /// The case's number: the rows of a case follow one another.
    pub case: u32,
    pub stage: Stage,
    pub checked_on: Date,
    /// `gk.first_meeting_on` of the stored profile, when given.
    pub first_meeting_on: Option<Date>,
    /// Index into [`AnsweredHistory::rule_set_hashes`].
    pub rule_set: u32,
    /// The requester's number (officers are never named).
    pub requested_by: u32,
    /// Indexes into [`AnsweredHistory::rule_ids`] of the rules that flagged, in id order.
    pub flagged: Vec<u32>,
}

/// The current answer to one flag, as the audit reads it.
pub struct CurrentAnswerRow {
    pub evaluation_id: i64,
    pub rule_id: String,
    pub response: ResponseKind,
    pub reason: Option<String>,
}

/// A rule set that made a check the audit of answers reads.
pub struct RuleSetRow {
    pub content_hash: String,
    pub name: String,
    pub version: String,
    /// The manifest's text, for the reasons' labels.
    pub manifest: Option<String>,
}

/// What the audit of answers reads for a period.
pub struct AnsweredHistory {
    pub checks: Vec<AnsweredCheckRow>,
    /// The content hashes of the checks' rule sets, by [`AnsweredCheckRow::rule_set`].
    pub rule_set_hashes: Vec<String>,
    /// The ids of the rules that flagged, by [`AnsweredCheckRow::flagged`].
    pub rule_ids: Vec<String>,
    pub answers: Vec<CurrentAnswerRow>,
    pub rule_sets: Vec<RuleSetRow>,
}

impl super::history::History<'_> {
    /// What the audit of answers reads, its checks from `scan`: every check of the cases
    /// with a check made in the scanned range (by `checked_on`), ordered by case,
    /// `checked_on` and storage order; the current answers to their flags; and the rule
    /// sets that made them. A check without facts (its stored profile does not read back)
    /// has its first meeting looked up in the stored profile's text.
    pub fn answered_history_of_scan<O>(
        &self,
        scan: &super::history::CheckScan<O>,
    ) -> Result<AnsweredHistory, StoreError> {
        let mut case_selected = vec![false; scan.cases.len()];
        for check in &scan.checks {
            if check.made_in_range {
                case_selected[check.case as usize] = true;
            }
        }
        let order = scan.case_order();
        let mut selected: Vec<&super::history::ScannedCheck<O>> = scan
            .checks
            .iter()
            .filter(|c| case_selected[c.case as usize])
            .collect();
        selected.sort_unstable_by_key(|c| (order[c.case as usize], c.checked_on, c.id));
        let mut unknown = self.conn.prepare(
            "SELECT json_extract(profile_json, '$.gk.first_meeting_on') FROM evaluations WHERE id = ?1",
        )?;
        let mut checks = Vec::with_capacity(selected.len());
        for check in selected {
            let first_meeting_on = match &check.facts {
                Some(facts) => facts.first_meeting_on,
                None => match unknown.query_row([check.id], |row| row.get(0))? {
                    rusqlite::types::Value::Text(text) => Date::parse(&text).ok(),
                    _ => None,
                },
            };
            checks.push(AnsweredCheckRow {
                evaluation_id: check.id,
                case: check.case,
                stage: check.stage,
                checked_on: check.checked_on,
                first_meeting_on,
                rule_set: check.rule_set,
                requested_by: check.requested_by,
                flagged: scan.flagged(check).to_vec(),
            });
        }
        self.with_answers(checks, scan.rule_sets.clone(), scan.rule_ids.clone())
    }

    /// Every check of the cases with a check made in `range` (by `checked_on`), ordered
    /// by case, `checked_on` and storage order; the current answers to their flags; and
    /// the rule sets that made them. Read from the stored profiles as before
    /// `check_facts`: the tests hold [`Self::answered_history_of_scan`] to it.
    #[cfg(test)]
    pub fn answered_history(
        &self,
        range: super::history::Range,
    ) -> Result<AnsweredHistory, StoreError> {
        let from = range
            .from
            .map_or_else(|| "0000-01-01".to_owned(), |d| d.to_string());
        let to = range
            .to
            .map_or_else(|| "9999-12-31".to_owned(), |d| d.to_string());
        let (checks, rule_set_hashes, rule_ids) =
            self.answered_checks(&from, &to, range.include_test)?;
        self.with_answers(checks, rule_set_hashes, rule_ids)
    }

    /// `checks` with the current answers to their flags and the rule sets.
    fn with_answers(
        &self,
        checks: Vec<AnsweredCheckRow>,
        rule_set_hashes: Vec<String>,
        rule_ids: Vec<String>,
    ) -> Result<AnsweredHistory, StoreError> {
        // The current answers to the flags of those checks.
        let read: std::collections::HashSet<i64> = checks.iter().map(|c| c.evaluation_id).collect();
        let mut statement = self.conn.prepare(
            "SELECT r.evaluation_id, r.rule_id, r.response, r.reason
             FROM flag_responses r
             WHERE r.id = (SELECT max(l.id) FROM flag_responses l
                           WHERE l.evaluation_id = r.evaluation_id AND l.rule_id = r.rule_id)",
        )?;
        let mut answers = Vec::new();
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let evaluation_id: i64 = row.get(0)?;
            if read.contains(&evaluation_id) {
                answers.push(CurrentAnswerRow {
                    evaluation_id,
                    rule_id: row.get(1)?,
                    response: named(row, 2, "flag_responses.response")?,
                    reason: row.get(3)?,
                });
            }
        }
        let mut statement = self.conn.prepare(
            "SELECT content_hash, name, version, json_extract(sources_json, '$[0].text')
             FROM rule_sets ORDER BY first_seen_at, content_hash",
        )?;
        let rule_sets = statement
            .query_map([], |row| {
                Ok(RuleSetRow {
                    content_hash: row.get(0)?,
                    name: row.get(1)?,
                    version: row.get(2)?,
                    manifest: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AnsweredHistory {
            checks,
            rule_set_hashes,
            rule_ids,
            answers,
            rule_sets,
        })
    }

    /// The checks of [`Self::answered_history`]: read in storage order (front to back
    /// through the table, flags merged alongside), then selected and put in case order.
    #[cfg(test)]
    #[allow(clippy::type_complexity)]
    fn answered_checks(
        &self,
        from: &str,
        to: &str,
        include_test: bool,
    ) -> Result<(Vec<AnsweredCheckRow>, Vec<String>, Vec<String>), StoreError> {
        /// A check as stored, before its texts are numbered.
        struct Read {
            evaluation_id: i64,
            case: String,
            stage: String,
            checked_on: String,
            rule_set_hash: String,
            requested_by: String,
            flagged: Vec<String>,
        }
        let mut statement = self.conn.prepare(
            "SELECT e.id, e.case_pseudonym, e.stage, e.checked_on, e.rule_set_hash, e.requested_by,
                    e.test
             FROM evaluations e WHERE (?1 OR e.test = 0) ORDER BY e.id",
        )?;
        let mut flags = self
            .conn
            .prepare("SELECT evaluation_id, rule_id FROM flags ORDER BY evaluation_id, rule_id")?;
        let mut flags = super::history::MergedIds::new(true, &mut flags)?;
        let mut rows = statement.query([include_test])?;
        let mut checks = Vec::new();
        // The cases with a check made in the period (text order, as SQL compares them).
        let mut selected = std::collections::HashSet::new();
        while let Some(row) = rows.next()? {
            let evaluation_id: i64 = row.get(0)?;
            let case: String = row.get(1)?;
            let check = Read {
                evaluation_id,
                // A test check's case is apart from the real one with its case id.
                case: if row.get::<_, i64>(6)? != 0 {
                    super::history::test_case_key(&case)
                } else {
                    case
                },
                stage: row.get(2)?,
                checked_on: row.get(3)?,
                rule_set_hash: row.get(4)?,
                requested_by: row.get(5)?,
                flagged: flags.of(evaluation_id)?,
            };
            if (from..=to).contains(&check.checked_on.as_str()) {
                selected.insert(check.case.clone());
            }
            checks.push(check);
        }
        checks.retain(|c| selected.contains(&c.case));
        checks.sort_unstable_by(|a, b| {
            (a.case.as_str(), a.checked_on.as_str(), a.evaluation_id).cmp(&(
                b.case.as_str(),
                b.checked_on.as_str(),
                b.evaluation_id,
            ))
        });
        let mut unknown = self.conn.prepare(
            "SELECT json_extract(profile_json, '$.gk.first_meeting_on') FROM evaluations WHERE id = ?1",
        )?;
        let mut numbered = Vec::with_capacity(checks.len());
        let (mut cases, mut rule_sets, mut requesters, mut rule_ids) = Default::default();
        let number = |texts: &mut Vec<String>, text: &str| -> u32 {
            let at = texts.iter().position(|t| t == text).unwrap_or_else(|| {
                texts.push(text.to_owned());
                texts.len() - 1
            });
            u32::try_from(at).unwrap_or(u32::MAX)
        };
        for check in checks {
            let first_meeting_on: Option<Date> =
                match unknown.query_row([check.evaluation_id], |row| row.get(0))? {
                    rusqlite::types::Value::Text(text) => Date::parse(&text).ok(),
                    _ => None,
                };
            numbered.push(AnsweredCheckRow {
                evaluation_id: check.evaluation_id,
                case: number(&mut cases, &check.case),
                stage: Stage::from_name(&check.stage)
                    .ok_or(StoreError::UnknownValue("evaluations.stage"))?,
                checked_on: Date::parse(&check.checked_on)
                    .map_err(|_| StoreError::UnknownValue("evaluations.checked_on"))?,
                first_meeting_on,
                rule_set: number(&mut rule_sets, &check.rule_set_hash),
                requested_by: number(&mut requesters, &check.requested_by),
                flagged: check
                    .flagged
                    .iter()
                    .map(|id| number(&mut rule_ids, id))
                    .collect(),
            });
        }
        Ok((numbered, rule_sets, rule_ids))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::profile::Date;
    use crate::store::history::{History, Range};

    /// A database with checks of three cases: `A` has checks inside and outside the
    /// period (stored out of date order), `B` only outside it, `C` only a test check
    /// inside it.
    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().expect("database");
        super::super::migrations()
            .to_latest(&mut conn)
            .expect("schema");
        conn.execute_batch(
            r#"PRAGMA foreign_keys = OFF;
               INSERT INTO evaluations (id, case_pseudonym, stage, checked_on, created_at, rule_set_hash, requested_by, profile_json, test) VALUES
                 (1, 'A', 'before_gk', '2024-05-01', 't', 'h', 'x', '{"gk":{"first_meeting_on":"2024-05-20"}}', 0),
                 (2, 'B', 'before_gk', '2023-01-01', 't', 'h', 'y', '{"gk":{"first_meeting_on":null}}', 0),
                 (3, 'A', 'before_gk', '2024-01-10', 't', 'h', 'x', '{"gk":{}}', 0),
                 (4, 'C', 'before_gk', '2024-02-01', 't', 'h', 'x', '{"gk":{"first_meeting_on":"2024-03-01"}}', 1),
                 (5, 'A', 'gk_closing', '2023-12-30', 't', 'h', 'y', '{"gk":{"first_meeting_on":"2024-01-05"}}', 0),
                 (6, 'A', 'before_gk', '2024-01-10', 't', 'h', 'x', '{"gk":{"first_meeting_on":"2024-01-20"}}', 0);
               INSERT INTO flags (evaluation_id, rule_id, severity, message) VALUES
                 (1, 'b', 'info', 'm'), (1, 'a', 'info', 'm'), (2, 'a', 'info', 'm'), (6, 'c', 'info', 'm');"#,
        )
        .expect("rows");
        conn
    }

    fn summary(history: &AnsweredHistory) -> Vec<(i64, Option<String>, Vec<String>)> {
        history
            .checks
            .iter()
            .map(|c| {
                (
                    c.evaluation_id,
                    c.first_meeting_on.map(|d| d.to_string()),
                    c.flagged
                        .iter()
                        .map(|&id| history.rule_ids[id as usize].clone())
                        .collect(),
                )
            })
            .collect()
    }

    /// Everything of the checks read, with the texts the numbers stand for.
    fn full(history: &AnsweredHistory) -> Vec<String> {
        let mut cases = Vec::new();
        let mut officers = Vec::new();
        history
            .checks
            .iter()
            .map(|c| {
                // Numbers in order of first appearance, so both reads can be compared.
                let first = |seen: &mut Vec<u32>, n: u32| {
                    seen.iter().position(|&s| s == n).unwrap_or_else(|| {
                        seen.push(n);
                        seen.len() - 1
                    })
                };
                format!(
                    "{} {} {:?} {} {:?} {} {} {:?}",
                    c.evaluation_id,
                    first(&mut cases, c.case),
                    c.stage,
                    c.checked_on,
                    c.first_meeting_on,
                    history.rule_set_hashes[c.rule_set as usize],
                    first(&mut officers, c.requested_by),
                    summary(history)
                        .into_iter()
                        .find(|s| s.0 == c.evaluation_id)
                        .map(|s| s.2)
                )
            })
            .collect()
    }

    fn of_scan(history: History<'_>, range: Range) -> AnsweredHistory {
        let scan = history.scan_checks(range, |o| o.ended_on).expect("scan");
        history.answered_history_of_scan(&scan).expect("read")
    }

    fn date(text: &str) -> Date {
        Date::parse(text).expect("date")
    }

    #[test]
    fn checks_of_cases_checked_in_the_period_come_in_case_and_date_order() {
        let conn = database();
        let history = History::new(&conn);
        let range = Range {
            from: Some(date("2024-01-01")),
            to: Some(date("2024-12-31")),
            include_test: false,
        };
        let read = history.answered_history(range).expect("read");
        let some = |t: &str| Some(t.to_owned());
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // All of A's checks (one outside the period), oldest first, ties by storage order;
        // B has no check in the period and C only a test check.
        assert_eq!(
            summary(&read),
            [
                (5, some("2024-01-05"), vec![]),
                (3, None, vec![]),
                (6, some("2024-01-20"), ids(&["c"])),
                (1, some("2024-05-20"), ids(&["a", "b"])),
            ]
        );
        // The scan reads the same, the checks without facts from their profiles.
        for range in [
            range,
            Range {
                include_test: true,
                ..range
            },
            Range::default(),
        ] {
            assert_eq!(
                full(&of_scan(history, range)),
                full(&history.answered_history(range).expect("read")),
                "{range:?}"
            );
        }
        // A check with facts has its first meeting and flags from them.
        conn.execute(
            "INSERT INTO check_facts (evaluation_id, first_meeting_on, flagged, failed)
             VALUES (1, '2024-05-21', 'a b', '')",
            [],
        )
        .expect("facts");
        let history = History::new(&conn);
        let scanned = summary(&of_scan(history, range));
        assert_eq!(scanned[3], (1, some("2024-05-21"), ids(&["a", "b"])));
        assert_eq!(scanned[..3], summary(&read)[..3]);

        let with_test = history
            .answered_history(Range {
                include_test: true,
                ..range
            })
            .expect("read");
        assert_eq!(
            summary(&with_test).iter().map(|c| c.0).collect::<Vec<_>>(),
            [5, 3, 6, 1, 4]
        );
        let everything = history.answered_history(Range::default()).expect("read");
        assert_eq!(
            summary(&everything).iter().map(|c| c.0).collect::<Vec<_>>(),
            [5, 3, 6, 1, 2]
        );
    }
}
