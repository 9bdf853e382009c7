//! Checks as recorded (raw for 48 hours, per hour for 90 days) and as the site page reads
//! them: the 90-day uptime bar, uptime over 24 h / 7 d / 30 d, response times (p50/p95
//! from the hourly latency histograms), restarts, and the latest resource sample.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::kernel::Result;
use crate::tenancy::{Action, Membership};

/// Upper bounds (ms) of the latency buckets of `site_check_hours.latency_buckets`; the last
/// bucket holds everything slower. The recording statement names the same bounds.
pub const LATENCY_BUCKETS_MS: [u32; 9] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000];

crate::text_enum! {
    /// A site's health, as judged by the monitor (`site_health.state`).
    pub enum Health {
        Up => "up",
        /// Answering, but slowly or with server errors.
        Degraded => "degraded",
        Down => "down",
        /// Failed again after repeated restarts; no longer restarted.
        CrashLooping => "crash_looping",
    }
}

impl Health {
    pub fn is_serving(self) -> bool {
        matches!(self, Health::Up | Health::Degraded)
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub site_id: Uuid,
    pub at: DateTime<Utc>,
    pub result: Health,
    pub latency_ms: Option<u32>,
    pub http_status: Option<u16>,
    /// From an HTTP probe, or from the engine's events.
    pub from_event: bool,
    pub detail: Option<String>,
}

/// Stores checks, raw and added to their hour, in one statement each.
pub async fn record(db: &sqlx::PgPool, checks: &[Check]) -> Result<()> {
    if checks.is_empty() {
        return Ok(());
    }
    let mut sites = Vec::with_capacity(checks.len());
    let mut ats = Vec::with_capacity(checks.len());
    let mut results = Vec::with_capacity(checks.len());
    let mut latencies = Vec::with_capacity(checks.len());
    let mut statuses = Vec::with_capacity(checks.len());
    let mut sources = Vec::with_capacity(checks.len());
    let mut details = Vec::with_capacity(checks.len());
    let mut buckets = Vec::with_capacity(checks.len());
    for check in checks {
        crate::infra::metrics::MONITOR_CHECKS.inc(&[
            if check.from_event { "event" } else { "probe" },
            check.result.as_str(),
        ]);
        sites.push(check.site_id);
        ats.push(check.at);
        // A crash is `down`; a `crash_looping` site is down too as far as uptime goes.
        results.push(match check.result {
            Health::CrashLooping => Health::Down.as_str(),
            other => other.as_str(),
        });
        latencies.push(
            check
                .latency_ms
                .map(|ms| i32::try_from(ms).unwrap_or(i32::MAX)),
        );
        statuses.push(check.http_status.map(i32::from));
        sources.push(if check.from_event { "event" } else { "probe" });
        details.push(check.detail.clone());
        buckets.push(check.latency_ms.map(bucket));
    }
    let mut tx = db.begin().await?;
    sqlx::query!(
        "INSERT INTO site_checks (site_id, at, result, latency_ms, http_status, source, detail)
         SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::int[], $5::int[], $6::text[], $7::text[])",
        &sites,
        &ats,
        &results as &[&str],
        &latencies as &[Option<i32>],
        &statuses as &[Option<i32>],
        &sources as &[&str],
        &details as &[Option<String>],
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO site_check_hours AS h (site_id, hour, checks, up, degraded, latency_buckets)
         SELECT site_id, date_trunc('hour', at), count(*), count(*) FILTER (WHERE result = 'up'),
                count(*) FILTER (WHERE result = 'degraded'),
                ARRAY[count(*) FILTER (WHERE b = 0), count(*) FILTER (WHERE b = 1),
                      count(*) FILTER (WHERE b = 2), count(*) FILTER (WHERE b = 3),
                      count(*) FILTER (WHERE b = 4), count(*) FILTER (WHERE b = 5),
                      count(*) FILTER (WHERE b = 6), count(*) FILTER (WHERE b = 7),
                      count(*) FILTER (WHERE b = 8), count(*) FILTER (WHERE b = 9)]::int[]
           FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::int[]) AS c(site_id, at, result, b)
          WHERE EXISTS (SELECT 1 FROM sites s WHERE s.id = c.site_id)
          GROUP BY 1, 2
         ON CONFLICT (site_id, hour) DO UPDATE SET
            checks = h.checks + EXCLUDED.checks,
            up = h.up + EXCLUDED.up,
            degraded = h.degraded + EXCLUDED.degraded,
            latency_buckets = ARRAY(
                SELECT coalesce(a, 0) + coalesce(b, 0)
                  FROM unnest(h.latency_buckets, EXCLUDED.latency_buckets) WITH ORDINALITY AS x(a, b, i)
                 ORDER BY i)",
        &sites,
        &ats,
        &results as &[&str],
        &buckets as &[Option<i32>],
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The bucket of a latency: the first whose bound it does not exceed.
pub fn bucket(latency_ms: u32) -> i32 {
    LATENCY_BUCKETS_MS
        .iter()
        .position(|bound| latency_ms <= *bound)
        .unwrap_or(LATENCY_BUCKETS_MS.len()) as i32
}

/// The `q` quantile (0..1) of a latency histogram, as the upper bound of the bucket it
/// falls in (the slowest bucket reports twice the last bound). `None` without probes.
pub fn quantile(buckets: &[i64], q: f64) -> Option<u32> {
    let total: i64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (i, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(
                LATENCY_BUCKETS_MS
                    .get(i)
                    .copied()
                    .unwrap_or(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1] * 2),
            );
        }
    }
    None
}

/// A site's health report, as its page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// None until the monitor has checked the site.
    pub state: Option<Health>,
    pub since: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    /// One per day, oldest first, the last being today: (day, checks, checks up or degraded).
    pub days: Vec<(NaiveDate, i64, i64)>,
    /// Share of checks up (or degraded) over 24 hours, 7 days and 30 days; None without checks.
    pub uptime: [Option<f64>; 3],
    /// Per hour of the last 24, oldest first: (hour, p50 ms, p95 ms).
    pub latency: Vec<(DateTime<Utc>, Option<u32>, Option<u32>)>,
    /// The monitor's restarts, newest first: (at, attempt, action, reason, waited ms).
    pub restarts: Vec<(DateTime<Utc>, i32, String, String, i64)>,
    pub memory_bytes: Option<i64>,
    pub cpu_percent: Option<f32>,
}

/// The report of one of the member's sites.
pub async fn report(platform: &Platform, by: &Membership, site_id: Uuid) -> Result<HealthReport> {
    by.require(Action::ViewSites)?;
    // Scoped: the site must belong to the caller's organization.
    crate::sites::get(platform, by, site_id).await?;
    let db = &platform.db;
    let health = sqlx::query!(
        "SELECT state, since, reason, memory_bytes, cpu_percent FROM site_health WHERE site_id = $1",
        site_id
    )
    .fetch_optional(db)
    .await?;
    let today = Utc::now().date_naive();
    let first = today - chrono::Days::new(89);
    let rows = sqlx::query!(
        r#"SELECT (hour AT TIME ZONE 'UTC')::date AS "day!", sum(checks)::bigint AS "checks!",
                  sum(up + degraded)::bigint AS "up!"
             FROM site_check_hours
            WHERE site_id = $1 AND hour >= $2::date::timestamp AT TIME ZONE 'UTC'
            GROUP BY 1"#,
        site_id,
        first
    )
    .fetch_all(db)
    .await?;
    let days = first
        .iter_days()
        .take(90)
        .map(|day| {
            rows.iter()
                .find(|r| r.day == day)
                .map_or((day, 0, 0), |r| (day, r.checks, r.up))
        })
        .collect();
    let uptime_row = sqlx::query!(
        r#"SELECT sum(checks) FILTER (WHERE hour > now() - interval '24 hours') AS c1,
                  sum(up + degraded) FILTER (WHERE hour > now() - interval '24 hours') AS u1,
                  sum(checks) FILTER (WHERE hour > now() - interval '7 days') AS c7,
                  sum(up + degraded) FILTER (WHERE hour > now() - interval '7 days') AS u7,
                  sum(checks) AS c30, sum(up + degraded) AS u30
             FROM site_check_hours
            WHERE site_id = $1 AND hour > now() - interval '30 days'"#,
        site_id
    )
    .fetch_one(db)
    .await?;
    let share = |checks: Option<i64>, up: Option<i64>| match (checks, up) {
        (Some(c), Some(u)) if c > 0 => Some(u as f64 / c as f64),
        _ => None,
    };
    let uptime = [
        share(uptime_row.c1, uptime_row.u1),
        share(uptime_row.c7, uptime_row.u7),
        share(uptime_row.c30, uptime_row.u30),
    ];
    let hours = sqlx::query!(
        "SELECT hour, latency_buckets FROM site_check_hours
          WHERE site_id = $1 AND hour > now() - interval '24 hours' ORDER BY hour",
        site_id
    )
    .fetch_all(db)
    .await?;
    let latency = hours
        .into_iter()
        .map(|h| {
            let buckets: Vec<i64> = h.latency_buckets.into_iter().map(i64::from).collect();
            (h.hour, quantile(&buckets, 0.5), quantile(&buckets, 0.95))
        })
        .collect();
    let restarts = sqlx::query!(
        "SELECT at, attempt, action, reason, waited_ms FROM site_restarts
          WHERE site_id = $1 ORDER BY at DESC LIMIT 20",
        site_id
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| (r.at, r.attempt, r.action, r.reason, r.waited_ms))
    .collect();
    Ok(HealthReport {
        state: health
            .as_ref()
            .map(|h| Health::stored(&h.state))
            .transpose()?,
        since: health.as_ref().map(|h| h.since),
        reason: health.as_ref().and_then(|h| h.reason.clone()),
        days,
        uptime,
        latency,
        restarts,
        memory_bytes: health.as_ref().and_then(|h| h.memory_bytes),
        cpu_percent: health.as_ref().and_then(|h| h.cpu_percent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_they_fit() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(10), 0);
        assert_eq!(bucket(11), 1);
        assert_eq!(bucket(5_000), 8);
        assert_eq!(bucket(5_001), 9);
    }

    #[test]
    fn quantiles_come_from_the_histogram() {
        // 90 fast probes (<= 10 ms), 10 slow ones (<= 500 ms).
        let mut buckets = vec![0i64; 10];
        buckets[0] = 90;
        buckets[5] = 10;
        assert_eq!(quantile(&buckets, 0.5), Some(10));
        assert_eq!(quantile(&buckets, 0.95), Some(500));
        assert_eq!(quantile(&[0; 10], 0.5), None);
        let mut slowest = vec![0i64; 10];
        slowest[9] = 1;
        assert_eq!(quantile(&slowest, 0.5), Some(10_000));
    }
}
