//! The billing journey in Chromium: a real slipway server, Docker engine and PostgreSQL,
//! and the Stripe-shaped test server in place of Stripe (its hosted checkout page, its
//! signed webhooks). Sign up, buy a plan on the pricing page, pay on the checkout page,
//! fill the plan's site limit, miss three payments (the site shows the suspended page
//! through the proxy), pay, and the site serves again.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use end2end::{Harness, JavaScript};
use stripe_test_server::StripeTestServer;

const SECRET: &str = "whsec_journey_secret";

/// The Stripe-shaped test server, and slipway configured for it (webhooks included).
async fn start(name: &str, javascript: JavaScript) -> Result<(StripeTestServer, Harness)> {
    let stripe = StripeTestServer::start_default().await;
    let h = Harness::start_with(
        name,
        javascript,
        &[
            (
                "SLIPWAY_BILLING__STRIPE_SECRET_KEY",
                "sk_test_journey".to_owned(),
            ),
            ("SLIPWAY_BILLING__STRIPE_API_BASE", stripe.url()),
            (
                "SLIPWAY_BILLING__STRIPE_WEBHOOK_SECRETS",
                format!("[\"{SECRET}\"]"),
            ),
        ],
    )
    .await?;
    stripe.set_webhook(&h.url("/api/webhooks/stripe"), &[SECRET]);
    Ok((stripe, h))
}

/// Signs up a new owner of a new organization (on the free plan).
async fn sign_up(h: &Harness, name: &str, email: &str, organization: &str) -> Result<()> {
    h.visit("/signup").await?;
    h.submit(
        "signup",
        &[
            ("name", name),
            ("email", email),
            ("password", "correct horse battery"),
            ("organization", organization),
        ],
    )
    .await?;
    h.wait_for_texts("main h1", &["Overview"]).await
}

/// Reloads `path` until `css` shows text containing `needle`.
async fn reload_until(
    h: &Harness,
    path: &str,
    css: &str,
    needle: &str,
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        h.visit(path).await?;
        let shown = h.texts(css).await.unwrap_or_default();
        if shown.iter().any(|t| t.contains(needle)) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{path} never showed {needle:?} in {css} (it shows {shown:?})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Visits the site through the proxy until its page contains `needle`.
async fn site_shows(h: &Harness, url: &str, needle: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        h.browser.goto(url).await?;
        let body = h.texts("body").await.unwrap_or_default().join(" ");
        if body.contains(needle) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{url} never showed {needle:?} (it shows {body:?})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn subscribe_fill_the_plan_miss_payments_and_pay_again() -> Result<()> {
    let (stripe, mut h) = start("billing_journey", JavaScript::Enabled).await?;
    // The operator publishes the catalog first (and a second run changes nothing).
    let synced = h.cli(&["stripe", "sync"]).await?;
    ensure!(
        synced.contains("created   price slipway_starter_monthly"),
        "stripe sync printed: {synced}"
    );
    let again = h.cli(&["stripe", "sync"]).await?;
    ensure!(!again.contains("created"), "second sync: {again}");

    sign_up(&h, "Ada Lovelace", "ada@example.com", "Analytical Engines").await?;

    // Pricing -> the billing page with the plan picked -> Stripe's checkout page.
    h.visit("/pricing").await?;
    h.wait_hydrated().await?;
    h.screenshot("pricing").await?;
    h.click(r#"a[data-choose="starter"]"#).await?;
    h.wait_for_path("/dashboard/billing?plan=starter&billing=monthly")
        .await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing("[data-billing-status]", "No subscription")
        .await?;
    h.screenshot("billing-choose").await?;
    h.click(r#"[data-checkout="starter-monthly"]"#).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h
        .browser
        .current_url()
        .await?
        .as_str()
        .starts_with(&stripe.url())
    {
        ensure!(Instant::now() < deadline, "never reached the checkout page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.wait_for_text_containing("#product", "Starter").await?;
    h.wait_for_text_containing("#amount", "$15.00").await?;
    h.screenshot("stripe-checkout").await?;
    h.click("#pay").await?;
    h.wait_for_path("/dashboard/billing?checkout=success")
        .await?;
    h.wait_for_text_containing("[data-billing-notice]", "Thank you")
        .await?;
    // The webhooks arrive and the plan is active.
    reload_until(
        &h,
        "/dashboard/billing",
        "[data-billing-status]",
        "Active",
        Duration::from_secs(20),
    )
    .await?;
    h.wait_for_texts("[data-billing-plan]", &["Starter"])
        .await?;
    h.wait_for_text_containing("[data-upcoming-invoice]", "$15")
        .await?;
    h.screenshot("billing-active").await?;

    // The plan's one site.
    h.visit("/dashboard/sites/new").await?;
    h.wait_hydrated().await?;
    h.submit(
        "create-site",
        &[("name", "Engine notes"), ("slug", "engine-notes")],
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h.path().await?.starts_with("/dashboard/sites/")
        || h.path().await? == "/dashboard/sites/new"
    {
        ensure!(Instant::now() < deadline, "no redirect to the site page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let site_url = format!("http://engine-notes.localhost:{}/", h.proxy_port);
    site_shows(&h, &site_url, "Engine notes", Duration::from_secs(90)).await?;

    // One more is refused, with the way to get more.
    h.visit("/dashboard/sites/new").await?;
    h.wait_hydrated().await?;
    h.submit(
        "create-site",
        &[("name", "Second"), ("slug", "second-engine")],
    )
    .await?;
    h.wait_for_text_containing("[data-form-error]", "Upgrade your plan under Billing")
        .await?;
    h.wait_for_texts("[data-form-error] a[data-upgrade]", &["See plans"])
        .await?;
    h.screenshot("site-limit").await?;

    // Three failed payments: reminders, then the site is suspended through the proxy.
    let subscription = h
        .query_strings("SELECT stripe_subscription_id FROM billing_accounts")
        .await?;
    ensure!(
        subscription.len() == 1,
        "one subscription: {subscription:?}"
    );
    for attempt in 1..=3 {
        stripe.fail_payment(&subscription[0]).await;
        if attempt < 3 {
            reload_until(
                &h,
                "/dashboard",
                "[data-past-due]",
                &format!("({attempt} of 3 attempts)"),
                Duration::from_secs(15),
            )
            .await?;
        }
    }
    site_shows(
        &h,
        &site_url,
        "This site is suspended",
        Duration::from_secs(15),
    )
    .await?;
    h.screenshot("site-suspended").await?;
    reload_until(
        &h,
        "/dashboard",
        "[data-past-due]",
        "your sites are suspended",
        Duration::from_secs(10),
    )
    .await?;
    h.screenshot("past-due-banner").await?;
    let reminders = h
        .query_strings(
            "SELECT count(*)::text FROM mail_outbox WHERE subject = 'Your payment failed'",
        )
        .await?;
    ensure!(reminders == ["3"], "reminders: {reminders:?}");

    // The customer pays: the site serves again and the banner is gone.
    stripe.pay_open_invoice(&subscription[0]).await;
    site_shows(&h, &site_url, "Engine notes", Duration::from_secs(15)).await?;
    h.screenshot("site-back").await?;
    h.visit("/dashboard/billing").await?;
    h.wait_for_text_containing("[data-billing-status]", "Active")
        .await?;
    ensure!(
        h.texts("[data-past-due]").await?.is_empty(),
        "banner still shown"
    );

    // The operator's overview counts the subscription. A year of earlier revenue
    // snapshots (other, older customers) gives its charts a history.
    h.sql(
        "UPDATE users SET is_operator = true WHERE email = 'ada@example.com';
         INSERT INTO mrr_snapshot_days (day, billing_mode)
         SELECT (date_trunc('month', now()) - make_interval(months => m))::date, 'stripe'
           FROM generate_series(1, 12) AS m;
         INSERT INTO mrr_snapshots (day, organization_id, plan_id, billing_interval, mrr_cents)
         SELECT d.day, gen_random_uuid(), 'pro', 'monthly', 4900
           FROM mrr_snapshot_days d, generate_series(1, 14 - (now()::date - d.day) / 31) AS n
          WHERE d.day < date_trunc('month', now())",
    )
    .await?;
    // From here on, the operator's pages: the app must never panic on them.
    let operator_pages = h.console_mark().await?;
    h.visit("/admin").await?;
    h.wait_hydrated().await?;
    h.wait_for_texts(r#"[data-figure="mrr"] [data-value]"#, &["$15"])
        .await?;
    h.wait_for_texts(r#"[data-figure="customers"] [data-value]"#, &["1"])
        .await?;
    h.wait_for_text_containing(r#"[data-table="plans"]"#, "Starter")
        .await?;
    let bars = h.texts(r#"[data-chart="mrr"] rect"#).await?.len();
    ensure!(bars == 14, "MRR bars: {bars}");
    // A figure's definition shows while it is hovered or focused.
    h.browser
        .find(fantoccini::Locator::Css(
            r#"[data-figure="gross_mrr_churn"]"#,
        ))
        .await?
        .click()
        .await?;
    let shown = h
        .browser
        .execute(
            r#"return getComputedStyle(document.querySelector('[data-figure="gross_mrr_churn"] [data-definition]')).visibility"#,
            vec![],
        )
        .await?;
    ensure!(shown == "visible", "the definition is {shown}");
    h.screenshot("admin-overview").await?;

    // The operator finds the customer's organization by part of an email, in any case.
    h.click(r#"a[href="/admin/organizations"]"#).await?;
    h.wait_for_path("/admin/organizations").await?;
    h.submit("organizations", &[("q", "ADA@exam"), ("sort", "name")])
        .await?;
    h.wait_for_path("/admin/organizations?q=ADA%40exam&plan=&billing=&sort=name")
        .await?;
    h.wait_for_texts(
        r#"[data-table="organizations"] tbody tr th a"#,
        &["Analytical Engines"],
    )
    .await?;
    h.wait_for_text_containing(r#"[data-table="organizations"]"#, "Starter")
        .await?;
    h.screenshot("admin-organizations").await?;
    h.assert_no_panics_since(operator_pages).await?;
    h.finish().await
}

#[tokio::test]
async fn without_javascript_checkout_and_the_portal_are_plain_forms() -> Result<()> {
    let (stripe, mut h) = start("billing_no_js", JavaScript::Disabled).await?;
    h.cli(&["stripe", "sync"]).await?;
    sign_up(
        &h,
        "Charles Babbage",
        "charles@example.com",
        "Difference Engines",
    )
    .await?;

    h.visit("/pricing?billing=yearly").await?;
    h.click(r#"a[data-choose="pro"]"#).await?;
    h.wait_for_path("/dashboard/billing?plan=pro&billing=yearly")
        .await?;
    // Stripe down: the refusal comes back on the card that was sent, at a clean address.
    stripe.set_outage(true);
    h.click(r#"[data-checkout="pro-yearly"]"#).await?;
    h.wait_for_text_containing(
        r#"form[data-form="checkout-pro-yearly"] [data-form-error]"#,
        "Payments are unavailable right now",
    )
    .await?;
    ensure!(
        h.texts("[data-form-error]").await?.len() == 1,
        "shown on that card only"
    );
    h.assert_form_kept(
        "/dashboard/billing?plan=pro&billing=yearly",
        "checkout-pro-yearly",
        &[],
    )
    .await?;
    h.screenshot("checkout-refused").await?;
    stripe.set_outage(false);
    h.click(r#"[data-checkout="pro-yearly"]"#).await?;
    h.wait_for_text_containing("#amount", "$490.00").await?;
    h.click("#pay").await?;
    h.wait_for_path("/dashboard/billing?checkout=success")
        .await?;
    reload_until(
        &h,
        "/dashboard/billing",
        "[data-billing-status]",
        "Active",
        Duration::from_secs(20),
    )
    .await?;
    h.wait_for_texts("[data-billing-plan]", &["Pro"]).await?;
    h.screenshot("billing-active").await?;

    // The portal button leaves for Stripe's portal, which links back.
    h.click(r#"form[data-form="portal"] button"#).await?;
    h.wait_for_text_containing("h1", "Billing portal").await?;
    h.click("#return").await?;
    h.wait_for_path("/dashboard/billing").await?;

    // Another plan changes the subscription in place: no second checkout.
    h.click(r#"[data-checkout="starter-monthly"]"#).await?;
    h.wait_for_path("/dashboard/billing?changed=1").await?;
    h.wait_for_text_containing("[data-billing-notice]", "Your plan was changed")
        .await?;
    reload_until(
        &h,
        "/dashboard/billing",
        "[data-billing-plan]",
        "Starter",
        Duration::from_secs(10),
    )
    .await?;

    // A failed payment: the banner is server-rendered too.
    let subscription = h
        .query_strings("SELECT stripe_subscription_id FROM billing_accounts")
        .await?;
    stripe.fail_payment(&subscription[0]).await;
    reload_until(
        &h,
        "/dashboard/billing",
        "[data-past-due]",
        "(1 of 3 attempts)",
        Duration::from_secs(15),
    )
    .await?;
    h.wait_for_texts("[data-failed-payments]", &["1 of 3"])
        .await?;
    h.screenshot("past-due").await?;
    h.finish().await
}
