//! Copying the database while the service writes to it, with SQLite's backup API, and
//! checking a copy before it is restored.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

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
    /// The check value of the pseudonym key the copy's pseudonyms are made with, if the
    /// copy records one ([`crate::pseudonym::PseudonymKey::check_value`]).
    pub key_check: Option<String>,
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
    // The copy takes the database's free pages as they are: zeroed, unless a killed write
    // left rows in them that nothing has zeroed yet.
    let tx = to.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    super::writer::scrub_free_pages(&tx)?;
    tx.commit()?;
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
    // Before anything reads a table: a view in a table's place could run for ever.
    let schema_version = check_schema(conn)?;
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if integrity != "ok" {
        return Err(StoreError::CopyDamaged(integrity));
    }
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
    // A copy made before the key check was recorded has no such table.
    let has_key_check: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'key_check')",
        [],
        |row| row.get(0),
    )?;
    let key_check = if has_key_check {
        conn.query_row("SELECT hmac FROM key_check WHERE id = 1", [], |row| {
            row.get(0)
        })
        .optional()?
    } else {
        None
    };
    Ok(CopyFacts {
        schema_version,
        evaluations: count("evaluations")?,
        outcomes: count("outcomes")?,
        rule_sets,
        key_check,
    })
}

/// An active token of a database copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveToken {
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub created_by: String,
}

/// Readies a checked copy for a restore: ends every web session it holds (a session row
/// added to the copy would sign its holder in; everyone signs in again), overwritten as
/// the writer overwrites what it deletes, and lists its active tokens, admins first,
/// which rows added to the copy could include too, for the person restoring to check.
pub fn ready_for_restore(path: &Path) -> Result<Vec<ActiveToken>, StoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let has = |conn: &Connection, table: &str| -> Result<bool, StoreError> {
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
            [table],
            |row| row.get(0),
        )?)
    };
    conn.pragma_update(None, "secure_delete", "ON")?;
    if has(&conn, "sessions")? {
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM sessions", [])?;
        tx.commit()?;
    }
    if !has(&conn, "accounts")? {
        return Ok(Vec::new());
    }
    let mut statement = conn.prepare(
        "SELECT name, role, created_at, created_by FROM accounts
         WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)
         ORDER BY role != 'admin', created_at, id",
    )?;
    let tokens = statement
        .query_map([super::now_rfc3339()], |row| {
            Ok(ActiveToken {
                name: row.get(0)?,
                role: row.get(1)?,
                created_at: row.get(2)?,
                created_by: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tokens)
}

/// A schema object as `sqlite_schema` lists it: type, name, table and SQL text.
type SchemaObject = (String, String, String, Option<String>);

/// The schema objects of `conn`, SQLite's own (`sqlite_…`) left out, sorted.
fn schema_objects(conn: &Connection) -> Result<Vec<SchemaObject>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema
         WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name",
    )?;
    let objects = statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(objects)
}

/// Refuses a copy whose schema is not exactly the one the migrations make at its version
/// (`PRAGMA user_version`), which it returns. Anyone who can write to a backup folder can
/// change the database and its checksums with it: a trigger, view or table added there
/// would run in the service that opens the restored database (copying every new profile
/// elsewhere, keeping what a purge deletes, dropping access-log entries), and a version
/// newer than this program's would not open at all.
fn check_schema(conn: &Connection) -> Result<i64, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let migrations = super::migrations();
    let mut newest_schema = Connection::open_in_memory()?;
    migrations
        .to_latest(&mut newest_schema)
        .map_err(StoreError::Migration)?;
    let newest: i64 = newest_schema.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if !(1..=newest).contains(&version) {
        return Err(StoreError::CopyDamaged(format!(
            "databasens schemaversion {version} är okänd för den här versionen av gk-regler \
             (den känner 1–{newest})"
        )));
    }
    let mut expected = Connection::open_in_memory()?;
    migrations
        .to_version(&mut expected, usize::try_from(version).unwrap_or(0))
        .map_err(StoreError::Migration)?;
    let (found, wanted) = (schema_objects(conn)?, schema_objects(&expected)?);
    if found != wanted {
        let mut differing: Vec<&str> = found
            .iter()
            .filter(|object| !wanted.contains(object))
            .chain(wanted.iter().filter(|object| !found.contains(object)))
            .map(|(_, name, _, _)| name.as_str())
            .collect();
        differing.sort_unstable();
        differing.dedup();
        let shown: Vec<String> = differing
            .iter()
            .take(5)
            .map(|name| format!("`{}`", name.chars().take(40).collect::<String>()))
            .collect();
        return Err(StoreError::CopyDamaged(format!(
            "databasens schema är inte det som gk-regler gör vid version {version}: {} skiljer sig \
             (tillagda eller ändrade tabeller, index, vyer eller triggers körs när databasen öppnas)",
            shown.join(", ")
        )));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_taken_during_writes_is_whole_and_a_single_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("db.sqlite3");
        let mut writer = Connection::open(&source).expect("open");
        writer
            .execute_batch("PRAGMA journal_mode=WAL;")
            .expect("WAL");
        super::super::migrations()
            .to_latest(&mut writer)
            .expect("schema");
        writer
            .execute_batch("INSERT INTO rule_sets VALUES ('h', 'GK', '1', '[]', 't');")
            .expect("rule set");
        let insert = "INSERT INTO evaluations
             (case_pseudonym, stage, checked_on, created_at, rule_set_hash, requested_by, profile_json)
             VALUES (hex(randomblob(16)), 'before_gk', '2024-01-01', 't', 'h', 'anna', hex(randomblob(200)))";
        for _ in 0..500 {
            writer.execute(insert, []).expect("insert");
        }
        let version: i64 = writer
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("version");
        let target = dir.path().join("copy.sqlite3");
        std::fs::File::create(&target).expect("empty target");
        let facts = copy_database(&source, &target).expect("copied");
        assert_eq!(facts.schema_version, version);
        assert_eq!(facts.evaluations, 500);
        assert_eq!(facts.rule_sets.len(), 1);
        assert!(!dir.path().join("copy.sqlite3-wal").exists());
        // Writes after the copy are not in it.
        writer.execute(insert, []).expect("insert");
        assert_eq!(check_copy(&target).expect("checked").evaluations, 500);
    }

    #[test]
    fn a_copy_with_a_schema_the_migrations_do_not_make_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = |name: &str, change: &str| {
            let path = dir.path().join(name);
            let mut conn = Connection::open(&path).expect("open");
            super::super::migrations()
                .to_latest(&mut conn)
                .expect("schema");
            conn.execute_batch(change).expect("change");
            path
        };
        let refused = |path: &Path| match check_copy(path) {
            Err(StoreError::CopyDamaged(why)) => why,
            other => panic!("{other:?}"),
        };
        let trigger = made(
            "trigger.sqlite3",
            "CREATE TABLE zz_copy (profile TEXT);
             CREATE TRIGGER zz_keep AFTER INSERT ON evaluations BEGIN
               INSERT INTO zz_copy VALUES (NEW.profile_json); END;",
        );
        let why = refused(&trigger);
        assert!(
            why.contains("`zz_copy`") && why.contains("`zz_keep`"),
            "{why}"
        );
        // A view in a table's place that never ends: refused before anything counts it.
        let view = made(
            "view.sqlite3",
            "DROP TABLE outcome_history; ALTER TABLE outcomes RENAME TO outcomes_x;
             CREATE VIEW outcomes AS WITH RECURSIVE c(x) AS
               (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c;",
        );
        assert!(refused(&view).contains("`outcomes`"));
        let newer = made("newer.sqlite3", "PRAGMA user_version = 99;");
        assert!(refused(&newer).contains("99"));
        let same = made("same.sqlite3", "ANALYZE;");
        assert!(
            check_copy(&same).is_ok(),
            "SQLite's own statistics are not a change"
        );
    }
}
