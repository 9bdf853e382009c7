//! The operator's fleet-wide lists: every site (failed provisionings among them), every
//! incident, and the operator audit log; found by what an operator knows, filtered, paged
//! without gaps or repeats, exported as CSV.

use std::collections::BTreeSet;

use platform::Platform;
use platform::admin::fleet::{self, SiteFilter};
use platform::admin::incidents::{self, IncidentFilter};
use platform::admin::lists::{self, Cursor};
use platform::admin::log::{self, LogFilter};
use platform::admin::{Operator, Reason};
use sqlx::PgPool;
use uuid::Uuid;

async fn operator(platform: &Platform) -> Operator {
    let member = test_support::owner_with_email(platform, "ops@slipway.test").await;
    test_support::make_operator(platform, member.user_id).await;
    Operator::verify(platform, member.user_id).await.unwrap()
}

/// The slugs of the sites the list shows for `search` and `state` (one page is enough).
async fn sites(p: &Platform, by: &Operator, search: &str, state: &str) -> BTreeSet<String> {
    let filter = SiteFilter::parse(p, search, state, "").unwrap();
    let page = fleet::sites(p, by, &filter, None, 50).await.unwrap();
    assert!(page.next.is_none());
    page.rows.into_iter().map(|row| row.slug).collect()
}

fn set(slugs: &[&str]) -> BTreeSet<String> {
    slugs.iter().map(|s| (*s).to_owned()).collect()
}

async fn exec(pool: &PgPool, sql: &str, id: Uuid) {
    sqlx::query(sql).bind(id).execute(pool).await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn sites_are_found_by_domain_organization_and_member_and_filtered_by_state(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let ops = operator(&p).await;
    let acme = test_support::owner_with_email(&p, "alice@acme.test").await;
    let bravo = test_support::owner_with_email(&p, "bob@bravo.test").await;
    test_support::set_plan(&p, &acme, "pro").await;
    test_support::set_plan(&p, &bravo, "pro").await;
    sqlx::query("UPDATE organizations SET name = 'Bravo Labs' WHERE id = $1")
        .bind(bravo.organization_id)
        .execute(&pool)
        .await
        .unwrap();
    let blog = test_support::site(&p, &acme, "acme-blog").await;
    let shop = test_support::site(&p, &acme, "acme-shop").await;
    let broken = test_support::site(&p, &bravo, "bravo-broken").await;
    let paused = test_support::site(&p, &bravo, "bravo-paused").await;
    let gone = test_support::site(&p, &bravo, "bravo-gone").await;
    exec(
        &pool,
        "UPDATE sites SET status = 'active' WHERE id = $1",
        blog,
    )
    .await;
    exec(
        &pool,
        "UPDATE sites SET status = 'active' WHERE id = $1",
        shop,
    )
    .await;
    exec(
        &pool,
        "UPDATE sites SET status = 'failed', failures = 3, status_reason = 'image missing',
                          next_attempt_at = now() + interval '5 minutes' WHERE id = $1",
        broken,
    )
    .await;
    exec(
        &pool,
        "UPDATE sites SET status = 'active' WHERE id = $1",
        paused,
    )
    .await;
    exec(
        &pool,
        "UPDATE sites SET status = 'deleted', desired_state = 'deleted' WHERE id = $1",
        gone,
    )
    .await;
    let reason = Reason::parse("phishing page reported").unwrap();
    platform::admin::suspend_site(&p, &ops, paused, &reason)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO site_domains (id, site_id, organization_id, domain, token)
         VALUES ($1, $2, $3, 'shop.acme-goods.com', 'token')",
    )
    .bind(Uuid::new_v4())
    .bind(shop)
    .bind(acme.organization_id)
    .execute(&pool)
    .await
    .unwrap();

    assert_eq!(
        sites(&p, &ops, "ACME-GOODS.com", "").await,
        set(&["acme-shop"]),
        "a custom domain finds its site"
    );
    assert_eq!(
        sites(&p, &ops, "alice@acme", "").await,
        set(&["acme-blog", "acme-shop"]),
        "a member's email finds the organization's sites"
    );
    assert_eq!(
        sites(&p, &ops, "bravo labs", "").await,
        set(&["bravo-broken", "bravo-paused"]),
        "the organization's name finds its sites; deleted ones are left out"
    );
    assert_eq!(
        sites(&p, &ops, "", "failed").await,
        set(&["bravo-broken"]),
        "the failed provisionings"
    );
    assert_eq!(
        sites(&p, &ops, "", "suspended").await,
        set(&["bravo-paused"])
    );
    assert_eq!(
        sites(&p, &ops, "", "active").await,
        set(&["acme-blog", "acme-shop"])
    );
    assert_eq!(sites(&p, &ops, "", "deleted").await, set(&["bravo-gone"]));
    assert_eq!(sites(&p, &ops, "100%", "").await, set(&[]));

    let filter = SiteFilter::parse(&p, "", "failed", "").unwrap();
    let row = &fleet::sites(&p, &ops, &filter, None, 50)
        .await
        .unwrap()
        .rows[0];
    assert_eq!(row.status_reason.as_deref(), Some("image missing"));
    assert_eq!(row.failures, 3);
    assert_eq!(row.organization_name, "Bravo Labs");
    let csv = fleet::sites_csv(
        &p,
        &ops,
        &SiteFilter::parse(&p, "alice@", "", "pro").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("shop.acme-goods.com"), "{csv}");
    let free = SiteFilter::parse(&p, "", "", "free").unwrap();
    assert!(
        fleet::sites(&p, &ops, &free, None, 50)
            .await
            .unwrap()
            .rows
            .is_empty()
    );

    for (state, plan) in [("asleep", ""), ("", "platinum")] {
        assert!(
            matches!(
                SiteFilter::parse(&p, "", state, plan),
                Err(platform::Error::Invalid { .. })
            ),
            "{state:?} {plan:?}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_of_sites_have_no_gaps_or_repeats_while_sites_are_added(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let ops = operator(&p).await;
    let owner = test_support::owner_on_plan(&p, "business").await;
    let mut made = BTreeSet::new();
    for i in 0..23 {
        test_support::site(&p, &owner, &format!("page-site-{i:02}")).await;
        made.insert(format!("page-site-{i:02}"));
    }
    // Several sites made in the same microsecond: the id breaks the tie.
    sqlx::query(
        "UPDATE sites SET created_at = '2026-11-01T00:00:00Z' WHERE slug LIKE 'page-site-1%'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let filter = SiteFilter::parse(&p, "page-site", "", "").unwrap();
    let (mut seen, mut after, mut pages) = (Vec::new(), None::<Cursor>, 0);
    loop {
        let page = fleet::sites(&p, &ops, &filter, after.as_ref(), 5)
            .await
            .unwrap();
        seen.extend(page.rows.into_iter().map(|row| row.slug));
        pages += 1;
        // Added meanwhile: newer than every page already read, so never on a later one.
        test_support::site(&p, &owner, &format!("late-page-site-{pages}")).await;
        match page.next {
            Some(next) => after = lists::parse_cursor(&next.encode()).unwrap(),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23, "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), made);
}

#[sqlx::test(migrations = "../migrations")]
async fn incidents_are_found_by_organization_and_site_and_filtered_by_state_and_kind(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let ops = operator(&p).await;
    let acme = test_support::owner_with_email(&p, "alice@acme.test").await;
    test_support::set_plan(&p, &acme, "pro").await;
    let site = test_support::site(&p, &acme, "acme-down").await;
    let acme_slug: String = sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
        .bind(acme.organization_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    for (kind, subject, summary, resolved) in [
        ("down", "", "acme-down does not answer", false),
        ("down", "", "acme-down did not answer for 4 minutes", true),
        (
            "usage_warning",
            "bandwidth",
            "Bandwidth at 85% of the plan",
            false,
        ),
    ] {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO incidents (organization_id, site_id, kind, subject, summary, resolved_at)
             VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END) RETURNING id",
        )
        .bind(acme.organization_id)
        .bind((kind == "down").then_some(site))
        .bind(kind)
        .bind(subject)
        .bind(summary)
        .bind(resolved)
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO incident_events (incident_id, message) VALUES ($1, $2)")
            .bind(id)
            .bind(format!("noted: {summary}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let summaries = |search: &str, state: &str, kind: &str| {
        let filter = IncidentFilter::parse(search, state, kind).unwrap();
        let (p, ops) = (p.clone(), ops.clone());
        async move {
            incidents::incidents(&p, &ops, &filter, None, 50)
                .await
                .unwrap()
                .rows
                .into_iter()
                .map(|row| row.summary)
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(summaries(&acme_slug, "", "").await.len(), 3);
    assert_eq!(
        summaries("ACME-DOWN", "open", "").await,
        set(&["acme-down does not answer"]),
        "the site's slug finds its incidents; open ones only"
    );
    assert_eq!(
        summaries("", "resolved", "down").await,
        set(&["acme-down did not answer for 4 minutes"])
    );
    assert_eq!(
        summaries("", "", "usage_warning").await,
        set(&["Bandwidth at 85% of the plan"])
    );
    let filter = IncidentFilter::parse("", "open", "usage_warning").unwrap();
    let row = &incidents::incidents(&p, &ops, &filter, None, 50)
        .await
        .unwrap()
        .rows[0];
    assert_eq!(row.subject, "bandwidth");
    assert_eq!(
        row.latest.as_deref(),
        Some("noted: Bandwidth at 85% of the plan")
    );
    assert_eq!(row.site_slug, None);
    let csv = incidents::incidents_csv(&p, &ops, &IncidentFilter::parse("", "", "down").unwrap())
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(IncidentFilter::parse("", "closed", "").is_err());
    assert!(IncidentFilter::parse("", "", "meteor").is_err());
}

/// Operator actions, and only those, make the operator audit log: a customer's own
/// actions and billing's are not in it, though they share the organization's log.
#[sqlx::test(migrations = "../migrations")]
async fn the_operator_audit_log_holds_every_operator_action_and_nothing_else(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let ops = operator(&p).await;
    let acme = test_support::owner_with_email(&p, "alice@acme.test").await;
    test_support::set_plan(&p, &acme, "pro").await;
    let site = test_support::site(&p, &acme, "acme-blog").await;
    exec(
        &pool,
        "UPDATE sites SET status = 'active' WHERE id = $1",
        site,
    )
    .await;
    // The customer acts (a site created above, a restart), billing acts.
    platform::sites::request(&p, &acme, site, platform::sites::SiteAction::Restart)
        .await
        .unwrap();
    assert!(
        platform::sites::suspend(&p, site, "billing: payment failed")
            .await
            .unwrap()
    );
    // The operator acts.
    let why = |text: &str| Reason::parse(text).unwrap();
    platform::admin::suspend_site(&p, &ops, site, &why("phishing page reported"))
        .await
        .unwrap();
    platform::admin::resume_site(&p, &ops, site, &why("page taken down"))
        .await
        .unwrap();
    platform::admin::suspend_organization(&p, &ops, acme.organization_id, &why("chargeback"))
        .await
        .unwrap();

    let entries = |search: &str, action: &str| {
        let filter = LogFilter::parse(search, action).unwrap();
        let (p, ops) = (p.clone(), ops.clone());
        async move {
            log::entries(&p, &ops, &filter, None, 50)
                .await
                .unwrap()
                .rows
                .into_iter()
                .map(|row| (row.action, row.reason.unwrap_or_default()))
                .collect::<Vec<_>>()
        }
    };
    // The organization's suspension suspended its site, with the same reason. Nothing
    // else: not the customer's creation and restart, not billing's suspension.
    assert_eq!(
        entries("", "").await,
        [
            ("site.suspend", "chargeback"),
            ("organization.suspend", "chargeback"),
            ("site.resume", "page taken down"),
            ("site.suspend", "phishing page reported"),
        ]
        .map(|(action, reason)| (action.to_owned(), reason.to_owned()))
    );
    assert_eq!(
        entries("PHISHING", "").await,
        vec![(
            "site.suspend".to_owned(),
            "phishing page reported".to_owned()
        )],
        "found by its reason"
    );
    assert_eq!(entries("acme-blog", "site.resume").await.len(), 1);
    assert!(
        entries("ops@slipway", "").await.len() >= 3,
        "found by the operator"
    );
    assert!(
        log::actions(&p, &ops)
            .await
            .unwrap()
            .contains(&"organization.suspend".to_owned())
    );
    let csv = log::entries_csv(&p, &ops, &LogFilter::parse("", "site.suspend").unwrap())
        .await
        .unwrap();
    assert!(csv.contains("ops@slipway.test"), "{csv}");
    assert!(csv.contains("phishing page reported"), "{csv}");
    assert!(LogFilter::parse("", "site suspend; drop").is_err());
    // Pages by id: the four entries in two pages of two, newest first, each once.
    let filter = LogFilter::parse("", "").unwrap();
    let first = log::entries(&p, &ops, &filter, None, 2).await.unwrap();
    let next = lists::parse_after_id(&first.next.unwrap().to_string()).unwrap();
    let second = log::entries(&p, &ops, &filter, next, 2).await.unwrap();
    assert!(second.next.is_none());
    let ids: Vec<i64> = first
        .rows
        .iter()
        .chain(&second.rows)
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "{ids:?}");
}

/// With Stripe the list is the organizations' subscriptions (canceled ones too, counting
/// for nothing, with their grace period); in local billing mode it is the organizations on
/// a paid plan, at the catalog's price.
#[sqlx::test(migrations = "../migrations")]
async fn subscriptions_follow_the_billing_mode(pool: PgPool) {
    use platform::admin::subscriptions::{self, SubscriptionFilter};

    let local = test_support::test_platform(pool.clone());
    let ops = operator(&local).await;
    let acme = test_support::owner_with_email(&local, "alice@acme.test").await;
    let bravo = test_support::owner_with_email(&local, "bob@bravo.test").await;
    test_support::set_plan(&local, &acme, "pro").await;
    let listed = |p: Platform, search: &str, status: &str, interval: &str| {
        let filter = SubscriptionFilter::parse(&p, search, status, "", interval).unwrap();
        let ops = ops.clone();
        async move {
            subscriptions::subscriptions(&p, &ops, &filter, None, 50)
                .await
                .unwrap()
                .rows
        }
    };
    let rows = listed(local.clone(), "", "", "").await;
    assert_eq!(rows.len(), 1, "only the paid plan: {rows:?}");
    assert_eq!(rows[0].organization_id, acme.organization_id);
    let pro = local.plan("pro").unwrap().monthly_cents.0;
    assert_eq!(u64::try_from(rows[0].mrr_cents).unwrap(), pro);
    assert_eq!(rows[0].stripe_subscription_id, None);

    let api = platform::infra::stripe::StripeApi::new(
        "sk_test_operator",
        &"http://127.0.0.1:9/".parse().unwrap(),
    )
    .unwrap();
    let stripe = test_support::test_platform(pool.clone()).with_billing(
        platform::billing::BillingSettings {
            stripe: Some(api),
            ..Default::default()
        },
    );
    sqlx::query(
        "INSERT INTO billing_accounts (organization_id, stripe_customer_id, stripe_subscription_id,
                                       plan_id, billing_interval, status, mrr_cents, created_at,
                                       canceled_at, grace_ends_at)
         VALUES ($1, 'cus_acme', 'sub_acme', 'pro', 'yearly', 'active', 3900,
                 now() - interval '2 days', NULL, NULL),
                ($2, 'cus_bravo', 'sub_bravo', 'starter', 'monthly', 'canceled', 1500,
                 now() - interval '1 day', now(), now() + interval '7 days')",
    )
    .bind(acme.organization_id)
    .bind(bravo.organization_id)
    .execute(&pool)
    .await
    .unwrap();
    let rows = listed(stripe.clone(), "", "", "").await;
    let slugs: Vec<_> = rows.iter().map(|r| r.organization_id).collect();
    assert_eq!(
        slugs,
        [bravo.organization_id, acme.organization_id],
        "newest first"
    );
    let canceled = listed(stripe.clone(), "SUB_BRAV", "canceled", "").await;
    assert_eq!(canceled.len(), 1);
    assert_eq!(
        canceled[0].mrr_cents, 0,
        "a canceled subscription counts for nothing"
    );
    assert!(canceled[0].grace_ends_at.is_some());
    let yearly = listed(stripe.clone(), "alice@acme", "", "yearly").await;
    assert_eq!(yearly.len(), 1);
    assert_eq!(yearly[0].mrr_cents, 3900);
    assert!(listed(stripe.clone(), "", "past_due", "").await.is_empty());
    let csv = subscriptions::subscriptions_csv(
        &stripe,
        &ops,
        &SubscriptionFilter::parse(&stripe, "", "", "", "").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("sub_bravo"), "{csv}");
    for (status, plan, interval) in [("none", "", ""), ("", "gold", ""), ("", "", "weekly")] {
        assert!(
            SubscriptionFilter::parse(&stripe, "", status, plan, interval).is_err(),
            "{status:?} {plan:?} {interval:?}"
        );
    }
}
