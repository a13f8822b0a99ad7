//! Bearer tokens and roles. Tokens are kept only as SHA-256 hashes and compared in
//! constant time; a request's token resolves to a [`Principal`] (name and role).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do (README.md "Roles").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Case officer: checks cases, reads own checks.
    Handlaggare,
    /// Policy staff: rules, dry runs, reload.
    Policy,
    /// Analyst: audit and outcomes.
    Analytiker,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Handlaggare,
        Role::Policy,
        Role::Analytiker,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handlaggare => "handlaggare",
            Self::Policy => "policy",
            Self::Analytiker => "analytiker",
            Self::Admin => "admin",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// Whether this principal holds one of `roles` (admin holds every role).
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.role == Role::Admin || roles.contains(&self.role)
    }
}

/// A token entry as stored in config or in the tokens file.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

struct HashedToken {
    name: String,
    role: Role,
    hash: [u8; 32],
}

/// The set of valid tokens.
pub struct Tokens {
    entries: Vec<HashedToken>,
}

impl Tokens {
    pub fn new(entries: &[TokenEntry]) -> Result<Self, String> {
        let entries = entries
            .iter()
            .map(|entry| {
                let bytes = hex::decode(entry.sha256.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        format!("token {}: sha256 måste vara 64 hex-tecken", entry.name)
                    })?;
                Ok(HashedToken {
                    name: entry.name.clone(),
                    role: entry.role,
                    hash: bytes,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal a token belongs to. Compares against every entry in constant time
    /// per entry, without stopping at the first match.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&hash)) {
                found = Some(Principal {
                    name: entry.name.clone(),
                    role: entry.role,
                });
            }
        }
        found
    }
}

/// A fresh random token and its stored entry.
pub fn create_token(name: &str, role: Role) -> (String, TokenEntry) {
    let token = format!("gkr_{}", hex::encode(rand::random::<[u8; 32]>()));
    let entry = TokenEntry {
        name: name.to_owned(),
        role,
        sha256: hex::encode(Sha256::digest(token.as_bytes())),
    };
    (token, entry)
}

/// Reads the tokens file (a YAML list of entries); a missing file is an empty list.
pub fn read_token_file(path: &Path) -> Result<Vec<TokenEntry>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(format!("kan inte läsa {}: {err}", path.display())),
    }
}

/// Adds `entry` to the tokens file, writing a new file and renaming it into place.
pub fn append_token_file(path: &Path, entry: TokenEntry) -> Result<(), String> {
    let mut entries = read_token_file(path)?;
    if entries.iter().any(|e| e.name == entry.name) {
        return Err(format!(
            "det finns redan en token med namnet {}",
            entry.name
        ));
    }
    entries.push(entry);
    let text = serde_yaml::to_string(&entries).map_err(|e| e.to_string())?;
    let temp = path.with_extension("yaml.tmp");
    let _ = std::fs::remove_file(&temp);
    crate::pseudonym::write_owner_only(&temp, &text)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| format!("kan inte skriva {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_token_authenticates_with_its_role_only() {
        let (token, entry) = create_token("anna", Role::Policy);
        let tokens = Tokens::new(&[entry]).expect("tokens");
        let who = tokens.authenticate(&token).expect("known token");
        assert_eq!(who.role, Role::Policy);
        assert!(who.has_any(&[Role::Policy]));
        assert!(!who.has_any(&[Role::Analytiker]));
        assert!(tokens.authenticate("gkr_wrong").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn admin_has_every_role() {
        let p = Principal {
            name: "a".into(),
            role: Role::Admin,
        };
        assert!(p.has_any(&[Role::Handlaggare]));
    }

    #[test]
    fn token_file_round_trip_refuses_duplicate_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.yaml");
        let (_, entry) = create_token("a", Role::Admin);
        append_token_file(&path, entry.clone()).expect("written");
        assert_eq!(read_token_file(&path).expect("read").len(), 1);
        assert!(append_token_file(&path, entry).is_err());
    }
}
