//! The tenant proxy against its baselines, measured in one run on the same machine:
//! `wrk` against one site container directly, through Slipway's proxy, and through nginx
//! (Debian's, as a keep-alive reverse proxy to the same container); then the route lookup
//! with 10, 1,000 and 10,000 routes.
//!
//! Run with `make bench-proxy` (it installs wrk and nginx when missing and builds the site
//! image), or `cargo bench -p server --bench proxy` with DATABASE_URL at the dev cluster.
//! Settings: `WRK_SECONDS` (default 10), `WRK_CONNECTIONS` (default 32), `ROUNDS` (default 2:
//! each target is measured this many times, interleaved, and the best run is kept).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::config::ProvisionConfig;
use platform::infra::docker::Runtime;
use platform::infra::tasks::Background;
use platform::kernel::secrets::MasterKey;
use platform::provision::Reconciler;
use platform::sites::{self, NewSite};
use platform::tenancy::{Membership, Role};
use platform::traffic::usage::Meters;

#[path = "../../platform/benches/support/mod.rs"]
mod support;
use support::{BenchDb, BenchResult};

const PATH: &str = "/robots.txt";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Wrk {
    requests_per_sec: f64,
    p99_ms: f64,
}

/// `wrk` against `url` with `host` as the Host header.
async fn wrk(url: &str, host: &str) -> BenchResult<Wrk> {
    let seconds = setting("WRK_SECONDS", 10);
    let connections = setting("WRK_CONNECTIONS", 32);
    let output = tokio::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Host: {host}"),
            url,
        ])
        .output()
        .await
        .map_err(|e| format!("running wrk (Debian package wrk): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let requests_per_sec = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(str::trim)
        .ok_or_else(|| format!("no 99% latency in wrk's output:\n{text}"))?;
    if text.contains("Non-2xx") {
        return Err(format!("wrk saw errors:\n{text}").into());
    }
    Ok(Wrk {
        requests_per_sec,
        p99_ms: duration_ms(p99)?,
    })
}

/// wrk's `1.23ms`, `456.00us`, `1.20s`.
fn duration_ms(text: &str) -> BenchResult<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return Err(format!("unknown duration {text}").into());
    };
    Ok(number.parse::<f64>()? * factor)
}

/// nginx as a keep-alive reverse proxy to `upstream`, listening on a free port.
struct Nginx {
    child: tokio::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(upstream: SocketAddr) -> BenchResult<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        let config = format!(
            "worker_processes 2;\n\
             pid {pid};\n\
             error_log {log} warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;\n\
               fastcgi_temp_path {root}/fcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;\n\
               upstream site {{ server {upstream}; keepalive 128; }}\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n\
                 location / {{\n\
                   proxy_pass http://site;\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Connection \"\";\n\
                   proxy_set_header Host $host;\n\
                   proxy_set_header X-Forwarded-For $remote_addr;\n\
                 }}\n\
               }}\n\
             }}\n",
            pid = root.join("nginx.pid").display(),
            log = root.join("error.log").display(),
            root = root.display(),
        );
        let file = root.join("nginx.conf");
        std::fs::write(&file, config)?;
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists() || which(p))
            .ok_or("nginx is not installed (Debian package nginx)")?;
        let child = tokio::process::Command::new(nginx)
            .args(["-c", &file.to_string_lossy(), "-g", "daemon off;"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("nginx did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).exists()))
}

/// Nanoseconds per lookup of `hosts` (all present) in a table of `routes` routes.
async fn lookup_cost(db: &BenchDb, organization: uuid::Uuid, routes: usize) -> BenchResult<f64> {
    sqlx::query("DELETE FROM sites WHERE slug LIKE 'r-%'")
        .execute(&db.pool)
        .await?;
    sqlx::query(
        "INSERT INTO sites (id, organization_id, name, slug, template, status, upstream,
                            db_password_sealed, api_token_sealed, webhook_secret_sealed)
         SELECT gen_random_uuid(), $1, 'r', 'r-' || n, 'cms', 'active', '10.0.0.1:8000',
                '\\x00', '\\x00', '\\x00'
           FROM generate_series(1, $2) AS n",
    )
    .bind(organization)
    .bind(i32::try_from(routes)?)
    .execute(&db.pool)
    .await?;
    let table =
        platform::traffic::routes::RouteTable::new("localhost", Arc::new(Meters::default()));
    table.reload(&db.platform).await?;
    let hosts: Vec<String> = (0..1000)
        .map(|i| format!("r-{}.localhost", 1 + (i * 7919) % routes))
        .collect();
    let rounds = 2_000;
    let started = Instant::now();
    let mut found = 0usize;
    for _ in 0..rounds {
        for host in &hosts {
            found += usize::from(std::hint::black_box(table.lookup(host)).is_some());
        }
    }
    let elapsed = started.elapsed();
    if found != rounds * hosts.len() {
        return Err("a route was missing".into());
    }
    Ok(elapsed.as_nanos() as f64 / found as f64)
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let db = BenchDb::start("correct horse battery", 16).await?;
    sqlx::query("UPDATE organizations SET plan_id = 'business'")
        .execute(&db.pool)
        .await?;
    let platform = db
        .platform
        .clone()
        .with_master_key(MasterKey::parse(&MasterKey::generate())?);
    let owner = Membership {
        organization_id: db.account.organization_id,
        user_id: db.account.user_id,
        role: Role::Owner,
    };
    // One real site, provisioned as customers' sites are.
    let config = ProvisionConfig {
        network: "slipway-bench".to_owned(),
        tenant_database: "slipway_bench_tenants".to_owned(),
        site_binary: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/x86_64-unknown-linux-gnu/release/site"),
        ..ProvisionConfig::default()
    };
    let reconciler = Reconciler::new(
        platform.clone(),
        Arc::new(Runtime::new(&config.docker_socket)),
        config,
    )
    .await?;
    let site = sites::create(
        &platform,
        &owner,
        &NewSite {
            name: "Bench".into(),
            slug: "bench".into(),
            template: String::new(),
        },
    )
    .await?;
    reconciler.run_until_idle(5).await?;
    let upstream: SocketAddr =
        sqlx::query_scalar::<_, String>("SELECT upstream FROM sites WHERE id = $1")
            .bind(site.id)
            .fetch_one(&db.pool)
            .await?
            .parse()?;

    let mut settings = platform::Config::default();
    settings.proxy.listen = "127.0.0.1:0".parse()?;
    let background = Background::new();
    let proxy = server::start_proxy(&settings, platform.clone(), &background).await?;
    let nginx = Nginx::start(upstream).await?;

    let targets = [
        (
            "direct to the container",
            format!("http://{upstream}{PATH}"),
        ),
        (
            "through Slipway's proxy",
            format!("http://{}{PATH}", proxy.http),
        ),
        (
            "through nginx",
            format!("http://127.0.0.1:{}{PATH}", nginx.port),
        ),
    ];
    // Warm up every path (connection pools, the container's first requests).
    for (_, url) in &targets {
        let _ = wrk_short(url).await;
    }
    let mut best: Vec<Option<Wrk>> = targets.iter().map(|_| None).collect();
    for _ in 0..setting("ROUNDS", 2) {
        for (i, (_, url)) in targets.iter().enumerate() {
            let run = wrk(url, "bench.localhost").await?;
            if best[i]
                .as_ref()
                .is_none_or(|b| run.requests_per_sec > b.requests_per_sec)
            {
                best[i] = Some(run);
            }
        }
    }
    let best: Vec<Wrk> = best.into_iter().flatten().collect();
    println!(
        "wrk -t2 -c{} -d{}s GET {PATH} (best of {} interleaved runs)",
        setting("WRK_CONNECTIONS", 32),
        setting("WRK_SECONDS", 10),
        setting("ROUNDS", 2)
    );
    println!("{:<26} {:>12} {:>10}", "", "requests/s", "p99");
    for ((name, _), run) in targets.iter().zip(&best) {
        println!(
            "{name:<26} {:>12.0} {:>8.2}ms",
            run.requests_per_sec, run.p99_ms
        );
    }
    println!(
        "Slipway / nginx throughput   {:.2}x",
        best[1].requests_per_sec / best[2].requests_per_sec
    );
    println!(
        "Slipway p99 over direct      {:+.2} ms   (nginx: {:+.2} ms)",
        best[1].p99_ms - best[0].p99_ms,
        best[2].p99_ms - best[0].p99_ms
    );

    println!("\nroute lookup (one hash lookup in the swapped-in table)");
    for routes in [10, 1_000, 10_000] {
        let ns = lookup_cost(&db, owner.organization_id, routes).await?;
        println!("{routes:>6} routes  {ns:>7.1} ns per lookup");
    }
    let started = Instant::now();
    let loaded = proxy.routes.reload(&platform).await?;
    println!(
        "reloading the whole table with {loaded} hosts: {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    drop(nginx.child);
    background
        .shutdown(std::time::Duration::from_secs(15))
        .await;
    sites::delete(&platform, &owner, site.id, &site.slug).await?;
    reconciler.run_until_idle(5).await?;
    db.finish().await
}

async fn wrk_short(url: &str) -> BenchResult<()> {
    tokio::process::Command::new("wrk")
        .args(["-t1", "-c8", "-d1s", "-H", "Host: bench.localhost", url])
        .output()
        .await?;
    Ok(())
}
