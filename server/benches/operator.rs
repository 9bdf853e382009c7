//! The operator panel at scale: 10,000 organizations (each with its owner), 50,000 sites
//! with their first deployment, 5,000 custom domains, 6,000 Stripe customers and three
//! years of daily revenue snapshots, seeded in SQL; then the overview and the organization
//! list (first page, searches by part of an email, a domain, a Stripe id and a site slug, a
//! search matching nothing, the revenue order, the 20th page), an organization's page, the
//! user list (first page, by part of an email or a name, operators only), a user's page
//! (40,000 sign-in events in the audit log), the site list (first page, failed
//! provisionings, by custom domain and by a member's email), a site's page, the
//! subscription list (first page, by Stripe id, canceled ones), the incident
//! list (20,000 incidents), the job list (30,000 jobs) and the operator audit log (5,000
//! actions) measured through their server
//! functions (`POST /api/admin/...` on the real server, as the pages call them), against the
//! cheapest operator server function (`admin/check`: the session and the operator flag) in
//! the same run. Prints the plans PostgreSQL runs for the revenue series, for a search and
//! for the failed provisionings.
//!
//! `cargo bench -p server --bench operator` with DATABASE_URL at the dev cluster (a
//! database of its own is made there and dropped).
//! Settings: `RUNS` (default 30).

use std::time::{Duration, Instant};

use chrono::{Datelike, Months, NaiveDate, Utc};

#[path = "../../platform/benches/support/mod.rs"]
mod support;
use support::{BenchDb, BenchResult};

const ORGANIZATIONS: i64 = 10_000;
const SITES: i64 = 50_000;
const CUSTOMERS: i64 = 6_000;
const DAYS: i64 = 3 * 365;
const DOMAINS: i64 = 5_000;
const INCIDENTS: i64 = 20_000;
const JOBS: i64 = 30_000;
const OPERATOR_ACTIONS: i64 = 5_000;

/// Everything in set-based SQL: a few seconds for the organizations and sites, most of the
/// time for the snapshots (one row per paying organization and day).
const SEED: &[(&str, &str)] = &[
    (
        "users",
        "INSERT INTO users (id, email, name, password_hash, email_verified_at, created_at)
         SELECT md5('u' || i)::uuid, 'owner' || i || '@example.com', 'Owner ' || i, 'unused',
                now(), now() - make_interval(days => ($1 - i * $1 / $2)::int)
           FROM generate_series(1, $2) AS i",
    ),
    (
        "organizations",
        "INSERT INTO organizations (id, slug, name, plan_id, created_at)
         SELECT md5('o' || i)::uuid, 'org-' || i, 'Organization ' || i,
                (ARRAY['free', 'starter', 'pro', 'business'])[1 + i % 4],
                now() - make_interval(days => ($1 - i * $1 / $2)::int)
           FROM generate_series(1, $2) AS i",
    ),
    (
        "members",
        "INSERT INTO organization_members (organization_id, user_id, role)
         SELECT md5('o' || i)::uuid, md5('u' || i)::uuid, 'owner'
           FROM generate_series(1, $2) AS i",
    ),
];

async fn seed(bench: &BenchDb) -> BenchResult<()> {
    let db = &bench.pool;
    for (what, sql) in SEED {
        let started = Instant::now();
        sqlx::query(sql)
            .bind(DAYS)
            .bind(ORGANIZATIONS)
            .execute(db)
            .await?;
        println!("seeded {what} in {:.1?}", started.elapsed());
    }
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO sites (id, organization_id, name, slug, template, status, desired_state,
                            db_password_sealed, api_token_sealed, webhook_secret_sealed,
                            suspended_at, suspended_reason, created_at)
         SELECT md5('s' || i)::uuid, md5('o' || (1 + i % $1))::uuid, 'Site ' || i, 'site-' || i,
                'notes', (ARRAY['active', 'active', 'active', 'stopped', 'failed'])[1 + i % 5],
                'running', '\\x00', '\\x00', '\\x00',
                CASE WHEN i % 97 = 0 THEN now() END, CASE WHEN i % 97 = 0 THEN 'operator: bench' END,
                now() - make_interval(days => (i % $3)::int)
           FROM generate_series(1, $2) AS i",
    )
    .bind(ORGANIZATIONS)
    .bind(SITES)
    .bind(DAYS)
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT INTO deployments (id, site_id, generation, reason, status, created_at, started_at, finished_at)
         SELECT gen_random_uuid(), s.id, 1, 'create',
                CASE WHEN s.status = 'failed' THEN 'failed' ELSE 'succeeded' END,
                s.created_at, s.created_at,
                s.created_at + make_interval(secs => 0.8 + (hashtext(s.slug) & 1023) / 1000.0)
           FROM sites s",
    )
    .execute(db)
    .await?;
    // Every tenth site has a custom domain.
    sqlx::query(
        "INSERT INTO site_domains (id, site_id, organization_id, domain, token, verified_at)
         SELECT gen_random_uuid(), md5('s' || (i * 10))::uuid,
                md5('o' || (1 + (i * 10) % $2))::uuid, 'www.customer-' || i || '.example.net',
                'token', now()
           FROM generate_series(1, $1) AS i",
    )
    .bind(DOMAINS)
    .bind(ORGANIZATIONS)
    .execute(db)
    .await?;
    println!(
        "seeded sites, deployments and domains in {:.1?}",
        started.elapsed()
    );
    let started = Instant::now();
    // Customer i subscribed on day (i * 7) % DAYS of the last three years; one in three left
    // after a while, one in five pays yearly.
    sqlx::query(
        "INSERT INTO billing_accounts (organization_id, stripe_customer_id, stripe_subscription_id,
                                       plan_id, billing_interval, status, mrr_cents)
         SELECT md5('o' || i)::uuid, 'cus_bench' || i, 'sub_bench' || i,
                (ARRAY['starter', 'pro', 'business'])[1 + i % 3],
                CASE WHEN i % 5 = 0 THEN 'yearly' ELSE 'monthly' END,
                CASE WHEN i % 3 = 0 THEN 'canceled' ELSE 'active' END,
                (ARRAY[1500, 4900, 14900])[1 + i % 3]
           FROM generate_series(1, $1) AS i",
    )
    .bind(CUSTOMERS)
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT INTO mrr_snapshot_days (day, billing_mode)
         SELECT current_date - d::int, 'stripe' FROM generate_series(1, $1) AS d",
    )
    .bind(DAYS)
    .execute(db)
    .await?;
    let snapshots = sqlx::query(
        "INSERT INTO mrr_snapshots (day, organization_id, plan_id, billing_interval, mrr_cents)
         SELECT current_date - d::int, md5('o' || i)::uuid, (ARRAY['starter', 'pro', 'business'])[1 + i % 3],
                CASE WHEN i % 5 = 0 THEN 'yearly' ELSE 'monthly' END, (ARRAY[1500, 4900, 14900])[1 + i % 3]
           FROM generate_series(1, $1) AS i,
                generate_series(1, $2) AS d
          WHERE d <= $2 - (i * 7) % $2
            AND (i % 3 <> 0 OR d > ($2 - (i * 7) % $2) / 2)",
    )
    .bind(CUSTOMERS)
    .bind(DAYS)
    .execute(db)
    .await?
    .rows_affected();
    // Each owner signed in three times and failed once: an account's history to read.
    sqlx::query(
        "INSERT INTO audit_log (actor_user_id, action, ip, created_at)
         SELECT md5('u' || i)::uuid, 'user.signed_in', '203.0.113.7',
                now() - make_interval(days => k)
           FROM generate_series(1, $1) AS i, generate_series(1, 3) AS k",
    )
    .bind(ORGANIZATIONS)
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT INTO audit_log (action, subject, ip)
         SELECT 'user.sign_in_failed', 'user:' || md5('u' || i)::uuid, '203.0.113.8'
           FROM generate_series(1, $1) AS i",
    )
    .bind(ORGANIZATIONS)
    .execute(db)
    .await?;
    // One incident per site of the first 20,000 (one in ten still open), and the job queue's
    // history: 30,000 mails sent, 100 dead.
    sqlx::query(
        "INSERT INTO incidents (organization_id, site_id, kind, summary, opened_at, resolved_at)
         SELECT md5('o' || (1 + i % $2))::uuid, md5('s' || i)::uuid,
                (ARRAY['down', 'error_rate', 'crash_looping'])[1 + i % 3],
                'site-' || i || ' needs attention', now() - make_interval(mins => i::int),
                CASE WHEN i % 10 <> 0 THEN now() - make_interval(mins => (i - 5)::int) END
           FROM generate_series(1, $1) AS i",
    )
    .bind(INCIDENTS)
    .bind(ORGANIZATIONS)
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT INTO jobs (kind, payload, unique_key, state, attempts, last_error, finished_at)
         SELECT 'mail', jsonb_build_object('outbox_id', i), 'bench-key-' || i,
                CASE WHEN i % 300 = 0 THEN 'dead' ELSE 'succeeded' END, 1,
                CASE WHEN i % 300 = 0 THEN 'SMTP: connection refused' END, now()
           FROM generate_series(1, $1) AS i",
    )
    .bind(JOBS)
    .execute(db)
    .await?;
    // What autovacuum does soon after bulk writes: statistics, and the visibility map that
    // lets index-only scans skip the table.
    sqlx::query("VACUUM ANALYZE").execute(db).await?;
    println!(
        "seeded {CUSTOMERS} customers and {snapshots} revenue snapshot rows in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let bench = BenchDb::start("correct horse battery staple", 10).await?;
    seed(&bench).await?;
    let operator = bench.account.user_id;
    sqlx::query("UPDATE users SET is_operator = true WHERE id = $1")
        .bind(operator)
        .execute(&bench.pool)
        .await?;
    // The operator's own history: 5,000 actions with their reasons.
    sqlx::query(
        "INSERT INTO audit_log (organization_id, actor_user_id, by_operator, action, subject, details)
         SELECT md5('o' || (1 + i % $2))::uuid, $3, true,
                (ARRAY['site.suspend', 'site.resume', 'organization.suspend'])[1 + i % 3],
                'site:site-' || i, jsonb_build_object('reason', 'bench reason ' || i)
           FROM generate_series(1, $1) AS i",
    )
    .bind(OPERATOR_ACTIONS)
    .bind(ORGANIZATIONS)
    .bind(operator)
    .execute(&bench.pool)
    .await?;
    sqlx::query("ANALYZE audit_log")
        .execute(&bench.pool)
        .await?;
    let (listener, base) = test_support::listen().await;
    // With Stripe (as the seeded accounts and snapshots are): the overview itself calls
    // nothing there.
    let stripe =
        platform::infra::stripe::StripeApi::new("sk_test_bench", &"http://127.0.0.1:9/".parse()?)
            .map_err(|e| e.to_string())?;
    let platform = test_support::platform_at(bench.pool.clone(), &base).with_billing(
        platform::billing::BillingSettings {
            stripe: Some(stripe),
            ..Default::default()
        },
    );
    let cookie = test_support::session_cookie(&bench.platform, operator).await;
    let app = test_support::spawn_app_on(listener, base.clone(), platform.clone());
    let client = reqwest::Client::new();
    let call_with = |function: &'static str, form: String| {
        let request = client
            .post(format!("{base}/api/admin/{function}"))
            .header("Cookie", &cookie)
            .header("Origin", &base)
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form);
        async move {
            let started = Instant::now();
            let answer = request.send().await.expect("request");
            assert_eq!(answer.status().as_u16(), 200, "{function}");
            let body = answer.bytes().await.expect("body");
            (started.elapsed(), body)
        }
    };
    let call = |function: &'static str| {
        let answer = call_with(function, String::new());
        async move {
            let (took, body) = answer.await;
            (took, body.len())
        }
    };
    let (_, size) = call("overview").await; // warm-up
    call("check").await;
    let (mut overview, mut check) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        overview.push(call("overview").await.0);
        check.push(call("check").await.0);
    }
    let (o50, o95) = (percentile(&mut overview, 50), percentile(&mut overview, 95));
    let (c50, c95) = (percentile(&mut check, 50), percentile(&mut check, 95));
    println!(
        "\n{ORGANIZATIONS} organizations, {SITES} sites, {CUSTOMERS} customers, {DAYS} days of snapshots; {runs} runs each"
    );
    println!(
        "admin/check (baseline)  p50 {:7.2} ms  p95 {:7.2} ms",
        ms(c50),
        ms(c95)
    );
    println!(
        "admin/overview          p50 {:7.2} ms  p95 {:7.2} ms  ({size} bytes; p95 {:.1}x the baseline's)",
        ms(o50),
        ms(o95),
        ms(o95) / ms(c95)
    );

    // The organization list: where the 20th page starts, then each case measured.
    let mut after = String::new();
    for _ in 1..20 {
        let (_, body) = call_with("organizations", format!("after={after}")).await;
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        after = page["next"].as_str().expect("more pages").to_owned();
    }
    let encoded_after: String = after
        .bytes()
        .map(|b| match b {
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'-' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let user: String = sqlx::query_scalar("SELECT md5('u4242')::uuid::text")
        .fetch_one(&bench.pool)
        .await?;
    let site: String = sqlx::query_scalar("SELECT md5('s4242')::uuid::text")
        .fetch_one(&bench.pool)
        .await?;
    // (function, case, form, rows of the list; a page of one record has none).
    let cases = [
        ("organizations", "first page", String::new(), 50),
        (
            "organizations",
            "email part",
            "q=owner4242%40".to_owned(),
            1,
        ),
        (
            "organizations",
            "custom domain",
            "q=customer-1234.example".to_owned(),
            1,
        ),
        (
            "organizations",
            "Stripe id",
            "q=cus_bench5999".to_owned(),
            1,
        ),
        ("organizations", "site slug", "q=site-31337".to_owned(), 1),
        ("organizations", "no match", "q=zz-nothing-zz".to_owned(), 0),
        (
            "organizations",
            "revenue order",
            "sort=revenue".to_owned(),
            50,
        ),
        ("organizations", "name order", "sort=name".to_owned(), 50),
        (
            "organizations",
            "20th page",
            format!("after={encoded_after}"),
            50,
        ),
        ("organization", "one, whole", "slug=org-4242".to_owned(), 0),
        ("users", "first page", String::new(), 50),
        ("users", "email part", "q=owner4242%40".to_owned(), 1),
        ("users", "name part", "q=wner+99".to_owned(), 50),
        ("users", "operators", "state=operator".to_owned(), 1),
        ("users", "email order", "sort=name".to_owned(), 50),
        ("user", "one, whole", format!("id={user}"), 0),
        ("sites", "first page", String::new(), 50),
        ("sites", "failed", "state=failed".to_owned(), 50),
        ("sites", "slug order", "sort=name".to_owned(), 50),
        ("sites", "oldest first", "sort=oldest".to_owned(), 50),
        (
            "sites",
            "custom domain",
            "q=customer-1234.example".to_owned(),
            1,
        ),
        // Organization 4242's five sites, found by its owner's email.
        ("sites", "email part", "q=owner4242%40".to_owned(), 5),
        ("site", "one, whole", format!("site={site}"), 0),
        ("subscriptions", "first page", String::new(), 50),
        (
            "subscriptions",
            "Stripe id",
            "q=sub_bench4242".to_owned(),
            1,
        ),
        (
            "subscriptions",
            "canceled",
            "status=canceled".to_owned(),
            50,
        ),
        (
            "subscriptions",
            "revenue order",
            "sort=revenue".to_owned(),
            50,
        ),
        ("incident_list", "first page", String::new(), 50),
        (
            "incident_list",
            "open, down",
            "state=open&kind=down".to_owned(),
            50,
        ),
        ("incident_list", "site slug", "q=site-12345".to_owned(), 1),
        (
            "incident_list",
            "oldest first",
            "sort=oldest".to_owned(),
            50,
        ),
        ("jobs", "first page", String::new(), 50),
        ("jobs", "dead", "state=dead".to_owned(), 50),
        ("jobs", "oldest first", "sort=oldest".to_owned(), 50),
        ("jobs", "key part", "q=bench-key-29999".to_owned(), 1),
        ("audit", "first page", String::new(), 50),
        ("audit", "oldest first", "sort=oldest".to_owned(), 50),
        ("audit", "reason part", "q=bench+reason+4242".to_owned(), 1),
    ];
    println!("\noperator lists (50 a page) and pages of one record");
    for (function, name, form, rows) in cases {
        let (_, body) = call_with(function, form.clone()).await; // warm-up
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        let found = page["rows"].as_array().map_or(0, Vec::len);
        assert_eq!(found, rows, "{function} {name}: rows");
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(call_with(function, form.clone()).await.0);
        }
        let (p50, p95) = (percentile(&mut samples, 50), percentile(&mut samples, 95));
        println!(
            "  {function:<13} {name:<14} p50 {:7.2} ms  p95 {:7.2} ms  ({found} rows; p95 {:.1}x the baseline's)",
            ms(p50),
            ms(p95),
            ms(p95) / ms(c95)
        );
    }
    let search = platform::admin::lists::OrgFilter::parse(&platform, "owner4242@", "", "", "")?;
    println!("\nThe plan of a search by part of an email:\n");
    println!(
        "{}",
        platform::admin::lists::explain_organizations(
            &platform,
            &platform::admin::Operator::verify(&platform, operator).await?,
            &search
        )
        .await?
    );

    let failed = platform::admin::fleet::SiteFilter::parse(&platform, "", "failed", "")?;
    println!("\nThe plan of the failed provisionings (the site list, state failed):\n");
    println!(
        "{}",
        platform::admin::fleet::explain_sites(
            &platform,
            &platform::admin::Operator::verify(&platform, operator).await?,
            &failed
        )
        .await?
    );

    let today = Utc::now().date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let starts: Vec<NaiveDate> = (0..=12)
        .rev()
        .map(|back| first.checked_sub_months(Months::new(back)).unwrap_or(first))
        .collect();
    println!("\nThe revenue series' plan:\n");
    println!(
        "{}",
        platform::billing::revenue::explain_series(&platform, &starts, Utc::now()).await?
    );
    drop(app);
    drop(platform);
    bench.finish().await
}
