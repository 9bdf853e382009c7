//! The control-plane database: connecting, migrating, and checking it is there.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::DatabaseConfig;

/// The control-plane migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("setting `database.url` is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("cannot reach the database at {url} (setting `database.url`): {cause}")]
    Unreachable { url: String, cause: String },
    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// Opens a pool and proves the database answers, within the configured timeout.
#[tracing::instrument(skip_all, fields(url = %config.redacted_url()))]
pub async fn connect(config: &DatabaseConfig) -> Result<PgPool, DbError> {
    let options: PgConnectOptions = config
        .url
        .expose_secret()
        .parse()
        .map_err(DbError::InvalidUrl)?;
    let unreachable = |cause: String| DbError::Unreachable {
        url: config.redacted_url(),
        cause,
    };
    // One direct connection first: its error says why ("Connection refused", "password
    // authentication failed"), where a pool would only report that it timed out.
    match tokio::time::timeout(
        config.connect_timeout(),
        PgConnection::connect_with(&options),
    )
    .await
    {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
        }
        Ok(Err(error)) => return Err(unreachable(root_cause(&error))),
        Err(_elapsed) => {
            return Err(unreachable(format!(
                "no answer within {} s",
                config.connect_timeout_secs
            )));
        }
    }
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.connect_timeout())
        .connect_lazy_with(options))
}

/// The innermost message of an error chain: "Connection refused (os error 111)" says more
/// than "error communicating with database".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// This installation's id (`instance`): every Docker object it creates is labelled with it.
pub async fn instance_id(pool: &PgPool) -> Result<uuid::Uuid, sqlx::Error> {
    sqlx::query_scalar!("SELECT instance_id FROM instance")
        .fetch_one(pool)
        .await
}

/// Applies every pending migration; a no-op when the schema is current.
#[tracing::instrument(skip_all)]
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// What `/healthz` reports about the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Up { latency: Duration },
    Down { reason: String },
}

/// Runs a trivial query with a deadline. Never fails: an error is a `Down` report.
pub async fn check(pool: &PgPool, deadline: Duration) -> Health {
    let started = Instant::now();
    let query = sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(pool);
    match tokio::time::timeout(deadline, query).await {
        Ok(Ok(_)) => Health::Up {
            latency: started.elapsed(),
        },
        Ok(Err(error)) => Health::Down {
            reason: root_cause(&error),
        },
        Err(_) => Health::Down {
            reason: format!("no answer within {} ms", deadline.as_millis()),
        },
    }
}
