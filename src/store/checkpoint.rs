//! Folding the write-ahead log back into the database file, mostly off the writer thread.
//!
//! SQLite's own automatic checkpoint runs inside the commit that takes the WAL past 1,000
//! pages: that commit's callers wait for the copy and the database file's `fsync`, a few
//! milliseconds against a fraction of one for a commit. Here that work is split:
//!
//! - Every [`WalPolicy::nudge_every`] new WAL frames the writer nudges the checkpoint
//!   thread, which has its own connection. It copies the committed pages no reader needs
//!   into the database file (a passive checkpoint: it neither waits for nor blocks the
//!   writer or the readers), then flushes the file to disk.
//! - After its first commit once the thread is done, and once that commit's callers
//!   have their answers, the writer takes in the few frames committed meanwhile, and
//!   SQLite flushes the file again (little is left to flush). Only a checkpoint that
//!   caught up with the WAL lets it start over from its beginning, and under steady
//!   writes only the writer, which makes them, can catch up.
//! - Should the WAL still reach [`WalPolicy::fold_inline_at`] frames (a long read holds
//!   old pages, or the thread is behind), the writer folds it itself, as SQLite would.
//!
//! Durability is unchanged: a commit is on disk in the WAL before anyone hears of it, and
//! a checkpoint only copies committed pages. SQLite lets the WAL start over only after a
//! checkpoint that copied everything and flushed the database file.

use std::cell::Cell;
use std::ffi::c_int;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// When the WAL is folded back into the database file, in WAL frames (one page each).
#[derive(Clone, Copy, Debug)]
pub(super) struct WalPolicy {
    /// The writer nudges the checkpoint thread each time the WAL has grown by this many
    /// frames.
    pub nudge_every: u32,
    /// The writer folds the WAL itself once it holds this many frames, and again each
    /// `nudge_every` frames more while it cannot start over.
    pub fold_inline_at: u32,
}

impl WalPolicy {
    /// The checkpoint thread every 250 frames (4 MiB at the 16 KiB pages of a database
    /// made here, 1 MiB at 4 KiB), a quarter of SQLite's own threshold: smaller folds,
    /// more often, which shortened one client's p99 to 0.8× that of 1,000 frames with the
    /// throughput unchanged; at 16 KiB a page, 62 and 30 frames did not shorten it
    /// further (BENCHMARKS.md, "Measured changes"). 10,000 frames (160 MiB at 16 KiB) as
    /// the bound.
    pub const DEFAULT: Self = Self {
        nudge_every: 250,
        fold_inline_at: 10_000,
    };
}

thread_local! {
    /// The size of the WAL in frames after the last commit on this thread's connection,
    /// as SQLite's WAL hook reports it. Only the writer thread commits.
    static WAL_FRAMES: Cell<u32> = const { Cell::new(0) };
}

/// SQLite's WAL hook: runs on the committing thread after each commit.
fn record_wal_frames(_: &Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|cell| cell.set(u32::try_from(frames).unwrap_or(0)));
    Ok(())
}

/// The checkpoint thread as the writer sees it.
struct CheckpointThread {
    nudge: SyncSender<()>,
    /// Set by the thread when it has done the fold of a nudge.
    folded: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// The writer's side: watches the WAL's size after each commit and decides who folds it.
pub(super) struct WalKeeper {
    policy: WalPolicy,
    thread: Option<CheckpointThread>,
    /// Whether the thread has a nudge it has not yet reported done.
    nudged: bool,
    /// The WAL's size at which the thread is nudged next.
    next_nudge_at: u32,
    /// The WAL's size at which the writer folds it itself next.
    next_bound_at: u32,
    /// The WAL's size after the last commit: a smaller one means it started over.
    last_frames: u32,
}

impl WalKeeper {
    /// Replaces SQLite's automatic checkpoint on `writer` with this keeper and starts the
    /// checkpoint thread on `checkpointer`, a read-write connection to the same database,
    /// and its file. Without one the writer folds the WAL itself.
    pub fn start(
        writer: &Connection,
        checkpointer: Option<(Connection, File)>,
        policy: WalPolicy,
    ) -> Self {
        // Setting a WAL hook turns SQLite's automatic checkpoint off on this connection.
        writer.wal_hook(Some(record_wal_frames));
        WAL_FRAMES.with(|cell| cell.set(0));
        let thread = checkpointer.and_then(|(checkpointer, database)| {
            // One pending nudge is enough: a fold takes in every frame committed before it.
            let (nudge, nudges) = sync_channel(1);
            let folded = Arc::new(AtomicBool::new(false));
            let done = Arc::clone(&folded);
            let thread = std::thread::Builder::new()
                .name("gk-store-ckpt".to_owned())
                .spawn(move || run(&checkpointer, &database, &nudges, &done))
                .map(|handle| CheckpointThread {
                    nudge,
                    folded,
                    handle,
                });
            if thread.is_err() {
                tracing::warn!("no checkpoint thread: the writer folds the write-ahead log itself");
            }
            thread.ok()
        });
        Self {
            policy,
            thread,
            nudged: false,
            next_nudge_at: policy.nudge_every,
            next_bound_at: policy.fold_inline_at,
            last_frames: 0,
        }
    }

    /// Called on the writer thread after each batch, once its callers have their answers.
    pub fn after_commit(&mut self, writer: &Connection) {
        let frames = WAL_FRAMES.with(Cell::get);
        let WalPolicy {
            nudge_every,
            fold_inline_at,
        } = self.policy;
        if frames < self.last_frames {
            self.next_nudge_at = nudge_every;
            self.next_bound_at = fold_inline_at;
        }
        self.last_frames = frames;
        let thread_done = self.nudged
            && self
                .thread
                .as_ref()
                .is_some_and(|thread| thread.folded.swap(false, Ordering::AcqRel));
        if thread_done {
            // The thread copied and flushed most of the WAL: take in the rest (nothing,
            // should the thread have caught up).
            self.nudged = false;
            fold(writer);
        } else if frames >= self.next_bound_at {
            self.next_bound_at = frames.saturating_add(nudge_every);
            fold(writer);
        } else if !self.nudged && frames >= self.next_nudge_at {
            self.next_nudge_at = frames.saturating_add(nudge_every);
            match &self.thread {
                Some(thread) if thread.nudge.try_send(()).is_ok() => self.nudged = true,
                // No thread to nudge: fold here, as SQLite would.
                _ => fold(writer),
            }
        }
    }

    /// Stops the checkpoint thread once it has done the fold of its last nudge.
    pub fn stop(self) {
        if let Some(CheckpointThread { nudge, handle, .. }) = self.thread {
            drop(nudge);
            let _ = handle.join();
        }
    }
}

/// The checkpoint thread: per nudge, one passive checkpoint and a flush of the database
/// file, until the writer is gone.
fn run(conn: &Connection, database: &File, nudges: &Receiver<()>, folded: &AtomicBool) {
    while nudges.recv().is_ok() {
        fold(conn);
        // SQLite flushes the file only after a checkpoint that caught up with frames
        // committed during it too; flushing what this one copied leaves the writer's
        // fold little to wait for (and costs next to nothing when SQLite has flushed it).
        if let Err(err) = database.sync_data() {
            tracing::warn!(error = %err, "could not flush the database file");
        }
        folded.store(true, Ordering::Release);
    }
}

/// Copies every committed frame no reader still needs into the database file, without
/// waiting for a lock; a failure is logged (SQLite's message names no stored value) and
/// the next fold tries again.
fn fold(conn: &Connection) {
    if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %err, "could not fold the write-ahead log into the database file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL-mode database in `dir`, its path, and the writer's connection to it.
    fn database(dir: &std::path::Path) -> (std::path::PathBuf, Connection) {
        let path = dir.join("db.sqlite3");
        let writer = connection(&path);
        writer
            .execute_batch("CREATE TABLE t (x BLOB)")
            .expect("table");
        (path, writer)
    }

    fn connection(path: &std::path::Path) -> Connection {
        let conn = Connection::open(path).expect("database");
        super::super::configure(&conn).expect("configured");
        conn
    }

    fn keeper(writer: &Connection, path: &std::path::Path, policy: WalPolicy) -> WalKeeper {
        let file = File::open(path).expect("database file");
        WalKeeper::start(writer, Some((connection(path), file)), policy)
    }

    /// Commits one row of about one page on `conn`, then lets `keeper` look at the WAL.
    fn commit_a_page(conn: &Connection, keeper: &mut WalKeeper) {
        conn.execute("INSERT INTO t VALUES (randomblob(3000))", [])
            .expect("insert");
        keeper.after_commit(conn);
    }

    fn wal_frames_now() -> u32 {
        WAL_FRAMES.with(Cell::get)
    }

    #[test]
    fn the_thread_folds_most_of_the_wal_the_writer_the_rest_and_the_wal_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, writer) = database(dir.path());
        // The writer never folds at a bound: only the thread's fold and its own after it.
        let policy = WalPolicy {
            nudge_every: 50,
            fold_inline_at: u32::MAX,
        };
        let mut keeper = keeper(&writer, &path, policy);
        for _ in 0..10 {
            commit_a_page(&writer, &mut keeper);
        }
        assert!(
            !keeper.nudged,
            "not nudged yet at {} frames",
            wal_frames_now()
        );
        // A read that holds its snapshot keeps the thread's fold from the frames
        // committed after it, as commits made during the fold would.
        let reader = connection(&path);
        reader.execute_batch("BEGIN").expect("begin");
        reader
            .query_row("SELECT count(*) FROM t", [], |_| Ok(()))
            .expect("read");
        // Only the thread copies pages into the file: its size before the nudge.
        let before = std::fs::metadata(&path).expect("file").len();
        while !keeper.nudged {
            commit_a_page(&writer, &mut keeper);
        }
        let grown = wal_frames_now();
        let folded = &keeper.thread.as_ref().expect("a thread").folded;
        let waited = std::time::Instant::now();
        while !folded.load(Ordering::Acquire) {
            assert!(waited.elapsed().as_secs() < 30, "the thread never folded");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let after = std::fs::metadata(&path).expect("file").len();
        assert!(
            after > before,
            "the thread copied pages into the database file: {before} → {after} bytes"
        );
        reader.execute_batch("COMMIT").expect("end of the read");
        // The next commit hears the thread is done and takes in the rest; the one after
        // it starts the WAL over.
        commit_a_page(&writer, &mut keeper);
        assert!(!keeper.nudged);
        commit_a_page(&writer, &mut keeper);
        let started_over = wal_frames_now();
        keeper.stop();
        assert!(
            started_over < grown,
            "the WAL started over: {started_over} frames after {grown}"
        );
    }

    #[test]
    fn without_the_thread_the_wal_grows_until_the_writer_folds_it_at_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, writer) = database(dir.path());
        // Never nudged: only the bound folds.
        let policy = WalPolicy {
            nudge_every: u32::MAX,
            fold_inline_at: 50,
        };
        let mut keeper = keeper(&writer, &path, policy);
        let mut sizes = Vec::new();
        for _ in 0..200 {
            commit_a_page(&writer, &mut keeper);
            sizes.push(wal_frames_now());
        }
        keeper.stop();
        let largest = sizes.iter().copied().max().unwrap_or_default();
        assert!(largest >= 50, "the WAL reached the bound: {largest}");
        assert!(largest < 60, "and never went far past it: {largest}");
        assert!(
            sizes.windows(2).any(|pair| pair[1] < pair[0]),
            "the WAL started over after the writer's fold"
        );
    }

    #[test]
    fn the_hook_turns_off_sqlites_own_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, writer) = database(dir.path());
        let policy = WalPolicy {
            nudge_every: u32::MAX,
            fold_inline_at: u32::MAX,
        };
        let mut keeper = keeper(&writer, &path, policy);
        // Past SQLite's own threshold of 1,000 pages, no checkpoint has run.
        for _ in 0..1_100 {
            commit_a_page(&writer, &mut keeper);
        }
        keeper.stop();
        let frames: i64 = writer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .expect("checkpoint");
        assert!(frames > 1_000, "the WAL kept every frame: {frames}");
    }
}
