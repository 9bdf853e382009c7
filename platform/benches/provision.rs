//! Provisioning latency and idle density, against the real Docker engine and PostgreSQL.
//!
//! 1. Baseline, measured in the same run: `docker create` + `start` of the same image
//!    (through the same engine API) until its health path answers, with a tenant role and
//!    schema made beforehand (not timed). 20 runs.
//! 2. Slipway: `sites::create` -> the reconciler -> `active` (schema and role, image check,
//!    volume, hardened container, start, health). 20 sites, one after another.
//! 3. Density: `IDLE_SITES` sites (default 200) provisioned and left idle; memory per idle
//!    site (`docker stats`) and this process's own memory (it is the control plane here).
//! 4. The health monitor watching those idle sites for `WATCH_SECS` (default 400: longer
//!    than the sites' 5-to-6-minute database check, so a round of checks falls inside),
//!    probing every 15 s: this process's CPU and memory, and the tenant-database
//!    connections seen meanwhile (sampled every second: the most, and the mean).
//!
//! `make site-image && cargo bench -p platform --bench provision` (needs DATABASE_URL).
//! Everything it creates is deleted at the end.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::config::ProvisionConfig;
use platform::infra::docker::{ContainerSpec, ResourceLimits, Runtime};
use platform::infra::tenant_db::TenantIdent;
use platform::kernel::secrets::MasterKey;
use platform::provision::{Outcome, Reconciler};
use platform::sites::{self, NewSite};
use platform::tenancy::{Membership, Role};
use uuid::Uuid;

mod support;
use support::BenchDb;

const RUNS: usize = 20;
const NETWORK: &str = "slipway-bench";

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[(samples.len() * 95).div_ceil(100) - 1],
    )
}

/// This process's CPU time so far (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name (in parentheses), fields 14 and 15 are utime and stime.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Sum of the memory `docker stats` reports for the containers of `instance`, in MiB.
fn containers_memory_mib(instance: Uuid) -> (usize, f64) {
    let ids = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=slipway.instance={instance}"),
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut args = vec![
        "stats".to_owned(),
        "--no-stream".to_owned(),
        "--format".to_owned(),
        "{{.MemUsage}}".to_owned(),
    ];
    args.extend(ids.iter().cloned());
    let out = Command::new("docker")
        .args(&args)
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let total: f64 = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|line| line.split('/').next())
        .map(|used| {
            let used = used.trim();
            let (number, factor) = if let Some(n) = used.strip_suffix("GiB") {
                (n, 1024.0)
            } else if let Some(n) = used.strip_suffix("MiB") {
                (n, 1.0)
            } else if let Some(n) = used.strip_suffix("KiB") {
                (n, 1.0 / 1024.0)
            } else {
                (used.trim_end_matches('B'), 1.0 / 1024.0 / 1024.0)
            };
            number.trim().parse::<f64>().unwrap_or(0.0) * factor
        })
        .sum();
    (ids.len(), total)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let idle_sites: usize = std::env::var("IDLE_SITES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let bench = BenchDb::start("correct horse battery", 20).await?;
    let pool = bench.pool.clone();
    let p = bench
        .platform
        .clone()
        .with_master_key(MasterKey::parse(&MasterKey::generate())?);
    let signed_up = &bench.account;
    sqlx::query("UPDATE organizations SET plan_id = 'business' WHERE id = $1")
        .bind(signed_up.organization_id)
        .execute(&pool)
        .await?;
    let owner = Membership {
        organization_id: signed_up.organization_id,
        user_id: signed_up.user_id,
        role: Role::Owner,
    };
    let config = ProvisionConfig {
        network: NETWORK.to_owned(),
        tenant_database: "slipway_bench_tenants".to_owned(),
        workers: 4,
        ..ProvisionConfig::default()
    };
    let runtime = Arc::new(Runtime::new(&config.docker_socket));
    let reconciler = Arc::new(Reconciler::new(p.clone(), runtime.clone(), config.clone()).await?);
    let image = p.templates[0].image.clone();
    let gateway = runtime.ensure_network(NETWORK).await?.gateway;
    let limits = ResourceLimits::from_plan(&p.plan("business").ok_or("business plan")?.limits);

    // Warm-up: the image exists, the network exists, caches are warm.
    sites::create(
        &p,
        &owner,
        &NewSite {
            name: "warm".into(),
            slug: "bench-warm".into(),
            template: String::new(),
        },
    )
    .await?;
    reconciler.run_until_idle(5).await?;

    // 1. Baseline: the same image, created and started directly, until /api/health answers.
    let ident = TenantIdent::for_site(Uuid::new_v4());
    let password = "b".repeat(40);
    reconciler
        .tenants()
        .ensure(&ident, &password, &p.plan("business").ok_or("plan")?.limits)
        .await?;
    let database_url = reconciler
        .tenants()
        .url_for(&ident, &password, &gateway.to_string());
    let mut baseline = Vec::new();
    for _ in 0..RUNS {
        let id = Uuid::new_v4();
        let spec = ContainerSpec {
            instance: reconciler.instance(),
            site_id: id,
            generation: 1,
            image: image.clone(),
            env: vec![
                format!("DATABASE_URL={database_url}"),
                "SITE_TOKEN=t".to_owned(),
                "WEBHOOK_SECRET=s".to_owned(),
                "PORT=8000".to_owned(),
            ],
            port: 8000,
            data_path: "/data".to_owned(),
            limits,
        };
        let started = Instant::now();
        let container = runtime.create_container(&spec, NETWORK).await?;
        runtime.start(&container).await?;
        let address = loop {
            if let Some(ip) = runtime
                .container(id, NETWORK)
                .await?
                .and_then(|c| c.address)
            {
                break ip;
            }
        };
        loop {
            if let Ok(200) = platform::monitor::probe::http_status(
                (address, 8000).into(),
                "/api/health",
                Duration::from_secs(2),
            )
            .await
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        baseline.push(started.elapsed());
        runtime.remove_container(&container).await?;
    }
    reconciler.tenants().drop(&ident).await?;

    // 2. Slipway: create -> active, one site after another.
    let mut slipway = Vec::new();
    for i in 0..RUNS {
        let started = Instant::now();
        let site = sites::create(
            &p,
            &owner,
            &NewSite {
                name: format!("Bench {i}"),
                slug: format!("bench-{i}"),
                template: String::new(),
            },
        )
        .await?;
        let outcome = reconciler.reconcile_site(site.id).await?;
        slipway.push(started.elapsed());
        assert_eq!(outcome, Outcome::Done, "site {i}");
    }

    let (base_median, base_p95) = summary(baseline);
    let (median, p95) = summary(slipway);
    println!(
        "provisioning, create -> healthy, {RUNS} runs each (same image, same engine, same run):"
    );
    println!(
        "  baseline docker create+start until /api/health  median {base_median:>9.1?}  p95 {base_p95:>9.1?}"
    );
    println!(
        "  slipway sites::create -> active                 median {median:>9.1?}  p95 {p95:>9.1?}  ({:.2}x baseline median)",
        median.as_secs_f64() / base_median.as_secs_f64()
    );

    // 3. Density: IDLE_SITES sites in all, idle.
    let before_rss = rss_mib();
    let started = Instant::now();
    for i in RUNS..idle_sites.saturating_sub(1) {
        sites::create(
            &p,
            &owner,
            &NewSite {
                name: format!("Idle {i}"),
                slug: format!("bench-{i}"),
                template: String::new(),
            },
        )
        .await?;
    }
    let run = tokio::spawn(
        reconciler
            .clone()
            .run(tokio::time::sleep(Duration::from_secs(3600))),
    );
    loop {
        let active: i64 = sqlx::query_scalar("SELECT count(*) FROM sites WHERE status = 'active'")
            .fetch_one(&pool)
            .await?;
        let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM sites WHERE status = 'failed'")
            .fetch_one(&pool)
            .await?;
        if active as usize >= idle_sites || failed > 0 {
            println!(
                "  {active} active, {failed} failed after {:.0?}",
                started.elapsed()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    run.abort();
    // Let them settle (first health checks, idle database connections closed).
    tokio::time::sleep(Duration::from_secs(40)).await;
    let (count, total) = containers_memory_mib(reconciler.instance());
    let connections: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'site\\_%'")
            .fetch_one(&pool)
            .await?;
    println!("idle density: {count} sites running");
    println!(
        "  memory per idle site (docker stats)       {:>7.2} MiB  ({total:.0} MiB in all)",
        total / count.max(1) as f64
    );
    println!(
        "  tenant database connections held           {connections:>7} ({:.2} per site)",
        connections as f64 / count.max(1) as f64
    );
    println!(
        "  control plane (this process) RSS           {:>7.1} MiB  ({before_rss:.1} MiB before the idle sites)",
        rss_mib()
    );

    // 4. The health monitor over the idle sites, probing every 15 s: its own cost (this
    //    process's CPU time; nothing else runs here now) and the connections the sites hold
    //    (each checks its database every 5 to 6 minutes, on a connection it closes at once).
    let watch = Duration::from_secs(
        std::env::var("WATCH_SECS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(400),
    );
    let (stop, watching) = support::start_monitor(&p, runtime.clone(), NETWORK).await?;
    let rss_before_monitor = rss_mib();
    let cpu_before = cpu_seconds();
    let window = Instant::now();
    let mut most_connections = 0i64;
    let mut all_connections = 0i64;
    let mut samples = 0;
    while window.elapsed() < watch {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'site\\_%'",
        )
        .fetch_one(&pool)
        .await?;
        most_connections = most_connections.max(held);
        all_connections += held;
        samples += 1;
    }
    let cpu = cpu_seconds() - cpu_before;
    let elapsed = window.elapsed().as_secs_f64();
    let checks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM site_checks WHERE at > now() - make_interval(secs => $1)",
    )
    .bind(elapsed)
    .fetch_one(&pool)
    .await?;
    stop.cancel();
    let _ = watching.await;
    println!("health monitor over {count} idle sites, probing every 15 s, for {elapsed:.0} s:");
    println!("  checks recorded                            {checks:>7}");
    println!(
        "  control plane CPU                          {:>7.2} % of one core",
        cpu / elapsed * 100.0
    );
    println!(
        "  control plane RSS                          {:>7.1} MiB  ({rss_before_monitor:.1} MiB before the monitor)",
        rss_mib()
    );
    println!(
        "  tenant database connections, most seen     {most_connections:>7}  (mean {:.2}; {samples} samples, every second)",
        all_connections as f64 / f64::from(samples.max(1))
    );

    // Clean up: delete every site through Slipway (finalizers), then the databases.
    let all: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, slug FROM sites WHERE status <> 'deleted'")
            .fetch_all(&pool)
            .await?;
    for (id, slug) in all {
        sites::delete(&p, &owner, id, &slug).await?;
    }
    let cleanup = tokio::spawn(
        reconciler
            .clone()
            .run(tokio::time::sleep(Duration::from_secs(3600))),
    );
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sites WHERE status <> 'deleted'")
            .fetch_one(&pool)
            .await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cleanup.abort();
    bench.finish().await
}
