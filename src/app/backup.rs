//! Backups and restoring them. A backup is a folder with a consistent copy of the
//! database (taken with SQLite's backup API while the service runs), the pseudonym key,
//! and `manifest.json` (each file's size and SHA-256, when, the schema version and the
//! rule sets). It is written into a temporary folder beside its target and renamed into
//! place, so a backup folder is whole or absent. Restoring checks every checksum and the
//! database before writing anything, and never overwrites a database or a different key.
//!
//! The copying runs on the blocking thread pool, never on the async workers.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AppError, access, require};
use crate::auth::{Principal, Role};
use crate::config::Config;
use crate::owner_only;
use crate::store::backup::{
    ActiveToken, RuleSetName, check_copy, copy_database, ready_for_restore,
};

/// The manifest's name in a backup folder.
pub const MANIFEST: &str = "manifest.json";
/// The database copy's name in a backup folder.
pub const DATABASE: &str = "gk-regler.sqlite3";
/// The pseudonym key's name in a backup folder.
pub const KEY: &str = "pseudonym.key";
/// The manifest's format; a restore refuses any other.
pub const FORMAT: &str = "gk-regler-backup/1";

/// Roles that may take a backup (it holds every stored check).
pub const ROLES: &[Role] = &[Role::Admin];

/// A file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub gk_regler_version: String,
    /// The database migration the copy is at.
    pub schema_version: i64,
    pub evaluations: i64,
    pub outcomes: i64,
    pub rule_sets: Vec<RuleSetName>,
    pub files: Vec<BackupFile>,
}

/// Takes a backup of the database and pseudonym key of `config` into `dir`, which must
/// not exist or be empty. The backup is written to the access log first, so it holds
/// its own entry.
pub async fn backup(
    config: &Config,
    principal: &Principal,
    dir: &Path,
) -> Result<Manifest, AppError> {
    require(principal, ROLES)?;
    super::admin::require_database(config)?;
    check_target(dir)?;
    let key = key_text(config)?;
    let (store, writer) = super::admin::open_existing_store(config)?;
    let logged = store
        .log_access(access(principal, "backup", None, None))
        .await;
    super::admin::close_store(store, writer).await?;
    logged?;
    let database = config.database.clone();
    let dir = dir.to_path_buf();
    super::off_workers(move || write_backup(&database, &key, &dir)).await?
}

/// The temporary name of a backup being written beside its target folder.
const BACKUP_PREFIX: &str = ".gk-regler-backup-";
/// The temporary name of a database being restored beside its path.
const RESTORE_PREFIX: &str = ".gk-regler-restore-";

/// Temporary folders beside the backup folder `dir` of a backup that was stopped before it
/// was renamed into place (or is being written now): copies, whole or in part, of every
/// stored check, which no later run removes. For the person to remove.
pub fn interrupted_backups(dir: &Path) -> Vec<PathBuf> {
    beside(dir, BACKUP_PREFIX)
}

/// Temporary files beside `database` of a restore that was stopped before it renamed its
/// copy into place (or is running now). For the person to remove.
pub fn interrupted_restores(database: &Path) -> Vec<PathBuf> {
    beside(database, RESTORE_PREFIX)
}

/// The entries of the folder holding `path` whose names start with `prefix`, sorted.
fn beside(path: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder_of(path)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found
}

/// The folder that holds `path` (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Refuses a target that exists and is not an empty folder.
fn check_target(dir: &Path) -> Result<(), AppError> {
    match std::fs::symlink_metadata(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(AppError::Input(format!("{}: {err}", dir.display()))),
        Ok(meta) if meta.is_dir() => {
            if std::fs::read_dir(dir)?.next().is_none() {
                Ok(())
            } else {
                Err(AppError::Input(format!(
                    "mappen {} är inte tom; välj en ny mapp för säkerhetskopian",
                    dir.display()
                )))
            }
        }
        Ok(_) => Err(AppError::Input(format!(
            "{} finns redan och är ingen mapp; välj en ny mapp för säkerhetskopian",
            dir.display()
        ))),
    }
}

/// Whether the pseudonyms of a copy with `facts` are made with the key `key_text` (as a key
/// file holds it); a copy that records no key check may have been made with any key.
fn key_made(facts: &crate::store::backup::CopyFacts, key_text: &str) -> bool {
    facts.key_check.as_ref().is_none_or(|recorded| {
        crate::pseudonym::PseudonymKey::from_secret(key_text.trim().as_bytes())
            .is_ok_and(|key| key.check_value() == *recorded)
    })
}

/// The pseudonym key exactly as its file holds it (or the configured secret).
fn key_text(config: &Config) -> Result<String, AppError> {
    if let Some(secret) = &config.pseudonym_secret {
        return Ok(secret.expose().trim().to_owned());
    }
    let path = &config.pseudonym_key_file;
    crate::pseudonym::restrict_key_file(path).map_err(AppError::Config)?;
    std::fs::read_to_string(path).map_err(|err| {
            AppError::Config(format!(
                "pseudonymnyckeln {} kan inte läsas ({err}); utan den går säkerhetskopian inte att koppla till nya kontroller",
                path.display()
            ))
        })
}

fn write_backup(database: &Path, key: &str, dir: &Path) -> Result<Manifest, AppError> {
    let parent = folder_of(dir);
    owner_only::create_dir_all(parent)?;
    // Removed again unless it is renamed into place.
    let temp = tempfile::Builder::new()
        .prefix(BACKUP_PREFIX)
        .tempdir_in(parent)?;
    owner_only::restrict(temp.path())?;
    let copy = temp.path().join(DATABASE);
    drop(owner_only::new_file_options().open(&copy)?);
    // The copy's disk being full (or failing to write, which a tmpfs says for a full
    // disk) is not the database being unavailable.
    let facts = copy_database(database, &copy).map_err(|err| {
        if err.is_disk_full() || err.is_io_failure() {
            AppError::Input(format!(
                "säkerhetskopian får inte plats: disken där {} ligger är full{}. Databasen är orörd och ingen kopia skrevs.",
                parent.display(),
                if err.is_disk_full() {
                    ""
                } else {
                    " eller gav ett skrivfel"
                }
            ))
        } else {
            AppError::Store(err)
        }
    })?;
    if !key_made(&facts, key) {
        return Err(AppError::Config(format!(
            "pseudonymnyckeln är inte den som databasen {}s pseudonymer är gjorda med; en kopia med den skulle aldrig kunna kopplas till kontrollerna. Ingen kopia skrevs.",
            database.display()
        )));
    }
    owner_only::write_new(&temp.path().join(KEY), key.as_bytes())?;
    let files = [DATABASE, KEY]
        .into_iter()
        .map(|name| describe(&temp.path().join(name), name))
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        created_at: crate::store::now_rfc3339(),
        gk_regler_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: facts.schema_version,
        evaluations: facts.evaluations,
        outcomes: facts.outcomes,
        rule_sets: facts.rule_sets,
        files,
    };
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| AppError::Report(Box::new(e)))?;
    owner_only::write_new(&temp.path().join(MANIFEST), format!("{text}\n").as_bytes())?;
    sync_dir(temp.path())?;
    let written = temp.keep();
    // Replaces `dir` only if it is an empty folder (rename(2)); anything else fails.
    if let Err(err) = std::fs::rename(&written, dir) {
        let _ = std::fs::remove_dir_all(&written);
        return Err(AppError::Input(format!(
            "säkerhetskopian kunde inte läggas i {}: {err}",
            dir.display()
        )));
    }
    sync_dir(parent)?;
    Ok(manifest)
}

/// Size and SHA-256 of the file at `path`, as `name`.
fn describe(path: &Path, name: &str) -> Result<BackupFile, AppError> {
    let (bytes, sha256) = checksum(path)?;
    Ok(BackupFile {
        name: name.to_owned(),
        bytes,
        sha256,
    })
}

fn checksum(path: &Path) -> std::io::Result<(u64, String)> {
    copy_hashing(std::fs::File::open(path)?, std::io::sink())
}

/// Copies `source` into `sink`; returns how many bytes, and their SHA-256 in hex.
fn copy_hashing(
    mut source: impl std::io::Read,
    mut sink: impl std::io::Write,
) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        sink.write_all(&buffer[..n])?;
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// What a restore wrote.
#[derive(Clone, Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// Checks and outcomes in the restored database, counted in it.
    pub evaluations: i64,
    pub outcomes: i64,
    /// Whether the key was written (false: the same key was already in place).
    pub key_written: bool,
    /// The restored database's active tokens, admins first (its web sessions are ended).
    pub tokens: Vec<ActiveToken>,
}

/// Restores the backup in `dir` to the database and key paths of `config`: checks the
/// manifest, every file's size and checksum and the database copy whole first, then
/// writes the key (unless the same key is already there) and the database, each
/// owner-only. Refuses an existing database, and a different key, configured or in its
/// file. Runs on the pool of long work.
pub async fn restore(config: &Config, dir: &Path) -> Result<Restored, AppError> {
    let config = config.clone();
    let dir = dir.to_path_buf();
    super::off_workers(move || restore_blocking(&config, &dir)).await?
}

fn damaged(dir: &Path, what: impl std::fmt::Display) -> AppError {
    AppError::Input(format!(
        "säkerhetskopian i {} kan inte användas: {what}; inget återställdes",
        dir.display()
    ))
}

/// The largest manifest and key read (both are a few hundred bytes).
const MAX_SMALL_FILE_BYTES: u64 = 1 << 20;

/// Opens the backup's file `name` for reading, as a regular file only: a symbolic link is
/// not followed, and a named pipe or a device is refused at once (opened without waiting
/// for a writer), so nothing is read for ever. With its size.
fn open_backup_file(dir: &Path, name: &str) -> Result<(std::fs::File, u64), AppError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(name));
    let not_regular = || damaged(dir, format_args!("{name} är ingen vanlig fil"));
    let file = match file {
        Ok(file) => file,
        // O_NOFOLLOW: a symbolic link.
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => return Err(not_regular()),
        Err(err) => return Err(damaged(dir, format_args!("{name}: {err}"))),
    };
    let meta = file
        .metadata()
        .map_err(|err| damaged(dir, format_args!("{name}: {err}")))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    Ok((file, meta.len()))
}

/// The backup's small file `name` (the manifest, the key), read whole.
fn read_small_backup_file(dir: &Path, name: &str) -> Result<Vec<u8>, AppError> {
    let (file, len) = open_backup_file(dir, name)?;
    let too_large = || damaged(dir, format_args!("{name} är för stor"));
    if len > MAX_SMALL_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_SMALL_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(|err| damaged(dir, format_args!("{name}: {err}")))?;
    if bytes.len() as u64 > MAX_SMALL_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

fn restore_blocking(config: &Config, dir: &Path) -> Result<Restored, AppError> {
    // Where the database and the key go must be a place the service can trust, as every
    // other command requires of them (not a folder everyone may write).
    for (what, path) in [
        ("databasen", &config.database),
        ("pseudonymnyckeln", &config.pseudonym_key_file),
    ] {
        if let Some(why) = owner_only::untrusted(path, owner_only::Use::Written)? {
            return Err(AppError::Config(format!(
                "{what} {}: {why}. Inget återställdes.",
                path.display()
            )));
        }
    }
    let text = String::from_utf8(read_small_backup_file(dir, MANIFEST)?)
        .map_err(|_| damaged(dir, format_args!("{MANIFEST} är ingen text")))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|err| damaged(dir, format_args!("{MANIFEST}: {err}")))?;
    if manifest.format != FORMAT {
        return Err(damaged(
            dir,
            format_args!("okänt format {:?} i {MANIFEST}", manifest.format),
        ));
    }
    let mut names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    if names != [DATABASE, KEY] {
        return Err(damaged(
            dir,
            format_args!("{MANIFEST} ska nämna just {DATABASE} och {KEY}"),
        ));
    }
    let listed = |name: &str| manifest.files.iter().find(|file| file.name == name);
    let mismatch = |name: &str| {
        damaged(
            dir,
            format_args!(
                "{name} stämmer inte med kontrollsumman i {MANIFEST} (skadad eller ändrad)"
            ),
        )
    };
    let matches = |name: &str, bytes: u64, sha256: &str| {
        if listed(name).is_some_and(|file| file.bytes == bytes && file.sha256 == sha256) {
            Ok(())
        } else {
            Err(mismatch(name))
        }
    };

    let database = &config.database;
    for path in [
        database.clone(),
        crate::store::with_suffix(database, "-wal"),
    ] {
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(AppError::Input(format!(
                "{} finns redan; en återställning skriver aldrig över en databas. Flytta den först, eller ange en annan sökväg med database eller GK_REGLER_DATABASE.",
                path.display()
            )));
        }
    }
    // Left by an earlier database at the same path: SQLite would play a rollback journal
    // back into the restored copy (and damage it), and read a stale WAL index beside it.
    for suffix in ["-journal", "-shm"] {
        let path = crate::store::with_suffix(database, suffix);
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(AppError::Input(format!(
                "{} ligger kvar efter en tidigare databas på samma sökväg; SQLite skulle läsa in den i den återställda databasen. Flytta bort den först. Inget återställdes.",
                path.display()
            )));
        }
    }

    // Each file is read once, so what is checked is what is written.
    let key_bytes = read_small_backup_file(dir, KEY)?;
    matches(
        KEY,
        key_bytes.len() as u64,
        &hex::encode(Sha256::digest(&key_bytes)),
    )?;
    let key_as_stored = String::from_utf8(key_bytes)
        .map_err(|_| damaged(dir, format_args!("{KEY} är ingen text")))?;
    let key = key_as_stored.trim();
    // The database is copied beside its path, checked there, then renamed into place.
    let (source, len) = open_backup_file(dir, DATABASE)?;
    // Never more than the manifest lists is copied: a file that grows is not followed.
    if listed(DATABASE).is_none_or(|file| file.bytes != len) {
        return Err(mismatch(DATABASE));
    }
    let copy = copy_beside(std::io::Read::take(source, len), database).map_err(|err| {
        // Only a write fails for lack of space: the backup is not to blame.
        if matches!(
            err.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ) {
            AppError::Input(format!(
                "databasen får inte plats: disken där {} ska ligga är full. Säkerhetskopian är hel; inget återställdes.",
                database.display()
            ))
        } else {
            damaged(dir, format_args!("{DATABASE}: {err}"))
        }
    })?;
    matches(DATABASE, copy.bytes, &copy.sha256)?;
    let facts = check_copy(copy.file.path())
        .map_err(|err| damaged(dir, format_args!("{DATABASE}: {err}")))?;
    let tokens = ready_for_restore(copy.file.path())
        .map_err(|err| damaged(dir, format_args!("{DATABASE}: {err}")))?;

    if !key_made(&facts, key) {
        return Err(damaged(
            dir,
            format_args!("{KEY} är inte nyckeln som {DATABASE}s pseudonymer är gjorda med"),
        ));
    }
    let different_key = |place: &str| {
        AppError::Input(format!(
            "{place} är en annan nyckel än säkerhetskopians; med den skulle de återställda kontrollerna aldrig kopplas till nya. Inget återställdes."
        ))
    };
    let key_file = &config.pseudonym_key_file;
    let key_written = if let Some(secret) = &config.pseudonym_secret {
        if secret.expose().trim() != key {
            return Err(different_key("den inställda pseudonym_secret"));
        }
        false
    } else {
        match std::fs::read_to_string(key_file) {
            Ok(existing) if existing.trim() == key => false,
            Ok(_) => {
                return Err(different_key(&format!(
                    "pseudonymnyckeln i {}",
                    key_file.display()
                )));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                owner_only::write_new(key_file, key_as_stored.as_bytes())?;
                true
            }
            Err(err) => return Err(AppError::Io(err)),
        }
    };
    if let Err(err) = place_copy(copy.file, database) {
        if key_written {
            let _ = std::fs::remove_file(key_file);
        }
        return Err(err);
    }
    Ok(Restored {
        manifest,
        evaluations: facts.evaluations,
        outcomes: facts.outcomes,
        key_written,
        tokens,
    })
}

/// A database copied beside its path, with its size and SHA-256 as copied.
struct CopiedDatabase {
    file: tempfile::NamedTempFile,
    bytes: u64,
    sha256: String,
}

/// Copies `from` into a temporary file (0600, removed unless renamed into place) beside
/// `to`, hashing what it copies.
fn copy_beside(from: impl std::io::Read, to: &Path) -> std::io::Result<CopiedDatabase> {
    owner_only::create_parent(to)?;
    let mut file = tempfile::Builder::new()
        .prefix(RESTORE_PREFIX)
        .tempfile_in(folder_of(to))?;
    let (bytes, sha256) = copy_hashing(from, file.as_file_mut())?;
    file.as_file().sync_all()?;
    Ok(CopiedDatabase {
        file,
        bytes,
        sha256,
    })
}

/// Renames the checked copy to `to`, only if `to` still does not exist.
fn place_copy(copy: tempfile::NamedTempFile, to: &Path) -> Result<(), AppError> {
    copy.persist_noclobber(to).map_err(|err| {
        AppError::Input(format!(
            "{} kunde inte skrivas: {}; inget återställdes",
            to.display(),
            err.error
        ))
    })?;
    sync_dir(folder_of(to))?;
    Ok(())
}
