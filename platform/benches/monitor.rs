//! Recovery after a crash: Slipway's monitor beside Docker's own restart policy, in the
//! same run, against the real engine.
//!
//! 1. Slipway: a site (the built-in CMS with its test-only fault switches) watched by the
//!    monitor; `docker kill` 20 times. Detection = the kill until the monitor has recorded
//!    the crash (from the engine's events); healthy = the kill until the monitor saw the
//!    health path answer again. The waits between restarts are reset after 1 s healthy
//!    (`healthy_reset_secs`), so every kill measures the "restart at once" path.
//! 2. Docker: a container of the same image with `restart: on-failure`, made to exit with
//!    a failure code 20 times (`POST /__test/exit`; Docker does not restart a container
//!    stopped with `docker kill`, which this run shows first). Healthy = the exit until its
//!    health path answers again. Runs are 11 s apart so Docker's own back-off (reset after
//!    10 s running) stays at its first step.
//!
//! `make site-image && cargo bench -p platform --bench monitor` (needs DATABASE_URL).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::catalog::templates::Template;
use platform::config::{MonitorConfig, ProvisionConfig};
use platform::infra::docker::{ContainerSpec, ResourceLimits, Runtime};
use platform::infra::tenant_db::TenantIdent;
use platform::kernel::secrets::MasterKey;
use platform::provision::Reconciler;
use platform::sites::{self, NewSite};
use platform::tenancy::{Membership, Role};
use uuid::Uuid;

mod support;
use support::BenchDb;

const RUNS: usize = 20;
const NETWORK: &str = "slipway-bench";

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[(samples.len() * 95).div_ceil(100) - 1];
    format!("median {median:>8.0?}   p95 {p95:>8.0?}")
}

fn docker(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn answers(address: std::net::SocketAddr) -> bool {
    matches!(
        platform::monitor::probe::http_status(address, "/healthz", Duration::from_millis(500))
            .await,
        Ok(200)
    )
}

/// The container's address once its health path answers (it may change on a restart).
async fn wait_answering(
    runtime: &Runtime,
    id: Uuid,
) -> Result<std::net::SocketAddr, Box<dyn std::error::Error>> {
    loop {
        if let Some(ip) = runtime
            .container(id, NETWORK)
            .await?
            .and_then(|c| c.address)
        {
            let address = std::net::SocketAddr::new(ip, 8000);
            if answers(address).await {
                return Ok(address);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A bare `POST path` (the site may exit before it answers).
async fn post(address: std::net::SocketAddr, path: &str) {
    use tokio::io::AsyncWriteExt as _;
    if let Ok(mut stream) = tokio::net::TcpStream::connect(address).await {
        let request =
            format!("POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
        let _ = stream.write_all(request.as_bytes()).await;
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            use tokio::io::AsyncReadExt as _;
            let mut buffer = [0u8; 64];
            let _ = stream.read(&mut buffer).await;
        })
        .await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bench = BenchDb::start("correct horse battery", 10).await?;
    let pool = bench.pool.clone();
    let mut faulty = Template::builtin();
    faulty.name = "cms-faults".to_owned();
    faulty
        .env
        .insert("SITE_TEST_FAULTS".to_owned(), "1".to_owned());
    let p = bench
        .platform
        .clone()
        .with_master_key(MasterKey::parse(&MasterKey::generate())?)
        .with_templates(vec![Template::builtin(), faulty])
        .with_monitor(MonitorConfig {
            healthy_reset_secs: 1,
            crash_loop_restarts: 1_000,
            ..MonitorConfig::default()
        });
    sqlx::query("UPDATE organizations SET plan_id = 'business' WHERE id = $1")
        .bind(bench.account.organization_id)
        .execute(&pool)
        .await?;
    let owner = Membership {
        organization_id: bench.account.organization_id,
        user_id: bench.account.user_id,
        role: Role::Owner,
    };
    let config = ProvisionConfig {
        network: NETWORK.to_owned(),
        tenant_database: "slipway_bench_tenants".to_owned(),
        ..ProvisionConfig::default()
    };
    let runtime = Arc::new(Runtime::new(&config.docker_socket));
    let reconciler = Arc::new(Reconciler::new(p.clone(), runtime.clone(), config).await?);
    let site = sites::create(
        &p,
        &owner,
        &NewSite {
            name: "watched".into(),
            slug: "bench-watched".into(),
            template: "cms-faults".into(),
        },
    )
    .await?
    .id;
    reconciler.run_until_idle(5).await?;
    let (stop, watching) = support::start_monitor(&p, runtime.clone(), NETWORK).await?;
    let health = async || -> Option<String> {
        sqlx::query_scalar("SELECT state FROM site_health WHERE site_id = $1")
            .bind(site)
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten()
    };
    let crashes = async || -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM site_checks WHERE site_id = $1 AND source = 'event'",
        )
        .bind(site)
        .fetch_one(&pool)
        .await
        .unwrap_or(0)
    };
    while health().await.as_deref() != Some("up") {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let name = platform::infra::docker::container_name(site);
    let (mut detected, mut healthy) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = crashes().await;
        let killed = Instant::now();
        assert!(docker(&["kill", &name]), "docker kill");
        while crashes().await == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        detected.push(killed.elapsed());
        while health().await.as_deref() != Some("up") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        healthy.push(killed.elapsed());
    }
    stop.cancel();
    let _ = watching.await;

    // Docker's own restart policy, on a container of the same image.
    let template = p.template("cms-faults").ok_or("template")?;
    let gateway = runtime.ensure_network(NETWORK).await?.gateway;
    let ident = TenantIdent::for_site(Uuid::new_v4());
    let password = "b".repeat(40);
    let limits = &p.plan("business").ok_or("plan")?.limits;
    reconciler
        .tenants()
        .ensure(&ident, &password, limits)
        .await?;
    let database_url = reconciler
        .tenants()
        .url_for(&ident, &password, &gateway.to_string());
    let id = Uuid::new_v4();
    let spec = ContainerSpec {
        instance: reconciler.instance(),
        site_id: id,
        generation: 1,
        image: template.image.clone(),
        env: vec![
            format!("DATABASE_URL={database_url}"),
            "SITE_TOKEN=t".to_owned(),
            "WEBHOOK_SECRET=s".to_owned(),
            "PORT=8000".to_owned(),
            "SITE_TEST_FAULTS=1".to_owned(),
        ],
        port: 8000,
        data_path: "/data".to_owned(),
        limits: ResourceLimits::from_plan(limits),
    };
    let container = runtime.create_container(&spec, NETWORK).await?;
    assert!(docker(&[
        "update",
        "--restart",
        "on-failure:1000",
        &container
    ]));
    runtime.start(&container).await?;
    wait_answering(&runtime, id).await?;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(docker(&["kill", &container]));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarted_after_kill = runtime
        .container(id, NETWORK)
        .await?
        .is_some_and(|c| c.running);
    if !restarted_after_kill {
        runtime.start(&container).await?;
    }
    let mut docker_healthy = Vec::new();
    for _ in 0..RUNS {
        let address = wait_answering(&runtime, id).await?;
        tokio::time::sleep(Duration::from_secs(11)).await;
        let exited = Instant::now();
        post(address, "/__test/exit").await;
        wait_answering(&runtime, id).await?;
        docker_healthy.push(exited.elapsed());
    }
    runtime.remove_container(&container).await?;
    reconciler.tenants().drop(&ident).await?;

    println!("recovery after a crash, {RUNS} runs each:");
    println!(
        "  Slipway, docker kill -> crash recorded     {}",
        summary(detected)
    );
    println!(
        "  Slipway, docker kill -> healthy again      {}",
        summary(healthy.clone())
    );
    println!(
        "  Docker on-failure, exit -> healthy again   {}",
        summary(docker_healthy.clone())
    );
    println!("  (Docker restarted a container stopped by docker kill: {restarted_after_kill})");
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    println!(
        "  ratio of medians, Slipway / Docker         {:.2}",
        median(healthy) / median(docker_healthy)
    );

    sites::delete(&p, &owner, site, "bench-watched").await?;
    reconciler.run_until_idle(5).await?;
    bench.finish().await
}
