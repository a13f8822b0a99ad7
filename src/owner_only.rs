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

/// How the service uses a file it must be able to trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Written and made owner-only by the service (the database and its companions, the
    /// pseudonym key): never through a symbolic link.
    Written,
    /// Only read (the configuration, the tokens file): a symbolic link is followed, but
    /// the link and the file must be trusted, and nobody but the owner and group may
    /// write the file.
    Read,
}

/// Why `path` is not a file the service can trust (to follow its path in a message), if it
/// is not: a symbolic link where [`Use::Written`] refuses one, an owner other than this
/// process's user or root, or (for [`Use::Read`]) write permission for others; for
/// [`Use::Written`], whether the file exists yet or not, a folder that another user owns
/// or that every user may write. Someone else's file in the
/// service's place, in a folder others can write to, would hand them the database, the
/// key or an admin token.
pub fn untrusted(path: &Path, usage: Use) -> std::io::Result<Option<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let user = rustix::process::geteuid().as_raw();
        let trusted_owner = |uid: u32| uid == user || uid == 0;
        // The folder of a file the service writes: whoever may write there may rename,
        // replace or plant the file (or its `-wal`) between any check and its use.
        if usage == Use::Written {
            let folder = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            if let Ok(folder) = std::fs::metadata(folder) {
                if !trusted_owner(folder.uid()) {
                    return Ok(Some(format!(
                        "mappen den ligger i ägs av en annan användare (uid {}) än den tjänsten kör som (uid {user}); \
                         lägg databasen och nyckeln i en mapp som tjänstens användare äger",
                        folder.uid()
                    )));
                }
                if folder.mode() & 0o002 != 0 {
                    return Ok(Some(
                        "mappen den ligger i får skrivas av alla användare; \
                         lägg databasen och nyckeln i en mapp som bara tjänstens användare kan skriva i"
                            .to_owned(),
                    ));
                }
            }
        }
        let link = match std::fs::symlink_metadata(path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let is_link = link.file_type().is_symlink();
        if is_link && usage == Use::Written {
            return Ok(Some(
                "är en symbolisk länk; ange filens egen sökväg".to_owned(),
            ));
        }
        let file = if is_link {
            std::fs::metadata(path)?
        } else {
            link.clone()
        };
        for (what, metadata) in [("länken", &link), ("filen", &file)] {
            if !trusted_owner(metadata.uid()) {
                return Ok(Some(format!(
                    "{what} ägs av en annan användare (uid {}) än den tjänsten kör som (uid {user}); \
                     den kan vara lagd där av någon annan. Flytta bort den, eller ge den rätt ägare",
                    metadata.uid()
                )));
            }
        }
        if usage == Use::Read && file.mode() & 0o002 != 0 {
            return Ok(Some(
                "får skrivas av alla användare; ta bort den rättigheten (chmod o-w)".to_owned(),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, usage);
    Ok(None)
}

/// Whether every user of the machine may read the file at `path` (a secret there is
/// anyone's).
pub fn readable_by_anyone(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// [`untrusted`] as an error.
pub fn require_trusted(path: &Path, usage: Use) -> std::io::Result<()> {
    match untrusted(path, usage)? {
        None => Ok(()),
        Some(why) => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            why,
        )),
    }
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
    fn links_where_written_and_files_others_may_write_are_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tokens.yaml");
        std::fs::write(&file, b"").expect("write");
        assert_eq!(untrusted(&file, Use::Read).expect("read"), None);
        assert_eq!(untrusted(&file, Use::Written).expect("read"), None);
        assert_eq!(
            untrusted(&dir.path().join("saknas"), Use::Written).expect("read"),
            None
        );
        let link = dir.path().join("länk");
        std::os::unix::fs::symlink(&file, &link).expect("link");
        assert_eq!(untrusted(&link, Use::Read).expect("read"), None);
        let refused = untrusted(&link, Use::Written)
            .expect("read")
            .expect("refused");
        assert!(refused.contains("symbolisk länk"), "{refused}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o646)).expect("chmod");
        let refused = untrusted(&link, Use::Read).expect("read").expect("refused");
        assert!(refused.contains("skrivas av alla"), "{refused}");
        assert!(require_trusted(&file, Use::Read).is_err());
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
