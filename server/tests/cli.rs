//! The `slipway` binary as an operator meets it: exit codes and one-line errors.

use std::net::TcpListener;
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

/// The URL of the database a `#[sqlx::test]` created.
fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for tests");
    let (server, _) = base.rsplit_once('/').expect("URL has a path");
    let name = pool
        .connect_options()
        .get_database()
        .expect("named database")
        .to_owned();
    format!("{server}/{name}")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
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
    assert_eq!(applied as usize, platform::db::MIGRATOR.iter().count());
}

#[sqlx::test(migrations = false)]
async fn serve_migrates_answers_and_stops_gracefully_on_sigterm(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let child = slipway(&dir)
        .arg("serve")
        .env("SLIPWAY_DATABASE__URL", database_url(&pool))
        .env("SLIPWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("SLIPWAY_PROXY__LISTEN", "127.0.0.1:0")
        .env("SLIPWAY_LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            break response;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health.status().as_u16(), 200);

    let migrated: i64 = sqlx::query_scalar("SELECT count(*) FROM instance")
        .fetch_one(&pool)
        .await
        .expect("serve applied the migrations");
    assert_eq!(migrated, 1);

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("waits");
    assert!(output.status.success(), "exit status {:?}", output.status);
    let logs = String::from_utf8_lossy(&output.stderr);
    let stopped = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|event| event["message"] == "dashboard stopped");
    assert!(stopped, "JSON logs record the graceful stop: {logs}");
    let proxied = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|event| event["message"] == "tenant proxy listening");
    assert!(proxied, "serve also runs the tenant proxy: {logs}");
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
