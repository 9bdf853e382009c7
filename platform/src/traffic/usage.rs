//! Usage accounting: what each site's visitors cost, counted in memory by the proxy,
//! flushed to Postgres in batches, rolled up per month, and read back for the graphs.
//!
//! Counting is a handful of relaxed atomic additions per request on the site's own
//! [`SiteMeter`]; nothing is locked on the request path. [`Meters::flush`] swaps every
//! counter to zero and adds what it took to `usage_hourly` (per site and hour) and
//! `usage_records` (per site and month) in one transaction; if that transaction fails the
//! taken counts are put back, so nothing is lost while Postgres is away. What a crash
//! loses is at most one flush interval (`usage.flush_interval_secs`, 10 s by default).
//!
//! The same flush adds requests, and the 5xx the site itself answered, per minute to
//! `usage_minutes`, which the health monitor reads for error rates
//! ([`crate::monitor::traffic`]).
//!
//! Bandwidth is request plus response body bytes as they crossed the proxy (headers are not
//! counted). Storage is sampled: the site's schema size plus its data volume's size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::catalog::plans::Limits;
use crate::kernel::{Error, Result};
use crate::tenancy::{Action, Membership};

/// Upper bounds (inclusive, milliseconds) of the latency histogram's buckets; one more
/// bucket counts everything slower.
pub const LATENCY_BUCKETS_MS: [u64; 10] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000];
const BUCKETS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// One finished exchange, as the proxy saw it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency: Duration,
    /// A successful GET of an HTML page.
    pub page_view: bool,
    /// The status came from the site itself, not from one of the proxy's own pages (busy,
    /// no answer, too large): only the site's own 5xx count towards its error rate.
    pub site_answered: bool,
}

/// One site's counters since the last flush.
#[derive(Debug)]
pub struct SiteMeter {
    pub site_id: Uuid,
    pub organization_id: Uuid,
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// 1xx..5xx; anything else counts as 5xx.
    status: [AtomicU64; 5],
    page_views: AtomicU64,
    latency: [AtomicU64; BUCKETS],
    /// 5xx answered by the site itself.
    site_5xx: AtomicU64,
}

/// A flushed copy of a meter's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub status: [u64; 5],
    pub page_views: u64,
    pub latency: [u64; BUCKETS],
    pub site_5xx: u64,
}

impl Counts {
    fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

impl SiteMeter {
    pub fn new(site_id: Uuid, organization_id: Uuid) -> Self {
        Self {
            site_id,
            organization_id,
            requests: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            status: Default::default(),
            page_views: AtomicU64::new(0),
            latency: Default::default(),
            site_5xx: AtomicU64::new(0),
        }
    }

    pub fn record(&self, exchange: &Exchange) {
        let relaxed = Ordering::Relaxed;
        self.requests.fetch_add(1, relaxed);
        self.bytes_in.fetch_add(exchange.bytes_in, relaxed);
        self.bytes_out.fetch_add(exchange.bytes_out, relaxed);
        let class = match exchange.status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        self.status[class].fetch_add(1, relaxed);
        if class == 4 && exchange.site_answered {
            self.site_5xx.fetch_add(1, relaxed);
        }
        if exchange.page_view {
            self.page_views.fetch_add(1, relaxed);
        }
        self.latency[latency_bucket(exchange.latency)].fetch_add(1, relaxed);
    }

    /// Takes the counts, leaving zeros.
    fn take(&self) -> Counts {
        let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
        Counts {
            requests: take(&self.requests),
            bytes_in: take(&self.bytes_in),
            bytes_out: take(&self.bytes_out),
            status: std::array::from_fn(|i| take(&self.status[i])),
            page_views: take(&self.page_views),
            latency: std::array::from_fn(|i| take(&self.latency[i])),
            site_5xx: take(&self.site_5xx),
        }
    }

    /// Puts back counts a failed flush took.
    fn restore(&self, counts: &Counts) {
        let add = |c: &AtomicU64, n: u64| c.fetch_add(n, Ordering::Relaxed);
        add(&self.requests, counts.requests);
        add(&self.bytes_in, counts.bytes_in);
        add(&self.bytes_out, counts.bytes_out);
        for (c, n) in self.status.iter().zip(counts.status) {
            add(c, n);
        }
        add(&self.page_views, counts.page_views);
        for (c, n) in self.latency.iter().zip(counts.latency) {
            add(c, n);
        }
        add(&self.site_5xx, counts.site_5xx);
    }
}

fn latency_bucket(latency: Duration) -> usize {
    let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    LATENCY_BUCKETS_MS
        .iter()
        .position(|&bound| ms <= bound)
        .unwrap_or(LATENCY_BUCKETS_MS.len())
}

/// Every site's meter in this process.
#[derive(Debug, Default)]
pub struct Meters {
    sites: Mutex<HashMap<Uuid, Arc<SiteMeter>>>,
}

impl Meters {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<SiteMeter>>> {
        // The map holds no invariant a panicking holder could break.
        self.sites.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The site's meter, made on first use and kept for the life of the process.
    pub fn meter(&self, site_id: Uuid, organization_id: Uuid) -> Arc<SiteMeter> {
        self.lock()
            .entry(site_id)
            .or_insert_with(|| Arc::new(SiteMeter::new(site_id, organization_id)))
            .clone()
    }

    /// Adds everything counted since the last flush to Postgres; returns how many sites
    /// had traffic. On failure the counts stay in memory for the next flush.
    #[tracing::instrument(skip_all)]
    pub async fn flush(&self, db: &sqlx::PgPool) -> Result<usize> {
        let meters: Vec<Arc<SiteMeter>> = self.lock().values().cloned().collect();
        let taken: Vec<(Arc<SiteMeter>, Counts)> = meters
            .into_iter()
            .map(|m| {
                let counts = m.take();
                (m, counts)
            })
            .filter(|(_, counts)| !counts.is_empty())
            .collect();
        if taken.is_empty() {
            return Ok(0);
        }
        match write(db, Utc::now(), &taken).await {
            Ok(()) => Ok(taken.len()),
            Err(error) => {
                for (meter, counts) in &taken {
                    meter.restore(counts);
                }
                Err(error)
            }
        }
    }

    /// Flushes every `interval` until `shutdown`, then once more.
    pub async fn run_flusher(
        self: Arc<Self>,
        db: sqlx::PgPool,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(error) = self.flush(&db).await {
                        tracing::warn!(%error, "usage flush failed; counts kept for the next one");
                    }
                }
                () = &mut shutdown => break,
            }
        }
        match self.flush(&db).await {
            Ok(sites) => tracing::info!(sites, "usage flushed at shutdown"),
            Err(error) => tracing::error!(%error, "usage flush at shutdown failed; counts lost"),
        }
    }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn month_start(at: DateTime<Utc>) -> NaiveDate {
    // The first of a month always exists.
    at.date_naive().with_day(1).unwrap_or(at.date_naive())
}

/// The start of the hour `at` falls in: the key of `usage_hourly`.
fn hour_start(at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    at.date_naive()
        .and_hms_opt(chrono::Timelike::hour(&at), 0, 0)
        .map(|h| h.and_utc())
        .ok_or_else(|| Error::Internal("no such hour".to_owned()))
}

async fn write(
    db: &sqlx::PgPool,
    at: DateTime<Utc>,
    taken: &[(Arc<SiteMeter>, Counts)],
) -> Result<()> {
    let hour = hour_start(at)?;
    let period = month_start(at);
    let mut tx = db.begin().await?;
    for (meter, c) in taken {
        let [s1, s2, s3, s4, s5] = c.status.map(as_i64);
        let latency: Vec<i64> = c.latency.iter().copied().map(as_i64).collect();
        sqlx::query!(
            "INSERT INTO usage_hourly AS u (site_id, organization_id, hour, requests, bytes_in, bytes_out,
                    status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, page_views, latency_buckets)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (site_id, hour) DO UPDATE SET
                requests = u.requests + EXCLUDED.requests,
                bytes_in = u.bytes_in + EXCLUDED.bytes_in,
                bytes_out = u.bytes_out + EXCLUDED.bytes_out,
                status_1xx = u.status_1xx + EXCLUDED.status_1xx,
                status_2xx = u.status_2xx + EXCLUDED.status_2xx,
                status_3xx = u.status_3xx + EXCLUDED.status_3xx,
                status_4xx = u.status_4xx + EXCLUDED.status_4xx,
                status_5xx = u.status_5xx + EXCLUDED.status_5xx,
                page_views = u.page_views + EXCLUDED.page_views,
                latency_buckets = ARRAY(
                    SELECT COALESCE(a, 0) + COALESCE(b, 0)
                      FROM unnest(u.latency_buckets, EXCLUDED.latency_buckets) AS t(a, b))",
            meter.site_id,
            meter.organization_id,
            hour,
            as_i64(c.requests),
            as_i64(c.bytes_in),
            as_i64(c.bytes_out),
            s1,
            s2,
            s3,
            s4,
            s5,
            as_i64(c.page_views),
            &latency
        )
        .execute(&mut *tx)
        .await?;
        if c.requests > 0 {
            sqlx::query!(
                "INSERT INTO usage_minutes AS m (site_id, organization_id, minute, requests, status_5xx)
                 VALUES ($1, $2, date_trunc('minute', $3::timestamptz), $4, $5)
                 ON CONFLICT (site_id, minute) DO UPDATE SET
                    requests = m.requests + EXCLUDED.requests,
                    status_5xx = m.status_5xx + EXCLUDED.status_5xx",
                meter.site_id,
                meter.organization_id,
                at,
                as_i64(c.requests),
                as_i64(c.site_5xx)
            )
            .execute(&mut *tx)
            .await?;
        }
        for (metric, quantity) in [
            ("requests", c.requests),
            ("bandwidth", c.bytes_in.saturating_add(c.bytes_out)),
        ] {
            sqlx::query!(
                "INSERT INTO usage_records AS r (site_id, organization_id, period, metric, quantity)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (site_id, period, metric) DO UPDATE SET
                    quantity = r.quantity + EXCLUDED.quantity, updated_at = now()",
                meter.site_id,
                meter.organization_id,
                period,
                metric,
                as_i64(quantity)
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Records a storage sample (bytes) for the site: the hour's gauge and the month's largest.
pub async fn record_storage(db: &sqlx::PgPool, site_id: Uuid, bytes: u64) -> Result<()> {
    let now = Utc::now();
    let hour = hour_start(now)?;
    let mut tx = db.begin().await?;
    sqlx::query!(
        "INSERT INTO usage_hourly AS u (site_id, organization_id, hour, storage_bytes)
         SELECT id, organization_id, $2, $3 FROM sites WHERE id = $1
         ON CONFLICT (site_id, hour) DO UPDATE SET storage_bytes = EXCLUDED.storage_bytes",
        site_id,
        hour,
        as_i64(bytes)
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO usage_records AS r (site_id, organization_id, period, metric, quantity)
         SELECT id, organization_id, $2, 'storage', $3 FROM sites WHERE id = $1
         ON CONFLICT (site_id, period, metric) DO UPDATE SET
            quantity = GREATEST(r.quantity, EXCLUDED.quantity), updated_at = now()",
        site_id,
        month_start(now),
        as_i64(bytes)
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One day of a usage series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    pub day: NaiveDate,
    pub requests: u64,
    pub bandwidth_bytes: u64,
    /// The day's largest storage sample (summed over sites), if any was taken.
    pub storage_bytes: Option<u64>,
    pub page_views: u64,
}

/// One site's usage this month against its plan's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteMonth {
    pub site_id: Uuid,
    pub slug: String,
    pub requests: u64,
    pub bandwidth_bytes: u64,
    /// The latest storage sample this month.
    pub storage_bytes: u64,
}

/// What the usage pages show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The last `days` days, oldest first, one entry per day (zeros included).
    pub days: Vec<Day>,
    pub period: NaiveDate,
    pub sites: Vec<SiteMonth>,
    pub limits: Limits,
    pub plan_name: String,
}

/// Usage of the caller's organization (or of one of its sites) over the last `days` days,
/// and this month's totals per site. Another organization's site is `NotFound`.
pub async fn report(
    platform: &Platform,
    by: &Membership,
    site_id: Option<Uuid>,
    days: u32,
) -> Result<Report> {
    by.require(Action::ViewSites)?;
    if let Some(id) = site_id {
        let mine = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM sites WHERE id = $1 AND organization_id = $2) AS "mine!""#,
            id,
            by.organization_id
        )
        .fetch_one(&platform.db)
        .await?;
        if !mine {
            return Err(Error::NotFound);
        }
    }
    let days = daily(platform, by.organization_id, site_id, days).await?;
    let period = month_start(Utc::now());
    let sites = this_month(platform, by.organization_id, site_id, period).await?;
    let plan_id = sqlx::query_scalar!(
        "SELECT plan_id FROM organizations WHERE id = $1",
        by.organization_id
    )
    .fetch_one(&platform.db)
    .await?;
    let plan = platform
        .plan(&plan_id)
        .ok_or_else(|| Error::Internal(format!("plan {plan_id} is not in the catalog")))?;
    Ok(Report {
        days,
        period,
        sites,
        limits: plan.limits.clone(),
        plan_name: plan.name.clone(),
    })
}

/// One row per day of the last `days` (oldest first), zero where nothing was counted.
async fn daily(
    platform: &Platform,
    organization_id: Uuid,
    site_id: Option<Uuid>,
    days: u32,
) -> Result<Vec<Day>> {
    let days = i32::try_from(days.clamp(1, 366)).unwrap_or(30);
    let rows = sqlx::query!(
        r#"WITH span AS (
               SELECT generate_series(
                   (now() AT TIME ZONE 'UTC')::date - ($3::int - 1),
                   (now() AT TIME ZONE 'UTC')::date, interval '1 day')::date AS day),
           hourly AS (
               SELECT (hour AT TIME ZONE 'UTC')::date AS day, site_id,
                      sum(requests) AS requests, sum(bytes_in + bytes_out) AS bandwidth,
                      sum(page_views) AS page_views, max(storage_bytes) AS storage
                 FROM usage_hourly
                WHERE organization_id = $1 AND ($2::uuid IS NULL OR site_id = $2)
                  AND hour >= (now() AT TIME ZONE 'UTC')::date - ($3::int - 1)
                GROUP BY 1, 2)
           SELECT span.day AS "day!",
                  COALESCE(sum(h.requests), 0)::bigint AS "requests!",
                  COALESCE(sum(h.bandwidth), 0)::bigint AS "bandwidth!",
                  COALESCE(sum(h.page_views), 0)::bigint AS "page_views!",
                  sum(h.storage)::bigint AS storage
             FROM span LEFT JOIN hourly h ON h.day = span.day
            GROUP BY span.day ORDER BY span.day"#,
        organization_id,
        site_id,
        days
    )
    .fetch_all(&platform.db)
    .await?;
    let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(rows
        .into_iter()
        .map(|r| Day {
            day: r.day,
            requests: unsigned(r.requests),
            bandwidth_bytes: unsigned(r.bandwidth),
            storage_bytes: r.storage.map(unsigned),
            page_views: unsigned(r.page_views),
        })
        .collect())
}

/// This month's totals per site, from the monthly records (and the latest storage sample).
async fn this_month(
    platform: &Platform,
    organization_id: Uuid,
    site_id: Option<Uuid>,
    period: NaiveDate,
) -> Result<Vec<SiteMonth>> {
    let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(sqlx::query!(
        r#"SELECT s.id, s.slug,
                  COALESCE((SELECT quantity FROM usage_records r
                             WHERE r.site_id = s.id AND r.period = $3 AND r.metric = 'requests'), 0) AS "requests!",
                  COALESCE((SELECT quantity FROM usage_records r
                             WHERE r.site_id = s.id AND r.period = $3 AND r.metric = 'bandwidth'), 0) AS "bandwidth!",
                  COALESCE((SELECT storage_bytes FROM usage_hourly h
                             WHERE h.site_id = s.id AND h.storage_bytes IS NOT NULL AND h.hour >= $3
                             ORDER BY h.hour DESC LIMIT 1), 0) AS "storage!"
             FROM sites s
            WHERE s.organization_id = $1 AND s.status <> 'deleted' AND ($2::uuid IS NULL OR s.id = $2)
            ORDER BY s.created_at"#,
        organization_id,
        site_id,
        period
    )
    .fetch_all(&platform.db)
    .await?
    .into_iter()
    .map(|r| SiteMonth {
        site_id: r.id,
        slug: r.slug,
        requests: unsigned(r.requests),
        bandwidth_bytes: unsigned(r.bandwidth),
        storage_bytes: unsigned(r.storage),
    })
    .collect())
}

/// How full a limit is, for the bars: the fraction used and the warning level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    Fine,
    /// 80% or more.
    Warning,
    /// 100% or more.
    Exceeded,
}

pub fn level(used: u64, limit: u64) -> Level {
    if limit == 0 {
        return if used > 0 {
            Level::Exceeded
        } else {
            Level::Fine
        };
    }
    // used / limit >= 0.8  <=>  5 * used >= 4 * limit, without floating point.
    let (used, limit) = (u128::from(used), u128::from(limit));
    if used >= limit {
        Level::Exceeded
    } else if 5 * used >= 4 * limit {
        Level::Warning
    } else {
        Level::Fine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_that_holds_it() {
        assert_eq!(latency_bucket(Duration::from_micros(300)), 0);
        assert_eq!(latency_bucket(Duration::from_millis(5)), 0);
        assert_eq!(latency_bucket(Duration::from_millis(6)), 1);
        assert_eq!(latency_bucket(Duration::from_millis(10_000)), 9);
        assert_eq!(latency_bucket(Duration::from_secs(60)), 10);
    }

    #[test]
    fn a_meter_counts_and_a_failed_flush_puts_counts_back() {
        let meter = SiteMeter::new(Uuid::new_v4(), Uuid::new_v4());
        for status in [200, 204, 301, 404, 502, 999] {
            meter.record(&Exchange {
                status,
                bytes_in: 10,
                bytes_out: 100,
                latency: Duration::from_millis(3),
                page_view: status == 200,
                site_answered: status != 502,
            });
        }
        let taken = meter.take();
        assert_eq!(taken.requests, 6);
        assert_eq!((taken.bytes_in, taken.bytes_out), (60, 600));
        assert_eq!(taken.status, [0, 2, 1, 1, 2]);
        assert_eq!(taken.site_5xx, 1, "the proxy's own 502 is not the site's");
        assert_eq!(taken.page_views, 1);
        assert_eq!(taken.latency[0], 6);
        assert!(meter.take().is_empty());
        meter.restore(&taken);
        assert_eq!(meter.take(), taken);
    }

    #[test]
    fn warnings_start_at_eighty_percent() {
        assert_eq!(level(79, 100), Level::Fine);
        assert_eq!(level(80, 100), Level::Warning);
        assert_eq!(level(99, 100), Level::Warning);
        assert_eq!(level(100, 100), Level::Exceeded);
        assert_eq!(level(0, 0), Level::Fine);
        assert_eq!(level(1, 0), Level::Exceeded);
        assert_eq!(level(u64::MAX, u64::MAX), Level::Exceeded);
    }
}
