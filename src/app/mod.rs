//! The use cases of gk-regler, one function each, shared by every front end: the HTTP
//! API ([`crate::service`]), the web pages ([`crate::web`]) and the command line
//! (`src/main.rs`).
//!
//! Each use case takes the acting [`Principal`], checks the role it needs, writes its own
//! access-log entry and returns an [`AppError`]: never an HTTP status, never text printed
//! for a person. Where to look:
//! - [`check`]: check a case (evaluate and store), dry run, read one check, a case's history;
//! - [`outcomes`]: record outcomes (API list and file import);
//! - [`rules`]: the active rule set and reloading it;
//! - [`history`]: import a cohort, audit, replay;
//! - [`admin`]: opening the key, store and tokens at start-up, purge, creating tokens.

pub mod admin;
pub mod check;
pub mod history;
pub mod metrics;
pub mod outcomes;
pub mod rules;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::auth::{Principal, Role, Tokens};
use crate::pseudonym::{Pseudonym, PseudonymKey};
use crate::ruleset::{LoadError, RuleSet};
use crate::store::{Access, Store, StoreError};

use self::metrics::Metrics;

/// Why a use case did not complete. Nothing was stored when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The acting principal's role may not do this.
    #[error("rollen saknar behörighet")]
    Forbidden,
    /// Nothing the acting principal may see has that id.
    #[error("hittades inte")]
    NotFound,
    /// A rule set was refused; every problem is listed.
    #[error(transparent)]
    Rules(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration (key, tokens) could not be used.
    #[error("{0}")]
    Config(String),
    /// Input given by the person (a file, a period, a name) is invalid.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A report could not be written out.
    #[error("rapporten kunde inte skrivas: {0}")]
    Report(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A background task ended without an answer.
    #[error("ett internt arbete avbröts")]
    Task(#[source] tokio::task::JoinError),
}

/// Everything the running service's use cases share.
pub struct App {
    /// The active rule set: a use case takes one snapshot and uses it throughout, so it
    /// never sees two rule sets; a reload builds the new set completely before swapping.
    pub rules: ArcSwap<RuleSet>,
    pub rules_dir: PathBuf,
    reload_lock: tokio::sync::Mutex<()>,
    pub store: Store,
    pub key: PseudonymKey,
    pub tokens: Tokens,
    pub metrics: Metrics,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The lowest `min_cell` an audit may be asked for (config `audit_min_cell_floor`).
    pub audit_min_cell_floor: usize,
}

impl App {
    pub fn new(
        rules: RuleSet,
        rules_dir: PathBuf,
        store: Store,
        key: PseudonymKey,
        tokens: Tokens,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            rules: ArcSwap::from_pointee(rules),
            rules_dir,
            reload_lock: tokio::sync::Mutex::new(()),
            store,
            key,
            tokens,
            metrics: Metrics::new(),
            max_body_bytes,
            audit_min_cell_floor: crate::audit::DEFAULT_MIN_CELL,
        }
    }

    /// Sets the lowest `min_cell` an audit may be asked for.
    pub fn with_audit_min_cell_floor(mut self, floor: usize) -> Self {
        self.audit_min_cell_floor = floor;
        self
    }

    /// The active rule set, as one snapshot.
    pub fn active_rules(&self) -> Arc<RuleSet> {
        self.rules.load_full()
    }
}

/// Refuses unless `principal` holds one of `roles` (admin holds every role).
pub fn require(principal: &Principal, roles: &[Role]) -> Result<(), AppError> {
    if principal.has_any(roles) {
        Ok(())
    } else {
        tracing::warn!(actor = %principal.name, role = principal.role.as_str(), "refused: role not allowed");
        Err(AppError::Forbidden)
    }
}

/// The access-log entry of `action` by `principal`.
fn access(
    principal: &Principal,
    action: &'static str,
    case: Option<Pseudonym>,
    evaluation_id: Option<i64>,
) -> Access {
    Access {
        actor: principal.name.clone(),
        role: principal.role.as_str(),
        action,
        case,
        evaluation_id,
    }
}
