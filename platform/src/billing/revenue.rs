//! Recurring revenue: what each organization pays per month now, a daily snapshot of it,
//! and the movements between two moments (new, expansion, contraction, churned,
//! reactivated). The definitions are written down in `docs/metrics.md`; this module is
//! their one implementation, in both billing modes:
//!
//! * with Stripe, an organization's monthly recurring revenue is its subscription's
//!   (`billing_accounts.mrr_cents`, stored from Stripe's subscription with its discounts
//!   whenever it is applied), while the subscription is active, or past due or unpaid for
//!   at most 30 days;
//! * in local billing mode, it is the catalog's monthly price of the plan an operator
//!   assigned.
//!
//! Movements are computed from snapshots, never from what an organization pays now: the
//! `mrr_snapshot` job stores every paying organization's figure at the start of each day.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::Platform;
use crate::kernel::Result;

/// Unpaid for longer than this, a subscription no longer counts as revenue.
pub const UNPAID_GRACE_DAYS: i32 = 30;

/// Every organization paying at `at` with its plan, interval and monthly amount: the one
/// definition of "counts as revenue". Parameters: `$1` local billing mode, `$2` the moment,
/// `$3`/`$4` the catalog's plan ids and monthly prices, `$5` the unpaid grace in days.
pub(crate) const LIVE: &str = "
    SELECT a.organization_id, a.plan_id, a.billing_interval, a.mrr_cents
      FROM billing_accounts a
     WHERE NOT $1 AND a.status IN ('active', 'past_due', 'unpaid') AND a.mrr_cents > 0
       AND a.plan_id IS NOT NULL AND a.billing_interval IS NOT NULL
       AND (a.status = 'active' OR a.payment_failing_since IS NULL
            OR a.payment_failing_since > $2 - make_interval(days => $5))
    UNION ALL
    SELECT o.id, o.plan_id, 'monthly', p.cents
      FROM organizations o
      JOIN unnest($3::text[], $4::bigint[]) AS p (plan_id, cents) ON p.plan_id = o.plan_id
     WHERE $1 AND p.cents > 0";

/// [`LIVE`]'s parameters.
pub(crate) struct Live {
    local: bool,
    at: DateTime<Utc>,
    plans: Vec<String>,
    prices: Vec<i64>,
}

pub(crate) type Query<'q, O> =
    sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

impl Live {
    pub(crate) fn new(platform: &Platform, at: DateTime<Utc>) -> Self {
        let (plans, prices) = platform
            .catalog
            .plans()
            .iter()
            .map(|p| {
                let cents = i64::try_from(p.monthly_cents.0).unwrap_or(i64::MAX);
                (p.id.as_str().to_owned(), cents)
            })
            .unzip();
        Self {
            local: platform.billing.is_local(),
            at,
            plans,
            prices,
        }
    }

    /// Binds `$1` to `$5`.
    pub(crate) fn bind<'q, O>(&'q self, query: Query<'q, O>) -> Query<'q, O> {
        query
            .bind(self.local)
            .bind(self.at)
            .bind(&self.plans)
            .bind(&self.prices)
            .bind(UNPAID_GRACE_DAYS)
    }
}

/// Records an organization's first payment (a conversion), once.
pub(crate) async fn converted(executor: impl PgExecutor<'_>, organization_id: Uuid) -> Result<()> {
    sqlx::query!(
        "UPDATE organizations SET first_paid_at = now() WHERE id = $1 AND first_paid_at IS NULL",
        organization_id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Stores who pays what at the start of `day` (replacing a snapshot of that day taken
/// before). Returns how many organizations count as revenue.
pub async fn take_snapshot(platform: &Platform, day: NaiveDate) -> Result<u64> {
    fill_unknown_amounts(platform).await?;
    let live = Live::new(platform, day.and_time(NaiveTime::MIN).and_utc());
    let mut tx = platform.db.begin().await?;
    // The day's row first: a second snapshot of the same day at once waits here for the
    // first, then replaces its rows.
    sqlx::query!(
        "INSERT INTO mrr_snapshot_days (day, billing_mode) VALUES ($1, $2)
         ON CONFLICT (day) DO UPDATE SET billing_mode = EXCLUDED.billing_mode, taken_at = now()",
        day,
        if live.local { "local" } else { "stripe" }
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM mrr_snapshots WHERE day = $1", day)
        .execute(&mut *tx)
        .await?;
    let sql = format!(
        "WITH live AS ({LIVE}),
         stored AS (
             INSERT INTO mrr_snapshots (day, organization_id, plan_id, billing_interval, mrr_cents)
             SELECT $6, organization_id, plan_id, billing_interval, mrr_cents FROM live
             RETURNING 1
         )
         SELECT count(*) FROM stored"
    );
    let (stored,): (i64,) = live
        .bind(sqlx::query_as(&sql))
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(u64::try_from(stored).unwrap_or(0))
}

/// With Stripe: live subscriptions whose amount Slipway does not know yet (stored before
/// it kept amounts, or whose discounts could not be read) are fetched from Stripe and
/// applied first, so a snapshot never counts a paying customer as nothing. An error (Stripe
/// unreachable) leaves the day without a snapshot; the job retries.
async fn fill_unknown_amounts(platform: &Platform) -> Result<()> {
    let Some(api) = platform.billing.stripe.as_ref() else {
        return Ok(());
    };
    let unknown = sqlx::query_scalar!(
        r#"SELECT stripe_subscription_id AS "id!" FROM billing_accounts
            WHERE mrr_cents IS NULL AND stripe_subscription_id IS NOT NULL
              AND status IN ('active', 'past_due', 'unpaid')"#
    )
    .fetch_all(&platform.db)
    .await?;
    for id in unknown {
        super::subscriptions::sync_subscription(platform, api, &id).await?;
    }
    Ok(())
}

/// What moved between two moments, in cents per month, and how many paying customers
/// were lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Movement {
    /// Organizations paying at the end that never paid before the start.
    pub new: i64,
    /// Organizations paying at the end that had paid before, but not at the start.
    pub reactivation: i64,
    /// Organizations paying more at the end than at the start.
    pub expansion: i64,
    /// Organizations paying less (but something) at the end.
    pub contraction: i64,
    /// Organizations paying at the start and nothing at the end.
    pub churned: i64,
    pub churned_customers: i64,
}

impl Movement {
    /// The change of MRR over the period: new + reactivation + expansion - contraction -
    /// churned.
    pub fn net(&self) -> i64 {
        self.new + self.reactivation + self.expansion - self.contraction - self.churned
    }
}

/// Revenue at one moment of a [`series`], and what moved since the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The moment asked for; `None` for now.
    pub start: Option<NaiveDate>,
    /// The snapshot the figures come from (the latest at or before `start`); `None` when
    /// there is none (before Slipway kept any), or for now (computed live).
    pub snapshot: Option<NaiveDate>,
    pub mrr_cents: i64,
    pub customers: i64,
    /// Since the previous point; `None` for the first point, or when either end has no
    /// figures.
    pub movement: Option<Movement>,
}

impl Point {
    fn known(&self) -> bool {
        self.start.is_none() || self.snapshot.is_some()
    }
}

/// Revenue at the start of each day in `starts` (ascending) and now (`at`), the last
/// point, with the movements between consecutive points.
pub async fn series(
    platform: &Platform,
    starts: &[NaiveDate],
    at: DateTime<Utc>,
) -> Result<Vec<Point>> {
    let live = Live::new(platform, at);
    let last = i64::try_from(starts.len()).unwrap_or(i64::MAX) + 1;
    #[derive(sqlx::FromRow)]
    struct Row {
        n: i64,
        snapshot: Option<NaiveDate>,
        mrr: i64,
        customers: i64,
        new: i64,
        reactivation: i64,
        expansion: i64,
        contraction: i64,
        churned: i64,
        churned_customers: i64,
    }
    let sql = series_sql();
    let mut tx = roomy_transaction(platform).await?;
    let rows: Vec<Row> = live
        .bind(sqlx::query_as(&sql))
        .bind(starts)
        .bind(last)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut points: Vec<Point> = Vec::with_capacity(rows.len());
    for row in rows {
        let index = usize::try_from(row.n - 1).unwrap_or(usize::MAX);
        let mut point = Point {
            start: starts.get(index).copied(),
            snapshot: row.snapshot,
            mrr_cents: row.mrr,
            customers: row.customers,
            movement: None,
        };
        if points.last().is_some_and(Point::known) && point.known() {
            point.movement = Some(Movement {
                new: row.new,
                reactivation: row.reactivation,
                expansion: row.expansion,
                contraction: row.contraction,
                churned: row.churned,
                churned_customers: row.churned_customers,
            });
        }
        points.push(point);
    }
    Ok(points)
}

/// A transaction for [`series_sql`]: pairing the points sorts or hashes every paying
/// organization once per month, which belongs in memory, not on disk (a few MB at 10,000
/// organizations).
async fn roomy_transaction(
    platform: &Platform,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = platform.db.begin().await?;
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The query behind [`series`]: `$6` the points' days, `$7` their number plus one (now).
fn series_sql() -> String {
    // Each point's organizations and amounts; each organization's consecutive points
    // compared (absent = paying nothing); an organization paying nothing at the start of a
    // period is a reactivation if it paid at any time before that start.
    format!(
        "WITH live AS ({LIVE}),
         points AS (
             SELECT p.n, p.start,
                    -- The latest snapshot at or before the point, if it was taken in this
                    -- billing mode (the other mode's figures are not comparable).
                    (SELECT CASE WHEN d.billing_mode = CASE WHEN $1 THEN 'local' ELSE 'stripe' END
                                 THEN d.day END
                       FROM mrr_snapshot_days d WHERE d.day <= p.start
                      ORDER BY d.day DESC LIMIT 1) AS day
               FROM unnest($6::date[]) WITH ORDINALITY AS p (start, n)
         ),
         vals AS (
             SELECT p.n, s.organization_id AS org, s.mrr_cents AS mrr
               FROM points p JOIN mrr_snapshots s ON s.day = p.day
             UNION ALL
             SELECT $7::bigint, organization_id, mrr_cents FROM live
         ),
         -- Each organization's points in order (one sort): the point before and after.
         seq AS (
             SELECT n, org, mrr, lag(n) OVER w AS prev_n, lag(mrr) OVER w AS prev_mrr,
                    lead(n) OVER w AS next_n
               FROM vals WINDOW w AS (PARTITION BY org ORDER BY n)
         ),
         judged AS MATERIALIZED (
             -- Paying at point n: what it paid at n - 1 (nothing if absent there), and
             -- whether it paid before n - 1 (an earlier point, else an earlier snapshot).
             SELECT q.n, CASE WHEN q.prev_n = q.n - 1 THEN q.prev_mrr ELSE 0 END AS before,
                    q.mrr AS after,
                    CASE WHEN q.prev_n = q.n - 1 THEN false
                         WHEN q.prev_n IS NOT NULL THEN true
                         ELSE EXISTS (SELECT 1 FROM mrr_snapshots s JOIN points prev ON prev.n = q.n - 1
                                       WHERE s.organization_id = q.org AND s.day < prev.day)
                    END AS comes_back
               FROM seq q WHERE q.n >= 2
             UNION ALL
             -- Paying at point n and absent at n + 1: churned in the period ending there.
             SELECT q.n + 1, q.mrr, 0, true
               FROM seq q WHERE q.n < $7 AND (q.next_n IS NULL OR q.next_n <> q.n + 1)
         ),
         totals AS (SELECT n, sum(mrr)::bigint AS mrr, count(*) AS customers FROM vals GROUP BY n),
         moves AS (
             SELECT n,
                    coalesce(sum(after) FILTER (WHERE before = 0 AND after > 0 AND NOT comes_back), 0)::bigint AS new,
                    coalesce(sum(after) FILTER (WHERE before = 0 AND after > 0 AND comes_back), 0)::bigint AS reactivation,
                    coalesce(sum(after - before) FILTER (WHERE before > 0 AND after > before), 0)::bigint AS expansion,
                    coalesce(sum(before - after) FILTER (WHERE after > 0 AND after < before), 0)::bigint AS contraction,
                    coalesce(sum(before) FILTER (WHERE before > 0 AND after = 0), 0)::bigint AS churned,
                    count(*) FILTER (WHERE before > 0 AND after = 0) AS churned_customers
               FROM judged GROUP BY n
         )
         SELECT g.n, p.day AS snapshot,
                coalesce(t.mrr, 0) AS mrr, coalesce(t.customers, 0) AS customers,
                coalesce(m.new, 0) AS new, coalesce(m.reactivation, 0) AS reactivation,
                coalesce(m.expansion, 0) AS expansion, coalesce(m.contraction, 0) AS contraction,
                coalesce(m.churned, 0) AS churned, coalesce(m.churned_customers, 0) AS churned_customers
           FROM generate_series(1::bigint, $7::bigint) AS g (n)
           LEFT JOIN points p ON p.n = g.n
           LEFT JOIN totals t ON t.n = g.n
           LEFT JOIN moves m ON m.n = g.n
          ORDER BY g.n"
    )
}

/// The plan PostgreSQL chooses for [`series`], executed (`EXPLAIN ANALYZE`): for the
/// benchmark, which shows which indexes it uses.
pub async fn explain_series(
    platform: &Platform,
    starts: &[NaiveDate],
    at: DateTime<Utc>,
) -> Result<String> {
    let live = Live::new(platform, at);
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", series_sql());
    let last = i64::try_from(starts.len()).unwrap_or(i64::MAX) + 1;
    let mut tx = roomy_transaction(platform).await?;
    let lines: Vec<(String,)> = live
        .bind(sqlx::query_as(&sql))
        .bind(starts)
        .bind(last)
        .fetch_all(&mut *tx)
        .await?;
    Ok(lines
        .into_iter()
        .map(|(l,)| l)
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Paying organizations now, per plan and billing interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PlanCount {
    pub plan_id: String,
    pub interval: String,
    pub subscriptions: i64,
    pub mrr_cents: i64,
}

pub async fn by_plan(platform: &Platform, at: DateTime<Utc>) -> Result<Vec<PlanCount>> {
    let live = Live::new(platform, at);
    let sql = format!(
        "WITH live AS ({LIVE})
         SELECT plan_id, billing_interval AS interval, count(*) AS subscriptions,
                sum(mrr_cents)::bigint AS mrr_cents
           FROM live GROUP BY plan_id, billing_interval ORDER BY mrr_cents DESC, plan_id, interval"
    );
    Ok(live
        .bind(sqlx::query_as(&sql))
        .fetch_all(&platform.db)
        .await?)
}
