//! Billing end to end below the browser: Slipway's real router and async-stripe client
//! against the Stripe-shaped test server, webhooks signed as Stripe signs them, a fresh
//! database per test. Webhook events become jobs; a test runs the due jobs itself
//! (`settle`, what the worker does when woken), so each step is deterministic, and moves
//! the queue's clock by hand where hours pass.

use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::billing::{self, BillingSettings, CheckoutOutcome, Interval};
use platform::infra::jobs::{Clock, JobKind};
use platform::infra::stripe::{StripeApi, SubscriptionStatus};
use platform::sites::{self, NewSite};
use platform::tenancy::Membership;
use platform::{Platform, workers};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use stripe_test_server::StripeTestServer;
use test_support::TestApp;

const SECRET: &str = "whsec_slipway_test";

struct Env {
    stripe: StripeTestServer,
    platform: Platform,
    app: TestApp,
    webhook: String,
    client: reqwest::Client,
}

impl Env {
    async fn start(pool: PgPool) -> Self {
        Self::with_grace(pool, Duration::from_secs(7 * 24 * 3600)).await
    }

    async fn with_grace(pool: PgPool, grace: Duration) -> Self {
        let stripe = StripeTestServer::start_default().await;
        let (listener, base) = test_support::listen().await;
        let api =
            StripeApi::new("sk_test_slipway", &stripe.url().parse().expect("url")).expect("client");
        let platform = test_support::platform_at(pool, &base).with_billing(BillingSettings {
            stripe: Some(api),
            webhook_secrets: vec![SecretString::from(SECRET)],
            grace_period: grace,
            ..BillingSettings::default()
        });
        let app = test_support::spawn_app_on(listener, base.clone(), platform.clone());
        let webhook = format!("{base}/api/webhooks/stripe");
        stripe.set_webhook(&webhook, &[SECRET]);
        billing::catalog_sync::sync(&platform)
            .await
            .expect("stripe sync");
        Self {
            stripe,
            platform,
            app,
            webhook,
            client: test_support::client().build().expect("a client"),
        }
    }

    /// What the job worker does when woken: runs every due job. Returns how many ran.
    async fn settle(&self) -> usize {
        workers::run_due(&self.platform)
            .await
            .expect("jobs handled")
    }

    async fn owner(&self) -> Membership {
        test_support::owner_on_plan(&self.platform, "free").await
    }

    /// Opens a checkout: returns its session id.
    async fn open_checkout(&self, owner: &Membership, plan: &str, interval: Interval) -> String {
        let CheckoutOutcome::Redirect(url) =
            billing::checkout(&self.platform, owner, plan, interval)
                .await
                .expect("checkout opens")
        else {
            panic!("a first checkout goes to Stripe");
        };
        url.rsplit('/').next().expect("session id").to_owned()
    }

    /// Checkout, then the test server's "Pay": returns the subscription id.
    async fn subscribe(&self, owner: &Membership, plan: &str, interval: Interval) -> String {
        let session = self.open_checkout(owner, plan, interval).await;
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
        self.app.page_as(owner, path).await.1
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
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'stripe_event'")
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
    let again = billing::catalog_sync::sync(&env.platform)
        .await
        .expect("sync");
    assert!(
        again
            .iter()
            .all(|c| matches!(c, billing::catalog_sync::Change::Unchanged(_))),
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
    assert_eq!(overview.status, Some(SubscriptionStatus::Active));
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
        role: platform::tenancy::Role::Admin,
        ..owner
    };
    assert!(matches!(
        billing::checkout(&env.platform, &admin, "starter", Interval::Monthly).await,
        Err(platform::Error::Forbidden)
    ));
    assert!(matches!(
        billing::checkout(&env.platform, &owner, "free", Interval::Monthly).await,
        Err(platform::Error::Invalid { ref field, .. }) if field == "plan"
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

    let local = test_support::platform_at(pool, "http://127.0.0.1:3000");
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

    // Timestamps at the ends of i64 are refused like any stale one (no overflow).
    for extreme in [i64::MIN, i64::MAX] {
        let header = signed(&[SECRET], extreme);
        assert_eq!(
            env.post_webhook(&event, Some(header)).await,
            400,
            "t={extreme}"
        );
    }

    // Two v1 signatures (a secret being rolled): either may be Slipway's.
    assert_eq!(
        env.post_webhook(&event, Some(signed(&["whsec_old_one", SECRET], now())))
            .await,
        200
    );
    assert_eq!(env.stored_events().await, 1);

    // A correctly signed event with a NUL in a string is stored (once), not answered 5xx
    // on every delivery for Stripe to retry for days.
    let with_nul = r#"{"id":"evt_nul","object":"event","type":"customer.updated","created":1,
        "data":{"object":{"id":"cus_y","object":"customer","name":"Ada\u0000Lovelace"}}}"#;
    for _ in 0..2 {
        let signature = stripe_test_server::sign(with_nul.as_bytes(), now(), &[SECRET.to_owned()]);
        assert_eq!(env.post_webhook(with_nul, Some(signature)).await, 200);
    }
    assert_eq!(env.stored_events().await, 2);
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
    let payload: Value = sqlx::query_scalar("SELECT payload FROM jobs WHERE unique_key = $1")
        .bind(format!("stripe_event:{}", created.event_id))
        .fetch_one(&env.platform.db)
        .await
        .expect("stored");
    assert_eq!(
        env.stripe.deliver(&payload).await,
        200,
        "a duplicate still gets a 2xx"
    );
    assert_eq!(env.settle().await, 0, "the duplicate was not queued again");
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
    assert_eq!(env.settle().await, 1);
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
    assert_eq!(overview.status, Some(SubscriptionStatus::Active));
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
    // The banner says so while it lasts.
    let open = platform::incidents::open_for(&env.platform, &owner)
        .await
        .unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        open[0].kind,
        platform::incidents::IncidentKind::SubscriptionEnding
    );
    env.settle().await;
    assert_eq!(env.desired_state(&owner).await, "running", "not yet");

    // The grace period ends with its job, queued for that moment.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(env.settle().await, 1);
    let desired = env.desired_state(&owner).await;
    assert_eq!(desired, "deleted");
    assert_eq!(
        env.audit_count(&owner, "billing.grace_period_over").await,
        1
    );
    assert!(
        platform::incidents::open_for(&env.platform, &owner)
            .await
            .unwrap()
            .is_empty(),
        "over when the grace period is"
    );
    assert_eq!(env.settle().await, 0, "once");
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
    assert!(
        platform::incidents::open_for(&env.platform, &owner)
            .await
            .unwrap()
            .is_empty(),
        "subscribing again ends the incident"
    );
    assert_eq!(
        env.suspensions(&owner).await,
        [("comeback".to_owned(), None)]
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    env.settle().await;
    let desired = env.desired_state(&owner).await;
    assert_eq!(desired, "running");
    assert_eq!(
        env.audit_count(&owner, "billing.grace_period_over").await,
        0
    );
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
    let period = billing::meters::previous_month(chrono::Utc::now().date_naive());
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

    // The month is measured and its report stored, with the job that sends it.
    assert_eq!(
        billing::meters::report_overages(&env.platform, period)
            .await
            .expect("report"),
        1
    );
    // The first answer is lost after Stripe recorded the event.
    env.stripe.lose_meter_answers(1);
    let clock = Clock::manual(Utc::now() + chrono::Duration::seconds(1));
    let later = env.platform.clone().with_clock(clock.clone());
    assert_eq!(workers::run_due(&later).await.expect("run"), 1);
    assert_eq!(
        env.stripe.meter_events().len(),
        1,
        "Stripe has it, Slipway does not know"
    );
    // The queue retries with the same identifier; Stripe counts it once.
    clock.set(
        later
            .jobs
            .next_due()
            .await
            .expect("next")
            .expect("retry queued"),
    );
    assert_eq!(workers::run_due(&later).await.expect("retry"), 1);
    assert_eq!(
        billing::meters::report_overages(&env.platform, period)
            .await
            .expect("again"),
        0,
        "a month is measured once"
    );
    assert_eq!(workers::run_due(&later).await.expect("nothing left"), 0);
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
        billing::meters::identifier(owner.organization_id, "bandwidth", period)
    );

    // Plans without overages report nothing.
    let starter = env.owner().await;
    env.subscribe(&starter, "starter", Interval::Monthly).await;
    assert_eq!(
        billing::meters::report_overages(&env.platform, period)
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

/// The newest job's id (0 when there is none).
async fn last_job(platform: &Platform) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM jobs")
        .fetch_one(&platform.db)
        .await
        .expect("jobs")
}

/// (kind, [(started_at, outcome)]) of every Stripe event job after job `after`.
async fn stripe_event_attempts(
    platform: &Platform,
    after: i64,
) -> Vec<(String, Vec<(DateTime<Utc>, String)>)> {
    let jobs: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT id, payload FROM jobs WHERE kind = 'stripe_event' AND id > $1 ORDER BY id",
    )
    .bind(after)
    .fetch_all(&platform.db)
    .await
    .expect("jobs");
    let mut all = Vec::new();
    for (id, payload) in jobs {
        let attempts: Vec<(DateTime<Utc>, String)> = sqlx::query_as(
            "SELECT started_at, outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt",
        )
        .bind(id)
        .fetch_all(&platform.db)
        .await
        .expect("attempts");
        all.push((
            payload["type"].as_str().unwrap_or_default().to_owned(),
            attempts,
        ));
    }
    all
}

/// Runs what is due at each moment the queue next wakes, until nothing is due before `until`.
async fn run_until(
    platform: &Platform,
    clock: &Clock,
    mut now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> DateTime<Utc> {
    for _ in 0..1000 {
        clock.set(now);
        workers::run_due(platform).await.expect("jobs run");
        match platform.jobs.next_due().await.expect("next") {
            Some(due) if due <= until => now = now.max(due),
            _ => return now,
        }
    }
    panic!("the queue never settled");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_two_hour_stripe_outage_loses_no_event_and_retries_as_the_policy_says(pool: PgPool) {
    let env = Env::start(pool).await;
    let leaving = env.owner().await;
    let leaving_subscription = env.subscribe(&leaving, "starter", Interval::Monthly).await;
    env.create_site(&leaving, "leaving-soon")
        .await
        .expect("site");
    let unpaid = env.owner().await;
    let unpaid_subscription = env.subscribe(&unpaid, "pro", Interval::Monthly).await;

    // Stripe's API goes down. From here the queue's clock is moved by hand: two hours pass
    // in the database's eyes, none on the wall.
    let before_outage = last_job(&env.platform).await;
    let outage_starts = Utc::now();
    let clock = Clock::manual(outage_starts);
    let platform = env.platform.clone().with_clock(clock.clone());
    env.stripe.set_outage(true);
    // During the outage a cancellation and a failed payment arrive (webhooks still come).
    env.stripe.cancel(&leaving_subscription).await;
    env.stripe.fail_payment(&unpaid_subscription).await;
    assert!(env.stripe.deliveries().iter().all(|d| d.status == 200));

    let outage_ends = outage_starts + chrono::Duration::hours(2);
    let now = run_until(&platform, &clock, outage_starts, outage_ends).await;
    // Nothing applied yet: every attempt needed Stripe.
    assert_eq!(env.plan_of(&leaving).await, "starter");
    assert_eq!(env.plan_of(&unpaid).await, "pro");

    env.stripe.set_outage(false);
    let first_try_after = platform
        .jobs
        .next_due()
        .await
        .expect("next")
        .expect("still queued");
    assert!(first_try_after > outage_ends);
    run_until(
        &platform,
        &clock,
        now.max(first_try_after),
        // Each job retries on its own jittered schedule: within the longest wait, all have.
        first_try_after + chrono::Duration::minutes(72),
    )
    .await;

    // Both applied once Stripe answered again.
    assert_eq!(env.plan_of(&leaving).await, "free");
    assert_eq!(
        env.suspensions(&leaving).await,
        [(
            "leaving-soon".to_owned(),
            Some(billing::SUSPENDED_ENDED.to_owned())
        )]
    );
    assert_eq!(
        env.mails_to_owner(&leaving, "Your subscription has ended")
            .await,
        1
    );
    let overview = billing::overview_without_invoice(&env.platform, &unpaid)
        .await
        .expect("overview");
    assert_eq!(overview.failed_payments, 1);
    assert_eq!(overview.status, Some(SubscriptionStatus::PastDue));
    assert_eq!(env.mails_to_owner(&unpaid, "Your payment failed").await, 1);

    // The attempts were spread as the policy says: each wait doubles from 10 s (+-20 %)
    // up to an hour, counted from the previous attempt; the job kept trying through the
    // whole outage (the old worker gave up after 20 tries, about 17 minutes in) and the
    // first attempt after it succeeded.
    let policy = JobKind::StripeEvent.policy();
    let jobs = stripe_event_attempts(&env.platform, before_outage).await;
    let kinds: Vec<&str> = jobs.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "customer.subscription.deleted",
            "customer.subscription.updated",
            "invoice.payment_failed"
        ]
    );
    for (kind, attempts) in &jobs {
        let (last, failed) = attempts.split_last().expect("attempted");
        assert_eq!(last.1, "succeeded", "{kind}");
        assert!(last.0 > outage_ends, "{kind}: succeeded during the outage?");
        assert!(
            failed
                .iter()
                .all(|(at, outcome)| outcome == "failed" && *at <= outage_ends),
            "{kind}"
        );
        assert!(
            failed.len() >= 9,
            "{kind}: only {} tries in two hours",
            failed.len()
        );
        assert!(
            failed.last().expect("failed").0 > outage_starts + chrono::Duration::minutes(60),
            "{kind}: stopped trying during the outage"
        );
        for (n, pair) in attempts.windows(2).enumerate() {
            let waited = (pair[1].0 - pair[0].0).to_std().expect("in order");
            let expected = policy.delay(n as u32 + 1);
            assert!(
                waited >= expected.mul_f64(0.79) && waited <= expected.mul_f64(1.21),
                "{kind}, wait {n}: {waited:?}, policy {expected:?} +-20%"
            );
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_nightly_reconciliation_repairs_what_lost_events_left_wrong(pool: PgPool) {
    let env = Env::start(pool).await;
    // A cancellation whose events never arrive.
    let leaving = env.owner().await;
    let subscription = env.subscribe(&leaving, "pro", Interval::Monthly).await;
    env.create_site(&leaving, "left-behind")
        .await
        .expect("site");
    // And a checkout whose events never arrive either.
    let joining = env.owner().await;
    let CheckoutOutcome::Redirect(url) =
        billing::checkout(&env.platform, &joining, "starter", Interval::Yearly)
            .await
            .expect("checkout")
    else {
        panic!("to Stripe")
    };
    env.stripe.hold_deliveries(true);
    env.stripe.cancel(&subscription).await;
    env.stripe
        .pay_checkout(url.rsplit('/').next().expect("session"))
        .await
        .expect("paid");
    assert_eq!(
        env.stripe.take_held().len(),
        4,
        "lost: deleted, completed, created, paid"
    );
    env.settle().await;
    assert_eq!(env.plan_of(&leaving).await, "pro", "Slipway never heard");
    assert_eq!(env.plan_of(&joining).await, "free", "Slipway never heard");

    // The nightly job fans out: one reconciliation per organization with a customer.
    let queued = billing::reconcile::reconcile_all(&env.platform, Utc::now().date_naive())
        .await
        .expect("fan out");
    assert_eq!(queued, 2);
    env.settle().await;

    assert_eq!(env.plan_of(&leaving).await, "free");
    assert_eq!(
        env.suspensions(&leaving).await,
        [(
            "left-behind".to_owned(),
            Some(billing::SUSPENDED_ENDED.to_owned())
        )]
    );
    assert_eq!(env.plan_of(&joining).await, "starter");
    assert_eq!(env.audit_count(&leaving, "billing.drift_repaired").await, 1);
    assert_eq!(env.audit_count(&joining, "billing.drift_repaired").await, 1);

    // A second run finds nothing to repair.
    billing::reconcile::reconcile_organization(&env.platform, leaving.organization_id)
        .await
        .expect("again");
    assert!(
        billing::reconcile::reconcile_organization(&env.platform, joining.organization_id)
            .await
            .expect("again")
            .is_empty()
    );
    assert_eq!(env.audit_count(&joining, "billing.drift_repaired").await, 1);
}

/// The business metrics with Stripe, on a constructed history: subscriptions bought,
/// upgraded, paid yearly, discounted, cancelled, left unpaid and paid again between daily
/// revenue snapshots, against figures computed by hand (docs/metrics.md). The same in local
/// billing mode is in `platform/tests/metrics.rs`.
#[sqlx::test(migrations = "../migrations")]
async fn revenue_metrics_follow_stripe_subscriptions_discounts_and_unpaid_invoices(pool: PgPool) {
    use platform::billing::revenue::{self, Movement};
    let env = Env::start(pool.clone()).await;
    let day = |month, day| chrono::NaiveDate::from_ymd_opt(2026, month, day).unwrap();
    let (p, q, r, s, t) = (
        env.owner().await,
        env.owner().await,
        env.owner().await,
        env.owner().await,
        env.owner().await,
    );
    // Before 1 August: P on pro monthly ($49), Q on starter yearly ($150 a year: $12.50 a
    // month), S on starter monthly ($15), T on pro with a coupon taking all of it off.
    let p_sub = env.subscribe(&p, "pro", Interval::Monthly).await;
    let q_sub = env.subscribe(&q, "starter", Interval::Yearly).await;
    let s_sub = env.subscribe(&s, "starter", Interval::Monthly).await;
    let t_sub = env.subscribe(&t, "pro", Interval::Monthly).await;
    env.stripe
        .discount(&t_sub, json!({ "amount_off": 4900, "currency": "usd" }))
        .await;
    env.settle().await;
    revenue::take_snapshot(&env.platform, day(8, 1))
        .await
        .unwrap();
    // Before 1 September: P moved to business ($149) in Stripe, Q got 20% off, R bought pro
    // yearly ($490 a year: $40.83 a month), S's payment failed (still counted).
    env.change_in_stripe(&p_sub, "slipway_business_monthly", "p-up")
        .await;
    env.stripe
        .discount(&q_sub, json!({ "percent_off": 20.0 }))
        .await;
    env.subscribe(&r, "pro", Interval::Yearly).await;
    env.stripe.fail_payment(&s_sub).await;
    env.settle().await;
    revenue::take_snapshot(&env.platform, day(9, 1))
        .await
        .unwrap();
    // Before 1 October: Q cancelled; S's invoice has been unpaid since 15 August, more than
    // 30 days before 1 October, so it no longer counts.
    env.stripe.cancel(&q_sub).await;
    env.settle().await;
    sqlx::query(
        "UPDATE billing_accounts SET payment_failing_since = '2026-08-15' WHERE organization_id = $1",
    )
    .bind(s.organization_id)
    .execute(&pool)
    .await
    .unwrap();
    revenue::take_snapshot(&env.platform, day(10, 1))
        .await
        .unwrap();
    // Now: S paid, and counts again.
    env.stripe.pay_open_invoice(&s_sub).await.expect("paid");
    env.settle().await;

    let points = revenue::series(
        &env.platform,
        &[day(8, 1), day(9, 1), day(10, 1)],
        Utc::now(),
    )
    .await
    .unwrap();
    let figures: Vec<(i64, i64)> = points.iter().map(|p| (p.mrr_cents, p.customers)).collect();
    // T never counts: fully discounted.
    assert_eq!(
        figures,
        [
            (4900 + 1250 + 1500, 3),
            (14900 + 1000 + 4083 + 1500, 4),
            (14900 + 4083, 2),
            (14900 + 4083 + 1500, 3)
        ]
    );
    assert_eq!(
        points[1].movement,
        Some(Movement {
            new: 4083,
            expansion: 10000,
            contraction: 250,
            ..Movement::default()
        })
    );
    assert_eq!(
        points[2].movement,
        Some(Movement {
            churned: 1000 + 1500,
            churned_customers: 2,
            ..Movement::default()
        })
    );
    assert_eq!(
        points[3].movement,
        Some(Movement {
            reactivation: 1500,
            ..Movement::default()
        })
    );
    let plans: Vec<(String, String, i64, i64)> = revenue::by_plan(&env.platform, Utc::now())
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.plan_id, p.interval, p.subscriptions, p.mrr_cents))
        .collect();
    assert_eq!(
        plans,
        [
            ("business".into(), "monthly".into(), 1, 14900),
            ("pro".into(), "yearly".into(), 1, 4083),
            ("starter".into(), "monthly".into(), 1, 1500),
        ]
    );
    // A coupon whose webhook never arrived: the nightly reconciliation finds the amount
    // changed and repairs it (50% off business: $74.50).
    env.stripe.hold_deliveries(true);
    env.stripe
        .discount(&p_sub, json!({ "percent_off": 50.0 }))
        .await;
    let drift = billing::reconcile::reconcile_organization(&env.platform, p.organization_id)
        .await
        .unwrap();
    assert_eq!(drift, ["monthly recurring revenue: 14900 -> 7450"]);
    env.stripe.take_held();
    env.stripe.hold_deliveries(false);
    let mrr_of = |org: uuid::Uuid| {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT mrr_cents FROM billing_accounts WHERE organization_id = $1",
        )
        .bind(org)
        .fetch_one(&pool)
    };
    assert_eq!(mrr_of(p.organization_id).await.unwrap(), Some(7450));
    // A plan change through Slipway keeps the discount: 50% off pro.
    billing::checkout(&env.platform, &p, "pro", Interval::Monthly)
        .await
        .expect("plan changed");
    env.settle().await;
    assert_eq!(mrr_of(p.organization_id).await.unwrap(), Some(2450));

    // Every one of them paid at least once: five conversions.
    let converted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM organizations WHERE first_paid_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(converted, 5);
}

/// Waits until Stripe has delivered `n` events of `kind` (it sends them after answering).
async fn delivered(stripe: &StripeTestServer, kind: &str, n: usize) {
    for _ in 0..200 {
        let count = stripe
            .deliveries()
            .iter()
            .filter(|d| d.kind == kind && d.status == 200)
            .count();
        if count >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("Stripe never delivered {n} {kind}");
}

async fn slug_of(platform: &Platform, owner: &Membership) -> String {
    sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
        .bind(owner.organization_id)
        .fetch_one(&platform.db)
        .await
        .expect("organization")
}

/// `(status, grace_ends_at is set)` of the organization's stored subscription.
async fn stored_subscription(platform: &Platform, owner: &Membership) -> (String, bool) {
    sqlx::query_as(
        "SELECT status, grace_ends_at IS NOT NULL FROM billing_accounts WHERE organization_id = $1",
    )
    .bind(owner.organization_id)
    .fetch_one(&platform.db)
    .await
    .expect("billing account")
}

#[sqlx::test(migrations = "../migrations")]
async fn deleting_an_organization_cancels_its_subscription_in_stripe_through_an_outage(
    pool: PgPool,
) {
    let env = Env::start(pool).await;
    let owner = env.owner().await;
    let subscription = env.subscribe(&owner, "pro", Interval::Monthly).await;
    env.create_site(&owner, "farewell").await.expect("site");
    let slug = slug_of(&env.platform, &owner).await;

    // Stripe is down when the deletion's job first runs; the queue's clock is moved by hand.
    let start = Utc::now();
    let clock = Clock::manual(start);
    let platform = env.platform.clone().with_clock(clock.clone());
    env.stripe.set_outage(true);
    let sites_deleted = platform::deletion::delete_organization(&platform, &owner, &slug, None)
        .await
        .expect("deleted");
    assert_eq!(sites_deleted, ["farewell"]);
    let now = run_until(
        &platform,
        &clock,
        start,
        start + chrono::Duration::minutes(30),
    )
    .await;
    assert_eq!(
        env.stripe.object(&subscription).expect("kept")["status"],
        "active",
        "nothing reached Stripe during the outage"
    );
    let (state, attempts): (String, i32) = sqlx::query_as(
        "SELECT state, attempts FROM jobs WHERE kind = 'stripe_cancel_subscription'",
    )
    .fetch_one(&env.platform.db)
    .await
    .expect("the cancellation is queued");
    assert_eq!(state, "queued", "retried, not given up");
    assert!(attempts > 3, "{attempts} attempts in 30 minutes");

    env.stripe.set_outage(false);
    let now = run_until(&platform, &clock, now, now + chrono::Duration::hours(2)).await;
    delivered(&env.stripe, "customer.subscription.deleted", 1).await;
    run_until(&platform, &clock, now, now + chrono::Duration::minutes(1)).await;
    let canceled = env.stripe.object(&subscription).expect("kept");
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(
        canceled["test_cancel_options"],
        json!({ "invoice_now": true, "prorate": false }),
        "usage not billed yet is invoiced, the rest of the period is not credited"
    );
    assert_eq!(
        canceled["cancellation_details"]["comment"],
        "The organization was deleted in Slipway."
    );
    assert_eq!(env.stripe.calls("DELETE /v1/subscriptions/{id}"), 1);
    // Stripe's `customer.subscription.deleted` is recorded, with no grace period, mail or
    // incident: there is nobody and nothing left to keep.
    assert_eq!(
        stored_subscription(&env.platform, &owner).await,
        ("canceled".to_owned(), false)
    );
    assert_eq!(
        env.mails_to_owner(&owner, "Your subscription has ended")
            .await,
        0
    );
    let incidents: i64 =
        sqlx::query_scalar("SELECT count(*) FROM incidents WHERE organization_id = $1")
            .bind(owner.organization_id)
            .fetch_one(&env.platform.db)
            .await
            .expect("incidents");
    assert_eq!(incidents, 0);
    let unfinished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state <> 'succeeded'")
            .fetch_one(&env.platform.db)
            .await
            .expect("jobs");
    assert_eq!(unfinished, 0);
    let audited: Value = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE organization_id = $1 AND action = 'organization.deleted'",
    )
    .bind(owner.organization_id)
    .fetch_one(&env.platform.db)
    .await
    .expect("audited");
    assert_eq!(audited["subscription_canceled"], subscription.as_str());
}

/// A checkout paid just before its organization is deleted, its events applied at the same
/// moment as the deletion: whichever comes first, no subscription of a deleted organization
/// stays live (the deletion cancels the one it finds, and a subscription that arrives for a
/// deleted organization is canceled when it is applied).
#[sqlx::test(migrations = "../migrations")]
async fn a_subscription_arriving_while_its_organization_is_deleted_is_canceled(pool: PgPool) {
    let env = Env::start(pool).await;
    let mut outcomes = Vec::new();
    for round in 0..5 {
        let owner = env.owner().await;
        let slug = slug_of(&env.platform, &owner).await;
        let session = env
            .open_checkout(&owner, "starter", Interval::Monthly)
            .await;
        // Paid: Stripe's events are queued in Slipway, not yet applied.
        let subscription = env.stripe.pay_checkout(&session).await.expect("paid");
        let results = test_support::at_once(2, |i| {
            let (platform, owner, slug) = (env.platform.clone(), owner, slug.clone());
            async move {
                if i == 0 {
                    workers::run_due(&platform).await.expect("jobs run");
                    None
                } else {
                    Some(
                        platform::deletion::delete_organization(&platform, &owner, &slug, None)
                            .await,
                    )
                }
            }
        })
        .await;
        let deletion = results.into_iter().flatten().next().expect("the deletion");
        outcomes.push(deletion.is_ok());
        if let Err(error) = deletion {
            // Only the open checkout refuses it; once applied, the deletion goes through.
            assert!(
                error.to_string().contains("checkout open"),
                "round {round}: {error}"
            );
            env.settle().await;
            platform::deletion::delete_organization(&env.platform, &owner, &slug, None)
                .await
                .expect("deleted once the checkout is applied");
        }
        // Settle what each step queued: the cancellation, then Stripe's answer to it.
        env.settle().await;
        delivered(&env.stripe, "customer.subscription.deleted", round + 1).await;
        env.settle().await;
        assert_eq!(
            env.stripe.object(&subscription).expect("kept")["status"],
            "canceled",
            "round {round}"
        );
        assert_eq!(
            stored_subscription(&env.platform, &owner).await,
            ("canceled".to_owned(), false),
            "round {round}"
        );
    }
    println!("deletion went through at once in rounds: {outcomes:?}");
}
