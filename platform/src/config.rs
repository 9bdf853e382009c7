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
    pub provision: ProvisionConfig,
    pub proxy: ProxyConfig,
    pub usage: UsageConfig,
    pub billing: BillingConfig,
    /// What a site can run. The first is the default; unset: the built-in CMS (`site/`).
    pub templates: Vec<crate::templates::Template>,
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
            provision: ProvisionConfig::default(),
            proxy: ProxyConfig::default(),
            usage: UsageConfig::default(),
            billing: BillingConfig::default(),
            templates: vec![crate::templates::Template::builtin()],
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

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisionConfig {
    /// Run the reconciler in this process (sites' containers, schemas and roles).
    pub enabled: bool,
    /// 32 random bytes, base64: seals each site's database password, API token and
    /// webhook secret at rest. No default: `slipway keygen` prints a fresh one. Losing it
    /// loses access to every site's secrets.
    pub master_key: Option<SecretString>,
    /// The Docker engine's socket.
    pub docker_socket: String,
    /// The bridge network every site's container joins (created when missing, with
    /// container-to-container traffic off).
    pub network: String,
    /// The database (same cluster as `database.url`) that holds one schema per site;
    /// created when missing.
    pub tenant_database: String,
    /// The address containers reach PostgreSQL at. Unset: the network's gateway (the host),
    /// with the port of `database.url`.
    pub tenant_database_host: Option<String>,
    /// The port containers reach PostgreSQL at. Unset: the port of `database.url`.
    pub tenant_database_port: Option<u16>,
    /// Reconcilers working on different sites at the same time.
    pub workers: usize,
    /// How often every site is checked even without a change (drift, vanished containers).
    pub resync_interval_secs: u64,
    /// How long a started container may take to answer its health path.
    pub health_timeout_secs: u64,
    /// A labelled container whose site does not exist is removed after this long (it may
    /// belong to a site another replica is creating right now).
    pub orphan_grace_secs: u64,
    /// The static `site` binary the built-in template's image is built from.
    pub site_binary: PathBuf,
    /// Where visitors reach a site; `{slug}` is replaced by the site's slug.
    pub site_url: String,
}

impl Default for ProvisionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            master_key: None,
            docker_socket: "/var/run/docker.sock".to_owned(),
            network: "slipway".to_owned(),
            tenant_database: "slipway_tenants".to_owned(),
            tenant_database_host: None,
            tenant_database_port: None,
            workers: 4,
            resync_interval_secs: 30,
            health_timeout_secs: 60,
            orphan_grace_secs: 600,
            site_binary: PathBuf::from("target/x86_64-unknown-linux-gnu/release/site"),
            site_url: crate::sites::DEFAULT_URL_PATTERN.to_owned(),
        }
    }
}

/// The tenant-facing proxy: visitors reach sites through it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Serve sites from this process.
    pub enabled: bool,
    /// Plain HTTP. With TLS on, it only redirects to HTTPS.
    pub listen: SocketAddr,
    /// Sites answer at `<slug>.<base_domain>`; names under it cannot be custom domains.
    pub base_domain: String,
    /// How many proxies in front of Slipway append to `X-Forwarded-For` and may be believed.
    /// 0: nothing the client sends in `X-Forwarded-*` is trusted.
    pub trusted_hops: usize,
    /// The DNS server (`ip:port`) custom domains are verified against. Unset: the system's.
    pub dns_resolver: Option<SocketAddr>,
    /// How long to wait for a site's container to accept a connection.
    pub connect_timeout_secs: u64,
    /// How long a site may take to start answering a request.
    pub response_timeout_secs: u64,
    /// How long a visitor may take to send a request's headers.
    pub header_timeout_secs: u64,
    /// How often the route table is rebuilt even without a notification.
    pub resync_interval_secs: u64,
    /// Threads serving visitors, each with its own event loop. Unset: one per CPU.
    pub workers: Option<usize>,
    pub tls: TlsConfig,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_domain: "localhost".to_owned(),
            trusted_hops: 0,
            dns_resolver: None,
            connect_timeout_secs: 5,
            response_timeout_secs: 60,
            header_timeout_secs: 30,
            resync_interval_secs: 60,
            workers: None,
            tls: TlsConfig::default(),
        }
    }
}

/// HTTPS on the proxy: a certificate for `*.<base_domain>` plus one per custom domain,
/// chosen by SNI.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// PEM certificate chain and key for `*.<base_domain>`.
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Per-domain certificates: `<dir>/<domain>/fullchain.pem` and `privkey.pem` (the
    /// layout certbot writes). Rescanned every minute.
    pub certificates_dir: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            certificate: None,
            key: None,
            certificates_dir: None,
        }
    }
}

/// Usage accounting.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// How often counted traffic is written to Postgres: the most a crash can lose.
    pub flush_interval_secs: u64,
    /// How often each site's storage (schema plus volume) is measured.
    pub storage_interval_secs: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            flush_interval_secs: 10,
            storage_interval_secs: 300,
        }
    }
}

/// Billing. Without `stripe_secret_key` Slipway runs in local billing mode: operators assign
/// plans with `slipway admin set-plan` and nothing calls Stripe.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// `sk_live_...` or `sk_test_...`.
    pub stripe_secret_key: Option<SecretString>,
    /// Where the Stripe API is; a test server in tests.
    pub stripe_api_base: String,
    /// The webhook endpoint's signing secrets (`whsec_...`); two while one is being rolled.
    pub stripe_webhook_secrets: Vec<SecretString>,
    /// Failed attempts to collect one invoice after which every site is suspended.
    pub failed_payments_before_suspend: u32,
    /// How long sites are kept after a subscription ends, in seconds (7 days).
    pub grace_period_secs: u64,
    /// How often pending webhook events, grace periods and overage reports are looked at.
    pub worker_interval_secs: u64,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            stripe_secret_key: None,
            stripe_api_base: "https://api.stripe.com/".to_owned(),
            stripe_webhook_secrets: Vec::new(),
            failed_payments_before_suspend: 3,
            grace_period_secs: 7 * 24 * 3600,
            worker_interval_secs: 60,
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
        crate::templates::validate(&config.templates).map_err(ConfigError::Invalid)?;
        config.check_proxy()?;
        config.billing()?;
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

    /// The billing settings, checked: a Stripe key needs a webhook secret and a valid API base.
    pub fn billing(&self) -> Result<crate::billing::BillingSettings, ConfigError> {
        let billing = &self.billing;
        let invalid = |why: String| ConfigError::Invalid(format!("setting `billing.{why}"));
        if billing.failed_payments_before_suspend == 0 {
            return Err(invalid(
                "failed_payments_before_suspend`: use 1 or more".to_owned(),
            ));
        }
        let mut settings = crate::billing::BillingSettings {
            stripe: None,
            webhook_secrets: billing.stripe_webhook_secrets.clone(),
            failed_payments_before_suspend: billing.failed_payments_before_suspend,
            grace_period: Duration::from_secs(billing.grace_period_secs),
            ..crate::billing::BillingSettings::default()
        };
        let Some(key) = &billing.stripe_secret_key else {
            return Ok(settings);
        };
        let key = key.expose_secret();
        if !key.starts_with("sk_") && !key.starts_with("rk_") {
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
        let api = crate::billing::stripe_api::StripeApi::new(key, &base)
            .map_err(|e| invalid(format!("stripe_secret_key`: {e}")))?;
        settings.stripe = Some(api);
        Ok(settings)
    }

    fn check_proxy(&self) -> Result<(), ConfigError> {
        let base = &self.proxy.base_domain;
        if crate::routes::normalize_host(base).as_deref() != Some(base.as_str()) {
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
    pub fn master_key(&self) -> Result<Option<crate::secrets::MasterKey>, ConfigError> {
        match &self.provision.master_key {
            None => Ok(None),
            Some(raw) => crate::secrets::MasterKey::parse(raw.expose_secret())
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
                crate::secrets::MasterKey::generate(),
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
