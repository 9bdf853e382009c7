//! Background work of the domain: what each kind of job does, the nightly and monthly
//! schedule, and starting it all under the process's [`Background`].
//!
//! The reconciler, the storage sampler and the proxy's loops are started by the server
//! (they need the Docker engine and the proxy it builds) under the same [`Background`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use crate::Platform;
use crate::billing::{self, GracePeriod};
use crate::housekeeping;
use crate::infra::jobs::{self, Handler, Job, JobError, JobKind, NewJob, Worker};
use crate::infra::mail;
use crate::infra::tasks::Background;
use crate::kernel::Result;

/// How often each process looks whether a scheduled job is due (enqueueing is idempotent,
/// so every replica may look).
const SCHEDULE_EVERY: Duration = Duration::from_secs(60);

/// Starts the job worker and the scheduler.
pub fn start(platform: &Platform, background: &Background, concurrency: usize) {
    let worker = Worker::new(platform.jobs.clone()).with_concurrency(concurrency);
    tracing::info!(worker = worker.id(), concurrency, "job worker running");
    let handler = handler(platform.clone());
    let notifications = platform.notifications.clone();
    let token = background.token();
    background.spawn("jobs", async move {
        worker.run(handler, &notifications, token).await;
    });
    let scheduler = platform.clone();
    background.spawn_every("scheduler", SCHEDULE_EVERY, move || {
        let platform = scheduler.clone();
        async move {
            if let Err(error) = schedule(&platform, Utc::now()).await {
                tracing::warn!(%error, "scheduling the nightly jobs failed");
            }
        }
    });
}

/// Runs every due job in this task until none is due (tests and `slipway admin jobs run`).
pub async fn run_due(platform: &Platform) -> Result<usize> {
    Worker::new(platform.jobs.clone())
        .run_due(&handler(platform.clone()))
        .await
}

/// The handler of every kind.
pub fn handler(platform: Platform) -> Handler {
    Arc::new(move |job: Job| {
        let platform = platform.clone();
        Box::pin(async move { run(&platform, &job).await })
    })
}

async fn run(platform: &Platform, job: &Job) -> Result<(), JobError> {
    match job.kind {
        JobKind::Mail => {
            mail::deliver(&platform.db, &platform.mailer, number(job, "outbox_id")?).await
        }
        JobKind::StripeEvent => billing::webhooks::handle_event(platform, &job.payload).await,
        JobKind::StripeMeterEvent => {
            billing::meters::send_report(platform, text(job, "identifier")?).await
        }
        JobKind::BillingOverages => {
            billing::meters::report_overages(platform, date(job, "period")?).await?;
            Ok(())
        }
        JobKind::BillingGracePeriod => {
            let organization = id(job, "organization_id")?;
            match billing::end_grace_period(platform, organization).await? {
                // Ran before the end (an operator extended the grace period): the end is
                // queued for then, and this job is done; unless it is that job itself.
                GracePeriod::EndsAt(at) => {
                    if billing::dunning::requeue_grace_period_end(
                        platform,
                        organization,
                        at,
                        job.id,
                    )
                    .await?
                    {
                        Ok(())
                    } else {
                        Err(JobError::Retry(format!("the grace period ends at {at}")))
                    }
                }
                GracePeriod::Ended(_) | GracePeriod::NotRunning => Ok(()),
            }
        }
        JobKind::StripeReconcile => {
            billing::reconcile::reconcile_all(platform, date(job, "day")?).await?;
            Ok(())
        }
        JobKind::StripeReconcileOrganization => {
            billing::reconcile::reconcile_organization(platform, id(job, "organization_id")?)
                .await?;
            Ok(())
        }
        JobKind::StripeCancelSubscription => {
            billing::subscriptions::cancel_for_deleted_organization(
                platform,
                text(job, "subscription_id")?,
            )
            .await
        }
        JobKind::EditorSignOut => {
            crate::sites::editor::sign_out_everywhere(
                platform,
                id(job, "organization_id")?,
                id(job, "user_id")?,
                number(job, "issued_before")?,
            )
            .await
        }
        JobKind::Housekeeping => {
            housekeeping::sweep(platform).await?;
            Ok(())
        }
        JobKind::IncidentAlert => crate::incidents::alert(platform, id(job, "incident_id")?).await,
        JobKind::MrrSnapshot => {
            billing::revenue::take_snapshot(platform, date(job, "day")?).await?;
            Ok(())
        }
    }
}

fn field<'j>(job: &'j Job, name: &str) -> Result<&'j serde_json::Value, JobError> {
    job.payload
        .get(name)
        .ok_or_else(|| JobError::Permanent(format!("the job has no `{name}`")))
}

fn text<'j>(job: &'j Job, name: &str) -> Result<&'j str, JobError> {
    field(job, name)?
        .as_str()
        .ok_or_else(|| JobError::Permanent(format!("`{name}` is not text")))
}

fn number(job: &Job, name: &str) -> Result<i64, JobError> {
    field(job, name)?
        .as_i64()
        .ok_or_else(|| JobError::Permanent(format!("`{name}` is not a number")))
}

fn id(job: &Job, name: &str) -> Result<Uuid, JobError> {
    text(job, name)?
        .parse()
        .map_err(|_| JobError::Permanent(format!("`{name}` is not an id")))
}

fn date(job: &Job, name: &str) -> Result<NaiveDate, JobError> {
    text(job, name)?
        .parse()
        .map_err(|_| JobError::Permanent(format!("`{name}` is not a date")))
}

/// When each day's jobs run (UTC): a quiet hour, and not all at once.
const HOUSEKEEPING_AT: (u32, u32) = (3, 0);
const STRIPE_RECONCILE_AT: (u32, u32) = (4, 0);
/// The revenue snapshot stands for the start of its day: taken as soon as the day begins.
const MRR_SNAPSHOT_AT: (u32, u32) = (0, 0);

/// Queues the scheduled jobs due on `now`'s day (and month): each has a key naming its day,
/// so however many processes call this, each runs once. A process started late in the day
/// runs the day's jobs at once.
pub async fn schedule(platform: &Platform, now: DateTime<Utc>) -> Result<()> {
    let today = now.date_naive();
    let at = |(hour, minute): (u32, u32)| {
        today
            .and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or_default())
            .and_utc()
    };
    jobs::enqueue(
        &platform.db,
        NewJob::new(JobKind::Housekeeping, serde_json::json!({}))
            .unique(format!("housekeeping:{today}"))
            .at(at(HOUSEKEEPING_AT)),
    )
    .await?;
    jobs::enqueue(
        &platform.db,
        NewJob::new(
            JobKind::MrrSnapshot,
            serde_json::json!({ "day": today.to_string() }),
        )
        .unique(format!("mrr_snapshot:{today}"))
        .at(at(MRR_SNAPSHOT_AT)),
    )
    .await?;
    billing::requeue_overdue_grace_periods(platform, today).await?;
    if platform.billing.is_local() {
        return Ok(());
    }
    jobs::enqueue(
        &platform.db,
        NewJob::new(
            JobKind::StripeReconcile,
            serde_json::json!({ "day": today.to_string() }),
        )
        .unique(format!("stripe_reconcile:{today}"))
        .at(at(STRIPE_RECONCILE_AT)),
    )
    .await?;
    let last_month = billing::meters::previous_month(today);
    jobs::enqueue(
        &platform.db,
        NewJob::new(
            JobKind::BillingOverages,
            serde_json::json!({ "period": last_month.to_string() }),
        )
        .unique(format!(
            "billing_overages:{}-{:02}",
            last_month.year(),
            last_month.month()
        )),
    )
    .await?;
    Ok(())
}
