//! The `jobs` table: enqueue, claim, heartbeat, finish, reclaim, list, retry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{JITTER, JobError, JobKind, JobState};
use crate::kernel::{Error, Result};

/// The time the queue reads: the database's (`now()`, one clock for every process), or a
/// clock a test sets, so an outage of hours is replayed without sleeping.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    Database,
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// A clock that stands at `at` until moved.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Clock::Manual(Arc::new(Mutex::new(at)))
    }

    /// Moves a manual clock (no effect on the database's).
    pub fn set(&self, at: DateTime<Utc>) {
        if let Clock::Manual(now) = self
            && let Ok(mut now) = now.lock()
        {
            *now = at;
        }
    }

    /// `None` for the database's clock: queries then use `now()`.
    fn fixed(&self) -> Option<DateTime<Utc>> {
        match self {
            Clock::Database => None,
            Clock::Manual(now) => now.lock().ok().map(|now| *now),
        }
    }
}

/// A job to add to the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub payload: serde_json::Value,
    /// At most one job ever carries this key: enqueueing it again is a no-op.
    pub unique_key: Option<String>,
    /// Not before; `None`: now.
    pub run_at: Option<DateTime<Utc>>,
}

impl NewJob {
    pub fn new(kind: JobKind, payload: serde_json::Value) -> Self {
        Self {
            kind,
            payload,
            unique_key: None,
            run_at: None,
        }
    }

    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }
}

/// A claimed job, as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub first_attempt_at: DateTime<Utc>,
    /// When this attempt started (by the queue's clock).
    pub started_at: DateTime<Utc>,
}

/// A job as `slipway admin jobs` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    pub id: i64,
    pub kind: String,
    pub state: JobState,
    pub attempts: i32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub unique_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Adds `job` in the caller's transaction (or on the pool), due at its `run_at` or at once.
/// Returns its id, or `None` when a job with its unique key exists already.
pub async fn enqueue(executor: impl sqlx::PgExecutor<'_>, job: NewJob) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO jobs (kind, payload, unique_key, run_at)
         VALUES ($1, $2, $3, coalesce($4, now()))
         ON CONFLICT (unique_key) DO NOTHING
         RETURNING id",
        job.kind.as_str(),
        job.payload,
        job.unique_key,
        job.run_at
    )
    .fetch_optional(executor)
    .await?)
}

/// The queue, on one database, reading one clock.
#[derive(Debug, Clone)]
pub struct Queue {
    db: sqlx::PgPool,
    clock: Clock,
}

impl Queue {
    pub fn new(db: sqlx::PgPool, clock: Clock) -> Self {
        Self { db, clock }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The queue's "now".
    pub async fn now(&self) -> Result<DateTime<Utc>> {
        match self.clock.fixed() {
            Some(now) => Ok(now),
            None => Ok(sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
                .fetch_one(&self.db)
                .await?),
        }
    }

    /// Takes the oldest due job for `worker`, if any: it is `running` and held by `worker`
    /// from now on, and its attempt is recorded. Only kinds this build knows are taken, so
    /// during a rolling upgrade an older process leaves a newer kind to the newer ones.
    pub async fn claim(&self, worker: &str) -> Result<Option<Job>> {
        let now = self.clock.fixed();
        let known: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
        let mut tx = self.db.begin().await?;
        let row = sqlx::query!(
            r#"UPDATE jobs
                  SET state = 'running', locked_by = $1, locked_at = coalesce($2, now()),
                      attempts = attempts + 1,
                      first_attempt_at = coalesce(first_attempt_at, $2, now())
                WHERE id = (SELECT id FROM jobs
                             WHERE state = 'queued' AND run_at <= coalesce($2, now())
                               AND kind = ANY($3)
                             ORDER BY run_at, id LIMIT 1
                             FOR UPDATE SKIP LOCKED)
            RETURNING id, kind, payload, attempts, locked_at AS "started_at!",
                      first_attempt_at AS "first_attempt_at!""#,
            worker,
            now,
            &known as &[&str]
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        sqlx::query!(
            "INSERT INTO job_attempts (job_id, attempt, worker, started_at) VALUES ($1, $2, $3, $4)",
            row.id,
            row.attempts,
            worker,
            row.started_at
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Job {
            id: row.id,
            kind: JobKind::stored(&row.kind)?,
            payload: row.payload,
            attempt: row.attempts,
            first_attempt_at: row.first_attempt_at,
            started_at: row.started_at,
        }))
    }

    /// Keeps `worker`'s claim on this attempt of `job` alive. Returns whether it still holds
    /// it (a lost lease means another worker may take the job up).
    pub async fn heartbeat(&self, worker: &str, job: &Job) -> Result<bool> {
        let beat = sqlx::query!(
            "UPDATE jobs SET locked_at = coalesce($4, now())
              WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running'",
            job.id,
            worker,
            job.attempt,
            self.clock.fixed()
        )
        .execute(&self.db)
        .await?;
        Ok(beat.rows_affected() == 1)
    }

    /// Records how `worker`'s attempt at `job` ended: succeeded, queued again after the
    /// policy's backoff, or dead. Returns the job's new state, or `None` when the job is no
    /// longer `worker`'s (its lease ran out and another worker took it up).
    pub async fn finish(
        &self,
        job: &Job,
        worker: &str,
        outcome: &Result<(), JobError>,
    ) -> Result<Option<JobState>> {
        let now = self.now().await?;
        let (state, run_at, error) = next_state(job, outcome, now)?;
        let attempt = Attempt {
            job: job.id,
            worker,
            number: job.attempt,
            outcome: if outcome.is_ok() {
                "succeeded"
            } else {
                "failed"
            },
        };
        let mut tx = self.db.begin().await?;
        if !settle(&mut tx, &attempt, state, run_at, error.as_deref(), now).await? {
            tracing::warn!(job = job.id, kind = %job.kind, "finished a job another worker had taken over; its outcome is dropped");
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(state))
    }

    /// Takes back every job whose worker stopped sending heartbeats `lease` ago (its
    /// process died, lost the database, or the handler crashed it): the attempt is recorded
    /// as abandoned and counts as a failure, so a job that keeps killing its worker backs off
    /// and ends `dead` like any other.
    pub async fn reclaim_abandoned(&self, lease: Duration) -> Result<u64> {
        let lease =
            chrono::Duration::from_std(lease).map_err(|e| Error::Internal(e.to_string()))?;
        let now = self.now().await?;
        let mut tx = self.db.begin().await?;
        let stale = sqlx::query!(
            r#"SELECT id, kind, payload, attempts, locked_by AS "locked_by!",
                      locked_at AS "locked_at!", first_attempt_at AS "first_attempt_at!"
                 FROM jobs
                WHERE state = 'running' AND locked_at < $1
                FOR UPDATE SKIP LOCKED"#,
            now - lease
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &stale {
            let abandoned: Result<(), JobError> = Err(JobError::Retry(
                "abandoned: the worker holding it stopped sending heartbeats".to_owned(),
            ));
            let (state, run_at, error) = match JobKind::parse(&row.kind) {
                Some(kind) => {
                    let job = Job {
                        id: row.id,
                        kind,
                        payload: row.payload.clone(),
                        attempt: row.attempts,
                        first_attempt_at: row.first_attempt_at,
                        started_at: row.locked_at,
                    };
                    next_state(&job, &abandoned, now)?
                }
                None => (
                    JobState::Dead,
                    None,
                    Some(format!("unknown job kind {:?}", row.kind)),
                ),
            };
            let attempt = Attempt {
                job: row.id,
                worker: &row.locked_by,
                number: row.attempts,
                outcome: "abandoned",
            };
            settle(&mut tx, &attempt, state, run_at, error.as_deref(), now).await?;
            tracing::warn!(job = row.id, kind = %row.kind, worker = %row.locked_by, state = %state, "took back a job whose worker stopped");
        }
        tx.commit().await?;
        Ok(stale.len() as u64)
    }

    /// When the next queued job falls due, if any is queued.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(
            sqlx::query_scalar!("SELECT min(run_at) FROM jobs WHERE state = 'queued'")
                .fetch_one(&self.db)
                .await?,
        )
    }

    /// Jobs in `states` (all when empty), newest first.
    pub async fn list(&self, states: &[JobState], limit: i64) -> Result<Vec<JobSummary>> {
        let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query!(
            "SELECT id, kind, state, attempts, run_at, last_error, unique_key, created_at
               FROM jobs WHERE cardinality($1::text[]) = 0 OR state = ANY($1)
              ORDER BY id DESC LIMIT $2",
            &states as &[&str],
            limit
        )
        .fetch_all(&self.db)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(JobSummary {
                    id: r.id,
                    kind: r.kind,
                    state: JobState::stored(&r.state)?,
                    attempts: r.attempts,
                    run_at: r.run_at,
                    last_error: r.last_error,
                    unique_key: r.unique_key,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    /// Queues a `dead` job again, now, with a fresh retry window.
    pub async fn retry(&self, id: i64) -> Result<()> {
        let mut tx = self.db.begin().await?;
        self.retry_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Jobs::retry`] as part of the caller's transaction (an operator's retry records
    /// itself in the audit log in the same one). Returns the job's kind.
    pub async fn retry_in(&self, conn: &mut sqlx::PgConnection, id: i64) -> Result<String> {
        let now = self.clock.fixed();
        let retried = sqlx::query_scalar!(
            "UPDATE jobs SET state = 'queued', run_at = coalesce($2, now()), first_attempt_at = NULL,
                    finished_at = NULL
              WHERE id = $1 AND state = 'dead'
              RETURNING kind",
            id,
            now
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(kind) = retried {
            return Ok(kind);
        }
        let state = sqlx::query_scalar!("SELECT state FROM jobs WHERE id = $1", id)
            .fetch_optional(&mut *conn)
            .await?;
        Err(match state {
            None => Error::NotFound,
            Some(state) => Error::Conflict(format!(
                "Job {id} is {state}: only dead jobs are retried by hand."
            )),
        })
    }
}

/// One attempt at a job, as its end is recorded.
struct Attempt<'a> {
    job: i64,
    worker: &'a str,
    number: i32,
    /// `succeeded`, `failed` or `abandoned` (the `job_attempts_outcome_check` words).
    outcome: &'static str,
}

/// Records the end of `attempt`: the job's new state, and the attempt's outcome. Only while
/// the attempt still holds the job: a late end of an attempt whose lease ran out (and that
/// another attempt took over) changes nothing, and `false` says so.
async fn settle(
    tx: &mut sqlx::PgConnection,
    attempt: &Attempt<'_>,
    state: JobState,
    run_at: Option<DateTime<Utc>>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let updated = sqlx::query!(
        "UPDATE jobs
            SET state = $4, run_at = coalesce($5, run_at), last_error = $6,
                locked_by = NULL, locked_at = NULL,
                finished_at = CASE WHEN $4::text IN ('succeeded', 'dead') THEN $7::timestamptz END
          WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running'",
        attempt.job,
        attempt.worker,
        attempt.number,
        state.as_str(),
        run_at,
        error,
        now
    )
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE job_attempts SET finished_at = $3, outcome = $4, error = $5
          WHERE job_id = $1 AND attempt = $2",
        attempt.job,
        attempt.number,
        now,
        attempt.outcome,
        error
    )
    .execute(&mut *tx)
    .await?;
    Ok(true)
}

/// What an attempt's outcome makes of the job at `now`: done, queued again after the
/// policy's backoff (counted from now, the end of this attempt), or dead once the policy's
/// window since the first attempt has passed.
fn next_state(
    job: &Job,
    outcome: &Result<(), JobError>,
    now: DateTime<Utc>,
) -> Result<(JobState, Option<DateTime<Utc>>, Option<String>)> {
    let policy = job.kind.policy();
    let attempts = u32::try_from(job.attempt).unwrap_or(1);
    Ok(match outcome {
        Ok(()) => (JobState::Succeeded, None, None),
        Err(JobError::Permanent(why)) => (JobState::Dead, None, Some(why.clone())),
        Err(JobError::Retry(why)) => {
            let tried_for = (now - job.first_attempt_at).to_std().unwrap_or_default();
            if tried_for >= policy.give_up_after {
                (JobState::Dead, None, Some(why.clone()))
            } else {
                let jitter = (rand::random::<f64>() * 2.0 - 1.0) * JITTER;
                let wait = chrono::Duration::from_std(policy.jittered_delay(attempts, jitter))
                    .map_err(|e| Error::Internal(e.to_string()))?;
                (JobState::Queued, Some(now + wait), Some(why.clone()))
            }
        }
    })
}
