//! The health monitor against real containers: a crash is seen in the engine's events and
//! the site restarted; a hang is found by the probe; a site that crashes at every start
//! ends `crash_looping` after backoff waits; an outage longer than the alert delay mails
//! owners and admins (not viewers who opted out), once, and again when it is over; a site
//! out of memory is seen as such and restarted. Needs the Docker engine and the static
//! site binary (`make site-image`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::catalog::templates::Template;
use platform::config::{MonitorConfig, ProvisionConfig};
use platform::infra::docker::Runtime;
use platform::infra::tasks::Background;
use platform::monitor::Monitor;
use platform::provision::Reconciler;
use platform::sites::{self, NewSite};
use platform::tenancy::Membership;
use platform::{Config, Platform};
use sqlx::PgPool;
use uuid::Uuid;

const NETWORK: &str = "slipway-test";

/// A provisioned site served by a proxy and watched by a monitor, all under `background`.
struct World {
    platform: Platform,
    pool: PgPool,
    owner: Membership,
    site: Uuid,
    slug: String,
    proxy_port: u16,
    runtime: Arc<Runtime>,
    background: Background,
    client: reqwest::Client,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

/// The built-in CMS with its test-only fault switches on.
fn faulty_template() -> Template {
    let mut template = Template::builtin();
    template.name = "cms-faults".to_owned();
    template
        .env
        .insert("SITE_TEST_FAULTS".to_owned(), "1".to_owned());
    template
}

/// Fast settings: probes every second, restart waits from 1 s.
fn fast_monitor() -> MonitorConfig {
    MonitorConfig {
        interval_secs: 1,
        timeout_secs: 1,
        failures_to_down: 2,
        restart_backoff_secs: 1,
        restart_backoff_max_secs: 8,
        ..MonitorConfig::default()
    }
}

/// A test that fails stops the background work with it: otherwise its connections would
/// keep the test database's pool from closing, and the test would never end.
impl Drop for World {
    fn drop(&mut self) {
        self.background.token().cancel();
    }
}

impl World {
    async fn start(pool: PgPool, monitor: MonitorConfig) -> Self {
        let platform = test_support::test_platform(pool.clone())
            .with_templates(vec![Template::builtin(), faulty_template()])
            .with_monitor(monitor);
        let owner = test_support::owner_on_plan(&platform, "pro").await;
        let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/x86_64-unknown-linux-gnu/release/site");
        assert!(binary.exists(), "run `make site-image` first");
        let provision = ProvisionConfig {
            network: NETWORK.to_owned(),
            tenant_database: "slipway_test_tenants".to_owned(),
            site_binary: binary,
            health_timeout_secs: 30,
            ..ProvisionConfig::default()
        };
        let runtime = Arc::new(Runtime::new(&provision.docker_socket));
        let reconciler = Arc::new(
            Reconciler::new(platform.clone(), runtime.clone(), provision)
                .await
                .unwrap(),
        );
        let slug = unique("watched");
        let site = sites::create(
            &platform,
            &owner,
            &NewSite {
                name: "Watched".to_owned(),
                slug: slug.clone(),
                template: "cms-faults".to_owned(),
            },
        )
        .await
        .unwrap()
        .id;
        reconciler.run_until_idle(10).await.unwrap();
        let background = Background::new();
        platform.notifications.start(&background);
        background.spawn(
            "reconciler",
            reconciler.clone().run(background.token().cancelled_owned()),
        );
        let mut config = Config::default();
        config.proxy.listen = "127.0.0.1:0".parse().unwrap();
        config.usage.flush_interval_secs = 1;
        let proxy = server::start_proxy(&config, platform.clone(), &background)
            .await
            .unwrap();
        let monitor = Monitor::new(
            platform.clone(),
            runtime.clone(),
            server::proxy::Proxy::prober(server::proxy::Settings::from_config(&config.proxy)),
            NETWORK,
        )
        .await
        .unwrap();
        background.spawn("monitor", Arc::new(monitor).run(background.token()));
        let world = World {
            platform,
            pool,
            owner,
            site,
            slug,
            proxy_port: proxy.http.port(),
            runtime,
            background,
            client: test_support::client().build().expect("a client"),
        };
        world
            .wait_for("the first probe", Duration::from_secs(10), async || {
                world.health().await.as_deref() == Some("up")
            })
            .await;
        world
    }

    async fn request(&self, method: reqwest::Method, path: &str) -> Option<u16> {
        self.client
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.proxy_port),
            )
            .header("Host", format!("{}.localhost", self.slug))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    async fn get(&self, path: &str) -> Option<u16> {
        self.request(reqwest::Method::GET, path).await
    }

    async fn fault(&self, which: &str) {
        // The site may die before it answers: the request's fate does not matter.
        let _ = self
            .request(reqwest::Method::POST, &format!("/__test/{which}"))
            .await;
    }

    async fn health(&self) -> Option<String> {
        sqlx::query_scalar("SELECT state FROM site_health WHERE site_id = $1")
            .bind(self.site)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    async fn wait_for(&self, what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
        let started = Instant::now();
        while !done().await {
            assert!(
                started.elapsed() < within,
                "{what}: not within {within:?} (health {:?})",
                self.health().await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn docker(&self, args: &[&str]) {
        let status = tokio::process::Command::new("docker")
            .args(args)
            .arg(platform::infra::docker::container_name(self.site))
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "docker {args:?}");
    }

    /// (kind, resolved) of the site's incidents, oldest first.
    async fn incidents(&self) -> Vec<(String, bool)> {
        sqlx::query_as(
            "SELECT kind, resolved_at IS NOT NULL FROM incidents WHERE site_id = $1 ORDER BY opened_at",
        )
        .bind(self.site)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// (action, waited ms) of the monitor's restarts, oldest first.
    async fn restarts(&self) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT action, waited_ms FROM site_restarts WHERE site_id = $1 ORDER BY at")
            .bind(self.site)
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    /// Subjects of the alert mail sent to `email` (not the sign-up mail).
    async fn mail_to(&self, email: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT subject FROM mail_outbox
              WHERE to_address = $1 AND (subject LIKE '%is down' OR subject LIKE '%is back up'
                                         OR subject LIKE '%crash%')
              ORDER BY id",
        )
        .bind(email)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    async fn owner_email(&self) -> String {
        sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(self.owner.user_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// A new member of the site's organization with `role`: their id and email.
    async fn add_member(&self, role: &str) -> (Uuid, String) {
        let email = format!("{}@slipway.test", unique(role));
        let user: Uuid = sqlx::query_scalar(
            "INSERT INTO users (email, name, password_hash) VALUES ($1, 'M', 'x') RETURNING id",
        )
        .bind(&email)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, $3)",
        )
        .bind(self.owner.organization_id)
        .bind(user)
        .bind(role)
        .execute(&self.pool)
        .await
        .unwrap();
        (user, email)
    }

    async fn finish(self) {
        sites::delete(&self.platform, &self.owner, self.site, &self.slug)
            .await
            .unwrap();
        self.wait_for("the site's removal", Duration::from_secs(30), async || {
            let status: String = sqlx::query_scalar("SELECT status FROM sites WHERE id = $1")
                .bind(self.site)
                .fetch_one(&self.pool)
                .await
                .unwrap();
            status == "deleted"
        })
        .await;
        assert!(
            self.background
                .shutdown(Duration::from_secs(15))
                .await
                .is_empty()
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_killed_site_is_seen_at_once_restarted_and_served_again(pool: PgPool) {
    let world = World::start(pool, MonitorConfig::default()).await;
    assert_eq!(world.get("/").await, Some(200));

    let killed = Instant::now();
    world.docker(&["kill"]).await;
    world
        .wait_for("the crash seen in the events", Duration::from_secs(2), async || {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM site_checks WHERE site_id = $1 AND source = 'event' AND result = 'down')",
            )
            .bind(world.site)
            .fetch_one(&world.pool)
            .await
            .unwrap()
        })
        .await;
    let detected = killed.elapsed();
    world
        .wait_for("healthy again", Duration::from_secs(15), async || {
            world.health().await.as_deref() == Some("up")
        })
        .await;
    // The proxy follows the new container at once.
    world
        .wait_for("served again", Duration::from_secs(2), async || {
            world.get("/").await == Some(200)
        })
        .await;
    let healthy = killed.elapsed();
    println!("detected in {detected:?}, healthy after {healthy:?}");
    let restarts = world.restarts().await;
    assert_eq!(restarts.len(), 1, "{restarts:?}");
    assert_eq!(
        restarts[0].0, "started",
        "a killed container is started again"
    );
    assert!(restarts[0].1 < 1_000, "restarted at once: {restarts:?}");
    assert_eq!(world.incidents().await, [("down".to_owned(), true)]);
    // Down for seconds: no mail, neither now nor when the alert falls due.
    platform::workers::run_due(&world.platform).await.unwrap();
    let owner = world.owner_email().await;
    assert!(world.mail_to(&owner).await.is_empty());
    let reason: String = sqlx::query_scalar(
        "SELECT message FROM incident_events e JOIN incidents i ON i.id = e.incident_id
          WHERE i.site_id = $1 ORDER BY e.id LIMIT 1",
    )
    .bind(world.site)
    .fetch_one(&world.pool)
    .await
    .unwrap();
    assert!(reason.contains("killed"), "{reason}");
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_hung_site_is_found_by_its_probe_and_restarted(pool: PgPool) {
    let world = World::start(pool, fast_monitor()).await;
    world.fault("hang").await;
    // The process lives: only the probe can tell.
    world
        .wait_for("the hang seen", Duration::from_secs(10), async || {
            world.health().await.as_deref() == Some("down")
        })
        .await;
    let down_check: String = sqlx::query_scalar(
        "SELECT source FROM site_checks WHERE site_id = $1 AND result = 'down' ORDER BY at LIMIT 1",
    )
    .bind(world.site)
    .fetch_one(&world.pool)
    .await
    .unwrap();
    assert_eq!(down_check, "probe");
    // While down, visitors get the restarting page, not a hung connection.
    world
        .wait_for("healthy again", Duration::from_secs(20), async || {
            world.health().await.as_deref() == Some("up")
        })
        .await;
    // The proxy learns the new health through a notification: at once, but not within the
    // same instant as the row changes.
    world
        .wait_for("served again", Duration::from_secs(5), async || {
            world.get("/healthz").await == Some(200)
        })
        .await;
    let restarts = world.restarts().await;
    assert_eq!(
        restarts.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["restarted"]
    );
    assert_eq!(world.incidents().await, [("down".to_owned(), true)]);
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_site_crashing_at_every_start_ends_crash_looping_after_backoff(pool: PgPool) {
    let world = World::start(
        pool,
        MonitorConfig {
            crash_loop_restarts: 4,
            ..fast_monitor()
        },
    )
    .await;
    let operator: Uuid = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, is_operator)
         VALUES ('ops@slipway.test', 'Ops', 'x', true) RETURNING id",
    )
    .fetch_one(&world.pool)
    .await
    .unwrap();
    world.fault("crash-at-start").await;
    world
        .wait_for("crash looping", Duration::from_secs(40), async || {
            world.health().await.as_deref() == Some("crash_looping")
        })
        .await;
    // Restarted at once, then after 1 s, 2 s and 4 s (each wait from the previous restart).
    let restarts = world.restarts().await;
    let waits: Vec<i64> = restarts.iter().map(|r| r.1).collect();
    assert_eq!(waits.len(), 4, "{restarts:?}");
    for (waited, expected) in waits.iter().zip([0, 1_000, 2_000, 4_000]) {
        assert!(
            *waited >= expected - 50 && *waited < expected + 1_500,
            "waits {waits:?}, expected about {expected} ms"
        );
    }
    // No more restarts once crash looping.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.restarts().await.len(), 4);
    assert_eq!(world.get("/").await, Some(503));
    let incidents = world.incidents().await;
    assert!(
        incidents.contains(&("crash_looping".to_owned(), false))
            && incidents.contains(&("down".to_owned(), false)),
        "{incidents:?}"
    );
    platform::workers::run_due(&world.platform).await.unwrap();
    platform::workers::run_due(&world.platform).await.unwrap();
    let alerts = world.mail_to("ops@slipway.test").await;
    assert_eq!(alerts.len(), 1, "exactly one operator alert: {alerts:?}");
    assert!(alerts[0].contains("crash looping"), "{alerts:?}");
    let _ = operator;
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn down_past_the_alert_delay_mails_owners_and_admins_once_and_again_when_back(pool: PgPool) {
    let world = World::start(
        pool,
        MonitorConfig {
            alert_after_secs: 2,
            crash_loop_restarts: 20,
            ..fast_monitor()
        },
    )
    .await;
    let mut members = Vec::new();
    for (role, opted) in [
        ("admin", None),
        ("viewer", Some(false)),
        ("viewer", Some(true)),
    ] {
        let (user, email) = world.add_member(role).await;
        if let Some(enabled) = opted {
            let member = Membership {
                organization_id: world.owner.organization_id,
                user_id: user,
                role: platform::tenancy::Role::parse(role).unwrap(),
            };
            let chosen: &[platform::incidents::AlertKind] = if enabled {
                &[platform::incidents::AlertKind::Down]
            } else {
                &[]
            };
            platform::incidents::set_preferences(&world.platform, &member, chosen)
                .await
                .unwrap();
        }
        members.push(email);
    }
    // Down for about 6 s: every start fails until then (restarts at once, after 1, 2, 4 s).
    world.fault("crash-at-start?seconds=6").await;
    world
        .wait_for("down", Duration::from_secs(10), async || {
            world.health().await.as_deref() == Some("down")
        })
        .await;
    let owner = world.owner_email().await;
    world
        .wait_for("the alert", Duration::from_secs(15), async || {
            platform::workers::run_due(&world.platform).await.unwrap();
            !world.mail_to(&owner).await.is_empty()
        })
        .await;
    world
        .wait_for("back up", Duration::from_secs(30), async || {
            world.health().await.as_deref() == Some("up")
        })
        .await;
    platform::workers::run_due(&world.platform).await.unwrap();
    let expect_both = |mail: Vec<String>| {
        assert_eq!(mail.len(), 2, "{mail:?}");
        assert!(mail[0].ends_with("is down"), "{mail:?}");
        assert!(mail[1].ends_with("is back up"), "{mail:?}");
    };
    expect_both(world.mail_to(&owner).await);
    expect_both(world.mail_to(&members[0]).await);
    assert!(
        world.mail_to(&members[1]).await.is_empty(),
        "a viewer who opted out gets nothing"
    );
    expect_both(world.mail_to(&members[2]).await);
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_site_out_of_memory_is_seen_as_such_and_restarted(pool: PgPool) {
    let world = World::start(pool, fast_monitor()).await;
    world.fault("oom").await;
    world
        .wait_for(
            "the out-of-memory kill seen",
            Duration::from_secs(20),
            async || {
                sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM site_checks WHERE site_id = $1 AND source = 'event'
                                  AND detail LIKE '%out of memory%')",
            )
            .bind(world.site)
            .fetch_one(&world.pool)
            .await
            .unwrap()
            },
        )
        .await;
    world
        .wait_for("healthy again", Duration::from_secs(20), async || {
            world.health().await.as_deref() == Some("up")
        })
        .await;
    assert!(!world.restarts().await.is_empty());
    let summary: String =
        sqlx::query_scalar("SELECT summary FROM incidents WHERE site_id = $1 AND kind = 'down'")
            .bind(world.site)
            .fetch_one(&world.pool)
            .await
            .unwrap();
    assert!(
        summary.contains("out of memory") || summary.contains("killed"),
        "{summary}"
    );
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_pass_promtool_and_show_the_provisioning_histogram(pool: PgPool) {
    let world = World::start(pool, fast_monitor()).await;
    let (listener, base) = test_support::listen().await;
    let router = server::metrics_router(world.platform.clone(), Some("scrape-me".to_owned()));
    let scraped = tokio::spawn(async move { axum::serve(listener, router).await });
    let refused = world
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let text = world
        .client
        .get(format!("{base}/metrics"))
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "slipway_provisioning_duration_seconds_bucket{reason=\"create\",outcome=\"succeeded\",le=\"+Inf\"}"
        ),
        "{text}"
    );
    assert!(text.contains("slipway_monitor_checks_total{source=\"probe\",result=\"up\"}"));
    assert!(
        text.contains("slipway_incidents_open{kind=\"down\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("slipway_sites{status=\"active\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains(&world.site.to_string()),
        "no per-site series"
    );
    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) is installed by scripts/setup.sh");
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = promtool.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).await.unwrap();
    }
    let checked = promtool.wait_with_output().await.unwrap();
    println!(
        "promtool check metrics: {} {}{}",
        checked.status,
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(checked.status.success());
    scraped.abort();
    let _ = scraped.await;
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn logs_are_for_owners_admins_and_editors_of_the_site_organization(pool: PgPool) {
    use platform::kernel::Error;
    use platform::tenancy::Role;
    let world = World::start(pool, fast_monitor()).await;
    let as_role = |role| Membership {
        role,
        ..world.owner
    };
    let logs = |by: Membership, site: Uuid| {
        let platform = world.platform.clone();
        let runtime = world.runtime.clone();
        async move { platform::provision::container_logs(&platform, &runtime, &by, site, 50).await }
    };
    let editor = logs(as_role(Role::Editor), world.site).await.unwrap();
    assert!(
        editor.iter().any(|l| l.contains("listening on")),
        "{editor:?}"
    );
    assert!(matches!(
        logs(as_role(Role::Viewer), world.site).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        platform::provision::follow_logs(
            &world.platform,
            &world.runtime,
            &as_role(Role::Viewer),
            world.site
        )
        .await,
        Err(Error::Forbidden)
    ));
    // Another organization's owner: the site does not exist for them.
    let stranger = test_support::owner_on_plan(&world.platform, "pro").await;
    assert!(matches!(
        logs(stranger, world.site).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        platform::provision::follow_logs(&world.platform, &world.runtime, &stranger, world.site)
            .await,
        Err(Error::NotFound)
    ));
    // The live stream carries the last lines, then what the site writes from now on.
    let lines = platform::provision::follow_logs(
        &world.platform,
        &world.runtime,
        &as_role(Role::Admin),
        world.site,
    )
    .await
    .unwrap();
    let read = tokio::spawn(tokio::time::timeout(Duration::from_secs(10), async move {
        use futures_util::StreamExt as _;
        let mut lines = std::pin::pin!(lines);
        let mut read = Vec::new();
        while let Some(line) = lines.next().await {
            let done = line.contains("hanging, as asked");
            read.push(line);
            if done {
                break;
            }
        }
        read
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.fault("hang").await;
    let read = read.await.unwrap().expect("the new line arrives");
    assert!(read[0].contains("listening on"), "{read:?}");
    assert!(
        read.last().unwrap().contains("hanging, as asked"),
        "{read:?}"
    );
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_logs_endpoints_stream_and_download_for_editors_only(pool: PgPool) {
    // Taken first: waiting for it with the world running would stall the world's tasks.
    let _turn = test_support::Turn::take();
    let world = World::start(pool, fast_monitor()).await;
    // The dashboard's server, with this process's engine (as `slipway serve` has it).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (platform, runtime, stop) = (
        world.platform.clone(),
        world.runtime.clone(),
        world.background.token(),
    );
    world.background.spawn("dashboard", async move {
        server::serve(
            &Config::default(),
            platform,
            Some(runtime),
            listener,
            stop.cancelled_owned(),
        )
        .await
        .unwrap();
    });
    let (editor, _) = world.add_member("editor").await;
    let (viewer, _) = world.add_member("viewer").await;
    let stranger = test_support::owner_on_plan(&world.platform, "pro").await;
    let get = async |path: String, user: Option<Uuid>| {
        let mut request = world.client.get(format!("{base}{path}"));
        if let Some(user) = user {
            request = request.header(
                "Cookie",
                test_support::session_cookie(&world.platform, user).await,
            );
        }
        request.send().await.unwrap()
    };
    let site = world.site;
    for (path, user, status) in [
        (format!("/api/sites/{site}/logs.txt"), None, 401),
        (format!("/api/sites/{site}/logs.txt"), Some(viewer), 403),
        (format!("/api/sites/{site}/logs"), Some(viewer), 403),
        (
            format!("/api/sites/{site}/logs.txt"),
            Some(stranger.user_id),
            404,
        ),
        (
            format!("/api/sites/{site}/logs"),
            Some(stranger.user_id),
            404,
        ),
        ("/api/sites/not-a-uuid/logs".to_owned(), Some(editor), 404),
        (
            format!("/api/sites/{}/logs.txt", Uuid::new_v4()),
            Some(editor),
            404,
        ),
    ] {
        let response = get(path.clone(), user).await;
        assert_eq!(response.status().as_u16(), status, "{path} as {user:?}");
    }
    let download = get(format!("/api/sites/{site}/logs.txt"), Some(editor)).await;
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(
        download.headers()["content-disposition"],
        format!("attachment; filename=\"site-{site}.log\"").as_str()
    );
    assert!(download.text().await.unwrap().contains("listening on"));
    // The live stream: a `reset`, the last lines, then each line the site writes from now
    // on, one event each.
    let mut stream = get(format!("/api/sites/{site}/logs"), Some(editor)).await;
    assert_eq!(stream.status().as_u16(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.fault("hang").await;
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains("hanging, as asked") {
            let chunk = stream.chunk().await.unwrap().expect("the stream goes on");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no log line in the stream: {seen:?}"));
    assert!(seen.starts_with("retry: 1000\n"), "{seen:?}");
    let reset = seen.find("event: reset").expect("a reset first");
    let listening = seen.find("listening on").expect("the last lines");
    assert!(reset < listening && listening < seen.find("hanging, as asked").unwrap());
    drop(stream);
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_vanished_container_is_made_again_by_the_reconciler(pool: PgPool) {
    let world = World::start(pool, fast_monitor()).await;
    let before = world
        .runtime
        .container(world.site, NETWORK)
        .await
        .unwrap()
        .unwrap()
        .id;
    world.docker(&["rm", "-f"]).await;
    world
        .wait_for(
            "made again and healthy",
            Duration::from_secs(30),
            async || {
                world.health().await.as_deref() == Some("up")
                    && world
                        .runtime
                        .container(world.site, NETWORK)
                        .await
                        .unwrap()
                        .is_some_and(|c| c.running && c.id != before)
            },
        )
        .await;
    world
        .wait_for("served again", Duration::from_secs(5), async || {
            world.get("/").await == Some(200)
        })
        .await;
    let actions: Vec<String> = world.restarts().await.into_iter().map(|r| r.0).collect();
    assert_eq!(actions, ["recreate"]);
    assert_eq!(world.incidents().await, [("down".to_owned(), true)]);
    world.finish().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_site_failing_its_visitors_requests_gets_an_error_rate_incident_until_it_stops(
    pool: PgPool,
) {
    let world = World::start(
        pool,
        MonitorConfig {
            traffic_check_secs: 1,
            ..fast_monitor()
        },
    )
    .await;
    let error_rate = async || {
        sqlx::query_as::<_, (String, Option<chrono::DateTime<chrono::Utc>>)>(
            "SELECT summary, resolved_at FROM incidents WHERE site_id = $1 AND kind = 'error_rate'",
        )
        .bind(world.site)
        .fetch_all(&world.pool)
        .await
        .unwrap()
    };
    for _ in 0..30 {
        assert_eq!(world.get("/").await, Some(200));
    }
    for _ in 0..3 {
        assert_eq!(world.get("/__test/status/500").await, Some(500));
    }
    world
        .wait_for(
            "an error-rate incident",
            Duration::from_secs(15),
            async || error_rate().await.len() == 1,
        )
        .await;
    let incidents = error_rate().await;
    assert!(
        incidents[0].0.contains("failed with a server error"),
        "{incidents:?}"
    );
    // The dashboard's banner shows it.
    let banner = platform::incidents::open_for(&world.platform, &world.owner)
        .await
        .unwrap();
    assert!(
        banner
            .iter()
            .any(|i| i.kind == platform::incidents::IncidentKind::ErrorRate)
    );
    // Visitors' requests succeed again: the rate falls under 1% and it is resolved.
    for _ in 0..400 {
        assert_eq!(world.get("/healthz").await, Some(200));
    }
    world
        .wait_for(
            "the incident resolved",
            Duration::from_secs(15),
            async || {
                error_rate()
                    .await
                    .iter()
                    .all(|(_, resolved)| resolved.is_some())
            },
        )
        .await;
    assert_eq!(error_rate().await.len(), 1, "one incident while it lasted");
    world.finish().await;
}
