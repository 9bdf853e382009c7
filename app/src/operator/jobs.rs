//! Server functions of the operators' job list: every background job (searched, filtered
//! by state, paged) and the retry of a dead one, with a reason.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One job on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobListRow {
    pub id: String,
    pub kind: String,
    /// `dead`, `retrying`, `queued`, `running` or `succeeded`.
    pub state: String,
    pub attempts: String,
    /// For a queued job, when it runs next; for a finished one, when it finished.
    pub when: String,
    pub last_error: String,
    /// The unique key and the payload, as the job carries them.
    pub detail: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobListView {
    pub rows: Vec<JobListRow>,
    /// The `after` of the next page's link, if there is more.
    pub next: Option<String>,
    pub states: Vec<String>,
    /// The orders offered: keys and words.
    pub sorts: Vec<(String, String)>,
}

/// Every background job, searched by kind, key, error or payload, filtered by state,
/// newest first, a page at a time: operators only.
#[server(endpoint = "admin/jobs")]
pub async fn admin_jobs(
    #[server(default)] q: String,
    #[server(default)] state: String,
    #[server(default)] sort: String,
    #[server(default)] after: String,
) -> Result<JobListView, AppError> {
    use platform::admin::jobs::{self, JOB_STATES, JobFilter};
    use platform::admin::lists::PAGE;

    let (app, operator) = super::operator().await?;
    let mut filter = JobFilter::parse(&q, &state)?;
    filter.sort = platform::admin::lists::Sort::parse(&sort, &platform::admin::jobs::JOB_SORTS)?;
    let after = platform::admin::lists::parse_after_id(&after)?;
    let page = jobs::jobs(&app.platform, &operator, &filter, after, PAGE).await?;
    let time = crate::format::utc;
    Ok(JobListView {
        rows: page
            .rows
            .into_iter()
            .map(|row| JobListRow {
                id: row.id.to_string(),
                when: match row.state.as_str() {
                    "queued" | "retrying" => format!("next run {}", time(row.run_at)),
                    _ => row
                        .finished_at
                        .map(|at| format!("finished {}", time(at)))
                        .unwrap_or_default(),
                },
                attempts: row.attempts.to_string(),
                last_error: row.last_error.unwrap_or_default(),
                detail: shortened(&match row.unique_key {
                    Some(key) => format!("{key} {}", row.payload),
                    None => row.payload,
                }),
                created: time(row.created_at),
                kind: row.kind,
                state: row.state,
            })
            .collect(),
        next: page.next.map(|id| id.to_string()),
        states: JOB_STATES.iter().map(|s| (*s).to_owned()).collect(),
        sorts: super::sort_choices(&platform::admin::jobs::JOB_SORTS, "Name"),
    })
}

/// A job's key and payload as a row shows them: at most 160 characters (a Stripe event's
/// payload is the whole event; the CSV export has it all).
#[cfg(feature = "ssr")]
fn shortened(detail: &str) -> String {
    const SHOWN: usize = 160;
    match detail.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &detail[..cut]),
        None => detail.to_owned(),
    }
}

/// Queues a dead job again, now, with a fresh retry window: operators only.
#[server(endpoint = "admin/retry_job")]
pub async fn admin_retry_job(
    #[server(default)] job: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (app, operator) = super::operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    let id = job
        .trim()
        .parse()
        .map_err(|_| platform::Error::invalid("job", "Choose a job."))?;
    platform::admin::jobs::retry_job(&app.platform, &operator, id, &reason).await?;
    Ok(())
}
