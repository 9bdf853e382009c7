//! Every subscription, for operators: with Stripe, each organization's subscription as
//! Slipway last saw it (canceled ones included, with their grace period); in local billing
//! mode, each organization on a paid plan an operator assigned. Searched like the
//! organization list (a member's email, the organization, a site, a domain, a Stripe id),
//! filtered by status, plan and interval, newest or oldest first or by revenue in keyset
//! pages, exported as CSV.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::Operator;
use super::lists::{
    BILLING_STATES, Cursor, Keys, MATCHED, Page, Search, Sort, csv_line, one_of, page,
};
use crate::Platform;
use crate::billing::revenue::{LIVE, Live, Query};
use crate::kernel::{Error, Result};

/// The billing intervals.
pub const INTERVALS: [&str; 2] = ["monthly", "yearly"];

/// Which subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    pub search: Option<Search>,
    /// Stripe's subscription status (local billing mode's are all `active`).
    pub status: Option<&'static str>,
    pub plan: Option<String>,
    pub interval: Option<&'static str>,
    /// One of [`SUBSCRIPTION_SORTS`].
    pub sort: Sort,
}

/// The subscription list's orders: newest or oldest first (since when), or highest
/// monthly revenue first.
pub const SUBSCRIPTION_SORTS: [Sort; 3] = [Sort::Newest, Sort::Oldest, Sort::Revenue];

impl SubscriptionFilter {
    /// From the list's query parameters (`q`, `status`, `plan`, `interval`; empty means
    /// any).
    pub fn parse(
        platform: &Platform,
        search: &str,
        status: &str,
        plan: &str,
        interval: &str,
    ) -> Result<Self> {
        let plan = match plan.trim() {
            "" => None,
            id if platform.catalog.plans().iter().any(|p| p.id.as_str() == id) => {
                Some(id.to_owned())
            }
            _ => return Err(Error::invalid("plan", "No such plan.")),
        };
        Ok(Self {
            search: Search::parse(search)?,
            status: one_of(
                status,
                &BILLING_STATES[1..],
                "status",
                "No such subscription status.",
            )?,
            plan,
            interval: one_of(
                interval,
                &INTERVALS,
                "interval",
                "Choose monthly or yearly.",
            )?,
            sort: Sort::default(),
        })
    }
}

/// One subscription as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub organization_id: Uuid,
    pub organization_name: String,
    pub organization_slug: String,
    pub owner_email: Option<String>,
    /// None in local billing mode.
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub plan_id: Option<String>,
    pub billing_interval: Option<String>,
    pub status: Option<String>,
    /// What it counts for in monthly revenue now (see `docs/metrics.md`): 0 once canceled,
    /// or unpaid for more than 30 days.
    pub mrr_cents: i64,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub payment_failing_since: Option<DateTime<Utc>>,
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// Since when: the Stripe customer's first checkout, or the organization's first
    /// paid plan in local billing mode.
    pub since: DateTime<Utc>,
}

/// `$1`-`$5`: [`LIVE`]'s (local billing mode among them), `$6` the search pattern, `$7` the
/// status, `$8` the plan, `$9` the interval, `$10`/`$11` the cursor, `$12` the row limit; in
/// `sort`'s order.
fn subscriptions_sql(sort: Sort) -> String {
    let keys = Keys {
        made: "s.since",
        name: "",
        revenue: "coalesce(l.mrr_cents, 0)::bigint",
        id: "s.organization_id",
    };
    let (after, order) = sort.clauses(&keys, 10, 11);
    format!(
        "WITH live AS ({LIVE}),
        matched AS ({MATCHED}),
        subscriptions AS (
            SELECT a.organization_id, a.stripe_customer_id, a.stripe_subscription_id,
                   a.plan_id, a.billing_interval, a.status, a.current_period_end,
                   a.cancel_at_period_end, a.payment_failing_since, a.grace_ends_at,
                   a.created_at AS since
              FROM billing_accounts a
             WHERE NOT $1 AND a.stripe_subscription_id IS NOT NULL
            UNION ALL
            SELECT o.id, NULL, NULL, o.plan_id, 'monthly', 'active', NULL, false, NULL, NULL,
                   coalesce(o.first_paid_at, o.created_at)
              FROM organizations o
              JOIN unnest($3::text[], $4::bigint[]) AS p (plan_id, cents) ON p.plan_id = o.plan_id
             WHERE $1 AND p.cents > 0
        )
        SELECT s.*, o.name AS organization_name, o.slug AS organization_slug,
               coalesce(l.mrr_cents, 0)::bigint AS mrr_cents,
               (SELECT u.email FROM organization_members m JOIN users u ON u.id = m.user_id
                 WHERE m.organization_id = o.id AND m.role = 'owner'
                 ORDER BY m.created_at LIMIT 1) AS owner_email
          FROM subscriptions s
          JOIN organizations o ON o.id = s.organization_id
          LEFT JOIN live l ON l.organization_id = s.organization_id
         WHERE ($6::text IS NULL OR s.organization_id IN (SELECT id FROM matched))
           AND ($7::text IS NULL OR s.status = $7)
           AND ($8::text IS NULL OR s.plan_id = $8)
           AND ($9::text IS NULL OR s.billing_interval = $9)
           AND {after}
         {order}
         LIMIT $12::bigint"
    )
}

/// [`subscriptions_sql`] with its parameters bound.
fn bind<'q, O>(
    query: Query<'q, O>,
    live: &'q Live,
    filter: &'q SubscriptionFilter,
    after: (Option<String>, Option<Uuid>),
    limit: Option<i64>,
) -> Query<'q, O> {
    live.bind(query)
        .bind(filter.search.as_ref().map(Search::pattern))
        .bind(filter.status)
        .bind(filter.plan.as_deref())
        .bind(filter.interval)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
}

/// Subscriptions matching `filter`, in its order, from just after `after`: at most
/// `limit`.
pub async fn subscriptions(
    platform: &Platform,
    _: &Operator,
    filter: &SubscriptionFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Page<SubscriptionRow>> {
    let limit = limit.clamp(1, 1000);
    let after = filter.sort.after(after)?;
    let live = Live::new(platform, Utc::now());
    let sql = subscriptions_sql(filter.sort);
    let rows = bind(sqlx::query_as(&sql), &live, filter, after, Some(limit + 1))
        .fetch_all(&platform.db)
        .await?;
    Ok(page(rows, limit, |row| {
        filter
            .sort
            .cursor(row.since, "", row.mrr_cents, row.organization_id)
    }))
}

/// Every subscription matching `filter` as CSV, in its order, in one query.
pub async fn subscriptions_csv(
    platform: &Platform,
    _: &Operator,
    filter: &SubscriptionFilter,
) -> Result<String> {
    let time = |at: Option<DateTime<Utc>>| at.map(|at| at.to_rfc3339()).unwrap_or_default();
    let mut csv = csv_line(&[
        "organization_slug",
        "organization_name",
        "owner_email",
        "stripe_customer_id",
        "stripe_subscription_id",
        "plan",
        "interval",
        "status",
        "mrr_cents",
        "current_period_end",
        "cancel_at_period_end",
        "payment_failing_since",
        "grace_ends_at",
        "since",
    ]);
    let live = Live::new(platform, Utc::now());
    let sql = subscriptions_sql(filter.sort);
    let mut rows = bind(
        sqlx::query_as::<_, SubscriptionRow>(&sql),
        &live,
        filter,
        (None, None),
        None,
    )
    .fetch(&platform.db);
    while let Some(row) = rows.try_next().await? {
        csv.push_str(&csv_line(&[
            &row.organization_slug,
            &row.organization_name,
            row.owner_email.as_deref().unwrap_or(""),
            row.stripe_customer_id.as_deref().unwrap_or(""),
            row.stripe_subscription_id.as_deref().unwrap_or(""),
            row.plan_id.as_deref().unwrap_or(""),
            row.billing_interval.as_deref().unwrap_or(""),
            row.status.as_deref().unwrap_or(""),
            &row.mrr_cents.to_string(),
            &time(row.current_period_end),
            if row.cancel_at_period_end {
                "true"
            } else {
                "false"
            },
            &time(row.payment_failing_since),
            &time(row.grace_ends_at),
            &row.since.to_rfc3339(),
        ]));
    }
    Ok(csv)
}
