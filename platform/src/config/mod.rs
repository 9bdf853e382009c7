//! Typed, layered configuration: built-in defaults, then `slipway.toml`, then `SLIPWAY_*`
//! environment variables (nested keys joined with `__`, e.g. `SLIPWAY_DATABASE__URL`).
//!
//! Every struct rejects unknown keys, so a typo is an error that names the key instead of a
//! setting that silently does nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::catalog::plans::{Catalog, CatalogError, Plan, default_plans};
use crate::catalog::templates::{self, Template};

mod sections;
pub use sections::*;

/// The file read when no `--config` / `SLIPWAY_CONFIG` is given (skipped if absent).
pub const DEFAULT_FILE: &str = "slipway.toml";
/// Environment variables with this prefix override the file.
pub const ENV_PREFIX: &str = "SLIPWAY_";
/// Names the configuration file; read by the CLI, not a setting itself.
pub const ENV_CONFIG_FILE: &str = "SLIPWAY_CONFIG";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `production` (the default) or `development` (`make dev`): see [`Mode`].
    pub mode: Mode,
    /// Address of the dashboard, API and webhooks.
    pub listen: SocketAddr,
    /// The URL users reach the dashboard at. Links in mails are built from it, never from a
    /// request's `Host` header.
    pub public_url: String,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub web: WebConfig,
    pub mail: MailConfig,
    pub provision: ProvisionConfig,
    pub proxy: ProxyConfig,
    pub usage: UsageConfig,
    pub billing: BillingConfig,
    pub support: SupportConfig,
    pub jobs: JobsConfig,
    pub monitor: MonitorConfig,
    pub metrics: MetricsConfig,
    /// How long a stopping server waits for its background work to finish its current step.
    pub shutdown_timeout_secs: u64,
    /// What a site can run. The first is the default; unset: the built-in CMS (`site/`).
    pub templates: Vec<Template>,
    /// The plan catalog. Setting `[[plans]]` replaces the whole default catalog.
    pub plans: Vec<Plan>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Production,
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: "http://127.0.0.1:3000/".to_owned(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            web: WebConfig::default(),
            mail: MailConfig::default(),
            provision: ProvisionConfig::default(),
            proxy: ProxyConfig::default(),
            usage: UsageConfig::default(),
            billing: BillingConfig::default(),
            support: SupportConfig::default(),
            jobs: JobsConfig::default(),
            monitor: MonitorConfig::default(),
            metrics: MetricsConfig::default(),
            shutdown_timeout_secs: 20,
            templates: vec![Template::builtin()],
            plans: default_plans(),
        }
    }
}

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On a developer's machine: mail stays in the outbox and shows on the dashboard's local
    /// mail page (links also in the log), and the first start creates a demo operator and
    /// organization. Never for real customers.
    Development,
    /// For real customers: `serve` refuses to start while a secret it needs is missing or
    /// left at its development default, and nothing of development mode exists.
    #[default]
    Production,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Development => "development",
            Mode::Production => "production",
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
        config.master_key()?;
        templates::validate(&config.templates).map_err(ConfigError::Invalid)?;
        config.check_proxy()?;
        config.stripe()?;
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

    /// The Stripe key and API base when Stripe is configured (`None`: local billing mode),
    /// checked: a key needs a webhook secret and an absolute API base.
    pub fn stripe(&self) -> Result<Option<(&SecretString, url::Url)>, ConfigError> {
        let billing = &self.billing;
        let invalid = |why: String| ConfigError::Invalid(format!("setting `billing.{why}"));
        if billing.failed_payments_before_suspend == 0 {
            return Err(invalid(
                "failed_payments_before_suspend`: use 1 or more".to_owned(),
            ));
        }
        let Some(key) = &billing.stripe_secret_key else {
            return Ok(None);
        };
        let raw = key.expose_secret();
        if !raw.starts_with("sk_") && !raw.starts_with("rk_") {
            return Err(invalid(
                "stripe_secret_key`: expected a Stripe secret key (sk_live_..., sk_test_... or rk_...)".to_owned(),
            ));
        }
        if billing.stripe_webhook_secrets.is_empty() {
            return Err(invalid(
                "stripe_webhook_secrets`: required with a Stripe key, or no webhook could be trusted".to_owned(),
            ));
        }
        let base = url::Url::parse(&billing.stripe_api_base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                invalid(format!(
                    "stripe_api_base`: use an absolute http(s) URL (got \"{}\")",
                    billing.stripe_api_base
                ))
            })?;
        Ok(Some((key, base)))
    }

    /// Settings that are read but no longer do anything, by name (`serve` warns about each).
    pub fn ignored_settings(&self) -> Vec<&'static str> {
        let mut ignored = Vec::new();
        if self.mail.poll_interval_secs.is_some() {
            ignored.push("mail.poll_interval_secs");
        }
        if self.billing.worker_interval_secs.is_some() {
            ignored.push("billing.worker_interval_secs");
        }
        ignored
    }

    /// In production, what `serve` refuses to start without: each missing or default secret
    /// is named, with how to set it. Nothing to check in development.
    pub fn check_production(&self) -> Result<(), ConfigError> {
        if self.mode != Mode::Production {
            return Ok(());
        }
        let mut missing = Vec::new();
        if self.provision.master_key.is_none() {
            missing.push("`provision.master_key` is not set (it seals sites' secrets; make one with `slipway keygen`)");
        }
        if self.mail.smtp_url.is_none() {
            missing.push("`mail.smtp_url` is not set (without mail nobody can verify an address or reset a password)");
        }
        if self.database.url.expose_secret() == DatabaseConfig::DEVELOPMENT_URL {
            missing.push(
                "`database.url` is the development cluster's (no password, trusted loopback)",
            );
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(ConfigError::Invalid(format!(
            "production mode: {} (set `mode = \"development\"` to run on a developer's machine)",
            missing.join("; ")
        )))
    }

    fn check_proxy(&self) -> Result<(), ConfigError> {
        let base = &self.proxy.base_domain;
        if crate::kernel::normalize_host(base).as_deref() != Some(base.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "setting `proxy.base_domain`: \"{base}\" is not a lower-case host name like localhost or sites.example.com"
            )));
        }
        let tls = &self.proxy.tls;
        if tls.enabled
            && (tls.certificate.is_none() || tls.key.is_none())
            && tls.certificates_dir.is_none()
        {
            return Err(ConfigError::Invalid(
                "setting `proxy.tls`: TLS is on but no certificate is configured (set `proxy.tls.certificate` and `proxy.tls.key`, or `proxy.tls.certificates_dir`)".to_owned(),
            ));
        }
        if self.usage.flush_interval_secs == 0 || self.usage.flush_interval_secs > 10 {
            return Err(ConfigError::Invalid(
                "setting `usage.flush_interval_secs`: use 1 to 10 seconds".to_owned(),
            ));
        }
        Ok(())
    }

    /// `provision.master_key`, decoded; `None` when unset.
    pub fn master_key(&self) -> Result<Option<crate::kernel::secrets::MasterKey>, ConfigError> {
        match &self.provision.master_key {
            None => Ok(None),
            Some(raw) => crate::kernel::secrets::MasterKey::parse(raw.expose_secret())
                .map(Some)
                .map_err(|why| {
                    ConfigError::Invalid(format!("setting `provision.master_key`: {why}"))
                }),
        }
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
                [plans.overage]
                bandwidth_gb_cents = 5
                storage_gb_cents = 15
                build_cents = 2
                "#,
            )?;
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let catalog = config.catalog().map_err(|e| e.to_string())?;
            let ids: Vec<&str> = catalog.plans().iter().map(|p| p.id.as_str()).collect();
            assert_eq!(ids, ["hobby"]);
            let overage = catalog.plans()[0].overage.expect("overage prices");
            assert_eq!(
                (
                    overage.bandwidth_gb_cents,
                    overage.storage_gb_cents,
                    overage.build_cents
                ),
                (5, 15, 2)
            );
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
    fn templates_and_the_master_key_are_checked_at_load() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "slipway.toml",
                r#"
[provision]
network = "hosting"
[[templates]]
name = "notes"
label = "Notes"
image = "example/notes:1.4"
port = 3000
health_path = "/healthz"
data_path = "/var/lib/notes"
[templates.env]
DATABASE_URL = "{database_url}"
"#,
            )?;
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.provision.network, "hosting");
            assert_eq!(config.templates.len(), 1);
            assert_eq!(config.templates[0].port, 3000);
            assert!(config.master_key().map_err(|e| e.to_string())?.is_none());

            jail.set_env("SLIPWAY_PROVISION__MASTER_KEY", "too-short");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(
                error.starts_with("setting `provision.master_key`: "),
                "{error}"
            );
            assert!(
                !error.contains("too-short"),
                "the key is never printed: {error}"
            );
            jail.set_env(
                "SLIPWAY_PROVISION__MASTER_KEY",
                crate::kernel::secrets::MasterKey::generate(),
            );
            assert!(
                Config::load(None)
                    .map_err(|e| e.to_string())?
                    .master_key()
                    .is_ok()
            );

            jail.create_file(
                "slipway.toml",
                "[[templates]]\nname = \"x\"\nlabel = \"X\"\nimage = \"x\"\nport = 1\nhealth_path = \"/\"\ndata_path = \"../etc\"\n",
            )?;
            let error = Config::load(None).unwrap_err().to_string();
            assert!(
                error.contains("setting `templates[0].data_path`"),
                "{error}"
            );
            Ok(())
        });
    }

    #[test]
    fn settings_an_older_slipway_needed_still_load_and_are_named_as_ignored() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "slipway.toml",
                "[mail]\npoll_interval_secs = 5\n[billing]\nworker_interval_secs = 60\n",
            )?;
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                config.ignored_settings(),
                ["mail.poll_interval_secs", "billing.worker_interval_secs"]
            );
            assert!(Config::default().ignored_settings().is_empty());
            Ok(())
        });
    }

    #[test]
    fn production_names_every_missing_secret_and_development_needs_none() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let error = config.check_production().unwrap_err().to_string();
            for setting in ["provision.master_key", "mail.smtp_url", "database.url"] {
                assert!(error.contains(setting), "{setting}: {error}");
            }
            jail.set_env("SLIPWAY_MODE", "development");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.mode, Mode::Development);
            assert!(config.check_production().is_ok());
            jail.set_env("SLIPWAY_MODE", "staging");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.starts_with("setting `mode`"), "{error}");
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
