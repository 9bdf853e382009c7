//! The operator audit log: every action an operator took as an operator (from the panel or
//! `slipway admin`), with its reason, newest or oldest first, in keyset pages by id; searched by part
//! of the action, the operator's email, what was acted on, the reason or the organization;
//! filtered by action; exported as CSV.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::Operator;
use super::lists::{Page, Search, Sort, csv_line, page};
use crate::Platform;
use crate::kernel::{Error, Result};

/// Which entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub search: Option<Search>,
    /// An action name (`site.suspend`), as [`actions`] lists them.
    pub action: Option<String>,
    /// One of [`LOG_SORTS`].
    pub sort: Sort,
}

/// The audit log's orders: newest or oldest first.
pub const LOG_SORTS: [Sort; 2] = [Sort::Newest, Sort::Oldest];

impl LogFilter {
    /// From the list's query parameters (`q`, `action`; empty means any). An action is a
    /// dotted lowercase name (any such name is accepted: one nobody took lists nothing).
    pub fn parse(search: &str, action: &str) -> Result<Self> {
        let action = match action.trim() {
            "" => None,
            action
                if action.len() <= 64
                    && action
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_') =>
            {
                Some(action.to_owned())
            }
            _ => return Err(Error::invalid("action", "No such action.")),
        };
        Ok(Self {
            search: Search::parse(search)?,
            action,
            sort: Sort::default(),
        })
    }
}

/// One operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LogRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    /// The operator's email (none once their account is gone).
    pub operator: Option<String>,
    /// What was acted on (`site:<slug>`, `organization:<slug>`, `user:<id>`, `job:<id>`).
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub organization_id: Option<Uuid>,
    pub organization_name: Option<String>,
    pub organization_slug: Option<String>,
    /// The rest of what was recorded, as JSON.
    pub details: String,
}

/// `$1` the search pattern, `$2` the action, `$3` the cursor, `$4` the row limit (NULL: every
/// row). Newest or oldest first, along the partial index of operator entries.
fn log_sql(sort: Sort) -> String {
    let (after, order) = sort.by_id("a.id", 3);
    format!(
        "
    SELECT a.id, a.created_at AS at, a.action, u.email AS operator, a.subject,
           a.details->>'reason' AS reason, a.organization_id,
           o.name AS organization_name, o.slug AS organization_slug,
           (a.details - 'reason' - 'by_operator')::text AS details
      FROM audit_log a
      LEFT JOIN users u ON u.id = a.actor_user_id
      LEFT JOIN organizations o ON o.id = a.organization_id
     WHERE a.by_operator
       AND ($1::text IS NULL OR a.action LIKE lower($1)
            OR coalesce(u.email, '') LIKE lower($1)
            OR lower(coalesce(a.subject, '')) LIKE lower($1)
            OR lower(coalesce(a.details->>'reason', '')) LIKE lower($1)
            OR lower(coalesce(o.name, '')) LIKE lower($1)
            OR coalesce(o.slug, '') LIKE lower($1))
       AND ($2::text IS NULL OR a.action = $2)
       AND {after}
     {order}
     LIMIT $4::bigint"
    )
}

fn log_query<'q>(
    sql: &'q str,
    filter: &'q LogFilter,
    after: Option<i64>,
    limit: Option<i64>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, LogRow, sqlx::postgres::PgArguments> {
    sqlx::query_as(sql)
        .bind(filter.search.as_ref().map(Search::pattern))
        .bind(filter.action.as_deref())
        .bind(after)
        .bind(limit)
}

/// Operator actions matching `filter`, in its order, from just after the entry `after`: at
/// most `limit`.
pub async fn entries(
    platform: &Platform,
    _: &Operator,
    filter: &LogFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Page<LogRow, i64>> {
    let limit = limit.clamp(1, 1000);
    let sql = log_sql(filter.sort);
    let rows = log_query(&sql, filter, after, Some(limit + 1))
        .fetch_all(&platform.db)
        .await?;
    Ok(page(rows, limit, |row| row.id))
}

/// The actions operators have taken, by name (the list's filter).
pub async fn actions(platform: &Platform, _: &Operator) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT action FROM audit_log WHERE by_operator ORDER BY action",
    )
    .fetch_all(&platform.db)
    .await?)
}

/// Every operator action matching `filter` as CSV, in its order, in one query.
pub async fn entries_csv(platform: &Platform, _: &Operator, filter: &LogFilter) -> Result<String> {
    let mut csv = csv_line(&[
        "id",
        "at",
        "action",
        "operator",
        "subject",
        "reason",
        "organization_slug",
        "details",
    ]);
    let sql = log_sql(filter.sort);
    let mut rows = log_query(&sql, filter, None, None).fetch(&platform.db);
    while let Some(row) = rows.try_next().await? {
        csv.push_str(&csv_line(&[
            &row.id.to_string(),
            &row.at.to_rfc3339(),
            &row.action,
            row.operator.as_deref().unwrap_or(""),
            row.subject.as_deref().unwrap_or(""),
            row.reason.as_deref().unwrap_or(""),
            row.organization_slug.as_deref().unwrap_or(""),
            &row.details,
        ]));
    }
    Ok(csv)
}
