//! The rule sets ever recorded: their use (checks, first and last use) and their stored
//! text, for the rule-set history and its diffs.

use rusqlite::{Connection, OptionalExtension};

use super::{Store, StoreError};
use crate::ruleset::SourceFile;

/// One recorded rule set and how it was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSetUse {
    pub content_hash: String,
    pub name: String,
    pub version: String,
    /// When the service first loaded it (RFC 3339, UTC).
    pub first_seen_at: String,
    /// The first and last stored check made with it (RFC 3339, UTC); `None` without checks.
    pub first_used_at: Option<String>,
    pub last_used_at: Option<String>,
    /// Stored checks made with it.
    pub checks: u64,
}

/// A recorded rule set's text: the manifest first, then each script.
#[derive(Clone, Debug)]
pub struct RuleSetText {
    pub content_hash: String,
    pub name: String,
    pub version: String,
    pub sources: Vec<SourceFile>,
}

impl Store {
    /// Every recorded rule set, first loaded first.
    pub async fn rule_set_history(&self) -> Result<Vec<RuleSetUse>, StoreError> {
        self.read(read_history).await
    }

    /// The content hashes recorded under `name` and `version` (normally at most one),
    /// without counting any checks: what a reload needs to keep versions unambiguous.
    pub async fn rule_set_hashes_of(
        &self,
        name: String,
        version: String,
    ) -> Result<Vec<String>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT content_hash FROM rule_sets WHERE name = ?1 AND version = ?2
                 ORDER BY first_seen_at",
            )?;
            let hashes = statement
                .query_map([&name, &version], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(hashes)
        })
        .await
    }

    /// The stored text of the rule set with `content_hash`, if one was recorded.
    pub async fn rule_set_text(
        &self,
        content_hash: String,
    ) -> Result<Option<RuleSetText>, StoreError> {
        self.read(move |conn| read_text(conn, &content_hash)).await
    }
}

fn read_history(conn: &Connection) -> Result<Vec<RuleSetUse>, StoreError> {
    // Each rule set's checks are one range of the (rule_set_hash, created_at) index.
    let mut statement = conn.prepare_cached(
        "SELECT r.content_hash, r.name, r.version, r.first_seen_at,
                (SELECT min(created_at) FROM evaluations WHERE rule_set_hash = r.content_hash),
                (SELECT max(created_at) FROM evaluations WHERE rule_set_hash = r.content_hash),
                (SELECT count(*) FROM evaluations WHERE rule_set_hash = r.content_hash)
         FROM rule_sets r ORDER BY r.first_seen_at, r.content_hash",
    )?;
    let rows = statement
        .query_map([], |row| {
            Ok(RuleSetUse {
                content_hash: row.get(0)?,
                name: row.get(1)?,
                version: row.get(2)?,
                first_seen_at: row.get(3)?,
                first_used_at: row.get(4)?,
                last_used_at: row.get(5)?,
                checks: row.get::<_, i64>(6)?.unsigned_abs(),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn read_text(conn: &Connection, content_hash: &str) -> Result<Option<RuleSetText>, StoreError> {
    let row: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT name, version, sources_json FROM rule_sets WHERE content_hash = ?1",
        )?
        .query_row([content_hash], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((name, version, sources_json)) = row else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Stored {
        name: String,
        text: String,
    }
    let stored: Vec<Stored> = serde_json::from_str(&sources_json).map_err(StoreError::Json)?;
    Ok(Some(RuleSetText {
        content_hash: content_hash.to_owned(),
        name,
        version,
        sources: stored
            .into_iter()
            .map(|s| SourceFile {
                name: s.name,
                text: s.text,
            })
            .collect(),
    }))
}
