//! Every organization's sites (the fleet), for operators: searched by part of a site's slug, name or
//! custom domain, its organization's name or slug, or a member's email; filtered by state
//! (`failed` is the list of failed provisionings) and plan; newest or oldest first or by
//! slug, in keyset pages;
//! exported as CSV with the same search and filters, in one query.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::Operator;
use super::lists::{Cursor, Keys, PAGE, Page, Search, Sort, csv_line, one_of, page, plan_text};
use crate::Platform;
use crate::billing::revenue::Query;
use crate::kernel::{Error, Result};

/// The states an operator filters sites by, as a site's row words its state: `deleting`
/// (asked to be deleted, not yet gone), `failed` (its last pass failed: it is retried with
/// backoff), `provisioning` (pending or being created), `suspended`, `stopped` (stopping or
/// stopped), `active`, and `deleted` (gone; the list leaves them out otherwise). Each site
/// has exactly one, in this order of precedence.
pub const SITE_STATES: [&str; 7] = [
    "active",
    "provisioning",
    "failed",
    "suspended",
    "stopped",
    "deleting",
    "deleted",
];

/// Which sites.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteFilter {
    pub search: Option<Search>,
    /// One of [`SITE_STATES`]; `None`: every site that is not deleted.
    pub state: Option<&'static str>,
    pub plan: Option<String>,
    /// One of [`SITE_SORTS`].
    pub sort: Sort,
}

/// The site list's orders: newest or oldest first, or by slug.
pub const SITE_SORTS: [Sort; 3] = [Sort::Newest, Sort::Oldest, Sort::Name];

impl SiteFilter {
    /// From the list's query parameters (`q`, `state`, `plan`; empty means any).
    pub fn parse(platform: &Platform, search: &str, state: &str, plan: &str) -> Result<Self> {
        let plan = match plan.trim() {
            "" => None,
            id if platform.catalog.plans().iter().any(|p| p.id.as_str() == id) => {
                Some(id.to_owned())
            }
            _ => return Err(Error::invalid("plan", "No such plan.")),
        };
        Ok(Self {
            search: Search::parse(search)?,
            state: one_of(
                state,
                &SITE_STATES,
                "state",
                "Choose active, provisioning, failed, suspended, stopped, deleting or deleted sites.",
            )?,
            plan,
            sort: Sort::default(),
        })
    }
}

/// One site as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SiteRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// One of [`SITE_STATES`].
    pub state: String,
    /// What the reconciler last achieved (`sites.status`).
    pub status: String,
    pub desired_state: String,
    /// Why its last pass failed, if it did.
    pub status_reason: Option<String>,
    /// Failed passes in a row.
    pub failures: i32,
    /// When the reconciler tries it next (after a failure, its backoff).
    pub next_attempt_at: DateTime<Utc>,
    /// As recorded (`operator: …` or `billing: …`).
    pub suspended_reason: Option<String>,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub organization_slug: String,
    pub plan_id: String,
    /// Its custom domains, space-separated.
    pub domains: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `$1` the search pattern, `$2` the state, `$3` the plan, `$4`/`$5` the cursor, `$6` the
/// row limit (NULL: every row). The search is a union of index lookups (trigram indexes),
/// one per searched text; the page is read in `sort`'s order along `sites_created_idx` or
/// `sites_slug_order_idx`.
fn sites_sql(sort: Sort) -> String {
    let keys = Keys {
        made: "s.created_at",
        name: "s.slug",
        revenue: "",
        id: "s.id",
    };
    let (after, order) = sort.clauses(&keys, 4, 5);
    format!(
        "
    WITH matched AS (
        SELECT id FROM sites WHERE slug LIKE lower($1) OR lower(name) LIKE lower($1)
        UNION SELECT site_id FROM site_domains WHERE domain LIKE lower($1)
        UNION SELECT s.id FROM organizations o JOIN sites s ON s.organization_id = o.id
               WHERE lower(o.name) LIKE lower($1) OR o.slug LIKE lower($1)
        UNION SELECT s.id FROM users u
                JOIN organization_members m ON m.user_id = u.id
                JOIN sites s ON s.organization_id = m.organization_id
               WHERE u.email LIKE lower($1)
    )
    SELECT s.id, s.name, s.slug, s.state, s.status, s.desired_state, s.status_reason,
           s.failures, s.next_attempt_at, s.suspended_reason,
           o.id AS organization_id, o.name AS organization_name,
           o.slug AS organization_slug, o.plan_id,
           (SELECT string_agg(d.domain, ' ' ORDER BY d.domain) FROM site_domains d
             WHERE d.site_id = s.id) AS domains,
           s.created_at, s.updated_at
      FROM (SELECT sites.*,
                   CASE WHEN status = 'deleted' THEN 'deleted'
                        WHEN desired_state = 'deleted' OR status = 'deleting' THEN 'deleting'
                        WHEN status = 'failed' THEN 'failed'
                        WHEN status IN ('pending', 'provisioning') THEN 'provisioning'
                        WHEN suspended_at IS NOT NULL THEN 'suspended'
                        WHEN status IN ('stopping', 'stopped') THEN 'stopped'
                        ELSE 'active'
                   END AS state
              FROM sites) s
      JOIN organizations o ON o.id = s.organization_id
     WHERE ($1::text IS NULL OR s.id IN (SELECT id FROM matched))
       -- The state column's cases, on the plain columns (the failed ones use their
       -- partial index).
       AND CASE $2::text
             WHEN 'deleted' THEN s.status = 'deleted'
             WHEN 'deleting' THEN s.status <> 'deleted'
                                  AND (s.desired_state = 'deleted' OR s.status = 'deleting')
             WHEN 'failed' THEN s.status = 'failed' AND s.desired_state <> 'deleted'
             WHEN 'provisioning' THEN s.status IN ('pending', 'provisioning')
                                      AND s.desired_state <> 'deleted'
             WHEN 'suspended' THEN s.suspended_at IS NOT NULL AND s.desired_state <> 'deleted'
                                   AND s.status IN ('active', 'stopping', 'stopped')
             WHEN 'stopped' THEN s.status IN ('stopping', 'stopped') AND s.suspended_at IS NULL
                                 AND s.desired_state <> 'deleted'
             WHEN 'active' THEN s.status = 'active' AND s.suspended_at IS NULL
                                AND s.desired_state <> 'deleted'
             ELSE s.status <> 'deleted'
           END
       AND ($3::text IS NULL OR o.plan_id = $3)
       AND {after}
     {order}
     LIMIT $6::bigint"
    )
}

/// [`sites_sql`] with its parameters bound.
fn bind<'q, O>(
    query: Query<'q, O>,
    filter: &'q SiteFilter,
    after: (Option<String>, Option<Uuid>),
    limit: Option<i64>,
) -> Query<'q, O> {
    query
        .bind(filter.search.as_ref().map(Search::pattern))
        .bind(filter.state)
        .bind(filter.plan.as_deref())
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
}

/// Sites matching `filter`, in its order, from just after `after`: at most `limit`.
pub async fn sites(
    platform: &Platform,
    _: &Operator,
    filter: &SiteFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Page<SiteRow>> {
    let limit = limit.clamp(1, 1000);
    let after = filter.sort.after(after)?;
    let sql = sites_sql(filter.sort);
    let rows = bind(sqlx::query_as(&sql), filter, after, Some(limit + 1))
        .fetch_all(&platform.db)
        .await?;
    Ok(page(rows, limit, |row| {
        filter.sort.cursor(row.created_at, &row.slug, 0, row.id)
    }))
}

/// The plan PostgreSQL runs for the first page of `filter` (`EXPLAIN ANALYZE`), for the
/// benchmark.
pub async fn explain_sites(
    platform: &Platform,
    _: &Operator,
    filter: &SiteFilter,
) -> Result<String> {
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", sites_sql(filter.sort));
    let lines: Vec<(String,)> = bind(sqlx::query_as(&sql), filter, (None, None), Some(PAGE + 1))
        .fetch_all(&platform.db)
        .await?;
    Ok(plan_text(lines))
}

/// Every site matching `filter` as CSV, in its order, in one query.
pub async fn sites_csv(platform: &Platform, _: &Operator, filter: &SiteFilter) -> Result<String> {
    let mut csv = csv_line(&[
        "id",
        "slug",
        "name",
        "state",
        "status",
        "desired_state",
        "status_reason",
        "failures",
        "suspended_reason",
        "organization_slug",
        "organization_name",
        "plan",
        "domains",
        "created_at",
    ]);
    let sql = sites_sql(filter.sort);
    let mut rows = bind(
        sqlx::query_as::<_, SiteRow>(&sql),
        filter,
        (None, None),
        None,
    )
    .fetch(&platform.db);
    while let Some(row) = rows.try_next().await? {
        csv.push_str(&csv_line(&[
            &row.id.to_string(),
            &row.slug,
            &row.name,
            &row.state,
            &row.status,
            &row.desired_state,
            row.status_reason.as_deref().unwrap_or(""),
            &row.failures.to_string(),
            row.suspended_reason.as_deref().unwrap_or(""),
            &row.organization_slug,
            &row.organization_name,
            &row.plan_id,
            row.domains.as_deref().unwrap_or(""),
            &row.created_at.to_rfc3339(),
        ]));
    }
    Ok(csv)
}
