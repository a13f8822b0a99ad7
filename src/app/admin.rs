//! Start-up and administration: opening the pseudonym key and the store a [`Config`]
//! names, purging old checks. Nothing here prints: what a person should be told (a new
//! key) is returned to the caller. Accounts and tokens are in [`super::accounts`].

use crate::auth::Role;
use crate::config::Config;
use crate::pseudonym::{KeyOrigin, PseudonymKey};
use crate::store::{Access, PurgeCounts, Store, StoreError, WriterHandle};

use super::AppError;

/// Opens the pseudonym key of `config` for the database of `store`, creating one on the
/// database's first use. The database records the check value of the key its pseudonyms
/// are made with ([`PseudonymKey::check_value`]; a database made before it had one
/// records the first key used with it). Refused, with nothing created: a key file that is
/// not there for a database that holds pseudonyms (a mistyped path would otherwise make a
/// new key, whose pseudonyms never meet the stored ones), and a key other than the
/// recorded one.
pub async fn open_key(store: &Store, config: &Config) -> Result<OpenedKey, AppError> {
    let (recorded, holds_pseudonyms) = store.key_check().await?;
    let key_file = &config.pseudonym_key_file;
    let key_file_missing = matches!(
        std::fs::symlink_metadata(key_file),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound
    );
    if config.pseudonym_secret.is_none()
        && key_file_missing
        && (recorded.is_some() || holds_pseudonyms)
    {
        return Err(AppError::Config(format!(
            "pseudonymnyckeln {} finns inte, men databasen {} har redan pseudonymer gjorda med en nyckel. \
             En ny nyckel skulle göra pseudonymer som aldrig möter de sparade, så ingen skapades. \
             Ange nyckelns sökväg (pseudonym_key_file eller GK_REGLER_PSEUDONYM_KEY_FILE), \
             eller lägg tillbaka nyckeln från säkerhetskopian.",
            key_file.display(),
            config.database.display()
        )));
    }
    let (key, origin) = PseudonymKey::load_or_create(
        config.pseudonym_secret.as_ref().map(|s| s.expose()),
        key_file,
    )
    .map_err(AppError::Config)?;
    let check = key.check_value();
    let recorded_now = recorded.is_none();
    // Written only the first time: every later start compares with what was read.
    let in_force = match recorded {
        Some(recorded) => recorded,
        None => store.record_key_check(check.clone()).await?,
    };
    if in_force != check {
        let place = if config.pseudonym_secret.is_some() {
            "den inställda pseudonym_secret".to_owned()
        } else {
            format!("pseudonymnyckeln i {}", key_file.display())
        };
        return Err(AppError::Config(format!(
            "{place} är inte nyckeln som databasen {}s pseudonymer är gjorda med; \
             med den skulle nya kontroller och utfall aldrig kopplas till de sparade. \
             Ange rätt nyckel, eller lägg tillbaka den från säkerhetskopian.",
            config.database.display()
        )));
    }
    Ok(OpenedKey {
        key,
        origin,
        taken_for_stored_pseudonyms: recorded_now && holds_pseudonyms,
    })
}

/// The pseudonym key opened for a database ([`open_key`]).
pub struct OpenedKey {
    pub key: PseudonymKey,
    pub origin: KeyOrigin,
    /// The database held pseudonyms but recorded no key (an earlier version made it), and
    /// this key is now recorded as the one they were made with: nothing can tell whether
    /// it is, so the person is told.
    pub taken_for_stored_pseudonyms: bool,
}

/// Opens the database of `config`, creating it on first use, and starts its writer
/// thread. For `serve` (and, through [`open_store_for_import`], `import`), which start a
/// database.
pub fn open_store(config: &Config) -> Result<(Store, WriterHandle), AppError> {
    Store::open(&config.database, config.max_batch).map_err(opening_refused)
}

/// Opens the database of `config` like [`open_store`], for `import`: its writer takes the
/// database for a rollback journal when nothing else has it open
/// ([`Store::open_for_import`]).
pub fn open_store_for_import(config: &Config) -> Result<(Store, WriterHandle), AppError> {
    Store::open_for_import(&config.database, config.max_batch).map_err(opening_refused)
}

/// Opens the database of `config`, which must exist, and starts its writer thread. For
/// the commands that work on stored data (`audit`, `replay`, `purge`,
/// `import-outcomes`, `backup`): a mistyped path is refused instead of answered from a
/// new, empty database.
pub fn open_existing_store(config: &Config) -> Result<(Store, WriterHandle), AppError> {
    require_database(config)?;
    Store::open_existing(&config.database, config.max_batch).map_err(opening_refused)
}

/// A store that could not be opened: a file the service cannot trust is the
/// configuration's refusal (exit 2), anything else the store's.
fn opening_refused(err: StoreError) -> AppError {
    match err {
        StoreError::Untrusted { .. } => AppError::Config(err.to_string()),
        err => AppError::Store(err),
    }
}

/// Refuses (as bad input) a database path that leads to no file.
pub fn require_database(config: &Config) -> Result<(), AppError> {
    if config.database.is_file() {
        Ok(())
    } else {
        Err(AppError::Input(format!(
            "databasen {} finns inte. Ange rätt sökväg med database i konfigurationen eller GK_REGLER_DATABASE; en ny databas skapas bara av serve och import.",
            config.database.display()
        )))
    }
}

/// Drops the last store handle and waits for the writer to commit what is queued and
/// close.
pub async fn close_store(store: Store, writer: WriterHandle) -> Result<(), AppError> {
    drop(store);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(AppError::Task)
}

/// Parses a retention period such as `90d`, `6mo` or `2y`. A period back in time
/// (`2 years ago`, `-P2Y`) is refused: subtracted from now it would put the cutoff in the
/// future, and the purge would delete every check. So is a period with hours, minutes or
/// seconds (`1m` is a minute); `0d` purges everything.
pub fn parse_age(text: &str) -> Result<jiff::Span, AppError> {
    let age: jiff::Span = text.parse().map_err(|_| {
        AppError::Input(format!(
            "--older-than {text:?}: ingen period; ange t.ex. 90d, 6mo eller 2y (d dagar, w veckor, mo månader, y år)"
        ))
    })?;
    if age.is_negative() {
        return Err(AppError::Input(format!(
            "--older-than {text:?}: perioden räknas bakåt från nu och får inte vara negativ, den skulle rensa allt (ange t.ex. 90d, 6mo, 2y)"
        )));
    }
    // `1m` is a minute, not a month: a period in hours or less would delete nearly
    // everything, and is never a retention period.
    let under_a_day = age.get_hours() != 0
        || age.get_minutes() != 0
        || age.get_seconds() != 0
        || age.get_milliseconds() != 0
        || age.get_microseconds() != 0
        || age.get_nanoseconds() != 0;
    if under_a_day {
        return Err(AppError::Input(format!(
            "--older-than {text:?}: en rensning räknas i hela dagar, veckor, månader eller år; `m` är minuter, en månad skrivs `mo` (t.ex. 6mo). För att rensa allt: 0d"
        )));
    }
    Ok(age)
}

/// Who purges: `cli:purge` for the command, `system:retention` for `retention_days`.
#[derive(Clone, Copy, Debug)]
pub enum Purger {
    Command,
    Retention,
}

/// Deletes the checks stored more than `age` ago, with their flags and rule errors, and
/// writes who did it, the cutoff and the counts to the access log.
pub async fn purge_older_than(
    store: &Store,
    age: jiff::Span,
    purger: Purger,
) -> Result<PurgeCounts, AppError> {
    let cutoff = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_sub(age)
        .map(|zoned| zoned.timestamp())
        .map_err(|e| AppError::Input(format!("ogiltig tidsperiod: {e}")))?;
    let cutoff = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let actor = match purger {
        Purger::Command => "cli:purge",
        Purger::Retention => "system:retention",
    };
    let access = Access {
        actor: actor.to_owned(),
        role: Role::Admin,
        action: "purge",
        case: None,
        evaluation_id: None,
        account_id: None,
        detail: None,
    };
    Ok(store.purge_created_before(cutoff, access).await?)
}
