//! Files and folders readable by their owner only: the database (with its write-ahead log
//! and shared-memory file), the pseudonym key, the tokens file and backups hold health
//! data or secrets, so nothing of them is ever created readable by others.

use std::io::Write as _;
use std::path::Path;

/// Creates `path` and every missing parent; each folder made here is 0700 (on Unix).
/// Folders that already exist keep their mode.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Creates the parent folder of `path` if it is missing (0700).
pub fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) => create_dir_all(parent),
        None => Ok(()),
    }
}

/// Creates `path` with mode 0600 (on Unix) and writes `bytes`, synced to disk; fails if
/// it exists.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_parent(path)?;
    let mut file = new_file_options().open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Options that create a new file, mode 0600 (on Unix), failing if it exists.
pub fn new_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Takes every permission for group and others away from `path`, if it exists and has
/// any; returns whether it changed anything.
pub fn restrict(path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            return Ok(true);
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(false)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn made_folders_and_files_are_owner_only_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a/b/secret");
        write_new(&file, b"x").expect("written");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert!(write_new(&file, b"y").is_err());
        assert_eq!(std::fs::read(&file).expect("read"), b"x");
    }

    #[test]
    fn restrict_removes_group_and_other_bits_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("db");
        std::fs::write(&file, b"").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        assert!(restrict(&file).expect("restricted"));
        assert_eq!(mode(&file), 0o600);
        assert!(!restrict(&file).expect("nothing to do"));
        assert!(!restrict(&dir.path().join("missing")).expect("missing is fine"));
    }
}
