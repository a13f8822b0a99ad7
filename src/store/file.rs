//! The identity of the database file: a database deleted, moved or replaced under the
//! running service is noticed, so nothing is acknowledged into a file no one will open
//! again, and no read shows another database's rows.
//!
//! SQLite keeps writing to the file it opened, even after its name was removed; the only
//! sign is that the path now leads to no file or to another one. Comparing the device and
//! inode of the opened file with a fresh `stat` of the path costs one system call. The
//! write-ahead log (`-wal`) is watched the same way: deleted under the service, it took
//! the checks not yet folded into the database with it, and every later commit went into
//! a file no one would read again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::StoreError;

/// Device and inode of a file, and when it was made where the file system says: a file
/// deleted and made anew often gets the inode number just freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
    born: Option<std::time::SystemTime>,
}

impl FileId {
    fn of(path: &Path) -> std::io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            Ok(Self {
                device: metadata.dev(),
                inode: metadata.ino(),
                born: metadata.created().ok(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Ok(Self {
                device: 0,
                inode: 0,
                born: metadata.created().ok(),
            })
        }
    }
}

/// Why the path no longer leads to the database file the service opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error(
        "Databasfilen {} finns inte längre (borttagen eller flyttad); inget mer sparas. Lägg tillbaka filen eller återställ en säkerhetskopia och starta om tjänsten.", .0.display()
    )]
    Missing(PathBuf),
    #[error(
        "Databasfilen {} har ersatts av en annan fil; inget mer sparas. Starta om tjänsten om den nya filen är den rätta.", .0.display()
    )]
    Replaced(PathBuf),
    #[error("Databasfilen {} kan inte läsas: {}", .0.display(), .1)]
    Unreadable(PathBuf, String),
    #[error(
        "Databasens logg {} har tagits bort eller ersatts medan tjänsten körde; kontroller som ännu inte förts in i databasfilen kan ha gått förlorade, och inget mer sparas. Starta om tjänsten och jämför de senaste kontrollerna med det som sparats.", .0.display()
    )]
    LogGone(PathBuf),
}

impl From<FileProblem> for StoreError {
    fn from(problem: FileProblem) -> Self {
        Self::File(problem)
    }
}

/// The database file as it was opened.
#[derive(Debug)]
pub(super) struct DatabaseFile {
    path: PathBuf,
    opened: FileId,
    /// The write-ahead log's path, when the database is in WAL mode; its identity once
    /// it has been seen.
    wal: Option<(PathBuf, std::sync::OnceLock<FileId>)>,
    /// Whether the current problem has been logged (once, not per request).
    reported: AtomicBool,
}

impl DatabaseFile {
    /// Records the identity of the file at `path`, just opened; with `in_wal_mode`, its
    /// write-ahead log's too, as soon as it exists.
    pub(super) fn opened(path: &Path, in_wal_mode: bool) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            opened: FileId::of(path)?,
            wal: in_wal_mode.then(|| (with_suffix(path, "-wal"), std::sync::OnceLock::new())),
            reported: AtomicBool::new(false),
        })
    }

    /// Whether the write-ahead log is the one seen first: the connections hold it open,
    /// so SQLite truncates it but never removes it while the service runs.
    fn log_problem(&self) -> Option<FileProblem> {
        let (path, seen) = self.wal.as_ref()?;
        match FileId::of(path) {
            Ok(id) if *seen.get_or_init(|| id) == id => None,
            Ok(_) => Some(FileProblem::LogGone(path.clone())),
            Err(_) if seen.get().is_none() => None,
            Err(_) => Some(FileProblem::LogGone(path.clone())),
        }
    }

    /// Whether `path` still leads to the file opened. The first failure after a success
    /// is logged as an error (the path only: no personal data).
    pub(super) fn check(&self) -> Result<(), FileProblem> {
        let problem = match FileId::of(&self.path) {
            Ok(id) if id == self.opened => match self.log_problem() {
                None => {
                    if self.reported.swap(false, Ordering::Relaxed) {
                        tracing::warn!(path = %self.path.display(), "database file is back at its path");
                    }
                    return Ok(());
                }
                Some(problem) => problem,
            },
            Ok(_) => FileProblem::Replaced(self.path.clone()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                FileProblem::Missing(self.path.clone())
            }
            Err(err) => FileProblem::Unreadable(self.path.clone(), err.to_string()),
        };
        if !self.reported.swap(true, Ordering::Relaxed) {
            let cause = match problem {
                FileProblem::Missing(_) => "deleted or moved",
                FileProblem::Replaced(_) => "replaced by another file",
                FileProblem::Unreadable(..) => "cannot be read",
                FileProblem::LogGone(_) => "its write-ahead log was deleted or replaced",
            };
            tracing::error!(
                path = %self.path.display(),
                cause,
                "database file no longer at its path: refusing writes and reads, not ready"
            );
        }
        Err(problem)
    }
}

/// `path` with `suffix` appended to its file name (`x.sqlite3` → `x.sqlite3-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_replaced_and_restored_files_are_told_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        std::fs::write(&path, b"a").expect("write");
        let file = DatabaseFile::opened(&path, false).expect("opened");
        assert_eq!(file.check(), Ok(()));

        let aside = dir.path().join("aside");
        std::fs::rename(&path, &aside).expect("move away");
        assert_eq!(file.check(), Err(FileProblem::Missing(path.clone())));

        std::fs::write(&path, b"a").expect("another file, same content");
        assert_eq!(file.check(), Err(FileProblem::Replaced(path.clone())));

        std::fs::rename(&aside, &path).expect("move back");
        assert_eq!(file.check(), Ok(()), "the same file back at its path");
    }

    /// The write-ahead log deleted under the service took the checks not yet folded
    /// into the database with it, and the next commits went into it unseen.
    #[test]
    fn a_deleted_or_replaced_write_ahead_log_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let wal = with_suffix(&path, "-wal");
        std::fs::write(&path, b"a").expect("write");
        let file = DatabaseFile::opened(&path, true).expect("opened");
        assert_eq!(file.check(), Ok(()), "no log yet");
        std::fs::write(&wal, b"frames").expect("log");
        assert_eq!(file.check(), Ok(()), "the log as first seen");
        std::fs::write(&wal, b"").expect("truncated, as a checkpoint does");
        assert_eq!(file.check(), Ok(()));
        std::fs::remove_file(&wal).expect("deleted");
        assert_eq!(file.check(), Err(FileProblem::LogGone(wal.clone())));
        std::fs::write(&wal, b"").expect("another log");
        assert_eq!(file.check(), Err(FileProblem::LogGone(wal.clone())));
        // Without WAL mode (a rollback journal for an import alone) the log is not
        // watched.
        assert_eq!(
            DatabaseFile::opened(&path, false).expect("opened").check(),
            Ok(())
        );
    }
}
