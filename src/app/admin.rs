//! Start-up and administration: opening the pseudonym key, the store and the tokens a
//! [`Config`] names, purging old checks, and creating tokens. Nothing here prints: what a
//! person should be told (a new key, a first admin token) is returned to the caller.

use crate::auth::{Role, Tokens, append_token_file, create_token, read_token_file};
use crate::config::Config;
use crate::pseudonym::{KeyOrigin, PseudonymKey};
use crate::store::{PurgeCounts, Store, WriterHandle};

use super::AppError;

/// Opens the pseudonym key of `config`, creating one on first use.
pub fn open_key(config: &Config) -> Result<(PseudonymKey, KeyOrigin), AppError> {
    PseudonymKey::load_or_create(
        config.pseudonym_secret.as_ref().map(|s| s.expose()),
        &config.pseudonym_key_file,
    )
    .map_err(AppError::Config)
}

/// Opens the database of `config` and starts its writer thread.
pub fn open_store(config: &Config) -> Result<(Store, WriterHandle), AppError> {
    Ok(Store::open(&config.database, config.max_batch)?)
}

/// Drops the last store handle and waits for the writer to commit what is queued and
/// close.
pub async fn close_store(store: Store, writer: WriterHandle) -> Result<(), AppError> {
    drop(store);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(AppError::Task)
}

/// The tokens of `config` and its tokens file. On a first start with none, an admin token
/// is created, its hash stored, and the token returned (to be shown once).
pub fn load_tokens(config: &Config) -> Result<(Tokens, Option<String>), AppError> {
    let mut entries = config.tokens.clone();
    entries.extend(read_token_file(&config.tokens_file).map_err(AppError::Config)?);
    let mut created = None;
    if entries.is_empty() {
        let (token, entry) = create_token("admin", Role::Admin);
        append_token_file(&config.tokens_file, entry.clone()).map_err(AppError::Config)?;
        entries.push(entry);
        created = Some(token);
    }
    Ok((Tokens::new(&entries).map_err(AppError::Config)?, created))
}

/// Parses a retention period such as `90d`, `6mo` or `2y`.
pub fn parse_age(text: &str) -> Result<jiff::Span, AppError> {
    text.parse()
        .map_err(|e| AppError::Input(format!("--older-than {text:?}: {e} (t.ex. 90d, 6mo, 2y)")))
}

/// Deletes the checks stored more than `age` ago, with their flags and rule errors.
pub async fn purge_older_than(store: &Store, age: jiff::Span) -> Result<PurgeCounts, AppError> {
    let cutoff = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_sub(age)
        .map(|zoned| zoned.timestamp())
        .map_err(|e| AppError::Input(format!("ogiltig tidsperiod: {e}")))?;
    let cutoff = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    Ok(store.purge_created_before(cutoff).await?)
}

/// Creates a token for `name` with `role`, stores its hash in the tokens file and returns
/// the token (to be shown once).
pub fn create_token_for(config: &Config, role: Role, name: &str) -> Result<String, AppError> {
    if name.trim().is_empty() || name.len() > 64 {
        return Err(AppError::Input("--name måste vara 1–64 tecken".to_owned()));
    }
    let (token, entry) = create_token(name, role);
    append_token_file(&config.tokens_file, entry).map_err(AppError::Config)?;
    Ok(token)
}
