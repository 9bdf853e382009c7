//! The sites journey in Chromium against a real server, Docker engine and PostgreSQL:
//! create a site, watch it provision live (server-sent events, no reload), read its
//! deployment, restart it, delete it with confirmation; and the same pages without
//! JavaScript, where a refresh shows the progress.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use end2end::{Harness, JavaScript};

async fn sign_up_on_pro(h: &Harness, email: &str) -> Result<()> {
    h.visit("/signup").await?;
    h.submit(
        "signup",
        &[
            ("name", "Grace Hopper"),
            ("email", email),
            ("password", "correct horse battery"),
            ("organization", "Compilers Inc"),
        ],
    )
    .await?;
    h.wait_for_texts("main h1", &["Overview"]).await?;
    h.sql("UPDATE organizations SET plan_id = 'pro'").await
}

/// Polls (reloading when `reload`) until the site page shows `status`.
async fn wait_for_status(h: &Harness, status: &str, reload: bool, within: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let shown = h.texts("main h1 + [data-status]").await.unwrap_or_default();
        if shown.first().is_some_and(|s| s.starts_with(status)) {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the page never showed {status} (it shows {shown:?})"
        );
        if reload {
            h.browser.refresh().await?;
        }
        tokio::time::sleep(Duration::from_millis(if reload { 1000 } else { 100 })).await;
    }
}

/// Waits until visitors of the site `slug` get `wanted` through Slipway's proxy.
async fn visitors_get(h: &Harness, slug: &str, wanted: u16) -> Result<()> {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = client
            .get(format!("http://127.0.0.1:{}/", h.proxy_port))
            .header("Host", format!("{slug}.localhost"))
            .send()
            .await?
            .status()
            .as_u16();
        if status == wanted {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "visitors of {slug} never got {wanted} (last: {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// At 390 px (a phone) every dashboard page of an organization with a site fits the window:
/// nothing scrolls sideways, tables are stacked cards, and the shots show each page.
/// Every page of the dashboard (and help), with a short name for screenshots.
fn dashboard_pages(site_page: &str) -> [(&str, &'static str); 10] {
    [
        ("/dashboard", "overview"),
        ("/dashboard/sites", "sites"),
        (site_page, "site"),
        ("/dashboard/sites/new", "new-site"),
        ("/dashboard/team", "team"),
        ("/dashboard/billing", "billing"),
        ("/dashboard/usage", "usage"),
        ("/dashboard/settings", "settings"),
        ("/dashboard/account", "account"),
        ("/help", "help"),
    ]
}

/// At a phone's width, every dashboard page hydrates, fits without scrolling sideways, is
/// usable by keyboard alone and passes the accessibility audit.
async fn every_dashboard_page_fits_a_phone(h: &mut Harness, site_page: &str) -> Result<()> {
    h.resize(390, 844).await?;
    for (path, name) in dashboard_pages(site_page) {
        let mark = h.console_mark().await?;
        h.visit(path).await?;
        if let Err(error) = h.wait_hydrated().await {
            // What the browser has: a page that did not hydrate, or none yet.
            let body: String = h.texts("body").await?.concat().chars().take(300).collect();
            bail!(
                "{path}: {error}; console: {:?}; page: {body:?}",
                h.console_errors().await?
            );
        }
        // Each page comes alive in the browser: a hydration error would leave it dead.
        h.assert_no_panics_since(mark)
            .await
            .with_context(|| format!("{path} hydrates"))?;
        h.wait_for_text_containing("main h1", "").await?;
        h.assert_no_horizontal_overflow()
            .await
            .with_context(|| format!("{path} at 390 px"))?;
        h.assert_keyboard_usable(&format!("{path} at 390 px"))
            .await?;
        h.screenshot(&format!("phone-{name}")).await?;
    }
    h.resize(1280, 900).await
}

/// Where each promise of the public pages is kept: the place in the dashboard and what shows
/// it there. `None`: a term of the plan, not something the dashboard shows.
fn where_kept(promise: &str, site_page: &str) -> Option<Option<(String, &'static str)>> {
    let at = |path: &str, css: &'static str| Some(Some((path.to_owned(), css)));
    match promise {
        // The landing page's three.
        "provisioning" => at(site_page, "[data-deployments] [data-step]"),
        "limits" => at(site_page, "[data-limits]"),
        "monitoring" => at(site_page, "[data-health]"),
        // The pricing cards' lines.
        p if p.contains("hosted site") || p == "Unlimited sites" => {
            at("/dashboard/sites", "[data-site-usage]")
        }
        p if p.contains("team member") => at("/dashboard/team", "[data-members]"),
        p if p.contains("per site") && !p.contains("bandwidth") => at(site_page, "[data-limits]"),
        p if p.contains("bandwidth") => at("/dashboard/usage", "[data-usage-month]"),
        "Custom domains" => at(site_page, "#domains"),
        "API access" => at("/dashboard/settings", r#"form[data-form="create-key"]"#),
        "Self-hosted on your own server"
        | "Community support"
        | "99.9% uptime SLA"
        | "Pay-as-you-go overages" => Some(None),
        _ => None,
    }
}

/// Every promise the landing and pricing pages make is kept somewhere a customer on the
/// Pro plan reaches: each is visited and looked for. A promise with no place fails.
async fn keeps_every_public_promise(h: &mut Harness, site_page: &str) -> Result<()> {
    let mut promises: Vec<String> = Vec::new();
    h.visit("/").await?;
    let landing = h
        .browser
        .execute(
            "return [...document.querySelectorAll('[data-promise]')].map(e => e.dataset.promise);",
            vec![],
        )
        .await?;
    promises.extend(
        landing
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned)),
    );
    ensure!(
        promises.len() == 3,
        "the landing page's promises: {promises:?}"
    );
    h.visit("/pricing").await?;
    promises.extend(
        h.texts("section[data-plan] ul li")
            .await?
            .into_iter()
            .map(|line| line.trim_start_matches('✓').trim().to_owned()),
    );
    let mut checked = 0;
    for promise in &promises {
        let Some(place) = where_kept(promise, site_page) else {
            anyhow::bail!(
                "the public pages promise {promise:?}, and no place in the dashboard keeps it"
            );
        };
        let Some((path, css)) = place else { continue };
        h.visit(&path).await?;
        h.wait_for_text_containing(css, "")
            .await
            .with_context(|| format!("{promise:?} is kept at {path} ({css})"))?;
        checked += 1;
    }
    ensure!(checked >= 10, "{checked} promises looked for: {promises:?}");
    // And nothing Slipway does not do yet is named anywhere on those pages.
    for path in ["/", "/pricing"] {
        h.visit(path).await?;
        let text = h.texts("body").await?.join(" ").to_lowercase();
        for undelivered in ["ssl", "backup", "white-label", "your brand"] {
            ensure!(
                !text.contains(undelivered),
                "{path} promises {undelivered:?}, which Slipway does not deliver yet"
            );
        }
    }
    Ok(())
}

/// An operator (the signed-in user, made one) finds the organization on the list by its
/// member's `email`, opens it, and suspends its site `slug` with a reason: visitors get the
/// 503 page and the page shows why; resumed with a reason, the site serves again. The same
/// clicks with and without JavaScript (`label` names the screenshots).
async fn operator_suspends_and_resumes(
    h: &mut Harness,
    email: &str,
    slug: &str,
    label: &str,
) -> Result<()> {
    h.sql(&format!(
        "UPDATE users SET is_operator = true WHERE email = '{email}'"
    ))
    .await?;
    h.visit("/admin/organizations").await?;
    h.submit("organizations", &[("q", email)]).await?;
    h.wait_for_path(&format!(
        "/admin/organizations?q={}&plan=&billing=&sort=newest",
        email.replace('@', "%40")
    ))
    .await?;
    h.wait_for_text_containing("[data-table=organizations] tbody", email)
        .await?;
    h.click("[data-table=organizations] tbody tr a").await?;
    h.wait_for_text_containing("[data-organization-name]", "Compilers Inc")
        .await?;
    h.wait_for_text_containing(&format!(r#"[data-site="{slug}"]"#), "active")
        .await?;
    h.submit(
        &format!("suspend-{slug}"),
        &[("reason", "phishing report 913")],
    )
    .await?;
    h.wait_for_text_containing(
        &format!(r#"[data-site="{slug}"] [data-suspended]"#),
        "Suspended by the operators of this service: phishing report 913",
    )
    .await?;
    visitors_get(h, slug, 503).await?;
    h.wait_for_text_containing("[data-audit]", "phishing report 913")
        .await?;
    h.screenshot(&format!("operator-organization-{label}"))
        .await?;
    h.submit(
        &format!("resume-{slug}"),
        &[("reason", "cleared after review")],
    )
    .await?;
    h.wait_for_text_containing("[data-audit]", "cleared after review")
        .await?;
    ensure!(
        h.texts(&format!(r#"[data-site="{slug}"] [data-suspended]"#))
            .await?
            .is_empty(),
        "resumed: no suspension shown"
    );
    visitors_get(h, slug, 200).await?;
    // A failed provisioning, as the reconciler leaves one (its next try an hour away),
    // retried now: the reconciler runs it at once and the site is active again.
    h.sql(&format!(
        "UPDATE sites SET status = 'failed', failures = 5,
                status_reason = 'the app did not answer its health check',
                next_attempt_at = now() + interval '1 hour'
          WHERE slug = '{slug}'"
    ))
    .await?;
    let organization_page = h.path().await?;
    h.visit(&organization_page).await?;
    h.wait_for_text_containing(
        &format!(r#"[data-site="{slug}"] [data-failure]"#),
        "Provisioning failed: the app did not answer its health check",
    )
    .await?;
    h.screenshot(&format!("operator-failed-site-{label}"))
        .await?;
    h.submit(&format!("retry-{slug}"), &[("reason", "registry is back")])
        .await?;
    let status = format!("SELECT status FROM sites WHERE slug = '{slug}'");
    wait_until(
        || async { Ok(h.query_strings(&status).await? == ["active"]) },
        Duration::from_secs(60),
        "the retried site is active again",
    )
    .await?;
    let retries = h
        .query_strings(&format!(
            "SELECT d.reason FROM deployments d JOIN sites s ON s.id = d.site_id
              JOIN users u ON u.id = d.requested_by
             WHERE s.slug = '{slug}' AND u.email = '{email}' AND d.reason = 'retry'"
        ))
        .await?;
    ensure!(retries.len() == 1, "one retry by the operator: {retries:?}");
    visitors_get(h, slug, 200).await?;
    // The member's account, from the user list: its organizations and sessions.
    h.visit("/admin/users").await?;
    h.submit("users", &[("q", email), ("sort", "oldest")])
        .await?;
    h.wait_for_path(&format!(
        "/admin/users?q={}&state=&sort=oldest",
        email.replace('@', "%40")
    ))
    .await?;
    h.screenshot(&format!("operator-users-{label}")).await?;
    h.click("[data-table=users] tbody tr a").await?;
    h.wait_for_text_containing("[data-user-email]", email)
        .await?;
    h.wait_for_text_containing("[data-organizations]", "Compilers Inc")
        .await?;
    h.wait_for_text_containing("[data-sessions]", "UTC").await?;
    h.screenshot(&format!("operator-user-{label}")).await?;
    operator_retries_a_dead_job(h, label).await?;
    operator_reconciles_a_site(h, email, slug, label).await
}

/// From the site list to the site's page, where the operator forces a reconcile: the
/// reconciler runs the site's whole pass again and it keeps serving; the operator audit
/// log finds the action by its reason.
async fn operator_reconciles_a_site(
    h: &mut Harness,
    email: &str,
    slug: &str,
    label: &str,
) -> Result<()> {
    h.visit("/admin/sites").await?;
    h.submit("sites", &[("q", slug), ("sort", "name")]).await?;
    h.wait_for_path(&format!("/admin/sites?q={slug}&state=&plan=&sort=name"))
        .await?;
    h.screenshot(&format!("operator-sites-{label}")).await?;
    h.click(&format!(r#"[data-site="{slug}"] th a"#)).await?;
    h.wait_for_text_containing("[data-fact=Status]", "active")
        .await?;
    h.screenshot(&format!("operator-site-{label}")).await?;
    // Operators read what each step did, in the platform's own terms.
    h.wait_for_text_containing("[data-deployments]", "schema and role site_")
        .await?;
    let reason = format!("limits edited by hand ({label})");
    h.submit(&format!("reconcile-{slug}"), &[("reason", &reason)])
        .await?;
    let reconciled = format!(
        "SELECT d.status FROM deployments d JOIN sites s ON s.id = d.site_id
           JOIN users u ON u.id = d.requested_by
          WHERE s.slug = '{slug}' AND u.email = '{email}' AND d.reason = 'reconcile'"
    );
    let done = wait_until(
        || async { Ok(h.query_strings(&reconciled).await? == ["succeeded"]) },
        Duration::from_secs(60),
        "the forced reconcile runs once and succeeds",
    )
    .await;
    if let Err(error) = done {
        h.screenshot(&format!("debug-reconcile-{label}")).await?;
        let refused = h.texts("[data-form-error]").await?;
        let deployments = h
            .query_strings(&format!(
                "SELECT d.reason || ' ' || d.status || ' ' || coalesce(d.error, '')
                   FROM deployments d JOIN sites s ON s.id = d.site_id
                  WHERE s.slug = '{slug}' ORDER BY d.created_at"
            ))
            .await?;
        anyhow::bail!("{error}; refused: {refused:?}; deployments: {deployments:?}");
    }
    visitors_get(h, slug, 200).await?;
    h.visit("/admin/audit").await?;
    h.submit("audit", &[("q", &reason)]).await?;
    h.wait_for_text_containing("[data-table=audit] tbody", "site.reconcile")
        .await?;
    h.screenshot(&format!("operator-audit-{label}")).await?;
    // Local billing mode: the organization on Pro is a subscription.
    h.visit("/admin/subscriptions").await?;
    h.wait_for_text_containing("[data-table=subscriptions] tbody", "Compilers Inc")
        .await?;
    h.screenshot(&format!("operator-subscriptions-{label}"))
        .await?;
    h.visit("/admin/incidents").await?;
    h.wait_for_text_containing("[data-operator-page=incidents] h1", "Incidents")
        .await?;
    h.screenshot(&format!("operator-incidents-{label}")).await?;
    h.visit("/admin/organizations").await?;
    h.wait_for_text_containing("[data-table=organizations] tbody", "Compilers Inc")
        .await?;
    h.screenshot(&format!("operator-organizations-{label}"))
        .await?;
    Ok(())
}

/// A job that gave up is found on the job list (searched, dead ones only) and retried
/// with a reason: it leaves the dead list, the audit log keeps the retry, and the workers
/// run it again (a mail already delivered: it succeeds at once).
async fn operator_retries_a_dead_job(h: &mut Harness, label: &str) -> Result<()> {
    let key = format!("e2e-dead-mail-{label}");
    let job = h
        .query_strings(&format!(
            "INSERT INTO jobs (kind, state, attempts, last_error, unique_key, payload,
                               first_attempt_at, finished_at)
             SELECT 'mail', 'dead', 9, 'SMTP: connection refused', '{key}',
                    jsonb_build_object('outbox_id', min(id)), now() - interval '1 day', now()
               FROM mail_outbox
             RETURNING id::text"
        ))
        .await?
        .remove(0);
    h.visit("/admin/jobs").await?;
    h.submit("jobs", &[("q", &key), ("state", "dead")]).await?;
    h.wait_for_path(&format!("/admin/jobs?q={key}&state=dead&sort=newest"))
        .await?;
    let row = format!(r#"[data-job="{job}"]"#);
    h.wait_for_text_containing(&format!("{row} [data-error]"), "SMTP: connection refused")
        .await?;
    wait_until(
        || async { Ok(h.texts("[data-table=jobs] tbody tr").await?.len() == 1) },
        Duration::from_secs(10),
        "the search and the filter leave the one job",
    )
    .await?;
    h.screenshot(&format!("operator-jobs-{label}")).await?;
    h.submit(&format!("retry-{job}"), &[("reason", "relay fixed")])
        .await?;
    wait_until(
        || async { Ok(h.texts(&row).await?.is_empty()) },
        Duration::from_secs(10),
        "the retried job leaves the dead list",
    )
    .await?;
    let audited = h
        .query_strings(&format!(
            "SELECT details->>'reason' FROM audit_log
              WHERE action = 'job.retry' AND subject = 'job:{job}'"
        ))
        .await?;
    ensure!(audited == ["relay fixed"], "audited: {audited:?}");
    let query = format!("SELECT state FROM jobs WHERE id = {job}");
    wait_until(
        || async { Ok(h.query_strings(&query).await? == ["succeeded"]) },
        Duration::from_secs(10),
        "the workers run the retried job",
    )
    .await
}

/// Polls `done` every 100 ms for up to `within`; fails with `what` if it never holds.
async fn wait_until<F, Done>(done: F, within: Duration, what: &str) -> Result<()>
where
    F: Fn() -> Done,
    Done: std::future::Future<Output = Result<bool>>,
{
    let deadline = std::time::Instant::now() + within;
    while !done().await? {
        ensure!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn create_watch_live_restart_and_delete_a_site() -> Result<()> {
    let mut h = Harness::start("sites_journey", JavaScript::Enabled).await?;
    sign_up_on_pro(&h, "grace@example.com").await?;

    h.visit("/dashboard/sites").await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing("[data-empty-state]", "No sites yet")
        .await?;
    h.wait_for_text_containing("[data-site-usage]", "0 of 5 sites on the Pro plan")
        .await?;
    h.click(r#"a[href="/dashboard/sites/new"]"#).await?;
    h.wait_for_path("/dashboard/sites/new").await?;
    h.wait_hydrated().await?;

    // Every mistake at once, each next to its field; then refused slugs.
    h.submit("create-site", &[("name", " "), ("slug", "admin")])
        .await?;
    h.wait_for_texts(
        r#"[data-field-error="slug"]"#,
        &["This name is reserved. Choose another."],
    )
    .await?;
    h.assert_field_error("create-site", "name", "Enter a name for your site.")
        .await?;
    h.assert_field_error(
        "create-site",
        "slug",
        "This name is reserved. Choose another.",
    )
    .await?;
    h.submit("create-site", &[("name", "Docs"), ("slug", "Bad Slug!")])
        .await?;
    h.wait_for_texts(
        r#"[data-field-error="slug"]"#,
        &["Use only lowercase letters a-z, digits and hyphens."],
    )
    .await?;
    h.screenshot("new-site-errors").await?;

    // Created: the page of the new site, which fills in step by step without a reload.
    h.submit(
        "create-site",
        &[("name", "Team docs"), ("slug", "team-docs")],
    )
    .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !h.path().await?.starts_with("/dashboard/sites/")
        || h.path().await? == "/dashboard/sites/new"
    {
        ensure!(
            std::time::Instant::now() < deadline,
            "no redirect to the site page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.wait_hydrated().await?;
    let page = h.path().await?;
    // Mark the document: if it were reloaded, the mark would be gone.
    h.browser
        .execute("window.__no_reload_mark = 1;", vec![])
        .await?;
    h.wait_for_text_containing("[data-site-name]", "Team docs")
        .await?;
    // The first step as it appears (the shot shows work in progress when it is quick enough).
    h.wait_for_text_containing("[data-deployments]", "Set up the database")
        .await?;
    h.screenshot("site-provisioning").await?;
    wait_for_status(&h, "active", false, Duration::from_secs(60)).await?;
    let mark = h
        .browser
        .execute("return window.__no_reload_mark === 1;", vec![])
        .await?;
    ensure!(
        mark.as_bool() == Some(true),
        "the page was reloaded instead of updated live"
    );
    ensure!(h.path().await? == page);
    let steps = h
        .texts("[data-deployment] [data-step] span:nth-child(2)")
        .await?;
    ensure!(
        steps
            == [
                "Set up the database",
                "Prepare the application",
                "Set up the server",
                "Start",
                "Check that the site answers",
            ],
        "steps shown: {steps:?}"
    );
    let states = h
        .texts(r#"[data-deployment] [data-step-status="succeeded"]"#)
        .await?;
    ensure!(states.len() == 5, "all five steps succeeded: {states:?}");
    let site_url = format!("http://team-docs.localhost:{}", h.proxy_port);
    h.wait_for_text_containing("[data-site-url]", &site_url)
        .await?;
    h.wait_for_text_containing("[data-limits]", "512 MiB")
        .await?;
    // The log panel of this page, opened before the container existed, shows the app's
    // first line once it is written, without a reload.
    h.wait_for_text_containing("[data-logs]", "listening on 0.0.0.0:8000")
        .await?;
    ensure!(
        h.browser
            .execute("return window.__no_reload_mark === 1;", vec![])
            .await?
            .as_bool()
            == Some(true),
        "the log panel updated live"
    );
    h.screenshot("site-active").await?;
    // No internals: the customer reads no database role, container id, image or millicores.
    let container = h
        .query_strings("SELECT container_id FROM sites WHERE slug = 'team-docs'")
        .await?
        .remove(0);
    let page_text = h.texts("#app").await?.join("\n");
    ensure!(page_text.contains("Application: Slipway CMS (posts and pages)"));
    for internal in [&container[..12], "site_", "slipway-site", "mCPU"] {
        ensure!(
            !page_text.contains(internal),
            "the site page shows {internal:?}: {page_text}"
        );
    }
    // The overview shows the site with its status and this month against the limits; the
    // checklist has its first step done.
    h.visit("/dashboard").await?;
    h.wait_for_text_containing(
        r#"[data-overview-site="Team docs"] [data-status]"#,
        "active",
    )
    .await?;
    let bars = h
        .texts(r#"[data-overview-site="Team docs"] [data-limit]"#)
        .await?;
    ensure!(bars.len() == 3, "requests, bandwidth, storage: {bars:?}");
    ensure!(
        h.texts(r#"[data-checklist] [data-step="site"][data-done="true"]"#)
            .await?
            .len()
            == 1,
        "the first step is done"
    );
    h.screenshot("overview-active").await?;
    every_dashboard_page_fits_a_phone(&mut h, &page).await?;
    h.visit(&page).await?;
    h.wait_hydrated().await?;

    // Health: the monitor's first probe shows, with a 90-day uptime bar. A crash is seen,
    // the site restarted, and the incident and the restart appear on the page.
    h.wait_for_text_containing("[data-health]", "Up").await?;
    let days = h.texts("[data-uptime-bar] rect").await?.len();
    ensure!(days == 90, "one cell per day for 90 days: {days}");
    let site_id = h
        .query_strings("SELECT id::text FROM sites WHERE slug = 'team-docs'")
        .await?
        .remove(0);
    let killed = tokio::process::Command::new("docker")
        .args(["kill", &format!("slipway-site-{site_id}")])
        .stdout(std::process::Stdio::null())
        .status()
        .await?;
    ensure!(killed.success(), "docker kill");
    h.wait_for_text_containing("[data-incident=\"down\"]", "answering again")
        .await?;
    h.wait_for_text_containing("[data-restart]", "started (attempt 1")
        .await?;
    h.wait_for_text_containing("[data-health]", "Up").await?;
    h.screenshot("site-health").await?;
    // While an incident is open, every dashboard page says so. (The counts it stands on are
    // recorded too, so the monitor's own judgement keeps it open meanwhile.)
    h.sql(&format!(
        "INSERT INTO usage_minutes (site_id, organization_id, minute, requests, status_5xx)
         SELECT id, organization_id, date_trunc('minute', now()), 500, 16
           FROM sites WHERE id = '{site_id}';
         INSERT INTO incidents (organization_id, site_id, kind, summary)
         SELECT organization_id, id, 'error_rate',
                '16 of 500 requests in the last 15 minutes failed with a server error (3.2%)'
           FROM sites WHERE id = '{site_id}'"
    ))
    .await?;
    h.visit("/dashboard/sites").await?;
    h.wait_for_text_containing("[data-incident-banner]", "Many failing requests")
        .await?;
    h.screenshot("incident-banner").await?;
    // Members choose their alert mails on the settings page (owners get them all at first).
    h.visit("/dashboard/settings").await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing("[data-alerts]", "More than 1% of a site's requests fail")
        .await?;
    h.click(r#"[data-alerts] input[value="usage"]"#).await?;
    h.click("[data-alerts] button[type=submit]").await?;
    h.wait_for_text_containing("[data-saved]", "Saved.").await?;
    let chosen = h
        .query_strings(
            "SELECT p.kind || '=' || p.enabled FROM alert_preferences p JOIN users u ON u.id = p.user_id
              WHERE u.email = 'grace@example.com' ORDER BY p.kind",
        )
        .await?;
    ensure!(
        chosen
            == [
                "crash_looping=true",
                "down=true",
                "error_rate=true",
                "usage=false"
            ],
        "alert choices stored: {chosen:?}"
    );
    h.screenshot("settings-alerts").await?;
    // Operators see every organization's incidents in their feed.
    h.sql("UPDATE users SET is_operator = true WHERE email = 'grace@example.com'")
        .await?;
    h.visit("/admin").await?;
    h.wait_for_text_containing("[data-incident-feed]", "Many failing requests")
        .await?;
    h.wait_for_text_containing("[data-incident-feed]", "Site down")
        .await?;
    h.screenshot("admin-incidents").await?;
    h.sql(
        "DELETE FROM usage_minutes;
         UPDATE incidents SET resolved_at = now() WHERE kind = 'error_rate'",
    )
    .await?;
    h.visit(&page).await?;
    h.wait_for_text_containing("[data-logs]", "listening on 0.0.0.0:8000")
        .await?;
    // Each line says when it was written (UTC, to the second).
    let logs = h.texts("[data-logs]").await?.join("\n");
    let listening = logs
        .lines()
        .find(|line| line.contains("listening on"))
        .unwrap_or_default();
    ensure!(
        listening.len() > 20
            && listening.as_bytes()[..19]
                .iter()
                .enumerate()
                .all(|(i, b)| match i {
                    4 | 7 => *b == b'-',
                    10 => *b == b' ',
                    13 | 16 => *b == b':',
                    _ => b.is_ascii_digit(),
                }),
        "a log line starts with its time: {listening:?}"
    );
    keeps_every_public_promise(&mut h, &page).await?;
    h.visit(&page).await?;
    h.wait_hydrated().await?;
    // The refused creations above answered 422 (the browser logs those); nothing else.
    let errors: Vec<String> = h
        .console_errors()
        .await?
        .into_iter()
        .filter(|e| !e.contains("/api/sites/create - Failed to load resource: the server responded with a status of 422"))
        .collect();
    ensure!(errors.is_empty(), "console errors: {errors:?}");

    // Visitors reach it through Slipway's proxy (Chromium resolves *.localhost itself),
    // and their traffic shows on the usage charts.
    for _ in 0..3 {
        h.browser.goto(&format!("{site_url}/")).await?;
        h.wait_for_text_containing("header strong", "Team docs")
            .await?;
    }
    h.screenshot("site-through-proxy").await?;
    // Flushed every second here: three page views (the browser's favicon requests count as
    // requests, not page views).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let views = h
            .query_strings("SELECT COALESCE(sum(page_views), 0)::text FROM usage_hourly")
            .await?;
        if views == ["3"] {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "page views counted: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let requests = h
        .query_strings("SELECT sum(requests)::text FROM usage_hourly")
        .await?;
    h.visit(&page).await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing(
        r#"[data-chart="requests"] figcaption"#,
        &format!("{} in 30 days", requests[0]),
    )
    .await?;
    let bars = h.texts(r#"[data-chart="requests"] rect"#).await?;
    ensure!(bars.len() == 30, "one bar per day: {}", bars.len());
    // (After the count of page views: the operator's checks visit the site too.)
    operator_suspends_and_resumes(&mut h, "grace@example.com", "team-docs", "js").await?;
    h.visit(&page).await?;
    h.wait_hydrated().await?;

    // A custom domain: the records to create, then a verification that cannot pass yet.
    h.submit("domain-add", &[("domain", "Docs.Example.com")])
        .await?;
    h.wait_for_text_containing(
        r#"[data-domain="docs.example.com"] [data-dns-records]"#,
        "_slipway-challenge.docs.example.com",
    )
    .await?;
    h.wait_for_text_containing(r#"[data-domain="docs.example.com"]"#, "team-docs.localhost")
        .await?;
    h.submit("domain-verify", &[]).await?;
    h.wait_for_text_containing("[data-domain-error]", "DNS could not be queried")
        .await?;
    h.submit("domain-add", &[("domain", "docs.localhost")])
        .await?;
    h.wait_for_text_containing(r#"[data-field-error="domain"]"#, "belong to Slipway")
        .await?;
    // The DNS values have copy buttons: a click copies (or says to select the value).
    let copy = r#"[data-domain="docs.example.com"] [data-dns-records] [data-copy]"#;
    ensure!(h.texts(copy).await?.first().map(String::as_str) == Some("Copy"));
    h.click(copy).await?;
    wait_until(
        || async {
            let said = h.texts(copy).await?;
            Ok(said
                .first()
                .is_some_and(|s| s == "Copied" || s == "Select and copy it"))
        },
        Duration::from_secs(5),
        "the copy button answers",
    )
    .await?;
    h.screenshot("site-domains").await?;

    // The organization's usage page: 29 earlier days of history (seeded here so the chart
    // has a shape to look at) plus today's real visits.
    h.sql(
        "INSERT INTO usage_hourly (site_id, organization_id, hour, requests, bytes_in, bytes_out, page_views, storage_bytes)
         SELECT s.id, s.organization_id, date_trunc('hour', now()) - make_interval(days => d),
                400 + (d * 37) % 250, 20000 * d, 3500000 + 90000 * ((d * 13) % 17), 300, 9000000 + d * 20000
           FROM sites s, generate_series(1, 29) AS d",
    )
    .await?;
    h.visit("/dashboard/usage").await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing(r#"[data-site-usage="team-docs"]"#, "of 2,500,000")
        .await?;
    h.wait_for_text_containing("[data-usage-month]", "on the Pro plan")
        .await?;
    let levels = h
        .texts(r#"[data-site-usage="team-docs"] [data-level="fine"]"#)
        .await?;
    ensure!(levels.len() == 3, "three bars within limits: {levels:?}");
    h.screenshot("usage").await?;
    h.visit(&page).await?;
    h.wait_hydrated().await?;
    // Hydration went through on every page above: no errors but the refused domain (422).
    // The hosted site has its own icon: no 404 for it either.
    let errors: Vec<String> = h
        .console_errors()
        .await?
        .into_iter()
        .filter(|e| !e.contains("status of 422"))
        .collect();
    ensure!(errors.is_empty(), "console errors: {errors:?}");

    // Rename: refused without a name (the form stays open with its error), then the new
    // name shows; the address stays.
    h.click("[data-actions] details[data-rename] summary")
        .await?;
    h.submit("site-rename", &[("name", " ")]).await?;
    h.wait_for_texts(
        r#"details[data-rename][open] [data-field-error="name"]"#,
        &["Enter a name for your site."],
    )
    .await?;
    h.assert_field_error("site-rename", "name", "Enter a name for your site.")
        .await?;
    h.submit("site-rename", &[("name", "Team handbook")])
        .await?;
    h.wait_for_texts("[data-site-name]", &["Team handbook"])
        .await?;
    ensure!(
        h.texts("[data-site-url]").await?[0].contains("team-docs"),
        "the address stays"
    );

    // Restart: asked first (it interrupts visitors), then a second deployment, shown live.
    h.click(r#"form[data-form="site-restart"] [data-open-confirm]"#)
        .await?;
    h.wait_for_text_containing(
        r#"form[data-form="site-restart"] dialog[open]"#,
        "Visitors get errors for a few seconds",
    )
    .await?;
    h.screenshot("restart-confirm").await?;
    h.click(r#"form[data-form="site-restart"] dialog[open] [data-cancel]"#)
        .await?;
    h.assert_dialog_by_keyboard("site-restart").await?;
    h.confirm_in_dialog("site-restart", "Visitors get errors for a few seconds")
        .await?;
    if let Err(e) = h
        .wait_for_text_containing("[data-deployments] > li:first-child", "Restart")
        .await
    {
        h.screenshot("debug-restart").await?;
        eprintln!("CONSOLE {:?} {e}", h.console_errors().await?);
    }
    h.wait_for_text_containing("[data-deployments] > li:first-child", "Restart")
        .await?;
    wait_for_status(&h, "active", false, Duration::from_secs(60)).await?;
    h.wait_for_text_containing("[data-deployments] > li:first-child", "restarted")
        .await?;
    writes_in_the_editor(&mut h, &page, &site_url, true).await?;
    changes_the_sites_settings(&mut h, &page, "team-docs", &site_url, true).await?;

    // The list shows it with its badge.
    h.visit("/dashboard/sites").await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing(r#"[data-site="team-docs"]"#, "active")
        .await?;
    h.screenshot("sites-list").await?;

    // Delete: the slug must be typed; then the site goes away.
    h.visit(&page).await?;
    h.wait_hydrated().await?;
    h.click("[data-actions] details[data-delete] summary")
        .await?;
    h.submit("site-delete", &[("confirm", "wrong")]).await?;
    h.wait_for_text_containing(
        r#"[data-field-error="confirm"]"#,
        "Type team-docs to confirm",
    )
    .await?;
    h.screenshot("site-delete-confirm").await?;
    h.submit("site-delete", &[("confirm", "team-docs")]).await?;
    h.wait_for_path("/dashboard/sites").await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let gone = sqlx_status(&h).await?;
        if gone == "deleted" {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the site was never deleted (status {gone})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.visit("/dashboard/sites").await?;
    h.wait_for_text_containing("[data-empty-state]", "No sites yet")
        .await?;
    h.finish().await
}

/// The site's settings, from its page: every mistake at once, with what was typed kept
/// (without JavaScript too); then a tagline and a visitor password that reach the running
/// site (its visitors are asked for the password), the secret never sent back to the page,
/// and its removal behind a confirmation.
async fn changes_the_sites_settings(
    h: &mut Harness,
    page: &str,
    slug: &str,
    site_url: &str,
    javascript: bool,
) -> Result<()> {
    let label = if javascript { "js" } else { "no-js" };
    let tagline = "Notes from the harbour";
    h.visit(page).await?;
    if javascript {
        h.wait_hydrated().await?;
    }
    h.submit(
        "site-settings",
        &[
            ("values[SITE_TAGLINE]", tagline),
            ("values[SITE_PASSWORD]", "short"),
        ],
    )
    .await?;
    h.wait_for_text_containing(
        r#"[data-field-error="values[SITE_PASSWORD]"]"#,
        "at least 8 characters",
    )
    .await?;
    h.assert_field_error(
        "site-settings",
        "values[SITE_PASSWORD]",
        "Visitor password needs at least 8 characters.",
    )
    .await?;
    // With JavaScript the form is never replaced; without, the page comes back with the
    // tagline as typed and the password field empty (a secret is never sent back).
    h.assert_form_kept(
        page,
        "site-settings",
        &[
            ("values[SITE_TAGLINE]", tagline),
            (
                "values[SITE_PASSWORD]",
                if javascript { "short" } else { "" },
            ),
        ],
    )
    .await?;
    h.screenshot(&format!("site-settings-refused-{label}"))
        .await?;

    h.submit(
        "site-settings",
        &[
            ("values[SITE_TAGLINE]", tagline),
            ("values[SITE_PASSWORD]", "correct horse"),
        ],
    )
    .await?;
    h.wait_for_text_containing(r#"[data-setting="SITE_PASSWORD"]"#, "Set.")
        .await?;
    ensure!(
        !h.browser.source().await?.contains("correct horse"),
        "a secret is never sent back to the page"
    );
    // The new container asks visitors for the password.
    visitors_get(h, slug, 401).await?;
    h.wait_for_text_containing("[data-deployments]", "Settings changed")
        .await?;
    h.screenshot(&format!("site-settings-saved-{label}"))
        .await?;

    // Removing it is confirmed first; then the site is open again.
    let form = "unset-SITE_PASSWORD";
    if javascript {
        h.confirm_in_dialog(form, "Remove the visitor password?")
            .await?;
    } else {
        h.click(&format!(r#"form[data-form="{form}"] details summary"#))
            .await?;
        h.click(&format!(
            r#"form[data-form="{form}"] details button[type="submit"]"#
        ))
        .await?;
    }
    h.wait_for_text_containing(r#"[data-setting="SITE_PASSWORD"]"#, "Not set.")
        .await?;
    visitors_get(h, slug, 200).await?;
    h.browser.goto(&format!("{site_url}/")).await?;
    h.wait_for_texts("[data-tagline]", &[tagline]).await?;
    h.screenshot(&format!("site-with-tagline-{label}")).await?;
    Ok(())
}

/// A 24-pixel indigo square: an image the editor accepts.
const PICTURE: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x18\x00\x00\x00\x18\x08\x02\x00\x00\x00\x6f\x15\xaa\xaf\x00\x00\x00\x1f\x49\x44\x41\x54\x78\xda\x63\x70\xb6\x38\x45\x15\xc4\x30\x6a\xd0\xa8\x41\xa3\x06\x8d\x1a\x34\x6a\xd0\xa8\x41\x03\x6f\x10\x00\xa8\xa3\xdb\x5f\x1f\x5e\xb9\x53\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// The hosted CMS's editor, opened from the site page ("Open editor" signs the member in
/// with a single-use ticket): an image uploaded to the site's volume, a post previewed,
/// published and read by visitors. Plain forms, so the same steps work without JavaScript;
/// with it the preview also follows the typing.
async fn writes_in_the_editor(
    h: &mut Harness,
    site_page: &str,
    site_url: &str,
    javascript: bool,
) -> Result<()> {
    use fantoccini::Locator;
    let label = if javascript { "js" } else { "no-js" };
    h.visit(site_page).await?;
    if javascript {
        h.wait_hydrated().await?;
    }
    h.click("[data-open-editor]").await?;
    wait_until(
        || async { Ok(h.browser.current_url().await?.as_str() == format!("{site_url}/editor")) },
        Duration::from_secs(10),
        "the editor opens on the site's own address",
    )
    .await?;
    h.wait_for_texts("main h1", &["Posts and pages"]).await?;
    h.wait_for_text_containing("header .who", "(owner)").await?;
    h.assert_accessible(&format!("editor ({label})")).await?;

    // An image, checked and kept on the site's volume.
    let picture = std::env::temp_dir().join(format!("slipway-e2e-shop-{label}.png"));
    std::fs::write(&picture, PICTURE)?;
    h.click(r#"a[href="/editor/images"]"#).await?;
    h.wait_for_texts("main h1", &["Images"]).await?;
    h.browser
        .find(Locator::Css("#image"))
        .await?
        .send_keys(&picture.to_string_lossy())
        .await?;
    h.click(r#"form[action="/editor/images"] button[type="submit"]"#)
        .await?;
    h.wait_for_text_containing(".notice", "![description](/uploads/")
        .await?;
    h.assert_accessible(&format!("editor images ({label})"))
        .await?;
    let snippet = h.texts("[data-upload] code").await?;
    let image = snippet
        .first()
        .and_then(|s| s.split("](").nth(1))
        .map(|s| s.trim_end_matches(')').to_owned())
        .context("the image's Markdown")?;

    // A post: previewed, then published.
    h.click(r#"a[href="/editor"]"#).await?;
    h.click(r#"a[href="/editor/new?kind=post"]"#).await?;
    h.wait_for_texts("main h1", &["New post"]).await?;
    h.browser
        .find(Locator::Css("#title"))
        .await?
        .send_keys(&format!("Opening day {label}"))
        .await?;
    let body = h.browser.find(Locator::Css("#body")).await?;
    body.send_keys(&format!("We are **open**.\n\n![the shop]({image})"))
        .await?;
    if javascript {
        // The preview follows the typing, without a round trip of the form.
        h.wait_for_text_containing("#preview strong", "open")
            .await?;
    } else {
        h.click(r#"button[value="preview"]"#).await?;
        h.wait_for_text_containing("#preview strong", "open")
            .await?;
    }
    h.screenshot(&format!("cms-editor-{label}")).await?;
    h.click(r#"button[value="publish"]"#).await?;
    h.wait_for_texts(".notice", &["Published."]).await?;
    h.screenshot(&format!("cms-published-{label}")).await?;

    // Visitors read it, image included.
    let slug = format!("opening-day-{label}");
    h.browser.goto(&format!("{site_url}/")).await?;
    h.wait_for_text_containing("main li", &format!("Opening day {label}"))
        .await?;
    h.browser.goto(&format!("{site_url}/posts/{slug}")).await?;
    h.wait_for_texts("article strong", &["open"]).await?;
    let loaded = h
        .browser
        .execute(
            "const i = document.querySelector('article img'); return !!i && i.complete && i.naturalWidth === 24;",
            vec![],
        )
        .await?;
    ensure!(
        loaded.as_bool() == Some(true),
        "the uploaded image shows in the post"
    );
    h.screenshot(&format!("cms-post-{label}")).await?;
    let _ = std::fs::remove_file(picture);
    Ok(())
}

async fn sqlx_status(h: &Harness) -> Result<String> {
    let rows = h.query_strings("SELECT status FROM sites").await?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

#[tokio::test]
async fn without_javascript_the_site_pages_work_with_refresh() -> Result<()> {
    let mut h = Harness::start("sites_no_js", JavaScript::Disabled).await?;
    sign_up_on_pro(&h, "ada@example.com").await?;
    h.visit("/dashboard/sites/new").await?;
    h.submit("create-site", &[("name", "Notes"), ("slug", "www")])
        .await?;
    h.wait_for_texts(
        r#"[data-field-error="slug"]"#,
        &["This name is reserved. Choose another."],
    )
    .await?;
    h.submit("create-site", &[("name", "Notes"), ("slug", "notes-nojs")])
        .await?;
    h.wait_for_text_containing("[data-site-name]", "Notes")
        .await?;
    h.screenshot("site-page-no-js").await?;
    // Refreshed (its "Refresh" link) until the site is active.
    wait_for_status(&h, "active", true, Duration::from_secs(60)).await?;
    let steps = h
        .texts("[data-deployment] [data-step] span:nth-child(2)")
        .await?;
    ensure!(steps.len() == 5, "steps after refreshes: {steps:?}");
    // Health and logs come from the server: the uptime bar, the figures, the last lines,
    // and a log filter that is a plain GET form.
    let days = h.texts("[data-uptime-bar] rect").await?.len();
    ensure!(days == 90, "one cell per day without JavaScript: {days}");
    let page = h.path().await?;
    // Without JavaScript the lines are those of the moment the page was served: visited
    // again until the app's first line is among them.
    wait_until(
        || async {
            h.visit(&format!("{page}?filter=listening")).await?;
            Ok(h.texts("[data-logs]")
                .await?
                .iter()
                .any(|t| t.contains("listening on 0.0.0.0:8000")))
        },
        Duration::from_secs(15),
        "the app's first log line shows",
    )
    .await?;
    let lines = h.texts("[data-logs]").await?.join("\n");
    ensure!(
        lines.lines().all(|l| l.contains("listening")),
        "only matching lines: {lines}"
    );
    h.screenshot("site-active-no-js").await?;
    for (path, _) in dashboard_pages(&page) {
        h.visit(path).await?;
        h.assert_accessible(&format!("{path} (no JavaScript)"))
            .await?;
        h.assert_keyboard_usable(&format!("{path} (no JavaScript)"))
            .await?;
    }
    h.visit(&page).await?;
    // An open incident's banner is on every page, from the server.
    h.sql(
        "INSERT INTO incidents (organization_id, kind, summary)
         SELECT organization_id, 'subscription_ending',
                'The subscription was canceled: its sites are deleted in 7 days unless it is renewed'
           FROM sites WHERE slug = 'notes-nojs'",
    )
    .await?;
    h.visit("/dashboard").await?;
    h.wait_for_text_containing("[data-incident-banner]", "Subscription ending")
        .await?;
    h.screenshot("incident-banner-no-js").await?;
    h.sql("UPDATE incidents SET resolved_at = now() WHERE kind = 'subscription_ending'")
        .await?;
    // An operator suspends the site with a reason (at the command line): its members read
    // why on its page, visitors get the 503 "suspended" page; resumed, it serves again.
    h.sql("UPDATE users SET is_operator = true WHERE email = 'ada@example.com'")
        .await?;
    let operator = |action: &'static str, reason: &'static str| {
        [
            "admin",
            action,
            "--site",
            "notes-nojs",
            "--operator",
            "ada@example.com",
            "--reason",
            reason,
        ]
    };
    h.cli(&operator("suspend-site", "phishing report 812"))
        .await?;
    visitors_get(&h, "notes-nojs", 503).await?;
    h.visit(&page).await?;
    h.wait_for_text_containing(
        "[data-suspended]",
        "Suspended by the operators of this service: phishing report 812",
    )
    .await?;
    h.screenshot("site-suspended-by-operator").await?;
    h.cli(&operator("resume-site", "page taken down")).await?;
    visitors_get(&h, "notes-nojs", 200).await?;
    // The same from the operator panel, with plain form posts.
    operator_suspends_and_resumes(&mut h, "ada@example.com", "notes-nojs", "no-js").await?;
    h.visit(&page).await?;
    ensure!(
        h.texts("[data-suspended]").await?.is_empty(),
        "no suspension shown once resumed"
    );
    let site_url = format!("http://notes-nojs.localhost:{}", h.proxy_port);
    writes_in_the_editor(&mut h, &page, &site_url, false).await?;
    changes_the_sites_settings(&mut h, &page, "notes-nojs", &site_url, false).await?;
    h.visit(&page).await?;
    // A domain added with a plain form post shows its DNS records after the redirect.
    h.submit("domain-add", &[("domain", "notes.example.org")])
        .await?;
    h.wait_for_text_containing(
        r#"[data-domain="notes.example.org"] [data-dns-records]"#,
        "_slipway-challenge.notes.example.org",
    )
    .await?;
    // The usage page is complete from the server: 30 bars per chart, a bar per limit.
    h.visit("/dashboard/usage").await?;
    let bars = h.texts(r#"[data-chart="bandwidth"] rect"#).await?;
    ensure!(
        bars.len() == 30,
        "one bar per day without JavaScript: {}",
        bars.len()
    );
    let limits = h
        .texts(r#"[data-site-usage="notes-nojs"] [data-limit]"#)
        .await?;
    ensure!(limits.len() == 3, "three limit bars: {limits:?}");
    h.screenshot("usage-no-js").await?;
    h.visit("/dashboard/sites").await?;
    h.click(r#"[data-site="notes-nojs"] a"#).await?;
    h.wait_for_text_containing("[data-site-name]", "Notes")
        .await?;
    // Delete with the typed confirmation, as a plain form post.
    h.click("[data-actions] details[data-delete] summary")
        .await?;
    h.submit("site-delete", &[("confirm", "notes-nojs")])
        .await?;
    h.wait_for_path("/dashboard/sites").await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sqlx_status(&h).await? != "deleted" {
        ensure!(std::time::Instant::now() < deadline, "never deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.finish().await
}
