//! Background jobs, for operators: the list (searched by kind, key, error or payload,
//! filtered by state, newest or oldest first, keyset pages, CSV), and the retry of a dead job with a
//! reason, recorded in the audit log with the operator as actor.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;

use super::lists::{Page, Search, Sort, csv_line, one_of, page};
use super::{Operator, Reason};
use crate::Platform;
use crate::kernel::Result;
use crate::tenancy::audit;

/// The states an operator filters jobs by: `queued` has never been tried, `retrying` failed
/// and waits for its next try, `dead` gave up (retried only by hand).
pub const JOB_STATES: [&str; 5] = ["dead", "retrying", "queued", "running", "succeeded"];

/// Which jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub search: Option<Search>,
    /// One of [`JOB_STATES`].
    pub state: Option<&'static str>,
    /// One of [`JOB_SORTS`].
    pub sort: Sort,
}

/// The job list's orders: newest or oldest first.
pub const JOB_SORTS: [Sort; 2] = [Sort::Newest, Sort::Oldest];

impl JobFilter {
    /// From the list's query parameters (`q`, `state`; empty means any).
    pub fn parse(search: &str, state: &str) -> Result<Self> {
        Ok(Self {
            search: Search::parse(search)?,
            state: one_of(
                state,
                &JOB_STATES,
                "state",
                "Choose dead, retrying, queued, running or succeeded jobs.",
            )?,
            sort: Sort::default(),
        })
    }
}

/// One job as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    /// As [`JOB_STATES`] words it (`retrying` for a queued job that failed before).
    pub state: String,
    pub attempts: i32,
    /// When a queued job runs next.
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub unique_key: Option<String>,
    /// What the job works on, as JSON.
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `$1` the search pattern, `$2` the state, `$3` the cursor, `$4` the row limit (NULL: every
/// row). Newest or oldest first, along the primary key.
fn jobs_sql(sort: Sort) -> String {
    let (after, order) = sort.by_id("j.id", 3);
    format!(
        "
    SELECT j.id, j.kind,
           CASE WHEN j.state = 'queued' AND j.attempts > 0 THEN 'retrying' ELSE j.state END
               AS state,
           j.attempts, j.run_at, j.last_error, j.unique_key, j.payload::text AS payload,
           j.created_at, j.finished_at
      FROM jobs j
     WHERE ($1::text IS NULL OR lower(j.kind) LIKE lower($1)
            OR lower(coalesce(j.unique_key, '')) LIKE lower($1)
            OR lower(coalesce(j.last_error, '')) LIKE lower($1)
            OR lower(j.payload::text) LIKE lower($1))
       AND CASE $2::text
             WHEN 'queued' THEN j.state = 'queued' AND j.attempts = 0
             WHEN 'retrying' THEN j.state = 'queued' AND j.attempts > 0
             WHEN 'running' THEN j.state = 'running'
             WHEN 'succeeded' THEN j.state = 'succeeded'
             WHEN 'dead' THEN j.state = 'dead'
             ELSE true
           END
       AND {after}
     {order}
     LIMIT $4::bigint"
    )
}

fn jobs_query<'q>(
    sql: &'q str,
    filter: &JobFilter,
    after: Option<i64>,
    limit: Option<i64>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, JobRow, sqlx::postgres::PgArguments> {
    sqlx::query_as(sql)
        .bind(filter.search.as_ref().map(Search::pattern))
        .bind(filter.state)
        .bind(after)
        .bind(limit)
}

/// Jobs matching `filter`, in its order, from just after the job `after`: at most `limit`.
pub async fn jobs(
    platform: &Platform,
    _: &Operator,
    filter: &JobFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Page<JobRow, i64>> {
    let limit = limit.clamp(1, 1000);
    let sql = jobs_sql(filter.sort);
    let rows = jobs_query(&sql, filter, after, Some(limit + 1))
        .fetch_all(&platform.db)
        .await?;
    Ok(page(rows, limit, |row| row.id))
}

/// Every job matching `filter` as CSV, in its order, in one query.
pub async fn jobs_csv(platform: &Platform, _: &Operator, filter: &JobFilter) -> Result<String> {
    let mut csv = csv_line(&[
        "id",
        "kind",
        "state",
        "attempts",
        "run_at",
        "last_error",
        "unique_key",
        "payload",
        "created_at",
        "finished_at",
    ]);
    let sql = jobs_sql(filter.sort);
    let mut rows = jobs_query(&sql, filter, None, None).fetch(&platform.db);
    while let Some(row) = rows.try_next().await? {
        csv.push_str(&csv_line(&[
            &row.id.to_string(),
            &row.kind,
            &row.state,
            &row.attempts.to_string(),
            &row.run_at.to_rfc3339(),
            row.last_error.as_deref().unwrap_or(""),
            row.unique_key.as_deref().unwrap_or(""),
            &row.payload,
            &row.created_at.to_rfc3339(),
            &row.finished_at
                .map(|at| at.to_rfc3339())
                .unwrap_or_default(),
        ]));
    }
    Ok(csv)
}

/// Queues a dead job again, now, with a fresh retry window (it keeps its attempt count: it
/// lists as retrying, and should it fail again it waits its kind's longest backoff);
/// recorded in the audit log with
/// the operator as actor (in the same transaction: of operators retrying at once, one
/// does, and only that one is recorded). A job that is not dead is refused with its state.
pub async fn retry_job(platform: &Platform, by: &Operator, id: i64, reason: &Reason) -> Result<()> {
    let mut tx = platform.db.begin().await?;
    let kind = platform.jobs.retry_in(&mut tx, id).await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("job.retry", by.actor())
            .subject(format!("job:{id}"))
            .details(serde_json::json!({ "kind": kind, "reason": reason.as_str() })),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(job = id, %kind, operator = %by.email, "dead job retried by an operator");
    Ok(())
}
