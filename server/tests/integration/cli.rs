//! The `slipway` binary as an operator meets it: exit codes and one-line errors.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;

/// A `slipway` command with none of the caller's `SLIPWAY_*` settings, run in an empty
/// directory (so no `slipway.toml` is picked up by accident).
fn slipway(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SLIPWAY_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.current_dir(dir.path());
    command
}

fn failure_line(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "no backtrace hint: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line: {stderr}");
    lines[0].to_owned()
}

use test_support::{database_url, free_port};

/// What production requires, set (the development cluster's URL is refused there, so tests
/// always pass their own database's).
fn production<'c>(command: &'c mut Command, pool: &PgPool) -> &'c mut Command {
    command
        .env("SLIPWAY_DATABASE__URL", database_url(pool))
        .env(
            "SLIPWAY_PROVISION__MASTER_KEY",
            "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=",
        )
        .env("SLIPWAY_PROVISION__NETWORK", "slipway-test")
        .env("SLIPWAY_PROVISION__TENANT_DATABASE", "slipway_test_tenants")
        .env(
            "SLIPWAY_MAIL__SMTP_URL",
            format!("smtp://127.0.0.1:{}", free_port()),
        )
}

/// Starts `slipway serve` from `command` (settings already on it) on `port`, with the proxy
/// on any free port, its output kept; returns once `/healthz` answers.
async fn serve_on(command: &mut Command, port: u16) -> std::process::Child {
    let mut child = command
        .arg("serve")
        .env("SLIPWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("SLIPWAY_PROXY__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    wait_until_up(port, &mut child).await;
    child
}

/// Waits until `/healthz` answers on `port`.
async fn wait_until_up(port: u16, child: &mut std::process::Child) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && response.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited early: {status}");
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM, then the output once it exited.
async fn terminate(child: std::process::Child) -> Output {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("waits")
}

fn json_messages(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .collect()
}

#[test]
fn unparseable_port_is_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = slipway(&dir)
        .env("SLIPWAY_LISTEN", "127.0.0.1:http")
        .output()
        .expect("runs");
    let line = failure_line(&output);
    assert!(line.starts_with("slipway: setting `listen`"), "{line}");
    assert!(line.contains("SLIPWAY_LISTEN"), "{line}");
}

#[test]
fn unknown_key_in_the_file_is_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("slipway.toml"), "[log]\nformt = \"json\"\n").expect("write");
    let output = slipway(&dir).output().expect("runs");
    let line = failure_line(&output);
    assert!(
        line.starts_with("slipway: setting `log.formt` is unknown"),
        "{line}"
    );
    assert!(line.contains("slipway.toml"), "{line}");
}

#[test]
fn missing_config_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = slipway(&dir)
        .args(["--config", "elsewhere.toml"])
        .output()
        .expect("runs");
    let line = failure_line(&output);
    assert_eq!(
        line,
        "slipway: configuration file elsewhere.toml does not exist"
    );
}

#[test]
fn unreachable_database_is_one_line_without_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let output = slipway(&dir)
        .arg("migrate")
        .env(
            "SLIPWAY_DATABASE__URL",
            format!("postgres://slipway:s3cret@127.0.0.1:{port}/slipway"),
        )
        .env("SLIPWAY_DATABASE__CONNECT_TIMEOUT_SECS", "2")
        .output()
        .expect("runs");
    let line = failure_line(&output);
    assert!(line.contains("cannot reach the database"), "{line}");
    assert!(line.contains("setting `database.url`"), "{line}");
    assert!(
        line.ends_with("Connection refused (os error 111)"),
        "says why: {line}"
    );
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(!line.contains("s3cret"), "password hidden: {line}");
}

#[sqlx::test(migrations = false)]
async fn migrate_applies_the_schema_once(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    for run in 0..2 {
        let output = slipway(&dir)
            .arg("migrate")
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("latest schema"), "{stdout}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM instance")
        .fetch_one(&pool)
        .await
        .expect("instance table exists");
    assert_eq!(rows, 1);
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .expect("migrations table");
    assert_eq!(
        applied as usize,
        platform::infra::db::MIGRATOR.iter().count()
    );
}

#[sqlx::test(migrations = false)]
async fn serve_migrates_answers_and_stops_every_loop_gracefully_on_sigterm(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let child = serve_on(
        production(&mut slipway(&dir), &pool)
            .env("SLIPWAY_LOG__FORMAT", "json")
            .env("SLIPWAY_SHUTDOWN_TIMEOUT_SECS", "10"),
        port,
    )
    .await;
    let migrated: i64 = sqlx::query_scalar("SELECT count(*) FROM instance")
        .fetch_one(&pool)
        .await
        .expect("serve applied the migrations");
    assert_eq!(migrated, 1);

    let asked = Instant::now();
    let output = terminate(child).await;
    let took = asked.elapsed();
    assert!(output.status.success(), "exit status {:?}", output.status);
    assert!(took < Duration::from_secs(12), "took {took:?} to stop");
    let events = json_messages(&output.stderr);
    let said = |message: &str| events.iter().any(|e| e["message"] == message);
    assert!(
        said("tenant proxy listening"),
        "serve also runs the tenant proxy"
    );
    assert!(said("dashboard stopped"));
    // Every background loop started the same way and stopped the same way.
    let stopped: Vec<&str> = events
        .iter()
        .filter(|e| e["message"] == "stopped")
        .filter_map(|e| e["task"].as_str())
        .collect();
    for task in [
        "jobs",
        "scheduler",
        "reconciler",
        "storage sampling",
        "route table",
        "usage flush",
        "proxy",
    ] {
        assert!(
            stopped.contains(&task),
            "{task} did not report stopping: {stopped:?}"
        );
    }
    assert!(said("every background task stopped"));
    assert!(
        String::from_utf8_lossy(&output.stdout).trim().is_empty(),
        "production prints no development welcome"
    );
}

#[sqlx::test(migrations = false)]
async fn production_refuses_to_serve_without_its_secrets_and_names_each(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = slipway(&dir)
        .arg("serve")
        .env(
            "SLIPWAY_DATABASE__URL",
            "postgres://slipway@127.0.0.1:55432/slipway",
        )
        .output()
        .expect("runs");
    let line = failure_line(&output);
    assert!(line.starts_with("slipway: production mode: "), "{line}");
    for setting in [
        "provision.master_key",
        "mail.smtp_url",
        "database.url",
        "mode = \"development\"",
    ] {
        assert!(line.contains(setting), "{setting} not named: {line}");
    }
    // Commands other than serve need none of it.
    assert!(
        slipway(&dir)
            .arg("keygen")
            .output()
            .expect("runs")
            .status
            .success()
    );
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'users'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(tables, 0, "nothing was migrated");
}

#[sqlx::test(migrations = false)]
async fn development_mode_makes_a_demo_operator_once_and_shows_mail_locally(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |port: u16| {
        let mut command = slipway(&dir);
        command
            .env("SLIPWAY_MODE", "development")
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .env("SLIPWAY_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("SLIPWAY_PROVISION__ENABLED", "false");
        async move { serve_on(&mut command, port).await }
    };
    let port = free_port();
    let child = start(port).await;
    // A sign-up mails a verification link; the local mail page shows it.
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let signed_up = client
        .post(format!("{base}/api/account/sign-up"))
        .header("Origin", &base)
        .form(&[
            ("name", "Newcomer"),
            ("email", "new@example.com"),
            ("password", "correct horse battery"),
            ("organization", "Newco"),
        ])
        .send()
        .await
        .expect("sign-up");
    assert!(signed_up.status().is_success() || signed_up.status().is_redirection());
    let mail = client
        .get(format!("{base}/dev/mail"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("mail page");
    assert_eq!(mail.status().as_u16(), 200);
    let page = mail.text().await.expect("html");
    assert!(page.contains("Verify your email address"), "{page}");
    assert!(
        page.contains(&format!("href=\"{base}/verify?token=")),
        "the link is clickable"
    );
    let output = terminate(child).await;
    assert!(output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains(&format!("{base}/verify?token=")),
        "the mail's link is printed in the log too: {log}"
    );
    let welcome = String::from_utf8_lossy(&output.stdout);
    assert!(welcome.contains(&format!("Open {base}/login")), "{welcome}");
    let password = welcome
        .split("with the password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the password is printed")
        .to_owned();
    assert!(welcome.contains("demo@slipway.localhost"));
    assert!(welcome.contains("/dev/mail"));
    let (operator, plan): (bool, String) = sqlx::query_as(
        "SELECT u.is_operator, o.plan_id FROM users u
           JOIN organization_members m ON m.user_id = u.id
           JOIN organizations o ON o.id = m.organization_id
          WHERE u.email = 'demo@slipway.localhost'",
    )
    .fetch_one(&pool)
    .await
    .expect("the demo account");
    assert!(operator);
    assert_eq!(plan, "business");
    let p = platform::Platform::new(
        pool.clone(),
        platform::catalog::plans::Catalog::new(platform::catalog::plans::default_plans())
            .expect("catalog"),
        base.parse().expect("url"),
    );
    platform::identity::sessions::sign_in(&p, "demo@slipway.localhost", &password, None)
        .await
        .expect("the printed password signs in");

    // A second start keeps the account and does not print a password again.
    let port = free_port();
    let child = start(port).await;
    let output = terminate(child).await;
    let welcome = String::from_utf8_lossy(&output.stdout);
    assert!(welcome.contains("demo@slipway.localhost"));
    assert!(!welcome.contains(&password), "printed once only");
    let demos: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'demo@slipway.localhost'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(demos, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn in_production_the_mail_page_and_the_demo_account_do_not_exist(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let child = serve_on(
        production(&mut slipway(&dir), &pool).env("SLIPWAY_PROVISION__ENABLED", "false"),
        port,
    )
    .await;
    let mail = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/dev/mail"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("answer");
    assert_eq!(mail.status().as_u16(), 404);
    let output = terminate(child).await;
    assert!(String::from_utf8_lossy(&output.stdout).trim().is_empty());
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(users, 0, "no demo account in production");
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_jobs_lists_what_is_retrying_or_dead_and_retries_a_dead_one(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (kind, state, attempts, last_error, first_attempt_at, finished_at)
         VALUES ('mail', 'dead', 57, 'SMTP: connection refused', now() - interval '1 day', now())
         RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .expect("dead job");
    sqlx::query(
        "INSERT INTO jobs (kind, attempts, last_error, run_at)
         VALUES ('stripe_event', 3, 'Stripe could not be reached', now() + interval '80 seconds')",
    )
    .execute(&pool)
    .await
    .expect("retrying job");
    sqlx::query(
        "INSERT INTO jobs (kind, state, finished_at) VALUES ('housekeeping', 'succeeded', now())",
    )
    .execute(&pool)
    .await
    .expect("done job");
    let run = |args: &[&str]| {
        slipway(&dir)
            .args(["admin", "jobs"])
            .args(args)
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .output()
            .expect("runs")
    };
    let listed = run(&[]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let table = String::from_utf8_lossy(&listed.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "a header and two jobs (not the succeeded one): {table}"
    );
    assert!(lines[0].contains("LAST ERROR"));
    assert!(
        lines[1].contains("stripe_event")
            && lines[1].contains("retrying")
            && lines[1].contains("Stripe could not be reached"),
        "{table}"
    );
    assert!(
        lines[2].contains("mail")
            && lines[2].contains("dead")
            && lines[2].contains("SMTP: connection refused"),
        "{table}"
    );

    // A retry names its operator and reason, and the audit log keeps both.
    sqlx::query(
        "INSERT INTO users (email, name, password_hash, is_operator)
         VALUES ('ops@example.com', 'Ops', 'x', true), ('ada@example.com', 'Ada', 'x', false)",
    )
    .execute(&pool)
    .await
    .expect("users");
    let retry = |id: &str, operator: &str| {
        let mut args = vec!["retry", id, "--reason", "SMTP relay fixed"];
        args.extend(["--operator", operator]);
        run(&args)
    };
    assert!(
        failure_line(&retry(&dead.to_string(), "ada@example.com"))
            .contains("ada@example.com is not a platform operator")
    );
    let retried = retry(&dead.to_string(), "ops@example.com");
    assert!(retried.status.success(), "{}", failure_line(&retried));
    assert_eq!(
        String::from_utf8_lossy(&retried.stdout),
        format!("job {dead} is queued again\n")
    );
    let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(dead)
        .fetch_one(&pool)
        .await
        .expect("state");
    assert_eq!(state, "queued");
    let (actor, subject, reason): (String, String, String) = sqlx::query_as(
        "SELECT u.email, a.subject, a.details->>'reason'
           FROM audit_log a JOIN users u ON u.id = a.actor_user_id
          WHERE a.action = 'job.retry'",
    )
    .fetch_one(&pool)
    .await
    .expect("one audit entry");
    assert_eq!(
        (actor.as_str(), subject, reason.as_str()),
        ("ops@example.com", format!("job:{dead}"), "SMTP relay fixed")
    );
    assert!(
        failure_line(&retry(&dead.to_string(), "ops@example.com"))
            .contains("only dead jobs are retried")
    );
    assert_eq!(
        failure_line(&retry("999999", "ops@example.com")),
        "slipway: there is no job 999999"
    );
    assert!(failure_line(&run(&["--state", "sleeping"])).contains("--state: use queued"));
}

#[test]
fn plans_command_prints_the_configured_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = slipway(&dir).arg("plans").output().expect("runs");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["free", "$0.00", "$0.00"],
            ["starter", "$15.00", "$150.00"],
            ["pro", "$49.00", "$490.00"],
            ["business", "$149.00", "$1490.00"],
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_create_makes_an_operator_from_a_password_on_stdin(pool: PgPool) {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    // Blocking waits are fine here: the child is another process.
    let run = |email: &str, password: &str| {
        let mut child = slipway(&dir)
            .args(["admin", "create", "--email", email])
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write password");
        child.wait_with_output().expect("runs")
    };

    let output = run("Ops@Example.com", "operator passphrase");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "created operator ops@example.com\n"
    );
    let (operator, verified): (bool, bool) = sqlx::query_as(
        "SELECT is_operator, email_verified_at IS NOT NULL FROM users WHERE email = 'ops@example.com'",
    )
    .fetch_one(&pool)
    .await
    .expect("user exists");
    assert!(operator && verified);

    let short = run("other@example.com", "short");
    let line = failure_line(&short);
    assert_eq!(
        line,
        "slipway: password: Use at least 10 characters for your password."
    );
    let bad_email = run("not-an-email", "operator passphrase");
    assert!(failure_line(&bad_email).starts_with("slipway: --email: Enter an email address"));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(users, 1, "refused commands change nothing");
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_set_plan_assigns_plans_in_local_billing_mode(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let org: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO organizations (slug, name) VALUES ('acme-corp', 'Acme') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .expect("organization");
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        slipway(&dir)
            .args(["admin", "set-plan"])
            .args(args)
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .envs(extra.iter().copied())
            .output()
            .expect("runs")
    };

    let output = run(&["--org", "acme-corp", "--plan", "pro"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "acme-corp is on the pro plan\n"
    );
    let plan: String = sqlx::query_scalar("SELECT plan_id FROM organizations WHERE id = $1")
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("plan");
    assert_eq!(plan, "pro");

    assert_eq!(
        failure_line(&run(&["--org", "acme-corp", "--plan", "platinum"], &[])),
        "slipway: There is no plan \"platinum\" (plans: free, starter, pro, business)."
    );
    assert_eq!(
        failure_line(&run(&["--org", "nobody", "--plan", "pro"], &[])),
        "slipway: There is no organization \"nobody\"."
    );
    // With Stripe configured, plans follow subscriptions instead.
    let stripe = run(
        &["--org", "acme-corp", "--plan", "starter"],
        &[
            ("SLIPWAY_BILLING__STRIPE_SECRET_KEY", "sk_test_x"),
            ("SLIPWAY_BILLING__STRIPE_WEBHOOK_SECRETS", "[\"whsec_x\"]"),
        ],
    );
    assert!(failure_line(&stripe).contains("plans follow the organization's subscription"));
    // A Stripe key without a webhook secret is a configuration error.
    let unsafe_config = run(
        &["--org", "acme-corp", "--plan", "starter"],
        &[("SLIPWAY_BILLING__STRIPE_SECRET_KEY", "sk_test_x")],
    );
    assert!(failure_line(&unsafe_config).contains("billing.stripe_webhook_secrets"));
    let plan: String = sqlx::query_scalar("SELECT plan_id FROM organizations WHERE id = $1")
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("plan");
    assert_eq!(plan, "pro", "refused commands change nothing");
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_suspend_site_and_resume_site_act_as_a_named_operator_with_a_reason(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let site = test_support::site(&platform, &owner, "reported-site").await;
    let operator = test_support::owner_with_email(&platform, "ops@example.com").await;
    test_support::make_operator(&platform, operator.user_id).await;
    let run = |command: &str, args: &[&str]| {
        slipway(&dir)
            .args(["admin", command])
            .args(args)
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .output()
            .expect("runs")
    };
    // Not an operator, no reason, no such site: one line each, nothing changed.
    let owner_email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(owner.user_id)
        .fetch_one(&pool)
        .await
        .expect("email");
    assert_eq!(
        failure_line(&run(
            "suspend-site",
            &site_args(&owner_email, "reported-site", "spam")
        )),
        format!("slipway: {owner_email} is not a platform operator (see `slipway admin create`)")
    );
    assert_eq!(
        failure_line(&run(
            "suspend-site",
            &site_args("ops@example.com", "reported-site", " ")
        )),
        "slipway: Say why, in a few words (3 to 500 characters, one line)."
    );
    assert_eq!(
        failure_line(&run(
            "suspend-site",
            &site_args("ops@example.com", "no-such-site", "spam")
        )),
        "slipway: no site \"no-such-site\""
    );

    let suspended = run(
        "suspend-site",
        &site_args("ops@example.com", "reported-site", "phishing report 812"),
    );
    assert!(
        suspended.status.success(),
        "{}",
        String::from_utf8_lossy(&suspended.stderr)
    );
    let (reason, actor): (Option<String>, Option<uuid::Uuid>) = sqlx::query_as(
        "SELECT s.suspended_reason, a.actor_user_id FROM sites s
           JOIN audit_log a ON a.action = 'site.suspend' AND a.details ->> 'site_id' = s.id::text
          WHERE s.id = $1",
    )
    .bind(site)
    .fetch_one(&pool)
    .await
    .expect("suspended and audited");
    assert_eq!(reason.as_deref(), Some("operator: phishing report 812"));
    assert_eq!(actor, Some(operator.user_id));

    let resumed = run(
        "resume-site",
        &site_args("ops@example.com", "reported-site", "page taken down"),
    );
    assert_eq!(
        String::from_utf8_lossy(&resumed.stdout),
        "reported-site is resumed\n"
    );
    assert_eq!(
        failure_line(&run(
            "resume-site",
            &site_args("ops@example.com", "reported-site", "again")
        )),
        "slipway: This site is not suspended."
    );

    // A site whose provisioning failed is retried now, once.
    assert_eq!(
        failure_line(&run(
            "retry-site",
            &site_args("ops@example.com", "reported-site", "kick it")
        )),
        "slipway: This site has not failed (it is pending): there is nothing to retry."
    );
    sqlx::query(
        "UPDATE sites SET status = 'failed', failures = 3,
                next_attempt_at = now() + interval '5 minutes'
          WHERE id = $1",
    )
    .bind(site)
    .execute(&pool)
    .await
    .expect("failed");
    let retried = run(
        "retry-site",
        &site_args("ops@example.com", "reported-site", "registry is back"),
    );
    assert_eq!(
        String::from_utf8_lossy(&retried.stdout),
        "reported-site is retried: the reconciler runs it again now\n",
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let (failures, retries): (i32, i64) = sqlx::query_as(
        "SELECT failures, (SELECT count(*) FROM deployments
                             WHERE site_id = $1 AND reason = 'retry' AND requested_by = $2)
           FROM sites WHERE id = $1",
    )
    .bind(site)
    .bind(operator.user_id)
    .fetch_one(&pool)
    .await
    .expect("retried");
    assert_eq!((failures, retries), (0, 1));
    assert!(
        failure_line(&run(
            "retry-site",
            &site_args("ops@example.com", "reported-site", "again")
        ))
        .contains("already being retried")
    );

    // A forced reconcile: not of a failed site (retry it), then of an active one.
    assert_eq!(
        failure_line(&run(
            "reconcile-site",
            &site_args("ops@example.com", "reported-site", "limits edited by hand")
        )),
        "slipway: This site's last pass failed: retry it instead (\"Retry now\")."
    );
    sqlx::query(
        "UPDATE sites SET status = 'active', observed_generation = generation WHERE id = $1",
    )
    .bind(site)
    .execute(&pool)
    .await
    .expect("active");
    let reconciled = run(
        "reconcile-site",
        &site_args("ops@example.com", "reported-site", "limits edited by hand"),
    );
    assert_eq!(
        String::from_utf8_lossy(&reconciled.stdout),
        "reported-site is reconciled again: the reconciler runs its whole pass now\n",
        "{}",
        String::from_utf8_lossy(&reconciled.stderr)
    );
    let forced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deployments
          WHERE site_id = $1 AND reason = 'reconcile' AND requested_by = $2",
    )
    .bind(site)
    .bind(operator.user_id)
    .fetch_one(&pool)
    .await
    .expect("deployments");
    assert_eq!(forced, 1);

    // A deletion needs the slug typed again.
    let delete = |confirm: &str| {
        let mut args = site_args(
            "ops@example.com",
            "reported-site",
            "malware, reported twice",
        )
        .to_vec();
        args.extend(["--confirm", confirm]);
        run("delete-site", &args)
    };
    assert_eq!(
        failure_line(&delete("reported")),
        "slipway: Type reported-site to confirm that this site and its data go away."
    );
    let deleted = delete("reported-site");
    assert_eq!(
        String::from_utf8_lossy(&deleted.stdout),
        "reported-site is being deleted with its data; its owners are mailed why\n",
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let desired: String = sqlx::query_scalar("SELECT desired_state FROM sites WHERE id = $1")
        .bind(site)
        .fetch_one(&pool)
        .await
        .expect("site");
    assert_eq!(desired, "deleted");
}

fn site_args<'a>(operator: &'a str, site: &'a str, reason: &'a str) -> [&'a str; 6] {
    ["--operator", operator, "--site", site, "--reason", reason]
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_disables_and_enables_an_account_with_a_reason(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ada: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, is_operator)
         VALUES ('ops@example.com', 'Ops', 'x', true), ('ada@example.com', 'Ada', 'x', false)
         RETURNING id",
    )
    .fetch_all(&pool)
    .await
    .expect("users")
    .pop()
    .expect("ada");
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, expires_at)
         VALUES ('\\x01', $1, now() + interval '1 day'), ('\\x02', $1, now() + interval '1 day')",
    )
    .bind(ada)
    .execute(&pool)
    .await
    .expect("sessions");
    let run = |verb: &str, operator: &str| {
        slipway(&dir)
            .args(["admin", verb, "--user", "ADA@example.com", "--reason"])
            .args(["card testing", "--operator", operator])
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .output()
            .expect("runs")
    };
    let refused = run("disable-user", "ada@example.com");
    assert!(!refused.status.success());
    assert!(failure_line(&refused).contains("ada@example.com is not a platform operator"));

    let disabled = run("disable-user", "ops@example.com");
    assert!(disabled.status.success(), "{}", failure_line(&disabled));
    assert_eq!(
        String::from_utf8_lossy(&disabled.stdout).trim(),
        "ada@example.com is disabled; 2 session(s) ended"
    );
    let (reason, sessions): (Option<String>, i64) = sqlx::query_as(
        "SELECT disabled_reason, (SELECT count(*) FROM sessions WHERE user_id = $1)
           FROM users WHERE id = $1",
    )
    .bind(ada)
    .fetch_one(&pool)
    .await
    .expect("state");
    assert_eq!((reason.as_deref(), sessions), (Some("card testing"), 0));
    let again = run("disable-user", "ops@example.com");
    assert!(!again.status.success());
    assert!(failure_line(&again).contains("already disabled"));

    let enabled = run("enable-user", "ops@example.com");
    assert!(enabled.status.success(), "{}", failure_line(&enabled));
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE subject = $1 AND details->>'reason' = 'card testing'
          ORDER BY id",
    )
    .bind(format!("user:{ada}"))
    .fetch_all(&pool)
    .await
    .expect("audit");
    assert_eq!(audited, ["user.disabled", "user.enabled"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_extends_a_grace_period_through_a_day(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    sqlx::query(
        "INSERT INTO users (email, name, password_hash, is_operator)
         VALUES ('ops@example.com', 'Ops', 'x', true)",
    )
    .execute(&pool)
    .await
    .expect("operator");
    let until: String = sqlx::query_scalar(
        "WITH o AS (INSERT INTO organizations (slug, name, plan_id) VALUES ('acme', 'Acme', 'pro')
                   RETURNING id)
         INSERT INTO billing_accounts (organization_id, stripe_customer_id, status, grace_ends_at)
         SELECT id, 'cus_CliGrace1', 'canceled', now() + interval '2 days' FROM o
         RETURNING to_char(grace_ends_at + interval '14 days', 'YYYY-MM-DD')",
    )
    .fetch_one(&pool)
    .await
    .expect("a canceled subscription");
    let run = |until: &str| {
        slipway(&dir)
            .args(["admin", "extend-grace", "--org", "acme", "--until", until])
            .args([
                "--reason",
                "export in progress",
                "--operator",
                "ops@example.com",
            ])
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .output()
            .expect("runs")
    };
    let extended = run(&until);
    assert!(extended.status.success(), "{}", failure_line(&extended));
    assert!(
        String::from_utf8_lossy(&extended.stdout).starts_with("acme's sites are kept until "),
        "{}",
        String::from_utf8_lossy(&extended.stdout)
    );
    let kept: String = sqlx::query_scalar(
        "SELECT to_char((grace_ends_at - interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD')
           FROM billing_accounts",
    )
    .fetch_one(&pool)
    .await
    .expect("grace");
    assert_eq!(kept, until, "kept through the day given");
    assert!(failure_line(&run(&until)).contains("The grace period already ends"));
    assert!(failure_line(&run("soon")).contains("Choose the day the grace period ends."));
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_suspends_and_resumes_a_whole_organization(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    sqlx::query(
        "INSERT INTO users (email, name, password_hash, is_operator)
         VALUES ('ops@example.com', 'Ops', 'x', true)",
    )
    .execute(&pool)
    .await
    .expect("operator");
    let site: uuid::Uuid = sqlx::query_scalar(
        "WITH o AS (INSERT INTO organizations (slug, name, plan_id) VALUES ('acme', 'Acme', 'pro')
                   RETURNING id)
         INSERT INTO sites (id, organization_id, name, slug, template, status,
                            db_password_sealed, api_token_sealed, webhook_secret_sealed)
         SELECT gen_random_uuid(), id, 'Docs', 'docs', 'cms', 'active', '\\x00', '\\x00', '\\x00'
           FROM o
         RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .expect("site");
    let run = |verb: &str, reason: &str| {
        slipway(&dir)
            .args(["admin", verb, "--org", "acme", "--reason", reason])
            .args(["--operator", "ops@example.com"])
            .env("SLIPWAY_DATABASE__URL", database_url(&pool))
            .output()
            .expect("runs")
    };
    let reason = || async {
        sqlx::query_scalar::<_, Option<String>>("SELECT suspended_reason FROM sites WHERE id = $1")
            .bind(site)
            .fetch_one(&pool)
            .await
            .expect("site")
    };
    let suspended = run("suspend-org", "chargeback fraud");
    assert!(suspended.status.success(), "{}", failure_line(&suspended));
    assert_eq!(
        String::from_utf8_lossy(&suspended.stdout).trim(),
        "acme is suspended; 1 site(s) suspended"
    );
    assert_eq!(
        reason().await.as_deref(),
        Some("operator: chargeback fraud")
    );
    let again = run("suspend-org", "chargeback fraud");
    assert!(failure_line(&again).contains("already suspended"));
    let resumed = run("resume-org", "withdrawn");
    assert!(resumed.status.success(), "{}", failure_line(&resumed));
    assert_eq!(reason().await, None);
    let missing = slipway(&dir)
        .args([
            "admin",
            "resume-org",
            "--org",
            "nope",
            "--reason",
            "why not",
        ])
        .args(["--operator", "ops@example.com"])
        .env("SLIPWAY_DATABASE__URL", database_url(&pool))
        .output()
        .expect("runs");
    assert!(failure_line(&missing).contains("no organization \"nope\""));
}
