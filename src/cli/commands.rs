//! Start-up and the database-facing commands: `serve`, `import-outcomes`, `purge` and
//! `token create`. Each opens what it needs from a [`Config`] through
//! [`gk_regler::app::admin`] and reports to the person at the terminal in Swedish;
//! tracing gets only non-personal events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gk_regler::app::{self, App, AppError, admin};
use gk_regler::auth::{Principal, Role, Tokens};
use gk_regler::config::Config;
use gk_regler::pseudonym::{KeyOrigin, PseudonymKey};
use gk_regler::ruleset::RuleSet;
use gk_regler::service;
use gk_regler::store::OutcomeChange;

/// Opens the pseudonym key, telling the person when a new one was created.
pub fn open_key(config: &Config) -> Result<PseudonymKey, AppError> {
    let (key, origin) = admin::open_key(config)?;
    if origin == KeyOrigin::Generated {
        println!(
            "Skapade en ny pseudonymnyckel i {} (bara ägaren kan läsa den). Spara en kopia: utan nyckeln går nya kontroller inte att koppla till gamla.",
            config.pseudonym_key_file.display()
        );
    }
    Ok(key)
}

/// The tokens; on a first start with none, prints the admin token created once.
fn load_tokens(config: &Config) -> Result<Tokens, AppError> {
    let (tokens, created) = admin::load_tokens(config)?;
    if let Some(token) = created {
        println!("Första start: skapade en admin-token. Den visas bara nu, spara den:");
        println!("  {token}");
        println!(
            "Skapa fler med `gk-regler token create --role handlaggare --name NAMN`, eller från källkoden `cargo run --release -- token create --role handlaggare --name NAMN` (hashar sparas i {}).",
            config.tokens_file.display()
        );
    }
    Ok(tokens)
}

/// `gk-regler serve`: runs until SIGINT/SIGTERM, then finishes in-flight requests and
/// closes the database after committing every queued write.
pub async fn serve(config: Config) -> Result<(), AppError> {
    let rules = RuleSet::load(&config.rules_dir)?;
    let (store, writer) = admin::open_store(&config)?;
    let key = open_key(&config)?;
    let tokens = load_tokens(&config)?;
    store.record_rule_set(&rules).await?;
    let label = rules.label();
    let state = Arc::new(
        App::new(
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
                match admin::purge_older_than(&store, jiff::Span::new().days(i64::from(days))).await
                {
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
        .map_err(AppError::Task)?;
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

/// `gk-regler purge --older-than DURATION`.
pub async fn purge(config: Config, older_than: &str) -> Result<(), AppError> {
    let age = admin::parse_age(older_than)?;
    let (store, writer) = admin::open_store(&config)?;
    let counts = admin::purge_older_than(&store, age).await?;
    admin::close_store(store, writer).await?;
    println!(
        "Rensade {} kontroller äldre än {older_than} ({} flaggor, {} regelfel).",
        counts.evaluations, counts.flags, counts.rule_errors
    );
    Ok(())
}

/// `gk-regler import-outcomes FILE`: all or nothing.
pub async fn import_outcomes(config: Config, path: &Path) -> Result<(), AppError> {
    let outcomes = app::outcomes::read_file(path)?;
    let (store, writer) = admin::open_store(&config)?;
    let key = open_key(&config)?;
    let principal = Principal {
        name: "cli:import-outcomes".to_owned(),
        role: Role::Analytiker,
    };
    let total = outcomes.len();
    let recorded = app::outcomes::record(&store, &key, &principal, outcomes).await?;
    admin::close_store(store, writer).await?;
    print_recorded(total, &recorded);
    Ok(())
}

/// What recording outcomes did, for the person at the terminal.
pub fn print_recorded(total: usize, recorded: &app::outcomes::Recorded) {
    println!(
        "Läste {total} utfall: {} nya, {} ersatta, {} oförändrade.",
        recorded.count(OutcomeChange::Created),
        recorded.count(OutcomeChange::Replaced),
        recorded.count(OutcomeChange::Unchanged)
    );
}

/// `gk-regler token create`: prints the token once and stores its hash.
pub fn token_create(config: &Config, role: Role, name: &str) -> Result<(), AppError> {
    let token = admin::create_token_for(config, role, name)?;
    println!("{token}");
    eprintln!(
        "Token för {name} (roll {}) skapad; hashen sparades i {}. Token visas bara nu.",
        role.as_str(),
        config.tokens_file.display()
    );
    Ok(())
}
