//! The sections of the settings, one struct each, with their defaults. Plain values: nothing
//! here builds a client or opens a connection (the wiring module does that).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Where visitors reach a site unless `provision.site_url` says otherwise.
pub const DEFAULT_SITE_URL: &str = "http://{slug}.localhost:8080";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A `postgres://` URL. It may carry a password, so it never prints.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long to wait for a connection before calling the database unreachable.
    pub connect_timeout_secs: u64,
}

impl DatabaseConfig {
    /// The project-local development cluster that `make dev` starts (no password: it trusts
    /// loopback connections only). Production refuses it.
    pub const DEVELOPMENT_URL: &str = "postgres://slipway@127.0.0.1:55432/slipway";
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(Self::DEVELOPMENT_URL),
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

/// `raw` with any password replaced by `***`.
pub fn redact_url(raw: &str) -> String {
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
    /// Ignored: queued mail is delivered by its job as soon as it is queued. Still read, so
    /// settings written for an older Slipway load (`serve` warns).
    pub poll_interval_secs: Option<u64>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Slipway <no-reply@localhost>".to_owned(),
            poll_interval_secs: None,
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
            site_url: DEFAULT_SITE_URL.to_owned(),
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
    /// Ignored: webhook events are jobs, handled as soon as they are stored. Still read, so
    /// settings written for an older Slipway load (`serve` warns).
    pub worker_interval_secs: Option<u64>,
    /// Where customers write about plans and billing: shown on the billing and pricing
    /// pages, and mailed each plan request (local billing mode). Unset: no address shown.
    pub contact_email: Option<String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            stripe_secret_key: None,
            stripe_api_base: "https://api.stripe.com/".to_owned(),
            stripe_webhook_secrets: Vec::new(),
            failed_payments_before_suspend: 3,
            grace_period_secs: 7 * 24 * 3600,
            worker_interval_secs: None,
            contact_email: None,
        }
    }
}

/// Where customers get help: shown on the help page, linked from every page.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupportConfig {
    /// The operator's support address. Unset: the help page names no address.
    pub email: Option<String>,
    /// The operator's own documentation (an `http(s)` URL), linked from the help page.
    pub docs_url: Option<String>,
}

/// The job queue's worker in this process.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs run at the same time by this process (every process runs a worker).
    pub workers: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { workers: 4 }
    }
}

/// The health monitor (`[monitor]`): how sites are checked, restarted and alerted about.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Whether this process may run the monitor (one process of the installation does, under
    /// a lease; the others stand by).
    pub enabled: bool,
    /// How often every active site's health path is probed.
    pub interval_secs: u64,
    /// How long a probe waits for an answer.
    pub timeout_secs: u64,
    /// A probe slower than this counts as `degraded`.
    pub degraded_ms: u64,
    /// Failed probes in a row before a site counts as down (a crash seen in the engine's
    /// events counts at once).
    pub failures_to_down: u32,
    /// The wait before the second restart; each later one waits twice as long...
    pub restart_backoff_secs: u64,
    /// ...up to this.
    pub restart_backoff_max_secs: u64,
    /// Healthy this long without interruption: the next failure restarts at once again.
    pub healthy_reset_secs: u64,
    /// This many restarts within `crash_loop_window_secs` and still failing: the site is
    /// `crash_looping` and no longer restarted.
    pub crash_loop_restarts: u32,
    pub crash_loop_window_secs: u64,
    /// Members are mailed about a site down this long (blips are not mail)...
    pub alert_after_secs: u64,
    /// ...at most once per site in this period.
    pub alert_every_secs: u64,
    /// How often error rates and usage against plan limits are judged.
    pub traffic_check_secs: u64,
    /// Fewer requests than this in 15 minutes are too few to judge an error rate by.
    pub error_rate_min_requests: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 15,
            timeout_secs: 5,
            degraded_ms: 2_000,
            failures_to_down: 2,
            restart_backoff_secs: 10,
            restart_backoff_max_secs: 300,
            healthy_reset_secs: 600,
            crash_loop_restarts: 5,
            crash_loop_window_secs: 600,
            alert_after_secs: 300,
            alert_every_secs: 3_600,
            traffic_check_secs: 60,
            error_rate_min_requests: 20,
        }
    }
}

impl MonitorConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.max(1))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    pub fn traffic_check(&self) -> Duration {
        Duration::from_secs(self.traffic_check_secs.max(1))
    }

    /// The wait before restart number `attempt` (0 = the first): none, then
    /// `restart_backoff_secs` doubling up to `restart_backoff_max_secs`.
    pub fn restart_delay(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let doublings = (attempt - 1).min(20);
        Duration::from_secs(
            self.restart_backoff_secs
                .saturating_mul(1 << doublings)
                .min(self.restart_backoff_max_secs),
        )
    }
}

/// Prometheus metrics (`[metrics]`): served on a listener of their own, never the dashboard's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `/metrics` is served, e.g. `127.0.0.1:9100`. Unset: no metrics listener.
    pub listen: Option<SocketAddr>,
    /// When set, scrapers must send `Authorization: Bearer <token>`.
    pub bearer_token: Option<SecretString>,
}
