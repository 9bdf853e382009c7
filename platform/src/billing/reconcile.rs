//! The nightly Stripe reconciliation: for every organization with a Stripe customer, what
//! Stripe holds is compared with what Slipway applied, and any drift is repaired (and
//! audited as `billing.drift_repaired`). Webhooks are the fast path; this is the net under
//! it, so that even an event lost for good leaves a plan wrong for at most a day.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::subscriptions::{apply_subscription, sync_invoice};
use super::{plan_of_lookup_key, stripe};
use crate::Platform;
use crate::infra::jobs::{self, JobKind, NewJob};
use crate::infra::stripe::{Subscription, SubscriptionStatus};
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};

/// The `stripe_reconcile` job of `day`: queues one reconciliation per organization with a
/// Stripe customer (each retried on its own). Returns how many it queued.
pub async fn reconcile_all(platform: &Platform, day: NaiveDate) -> Result<usize> {
    let organizations = sqlx::query_scalar!(
        "SELECT organization_id FROM billing_accounts ORDER BY organization_id"
    )
    .fetch_all(&platform.db)
    .await?;
    let mut queued = 0;
    for organization_id in organizations {
        let job = NewJob::new(
            JobKind::StripeReconcileOrganization,
            serde_json::json!({ "organization_id": organization_id }),
        )
        .unique(format!(
            "stripe_reconcile_organization:{organization_id}:{day}"
        ));
        if jobs::enqueue(&platform.db, job).await?.is_some() {
            queued += 1;
        }
    }
    Ok(queued)
}

/// What Slipway stored about an organization's subscription.
struct Stored {
    customer: String,
    subscription: Option<String>,
    status: Option<String>,
    plan: Option<String>,
    interval: Option<String>,
    cancel_at_period_end: bool,
    current_period_end: Option<DateTime<Utc>>,
    failed_payments: i32,
    mrr_cents: Option<i64>,
}

/// The `stripe_reconcile_organization` job: compares and repairs one organization. Returns
/// what differed (empty when Stripe and Slipway agreed).
pub async fn reconcile_organization(
    platform: &Platform,
    organization_id: Uuid,
) -> Result<Vec<String>> {
    let api = stripe(platform)?;
    let Some(stored) = sqlx::query_as!(
        Stored,
        "SELECT stripe_customer_id AS customer, stripe_subscription_id AS subscription, status,
                plan_id AS plan, billing_interval AS interval, cancel_at_period_end,
                current_period_end, failed_payments, mrr_cents
           FROM billing_accounts WHERE organization_id = $1",
        organization_id
    )
    .fetch_optional(&platform.db)
    .await?
    else {
        return Ok(Vec::new());
    };
    let subscriptions = api
        .list_subscriptions(&stored.customer)
        .await
        .map_err(|e| {
            Error::Internal(format!(
                "listing the subscriptions of {}: {e}",
                stored.customer
            ))
        })?;
    // What counts: a live subscription (Stripe lists the newest first), else the one Slipway
    // knows; a customer who never subscribed has nothing to compare.
    let Some(current) = subscriptions
        .iter()
        .find(|s| s.status.is_live())
        .or_else(|| {
            subscriptions
                .iter()
                .find(|s| Some(&s.id) == stored.subscription.as_ref())
        })
    else {
        return Ok(Vec::new());
    };
    let mut drift = subscription_drift(platform, &stored, current);
    if !drift.is_empty() {
        apply_subscription(platform, current, Actor::System).await?;
        record_drift(platform, organization_id, &current.id, &drift).await?;
    }
    // A payment (or a failed one) whose event was lost.
    if let Some(invoice_id) = current.latest_invoice_id() {
        let invoice = api
            .retrieve_invoice(invoice_id)
            .await
            .map_err(|e| Error::Internal(format!("retrieving invoice {invoice_id}: {e}")))?;
        let attempts = i32::try_from(invoice.attempt_count).unwrap_or(i32::MAX);
        let invoice_drift = match invoice.status.as_deref() {
            Some("paid") if stored.failed_payments > 0 => Some(format!(
                "failed payments: {} -> 0 (invoice {invoice_id} is paid)",
                stored.failed_payments
            )),
            Some("open" | "uncollectible") if attempts > stored.failed_payments => Some(format!(
                "failed payments: {} -> {attempts} (invoice {invoice_id})",
                stored.failed_payments
            )),
            _ => None,
        };
        if let Some(what) = invoice_drift {
            record_drift(
                platform,
                organization_id,
                &current.id,
                std::slice::from_ref(&what),
            )
            .await?;
            sync_invoice(platform, api, invoice_id).await?;
            drift.push(what);
        }
    }
    Ok(drift)
}

/// How the stored state differs from `current`, one line per field.
fn subscription_drift(platform: &Platform, stored: &Stored, current: &Subscription) -> Vec<String> {
    let mut drift = Vec::new();
    let mut differs = |field: &str, ours: Option<&str>, theirs: Option<&str>| {
        if ours != theirs {
            drift.push(format!(
                "{field}: {} -> {}",
                ours.unwrap_or("none"),
                theirs.unwrap_or("none")
            ));
        }
    };
    differs(
        "subscription",
        stored.subscription.as_deref(),
        Some(current.id.as_str()),
    );
    differs(
        "status",
        stored.status.as_deref(),
        Some(current.status.as_str()),
    );
    if current.status.is_live() {
        let plan = current
            .lookup_key()
            .and_then(|key| plan_of_lookup_key(platform, key));
        differs(
            "plan",
            stored.plan.as_deref(),
            plan.map(|(plan, _)| plan.id.as_str()),
        );
        differs(
            "interval",
            stored.interval.as_deref(),
            plan.map(|(_, interval)| interval.as_str()),
        );
        let period_end = current
            .current_period_end()
            .and_then(|t| DateTime::from_timestamp(t, 0));
        if stored.current_period_end != period_end {
            drift.push("current period end".to_owned());
        }
        // A discount added or ended changes what the subscription brings in.
        if let Some(mrr) = current.monthly_recurring_amount()
            && stored.mrr_cents != Some(mrr)
        {
            drift.push(format!(
                "monthly recurring revenue: {} -> {mrr}",
                stored
                    .mrr_cents
                    .map_or("not yet known".to_owned(), |m| m.to_string())
            ));
        }
        if stored.cancel_at_period_end != current.cancel_at_period_end {
            drift.push(format!(
                "cancel at period end: {} -> {}",
                stored.cancel_at_period_end, current.cancel_at_period_end
            ));
        }
    } else if current.status.has_ended()
        && stored.status.as_deref() == Some(SubscriptionStatus::Canceled.as_str())
    {
        // Ended on both sides: agreeing, whatever the ended subscription's other fields say.
        drift.clear();
    }
    drift
}

async fn record_drift(
    platform: &Platform,
    organization_id: Uuid,
    subscription: &str,
    drift: &[String],
) -> Result<()> {
    tracing::warn!(organization = %organization_id, ?drift, "Stripe and Slipway disagreed; repaired");
    audit::record(
        &platform.db,
        audit::Entry::new("billing.drift_repaired", Actor::System)
            .organization(organization_id)
            .subject(format!("subscription:{subscription}"))
            .details(serde_json::json!({ "drift": drift })),
    )
    .await
}
