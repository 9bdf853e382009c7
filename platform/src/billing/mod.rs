//! Billing: Stripe drives each organization's plan, and the plan drives its sites.
//!
//! The flow is one idempotent state machine:
//!
//! * An owner starts a Stripe Checkout Session ([`checkout`]); an organization that already
//!   pays has its subscription's price changed instead, so there is never a second one.
//! * Stripe tells Slipway what happened through signed webhooks ([`receive_webhook`]). Each
//!   event is stored by id (a duplicate is a no-op) and answered at once; [`process_pending`]
//!   then handles it by fetching the subscription or invoice it names **from Stripe**, so an
//!   event that arrives late or out of order applies the current state, never an old one.
//! * The stored state (the `billing_accounts` table) decides the organization's plan and which of its
//!   sites are suspended for billing ([`enforce`]): after the third failed payment all of
//!   them, over the plan's site limit the newest ones, after a cancellation all of them for
//!   the grace period, after which they are deleted ([`expire_grace_periods`]).
//! * Usage above a Business plan's included amounts is reported to Stripe Billing Meters
//!   once per organization, metric and month ([`meter`]).
//!
//! Without a Stripe key this all stays local: operators assign plans ([`set_plan`]).

pub mod catalog;
pub mod meter;
pub mod signature;
pub mod stripe_api;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::mail;
use crate::orgs::{Action, Membership};
use crate::plans::{Limit, Plan, PlanId};
use stripe_api::{ApiError, StripeApi, Subscription};

/// Why a site is suspended, when billing suspended it. Operators' own suspensions carry
/// other reasons and billing never lifts them.
pub const SUSPENDED_PAYMENT: &str = "billing: payment failed";
pub const SUSPENDED_OVER_LIMIT: &str = "billing: over the plan's site limit";
pub const SUSPENDED_ENDED: &str = "billing: subscription ended";
const BILLING_REASON_PREFIX: &str = "billing:";

/// Billing as configured (see `config::BillingConfig`).
#[derive(Clone, Debug)]
pub struct BillingSettings {
    /// `None`: local billing mode.
    pub stripe: Option<StripeApi>,
    pub webhook_secrets: Vec<SecretString>,
    pub failed_payments_before_suspend: u32,
    pub grace_period: Duration,
    /// Fired when a webhook event is stored: the worker handles it at once.
    pub events: Arc<tokio::sync::Notify>,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            stripe: None,
            webhook_secrets: Vec::new(),
            failed_payments_before_suspend: 3,
            grace_period: Duration::from_secs(7 * 24 * 3600),
            events: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

impl BillingSettings {
    pub fn is_local(&self) -> bool {
        self.stripe.is_none()
    }
}

/// How often a subscription renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Monthly,
    Yearly,
}

impl Interval {
    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "monthly" | "month" => Ok(Interval::Monthly),
            "yearly" | "year" => Ok(Interval::Yearly),
            _ => Err(Error::invalid(
                "interval",
                "Choose monthly or yearly billing.",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Monthly => "monthly",
            Interval::Yearly => "yearly",
        }
    }
}

/// The Stripe price of `plan` billed every `interval`, found by this lookup key.
pub fn lookup_key(plan: &PlanId, interval: Interval) -> String {
    format!("slipway_{plan}_{}", interval.as_str())
}

/// The plan and interval a price's lookup key stands for, if it is one of the catalog's.
pub fn plan_of_lookup_key<'p>(platform: &'p Platform, key: &str) -> Option<(&'p Plan, Interval)> {
    let rest = key.strip_prefix("slipway_")?;
    let (plan, interval) = rest.rsplit_once('_')?;
    Some((platform.plan(plan)?, Interval::parse(interval).ok()?))
}

fn stripe(platform: &Platform) -> Result<&StripeApi> {
    platform.billing.stripe.as_ref().ok_or_else(|| {
        Error::Conflict(
            "Billing on this server is handled by its operator (local billing mode). Ask them to change your plan.".to_owned(),
        )
    })
}

/// A Stripe failure, as users see it; the details go to the log.
fn unavailable(what: &str, error: &ApiError) -> Error {
    tracing::error!(%error, "Stripe: {what} failed");
    Error::Unavailable(format!(
        "Payments are unavailable right now ({what} failed). Nothing was charged; try again in a minute."
    ))
}

/// An organization's billing, as the billing page shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overview {
    pub local_mode: bool,
    pub plan_id: String,
    pub plan_name: String,
    pub interval: Option<Interval>,
    /// Stripe's subscription status, when there is a subscription.
    pub status: Option<String>,
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
        matches!(self.status.as_deref(), Some("past_due" | "unpaid")) || self.failed_payments > 0
    }
}

fn limit_value(limit: Limit) -> Option<u32> {
    match limit {
        Limit::Count(n) => Some(n),
        Limit::Unlimited => None,
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
        status: row.status,
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
    let live = matches!(
        overview.status.as_deref(),
        Some("active" | "trialing" | "past_due" | "unpaid")
    );
    let subscription = match (row.customer, row.stripe_subscription_id) {
        (Some(customer), Some(subscription)) if live => Some((customer, subscription)),
        _ => None,
    };
    Ok((overview, subscription))
}

/// Where an owner goes after asking for a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutOutcome {
    /// To Stripe Checkout, to pay.
    Redirect(String),
    /// Nowhere: the existing subscription was moved to the new plan (prorated).
    Changed,
}

/// Starts paying for `plan` every `interval`: a Checkout Session for an organization without
/// a subscription, a change of the existing subscription otherwise. Owners only. A double
/// click or a retry reuses the open session (and Stripe's idempotency keys cover a retry of
/// the call itself), so it never creates a second subscription.
pub async fn checkout(
    platform: &Platform,
    by: &Membership,
    plan_id: &str,
    interval: Interval,
) -> Result<CheckoutOutcome> {
    by.require(Action::ManageBilling)?;
    let api = stripe(platform)?;
    let plan = platform
        .plan(plan_id)
        .filter(|p| p.monthly_cents.0 > 0)
        .ok_or_else(|| Error::invalid("plan", "Choose one of the paid plans."))?;

    let mut tx = platform.db.begin().await?;
    // One checkout at a time per organization: a double click waits here, then finds the
    // session the first click opened.
    let org = sqlx::query!(
        r#"SELECT o.name, o.plan_id,
                  (SELECT count(*) FROM sites s
                    WHERE s.organization_id = o.id AND s.status <> 'deleted'
                      AND s.desired_state <> 'deleted') AS "sites!",
                  (SELECT count(*) FROM organization_members m
                    WHERE m.organization_id = o.id) AS "members!"
             FROM organizations o WHERE o.id = $1 FOR UPDATE"#,
        by.organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    refuse_downgrade_below_usage(plan, org.sites, org.members)?;

    let account = sqlx::query!(
        "SELECT stripe_customer_id, stripe_subscription_id, status, plan_id, billing_interval,
                extract(epoch FROM updated_at)::bigint AS \"version!\"
           FROM billing_accounts WHERE organization_id = $1",
        by.organization_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let price_key = lookup_key(&plan.id, interval);
    let price = published_price(api, plan, &price_key).await?;
    let mut metered_prices = Vec::new();
    if meter::overage_of(plan).is_some() {
        for (metric, _, _) in meter::METRICS {
            let key = meter::lookup_key(&plan.id, metric, interval);
            metered_prices.push(published_price(api, plan, &key).await?.id);
        }
    }
    let metadata = HashMap::from([
        ("organization_id".to_owned(), by.organization_id.to_string()),
        ("plan".to_owned(), plan.id.to_string()),
        ("interval".to_owned(), interval.as_str().to_owned()),
    ]);

    // Already paying: change that subscription.
    if let Some(account) = &account
        && let Some(subscription_id) = &account.stripe_subscription_id
        && matches!(
            account.status.as_deref(),
            Some("active" | "trialing" | "past_due" | "unpaid")
        )
    {
        if account.plan_id.as_deref() == Some(plan.id.as_str())
            && account.billing_interval.as_deref() == Some(interval.as_str())
        {
            return Err(Error::Conflict(format!(
                "You are already on the {} plan, billed {}.",
                plan.name,
                interval.as_str()
            )));
        }
        let current = api
            .retrieve_subscription(subscription_id)
            .await
            .map_err(|e| unavailable("reading the subscription", &e))?;
        // Same key for a double click (the stored state has not moved yet), a new one for
        // the next change.
        let key = format!("change-{subscription_id}-{}-{}", price.id, account.version);
        let changed = api
            .change_subscription_price(&current, &price.id, &metered_prices, metadata, &key)
            .await
            .map_err(|e| unavailable("changing the subscription", &e))?;
        audit::record(
            &mut *tx,
            audit::Entry::new("billing.plan_change_requested", Actor::User(by.user_id))
                .organization(by.organization_id)
                .subject(format!("plan:{}", plan.id))
                .details(serde_json::json!({
                    "interval": interval.as_str(),
                    "subscription": subscription_id,
                })),
        )
        .await?;
        tx.commit().await?;
        apply_subscription(platform, &changed, Actor::User(by.user_id)).await?;
        return Ok(CheckoutOutcome::Changed);
    }

    // A session opened a moment ago for the same plan is still good.
    let open = sqlx::query_scalar!(
        "SELECT url FROM checkout_sessions
          WHERE organization_id = $1 AND plan_id = $2 AND billing_interval = $3
            AND completed_at IS NULL AND expires_at > now() + interval '5 minutes'
          ORDER BY created_at DESC LIMIT 1",
        by.organization_id,
        plan.id.as_str(),
        interval.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(url) = open {
        return Ok(CheckoutOutcome::Redirect(url));
    }

    let customer = match account {
        Some(account) => account.stripe_customer_id,
        None => {
            let owner_email =
                sqlx::query_scalar!("SELECT email FROM users WHERE id = $1", by.user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let customer = api
                .create_customer(
                    &org.name,
                    owner_email.as_deref(),
                    HashMap::from([("organization_id".to_owned(), by.organization_id.to_string())]),
                    // One customer per organization, even if this call is retried.
                    &format!("customer-{}", by.organization_id),
                )
                .await
                .map_err(|e| unavailable("creating the customer", &e))?;
            sqlx::query!(
                "INSERT INTO billing_accounts (organization_id, stripe_customer_id) VALUES ($1, $2)",
                by.organization_id,
                customer.id
            )
            .execute(&mut *tx)
            .await?;
            customer.id
        }
    };
    let sessions_so_far = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM checkout_sessions WHERE organization_id = $1"#,
        by.organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let organization = by.organization_id.to_string();
    let success_url = platform.link("/dashboard/billing?checkout=success");
    let cancel_url = platform.link("/pricing");
    let session = api
        .create_checkout_session(
            &stripe_api::CheckoutRequest {
                customer: &customer,
                client_reference_id: &organization,
                price: &price.id,
                metered_prices,
                success_url: &success_url,
                cancel_url: &cancel_url,
                metadata,
            },
            &format!("checkout-{organization}-{price_key}-{sessions_so_far}"),
        )
        .await
        .map_err(|e| unavailable("opening the checkout", &e))?;
    let url = session.url.ok_or_else(|| {
        Error::Internal("Stripe returned a checkout session without a URL".into())
    })?;
    let expires_at = session
        .expires_at
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or_else(|| Utc::now() + chrono::Duration::hours(24));
    sqlx::query!(
        "INSERT INTO checkout_sessions (id, organization_id, plan_id, billing_interval, url, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        session.id,
        by.organization_id,
        plan.id.as_str(),
        interval.as_str(),
        url,
        expires_at
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("billing.checkout_started", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(format!("plan:{}", plan.id))
            .details(serde_json::json!({ "interval": interval.as_str(), "session": session.id })),
    )
    .await?;
    tx.commit().await?;
    Ok(CheckoutOutcome::Redirect(url))
}

/// The price `stripe sync` published under `key`, or why the plan cannot be bought.
async fn published_price(api: &StripeApi, plan: &Plan, key: &str) -> Result<stripe_api::Price> {
    api.price_by_lookup_key(key)
        .await
        .map_err(|e| unavailable("looking up the price", &e))?
        .ok_or_else(|| {
            tracing::error!(lookup_key = %key, "no Stripe price: run `slipway stripe sync`");
            Error::Unavailable(format!(
                "The {} plan cannot be bought yet: the operator has not published its prices to Stripe.",
                plan.name
            ))
        })
}

/// Refuses a plan that cannot hold what the organization has now.
fn refuse_downgrade_below_usage(plan: &Plan, sites: i64, members: i64) -> Result<()> {
    let too_many = |limit: Limit, used: i64| match limit {
        Limit::Count(max) => used > i64::from(max),
        Limit::Unlimited => false,
    };
    if too_many(plan.limits.sites, sites) {
        let max = limit_value(plan.limits.sites).unwrap_or(0);
        return Err(Error::LimitReached(format!(
            "The {} plan allows {max} site{}, and this organization has {sites}. Delete {} site{} first, or choose a larger plan.",
            plan.name,
            if max == 1 { "" } else { "s" },
            sites - i64::from(max),
            if sites - i64::from(max) == 1 { "" } else { "s" },
        )));
    }
    if too_many(plan.limits.members, members) {
        let max = limit_value(plan.limits.members).unwrap_or(0);
        return Err(Error::LimitReached(format!(
            "The {} plan allows {max} member{}, and this organization has {members}. Remove members first, or choose a larger plan.",
            plan.name,
            if max == 1 { "" } else { "s" },
        )));
    }
    Ok(())
}

/// A Stripe Billing Portal link (payment methods, invoices, cancellation). Owners only.
pub async fn portal(platform: &Platform, by: &Membership) -> Result<String> {
    by.require(Action::ManageBilling)?;
    let api = stripe(platform)?;
    let customer = sqlx::query_scalar!(
        "SELECT stripe_customer_id FROM billing_accounts WHERE organization_id = $1",
        by.organization_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or_else(|| {
        Error::Conflict("There is nothing to manage yet: choose a plan first.".to_owned())
    })?;
    let session = api
        .create_portal_session(&customer, &platform.link("/dashboard/billing"))
        .await
        .map_err(|e| unavailable("opening the billing portal", &e))?;
    Ok(session.url)
}

/// What [`set_plan`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforced {
    pub suspended: Vec<String>,
    pub resumed: Vec<String>,
}

/// Local billing mode: the operator puts an organization on a plan (`slipway admin
/// set-plan`). Limits apply at once; sites over a smaller plan's limit are suspended, the
/// newest first.
pub async fn set_plan(
    platform: &Platform,
    organization_slug: &str,
    plan_id: &str,
) -> Result<Enforced> {
    if !platform.billing.is_local() {
        return Err(Error::Conflict(
            "Stripe is configured: plans follow the organization's subscription. Change it in Stripe, or remove billing.stripe_secret_key to bill elsewhere.".to_owned(),
        ));
    }
    let plan = platform.plan(plan_id).ok_or_else(|| {
        let known: Vec<&str> = platform
            .catalog
            .plans()
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        Error::invalid(
            "plan",
            format!(
                "There is no plan \"{plan_id}\" (plans: {}).",
                known.join(", ")
            ),
        )
    })?;
    let mut tx = platform.db.begin().await?;
    let org = sqlx::query!(
        "SELECT id, plan_id FROM organizations WHERE slug = $1 FOR UPDATE",
        organization_slug
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        Error::invalid(
            "organization",
            format!("There is no organization \"{organization_slug}\"."),
        )
    })?;
    if org.plan_id != plan.id.as_str() {
        sqlx::query!(
            "UPDATE organizations SET plan_id = $2 WHERE id = $1",
            org.id,
            plan.id.as_str()
        )
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            audit::Entry::new("billing.plan_changed", Actor::System)
                .organization(org.id)
                .subject(format!("plan:{}", plan.id))
                .details(serde_json::json!({ "from": org.plan_id, "by": "operator" })),
        )
        .await?;
    }
    tx.commit().await?;
    if org.plan_id != plan.id.as_str() {
        crate::sites::apply_plan(platform, org.id).await?;
    }
    enforce(platform, org.id).await
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
    let ended = state.status.as_deref() == Some("canceled") && state.grace_ends_at.is_some();
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
                // Keep the suspension, record the reason that now holds.
                sqlx::query!(
                    "UPDATE sites SET suspended_reason = $2 WHERE id = $1",
                    site.id,
                    reason
                )
                .execute(&platform.db)
                .await?;
            }
            (None, Some(_)) if billing_owned => {
                crate::sites::resume(platform, site.id).await?;
                done.resumed.push(site.slug.clone());
            }
            _ => {}
        }
    }
    Ok(done)
}

/// What became of a webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored; it is handled in the background.
    Accepted { id: String, kind: String },
    /// Already stored earlier (Stripe retried, or sent it twice): nothing more happens.
    Duplicate { id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("Stripe is not configured on this server")]
    NotConfigured,
    #[error("signature verification failed: {0}")]
    Signature(#[from] signature::SignatureError),
    #[error("the body is not a Stripe event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Internal(#[from] Error),
}

#[derive(Debug, Deserialize)]
struct EventHead {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    #[serde(default)]
    object: Option<String>,
}

/// Verifies a webhook delivery (`payload` exactly as received) and stores its event once.
/// Nothing else happens before [`process_pending`], so Stripe gets its answer at once.
pub async fn receive_webhook(
    platform: &Platform,
    payload: &[u8],
    signature_header: Option<&str>,
) -> std::result::Result<Received, WebhookError> {
    if platform.billing.is_local() {
        return Err(WebhookError::NotConfigured);
    }
    let secrets: Vec<&str> = platform
        .billing
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    signature::verify(payload, signature_header, &secrets, Utc::now().timestamp())?;
    let payload: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let head: EventHead = serde_json::from_value(payload.clone())
        .map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if head.object.as_deref().is_some_and(|o| o != "event") {
        return Err(WebhookError::Malformed(format!(
            "expected an event, got a {}",
            head.object.unwrap_or_default()
        )));
    }
    let inserted = sqlx::query!(
        "INSERT INTO stripe_events (id, type, created, payload) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
        head.id,
        head.kind,
        head.created,
        payload
    )
    .execute(&platform.db)
    .await
    .map_err(Error::from)?;
    if inserted.rows_affected() == 0 {
        tracing::info!(event = %head.id, kind = %head.kind, "Stripe event already received; ignored");
        return Ok(Received::Duplicate { id: head.id });
    }
    platform.billing.events.notify_one();
    Ok(Received::Accepted {
        id: head.id,
        kind: head.kind,
    })
}

/// Handles stored events not handled yet, oldest first; returns how many were handled. A
/// failing event is retried on a later pass (at most 20 times) without holding up others.
pub async fn process_pending(platform: &Platform) -> Result<usize> {
    let mut handled = 0;
    loop {
        let mut tx = platform.db.begin().await?;
        let event = sqlx::query!(
            "SELECT id, type, payload FROM stripe_events
              WHERE processed_at IS NULL AND attempts < 20
                AND (attempts = 0 OR received_at < now() - make_interval(secs => power(2, least(attempts, 10))))
              ORDER BY created, received_at LIMIT 1
              FOR UPDATE SKIP LOCKED"
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(event) = event else {
            return Ok(handled);
        };
        match handle_event(platform, &event.r#type, &event.payload).await {
            Ok(()) => {
                sqlx::query!(
                    "UPDATE stripe_events SET processed_at = now(), attempts = attempts + 1, last_error = NULL
                      WHERE id = $1",
                    event.id
                )
                .execute(&mut *tx)
                .await?;
                handled += 1;
            }
            Err(error) => {
                tracing::warn!(event = %event.id, kind = %event.r#type, %error, "Stripe event failed; will retry");
                sqlx::query!(
                    "UPDATE stripe_events SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                    event.id,
                    error.to_string()
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    }
}

async fn handle_event(platform: &Platform, kind: &str, payload: &serde_json::Value) -> Result<()> {
    let api = stripe(platform)?;
    let object = &payload["data"]["object"];
    let id_of = |field: &str| {
        object
            .get(field)
            .and_then(stripe_api::expandable_id)
            .map(str::to_owned)
    };
    match kind {
        "checkout.session.completed" => {
            if let Some(session) = id_of("id") {
                sqlx::query!(
                    "UPDATE checkout_sessions SET completed_at = now() WHERE id = $1 AND completed_at IS NULL",
                    session
                )
                .execute(&platform.db)
                .await?;
            }
            match id_of("subscription") {
                Some(subscription) => sync_subscription(platform, api, &subscription).await,
                None => Ok(()),
            }
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.paused"
        | "customer.subscription.resumed" => match id_of("id") {
            Some(subscription) => sync_subscription(platform, api, &subscription).await,
            None => Err(Error::Internal("subscription event without an id".into())),
        },
        "invoice.payment_failed" | "invoice.paid" | "invoice.payment_succeeded" => {
            match id_of("id") {
                Some(invoice) => sync_invoice(platform, api, &invoice).await,
                None => Err(Error::Internal("invoice event without an id".into())),
            }
        }
        other => {
            tracing::info!(
                kind = other,
                "Stripe event type not used by Slipway; ignored"
            );
            Ok(())
        }
    }
}

/// Fetches the subscription from Stripe and applies what it says now.
async fn sync_subscription(platform: &Platform, api: &StripeApi, id: &str) -> Result<()> {
    let subscription = api
        .retrieve_subscription(id)
        .await
        .map_err(|e| Error::Internal(format!("retrieving subscription {id}: {e}")))?;
    apply_subscription(platform, &subscription, Actor::System).await
}

/// Stores the subscription's state and derives the organization's plan and sites from it.
async fn apply_subscription(
    platform: &Platform,
    subscription: &Subscription,
    actor: Actor,
) -> Result<()> {
    let customer = subscription
        .customer_id()
        .ok_or_else(|| Error::Internal("subscription without a customer".into()))?;
    let mut tx = platform.db.begin().await?;
    let Some(account) = sqlx::query!(
        "SELECT a.organization_id, a.stripe_subscription_id, a.status, a.grace_ends_at, o.plan_id
           FROM billing_accounts a JOIN organizations o ON o.id = a.organization_id
          WHERE a.stripe_customer_id = $1 FOR UPDATE OF a, o",
        customer
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        tracing::warn!(%customer, subscription = %subscription.id, "subscription of a customer Slipway does not know; ignored");
        return Ok(());
    };
    let org = account.organization_id;
    let live = matches!(
        subscription.status.as_str(),
        "active" | "trialing" | "past_due" | "unpaid"
    );
    let ended = matches!(
        subscription.status.as_str(),
        "canceled" | "incomplete_expired"
    );
    let is_current = account.stripe_subscription_id.as_deref() == Some(subscription.id.as_str());
    if !live && !is_current {
        // An old or never-paid subscription says nothing about the current one.
        tx.commit().await?;
        return Ok(());
    }
    let plan = subscription
        .lookup_key()
        .and_then(|key| plan_of_lookup_key(platform, key));
    let period_end = subscription
        .current_period_end()
        .and_then(|t| DateTime::from_timestamp(t, 0));
    let mut notice = None;
    let mut plan_changed = false;

    if live {
        let Some((plan, interval)) = plan else {
            return Err(Error::Internal(format!(
                "subscription {} has a price that is not one of the catalog's ({:?})",
                subscription.id,
                subscription.lookup_key()
            )));
        };
        sqlx::query!(
            "UPDATE billing_accounts
                SET stripe_subscription_id = $2, plan_id = $3, billing_interval = $4, status = $5,
                    current_period_end = $6, cancel_at_period_end = $7,
                    canceled_at = NULL, grace_ends_at = NULL, updated_at = now()
              WHERE organization_id = $1",
            org,
            subscription.id,
            plan.id.as_str(),
            interval.as_str(),
            subscription.status,
            period_end,
            subscription.cancel_at_period_end
        )
        .execute(&mut *tx)
        .await?;
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
        if account.plan_id != plan.id.as_str() {
            sqlx::query!(
                "UPDATE organizations SET plan_id = $2 WHERE id = $1",
                org,
                plan.id.as_str()
            )
            .execute(&mut *tx)
            .await?;
            plan_changed = true;
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
        }
    } else if ended
        && account.grace_ends_at.is_none()
        && account.status.as_deref() != Some("canceled")
    {
        let grace = chrono::Duration::from_std(platform.billing.grace_period)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let grace_ends_at = Utc::now() + grace;
        sqlx::query!(
            "UPDATE billing_accounts
                SET status = 'canceled', cancel_at_period_end = false, canceled_at = now(),
                    grace_ends_at = $2, updated_at = now()
              WHERE organization_id = $1",
            org,
            grace_ends_at
        )
        .execute(&mut *tx)
        .await?;
        let default_plan = platform.default_plan().as_str().to_owned();
        sqlx::query!(
            "UPDATE organizations SET plan_id = $2 WHERE id = $1",
            org,
            default_plan
        )
        .execute(&mut *tx)
        .await?;
        plan_changed = account.plan_id != default_plan;
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
        notice = Some(grace_ends_at);
    }
    if let Some(grace_ends_at) = notice {
        mail_owners(
            &mut tx,
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
    }
    tx.commit().await?;
    if plan_changed {
        crate::sites::apply_plan(platform, org).await?;
    }
    enforce(platform, org).await?;
    Ok(())
}

/// Fetches the invoice from Stripe and applies what it says now: paid clears the failed
/// payments (and lifts their suspension); still open after a failed attempt reminds the
/// owners, and the configured number of failures suspends the sites.
async fn sync_invoice(platform: &Platform, api: &StripeApi, id: &str) -> Result<()> {
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
                    "UPDATE billing_accounts SET failed_payments = 0,
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

fn format_amount(cents: i64, currency: Option<&str>) -> String {
    let currency = currency.unwrap_or(crate::plans::CURRENCY).to_uppercase();
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

async fn mail_owners(
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
            to: crate::accounts::Email::parse(&email)?,
            subject: subject.to_owned(),
            body: body.to_owned(),
        };
        mail::send(tx, &message).await?;
    }
    Ok(())
}

/// Deletes the sites of organizations whose grace period is over and who did not subscribe
/// again. Returns how many sites were asked to be deleted.
pub async fn expire_grace_periods(platform: &Platform) -> Result<usize> {
    let due = sqlx::query_scalar!(
        "SELECT organization_id FROM billing_accounts
          WHERE grace_ends_at IS NOT NULL AND grace_ends_at <= now() AND status = 'canceled'"
    )
    .fetch_all(&platform.db)
    .await?;
    let mut deleted = 0;
    for org in due {
        // Backups do not exist yet (a later issue): the final backup goes here.
        let mut tx = platform.db.begin().await?;
        let still_due = sqlx::query_scalar!(
            "UPDATE billing_accounts SET grace_ends_at = NULL, updated_at = now()
              WHERE organization_id = $1 AND grace_ends_at <= now() AND status = 'canceled'
              RETURNING organization_id",
            org
        )
        .fetch_optional(&mut *tx)
        .await?;
        if still_due.is_none() {
            continue;
        }
        let sites = crate::sites::delete_all(&mut tx, org, "billing").await?;
        audit::record(
            &mut *tx,
            audit::Entry::new("billing.grace_period_over", Actor::System)
                .organization(org)
                .details(serde_json::json!({ "sites_deleted": sites })),
        )
        .await?;
        tx.commit().await?;
        deleted += sites.len();
    }
    Ok(deleted)
}

/// The billing worker: handles stored webhook events as soon as one arrives and at least
/// every `interval`, ends grace periods, and reports overages for months that have closed.
pub async fn run_worker(
    platform: Platform,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        if let Err(error) = process_pending(&platform).await {
            tracing::error!(%error, "billing: handling Stripe events failed");
        }
        if let Err(error) = expire_grace_periods(&platform).await {
            tracing::error!(%error, "billing: ending grace periods failed");
        }
        if platform.billing.stripe.is_some() {
            let last_month = meter::previous_month(Utc::now().date_naive());
            if let Err(error) = meter::report_overages(&platform, last_month).await {
                tracing::error!(%error, "billing: reporting overages failed");
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = platform.billing.events.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}
