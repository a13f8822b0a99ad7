//! The SQLite store: evaluations, flags, rule errors, rule sets, outcomes and the access
//! log (schema in `db/migrations/`).
//!
//! Writes go through one writer thread that owns the only write connection and commits
//! whatever is queued in one transaction (group commit); each caller waits for the
//! commit of its own write. Reads use a small pool of read-only connections on the
//! blocking thread pool. WAL mode lets readers and the writer run side by side; a
//! checkpoint thread folds the WAL back into the database file beside the writer.

pub mod backup;
mod checkpoint;
pub mod facts;
mod file;
mod stored_profile;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use rusqlite_migration::{M, Migrations};
use tokio::sync::{mpsc, oneshot};

use crate::auth::Role;
use crate::outcome::Outcome;
use crate::profile::{Date, Profile, Stage};
use crate::pseudonym::Pseudonym;
use crate::ruleset::RuleSet;

pub mod accounts;
pub mod history;
pub mod responses;
pub mod rule_sets;

pub use file::{FileProblem, with_suffix};
pub use writer::{PurgeCounts, Streamed, WriterHandle};

/// The schema's migrations, in order.
pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../db/migrations/0001_init.sql")),
        M::up(include_str!("../../db/migrations/0002_write_probe.sql")),
        M::up(include_str!(
            "../../db/migrations/0003_accounts_sessions.sql"
        )),
        M::up(include_str!(
            "../../db/migrations/0004_rule_set_history.sql"
        )),
        M::up(include_str!("../../db/migrations/0005_flag_responses.sql")),
        M::up(include_str!("../../db/migrations/0006_shadow_results.sql")),
        M::up(include_str!("../../db/migrations/0007_test_checks.sql")),
        M::up_with_hook(
            include_str!("../../db/migrations/0008_check_facts.sql"),
            facts::backfill,
        ),
        M::up(include_str!(
            "../../db/migrations/0009_access_log_unindexed.sql"
        )),
        M::up(include_str!(
            "../../db/migrations/0010_candidate_trials.sql"
        )),
        M::up(include_str!(
            "../../db/migrations/0011_access_log_detail.sql"
        )),
        M::up(include_str!("../../db/migrations/0012_key_check.sql")),
    ])
}

/// The rule set's files as stored with it (`rule_sets`, `candidate_trials`): a JSON array
/// of names and texts, `[{"name": ..., "text": ...}]`, the manifest first.
pub fn sources_json(rules: &RuleSet) -> String {
    let sources: Vec<serde_json::Value> = rules
        .sources
        .iter()
        .map(|s| serde_json::json!({ "name": s.name, "text": s.text }))
        .collect();
    serde_json::Value::Array(sources).to_string()
}

/// A rule set as the `rule_sets` table records it.
pub(crate) struct RuleSetRecord {
    content_hash: String,
    name: String,
    version: String,
    sources_json: String,
}

impl RuleSetRecord {
    fn of(rules: &RuleSet) -> Self {
        Self {
            content_hash: rules.content_hash.clone(),
            name: rules.name.clone(),
            version: rules.version.clone(),
            sources_json: sources_json(rules),
        }
    }
}

/// The suffix of the file beside the database that an import through a rollback journal
/// keeps while it writes: found by a later opening, it says the free pages may hold a
/// killed import's rows (SQLite journals no free page it takes, so playing the journal
/// back leaves them there) and have them zeroed.
pub(crate) const IMPORT_MARKER: &str = "-import-underway";

/// Read-only connections kept in the pool, and the most short reads ([`Store::read`]) run
/// at once. A read that finds the pool empty opens a connection of its own, which parses
/// the schema and prepares every statement anew, and closes it; short reads (a token, a
/// check) therefore wait their turn for a pooled one. On two cores more at once would
/// not read faster.
const READERS: usize = 4;

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take writes now (disk full, read-only, I/O error, locked).
    /// SQLite's messages name tables and columns, never stored values.
    #[error("databasen är inte tillgänglig")]
    Unavailable(#[source] Arc<rusqlite::Error>),
    /// SQLite refused a statement: a bug or a corrupt database.
    #[error("databasfel")]
    Sqlite(#[source] Arc<rusqlite::Error>),
    /// The database file or its folder cannot be made, opened or checked.
    #[error("databasen är inte tillgänglig: {}", .path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A database file, or a file beside it, is one the service cannot trust
    /// ([`crate::owner_only::untrusted`]): a matter of configuration, not of availability.
    #[error("databasen {}: {why}", .path.display())]
    Untrusted { path: PathBuf, why: String },
    /// The path no longer leads to the database file that was opened.
    #[error("databasen är inte tillgänglig")]
    File(#[source] file::FileProblem),
    /// Another process writes to the database with everyone else kept out (an import
    /// that has it to itself, [`Store::open_for_import`]), so it cannot be opened now.
    #[error(
        "databasen används just nu av en annan process som skriver i den (till exempel en import); försök igen när den är klar"
    )]
    InUse(#[source] Arc<rusqlite::Error>),
    #[error("databasen var låst under hela säkerhetskopieringen")]
    BackupLocked,
    /// `PRAGMA integrity_check` found a copy damaged; its report names pages and tables.
    #[error(
        "kopian klarar inte SQLites integritetskontroll; är den kopierade databasen själv skadad, lägg tillbaka en säkerhetskopia med gk-regler restore: {0}"
    )]
    CopyDamaged(String),
    #[error("migreringen av databasen misslyckades")]
    Migration(#[source] rusqlite_migration::Error),
    /// The database's schema is newer than this version's migrations.
    #[error(
        "databasen är gjord av en nyare version av gk-regler än den här; kör den nyare versionen, eller lägg tillbaka en säkerhetskopia gjord med den här"
    )]
    NewerThanThisVersion,
    /// The writer thread has stopped.
    #[error("skrivaren har stängts")]
    WriterClosed,
    /// The writer thread dropped a write without answering.
    #[error("skrivaren svarade inte")]
    WriterNoAnswer,
    /// The writer answered a write with the reply of another kind of write.
    #[error("oväntat svar från skrivaren")]
    UnexpectedReply,
    #[error("läspoolen är förgiftad")]
    ReadersPoisoned,
    /// A read on the blocking pool panicked or was cancelled.
    #[error("läsningen avbröts")]
    ReadAborted(#[source] tokio::task::JoinError),
    /// A value could not be written as JSON for storage.
    #[error("ett värde kunde inte sparas som JSON")]
    Json(#[source] serde_json::Error),
    /// A streamed import ended without being told it was complete; nothing was stored.
    #[error("importen avbröts; inget sparades")]
    StreamAborted,
    /// The one taking a read's rows stopped taking them (it gave up or failed, and says
    /// why itself); nothing is wrong with the database.
    #[error("läsningen avbröts av den som tog emot raderna")]
    ReadStopped,
    /// A stored outcome row is not an outcome (the row is not repeated: it is personal data).
    #[error("ett sparat utfall går inte att läsa")]
    UnreadableOutcome,
    /// A stored value of a closed set that is not one of its names (the column is named).
    #[error("okänt värde i kolumnen {0}")]
    UnknownValue(&'static str),
}

impl StoreError {
    /// Whether the database cannot take writes now (the caller may try again later),
    /// as opposed to a bug or a corrupt database.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::InUse(_)
                | Self::Path { .. }
                | Self::File(_)
                | Self::BackupLocked
                | Self::WriterClosed
        )
    }

    /// Whether SQLite found the disk full.
    pub fn is_disk_full(&self) -> bool {
        self.sqlite_code() == Some(rusqlite::ErrorCode::DiskFull)
    }

    /// Whether SQLite could not read or write a file (`disk I/O error`).
    pub fn is_io_failure(&self) -> bool {
        self.sqlite_code() == Some(rusqlite::ErrorCode::SystemIoFailure)
    }

    /// SQLite's error code, when SQLite refused.
    fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            Self::Unavailable(err) | Self::Sqlite(err) => err.sqlite_error_code(),
            _ => None,
        }
    }

    /// The same error for another waiting caller: a failed commit answers every write
    /// of its batch.
    pub(crate) fn of_sqlite(err: &Arc<rusqlite::Error>) -> Self {
        use rusqlite::ErrorCode as C;
        match err.sqlite_error_code() {
            Some(
                C::DiskFull
                | C::ReadOnly
                | C::SystemIoFailure
                | C::CannotOpen
                | C::DatabaseBusy
                | C::DatabaseLocked
                | C::PermissionDenied,
            ) => Self::Unavailable(Arc::clone(err)),
            _ => Self::Sqlite(Arc::clone(err)),
        }
    }
}

impl StoreError {
    /// The error of a failed commit or file check, for each waiting caller of the batch:
    /// those are SQLite's or the file check's, which can be shared.
    pub(crate) fn for_another_caller(&self) -> Self {
        match self {
            Self::Unavailable(err) => Self::Unavailable(Arc::clone(err)),
            Self::Sqlite(err) => Self::Sqlite(Arc::clone(err)),
            Self::File(problem) => Self::File(problem.clone()),
            _ => Self::WriterNoAnswer,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        Self::of_sqlite(&Arc::new(err))
    }
}

/// A flag as stored and read back: the contract's own type, so nothing copies it.
pub use crate::contract::StoredFlagJson as StoredFlag;
/// A rule failure as stored and read back: the contract's own type.
pub use crate::contract::StoredRuleErrorJson as StoredRuleError;

/// An evaluation about to be stored.
pub struct NewEvaluation {
    pub case: Pseudonym,
    pub stage: Stage,
    pub checked_on: Date,
    pub rule_set_hash: String,
    pub requested_by: String,
    /// Requested with a test-purpose token: stored marked as a test check.
    pub test: bool,
    pub profile_json: String,
    pub flags: Vec<StoredFlag>,
    pub errors: Vec<StoredRuleError>,
    /// The shadow rule set's results on the same profile, stored apart from the flags.
    pub shadow: Option<ShadowResult>,
    /// What the audit reads of the profile, stored beside it.
    pub facts: facts::CheckFacts,
}

/// What the shadow rule set gave on a check: only rule ids, for the audit; never shown to
/// an officer and never returned by the check API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowResult {
    pub rule_set_hash: String,
    /// Ids of the rules that flagged.
    pub flagged: Vec<String>,
    /// Ids of the rules that failed.
    pub failed: Vec<String>,
}

impl ShadowResult {
    /// The shadow set `rules`' `evaluation` of a profile.
    pub fn of(rules: &RuleSet, evaluation: &crate::engine::Evaluation) -> Self {
        let mut result = Self {
            rule_set_hash: rules.content_hash.clone(),
            flagged: Vec::new(),
            failed: Vec::new(),
        };
        for (rule, outcome) in rules.rules.iter().zip(&evaluation.outcomes) {
            match outcome {
                crate::engine::RuleOutcome::Flagged { .. } => {
                    result.flagged.push(rule.meta.id.to_string())
                }
                crate::engine::RuleOutcome::Failed(_) => {
                    result.failed.push(rule.meta.id.to_string())
                }
                _ => {}
            }
        }
        result
    }
}

impl NewEvaluation {
    /// The row to store for `report`, the evaluation of `profile` (whose case id has
    /// been pseudonymised to `case` and whose stored form is `profile_json`) by `rules`,
    /// requested by the account `requested_by` (`test` when its token is for testing).
    pub fn of(
        rules: &RuleSet,
        profile: &Profile,
        report: &crate::contract::EvaluationReport,
        case: Pseudonym,
        profile_json: String,
        (requested_by, test): (&str, bool),
    ) -> Self {
        Self {
            case,
            stage: profile.stage,
            checked_on: profile.checked_on,
            rule_set_hash: rules.content_hash.clone(),
            requested_by: requested_by.to_owned(),
            test,
            profile_json,
            flags: report
                .flags
                .iter()
                .map(|f| StoredFlag {
                    rule_id: f.rule_id.clone(),
                    severity: f.severity,
                    message: f.message.clone(),
                })
                .collect(),
            errors: report
                .errors
                .iter()
                .map(|e| StoredRuleError {
                    rule_id: e.rule_id.clone(),
                    kind: e.kind,
                    message: e.message.clone(),
                    line: e.line,
                    column: e.column,
                })
                .collect(),
            shadow: None,
            facts: facts::CheckFacts::of(profile),
        }
    }

    /// With the shadow rule set's results on the same profile.
    pub fn with_shadow(mut self, shadow: Option<ShadowResult>) -> Self {
        self.shadow = shadow;
        self
    }
}

/// An entry of the access log.
#[derive(Clone, Debug)]
pub struct Access {
    pub actor: String,
    pub role: Role,
    pub action: &'static str,
    pub case: Option<Pseudonym>,
    pub evaluation_id: Option<i64>,
    /// The account an administrative action was about.
    pub account_id: Option<i64>,
    /// What an audit or a replay was asked for ([`crate::audit::Options::describe`]).
    pub detail: Option<String>,
}

/// A stored evaluation read back.
#[derive(Clone, Debug)]
pub struct StoredEvaluation {
    pub id: i64,
    pub case: String,
    pub stage: Stage,
    pub checked_on: String,
    pub created_at: String,
    pub rule_set_hash: String,
    pub rule_set_name: String,
    pub rule_set_version: String,
    pub requested_by: String,
    /// The profile as stored: its case id replaced by the pseudonym.
    pub profile_json: String,
    /// Made with a test-purpose token: kept out of the audit and of real cases' stories.
    pub test: bool,
    pub flags: Vec<StoredFlag>,
    pub errors: Vec<StoredRuleError>,
    /// The current answer to each answered flag.
    pub responses: Vec<crate::answer::StoredResponse>,
}

/// What recording one outcome did. Its name (`created`, `replaced`, `unchanged`) is serde's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeChange {
    Created,
    Replaced,
    Unchanged,
}

/// An outcome ready to store: its case already pseudonymised.
pub struct NewOutcome {
    pub case: Pseudonym,
    pub outcome: Outcome,
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<writer::Job>,
    /// False after a write failed because the database could not take it (disk full,
    /// read-only); true again after the next successful commit.
    writable: Arc<AtomicBool>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One permit per pooled connection, held by each short read while it runs.
    short_reads: Arc<tokio::sync::Semaphore>,
    path: PathBuf,
    /// The database file as opened: every read, every commit group and the readiness
    /// probe compare it with what the path leads to now.
    file: Arc<file::DatabaseFile>,
}

/// What a read needs of the store, owned, to be taken to another thread.
struct Reader {
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    file: Arc<file::DatabaseFile>,
}

impl Reader {
    /// Runs `f` on a pooled read-only connection, on the calling thread.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // The path may lead to another file now: reading it would show another
        // database's rows.
        self.file.check()?;
        let pooled = self
            .readers
            .lock()
            .map_err(|_| StoreError::ReadersPoisoned)?
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < READERS
        {
            pool.push(conn);
        }
        result
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `path` and starts the
    /// writer thread. The writer stops when the last handle is dropped, after
    /// committing everything queued. A database made here, with its folder, its
    /// write-ahead log and shared-memory file, is readable by the owner only; an existing
    /// one is made so.
    pub fn open(path: &Path, max_batch: usize) -> Result<(Self, writer::WriterHandle), StoreError> {
        Self::open_with(path, max_batch, true, Journal::WriteAheadLog)
    }

    /// Like [`Store::open`], but never creates the database: a missing file is an error.
    pub fn open_existing(
        path: &Path,
        max_batch: usize,
    ) -> Result<(Self, writer::WriterHandle), StoreError> {
        Self::open_with(path, max_batch, false, Journal::WriteAheadLog)
    }

    /// Like [`Store::open`], for a bulk import: when no other connection has the
    /// database open, the writer journals through a rollback journal until it closes
    /// ([`Journal::RollbackIfAlone`]), and then leaves the database in WAL mode again.
    pub fn open_for_import(
        path: &Path,
        max_batch: usize,
    ) -> Result<(Self, writer::WriterHandle), StoreError> {
        Self::open_with(path, max_batch, true, Journal::RollbackIfAlone)
    }

    fn open_with(
        path: &Path,
        max_batch: usize,
        create: bool,
        journal: Journal,
    ) -> Result<(Self, writer::WriterHandle), StoreError> {
        let unavailable = |at: &Path, source: std::io::Error| StoreError::Path {
            path: at.to_path_buf(),
            source,
        };
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        // Before SQLite reads or makes any of them: someone else's file in their place
        // would hold or receive every stored check.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = file::with_suffix(path, suffix);
            let untrusted = crate::owner_only::untrusted(&file, crate::owner_only::Use::Written)
                .map_err(|e| unavailable(&file, e))?;
            if let Some(why) = untrusted {
                return Err(StoreError::Untrusted { path: file, why });
            }
        }
        // A write-ahead log without its shared-memory file before this process opens the
        // database may be a running service's whose shared memory was deleted, which
        // SQLite then cannot see: the import writes through that log, never taking the
        // database for a rollback journal, which would delete it.
        let someone_elses_log =
            file::with_suffix(path, "-wal").exists() && !file::with_suffix(path, "-shm").exists();
        if create {
            crate::owner_only::create_parent(path).map_err(|e| unavailable(path, e))?;
            // Made here, before SQLite opens it, so it is never readable by others; SQLite
            // gives the write-ahead log and shared-memory file the database file's mode.
            match crate::owner_only::new_file_options().open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(unavailable(path, e)),
            }
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        // A transaction cut short (a killed import) left its rollback journal: this opening
        // plays it back, and then zeroes the free pages it cannot restore. Another program
        // may have played the journal back first (any opening does, `sqlite3` too); the
        // import's marker, left beside the database until its writer closed, still tells.
        let import_marker = file::with_suffix(path, IMPORT_MARKER);
        let interrupted = file::with_suffix(path, "-journal")
            .metadata()
            .is_ok_and(|meta| meta.len() > 0)
            || import_marker.exists();
        let mut conn = Connection::open_with_flags(path, flags)?;
        // Before anything is written: SQLite fixes the page size when it writes the
        // database's first page, and ignores this on a database that has one.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        configure(&conn).map_err(in_use_when_locked)?;
        // Every write goes through this connection. SQLite leaves a deleted row, and a
        // row moved when a page splits, in the file as it was unless told to overwrite
        // it: a purged profile would stay readable in the database file and in every
        // backup copied from it.
        conn.pragma_update(None, "secure_delete", "ON")?;
        for suffix in ["", "-wal", "-shm"] {
            let file = file::with_suffix(path, suffix);
            if crate::owner_only::restrict(&file).map_err(|e| unavailable(&file, e))? {
                tracing::warn!(file = %file.display(), "made the database file owner-only");
            }
        }
        migrations().to_latest(&mut conn).map_err(|err| match err {
            rusqlite_migration::Error::MigrationDefinition(
                rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
            ) => StoreError::NewerThanThisVersion,
            err => StoreError::Migration(err),
        })?;
        if interrupted {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let pages = writer::scrub_free_pages(&tx)?;
            tx.commit()?;
            tracing::info!(pages, "zeroed the free pages after an interrupted write");
            std::fs::remove_file(&import_marker)
                .or_else(|err| match err.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(err),
                })
                .map_err(|e| unavailable(&import_marker, e))?;
        }
        // Before this process opens any other connection, which would hold the WAL open.
        let rollback = journal == Journal::RollbackIfAlone
            && !someone_elses_log
            && rollback_journal_if_alone(&conn)?;
        // Written before the import's first write, removed when its writer closes.
        if rollback {
            match crate::owner_only::write_new(&import_marker, b"") {
                Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(unavailable(&import_marker, err));
                }
                _ => {}
            }
        }
        let file = Arc::new(
            file::DatabaseFile::opened(path, !rollback).map_err(|e| unavailable(path, e))?,
        );
        let readers = (0..READERS)
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        // A rollback journal leaves no WAL to fold (and configuring a checkpointer would
        // switch the database back to WAL).
        let checkpointer = if rollback {
            None
        } else {
            let checkpointer =
                Connection::open_with_flags(path, flags - OpenFlags::SQLITE_OPEN_CREATE)?;
            configure(&checkpointer)?;
            let database = std::fs::File::open(path).map_err(|e| unavailable(path, e))?;
            Some((checkpointer, database))
        };
        let writable = Arc::new(AtomicBool::new(true));
        let (jobs, handle) = writer::spawn(
            conn,
            checkpointer,
            max_batch.max(1),
            Arc::clone(&writable),
            Arc::clone(&file),
            rollback.then_some(import_marker),
        );
        Ok((
            Self {
                jobs,
                writable,
                readers: Arc::new(Mutex::new(readers)),
                short_reads: Arc::new(tokio::sync::Semaphore::new(READERS)),
                path: path.to_path_buf(),
                file,
            },
            handle,
        ))
    }

    /// Whether the path still leads to the database file this store opened; the
    /// problem when it does not (deleted, moved or replaced).
    pub fn file_problem(&self) -> Option<FileProblem> {
        self.file.check().err()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, op: writer::Op) -> Result<writer::Reply, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(writer::Job { op, reply })
            .await
            .map_err(|_| StoreError::WriterClosed)?;
        answer.await.map_err(|_| StoreError::WriterNoAnswer)?
    }

    /// Stores an evaluation with its flags, errors and access-log entry in one commit;
    /// returns its id once it is durable.
    pub async fn insert_evaluation(
        &self,
        evaluation: NewEvaluation,
        access: Access,
    ) -> Result<i64, StoreError> {
        match self
            .write(writer::Op::Evaluation(Box::new(evaluation), access))
            .await?
        {
            writer::Reply::Id(id) => Ok(id),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// Stores many evaluations in one commit, all or nothing, each with an access-log
    /// entry like `access` (action and actor). An evaluation identical to one already
    /// stored (same case, stage, date, rule set and profile) is skipped, so importing
    /// the same file twice stores it once. Returns how many were stored.
    pub async fn insert_evaluations(
        &self,
        evaluations: Vec<NewEvaluation>,
        access: Access,
    ) -> Result<usize, StoreError> {
        match self
            .write(writer::Op::Evaluations(evaluations, access))
            .await?
        {
            writer::Reply::Count(n) => Ok(n),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// Like [`Self::insert_evaluations`], for more evaluations than fit in memory: the
    /// writer holds one transaction open (no other write goes through meanwhile) and
    /// stores each batch `batches` delivers, committing only after [`Streamed::End`]. A
    /// stream whose sender is dropped before `End` stores nothing. Returns how many were
    /// stored, and what recording the outcomes `End` carried did.
    /// The `rule_sets` the evaluations name are recorded in the same transaction.
    pub async fn insert_evaluation_stream(
        &self,
        batches: std::sync::mpsc::Receiver<Streamed>,
        access: Access,
        rule_sets: &[&RuleSet],
    ) -> Result<(usize, Vec<OutcomeChange>), StoreError> {
        let rule_sets = rule_sets.iter().map(|r| RuleSetRecord::of(r)).collect();
        let op = writer::Op::EvaluationStream(batches, access, rule_sets);
        match self.write(op).await? {
            writer::Reply::Streamed(n, outcomes) => Ok((n, outcomes)),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// Records a rule set's text the first time it is seen.
    pub async fn record_rule_set(&self, rules: &RuleSet) -> Result<(), StoreError> {
        let op = writer::Op::RuleSet(RuleSetRecord::of(rules));
        self.write(op).await.map(|_| ())
    }

    /// Writes `access` to the access log with the candidate rule set it tried against
    /// the stored history (`candidate_trials`): its files ([`sources_json`]) the first
    /// time its content is tried, its content hash every time.
    pub async fn record_candidate_trial(
        &self,
        access: Access,
        content_hash: String,
        sources_json: String,
    ) -> Result<(), StoreError> {
        let op = writer::Op::CandidateTrial {
            access,
            content_hash,
            sources_json,
        };
        self.write(op).await.map(|_| ())
    }

    /// Records outcomes, replacing an earlier outcome of the same case (the replaced
    /// one is kept in `outcome_history`). All or nothing.
    pub async fn upsert_outcomes(
        &self,
        outcomes: Vec<NewOutcome>,
        access: Access,
    ) -> Result<Vec<OutcomeChange>, StoreError> {
        match self.write(writer::Op::Outcomes(outcomes, access)).await? {
            writer::Reply::Outcomes(changes) => Ok(changes),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    pub async fn log_access(&self, access: Access) -> Result<(), StoreError> {
        self.write(writer::Op::Access(access)).await.map(|_| ())
    }

    /// Deletes evaluations stored before `cutoff` (RFC 3339) with their flags and errors,
    /// and logs `access` with the cutoff and the counts in the same transaction.
    pub async fn purge_created_before(
        &self,
        cutoff: String,
        access: Access,
    ) -> Result<PurgeCounts, StoreError> {
        match self.write(writer::Op::Purge(cutoff, access)).await? {
            writer::Reply::Purged(counts) => Ok(counts),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// Runs `f` on a read-only connection from the pool, off the async threads, once one
    /// of the [`READERS`] permits is free.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.reader();
        // Never closed, so never `None`. The permit goes with the read to its thread:
        // it is held until the read is done, even if the caller stops waiting.
        let permit = Arc::clone(&self.short_reads).acquire_owned().await.ok();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            reader.read(f)
        })
        .await
        .map_err(StoreError::ReadAborted)?
    }

    fn reader(&self) -> Reader {
        Reader {
            readers: Arc::clone(&self.readers),
            path: self.path.clone(),
            file: Arc::clone(&self.file),
        }
    }

    /// Runs `f` on the stored history (checks, outcomes, rule sets) of a read-only
    /// connection from the pool: the audit's and the replay's view of the store. Reading
    /// and using the history is long work, so it runs on the pool of long work
    /// ([`crate::long_work`]), never on the async threads, and waits its turn there.
    pub async fn read_history<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(history::History<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.reader();
        crate::long_work::run(move || reader.read(move |conn| f(history::History::new(conn))))
            .await
            .map_err(StoreError::ReadAborted)?
    }

    /// Whether the database answers a query and takes writes (readiness): the path
    /// still leads to the file opened, and after a failed write, each call tries a tiny
    /// write so readiness recovers by itself once the cause (a full disk, a read-only
    /// file) is gone.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.file.check()?;
        self.read(|conn| {
            conn.query_row("SELECT count(*) FROM rule_sets", [], |_| Ok(()))?;
            Ok(())
        })
        .await?;
        if !self.writable.load(Ordering::Relaxed) {
            self.write(writer::Op::Probe).await?;
        }
        Ok(())
    }

    /// The check value of the pseudonym key the database's pseudonyms are made with, if
    /// one was recorded, and whether it holds any pseudonym (a check or an outcome).
    pub async fn key_check(&self) -> Result<(Option<String>, bool), StoreError> {
        self.read(|conn| {
            let recorded = conn
                .query_row("SELECT hmac FROM key_check WHERE id = 1", [], |row| {
                    row.get(0)
                })
                .optional()?;
            let holds_pseudonyms = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM evaluations) OR EXISTS (SELECT 1 FROM outcomes)",
                [],
                |row| row.get(0),
            )?;
            Ok((recorded, holds_pseudonyms))
        })
        .await
    }

    /// Records `check` as the key's check value unless one is recorded; returns the one
    /// recorded (the first, when two processes start at once).
    pub async fn record_key_check(&self, check: String) -> Result<String, StoreError> {
        match self.write(writer::Op::KeyCheck(check)).await? {
            writer::Reply::KeyCheck(recorded) => Ok(recorded),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    pub async fn evaluation(&self, id: i64) -> Result<Option<StoredEvaluation>, StoreError> {
        self.read(move |conn| read_evaluations(conn, "e.id = ?1", params![id]).map(|mut v| v.pop()))
            .await
    }

    pub async fn evaluations_of_case(
        &self,
        case: Pseudonym,
        test: bool,
    ) -> Result<Vec<StoredEvaluation>, StoreError> {
        self.read(move |conn| {
            read_evaluations(
                conn,
                "e.case_pseudonym = ?1 AND e.test = ?2",
                params![case.as_str(), test],
            )
        })
        .await
    }
}

/// How the writer journals its transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Journal {
    /// The write-ahead log, always: readers never wait for the writer, and a commit
    /// appends only the pages it changed. Every opening but an import's.
    WriteAheadLog,
    /// A rollback journal when no other connection (of any process) has the database
    /// open, otherwise the write-ahead log. An import's one transaction then writes each
    /// page once, straight into the database file (the journal keeps only the pages that
    /// existed before it, for a rollback), where through the WAL it writes each page
    /// there and copies it into the database file afterwards: 0.76× the time for the
    /// national cohort (BENCHMARKS.md, "Measured changes"). It is as durable and as
    /// atomic: `synchronous=FULL` still, and a transaction cut short (a crash, a kill) is
    /// rolled back from the journal by whoever opens the database next. Meanwhile no
    /// other connection opens the database: a service or command started during the
    /// import stops with [`StoreError::InUse`] (at once, or after waiting up to 5 s once
    /// the import has written into the file); beside the WAL it would have waited for
    /// the import's writes all the same.
    RollbackIfAlone,
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before the caller hears of it, even on power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}

/// A database that cannot be opened because another connection holds it locked: an
/// import writing through a rollback journal (opening needs the lock to put the database
/// in WAL mode, and does not wait for it).
fn in_use_when_locked(err: StoreError) -> StoreError {
    match err {
        StoreError::Unavailable(err)
            if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
        {
            StoreError::InUse(err)
        }
        other => other,
    }
}

/// The page size, in bytes, of a database made here; one made with another keeps its own.
/// 16 KiB rather than SQLite's 4 KiB: a check's row with its stored profile (about
/// 1.3 KB) then shares a page with about eleven others instead of two, so a bulk write
/// splits and rebalances far fewer pages. Against 4 KiB an import takes 0.80× the time,
/// an audit or a replay about the same, and a lone check about 0.07 ms longer (its commit
/// writes about three times the bytes: 10 WAL frames of 16 KiB against 13–15 of 4 KiB);
/// larger pages gain the import little more and cost the lone check more. BENCHMARKS.md,
/// "Measured changes".
const PAGE_SIZE: i64 = 16 * 1024;

/// How long a connection waits for another's lock before it reports the database busy.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Switches the database of `conn`, in WAL mode, to a rollback journal if no other
/// connection has it open; whether it did. SQLite refuses the switch (busy) while
/// another connection holds the WAL open; that is not waited for.
fn rollback_journal_if_alone(conn: &Connection) -> Result<bool, StoreError> {
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let switched = conn.pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
        row.get::<_, String>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    match switched {
        Ok(mode) => Ok(mode.eq_ignore_ascii_case("delete")),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
            tracing::info!(
                "the database is open elsewhere: the import writes through the write-ahead log"
            );
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn read_evaluations(
    conn: &Connection,
    condition: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<StoredEvaluation>, StoreError> {
    let sql = format!(
        "SELECT e.id, e.case_pseudonym, e.stage, e.checked_on, e.created_at, e.rule_set_hash,
                r.name, r.version, e.requested_by, e.profile_json, e.test
         FROM evaluations e JOIN rule_sets r ON r.content_hash = e.rule_set_hash
         WHERE {condition} ORDER BY e.checked_on, e.id"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut evaluations = statement
        .query_map(args, |row| {
            Ok(StoredEvaluation {
                id: row.get(0)?,
                case: row.get(1)?,
                stage: named(row, 2, "evaluations.stage")?,
                checked_on: row.get(3)?,
                created_at: row.get(4)?,
                rule_set_hash: row.get(5)?,
                rule_set_name: row.get(6)?,
                rule_set_version: row.get(7)?,
                requested_by: row.get(8)?,
                profile_json: row.get(9)?,
                test: row.get(10)?,
                flags: Vec::new(),
                errors: Vec::new(),
                responses: Vec::new(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut flags = conn.prepare_cached(
        "SELECT rule_id, severity, message FROM flags WHERE evaluation_id = ?1 ORDER BY rule_id",
    )?;
    let mut errors = conn.prepare_cached(
        "SELECT rule_id, kind, message, line, col FROM rule_errors WHERE evaluation_id = ?1 ORDER BY rule_id",
    )?;
    for evaluation in &mut evaluations {
        evaluation.flags = flags
            .query_map([evaluation.id], |row| {
                Ok(StoredFlag {
                    rule_id: row.get(0)?,
                    severity: named(row, 1, "flags.severity")?,
                    message: row.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        evaluation.errors = errors
            .query_map([evaluation.id], |row| {
                Ok(StoredRuleError {
                    rule_id: row.get(0)?,
                    kind: named(row, 1, "rule_errors.kind")?,
                    message: row.get(2)?,
                    line: row
                        .get::<_, Option<i64>>(3)?
                        .and_then(|l| usize::try_from(l).ok()),
                    column: row
                        .get::<_, Option<i64>>(4)?
                        .and_then(|c| usize::try_from(c).ok()),
                })
            })?
            .collect::<Result<_, _>>()?;
        evaluation.responses = responses::current(conn, evaluation.id)?;
    }
    Ok(evaluations)
}

/// A stored value that is not one of its type's names.
#[derive(Debug, thiserror::Error)]
#[error("okänt värde i kolumnen {0}")]
struct UnknownValue(&'static str);

/// The value of a closed set stored in `column` (at `index` of `row`): a name the type
/// does not have is an error, never a default.
fn named<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    index: usize,
    column: &'static str,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    crate::names::parse_name(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(UnknownValue(column)),
        )
    })
}

/// The profile as stored: the case id replaced by its pseudonym, compact JSON with the
/// keys of every object in byte order ([`stored_profile`]).
pub fn profile_for_storage(profile: &Profile, case: &Pseudonym) -> Result<String, StoreError> {
    stored_profile::to_json(profile, case.as_str()).map_err(StoreError::Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FailureKind;
    use crate::ruleset::Severity;

    /// `.cargo/config.toml` builds SQLite without the options that put every
    /// connection's page cache, and every allocation's statistics, behind process-wide
    /// mutexes (ARCHITECTURE.md, "Dependencies and why").
    #[test]
    fn sqlite_is_built_without_process_wide_page_cache_and_memory_statistics() {
        let conn = Connection::open_in_memory().expect("in-memory database");
        let mut statement = conn.prepare("PRAGMA compile_options").expect("pragma");
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .expect("compile options")
            .collect::<Result<_, _>>()
            .expect("compile options");
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    fn read<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, StoreError> {
        let conn = Connection::open_in_memory().expect("in-memory database");
        Ok(conn.query_row("SELECT ?1", [value], |row| named(row, 0, "flags.severity"))?)
    }

    /// The stored form through a `serde_json::Value` tree, whose map keeps its keys in
    /// byte order: the definition [`profile_for_storage`] writes without the tree.
    fn stored_via_value(profile: &Profile, case: &Pseudonym) -> String {
        let mut value = serde_json::to_value(profile).expect("a profile is JSON");
        let object = value.as_object_mut().expect("a profile is an object");
        object.insert(
            "case_id".to_owned(),
            serde_json::Value::String(case.as_str().to_owned()),
        );
        value.to_string()
    }

    fn assert_stored_as_via_value(text: &str) -> bool {
        let Ok(profile) = Profile::from_json(text) else {
            return false;
        };
        let case = Pseudonym::from_stored("0f".repeat(32)).expect("pseudonym");
        let stored = profile_for_storage(&profile, &case).expect("stored");
        assert_eq!(stored, stored_via_value(&profile, &case));
        // What is stored reads back as the same profile, and is stored the same again.
        let again = Profile::from_stored_json(&stored).expect("reads back");
        assert_eq!(profile_for_storage(&again, &case).expect("stored"), stored);
        true
    }

    fn repository_file(path: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_stored_profile_is_the_text_of_its_value_tree_for_every_example_and_cohort_profile() {
        let mut valid = 0;
        for dir in ["examples", "fuzz/corpus/profile_parser"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(&dir).expect("folder") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path).expect("profile");
                    valid += usize::from(assert_stored_as_via_value(&text));
                }
            }
        }
        let cohort = repository_file("examples/cohort-2018/profiles.jsonl");
        for line in cohort.lines() {
            assert!(
                assert_stored_as_via_value(line),
                "a cohort profile is valid"
            );
            valid += 1;
        }
        assert!(valid > 6000, "{valid} profiles compared");
    }

    #[test]
    fn a_stored_profile_is_the_text_of_its_value_tree_with_each_field_present_null_or_absent() {
        // Every field of the schema with a value, then each one left out and (where the
        // schema allows it) null, one at a time.
        let full = serde_json::json!({
            "case_id": "FK-1", "stage": "gk_closing", "checked_on": "2024-05-02",
            "benefit": "sickness_benefit", "sick_leave_started_on": "2023-11-01",
            "main_diagnosis": "F43.2",
            "person": {"sex": "male", "age": 44, "born_abroad": true, "marital_status": "married",
                       "children_0_17": true, "education": "post_secondary_long", "returner_ever": false,
                       "sgi": 412000},
            "preparation": {"assessed_for_fs_on": "2024-01-10", "consent_received_on": "2024-01-12",
                            "sassam_on": "2024-02-01", "reconciliation_meeting_on": "2024-02-15",
                            "other_personal_meeting_on": "2024-02-20", "phone_contact": true,
                            "care_contact": false, "employer_contact": true,
                            "in_depth_medical_assessment": false,
                            "insurance_physician_consulted": true},
            "gk": {"requested_on": "2024-03-01", "first_meeting_on": "2024-03-20",
                   "external_participants": ["employer", "physician"], "interpreter_booked": true},
            "activity_level": {"documented": true, "hours_per_week": 12.5},
            "known_needs": {"social_or_family_problems": true, "hearing_impairment": false,
                            "vision_impairment": true, "interpreter_needed": false},
            "specialists": ["psychologist", "audiologist"]
        });
        assert!(
            assert_stored_as_via_value(&full.to_string()),
            "the full profile is valid"
        );
        let mut variants = 0;
        let object = full.as_object().expect("object");
        for (key, value) in object {
            let mut paths = vec![vec![key.clone()]];
            if let Some(inner) = value.as_object() {
                paths.extend(inner.keys().map(|k| vec![key.clone(), k.clone()]));
            }
            for path in paths {
                for replacement in [None, Some(serde_json::Value::Null)] {
                    let mut profile = full.clone();
                    let mut parent = &mut profile;
                    for step in &path[..path.len() - 1] {
                        parent = &mut parent[step];
                    }
                    let parent = parent.as_object_mut().expect("object");
                    let last = &path[path.len() - 1];
                    match &replacement {
                        None => drop(parent.remove(last)),
                        Some(null) => drop(parent.insert(last.clone(), null.clone())),
                    }
                    variants += usize::from(assert_stored_as_via_value(&profile.to_string()));
                }
            }
        }
        assert!(variants > 60, "{variants} variants compared");
    }

    #[test]
    fn a_stored_name_reads_back_and_an_unknown_one_is_an_error() {
        assert_eq!(read::<Severity>("critical").ok(), Some(Severity::Critical));
        assert_eq!(
            read::<FailureKind>("too_many_operations").ok(),
            Some(FailureKind::TooManyOperations)
        );
        assert_eq!(read::<Stage>("gk_closing").ok(), Some(Stage::GkClosing));
        for unknown in ["kritisk", "", "Critical"] {
            let err = read::<Severity>(unknown).expect_err(unknown);
            assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
            let cause = std::error::Error::source(&err).map(ToString::to_string);
            assert!(
                cause
                    .as_deref()
                    .is_some_and(|c| c.contains("flags.severity")),
                "{err:?}"
            );
        }
        assert!(read::<FailureKind>("runtime_error").is_err());
    }

    /// Whether the database file's header says WAL mode (its read and write versions).
    fn header_says_wal(path: &Path) -> bool {
        use std::io::Read as _;
        let mut header = [0; 20];
        std::fs::File::open(path)
            .and_then(|mut file| file.read_exact(&mut header))
            .expect("database header");
        header[18] == 2 && header[19] == 2
    }

    /// A database in WAL mode in `dir` with one table `t`: its path and a connection.
    fn wal_database_with_a_table(dir: &Path) -> (PathBuf, Connection) {
        let path = dir.join("db.sqlite3");
        let conn = Connection::open(&path).expect("open");
        configure(&conn).expect("configured");
        conn.execute_batch("CREATE TABLE t (x)").expect("table");
        assert!(header_says_wal(&path));
        (path, conn)
    }

    #[test]
    fn a_database_no_one_else_has_open_is_switched_to_a_rollback_journal_at_once() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, conn) = wal_database_with_a_table(dir.path());
        assert!(rollback_journal_if_alone(&conn).expect("switch"));
        assert!(!header_says_wal(&path));
        assert!(!with_suffix(&path, "-wal").exists());
        conn.execute("INSERT INTO t VALUES (1)", [])
            .expect("a write through the rollback journal");
    }

    #[test]
    fn a_database_another_connection_has_open_stays_in_wal_mode_without_waiting() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, conn) = wal_database_with_a_table(dir.path());
        let other = open_reader(&path).expect("another connection");
        let _: i64 = other
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("read");
        let asked = std::time::Instant::now();
        assert!(!rollback_journal_if_alone(&conn).expect("no error"));
        assert!(
            asked.elapsed() < BUSY_TIMEOUT,
            "waited for the other connection"
        );
        assert!(header_says_wal(&path));
        conn.execute("INSERT INTO t VALUES (1)", [])
            .expect("a write through the WAL");
        let seen: i64 = other
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("read");
        assert_eq!(seen, 1);
    }

    /// Writes one access-log entry through `store`'s writer.
    async fn log_an_import(store: &Store) {
        store
            .log_access(Access {
                actor: "test".to_owned(),
                role: Role::Analytiker,
                action: "import",
                case: None,
                evaluation_id: None,
                account_id: None,
                detail: None,
            })
            .await
            .expect("a write");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_import_store_alone_writes_through_a_rollback_journal_and_leaves_wal_mode_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db.sqlite3");
        let (store, writer) = Store::open_for_import(&path, 64).expect("store");
        assert!(
            !header_says_wal(&path),
            "alone, the import takes a rollback journal"
        );
        log_an_import(&store).await;
        assert!(!with_suffix(&path, "-wal").exists());
        drop(store);
        writer.join();
        assert!(
            header_says_wal(&path),
            "closed, the database is in WAL mode again"
        );
        let conn = Connection::open(&path).expect("open");
        let logged: i64 = conn
            .query_row("SELECT count(*) FROM access_log", [], |row| row.get(0))
            .expect("count");
        assert_eq!(logged, 1);
    }

    fn page_size(path: &Path) -> i64 {
        let conn = Connection::open(path).expect("open");
        conn.pragma_query_value(None, "page_size", |row| row.get(0))
            .expect("page size")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_database_is_made_with_its_page_size_and_an_existing_one_keeps_its_own() {
        let dir = tempfile::tempdir().expect("dir");
        let new = dir.path().join("new.sqlite3");
        let (store, writer) = Store::open(&new, 64).expect("store");
        drop(store);
        writer.join();
        assert_eq!(page_size(&new), PAGE_SIZE);

        // A database made with SQLite's default page size opens, migrates and takes
        // writes with it.
        let (older, conn) = wal_database_with_a_table(dir.path());
        drop(conn);
        assert_eq!(page_size(&older), 4096);
        let (store, writer) = Store::open(&older, 64).expect("store");
        log_an_import(&store).await;
        drop(store);
        writer.join();
        assert_eq!(page_size(&older), 4096);
        let conn = Connection::open(&older).expect("open");
        let logged: i64 = conn
            .query_row("SELECT count(*) FROM access_log", [], |row| row.get(0))
            .expect("count");
        assert_eq!(logged, 1);
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity check");
        assert_eq!(integrity, "ok");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_short_reads_run_at_once_than_the_pool_has_connections() {
        use std::sync::atomic::AtomicUsize;
        let dir = tempfile::tempdir().expect("dir");
        let (store, writer) = Store::open(&dir.path().join("db.sqlite3"), 64).expect("store");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads: Vec<_> = (0..READERS * 4)
            .map(|_| {
                let (store, running, most) = (store.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    store
                        .read(move |conn| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            let one: i64 = conn.query_row("SELECT 1", [], |row| row.get(0))?;
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok(one)
                        })
                        .await
                })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.expect("joined").expect("read"), 1);
        }
        let most = most.load(Ordering::SeqCst);
        assert!((2..=READERS).contains(&most), "{most} reads at once");
        drop(store);
        writer.join();
    }
}
