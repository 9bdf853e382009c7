//! What the billing page shows: the plan, the subscription's state, usage against the plan,
//! and the next invoice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Interval, limit_value};
use crate::Platform;
use crate::infra::stripe::SubscriptionStatus;
use crate::kernel::Result;
use crate::tenancy::{Action, Membership};

/// An organization's billing, as the billing page shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overview {
    pub local_mode: bool,
    pub plan_id: String,
    pub plan_name: String,
    pub interval: Option<Interval>,
    /// Stripe's subscription status, when there is a subscription.
    pub status: Option<SubscriptionStatus>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub failed_payments: i32,
    pub grace_ends_at: Option<DateTime<Utc>>,
    pub has_customer: bool,
    /// The next invoice's total, in cents, when Stripe could say.
    pub upcoming_invoice_cents: Option<i64>,
    pub sites_used: i64,
    pub sites_limit: Option<u32>,
    pub members_used: i64,
    pub members_limit: Option<u32>,
    /// This month's traffic of all sites, and what the plan includes for them.
    pub bandwidth_bytes: i64,
    pub bandwidth_included_bytes: i64,
    pub storage_bytes: i64,
    pub storage_included_bytes: i64,
}

impl Overview {
    /// Whether a payment is owed (the dashboard's banner).
    pub fn past_due(&self) -> bool {
        self.status.is_some_and(SubscriptionStatus::is_past_due) || self.failed_payments > 0
    }
}

/// The caller's organization's billing with the upcoming invoice from Stripe; every member
/// may look, owners may act.
pub async fn overview(platform: &Platform, by: &Membership) -> Result<Overview> {
    let (mut overview, subscription) = stored_overview(platform, by).await?;
    if let (Some(api), Some((customer, subscription))) =
        (platform.billing.stripe.as_ref(), subscription)
    {
        // The page still shows everything else when Stripe is slow or down.
        match tokio::time::timeout(
            Duration::from_secs(5),
            api.preview_invoice(&customer, &subscription),
        )
        .await
        {
            Ok(Ok(invoice)) => overview.upcoming_invoice_cents = Some(invoice.amount_due),
            Ok(Err(error)) => tracing::warn!(%error, "Stripe: upcoming invoice preview failed"),
            Err(_) => tracing::warn!("Stripe: upcoming invoice preview timed out"),
        }
    }
    Ok(overview)
}

/// The same without asking Stripe anything (the dashboard banner, on every page).
pub async fn overview_without_invoice(platform: &Platform, by: &Membership) -> Result<Overview> {
    Ok(stored_overview(platform, by).await?.0)
}

/// What Slipway stores, plus the customer and live subscription to preview an invoice for.
async fn stored_overview(
    platform: &Platform,
    by: &Membership,
) -> Result<(Overview, Option<(String, String)>)> {
    by.require(Action::ViewOrganization)?;
    let row = sqlx::query!(
        r#"SELECT o.plan_id,
                  a.stripe_customer_id AS "customer?", a.stripe_subscription_id,
                  a.billing_interval, a.status, a.current_period_end,
                  a.cancel_at_period_end AS "cancel_at_period_end?",
                  a.failed_payments AS "failed_payments?", a.grace_ends_at,
                  (SELECT count(*) FROM sites s
                    WHERE s.organization_id = o.id AND s.status <> 'deleted'
                      AND s.desired_state <> 'deleted') AS "sites!",
                  (SELECT count(*) FROM organization_members m
                    WHERE m.organization_id = o.id) AS "members!",
                  (SELECT coalesce(sum(r.quantity), 0)::bigint FROM usage_records r
                    WHERE r.organization_id = o.id AND r.metric = 'bandwidth'
                      AND r.period = date_trunc('month', now() AT TIME ZONE 'UTC')::date) AS "bandwidth!",
                  (SELECT coalesce(sum(r.quantity), 0)::bigint FROM usage_records r
                    WHERE r.organization_id = o.id AND r.metric = 'storage'
                      AND r.period = date_trunc('month', now() AT TIME ZONE 'UTC')::date) AS "storage!"
             FROM organizations o
             LEFT JOIN billing_accounts a ON a.organization_id = o.id
            WHERE o.id = $1"#,
        by.organization_id
    )
    .fetch_one(&platform.db)
    .await?;
    let plan = platform.plan(&row.plan_id);
    let limits = plan.map(|p| &p.limits);
    let sites = row.sites.max(0);
    const GIB: i64 = 1 << 30;
    const MIB: i64 = 1 << 20;
    let overview = Overview {
        local_mode: platform.billing.is_local(),
        plan_name: plan.map_or_else(|| row.plan_id.clone(), |p| p.name.clone()),
        plan_id: row.plan_id,
        interval: row
            .billing_interval
            .as_deref()
            .and_then(|i| Interval::parse(i).ok()),
        status: row.status.as_deref().and_then(SubscriptionStatus::parse),
        current_period_end: row.current_period_end,
        cancel_at_period_end: row.cancel_at_period_end.unwrap_or(false),
        failed_payments: row.failed_payments.unwrap_or(0),
        grace_ends_at: row.grace_ends_at,
        has_customer: row.customer.is_some(),
        upcoming_invoice_cents: None,
        sites_used: sites,
        sites_limit: limits.and_then(|l| limit_value(l.sites)),
        members_used: row.members,
        members_limit: limits.and_then(|l| limit_value(l.members)),
        bandwidth_bytes: row.bandwidth,
        bandwidth_included_bytes: limits.map_or(0, |l| i64::from(l.bandwidth_gb) * GIB * sites),
        storage_bytes: row.storage,
        storage_included_bytes: limits.map_or(0, |l| i64::from(l.storage_mb) * MIB * sites),
    };
    let live = overview.status.is_some_and(SubscriptionStatus::is_live);
    let subscription = match (row.customer, row.stripe_subscription_id) {
        (Some(customer), Some(subscription)) if live => Some((customer, subscription)),
        _ => None,
    };
    Ok((overview, subscription))
}
