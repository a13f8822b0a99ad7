//! Bearer tokens, roles and purposes. Tokens are kept only as SHA-256 hashes (in the
//! database's `accounts` table, see [`crate::app::accounts`]); a request's token
//! resolves to a [`Principal`] (name and role).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

crate::names::name_enum!(
    /// What a token may do (README.md "Roles").
    Role {
    Handlaggare,
    Policy,
    Analytiker,
    Admin,
    }
);

impl Role {
    pub fn label_sv(self) -> &'static str {
        match self {
            Self::Handlaggare => "handläggare",
            Self::Policy => "policy",
            Self::Analytiker => "analytiker",
            Self::Admin => "administratör",
        }
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// A test-purpose account's checks are marked, and kept apart from real ones.
    pub purpose: Purpose,
}

impl Principal {
    /// Whether this principal holds one of `roles` (admin holds every role).
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.role == Role::Admin || roles.contains(&self.role)
    }

    /// Whether this principal's token was made for tests: its checks are test checks, and
    /// it reads and changes nothing of real work.
    pub fn is_for_tests(&self) -> bool {
        self.purpose == Purpose::Test
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

crate::names::name_enum!(
    /// What a token is for: `test` tokens make test checks, which the audit can leave out.
    #[derive(Default)]
    Purpose {
        #[default]
        Normal,
        Test
    }
);

/// The SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hash of a stored entry's hex `sha256`.
pub fn entry_hash(entry: &TokenEntry) -> Result<[u8; 32], String> {
    hex::decode(entry.sha256.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("token {}: sha256 måste vara 64 hex-tecken", entry.name))
}

/// The token of an `Authorization` header value: the `Bearer` scheme in any letter case
/// (RFC 9110 §11.1), then the token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_token_hashes_to_its_entry() {
        let (token, entry) = create_token("anna", Role::Policy);
        assert_eq!(entry_hash(&entry), Ok(token_hash(&token)));
        assert_ne!(token_hash("gkr_wrong"), token_hash(&token));
        let bad = TokenEntry {
            sha256: "zz".into(),
            ..entry
        };
        assert!(entry_hash(&bad).is_err());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR   abc "] {
            assert_eq!(bearer_token(header), Some("abc"), "{header}");
        }
        for header in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }

    #[test]
    fn admin_has_every_role() {
        let p = Principal {
            name: "a".into(),
            role: Role::Admin,
            purpose: crate::auth::Purpose::Normal,
        };
        assert!(p.has_any(&[Role::Handlaggare]));
    }
}
