//! Unpacking an uploaded candidate rule set (a `.zip` or `.tar.gz` of a rules directory)
//! into a private temporary directory, treating the archive as hostile.
//!
//! Only regular files and directories with plain relative names are accepted: no `..`,
//! no absolute or drive paths, no backslashes, no control characters, no symbolic or hard
//! links, devices or FIFOs. The archive's size, its number of entries and the bytes
//! actually unpacked (never the sizes the archive declares) are capped, so a zip bomb
//! stops at the cap. The directory is created by `tempfile`, mode 0700, and removed when
//! the [`Unpacked`] is dropped, whatever happened. A refusal is a Swedish sentence naming
//! the entry (its name cleaned of control characters and shortened).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Largest archive accepted, in bytes.
pub const MAX_ARCHIVE_BYTES: usize = 5 * 1024 * 1024;
/// Most entries (files and directories) in an archive.
pub const MAX_ENTRIES: usize = 200;
/// Most bytes unpacked from all files together.
pub const MAX_UNPACKED_BYTES: u64 = 20 * 1024 * 1024;
/// Deepest directory nesting of an entry.
const MAX_DEPTH: usize = 8;
/// Longest entry name, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// An unpacked rules directory; removed from disk when dropped.
pub struct Unpacked {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Unpacked {
    /// The rules directory: the archive's top level, or its one top-level folder when
    /// the manifest is there (an archive of the folder itself).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temporary directory everything was unpacked into.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The kinds of archive accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Zip,
    TarGz,
}

impl Kind {
    /// The kind of `bytes`, from their first bytes (not from a file name).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            Some(Self::Zip)
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            Some(Self::TarGz)
        } else {
            None
        }
    }
}

/// An entry's name as shown in an error: control characters replaced, at most 120
/// characters.
fn shown(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(120)
        .collect();
    if cleaned.chars().count() < name.chars().count() {
        format!("{cleaned}…")
    } else {
        cleaned
    }
}

/// The checked relative path of an entry named `name`; `None` for the archive's own
/// top (`./`).
fn plain_path(name: &str) -> Result<Option<PathBuf>, String> {
    let refuse = |why: &str| {
        Err(format!(
            "Arkivet refuserades: posten «{}» {why}.",
            shown(name)
        ))
    };
    if name.len() > MAX_NAME_BYTES {
        return refuse("har ett för långt namn");
    }
    if name.chars().any(char::is_control) {
        return refuse("har tecken som inte hör hemma i ett filnamn");
    }
    if name.contains('\\') {
        return refuse("innehåller bakåtsnedstreck (\\); använd bara vanliga relativa namn");
    }
    if name.starts_with('/') {
        return refuse("har en absolut sökväg; bara relativa namn tas emot");
    }
    let mut path = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_string_lossy();
                if part.contains(':') {
                    return refuse("har ett namn med kolon (:)");
                }
                path.push(part.as_ref());
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return refuse("pekar ut ur mappen (med ..)");
            }
            Component::RootDir | Component::Prefix(_) => {
                return refuse("har en absolut sökväg; bara relativa namn tas emot");
            }
        }
    }
    if path.components().count() > MAX_DEPTH {
        return refuse("ligger för djupt i mappar");
    }
    Ok((!path.as_os_str().is_empty()).then_some(path))
}

/// Counts entries and unpacked bytes against the caps.
struct Budget {
    entries: usize,
    bytes: u64,
}

impl Budget {
    fn entry(&mut self) -> Result<(), String> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(format!(
                "Arkivet refuserades: det har fler än {MAX_ENTRIES} filer och mappar."
            ));
        }
        Ok(())
    }
}

/// Writes one file's content from `reader` to `path` under `root`, counting the bytes
/// actually read against the budget.
fn write_file(
    root: &Path,
    path: &Path,
    name: &str,
    reader: &mut dyn Read,
    budget: &mut Budget,
) -> Result<(), String> {
    let target = root.join(path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|_| unpack_failed(name))?;
    }
    // `create_new`: an entry given twice is refused rather than overwriting.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::AlreadyExists => given_twice(name),
            _ => unpack_failed(name),
        })?;
    let left = MAX_UNPACKED_BYTES - budget.bytes;
    let mut limited = reader.take(left + 1);
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = limited.read(&mut buffer).map_err(|_| {
            format!(
                "Arkivet refuserades: posten «{}» kunde inte packas upp (arkivet är skadat).",
                shown(name)
            )
        })?;
        if n == 0 {
            break;
        }
        budget.bytes += n as u64;
        if budget.bytes > MAX_UNPACKED_BYTES {
            return Err(format!(
                "Arkivet refuserades: uppackat blir det mer än {} MB (vid posten «{}»).",
                MAX_UNPACKED_BYTES / (1024 * 1024),
                shown(name)
            ));
        }
        file.write_all(&buffer[..n])
            .map_err(|_| unpack_failed(name))?;
    }
    Ok(())
}

fn given_twice(name: &str) -> String {
    format!(
        "Arkivet refuserades: posten «{}» finns mer än en gång.",
        shown(name)
    )
}

/// The raw names of the zip's central directory records from `start`, at most
/// [`MAX_ENTRIES`] + 1 of them; ends at the first that is not a record.
fn central_directory_names(bytes: &[u8], start: u64) -> impl Iterator<Item = &[u8]> {
    const SIGNATURE: &[u8] = b"PK\x01\x02";
    /// A central directory header's fixed part; the lengths of its name, extra field
    /// and comment are at 28, 30 and 32.
    const FIXED: usize = 46;
    let mut at = usize::try_from(start).ok();
    std::iter::from_fn(move || {
        let here = at?;
        let header = bytes.get(here..here.checked_add(FIXED)?)?;
        if !header.starts_with(SIGNATURE) {
            at = None;
            return None;
        }
        let length = |i: usize| usize::from(u16::from_le_bytes([header[i], header[i + 1]]));
        let name = bytes.get(here + FIXED..here + FIXED + length(28))?;
        at = Some(here + FIXED + length(28) + length(30) + length(32));
        Some(name)
    })
    .take(MAX_ENTRIES + 1)
}

fn unpack_failed(name: &str) -> String {
    format!("Posten «{}» kunde inte packas upp på servern.", shown(name))
}

fn not_regular(name: &str, what: &str) -> String {
    format!(
        "Arkivet refuserades: posten «{}» är {what}. Bara vanliga filer och mappar tas emot.",
        shown(name)
    )
}

/// Unpacks `bytes` into a new private temporary directory.
pub fn unpack(bytes: &[u8]) -> Result<Unpacked, String> {
    if bytes.len() > MAX_ARCHIVE_BYTES {
        return Err(format!(
            "Arkivet är för stort: högst {} MB tas emot.",
            MAX_ARCHIVE_BYTES / (1024 * 1024)
        ));
    }
    let kind = Kind::sniff(bytes).ok_or_else(|| {
        "Filen är inget zip- eller tar.gz-arkiv. Packa regelmappen som .zip eller .tar.gz."
            .to_owned()
    })?;
    let dir = tempfile::Builder::new()
        .prefix("gk-regler-kandidat-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|_| "Arkivet kunde inte packas upp på servern.".to_owned())?;
    let mut budget = Budget {
        entries: 0,
        bytes: 0,
    };
    match kind {
        Kind::Zip => unpack_zip(bytes, dir.path(), &mut budget)?,
        Kind::TarGz => unpack_tar_gz(bytes, dir.path(), &mut budget)?,
    }
    let root = rules_root(dir.path())?;
    Ok(Unpacked { dir, root })
}

/// The folder holding `manifest.yaml`: the top, or the one folder at the top.
fn rules_root(top: &Path) -> Result<PathBuf, String> {
    let missing =
        || "Arkivet har ingen manifest.yaml, varken överst eller i en mapp överst.".to_owned();
    if top.join("manifest.yaml").is_file() {
        return Ok(top.to_path_buf());
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(top)
        .map_err(|_| missing())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    match entries.as_slice() {
        [only] if only.is_dir() && only.join("manifest.yaml").is_file() => Ok(only.clone()),
        _ => Err(missing()),
    }
}

fn unpack_zip(bytes: &[u8], root: &Path, budget: &mut Budget) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|_| {
        "Zip-arkivet kunde inte läsas (det är skadat eller ofullständigt).".to_owned()
    })?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!(
            "Arkivet refuserades: det har fler än {MAX_ENTRIES} filer och mappar."
        ));
    }
    // The reader keeps one entry per name (the last), so a name given twice never reaches
    // `write_file`'s check, and a tool that unpacks the first would show other content
    // than was tried. The central directory's own records tell.
    let listed: Vec<&[u8]> =
        central_directory_names(bytes, archive.central_directory_start()).collect();
    let mut seen = std::collections::HashSet::new();
    if let Some(name) = listed.iter().find(|name| !seen.insert(**name)) {
        return Err(given_twice(&String::from_utf8_lossy(name)));
    }
    // Names the reader decodes anew (an Info-ZIP Unicode path field) may also meet:
    // then it has fewer entries than there are records.
    if listed.len() != archive.len() {
        return Err(
            "Arkivet refuserades: två poster har samma namn (ett av dem angivet på annat sätt)."
                .to_owned(),
        );
    }
    // On a file system that ignores case, two such names are one file.
    let mut lower_case = std::collections::HashSet::new();
    if let Some(name) = archive
        .file_names()
        .find(|name| !lower_case.insert(name.to_lowercase()))
    {
        return Err(given_twice(name));
    }
    for index in 0..archive.len() {
        budget.entry()?;
        let mut entry = archive.by_index(index).map_err(|_| {
            format!(
                "Arkivet refuserades: post nummer {} kunde inte läsas (arkivet är skadat eller krypterat).",
                index + 1
            )
        })?;
        let name = entry.name().to_owned();
        let path = plain_path(&name)?;
        // The Unix file type, when the archive records one.
        let file_type = entry.unix_mode().map(|mode| mode & 0o170_000);
        if entry.is_symlink() || file_type == Some(0o120_000) {
            return Err(not_regular(&name, "en symbolisk länk"));
        }
        if entry.is_dir() {
            if let Some(path) = path {
                std::fs::create_dir_all(root.join(path)).map_err(|_| unpack_failed(&name))?;
            }
            continue;
        }
        if !matches!(file_type, None | Some(0) | Some(0o100_000)) {
            return Err(not_regular(
                &name,
                "en enhet, en FIFO eller en annan särskild fil",
            ));
        }
        let Some(path) = path else {
            return Err(not_regular(&name, "utan namn"));
        };
        write_file(root, &path, &name, &mut entry, budget)?;
    }
    Ok(())
}

fn unpack_tar_gz(bytes: &[u8], root: &Path, budget: &mut Budget) -> Result<(), String> {
    let broken =
        || "Tar.gz-arkivet kunde inte läsas (det är skadat eller ofullständigt).".to_owned();
    // The whole decompressed stream is capped too, so headers the tar reader keeps in
    // memory (GNU long names, PAX records) cannot be a bomb of their own.
    let stream = flate2::read::GzDecoder::new(bytes).take(MAX_UNPACKED_BYTES + 4 * 1024 * 1024);
    let mut archive = tar::Archive::new(stream);
    let entries = archive.entries().map_err(|_| broken())?;
    for entry in entries {
        budget.entry()?;
        let mut entry = entry.map_err(|_| broken())?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = plain_path(&name)?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                if let Some(path) = path {
                    std::fs::create_dir_all(root.join(path)).map_err(|_| unpack_failed(&name))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let Some(path) = path else {
                    return Err(not_regular(&name, "utan namn"));
                };
                write_file(root, &path, &name, &mut entry, budget)?;
            }
            tar::EntryType::Symlink => return Err(not_regular(&name, "en symbolisk länk")),
            tar::EntryType::Link => return Err(not_regular(&name, "en hård länk")),
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(not_regular(&name, "en enhet"));
            }
            tar::EntryType::Fifo => return Err(not_regular(&name, "en FIFO")),
            _ => return Err(not_regular(&name, "en särskild post")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_plain_and_relative() {
        assert_eq!(
            plain_path("regler/manifest.yaml").expect("plain"),
            Some(PathBuf::from("regler/manifest.yaml"))
        );
        assert_eq!(plain_path("./").expect("top"), None);
        assert_eq!(
            plain_path("./tests/a.yaml").expect("plain"),
            Some(PathBuf::from("tests/a.yaml"))
        );
        for (name, says) in [
            ("../utanfor.rhai", "pekar ut ur mappen (med ..)"),
            ("regler/../../x", "pekar ut ur mappen (med ..)"),
            ("/etc/passwd", "absolut sökväg"),
            ("C:\\x.rhai", "bakåtsnedstreck"),
            ("C:/x.rhai", "kolon"),
            ("a\nb", "tecken som inte hör hemma"),
        ] {
            let err = plain_path(name).expect_err(name);
            assert!(err.contains(says), "{name}: {err}");
        }
        let deep = "a/".repeat(MAX_DEPTH + 1) + "x";
        assert!(plain_path(&deep).is_err());
    }

    #[test]
    fn error_names_are_cleaned_and_shortened() {
        assert_eq!(shown("a\u{1b}[31mb"), "a?[31mb");
        assert!(shown(&"x".repeat(500)).ends_with('…'));
    }

    /// A zip of `files` (name, content), written by the zip crate.
    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, content) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("start file");
            writer.write_all(content).expect("write");
        }
        writer.finish().expect("finish").into_inner()
    }

    #[test]
    fn the_unpacked_folder_is_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let unpacked = unpack(&zip_of(&[("manifest.yaml", b"name: x")])).expect("unpacked");
        let mode = std::fs::metadata(unpacked.dir.path())
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    #[test]
    fn a_zip_that_lists_a_name_twice_is_refused_naming_it() {
        // The zip crate writes no name twice: the second name is renamed in place, in
        // its local header and in the central directory.
        let mut bytes = zip_of(&[
            ("manifest.yaml", b"name: x"),
            ("regel.rhai", b"true"),
            ("regeX.rhai", b"false"),
        ]);
        let mut renamed = 0;
        for at in 0..bytes.len() - 10 {
            if &bytes[at..at + 10] == b"regeX.rhai" {
                bytes[at + 4] = b'l';
                renamed += 1;
            }
        }
        assert_eq!(renamed, 2, "the local header and the central directory");
        let err = unpack(&bytes).err().expect("refused");
        assert_eq!(
            err,
            "Arkivet refuserades: posten «regel.rhai» finns mer än en gång."
        );
        // The same names once each are unpacked.
        assert!(
            unpack(&zip_of(&[
                ("manifest.yaml", b"name: x"),
                ("regel.rhai", b"true")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn a_zip_naming_an_entry_twice_in_other_ways_is_refused() {
        // A name whose case alone differs is one file where case is ignored.
        let err = unpack(&zip_of(&[
            ("manifest.yaml", b"name: x"),
            ("Manifest.yaml", b"name: y"),
        ]))
        .err()
        .expect("refused");
        assert_eq!(
            err,
            "Arkivet refuserades: posten «Manifest.yaml» finns mer än en gång."
        );
        // An Info-ZIP Unicode path field gives an entry another name than its own: the
        // second entry below is read as a second `manifest.yaml`.
        // The writer checks the field against an empty name: it is written with that
        // name's checksum, 0, then given the entry's own.
        let mut field = vec![1u8, 0, 0, 0, 0];
        field.extend_from_slice(b"manifest.yaml");
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer
            .start_file("manifest.yaml", zip::write::SimpleFileOptions::default())
            .expect("start");
        writer.write_all(b"name: reviewed").expect("write");
        let mut options = zip::write::FullFileOptions::default();
        options
            .add_extra_data(0x7075, &field, false)
            .expect("the extra field");
        writer.start_file("manifest.yam_", options).expect("start");
        writer.write_all(b"name: tried").expect("write");
        let mut bytes = writer.finish().expect("finish").into_inner();
        let checksum = crc32fast::hash(b"manifest.yam_").to_le_bytes();
        let mut patched = 0;
        for at in 0..bytes.len() - field.len() {
            if bytes[at..at + field.len()] == field[..] {
                bytes[at + 1..at + 5].copy_from_slice(&checksum);
                patched += 1;
            }
        }
        assert_eq!(patched, 2, "the local header and the central directory");
        let err = unpack(&bytes).err().expect("refused");
        assert!(err.contains("samma namn"), "{err}");
    }

    #[test]
    fn only_zip_and_gzip_are_recognised() {
        assert_eq!(Kind::sniff(b"PK\x03\x04rest"), Some(Kind::Zip));
        assert_eq!(Kind::sniff(&[0x1f, 0x8b, 8]), Some(Kind::TarGz));
        assert_eq!(Kind::sniff(b"name: x"), None);
        assert!(unpack(b"name: x").is_err());
    }
}
