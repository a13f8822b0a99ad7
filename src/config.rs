//! Service configuration, layered: built-in defaults, then an optional YAML file, then
//! `GK_REGLER_*` environment variables. Secrets print as `<secret>`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::TokenEntry;

/// A secret string that never prints.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// The default of `case_lookups_per_minute`: enough for anyone working through cases,
/// too few to try thousands of case ids.
pub const DEFAULT_CASE_LOOKUPS_PER_MINUTE: u32 = 60;

/// The longest `retention_days`: 100 years. Longer periods fall outside the dates the
/// purge can count back to.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The default of `candidate_trials_per_hour`: one every two minutes, all day, or 30 in a
/// row. Each trial replays the whole history on the thread of long work and stores the
/// candidate's rule files.
pub const DEFAULT_CANDIDATE_TRIALS_PER_HOUR: u32 = 30;

/// The default of `candidate_time_limit_seconds`: a replay of a national history
/// (250,000 checks) takes a few seconds, an endless loop in one rule over it hours.
pub const DEFAULT_CANDIDATE_TIME_LIMIT_SECONDS: u64 = 120;

/// Default `body_timeout_seconds`: a 5 MB candidate archive at 1 Mbit/s takes 40 s.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: u64 = 60;

/// Everything `gk-regler serve` (and the database commands) need.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default 127.0.0.1:8480 (loopback only).
    pub listen: SocketAddr,
    /// Rules directory. Default `rules`.
    pub rules_dir: PathBuf,
    /// A second rules directory, the shadow rules: evaluated on every stored check, its
    /// results stored apart and compared in the audit, never shown to officers. Default
    /// none.
    pub shadow_rules_dir: Option<PathBuf>,
    /// SQLite database file. Default `db/gk-regler.sqlite3`.
    pub database: PathBuf,
    /// HMAC secret for case pseudonyms (≥ 32 bytes). Default: generated into
    /// `pseudonym_key_file` on first start.
    pub pseudonym_secret: Option<Secret>,
    pub pseudonym_key_file: PathBuf,
    /// Tokens given in the config file (hashes only), imported into the database at
    /// start (a token already there, even revoked, is left alone).
    pub tokens: Vec<TokenEntry>,
    /// A tokens file (YAML list of name, role, sha256) imported into the database at
    /// start, the same way. Tokens are made and revoked with `gk-regler token`.
    pub tokens_file: PathBuf,
    /// A web session unused this long is over, e.g. `8h`, `30m`. Default `8h`.
    pub session_idle: String,
    /// The address people open in the browser, e.g. `https://gk.example.se`. Its origin
    /// is the only one a form may be posted from; with https, cookies are `Secure`.
    /// Default: none (the request's `Host`, cookies without `Secure`).
    pub public_url: Option<String>,
    /// Largest accepted request body. Default 256 KiB.
    pub max_body_bytes: usize,
    /// Evaluations older than this many days are purged at start and daily. Default: off.
    pub retention_days: Option<u32>,
    pub log_format: LogFormat,
    /// Most writes committed in one transaction by the group-commit writer.
    pub max_batch: usize,
    /// The lowest small-cell threshold (`min_cell`) an audit may be asked for, by a
    /// request or by `--min-cell`; also the default threshold when higher than 5.
    pub audit_min_cell_floor: usize,
    /// Seconds a connection may take to send a request's headers, from its first byte
    /// (or from being opened). Default 10.
    pub header_read_timeout_seconds: u64,
    /// Seconds a connection with no request in progress may move no byte before it is
    /// closed (an idle keep-alive connection). Default 60.
    pub idle_timeout_seconds: u64,
    /// Seconds a request's whole body (API JSON, web form, candidate archive) may take to
    /// arrive, however it trickles in; then 408 and the connection closes. Default 60.
    pub body_timeout_seconds: u64,
    /// Most connections served at once; one more is answered 503. Default 512.
    pub max_connections: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT; then the process
    /// exits whatever is still open. Default 10.
    pub shutdown_grace_seconds: u64,
    /// Case histories each person may look up a minute (`POST /api/v1/cases/checks`, the
    /// case lookup of Kontrollera ärende); one more is answered 429. Default 60.
    pub case_lookups_per_minute: u32,
    /// Candidate rule sets each person may try an hour on the rules page; one more is
    /// answered 429. Default 30.
    pub candidate_trials_per_hour: u32,
    /// Seconds a candidate rule set tried on the rules page may spend on its own tests,
    /// and then on its replay over the stored history, before it is stopped. Default 120.
    pub candidate_time_limit_seconds: u64,
    /// Threads for long work (audits, replays, imports, backups), which is also how
    /// many run at once; more wait their turn. Default: `serve` one fewer than the
    /// machine's cores (at least 1), the commands every core.
    pub long_work_threads: Option<usize>,
    /// The operating-system priority of long work: `idle`, `low` or `normal`. Default:
    /// `serve` `idle`, the commands `normal`.
    pub long_work_priority: Option<crate::long_work::Priority>,
}

/// Reads the tokens file (a YAML list of entries); a missing file is an empty list.
pub fn read_token_file(path: &Path) -> Result<Vec<TokenEntry>, String> {
    // A token file someone else could write would let them make themselves admin.
    crate::owner_only::require_trusted(path, crate::owner_only::Use::Read)
        .map_err(|e| format!("tokenfilen {}: {e}", path.display()))?;
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => from_yaml(path, &text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(format!("kan inte läsa {}: {err}", path.display())),
    }
}

/// The largest `max_batch` taken: the writer's queue holds 4096 writes.
pub const MAX_BATCH: usize = 4096;

/// The smallest `max_body_bytes` taken: a profile with every field is about 1.5 KB.
pub const MIN_BODY_BYTES: usize = 4096;

/// Reads a YAML configuration or tokens file. An error names the file, the position,
/// the field and what was wrong there, never the value: a secret pasted into the wrong
/// field must not reach the service's log.
pub fn from_yaml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|err| {
        let field = err.path().to_string();
        let err = err.into_inner();
        let position = err
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        // serde_yaml's message starts with the field's path too.
        let text = err.to_string();
        let text = [format!("{field}: "), format!(".{field}: ")]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix.as_str()))
            .unwrap_or(&text);
        let message = crate::ruleset::describe_serde_message_with(
            text,
            crate::ruleset::UnknownVariants::Hidden,
        );
        if field == "." {
            format!("{}{position}: {message}", path.display())
        } else {
            format!("{}{position}: {field}: {message}", path.display())
        }
    })
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            rules_dir: PathBuf::from("rules"),
            shadow_rules_dir: None,
            database: PathBuf::from("db/gk-regler.sqlite3"),
            pseudonym_secret: None,
            pseudonym_key_file: PathBuf::from("db/pseudonym.key"),
            tokens: Vec::new(),
            tokens_file: PathBuf::from("db/tokens.yaml"),
            session_idle: "8h".to_owned(),
            public_url: None,
            max_body_bytes: 256 * 1024,
            retention_days: None,
            log_format: LogFormat::Text,
            max_batch: 512,
            audit_min_cell_floor: crate::audit::DEFAULT_MIN_CELL,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            body_timeout_seconds: DEFAULT_BODY_TIMEOUT_SECONDS,
            max_connections: 512,
            shutdown_grace_seconds: 10,
            case_lookups_per_minute: DEFAULT_CASE_LOOKUPS_PER_MINUTE,
            candidate_trials_per_hour: DEFAULT_CANDIDATE_TRIALS_PER_HOUR,
            candidate_time_limit_seconds: DEFAULT_CANDIDATE_TIME_LIMIT_SECONDS,
            long_work_threads: None,
            long_work_priority: None,
        }
    }
}

impl Config {
    /// The pool of long work for a command whose defaults are `defaults`, with this
    /// configuration's `long_work_*` keys applied.
    pub fn long_work(&self, defaults: crate::long_work::Settings) -> crate::long_work::Settings {
        crate::long_work::Settings {
            threads: self.long_work_threads.unwrap_or(defaults.threads),
            priority: self.long_work_priority.unwrap_or(defaults.priority),
        }
    }

    /// Defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        Self::load_with(file, |name| std::env::var(name).ok())
    }

    /// [`Config::load`] with the environment read through `var`.
    pub fn load_with(
        file: Option<&Path>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut config = match file {
            Some(path) => {
                crate::owner_only::require_trusted(path, crate::owner_only::Use::Read)
                    .map_err(|e| format!("konfigurationen {}: {e}", path.display()))?;
                let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        format!("konfigurationen {} finns inte", path.display())
                    }
                    _ => format!("kan inte läsa {}: {e}", path.display()),
                })?;
                let config: Config = from_yaml(path, &text)?;
                if config.pseudonym_secret.is_some() && crate::owner_only::readable_by_anyone(path)
                {
                    return Err(format!(
                        "konfigurationen {} har pseudonym_secret och kan läsas av alla användare; \
                         med nyckeln kan vem som helst med en lista över ärende-id se vilka ärenden \
                         som är sparade. Gör filen läsbar bara för ägaren (chmod 600), eller lägg \
                         nyckeln i pseudonym_key_file",
                        path.display()
                    ));
                }
                config
            }
            None => Config::default(),
        };
        config.apply_env(var)?;
        config.validate()?;
        Ok(config)
    }

    /// How long a web session may stay unused.
    pub fn session_idle(&self) -> Result<std::time::Duration, String> {
        let text = self.session_idle.trim();
        text.parse::<jiff::SignedDuration>()
            .ok()
            .filter(|d| d.is_positive())
            .map(|d| d.unsigned_abs())
            .ok_or_else(|| {
                "session_idle (GK_REGLER_SESSION_IDLE): värdet är ingen tid som 8h, 30m eller 2s"
                    .to_owned()
            })
    }

    /// The origin (`scheme://host[:port]`, lower case) of `public_url`, and whether it
    /// is https.
    pub fn public_origin(&self) -> Result<Option<(String, bool)>, String> {
        let Some(url) = &self.public_url else {
            return Ok(None);
        };
        let invalid = || {
            "public_url (GK_REGLER_PUBLIC_URL): värdet är ingen adress som https://gk.example.se"
                .to_owned()
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(invalid());
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty()
            || authority.contains('@')
            || !authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(invalid());
        }
        let mut authority = authority.to_ascii_lowercase();
        // The default port is left out of an origin, as browsers send it.
        for (s, port) in [("http", ":80"), ("https", ":443")] {
            if scheme == s && authority.ends_with(port) {
                authority.truncate(authority.len() - port.len());
            }
        }
        Ok(Some((format!("{scheme}://{authority}"), scheme == "https")))
    }

    /// Refuses settings no run can work with.
    pub fn validate(&self) -> Result<(), String> {
        self.session_idle()?;
        self.public_origin()?;
        if !(1..=MAX_BATCH).contains(&self.max_batch) {
            return Err(format!(
                "max_batch (GK_REGLER_MAX_BATCH) måste vara från 1 till {MAX_BATCH}"
            ));
        }
        if self.max_body_bytes < MIN_BODY_BYTES {
            return Err(format!(
                "max_body_bytes (GK_REGLER_MAX_BODY_BYTES) måste vara minst {MIN_BODY_BYTES}: med mindre tas ingen profil emot"
            ));
        }
        if self.retention_days == Some(0) {
            return Err(
                "retention_days (GK_REGLER_RETENTION_DAYS) måste vara minst 1; utelämna den för att behålla kontrollerna"
                    .to_owned(),
            );
        }
        if self
            .retention_days
            .is_some_and(|days| days > MAX_RETENTION_DAYS)
        {
            return Err(format!(
                "retention_days (GK_REGLER_RETENTION_DAYS) får vara högst {MAX_RETENTION_DAYS} (100 år)"
            ));
        }
        if self.audit_min_cell_floor == 0 {
            return Err(
                "audit_min_cell_floor (GK_REGLER_AUDIT_MIN_CELL_FLOOR) måste vara minst 1"
                    .to_owned(),
            );
        }
        for (name, value) in [
            (
                "header_read_timeout_seconds (GK_REGLER_HEADER_READ_TIMEOUT_SECONDS)",
                self.header_read_timeout_seconds,
            ),
            (
                "idle_timeout_seconds (GK_REGLER_IDLE_TIMEOUT_SECONDS)",
                self.idle_timeout_seconds,
            ),
            (
                "body_timeout_seconds (GK_REGLER_BODY_TIMEOUT_SECONDS)",
                self.body_timeout_seconds,
            ),
            (
                "max_connections (GK_REGLER_MAX_CONNECTIONS)",
                self.max_connections as u64,
            ),
            (
                "case_lookups_per_minute (GK_REGLER_CASE_LOOKUPS_PER_MINUTE)",
                u64::from(self.case_lookups_per_minute),
            ),
            (
                "candidate_trials_per_hour (GK_REGLER_CANDIDATE_TRIALS_PER_HOUR)",
                u64::from(self.candidate_trials_per_hour),
            ),
            (
                "candidate_time_limit_seconds (GK_REGLER_CANDIDATE_TIME_LIMIT_SECONDS)",
                self.candidate_time_limit_seconds,
            ),
            (
                "long_work_threads (GK_REGLER_LONG_WORK_THREADS)",
                self.long_work_threads.map_or(1, |n| n as u64),
            ),
        ] {
            if value == 0 {
                return Err(format!("{name} måste vara minst 1"));
            }
        }
        Ok(())
    }

    /// Applies `GK_REGLER_*` variables read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
            value
                .trim()
                .parse()
                .map_err(|_| format!("{name}: ogiltigt värde"))
        }
        if let Some(v) = var("GK_REGLER_LISTEN") {
            self.listen = parse("GK_REGLER_LISTEN", &v)?;
        }
        if let Some(v) = var("GK_REGLER_RULES") {
            self.rules_dir = PathBuf::from(v);
        }
        if let Some(v) = var("GK_REGLER_SHADOW_RULES") {
            // Set but empty: no shadow rules (overrides the file).
            self.shadow_rules_dir = (!v.trim().is_empty()).then(|| PathBuf::from(v));
        }
        if let Some(v) = var("GK_REGLER_DATABASE") {
            self.database = PathBuf::from(v);
        }
        if let Some(v) = var("GK_REGLER_PSEUDONYM_SECRET") {
            self.pseudonym_secret = Some(Secret::new(v));
        }
        if let Some(v) = var("GK_REGLER_PSEUDONYM_KEY_FILE") {
            self.pseudonym_key_file = PathBuf::from(v);
        }
        if let Some(v) = var("GK_REGLER_TOKENS_FILE") {
            self.tokens_file = PathBuf::from(v);
        }
        if let Some(v) = var("GK_REGLER_SESSION_IDLE") {
            self.session_idle = v.trim().to_owned();
        }
        if let Some(v) = var("GK_REGLER_PUBLIC_URL") {
            self.public_url = Some(v.trim().to_owned());
        }
        if let Some(v) = var("GK_REGLER_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("GK_REGLER_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = var("GK_REGLER_RETENTION_DAYS") {
            self.retention_days = Some(parse("GK_REGLER_RETENTION_DAYS", &v)?);
        }
        if let Some(v) = var("GK_REGLER_AUDIT_MIN_CELL_FLOOR") {
            self.audit_min_cell_floor = parse("GK_REGLER_AUDIT_MIN_CELL_FLOOR", &v)?;
        }
        if let Some(v) = var("GK_REGLER_HEADER_READ_TIMEOUT_SECONDS") {
            self.header_read_timeout_seconds = parse("GK_REGLER_HEADER_READ_TIMEOUT_SECONDS", &v)?;
        }
        if let Some(v) = var("GK_REGLER_IDLE_TIMEOUT_SECONDS") {
            self.idle_timeout_seconds = parse("GK_REGLER_IDLE_TIMEOUT_SECONDS", &v)?;
        }
        if let Some(v) = var("GK_REGLER_BODY_TIMEOUT_SECONDS") {
            self.body_timeout_seconds = parse("GK_REGLER_BODY_TIMEOUT_SECONDS", &v)?;
        }
        if let Some(v) = var("GK_REGLER_MAX_CONNECTIONS") {
            self.max_connections = parse("GK_REGLER_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = var("GK_REGLER_CASE_LOOKUPS_PER_MINUTE") {
            self.case_lookups_per_minute = parse("GK_REGLER_CASE_LOOKUPS_PER_MINUTE", &v)?;
        }
        if let Some(v) = var("GK_REGLER_CANDIDATE_TRIALS_PER_HOUR") {
            self.candidate_trials_per_hour = parse("GK_REGLER_CANDIDATE_TRIALS_PER_HOUR", &v)?;
        }
        if let Some(v) = var("GK_REGLER_CANDIDATE_TIME_LIMIT_SECONDS") {
            self.candidate_time_limit_seconds =
                parse("GK_REGLER_CANDIDATE_TIME_LIMIT_SECONDS", &v)?;
        }
        if let Some(v) = var("GK_REGLER_SHUTDOWN_GRACE_SECONDS") {
            self.shutdown_grace_seconds = parse("GK_REGLER_SHUTDOWN_GRACE_SECONDS", &v)?;
        }
        if let Some(v) = var("GK_REGLER_LONG_WORK_THREADS") {
            self.long_work_threads = Some(parse("GK_REGLER_LONG_WORK_THREADS", &v)?);
        }
        if let Some(v) = var("GK_REGLER_LONG_WORK_PRIORITY") {
            self.long_work_priority = Some(
                v.parse()
                    .map_err(|e| format!("GK_REGLER_LONG_WORK_PRIORITY: {e}"))?,
            );
        }
        if let Some(v) = var("GK_REGLER_LOG_FORMAT") {
            self.log_format = match v.trim() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => {
                    return Err(
                        "GK_REGLER_LOG_FORMAT: ogiltigt värde, väntade json eller text".to_owned(),
                    );
                }
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "listen: 127.0.0.1:9000\nmax_body_bytes: 10000\n").expect("write");
        let no_env = |_: &str| None;
        let from_file = Config::load_with(Some(&path), no_env).expect("file");
        assert_eq!(from_file.listen.port(), 9000);
        assert_eq!(from_file.max_body_bytes, 10000);
        assert_eq!(from_file.rules_dir, PathBuf::from("rules"), "default kept");
        let env = |name: &str| (name == "GK_REGLER_LISTEN").then(|| "127.0.0.1:9100".to_owned());
        let layered = Config::load_with(Some(&path), env).expect("file and env");
        assert_eq!(
            layered.listen.port(),
            9100,
            "the environment overrides the file"
        );
        assert_eq!(
            layered.max_body_bytes, 10000,
            "the file overrides the default"
        );
        let defaults = Config::load_with(None, env).expect("env only");
        assert_eq!(defaults.listen.port(), 9100);
        assert_eq!(defaults.max_body_bytes, Config::default().max_body_bytes);
        let missing = Config::load_with(Some(&dir.path().join("saknas.yaml")), no_env);
        assert!(missing.is_err_and(|e| e.contains("saknas.yaml")));
    }

    #[test]
    fn errors_in_configuration_files_name_the_field_never_the_value() {
        let path = Path::new("gk.yaml");
        let cases: [(&str, &str, &str); 4] = [
            (
                "tokens:\n  - name: a\n    role: gkr_RAWTOKENVALUE123\n    sha256: ab\n",
                "gkr_RAWTOKENVALUE123",
                "gk.yaml:3:11: tokens[0].role: okänt värde, väntade",
            ),
            (
                "max_body_bytes: s3cr3tInWrongPlace\n",
                "s3cr3tInWrongPlace",
                "gk.yaml:1:17: max_body_bytes: ogiltig typ: text",
            ),
            (
                "log_format: hemligt123\n",
                "hemligt123",
                "log_format: okänt värde",
            ),
            ("lisen: x\n", "\"x\"", "okänt fält `lisen`"),
        ];
        for (text, value, named) in cases {
            let err = from_yaml::<Config>(path, text).expect_err(text);
            assert!(!err.contains(value), "{err}");
            assert!(err.contains(named), "{err}");
        }
        let entries: Result<Vec<TokenEntry>, _> = from_yaml(
            path,
            "- name: a\n  role: gkr_RAWTOKENVALUE123\n  sha256: ab\n",
        );
        let err = entries.expect_err("an unknown role");
        assert!(
            !err.contains("gkr_RAW") && err.contains("[0].role"),
            "{err}"
        );
        let mut config = Config::default();
        let err = config
            .apply_env(|name| (name == "GK_REGLER_MAX_BODY_BYTES").then(|| "s3cr3t".to_owned()))
            .expect_err("not a number");
        assert!(
            !err.contains("s3cr3t") && err.contains("GK_REGLER_MAX_BODY_BYTES"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(serde_yaml::from_str::<Config>("lisen: x\n").is_err());
        let mut config = Config::default();
        assert!(
            config
                .apply_env(|_| Some("not a number".to_owned()))
                .is_err()
        );
    }

    #[test]
    fn the_audit_floor_is_configurable_and_never_zero() {
        let mut config = Config::default();
        assert_eq!(config.audit_min_cell_floor, 5);
        config
            .apply_env(|name| (name == "GK_REGLER_AUDIT_MIN_CELL_FLOOR").then(|| "10".to_owned()))
            .expect("env");
        assert_eq!(config.audit_min_cell_floor, 10);
        assert!(config.validate().is_ok());
        let zero: Config = serde_yaml::from_str("audit_min_cell_floor: 0\n").expect("parse");
        assert!(
            zero.validate()
                .expect_err("refused")
                .contains("audit_min_cell_floor")
        );
    }

    #[test]
    fn the_public_url_gives_the_origin_and_secure_cookies() {
        let with = |url: &str| Config {
            public_url: Some(url.to_owned()),
            ..Config::default()
        };
        assert_eq!(Config::default().public_origin(), Ok(None));
        assert_eq!(
            with("https://GK.example.se:443/regler").public_origin(),
            Ok(Some(("https://gk.example.se".to_owned(), true)))
        );
        assert_eq!(
            with("http://127.0.0.1:8480").public_origin(),
            Ok(Some(("http://127.0.0.1:8480".to_owned(), false)))
        );
        for bad in ["gk.example.se", "ftp://x", "https://", "https://a@b"] {
            assert!(with(bad).validate().is_err(), "{bad}");
        }
        let mut config = Config::default();
        assert_eq!(
            config.session_idle(),
            Ok(std::time::Duration::from_secs(8 * 3600))
        );
        config
            .apply_env(|name| (name == "GK_REGLER_SESSION_IDLE").then(|| "2s".to_owned()))
            .expect("env");
        assert_eq!(config.session_idle(), Ok(std::time::Duration::from_secs(2)));
        for bad in ["0s", "-1h", "länge"] {
            config.session_idle = bad.to_owned();
            assert!(config.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn connection_limits_are_configurable_and_never_zero() {
        let mut config = Config::default();
        assert_eq!(config.header_read_timeout_seconds, 10);
        assert_eq!(config.idle_timeout_seconds, 60);
        assert_eq!(config.max_connections, 512);
        assert_eq!(config.shutdown_grace_seconds, 10);
        config
            .apply_env(|name| match name {
                "GK_REGLER_MAX_CONNECTIONS" => Some("7".to_owned()),
                "GK_REGLER_SHUTDOWN_GRACE_SECONDS" => Some("1".to_owned()),
                _ => None,
            })
            .expect("env");
        assert_eq!(config.max_connections, 7);
        assert_eq!(config.shutdown_grace_seconds, 1);
        let zero: Config = serde_yaml::from_str("idle_timeout_seconds: 0\n").expect("parse");
        assert!(
            zero.validate()
                .expect_err("refused")
                .contains("idle_timeout_seconds")
        );
    }

    #[test]
    fn case_lookups_per_minute_are_configurable_and_never_zero() {
        let mut config = Config::default();
        assert_eq!(config.case_lookups_per_minute, 60);
        config
            .apply_env(|name| (name == "GK_REGLER_CASE_LOOKUPS_PER_MINUTE").then(|| "5".to_owned()))
            .expect("env");
        assert_eq!(config.case_lookups_per_minute, 5);
        let zero: Config = serde_yaml::from_str("case_lookups_per_minute: 0\n").expect("parse");
        assert!(
            zero.validate()
                .expect_err("refused")
                .contains("case_lookups_per_minute")
        );
    }

    #[test]
    fn retention_days_are_between_one_day_and_a_hundred_years() {
        for (days, ok) in [
            (0, false),
            (1, true),
            (36_500, true),
            (36_501, false),
            (8_000_000, false),
        ] {
            let config: Config =
                serde_yaml::from_str(&format!("retention_days: {days}\n")).expect("parse");
            assert_eq!(config.validate().is_ok(), ok, "{days}");
        }
        // A negative number is not "an integer" where an integer is expected.
        let err = from_yaml::<Config>(Path::new("gk.yaml"), "retention_days: -5\n")
            .expect_err("negative");
        assert!(err.contains("väntade ett heltal, 0 eller större"), "{err}");
    }

    #[test]
    fn a_body_limit_no_profile_fits_is_refused() {
        let config: Config = serde_yaml::from_str("max_body_bytes: 0\n").expect("parse");
        let err = config.validate().expect_err("refused");
        assert!(err.contains("max_body_bytes"), "{err}");
        let config: Config =
            serde_yaml::from_str(&format!("max_body_bytes: {MIN_BODY_BYTES}\n")).expect("parse");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_candidate_time_limit_is_configurable_and_never_zero() {
        let mut config = Config::default();
        assert_eq!(config.candidate_time_limit_seconds, 120);
        config
            .apply_env(|name| {
                (name == "GK_REGLER_CANDIDATE_TIME_LIMIT_SECONDS").then(|| "3".to_owned())
            })
            .expect("env");
        assert_eq!(config.candidate_time_limit_seconds, 3);
        let zero: Config =
            serde_yaml::from_str("candidate_time_limit_seconds: 0\n").expect("parse");
        assert!(
            zero.validate()
                .expect_err("refused")
                .contains("candidate_time_limit_seconds")
        );
    }

    #[test]
    fn long_work_settings_take_the_command_defaults_unless_configured() {
        use crate::long_work::{Priority, Settings};
        let defaults = Settings {
            threads: 3,
            priority: Priority::Idle,
        };
        assert_eq!(Config::default().long_work(defaults), defaults);
        let from_file: Config =
            serde_yaml::from_str("long_work_threads: 2\nlong_work_priority: low\n").expect("parse");
        assert_eq!(
            from_file.long_work(defaults),
            Settings {
                threads: 2,
                priority: Priority::Low
            }
        );
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "GK_REGLER_LONG_WORK_THREADS" => Some("1".to_owned()),
                "GK_REGLER_LONG_WORK_PRIORITY" => Some("normal".to_owned()),
                _ => None,
            })
            .expect("env");
        assert_eq!(
            config.long_work(defaults),
            Settings {
                threads: 1,
                priority: Priority::Normal
            }
        );
        let refused = config
            .apply_env(|name| (name == "GK_REGLER_LONG_WORK_PRIORITY").then(|| "high".to_owned()))
            .expect_err("refused");
        assert!(
            refused.contains("GK_REGLER_LONG_WORK_PRIORITY"),
            "{refused}"
        );
        let zero: Config = serde_yaml::from_str("long_work_threads: 0\n").expect("parse");
        assert!(
            zero.validate()
                .expect_err("refused")
                .contains("long_work_threads")
        );
    }

    #[test]
    fn secret_does_not_print() {
        let config = Config {
            pseudonym_secret: Some(Secret::new("topsecret".into())),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("topsecret"));
    }
}
