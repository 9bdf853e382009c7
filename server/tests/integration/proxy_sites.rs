//! The whole path with real containers: the reconciler provisions two sites (it writes each
//! container's address as the site's upstream), the proxy routes visitors to each by
//! `Host`, counts their traffic, and the storage sampler measures each site's schema and
//! volume. Needs the Docker engine and the static site binary (`make site-image`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::config::ProvisionConfig;
use platform::infra::docker::Runtime;
use platform::infra::tasks::Background;
use platform::provision::Reconciler;
use platform::sites::{self, NewSite};
use platform::{Config, Error};
use sqlx::PgPool;
use uuid::Uuid;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

#[sqlx::test(migrations = "../migrations")]
async fn provisioned_sites_are_served_by_host_counted_and_measured(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let me = test_support::owner_on_plan(&platform, "pro").await;
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-gnu/release/site");
    assert!(binary.exists(), "run `make site-image` first");
    let provision = ProvisionConfig {
        network: "slipway-test".to_owned(),
        tenant_database: "slipway_test_tenants".to_owned(),
        site_binary: binary,
        health_timeout_secs: 30,
        ..ProvisionConfig::default()
    };
    let reconciler = Arc::new(
        Reconciler::new(
            platform.clone(),
            Arc::new(Runtime::new(&provision.docker_socket)),
            provision,
        )
        .await
        .unwrap(),
    );
    let mut slugs = Vec::new();
    let mut ids = Vec::new();
    for prefix in ["north", "south"] {
        let slug = unique(prefix);
        let created = sites::create(
            &platform,
            &me,
            &NewSite {
                name: format!("The {prefix} site"),
                slug: slug.clone(),
                template: String::new(),
            },
        )
        .await
        .unwrap();
        slugs.push(slug);
        ids.push(created.id);
    }

    let mut config = Config::default();
    config.proxy.listen = "127.0.0.1:0".parse().unwrap();
    let background = Background::new();
    let proxy = server::start_proxy(&config, platform.clone(), &background)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let get = |slug: &str, path: &str| {
        client
            .get(format!("http://127.0.0.1:{}{path}", proxy.http.port()))
            .header("Host", format!("{slug}.localhost:{}", proxy.http.port()))
            .send()
    };
    // Before the reconciler has run: the site is being set up.
    let response = get(&slugs[0], "/").await.unwrap();
    assert_eq!(response.status().as_u16(), 503);

    reconciler.run_until_idle(10).await.unwrap();
    // Each host reaches its own container, within a second of becoming active.
    for (slug, prefix) in slugs.iter().zip(["north", "south"]) {
        let started = Instant::now();
        loop {
            let response = get(slug, "/").await.unwrap();
            if response.status().as_u16() == 200 {
                let page = response.text().await.unwrap();
                assert!(page.contains(&format!("The {prefix} site")), "{page}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{slug} not routed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let health = get(&slugs[1], "/api/health").await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let robots = get(&slugs[1], "/robots.txt")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(robots.starts_with("User-agent: *"), "{robots}");

    // Storage: the schema (migrated by the app) and the volume, measured in the container.
    assert_eq!(reconciler.sample_storage().await.unwrap(), 2);
    let storage: i64 = sqlx::query_scalar(
        "SELECT quantity FROM usage_records WHERE site_id = $1 AND metric = 'storage'",
    )
    .bind(ids[0])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        storage > 8192,
        "a migrated schema takes some pages: {storage}"
    );

    assert!(
        background
            .shutdown(Duration::from_secs(15))
            .await
            .is_empty()
    );
    let report = platform::traffic::usage::report(&platform, &me, Some(ids[0]), 30)
        .await
        .unwrap();
    let today = report.days.last().unwrap();
    assert_eq!(
        today.requests, 1,
        "one 200 page for the first site: {today:?}"
    );
    assert!(
        today.page_views == 1 && today.storage_bytes.is_some(),
        "{today:?}"
    );
    assert_eq!(report.sites.len(), 1);
    // Another organization cannot read this site's usage.
    let stranger = test_support::owner_on_plan(&platform, "pro").await;
    assert!(matches!(
        platform::traffic::usage::report(&platform, &stranger, Some(ids[0]), 30).await,
        Err(Error::NotFound)
    ));

    for (id, slug) in ids.iter().zip(&slugs) {
        sites::delete(&platform, &me, *id, slug).await.unwrap();
    }
    reconciler.run_until_idle(10).await.unwrap();
}
