//! The operator's overview: the business at a glance. Revenue comes from
//! [`billing::revenue`] (its definitions are in `docs/metrics.md`); the rest is counted from
//! the tables that record it: sign-ups, activations and conversions per week, sites by
//! status, open incidents, provisioning and deployments, dead jobs.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use super::Operator;
use crate::Platform;
use crate::billing::revenue::{self, Movement, PlanCount, Point};
use crate::incidents::IncidentKind;
use crate::kernel::Result;

/// How many months the charts cover.
pub const MONTHS: u32 = 12;
/// How many weeks the funnel covers.
pub const WEEKS: i64 = 12;

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub at: DateTime<Utc>,
    pub local_billing: bool,
    pub mrr_cents: i64,
    pub customers: i64,
    /// Paying organizations now, per plan and interval.
    pub subscriptions: Vec<PlanCount>,
    /// From the start of this month to now.
    pub this_month: Option<Movement>,
    /// The last full month, with its start.
    pub last_month: Option<Period>,
    /// Revenue at the start of each of the last [`MONTHS`] months and of this one, then
    /// now; each with the movement since the one before.
    pub months: Vec<Point>,
    pub weeks: Vec<Week>,
    /// Live sites per status (deleted ones left out), and how many of them are suspended.
    pub sites: Vec<(String, i64)>,
    pub suspended_sites: i64,
    pub open_incidents: Vec<(IncidentKind, i64)>,
    /// Over the last 7 and 30 days.
    pub provisioning: [Provisioning; 2],
    /// Every deployment (create, restart, plan change, ...) finished in the last 30 days.
    pub deployments: Outcomes,
    pub dead_jobs: i64,
}

impl Overview {
    /// Annual run rate: MRR times 12.
    pub fn arr_cents(&self) -> i64 {
        self.mrr_cents * 12
    }

    /// Average revenue per paying account (organization), if any pays.
    pub fn arpa_cents(&self) -> Option<i64> {
        (self.customers > 0).then(|| (self.mrr_cents as f64 / self.customers as f64).round() as i64)
    }
}

/// A full month's revenue figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Period {
    pub start: NaiveDate,
    pub start_mrr_cents: i64,
    pub start_customers: i64,
    pub movement: Movement,
}

impl Period {
    /// Customers lost in the month / customers at its start. Those who joined and left
    /// within the month were never at its start and do not count.
    pub fn customer_churn(&self) -> Option<f64> {
        ratio(self.movement.churned_customers, self.start_customers)
    }

    /// (Churned + contraction) / MRR at the start.
    pub fn gross_mrr_churn(&self) -> Option<f64> {
        ratio(
            self.movement.churned + self.movement.contraction,
            self.start_mrr_cents,
        )
    }

    /// (Churned + contraction - expansion - reactivation) / MRR at the start: negative when
    /// the customers who stayed grew more than the others shrank.
    pub fn net_mrr_churn(&self) -> Option<f64> {
        let m = &self.movement;
        ratio(
            m.churned + m.contraction - m.expansion - m.reactivation,
            self.start_mrr_cents,
        )
    }
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// One week of the funnel (weeks start on Monday, UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Week {
    /// Monday, 00:00 UTC.
    pub start: DateTime<Utc>,
    /// Users who signed up.
    pub signups: i64,
    /// Organizations whose first site became active.
    pub activations: i64,
    /// Organizations that paid for a plan for the first time.
    pub conversions: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Outcomes {
    pub succeeded: i64,
    pub failed: i64,
}

impl Outcomes {
    pub fn success_rate(&self) -> Option<f64> {
        ratio(self.succeeded, self.succeeded + self.failed)
    }
}

/// New sites over a window: how many were provisioned, how many failed, and how long the
/// successful ones took from the request to active.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Provisioning {
    pub days: i64,
    pub outcomes: Outcomes,
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
}

/// The first day of the month `back` months before `day`'s.
fn month_start(day: NaiveDate, back: u32) -> NaiveDate {
    let first = day.with_day(1).unwrap_or(day);
    first.checked_sub_months(Months::new(back)).unwrap_or(first)
}

/// Everything on the overview, as at `now`.
pub async fn overview(
    platform: &Platform,
    _operator: &Operator,
    now: DateTime<Utc>,
) -> Result<Overview> {
    let today = now.date_naive();
    let starts: Vec<NaiveDate> = (0..=MONTHS)
        .rev()
        .map(|back| month_start(today, back))
        .collect();
    let db = &platform.db;
    let week_start = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let first_week = week_start - Duration::weeks(WEEKS - 1);
    // Independent queries, each on its own connection at once: the overview takes as long
    // as its slowest one (the revenue series), not their sum.
    let weeks = async {
        let weeks: Vec<Week> = sqlx::query_as(
            "SELECT w.start,
                    (SELECT count(*) FROM users u
                      WHERE u.created_at >= w.start AND u.created_at < w.start + interval '7 days') AS signups,
                    (SELECT count(*) FROM organizations o
                      WHERE o.activated_at >= w.start AND o.activated_at < w.start + interval '7 days') AS activations,
                    (SELECT count(*) FROM organizations o
                      WHERE o.first_paid_at >= w.start AND o.first_paid_at < w.start + interval '7 days') AS conversions
               FROM generate_series($1::timestamptz, $2::timestamptz, interval '7 days') AS w (start)
              ORDER BY w.start",
        )
        .bind(first_week.and_time(NaiveTime::MIN).and_utc())
        .bind(week_start.and_time(NaiveTime::MIN).and_utc())
        .fetch_all(db)
        .await?;
        Ok::<_, crate::kernel::Error>(weeks)
    };
    let sites = async {
        let sites: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM sites WHERE status <> 'deleted' GROUP BY status ORDER BY count(*) DESC, status",
        )
        .fetch_all(db)
        .await?;
        let suspended = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM sites WHERE status <> 'deleted' AND suspended_at IS NOT NULL"#
        )
        .fetch_one(db)
        .await?;
        Ok((sites, suspended))
    };
    let deployments = async {
        let outcomes: Outcomes = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                    count(*) FILTER (WHERE status = 'failed') AS failed
               FROM deployments WHERE finished_at >= $1 - interval '30 days'",
        )
        .bind(now)
        .fetch_one(db)
        .await?;
        Ok(outcomes)
    };
    let dead_jobs = async {
        Ok(
            sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM jobs WHERE state = 'dead'"#)
                .fetch_one(db)
                .await?,
        )
    };
    let (
        months,
        subscriptions,
        weeks,
        (sites, suspended_sites),
        open_incidents,
        week,
        month,
        deployments,
        dead_jobs,
    ) = tokio::try_join!(
        revenue::series(platform, &starts, now),
        revenue::by_plan(platform, now),
        weeks,
        sites,
        crate::incidents::open_counts(db),
        provisioning(platform, now, 7),
        provisioning(platform, now, 30),
        deployments,
        dead_jobs,
    )?;
    let current = months.last().cloned();
    let this_month = current.as_ref().and_then(|p| p.movement);
    // The last full month: from the start of the previous month to the start of this one.
    let last_month = match months
        .len()
        .checked_sub(3)
        .map(|i| (&months[i], &months[i + 1]))
    {
        Some((start, end)) => end.movement.map(|movement| Period {
            start: start.start.unwrap_or(today),
            start_mrr_cents: start.mrr_cents,
            start_customers: start.customers,
            movement,
        }),
        None => None,
    };
    let provisioning = [week, month];
    Ok(Overview {
        at: now,
        local_billing: platform.billing.is_local(),
        mrr_cents: current.as_ref().map_or(0, |p| p.mrr_cents),
        customers: current.as_ref().map_or(0, |p| p.customers),
        subscriptions,
        this_month,
        last_month,
        months,
        weeks,
        sites,
        suspended_sites,
        open_incidents,
        provisioning,
        deployments,
        dead_jobs,
    })
}

/// Sites requested in the last `days` whose first deployment finished: how many became
/// active, how many failed, and percentiles of the time from request to active.
async fn provisioning(platform: &Platform, now: DateTime<Utc>, days: i64) -> Result<Provisioning> {
    #[derive(sqlx::FromRow)]
    struct Row {
        succeeded: i64,
        failed: i64,
        p50: Option<f64>,
        p95: Option<f64>,
    }
    let row: Row = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                count(*) FILTER (WHERE status = 'failed') AS failed,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))
                    FILTER (WHERE status = 'succeeded') AS p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))
                    FILTER (WHERE status = 'succeeded') AS p95
           FROM deployments
          WHERE reason = 'create' AND finished_at >= $1 - make_interval(days => $2::int)",
    )
    .bind(now)
    .bind(days as i32)
    .fetch_one(&platform.db)
    .await?;
    Ok(Provisioning {
        days,
        outcomes: Outcomes {
            succeeded: row.succeeded,
            failed: row.failed,
        },
        p50_seconds: row.p50,
        p95_seconds: row.p95,
    })
}
