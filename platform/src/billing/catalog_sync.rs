//! `slipway stripe sync`: the plan catalog, published to Stripe.
//!
//! Each paid plan is a product `slipway_<plan>` with two recurring prices found by lookup key
//! (`slipway_<plan>_monthly`, `slipway_<plan>_yearly`). Running it again changes nothing
//! unless the catalog changed: a new amount becomes a new price that takes the lookup key
//! over (Stripe prices are immutable), so new checkouts use it while existing subscriptions
//! keep theirs. Plans that bill overages also get a usage-based price per metric and
//! interval (`slipway_<plan>_<metric>_<interval>`), on the Billing Meters created here.

use std::collections::HashMap;

use super::{Interval, lookup_key, meters, stripe};
use crate::Platform;
use crate::catalog::Plan;
use crate::catalog::plans::CURRENCY;
use crate::infra::stripe::{ApiError, StripeApi};
use crate::kernel::{Error, Result};

/// What a sync did to one Stripe object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Updated(String),
    Unchanged(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Created(what) => write!(f, "created   {what}"),
            Change::Updated(what) => write!(f, "updated   {what}"),
            Change::Unchanged(what) => write!(f, "unchanged {what}"),
        }
    }
}

pub fn product_id(plan: &crate::catalog::plans::PlanId) -> String {
    format!("slipway_{plan}")
}

fn failed(what: &str, error: ApiError) -> Error {
    Error::Unavailable(format!("Stripe: {what} failed: {error}"))
}

/// Creates or updates the products and prices of every paid plan; idempotent.
pub async fn sync(platform: &Platform) -> Result<Vec<Change>> {
    let api = stripe(platform)?;
    let mut changes = Vec::new();
    let meters = sync_meters(platform, api, &mut changes).await?;
    for plan in platform.catalog.plans() {
        if plan.monthly_cents.0 == 0 && plan.yearly_cents.0 == 0 {
            continue;
        }
        let product = sync_product(api, plan, &mut changes).await?;
        for price in prices_of(plan, &meters) {
            sync_price(api, plan, &product, &price, &mut changes).await?;
        }
    }
    Ok(changes)
}

/// The Billing Meters overages are reported to (when any plan bills them): event name ->
/// meter id.
async fn sync_meters(
    platform: &Platform,
    api: &StripeApi,
    changes: &mut Vec<Change>,
) -> Result<HashMap<String, String>> {
    let mut meters: HashMap<String, String> = HashMap::new();
    if !platform
        .catalog
        .plans()
        .iter()
        .any(|p| meters::overage_of(p).is_some())
    {
        return Ok(meters);
    }
    for existing in api
        .list_meters()
        .await
        .map_err(|e| failed("listing meters", e))?
    {
        meters.insert(existing.event_name, existing.id);
    }
    for (_, event_name, display_name) in meters::METRICS {
        if meters.contains_key(event_name) {
            changes.push(Change::Unchanged(format!("meter {event_name}")));
            continue;
        }
        let created = api
            .create_meter(event_name, display_name)
            .await
            .map_err(|e| failed("creating a meter", e))?;
        meters.insert(created.event_name, created.id);
        changes.push(Change::Created(format!("meter {event_name}")));
    }
    Ok(meters)
}

/// The plan's product, created or brought up to date; returns its id.
async fn sync_product(api: &StripeApi, plan: &Plan, changes: &mut Vec<Change>) -> Result<String> {
    let product = product_id(&plan.id);
    match api
        .retrieve_product(&product)
        .await
        .map_err(|e| failed("reading a product", e))?
    {
        None => {
            let metadata = HashMap::from([("slipway_plan".to_owned(), plan.id.to_string())]);
            api.create_product(&product, &plan.name, &plan.description, metadata)
                .await
                .map_err(|e| failed("creating a product", e))?;
            changes.push(Change::Created(format!("product {product}")));
        }
        Some(existing)
            if existing.name != plan.name
                || existing.description.as_deref() != Some(plan.description.as_str()) =>
        {
            api.update_product(&product, &plan.name, &plan.description)
                .await
                .map_err(|e| failed("updating a product", e))?;
            changes.push(Change::Updated(format!("product {product}")));
        }
        Some(_) => changes.push(Change::Unchanged(format!("product {product}"))),
    }
    Ok(product)
}

/// One price a plan publishes.
struct PriceSpec<'m> {
    lookup_key: String,
    interval: Interval,
    cents: u64,
    /// The meter of a usage-based price.
    meter: Option<&'m str>,
}

/// Every price a plan publishes: the plan's own per interval, and its usage-based ones.
fn prices_of<'m>(plan: &Plan, meters: &'m HashMap<String, String>) -> Vec<PriceSpec<'m>> {
    let mut prices = Vec::new();
    for (interval, cents) in [
        (Interval::Monthly, plan.monthly_cents.0),
        (Interval::Yearly, plan.yearly_cents.0),
    ] {
        prices.push(PriceSpec {
            lookup_key: lookup_key(&plan.id, interval),
            interval,
            cents,
            meter: None,
        });
        if let Some(overage) = meters::overage_of(plan) {
            for (metric, event_name, _) in meters::METRICS {
                prices.push(PriceSpec {
                    lookup_key: meters::lookup_key(&plan.id, metric, interval),
                    interval,
                    cents: meters::unit_cents(overage, metric),
                    meter: meters.get(event_name).map(String::as_str),
                });
            }
        }
    }
    prices
}

/// One price: unchanged when Stripe has it at this amount, else a new price that takes the
/// lookup key over (Stripe prices are immutable).
async fn sync_price(
    api: &StripeApi,
    plan: &Plan,
    product: &str,
    price: &PriceSpec<'_>,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let (key, interval, cents, meter) = (
        price.lookup_key.as_str(),
        price.interval,
        price.cents,
        price.meter,
    );
    let amount = i64::try_from(cents)
        .map_err(|_| Error::Internal(format!("price of {key} is too large")))?;
    let existing = api
        .price_by_lookup_key(key)
        .await
        .map_err(|e| failed("looking up a price", e))?;
    let current = existing.as_ref().is_some_and(|price| {
        price.unit_amount == Some(amount)
            && price.currency.eq_ignore_ascii_case(CURRENCY)
            && price.meter() == meter
    });
    if current {
        changes.push(Change::Unchanged(format!("price {key}")));
        return Ok(());
    }
    let metadata = HashMap::from([
        ("slipway_plan".to_owned(), plan.id.to_string()),
        ("interval".to_owned(), interval.as_str().to_owned()),
    ]);
    api.create_price(
        product,
        key,
        amount,
        CURRENCY,
        interval == Interval::Yearly,
        meter,
        metadata,
    )
    .await
    .map_err(|e| failed("creating a price", e))?;
    changes.push(match existing {
        None => Change::Created(format!("price {key} ({amount} cents)")),
        Some(_) => Change::Updated(format!(
            "price {key} ({amount} cents, replaces the old amount)"
        )),
    });
    Ok(())
}
