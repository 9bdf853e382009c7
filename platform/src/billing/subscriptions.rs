//! Applying what Stripe says about a subscription or an invoice to the organization: its
//! stored state, its plan, and (through dunning) its sites.

use chrono::DateTime;

use super::dunning::{enforce, mail_owners, schedule_grace_period_end};
use super::{plan_of_lookup_key, stripe};
use crate::Platform;
use crate::infra::jobs::{self, JobError, JobKind, NewJob};
use crate::infra::stripe::{StripeApi, Subscription, SubscriptionStatus};
use crate::kernel::money::format_amount;
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};

/// Fetches the subscription from Stripe and applies what it says now.
pub(crate) async fn sync_subscription(
    platform: &Platform,
    api: &StripeApi,
    id: &str,
) -> Result<()> {
    let subscription = api
        .retrieve_subscription(id)
        .await
        .map_err(|e| Error::Internal(format!("retrieving subscription {id}: {e}")))?;
    apply_subscription(platform, &subscription, Actor::System).await
}

/// The organization's stored billing state, locked while a subscription is applied.
struct StoredAccount {
    organization_id: uuid::Uuid,
    stripe_subscription_id: Option<String>,
    status: Option<String>,
    grace_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    plan_id: String,
    /// Deleted by its owners: nothing of it may keep billing.
    deleted: bool,
}

/// Stores the subscription's state and derives the organization's plan and sites from it.
pub(crate) async fn apply_subscription(
    platform: &Platform,
    subscription: &Subscription,
    actor: Actor,
) -> Result<()> {
    let customer = subscription
        .customer_id()
        .ok_or_else(|| Error::Internal("subscription without a customer".into()))?;
    let mut tx = platform.db.begin().await?;
    let Some(account) = sqlx::query_as!(
        StoredAccount,
        r#"SELECT a.organization_id, a.stripe_subscription_id, a.status, a.grace_ends_at, o.plan_id,
                  o.deleted_at IS NOT NULL AS "deleted!"
           FROM billing_accounts a JOIN organizations o ON o.id = a.organization_id
          WHERE a.stripe_customer_id = $1 FOR UPDATE OF a, o"#,
        customer
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        tracing::warn!(%customer, subscription = %subscription.id, "subscription of a customer Slipway does not know; ignored");
        return Ok(());
    };
    let org = account.organization_id;
    let stored_status = account
        .status
        .as_deref()
        .and_then(SubscriptionStatus::parse);
    let is_current = account.stripe_subscription_id.as_deref() == Some(subscription.id.as_str());
    if account.deleted {
        end_for_deleted(&mut tx, org, subscription).await?;
        tx.commit().await?;
        return Ok(());
    }
    let plan_changed = if subscription.status.is_live() {
        record_live(platform, &mut tx, &account, subscription, actor).await?
    } else if is_current
        && subscription.status.has_ended()
        && account.grace_ends_at.is_none()
        && stored_status != Some(SubscriptionStatus::Canceled)
    {
        start_grace_period(platform, &mut tx, &account, subscription, actor).await?
    } else if is_current && subscription.status == SubscriptionStatus::Paused {
        // Paused: the plan stays, but nothing is being paid (it is not revenue).
        sqlx::query!(
            "UPDATE billing_accounts SET status = 'paused', updated_at = now() WHERE organization_id = $1",
            org
        )
        .execute(&mut *tx)
        .await?;
        false
    } else {
        // An old or never-paid subscription says nothing about the current one; an ended
        // one already started its grace period.
        false
    };
    tx.commit().await?;
    if plan_changed {
        crate::sites::apply_plan(platform, org).await?;
    }
    enforce(platform, org).await?;
    Ok(())
}

/// A deleted organization has no sites or members left to pause, mail or keep: a
/// subscription of it that has not ended (one whose cancellation is still queued, or one a
/// checkout started after the deletion) is canceled, and its end is recorded as it is, with
/// no grace period (also for a subscription the organization never had recorded: the
/// operator sees what it paid for).
async fn end_for_deleted(
    tx: &mut sqlx::PgConnection,
    organization_id: uuid::Uuid,
    subscription: &Subscription,
) -> Result<()> {
    if !subscription.status.has_ended() {
        return queue_cancellation(&mut *tx, organization_id, &subscription.id).await;
    }
    sqlx::query!(
        "UPDATE billing_accounts
            SET stripe_subscription_id = $3, status = $2, cancel_at_period_end = false,
                canceled_at = coalesce(canceled_at, now()), updated_at = now()
          WHERE organization_id = $1
            AND (stripe_subscription_id IS NULL OR stripe_subscription_id = $3)",
        organization_id,
        subscription.status.as_str(),
        subscription.id
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Queues the cancellation of a deleted organization's subscription in Stripe, in the
/// caller's transaction: once per subscription, however often it is asked.
pub(crate) async fn queue_cancellation(
    executor: impl sqlx::PgExecutor<'_>,
    organization_id: uuid::Uuid,
    subscription_id: &str,
) -> Result<()> {
    jobs::enqueue(
        executor,
        NewJob::new(
            JobKind::StripeCancelSubscription,
            serde_json::json!({
                "organization_id": organization_id,
                "subscription_id": subscription_id,
            }),
        )
        .unique(format!("cancel-subscription:{subscription_id}")),
    )
    .await?;
    Ok(())
}

/// The `stripe_cancel_subscription` job: ends the subscription in Stripe unless it has
/// ended already. Stripe then sends `customer.subscription.deleted`, applied like any
/// other event ([`end_for_deleted`]).
pub(crate) async fn cancel_for_deleted_organization(
    platform: &Platform,
    subscription_id: &str,
) -> Result<(), JobError> {
    let api = stripe(platform)?;
    let subscription = match api.retrieve_subscription(subscription_id).await {
        Ok(subscription) => subscription,
        Err(error) if error.is_missing() => {
            // Nothing there can charge anyone.
            tracing::warn!(
                subscription = subscription_id,
                "Stripe does not know the deleted organization's subscription; nothing to cancel"
            );
            return Ok(());
        }
        Err(error) => {
            return Err(JobError::Retry(format!(
                "retrieving subscription {subscription_id}: {error}"
            )));
        }
    };
    if subscription.status.has_ended() {
        return Ok(());
    }
    api.cancel_subscription(subscription_id, "The organization was deleted in Slipway.")
        .await
        .map_err(|e| JobError::Retry(format!("canceling subscription {subscription_id}: {e}")))?;
    tracing::info!(
        subscription = subscription_id,
        "canceled the deleted organization's subscription"
    );
    Ok(())
}

/// A live subscription: its state, and the organization's plan from its price. Returns
/// whether the plan changed.
async fn record_live(
    platform: &Platform,
    tx: &mut sqlx::PgConnection,
    account: &StoredAccount,
    subscription: &Subscription,
    actor: Actor,
) -> Result<bool> {
    let org = account.organization_id;
    let Some((plan, interval)) = subscription
        .lookup_key()
        .and_then(|key| plan_of_lookup_key(platform, key))
    else {
        return Err(Error::Internal(format!(
            "subscription {} has a price that is not one of the catalog's ({:?})",
            subscription.id,
            subscription.lookup_key()
        )));
    };
    let period_end = subscription
        .current_period_end()
        .and_then(|t| DateTime::from_timestamp(t, 0));
    sqlx::query!(
        "UPDATE billing_accounts
            SET stripe_subscription_id = $2, plan_id = $3, billing_interval = $4, status = $5,
                current_period_end = $6, cancel_at_period_end = $7,
                mrr_cents = coalesce($8, mrr_cents),
                payment_failing_since = CASE WHEN $5 = 'active' THEN NULL ELSE payment_failing_since END,
                canceled_at = NULL, grace_ends_at = NULL, updated_at = now()
          WHERE organization_id = $1",
        org,
        subscription.id,
        plan.id.as_str(),
        interval.as_str(),
        subscription.status.as_str(),
        period_end,
        subscription.cancel_at_period_end,
        subscription.monthly_recurring_amount()
    )
    .execute(&mut *tx)
    .await?;
    if subscription.status == SubscriptionStatus::Active
        && subscription.monthly_recurring_amount() != Some(0)
    {
        super::revenue::converted(&mut *tx, org).await?;
    }
    if account.grace_ends_at.is_some() {
        crate::incidents::resolve(
            &mut *tx,
            platform,
            &subscription_ending(org),
            "subscribed again: the sites are kept",
        )
        .await?;
    }
    let is_current = account.stripe_subscription_id.as_deref() == Some(subscription.id.as_str());
    if account.status.as_deref() != Some(subscription.status.as_str()) || !is_current {
        audit::record(
            &mut *tx,
            audit::Entry::new("billing.subscription_status", actor)
                .organization(org)
                .subject(format!("subscription:{}", subscription.id))
                .details(serde_json::json!({
                    "from": account.status, "to": subscription.status,
                    "resubscribed_in_grace": account.grace_ends_at.is_some(),
                })),
        )
        .await?;
    }
    if account.plan_id == plan.id.as_str() {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE organizations SET plan_id = $2 WHERE id = $1",
        org,
        plan.id.as_str()
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("billing.plan_changed", actor)
            .organization(org)
            .subject(format!("plan:{}", plan.id))
            .details(serde_json::json!({
                "from": account.plan_id, "interval": interval.as_str(),
                "subscription": subscription.id,
            })),
    )
    .await?;
    Ok(true)
}

/// The subscription ended: the organization falls back to the default plan, its sites are
/// kept for the grace period (whose end is a queued job), and the owners are told. Returns
/// whether the plan changed.
async fn start_grace_period(
    platform: &Platform,
    tx: &mut sqlx::PgConnection,
    account: &StoredAccount,
    subscription: &Subscription,
    actor: Actor,
) -> Result<bool> {
    let org = account.organization_id;
    // The database's clock: the job that ends the grace period compares with it too.
    let grace_ends_at = sqlx::query_scalar!(
        r#"UPDATE billing_accounts
              SET status = 'canceled', cancel_at_period_end = false, canceled_at = now(),
                  grace_ends_at = now() + make_interval(secs => $2), updated_at = now()
            WHERE organization_id = $1
        RETURNING grace_ends_at AS "grace_ends_at!""#,
        org,
        platform.billing.grace_period.as_secs_f64()
    )
    .fetch_one(&mut *tx)
    .await?;
    let default_plan = platform.default_plan().as_str().to_owned();
    sqlx::query!(
        "UPDATE organizations SET plan_id = $2 WHERE id = $1",
        org,
        default_plan
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("billing.subscription_ended", actor)
            .organization(org)
            .subject(format!("subscription:{}", subscription.id))
            .details(serde_json::json!({
                "from_plan": account.plan_id, "grace_ends_at": grace_ends_at,
            })),
    )
    .await?;
    schedule_grace_period_end(&mut *tx, org, grace_ends_at).await?;
    crate::incidents::open(
        &mut *tx,
        platform,
        &subscription_ending(org),
        &format!(
            "the subscription ended; the sites are deleted on {} (UTC) unless you subscribe again",
            grace_ends_at.format("%Y-%m-%d %H:%M")
        ),
    )
    .await?;
    mail_owners(
        &mut *tx,
        org,
        "Your subscription has ended",
        &format!(
            "Your subscription has ended and your sites are paused.\n\n\
             They and their data are kept until {} (UTC). Subscribe again before then to keep them:\n{}\n\n\
             After that date they are deleted.",
            grace_ends_at.format("%Y-%m-%d %H:%M"),
            platform.link("/pricing")
        ),
    )
    .await?;
    Ok(account.plan_id != default_plan)
}

/// Fetches the invoice from Stripe and applies what it says now: paid clears the failed
/// payments (and lifts their suspension); still open after a failed attempt reminds the
/// owners, and the configured number of failures suspends the sites.
pub(crate) async fn sync_invoice(platform: &Platform, api: &StripeApi, id: &str) -> Result<()> {
    let invoice = api
        .retrieve_invoice(id)
        .await
        .map_err(|e| Error::Internal(format!("retrieving invoice {id}: {e}")))?;
    let Some(customer) = invoice.customer_id() else {
        return Ok(());
    };
    let mut tx = platform.db.begin().await?;
    let Some(account) = sqlx::query!(
        "SELECT organization_id, failed_payments FROM billing_accounts
          WHERE stripe_customer_id = $1 FOR UPDATE",
        customer
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        tracing::warn!(%customer, invoice = %id, "invoice of a customer Slipway does not know; ignored");
        return Ok(());
    };
    let org = account.organization_id;
    match invoice.status.as_deref() {
        Some("paid") => {
            if account.failed_payments > 0 {
                sqlx::query!(
                    "UPDATE billing_accounts SET failed_payments = 0, payment_failing_since = NULL,
                            status = CASE WHEN status IN ('past_due', 'unpaid') THEN 'active' ELSE status END,
                            updated_at = now()
                      WHERE organization_id = $1",
                    org
                )
                .execute(&mut *tx)
                .await?;
                audit::record(
                    &mut *tx,
                    audit::Entry::new("billing.payment_recovered", Actor::System)
                        .organization(org)
                        .subject(format!("invoice:{id}"))
                        .details(serde_json::json!({ "failed_attempts": account.failed_payments })),
                )
                .await?;
            }
        }
        Some("open") | Some("uncollectible") if invoice.attempt_count > 0 => {
            let attempts = i32::try_from(invoice.attempt_count).unwrap_or(i32::MAX);
            if attempts > account.failed_payments {
                sqlx::query!(
                    "UPDATE billing_accounts SET failed_payments = $2,
                            payment_failing_since = coalesce(payment_failing_since, now()),
                            status = CASE WHEN status = 'active' THEN 'past_due' ELSE status END,
                            updated_at = now()
                      WHERE organization_id = $1",
                    org,
                    attempts
                )
                .execute(&mut *tx)
                .await?;
                audit::record(
                    &mut *tx,
                    audit::Entry::new("billing.payment_failed", Actor::System)
                        .organization(org)
                        .subject(format!("invoice:{id}"))
                        .details(serde_json::json!({ "attempt": attempts, "amount_due": invoice.amount_due })),
                )
                .await?;
                let threshold = platform.billing.failed_payments_before_suspend;
                let consequence = if invoice.attempt_count >= threshold {
                    "Your sites are now suspended: visitors see a notice instead of your site. Nothing is deleted, and they come back as soon as the payment goes through.".to_owned()
                } else {
                    format!(
                        "After {threshold} failed attempts your sites are suspended until the invoice is paid."
                    )
                };
                mail_owners(
                    &mut tx,
                    org,
                    "Your payment failed",
                    &format!(
                        "We could not collect {} (attempt {attempts}).\n\n{consequence}\n\nUpdate your payment method:\n{}",
                        format_amount(invoice.amount_due, invoice.currency.as_deref()),
                        platform.link("/dashboard/billing")
                    ),
                )
                .await?;
            }
        }
        _ => {}
    }
    tx.commit().await?;
    enforce(platform, org).await?;
    Ok(())
}

/// The organization-wide incident that lasts while a grace period runs.
pub(crate) fn subscription_ending(organization_id: uuid::Uuid) -> crate::incidents::Subject {
    crate::incidents::Subject {
        organization_id,
        site_id: None,
        kind: crate::incidents::IncidentKind::SubscriptionEnding,
        detail: String::new(),
    }
}
