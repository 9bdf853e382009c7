//! The nightly jobs against the real PostgreSQL: housekeeping deletes exactly what is past
//! its retention (and keeps monthly usage for good), and the schedule queues each day's
//! jobs once however many processes ask at the same moment.

use std::sync::Arc;

use chrono::{Duration, Utc};
use platform::config::Mode;
use platform::development::{DEMO_EMAIL, ensure_demo_account};
use platform::housekeeping::{RETENTION, sweep};
use platform::workers;
use sqlx::PgPool;
use tokio::sync::Barrier;
use uuid::Uuid;

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

#[sqlx::test(migrations = "../migrations")]
async fn housekeeping_deletes_what_is_past_its_retention_and_nothing_else(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner(&platform).await;
    let now = Utc::now();
    let db = &pool;
    // Sessions: one expired two days ago (gone), one expired an hour ago (kept a day), one live.
    for (hash, expires) in [
        (b"old".to_vec(), now - days(2)),
        (b"new".to_vec(), now - Duration::hours(1)),
        (b"live".to_vec(), now + days(1)),
    ] {
        sqlx::query("INSERT INTO sessions (id_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(owner.user_id)
            .bind(expires)
            .execute(db)
            .await
            .expect("session");
    }
    // Tokens: used 8 days ago (gone), expired 8 days ago (gone), used yesterday, still valid.
    for (hash, expires, used) in [
        (b"t1".to_vec(), now + days(1), Some(now - days(8))),
        (b"t2".to_vec(), now - days(8), None),
        (b"t3".to_vec(), now + days(1), Some(now - days(1))),
        (b"t4".to_vec(), now + days(1), None),
    ] {
        sqlx::query("INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at, used_at) VALUES ($1, $2, 'reset_password', $3, $4)")
            .bind(hash)
            .bind(owner.user_id)
            .bind(expires)
            .bind(used)
            .execute(db)
            .await
            .expect("token");
    }
    for table in ["sign_in_failures", "password_reset_requests"] {
        for at in [now - days(2), now - Duration::minutes(5)] {
            sqlx::query(&format!(
                "INSERT INTO {table} (email, created_at) VALUES ('x@example.com', $1)"
            ))
            .bind(at)
            .execute(db)
            .await
            .expect("attempt");
        }
    }
    // Mail: the sign-up's verification (new, delivered locally), one delivered 40 days ago,
    // and one 40 days old whose job is still being retried (kept).
    let workers_ran = workers::run_due(&platform).await.expect("deliver");
    assert!(workers_ran >= 1);
    for (subject, retrying) in [("Old news", false), ("Still trying", true)] {
        let id: i64 = sqlx::query_scalar("INSERT INTO mail_outbox (to_address, subject, body_text, created_at, sent_at) VALUES ('x@example.com', $1, '', $2, $3) RETURNING id")
            .bind(subject)
            .bind(now - days(40))
            .bind((!retrying).then_some(now - days(40)))
            .fetch_one(db)
            .await
            .expect("mail");
        if retrying {
            sqlx::query("INSERT INTO jobs (kind, payload, unique_key, attempts) VALUES ('mail', jsonb_build_object('outbox_id', $1::bigint), 'mail:' || $1, 3)")
                .bind(id)
                .execute(db)
                .await
                .expect("retrying job");
        }
    }
    // Jobs: a Stripe event handled 31 days ago (gone) and 29 days ago (kept: it still
    // de-duplicates), another job done 8 days ago (gone), a dead one 30 days ago (kept).
    for (kind, state, finished) in [
        ("stripe_event", "succeeded", days(31)),
        ("stripe_event", "succeeded", days(29)),
        ("housekeeping", "succeeded", days(8)),
        ("mail", "dead", days(30)),
    ] {
        sqlx::query(
            "INSERT INTO jobs (kind, state, finished_at, unique_key) VALUES ($1, $2, $3, $4)",
        )
        .bind(kind)
        .bind(state)
        .bind(now - finished)
        .bind(Uuid::new_v4().to_string())
        .execute(db)
        .await
        .expect("job");
    }
    // Usage: an hourly row 91 days old (gone), one from yesterday, and that old month's
    // record (kept for good).
    let site = Uuid::new_v4();
    sqlx::query("INSERT INTO sites (id, organization_id, name, slug, template, db_password_sealed, api_token_sealed, webhook_secret_sealed) VALUES ($1, $2, 'Old', 'old-site', 'cms', '\\x00', '\\x00', '\\x00')")
        .bind(site)
        .bind(owner.organization_id)
        .execute(db)
        .await
        .expect("site");
    for hour in [now - days(91), now - days(1)] {
        sqlx::query("INSERT INTO usage_hourly (site_id, organization_id, hour, requests) VALUES ($1, $2, date_trunc('hour', $3::timestamptz), 7)")
            .bind(site)
            .bind(owner.organization_id)
            .bind(hour)
            .execute(db)
            .await
            .expect("hourly");
    }
    sqlx::query("INSERT INTO usage_records (site_id, organization_id, period, metric, quantity) VALUES ($1, $2, date_trunc('month', now() - interval '91 days')::date, 'requests', 7)")
        .bind(site)
        .bind(owner.organization_id)
        .execute(db)
        .await
        .expect("monthly");

    let swept = sweep(&platform).await.expect("sweep");
    assert_eq!(
        (
            swept.sessions,
            swept.tokens,
            swept.throttled_attempts,
            swept.mail,
            swept.jobs,
            swept.hourly_usage
        ),
        (1, 2, 2, 1, 2, 1),
        "{swept:?}"
    );
    assert_eq!(count(db, "SELECT count(*) FROM sessions").await, 2);
    assert_eq!(
        count(db, "SELECT count(*) FROM user_tokens").await,
        3,
        "the sign-up's own token too"
    );
    assert_eq!(count(db, "SELECT count(*) FROM sign_in_failures").await, 1);
    assert_eq!(
        count(db, "SELECT count(*) FROM password_reset_requests").await,
        1
    );
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM mail_outbox WHERE subject = 'Still trying'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM mail_outbox WHERE subject = 'Verify your email address'"
        )
        .await,
        1
    );
    assert_eq!(
        count(db, "SELECT count(*) FROM jobs WHERE state = 'dead'").await,
        1
    );
    assert_eq!(
        count(db, "SELECT count(*) FROM jobs WHERE kind = 'stripe_event'").await,
        1
    );
    assert_eq!(count(db, "SELECT count(*) FROM usage_hourly").await, 1);
    assert_eq!(
        count(db, "SELECT count(*) FROM usage_records").await,
        1,
        "monthly records are kept"
    );
    // The documented retentions are the ones applied.
    assert_eq!(RETENTION.handled_stripe_events.as_secs(), 30 * 24 * 3600);
    assert_eq!(RETENTION.hourly_usage.as_secs(), 90 * 24 * 3600);
    assert_eq!(
        sweep(&platform).await.expect("again").jobs,
        0,
        "nothing more"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn each_days_jobs_are_queued_once_however_many_processes_ask(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let barrier = Arc::new(Barrier::new(8));
    let now = Utc::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (platform, barrier) = (platform.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            workers::schedule(&platform, now).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("scheduled");
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE kind = 'housekeeping'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE kind = 'mrr_snapshot'"
        )
        .await,
        1,
        "one revenue snapshot a day"
    );
    // Local billing mode: nothing to reconcile with Stripe, no overages to report.
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE kind NOT IN ('housekeeping', 'mrr_snapshot')"
        )
        .await,
        0
    );
    // The next day has its own.
    workers::schedule(&platform, now + days(1))
        .await
        .expect("tomorrow");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE kind = 'housekeeping'"
        )
        .await,
        2
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_demo_account_is_created_once_and_only_in_development(pool: PgPool) {
    let production = test_support::test_platform(pool.clone());
    assert!(ensure_demo_account(&production).await.is_err());
    assert_eq!(count(&pool, "SELECT count(*) FROM users").await, 0);

    let development = production.with_mode(Mode::Development);
    let barrier = Arc::new(Barrier::new(6));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (platform, barrier) = (development.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            ensure_demo_account(&platform).await
        }));
    }
    let mut passwords = 0;
    for task in tasks {
        let demo = task.await.expect("task").expect("demo account");
        assert_eq!(demo.email, DEMO_EMAIL);
        assert_eq!(demo.plan_name, "Business");
        passwords += usize::from(demo.password.is_some());
    }
    assert_eq!(
        passwords, 1,
        "the password is shown by the one call that made the account"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM users").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM organizations").await, 1);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM users WHERE is_operator").await,
        1
    );
}
