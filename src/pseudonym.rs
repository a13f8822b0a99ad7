//! Pseudonymisation of case references: HMAC-SHA-256 under a secret key, so stored
//! checks and outcomes of one case join without the case id ever being stored.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::profile::CaseId;

/// A case's pseudonym: 64 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pseudonym(String);

impl Pseudonym {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts a stored pseudonym back (64 hex characters).
    pub fn from_stored(text: String) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Self(text))
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({}…)", self.0.get(..8).unwrap_or_default())
    }
}

/// The secret key. Never printed.
#[derive(Clone)]
pub struct PseudonymKey {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(<secret>)")
    }
}

/// Where the key came from, for the start-up message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    Configured,
    ReadFromFile,
    Generated,
}

impl PseudonymKey {
    pub const MIN_SECRET_LEN: usize = 32;

    pub fn from_secret(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(format!(
                "pseudonymnyckeln måste vara minst {} byte lång",
                Self::MIN_SECRET_LEN
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| "ogiltig pseudonymnyckel".to_owned())?;
        Ok(Self { mac })
    }

    /// Uses the configured secret if there is one; otherwise reads `file`, or on the
    /// first start creates it with 32 random bytes (hex) readable by the owner only.
    pub fn load_or_create(
        configured: Option<&str>,
        file: &Path,
    ) -> Result<(Self, KeyOrigin), String> {
        if let Some(secret) = configured {
            return Ok((
                Self::from_secret(secret.trim().as_bytes())
                    .map_err(|why| format!("pseudonym_secret: {why}"))?,
                KeyOrigin::Configured,
            ));
        }
        // Checked and made owner-only before it is read (nothing to restrict when missing).
        restrict_key_file(file)?;
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let key = Self::from_secret(text.trim().as_bytes())
                    .map_err(|why| format!("{why}; {} håller ingen sådan", file.display()))?;
                Ok((key, KeyOrigin::ReadFromFile))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let secret = hex::encode(rand::random::<[u8; 32]>());
                write_owner_only(file, &secret)
                    .map_err(|e| format!("kan inte skapa {}: {e}", file.display()))?;
                Ok((Self::from_secret(secret.as_bytes())?, KeyOrigin::Generated))
            }
            Err(err) => Err(format!("kan inte läsa {}: {err}", file.display())),
        }
    }

    /// The key's check value: its HMAC of a text no case id can be (case ids hold no
    /// line breaks), so it is no case's pseudonym and tells nothing of the key. The
    /// database records it, so another key is refused before it makes pseudonyms that
    /// never meet the stored ones.
    pub fn check_value(&self) -> String {
        let mut mac = self.mac.clone();
        mac.update(b"\ngk-regler: pseudonym key check\n");
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn pseudonymise(&self, case_id: &CaseId) -> Pseudonym {
        let mut mac = self.mac.clone();
        mac.update(case_id.expose().as_bytes());
        Pseudonym(hex::encode(mac.finalize().into_bytes()))
    }
}

/// Refuses a key file the service cannot trust ([`crate::owner_only::untrusted`]), then
/// takes group and other permissions away from it, as the store does for the database:
/// whoever reads the key can tell which case a pseudonym is.
pub(crate) fn restrict_key_file(path: &Path) -> Result<(), String> {
    crate::owner_only::require_trusted(path, crate::owner_only::Use::Written)
        .map_err(|e| format!("pseudonymnyckeln {}: {e}", path.display()))?;
    match crate::owner_only::restrict(path) {
        Ok(true) => {
            tracing::warn!(file = %path.display(), "made the pseudonym key file owner-only");
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(err) => Err(format!(
            "kan inte göra {} läsbar bara för ägaren: {err}",
            path.display()
        )),
    }
}

/// Creates `path` with mode 0600 (on Unix), in a folder made 0700 if missing, and writes
/// `text`; fails if it exists.
pub(crate) fn write_owner_only(path: &Path, text: &str) -> std::io::Result<()> {
    crate::owner_only::write_new(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_case_same_pseudonym_other_key_other_pseudonym() {
        let a = PseudonymKey::from_secret(&[1; 32]).expect("key");
        let b = PseudonymKey::from_secret(&[2; 32]).expect("key");
        let case = CaseId::parse("FK-1").expect("case");
        assert_eq!(a.pseudonymise(&case), a.pseudonymise(&case));
        assert_ne!(a.pseudonymise(&case), b.pseudonymise(&case));
        assert_eq!(a.pseudonymise(&case).as_str().len(), 64);
        assert!(!a.pseudonymise(&case).as_str().contains("FK-1"));
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(PseudonymKey::from_secret(b"short").is_err());
    }

    #[test]
    fn generated_key_file_is_reused_and_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("k");
        let (first, origin) = PseudonymKey::load_or_create(None, &file).expect("created");
        assert_eq!(origin, KeyOrigin::Generated);
        let (second, origin) = PseudonymKey::load_or_create(None, &file).expect("read");
        assert_eq!(origin, KeyOrigin::ReadFromFile);
        let case = CaseId::parse("X").expect("case");
        assert_eq!(first.pseudonymise(&case), second.pseudonymise(&case));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
