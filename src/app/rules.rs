//! The active rule set: reading it and reloading it from its directory. A reload is all
//! or nothing: a refused set leaves the old one active and lists every problem.

use std::path::PathBuf;
use std::sync::Arc;

use super::{App, AppError, require};
use crate::auth::{Principal, Role};
use crate::contract::RuleSetRef;
use crate::ruleset::{LoadError, RuleSet};

/// Roles that may reload the rules.
pub const RELOAD_ROLES: &[Role] = &[Role::Policy];

/// The active rule set. Every signed-in principal may read it.
pub fn active(app: &App, _principal: &Principal) -> Arc<RuleSet> {
    app.active_rules()
}

/// What a successful reload did.
#[derive(Clone, Debug)]
pub struct Reloaded {
    /// Whether the content changed.
    pub changed: bool,
    pub previous: RuleSetRef,
    pub active: RuleSetRef,
    /// The shadow rule set now in use, when one is configured.
    pub shadow: Option<RuleSetRef>,
}

/// Loads a rules directory the way the live set is loaded (off the async workers).
async fn load(dir: PathBuf) -> Result<Result<RuleSet, LoadError>, AppError> {
    tokio::task::spawn_blocking(move || RuleSet::load(&dir))
        .await
        .map_err(AppError::Task)
}

/// Loads the rules directory (and the shadow rules directory, when configured) again
/// and swaps the new sets in: all or nothing; a refused set ([`AppError::Rules`], every
/// problem of both sets) leaves the old ones active.
pub async fn reload(app: &App, principal: &Principal) -> Result<Reloaded, AppError> {
    require(principal, RELOAD_ROLES)?;
    let _one_reload_at_a_time = app.reload_lock.lock().await;
    let loaded = load(app.rules_dir.clone()).await?;
    let shadow = match &app.shadow_rules_dir {
        Some(dir) => Some(load(dir.clone()).await?),
        None => None,
    };
    let (rules, shadow) = match (loaded, shadow.transpose()) {
        (Ok(rules), Ok(shadow)) => (rules, shadow),
        (loaded, shadow) => {
            let mut problems = Vec::new();
            for err in [loaded.err(), shadow.err()].into_iter().flatten() {
                problems.extend(err.problems);
            }
            app.metrics.record_reload(false);
            tracing::warn!(problems = problems.len(), "rule reload refused");
            return Err(AppError::Rules(LoadError { problems }));
        }
    };
    app.store.record_rule_set(&rules).await?;
    if let Some(shadow) = &shadow {
        app.store.record_rule_set(shadow).await?;
    }
    let previous = RuleSetRef::of(&app.rules.load());
    let active = RuleSetRef::of(&rules);
    let shadow_ref = shadow.as_ref().map(RuleSetRef::of);
    app.rules.store(Arc::new(rules));
    if let Some(shadow) = shadow {
        app.shadow.store(Some(Arc::new(shadow)));
    }
    app.metrics.record_reload(true);
    tracing::info!(version = %active.version, hash = %active.content_hash, "rules reloaded");
    Ok(Reloaded {
        changed: previous.content_hash != active.content_hash,
        previous,
        active,
        shadow: shadow_ref,
    })
}
