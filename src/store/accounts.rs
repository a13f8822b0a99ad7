//! Accounts (a person's name, role and token hash) and web sessions: every SQL statement
//! about who may use the service. Writes go through the writer thread like every other
//! write; lookups run on the read pool.

use rusqlite::{Connection, OptionalExtension, params};

use crate::auth::{Principal, Purpose, Role};

use super::writer::{Op, Reply, log_access};
use super::{Access, Store, StoreError, now_rfc3339};

/// An account about to be stored.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub name: String,
    pub role: Role,
    pub purpose: Purpose,
    pub token_sha256: [u8; 32],
    /// RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SSZ`); `None` never expires.
    pub expires_at: Option<String>,
    pub created_by: String,
}

/// An account as listed: never its token or hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub purpose: Purpose,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A signed-in web session, resolved.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub account_id: i64,
    pub principal: Principal,
    pub csrf_token: String,
    pub last_seen: i64,
}

/// Why a new account may not have its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameTaken {
    /// Another active account has it.
    Active,
    /// It looks like this known account's name (active or not), and is not that name.
    LooksLike(String),
}

#[derive(Debug)]
pub(super) enum AccountOp {
    /// Imports accounts whose hash is not stored yet, all or none: none when one's name
    /// belongs to another active account. When the table is still empty afterwards,
    /// stores `first_admin`.
    Import {
        accounts: Vec<NewAccount>,
        first_admin: Option<NewAccount>,
    },
    Create(NewAccount, Access),
    /// Revokes an account; the last active admin only when `last_admin_too`.
    Revoke {
        id: i64,
        access: Access,
        last_admin_too: bool,
    },
    CreateSession {
        id_sha256: [u8; 32],
        account_id: i64,
        csrf_token: String,
        now: i64,
        access: Access,
    },
    TouchSession([u8; 32], i64),
    DeleteSession([u8; 32], Option<Access>),
    DeleteIdleSessions(i64),
}

#[derive(Debug)]
pub(super) enum AccountReply {
    Imported(Imported),
    /// The new account's id, or why it may not have its name.
    Created(Result<i64, NameTaken>),
    Revoked(Revocation),
    Done,
}

/// What revoking an account did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// No active account has that id.
    NotActive,
    /// It is the last active admin: nobody could manage tokens through the service after.
    LastAdmin,
}

/// What importing the configured tokens did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    pub imported: usize,
    pub first_admin: bool,
    /// The names of new accounts that another active account already has, or that look
    /// like a known account's: when any, nothing was imported.
    pub names_taken: Vec<(String, NameTaken)>,
}

pub(super) fn apply(conn: &Connection, op: &AccountOp) -> Result<AccountReply, StoreError> {
    let now = now_rfc3339();
    match op {
        AccountOp::Import {
            accounts,
            first_admin,
        } => {
            let mut new = Vec::new();
            let mut names_taken = Vec::new();
            for account in accounts {
                let stored: bool = conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM accounts WHERE token_sha256 = ?1)",
                    )?
                    .query_row([&account.token_sha256[..]], |r| r.get(0))?;
                if stored {
                    continue;
                }
                if let Some(taken) = name_taken(conn, &account.name, &now)? {
                    names_taken.push((account.name.clone(), taken));
                }
                new.push(account);
            }
            if !names_taken.is_empty() {
                return Ok(AccountReply::Imported(Imported {
                    imported: 0,
                    first_admin: false,
                    names_taken,
                }));
            }
            for account in &new {
                retire_expired(conn, &account.name, &now, &account.created_by)?;
                insert(conn, account, &now)?;
            }
            let empty: bool =
                conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM accounts)", [], |r| {
                    r.get(0)
                })?;
            let first_admin = match first_admin {
                Some(admin) if empty => insert(conn, admin, &now)? > 0,
                _ => false,
            };
            Ok(AccountReply::Imported(Imported {
                imported: new.len(),
                first_admin,
                names_taken,
            }))
        }
        AccountOp::Create(account, access) => {
            if let Some(taken) = name_taken(conn, &account.name, &now)? {
                return Ok(AccountReply::Created(Err(taken)));
            }
            retire_expired(conn, &account.name, &now, &access.actor)?;
            insert(conn, account, &now)?;
            let id = conn.last_insert_rowid();
            log_access(
                conn,
                &Access {
                    account_id: Some(id),
                    ..access.clone()
                },
                &now,
            )?;
            Ok(AccountReply::Created(Ok(id)))
        }
        AccountOp::Revoke {
            id,
            access,
            last_admin_too,
        } => {
            // The last active admin stays: checked in the transaction that would revoke it.
            let active = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)";
            let role: Option<String> = conn
                .prepare_cached(&format!(
                    "SELECT role FROM accounts WHERE id = ?2 AND {active}"
                ))?
                .query_row(params![now, id], |row| row.get(0))
                .optional()?;
            if !last_admin_too && role.as_deref() == Some(Role::Admin.as_str()) {
                let other_admins: i64 = conn
                    .prepare_cached(&format!(
                        "SELECT count(*) FROM accounts WHERE role = ?3 AND id != ?2 AND {active}"
                    ))?
                    .query_row(params![now, id, Role::Admin.as_str()], |row| row.get(0))?;
                if other_admins == 0 {
                    return Ok(AccountReply::Revoked(Revocation::LastAdmin));
                }
            }
            let changed = conn
                .prepare_cached(
                    "UPDATE accounts SET revoked_at = ?2, revoked_by = ?3
                     WHERE id = ?1 AND revoked_at IS NULL",
                )?
                .execute(params![id, now, access.actor])?;
            conn.prepare_cached("DELETE FROM sessions WHERE account_id = ?1")?
                .execute([id])?;
            if changed > 0 {
                log_access(
                    conn,
                    &Access {
                        account_id: Some(*id),
                        ..access.clone()
                    },
                    &now,
                )?;
            }
            Ok(AccountReply::Revoked(if changed > 0 {
                Revocation::Revoked
            } else {
                Revocation::NotActive
            }))
        }
        AccountOp::CreateSession {
            id_sha256,
            account_id,
            csrf_token,
            now: seconds,
            access,
        } => {
            conn.prepare_cached(
                "INSERT INTO sessions (id_sha256, account_id, csrf_token, created_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                &id_sha256[..],
                account_id,
                csrf_token,
                now,
                seconds
            ])?;
            log_access(
                conn,
                &Access {
                    account_id: Some(*account_id),
                    ..access.clone()
                },
                &now,
            )?;
            Ok(AccountReply::Done)
        }
        AccountOp::TouchSession(id_sha256, seconds) => {
            conn.prepare_cached("UPDATE sessions SET last_seen = ?2 WHERE id_sha256 = ?1")?
                .execute(params![&id_sha256[..], seconds])?;
            Ok(AccountReply::Done)
        }
        AccountOp::DeleteSession(id_sha256, access) => {
            let account: Option<i64> = conn
                .prepare_cached("DELETE FROM sessions WHERE id_sha256 = ?1 RETURNING account_id")?
                .query_row([&id_sha256[..]], |r| r.get(0))
                .optional()?;
            if let (Some(account), Some(access)) = (account, access) {
                log_access(
                    conn,
                    &Access {
                        account_id: Some(account),
                        ..access.clone()
                    },
                    &now,
                )?;
            }
            Ok(AccountReply::Done)
        }
        AccountOp::DeleteIdleSessions(before) => {
            conn.prepare_cached("DELETE FROM sessions WHERE last_seen < ?1")?
                .execute([before])?;
            Ok(AccountReply::Done)
        }
    }
}

/// Inserts `account`; with `or_ignore`, an account whose hash (or active name) is
/// already stored is skipped. Returns how many rows were inserted.
/// Whether an account that still works (neither revoked nor expired) has `name`, ASCII
/// case aside (`Anna` and `anna` would read as one person in the access log).
fn name_taken(conn: &Connection, name: &str, now: &str) -> Result<Option<NameTaken>, StoreError> {
    let active: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE name = ?1 COLLATE NOCASE AND revoked_at IS NULL
                 AND (expires_at IS NULL OR expires_at > ?2))",
        )?
        .query_row([name, now], |r| r.get(0))?;
    if active {
        return Ok(Some(NameTaken::Active));
    }
    let looks = crate::look_alike::key(name);
    let mut known = conn.prepare_cached("SELECT DISTINCT name FROM accounts")?;
    let mut rows = known.query([])?;
    while let Some(row) = rows.next()? {
        let known: String = row.get(0)?;
        if known != name && crate::look_alike::key(&known) == looks {
            return Ok(Some(NameTaken::LooksLike(known)));
        }
    }
    Ok(None)
}

/// Marks the expired accounts named `name` revoked by `actor`, so that a new account may
/// take the name (one account per name is not revoked); an expired token works no more
/// either way.
fn retire_expired(conn: &Connection, name: &str, now: &str, actor: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE accounts SET revoked_at = ?2, revoked_by = ?3
         WHERE name = ?1 AND revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?2",
    )?
    .execute([name, now, actor])?;
    Ok(())
}

fn insert(conn: &Connection, account: &NewAccount, now: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO accounts (name, role, purpose, token_sha256, created_at, created_by, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
        account.name,
        account.role.as_str(),
        account.purpose.as_str(),
        &account.token_sha256[..],
        now,
        account.created_by,
        account.expires_at,
    ])?)
}

fn role_of(text: &str) -> Result<Role, StoreError> {
    Role::from_name(text).ok_or(StoreError::UnknownValue("accounts.role"))
}

fn purpose_of(text: &str) -> Result<Purpose, StoreError> {
    Purpose::from_name(text).ok_or(StoreError::UnknownValue("accounts.purpose"))
}

impl Store {
    async fn account_op(&self, op: AccountOp) -> Result<AccountReply, StoreError> {
        match self.write(Op::Accounts(op)).await? {
            Reply::Accounts(reply) => Ok(reply),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// Stores the accounts whose token hash is not stored yet (the tokens file and the
    /// config); stores `first_admin` when no account exists at all afterwards.
    pub async fn import_accounts(
        &self,
        accounts: Vec<NewAccount>,
        first_admin: Option<NewAccount>,
    ) -> Result<Imported, StoreError> {
        match self
            .account_op(AccountOp::Import {
                accounts,
                first_admin,
            })
            .await?
        {
            AccountReply::Imported(imported) => Ok(imported),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// Stores a new account; `None` when an active account already has its name.
    pub async fn create_account(
        &self,
        account: NewAccount,
        access: Access,
    ) -> Result<Result<i64, NameTaken>, StoreError> {
        match self.account_op(AccountOp::Create(account, access)).await? {
            AccountReply::Created(id) => Ok(id),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// Revokes account `id` and ends its sessions; the last active admin only when
    /// `last_admin_too` (a token nobody holds manages nothing).
    pub async fn revoke_account(
        &self,
        id: i64,
        access: Access,
        last_admin_too: bool,
    ) -> Result<Revocation, StoreError> {
        match self
            .account_op(AccountOp::Revoke {
                id,
                access,
                last_admin_too,
            })
            .await?
        {
            AccountReply::Revoked(done) => Ok(done),
            _ => Err(StoreError::UnexpectedReply),
        }
    }

    /// Every account, newest first.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, name, role, purpose, created_at, created_by, expires_at, revoked_at
                 FROM accounts ORDER BY id DESC",
            )?;
            let rows = statement.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })?;
            let mut accounts = Vec::new();
            for row in rows {
                let (id, name, role, purpose, created_at, created_by, expires_at, revoked_at) =
                    row?;
                accounts.push(Account {
                    id,
                    name,
                    role: role_of(&role)?,
                    purpose: purpose_of(&purpose)?,
                    created_at,
                    created_by,
                    expires_at,
                    revoked_at,
                });
            }
            Ok(accounts)
        })
        .await
    }

    /// The active (not revoked, not expired) account whose token hashes to `hash`.
    pub async fn account_by_token(
        &self,
        hash: [u8; 32],
    ) -> Result<Option<(i64, Principal)>, StoreError> {
        let now = now_rfc3339();
        self.read(move |conn| {
            let row: Option<(i64, String, String, Vec<u8>, String)> = conn
                .prepare_cached(
                    "SELECT id, name, role, token_sha256, purpose FROM accounts
                     WHERE token_sha256 = ?1 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > ?2)",
                )?
                .query_row(params![&hash[..], now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            match row {
                // The index found the row; the stored hash is compared again in
                // constant time before it counts.
                Some((id, name, role, stored, purpose))
                    if bool::from(subtle::ConstantTimeEq::ct_eq(&stored[..], &hash[..])) =>
                {
                    Ok(Some((
                        id,
                        Principal {
                            name,
                            role: role_of(&role)?,
                            purpose: purpose_of(&purpose)?,
                        },
                    )))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    /// Starts a session for `account_id` (access-logged as `access`).
    pub async fn create_session(
        &self,
        id_sha256: [u8; 32],
        account_id: i64,
        csrf_token: String,
        now: i64,
        access: Access,
    ) -> Result<(), StoreError> {
        self.account_op(AccountOp::CreateSession {
            id_sha256,
            account_id,
            csrf_token,
            now,
            access,
        })
        .await
        .map(|_| ())
    }

    /// The session with id hash `id_sha256` when it was used at or after `idle_after`
    /// (Unix seconds) and its account is active.
    pub async fn session(
        &self,
        id_sha256: [u8; 32],
        idle_after: i64,
    ) -> Result<Option<SessionInfo>, StoreError> {
        let now = now_rfc3339();
        self.read(move |conn| {
            let row: Option<(i64, String, String, String, i64, String)> = conn
                .prepare_cached(
                    "SELECT a.id, a.name, a.role, s.csrf_token, s.last_seen, a.purpose
                     FROM sessions s JOIN accounts a ON a.id = s.account_id
                     WHERE s.id_sha256 = ?1 AND s.last_seen >= ?2
                       AND a.revoked_at IS NULL
                       AND (a.expires_at IS NULL OR a.expires_at > ?3)",
                )?
                .query_row(params![&id_sha256[..], idle_after, now], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .optional()?;
            row.map(|(account_id, name, role, csrf_token, last_seen, purpose)| {
                Ok(SessionInfo {
                    account_id,
                    principal: Principal {
                        name,
                        role: role_of(&role)?,
                        purpose: purpose_of(&purpose)?,
                    },
                    csrf_token,
                    last_seen,
                })
            })
            .transpose()
        })
        .await
    }

    /// Records that the session was used at `now` (Unix seconds).
    pub async fn touch_session(&self, id_sha256: [u8; 32], now: i64) -> Result<(), StoreError> {
        self.account_op(AccountOp::TouchSession(id_sha256, now))
            .await
            .map(|_| ())
    }

    /// Ends a session (signing out, access-logged when `access` is given).
    pub async fn delete_session(
        &self,
        id_sha256: [u8; 32],
        access: Option<Access>,
    ) -> Result<(), StoreError> {
        self.account_op(AccountOp::DeleteSession(id_sha256, access))
            .await
            .map(|_| ())
    }

    /// Deletes sessions last used before `before` (Unix seconds).
    pub async fn delete_idle_sessions(&self, before: i64) -> Result<(), StoreError> {
        self.account_op(AccountOp::DeleteIdleSessions(before))
            .await
            .map(|_| ())
    }
}
