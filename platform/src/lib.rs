//! Slipway's domain and its adapters.
//!
//! Everything that a server function, a REST handler, a CLI command and a background
//! worker share lives here, once. No leptos, no axum.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod config;
pub mod db;
pub mod error;
pub mod mail;
pub mod orgs;
pub mod plans;
pub mod secrets;
mod text;

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
}

impl Platform {
    pub fn new(db: sqlx::PgPool, catalog: Catalog, public_url: url::Url) -> Self {
        Self {
            db,
            catalog: Arc::new(catalog),
            public_url: Arc::new(public_url),
        }
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
