//! The Stripe endpoints Slipway calls, through async-stripe.
//!
//! Requests are built with async-stripe's typed builders (so the form encoding is Stripe's
//! own), sent with an idempotency key where a retry must not act twice, and their responses
//! read as JSON into the small structs below: Slipway keeps only the fields it acts on, so
//! a field a newer API version adds, drops or reshapes elsewhere in an object cannot turn a
//! paid subscription into a parse error.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_client_core::RequestBuilder;

/// What went wrong talking to Stripe.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Stripe answered with an error object (4xx/5xx).
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
    #[error("Stripe's answer could not be read: {0}")]
    Unreadable(String),
}

impl ApiError {
    /// Whether Stripe says the object does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, ApiError::Refused { status: 404, .. })
            || matches!(self, ApiError::Refused { code: Some(code), .. } if code == "resource_missing")
    }
}

impl From<StripeError> for ApiError {
    fn from(error: StripeError) -> Self {
        match error {
            StripeError::Stripe(errors, status) => ApiError::Refused {
                status,
                code: errors.code.map(|c| c.as_str().to_owned()),
                message: errors.message.unwrap_or_else(|| "no message".to_owned()),
            },
            StripeError::JSONDeserialize(why) => ApiError::Unreadable(why),
            other => ApiError::Unreachable(other.to_string()),
        }
    }
}

/// A Stripe API client bound to one secret key and API base URL.
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
    /// A test-mode key (`sk_test_…`): Stripe's dashboard shows its objects under `/test/`.
    test_mode: bool,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeApi { .. }")
    }
}

impl StripeApi {
    /// `base` is `https://api.stripe.com/` in production and the test server in tests.
    pub fn new(secret_key: &str, base: &url::Url) -> Result<Self, ApiError> {
        let mut base = base.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        let client = ClientBuilder::new(secret_key)
            .url(base)
            .build()
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        Ok(Self {
            client,
            test_mode: secret_key.starts_with("sk_test_") || secret_key.starts_with("rk_test_"),
        })
    }

    /// Where Stripe's dashboard shows an object (`customers/cus_…`, `subscriptions/sub_…`),
    /// for operators. Ids are Stripe's own (letters, digits, underscores); any other text
    /// gets no link.
    pub fn dashboard_link(&self, kind: &str, id: &str) -> Option<String> {
        let plain = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let mode = if self.test_mode { "test/" } else { "" };
        plain.then(|| format!("https://dashboard.stripe.com/{mode}{kind}/{id}"))
    }

    /// Sends `request`; with `idempotency_key`, Stripe acts on it at most once however many
    /// times it is sent (within 24 hours).
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<T, ApiError> {
        let mut request = request.customize::<miniserde::json::Value>();
        if let Some(key) = idempotency_key {
            let key = IdempotencyKey::new(key).map_err(|e| ApiError::Unreadable(e.to_string()))?;
            request = request.request_strategy(RequestStrategy::Idempotent(key));
        }
        let value = request.send(&self.client).await?;
        let json = miniserde::json::to_string(&value);
        serde_json::from_str(&json).map_err(|e| ApiError::Unreadable(e.to_string()))
    }

    pub async fn create_customer(
        &self,
        name: &str,
        email: Option<&str>,
        metadata: HashMap<String, String>,
        idempotency_key: &str,
    ) -> Result<Customer, ApiError> {
        let mut request = stripe_core::customer::CreateCustomer::new()
            .name(name)
            .metadata(metadata);
        if let Some(email) = email {
            request = request.email(email);
        }
        self.send(request.build(), Some(idempotency_key)).await
    }

    /// The active price with this lookup key, if any.
    pub async fn price_by_lookup_key(&self, lookup_key: &str) -> Result<Option<Price>, ApiError> {
        let request = stripe_product::price::ListPrice::new()
            .lookup_keys(vec![lookup_key.to_owned()])
            .active(true);
        let list: List<Price> = self.send(request.build(), None).await?;
        Ok(list.data.into_iter().next())
    }

    pub async fn retrieve_product(&self, id: &str) -> Result<Option<Product>, ApiError> {
        let request = stripe_product::product::RetrieveProduct::new(id.to_owned());
        match self.send(request.build(), None).await {
            Ok(product) => Ok(Some(product)),
            Err(error) if error.is_missing() => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn create_product(
        &self,
        id: &str,
        name: &str,
        description: &str,
        metadata: HashMap<String, String>,
    ) -> Result<Product, ApiError> {
        let request = stripe_product::product::CreateProduct::new(name)
            .id(id)
            .description(description)
            .metadata(metadata);
        self.send(request.build(), Some(&format!("product-{id}")))
            .await
    }

    pub async fn update_product(
        &self,
        id: &str,
        name: &str,
        description: &str,
    ) -> Result<Product, ApiError> {
        let request = stripe_product::product::UpdateProduct::new(id.to_owned())
            .name(name)
            .description(description);
        self.send(request.build(), None).await
    }

    /// A recurring price that takes over `lookup_key` from any older price; with `meter`, a
    /// usage-based price billed from that Billing Meter.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_price(
        &self,
        product: &str,
        lookup_key: &str,
        unit_amount: i64,
        currency: &str,
        yearly: bool,
        meter: Option<&str>,
        metadata: HashMap<String, String>,
    ) -> Result<Price, ApiError> {
        use stripe_product::price::{
            CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval,
            CreatePriceRecurringUsageType,
        };
        let interval = if yearly {
            CreatePriceRecurringInterval::Year
        } else {
            CreatePriceRecurringInterval::Month
        };
        let parsed = currency
            .parse::<stripe_types::Currency>()
            .map_err(|_| ApiError::Unreadable(format!("unknown currency {currency}")))?;
        let mut recurring = CreatePriceRecurring::new(interval);
        if let Some(meter) = meter {
            recurring.meter = Some(meter.to_owned());
            recurring.usage_type = Some(CreatePriceRecurringUsageType::Metered);
        }
        let request = CreatePrice::new(parsed)
            .product(product)
            .unit_amount(unit_amount)
            .recurring(recurring)
            .lookup_key(lookup_key)
            .transfer_lookup_key(true)
            .metadata(metadata);
        self.send(
            request.build(),
            Some(&format!(
                "price-{lookup_key}-{unit_amount}-{currency}-{}",
                meter.unwrap_or("licensed")
            )),
        )
        .await
    }

    /// The account's active Billing Meters.
    pub async fn list_meters(&self) -> Result<Vec<Meter>, ApiError> {
        let request = stripe_billing::billing_meter::ListBillingMeter::new()
            .status(stripe_billing::BillingMeterStatus::Active)
            .limit(100);
        let list: List<Meter> = self.send(request.build(), None).await?;
        Ok(list.data)
    }

    /// A meter summing the `value` of events named `event_name`, per `stripe_customer_id`.
    pub async fn create_meter(
        &self,
        event_name: &str,
        display_name: &str,
    ) -> Result<Meter, ApiError> {
        use stripe_billing::billing_meter::{
            CreateBillingMeter, CreateBillingMeterCustomerMapping,
            CreateBillingMeterCustomerMappingType, CreateBillingMeterDefaultAggregation,
            CreateBillingMeterDefaultAggregationFormula, CreateBillingMeterValueSettings,
        };
        let request = CreateBillingMeter::new(
            CreateBillingMeterDefaultAggregation::new(
                CreateBillingMeterDefaultAggregationFormula::Sum,
            ),
            display_name,
            event_name,
        )
        .customer_mapping(CreateBillingMeterCustomerMapping::new(
            "stripe_customer_id",
            CreateBillingMeterCustomerMappingType::ById,
        ))
        .value_settings(CreateBillingMeterValueSettings::new("value"));
        self.send(request.build(), Some(&format!("meter-{event_name}")))
            .await
    }

    pub async fn create_checkout_session(
        &self,
        request: &CheckoutRequest<'_>,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, ApiError> {
        use stripe_checkout::checkout_session::{
            CreateCheckoutSession, CreateCheckoutSessionLineItems,
            CreateCheckoutSessionSubscriptionData,
        };
        let mut line = CreateCheckoutSessionLineItems::new();
        line.price = Some(request.price.to_owned());
        line.quantity = Some(1);
        // Usage-based prices take no quantity: the meter says how much.
        let mut lines = vec![line];
        for price in &request.metered_prices {
            let mut metered = CreateCheckoutSessionLineItems::new();
            metered.price = Some(price.clone());
            lines.push(metered);
        }
        let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
        subscription_data.metadata = Some(request.metadata.clone());
        let create = CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Subscription)
            .customer(request.customer)
            .client_reference_id(request.client_reference_id)
            .line_items(lines)
            .metadata(request.metadata.clone())
            .subscription_data(subscription_data)
            .success_url(request.success_url)
            .cancel_url(request.cancel_url);
        self.send(create.build(), Some(idempotency_key)).await
    }

    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<PortalSession, ApiError> {
        let request = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url);
        self.send(request.build(), None).await
    }

    /// Every subscription of `customer` in any status, newest first.
    pub async fn list_subscriptions(&self, customer: &str) -> Result<Vec<Subscription>, ApiError> {
        use stripe_billing::subscription::{ListSubscription, ListSubscriptionStatus};
        let request = ListSubscription::new()
            .customer(customer.to_owned())
            .status(ListSubscriptionStatus::All)
            .expand(vec!["data.discounts.source.coupon".to_owned()]);
        let list: List<Subscription> = self.send(request.build(), None).await?;
        Ok(list.data)
    }

    pub async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, ApiError> {
        // The discounts' coupons decide the subscription's monthly recurring revenue.
        let request = stripe_billing::subscription::RetrieveSubscription::new(id.to_owned())
            .expand(vec![DISCOUNT_COUPONS.to_owned()]);
        self.send(request.build(), None).await
    }

    /// Moves the subscription to `price` (prorated), keeping the subscription: its licensed
    /// item takes the new price, and its usage-based items become `metered_prices`.
    pub async fn change_subscription_price(
        &self,
        subscription: &Subscription,
        price: &str,
        metered_prices: &[String],
        metadata: HashMap<String, String>,
        idempotency_key: &str,
    ) -> Result<Subscription, ApiError> {
        use stripe_billing::subscription::{UpdateSubscription, UpdateSubscriptionItems};
        let licensed = subscription.licensed_item().ok_or_else(|| {
            ApiError::Unreadable("the subscription has no licensed item".to_owned())
        })?;
        let mut item = UpdateSubscriptionItems::new();
        item.id = Some(licensed.id.clone());
        item.price = Some(price.to_owned());
        let mut items = vec![item];
        for old in subscription
            .items
            .data
            .iter()
            .filter(|i| i.price.is_metered())
        {
            let mut removed = UpdateSubscriptionItems::new();
            removed.id = Some(old.id.clone());
            removed.deleted = Some(true);
            items.push(removed);
        }
        for metered in metered_prices {
            let mut added = UpdateSubscriptionItems::new();
            added.price = Some(metered.clone());
            items.push(added);
        }
        let request = UpdateSubscription::new(subscription.id.clone())
            .expand(vec![DISCOUNT_COUPONS.to_owned()])
            .items(items)
            .cancel_at_period_end(false)
            .metadata(metadata);
        self.send(request.build(), Some(idempotency_key)).await
    }

    /// Cancels the subscription at once: nothing more is charged but a final invoice for
    /// the usage not billed yet (`invoice_now`); the rest of the period is not credited
    /// (`prorate` off). `comment` is kept in its `cancellation_details`.
    pub async fn cancel_subscription(
        &self,
        id: &str,
        comment: &str,
    ) -> Result<Subscription, ApiError> {
        use stripe_billing::subscription::{
            CancelSubscription, CancelSubscriptionCancellationDetails,
        };
        let mut details = CancelSubscriptionCancellationDetails::new();
        details.comment = Some(comment.to_owned());
        let request = CancelSubscription::new(id.to_owned())
            .cancellation_details(details)
            .invoice_now(true)
            .prorate(false)
            .expand(vec![DISCOUNT_COUPONS.to_owned()]);
        self.send(request.build(), None).await
    }

    pub async fn retrieve_invoice(&self, id: &str) -> Result<Invoice, ApiError> {
        let request = stripe_billing::invoice::RetrieveInvoice::new(id.to_owned());
        self.send(request.build(), None).await
    }

    /// What the subscription's next invoice will come to.
    pub async fn preview_invoice(
        &self,
        customer: &str,
        subscription: &str,
    ) -> Result<Invoice, ApiError> {
        let request = stripe_billing::invoice::CreatePreviewInvoice::new()
            .customer(customer)
            .subscription(subscription);
        self.send(request.build(), None).await
    }

    /// Reports usage to a Billing Meter. Stripe counts an `identifier` once, so sending the
    /// same report again (after a timeout, say) never charges twice.
    pub async fn create_meter_event(
        &self,
        event_name: &str,
        customer: &str,
        value: i64,
        identifier: &str,
        timestamp: i64,
    ) -> Result<MeterEvent, ApiError> {
        let payload = HashMap::from([
            ("stripe_customer_id".to_owned(), customer.to_owned()),
            ("value".to_owned(), value.to_string()),
        ]);
        let request =
            stripe_billing::billing_meter_event::CreateBillingMeterEvent::new(event_name, payload)
                .identifier(identifier)
                .timestamp(timestamp);
        self.send(request.build(), Some(&format!("meter-{identifier}")))
            .await
    }
}

/// What a Checkout Session is opened for.
#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    pub customer: &'a str,
    pub client_reference_id: &'a str,
    pub price: &'a str,
    /// The plan's usage-based prices (overages), if it has any.
    pub metered_prices: Vec<String>,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
    #[serde(default)]
    pub lookup_key: Option<String>,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    pub currency: String,
    #[serde(default)]
    pub product: Option<serde_json::Value>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
}

impl Price {
    /// Whether it is billed from a meter's usage rather than per subscription.
    pub fn is_metered(&self) -> bool {
        self.recurring
            .as_ref()
            .and_then(|r| r.usage_type.as_deref())
            == Some("metered")
    }

    pub fn meter(&self) -> Option<&str> {
        self.recurring.as_ref()?.meter.as_deref()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Recurring {
    /// `month` or `year`.
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub usage_type: Option<String>,
    #[serde(default)]
    pub meter: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Meter {
    pub id: String,
    pub event_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PortalSession {
    pub url: String,
}

crate::text_enum! {
    /// A subscription's status, as Stripe names it (and `billing_accounts.status` stores it,
    /// under the `billing_accounts_status_check` constraint).
    pub enum SubscriptionStatus {
        Incomplete => "incomplete",
        IncompleteExpired => "incomplete_expired",
        Trialing => "trialing",
        Active => "active",
        PastDue => "past_due",
        Unpaid => "unpaid",
        Canceled => "canceled",
        Paused => "paused",
    }
}

impl SubscriptionStatus {
    /// Paid for, or being collected: the subscription's plan applies.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Active
                | SubscriptionStatus::Trialing
                | SubscriptionStatus::PastDue
                | SubscriptionStatus::Unpaid
        )
    }

    /// Over for good: the grace period starts.
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        )
    }

    /// A payment is owed.
    pub fn is_past_due(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::PastDue | SubscriptionStatus::Unpaid
        )
    }
}

/// What a subscription request expands so that its discounts' coupons (what they take off)
/// can be read: since API 2025-09 a discount names its coupon under `source`, unexpanded.
const DISCOUNT_COUPONS: &str = "discounts.source.coupon";

#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    /// An id, or the expanded customer object.
    pub customer: serde_json::Value,
    pub status: SubscriptionStatus,
    /// The newest invoice: an id, or the expanded object.
    #[serde(default)]
    pub latest_invoice: Option<serde_json::Value>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    pub items: List<SubscriptionItem>,
    /// The discounts applying to the whole subscription: ids, or the expanded objects with
    /// their coupons under `source` (as [`StripeApi::retrieve_subscription`] asks for
    /// them).
    #[serde(default)]
    pub discounts: Vec<serde_json::Value>,
}

impl Subscription {
    pub fn customer_id(&self) -> Option<&str> {
        expandable_id(&self.customer)
    }

    /// Where the period being paid for ends (on the item since API 2025-03).
    pub fn current_period_end(&self) -> Option<i64> {
        self.items
            .data
            .iter()
            .filter_map(|i| i.current_period_end)
            .max()
    }

    /// The item billed per subscription (the plan), as opposed to usage-based ones.
    pub fn licensed_item(&self) -> Option<&SubscriptionItem> {
        self.items.data.iter().find(|i| !i.price.is_metered())
    }

    /// The plan's price's lookup key.
    pub fn lookup_key(&self) -> Option<&str> {
        self.licensed_item()?.price.lookup_key.as_deref()
    }

    pub fn latest_invoice_id(&self) -> Option<&str> {
        self.latest_invoice.as_ref().and_then(expandable_id)
    }

    /// What the plan's item brings in per month, in the price's smallest unit: its price
    /// times its quantity, less the subscription's discounts (percentages, then fixed
    /// amounts off each invoice, never below zero); a yearly price counts as 1/12, rounded
    /// to the unit. Usage-based items are not recurring revenue. `None` when it cannot be
    /// told: a discount whose coupon was not expanded.
    pub fn monthly_recurring_amount(&self) -> Option<i64> {
        let Some(item) = self.licensed_item() else {
            return Some(0);
        };
        let coupons = self
            .discounts
            .iter()
            .map(|d| d.get("source")?.get("coupon").filter(|c| c.is_object()))
            .collect::<Option<Vec<_>>>()?;
        let per_invoice = item
            .price
            .unit_amount
            .unwrap_or(0)
            .saturating_mul(item.quantity.unwrap_or(1));
        let mut due = per_invoice as f64;
        for coupon in &coupons {
            if let Some(percent) = coupon.get("percent_off").and_then(|p| p.as_f64()) {
                due *= (100.0 - percent.clamp(0.0, 100.0)) / 100.0;
            }
        }
        for coupon in &coupons {
            if let Some(amount) = coupon.get("amount_off").and_then(|a| a.as_i64()) {
                due -= amount as f64;
            }
        }
        let months = match item
            .price
            .recurring
            .as_ref()
            .and_then(|r| r.interval.as_deref())
        {
            Some("year") => 12.0,
            _ => 1.0,
        };
        Some((due.max(0.0) / months).round() as i64)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub price: Price,
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default)]
    pub current_period_end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub customer: Option<serde_json::Value>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub attempt_count: u32,
    #[serde(default)]
    pub amount_due: i64,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub next_payment_attempt: Option<i64>,
    #[serde(default)]
    pub hosted_invoice_url: Option<String>,
}

impl Invoice {
    pub fn customer_id(&self) -> Option<&str> {
        self.customer.as_ref().and_then(expandable_id)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MeterEvent {
    pub identifier: String,
}

/// The id of a field Stripe sends either as an id or as the expanded object.
pub fn expandable_id(value: &serde_json::Value) -> Option<&str> {
    match value {
        serde_json::Value::String(id) => Some(id),
        serde_json::Value::Object(object) => object.get("id")?.as_str(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{StripeApi, Subscription};

    #[test]
    fn dashboard_links_follow_the_keys_mode_and_take_only_stripe_ids() {
        let base = "http://127.0.0.1:1/".parse().expect("URL");
        let test = StripeApi::new("sk_test_123", &base).expect("client");
        let live = StripeApi::new("sk_live_123", &base).expect("client");
        assert_eq!(
            test.dashboard_link("customers", "cus_Abc123").as_deref(),
            Some("https://dashboard.stripe.com/test/customers/cus_Abc123")
        );
        assert_eq!(
            live.dashboard_link("subscriptions", "sub_9").as_deref(),
            Some("https://dashboard.stripe.com/subscriptions/sub_9")
        );
        for odd in [
            "",
            "cus_1/../x",
            "cus 1",
            "cus_1?x=1",
            "javascript:alert(1)",
        ] {
            assert_eq!(live.dashboard_link("customers", odd), None, "{odd:?}");
        }
    }

    fn subscription(interval: &str, quantity: i64, discounts: serde_json::Value) -> Subscription {
        serde_json::from_value(serde_json::json!({
            "id": "sub_1", "customer": "cus_1", "status": "active", "discounts": discounts,
            "items": { "data": [
                { "id": "si_1", "quantity": quantity, "price": {
                    "id": "price_1", "unit_amount": 49_000, "currency": "usd",
                    "recurring": { "interval": interval, "usage_type": "licensed" } } },
                { "id": "si_2", "price": {
                    "id": "price_2", "unit_amount": 8, "currency": "usd",
                    "recurring": { "interval": interval, "usage_type": "metered" } } }
            ] }
        }))
        .expect("a subscription")
    }

    fn coupon(fields: serde_json::Value) -> serde_json::Value {
        serde_json::json!({ "id": "di_1", "source": { "type": "coupon", "coupon": fields } })
    }

    #[test]
    fn monthly_recurring_amount_follows_interval_quantity_and_discounts() {
        let amount = |s: Subscription| s.monthly_recurring_amount();
        // $490 a year: $40.83 a month (rounded); metered items are not recurring revenue.
        assert_eq!(
            amount(subscription("year", 1, serde_json::json!([]))),
            Some(4083)
        );
        assert_eq!(
            amount(subscription("month", 2, serde_json::json!([]))),
            Some(98_000)
        );
        let quarter_off = coupon(serde_json::json!({ "id": "co_1", "percent_off": 25.0 }));
        assert_eq!(
            amount(subscription("month", 1, serde_json::json!([quarter_off]))),
            Some(36_750)
        );
        let everything_off = coupon(serde_json::json!({ "id": "co_2", "amount_off": 60_000 }));
        assert_eq!(
            amount(subscription(
                "month",
                1,
                serde_json::json!([everything_off])
            )),
            Some(0)
        );
        // A discount or coupon that was not expanded: the amount cannot be told.
        assert_eq!(
            amount(subscription("month", 1, serde_json::json!(["di_1"]))),
            None
        );
        assert_eq!(
            amount(subscription(
                "month",
                1,
                serde_json::json!([coupon(serde_json::json!("co_1"))])
            )),
            None
        );
    }
}
