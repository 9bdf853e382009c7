//! What both benches start from: a database of their own (from DATABASE_URL's server),
//! migrated, a platform on it, and one signed-up account. `finish` drops the database.

use platform::catalog::plans::{Catalog, default_plans};
use platform::identity::signup;
use platform::identity::signup::{SignUp, SignedUp};
use platform::identity::users::{NewPassword, PersonName};
use platform::kernel::Email;
use platform::tenancy::organizations::OrganizationName;
use sqlx::{Connection, Executor, PgConnection};

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

pub struct BenchDb {
    admin: PgConnection,
    database: String,
    pub pool: sqlx::PgPool,
    pub platform: platform::Platform,
    /// `bench@example.com`, owner of its organization.
    // Each bench compiles this module on its own; the sign-in bench does not need the ids.
    #[allow(dead_code)]
    pub account: SignedUp,
}

impl BenchDb {
    pub async fn start(password: &str, max_connections: u32) -> BenchResult<Self> {
        let admin_url = std::env::var("DATABASE_URL")?;
        let database = format!("slipway_bench_{}", std::process::id());
        let mut admin = PgConnection::connect(&admin_url).await?;
        admin
            .execute(format!(r#"CREATE DATABASE "{database}""#).as_str())
            .await?;
        let (server, _) = admin_url
            .rsplit_once('/')
            .ok_or("DATABASE_URL has no path")?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&format!("{server}/{database}"))
            .await?;
        platform::infra::db::migrate(&pool).await?;
        let platform = platform::Platform::new(
            pool.clone(),
            Catalog::new(default_plans())?,
            "http://127.0.0.1:3000/".parse()?,
        );
        let account = signup::sign_up(
            &platform,
            SignUp {
                email: Email::parse("bench@example.com")?,
                name: PersonName::parse("Bench")?,
                password: NewPassword::parse(password)?,
                organization: OrganizationName::parse("Bench")?,
            },
            None,
        )
        .await?;
        Ok(Self {
            admin,
            database,
            pool,
            platform,
            account,
        })
    }

    pub async fn finish(mut self) -> BenchResult<()> {
        self.pool.close().await;
        self.admin
            .execute(format!(r#"DROP DATABASE "{}" WITH (FORCE)"#, self.database).as_str())
            .await?;
        Ok(())
    }
}

/// Starts a health monitor probing over plain HTTP (`BareProber`: the benches have no
/// proxy): cancel the token to stop it, then await the task.
// The sign-in bench runs no monitor.
#[allow(dead_code)]
pub async fn start_monitor(
    platform: &platform::Platform,
    runtime: std::sync::Arc<platform::infra::docker::Runtime>,
    network: &str,
) -> BenchResult<(
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
)> {
    let monitor = std::sync::Arc::new(
        platform::monitor::Monitor::new(
            platform.clone(),
            runtime,
            std::sync::Arc::new(platform::monitor::BareProber),
            network,
        )
        .await?,
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let watching = tokio::spawn(monitor.run(stop.clone()));
    Ok((stop, watching))
}
