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

/// Everything `gk-regler serve` (and the database commands) need.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default 127.0.0.1:8480 (loopback only).
    pub listen: SocketAddr,
    /// Rules directory. Default `rules`.
    pub rules_dir: PathBuf,
    /// SQLite database file. Default `db/gk-regler.sqlite3`.
    pub database: PathBuf,
    /// HMAC secret for case pseudonyms (≥ 32 bytes). Default: generated into
    /// `pseudonym_key_file` on first start.
    pub pseudonym_secret: Option<Secret>,
    pub pseudonym_key_file: PathBuf,
    /// Tokens given in the config file (hashes only).
    pub tokens: Vec<TokenEntry>,
    /// Tokens made by `gk-regler token create` and the first start.
    pub tokens_file: PathBuf,
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            rules_dir: PathBuf::from("rules"),
            database: PathBuf::from("db/gk-regler.sqlite3"),
            pseudonym_secret: None,
            pseudonym_key_file: PathBuf::from("db/pseudonym.key"),
            tokens: Vec::new(),
            tokens_file: PathBuf::from("db/tokens.yaml"),
            max_body_bytes: 256 * 1024,
            retention_days: None,
            log_format: LogFormat::Text,
            max_batch: 512,
            audit_min_cell_floor: crate::audit::DEFAULT_MIN_CELL,
        }
    }
}

impl Config {
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
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("kan inte läsa {}: {e}", path.display()))?;
                serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(var)?;
        config.validate()?;
        Ok(config)
    }

    /// Refuses settings no run can work with.
    pub fn validate(&self) -> Result<(), String> {
        if self.audit_min_cell_floor == 0 {
            return Err(
                "audit_min_cell_floor (GK_REGLER_AUDIT_MIN_CELL_FLOOR) måste vara minst 1"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Applies `GK_REGLER_*` variables read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
            value
                .trim()
                .parse()
                .map_err(|_| format!("{name}: ogiltigt värde {value:?}"))
        }
        if let Some(v) = var("GK_REGLER_LISTEN") {
            self.listen = parse("GK_REGLER_LISTEN", &v)?;
        }
        if let Some(v) = var("GK_REGLER_RULES") {
            self.rules_dir = PathBuf::from(v);
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
        if let Some(v) = var("GK_REGLER_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("GK_REGLER_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = var("GK_REGLER_RETENTION_DAYS") {
            self.retention_days = Some(parse("GK_REGLER_RETENTION_DAYS", &v)?);
        }
        if let Some(v) = var("GK_REGLER_AUDIT_MIN_CELL_FLOOR") {
            self.audit_min_cell_floor = parse("GK_REGLER_AUDIT_MIN_CELL_FLOOR", &v)?;
        }
        if let Some(v) = var("GK_REGLER_LOG_FORMAT") {
            self.log_format = match v.trim() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => return Err(format!("GK_REGLER_LOG_FORMAT: ogiltigt värde {other:?}")),
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
        std::fs::write(&path, "listen: 127.0.0.1:9000\nmax_body_bytes: 1000\n").expect("write");
        let no_env = |_: &str| None;
        let from_file = Config::load_with(Some(&path), no_env).expect("file");
        assert_eq!(from_file.listen.port(), 9000);
        assert_eq!(from_file.max_body_bytes, 1000);
        assert_eq!(from_file.rules_dir, PathBuf::from("rules"), "default kept");
        let env = |name: &str| (name == "GK_REGLER_LISTEN").then(|| "127.0.0.1:9100".to_owned());
        let layered = Config::load_with(Some(&path), env).expect("file and env");
        assert_eq!(
            layered.listen.port(),
            9100,
            "the environment overrides the file"
        );
        assert_eq!(
            layered.max_body_bytes, 1000,
            "the file overrides the default"
        );
        let defaults = Config::load_with(None, env).expect("env only");
        assert_eq!(defaults.listen.port(), 9100);
        assert_eq!(defaults.max_body_bytes, Config::default().max_body_bytes);
        let missing = Config::load_with(Some(&dir.path().join("saknas.yaml")), no_env);
        assert!(missing.is_err_and(|e| e.contains("saknas.yaml")));
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
    fn secret_does_not_print() {
        let config = Config {
            pseudonym_secret: Some(Secret::new("topsecret".into())),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("topsecret"));
    }
}
