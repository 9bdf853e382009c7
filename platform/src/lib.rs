//! Slipway's domain and its adapters.
//!
//! Everything that a server function, a REST handler, a CLI command and a background
//! worker share lives here, once. No leptos, no axum.

// The contexts, leaf first: each depends only on those above it in this list
// (`python3 scripts/module_cycles.py platform/src` proves there is no cycle).
pub mod admin;
pub mod billing;
pub mod catalog;
pub mod config;
pub mod deletion;
pub mod development;
pub mod housekeeping;
pub mod identity;
pub mod incidents;
pub mod infra;
pub mod kernel;
pub mod monitor;
pub mod provision;
pub mod sites;
pub mod tenancy;
pub mod traffic;
mod wiring;
pub mod workers;

use std::sync::Arc;

pub use catalog::Catalog;
pub use config::Config;
pub use kernel::{Error, Result};

use catalog::{Plan, PlanId, Template};
use infra::dns::DnsSettings;
use kernel::secrets::MasterKey;

/// The handle every entry point (pages, API, CLI, workers) uses to reach the domain.
#[derive(Clone, Debug)]
pub struct Platform {
    pub db: sqlx::PgPool,
    /// The process's one LISTEN connection, shared by everything that waits for a change.
    pub notifications: Arc<infra::notify::Notifications>,
    pub catalog: Arc<Catalog>,
    /// Where users reach the dashboard; every link in a mail starts with it.
    pub public_url: Arc<url::Url>,
    /// Seals sites' secrets; without it sites cannot be created.
    pub master_key: Option<MasterKey>,
    /// What sites can run; the first is the default.
    pub templates: Arc<Vec<Template>>,
    /// Where a site is reached, with `{slug}` in it (e.g. `http://{slug}.localhost:8080`).
    pub site_url_pattern: Arc<str>,
    /// Sites answer at `<slug>.<base_domain>` on the proxy; names under it are Slipway's.
    pub base_domain: Arc<str>,
    /// How custom domains are verified.
    pub dns: DnsSettings,
    /// Stripe (or local billing mode) and the dunning settings.
    pub billing: Arc<billing::BillingSettings>,
    /// Where queued mail is delivered.
    pub mailer: Arc<infra::mail::Mailer>,
    /// The job queue (and the clock it reads).
    pub jobs: infra::jobs::Queue,
    /// `development` turns on the local mail page and the demo account; `production` refuses
    /// to start without its secrets.
    pub mode: config::Mode,
    /// How sites are checked, restarted and alerted about (incidents read the alert delays).
    pub monitor: Arc<config::MonitorConfig>,
    /// Where customers get help.
    pub support: Arc<Support>,
}

/// Where customers get help (`[support]`), checked when the settings load.
#[derive(Debug, Clone, Default)]
pub struct Support {
    pub email: Option<kernel::Email>,
    pub docs_url: Option<url::Url>,
}

impl Platform {
    pub fn new(db: sqlx::PgPool, catalog: Catalog, public_url: url::Url) -> Self {
        Self {
            notifications: Arc::new(infra::notify::Notifications::new(db.clone())),
            jobs: infra::jobs::Queue::new(db.clone(), infra::jobs::Clock::Database),
            db,
            catalog: Arc::new(catalog),
            public_url: Arc::new(public_url),
            master_key: None,
            templates: Arc::new(vec![Template::builtin()]),
            site_url_pattern: Arc::from(config::DEFAULT_SITE_URL),
            base_domain: Arc::from("localhost"),
            dns: DnsSettings::default(),
            billing: Arc::new(billing::BillingSettings::default()),
            mailer: Arc::new(infra::mail::Mailer::Local),
            mode: config::Mode::Production,
            monitor: Arc::new(config::MonitorConfig::default()),
            support: Arc::new(Support::default()),
        }
    }

    /// The same platform, able to create sites (their secrets are sealed with `key`).
    pub fn with_master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(key);
        self
    }

    pub fn with_templates(mut self, templates: Vec<Template>) -> Self {
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

    pub fn with_dns(mut self, dns: DnsSettings) -> Self {
        self.dns = dns;
        self
    }

    pub fn with_billing(mut self, billing: billing::BillingSettings) -> Self {
        self.billing = Arc::new(billing);
        self
    }

    pub fn with_mailer(mut self, mailer: infra::mail::Mailer) -> Self {
        self.mailer = Arc::new(mailer);
        self
    }

    /// The same platform whose job queue reads `clock` (tests replay hours this way).
    pub fn with_clock(mut self, clock: infra::jobs::Clock) -> Self {
        self.jobs = infra::jobs::Queue::new(self.db.clone(), clock);
        self
    }

    pub fn with_mode(mut self, mode: config::Mode) -> Self {
        self.mode = mode;
        self
    }

    pub fn with_support(mut self, support: Support) -> Self {
        self.support = Arc::new(support);
        self
    }

    pub fn with_monitor(mut self, monitor: config::MonitorConfig) -> Self {
        self.monitor = Arc::new(monitor);
        self
    }

    pub fn template(&self, name: &str) -> Option<&Template> {
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

    /// Refuses what plan `plan_id` does not include, naming the plans that do:
    /// "Custom domains are not part of your plan. Upgrade to Pro or Business to add one."
    pub fn require_feature(
        &self,
        plan_id: &str,
        feature: catalog::Feature,
        to_do: &str,
    ) -> kernel::Result<()> {
        if self
            .plan(plan_id)
            .is_some_and(|p| p.features.contains(&feature))
        {
            return Ok(());
        }
        let with_feature: Vec<&str> = self
            .catalog
            .plans()
            .iter()
            .filter(|p| p.features.contains(&feature))
            .map(|p| p.name.as_str())
            .collect();
        Err(kernel::Error::LimitReached(format!(
            "{} {} not part of your plan. Upgrade to {} to {to_do}.",
            feature.label(),
            if feature.is_plural() { "are" } else { "is" },
            with_feature.join(" or ")
        )))
    }
}
