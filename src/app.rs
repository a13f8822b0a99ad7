//! Start-up and the database-facing commands: `serve`, `import-outcomes`, `purge` and
//! `token create`. Each opens what it needs from a [`Config`] and reports to the person
//! at the terminal in Swedish; tracing gets only non-personal events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Principal, Role, Tokens, append_token_file, create_token, read_token_file};
use crate::config::Config;
use crate::outcome::Outcome;
use crate::pseudonym::{KeyOrigin, PseudonymKey};
use crate::ruleset::{LoadError, RuleSet};
use crate::service::{self, AppState};
use crate::store::{Store, StoreError};

/// Why a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Rules(LoadError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub(crate) fn open_key(config: &Config) -> Result<PseudonymKey, AppError> {
    let (key, origin) = PseudonymKey::load_or_create(
        config.pseudonym_secret.as_ref().map(|s| s.expose()),
        &config.pseudonym_key_file,
    )
    .map_err(AppError::Config)?;
    if origin == KeyOrigin::Generated {
        println!(
            "Skapade en ny pseudonymnyckel i {} (bara ägaren kan läsa den). Spara en kopia: utan nyckeln går nya kontroller inte att koppla till gamla.",
            config.pseudonym_key_file.display()
        );
    }
    Ok(key)
}

pub(crate) fn open_store(config: &Config) -> Result<(Store, crate::store::WriterHandle), AppError> {
    Ok(Store::open(&config.database, config.max_batch)?)
}

/// Tokens from the config and the tokens file; on a first start with none, creates an
/// admin token and prints it once.
fn load_tokens(config: &Config) -> Result<Tokens, AppError> {
    let mut entries = config.tokens.clone();
    entries.extend(read_token_file(&config.tokens_file).map_err(AppError::Config)?);
    if entries.is_empty() {
        let (token, entry) = create_token("admin", Role::Admin);
        append_token_file(&config.tokens_file, entry.clone()).map_err(AppError::Config)?;
        entries.push(entry);
        println!("Första start: skapade en admin-token. Den visas bara nu, spara den:");
        println!("  {token}");
        println!(
            "Skapa fler med `gk-regler token create --role handlaggare --name NAMN`, eller från källkoden `cargo run --release -- token create --role handlaggare --name NAMN` (hashar sparas i {}).",
            config.tokens_file.display()
        );
    }
    Tokens::new(&entries).map_err(AppError::Config)
}

/// `gk-regler serve`: runs until SIGINT/SIGTERM, then finishes in-flight requests and
/// closes the database after committing every queued write.
pub async fn serve(config: Config) -> Result<(), AppError> {
    let rules = RuleSet::load(&config.rules_dir).map_err(AppError::Rules)?;
    let (store, writer) = open_store(&config)?;
    let key = open_key(&config)?;
    let tokens = load_tokens(&config)?;
    store.record_rule_set(&rules).await?;
    let label = rules.label();
    let state = Arc::new(
        AppState::new(
            rules,
            config.rules_dir.clone(),
            store.clone(),
            key,
            tokens,
            config.max_body_bytes,
        )
        .with_audit_min_cell_floor(config.audit_min_cell_floor),
    );

    let retention = config.retention_days.map(|days| {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                match purge_older_than(&store, jiff::Span::new().days(i64::from(days))).await {
                    Ok(counts) => {
                        tracing::info!(evaluations = counts.evaluations, "retention purge")
                    }
                    Err(err) => tracing::warn!(error = %err, "retention purge failed"),
                }
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            }
        })
    });
    drop(store);

    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    println!("gk-regler lyssnar på http://{address} med {label}");
    println!("Databas: {}", config.database.display());
    tracing::info!(%address, "listening");

    service::serve(listener, state, shutdown_signal()).await?;
    if let Some(task) = retention {
        task.abort();
        let _ = task.await;
    }
    // Every Store handle is gone now: the writer commits what is queued and closes.
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| AppError::Io(std::io::Error::other(e)))?;
    println!("gk-regler har stängts.");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn purge_older_than(
    store: &Store,
    age: jiff::Span,
) -> Result<crate::store::PurgeCounts, AppError> {
    let cutoff = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_sub(age)
        .map(|zoned| zoned.timestamp())
        .map_err(|e| AppError::Input(format!("ogiltig tidsperiod: {e}")))?;
    let cutoff = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    Ok(store.purge_created_before(cutoff).await?)
}

/// `gk-regler purge --older-than DURATION`.
pub async fn purge(config: Config, older_than: &str) -> Result<(), AppError> {
    let age: jiff::Span = older_than.parse().map_err(|e| {
        AppError::Input(format!(
            "--older-than {older_than:?}: {e} (t.ex. 90d, 6mo, 2y)"
        ))
    })?;
    let (store, writer) = open_store(&config)?;
    let counts = purge_older_than(&store, age).await?;
    drop(store);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    println!(
        "Rensade {} kontroller äldre än {older_than} ({} flaggor, {} regelfel).",
        counts.evaluations, counts.flags, counts.rule_errors
    );
    Ok(())
}

/// Reads outcomes from JSONL (one object per line) or CSV (`case_id,ended_on,outcome,reasons`).
pub fn read_outcomes_file(path: &Path) -> Result<Vec<Outcome>, AppError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::Input(format!("{}: {e}", path.display())))?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    crate::outcome::read_outcomes_text(&text, is_csv)
        .map_err(|e| AppError::Input(format!("{}:{}: {}", path.display(), e.line, e.message)))
}

/// `gk-regler import-outcomes FILE`: all or nothing.
pub async fn import_outcomes(config: Config, path: &Path) -> Result<(), AppError> {
    let outcomes = read_outcomes_file(path)?;
    let (store, writer) = open_store(&config)?;
    let key = open_key(&config)?;
    let principal = Principal {
        name: "cli:import-outcomes".to_owned(),
        role: Role::Analytiker,
    };
    let total = outcomes.len();
    let changes = service::record_outcome_list(&store, &key, outcomes, &principal).await?;
    drop(store);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    let summary = service::summarise_changes(&changes);
    println!(
        "Läste {total} utfall: {} nya, {} ersatta, {} oförändrade.",
        summary.created, summary.replaced, summary.unchanged
    );
    Ok(())
}

/// `gk-regler token create`: prints the token once and stores its hash.
pub fn token_create(config: &Config, role: Role, name: &str) -> Result<(), AppError> {
    if name.trim().is_empty() || name.len() > 64 {
        return Err(AppError::Input("--name måste vara 1–64 tecken".to_owned()));
    }
    let (token, entry) = create_token(name, role);
    append_token_file(&config.tokens_file, entry).map_err(AppError::Config)?;
    println!("{token}");
    eprintln!(
        "Token för {name} (roll {}) skapad; hashen sparades i {}. Token visas bara nu.",
        role.as_str(),
        config.tokens_file.display()
    );
    Ok(())
}
