//! The active rule set: reading it and reloading it from its directory. A reload is all
//! or nothing: a refused set leaves the old one active and lists every problem.

use std::sync::Arc;

use super::{App, AppError, require};
use crate::auth::{Principal, Role};
use crate::contract::RuleSetRef;
use crate::ruleset::RuleSet;

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
}

/// Loads the rules directory again and swaps the new set in: all or nothing; a refused
/// set ([`AppError::Rules`]) leaves the old one active.
pub async fn reload(app: &App, principal: &Principal) -> Result<Reloaded, AppError> {
    require(principal, RELOAD_ROLES)?;
    let _one_reload_at_a_time = app.reload_lock.lock().await;
    let dir = app.rules_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || RuleSet::load(&dir))
        .await
        .map_err(AppError::Task)?;
    match loaded {
        Ok(rules) => {
            app.store.record_rule_set(&rules).await?;
            let previous = RuleSetRef::of(&app.rules.load());
            let active = RuleSetRef::of(&rules);
            app.rules.store(Arc::new(rules));
            app.metrics.record_reload(true);
            tracing::info!(version = %active.version, hash = %active.content_hash, "rules reloaded");
            Ok(Reloaded {
                changed: previous.content_hash != active.content_hash,
                previous,
                active,
            })
        }
        Err(err) => {
            app.metrics.record_reload(false);
            tracing::warn!(problems = err.problems.len(), "rule reload refused");
            Err(AppError::Rules(err))
        }
    }
}
