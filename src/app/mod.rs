//! The use cases of gk-regler, one function each, shared by every front end: the HTTP
//! API ([`crate::service`]), the web pages ([`crate::web`]) and the command line
//! (`src/main.rs`).
//!
//! Each use case takes the acting [`Principal`], checks the role it needs, writes its own
//! access-log entry and returns an [`AppError`]: never an HTTP status, never text printed
//! for a person. Where to look:
//! - [`check`]: check a case (evaluate and store), dry run, read one check, a case's history;
//! - [`outcomes`]: record outcomes (API list and file import);
//! - [`responses`]: answering a flag (handled, or not relevant with a reason);
//! - [`rules`]: the active rule set and reloading it;
//! - [`history`]: import a cohort, audit, replay;
//! - [`accounts`]: people and their tokens (create, list, revoke), web sessions;
//! - [`admin`]: opening the key and store at start-up, purge;
//! - [`backup`]: backing up the database and key while the service runs, and restoring.

pub mod accounts;
pub mod admin;
pub mod backup;
pub mod budget;
pub mod candidate;
pub mod check;
pub mod history;
pub mod metrics;
pub mod outcomes;
pub mod responses;
pub mod rules;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use std::time::Duration;

use crate::auth::{Principal, Role};
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
    /// A token made for testing may not do this, which would change what real cases
    /// are known by; the message says why.
    #[error("{0}")]
    NotForTests(&'static str),
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
    /// One field of a request is invalid; the message names no value.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A report could not be written out.
    #[error("rapporten kunde inte skrivas")]
    Report(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A rule set's own tests fail (a candidate replayed from the command line): the
    /// work was done, and the command ends with the test failures' exit code.
    #[error("{0}")]
    TestsFailed(String),
    /// The request clashes with the stored state (the last active admin).
    #[error("{0}")]
    Conflict(String),
    /// The person already has as much long work waiting or running as one may
    /// ([`App::long_work_slots`]).
    #[error("du har redan {0} uppföljningar eller prov som körs; vänta tills de är klara")]
    TooMuchAtOnce(usize),
    /// The person has looked up as many cases as a minute allows ([`App::case_lookups`]).
    #[error("för många ärenden har hämtats på kort tid; försök igen om {retry_after_seconds} s")]
    TooManyLookups { retry_after_seconds: u64 },
    /// Long work passed its deadline and stopped; nothing was kept.
    #[error("arbetet tog för lång tid och avbröts")]
    OutOfTime,
    /// A background task ended without an answer.
    #[error("ett internt arbete avbröts")]
    Task(#[source] tokio::task::JoinError),
}

impl From<crate::audit::replay::ReplayError> for AppError {
    fn from(err: crate::audit::replay::ReplayError) -> Self {
        match err {
            crate::audit::replay::ReplayError::Store(err) => Self::Store(err),
            crate::audit::replay::ReplayError::OutOfTime(_) => Self::OutOfTime,
        }
    }
}

/// An error and its sources in one line (`outer: inner: innermost`), for the log and the
/// terminal. Sources never carry personal data: input errors name the field, SQLite's
/// messages name tables and columns.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = in_swedish(err).unwrap_or_else(|| err.to_string());
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        match in_swedish(cause) {
            // SQLite's and the system's causes below it are its own English words.
            Some(said) => {
                text.push_str(&said);
                break;
            }
            None => text.push_str(&cause.to_string()),
        }
        source = cause.source();
    }
    text
}

/// An operating-system error as a person reads it: Swedish for the common ones, the
/// system's own words for the rest.
pub fn io_error_text(err: &std::io::Error) -> String {
    in_swedish(err).unwrap_or_else(|| err.to_string())
}

/// What a person is told of SQLite's or the operating system's common failures, in
/// Swedish; `None` for the rest, which keep their own words.
fn in_swedish(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use std::io::ErrorKind as K;
    // Transparent: it is the system's error itself.
    if let Some(AppError::Io(inner)) = err.downcast_ref::<AppError>() {
        return in_swedish(inner);
    }
    // The store shares SQLite's errors between the callers of one batch.
    let sqlite = err.downcast_ref::<rusqlite::Error>().or_else(|| {
        err.downcast_ref::<Arc<rusqlite::Error>>()
            .map(|shared| &**shared)
    });
    if let Some(err) = sqlite {
        use rusqlite::ErrorCode as C;
        return Some(
            match err.sqlite_error_code()? {
                C::DiskFull => "disken är full",
                C::ReadOnly => "databasen går inte att skriva i (skrivskyddad fil, mapp eller disk)",
                C::CannotOpen => {
                    "databasfilen kan inte öppnas (finns mappen, och får tjänsten läsa och skriva där?)"
                }
                C::SystemIoFailure => "disken gav ett läs- eller skrivfel (full disk eller trasig disk)",
                C::PermissionDenied => "åtkomst nekas",
                C::DatabaseCorrupt | C::NotADatabase => {
                    "databasfilen är skadad eller ingen databas; lägg tillbaka en säkerhetskopia (gk-regler restore)"
                }
                _ => return None,
            }
            .to_owned(),
        );
    }
    let err = err.downcast_ref::<std::io::Error>()?;
    Some(
        match err.kind() {
            K::StorageFull | K::QuotaExceeded => "disken är full",
            K::ReadOnlyFilesystem => "disken är skrivskyddad",
            K::PermissionDenied => "åtkomst nekas",
            K::NotFound => "finns inte",
            K::IsADirectory => "är en mapp, inte en fil",
            K::NotADirectory => "en del av sökvägen är ingen mapp",
            K::InvalidData => "är inte text i UTF-8",
            _ => return None,
        }
        .to_owned(),
    )
}

/// Audits and candidate trials one person may have waiting or running at once: an
/// analyst comparing two periods side by side, and no more.
pub const LONG_WORK_PER_PERSON: usize = 2;

/// Everything the running service's use cases share.
pub struct App {
    /// The active rule set: a use case takes one snapshot and uses it throughout, so it
    /// never sees two rule sets; a reload builds the new set completely before swapping.
    pub rules: ArcSwap<RuleSet>,
    pub rules_dir: PathBuf,
    /// The shadow rule set (config `shadow_rules_dir`), if one is configured: evaluated
    /// on every stored check, its results stored apart, never shown to an officer.
    pub shadow: ArcSwapOption<RuleSet>,
    pub shadow_rules_dir: Option<PathBuf>,
    reload_lock: tokio::sync::Mutex<()>,
    pub store: Store,
    pub key: PseudonymKey,
    pub metrics: Metrics,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The lowest `min_cell` an audit may be asked for (config `audit_min_cell_floor`).
    pub audit_min_cell_floor: usize,
    /// How many case histories each person may look up a minute (config
    /// `case_lookups_per_minute`).
    pub case_lookups: budget::PersonBudget,
    /// How many candidate rule sets each person may try an hour (config
    /// `candidate_trials_per_hour`).
    pub candidate_trials: budget::PersonBudget,
    /// How much long work (audits, candidate trials) each person may have waiting or
    /// running at once ([`LONG_WORK_PER_PERSON`]).
    pub long_work_slots: budget::PersonSlots,
    /// How long a candidate rule set's tests, and then its replay, may each run
    /// (config `candidate_time_limit_seconds`).
    pub candidate_time_limit: Duration,
    /// How long a request's whole body may take to arrive (config `body_timeout_seconds`).
    pub body_timeout: Duration,
    /// How the web pages sign people in (config `session_idle_minutes`, `public_url`).
    pub web: WebSettings,
    /// The case id of each web session's latest check, in memory only.
    pub recent_case_ids: check::RecentCaseIds,
}

/// The web sign-in's settings.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// A session unused this long is over.
    pub session_idle: Duration,
    /// The origin (`scheme://host[:port]`) browsers use, from config `public_url`;
    /// `None`: the request's `Host`.
    pub public_origin: Option<String>,
    /// Whether cookies carry `Secure` (the public URL is https).
    pub secure_cookies: bool,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(8 * 3600),
            public_origin: None,
            secure_cookies: false,
        }
    }
}

impl App {
    /// A place for `principal`'s long work, held while it waits and runs.
    pub fn long_work_slot(&self, principal: &Principal) -> Result<budget::Slot<'_>, AppError> {
        self.long_work_slots.take(&principal.name).ok_or_else(|| {
            tracing::warn!(actor = ?principal.name, "long work at once over the limit");
            AppError::TooMuchAtOnce(self.long_work_slots.per_person())
        })
    }

    pub fn new(
        rules: RuleSet,
        rules_dir: PathBuf,
        store: Store,
        key: PseudonymKey,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            rules: ArcSwap::from_pointee(rules),
            rules_dir,
            shadow: ArcSwapOption::empty(),
            shadow_rules_dir: None,
            reload_lock: tokio::sync::Mutex::new(()),
            store,
            key,
            metrics: Metrics::new(),
            max_body_bytes,
            audit_min_cell_floor: crate::audit::DEFAULT_MIN_CELL,
            case_lookups: budget::PersonBudget::per_minute(
                crate::config::DEFAULT_CASE_LOOKUPS_PER_MINUTE,
            ),
            candidate_trials: budget::PersonBudget::per_hour(
                crate::config::DEFAULT_CANDIDATE_TRIALS_PER_HOUR,
            ),
            long_work_slots: budget::PersonSlots::new(LONG_WORK_PER_PERSON),
            candidate_time_limit: Duration::from_secs(
                crate::config::DEFAULT_CANDIDATE_TIME_LIMIT_SECONDS,
            ),
            body_timeout: Duration::from_secs(crate::config::DEFAULT_BODY_TIMEOUT_SECONDS),
            web: WebSettings::default(),
            recent_case_ids: check::RecentCaseIds::default(),
        }
    }

    /// Sets the web sign-in's settings.
    pub fn with_web(mut self, web: WebSettings) -> Self {
        self.web = web;
        self
    }

    /// Evaluates every stored check with `shadow` too, loaded from `dir` (and reloaded
    /// from it with the live rules).
    pub fn with_shadow(mut self, shadow: RuleSet, dir: PathBuf) -> Self {
        self.shadow = ArcSwapOption::from_pointee(shadow);
        self.shadow_rules_dir = Some(dir);
        self
    }

    /// The shadow rule set, as one snapshot; `None` when none is configured.
    pub fn shadow_rules(&self) -> Option<Arc<RuleSet>> {
        self.shadow.load_full()
    }

    /// Sets the lowest `min_cell` an audit may be asked for.
    pub fn with_audit_min_cell_floor(mut self, floor: usize) -> Self {
        self.audit_min_cell_floor = floor;
        self
    }

    /// Sets how many case histories each person may look up a minute.
    pub fn with_case_lookups_per_minute(mut self, per_minute: u32) -> Self {
        self.case_lookups = budget::PersonBudget::per_minute(per_minute);
        self
    }

    /// Sets how many candidate rule sets each person may try an hour.
    pub fn with_candidate_trials_per_hour(mut self, per_hour: u32) -> Self {
        self.candidate_trials = budget::PersonBudget::per_hour(per_hour);
        self
    }

    /// Sets how long a candidate rule set's tests, and its replay, may each run.
    pub fn with_candidate_time_limit(mut self, limit: Duration) -> Self {
        self.candidate_time_limit = limit;
        self
    }

    /// Sets how long a request's whole body may take to arrive.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// The active rule set, as one snapshot.
    pub fn active_rules(&self) -> Arc<RuleSet> {
        self.rules.load_full()
    }
}

/// Runs `work` on the pool of long work ([`crate::long_work`]), never on the async
/// workers that answer requests: audits, report rendering, imports and replays take
/// seconds, and the service's other requests (`/health/live` first) must not wait for
/// them. When the pool is busy the caller waits its turn.
pub async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    crate::long_work::run(work).await.map_err(AppError::Task)
}

/// Runs `work`, which evaluates rules that may run in Rhai (a check with such a rule set,
/// a rule set's tests), on the blocking thread pool, at most as many at once as the
/// machine has cores; the rest wait their turn. The work is computation, so more at once
/// would not finish sooner; and a rule's memory is bounded only by what one evaluation
/// can take before its time limit (Rhai counts a map's entries, not its keys' bytes), so
/// the service's is bounded by how many run at once, not by how many requests arrive.
pub async fn evaluating_rules<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    static RULE_THREADS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
        std::sync::LazyLock::new(|| {
            Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ))
        });
    // Held by the work itself, so a request given up while it runs does not let another
    // start beside it.
    let permit = Arc::clone(&RULE_THREADS).acquire_owned().await.ok();
    tokio::task::spawn_blocking(move || {
        let result = work();
        drop(permit);
        result
    })
    .await
    .map_err(AppError::Task)
}

/// Runs short blocking work (a diff of two rule sets) on the blocking thread pool: off
/// the async workers, but never queued behind long work.
pub async fn briefly<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(AppError::Task)
}

/// Refuses unless `principal` holds one of `roles` (admin holds every role).
pub fn require(principal: &Principal, roles: &[Role]) -> Result<(), AppError> {
    if principal.has_any(roles) {
        Ok(())
    } else {
        tracing::warn!(actor = ?principal.name, role = %crate::names::name_of(&principal.role), "refused: role not allowed");
        Err(AppError::Forbidden)
    }
}

/// Refuses a token made for testing what would change real work; `why` tells the person,
/// in Swedish.
pub fn refuse_for_tests(principal: &Principal, why: &'static str) -> Result<(), AppError> {
    if principal.is_for_tests() {
        tracing::warn!(actor = ?principal.name, "refused: not for a test token");
        return Err(AppError::NotForTests(why));
    }
    Ok(())
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
        role: principal.role,
        action,
        case,
        evaluation_id,
        account_id: None,
        detail: None,
    }
}

#[cfg(test)]
mod tests {
    /// Checks with a rule set in Rhai each took a thread of the blocking pool (up to 512
    /// at once), each with as much memory as one evaluation can take.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_rule_evaluations_run_at_once_than_there_are_cores() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..cores * 4)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(super::evaluating_rules(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for task in tasks {
            task.await.expect("joined").expect("ran");
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=cores).contains(&most),
            "{most} at once on {cores} cores"
        );
    }

    use super::*;

    /// A full disk said `database or disk is full`, `disk I/O error: Error code 4874`
    /// or `No space left on device (os error 28)`.
    #[test]
    fn sqlites_and_the_systems_common_failures_are_told_in_swedish() {
        let sqlite = |code| {
            AppError::Store(StoreError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            )))
        };
        assert_eq!(
            error_chain(&sqlite(rusqlite::ffi::SQLITE_FULL)),
            "databasen är inte tillgänglig: disken är full"
        );
        assert!(
            error_chain(&sqlite(rusqlite::ffi::SQLITE_IOERR_SHMSIZE))
                .ends_with("disken gav ett läs- eller skrivfel (full disk eller trasig disk)")
        );
        assert!(error_chain(&sqlite(rusqlite::ffi::SQLITE_READONLY)).contains("skrivskyddad"));
        let full = AppError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(error_chain(&full), "disken är full");
        assert_eq!(
            io_error_text(&std::io::Error::from(std::io::ErrorKind::IsADirectory)),
            "är en mapp, inte en fil"
        );
        // Anything rarer keeps its own words.
        let other = AppError::Io(std::io::Error::other("något annat"));
        assert_eq!(error_chain(&other), "något annat");
    }
}
