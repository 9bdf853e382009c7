//! Typed, layered configuration: built-in defaults, then `slipway.toml`, then `SLIPWAY_*`
//! environment variables (nested keys joined with `__`, e.g. `SLIPWAY_DATABASE__URL`).
//!
//! Every struct rejects unknown keys, so a typo is an error that names the key instead of a
//! setting that silently does nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::plans::{Catalog, CatalogError, Plan, default_plans};

/// The file read when no `--config` / `SLIPWAY_CONFIG` is given (skipped if absent).
pub const DEFAULT_FILE: &str = "slipway.toml";
/// Environment variables with this prefix override the file.
pub const ENV_PREFIX: &str = "SLIPWAY_";
/// Names the configuration file; read by the CLI, not a setting itself.
pub const ENV_CONFIG_FILE: &str = "SLIPWAY_CONFIG";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the dashboard, API and webhooks.
    pub listen: SocketAddr,
    /// The URL users reach the dashboard at. Links in mails are built from it, never from a
    /// request's `Host` header.
    pub public_url: String,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub web: WebConfig,
    pub mail: MailConfig,
    /// The plan catalog. Setting `[[plans]]` replaces the whole default catalog.
    pub plans: Vec<Plan>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: "http://127.0.0.1:3000/".to_owned(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            web: WebConfig::default(),
            mail: MailConfig::default(),
            plans: default_plans(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A `postgres://` URL. It may carry a password, so it never prints.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long to wait for a connection before calling the database unreachable.
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            // The project-local development cluster that `make dev` starts (no password:
            // it trusts loopback connections only).
            url: SecretString::from("postgres://slipway@127.0.0.1:55432/slipway"),
            max_connections: 10,
            connect_timeout_secs: 5,
        }
    }
}

impl DatabaseConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// The URL with any password replaced, for messages and logs.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose_secret())
    }
}

fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have a password, which this one has.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for development.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info,sqlx=warn`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info,sqlx=warn,tower_http=info".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Folder with the compiled WASM, JS and CSS (`cargo leptos build` writes `target/site`).
    pub site_root: PathBuf,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            site_root: PathBuf::from("target/site"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server, e.g. `smtp://user:pass@mail.example.com:587?tls=required` or
    /// `smtps://...:465`. Unset: messages stay in the `mail_outbox` table (and the log).
    pub smtp_url: Option<SecretString>,
    /// The sender of every message.
    pub from: String,
    /// How often queued messages are sent.
    pub poll_interval_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Slipway <no-reply@localhost>".to_owned(),
            poll_interval_secs: 5,
        }
    }
}

/// Why the configuration could not be loaded. Displays as one line naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("{0}")]
    Invalid(String),
    #[error("setting `plans`: {0}")]
    Catalog(#[from] CatalogError),
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        // figment may collect several errors; report each on one line, `; `-joined.
        let lines: Vec<String> = error.into_iter().map(|e| describe(&e)).collect();
        ConfigError::Invalid(lines.join("; "))
    }
}

fn describe(error: &figment::Error) -> String {
    let setting = error.path.join(".");
    let what = match &error.kind {
        figment::error::Kind::UnknownField(_, expected) => format!(
            "setting `{setting}` is unknown (known here: {})",
            expected.join(", ")
        ),
        kind if setting.is_empty() => kind.to_string(),
        kind => format!("setting `{setting}`: {kind}"),
    };
    let source = match &error.metadata {
        Some(meta) => match &meta.source {
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            _ if meta.name.contains("environment") => {
                format!(" (from {})", env_var_name(&error.path))
            }
            _ => format!(" (in {})", meta.name),
        },
        None => String::new(),
    };
    format!("{what}{source}")
}

fn env_var_name(path: &[String]) -> String {
    format!("{ENV_PREFIX}{}", path.join("__").to_uppercase())
}

impl Config {
    /// Loads defaults, then `file` (or `slipway.toml` if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let figment = Self::figment(file)?;
        let config: Config = figment.extract()?;
        config.catalog()?;
        config.public_url()?;
        Ok(config)
    }

    /// `public_url`, parsed: an absolute http(s) URL.
    pub fn public_url(&self) -> Result<url::Url, ConfigError> {
        let invalid = |why: &str| {
            ConfigError::Invalid(format!(
                "setting `public_url`: {why} (got \"{}\")",
                self.public_url
            ))
        };
        let url = url::Url::parse(&self.public_url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid("use an absolute http:// or https:// URL"));
        }
        Ok(url)
    }

    fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::new();
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            // The default file is optional, and only looked for in the working directory.
            None if Path::new(DEFAULT_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_FILE));
            }
            None => {}
        }
        let env = Env::prefixed(ENV_PREFIX)
            .ignore(&["config"])
            // LEPTOS_* and RUST_LOG belong to others; only SLIPWAY_* is ours.
            .split("__");
        Ok(figment.merge(env))
    }

    /// The validated plan catalog.
    pub fn catalog(&self) -> Result<Catalog, CatalogError> {
        Catalog::new(self.plans.clone())
    }
}

#[cfg(test)]
// figment's `Jail` fixes the closures' error type to its own (large) error.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_apply_without_file_or_environment() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.to_string(), "127.0.0.1:3000");
            assert_eq!(config.log.format, LogFormat::Pretty);
            assert_eq!(config.plans.len(), 4);
            Ok(())
        });
    }

    #[test]
    fn file_overrides_defaults_and_environment_overrides_file() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "slipway.toml",
                r#"
                listen = "127.0.0.1:4000"
                [log]
                format = "json"
                [database]
                max_connections = 3
                "#,
            )?;
            jail.set_env("SLIPWAY_LISTEN", "127.0.0.1:5000");
            jail.set_env("SLIPWAY_DATABASE__MAX_CONNECTIONS", "7");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.to_string(), "127.0.0.1:5000");
            assert_eq!(config.log.format, LogFormat::Json, "file value kept");
            assert_eq!(config.database.max_connections, 7);
            Ok(())
        });
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("slipway.toml", "[database]\nurll = \"postgres://x\"\n")?;
            let error = Config::load(None).unwrap_err().to_string();
            assert!(
                error.starts_with("setting `database.urll` is unknown (known here: url,"),
                "{error}"
            );
            assert!(error.contains("slipway.toml"), "{error}");
            assert!(!error.contains('\n'), "one line: {error}");
            Ok(())
        });
    }

    #[test]
    fn unknown_environment_variable_is_named() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("SLIPWAY_LISTNE", "127.0.0.1:1");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.starts_with("setting `listne` is unknown"), "{error}");
            assert!(error.ends_with("(from SLIPWAY_LISTNE)"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn unparseable_port_names_the_setting_and_variable() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("SLIPWAY_LISTEN", "127.0.0.1:http");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.starts_with("setting `listen`"), "{error}");
            assert!(error.contains("SLIPWAY_LISTEN"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let error = Config::load(Some(Path::new("nope.toml"))).unwrap_err();
            assert_eq!(
                error.to_string(),
                "configuration file nope.toml does not exist"
            );
            Ok(())
        });
    }

    #[test]
    fn operator_replaces_the_catalog() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "slipway.toml",
                r#"
                [[plans]]
                id = "hobby"
                name = "Hobby"
                description = "One small site"
                monthly_cents = 500
                yearly_cents = 5000
                [plans.limits]
                sites = 1
                members = 1
                storage_mb = 1024
                memory_mb = 128
                cpu_millis = 250
                backup_retention_days = 3
                "#,
            )?;
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let catalog = config.catalog().map_err(|e| e.to_string())?;
            let ids: Vec<&str> = catalog.plans().iter().map(|p| p.id.as_str()).collect();
            assert_eq!(ids, ["hobby"]);
            Ok(())
        });
    }

    #[test]
    fn invalid_catalog_is_refused_at_load() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("slipway.toml", "plans = []\n")?;
            let error = Config::load(None).unwrap_err().to_string();
            assert_eq!(error, "setting `plans`: the catalog has no plans");
            Ok(())
        });
    }

    #[test]
    fn public_url_must_be_absolute_http() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("SLIPWAY_PUBLIC_URL", "example.com");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.starts_with("setting `public_url`:"), "{error}");
            jail.set_env("SLIPWAY_PUBLIC_URL", "ftp://example.com/");
            assert!(Config::load(None).is_err());
            jail.set_env("SLIPWAY_PUBLIC_URL", "https://hosting.example.com/");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                config.public_url().map_err(|e| e.to_string())?.as_str(),
                "https://hosting.example.com/"
            );
            Ok(())
        });
    }

    #[test]
    fn redacted_url_hides_the_password() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/slipway"),
            "postgres://app:***@db:5432/slipway"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
    }
}
