//! Every organization's incidents, for operators: searched by part of the summary, the
//! organization's name or slug or the site's slug; filtered by open or resolved and by
//! kind; newest or oldest first in keyset pages; exported as CSV.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::Operator;
use super::lists::{Cursor, Keys, Page, Search, Sort, csv_line, one_of, page};
use crate::Platform;
use crate::incidents::IncidentKind;
use crate::kernel::Result;

/// Open incidents, or resolved ones.
pub const INCIDENT_STATES: [&str; 2] = ["open", "resolved"];

/// Which incidents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    pub search: Option<Search>,
    /// One of [`INCIDENT_STATES`].
    pub state: Option<&'static str>,
    pub kind: Option<IncidentKind>,
    /// One of [`INCIDENT_SORTS`].
    pub sort: Sort,
}

/// The incident list's orders: newest or oldest first (by when each was opened).
pub const INCIDENT_SORTS: [Sort; 2] = [Sort::Newest, Sort::Oldest];

impl IncidentFilter {
    /// From the list's query parameters (`q`, `state`, `kind`; empty means any).
    pub fn parse(search: &str, state: &str, kind: &str) -> Result<Self> {
        let kinds: Vec<&'static str> = IncidentKind::ALL.iter().map(|k| k.as_str()).collect();
        let kind = one_of(kind, &kinds, "kind", "No such kind of incident.")?;
        Ok(Self {
            search: Search::parse(search)?,
            state: one_of(state, &INCIDENT_STATES, "state", "Choose open or resolved.")?,
            kind: kind.map(IncidentKind::stored).transpose()?,
            sort: Sort::default(),
        })
    }
}

/// One incident as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct IncidentRow {
    pub id: Uuid,
    pub kind: String,
    /// What within the kind (the limit of a usage incident).
    pub subject: String,
    pub summary: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub organization_name: String,
    pub organization_slug: String,
    pub site_slug: Option<String>,
    /// Its latest note, if any.
    pub latest: Option<String>,
}

/// `$1` the search pattern, `$2` open or resolved, `$3` the kind, `$4`/`$5` the cursor, `$6`
/// the row limit (NULL: every row). The search is a union of index lookups (trigram
/// indexes), one per searched text; the page is read in `sort`'s order along
/// `incidents_opened_idx`.
fn incidents_sql(sort: Sort) -> String {
    let keys = Keys {
        made: "i.opened_at",
        name: "",
        revenue: "",
        id: "i.id",
    };
    let (after, order) = sort.clauses(&keys, 4, 5);
    format!(
        "
    WITH matched AS (
        SELECT id FROM incidents WHERE lower(summary) LIKE lower($1)
        UNION SELECT i.id FROM organizations o JOIN incidents i ON i.organization_id = o.id
               WHERE lower(o.name) LIKE lower($1) OR o.slug LIKE lower($1)
        UNION SELECT i.id FROM sites s JOIN incidents i ON i.site_id = s.id
               WHERE s.slug LIKE lower($1)
    )
    SELECT i.id, i.kind, i.subject, i.summary, i.opened_at, i.resolved_at,
           o.name AS organization_name, o.slug AS organization_slug, s.slug AS site_slug,
           (SELECT e.message FROM incident_events e WHERE e.incident_id = i.id
             ORDER BY e.id DESC LIMIT 1) AS latest
      FROM incidents i
      JOIN organizations o ON o.id = i.organization_id
      LEFT JOIN sites s ON s.id = i.site_id
     WHERE ($1::text IS NULL OR i.id IN (SELECT id FROM matched))
       AND CASE $2::text
             WHEN 'open' THEN i.resolved_at IS NULL
             WHEN 'resolved' THEN i.resolved_at IS NOT NULL
             ELSE true
           END
       AND ($3::text IS NULL OR i.kind = $3)
       AND {after}
     {order}
     LIMIT $6::bigint"
    )
}

fn incidents_query<'q>(
    sql: &'q str,
    filter: &IncidentFilter,
    after: (Option<String>, Option<Uuid>),
    limit: Option<i64>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, IncidentRow, sqlx::postgres::PgArguments> {
    sqlx::query_as(sql)
        .bind(filter.search.as_ref().map(Search::pattern))
        .bind(filter.state)
        .bind(filter.kind.map(IncidentKind::as_str))
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
}

/// Incidents matching `filter`, in its order, from just after `after`: at most `limit`.
pub async fn incidents(
    platform: &Platform,
    _: &Operator,
    filter: &IncidentFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Page<IncidentRow>> {
    let limit = limit.clamp(1, 1000);
    let after = filter.sort.after(after)?;
    let sql = incidents_sql(filter.sort);
    let rows = incidents_query(&sql, filter, after, Some(limit + 1))
        .fetch_all(&platform.db)
        .await?;
    Ok(page(rows, limit, |row| {
        filter.sort.cursor(row.opened_at, "", 0, row.id)
    }))
}

/// Every incident matching `filter` as CSV, in its order, in one query.
pub async fn incidents_csv(
    platform: &Platform,
    _: &Operator,
    filter: &IncidentFilter,
) -> Result<String> {
    let mut csv = csv_line(&[
        "id",
        "kind",
        "subject",
        "summary",
        "organization_slug",
        "site_slug",
        "opened_at",
        "resolved_at",
        "latest",
    ]);
    let sql = incidents_sql(filter.sort);
    let mut rows = incidents_query(&sql, filter, (None, None), None).fetch(&platform.db);
    while let Some(row) = rows.try_next().await? {
        csv.push_str(&csv_line(&[
            &row.id.to_string(),
            &row.kind,
            &row.subject,
            &row.summary,
            &row.organization_slug,
            row.site_slug.as_deref().unwrap_or(""),
            &row.opened_at.to_rfc3339(),
            &row.resolved_at
                .map(|at| at.to_rfc3339())
                .unwrap_or_default(),
            row.latest.as_deref().unwrap_or(""),
        ]));
    }
    Ok(csv)
}
