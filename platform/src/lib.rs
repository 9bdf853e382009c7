//! Slipway's domain and its adapters.
//!
//! Everything that a server function, a REST handler, a CLI command and a background
//! worker share lives here, once. No leptos, no axum.

pub mod config;
pub mod db;
pub mod plans;

pub use config::Config;
pub use plans::Catalog;

/// The handle every entry point (pages, API, CLI, workers) uses to reach the domain.
#[derive(Clone, Debug)]
pub struct Platform {
    pub db: sqlx::PgPool,
    pub catalog: std::sync::Arc<Catalog>,
}

impl Platform {
    pub fn new(db: sqlx::PgPool, catalog: Catalog) -> Self {
        Self {
            db,
            catalog: std::sync::Arc::new(catalog),
        }
    }
}
