//! Starting to pay: Stripe Checkout for a new subscription, a price change for an existing
//! one, and the billing portal.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::subscriptions::apply_subscription;
use super::{Interval, lookup_key, meters, stripe, unavailable};
use crate::Platform;
use crate::catalog::{Limit, Plan};
use crate::infra::stripe::{self as stripe_api, StripeApi, SubscriptionStatus};
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::{Action, Membership};

/// Where an owner goes after asking for a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutOutcome {
    /// To Stripe Checkout, to pay.
    Redirect(String),
    /// Nowhere: the existing subscription was moved to the new plan (prorated).
    Changed,
}

/// What one checkout asks Stripe for: the plan's price, its usage-based prices, and the
/// metadata that ties the subscription to the organization.
struct Order<'p> {
    plan: &'p Plan,
    interval: Interval,
    price_key: String,
    price: stripe_api::Price,
    metered_prices: Vec<String>,
    metadata: HashMap<String, String>,
}

/// What Slipway stores of the organization's Stripe customer and subscription.
struct Account {
    stripe_customer_id: String,
    stripe_subscription_id: Option<String>,
    status: Option<String>,
    plan_id: Option<String>,
    billing_interval: Option<String>,
    /// Changes with every stored update: part of a plan change's idempotency key.
    version: i64,
}

impl Account {
    /// The subscription being paid for (or collected), if any.
    fn live_subscription(&self) -> Option<&str> {
        let live = self
            .status
            .as_deref()
            .and_then(SubscriptionStatus::parse)
            .is_some_and(SubscriptionStatus::is_live);
        self.stripe_subscription_id.as_deref().filter(|_| live)
    }
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
    stripe(platform)?;
    platform
        .plan(plan_id)
        .filter(|p| p.monthly_cents.0 > 0)
        .ok_or_else(|| Error::invalid("plan", "Choose one of the paid plans."))?;

    // One checkout at a time per organization: a double click waits for the claim (holding
    // no database connection while it waits, or while Stripe answers), then finds the
    // session the first click opened. Run as a task of its own, so a browser that goes
    // away mid-checkout cannot leave the claim taken.
    let (platform, by, plan_id) = (platform.clone(), *by, plan_id.to_owned());
    tokio::spawn(async move {
        let api = stripe(&platform)?;
        let plan = platform
            .plan(&plan_id)
            .ok_or_else(|| Error::invalid("plan", "Choose one of the paid plans."))?;
        let claim = CheckoutClaim::take(&platform, by.organization_id).await?;
        let outcome = checkout_claimed(&platform, api, &by, plan, interval).await;
        claim.release(&platform).await;
        outcome
    })
    .await
    .map_err(|e| Error::Internal(format!("the checkout task failed: {e}")))?
}

/// How long a checkout may hold its organization's claim: longer than Stripe's slowest
/// answers; a crashed process's claim simply runs out.
const CLAIM_LEASE_SECS: f64 = 60.0;
/// How long a second checkout waits for the first before it is told to try again.
const CLAIM_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// The right to run a checkout for one organization: a row with a lease, taken by one
/// atomic upsert, so it serializes checkouts across processes without a transaction held
/// open over Stripe's calls.
struct CheckoutClaim {
    organization_id: Uuid,
    token: Uuid,
}

impl CheckoutClaim {
    async fn take(platform: &Platform, organization_id: Uuid) -> Result<Self> {
        let token = Uuid::new_v4();
        let started = std::time::Instant::now();
        loop {
            let taken = sqlx::query_scalar!(
                "INSERT INTO checkout_claims (organization_id, token, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (organization_id) DO UPDATE
                    SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
                  WHERE checkout_claims.expires_at < now()
                 RETURNING token",
                organization_id,
                token,
                CLAIM_LEASE_SECS
            )
            .fetch_optional(&platform.db)
            .await?;
            if taken == Some(token) {
                return Ok(Self {
                    organization_id,
                    token,
                });
            }
            if started.elapsed() > CLAIM_PATIENCE {
                return Err(Error::Conflict(
                    "A checkout for this organization is still being opened. Try again in a moment."
                        .to_owned(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn release(self, platform: &Platform) {
        let released = sqlx::query!(
            "DELETE FROM checkout_claims WHERE organization_id = $1 AND token = $2",
            self.organization_id,
            self.token
        )
        .execute(&platform.db)
        .await;
        if let Err(error) = released {
            // The lease runs out by itself.
            tracing::warn!(%error, "could not release a checkout claim");
        }
    }
}

/// The checkout itself, under its organization's claim. Short statements only: nothing
/// here holds a database connection while Stripe answers.
async fn checkout_claimed(
    platform: &Platform,
    api: &StripeApi,
    by: &Membership,
    plan: &Plan,
    interval: Interval,
) -> Result<CheckoutOutcome> {
    let org = sqlx::query!(
        r#"SELECT o.name,
                  (SELECT count(*) FROM sites s
                    WHERE s.organization_id = o.id AND s.status <> 'deleted'
                      AND s.desired_state <> 'deleted') AS "sites!",
                  (SELECT count(*) FROM organization_members m
                    WHERE m.organization_id = o.id) AS "members!"
             FROM organizations o WHERE o.id = $1"#,
        by.organization_id
    )
    .fetch_one(&platform.db)
    .await?;
    // Nothing is locked while Stripe answers: a site created meanwhile is caught when the
    // plan is applied (a downgrade suspends the newest sites over the limit); a member
    // invited meanwhile can leave the organization over the new plan's member limit until
    // someone leaves (invitations are refused from then on).
    refuse_downgrade_below_usage(plan, org.sites, org.members)?;
    let account = sqlx::query_as!(
        Account,
        r#"SELECT stripe_customer_id, stripe_subscription_id, status, plan_id, billing_interval,
                  extract(epoch FROM updated_at)::bigint AS "version!"
             FROM billing_accounts WHERE organization_id = $1"#,
        by.organization_id
    )
    .fetch_optional(&platform.db)
    .await?;
    let order = order(api, by, plan, interval).await?;

    if let Some(account) = &account
        && let Some(subscription) = account.live_subscription()
    {
        change_subscription(platform, api, by, account, subscription, order).await?;
        return Ok(CheckoutOutcome::Changed);
    }
    let customer = match account {
        Some(account) => account.stripe_customer_id,
        None => create_customer(platform, api, by, &org.name).await?,
    };
    let url = open_session(platform, api, by, &customer, order).await?;
    Ok(CheckoutOutcome::Redirect(url))
}

/// The prices and metadata of `plan` billed every `interval`, as published to Stripe.
async fn order<'p>(
    api: &StripeApi,
    by: &Membership,
    plan: &'p Plan,
    interval: Interval,
) -> Result<Order<'p>> {
    let price_key = lookup_key(&plan.id, interval);
    let price = published_price(api, plan, &price_key).await?;
    let mut metered_prices = Vec::new();
    if meters::overage_of(plan).is_some() {
        for (metric, _, _) in meters::METRICS {
            let key = meters::lookup_key(&plan.id, metric, interval);
            metered_prices.push(published_price(api, plan, &key).await?.id);
        }
    }
    let metadata = HashMap::from([
        ("organization_id".to_owned(), by.organization_id.to_string()),
        ("plan".to_owned(), plan.id.to_string()),
        ("interval".to_owned(), interval.as_str().to_owned()),
    ]);
    Ok(Order {
        plan,
        interval,
        price_key,
        price,
        metered_prices,
        metadata,
    })
}

/// Already paying: moves that subscription to the order's prices (prorated) and applies it.
async fn change_subscription(
    platform: &Platform,
    api: &StripeApi,
    by: &Membership,
    account: &Account,
    subscription_id: &str,
    order: Order<'_>,
) -> Result<()> {
    let (plan, interval) = (order.plan, order.interval);
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
    // Same key for a double click (the stored state has not moved yet), a new one for the
    // next change.
    let key = format!(
        "change-{subscription_id}-{}-{}",
        order.price.id, account.version
    );
    let changed = api
        .change_subscription_price(
            &current,
            &order.price.id,
            &order.metered_prices,
            order.metadata,
            &key,
        )
        .await
        .map_err(|e| unavailable("changing the subscription", &e))?;
    audit::record(
        &platform.db,
        audit::Entry::new("billing.plan_change_requested", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(format!("plan:{}", plan.id))
            .details(serde_json::json!({
                "interval": interval.as_str(),
                "subscription": subscription_id,
            })),
    )
    .await?;
    apply_subscription(platform, &changed, Actor::User(by.user_id)).await
}

/// The organization's Stripe customer, created once (its idempotency key is the
/// organization) and stored.
async fn create_customer(
    platform: &Platform,
    api: &StripeApi,
    by: &Membership,
    name: &str,
) -> Result<String> {
    let owner_email = sqlx::query_scalar!("SELECT email FROM users WHERE id = $1", by.user_id)
        .fetch_optional(&platform.db)
        .await?;
    let customer = api
        .create_customer(
            name,
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
    .execute(&platform.db)
    .await?;
    Ok(customer.id)
}

/// The Checkout Session to pay the order: one opened a moment ago for the same plan, or a
/// new one (stored, audited). Returns where to send the owner.
async fn open_session(
    platform: &Platform,
    api: &StripeApi,
    by: &Membership,
    customer: &str,
    order: Order<'_>,
) -> Result<String> {
    let (plan, interval) = (order.plan, order.interval);
    let open = sqlx::query_scalar!(
        "SELECT url FROM checkout_sessions
          WHERE organization_id = $1 AND plan_id = $2 AND billing_interval = $3
            AND completed_at IS NULL AND expires_at > now() + interval '5 minutes'
          ORDER BY created_at DESC LIMIT 1",
        by.organization_id,
        plan.id.as_str(),
        interval.as_str()
    )
    .fetch_optional(&platform.db)
    .await?;
    if let Some(url) = open {
        return Ok(url);
    }
    let sessions_so_far = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM checkout_sessions WHERE organization_id = $1"#,
        by.organization_id
    )
    .fetch_one(&platform.db)
    .await?;
    let organization = by.organization_id.to_string();
    let success_url = platform.link("/dashboard/billing?checkout=success");
    let cancel_url = platform.link("/pricing");
    let session = api
        .create_checkout_session(
            &stripe_api::CheckoutRequest {
                customer,
                client_reference_id: &organization,
                price: &order.price.id,
                metered_prices: order.metered_prices,
                success_url: &success_url,
                cancel_url: &cancel_url,
                metadata: order.metadata,
            },
            &format!(
                "checkout-{organization}-{}-{sessions_so_far}",
                order.price_key
            ),
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
    let mut tx = platform.db.begin().await?;
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
    Ok(url)
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

/// What a plan cannot hold of what an organization has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// `site` or `member`.
    pub what: &'static str,
    pub max: u32,
    pub used: i64,
}

fn plural(n: i64, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

impl Shortfall {
    /// For a plan's button: "Holds 1 site; you have 3."
    pub fn short(&self) -> String {
        format!(
            "Holds {} {}; you have {}.",
            self.max,
            plural(i64::from(self.max), self.what),
            self.used
        )
    }

    /// Why moving to `plan` is refused, and what to do instead.
    pub fn refusal(&self, plan: &Plan) -> String {
        let over = self.used - i64::from(self.max);
        let remedy = match self.what {
            "site" => format!("Delete {over} {} first", plural(over, "site")),
            _ => "Remove members first".to_owned(),
        };
        format!(
            "The {} plan allows {} {}, and this organization has {}. {remedy}, or choose a larger plan.",
            plan.name,
            self.max,
            plural(i64::from(self.max), self.what),
            self.used
        )
    }
}

/// The first of the organization's counts (`sites`, `members`) that `plan` cannot hold.
pub fn shortfall(plan: &Plan, sites: i64, members: i64) -> Option<Shortfall> {
    [
        ("site", plan.limits.sites, sites),
        ("member", plan.limits.members, members),
    ]
    .into_iter()
    .find_map(|(what, limit, used)| match limit {
        Limit::Count(max) if used > i64::from(max) => Some(Shortfall { what, max, used }),
        _ => None,
    })
}

/// Refuses a plan that cannot hold what the organization has now.
fn refuse_downgrade_below_usage(plan: &Plan, sites: i64, members: i64) -> Result<()> {
    match shortfall(plan, sites, members) {
        Some(shortfall) => Err(Error::LimitReached(shortfall.refusal(plan))),
        None => Ok(()),
    }
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
