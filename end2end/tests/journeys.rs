//! User journeys through the public pages and the dashboard shell, in headless Chromium,
//! with JavaScript (hydrated) and without it (server rendering alone).

use anyhow::{Result, ensure};
use end2end::{Harness, JavaScript};

const MONTHLY_PRICES: [&str; 4] = ["$0", "$15", "$49", "$149"];
const YEARLY_PRICES: [&str; 4] = ["$0", "$150", "$490", "$1,490"];
const PLAN_NAMES: [&str; 4] = ["Free", "Starter", "Pro", "Business"];
const SECTIONS: [&str; 6] = ["Overview", "Sites", "Team", "Billing", "Usage", "Settings"];

async fn assert_no_console_errors(harness: &Harness, page: &str) -> Result<()> {
    let errors = harness.console_errors().await?;
    ensure!(errors.is_empty(), "console errors on {page}: {errors:#?}");
    Ok(())
}

/// The browser's title once the page is live (hydration must not empty it: tabs, history
/// and screen readers read it).
async fn assert_title(h: &Harness, expected: &str) -> Result<()> {
    let mut title = String::new();
    for _ in 0..50 {
        title = h
            .browser
            .execute("return document.title;", vec![])
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if title == expected {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the title is {title:?}, not {expected:?}")
}

/// The audit itself can fail: faint text and an image without a description, planted in
/// the page, are found.
async fn audit_finds_planted_faults(h: &Harness) -> Result<()> {
    h.browser
        .execute(
            "document.querySelector('main').insertAdjacentHTML('beforeend',
               '<p style=\"color:#bbb;background:#fff\">faint words</p><img src=\"/favicon.ico\">');",
            vec![],
        )
        .await?;
    let findings = h.accessibility_findings().await?;
    ensure!(
        findings
            .iter()
            .any(|f| f.starts_with("serious color-contrast"))
            && findings.iter().any(|f| f.starts_with("critical image-alt")),
        "the audit missed planted faults: {findings:#?}"
    );
    Ok(())
}

/// The keyboard walk can fail: a button whose focus cannot be seen, and a link only a mouse
/// reaches.
async fn keyboard_check_finds_planted_faults(h: &Harness) -> Result<()> {
    let plant = |html: &'static str| async move {
        h.visit("/login").await?;
        h.wait_hydrated().await?;
        h.browser
            .execute(
                "document.querySelector('main').insertAdjacentHTML('afterbegin', arguments[0]);",
                vec![serde_json::json!(html)],
            )
            .await?;
        Ok::<_, anyhow::Error>(
            h.assert_keyboard_usable("planted")
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        )
    };
    let ringless = plant(r#"<button style="outline:none">no ring</button>"#).await?;
    ensure!(ringless.contains("no focus indicator"), "{ringless:?}");
    let skipped = plant(r#"<a href="/pricing" tabindex="-1">mouse only</a>"#).await?;
    ensure!(skipped.contains("never reaches"), "{skipped:?}");
    Ok(())
}

#[tokio::test]
async fn landing_to_pricing_shows_every_plan() -> Result<()> {
    let mut h = Harness::start("landing_to_pricing", JavaScript::Enabled).await?;
    h.visit("/").await?;
    h.wait_hydrated().await?;
    assert_title(&h, "Slipway").await?;
    h.screenshot("landing").await?;
    assert_no_console_errors(&h, "/").await?;

    h.click(r#"main a[href="/pricing"]"#).await?;
    h.wait_for_texts("section[data-plan] h2", &PLAN_NAMES)
        .await?;
    ensure!(h.path().await? == "/pricing", "navigated to /pricing");
    h.wait_for_texts("[data-price]", &MONTHLY_PRICES).await?;
    assert_title(&h, "Pricing · Slipway").await?;
    // Side by side, every card's "Choose" button sits on one line, whatever its text above.
    let tops = h
        .browser
        .execute(
            "return [...document.querySelectorAll('[data-choose]')].map(e => Math.round(e.getBoundingClientRect().top));",
            vec![],
        )
        .await?;
    let tops: Vec<i64> = serde_json::from_value(tops)?;
    ensure!(
        tops.len() == 4 && tops.iter().all(|top| *top == tops[0]),
        "the Choose buttons are not aligned: {tops:?}"
    );
    h.screenshot("pricing-monthly").await?;
    assert_no_console_errors(&h, "/pricing").await?;
    // Opened directly (hydrated, not navigated to), the title is the server's too.
    h.visit("/pricing").await?;
    h.wait_hydrated().await?;
    assert_title(&h, "Pricing · Slipway").await?;
    h.assert_accessible("/pricing").await?;
    h.visit("/login").await?;
    h.wait_hydrated().await?;
    assert_title(&h, "Sign in · Slipway").await?;
    h.assert_accessible("/login").await?;
    h.visit("/signup").await?;
    h.wait_hydrated().await?;
    h.assert_accessible("/signup").await?;
    h.assert_keyboard_usable("/signup").await?;
    audit_finds_planted_faults(&h).await?;
    keyboard_check_finds_planted_faults(&h).await?;

    // The console check itself can fail: an error logged by the page is seen.
    h.browser
        .execute("console.error('probe-7f3a');", vec![])
        .await?;
    let errors = h.console_errors().await?;
    ensure!(
        errors.iter().any(|e| e.contains("probe-7f3a")),
        "{errors:?}"
    );
    h.finish().await
}

#[tokio::test]
async fn yearly_toggle_changes_prices_in_place() -> Result<()> {
    let mut h = Harness::start("yearly_toggle", JavaScript::Enabled).await?;
    h.visit("/pricing").await?;
    h.wait_hydrated().await?;
    h.wait_for_texts("[data-price]", &MONTHLY_PRICES).await?;
    // A full page load would lose this marker; a hydrated router keeps it.
    h.browser
        .execute("window.__sameDocument = true;", vec![])
        .await?;

    h.click(r#"a[data-interval="yearly"]"#).await?;
    h.wait_for_texts("[data-price]", &YEARLY_PRICES).await?;
    ensure!(
        h.path().await? == "/pricing?billing=yearly",
        "the URL keeps the choice"
    );
    let notes = h.texts("[data-price-note]").await?;
    ensure!(
        notes[1] == "$12.50/month, save $30",
        "starter note: {notes:?}"
    );
    let same = h
        .browser
        .execute("return window.__sameDocument === true;", vec![])
        .await?;
    ensure!(same == true, "the toggle did not reload the page");
    h.screenshot("pricing-yearly").await?;

    h.click(r#"a[data-interval="monthly"]"#).await?;
    h.wait_for_texts("[data-price]", &MONTHLY_PRICES).await?;
    assert_no_console_errors(&h, "/pricing toggles").await?;
    h.finish().await
}

#[tokio::test]
async fn dashboard_shell_navigates_between_sections() -> Result<()> {
    let mut h = Harness::start("dashboard_shell", JavaScript::Enabled).await?;
    h.visit("/signup").await?;
    h.wait_hydrated().await?;
    h.submit(
        "signup",
        &[
            ("name", "Grace Hopper"),
            ("email", "grace@example.com"),
            ("password", "correct horse battery"),
            ("organization", "Compilers Inc"),
        ],
    )
    .await?;
    h.wait_for_texts(r#"nav[aria-label="Dashboard"] a"#, &SECTIONS)
        .await?;
    h.wait_for_texts("main h1", &["Overview"]).await?;
    assert_title(&h, "Overview · Slipway").await?;
    // A new organization's overview is a checklist of first steps, none done; on the Free
    // plan the first leads to choosing a plan, not to a form that would refuse.
    h.wait_for_texts(
        "[data-checklist] [data-step] a",
        &[
            "Choose a plan that includes sites, then create one",
            "Invite a teammate",
            "Add your own domain to a site",
            "Create an API key",
        ],
    )
    .await?;
    ensure!(
        h.texts(r#"[data-checklist] [data-done="true"]"#)
            .await?
            .is_empty(),
        "nothing done yet"
    );
    h.wait_for_text_containing("[data-no-sites]", "No sites yet")
        .await?;
    h.wait_for_text_containing("[data-incidents]", "No open incidents")
        .await?;
    h.wait_for_text_containing("[data-audit]", "Account created")
        .await?;
    h.screenshot("overview-new").await?;
    h.click(r#"[data-checklist] [data-step="site"] a"#).await?;
    h.wait_for_texts("main h1", &["Billing"]).await?;
    h.visit("/dashboard").await?;
    h.wait_hydrated().await?;

    h.click(r#"nav[aria-label="Dashboard"] a[href="/dashboard/sites"]"#)
        .await?;
    h.wait_for_texts("main h1", &["Sites"]).await?;
    h.wait_for_texts("[data-empty-state] p:first-child", &["No sites yet"])
        .await?;
    // A new organization is on the Free plan: no "0 of 0 sites".
    h.wait_for_text_containing("[data-site-usage]", "The Free plan includes no sites")
        .await?;
    h.wait_for_texts(r#"nav a[aria-current="page"]"#, &["Sites"])
        .await?;
    h.screenshot("sites").await?;
    // No Stripe key here: local billing mode, and the billing page says who assigns plans.
    h.click(r#"nav[aria-label="Dashboard"] a[href="/dashboard/billing"]"#)
        .await?;
    h.wait_for_texts("main h1", &["Billing"]).await?;
    h.wait_for_text_containing("main", "assigned by its operator")
        .await?;
    h.screenshot("billing-local-mode").await?;
    requests_a_plan_an_operator_approves(&mut h).await?;
    assert_no_console_errors(&h, "/dashboard").await?;

    // The same shell on a phone: navigation stays reachable, nothing overflows.
    h.browser.set_window_size(390, 844).await?;
    h.visit("/dashboard/usage").await?;
    h.wait_hydrated().await?;
    h.wait_for_texts(r#"nav[aria-label="Dashboard"] a"#, &SECTIONS)
        .await?;
    h.assert_no_horizontal_overflow().await?;
    h.screenshot("usage-phone").await?;
    h.visit("/pricing").await?;
    h.wait_hydrated().await?;
    h.assert_no_horizontal_overflow().await?;
    h.screenshot("pricing-phone").await?;
    h.finish().await
}

/// Local billing mode has a way forward: the owner asks for a plan ("Choose" on the pricing
/// page preselects it), an operator approves it on the operator overview, and she reads the
/// decision on her billing page and in her mail.
async fn requests_a_plan_an_operator_approves(h: &mut Harness) -> Result<()> {
    h.visit("/dashboard/sites").await?;
    h.wait_for_text_containing("[data-no-room]", "includes no sites")
        .await?;
    ensure!(
        h.texts(r#"a[href="/dashboard/sites/new"]"#)
            .await?
            .is_empty(),
        "no Create site on a plan without sites"
    );
    h.visit("/dashboard/billing?plan=pro").await?;
    h.wait_hydrated().await?;
    h.submit("request-plan", &[("message", "We launch on Monday.")])
        .await?;
    h.wait_for_text_containing("[data-plan-request=pending]", "You asked for the Pro plan")
        .await?;
    h.screenshot("billing-plan-requested").await?;
    h.sql("UPDATE users SET is_operator = true WHERE email = 'grace@example.com'")
        .await?;
    h.visit("/admin").await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing(
        r#"[data-plan-request="compilers-inc"]"#,
        "We launch on Monday.",
    )
    .await?;
    h.screenshot("operator-plan-requests").await?;
    h.submit("approve-compilers-inc", &[("note", "Welcome to Pro")])
        .await?;
    for _ in 0..100 {
        if h.texts("[data-plan-requests]").await?.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(
        h.texts("[data-plan-requests]").await?.is_empty(),
        "the approved request left the queue"
    );
    h.sql("UPDATE users SET is_operator = false WHERE email = 'grace@example.com'")
        .await?;
    h.visit("/dashboard/billing").await?;
    h.wait_for_texts("[data-billing-plan]", &["Pro"]).await?;
    h.wait_for_text_containing("[data-plan-request=approved]", "was approved")
        .await?;
    h.wait_for_text_containing("[data-request-note]", "Welcome to Pro")
        .await?;
    h.screenshot("billing-plan-approved").await?;
    let subjects = h
        .query_strings(
            "SELECT subject FROM mail_outbox WHERE to_address = 'grace@example.com'
              ORDER BY id DESC LIMIT 1",
        )
        .await?;
    ensure!(
        subjects == ["Compilers Inc is on the Pro plan"],
        "{subjects:?}"
    );
    Ok(())
}

#[tokio::test]
async fn every_page_works_without_javascript() -> Result<()> {
    let mut h = Harness::start("no_javascript", JavaScript::Disabled).await?;
    h.visit("/").await?;
    let hydrated = h.texts(r#"#app[data-hydrated="false"]"#).await?;
    ensure!(hydrated.len() == 1, "scripts really are off");
    h.screenshot("landing").await?;

    h.click(r#"main a[href="/pricing"]"#).await?;
    h.wait_for_texts("section[data-plan] h2", &PLAN_NAMES)
        .await?;
    h.wait_for_texts("[data-price]", &MONTHLY_PRICES).await?;
    h.screenshot("pricing-monthly").await?;

    h.click(r#"a[data-interval="yearly"]"#).await?;
    h.wait_for_texts("[data-price]", &YEARLY_PRICES).await?;
    ensure!(h.path().await? == "/pricing?billing=yearly");
    h.screenshot("pricing-yearly").await?;

    // Signed out, the dashboard sends to sign in (a real 302, no script needed).
    h.visit("/dashboard").await?;
    h.wait_for_path("/login").await?;
    h.screenshot("login").await?;
    h.visit("/signup").await?;
    h.assert_accessible("/signup (no JavaScript)").await?;
    h.visit("/help").await?;
    h.assert_accessible("/help (no JavaScript)").await?;
    // The copy audited is this page as shown: faults planted in it are found.
    audit_finds_planted_faults(&h).await?;

    h.visit("/no-such-page").await?;
    h.wait_for_texts("main h1", &["Page not found"]).await?;
    h.screenshot("not-found").await?;
    h.finish().await
}
