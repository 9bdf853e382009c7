//! Adapters to what Slipway runs on: PostgreSQL (pool, migrations, the one shared LISTEN,
//! the durable job queue), the Docker engine, the tenants' database, mail, DNS, Stripe and
//! the sites' own HTTP.
//! Each is built once from the settings (the wiring module); none knows the domain above it.

pub mod bare_http;
pub mod db;
pub mod dns;
pub mod docker;
pub mod jobs;
pub mod lease;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod stripe;
pub mod tasks;
pub mod tenant_db;
