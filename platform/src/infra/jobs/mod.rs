//! The one durable job queue: every piece of deferred work (mail, Stripe events, meter
//! reports, grace periods, nightly reconciliation, housekeeping) is a row in `jobs`.
//!
//! * Enqueueing is idempotent: a job may carry a unique key (a Stripe event id, a day), and
//!   a second job with the same key is not created. Enqueue inside the transaction of the
//!   change that causes the work, so the job exists exactly when the change does.
//! * Workers claim due jobs with `FOR UPDATE SKIP LOCKED` (any number of processes), are
//!   woken by `NOTIFY slipway_jobs`, and hold a claim by a heartbeat: a job held by a
//!   process that died is taken up again once its lease runs out.
//! * A failed attempt is retried with exponential backoff and jitter counted from that
//!   attempt, for as long as its kind's [`RetryPolicy`] says; a job that gives up is `dead`:
//!   kept, listed by `slipway admin jobs`, and re-queued by an operator (`/admin/jobs`, or `slipway admin jobs retry ID --reason ...
//!   --operator EMAIL`).
//!   Every attempt is recorded in `job_attempts` (when, by whom, how it ended).
//!
//! The queue knows nothing of what a job does: the `workers` module maps kinds to handlers.

mod queue;
mod worker;

use std::time::Duration;

use crate::kernel::Error;

pub use queue::{Clock, Job, JobSummary, NewJob, Queue, enqueue};
pub use worker::{BoxFuture, Handler, Worker};

crate::text_enum! {
    /// What a job does; each kind has its handler (in the `workers` module) and its retry
    /// policy. The same words are the `jobs_kind_check` constraint.
    pub enum JobKind {
        /// Deliver one message of the mail outbox.
        Mail => "mail",
        /// Apply one Stripe webhook event (fetching what it names from Stripe).
        StripeEvent => "stripe_event",
        /// Send one stored overage report to a Stripe Billing Meter.
        StripeMeterEvent => "stripe_meter_event",
        /// Measure last month's overages of every organization and store their reports.
        BillingOverages => "billing_overages",
        /// After a subscription ended: delete the organization's sites unless it came back.
        BillingGracePeriod => "billing_grace_period",
        /// Nightly: one `StripeReconcileOrganization` per organization with a customer.
        StripeReconcile => "stripe_reconcile",
        /// Compare one organization's subscription in Stripe with what Slipway applied.
        StripeReconcileOrganization => "stripe_reconcile_organization",
        /// Cancel a deleted organization's subscription in Stripe.
        StripeCancelSubscription => "stripe_cancel_subscription",
        /// Sign a member out of the editors of their organization's sites (their role went
        /// down, or they left).
        EditorSignOut => "editor_sign_out",
        /// Nightly: delete what is past its retention.
        Housekeeping => "housekeeping",
        /// Mail a site's members that it has been down for a while (if it still is).
        IncidentAlert => "incident_alert",
        /// Daily: store what every paying organization pays per month (business metrics).
        MrrSnapshot => "mrr_snapshot",
    }
}

crate::text_enum! {
    /// Where a job is in its life. The same words are the `jobs_state_check` constraint.
    pub enum JobState {
        /// Waiting for its `run_at` (a first try, or a retry after a failure).
        Queued => "queued",
        /// Claimed by a worker, which keeps its heartbeat fresh.
        Running => "running",
        Succeeded => "succeeded",
        /// Gave up after its policy's window: kept, listed, retryable by an operator.
        Dead => "dead",
    }
}

impl JobKind {
    /// How long and how often a failing job of this kind is retried.
    pub fn policy(self) -> RetryPolicy {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 3600;
        const DAY: u64 = 24 * HOUR;
        let (first, max, window) = match self {
            // Users wait for these links; a day later they are useless anyway.
            JobKind::Mail => (30, 30 * MINUTE, DAY),
            // An alert a day late is noise.
            JobKind::IncidentAlert => (30, 30 * MINUTE, DAY),
            // Stripe itself re-delivers an event for 3 days: Slipway never gives up sooner,
            // so a Stripe outage of any length shorter than that loses nothing.
            JobKind::StripeEvent => (10, HOUR, 3 * DAY),
            // Stripe accepts meter events up to 35 days old.
            JobKind::StripeMeterEvent | JobKind::BillingOverages => (MINUTE, HOUR, 7 * DAY),
            JobKind::BillingGracePeriod => (MINUTE, HOUR, 7 * DAY),
            // A deleted organization must stop paying: tried for a week, then an
            // operator's dead job (while Stripe keeps charging, an outage is all it can be).
            JobKind::StripeCancelSubscription => (10, HOUR, 7 * DAY),
            // The sites' sessions last 8 hours: after that the job has nothing left to end
            // (its handler then succeeds), so it never needs to give up sooner.
            JobKind::EditorSignOut => (30, 30 * MINUTE, 9 * HOUR),
            // The next night's run starts afresh.
            JobKind::StripeReconcile
            | JobKind::StripeReconcileOrganization
            | JobKind::Housekeeping
            | JobKind::MrrSnapshot => (MINUTE, HOUR, 20 * HOUR),
        };
        RetryPolicy {
            first_delay: Duration::from_secs(first),
            max_delay: Duration::from_secs(max),
            give_up_after: Duration::from_secs(window),
        }
    }
}

/// Exponential backoff with jitter, counted from the last attempt, for a bounded window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; each further failure doubles it...
    pub first_delay: Duration,
    /// ...up to this.
    pub max_delay: Duration,
    /// A failure this long after the first attempt makes the job `dead` (earlier ones are
    /// always retried, so a job is tried for at least this long).
    pub give_up_after: Duration,
}

/// Jitter spreads retries of jobs that failed together (a Stripe outage) by +-20 %.
pub const JITTER: f64 = 0.2;

impl RetryPolicy {
    /// The wait before the next try after `attempts` failed attempts, before jitter.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// [`Self::delay`] scaled by `1 + jitter`, with `jitter` in `[-JITTER, JITTER]`.
    pub fn jittered_delay(&self, attempts: u32, jitter: f64) -> Duration {
        self.delay(attempts)
            .mul_f64(1.0 + jitter.clamp(-JITTER, JITTER))
    }
}

/// How a handler's attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later (a service is down, a conflict).
    #[error("{0}")]
    Retry(String),
    /// Can never succeed (a malformed payload): the job is `dead` at once.
    #[error("{0}")]
    Permanent(String),
}

impl From<Error> for JobError {
    fn from(error: Error) -> Self {
        JobError::Retry(error.to_string())
    }
}

impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        JobError::Retry(Error::from(error).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_first_up_to_the_cap() {
        let policy = JobKind::StripeEvent.policy();
        let secs = |n| policy.delay(n).as_secs();
        assert_eq!(
            [
                secs(1),
                secs(2),
                secs(3),
                secs(4),
                secs(9),
                secs(10),
                secs(50)
            ],
            [10, 20, 40, 80, 2560, 3600, 3600]
        );
        assert_eq!(policy.jittered_delay(1, 0.2).as_secs_f64(), 12.0);
        assert_eq!(policy.jittered_delay(1, -5.0).as_secs_f64(), 8.0);
    }

    #[test]
    fn stripe_events_are_retried_for_stripes_whole_delivery_window() {
        assert!(JobKind::StripeEvent.policy().give_up_after >= Duration::from_secs(3 * 24 * 3600));
        assert!(JobKind::Mail.policy().give_up_after >= Duration::from_secs(24 * 3600));
    }
}
