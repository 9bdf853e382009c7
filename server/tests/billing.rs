//! Billing end to end below the browser: Slipway's real router and async-stripe client
//! against the Stripe-shaped test server, webhooks signed as Stripe signs them, a fresh
//! database per test. Events are handled by calling the worker's `process_pending` (the
//! worker itself only adds a timer), so each step is deterministic.

use std::time::Duration;

use platform::billing::stripe_api::StripeApi;
use platform::billing::{self, BillingSettings, CheckoutOutcome, Interval};
use platform::orgs::Membership;
use platform::plans::{Catalog, default_plans};
use platform::sites::{self, NewSite};
use platform::{Config, Platform};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use stripe_test_server::StripeTestServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[path = "../../platform/tests/support/mod.rs"]
mod owners;

const SECRET: &str = "whsec_slipway_test";

struct Env {
    stripe: StripeTestServer,
    platform: Platform,
    base: String,
    webhook: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Env {
    async fn start(pool: PgPool) -> Self {
        Self::with_grace(pool, Duration::from_secs(7 * 24 * 3600)).await
    }

    async fn with_grace(pool: PgPool, grace: Duration) -> Self {
        let stripe = StripeTestServer::start_default().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let api =
            StripeApi::new("sk_test_slipway", &stripe.url().parse().expect("url")).expect("client");
        let platform = Platform::new(
            pool,
            Catalog::new(default_plans()).expect("valid"),
            base.parse().expect("valid URL"),
        )
        .with_master_key(
            platform::secrets::MasterKey::parse(&platform::secrets::MasterKey::generate())
                .expect("key"),
        )
        .with_billing(BillingSettings {
            stripe: Some(api),
            webhook_secrets: vec![SecretString::from(SECRET)],
            grace_period: grace,
            ..BillingSettings::default()
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let served = platform.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            server::serve(&Config::default(), served, None, listener, shutdown)
                .await
                .expect("server runs");
        });
        let webhook = format!("{base}/api/webhooks/stripe");
        stripe.set_webhook(&webhook, &[SECRET]);
        billing::catalog::sync(&platform)
            .await
            .expect("stripe sync");
        Self {
            stripe,
            platform,
            base,
            webhook,
            client: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    /// What the billing worker does when an event arrives.
    async fn settle(&self) {
        billing::process_pending(&self.platform)
            .await
            .expect("events handled");
    }

    async fn owner(&self) -> Membership {
        owners::owner_on_plan(&self.platform, "free").await
    }

    /// Checkout, then the test server's "Pay": returns the subscription id.
    async fn subscribe(&self, owner: &Membership, plan: &str, interval: Interval) -> String {
        let CheckoutOutcome::Redirect(url) =
            billing::checkout(&self.platform, owner, plan, interval)
                .await
                .expect("checkout opens")
        else {
            panic!("a first checkout goes to Stripe");
        };
        let session = url.rsplit('/').next().expect("session id").to_owned();
        let subscription = self.stripe.pay_checkout(&session).await.expect("paid");
        self.settle().await;
        subscription
    }

    async fn plan_of(&self, owner: &Membership) -> String {
        sqlx::query_scalar("SELECT plan_id FROM organizations WHERE id = $1")
            .bind(owner.organization_id)
            .fetch_one(&self.platform.db)
            .await
            .expect("organization")
    }

    async fn create_site(
        &self,
        owner: &Membership,
        slug: &str,
    ) -> Result<sites::SiteSummary, platform::Error> {
        sites::create(
            &self.platform,
            owner,
            &NewSite {
                name: slug.to_owned(),
                slug: slug.to_owned(),
                template: String::new(),
            },
        )
        .await
    }

    /// Slug -> suspension reason, of the organization's live sites.
    async fn suspensions(&self, owner: &Membership) -> Vec<(String, Option<String>)> {
        sqlx::query_as(
            "SELECT slug, suspended_reason FROM sites
              WHERE organization_id = $1 AND desired_state <> 'deleted' ORDER BY created_at",
        )
        .bind(owner.organization_id)
        .fetch_all(&self.platform.db)
        .await
        .expect("sites")
    }

    /// Moves the subscription to the price with `lookup_key` directly in Stripe (as the
    /// portal or the Stripe dashboard would), not through Slipway.
    async fn change_in_stripe(&self, subscription: &str, lookup_key: &str, idempotency_key: &str) {
        let api = self.platform.billing.stripe.clone().expect("stripe");
        let current = api
            .retrieve_subscription(subscription)
            .await
            .expect("subscription");
        let price = api
            .price_by_lookup_key(lookup_key)
            .await
            .expect("price")
            .expect("exists");
        api.change_subscription_price(
            &current,
            &price.id,
            &[],
            Default::default(),
            idempotency_key,
        )
        .await
        .expect("changed in Stripe");
    }

    /// A dashboard page as `owner` sees it in a browser.
    async fn page_as(&self, owner: &Membership, path: &str) -> String {
        let token = platform::accounts::create_session(&self.platform, owner.user_id, None, None)
            .await
            .expect("session");
        self.client
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .header("cookie", format!("slipway_session={token}"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html")
    }

    /// The desired state of the organization's one site.
    async fn desired_state(&self, owner: &Membership) -> String {
        sqlx::query_scalar("SELECT desired_state FROM sites WHERE organization_id = $1")
            .bind(owner.organization_id)
            .fetch_one(&self.platform.db)
            .await
            .expect("site")
    }

    async fn audit_count(&self, owner: &Membership, action: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM audit_log WHERE organization_id = $1 AND action = $2",
        )
        .bind(owner.organization_id)
        .bind(action)
        .fetch_one(&self.platform.db)
        .await
        .expect("audit")
    }

    async fn mails_to_owner(&self, owner: &Membership, subject: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM mail_outbox o JOIN users u ON u.email = o.to_address
              WHERE u.id = $1 AND o.subject = $2",
        )
        .bind(owner.user_id)
        .bind(subject)
        .fetch_one(&self.platform.db)
        .await
        .expect("mail")
    }

    async fn post_webhook(&self, body: &str, signature: Option<String>) -> u16 {
        let mut request = self
            .client
            .post(&self.webhook)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        request
            .send()
            .await
            .expect("reaches slipway")
            .status()
            .as_u16()
    }

    async fn stored_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM stripe_events")
            .fetch_one(&self.platform.db)
            .await
            .expect("events")
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[sqlx::test(migrations = "../migrations")]
async fn stripe_sync_publishes_the_catalog_once(pool: PgPool) {
    let env = Env::start(pool).await;
    // `Env::start` synced once; a second run changes nothing.
    let again = billing::catalog::sync(&env.platform).await.expect("sync");
    assert!(
        again
            .iter()
            .all(|c| matches!(c, billing::catalog::Change::Unchanged(_))),
        "{again:?}"
    );
    assert_eq!(
        again.len(),
        3 * 3 + 3 + 3 * 2,
        "3 paid plans with a product and two prices each; 3 meters; Business's 3 usage-based prices per interval"
    );
    assert_eq!(env.stripe.calls("POST /v1/prices"), 6 + 6);
    assert_eq!(env.stripe.calls("POST /v1/products"), 3);
    assert_eq!(env.stripe.calls("POST /v1/billing/meters"), 3);
    let pro = env.stripe.object("slipway_pro").expect("product");
    assert_eq!(pro["name"], "Pro");
    // A usage-based price bills from its meter.
    let api = env.platform.billing.stripe.clone().expect("stripe");
    let bandwidth = api
        .price_by_lookup_key("slipway_business_bandwidth_monthly")
        .await
        .expect("price")
        .expect("exists");
    assert!(bandwidth.is_metered());
    assert_eq!(bandwidth.unit_amount, Some(8));
    let meters = api.list_meters().await.expect("meters");
    let meter = meters
        .iter()
        .find(|m| m.event_name == "slipway_bandwidth_gb")
        .expect("meter");
    assert_eq!(bandwidth.meter(), Some(meter.id.as_str()));
}

#[sqlx::test(migrations = "../migrations")]
async fn checkout_pays_activates_the_plan_and_a_double_click_opens_one_session(pool: PgPool) {
    let env = Env::start(pool).await;
    let owner = env.owner().await;
    let first = billing::checkout(&env.platform, &owner, "starter", Interval::Monthly)
        .await
        .expect("checkout");
    let second = billing::checkout(&env.platform, &owner, "starter", Interval::Monthly)
        .await
        .expect("checkout again");
    assert_eq!(first, second, "a double click reuses the open session");
    assert_eq!(env.stripe.calls("POST /v1/checkout/sessions"), 1);
    assert_eq!(env.stripe.calls("POST /v1/customers"), 1);

    let CheckoutOutcome::Redirect(url) = first else {
        panic!("to Stripe")
    };
    let session_id = url.rsplit('/').next().expect("id");
    let session = env.stripe.object(session_id).expect("session");
    assert_eq!(
        session["client_reference_id"],
        owner.organization_id.to_string()
    );
    assert_eq!(session["metadata"]["plan"], "starter");
    assert_eq!(session["metadata"]["interval"], "monthly");
    assert_eq!(session["mode"], "subscription");

    assert_eq!(env.plan_of(&owner).await, "free");
    let subscription = env.stripe.pay_checkout(session_id).await.expect("paid");
    env.settle().await;
    assert_eq!(env.plan_of(&owner).await, "starter");
    let overview = billing::overview(&env.platform, &owner)
        .await
        .expect("overview");
    assert_eq!(overview.status.as_deref(), Some("active"));
    assert_eq!(overview.interval, Some(Interval::Monthly));
    assert!(overview.current_period_end.is_some());
    assert_eq!(overview.upcoming_invoice_cents, Some(1500));
    assert_eq!(env.audit_count(&owner, "billing.plan_changed").await, 1);
    let portal = billing::portal(&env.platform, &owner)
        .await
        .expect("portal");
    assert!(
        portal.starts_with(&format!("{}portal/", env.stripe.url())),
        "{portal}"
    );

    // Buying again changes the subscription instead of adding one.
    let changed = billing::checkout(&env.platform, &owner, "pro", Interval::Yearly)
        .await
        .expect("change");
    assert_eq!(changed, CheckoutOutcome::Changed);
    env.settle().await;
    let customer = sqlx::query_scalar::<_, String>(
        "SELECT stripe_customer_id FROM billing_accounts WHERE organization_id = $1",
    )
    .bind(owner.organization_id)
    .fetch_one(&env.platform.db)
    .await
    .expect("account");
    let subscriptions = env.stripe.subscriptions_of(&customer);
    assert_eq!(subscriptions.len(), 1, "still one subscription");
    assert_eq!(subscriptions[0]["id"], subscription.as_str());
    assert_eq!(
        subscriptions[0]["items"]["data"][0]["price"]["lookup_key"],
        "slipway_pro_yearly"
    );
    assert_eq!(env.plan_of(&owner).await, "pro");
    let again = billing::checkout(&env.platform, &owner, "pro", Interval::Yearly).await;
    assert!(
        matches!(&again, Err(platform::Error::Conflict(m)) if m.contains("already on the Pro plan")),
        "{again:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn only_owners_start_checkouts_and_local_mode_never_calls_stripe(pool: PgPool) {
    let env = Env::start(pool.clone()).await;
    let owner = env.owner().await;
    let admin = Membership {
        role: platform::orgs::Role::Admin,
        ..owner
    };
    assert!(matches!(
        billing::checkout(&env.platform, &admin, "starter", Interval::Monthly).await,
        Err(platform::Error::Forbidden)
    ));
    assert!(matches!(
        billing::checkout(&env.platform, &owner, "free", Interval::Monthly).await,
        Err(platform::Error::Invalid { field: "plan", .. })
    ));
    assert!(matches!(
        billing::portal(&env.platform, &admin).await,
        Err(platform::Error::Forbidden)
    ));
    let early = billing::portal(&env.platform, &owner).await;
    assert!(
        matches!(&early, Err(platform::Error::Conflict(m)) if m.contains("choose a plan first")),
        "{early:?}"
    );
    // Plans follow Stripe when it is configured.
    let slug: String = sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
        .bind(owner.organization_id)
        .fetch_one(&pool)
        .await
        .expect("slug");
    assert!(matches!(
        billing::set_plan(&env.platform, &slug, "pro").await,
        Err(platform::Error::Conflict(_))
    ));

    let local = Platform::new(
        pool,
        Catalog::new(default_plans()).expect("valid"),
        "http://127.0.0.1:3000".parse().expect("url"),
    );
    let calls_before = env.stripe.calls("POST /v1/checkout/sessions");
    let refused = billing::checkout(&local, &owner, "starter", Interval::Monthly).await;
    assert!(
        matches!(&refused, Err(platform::Error::Conflict(m)) if m.contains("local billing mode")),
        "{refused:?}"
    );
    assert!(matches!(
        billing::portal(&local, &owner).await,
        Err(platform::Error::Conflict(_))
    ));
    billing::set_plan(&local, &slug, "pro")
        .await
        .expect("operator sets the plan");
    assert_eq!(env.plan_of(&owner).await, "pro");
    assert_eq!(env.stripe.calls("POST /v1/checkout/sessions"), calls_before);
    let unknown = billing::set_plan(&local, &slug, "platinum").await;
    assert!(
        matches!(&unknown, Err(platform::Error::Invalid { message, .. }) if message.contains("free, starter, pro, business")),
        "{unknown:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn webhook_signatures_are_checked_before_anything_happens(pool: PgPool) {
    let env = Env::start(pool).await;
    let event = json!({
        "id": "evt_signature_test", "object": "event", "type": "customer.created",
        "created": now(), "data": { "object": { "id": "cus_x", "object": "customer" } },
    })
    .to_string();
    let signed = |secrets: &[&str], at: i64| {
        let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        stripe_test_server::sign(event.as_bytes(), at, &secrets)
    };

    assert_eq!(env.post_webhook(&event, None).await, 400, "no signature");
    assert_eq!(
        env.post_webhook(&event, Some(signed(&["whsec_wrong"], now())))
            .await,
        400,
        "wrong secret"
    );
    assert_eq!(
        env.post_webhook(&event, Some(signed(&[SECRET], now() - 301)))
            .await,
        400,
        "older than the 300 s tolerance"
    );
    let tampered = event.replace("customer.created", "customer.deleted");
    assert_eq!(
        env.post_webhook(&tampered, Some(signed(&[SECRET], now())))
            .await,
        400,
        "tampered body"
    );
    assert_eq!(
        env.stored_events().await,
        0,
        "nothing unverified was stored"
    );

    // Two v1 signatures (a secret being rolled): either may be Slipway's.
    assert_eq!(
        env.post_webhook(&event, Some(signed(&["whsec_old_one", SECRET], now())))
            .await,
        200
    );
    assert_eq!(env.stored_events().await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn duplicate_events_are_handled_once_and_unknown_types_are_ignored(pool: PgPool) {
    let env = Env::start(pool).await;
    let owner = env.owner().await;
    env.subscribe(&owner, "starter", Interval::Monthly).await;
    let changes = env.audit_count(&owner, "billing.plan_changed").await;

    // Stripe delivers the same event again (a retry after a timeout, say).
    let deliveries = env.stripe.deliveries();
    let created = deliveries
        .iter()
        .find(|d| d.kind == "customer.subscription.created")
        .expect("delivered");
    assert_eq!(created.status, 200);
    let subscription_id: String = sqlx::query_scalar(
        "SELECT stripe_subscription_id FROM billing_accounts WHERE organization_id = $1",
    )
    .bind(owner.organization_id)
    .fetch_one(&env.platform.db)
    .await
    .expect("subscription");
    let payload: Value = sqlx::query_scalar("SELECT payload FROM stripe_events WHERE id = $1")
        .bind(&created.event_id)
        .fetch_one(&env.platform.db)
        .await
        .expect("stored");
    assert_eq!(
        env.stripe.deliver(&payload).await,
        200,
        "a duplicate still gets a 2xx"
    );
    let processed = billing::process_pending(&env.platform)
        .await
        .expect("pending");
    assert_eq!(processed, 0, "the duplicate was not queued again");
    assert_eq!(
        env.audit_count(&owner, "billing.plan_changed").await,
        changes
    );

    // An event type Slipway does not use: 200, stored, handled as nothing.
    let before = env.stored_events().await;
    env.stripe
        .send_event(
            "customer.tax_id.created",
            json!({ "id": "txi_1", "object": "tax_id" }),
        )
        .await;
    assert_eq!(
        env.stripe.deliveries().last().expect("delivered").status,
        200
    );
    assert_eq!(env.stored_events().await, before + 1);
    assert_eq!(
        billing::process_pending(&env.platform)
            .await
            .expect("pending"),
        1
    );
    assert_eq!(env.plan_of(&owner).await, "starter");
    assert!(!subscription_id.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn subscription_updated_before_created_ends_in_the_latest_state(pool: PgPool) {
    let env = Env::start(pool).await;
    let owner = env.owner().await;
    let CheckoutOutcome::Redirect(url) =
        billing::checkout(&env.platform, &owner, "starter", Interval::Monthly)
            .await
            .expect("checkout")
    else {
        panic!("to Stripe")
    };
    env.stripe.hold_deliveries(true);
    let session = url.rsplit('/').next().expect("id");
    let subscription = env.stripe.pay_checkout(session).await.expect("paid");
    // Then the customer upgrades in the portal before any event got through.
    env.change_in_stripe(&subscription, "slipway_pro_monthly", "portal-upgrade")
        .await;
    let mut events = env.stripe.take_held();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.paid",
            "customer.subscription.updated"
        ]
    );
    // Only the subscription's own events, newest first: `updated` (pro), then `created`
    // (starter), each handled as it arrives.
    events.retain(|e| {
        e["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("customer.subscription."))
    });
    events.reverse();
    for event in &events {
        assert_eq!(env.stripe.deliver(event).await, 200);
        env.settle().await;
    }
    assert_eq!(
        env.plan_of(&owner).await,
        "pro",
        "the older event did not win"
    );
    let overview = billing::overview(&env.platform, &owner)
        .await
        .expect("overview");
    assert_eq!(overview.status.as_deref(), Some("active"));
}

#[sqlx::test(migrations = "../migrations")]
async fn three_failed_payments_suspend_every_site_and_a_payment_resumes_them(pool: PgPool) {
    let env = Env::start(pool).await;
    let owner = env.owner().await;
    let subscription = env.subscribe(&owner, "pro", Interval::Monthly).await;
    env.create_site(&owner, "dunning-one").await.expect("site");
    env.create_site(&owner, "dunning-two").await.expect("site");
    // An operator's own suspension is not billing's to lift.
    let operator_held = env.create_site(&owner, "dunning-held").await.expect("site");
    sites::suspend(&env.platform, operator_held.id, "abuse report #12")
        .await
        .expect("suspend");

    for attempt in 1..=2 {
        env.stripe.fail_payment(&subscription).await;
        env.settle().await;
        assert_eq!(
            env.mails_to_owner(&owner, "Your payment failed").await,
            attempt
        );
        assert!(
            env.suspensions(&owner)
                .await
                .iter()
                .filter(|(_, r)| r.is_some())
                .count()
                == 1,
            "still serving after {attempt} failures"
        );
        let overview = billing::overview(&env.platform, &owner)
            .await
            .expect("overview");
        assert!(overview.past_due());
    }
    env.stripe.fail_payment(&subscription).await;
    env.settle().await;
    assert_eq!(env.mails_to_owner(&owner, "Your payment failed").await, 3);
    let suspended = env.suspensions(&owner).await;
    assert_eq!(
        suspended,
        [
            (
                "dunning-one".to_owned(),
                Some(billing::SUSPENDED_PAYMENT.to_owned())
            ),
            (
                "dunning-two".to_owned(),
                Some(billing::SUSPENDED_PAYMENT.to_owned())
            ),
            (
                "dunning-held".to_owned(),
                Some("abuse report #12".to_owned())
            ),
        ]
    );
    assert_eq!(env.audit_count(&owner, "billing.payment_failed").await, 3);

    env.stripe
        .pay_open_invoice(&subscription)
        .await
        .expect("open invoice");
    env.settle().await;
    assert_eq!(
        env.suspensions(&owner).await,
        [
            ("dunning-one".to_owned(), None),
            ("dunning-two".to_owned(), None),
            (
                "dunning-held".to_owned(),
                Some("abuse report #12".to_owned())
            ),
        ]
    );
    let overview = billing::overview(&env.platform, &owner)
        .await
        .expect("overview");
    assert!(!overview.past_due());
    assert_eq!(
        env.audit_count(&owner, "billing.payment_recovered").await,
        1
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_late_failure_after_the_payment_changes_nothing(pool: PgPool) {
    let env = Env::start(pool).await;
    let owner = env.owner().await;
    let subscription = env.subscribe(&owner, "starter", Interval::Monthly).await;
    env.create_site(&owner, "late-failure").await.expect("site");
    env.stripe.hold_deliveries(true);
    for _ in 0..3 {
        env.stripe.fail_payment(&subscription).await;
    }
    env.stripe
        .pay_open_invoice(&subscription)
        .await
        .expect("paid");
    // Every failure arrives after the invoice was paid.
    for event in env.stripe.take_held() {
        env.stripe.deliver(&event).await;
    }
    env.settle().await;
    assert_eq!(
        env.suspensions(&owner).await,
        [("late-failure".to_owned(), None)]
    );
    assert_eq!(env.mails_to_owner(&owner, "Your payment failed").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_downgrade_from_stripe_suspends_the_newest_sites_over_the_limit(pool: PgPool) {
    let env = Env::start(pool).await;
    let owner = env.owner().await;
    let subscription = env.subscribe(&owner, "pro", Interval::Monthly).await;
    for slug in ["oldest-site", "middle-site", "newest-site"] {
        env.create_site(&owner, slug).await.expect("site");
    }
    // The billing page explains why the smaller plan cannot be chosen...
    let html = env.page_as(&owner, "/dashboard/billing").await;
    assert!(
        html.contains("Holds 1 site; you have 3."),
        "explanation missing"
    );
    let button = |key: &str| {
        let at = html
            .find(&format!(r#"data-checkout="{key}""#))
            .expect("button");
        let start = html[..at].rfind("<button").expect("button tag");
        html[start..at].contains("disabled")
    };
    assert!(
        button("starter-monthly") && button("starter-yearly"),
        "starter is disabled"
    );
    assert!(!button("business-monthly"), "a larger plan is not");
    // ...and Slipway refuses the downgrade itself...
    let refused = billing::checkout(&env.platform, &owner, "starter", Interval::Monthly).await;
    assert!(
        matches!(&refused, Err(platform::Error::LimitReached(m)) if m.contains("allows 1 site") && m.contains("has 3")),
        "{refused:?}"
    );
    // ...but when it happens in Stripe anyway, the newest sites over the limit stop.
    env.change_in_stripe(&subscription, "slipway_starter_monthly", "downgrade")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.settle().await;
    assert_eq!(env.plan_of(&owner).await, "starter");
    let over = Some(billing::SUSPENDED_OVER_LIMIT.to_owned());
    assert_eq!(
        env.suspensions(&owner).await,
        [
            ("oldest-site".to_owned(), None),
            ("middle-site".to_owned(), over.clone()),
            ("newest-site".to_owned(), over),
        ]
    );
    // Creating another is refused with the way out.
    let more = env.create_site(&owner, "one-more").await;
    assert!(
        matches!(&more, Err(platform::Error::LimitReached(m)) if m.contains("Upgrade")),
        "{more:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn cancellation_keeps_sites_for_the_grace_period_then_deletes_them(pool: PgPool) {
    let env = Env::with_grace(pool, Duration::from_secs(2)).await;
    let owner = env.owner().await;
    let subscription = env.subscribe(&owner, "starter", Interval::Monthly).await;
    env.create_site(&owner, "graceful").await.expect("site");

    env.stripe.cancel(&subscription).await;
    env.settle().await;
    assert_eq!(env.plan_of(&owner).await, "free");
    assert_eq!(
        env.suspensions(&owner).await,
        [(
            "graceful".to_owned(),
            Some(billing::SUSPENDED_ENDED.to_owned())
        )],
        "paused, data kept"
    );
    assert_eq!(
        env.mails_to_owner(&owner, "Your subscription has ended")
            .await,
        1
    );
    let overview = billing::overview(&env.platform, &owner)
        .await
        .expect("overview");
    assert!(overview.grace_ends_at.is_some());
    assert_eq!(
        billing::expire_grace_periods(&env.platform)
            .await
            .expect("expire"),
        0,
        "not yet"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        billing::expire_grace_periods(&env.platform)
            .await
            .expect("expire"),
        1
    );
    let desired = env.desired_state(&owner).await;
    assert_eq!(desired, "deleted");
    assert_eq!(
        env.audit_count(&owner, "billing.grace_period_over").await,
        1
    );
    assert_eq!(
        billing::expire_grace_periods(&env.platform)
            .await
            .expect("again"),
        0
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn resubscribing_within_the_grace_period_keeps_the_sites(pool: PgPool) {
    let env = Env::with_grace(pool, Duration::from_secs(2)).await;
    let owner = env.owner().await;
    let subscription = env.subscribe(&owner, "starter", Interval::Monthly).await;
    env.create_site(&owner, "comeback").await.expect("site");
    env.stripe.cancel(&subscription).await;
    env.settle().await;
    assert_eq!(
        env.suspensions(&owner).await[0].1.as_deref(),
        Some(billing::SUSPENDED_ENDED)
    );

    env.subscribe(&owner, "starter", Interval::Yearly).await;
    assert_eq!(env.plan_of(&owner).await, "starter");
    assert_eq!(
        env.suspensions(&owner).await,
        [("comeback".to_owned(), None)]
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        billing::expire_grace_periods(&env.platform)
            .await
            .expect("expire"),
        0
    );
    let desired = env.desired_state(&owner).await;
    assert_eq!(desired, "running");
}

#[sqlx::test(migrations = "../migrations")]
async fn overage_meter_events_are_never_double_reported_across_a_retry(pool: PgPool) {
    let env = Env::start(pool).await;
    let owner = env.owner().await;
    let subscription = env.subscribe(&owner, "business", Interval::Monthly).await;
    // Business subscriptions carry the plan and a usage-based item per metric.
    let keys = |id: &str| -> Vec<String> {
        let mut keys: Vec<String> = env.stripe.object(id).expect("subscription")["items"]["data"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                i["price"]["lookup_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&subscription),
        [
            "slipway_business_bandwidth_monthly",
            "slipway_business_builds_monthly",
            "slipway_business_monthly",
            "slipway_business_storage_monthly"
        ]
    );
    let site = env
        .create_site(&owner, "heavy-traffic")
        .await
        .expect("site");
    let period = billing::meter::previous_month(chrono::Utc::now().date_naive());
    // 1000 GiB are included per site; it used 1002.5 GiB -> 3 GiB over (a started GiB counts).
    let used: i64 = 1000 * (1 << 30) + 2 * (1 << 30) + (1 << 29);
    sqlx::query(
        "INSERT INTO usage_records (site_id, organization_id, period, metric, quantity)
         VALUES ($1, $2, $3, 'bandwidth', $4)",
    )
    .bind(site.id)
    .bind(owner.organization_id)
    .bind(period)
    .bind(used)
    .execute(&env.platform.db)
    .await
    .expect("usage");

    // The first answer is lost after Stripe recorded the event.
    env.stripe.lose_meter_answers(1);
    assert_eq!(
        billing::meter::report_overages(&env.platform, period)
            .await
            .expect("report"),
        0
    );
    assert_eq!(
        env.stripe.meter_events().len(),
        1,
        "Stripe has it, Slipway does not know"
    );
    // The retry sends the same identifier; Stripe counts it once.
    assert_eq!(
        billing::meter::report_overages(&env.platform, period)
            .await
            .expect("retry"),
        1
    );
    assert_eq!(
        billing::meter::report_overages(&env.platform, period)
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        env.stripe.calls("POST /v1/billing/meter_events"),
        2,
        "sent twice, never a third time"
    );
    let events = env.stripe.meter_events();
    assert_eq!(events.len(), 1);
    let event = events.values().next().expect("event");
    assert_eq!(event["event_name"], "slipway_bandwidth_gb");
    assert_eq!(event["payload"]["value"], "3");
    assert_eq!(
        event["identifier"],
        billing::meter::identifier(owner.organization_id, "bandwidth", period)
    );

    // Plans without overages report nothing.
    let starter = env.owner().await;
    env.subscribe(&starter, "starter", Interval::Monthly).await;
    assert_eq!(
        billing::meter::report_overages(&env.platform, period)
            .await
            .expect("report"),
        0
    );
    assert_eq!(env.stripe.meter_events().len(), 1);

    // Leaving Business removes the usage-based items; the plan item changes price.
    billing::checkout(&env.platform, &owner, "pro", Interval::Monthly)
        .await
        .expect("change");
    assert_eq!(keys(&subscription), ["slipway_pro_monthly"]);
}
