//! Billing: Stripe drives each organization's plan, and the plan drives its sites.
//!
//! The flow is one idempotent state machine:
//!
//! * An owner starts a Stripe Checkout Session ([`checkout`]); an organization that already
//!   pays has its subscription's price changed instead, so there is never a second one.
//! * Stripe tells Slipway what happened through signed webhooks ([`receive_webhook`]). Each
//!   event is stored once, by id, as a job (a duplicate is a no-op) and answered at once; the
//!   job ([`webhooks::handle_event`]) then fetches the subscription or invoice it names
//!   **from Stripe**, so an event that arrives late or out of order applies the current
//!   state, never an old one. Every night [`reconcile`] compares Stripe with what was
//!   applied and repairs any drift.
//! * The stored state (the `billing_accounts` table) decides the organization's plan and which of its
//!   sites are suspended for billing ([`enforce`]): after the third failed payment all of
//!   them, over the plan's site limit the newest ones, after a cancellation all of them for
//!   the grace period, after which a queued job deletes them ([`end_grace_period`]).
//! * Usage above a Business plan's included amounts is reported to Stripe Billing Meters
//!   once per organization, metric and month ([`meter`]).
//!
//! Without a Stripe key this all stays local: operators assign plans ([`set_plan`]).

pub mod catalog_sync;
pub mod checkout;
pub mod dunning;
pub mod local;
pub mod meters;
pub mod overview;
pub mod reconcile;
pub mod requests;
pub mod revenue;
pub mod signature;
pub mod subscriptions;
pub mod webhooks;

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::Platform;
use crate::catalog::{Limit, Plan, PlanId};
use crate::infra::stripe::{ApiError, StripeApi};
use crate::kernel::{Error, Result};

pub use checkout::{CheckoutOutcome, Shortfall, checkout, portal, shortfall};
pub use dunning::{
    Enforced, GracePeriod, end_grace_period, enforce, requeue_overdue_grace_periods,
};
pub use local::set_plan;
pub use overview::{Overview, overview, overview_without_invoice};
pub use webhooks::{Received, WebhookError, receive_webhook};

/// Why a site is suspended, when billing suspended it. Operators' own suspensions carry
/// other reasons and billing never lifts them.
pub const SUSPENDED_PAYMENT: &str = "billing: payment failed";
pub const SUSPENDED_OVER_LIMIT: &str = "billing: over the plan's site limit";
pub const SUSPENDED_ENDED: &str = "billing: subscription ended";
use crate::sites::BILLING_PREFIX as BILLING_REASON_PREFIX;

/// Billing as configured (see `config::BillingConfig`).
#[derive(Clone, Debug)]
pub struct BillingSettings {
    /// `None`: local billing mode.
    pub stripe: Option<StripeApi>,
    pub webhook_secrets: Vec<SecretString>,
    pub failed_payments_before_suspend: u32,
    pub grace_period: Duration,
    /// Where customers write about plans and billing (`billing.contact_email`): shown on
    /// the billing and pricing pages, and mailed each new plan request.
    pub contact_email: Option<crate::kernel::Email>,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            stripe: None,
            webhook_secrets: Vec::new(),
            failed_payments_before_suspend: 3,
            grace_period: Duration::from_secs(7 * 24 * 3600),
            contact_email: None,
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

pub(crate) fn stripe(platform: &Platform) -> Result<&StripeApi> {
    platform.billing.stripe.as_ref().ok_or_else(|| {
        Error::Conflict(
            "Billing on this server is handled by its operator (local billing mode). Ask them to change your plan.".to_owned(),
        )
    })
}

/// A Stripe failure, as users see it; the details go to the log.
pub(crate) fn unavailable(what: &str, error: &ApiError) -> Error {
    tracing::error!(%error, "Stripe: {what} failed");
    Error::Unavailable(format!(
        "Payments are unavailable right now ({what} failed). Nothing was charged; try again in a minute."
    ))
}

pub(crate) fn limit_value(limit: Limit) -> Option<u32> {
    match limit {
        Limit::Count(n) => Some(n),
        Limit::Unlimited => None,
    }
}
