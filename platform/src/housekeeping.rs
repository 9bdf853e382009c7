//! The nightly `housekeeping` job: deletes what is past its retention. Each retention is a
//! constant here and a line in `docs/operations.md`; monthly usage records (what is billed)
//! are kept for good.

use std::time::Duration;

use crate::Platform;
use crate::kernel::Result;

const DAY: u64 = 24 * 3600;

/// How long each kind of row is kept once it no longer serves anyone.
pub struct Retention {
    /// Sessions past their expiry (a signed-out or expired browser).
    pub expired_sessions: Duration,
    /// Verification and reset links, once used or expired.
    pub spent_tokens: Duration,
    /// Counted sign-ins and password-reset requests (the throttles look back at most an
    /// hour).
    pub throttled_attempts: Duration,
    /// Mail, once delivered (or, without SMTP, once written to the outbox).
    pub delivered_mail: Duration,
    /// Handled Stripe events: their ids de-duplicate Stripe's re-deliveries, which stop
    /// after 3 days.
    pub handled_stripe_events: Duration,
    /// A month's overage measurement: its key says the month was measured, so it is kept
    /// past the month (the schedule queues it again every day of that month).
    pub monthly_jobs: Duration,
    /// Other jobs that succeeded.
    pub succeeded_jobs: Duration,
    /// Jobs that gave up: kept for operators to look at (and retry) for this long.
    pub dead_jobs: Duration,
    /// Hourly traffic rows (the graphs show 30 days).
    pub hourly_usage: Duration,
    /// Each health check's raw result.
    pub raw_checks: Duration,
    /// Health checks per hour (the uptime bar shows 90 days).
    pub hourly_checks: Duration,
}

pub const RETENTION: Retention = Retention {
    expired_sessions: Duration::from_secs(DAY),
    spent_tokens: Duration::from_secs(7 * DAY),
    throttled_attempts: Duration::from_secs(DAY),
    delivered_mail: Duration::from_secs(30 * DAY),
    handled_stripe_events: Duration::from_secs(30 * DAY),
    monthly_jobs: Duration::from_secs(400 * DAY),
    succeeded_jobs: Duration::from_secs(7 * DAY),
    dead_jobs: Duration::from_secs(90 * DAY),
    hourly_usage: Duration::from_secs(90 * DAY),
    raw_checks: Duration::from_secs(2 * DAY),
    hourly_checks: Duration::from_secs(91 * DAY),
};

/// What one run deleted, per kind of row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub tokens: u64,
    pub throttled_attempts: u64,
    pub mail: u64,
    pub jobs: u64,
    pub hourly_usage: u64,
    pub checks: u64,
}

fn secs(retention: Duration) -> f64 {
    retention.as_secs_f64()
}

/// Deletes everything past its retention, one kind at a time.
pub async fn sweep(platform: &Platform) -> Result<Swept> {
    let db = &platform.db;
    let r = &RETENTION;
    let sessions = sqlx::query!(
        "DELETE FROM sessions WHERE expires_at < now() - make_interval(secs => $1)",
        secs(r.expired_sessions)
    )
    .execute(db)
    .await?
    .rows_affected();
    let tokens = sqlx::query!(
        "DELETE FROM user_tokens
          WHERE coalesce(used_at, expires_at) < now() - make_interval(secs => $1)
            AND (used_at IS NOT NULL OR expires_at < now())",
        secs(r.spent_tokens)
    )
    .execute(db)
    .await?
    .rows_affected();
    let throttled_attempts = sqlx::query!(
        "DELETE FROM sign_in_failures WHERE created_at < now() - make_interval(secs => $1)",
        secs(r.throttled_attempts)
    )
    .execute(db)
    .await?
    .rows_affected()
        + sqlx::query!(
            "DELETE FROM password_reset_requests WHERE created_at < now() - make_interval(secs => $1)",
            secs(r.throttled_attempts)
        )
        .execute(db)
        .await?
        .rows_affected();
    // Mail whose job is over (sent, or kept locally) and old enough; a message still being
    // retried stays whatever its age.
    let mail = sqlx::query!(
        "DELETE FROM mail_outbox o
          WHERE o.created_at < now() - make_interval(secs => $1)
            AND NOT EXISTS (SELECT 1 FROM jobs j
                             WHERE j.unique_key = 'mail:' || o.id AND j.state IN ('queued', 'running'))",
        secs(r.delivered_mail)
    )
    .execute(db)
    .await?
    .rows_affected();
    let jobs = sqlx::query!(
        "DELETE FROM jobs
          WHERE (state = 'succeeded' AND kind = 'stripe_event'
                 AND finished_at < now() - make_interval(secs => $1))
             OR (state = 'succeeded' AND kind = 'billing_overages'
                 AND finished_at < now() - make_interval(secs => $4))
             OR (state = 'succeeded' AND kind NOT IN ('stripe_event', 'billing_overages')
                 AND finished_at < now() - make_interval(secs => $2))
             OR (state = 'dead' AND finished_at < now() - make_interval(secs => $3))",
        secs(r.handled_stripe_events),
        secs(r.succeeded_jobs),
        secs(r.dead_jobs),
        secs(r.monthly_jobs)
    )
    .execute(db)
    .await?
    .rows_affected();
    let hourly_usage = sqlx::query!(
        "DELETE FROM usage_hourly WHERE hour < now() - make_interval(secs => $1)",
        secs(r.hourly_usage)
    )
    .execute(db)
    .await?
    .rows_affected();
    let checks = sqlx::query!(
        "DELETE FROM site_checks WHERE at < now() - make_interval(secs => $1)",
        secs(r.raw_checks)
    )
    .execute(db)
    .await?
    .rows_affected()
        + sqlx::query!(
            "DELETE FROM site_check_hours WHERE hour < now() - make_interval(secs => $1)",
            secs(r.hourly_checks)
        )
        .execute(db)
        .await?
        .rows_affected();
    let swept = Swept {
        sessions,
        tokens,
        throttled_attempts,
        mail,
        jobs,
        hourly_usage,
        checks,
    };
    tracing::info!(?swept, "housekeeping done");
    Ok(swept)
}
