//! Running jobs: claim, run the kind's handler with a heartbeat, record the outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Job, JobError, JobState, Queue};
use crate::infra::notify::{CHANNEL_JOBS, Notifications};
use crate::kernel::Result;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What runs a job: one function for every kind (it dispatches on `job.kind`).
pub type Handler = Arc<dyn Fn(Job) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

/// How long a claim lives without a heartbeat. A worker beats every third of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// The longest a worker sleeps without looking (a lost notification costs no more).
const MAX_IDLE: Duration = Duration::from_secs(30);

/// One process's worker: runs up to `concurrency` jobs at a time.
#[derive(Debug, Clone)]
pub struct Worker {
    queue: Queue,
    id: String,
    concurrency: usize,
    lease: Duration,
}

impl Worker {
    /// A worker named after this host and process (what `locked_by` and `job_attempts`
    /// show).
    pub fn new(queue: Queue) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            queue,
            id: format!("{host}:{}:{}", std::process::id(), &tag[..8]),
            concurrency: 4,
            lease: DEFAULT_LEASE,
        }
    }

    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims one due job and runs it to its end; `None` when none was due.
    pub async fn run_one(&self, handler: &Handler) -> Result<Option<(Job, Option<JobState>)>> {
        let Some(job) = self.queue.claim(&self.id).await? else {
            return Ok(None);
        };
        let state = self.execute(handler, job.clone()).await?;
        Ok(Some((job, state)))
    }

    /// Runs due jobs one after another until none is due (after taking up abandoned ones).
    /// Returns how many ran. For tests and the CLI; the server uses [`Self::run`].
    pub async fn run_due(&self, handler: &Handler) -> Result<usize> {
        self.queue.reclaim_abandoned(self.lease).await?;
        let mut ran = 0;
        while self.run_one(handler).await?.is_some() {
            ran += 1;
        }
        Ok(ran)
    }

    /// Runs jobs as they fall due until `cancel`; then lets the jobs in progress finish
    /// (their handlers run to completion) and returns.
    pub async fn run(
        self,
        handler: Handler,
        notifications: &Notifications,
        cancel: CancellationToken,
    ) {
        let mut changes = notifications.subscribe();
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let finished = Arc::new(Notify::new());
        let running = TaskTracker::new();
        let mut last_reclaim: Option<tokio::time::Instant> = None;
        while !cancel.is_cancelled() {
            if last_reclaim.is_none_or(|t| t.elapsed() >= self.lease / 2) {
                last_reclaim = Some(tokio::time::Instant::now());
                if let Err(error) = self.queue.reclaim_abandoned(self.lease).await {
                    tracing::warn!(%error, "jobs: cannot take up abandoned jobs");
                }
            }
            // Fill the free slots with due jobs.
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                match self.queue.claim(&self.id).await {
                    Ok(Some(job)) => {
                        let this = self.clone();
                        let handler = handler.clone();
                        let finished = finished.clone();
                        running.spawn(async move {
                            if let Err(error) = this.execute(&handler, job).await {
                                tracing::error!(%error, "jobs: cannot record a job's outcome");
                            }
                            drop(permit);
                            finished.notify_one();
                        });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "jobs: cannot claim");
                        break;
                    }
                }
            }
            // With every slot taken, only a finished job (or a stop) frees one: waking on a
            // due job would only spin.
            let idle = if slots.available_permits() == 0 {
                MAX_IDLE
            } else {
                self.until_next_due().await
            };
            tokio::select! {
                () = cancel.cancelled() => {}
                () = changes.changed(CHANNEL_JOBS) => {}
                () = finished.notified() => {}
                () = tokio::time::sleep(idle) => {}
            }
        }
        running.close();
        running.wait().await;
    }

    /// How long until the next queued job is due (at most [`MAX_IDLE`]).
    async fn until_next_due(&self) -> Duration {
        let (Ok(Some(next)), Ok(now)) = (self.queue.next_due().await, self.queue.now().await)
        else {
            return MAX_IDLE;
        };
        (next - now).to_std().unwrap_or_default().min(MAX_IDLE)
    }

    /// Runs the handler, beating the claim's heartbeat meanwhile, and records the outcome. A
    /// handler that panics has failed (and is retried like any failure).
    async fn execute(&self, handler: &Handler, job: Job) -> Result<Option<JobState>> {
        let heartbeat = async {
            loop {
                tokio::time::sleep(self.lease / 3).await;
                match self.queue.heartbeat(&self.id, &job).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        job = job.id,
                        "jobs: lost the claim (the lease ran out); another worker may run it"
                    ),
                    Err(error) => tracing::warn!(job = job.id, %error, "jobs: heartbeat failed"),
                }
            }
        };
        let run = std::panic::AssertUnwindSafe(handler(job.clone())).catch_unwind();
        let outcome = tokio::select! {
            outcome = run => outcome.unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(JobError::Retry(format!("the handler panicked: {what}")))
            }),
            () = heartbeat => unreachable_heartbeat(),
        };
        match &outcome {
            Ok(()) => tracing::debug!(job = job.id, kind = %job.kind, "job succeeded"),
            Err(error) => {
                tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempt, %error, "job failed")
            }
        }
        let state = self.queue.finish(&job, &self.id, &outcome).await?;
        if state == Some(JobState::Dead) {
            tracing::error!(job = job.id, kind = %job.kind, "job gave up: it is dead (`slipway admin jobs`)");
        }
        Ok(state)
    }
}

/// The heartbeat loop never ends on its own.
fn unreachable_heartbeat() -> Result<(), JobError> {
    Err(JobError::Retry("the heartbeat stopped".to_owned()))
}
