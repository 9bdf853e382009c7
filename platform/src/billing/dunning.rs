//! What billing does to sites: suspensions for unpaid invoices, for a plan too small and
//! for an ended subscription; the owners' mail; deletion when the grace period is over.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{BILLING_REASON_PREFIX, SUSPENDED_ENDED, SUSPENDED_OVER_LIMIT, SUSPENDED_PAYMENT};
use crate::Platform;
use crate::catalog::Limit;
use crate::infra::jobs::{self, JobKind, NewJob};
use crate::infra::mail;
use crate::infra::stripe::SubscriptionStatus;
use crate::kernel::Result;
use crate::tenancy::audit::{self, Actor};

/// What [`set_plan`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforced {
    pub suspended: Vec<String>,
    pub resumed: Vec<String>,
}

/// Suspends and resumes the organization's sites to match its billing state: all of them
/// after too many failed payments or once the subscription ended, otherwise the newest over
/// the plan's site limit. Only billing's own suspensions are ever lifted here. Idempotent.
pub async fn enforce(platform: &Platform, organization_id: Uuid) -> Result<Enforced> {
    let state = sqlx::query!(
        r#"SELECT o.plan_id, a.failed_payments AS "failed_payments?", a.grace_ends_at,
                  a.status AS "status?"
             FROM organizations o LEFT JOIN billing_accounts a ON a.organization_id = o.id
            WHERE o.id = $1"#,
        organization_id
    )
    .fetch_one(&platform.db)
    .await?;
    let sites = sqlx::query!(
        "SELECT id, slug, suspended_reason FROM sites
          WHERE organization_id = $1 AND status <> 'deleted' AND desired_state <> 'deleted'
          ORDER BY created_at, id",
        organization_id
    )
    .fetch_all(&platform.db)
    .await?;
    let threshold =
        i32::try_from(platform.billing.failed_payments_before_suspend).unwrap_or(i32::MAX);
    let ended = state.status.as_deref() == Some(SubscriptionStatus::Canceled.as_str())
        && state.grace_ends_at.is_some();
    let unpaid = state.failed_payments.unwrap_or(0) >= threshold;
    let allowed = platform
        .plan(&state.plan_id)
        .map_or(Limit::Count(0), |p| p.limits.sites);
    let mut done = Enforced::default();
    for (index, site) in sites.iter().enumerate() {
        let over_limit = match allowed {
            Limit::Count(max) => index >= max as usize,
            Limit::Unlimited => false,
        };
        let wanted = if unpaid {
            Some(SUSPENDED_PAYMENT)
        } else if ended {
            Some(SUSPENDED_ENDED)
        } else if over_limit {
            Some(SUSPENDED_OVER_LIMIT)
        } else {
            None
        };
        let current = site.suspended_reason.as_deref();
        let billing_owned = current.is_some_and(|r| r.starts_with(BILLING_REASON_PREFIX));
        match (wanted, current) {
            (Some(reason), None) => {
                crate::sites::suspend(platform, site.id, reason).await?;
                done.suspended.push(site.slug.clone());
            }
            (Some(reason), Some(now)) if billing_owned && now != reason => {
                // Keep the suspension, record the reason that now holds (if it is still
                // billing's: an operator may have taken it over meanwhile).
                sqlx::query!(
                    "UPDATE sites SET suspended_reason = $2
                      WHERE id = $1 AND suspended_at IS NOT NULL
                        AND starts_with(suspended_reason, $3)",
                    site.id,
                    reason,
                    BILLING_REASON_PREFIX
                )
                .execute(&platform.db)
                .await?;
            }
            (None, Some(_)) if billing_owned => {
                // Only if it is still billing's, decided in the update itself.
                let system = crate::sites::SuspendedBy {
                    actor: crate::tenancy::audit::Actor::System,
                    reason: "",
                };
                crate::sites::resume_as(platform, site.id, crate::sites::Owner::Billing, system)
                    .await?;
                done.resumed.push(site.slug.clone());
            }
            _ => {}
        }
    }
    Ok(done)
}

pub(crate) async fn mail_owners(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    subject: &str,
    body: &str,
) -> Result<()> {
    let owners = sqlx::query_scalar!(
        "SELECT u.email FROM organization_members m JOIN users u ON u.id = m.user_id
          WHERE m.organization_id = $1 AND m.role = 'owner'",
        organization_id
    )
    .fetch_all(&mut *tx)
    .await?;
    for email in owners {
        let message = mail::Message {
            to: crate::kernel::Email::parse(&email)?,
            subject: subject.to_owned(),
            body: body.to_owned(),
        };
        mail::send(tx, &message).await?;
    }
    Ok(())
}

/// Queues the end of `organization_id`'s grace period at `ends_at`, in the transaction that
/// started (or extended) it. Once per moment: the job's key names it.
pub(crate) async fn schedule_grace_period_end(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    ends_at: DateTime<Utc>,
) -> Result<()> {
    jobs::enqueue(
        &mut *tx,
        NewJob::new(
            JobKind::BillingGracePeriod,
            serde_json::json!({ "organization_id": organization_id }),
        )
        .unique(grace_period_key(organization_id, ends_at))
        .at(ends_at),
    )
    .await?;
    Ok(())
}

fn grace_period_key(organization_id: Uuid, ends_at: DateTime<Utc>) -> String {
    format!(
        "billing_grace_period:{organization_id}:{}",
        ends_at.timestamp()
    )
}

/// For the job `running`, which found the grace period not over (it was extended): makes
/// sure the end is queued for `ends_at`. `false` when no other job is waiting for that
/// moment (the job for it is `running` itself, which ran a little early, or one that
/// already finished holds its key): `running` must try again then.
pub(crate) async fn requeue_grace_period_end(
    platform: &Platform,
    organization_id: Uuid,
    ends_at: DateTime<Utc>,
    running: i64,
) -> Result<bool> {
    let mut conn = platform.db.acquire().await?;
    schedule_grace_period_end(&mut conn, organization_id, ends_at).await?;
    let queued = sqlx::query_scalar!(
        "SELECT id FROM jobs WHERE unique_key = $1 AND state IN ('queued', 'running')",
        grace_period_key(organization_id, ends_at)
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(queued.is_some_and(|id| id != running))
}

/// The nightly safety net: queues the end of every grace period that is over but whose
/// job is gone (it gave up, or was removed), keyed by organization and `day`, so no
/// cancelled organization keeps its sites forever. Returns how many it queued.
pub async fn requeue_overdue_grace_periods(platform: &Platform, day: NaiveDate) -> Result<u64> {
    let queued = sqlx::query!(
        "INSERT INTO jobs (kind, payload, unique_key)
         SELECT 'billing_grace_period', jsonb_build_object('organization_id', a.organization_id),
                'billing_grace_period:' || a.organization_id || ':overdue:' || $1::date
           FROM billing_accounts a
          WHERE a.status = 'canceled' AND a.grace_ends_at <= now()
            AND NOT EXISTS (SELECT 1 FROM jobs j
                             WHERE j.kind = 'billing_grace_period'
                               AND j.state IN ('queued', 'running')
                               AND j.payload->>'organization_id' = a.organization_id::text)
         ON CONFLICT (unique_key) DO NOTHING",
        day
    )
    .execute(&platform.db)
    .await?;
    if queued.rows_affected() > 0 {
        tracing::warn!(
            organizations = queued.rows_affected(),
            "grace periods over without a job: queued their end again"
        );
    }
    Ok(queued.rows_affected())
}

/// What became of a grace period when its job ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GracePeriod {
    /// Over: these sites were asked to be deleted.
    Ended(Vec<String>),
    /// Not over yet (the job ran early): try again then.
    EndsAt(DateTime<Utc>),
    /// The organization subscribed again (or it was handled already): nothing to do.
    NotRunning,
}

/// The `billing_grace_period` job: once the grace period after a cancellation is over and
/// the organization did not subscribe again, asks for its sites to be deleted.
pub async fn end_grace_period(platform: &Platform, organization_id: Uuid) -> Result<GracePeriod> {
    let mut tx = platform.db.begin().await?;
    let account = sqlx::query!(
        r#"SELECT grace_ends_at, grace_ends_at <= now() AS "over!"
             FROM billing_accounts
            WHERE organization_id = $1 AND status = 'canceled' AND grace_ends_at IS NOT NULL
            FOR UPDATE"#,
        organization_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(account) = account else {
        return Ok(GracePeriod::NotRunning);
    };
    if let (false, Some(ends_at)) = (account.over, account.grace_ends_at) {
        return Ok(GracePeriod::EndsAt(ends_at));
    }
    // Backups do not exist yet (a later issue): the final backup goes here.
    sqlx::query!(
        "UPDATE billing_accounts SET grace_ends_at = NULL, updated_at = now()
          WHERE organization_id = $1",
        organization_id
    )
    .execute(&mut *tx)
    .await?;
    let sites = crate::sites::delete_all(
        &mut tx,
        organization_id,
        crate::sites::DeploymentReason::Billing,
    )
    .await?;
    crate::incidents::resolve(
        &mut tx,
        platform,
        &super::subscriptions::subscription_ending(organization_id),
        &format!("the grace period is over: {} site(s) deleted", sites.len()),
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("billing.grace_period_over", Actor::System)
            .organization(organization_id)
            .details(serde_json::json!({ "sites_deleted": sites })),
    )
    .await?;
    tx.commit().await?;
    Ok(GracePeriod::Ended(sites))
}
