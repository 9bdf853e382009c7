//! A Stripe-shaped test server: test code only.
//!
//! It answers the API calls Slipway makes the way Stripe does (form-encoded requests, JSON
//! objects built from Stripe's published fixtures in `fixtures/fixtures3.json` (vendored from
//! Stripe's public OpenAPI repository with its MIT licence, `fixtures/LICENSE`) with
//! the fields the request set, Stripe's error objects, `Idempotency-Key` replay), serves a
//! hosted checkout page with a "Pay" button, and delivers webhook events signed exactly as
//! Stripe signs them (`Stripe-Signature: t=...,v1=...`). Tests drive billing scenarios with
//! the methods of [`StripeTestServer`]: pay, fail a payment, cancel, hold deliveries back and
//! deliver them twice or out of order.
//!
//! What it does not imitate: card handling and 3-D Secure, proration amounts, taxes,
//! coupons, invoices beyond one open invoice per subscription (usage-based items add nothing
//! to it), the portal's own pages beyond a return link, test clocks, API versions,
//! pagination, rate limits.

// Handlers build Stripe's answer or its error object, both as an axum `Response`: the
// error is large, and rare, and this is test code.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// Where the fixtures are, relative to this crate's directory.
pub const FIXTURES: &str = "fixtures/fixtures3.json";

/// A running test server; stops when dropped.
pub struct StripeTestServer {
    addr: SocketAddr,
    state: Arc<Mutex<Stripe>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StripeTestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One webhook delivery attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: String,
    pub kind: String,
    pub status: u16,
}

#[derive(Default)]
struct Stripe {
    fixtures: Map<String, Value>,
    base: String,
    seq: u64,
    objects: HashMap<String, Value>,
    /// Price ids in creation order (lookup keys move between them).
    prices: Vec<String>,
    /// Meter events by identifier: Stripe counts an identifier once.
    meter_events: HashMap<String, Value>,
    /// Answer this many meter event calls with a 500 *after* recording them (a lost answer).
    lose_meter_answers: usize,
    /// Stripe is down: every API call answers 500 (webhooks are still delivered).
    outage: bool,
    idempotent: HashMap<String, (StatusCode, Value)>,
    webhook: Option<(String, Vec<String>)>,
    hold: bool,
    held: Vec<Value>,
    deliveries: Vec<Delivery>,
    requests: Vec<(String, String)>,
}

type Shared = Arc<Mutex<Stripe>>;

fn lock(state: &Shared) -> MutexGuard<'_, Stripe> {
    // A panicking test thread must not hide the server's state from the others.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Stripe's signature header for `payload`: one `v1` per secret.
pub fn sign(payload: &[u8], timestamp: i64, secrets: &[String]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(payload);
        header.push_str(&format!(",v1={}", hex::encode(mac.finalize().into_bytes())));
    }
    header
}

impl Stripe {
    fn id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_test{:08}{}", self.seq, now() % 100_000)
    }

    /// The fixture of `resource` with `fields` set on top.
    fn object(&self, resource: &str, fields: Value) -> Value {
        let mut object = self
            .fixtures
            .get(resource)
            .cloned()
            .unwrap_or_else(|| json!({}));
        if let (Some(target), Value::Object(fields)) = (object.as_object_mut(), fields) {
            target.insert("created".into(), json!(now()));
            target.insert("livemode".into(), json!(false));
            for (key, value) in fields {
                target.insert(key, value);
            }
        }
        object
    }

    fn event(&mut self, kind: &str, object: Value) -> Value {
        let id = self.id("evt");
        self.object(
            "event",
            json!({
                "id": id, "type": kind, "api_version": "2026-09-30.clover",
                "data": { "object": object }, "pending_webhooks": 1,
                "request": { "id": null, "idempotency_key": null },
            }),
        )
    }

    fn get(&self, id: &str) -> Option<Value> {
        self.objects.get(id).cloned()
    }

    /// Keeps `object` under its id; returns it. An invoice becomes its subscription's
    /// `latest_invoice`.
    fn store(&mut self, object: Value) -> Value {
        let id = object["id"].as_str().unwrap_or_default().to_owned();
        if object["object"] == "invoice"
            && let Some(subscription) = object["subscription"].as_str()
            && let Some(stored) = self.objects.get_mut(subscription)
        {
            stored["latest_invoice"] = json!(id);
        }
        self.objects.insert(id, object.clone());
        object
    }

    /// The subscription's invoice still being collected, if any.
    fn open_invoice(&self, subscription_id: &str) -> Option<Value> {
        self.objects
            .values()
            .find(|o| {
                o["object"] == "invoice"
                    && o["subscription"] == subscription_id
                    && o["status"] == "open"
            })
            .cloned()
    }

    fn price(&self, id: &str) -> Option<Value> {
        self.objects.get(id).cloned()
    }

    /// A subscription item on `price`.
    fn item(&mut self, subscription: &str, price: Value) -> Value {
        let interval = price["recurring"]["interval"].as_str().unwrap_or("month");
        let period = if interval == "year" { 365 } else { 30 } * 86_400;
        let mut item = self.fixtures["subscription"]["items"]["data"][0].clone();
        item["id"] = json!(self.id("si"));
        item["price"] = price;
        item["subscription"] = json!(subscription);
        item["current_period_start"] = json!(now());
        item["current_period_end"] = json!(now() + period);
        item
    }

    /// Stripe's subscription, with an item per price (the first one the plan).
    fn subscription(&mut self, customer: &str, prices: Vec<Value>, metadata: Value) -> Value {
        let id = self.id("sub");
        let items: Vec<Value> = prices.into_iter().map(|p| self.item(&id, p)).collect();
        self.object(
            "subscription",
            json!({
                "id": id, "customer": customer, "status": "active", "metadata": metadata,
                "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
                "start_date": now(), "latest_invoice": null,
                "items": { "object": "list", "data": items, "has_more": false,
                           "url": format!("/v1/subscription_items?subscription={id}") },
            }),
        )
    }

    fn invoice(&mut self, subscription: &Value, status: &str, attempts: u64) -> Value {
        let id = self.id("in");
        // Usage-based items bill what their meters report; the test server reports none.
        let amount = subscription["items"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["price"]["recurring"]["usage_type"] != "metered")
            .filter_map(|i| i["price"]["unit_amount"].as_i64())
            .sum::<i64>();
        self.object(
            "invoice",
            json!({
                "id": id, "customer": subscription["customer"], "subscription": subscription["id"],
                "status": status, "attempt_count": attempts, "attempted": attempts > 0,
                "amount_due": amount, "amount_paid": if status == "paid" { amount } else { 0 },
                "amount_remaining": if status == "paid" { 0 } else { amount },
                "billing_reason": "subscription_cycle", "currency": "usd",
            }),
        )
    }

    /// Ends `subscription` now (stored); returns it. The caller emits the event.
    fn end(&mut self, mut subscription: Value, reason: &str, comment: Option<&str>) -> Value {
        subscription["status"] = json!("canceled");
        subscription["canceled_at"] = json!(now());
        subscription["ended_at"] = json!(now());
        subscription["cancellation_details"] =
            json!({ "reason": reason, "comment": comment, "feedback": null });
        self.store(subscription)
    }

    fn emit(&mut self, kind: &str, object: Value) -> Value {
        let event = self.event(kind, object);
        self.held.push(event.clone());
        event
    }
}

/// Stripe's error object.
fn error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Response {
    let mut body = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    if let Some(param) = param {
        body["param"] = json!(param);
    }
    (status, axum::Json(json!({ "error": body }))).into_response()
}

fn missing(what: &str, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {what}: '{id}'"),
        Some("id"),
    )
}

fn required(param: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some("parameter_missing"),
        &format!("Missing required param: {param}."),
        Some(param),
    )
}

/// Stripe's form encoding (`a[b][0][c]=v`) as nested JSON; numbered keys become arrays.
pub fn decode_form(body: &str) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in form_urlencoded::parse(body.as_bytes()) {
        let mut path: Vec<String> = Vec::new();
        let (head, rest) = key.split_once('[').unwrap_or((&key, ""));
        path.push(head.to_owned());
        for part in rest.split('[') {
            let part = part.trim_end_matches(']');
            if !part.is_empty() {
                path.push(part.to_owned());
            }
        }
        let mut node = &mut root;
        for (i, part) in path.iter().enumerate() {
            let map = match node {
                Value::Object(map) => map,
                _ => break,
            };
            if i + 1 == path.len() {
                map.insert(part.clone(), Value::String(value.to_string()));
                break;
            }
            node = map
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    arrays(root)
}

/// A request's `metadata`; `metadata=` (empty) clears it, as in Stripe.
fn metadata(form: &Value) -> Value {
    match form.get("metadata") {
        Some(Value::Object(map)) => Value::Object(map.clone()),
        _ => json!({}),
    }
}

fn arrays(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let numbered = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if numbered {
                let mut items: Vec<(usize, Value)> = map
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(0), arrays(v)))
                    .collect();
                items.sort_by_key(|(k, _)| *k);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect())
            }
        }
        other => other,
    }
}

impl StripeTestServer {
    /// Starts on a free loopback port with the fixtures at `fixtures`.
    pub async fn start(fixtures: impl AsRef<Path>) -> Self {
        let raw = std::fs::read_to_string(fixtures.as_ref())
            .unwrap_or_else(|e| panic!("reading {}: {e}", fixtures.as_ref().display()));
        let parsed: Value = serde_json::from_str(&raw).expect("fixtures are JSON");
        let fixtures = parsed["resources"]
            .as_object()
            .cloned()
            .expect("fixtures have resources");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(Stripe {
            fixtures,
            base: format!("http://{addr}"),
            ..Stripe::default()
        }));
        let app = Router::new()
            .route("/v1/customers", post(create_customer))
            .route("/v1/products", post(create_product))
            .route(
                "/v1/products/{id}",
                get(retrieve_product).post(update_product),
            )
            .route("/v1/prices", get(list_prices).post(create_price))
            .route("/v1/checkout/sessions", post(create_checkout_session))
            .route("/v1/billing_portal/sessions", post(create_portal_session))
            .route("/v1/subscriptions", get(list_subscriptions))
            .route(
                "/v1/subscriptions/{id}",
                get(retrieve_subscription)
                    .post(update_subscription)
                    .delete(cancel_subscription),
            )
            .route("/v1/invoices/create_preview", post(preview_invoice))
            .route("/v1/invoices/{id}", get(retrieve_invoice))
            .route("/v1/billing/meter_events", post(create_meter_event))
            .route("/v1/billing/meters", get(list_meters).post(create_meter))
            .route("/checkout/{id}", get(checkout_page))
            .route("/checkout/{id}/pay", post(pay))
            .route("/portal/{id}", get(portal_page))
            .fallback(unknown)
            .layer(axum::middleware::from_fn_with_state(state.clone(), outage))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// Starts with the fixtures vendored in this crate (`fixtures/`).
    pub async fn start_default() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        Self::start(dir.join(FIXTURES)).await
    }

    /// The API base URL to configure Slipway with (`billing.stripe_api_base`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Where webhook events go, signed with each of `secrets` (one `v1` each).
    pub fn set_webhook(&self, url: &str, secrets: &[&str]) {
        lock(&self.state).webhook = Some((
            url.to_owned(),
            secrets.iter().map(|s| (*s).to_owned()).collect(),
        ));
    }

    /// While held, events are kept (see [`Self::held`]) instead of delivered.
    pub fn hold_deliveries(&self, hold: bool) {
        lock(&self.state).hold = hold;
    }

    /// Events waiting to be delivered, oldest first; taking them empties the queue.
    pub fn take_held(&self) -> Vec<Value> {
        std::mem::take(&mut lock(&self.state).held)
    }

    /// Delivers what is queued, in order, unless deliveries are held.
    pub async fn flush(&self) {
        flush(&self.state).await;
    }

    /// Delivers `event` now (again, if it was delivered before); returns Slipway's status.
    pub async fn deliver(&self, event: &Value) -> u16 {
        deliver(&self.state, event).await
    }

    /// Every delivery attempt so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.state).deliveries.clone()
    }

    /// How often each `METHOD /path` was called.
    pub fn calls(&self, method_and_path: &str) -> usize {
        lock(&self.state)
            .requests
            .iter()
            .filter(|(m, p)| format!("{m} {p}") == method_and_path)
            .count()
    }

    pub fn object(&self, id: &str) -> Option<Value> {
        lock(&self.state).get(id)
    }

    /// All subscriptions of `customer`.
    pub fn subscriptions_of(&self, customer: &str) -> Vec<Value> {
        lock(&self.state)
            .objects
            .values()
            .filter(|o| o["object"] == "subscription" && o["customer"] == customer)
            .cloned()
            .collect()
    }

    /// Meter events Stripe counted, by identifier.
    pub fn meter_events(&self) -> HashMap<String, Value> {
        lock(&self.state).meter_events.clone()
    }

    /// Stripe's API goes down (`true`: every `/v1/` call answers 500 with an `api_error`)
    /// or comes back. Webhook deliveries go on either way.
    pub fn set_outage(&self, down: bool) {
        lock(&self.state).outage = down;
    }

    /// The next `n` meter event calls are recorded but answered with a 500, as when the
    /// answer is lost on the way back.
    pub fn lose_meter_answers(&self, n: usize) {
        lock(&self.state).lose_meter_answers = n;
    }

    /// Pays the checkout session as the "Pay" button does: a subscription, a paid invoice,
    /// and the three events Stripe sends. Returns the subscription id.
    pub async fn pay_checkout(&self, session_id: &str) -> Option<String> {
        let id = complete_checkout(&self.state, session_id)?;
        flush(&self.state).await;
        Some(id)
    }

    /// Fails the subscription's renewal once more: its open invoice's `attempt_count` goes
    /// up, the subscription becomes `past_due`, and `invoice.payment_failed` is sent.
    pub async fn fail_payment(&self, subscription_id: &str) -> Value {
        let event = {
            let mut stripe = lock(&self.state);
            let mut subscription = stripe.get(subscription_id).expect("known subscription");
            let open = stripe.open_invoice(subscription_id);
            let mut invoice = match open {
                Some(invoice) => invoice,
                None => stripe.invoice(&subscription, "open", 0),
            };
            let attempts = invoice["attempt_count"].as_u64().unwrap_or(0) + 1;
            invoice["attempt_count"] = json!(attempts);
            invoice["attempted"] = json!(true);
            invoice["next_payment_attempt"] = json!(now() + 3 * 86_400);
            let invoice = stripe.store(invoice);
            subscription["status"] = json!("past_due");
            let subscription = stripe.store(subscription);
            stripe.emit("customer.subscription.updated", subscription);
            stripe.emit("invoice.payment_failed", invoice)
        };
        flush(&self.state).await;
        event
    }

    /// Collects the open invoice (the customer fixed their card): `invoice.paid`.
    pub async fn pay_open_invoice(&self, subscription_id: &str) -> Option<Value> {
        let event = {
            let mut stripe = lock(&self.state);
            let mut invoice = stripe.open_invoice(subscription_id)?;
            invoice["status"] = json!("paid");
            invoice["amount_paid"] = invoice["amount_due"].clone();
            invoice["amount_remaining"] = json!(0);
            let invoice = stripe.store(invoice);
            let mut subscription = stripe.get(subscription_id)?;
            subscription["status"] = json!("active");
            let subscription = stripe.store(subscription);
            stripe.emit("customer.subscription.updated", subscription);
            stripe.emit("invoice.paid", invoice)
        };
        flush(&self.state).await;
        Some(event)
    }

    /// Puts a coupon on the subscription, as the Stripe dashboard would, and sends
    /// `customer.subscription.updated`: `coupon` holds `percent_off` or `amount_off` (in
    /// cents, off each invoice). Returns the discount.
    pub async fn discount(&self, subscription_id: &str, coupon: Value) -> Value {
        let discount = {
            let mut stripe = lock(&self.state);
            let mut fields = json!({ "id": stripe.id("co"), "duration": "forever", "valid": true });
            if let (Some(fields), Value::Object(given)) = (fields.as_object_mut(), coupon) {
                fields.extend(given);
            }
            let coupon = stripe.object("coupon", fields);
            let discount = json!({
                "id": stripe.id("di"), "object": "discount", "subscription": subscription_id,
                "source": { "type": "coupon", "coupon": coupon }, "start": now(), "end": null,
            });
            let mut subscription = stripe.get(subscription_id).expect("known subscription");
            match subscription["discounts"].as_array_mut() {
                Some(discounts) => discounts.push(discount.clone()),
                None => subscription["discounts"] = json!([discount.clone()]),
            }
            let subscription = stripe.store(subscription);
            stripe.emit(
                "customer.subscription.updated",
                with_discounts(subscription, &[], ""),
            );
            discount
        };
        flush(&self.state).await;
        discount
    }

    /// Ends the subscription (canceled in the portal, or after failed payments): Stripe
    /// sends `customer.subscription.deleted`.
    pub async fn cancel(&self, subscription_id: &str) -> Value {
        let event = {
            let mut stripe = lock(&self.state);
            let subscription = stripe.get(subscription_id).expect("known subscription");
            let subscription = stripe.end(subscription, "cancellation_requested", None);
            stripe.emit("customer.subscription.deleted", subscription)
        };
        flush(&self.state).await;
        event
    }

    /// An event of `kind` about `object` (for unknown types, say), queued for delivery.
    pub async fn send_event(&self, kind: &str, object: Value) -> Value {
        let event = lock(&self.state).emit(kind, object);
        flush(&self.state).await;
        event
    }
}

async fn flush(state: &Shared) {
    let events = {
        let mut stripe = lock(state);
        if stripe.hold {
            return;
        }
        std::mem::take(&mut stripe.held)
    };
    for event in events {
        deliver(state, &event).await;
    }
}

async fn deliver(state: &Shared, event: &Value) -> u16 {
    let Some((url, secrets)) = lock(state).webhook.clone() else {
        return 0;
    };
    let body = serde_json::to_vec(event).unwrap_or_default();
    let signature = sign(&body, now(), &secrets);
    let status = match reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .timeout(Duration::from_secs(10))
        .body(body)
        .send()
        .await
    {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    };
    lock(state).deliveries.push(Delivery {
        event_id: event["id"].as_str().unwrap_or_default().to_owned(),
        kind: event["type"].as_str().unwrap_or_default().to_owned(),
        status,
    });
    status
}

/// Stripe's idempotency: the same key gets the first answer again, and the call does not
/// act twice.
fn idempotent(
    state: &Shared,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    act: impl FnOnce(&mut Stripe) -> Result<Value, Response>,
) -> Response {
    let mut stripe = lock(state);
    stripe.requests.push((method.to_string(), path.to_owned()));
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("{path}:{k}"));
    if let Some(key) = &key
        && let Some((status, body)) = stripe.idempotent.get(key)
    {
        let mut response = (*status, axum::Json(body.clone())).into_response();
        response.headers_mut().insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
        return response;
    }
    match act(&mut stripe) {
        Ok(body) => {
            if let Some(key) = key {
                stripe
                    .idempotent
                    .insert(key, (StatusCode::OK, body.clone()));
            }
            axum::Json(body).into_response()
        }
        Err(response) => response,
    }
}

async fn create_customer(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = decode_form(&body);
    idempotent(&state, &headers, &Method::POST, "/v1/customers", |stripe| {
        let id = stripe.id("cus");
        let customer = stripe.object(
            "customer",
            json!({ "id": id, "name": form["name"], "email": form["email"],
                    "metadata": metadata(&form) }),
        );
        Ok(stripe.store(customer))
    })
}

async fn create_product(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let form = decode_form(&body);
    idempotent(&state, &headers, &Method::POST, "/v1/products", |stripe| {
        let name = form["name"].as_str().ok_or_else(|| required("name"))?;
        let id = match form["id"].as_str() {
            Some(id) => id.to_owned(),
            None => stripe.id("prod"),
        };
        if stripe.objects.contains_key(&id) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("resource_already_exists"),
                &format!("Product already exists with ID '{id}'"),
                Some("id"),
            ));
        }
        let product = stripe.object(
            "product",
            json!({ "id": id, "name": name, "description": form["description"], "default_price": null,
                    "metadata": metadata(&form) }),
        );
        Ok(stripe.store(product))
    })
}

async fn retrieve_product(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let mut stripe = lock(&state);
    stripe
        .requests
        .push(("GET".into(), "/v1/products/{id}".into()));
    match stripe.get(&id) {
        Some(product) => axum::Json(product).into_response(),
        None => missing("product", &id),
    }
}

async fn update_product(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> Response {
    let form = decode_form(&body);
    let mut stripe = lock(&state);
    stripe
        .requests
        .push(("POST".into(), "/v1/products/{id}".into()));
    let Some(mut product) = stripe.get(&id) else {
        return missing("product", &id);
    };
    for field in ["name", "description"] {
        if let Some(value) = form.get(field) {
            product[field] = value.clone();
        }
    }
    axum::Json(stripe.store(product)).into_response()
}

async fn list_prices(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let query = decode_form(&query.unwrap_or_default());
    let mut stripe = lock(&state);
    stripe.requests.push(("GET".into(), "/v1/prices".into()));
    let keys: Vec<String> = match &query["lookup_keys"] {
        Value::Array(keys) => keys
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        Value::String(key) => vec![key.clone()],
        _ => Vec::new(),
    };
    let data: Vec<Value> = stripe
        .prices
        .iter()
        .filter_map(|id| stripe.price(id))
        .filter(|p| {
            keys.is_empty()
                || p["lookup_key"]
                    .as_str()
                    .is_some_and(|k| keys.iter().any(|x| x == k))
        })
        .filter(|p| query["active"] != "true" || p["active"] == true)
        .collect();
    axum::Json(json!({ "object": "list", "data": data, "has_more": false, "url": "/v1/prices" }))
        .into_response()
}

async fn create_price(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let form = decode_form(&body);
    idempotent(&state, &headers, &Method::POST, "/v1/prices", |stripe| {
        let currency = form["currency"]
            .as_str()
            .ok_or_else(|| required("currency"))?;
        let product = form["product"]
            .as_str()
            .ok_or_else(|| required("product"))?;
        if !stripe.objects.contains_key(product) {
            return Err(missing("product", product));
        }
        let amount: i64 = form["unit_amount"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| required("unit_amount"))?;
        let lookup_key = form["lookup_key"].as_str().map(str::to_owned);
        if let Some(key) = &lookup_key {
            let taken = stripe
                .prices
                .iter()
                .filter_map(|id| stripe.objects.get(id))
                .any(|p| p["lookup_key"].as_str() == Some(key));
            if taken && form["transfer_lookup_key"] != "true" {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    None,
                    &format!(
                        "A price with lookup key '{key}' already exists. Set transfer_lookup_key to move it."
                    ),
                    Some("lookup_key"),
                ));
            }
            for id in stripe.prices.clone() {
                if let Some(price) = stripe.objects.get_mut(&id)
                    && price["lookup_key"].as_str() == Some(key)
                {
                    price["lookup_key"] = Value::Null;
                }
            }
        }
        let id = stripe.id("price");
        let interval = form["recurring"]["interval"].clone();
        let price = stripe.object(
            "price",
            json!({
                "id": id, "product": product, "currency": currency, "unit_amount": amount,
                "unit_amount_decimal": amount.to_string(), "lookup_key": lookup_key, "active": true,
                "type": if interval.is_null() { "one_time" } else { "recurring" },
                "recurring": if interval.is_null() { Value::Null } else {
                    json!({ "interval": interval, "interval_count": 1,
                            "meter": form["recurring"]["meter"],
                            "usage_type": form["recurring"]["usage_type"].as_str().unwrap_or("licensed"),
                            "trial_period_days": null })
                },
                "metadata": metadata(&form),
                "transform_quantity": null, "custom_unit_amount": null,
            }),
        );
        stripe.prices.push(id);
        let price = stripe.store(price);
        Ok(price)
    })
}

async fn create_checkout_session(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = decode_form(&body);
    idempotent(
        &state,
        &headers,
        &Method::POST,
        "/v1/checkout/sessions",
        |stripe| {
            let mode = form["mode"].as_str().ok_or_else(|| required("mode"))?;
            let success_url = form["success_url"]
                .as_str()
                .ok_or_else(|| required("success_url"))?;
            let price_id = form["line_items"][0]["price"]
                .as_str()
                .ok_or_else(|| required("line_items[0][price]"))?;
            let prices: Vec<String> = form["line_items"]
                .as_array()
                .map(|lines| {
                    lines
                        .iter()
                        .filter_map(|l| l["price"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for (index, line) in form["line_items"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let Some(price) = line["price"].as_str().and_then(|p| stripe.price(p)) else {
                    return Err(missing("price", line["price"].as_str().unwrap_or_default()));
                };
                let metered = price["recurring"]["usage_type"] == "metered";
                if metered != line.get("quantity").is_none() {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        None,
                        if metered {
                            "Quantity should not be specified where usage_type is `metered`."
                        } else {
                            "Quantity is required."
                        },
                        Some(&format!("line_items[{index}][quantity]")),
                    ));
                }
            }
            if let Some(customer) = form["customer"].as_str()
                && !stripe.objects.contains_key(customer)
            {
                return Err(missing("customer", customer));
            }
            let id = stripe.id("cs_test");
            let url = format!("{}/checkout/{id}", stripe.base);
            let session = stripe.object(
            "checkout.session",
            json!({
                "id": id, "mode": mode, "url": url, "status": "open", "payment_status": "unpaid",
                "customer": form["customer"], "client_reference_id": form["client_reference_id"],
                "metadata": metadata(&form),
                "success_url": success_url, "cancel_url": form["cancel_url"],
                "expires_at": now() + 86_400, "subscription": null,
                "line_items_price": price_id,
                "line_items_prices": prices,
                "subscription_metadata": form["subscription_data"]["metadata"],
            }),
        );
            Ok(stripe.store(session))
        },
    )
}

async fn create_portal_session(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = decode_form(&body);
    idempotent(
        &state,
        &headers,
        &Method::POST,
        "/v1/billing_portal/sessions",
        |stripe| {
            let customer = form["customer"]
                .as_str()
                .ok_or_else(|| required("customer"))?;
            if !stripe.objects.contains_key(customer) {
                return Err(missing("customer", customer));
            }
            let id = stripe.id("bps");
            let url = format!("{}/portal/{id}", stripe.base);
            let session = stripe.object(
            "billing_portal.session",
            json!({ "id": id, "customer": customer, "return_url": form["return_url"], "url": url,
                    "flow": null, "configuration": "bpc_test" }),
        );
            Ok(stripe.store(session))
        },
    )
}

/// A subscription as Stripe answers it (API 2025-09 and later): its discounts are ids
/// unless the request expanded them (`expand[]=discounts`, `data.discounts` in a list), and
/// a discount's coupon (under `source`) is an id unless it was expanded too
/// (`discounts.source.coupon`).
fn with_discounts(mut subscription: Value, expand: &[String], prefix: &str) -> Value {
    let asked = |field: &str| expand.iter().any(|e| e == &format!("{prefix}{field}"));
    let coupons = asked("discounts.source.coupon");
    let discounts = coupons || asked("discounts");
    if let Some(list) = subscription["discounts"].as_array_mut() {
        for discount in list.iter_mut() {
            if !discounts {
                *discount = discount["id"].clone();
            } else if !coupons {
                discount["source"]["coupon"] = discount["source"]["coupon"]["id"].clone();
            }
        }
    }
    subscription
}

/// The fields a request asked to expand (`expand[]=...`, in its query or its form).
fn expand_list(form: &Value) -> Vec<String> {
    form["expand"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn retrieve_subscription(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut stripe = lock(&state);
    stripe
        .requests
        .push(("GET".into(), "/v1/subscriptions/{id}".into()));
    match stripe.get(&id) {
        Some(subscription) if subscription["object"] == "subscription" => {
            let expand = expand_list(&decode_form(query.as_deref().unwrap_or_default()));
            axum::Json(with_discounts(subscription, &expand, "")).into_response()
        }
        _ => missing("subscription", &id),
    }
}

/// `GET /v1/subscriptions?customer=...&status=all`: the customer's subscriptions, newest
/// first.
async fn list_subscriptions(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let query = decode_form(&raw.unwrap_or_default());
    let expand = expand_list(&query);
    let mut stripe = lock(&state);
    stripe
        .requests
        .push(("GET".into(), "/v1/subscriptions".into()));
    let customer = query["customer"].as_str().unwrap_or_default();
    let status = query["status"].as_str().unwrap_or("active");
    let mut data: Vec<Value> = stripe
        .objects
        .values()
        .filter(|o| o["object"] == "subscription" && o["customer"] == customer)
        .filter(|o| status == "all" || o["status"] == status)
        .map(|o| with_discounts(o.clone(), &expand, "data."))
        .collect();
    data.sort_by(|a, b| {
        (b["created"].as_i64(), b["id"].as_str()).cmp(&(a["created"].as_i64(), a["id"].as_str()))
    });
    axum::Json(
        json!({ "object": "list", "data": data, "has_more": false, "url": "/v1/subscriptions" }),
    )
    .into_response()
}

/// While Stripe is "down", every API call fails as Stripe's do when they fail: a 500 with
/// an `api_error`.
async fn outage(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let down = lock(&state).outage;
    if down && request.uri().path().starts_with("/v1/") {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            "An unknown error occurred (the test server is in an outage).",
            None,
        );
    }
    next.run(request).await
}

async fn update_subscription(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = decode_form(&body);
    let path = format!("/v1/subscriptions/{id}");
    let response = idempotent(&state, &headers, &Method::POST, &path, |stripe| {
        let Some(mut subscription) = stripe.get(&id) else {
            return Err(missing("subscription", &id));
        };
        if subscription["status"] == "canceled" {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                "A canceled subscription can only update its cancellation_details and metadata.",
                None,
            ));
        }
        // `items[n]`: with an id, that item changes price or (`deleted`) goes; without, a new
        // item is added.
        for change in form["items"].as_array().cloned().unwrap_or_default() {
            let price = match change["price"].as_str() {
                Some(price_id) => Some(
                    stripe
                        .price(price_id)
                        .ok_or_else(|| missing("price", price_id))?,
                ),
                None => None,
            };
            let items = subscription["items"]["data"]
                .as_array_mut()
                .ok_or_else(|| required("items"))?;
            match (change["id"].as_str(), price) {
                (Some(item_id), price) => {
                    let Some(index) = items.iter().position(|i| i["id"] == item_id) else {
                        return Err(missing("subscription_item", item_id));
                    };
                    if change["deleted"] == "true" {
                        items.remove(index);
                    } else if let Some(price) = price {
                        items[index]["price"] = price;
                    }
                }
                (None, Some(price)) => {
                    let item = stripe.item(&id, price);
                    if let Some(items) = subscription["items"]["data"].as_array_mut() {
                        items.push(item);
                    }
                }
                (None, None) => return Err(required("items[][price]")),
            }
        }
        if let Some(flag) = form["cancel_at_period_end"].as_str() {
            subscription["cancel_at_period_end"] = json!(flag == "true");
        }
        if form.get("metadata").is_some() {
            subscription["metadata"] = metadata(&form);
        }
        let subscription = stripe.store(subscription);
        stripe.emit(
            "customer.subscription.updated",
            with_discounts(subscription.clone(), &[], ""),
        );
        Ok(with_discounts(subscription, &expand_list(&form), ""))
    });
    // Stripe sends the event after answering.
    let state = state.clone();
    tokio::spawn(async move { flush(&state).await });
    response
}

/// `DELETE /v1/subscriptions/{id}`: cancels the subscription at once. Stripe answers with
/// the canceled subscription, sends `customer.subscription.deleted`, and refuses to cancel
/// one that has already ended. This server bills no final invoice: it keeps what
/// `invoice_now` and `prorate` asked for in the subscription's `test_cancel_options`, for
/// tests to read.
async fn cancel_subscription(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> Response {
    let form = decode_form(&body);
    let response = {
        let mut stripe = lock(&state);
        stripe
            .requests
            .push(("DELETE".into(), "/v1/subscriptions/{id}".into()));
        match stripe.get(&id) {
            Some(subscription) if subscription["object"] == "subscription" => {
                if subscription["status"] == "canceled"
                    || subscription["status"] == "incomplete_expired"
                {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        None,
                        &format!("A canceled subscription can't be canceled again: '{id}'"),
                        None,
                    );
                }
                let mut subscription = stripe.end(
                    subscription,
                    "cancellation_requested",
                    form["cancellation_details"]["comment"].as_str(),
                );
                subscription["test_cancel_options"] = json!({
                    "invoice_now": form["invoice_now"] == "true",
                    "prorate": form["prorate"] == "true",
                });
                let subscription = stripe.store(subscription);
                stripe.emit("customer.subscription.deleted", subscription.clone());
                axum::Json(with_discounts(subscription, &expand_list(&form), "")).into_response()
            }
            _ => missing("subscription", &id),
        }
    };
    // Stripe sends the event after answering.
    let state = state.clone();
    tokio::spawn(async move { flush(&state).await });
    response
}

async fn retrieve_invoice(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let mut stripe = lock(&state);
    stripe
        .requests
        .push(("GET".into(), "/v1/invoices/{id}".into()));
    match stripe.get(&id) {
        Some(invoice) if invoice["object"] == "invoice" => axum::Json(invoice).into_response(),
        _ => missing("invoice", &id),
    }
}

async fn preview_invoice(State(state): State<Shared>, body: String) -> Response {
    let form = decode_form(&body);
    let mut stripe = lock(&state);
    stripe
        .requests
        .push(("POST".into(), "/v1/invoices/create_preview".into()));
    let Some(id) = form["subscription"].as_str() else {
        return required("subscription");
    };
    let Some(subscription) = stripe.get(id) else {
        return missing("subscription", id);
    };
    let mut invoice = stripe.invoice(&subscription, "draft", 0);
    invoice["id"] = Value::Null;
    axum::Json(invoice).into_response()
}

async fn create_meter_event(State(state): State<Shared>, body: String) -> Response {
    let form = decode_form(&body);
    let mut stripe = lock(&state);
    stripe
        .requests
        .push(("POST".into(), "/v1/billing/meter_events".into()));
    let Some(name) = form["event_name"].as_str() else {
        return required("event_name");
    };
    if form["payload"]["stripe_customer_id"].is_null() {
        return required("payload[stripe_customer_id]");
    }
    let identifier = match form["identifier"].as_str() {
        Some(id) => id.to_owned(),
        None => stripe.id("mev"),
    };
    let event = stripe.object(
        "billing.meter_event",
        json!({ "event_name": name, "identifier": identifier, "payload": form["payload"],
                "timestamp": form["timestamp"].as_str().and_then(|t| t.parse::<i64>().ok()).unwrap_or(now()) }),
    );
    // Stripe counts an identifier once.
    stripe
        .meter_events
        .entry(identifier)
        .or_insert(event.clone());
    if stripe.lose_meter_answers > 0 {
        stripe.lose_meter_answers -= 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            "The answer was lost on its way back (test server).",
            None,
        );
    }
    axum::Json(event).into_response()
}

async fn list_meters(State(state): State<Shared>) -> Response {
    let mut stripe = lock(&state);
    stripe
        .requests
        .push(("GET".into(), "/v1/billing/meters".into()));
    let data: Vec<Value> = stripe
        .objects
        .values()
        .filter(|o| o["object"] == "billing.meter" && o["status"] == "active")
        .cloned()
        .collect();
    axum::Json(
        json!({ "object": "list", "data": data, "has_more": false, "url": "/v1/billing/meters" }),
    )
    .into_response()
}

async fn create_meter(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let form = decode_form(&body);
    idempotent(
        &state,
        &headers,
        &Method::POST,
        "/v1/billing/meters",
        |stripe| {
            let event_name = form["event_name"]
                .as_str()
                .ok_or_else(|| required("event_name"))?;
            let display_name = form["display_name"]
                .as_str()
                .ok_or_else(|| required("display_name"))?;
            let formula = form["default_aggregation"]["formula"]
                .as_str()
                .ok_or_else(|| required("default_aggregation[formula]"))?;
            let taken = stripe.objects.values().any(|o| {
                o["object"] == "billing.meter"
                    && o["event_name"] == event_name
                    && o["status"] == "active"
            });
            if taken {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    None,
                    &format!("An active meter with event_name '{event_name}' already exists."),
                    Some("event_name"),
                ));
            }
            let id = stripe.id("mtr");
            let meter = stripe.object(
            "billing.meter",
            json!({
                "id": id, "event_name": event_name, "display_name": display_name, "status": "active",
                "default_aggregation": { "formula": formula },
                "customer_mapping": { "event_payload_key": form["customer_mapping"]["event_payload_key"], "type": "by_id" },
                "value_settings": { "event_payload_key": form["value_settings"]["event_payload_key"] },
            }),
        );
            Ok(stripe.store(meter))
        },
    )
}

fn complete_checkout(state: &Shared, session_id: &str) -> Option<String> {
    let mut stripe = lock(state);
    let mut session = stripe.get(session_id)?;
    if session["status"] != "open" {
        return session["subscription"].as_str().map(str::to_owned);
    }
    let customer = session["customer"].as_str()?.to_owned();
    let prices: Vec<Value> = session["line_items_prices"]
        .as_array()?
        .iter()
        .filter_map(|p| p.as_str().and_then(|p| stripe.price(p)))
        .collect();
    let metadata = session["subscription_metadata"].clone();
    let metadata = if metadata.is_object() {
        metadata
    } else {
        json!({})
    };
    let subscription = stripe.subscription(&customer, prices, metadata);
    let subscription_id = subscription["id"].as_str()?.to_owned();
    let invoice = stripe.invoice(&subscription, "paid", 1);
    let subscription = stripe.store(subscription);
    let invoice = stripe.store(invoice);
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["subscription"] = json!(subscription_id);
    let session = stripe.store(session);
    stripe.emit("checkout.session.completed", session);
    stripe.emit("customer.subscription.created", subscription);
    stripe.emit("invoice.paid", invoice);
    Some(subscription_id)
}

async fn checkout_page(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let stripe = lock(&state);
    let Some(session) = stripe.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>This checkout session does not exist</h1>"),
        )
            .into_response();
    };
    let price = session["line_items_price"]
        .as_str()
        .and_then(|p| stripe.price(p))
        .unwrap_or(json!({}));
    let product = price["product"]
        .as_str()
        .and_then(|p| stripe.get(p))
        .unwrap_or(json!({}));
    let amount = price["unit_amount"].as_i64().unwrap_or(0);
    let every = price["recurring"]["interval"].as_str().unwrap_or("month");
    let cancel = session["cancel_url"].as_str().unwrap_or("/");
    let name = product["name"].as_str().unwrap_or("Subscription");
    let status = session["status"].as_str().unwrap_or("open");
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Checkout (Stripe test server)</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:4rem auto;color:#1a1f36}}
.box{{border:1px solid #e3e8ee;border-radius:8px;padding:1.5rem}}
button{{background:#635bff;color:#fff;border:0;border-radius:6px;padding:.75rem 1.5rem;font-size:1rem;width:100%}}
.amount{{font-size:2rem;font-weight:600}}</style></head>
<body><p>Stripe test server: no card is charged.</p><div class="box">
<p>Subscribe to <strong id="product">{name}</strong></p>
<p class="amount" id="amount">${}.{:02} <small>per {every}</small></p>
<p>Session <code>{id}</code> ({status})</p>
<form method="post" action="/checkout/{id}/pay"><button id="pay" type="submit">Pay</button></form>
<p><a id="cancel" href="{cancel}">Cancel and go back</a></p></div></body></html>"#,
        amount / 100,
        amount % 100,
    ))
    .into_response()
}

async fn pay(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let success = lock(&state)
        .get(&id)
        .and_then(|s| s["success_url"].as_str().map(str::to_owned));
    let Some(success) = success else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>This checkout session does not exist</h1>"),
        )
            .into_response();
    };
    complete_checkout(&state, &id);
    // Stripe redirects the customer and sends the webhooks on its own schedule.
    let state = state.clone();
    tokio::spawn(async move { flush(&state).await });
    Redirect::to(&success.replace("{CHECKOUT_SESSION_ID}", &id)).into_response()
}

async fn portal_page(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let stripe = lock(&state);
    let Some(session) = stripe.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>No such portal session</h1>"),
        )
            .into_response();
    };
    let back = session["return_url"].as_str().unwrap_or("/");
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Billing portal (Stripe test server)</title></head>
<body><h1>Billing portal</h1><p>Customer <code>{}</code></p><p><a id="return" href="{back}">Return</a></p></body></html>"#,
        session["customer"].as_str().unwrap_or_default()
    ))
    .into_response()
}

async fn unknown(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        &format!("Unrecognized request URL ({method}: {}).", uri.path()),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_forms_decode_to_nested_json() {
        let form = decode_form(
            "mode=subscription&line_items%5B0%5D%5Bprice%5D=price_1&line_items%5B0%5D%5Bquantity%5D=1&metadata%5Bplan%5D=pro&lookup_keys[0]=a&lookup_keys[1]=b",
        );
        assert_eq!(form["mode"], "subscription");
        assert_eq!(form["line_items"][0]["price"], "price_1");
        assert_eq!(form["metadata"]["plan"], "pro");
        assert_eq!(form["lookup_keys"], json!(["a", "b"]));
    }
}
