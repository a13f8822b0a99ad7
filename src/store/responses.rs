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
