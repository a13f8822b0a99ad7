//! Officers' answers to flags (`flag_responses`): appended, never updated, so the newest
//! row per (check, rule) is the current answer and the older rows its history.

use rusqlite::{Connection, OptionalExtension, params};

use super::writer::{Op, Reply, log_access};
use super::{Access, Store, StoreError, named, now_rfc3339};
use crate::answer::{ResponseKind, StoredResponse};

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
        self.read(move |conn| {
            let sources: Option<String> = conn
                .prepare_cached("SELECT sources_json FROM rule_sets WHERE content_hash = ?1")?
                .query_row([content_hash], |row| row.get(0))
                .optional()?;
            let Some(sources) = sources else {
                return Ok(None);
            };
            let files: Vec<serde_json::Value> =
                serde_json::from_str(&sources).map_err(StoreError::Json)?;
            Ok(files
                .first()
                .and_then(|f| f.get("text"))
                .and_then(|t| t.as_str())
                .map(str::to_owned))
        })
        .await
    }
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
/// has a check made in the period, oldest first per case.
pub struct AnsweredCheckRow {
    pub evaluation_id: i64,
    pub case: String,
    /// `before_gk` or `gk_closing`, as stored.
    pub stage: String,
    pub checked_on: String,
    /// `gk.first_meeting_on` of the stored profile, when given.
    pub first_meeting_on: Option<String>,
    pub rule_set_hash: String,
    pub requested_by: String,
    /// Ids of the rules that flagged.
    pub flagged: Vec<String>,
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
    pub answers: Vec<CurrentAnswerRow>,
    pub rule_sets: Vec<RuleSetRow>,
}

impl super::history::History<'_> {
    /// Every check of the cases with a check made in `range` (by `checked_on`), ordered
    /// by case, `checked_on` and storage order; the current answers to their flags; and
    /// the rule sets that made them.
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
        // Test checks (made with a test token) are left out unless the range includes them.
        let selected = "SELECT DISTINCT case_pseudonym FROM evaluations
             WHERE checked_on BETWEEN ?1 AND ?2 AND (?3 OR test = 0)";
        let include_test = range.include_test;
        let mut statement = self.conn.prepare(&format!(
            "SELECT e.id, e.case_pseudonym, e.stage, e.checked_on,
                    json_extract(e.profile_json, '$.gk.first_meeting_on'), e.rule_set_hash,
                    e.requested_by,
                    (SELECT group_concat(f.rule_id, ' ') FROM flags f WHERE f.evaluation_id = e.id)
             FROM evaluations e
             WHERE e.case_pseudonym IN ({selected}) AND (?3 OR e.test = 0)
             ORDER BY e.case_pseudonym, e.checked_on, e.id"
        ))?;
        let checks = statement
            .query_map(params![from, to, include_test], |row| {
                let flagged: Option<String> = row.get(7)?;
                let first_meeting_on: Option<rusqlite::types::Value> = row.get(4)?;
                Ok(AnsweredCheckRow {
                    evaluation_id: row.get(0)?,
                    case: row.get(1)?,
                    stage: row.get(2)?,
                    checked_on: row.get(3)?,
                    first_meeting_on: match first_meeting_on {
                        Some(rusqlite::types::Value::Text(text)) => Some(text),
                        _ => None,
                    },
                    rule_set_hash: row.get(5)?,
                    requested_by: row.get(6)?,
                    flagged: flagged
                        .map(|t| t.split(' ').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut statement = self.conn.prepare(&format!(
            "SELECT r.evaluation_id, r.rule_id, r.response, r.reason
             FROM flag_responses r JOIN evaluations e ON e.id = r.evaluation_id
             WHERE e.case_pseudonym IN ({selected}) AND (?3 OR e.test = 0)
               AND r.id = (SELECT max(l.id) FROM flag_responses l
                           WHERE l.evaluation_id = r.evaluation_id AND l.rule_id = r.rule_id)"
        ))?;
        let answers = statement
            .query_map(params![from, to, include_test], |row| {
                Ok(CurrentAnswerRow {
                    evaluation_id: row.get(0)?,
                    rule_id: row.get(1)?,
                    response: named(row, 2, "flag_responses.response")?,
                    reason: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
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
            answers,
            rule_sets,
        })
    }
}
