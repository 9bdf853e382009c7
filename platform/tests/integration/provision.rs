//! Provisioning against the real Docker engine and the real PostgreSQL cluster: sites
//! become containers with their own schema and role, survive a reconciler cut off after
//! any step, are isolated from each other, and leave nothing behind when deleted.
//!
//! Needs the static site binary (`make site-image` builds it); the built-in image is
//! built from it when missing. Every Docker object carries `slipway.site=<id>`, and each
//! test deletes its sites, so nothing outlives a passing test.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use platform::catalog::plans::{Catalog, default_plans};
use platform::config::ProvisionConfig;
use platform::infra::docker::{LABEL_SITE, Runtime};
use platform::infra::tenant_db::TenantIdent;
use platform::kernel::secrets::MasterKey;
use platform::provision::{Outcome, Reconciler, Step};
use platform::sites::{self, NewSite, SiteAction};
use platform::tenancy::{Membership, Role};
use platform::{Error, Platform};
use sqlx::PgPool;
use uuid::Uuid;

const NETWORK: &str = "slipway-test";
const TENANT_DB: &str = "slipway_test_tenants";

fn site_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-gnu/release/site")
}

fn config() -> ProvisionConfig {
    ProvisionConfig {
        network: NETWORK.to_owned(),
        tenant_database: TENANT_DB.to_owned(),
        site_binary: site_binary(),
        health_timeout_secs: 30,
        orphan_grace_secs: 0,
        ..ProvisionConfig::default()
    }
}

struct Env {
    platform: Platform,
    reconciler: Arc<Reconciler>,
    owner: Membership,
}

async fn env_with(pool: PgPool, plan: &str, config: ProvisionConfig, runtime: Runtime) -> Env {
    let platform = Platform::new(
        pool.clone(),
        Catalog::new(default_plans()).unwrap(),
        "https://hosting.test/".parse().unwrap(),
    )
    .with_master_key(MasterKey::parse(&MasterKey::generate()).unwrap());
    let owner = test_support::owner_on_plan(&platform, plan).await;
    assert!(
        site_binary().exists(),
        "the static site binary is missing: run `make site-image` first"
    );
    let reconciler = Reconciler::new(platform.clone(), Arc::new(runtime), config)
        .await
        .unwrap();
    Env {
        platform,
        reconciler: Arc::new(reconciler),
        owner,
    }
}

async fn env(pool: PgPool) -> Env {
    env_with(pool, "pro", config(), Runtime::new("/var/run/docker.sock")).await
}

fn form(slug: &str) -> NewSite {
    NewSite {
        name: format!("Site {slug}"),
        slug: slug.to_owned(),
        template: String::new(),
    }
}

/// A slug no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

async fn status(pool: &PgPool, id: Uuid) -> (String, Option<String>, Option<String>) {
    sqlx::query_as("SELECT status, status_reason, waiting_for FROM sites WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Ids of the Docker objects (`ps -a` or `volume ls`) labelled with the site's id.
async fn labelled(list: &[&str], site_id: Uuid) -> Vec<String> {
    let filter = format!("label={LABEL_SITE}={site_id}");
    let out = tokio::process::Command::new("docker")
        .args(list)
        .args(["-q", "--filter", &filter])
        .output()
        .await
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn labelled_containers(site_id: Uuid) -> Vec<String> {
    labelled(&["ps", "-a"], site_id).await
}

async fn labelled_volumes(site_id: Uuid) -> Vec<String> {
    labelled(&["volume", "ls"], site_id).await
}

async fn container_address(e: &Env, site_id: Uuid) -> std::net::SocketAddr {
    let c = e
        .reconciler
        .runtime()
        .container(site_id, NETWORK)
        .await
        .unwrap()
        .expect("a container");
    std::net::SocketAddr::new(c.address.expect("an address on the network"), 8000)
}

/// One HTTP/1.1 exchange with a site's container (no client library needed for this).
async fn http(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_with_head(address, method, path, headers, body).await;
    (status, body)
}

/// Status, head (status line and headers) and body of one exchange.
async fn http_with_head(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: site\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

async fn delete_and_check_nothing_is_left(e: &Env, site_id: Uuid) {
    let slug = sites::get(&e.platform, &e.owner, site_id)
        .await
        .unwrap()
        .slug;
    sites::delete(&e.platform, &e.owner, site_id, &slug)
        .await
        .unwrap();
    check_nothing_is_left(e, site_id).await;
}

/// After a deletion was asked for: the reconciler deletes the site and nothing is left.
async fn check_nothing_is_left(e: &Env, site_id: Uuid) {
    e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(status(&e.platform.db, site_id).await.0, "deleted");
    assert!(
        labelled_containers(site_id).await.is_empty(),
        "a container is left"
    );
    assert!(
        labelled_volumes(site_id).await.is_empty(),
        "a volume is left"
    );
    let (role, schema) = e
        .reconciler
        .tenants()
        .exists(&TenantIdent::for_site(site_id))
        .await
        .unwrap();
    assert!(!role && !schema, "role {role}, schema {schema} left");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_created_site_becomes_active_serves_posts_and_deleting_leaves_nothing(pool: PgPool) {
    let e = env(pool.clone()).await;
    let site = sites::create(&e.platform, &e.owner, &form(&unique("blog")))
        .await
        .unwrap();
    assert_eq!(site.status.as_str(), "pending");
    let outcomes = e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(outcomes, vec![(site.id, Outcome::Done)]);
    assert_eq!(
        status(&pool, site.id).await,
        ("active".to_owned(), None, None)
    );

    // Every step recorded, in order, with a duration.
    let deployments = sites::deployments(&e.platform, &e.owner, site.id, None, 10)
        .await
        .unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].status.as_str(), "succeeded");
    let steps: Vec<&str> = deployments[0]
        .steps
        .iter()
        .map(|s| s.step.as_str())
        .collect();
    assert_eq!(steps, ["database", "image", "container", "start", "health"]);
    assert!(
        deployments[0]
            .steps
            .iter()
            .all(|s| s.status.as_str() == "succeeded" && s.duration_ms.is_some())
    );

    let address = container_address(&e, site.id).await;
    let (code, body) = http(address, "GET", "/api/health", &[], "").await;
    assert_eq!(
        (code, body.contains("\"database\":\"up\"")),
        (200, true),
        "{body}"
    );

    let credentials = sites::credentials(&e.platform, &e.owner, site.id)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", credentials.api_token);
    let post = r##"{"slug":"hello","title":"Hello <world>","body":"# Hi\n\nFirst *post*."}"##;
    let (code, _) = http(
        address,
        "POST",
        "/api/posts",
        &[("Content-Type", "application/json")],
        post,
    )
    .await;
    assert_eq!(code, 401, "no token, no post");
    let (code, body) = http(
        address,
        "POST",
        "/api/posts",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        post,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    // PostgreSQL's text holds no NUL: the client is told so, the site does not answer 500.
    let (code, body) = http(
        address,
        "POST",
        "/api/posts",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        r#"{"slug":"nul","title":"a\u0000b","body":"x"}"#,
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("NUL"), "{body}");
    assert_eq!(
        http(address, "GET", "/api/posts/a%00b", &[], "").await.0,
        422
    );
    let (code, page) = http(address, "GET", "/posts/hello", &[], "").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("<h1>Hi</h1>") && page.contains("<em>post</em>"),
        "{page}"
    );
    assert!(
        page.contains("Hello &lt;world&gt;"),
        "title escaped: {page}"
    );
    let (_, index) = http(address, "GET", "/", &[], "").await;
    assert!(index.contains("href=\"/posts/hello\""), "{index}");

    // Update and delete through the API.
    let json = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    let (code, body) = http(
        address,
        "PUT",
        "/api/posts/hello",
        &json,
        r#"{"title":"Hello again","body":"Edited."}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        http(address, "GET", "/posts/hello", &[], "")
            .await
            .1
            .contains("Edited.")
    );
    let (code, _) = http(
        address,
        "POST",
        "/api/posts",
        &json,
        r#"{"slug":"bye","title":"Bye","body":"x"}"#,
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        http(address, "DELETE", "/api/posts/bye", &json, "").await.0,
        204
    );
    assert_eq!(http(address, "GET", "/posts/bye", &[], "").await.0, 404);

    // The content-sync webhook: signed with the site's secret, or refused.
    let push = r###"{"posts":[{"slug":"synced","title":"From the repository","body":"## Synced"}],"removed":["hello"]}"###;
    let signature = {
        use hmac::{Hmac, Mac};
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(credentials.webhook_secret.as_bytes()).unwrap();
        mac.update(push.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let (code, _) = http(
        address,
        "POST",
        "/api/sync-content",
        &[("X-Hub-Signature-256", "sha256=00")],
        push,
    )
    .await;
    assert_eq!(code, 401, "a wrong signature changes nothing");
    let (code, body) = http(
        address,
        "POST",
        "/api/sync-content",
        &[("X-Hub-Signature-256", &signature)],
        push,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        http(address, "GET", "/posts/synced", &[], "")
            .await
            .1
            .contains("<h2>Synced</h2>")
    );
    assert_eq!(
        http(address, "GET", "/posts/hello", &[], "").await.0,
        404,
        "removed by the push"
    );

    // The data lives in the site's own schema.
    let ident = TenantIdent::for_site(site.id);
    let in_schema: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".posts",
        ident.as_str()
    ))
    .fetch_one(&e.reconciler.tenants().pool)
    .await
    .unwrap();
    assert_eq!(in_schema, 1, "only the synced post is left");

    delete_and_check_nothing_is_left(&e, site.id).await;
}

/// Cut the reconciler off right after each step in turn (the task is aborted, as in a
/// crash), then run it again: the same end state, and exactly one of everything.
#[sqlx::test(migrations = "../migrations")]
async fn a_reconciler_cut_off_after_any_step_converges_to_exactly_one_of_everything(pool: PgPool) {
    let e = env(pool.clone()).await;
    for step in Step::PROVISION {
        let site = sites::create(&e.platform, &e.owner, &form(&unique("crash")))
            .await
            .unwrap();
        e.reconciler.halt_after(Some(step));
        let task = tokio::spawn({
            let reconciler = e.reconciler.clone();
            async move { reconciler.reconcile_site(site.id).await }
        });
        // Wait until the step is recorded as done, then kill the pass.
        let mut done = false;
        for _ in 0..600 {
            done = sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM deployment_steps st JOIN deployments d ON d.id = st.deployment_id
                  WHERE d.site_id = $1 AND st.step = $2 AND st.status = 'succeeded')",
            )
            .bind(site.id)
            .bind(step.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(done, "step {} never finished", step.as_str());
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        e.reconciler.halt_after(None);
        if step == Step::Container {
            // Killed between "container created" and "id recorded": Docker has the
            // container, the row does not know it.
            sqlx::query("UPDATE sites SET container_id = NULL WHERE id = $1")
                .bind(site.id)
                .execute(&pool)
                .await
                .unwrap();
        }

        assert_eq!(
            status(&pool, site.id).await.0,
            "provisioning",
            "cut off after {}",
            step.as_str()
        );
        e.reconciler.run_until_idle(10).await.unwrap();
        assert_eq!(
            status(&pool, site.id).await.0,
            "active",
            "after a cut after {}",
            step.as_str()
        );
        let containers = labelled_containers(site.id).await;
        assert_eq!(containers.len(), 1, "after {}", step.as_str());
        // What a pass adopted is recorded as if it had made it (storage sampling and the
        // limits and bills fed by it go by this id).
        let recorded: Option<String> =
            sqlx::query_scalar("SELECT container_id FROM sites WHERE id = $1")
                .bind(site.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(
            recorded
                .as_deref()
                .is_some_and(|id| id.starts_with(&containers[0])),
            "after {}: recorded {recorded:?}, running {containers:?}",
            step.as_str()
        );
        assert_eq!(
            labelled_volumes(site.id).await.len(),
            1,
            "after {}",
            step.as_str()
        );
        let roles: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1")
            .bind(TenantIdent::for_site(site.id).as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
        let schemas: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
                .bind(TenantIdent::for_site(site.id).as_str())
                .fetch_one(&e.reconciler.tenants().pool)
                .await
                .unwrap();
        assert_eq!((roles, schemas), (1, 1), "after {}", step.as_str());
        let address = container_address(&e, site.id).await;
        assert_eq!(http(address, "GET", "/api/health", &[], "").await.0, 200);
        // The interrupted step is marked as such in the history, not left "running".
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deployment_steps st JOIN deployments d ON d.id = st.deployment_id
              WHERE d.site_id = $1 AND st.status = 'running'",
        )
        .bind(site.id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(running, 0);
        println!(
            "cut off after {:>9}: converged, 1 container, 1 volume, 1 role, 1 schema",
            step.as_str()
        );
    }

    // Deletion cut off after each of its steps also finishes with nothing left.
    let remaining: Vec<(Uuid, String)> = sites::list(&e.platform, &e.owner)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.slug))
        .collect();
    for ((site_id, slug), step) in remaining.iter().zip(Step::DELETE.iter().cycle()) {
        sites::delete(&e.platform, &e.owner, *site_id, slug)
            .await
            .unwrap();
        e.reconciler.halt_after(Some(*step));
        let task = tokio::spawn({
            let reconciler = e.reconciler.clone();
            let id = *site_id;
            async move { reconciler.reconcile_site(id).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..200 {
            let finished: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM deployment_steps st JOIN deployments d ON d.id = st.deployment_id
                  WHERE d.site_id = $1 AND st.step = $2 AND st.status = 'succeeded')",
            )
            .bind(site_id)
            .bind(step.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
            if finished {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        task.abort();
        let _ = task.await;
        e.reconciler.halt_after(None);
        e.reconciler.run_until_idle(10).await.unwrap();
        assert_eq!(status(&pool, *site_id).await.0, "deleted");
        assert!(labelled_containers(*site_id).await.is_empty());
        assert!(labelled_volumes(*site_id).await.is_empty());
        let (role, schema) = e
            .reconciler
            .tenants()
            .exists(&TenantIdent::for_site(*site_id))
            .await
            .unwrap();
        assert!(!role && !schema);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn sites_are_isolated_from_each_other_the_host_and_the_control_plane(pool: PgPool) {
    let e = env(pool.clone()).await;
    let a = sites::create(&e.platform, &e.owner, &form(&unique("alpha")))
        .await
        .unwrap();
    let b = sites::create(&e.platform, &e.owner, &form(&unique("bravo")))
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(status(&pool, a.id).await, ("active".to_owned(), None, None));
    assert_eq!(status(&pool, b.id).await, ("active".to_owned(), None, None));
    let (ident_a, ident_b) = (TenantIdent::for_site(a.id), TenantIdent::for_site(b.id));

    // Site A's role cannot read site B's schema (or create anything outside its own).
    let tenants = e.reconciler.tenants();
    let mut as_a = tenants.pool.acquire().await.unwrap();
    sqlx::query(&format!("SET ROLE \"{}\"", ident_a.as_str()))
        .execute(&mut *as_a)
        .await
        .unwrap();
    let own: i64 = sqlx::query_scalar("SELECT count(*) FROM posts")
        .fetch_one(&mut *as_a)
        .await
        .unwrap();
    assert_eq!(own, 0, "A reads its own schema through its search_path");
    let other = sqlx::query(&format!("SELECT * FROM \"{}\".posts", ident_b.as_str()))
        .execute(&mut *as_a)
        .await
        .unwrap_err();
    assert!(other.to_string().contains("permission denied"), "{other}");
    let public = sqlx::query("CREATE TABLE public.sneaky (x int)")
        .execute(&mut *as_a)
        .await
        .unwrap_err();
    assert!(public.to_string().contains("permission denied"), "{public}");
    sqlx::query("RESET ROLE").execute(&mut *as_a).await.unwrap();
    drop(as_a);

    // The container: no capabilities, no new privileges, read-only root, limits, no host
    // mounts, not privileged, no published ports.
    let runtime = e.reconciler.runtime();
    let inspect = runtime
        .inspect(&platform::infra::docker::container_name(a.id))
        .await
        .unwrap();
    let host = inspect.host_config.clone().unwrap();
    let pro = e.platform.plan("pro").unwrap().limits.clone();
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(host.cap_add.unwrap_or_default(), Vec::<String>::new());
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges:true".to_owned()])
    );
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.memory, Some(i64::from(pro.memory_mb) * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(i64::from(pro.cpu_millis) * 1_000_000));
    assert_eq!(host.pids_limit, Some(i64::from(pro.pids)));
    assert!(host.binds.unwrap_or_default().is_empty(), "no bind mounts");
    assert!(
        host.port_bindings.unwrap_or_default().is_empty(),
        "no published ports"
    );
    let mounts = inspect.mounts.unwrap_or_default();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(
        mounts[0].name.as_deref(),
        Some(platform::infra::docker::volume_name(a.id).as_str())
    );
    assert!(
        mounts
            .iter()
            .all(|m| m.source.as_deref() != Some("/var/run/docker.sock"))
    );

    // From inside A: B's container, the Docker API and the control plane's role are out
    // of reach; A's own database is not (the probe works).
    let container_a = platform::infra::docker::container_name(a.id);
    let b_address = container_address(&e, b.id).await;
    let gateway = runtime.ensure_network(NETWORK).await.unwrap().gateway;
    let probe = |args: Vec<String>| {
        let container_a = container_a.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            runtime.exec(&container_a, &args).await.unwrap()
        }
    };
    let (code, output) = probe(vec![
        "/site".into(),
        "probe".into(),
        "tcp".into(),
        b_address.to_string(),
    ])
    .await;
    assert_ne!(code, 0, "A reached B: {output}");
    let (code, output) = probe(vec![
        "/site".into(),
        "probe".into(),
        "tcp".into(),
        format!("{gateway}:2375"),
    ])
    .await;
    assert_ne!(code, 0, "A reached a Docker TCP API: {output}");
    let (code, output) = probe(vec![
        "/site".into(),
        "probe".into(),
        "unix".into(),
        "/var/run/docker.sock".into(),
    ])
    .await;
    assert_ne!(code, 0, "A reached the Docker socket: {output}");
    assert!(output.contains("unreachable"), "{output}");
    let port = tenants.port;
    let (code, output) = probe(vec![
        "/site".into(),
        "probe".into(),
        "postgres".into(),
        format!("postgres://slipway@{gateway}:{port}/slipway"),
    ])
    .await;
    assert_ne!(code, 0, "A connected as the control plane's role: {output}");
    assert!(output.contains("refused"), "{output}");
    let (code, output) = probe(vec![
        "/site".into(),
        "probe".into(),
        "postgres".into(),
        format!("postgres://postgres@{gateway}:{port}/postgres"),
    ])
    .await;
    assert_ne!(code, 0, "A connected as the superuser: {output}");
    // Positive control: the same probe with A's own credentials connects.
    let env_a: HashMap<String, String> = inspect
        .config
        .and_then(|c| c.env)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let (code, output) = probe(vec![
        "/site".into(),
        "probe".into(),
        "postgres".into(),
        env_a["DATABASE_URL"].clone(),
    ])
    .await;
    assert_eq!(code, 0, "A cannot reach its own database: {output}");

    delete_and_check_nothing_is_left(&e, a.id).await;
    delete_and_check_nothing_is_left(&e, b.id).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_input_is_refused_or_stored_verbatim_never_interpreted(pool: PgPool) {
    let e = env_with(
        pool.clone(),
        "starter",
        config(),
        Runtime::new("/var/run/docker.sock"),
    )
    .await;
    let invalid = |r: platform::Result<sites::SiteSummary>, field: &str| match r {
        Err(Error::Invalid { field: f, message }) => {
            assert_eq!(f, field, "{message}");
            message
        }
        other => panic!("expected invalid {field}, got {other:?}"),
    };
    for slug in [
        "ab",
        "-lead",
        "trail-",
        "UPPER",
        "www",
        "admin",
        "a;rm -rf /",
        "$(reboot)",
        "x\ny",
        "nul\0byte",
        "../etc/passwd",
        &"x".repeat(10_000),
    ] {
        let f = NewSite {
            name: "Valid name".to_owned(),
            ..form(slug)
        };
        invalid(sites::create(&e.platform, &e.owner, &f).await, "slug");
    }
    for name in ["", "   ", "line\nbreak", "nul\0byte", &"n".repeat(10_000)] {
        let mut f = form(&unique("name"));
        f.name = name.to_owned();
        invalid(sites::create(&e.platform, &e.owner, &f).await, "name");
    }
    let mut f = form(&unique("tpl"));
    f.template = "../../etc".to_owned();
    invalid(sites::create(&e.platform, &e.owner, &f).await, "template");

    // A viewer cannot create; an admin of another organization cannot see or act on it.
    let viewer = Membership {
        role: Role::Viewer,
        ..e.owner
    };
    assert!(matches!(
        sites::create(&e.platform, &viewer, &form(&unique("view"))).await,
        Err(Error::Forbidden)
    ));

    // Shell and SQL metacharacters in the name are text: stored and passed on verbatim.
    let weird = "$(touch /tmp/pwned); DROP TABLE sites; -- ../../ `id` 'quote\"";
    let slug = unique("weird");
    let site = sites::create(
        &e.platform,
        &e.owner,
        &NewSite {
            name: weird.to_owned(),
            slug: slug.clone(),
            template: String::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(site.name, weird);
    // Starter allows one site: the next is refused with an upgrade message, and so is a
    // duplicate slug (checked after the limit here, so test it on a bigger plan below).
    match sites::create(&e.platform, &e.owner, &form(&unique("more"))).await {
        Err(Error::LimitReached(message)) => assert!(message.contains("Upgrade"), "{message}"),
        other => panic!("expected the site limit, got {other:?}"),
    }
    e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(status(&pool, site.id).await.0, "active");
    let inspect = e
        .reconciler
        .runtime()
        .inspect(&platform::infra::docker::container_name(site.id))
        .await
        .unwrap();
    let env = inspect.config.unwrap().env.unwrap();
    assert!(env.contains(&format!("SITE_NAME={weird}")), "{env:?}");
    let address = container_address(&e, site.id).await;
    let (_, index) = http(address, "GET", "/", &[], "").await;
    assert!(
        index.contains("$(touch /tmp/pwned); DROP TABLE sites; -- ../../ `id` &#39;quote&quot;"),
        "{index}"
    );
    let sites_left: i64 = sqlx::query_scalar("SELECT count(*) FROM sites")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sites_left, 1);

    // Duplicate slug (another organization on a bigger plan tries the same one).
    let other = env_with(
        pool.clone(),
        "pro",
        config(),
        Runtime::new("/var/run/docker.sock"),
    )
    .await;
    let message = invalid(
        sites::create(&other.platform, &other.owner, &form(&slug)).await,
        "slug",
    );
    assert!(message.contains("taken"), "{message}");
    // Cross-tenant: the other organization's owner sees nothing of this site.
    assert!(matches!(
        sites::get(&other.platform, &other.owner, site.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        sites::delete(&other.platform, &other.owner, site.id, &site.slug).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        sites::credentials(&other.platform, &other.owner, site.id).await,
        Err(Error::NotFound)
    ));
    assert!(
        sites::deployments(&other.platform, &other.owner, site.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    delete_and_check_nothing_is_left(&e, site.id).await;
    // Deleted: the slug is free again.
    let again = sites::create(&other.platform, &other.owner, &form(&slug))
        .await
        .unwrap();
    sites::delete(&other.platform, &other.owner, again.id, &again.slug)
        .await
        .unwrap();
    other.reconciler.run_until_idle(10).await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn lifecycle_stop_start_restart_and_plan_change_in_place(pool: PgPool) {
    let e = env(pool.clone()).await;
    let site = sites::create(&e.platform, &e.owner, &form(&unique("life")))
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    let runtime = e.reconciler.runtime();
    let first = runtime.container(site.id, NETWORK).await.unwrap().unwrap();

    sites::request(&e.platform, &e.owner, site.id, SiteAction::Stop)
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(status(&pool, site.id).await.0, "stopped");
    assert!(
        !runtime
            .container(site.id, NETWORK)
            .await
            .unwrap()
            .unwrap()
            .running
    );
    let restart = sites::request(&e.platform, &e.owner, site.id, SiteAction::Restart).await;
    assert!(matches!(restart, Err(Error::Conflict(_))), "{restart:?}");

    sites::request(&e.platform, &e.owner, site.id, SiteAction::Start)
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(status(&pool, site.id).await.0, "active");
    let started = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    assert!(started.running);
    assert_eq!(started.id, first.id, "start reuses the container");

    sites::request(&e.platform, &e.owner, site.id, SiteAction::Restart)
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    let restarted = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    assert_eq!(restarted.id, first.id);
    assert!(
        restarted.started_at > started.started_at,
        "restart restarts"
    );

    // Plan change: new limits on the same, still running container.
    sqlx::query("UPDATE organizations SET plan_id = 'business' WHERE id = $1")
        .bind(e.owner.organization_id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        sites::apply_plan(&e.platform, e.owner.organization_id)
            .await
            .unwrap(),
        1
    );
    e.reconciler.run_until_idle(10).await.unwrap();
    let upgraded = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    let business = &e.platform.plan("business").unwrap().limits;
    assert_eq!(upgraded.id, first.id, "not recreated");
    assert_eq!(upgraded.started_at, restarted.started_at, "not restarted");
    assert_eq!(
        upgraded.limits.memory_bytes,
        i64::from(business.memory_mb) * 1024 * 1024
    );
    assert_eq!(upgraded.limits.pids, i64::from(business.pids));
    let limit: i32 = sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
        .bind(TenantIdent::for_site(site.id).as_str())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(limit, i32::try_from(business.db_connections).unwrap());
    let history = sites::deployments(&e.platform, &e.owner, site.id, None, 10)
        .await
        .unwrap();
    let reasons: Vec<&str> = history.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons, ["plan", "restart", "start", "stop", "create"]);

    // Drift: the container vanishes behind Slipway's back -> the resync makes a new one.
    runtime.remove_container(&first.id).await.unwrap();
    assert_eq!(
        e.reconciler.reconcile_site(site.id).await.unwrap(),
        Outcome::Done
    );
    let replaced = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    assert_ne!(replaced.id, first.id);
    assert!(replaced.running);
    assert_eq!(status(&pool, site.id).await.0, "active");
    assert_eq!(
        sites::deployments(&e.platform, &e.owner, site.id, None, 1)
            .await
            .unwrap()[0]
            .reason
            .as_str(),
        "repair"
    );

    // An orphan: a labelled container of a site that does not exist goes away.
    let ghost = Uuid::new_v4();
    let spec = platform::infra::docker::ContainerSpec {
        instance: e.reconciler.instance(),
        site_id: ghost,
        generation: 1,
        image: "slipway-site:latest".to_owned(),
        env: vec![],
        port: 8000,
        data_path: "/data".to_owned(),
        limits: platform::infra::docker::ResourceLimits {
            memory_bytes: 64 << 20,
            nano_cpus: 100_000_000,
            pids: 16,
        },
    };
    runtime
        .ensure_volume(e.reconciler.instance(), ghost)
        .await
        .unwrap();
    runtime.create_container(&spec, NETWORK).await.unwrap();
    assert_eq!(labelled_containers(ghost).await.len(), 1);
    assert!(e.reconciler.remove_orphans().await.unwrap() >= 1);
    assert!(labelled_containers(ghost).await.is_empty());
    assert!(labelled_volumes(ghost).await.is_empty());

    delete_and_check_nothing_is_left(&e, site.id).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_site_waits_for_docker_and_converges_when_it_returns(pool: PgPool) {
    let down = env_with(
        pool.clone(),
        "pro",
        config(),
        Runtime::new("/nonexistent/docker.sock"),
    )
    .await;
    let site = sites::create(&down.platform, &down.owner, &form(&unique("wait")))
        .await
        .unwrap();
    let outcome = down.reconciler.reconcile_site(site.id).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Waiting(ref w) if w.starts_with("Docker engine")),
        "{outcome:?}"
    );
    let (state, reason, waiting) = status(&pool, site.id).await;
    assert_eq!(
        (state.as_str(), waiting.as_deref()),
        ("provisioning", Some("Docker engine"))
    );
    assert!(reason.unwrap().contains("no socket"));
    // The database step was done; nothing is lost or repeated harmfully.
    let steps = sites::deployments(&down.platform, &down.owner, site.id, None, 5)
        .await
        .unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].steps[0].status.as_str(), "succeeded");

    // The engine is back (a reconciler with the right socket, same database and key).
    let up = Reconciler::new(
        down.platform.clone(),
        Arc::new(Runtime::new("/var/run/docker.sock")),
        config(),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE sites SET next_attempt_at = now() WHERE id = $1")
        .bind(site.id)
        .execute(&pool)
        .await
        .unwrap();
    up.run_until_idle(10).await.unwrap();
    assert_eq!(
        status(&pool, site.id).await,
        ("active".to_owned(), None, None)
    );
    let history = sites::deployments(&down.platform, &down.owner, site.id, None, 5)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "the same deployment resumed");
    assert_eq!(history[0].status.as_str(), "succeeded");
    let e = Env {
        reconciler: Arc::new(up),
        ..down
    };
    delete_and_check_nothing_is_left(&e, site.id).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_site_that_never_gets_healthy_fails_with_its_logs_and_is_retried_later(pool: PgPool) {
    let mut template = platform::catalog::templates::Template::builtin();
    template.name = "broken".to_owned();
    template.health_path = "/no-such-health".to_owned();
    let config = ProvisionConfig {
        health_timeout_secs: 3,
        ..config()
    };
    let mut e = env_with(
        pool.clone(),
        "pro",
        config.clone(),
        Runtime::new("/var/run/docker.sock"),
    )
    .await;
    e.platform = e.platform.clone().with_templates(vec![template]);
    e.reconciler = Arc::new(
        Reconciler::new(
            e.platform.clone(),
            Arc::new(Runtime::new("/var/run/docker.sock")),
            config,
        )
        .await
        .unwrap(),
    );
    let site = sites::create(&e.platform, &e.owner, &form(&unique("sick")))
        .await
        .unwrap();
    let outcome = e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(outcome.len(), 1, "not retried at once: {outcome:?}");
    let (state, reason, _) = status(&pool, site.id).await;
    let reason = reason.unwrap();
    assert_eq!(state, "failed");
    assert!(
        reason.contains("not healthy within 3 s (/no-such-health answered 404)"),
        "{reason}"
    );
    assert!(
        reason.contains("last log lines:") && reason.contains("listening on"),
        "{reason}"
    );
    let (failures, retry_in): (i32, f64) = sqlx::query_as(
        "SELECT failures, EXTRACT(EPOCH FROM next_attempt_at - now())::float8 FROM sites WHERE id = $1",
    )
    .bind(site.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(failures, 1);
    assert!(retry_in > 0.5, "backoff before the retry: {retry_in}");
    let history = sites::deployments(&e.platform, &e.owner, site.id, None, 5)
        .await
        .unwrap();
    assert_eq!(history[0].status.as_str(), "failed");
    assert_eq!(history[0].steps.last().unwrap().step.as_str(), "health");

    // After the backoff the retry is a new deployment; still failing, the backoff grows.
    sqlx::query("UPDATE sites SET next_attempt_at = now() WHERE id = $1")
        .bind(site.id)
        .execute(&pool)
        .await
        .unwrap();
    e.reconciler.run_until_idle(1).await.unwrap();
    let history = sites::deployments(&e.platform, &e.owner, site.id, None, 5)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].reason.as_str(), "retry");
    let failures: i32 = sqlx::query_scalar("SELECT failures FROM sites WHERE id = $1")
        .bind(site.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failures, 2);
    assert_eq!(
        labelled_containers(site.id).await.len(),
        1,
        "the retry reuses the container"
    );

    delete_and_check_nothing_is_left(&e, site.id).await;
}

/// Two reconcilers (as in two server processes) on the same sites at once: each site is
/// worked on by one of them at a time, and each ends with exactly one container.
#[sqlx::test(migrations = "../migrations")]
async fn two_reconcilers_at_once_make_one_container_per_site(pool: PgPool) {
    let e = env(pool.clone()).await;
    let second = Arc::new(
        Reconciler::new(
            e.platform.clone(),
            Arc::new(Runtime::new("/var/run/docker.sock")),
            config(),
        )
        .await
        .unwrap(),
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            sites::create(&e.platform, &e.owner, &form(&unique("twin")))
                .await
                .unwrap()
                .id,
        );
    }
    let (a, b) = tokio::join!(e.reconciler.run_until_idle(10), second.run_until_idle(10));
    let outcomes: Vec<Outcome> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|(_, o)| o)
        .collect();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Done | Outcome::Busy | Outcome::Converged)),
        "{outcomes:?}"
    );
    for id in &ids {
        assert_eq!(status(&pool, *id).await.0, "active");
        assert_eq!(labelled_containers(*id).await.len(), 1);
    }
    for id in ids {
        delete_and_check_nothing_is_left(&e, id).await;
    }
}

/// Several reconcilers (test processes, replicas) starting at once race to create the
/// tenant database; every one of them must come up, whoever wins.
#[sqlx::test]
async fn opening_the_tenant_database_from_many_processes_at_once_succeeds(pool: PgPool) {
    use platform::infra::tenant_db::TenantDb;
    let database = format!("slipway_race_{}", Uuid::new_v4().simple());
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let (pool, database) = (pool.clone(), database.clone());
            tokio::spawn(async move { TenantDb::open(&pool, &database).await.map(|_| ()) })
        })
        .collect();
    let mut failures = Vec::new();
    for open in opens {
        if let Err(e) = open.await.unwrap() {
            failures.push(e.to_string());
        }
    }
    // Each pool held connections to it; close them before dropping it.
    sqlx::query(&format!(r#"DROP DATABASE "{database}" WITH (FORCE)"#))
        .execute(&pool)
        .await
        .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
}

/// A site's role opens the tenant database and nothing else of the cluster: not the
/// control plane's database, not `postgres`, not `template1` (PUBLIC's default CONNECT is
/// revoked on each).
#[sqlx::test(migrations = "../migrations")]
async fn a_sites_role_connects_to_the_tenant_database_only(pool: PgPool) {
    use platform::infra::tenant_db::TenantDb;
    use sqlx::ConnectOptions;
    use sqlx::postgres::PgConnectOptions;
    let database = format!("slipway_roles_{}", Uuid::new_v4().simple());
    let tenants = TenantDb::open(&pool, &database).await.unwrap();
    let ident = TenantIdent::for_site(Uuid::new_v4());
    let password = "a1".repeat(20);
    let limits = default_plans()[1].limits.clone();
    tenants.ensure(&ident, &password, &limits).await.unwrap();
    let control_plane: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let connect = |db: String| {
        let options: PgConnectOptions = (*pool.connect_options())
            .clone()
            .username(ident.as_str())
            .password(&password)
            .database(&db);
        async move { options.connect().await }
    };
    let mut own = connect(database.clone()).await.expect("its own database");
    let timeout: String =
        sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
            .fetch_one(&mut own)
            .await
            .unwrap();
    assert_eq!(timeout, limits.statement_timeout_ms.to_string(), "in ms");
    drop(own);
    for other in [control_plane, "postgres".to_owned(), "template1".to_owned()] {
        match connect(other.clone()).await {
            Err(sqlx::Error::Database(e)) => {
                assert_eq!(e.code().as_deref(), Some("42501"), "{other}: {e}")
            }
            Err(e) => panic!("{other}: {e}"),
            Ok(_) => panic!("a site's role connected to {other}"),
        }
    }
    tenants.drop(&ident).await.unwrap();
    tenants.pool.close().await;
    sqlx::query(&format!(r#"DROP DATABASE "{database}" WITH (FORCE)"#))
        .execute(&pool)
        .await
        .unwrap();
}

/// An operator forces a reconcile: the whole pass runs again and puts back what the drift
/// check does not look at (here, limits changed by hand on the running container), as a
/// `reconcile` deployment requested by the operator; of six forced at once, one is. Then
/// the operator deletes the site (its slug typed to confirm; of four at once, one does):
/// nothing is left, and its owners are mailed why.
#[sqlx::test(migrations = "../migrations")]
async fn operators_force_a_reconcile_that_repairs_and_delete_a_site(pool: PgPool) {
    use platform::admin::{Operator, Reason, passes};
    use platform::infra::docker::ResourceLimits;

    let e = env(pool.clone()).await;
    let ops = test_support::owner_with_email(&e.platform, "ops@slipway.test").await;
    test_support::make_operator(&e.platform, ops.user_id).await;
    let ops = Operator::verify(&e.platform, ops.user_id).await.unwrap();
    let site = sites::create(&e.platform, &e.owner, &form(&unique("forced")))
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    let runtime = e.reconciler.runtime();
    let before = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    let pro = ResourceLimits::from_plan(&e.platform.plan("pro").unwrap().limits);
    assert_eq!(before.limits, pro);
    let tampered = ResourceLimits::from_plan(&e.platform.plan("starter").unwrap().limits);
    assert_ne!(tampered, pro);
    runtime.update_limits(&before.id, tampered).await.unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(
        runtime
            .container(site.id, NETWORK)
            .await
            .unwrap()
            .unwrap()
            .limits,
        tampered,
        "the drift check does not look at limits"
    );

    let reason = Reason::parse("limits edited by hand on the host").unwrap();
    let forced = test_support::at_once(6, |_| {
        let (p, ops, reason) = (e.platform.clone(), ops.clone(), reason.clone());
        async move { passes::force_reconcile(&p, &ops, site.id, &reason).await }
    })
    .await;
    assert_eq!(forced.iter().filter(|r| r.is_ok()).count(), 1, "{forced:?}");
    // The others waited for the winner's claim, then found a pass due.
    assert!(
        forced
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::Conflict(m) if m.contains("already due"))),
        "{forced:?}"
    );
    e.reconciler.run_until_idle(10).await.unwrap();
    let after = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    assert_eq!(
        after.limits, pro,
        "the forced pass put the plan's limits back"
    );
    assert_eq!(after.id, before.id, "on the same container");
    assert_eq!(status(&pool, site.id).await.0, "active");
    let (reason_of, deployment_status, requested_by): (String, String, Option<Uuid>) =
        sqlx::query_as(
            "SELECT reason, status, requested_by FROM deployments
              WHERE site_id = $1 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(site.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (reason_of.as_str(), deployment_status.as_str(), requested_by),
        ("reconcile", "succeeded", Some(ops.user_id))
    );
    let audited: Vec<(String, bool)> = sqlx::query_as(
        "SELECT details->>'reason', by_operator FROM audit_log
          WHERE action = 'site.reconcile' AND organization_id = $1",
    )
    .bind(e.owner.organization_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited, [(reason.as_str().to_owned(), true)]);

    let slug = site.slug.clone();
    let wrong = passes::delete_site(&e.platform, &ops, site.id, "some-other-site", &reason).await;
    assert!(
        matches!(&wrong, Err(Error::Invalid { field, .. }) if *field == "confirm"),
        "{wrong:?}"
    );
    assert_eq!(status(&pool, site.id).await.0, "active");
    let why = Reason::parse("hosting malware, reported twice").unwrap();
    let deleted = test_support::at_once(4, |_| {
        let (p, ops, why, slug) = (e.platform.clone(), ops.clone(), why.clone(), slug.clone());
        async move { passes::delete_site(&p, &ops, site.id, &slug, &why).await }
    })
    .await;
    assert_eq!(
        deleted.iter().filter(|r| r.is_ok()).count(),
        1,
        "{deleted:?}"
    );
    let refused = passes::force_reconcile(&e.platform, &ops, site.id, &reason).await;
    assert!(
        matches!(&refused, Err(Error::Conflict(m)) if m.contains("being deleted")),
        "{refused:?}"
    );
    check_nothing_is_left(&e, site.id).await;
    let mailed: Vec<String> =
        sqlx::query_scalar("SELECT body_text FROM mail_outbox WHERE subject = $1")
            .bind(format!("Your site {slug} was deleted"))
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(mailed.len(), 1, "one mail to the one owner");
    assert!(mailed[0].contains("hosting malware, reported twice"));
}

/// "Open editor": the ticket Slipway signs opens a session in the real container's editor,
/// once; another organization cannot get one, and a stopped site has no editor to open.
#[sqlx::test(migrations = "../migrations")]
async fn open_editor_signs_the_member_into_the_running_sites_editor_once(pool: PgPool) {
    let e = env(pool.clone()).await;
    let (site, address) = active_site(&e, &pool, "editor").await;

    let url = sites::editor::open(&e.platform, &e.owner, site.id)
        .await
        .unwrap();
    assert!(url.starts_with(&e.platform.site_url(&site.slug)), "{url}");
    let (first, _) = http(address, "GET", &path_of(&url), &[], "").await;
    assert_eq!(first, 303, "a fresh ticket signs in");
    let (again, page) = http(address, "GET", &path_of(&url), &[], "").await;
    assert_eq!(again, 401);
    assert!(page.contains("already used"), "{page}");

    // A viewer's ticket says so (the site then shows drafts but no forms).
    let viewer = Membership {
        role: Role::Viewer,
        ..e.owner
    };
    let viewer_url = sites::editor::open(&e.platform, &viewer, site.id)
        .await
        .unwrap();
    let claims = viewer_url.split("ticket=").nth(1).unwrap();
    let claims =
        String::from_utf8(hex::decode(claims.split('.').next().unwrap()).unwrap()).unwrap();
    assert!(claims.contains("\"role\":\"viewer\""), "{claims}");
    assert_eq!(
        http(address, "GET", &path_of(&viewer_url), &[], "").await.0,
        303
    );

    let stranger = test_support::owner(&e.platform).await;
    assert!(matches!(
        sites::editor::open(&e.platform, &stranger, site.id).await,
        Err(Error::NotFound)
    ));
    sites::request(&e.platform, &e.owner, site.id, SiteAction::Stop)
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    assert!(matches!(
        sites::editor::open(&e.platform, &e.owner, site.id).await,
        Err(Error::Conflict(message)) if message.contains("not running")
    ));
    delete_and_check_nothing_is_left(&e, site.id).await;
}

/// A site of the environment's owner, provisioned and active: it and its container's
/// address.
async fn active_site(
    e: &Env,
    pool: &PgPool,
    name: &str,
) -> (sites::SiteSummary, std::net::SocketAddr) {
    let site = sites::create(&e.platform, &e.owner, &form(&unique(name)))
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(status(pool, site.id).await.0, "active");
    let address = container_address(e, site.id).await;
    (site, address)
}

/// The path (and ticket) of an "Open editor" address, to ask the container directly.
fn path_of(url: &str) -> String {
    url[url.find("/editor/").expect("an editor address")..].to_owned()
}

/// A member whose role goes down (or who leaves) is signed out of the running site's
/// editor by a job: their session ends, and a sign-in link made before the change is
/// refused; a new one carries the new role. A stopped site is told once it runs again.
#[sqlx::test(migrations = "../migrations")]
async fn a_demoted_member_is_signed_out_of_the_sites_editor(pool: PgPool) {
    let e = env(pool.clone()).await;
    let (site, address) = active_site(&e, &pool, "demote").await;
    let writer = test_support::owner(&e.platform).await.user_id;
    sqlx::query(
        "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'editor')",
    )
    .bind(e.owner.organization_id)
    .bind(writer)
    .execute(&pool)
    .await
    .unwrap();
    let writer = platform::tenancy::membership(&e.platform, e.owner.organization_id, writer)
        .await
        .unwrap();

    let url = sites::editor::open(&e.platform, &writer, site.id)
        .await
        .unwrap();
    let (signed_in, head, _) = http_with_head(address, "GET", &path_of(&url), &[], "").await;
    assert_eq!(signed_in, 303);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let editor_page = |cookie: String| async move {
        http(address, "GET", "/editor", &[("Cookie", &cookie)], "").await
    };
    assert_eq!(editor_page(cookie.clone()).await.0, 200);
    let unsent = sites::editor::open(&e.platform, &writer, site.id)
        .await
        .unwrap();

    platform::tenancy::members::change_role(
        &e.platform,
        &e.owner,
        writer.user_id,
        Role::Viewer,
        None,
    )
    .await
    .unwrap();
    platform::workers::run_due(&e.platform).await.unwrap();
    let (ended, page) = editor_page(cookie.clone()).await;
    assert_eq!(ended, 401, "{page}");
    let (refused, page) = http(address, "GET", &path_of(&unsent), &[], "").await;
    assert_eq!(refused, 401);
    assert!(page.contains("access to this site changed"), "{page}");
    let job: (String, i32) =
        sqlx::query_as("SELECT state, attempts FROM jobs WHERE kind = 'editor_sign_out'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(job, ("succeeded".to_owned(), 1));
    // Links made from the next second on carry the new role.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let viewer = Membership {
        role: Role::Viewer,
        ..writer
    };
    let again = sites::editor::open(&e.platform, &viewer, site.id)
        .await
        .unwrap();
    assert_eq!(http(address, "GET", &path_of(&again), &[], "").await.0, 303);

    // A stopped site cannot be told: the job waits for it, it is not lost.
    sites::request(&e.platform, &e.owner, site.id, SiteAction::Stop)
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    platform::tenancy::members::remove_member(&e.platform, &e.owner, writer.user_id, None)
        .await
        .unwrap();
    platform::workers::run_due(&e.platform).await.unwrap();
    let waiting: (String, i32) = sqlx::query_as(
        "SELECT state, attempts FROM jobs WHERE kind = 'editor_sign_out' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        waiting,
        ("queued".to_owned(), 1),
        "retried once the site runs"
    );
    delete_and_check_nothing_is_left(&e, site.id).await;
}

/// The customer's settings reach the running site: saving them makes a new container with
/// them (a "settings" deployment), the tagline is on its pages and the visitor password is
/// asked for; unset, they are gone again; a restart with nothing changed keeps the
/// container; and a deleted site's settings are forgotten with it.
#[sqlx::test(migrations = "../migrations")]
async fn settings_saved_by_the_customer_reach_the_running_site(pool: PgPool) {
    use platform::sites::settings;
    let e = env(pool.clone()).await;
    let (site, _) = active_site(&e, &pool, "settings").await;
    let runtime = e.reconciler.runtime();
    let first = runtime.container(site.id, NETWORK).await.unwrap().unwrap();

    let values = std::collections::BTreeMap::from([
        ("SITE_TAGLINE".to_owned(), "Notes from the sea".to_owned()),
        ("SITE_PASSWORD".to_owned(), "correct horse".to_owned()),
    ]);
    settings::save(&e.platform, &e.owner, site.id, &values, &[])
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    assert_eq!(status(&pool, site.id).await.0, "active");
    let second = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    assert_ne!(second.id, first.id, "a new container with the settings");
    assert!(
        second
            .env
            .contains(&"SITE_TAGLINE=Notes from the sea".to_owned())
    );
    let latest = &sites::deployments(&e.platform, &e.owner, site.id, None, 1)
        .await
        .unwrap()[0];
    assert_eq!(
        (latest.reason.as_str(), latest.status.as_str()),
        ("settings", "succeeded")
    );
    let address = container_address(&e, site.id).await;
    assert_eq!(http(address, "GET", "/", &[], "").await.0, 401);
    // "visitor:correct horse"
    let (code, page) = http(
        address,
        "GET",
        "/",
        &[("Authorization", "Basic dmlzaXRvcjpjb3JyZWN0IGhvcnNl")],
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(page.contains("Notes from the sea"), "{page}");

    // Nothing changed: a restart keeps the container.
    sites::request(&e.platform, &e.owner, site.id, SiteAction::Restart)
        .await
        .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    let restarted = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    assert_eq!(restarted.id, second.id);

    // Unset: gone from the container, and the site is open again.
    settings::save(
        &e.platform,
        &e.owner,
        site.id,
        &std::collections::BTreeMap::from([("SITE_TAGLINE".to_owned(), String::new())]),
        &["SITE_PASSWORD".to_owned()],
    )
    .await
    .unwrap();
    e.reconciler.run_until_idle(10).await.unwrap();
    let third = runtime.container(site.id, NETWORK).await.unwrap().unwrap();
    assert_ne!(third.id, second.id);
    assert!(
        !third
            .env
            .iter()
            .any(|entry| entry.starts_with("SITE_TAGLINE=") || entry.starts_with("SITE_PASSWORD="))
    );
    let address = container_address(&e, site.id).await;
    assert_eq!(http(address, "GET", "/", &[], "").await.0, 200);

    // Deleted, the site's settings (its secrets with them) are forgotten.
    settings::save(&e.platform, &e.owner, site.id, &values, &[])
        .await
        .unwrap();
    delete_and_check_nothing_is_left(&e, site.id).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM site_settings WHERE site_id = $1")
        .bind(site.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
