//! The single writer thread: takes queued writes, applies them inside one transaction
//! (again with a savepoint each should one of them fail), commits once, then answers
//! every caller (group commit).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rusqlite::{CachedStatement, Connection, OptionalExtension, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{WalKeeper, WalPolicy};
use super::file::DatabaseFile;
use super::{Access, NewEvaluation, NewOutcome, OutcomeChange, StoreError, now_rfc3339};

pub(super) enum Op {
    Evaluation(Box<NewEvaluation>, Access),
    /// A bulk import: stored together, identical rows skipped.
    Evaluations(Vec<NewEvaluation>, Access),
    /// A bulk import that arrives in batches while the writer holds the transaction:
    /// stored together, identical rows skipped, and nothing at all unless the stream ends
    /// with [`Streamed::End`] (with the import's outcomes, recorded in the same commit).
    /// The rule sets the import evaluates with are recorded in the same transaction, so a
    /// failed import leaves none behind.
    EvaluationStream(
        std::sync::mpsc::Receiver<Streamed>,
        Access,
        Vec<super::RuleSetRecord>,
    ),
    RuleSet(super::RuleSetRecord),
    Outcomes(Vec<NewOutcome>, Access),
    Access(Access),
    /// An access-log entry with the candidate rule set tried (`candidate_trials`).
    CandidateTrial {
        access: Access,
        content_hash: String,
        sources_json: String,
    },
    /// Deletes what was stored before the cutoff (RFC 3339); the entry is logged with the
    /// cutoff and the counts as its detail.
    Purge(String, Access),
    /// Rewrites the probe row: does the database take writes?
    Probe,
    /// Records the pseudonym key's check value unless one is recorded.
    KeyCheck(String),
    /// Accounts and sessions (`super::accounts`).
    Accounts(super::accounts::AccountOp),
    /// An answer to a flag (`super::responses`).
    Response(Box<super::responses::NewResponse>, Access),
}

impl Op {
    /// Whether applying the write again, after a rollback, does what applying it once
    /// does: true of every write but a streamed import, whose batches are taken from
    /// its channel as they are stored.
    fn can_apply_again(&self) -> bool {
        !matches!(self, Self::EvaluationStream(..))
    }
}

/// One message of an [`Op::EvaluationStream`].
pub enum Streamed {
    Batch(Vec<NewEvaluation>),
    /// Everything was sent: the stream may be committed, with these outcomes recorded
    /// in the same transaction, so the checks are never stored without them.
    End(Option<(Vec<NewOutcome>, Access)>),
}

pub(super) enum Reply {
    Id(i64),
    Count(usize),
    /// A streamed import: the checks stored, and what recording its outcomes did.
    Streamed(usize, Vec<OutcomeChange>),
    Outcomes(Vec<OutcomeChange>),
    Purged(PurgeCounts),
    Accounts(super::accounts::AccountReply),
    Response(crate::answer::StoredResponse),
    /// The key check value recorded.
    KeyCheck(String),
    Done,
}

/// What a purge deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub evaluations: usize,
    pub flags: usize,
    pub rule_errors: usize,
    /// Outcomes recorded before the cutoff of cases left without a stored check.
    pub outcomes: usize,
    /// The earlier versions of those outcomes.
    pub outcome_versions: usize,
}

pub(super) struct Job {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Reply, StoreError>>,
}

/// Joins the writer thread; dropping every [`super::Store`] first lets it finish.
pub struct WriterHandle {
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Waits until every queued write is committed and the connection is closed.
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const QUEUE: usize = 4096;

/// Starts the writer thread on `conn`, and beside it the checkpoint thread on
/// `checkpointer`: a second read-write connection to the same database and its file
/// (none when `conn` writes through a rollback journal).
pub(super) fn spawn(
    conn: Connection,
    checkpointer: Option<(Connection, std::fs::File)>,
    max_batch: usize,
    writable: Arc<AtomicBool>,
    file: Arc<DatabaseFile>,
    import_marker: Option<std::path::PathBuf>,
) -> (mpsc::Sender<Job>, WriterHandle) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("gk-store-writer".to_owned())
        .spawn(move || {
            // Started on this thread: the WAL hook reports to the committing thread.
            let keeper = WalKeeper::start(&conn, checkpointer, WalPolicy::DEFAULT);
            run(conn, keeper, receiver, max_batch, &writable, &file);
            // Closed whole: nothing of an interrupted write is left to zero.
            if let Some(marker) = import_marker
                && let Err(err) = std::fs::remove_file(&marker)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %err, "the import marker could not be removed");
            }
        })
        .ok();
    (sender, WriterHandle { thread })
}

fn run(
    mut conn: Connection,
    mut keeper: WalKeeper,
    mut receiver: mpsc::Receiver<Job>,
    max_batch: usize,
    writable: &AtomicBool,
    file: &DatabaseFile,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_batch(&mut conn, &mut batch, file);
        writable.store(committed, Ordering::Relaxed);
        keeper.after_commit(&conn);
    }
    // Every sender is gone: once the checkpoint thread has stopped, fold the whole WAL
    // back into the database before closing.
    keeper.stop();
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
    leave_in_wal_mode(&conn);
    let _ = conn.close();
}

/// Switches a database the writer took for a rollback journal back to WAL mode, the
/// mode every other opening expects (and sets: should this fail, the next one does).
fn leave_in_wal_mode(conn: &Connection) {
    let mode = conn.pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0));
    if mode.is_ok_and(|mode| !mode.eq_ignore_ascii_case("wal"))
        && let Err(err) = conn.pragma_update(None, "journal_mode", "WAL")
    {
        tracing::warn!(error = %err, "could not set the database back to WAL mode");
    }
}

/// Answers every job of `batch` with `err`.
fn refuse(batch: &mut Vec<Job>, err: &StoreError) {
    for job in batch.drain(..) {
        let _ = job.reply.send(Err(err.for_another_caller()));
    }
}

/// Commits the batch; false when the database refused the transaction itself, or the
/// database file is no longer at its path. The path is checked before the transaction
/// (nothing is written into a file no one will open again) and after the commit, before
/// anyone hears of it: a commit into a file deleted meanwhile is never acknowledged.
///
/// A batch of writes that can be applied again (every kind but a streamed import) is
/// first applied without a savepoint each: a savepoint copies every page its write
/// touches into the statement journal, which for a group of checks costs more than the
/// inserts themselves. Should any write of it fail, that transaction is rolled back and
/// the batch applied once more with a savepoint per write, so each write's answer is
/// what it would have been on its own.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<Job>, file: &DatabaseFile) -> bool {
    if let Err(problem) = file.check() {
        refuse(batch, &problem.into());
        return false;
    }
    // The writes of one group are committed together and recorded at one time.
    let now = now_rfc3339();
    if batch.iter().all(|job| job.op.can_apply_again()) {
        let tx = match begin(conn) {
            Ok(tx) => tx,
            Err(err) => {
                refuse(batch, &err);
                return false;
            }
        };
        let replies: Result<Vec<Reply>, StoreError> =
            batch.iter().map(|job| apply(&tx, &job.op, &now)).collect();
        match replies {
            Ok(replies) => {
                return commit_and_answer(tx, batch, replies.into_iter().map(Ok).collect(), file);
            }
            // Nothing of the batch stays: the writes are applied again one by one below.
            Err(_) => drop(tx.rollback()),
        }
    }
    let mut tx = match begin(conn) {
        Ok(tx) => tx,
        Err(err) => {
            refuse(batch, &err);
            return false;
        }
    };
    let mut results = Vec::with_capacity(batch.len());
    for job in batch.iter() {
        let result = apply_in_savepoint(&mut tx, &job.op, &now);
        // A stream rolled back may have left its rows in free pages it took.
        if result.is_err()
            && matches!(job.op, Op::EvaluationStream(..))
            && let Err(err) = scrub_free_pages(&tx)
        {
            tracing::warn!(error = %err, "free pages could not be zeroed after a failed import");
        }
        results.push(result);
    }
    commit_and_answer(tx, batch, results, file)
}

fn begin(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
}

/// Commits `tx`, checks the file, then answers each job of `batch` with its result;
/// false when the commit or the check failed, or a write failed for lack of space or
/// permission.
fn commit_and_answer(
    tx: Transaction<'_>,
    batch: &mut Vec<Job>,
    results: Vec<Result<Reply, StoreError>>,
    file: &DatabaseFile,
) -> bool {
    // A write that failed for lack of space or permission means the database is not
    // writable, even if the (then smaller) commit goes through.
    let all_writable = !results
        .iter()
        .any(|r| r.as_ref().is_err_and(StoreError::is_unavailable));
    match tx.commit().map_err(StoreError::from).and_then(|()| {
        file.check()?;
        Ok(())
    }) {
        Ok(()) => {
            tracing::trace!(writes = batch.len(), "group committed");
            for (job, result) in batch.drain(..).zip(results) {
                let _ = job.reply.send(result);
            }
            all_writable
        }
        Err(err) => {
            refuse(batch, &err);
            false
        }
    }
}

/// The statements that store a check, taken from the connection's statement cache at
/// their first use and then kept for the checks of the same group: looking one up
/// hashes its text, which for a bulk import is a few per cent of the writer's time.
struct CheckStatements<'c> {
    conn: &'c Connection,
    evaluation: Option<CachedStatement<'c>>,
    flag: Option<CachedStatement<'c>>,
    error: Option<CachedStatement<'c>>,
    facts: Option<CachedStatement<'c>>,
    shadow: Option<CachedStatement<'c>>,
    access: Option<CachedStatement<'c>>,
}

impl<'c> CheckStatements<'c> {
    fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            evaluation: None,
            flag: None,
            error: None,
            facts: None,
            shadow: None,
            access: None,
        }
    }

    /// The statement of `sql` in `slot`, prepared (or taken from the cache) if not yet.
    fn statement<'s>(
        conn: &'c Connection,
        slot: &'s mut Option<CachedStatement<'c>>,
        sql: &str,
    ) -> Result<&'s mut CachedStatement<'c>, StoreError> {
        let statement = match slot.take() {
            Some(statement) => statement,
            None => conn.prepare_cached(sql)?,
        };
        Ok(slot.insert(statement))
    }

    /// Inserts one evaluation with its flags and rule errors; returns its id.
    fn insert_evaluation(
        &mut self,
        evaluation: &NewEvaluation,
        now: &str,
    ) -> Result<i64, StoreError> {
        let conn = self.conn;
        Self::statement(
            conn,
            &mut self.evaluation,
            // A check requested with a test-purpose token is marked as a test check.
            "INSERT INTO evaluations (case_pseudonym, stage, checked_on, created_at, rule_set_hash, requested_by, profile_json, test)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            evaluation.case.as_str(),
            evaluation.stage.as_str(),
            evaluation.checked_on.to_string(),
            now,
            evaluation.rule_set_hash,
            evaluation.requested_by,
            evaluation.profile_json,
            evaluation.test,
        ])?;
        let id = conn.last_insert_rowid();
        // Most checks have no rule error, and some no flag: their statements are
        // prepared only when there is a row to insert.
        if !evaluation.flags.is_empty() {
            let insert_flag = Self::statement(
                conn,
                &mut self.flag,
                "INSERT INTO flags (evaluation_id, rule_id, severity, message) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for flag in &evaluation.flags {
                insert_flag.execute(params![
                    id,
                    flag.rule_id,
                    crate::names::name_of(&flag.severity),
                    flag.message
                ])?;
            }
        }
        if !evaluation.errors.is_empty() {
            let insert_error = Self::statement(
                conn,
                &mut self.error,
                "INSERT INTO rule_errors (evaluation_id, rule_id, kind, message, line, col) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for error in &evaluation.errors {
                insert_error.execute(params![
                    id,
                    error.rule_id,
                    crate::names::name_of(&error.kind),
                    error.message,
                    error.line.and_then(|l| i64::try_from(l).ok()),
                    error.column.and_then(|c| i64::try_from(c).ok())
                ])?;
            }
        }
        super::facts::insert(
            Self::statement(conn, &mut self.facts, super::facts::INSERT)?,
            id,
            &evaluation.facts,
            &super::facts::joined(evaluation.flags.iter().map(|f| f.rule_id.as_str())),
            &super::facts::joined(evaluation.errors.iter().map(|e| e.rule_id.as_str())),
        )?;
        if let Some(shadow) = &evaluation.shadow {
            Self::statement(
                conn,
                &mut self.shadow,
                "INSERT INTO shadow_results (evaluation_id, rule_set_hash, flagged, failed) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                id,
                shadow.rule_set_hash,
                shadow.flagged.join(" "),
                shadow.failed.join(" ")
            ])?;
        }
        Ok(id)
    }

    fn log_access(&mut self, access: &Access, now: &str) -> Result<(), StoreError> {
        let statement = Self::statement(self.conn, &mut self.access, ACCESS_LOG_INSERT)?;
        log_access_with(statement, access, now)
    }
}

/// Inserts each of `evaluations` not identical to one already stored (same case, date,
/// stage, rule set and profile), each with an access-log entry like `access`; returns how
/// many were inserted.
fn insert_new_evaluations(
    conn: &Connection,
    evaluations: &[NewEvaluation],
    access: &Access,
    now: &str,
) -> Result<usize, StoreError> {
    let mut exists = conn.prepare_cached(
        "SELECT 1 FROM evaluations WHERE case_pseudonym = ?1 AND checked_on = ?2
         AND stage = ?3 AND rule_set_hash = ?4 AND profile_json = ?5 LIMIT 1",
    )?;
    let mut statements = CheckStatements::new(conn);
    let mut stored = 0;
    for evaluation in evaluations {
        if exists.exists(params![
            evaluation.case.as_str(),
            evaluation.checked_on.to_string(),
            evaluation.stage.as_str(),
            evaluation.rule_set_hash,
            evaluation.profile_json,
        ])? {
            continue;
        }
        let id = statements.insert_evaluation(evaluation, now)?;
        let access = Access {
            case: Some(evaluation.case.clone()),
            evaluation_id: Some(id),
            ..access.clone()
        };
        statements.log_access(&access, now)?;
        stored += 1;
    }
    Ok(stored)
}

/// One write under its own savepoint, so a failing write leaves nothing behind and does
/// not take the rest of the batch with it.
fn apply_in_savepoint(tx: &mut Transaction<'_>, op: &Op, now: &str) -> Result<Reply, StoreError> {
    let savepoint = tx.savepoint()?;
    let reply = apply(&savepoint, op, now)?;
    savepoint.commit()?;
    Ok(reply)
}

/// Records a rule set's text the first time it is seen.
fn record_rule_set(
    conn: &Connection,
    rule_set: &super::RuleSetRecord,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO rule_sets (content_hash, name, version, sources_json, first_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        rule_set.content_hash,
        rule_set.name,
        rule_set.version,
        rule_set.sources_json,
        now
    ])?;
    Ok(())
}

/// Applies one write; `now` is the time the writes of its batch are recorded at.
fn apply(conn: &Connection, op: &Op, now: &str) -> Result<Reply, StoreError> {
    match op {
        Op::Evaluation(evaluation, access) => {
            let id = CheckStatements::new(conn).insert_evaluation(evaluation, now)?;
            let access = Access {
                evaluation_id: Some(id),
                ..access.clone()
            };
            log_access(conn, &access, now)?;
            Ok(Reply::Id(id))
        }
        Op::Evaluations(evaluations, access) => Ok(Reply::Count(insert_new_evaluations(
            conn,
            evaluations,
            access,
            now,
        )?)),
        Op::EvaluationStream(receiver, access, rule_sets) => {
            for rule_set in rule_sets {
                record_rule_set(conn, rule_set, now)?;
            }
            let _cache = BulkCache::enlarge(conn)?;
            let mut stored = 0;
            loop {
                // A sender gone without `End` aborted: the savepoint rolls back.
                match receiver.recv().map_err(|_| StoreError::StreamAborted)? {
                    Streamed::Batch(evaluations) => {
                        stored += insert_new_evaluations(conn, &evaluations, access, now)?;
                    }
                    Streamed::End(outcomes) => {
                        let changes = match outcomes {
                            Some((outcomes, access)) => {
                                record_outcomes(conn, &outcomes, &access, now)?
                            }
                            None => Vec::new(),
                        };
                        return Ok(Reply::Streamed(stored, changes));
                    }
                }
            }
        }
        Op::RuleSet(rule_set) => {
            record_rule_set(conn, rule_set, now)?;
            Ok(Reply::Done)
        }
        Op::Outcomes(outcomes, access) => Ok(Reply::Outcomes(record_outcomes(
            conn, outcomes, access, now,
        )?)),
        Op::Access(access) => {
            log_access(conn, access, now)?;
            Ok(Reply::Done)
        }
        Op::CandidateTrial {
            access,
            content_hash,
            sources_json,
        } => {
            log_access(conn, access, now)?;
            conn.prepare_cached(
                "INSERT INTO candidate_trials (at, actor, content_hash, sources_json)
                 VALUES (?1, ?2, ?3, CASE WHEN EXISTS (SELECT 1 FROM candidate_trials
                     WHERE content_hash = ?3 AND sources_json IS NOT NULL) THEN NULL ELSE ?4 END)",
            )?
            .execute(params![now, access.actor, content_hash, sources_json])?;
            Ok(Reply::Done)
        }
        Op::Accounts(op) => Ok(Reply::Accounts(super::accounts::apply(conn, op)?)),
        Op::Response(response, access) => Ok(Reply::Response(super::responses::insert(
            conn, response, access,
        )?)),
        Op::KeyCheck(check) => {
            conn.prepare_cached("INSERT OR IGNORE INTO key_check (id, hmac) VALUES (1, ?1)")?
                .execute([check])?;
            let recorded =
                conn.query_row("SELECT hmac FROM key_check WHERE id = 1", [], |row| {
                    row.get(0)
                })?;
            Ok(Reply::KeyCheck(recorded))
        }
        Op::Probe => {
            conn.prepare_cached("UPDATE write_probe SET at = ?1 WHERE id = 1")?
                .execute([now])?;
            Ok(Reply::Done)
        }
        Op::Purge(cutoff, access) => {
            conn.execute(
                "DELETE FROM check_facts WHERE evaluation_id IN (SELECT id FROM evaluations WHERE created_at < ?1)",
                [cutoff],
            )?;
            let flags = conn.execute(
                "DELETE FROM flags WHERE evaluation_id IN (SELECT id FROM evaluations WHERE created_at < ?1)",
                [cutoff],
            )?;
            let rule_errors = conn.execute(
                "DELETE FROM rule_errors WHERE evaluation_id IN (SELECT id FROM evaluations WHERE created_at < ?1)",
                [cutoff],
            )?;
            let evaluations =
                conn.execute("DELETE FROM evaluations WHERE created_at < ?1", [cutoff])?;
            // An outcome is stored data like a check: once it is older than the cutoff and
            // its case has no check left to compare it with, it goes too, with its history.
            // (A case whose checks are kept keeps its outcome for the audit.)
            const OUTCOMES_TO_PURGE: &str = "SELECT o.case_pseudonym FROM outcomes o
                 WHERE o.recorded_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.case_pseudonym = o.case_pseudonym)";
            let outcome_versions = conn.execute(
                &format!(
                    "DELETE FROM outcome_history WHERE case_pseudonym IN ({OUTCOMES_TO_PURGE})"
                ),
                [cutoff],
            )?;
            let outcomes = conn.execute(
                &format!("DELETE FROM outcomes WHERE case_pseudonym IN ({OUTCOMES_TO_PURGE})"),
                [cutoff],
            )?;
            log_access(
                conn,
                &Access {
                    detail: Some(format!(
                        "before={cutoff} checks={evaluations} outcomes={outcomes}"
                    )),
                    ..access.clone()
                },
                now,
            )?;
            Ok(Reply::Purged(PurgeCounts {
                evaluations,
                flags,
                rule_errors,
                outcomes,
                outcome_versions,
            }))
        }
    }
}

/// Overwrites every free page of the database with zeros, leaving them free, within the
/// caller's transaction; returns how many pages were free.
///
/// A transaction that is rolled back (a killed import's, played back from its journal by
/// the next opening, or a failed stream's) restores only the pages that were in use
/// before it: SQLite does not journal a free page it takes, so a free page the rolled-back
/// writes used keeps them, readable in the file and in every backup copied from it. This
/// takes every free page for rows of zeros, then drops them; `secure_delete` zeroes
/// pages as they are freed.
pub(super) fn scrub_free_pages(conn: &Connection) -> Result<i64, StoreError> {
    let free = || conn.pragma_query_value(None, "freelist_count", |row| row.get::<_, i64>(0));
    let first = free()?;
    if first == 0 {
        return Ok(0);
    }
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
    conn.execute_batch("CREATE TABLE scrub_free_pages (zeros BLOB NOT NULL)")?;
    let mut left = first;
    while left > 0 {
        // An overflow page holds its page less a 4-byte link of the blob.
        let bytes = left.min(256) * (page_size - 4);
        conn.prepare_cached("INSERT INTO scrub_free_pages VALUES (zeroblob(?1))")?
            .execute([bytes])?;
        let now = free()?;
        // Each row takes free pages first; should one not, stop rather than grow.
        if now >= left {
            break;
        }
        left = now;
    }
    conn.execute_batch("DROP TABLE scrub_free_pages")?;
    Ok(first)
}

/// Records `outcomes`, each with its access-log entry.
fn record_outcomes(
    conn: &Connection,
    outcomes: &[NewOutcome],
    access: &Access,
    now: &str,
) -> Result<Vec<OutcomeChange>, StoreError> {
    // A file of outcomes, like a streamed import, inserts at random places of the indexes
    // keyed by pseudonym; one recorded through the API does not. (Within a streamed
    // import the cache is enlarged already; enlarging again keeps it so.)
    let _cache = (outcomes.len() >= BULK_OUTCOMES)
        .then(|| BulkCache::enlarge(conn))
        .transpose()?;
    let mut changes = Vec::with_capacity(outcomes.len());
    for new in outcomes {
        changes.push(upsert_outcome(conn, new, &access.actor, now)?);
        log_access(
            conn,
            &Access {
                case: Some(new.case.clone()),
                ..access.clone()
            },
            now,
        )?;
    }
    Ok(changes)
}

fn upsert_outcome(
    conn: &Connection,
    new: &NewOutcome,
    actor: &str,
    now: &str,
) -> Result<OutcomeChange, StoreError> {
    let reasons: Vec<&str> = new.outcome.reasons.iter().map(|r| r.as_str()).collect();
    let reasons_json = serde_json::to_string(&reasons).map_err(StoreError::Json)?;
    let ended_on = new.outcome.ended_on.to_string();
    let outcome = new.outcome.outcome.as_str();
    let existing: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT ended_on, outcome, reasons_json FROM outcomes WHERE case_pseudonym = ?1",
        )?
        .query_row([new.case.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    match existing {
        Some((old_end, old_outcome, old_reasons))
            if old_end == ended_on && old_outcome == outcome && old_reasons == reasons_json =>
        {
            Ok(OutcomeChange::Unchanged)
        }
        Some(_) => {
            conn.prepare_cached(
                "INSERT INTO outcome_history (case_pseudonym, ended_on, outcome, reasons_json, recorded_at, recorded_by, replaced_at, replaced_by)
                 SELECT case_pseudonym, ended_on, outcome, reasons_json, recorded_at, recorded_by, ?2, ?3
                 FROM outcomes WHERE case_pseudonym = ?1",
            )?
            .execute(params![new.case.as_str(), now, actor])?;
            conn.prepare_cached(
                "UPDATE outcomes SET ended_on = ?2, outcome = ?3, reasons_json = ?4, recorded_at = ?5, recorded_by = ?6
                 WHERE case_pseudonym = ?1",
            )?
            .execute(params![new.case.as_str(), ended_on, outcome, reasons_json, now, actor])?;
            Ok(OutcomeChange::Replaced)
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO outcomes (case_pseudonym, ended_on, outcome, reasons_json, recorded_at, recorded_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![new.case.as_str(), ended_on, outcome, reasons_json, now, actor])?;
            Ok(OutcomeChange::Created)
        }
    }
}

pub(super) fn log_access(conn: &Connection, access: &Access, now: &str) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(ACCESS_LOG_INSERT)?;
    log_access_with(&mut statement, access, now)
}

const ACCESS_LOG_INSERT: &str =
    "INSERT INTO access_log (at, actor, role, action, case_pseudonym, evaluation_id, account_id, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Appends `access` to the access log through `statement`, [`ACCESS_LOG_INSERT`] prepared.
fn log_access_with(
    statement: &mut rusqlite::Statement<'_>,
    access: &Access,
    now: &str,
) -> Result<(), StoreError> {
    statement.execute(params![
        now,
        access.actor,
        crate::names::name_of(&access.role),
        access.action,
        access.case.as_ref().map(|c| c.as_str()),
        access.evaluation_id,
        access.account_id,
        access.detail
    ])?;
    Ok(())
}

/// Outcomes recorded at once from which the writer enlarges its page cache.
const BULK_OUTCOMES: usize = 1000;

/// Kibibytes of page cache the writer uses for a bulk write (a streamed import, a file
/// of outcomes): the indexes keyed by pseudonym (`evaluations_by_case`, the outcomes'
/// key) take inserts at random places, and with the default cache (2 MiB) nearly each
/// insert reads a page back and spills another to the write-ahead log. 64 MiB holds
/// those indexes of about 250,000 checks.
const BULK_CACHE_KIB: i64 = 64 * 1024;

/// The writer's page cache enlarged for a bulk write, and set back when dropped.
struct BulkCache<'c> {
    conn: &'c Connection,
    before: i64,
}

impl<'c> BulkCache<'c> {
    fn enlarge(conn: &'c Connection) -> Result<Self, StoreError> {
        let before: i64 = conn.pragma_query_value(None, "cache_size", |row| row.get(0))?;
        // Negative: a size in KiB rather than in pages.
        conn.pragma_update(None, "cache_size", -BULK_CACHE_KIB)?;
        Ok(Self { conn, before })
    }
}

impl Drop for BulkCache<'_> {
    fn drop(&mut self) {
        // The cache shrinks back; a failure leaves a larger cache, never wrong data.
        let _ = self.conn.pragma_update(None, "cache_size", self.before);
    }
}

#[cfg(test)]
mod tests {
    use super::super::StoredFlag;
    use super::*;
    use crate::pseudonym::Pseudonym;

    fn cache_size(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "cache_size", |row| row.get(0))
            .expect("cache_size")
    }

    /// A migrated database in `dir` with its writer connection and file identity.
    fn database(dir: &std::path::Path) -> (Connection, DatabaseFile) {
        let path = dir.join("db.sqlite3");
        let mut conn = Connection::open(&path).expect("database");
        super::super::configure(&conn).expect("configured");
        super::super::migrations()
            .to_latest(&mut conn)
            .expect("migrated");
        let file = DatabaseFile::opened(&path, true).expect("file");
        (conn, file)
    }

    fn evaluation(rule_set_hash: &str, rule_id: &str) -> Op {
        Op::Evaluation(
            Box::new(new_evaluation(rule_set_hash, rule_id)),
            access("check"),
        )
    }

    fn new_evaluation(rule_set_hash: &str, rule_id: &str) -> NewEvaluation {
        NewEvaluation {
            case: Pseudonym::from_stored("ab".repeat(32)).expect("pseudonym"),
            stage: crate::profile::Stage::BeforeGk,
            checked_on: crate::profile::Date::parse("2024-03-01").expect("date"),
            rule_set_hash: rule_set_hash.to_owned(),
            requested_by: "anna".to_owned(),
            test: false,
            profile_json: "{}".to_owned(),
            flags: vec![super::super::StoredFlag {
                rule_id: rule_id.to_owned(),
                severity: crate::ruleset::Severity::Warning,
                message: "m".to_owned(),
            }],
            errors: Vec::new(),
            shadow: None,
            facts: super::super::facts::CheckFacts::default(),
        }
    }

    fn access(action: &'static str) -> Access {
        Access {
            actor: "anna".to_owned(),
            role: crate::auth::Role::Handlaggare,
            action,
            case: None,
            evaluation_id: None,
            account_id: None,
            detail: None,
        }
    }

    /// Jobs for `ops` and the receivers of their answers.
    fn jobs(ops: Vec<Op>) -> (Vec<Job>, Vec<oneshot::Receiver<Result<Reply, StoreError>>>) {
        ops.into_iter()
            .map(|op| {
                let (reply, answer) = oneshot::channel();
                (Job { op, reply }, answer)
            })
            .unzip()
    }

    /// Stores a rule set with content hash `hash`, for checks to name.
    fn rule_set(hash: &str) -> Op {
        Op::RuleSet(super::super::RuleSetRecord {
            content_hash: hash.to_owned(),
            name: "GK".to_owned(),
            version: "1".to_owned(),
            sources_json: "[]".to_owned(),
        })
    }

    fn scalar(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).expect("a number")
    }

    /// Evaluations whose stored profile is `marker` repeated to about 4 KB.
    fn marked(marker: &str, n: usize) -> Vec<NewEvaluation> {
        (0..n)
            .map(|i| NewEvaluation {
                case: Pseudonym::from_stored(format!("{i:064x}")).expect("pseudonym"),
                profile_json: marker.repeat(4096 / marker.len()),
                ..new_evaluation("h", "R1")
            })
            .collect()
    }

    /// Occurrences of `needle` in the database file and its WAL.
    fn in_files(dir: &std::path::Path, needle: &[u8]) -> usize {
        ["db.sqlite3", "db.sqlite3-wal"]
            .iter()
            .filter_map(|name| std::fs::read(dir.join(name)).ok())
            .map(|bytes| bytes.windows(needle.len()).filter(|w| *w == needle).count())
            .sum()
    }

    #[test]
    fn a_stream_that_fails_leaves_none_of_its_rows_in_free_pages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, file) = database(dir.path());
        conn.pragma_update(None, "secure_delete", "ON")
            .expect("secure_delete");
        // Free pages, zeroed as they were freed.
        let (mut batch, _answers) = jobs(vec![
            rule_set("h"),
            Op::Evaluations(marked("GAMMAL-", 20_000), access("import")),
        ]);
        assert!(commit_batch(&mut conn, &mut batch, &file));
        let (mut batch, _answers) = jobs(vec![Op::Purge("9999".to_owned(), access("purge"))]);
        assert!(commit_batch(&mut conn, &mut batch, &file));
        assert!(scalar(&conn, "PRAGMA freelist_count") > 1000);
        // More than the stream's page cache: its pages go into the free pages, and its
        // sender is gone before the end.
        let (sender, receiver) = std::sync::mpsc::sync_channel(2);
        let feeder = std::thread::spawn(move || {
            for _ in 0..20 {
                if sender
                    .send(Streamed::Batch(marked("NY-PROFIL-", 1000)))
                    .is_err()
                {
                    break;
                }
            }
        });
        let (mut batch, mut answers) = jobs(vec![
            Op::EvaluationStream(receiver, access("import"), Vec::new()),
            Op::Access(access("list_case")),
        ]);
        commit_batch(&mut conn, &mut batch, &file);
        feeder.join().expect("feeder");
        assert!(matches!(
            answers[0].try_recv().expect("answered"),
            Err(StoreError::StreamAborted)
        ));
        assert_eq!(scalar(&conn, "SELECT count(*) FROM evaluations"), 0);
        let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
        assert_eq!(in_files(dir.path(), b"NY-PROFIL-"), 0);
        assert_eq!(in_files(dir.path(), b"GAMMAL-"), 0);
    }

    #[test]
    fn a_failing_write_of_a_group_is_refused_alone_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, file) = database(dir.path());
        // The third write names a rule set that is not stored: the foreign key refuses it.
        let (mut batch, answers) = jobs(vec![
            rule_set("h"),
            evaluation("h", "R1"),
            evaluation("unknown", "R2"),
            Op::Access(access("list_case")),
            evaluation("h", "R3"),
        ]);
        assert!(commit_batch(&mut conn, &mut batch, &file));
        assert!(batch.is_empty());
        let answers: Vec<_> = answers
            .into_iter()
            .map(|mut a| a.try_recv().expect("answered"))
            .collect();
        assert!(matches!(answers[0], Ok(Reply::Done)));
        let Ok(Reply::Id(first)) = answers[1] else {
            panic!("first check: {:?}", answers[1].as_ref().err());
        };
        assert!(matches!(answers[2], Err(StoreError::Sqlite(_))));
        assert!(matches!(answers[3], Ok(Reply::Done)));
        let Ok(Reply::Id(second)) = answers[4] else {
            panic!("second check: {:?}", answers[4].as_ref().err());
        };
        assert_eq!(second, first + 1);
        assert_eq!(scalar(&conn, "SELECT count(*) FROM evaluations"), 2);
        assert_eq!(
            scalar(&conn, "SELECT count(*) FROM flags WHERE rule_id = 'R2'"),
            0
        );
        assert_eq!(scalar(&conn, "SELECT count(*) FROM flags"), 2);
        // One access-log row per stored check and one for the read; none for the refused.
        assert_eq!(scalar(&conn, "SELECT count(*) FROM access_log"), 3);
        assert_eq!(
            scalar(
                &conn,
                "SELECT count(*) FROM access_log WHERE action = 'check' AND evaluation_id IS NOT NULL"
            ),
            2
        );
    }

    #[test]
    fn a_group_of_writes_that_all_succeed_is_stored_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, file) = database(dir.path());
        let mut ops = vec![rule_set("h")];
        ops.extend((0..50).map(|i| evaluation("h", &format!("R{i}"))));
        let (mut batch, answers) = jobs(ops);
        assert!(commit_batch(&mut conn, &mut batch, &file));
        let ids: Vec<i64> = answers
            .into_iter()
            .skip(1)
            .map(|mut a| match a.try_recv() {
                Ok(Ok(Reply::Id(id))) => id,
                _ => panic!("not stored"),
            })
            .collect();
        assert_eq!(ids, (1..=50).collect::<Vec<_>>());
        let stored: Vec<(i64, String)> = conn
            .prepare("SELECT evaluation_id, rule_id FROM flags ORDER BY evaluation_id")
            .expect("query")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("flags");
        let expected: Vec<(i64, String)> = (0..50).map(|i| (i + 1, format!("R{i}"))).collect();
        assert_eq!(stored, expected);
        assert_eq!(
            scalar(
                &conn,
                "SELECT count(*) FROM access_log WHERE evaluation_id IS NOT NULL"
            ),
            50
        );
    }

    #[test]
    fn a_bulk_write_enlarges_the_page_cache_and_gives_it_back() {
        let conn = Connection::open_in_memory().expect("database");
        let before = cache_size(&conn);
        {
            let _cache = BulkCache::enlarge(&conn).expect("enlarged");
            assert_eq!(cache_size(&conn), -BULK_CACHE_KIB);
            assert_ne!(before, -BULK_CACHE_KIB);
        }
        assert_eq!(cache_size(&conn), before);
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("count")
    }

    /// A test check is marked by the request's token, not by the accounts table when the
    /// row is written: the account may be revoked (or gone) by then, and a test check
    /// stored as real would join the audit's real counts.
    #[test]
    fn a_test_check_is_marked_by_its_request_whatever_the_accounts_hold_by_then() {
        let conn = in_memory_with_rule_set();
        let access = Access {
            actor: "revoked.tester".to_owned(),
            ..access("check")
        };
        for test in [true, false] {
            let evaluation = NewEvaluation {
                requested_by: "revoked.tester".to_owned(),
                test,
                ..new_evaluation("h", "R1")
            };
            apply(
                &conn,
                &Op::Evaluation(Box::new(evaluation), access.clone()),
                &now_rfc3339(),
            )
            .expect("stored");
        }
        let marked: Vec<bool> = conn
            .prepare("SELECT test FROM evaluations ORDER BY id")
            .expect("query")
            .query_map([], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(marked, [true, false]);
    }

    /// A migrated database in memory, foreign keys on, with the rule set `h`.
    fn in_memory_with_rule_set() -> Connection {
        let mut conn = Connection::open_in_memory().expect("database");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("foreign keys");
        super::super::migrations()
            .to_latest(&mut conn)
            .expect("schema");
        conn.execute(
            "INSERT INTO rule_sets VALUES ('h', 'gk', '1', '[]', '2020-01-01T00:00:00Z')",
            [],
        )
        .expect("rule set");
        conn
    }

    #[test]
    fn a_check_is_stored_with_its_facts_and_retention_deletes_them_with_it() {
        let conn = in_memory_with_rule_set();
        let text = include_str!("../../examples/ren-profil.json");
        let profile = crate::profile::Profile::from_stored_json(text).expect("profile");
        let access = Access {
            actor: "officer".to_owned(),
            role: crate::auth::Role::Handlaggare,
            action: "check",
            case: None,
            evaluation_id: None,
            account_id: None,
            detail: None,
        };
        let flag = |rule_id: &str| StoredFlag {
            rule_id: rule_id.to_owned(),
            severity: crate::ruleset::Severity::Info,
            message: "m".to_owned(),
        };
        let evaluation = NewEvaluation {
            case: crate::pseudonym::Pseudonym::from_stored("ab".repeat(32)).expect("pseudonym"),
            stage: profile.stage,
            checked_on: profile.checked_on,
            rule_set_hash: "h".to_owned(),
            requested_by: "officer".to_owned(),
            test: false,
            profile_json: text.to_owned(),
            flags: vec![flag("zeta"), flag("alpha")],
            errors: Vec::new(),
            shadow: None,
            facts: super::super::facts::CheckFacts::of(&profile),
        };
        let Reply::Id(id) = apply(
            &conn,
            &Op::Evaluation(Box::new(evaluation), access),
            &now_rfc3339(),
        )
        .expect("stored") else {
            panic!("not an id");
        };
        let (first_meeting_on, sgi, flagged, failed): (Option<String>, Option<u32>, String, String) = conn
            .query_row(
                "SELECT first_meeting_on, sgi, flagged, failed FROM check_facts WHERE evaluation_id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .expect("facts");
        assert_eq!(
            first_meeting_on,
            profile.gk.first_meeting_on.value().map(|d| d.to_string())
        );
        assert_eq!(sgi, profile.person.sgi.map(|s| s.sek_per_year()));
        assert_eq!(flagged, "alpha zeta");
        assert_eq!(failed, "");

        // Outcomes: of the checked case, of a case without a check (with an earlier
        // version), and of one recorded late.
        conn.execute_batch(&format!(
            "INSERT INTO outcomes VALUES ('{checked}', '2024-01-01', 'left_insurance', '[]', '2001-01-01T00:00:00Z', 'x');
             INSERT INTO outcomes VALUES ('{unchecked}', '2024-01-01', 'left_insurance', '[]', '2001-01-01T00:00:00Z', 'x');
             INSERT INTO outcome_history (case_pseudonym, ended_on, outcome, reasons_json, recorded_at, recorded_by, replaced_at, replaced_by)
                 VALUES ('{unchecked}', '2023-01-01', 'returned_to_fk', '[]', '2000-01-01T00:00:00Z', 'x', '2001-01-01T00:00:00Z', 'x');
             INSERT INTO outcomes VALUES ('{late}', '2024-01-01', 'left_insurance', '[]', '9000-01-01T00:00:00Z', 'x');",
            checked = "ab".repeat(32),
            unchecked = "cd".repeat(32),
            late = "ef".repeat(32),
        ))
        .expect("outcomes");
        let purger = Access {
            actor: "cli:purge".to_owned(),
            role: crate::auth::Role::Admin,
            action: "purge",
            case: None,
            evaluation_id: None,
            account_id: None,
            detail: None,
        };
        let purge = |cutoff: &str| match apply(
            &conn,
            &Op::Purge(cutoff.to_owned(), purger.clone()),
            &now_rfc3339(),
        )
        .expect("purge")
        {
            Reply::Purged(counts) => counts,
            _ => panic!("not a purge"),
        };

        // Retention: a cutoff before the check keeps it, one after deletes its facts too.
        assert_eq!(purge("0000"), PurgeCounts::default());
        assert_eq!(count(&conn, "check_facts"), 1);
        // Before the check, after two outcomes: only the one without a check goes.
        let counts = purge("2020");
        assert_eq!(
            (counts.evaluations, counts.outcomes, counts.outcome_versions),
            (0, 1, 1)
        );
        assert_eq!(count(&conn, "outcomes"), 2);
        assert_eq!(count(&conn, "outcome_history"), 0);
        // After the check: it goes, and with it its case's outcome; and the late one.
        let counts = purge("9999");
        assert_eq!(
            (counts.evaluations, counts.flags, counts.outcomes),
            (1, 2, 2)
        );
        assert_eq!(count(&conn, "evaluations"), 0);
        assert_eq!(count(&conn, "check_facts"), 0);
        assert_eq!(count(&conn, "outcomes"), 0);
    }
}
