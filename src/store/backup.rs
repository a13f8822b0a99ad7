//! Copying the database while the service writes to it, with SQLite's backup API, and
//! checking a copy before it is restored.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// Pages copied per step of the backup.
const PAGES_PER_STEP: std::ffi::c_int = 1024;
/// How long a copy waits, in all, for a lock the service holds.
const LOCK_PATIENCE: Duration = Duration::from_secs(60);

/// A rule set named in a copy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleSetName {
    pub name: String,
    pub version: String,
    pub content_hash: String,
}

/// What a checked copy of the database holds.
#[derive(Clone, Debug)]
pub struct CopyFacts {
    /// The migration the copy is at (`PRAGMA user_version`).
    pub schema_version: i64,
    pub evaluations: i64,
    pub outcomes: i64,
    pub rule_sets: Vec<RuleSetName>,
}

/// Copies the database at `source` into `target` (an empty file made by the caller) as it
/// was at one moment, while other processes go on writing, then checks the copy.
///
/// The copy runs inside one read transaction on `source`: in WAL mode a reader never
/// blocks the writer, and the snapshot stays fixed, so the copy is consistent and never
/// starts over however much is written meanwhile. The copy is left as a single file
/// (rollback journal, no `-wal` beside it).
pub fn copy_database(source: &Path, target: &Path) -> Result<CopyFacts, StoreError> {
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(Duration::from_secs(5))?;
    from.execute_batch("BEGIN DEFERRED")?;
    // The first read starts the snapshot the whole copy is taken from.
    from.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    let mut to = Connection::open_with_flags(
        target,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    {
        let backup = Backup::new(&from, &mut to)?;
        let started = Instant::now();
        loop {
            match backup.step(PAGES_PER_STEP)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    if started.elapsed() > LOCK_PATIENCE {
                        return Err(StoreError::BackupLocked);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                // A future result kind: wait as for a lock.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    from.execute_batch("COMMIT")?;
    drop(from);
    to.pragma_update(None, "journal_mode", "DELETE")?;
    let facts = check(&to)?;
    to.close().map_err(|(_, err)| StoreError::from(err))?;
    Ok(facts)
}

/// Checks the database at `path` whole (`PRAGMA integrity_check`) and says what it
/// holds; opens it read-only.
pub fn check_copy(path: &Path) -> Result<CopyFacts, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    check(&conn)
}

fn check(conn: &Connection) -> Result<CopyFacts, StoreError> {
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if integrity != "ok" {
        return Err(StoreError::CopyDamaged(integrity));
    }
    let schema_version = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let count = |table: &str| -> Result<i64, StoreError> {
        Ok(
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })?,
        )
    };
    let mut statement = conn.prepare(
        "SELECT name, version, content_hash FROM rule_sets ORDER BY first_seen_at, content_hash",
    )?;
    let rule_sets = statement
        .query_map([], |row| {
            Ok(RuleSetName {
                name: row.get(0)?,
                version: row.get(1)?,
                content_hash: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CopyFacts {
        schema_version,
        evaluations: count("evaluations")?,
        outcomes: count("outcomes")?,
        rule_sets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_taken_during_writes_is_whole_and_a_single_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("db.sqlite3");
        let writer = Connection::open(&source).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL;
                 CREATE TABLE rule_sets (content_hash TEXT, name TEXT, version TEXT, first_seen_at TEXT);
                 CREATE TABLE evaluations (id INTEGER PRIMARY KEY, x TEXT);
                 CREATE TABLE outcomes (id INTEGER PRIMARY KEY);
                 INSERT INTO rule_sets VALUES ('h', 'GK', '1', 't');
                 PRAGMA user_version = 7;",
            )
            .expect("schema");
        for _ in 0..500 {
            writer
                .execute(
                    "INSERT INTO evaluations (x) VALUES (hex(randomblob(200)))",
                    [],
                )
                .expect("insert");
        }
        let target = dir.path().join("copy.sqlite3");
        std::fs::File::create(&target).expect("empty target");
        let facts = copy_database(&source, &target).expect("copied");
        assert_eq!(facts.schema_version, 7);
        assert_eq!(facts.evaluations, 500);
        assert_eq!(facts.rule_sets.len(), 1);
        assert!(!dir.path().join("copy.sqlite3-wal").exists());
        // Writes after the copy are not in it.
        writer
            .execute("INSERT INTO evaluations (x) VALUES ('later')", [])
            .expect("insert");
        assert_eq!(check_copy(&target).expect("checked").evaluations, 500);
    }
}
