//! The reconciler through a PostgreSQL outage: the control plane reaches the cluster through
//! a relay the test cuts in the middle of a provisioning pass. The pass stops (nothing can be
//! recorded); when the database returns, the site converges with exactly one container,
//! and the step that was cut off is marked as interrupted, not left running.
//!
//! Needs the Docker engine and the static site binary (`make site-image`), like
//! `platform/tests/provision.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use platform::Error;
use platform::config::ProvisionConfig;
use platform::infra::docker::Runtime;
use platform::provision::Reconciler;
use platform::sites::{self, NewSite};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_support::TcpRelay;

async fn containers_of(site_id: uuid::Uuid) -> usize {
    let out = tokio::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=slipway.site={site_id}"),
        ])
        .output()
        .await
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

async fn status(pool: &PgPool, id: uuid::Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM sites WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("site row")
}

#[sqlx::test(migrations = "../migrations")]
async fn a_site_converges_after_postgresql_goes_away_mid_pass(pool: PgPool) {
    let relay = TcpRelay::start(pool.connect_options().get_port()).await;
    let relayed = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(
            (*pool.connect_options())
                .clone()
                .host("127.0.0.1")
                .port(relay.port()),
        );
    let platform = test_support::test_platform(relayed);
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let config = ProvisionConfig {
        network: "slipway-test".to_owned(),
        tenant_database: "slipway_test_tenants".to_owned(),
        // Containers reach the cluster itself, not the test's relay on loopback.
        tenant_database_port: Some(pool.connect_options().get_port()),
        site_binary: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/x86_64-unknown-linux-gnu/release/site"),
        ..ProvisionConfig::default()
    };
    let reconciler = Arc::new(
        Reconciler::new(
            platform.clone(),
            Arc::new(Runtime::new(&config.docker_socket)),
            config,
        )
        .await
        .expect("reconciler"),
    );
    let site = sites::create(
        &platform,
        &owner,
        &NewSite {
            name: "Through an outage".into(),
            slug: "outage".into(),
            template: String::new(),
        },
    )
    .await
    .expect("site");

    // Cut the database off once the first step is recorded.
    let pass = tokio::spawn({
        let reconciler = reconciler.clone();
        async move { reconciler.reconcile_site(site.id).await }
    });
    for _ in 0..400 {
        let database_done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM deployment_steps st JOIN deployments d ON d.id = st.deployment_id
              WHERE d.site_id = $1 AND st.step = 'database' AND st.status = 'succeeded')",
        )
        .bind(site.id)
        .fetch_one(&pool)
        .await
        .expect("steps");
        if database_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    relay.cut().await;
    let cut_off = tokio::time::timeout(Duration::from_secs(60), pass)
        .await
        .expect("the pass ends instead of hanging")
        .expect("no panic");
    assert!(
        matches!(cut_off, Err(Error::Database(_))),
        "the pass stops on the outage: {cut_off:?}"
    );
    assert_ne!(status(&pool, site.id).await, "active");
    // While the database is away, passes fail fast and change nothing.
    assert!(reconciler.reconcile_site(site.id).await.is_err());

    relay.restore().await;
    let outcomes = reconciler.run_until_idle(10).await.expect("passes");
    assert!(!outcomes.is_empty());
    let reason: Option<String> =
        sqlx::query_scalar("SELECT status_reason FROM sites WHERE id = $1")
            .bind(site.id)
            .fetch_one(&pool)
            .await
            .expect("row");
    assert_eq!(reason, None, "{outcomes:?}");
    assert_eq!(status(&pool, site.id).await, "active");
    assert_eq!(containers_of(site.id).await, 1, "exactly one container");
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deployment_steps st JOIN deployments d ON d.id = st.deployment_id
          WHERE d.site_id = $1 AND st.status = 'running'",
    )
    .bind(site.id)
    .fetch_one(&pool)
    .await
    .expect("steps");
    assert_eq!(running, 0, "no step is left looking as if it still ran");

    sites::delete(&platform, &owner, site.id, &site.slug)
        .await
        .expect("delete");
    reconciler.run_until_idle(10).await.expect("passes");
    assert_eq!(status(&pool, site.id).await, "deleted");
    assert_eq!(containers_of(site.id).await, 0);
}
