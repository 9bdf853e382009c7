//! Every organization's incidents, for operators: searched by part of the summary, the
//! organization's name or slug or the site's slug; filtered by open or resolved and by
//! kind; newest first in keyset pages; exported as CSV.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::Operator;
use super::lists::{Cursor, Page, Search, csv_line, one_of, page};
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
}

impl IncidentFilter {
    /// From the list's query parameters (`q`, `state`, `kind`; empty means any).
    pub fn parse(search: &str, state: &str, kind: &str) -> Result<Self> {
        let kinds: Vec<&'static str> = IncidentKind::ALL.iter().map(|k| k.as_str()).collect();
        let kind = one_of(kind, &kinds, "kind", "No such kind of incident.")?;
        Ok(Self {
            search: Search::parse(search)?,
            state: one_of(state, &INCIDENT_STATES, "state", "Choose open or resolved.")?,
            kind: kind.map(IncidentKind::stored).transpose()?,
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
/// the row limit (NULL: every row). Newest first, along `incidents_opened_idx`.
const INCIDENTS_SQL: &str = "
    SELECT i.id, i.kind, i.subject, i.summary, i.opened_at, i.resolved_at,
           o.name AS organization_name, o.slug AS organization_slug, s.slug AS site_slug,
           (SELECT e.message FROM incident_events e WHERE e.incident_id = i.id
             ORDER BY e.id DESC LIMIT 1) AS latest
      FROM incidents i
      JOIN organizations o ON o.id = i.organization_id
      LEFT JOIN sites s ON s.id = i.site_id
     WHERE ($1::text IS NULL OR lower(i.summary) LIKE lower($1)
            OR lower(o.name) LIKE lower($1) OR o.slug LIKE lower($1)
            OR coalesce(s.slug, '') LIKE lower($1))
       AND CASE $2::text
             WHEN 'open' THEN i.resolved_at IS NULL
             WHEN 'resolved' THEN i.resolved_at IS NOT NULL
             ELSE true
           END
       AND ($3::text IS NULL OR i.kind = $3)
       AND ($4::timestamptz IS NULL OR (i.opened_at, i.id) < ($4, $5::uuid))
     ORDER BY i.opened_at DESC, i.id DESC
     LIMIT $6::bigint";

fn incidents_query(
    filter: &IncidentFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: Option<i64>,
) -> sqlx::query::QueryAs<'static, sqlx::Postgres, IncidentRow, sqlx::postgres::PgArguments> {
    sqlx::query_as(INCIDENTS_SQL)
        .bind(filter.search.as_ref().map(Search::pattern))
        .bind(filter.state)
        .bind(filter.kind.map(IncidentKind::as_str))
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .bind(limit)
}

/// Incidents matching `filter`, newest first, from just after `after`: at most `limit`.
pub async fn incidents(
    platform: &Platform,
    _: &Operator,
    filter: &IncidentFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Page<IncidentRow>> {
    let limit = limit.clamp(1, 1000);
    let after = after.map(Cursor::timed).transpose()?;
    let rows = incidents_query(filter, after, Some(limit + 1))
        .fetch_all(&platform.db)
        .await?;
    Ok(page(rows, limit, |row| {
        Cursor::after(Cursor::micros(row.opened_at), row.id)
    }))
}

/// Every incident matching `filter` as CSV, newest first, in one query.
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
    let mut rows = incidents_query(filter, None, None).fetch(&platform.db);
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
