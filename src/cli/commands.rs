//! Start-up and the database-facing commands: `serve`, `import-outcomes`, `purge` and
//! `token create|list|revoke`. Each opens what it needs from a [`Config`] through
//! [`gk_regler::app::admin`] and reports to the person at the terminal in Swedish;
//! tracing gets only non-personal events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gk_regler::app::{self, App, AppError, admin};
use gk_regler::auth::{Principal, Role};
use gk_regler::config::Config;
use gk_regler::present::printable;
use gk_regler::pseudonym::{KeyOrigin, PseudonymKey};
use gk_regler::service;
use gk_regler::store::{OutcomeChange, Store, WriterHandle};

/// Opens the pseudonym key for the database of `store`, telling the person when a new one
/// was created. A refused key closes the store (its writer gives the database back as it
/// was) before the error is returned.
pub async fn open_key(
    store: Store,
    writer: WriterHandle,
    config: &Config,
) -> Result<(Store, WriterHandle, PseudonymKey), AppError> {
    let opened = match admin::open_key(&store, config).await {
        Ok(opened) => opened,
        Err(err) => {
            admin::close_store(store, writer).await?;
            return Err(err);
        }
    };
    if opened.taken_for_stored_pseudonyms {
        eprintln!(
            "obs: databasen {} har pseudonymer men ingen uppgift om vilken nyckel de gjordes med (en tidigare version gjorde den). {} är nu registrerad som databasens nyckel, och en annan nyckel vägras härefter. Var det fel nyckel: stoppa, lägg tillbaka databasen från säkerhetskopian och starta med rätt nyckel.",
            config.database.display(),
            if config.pseudonym_secret.is_some() {
                "Den inställda pseudonym_secret".to_owned()
            } else {
                format!("Nyckeln i {}", config.pseudonym_key_file.display())
            }
        );
        tracing::warn!("pseudonym key recorded for a database that already held pseudonyms");
    }
    let (key, origin) = (opened.key, opened.origin);
    if origin == KeyOrigin::Generated {
        println!(
            "Skapade en ny pseudonymnyckel i {} (bara ägaren kan läsa den). Spara en kopia: utan nyckeln går nya kontroller inte att koppla till gamla.",
            config.pseudonym_key_file.display()
        );
    }
    Ok((store, writer, key))
}

/// Imports configured tokens into the database; on a first start with no account,
/// prints the admin token created once. A tokens file the configuration names (not the
/// optional default) that is missing is said: the accounts it was to give are absent.
async fn import_tokens(
    store: &gk_regler::store::Store,
    config: &Config,
    first_admin: bool,
) -> Result<(), AppError> {
    if config.tokens_file != Config::default().tokens_file
        && !config.tokens_file.as_os_str().is_empty()
        && matches!(
            std::fs::symlink_metadata(&config.tokens_file),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound
        )
    {
        eprintln!(
            "obs: tokenfilen {} (tokens_file) finns inte; inga tokens lästes från den.",
            config.tokens_file.display()
        );
        tracing::warn!("the configured tokens file does not exist");
    }
    let (imported, created) = app::accounts::import_configured(store, config, first_admin).await?;
    if imported.imported > 0 {
        eprintln!(
            "Läste in {} token-hashar från konfigurationen och {} till databasen.",
            imported.imported,
            config.tokens_file.display()
        );
    }
    if let Some(token) = created {
        println!("Första start: skapade en admin-token. Den visas bara nu, spara den:");
        println!("  {token}");
        println!(
            "Skapa fler med `gk-regler token create --role handlaggare --name NAMN`, eller från källkoden `cargo run --release -- token create --role handlaggare --name NAMN` (hashar sparas i databasen {}). De gäller direkt, också medan tjänsten kör.",
            config.database.display()
        );
    }
    Ok(())
}

/// `gk-regler serve`: runs until SIGINT/SIGTERM, then finishes in-flight requests and
/// closes the database after committing every queued write.
pub async fn serve(config: Config) -> Result<(), AppError> {
    // Only a rule set whose own tests pass goes live; the shadow set passes the same gate.
    let rules = gk_regler::rule_tests::load_tested(&config.rules_dir)?.rules;
    let shadow = config
        .shadow_rules_dir
        .as_deref()
        .map(gk_regler::rule_tests::load_tested)
        .transpose()?
        .map(|tested| tested.rules);
    let (store, writer) = admin::open_store(&config)?;
    warn_of_interrupted(
        app::backup::interrupted_restores(&config.database),
        "en databaskopia från en återställning",
    );
    let (store, writer, key) = open_key(store, writer, &config).await?;
    import_tokens(&store, &config, true).await?;
    // A reload refuses a name and version used for another text; at start the set is
    // taken (the files are what the operator deployed), but the person is told.
    if let Some(other) = app::rules::version_used_for_other_text(&store, &rules).await? {
        eprintln!(
            "obs: {}.",
            app::rules::version_taken_message(&rules, &other)
        );
        tracing::warn!(version = ?rules.version, "rule-set version reused for other content");
    }
    store.record_rule_set(&rules).await?;
    let web = web_settings(&config)?;
    let long_work = gk_regler::long_work::pool();
    tracing::info!(
        threads = long_work.settings().threads,
        priority = ?long_work.settings().priority,
        threads_at_normal_priority = long_work.threads_not_lowered(),
        "long work runs on its own threads"
    );
    let label = rules.label();
    let mut app = App::new(
        rules,
        config.rules_dir.clone(),
        store.clone(),
        key,
        config.max_body_bytes,
    )
    .with_audit_min_cell_floor(config.audit_min_cell_floor)
    .with_case_lookups_per_minute(config.case_lookups_per_minute)
    .with_candidate_trials_per_hour(config.candidate_trials_per_hour)
    .with_candidate_time_limit(std::time::Duration::from_secs(
        config.candidate_time_limit_seconds,
    ))
    .with_body_timeout(std::time::Duration::from_secs(config.body_timeout_seconds))
    .with_web(web.clone());
    if let (Some(shadow), Some(dir)) = (shadow, &config.shadow_rules_dir) {
        store.record_rule_set(&shadow).await?;
        println!(
            "Skuggregler: {} (visas aldrig för handläggare)",
            shadow.label()
        );
        app = app.with_shadow(shadow, dir.clone());
    }
    let state = Arc::new(app);

    let retention = config.retention_days.map(|days| {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                let age = jiff::Span::new().days(i64::from(days));
                match admin::purge_older_than(&store, age, admin::Purger::Retention).await {
                    Ok(counts) => {
                        tracing::info!(
                            evaluations = counts.evaluations,
                            outcomes = counts.outcomes,
                            "retention purge"
                        )
                    }
                    Err(err) => tracing::warn!(error = %err, "retention purge failed"),
                }
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            }
        })
    });
    let sessions = {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) =
                    app::accounts::delete_idle_sessions(&store, web.session_idle).await
                {
                    tracing::warn!(error = %err, "deleting idle sessions failed");
                }
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        })
    };
    drop(store);
    let hangups = tokio::spawn(reload_on_hangup(Arc::clone(&state)));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|err| {
            AppError::Config(format!(
                "kan inte lyssna på {} (listen, GK_REGLER_LISTEN): {}",
                config.listen,
                match err.kind() {
                    std::io::ErrorKind::AddrInUse => "adressen används redan, av en annan tjänst eller en gk-regler som redan kör".to_owned(),
                    std::io::ErrorKind::AddrNotAvailable => "adressen finns inte på den här datorn".to_owned(),
                    std::io::ErrorKind::PermissionDenied => "porten kräver högre behörighet; välj en port över 1023".to_owned(),
                    _ => err.to_string(),
                }
            ))
        })?;
    let address = listener.local_addr()?;
    println!("gk-regler lyssnar på http://{address} med {label}");
    println!("Databas: {}", config.database.display());
    tracing::info!(%address, "listening");

    service::serve(
        listener,
        state,
        connection_limits(&config),
        shutdown_signal(),
    )
    .await?;
    if let Some(task) = retention {
        task.abort();
        let _ = task.await;
    }
    sessions.abort();
    let _ = sessions.await;
    hangups.abort();
    let _ = hangups.await;
    // Every Store handle is gone now: the writer commits what is queued and closes.
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(AppError::Task)?;
    println!("gk-regler har stängts.");
    Ok(())
}

/// `kill -HUP` reloads the rules, as `POST /api/v1/rules/reload` does (the same test
/// gate and version check); the outcome goes to standard error for the person who sent
/// the signal. A refused set leaves the running one active.
async fn reload_on_hangup(state: Arc<App>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        let operator = Principal {
            name: "system:sighup".to_owned(),
            role: Role::Policy,
            purpose: gk_regler::auth::Purpose::Normal,
        };
        // Told on standard output, beside the address the service listens on: standard
        // error is the log, which may be JSON.
        while hangups.recv().await.is_some() {
            match app::rules::reload(&state, &operator).await {
                Ok(done) => println!(
                    "Reglerna är omladdade (SIGHUP) och alla deras {} tester gick igenom: nu gäller {} version {} ({}).",
                    done.tests_passed,
                    done.active.name,
                    done.active.version,
                    done.active.short_hash()
                ),
                Err(AppError::Rules(refused)) => print!(
                    "{}",
                    gk_regler::present::problems(
                        &refused.problems,
                        "Reglerna laddades inte om (SIGHUP); de tidigare reglerna gäller fortfarande."
                    )
                ),
                Err(err) => println!(
                    "fel: reglerna kunde inte laddas om (SIGHUP): {}",
                    app::error_chain(&err)
                ),
            }
        }
    }
    #[cfg(not(unix))]
    drop(state);
}

/// The connection limits of `serve`, from the configuration.
fn connection_limits(config: &Config) -> service::server::Limits {
    service::server::Limits {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds),
        idle_timeout: Duration::from_secs(config.idle_timeout_seconds),
        max_connections: config.max_connections,
        shutdown_grace: Duration::from_secs(config.shutdown_grace_seconds),
    }
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
    let (store, writer) = admin::open_existing_store(&config)?;
    let counts = admin::purge_older_than(&store, age, admin::Purger::Command).await?;
    admin::close_store(store, writer).await?;
    println!(
        "Rensade {} kontroller äldre än {older_than} ({} flaggor, {} regelfel) och {} utfall med {} tidigare versioner, för ärenden som inte längre har någon kontroll.",
        counts.evaluations,
        counts.flags,
        counts.rule_errors,
        counts.outcomes,
        counts.outcome_versions
    );
    Ok(())
}

/// `gk-regler import-outcomes FILE`: all or nothing.
pub async fn import_outcomes(config: Config, path: &Path) -> Result<(), AppError> {
    let outcomes = app::outcomes::read_file(path)?;
    let (store, writer) = admin::open_existing_store(&config)?;
    let (store, writer, key) = open_key(store, writer, &config).await?;
    let principal = Principal {
        name: "cli:import-outcomes".to_owned(),
        role: Role::Analytiker,
        purpose: gk_regler::auth::Purpose::Normal,
    };
    let total = outcomes.len();
    let recorded = app::outcomes::record(&store, &key, &principal, outcomes).await?;
    admin::close_store(store, writer).await?;
    print_recorded(total, &recorded);
    Ok(())
}

/// What recording outcomes did, for the person at the terminal.
pub fn print_recorded(total: usize, recorded: &app::outcomes::Recorded) {
    // "utfall" is neuter: 1 nytt, 2 nya.
    let count = |change, one, many| {
        let n = recorded.count(change);
        format!("{n} {}", if n == 1 { one } else { many })
    };
    println!(
        "Läste {total} utfall: {}, {}, {}.",
        count(OutcomeChange::Created, "nytt", "nya"),
        count(OutcomeChange::Replaced, "ersatt", "ersatta"),
        count(OutcomeChange::Unchanged, "oförändrat", "oförändrade")
    );
}

/// `gk-regler backup DIR`.
pub async fn backup(config: Config, dir: &Path) -> Result<(), AppError> {
    let principal = Principal {
        name: "cli:backup".to_owned(),
        role: Role::Admin,
        purpose: gk_regler::auth::Purpose::Normal,
    };
    warn_of_interrupted(
        app::backup::interrupted_backups(dir),
        "en ofullständig säkerhetskopia från en körning",
    );
    let manifest = app::backup::backup(&config, &principal, dir).await?;
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "Säkerhetskopian skrevs till {}: databasen ({} kontroller, {} utfall) och pseudonymnyckeln, {bytes} byte, med kontrollsummor i {}.",
        dir.display(),
        manifest.evaluations,
        manifest.outcomes,
        app::backup::MANIFEST
    );
    println!(
        "Den innehåller nyckeln: med den kan fallen identifieras. Förvara kopian krypterad och åtkomlig bara för behöriga."
    );
    Ok(())
}

/// `gk-regler restore DIR`.
pub async fn restore(config: Config, dir: &Path) -> Result<(), AppError> {
    warn_of_interrupted(
        app::backup::interrupted_restores(&config.database),
        "en databaskopia från en återställning",
    );
    let restored = app::backup::restore(&config, dir).await?;
    let count = |n: i64, one, many| {
        gk_regler::present::count_noun(usize::try_from(n).unwrap_or(0), one, many)
    };
    println!(
        "Återställde databasen till {} ({}, {}, säkerhetskopia från {}); kontrollsummorna stämde.",
        config.database.display(),
        count(restored.evaluations, "kontroll", "kontroller"),
        count(restored.outcomes, "utfall", "utfall"),
        restored.manifest.created_at
    );
    // Whoever can write to the backup folder can add rows to the copy and rewrite its
    // checksums: the person restoring checks who may use the service. What a planted row
    // says is printed with its control characters escaped.
    println!(
        "Aktiva token i den återställda databasen ({}), administratörer först. Kontrollera att de är era: den som kan skriva i säkerhetskopians mapp kan ha lagt till en (återkalla den med `gk-regler token revoke`). Kopians inloggningar är avslutade; alla loggar in på nytt.",
        restored.tokens.len()
    );
    for token in &restored.tokens {
        println!(
            "  {} ({}, skapad {} av {})",
            printable(&token.name),
            printable(&token.role),
            printable(&token.created_at),
            printable(&token.created_by)
        );
    }
    if restored.key_written {
        println!(
            "Pseudonymnyckeln skrevs till {}.",
            config.pseudonym_key_file.display()
        );
    } else {
        println!("Pseudonymnyckeln på plats är densamma som säkerhetskopians.");
    }
    Ok(())
}

/// Tells the person of the copies an interrupted backup or restore left: `what` each is,
/// up to the run that was stopped.
fn warn_of_interrupted(copies: Vec<std::path::PathBuf>, what: &str) {
    for copy in copies {
        eprintln!(
            "Varning: {} är {what} som avbröts (eller pågår just nu). Den innehåller personuppgifter och tas inte bort av sig själv: ta bort den.",
            copy.display()
        );
    }
}

fn web_settings(config: &Config) -> Result<app::WebSettings, AppError> {
    let origin = config.public_origin().map_err(AppError::Config)?;
    Ok(app::WebSettings {
        session_idle: config.session_idle().map_err(AppError::Config)?,
        secure_cookies: origin.as_ref().is_some_and(|(_, https)| *https),
        public_origin: origin.map(|(origin, _)| origin),
    })
}

/// Who acts through `gk-regler token`: whoever may open the database file.
fn token_operator() -> Principal {
    Principal {
        name: "cli:token".to_owned(),
        role: Role::Admin,
        purpose: gk_regler::auth::Purpose::Normal,
    }
}

/// `gk-regler token create`: prints the token once and stores its hash in the database;
/// a running service accepts it at once.
pub async fn token_create(config: Config, new: app::accounts::NewToken) -> Result<(), AppError> {
    if stdout_is_discarded() {
        return Err(AppError::Io(std::io::Error::other(
            "standard ut är stängd eller går till /dev/null, så ingen skulle se token; ingen token skapades. Skriv ut den till en terminal, en fil eller ett program som sparar den.",
        )));
    }
    let (store, writer) = admin::open_store(&config)?;
    import_tokens(&store, &config, false).await?;
    let result = app::accounts::create(&store, &token_operator(), new.clone()).await;
    let shown = match &result {
        Ok(created) => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", created.token).and_then(|()| out.flush())
        }
        Err(_) => Ok(()),
    };
    // A token nobody saw cannot be used and must not stay valid: it is revoked.
    let unseen = match (&result, shown) {
        (Ok(created), Err(err)) => Some((
            created.id,
            err,
            app::accounts::revoke_unseen(&store, &token_operator(), created.id).await,
        )),
        _ => None,
    };
    admin::close_store(store, writer).await?;
    let created = result?;
    if let Some((id, err, revoked)) = unseen {
        let what = app::io_error_text(&err);
        return Err(AppError::Io(std::io::Error::other(match revoked {
            Ok(()) => format!(
                "token nr {id} kunde inte skrivas till standard ut ({what}); ingen har sett den, så den är återkallad. Skapa en ny med gk-regler token create."
            ),
            Err(refused) => format!(
                "token nr {id} kunde inte skrivas till standard ut ({what}) och kunde inte återkallas ({}); återkalla den med `gk-regler token revoke {id}`.",
                app::error_chain(&refused)
            ),
        })));
    }
    let until = created.expires_at.map_or_else(
        || "utan slutdatum".to_owned(),
        |at| format!("till {}", gk_regler::present::swedish_time(&at)),
    );
    eprintln!(
        "Token nr {} för {} (roll {}{}) skapad i databasen {}, giltig {until}. Den gäller direkt, också i en tjänst som kör den databasen. Token visas bara nu; databasen sparar bara hashen.",
        created.id,
        new.name.trim(),
        gk_regler::names::name_of(&new.role),
        if new.purpose == gk_regler::auth::Purpose::Test {
            ", för testkontroller"
        } else {
            ""
        },
        config.database.display(),
    );
    Ok(())
}

/// Whether standard output is `/dev/null`: sent there, or closed when the command started
/// (the standard library then opens `/dev/null` in its place). A write there succeeds,
/// so only this tells that nobody will read it.
fn stdout_is_discarded() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(out), Ok(null)) = (
        rustix::fs::fstat(std::io::stdout()),
        std::fs::metadata("/dev/null"),
    ) else {
        return false;
    };
    out.st_dev == null.dev() && out.st_ino == null.ino()
}

/// `gk-regler token list`: every account, without tokens.
pub async fn token_list(config: Config) -> Result<(), AppError> {
    let (store, writer) = admin::open_existing_store(&config)?;
    import_tokens(&store, &config, false).await?;
    let result = app::accounts::list(&store, &token_operator()).await;
    admin::close_store(store, writer).await?;
    let accounts = result?;
    println!(
        "{:>4}  {:<24} {:<12} {:<7} {:<16} {:<16} status",
        "nr", "namn", "roll", "syfte", "skapad", "giltig till"
    );
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    for a in &accounts {
        let status = match (&a.revoked_at, &a.expires_at) {
            (Some(at), _) => format!("återkallad {}", gk_regler::present::swedish_time(at)),
            (None, Some(until)) if *until <= now => "har gått ut".to_owned(),
            _ => "aktiv".to_owned(),
        };
        println!(
            "{:>4}  {:<24} {:<12} {:<7} {:<16} {:<16} {status}",
            a.id,
            printable(&a.name),
            a.role.as_str(),
            a.purpose.as_str(),
            printable(&gk_regler::present::swedish_time(&a.created_at)),
            printable(
                &a.expires_at
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), gk_regler::present::swedish_time)
            ),
        );
    }
    if accounts.is_empty() {
        println!("Inga tokens ännu.");
    }
    Ok(())
}

/// `gk-regler token revoke ID`: refused at once, sessions ended.
pub async fn token_revoke(config: Config, id: i64) -> Result<(), AppError> {
    let (store, writer) = admin::open_existing_store(&config)?;
    let result = app::accounts::revoke(&store, &token_operator(), id).await;
    admin::close_store(store, writer).await?;
    match result {
        Ok(()) => {
            println!(
                "Token nr {id} är återkallad och kan inte längre användas; dess inloggningar är avslutade."
            );
            Ok(())
        }
        Err(AppError::NotFound) => Err(AppError::Input(format!(
            "det finns ingen aktiv token nr {id} (se `gk-regler token list`)"
        ))),
        Err(err) => Err(err),
    }
}
