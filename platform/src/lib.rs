//! Slipway's domain and its adapters.
//!
//! Everything that a server function, a REST handler, a CLI command and a background
//! worker share lives here, once. No leptos, no axum.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod config;
pub mod db;
pub mod domains;
pub mod error;
pub mod mail;
pub mod orgs;
pub mod plans;
pub mod provision;
pub mod routes;
pub mod runtime;
pub mod secrets;
pub mod sites;
pub mod templates;
pub mod tenant_db;
mod text;
pub mod usage;

use std::sync::Arc;

pub use config::Config;
pub use error::{Error, Result};
pub use plans::Catalog;

use plans::{Plan, PlanId};

/// The handle every entry point (pages, API, CLI, workers) uses to reach the domain.
#[derive(Clone, Debug)]
pub struct Platform {
    pub db: sqlx::PgPool,
    pub catalog: Arc<Catalog>,
    /// Where users reach the dashboard; every link in a mail starts with it.
    pub public_url: Arc<url::Url>,
    /// Seals sites' secrets; without it sites cannot be created.
    pub master_key: Option<secrets::MasterKey>,
    /// What sites can run; the first is the default.
    pub templates: Arc<Vec<templates::Template>>,
    /// Where a site is reached, with `{slug}` in it (e.g. `http://{slug}.localhost:8080`).
    pub site_url_pattern: Arc<str>,
    /// Sites answer at `<slug>.<base_domain>` on the proxy; names under it are Slipway's.
    pub base_domain: Arc<str>,
    /// How custom domains are verified.
    pub dns: domains::DnsSettings,
    /// Stripe (or local billing mode) and the dunning settings.
    pub billing: Arc<billing::BillingSettings>,
}

impl Platform {
    pub fn new(db: sqlx::PgPool, catalog: Catalog, public_url: url::Url) -> Self {
        Self {
            db,
            catalog: Arc::new(catalog),
            public_url: Arc::new(public_url),
            master_key: None,
            templates: Arc::new(vec![templates::Template::builtin()]),
            site_url_pattern: Arc::from(sites::DEFAULT_URL_PATTERN),
            base_domain: Arc::from("localhost"),
            dns: domains::DnsSettings::default(),
            billing: Arc::new(billing::BillingSettings::default()),
        }
    }

    /// The same platform, able to create sites (their secrets are sealed with `key`).
    pub fn with_master_key(mut self, key: secrets::MasterKey) -> Self {
        self.master_key = Some(key);
        self
    }

    pub fn with_templates(mut self, templates: Vec<templates::Template>) -> Self {
        self.templates = Arc::new(templates);
        self
    }

    pub fn with_site_url_pattern(mut self, pattern: &str) -> Self {
        self.site_url_pattern = Arc::from(pattern);
        self
    }

    pub fn with_base_domain(mut self, base_domain: &str) -> Self {
        self.base_domain = Arc::from(base_domain.trim_end_matches('.').to_ascii_lowercase());
        self
    }

    pub fn with_dns(mut self, dns: domains::DnsSettings) -> Self {
        self.dns = dns;
        self
    }

    pub fn with_billing(mut self, billing: billing::BillingSettings) -> Self {
        self.billing = Arc::new(billing);
        self
    }

    /// The platform `config` describes, on `db`.
    pub fn from_config(db: sqlx::PgPool, config: &Config) -> Result<Self, config::ConfigError> {
        let mut platform = Self::new(db, config.catalog()?, config.public_url()?)
            .with_templates(config.templates.clone())
            .with_site_url_pattern(&config.provision.site_url)
            .with_base_domain(&config.proxy.base_domain)
            .with_dns(domains::DnsSettings {
                resolver: config.proxy.dns_resolver,
                timeout: None,
            })
            .with_billing(config.billing()?);
        if let Some(key) = config.master_key()? {
            platform = platform.with_master_key(key);
        }
        Ok(platform)
    }

    pub fn template(&self, name: &str) -> Option<&templates::Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// The address visitors reach the site with this slug at.
    pub fn site_url(&self, slug: &str) -> String {
        self.site_url_pattern.replace("{slug}", slug)
    }

    /// An absolute link to `path_and_query` under the configured public URL (never the
    /// request's Host header).
    pub fn link(&self, path_and_query: &str) -> String {
        format!(
            "{}{}",
            self.public_url.as_str().trim_end_matches('/'),
            path_and_query
        )
    }

    /// The plan new organizations start on: the catalog's first.
    pub fn default_plan(&self) -> &PlanId {
        // A catalog is never empty (`Catalog::new` refuses that).
        &self.catalog.plans()[0].id
    }

    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.catalog.plans().iter().find(|p| p.id.as_str() == id)
    }
}
