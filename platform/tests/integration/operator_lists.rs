//! The operator's organization list: found by any member's email, a custom domain, a site's
//! slug or a Stripe id; filtered; paged by keyset without gaps or repeats while
//! organizations are added between pages.

use std::collections::BTreeSet;

use platform::Platform;
use platform::admin::Operator;
use platform::admin::lists::{self, Cursor, OrgFilter};
use platform::tenancy::Membership;
use sqlx::PgPool;
use uuid::Uuid;

async fn operator(platform: &Platform) -> Operator {
    let member = test_support::owner_with_email(platform, "ops@slipway.test").await;
    test_support::make_operator(platform, member.user_id).await;
    rename(platform, &member, "Operations").await;
    Operator::verify(platform, member.user_id).await.unwrap()
}

/// An organization named `name`, owned by `email`; returns its owner and slug.
async fn organization(platform: &Platform, email: &str, name: &str) -> (Membership, String) {
    let owner = test_support::owner_with_email(platform, email).await;
    let slug = rename(platform, &owner, name).await;
    (owner, slug)
}

async fn rename(platform: &Platform, member: &Membership, name: &str) -> String {
    sqlx::query_scalar("UPDATE organizations SET name = $2 WHERE id = $1 RETURNING slug")
        .bind(member.organization_id)
        .bind(name)
        .fetch_one(&platform.db)
        .await
        .unwrap()
}

/// The slugs of every organization the list shows for `search` (one page is enough here).
async fn found(platform: &Platform, operator: &Operator, search: &str) -> BTreeSet<String> {
    let filter = OrgFilter::parse(platform, search, "", "", "").unwrap();
    let page = lists::organizations(platform, operator, &filter, None, 50)
        .await
        .unwrap();
    assert!(page.next.is_none());
    page.rows.into_iter().map(|row| row.slug).collect()
}

fn set(slugs: &[&String]) -> BTreeSet<String> {
    slugs.iter().map(|s| (*s).clone()).collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn organizations_are_found_by_member_email_domain_site_and_stripe_id(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let operator = operator(&p).await;
    let (acme, acme_slug) = organization(&p, "alice@acme.test", "Acme Corp").await;
    let (bravo, bravo_slug) = organization(&p, "bob@bravo.test", "Bravo Labs").await;
    let (charlie, charlie_slug) = organization(&p, "carol@charlie.test", "Charlie").await;
    test_support::set_plan(&p, &bravo, "starter").await;
    test_support::set_plan(&p, &charlie, "starter").await;
    test_support::site(&p, &bravo, "bravo-blog").await;
    let shop = test_support::site(&p, &charlie, "charlie-shop").await;
    sqlx::query(
        "INSERT INTO site_domains (id, site_id, organization_id, domain, token)
         VALUES ($1, $2, $3, 'shop.charlie-goods.com', 'token')",
    )
    .bind(Uuid::new_v4())
    .bind(shop)
    .bind(charlie.organization_id)
    .execute(&pool)
    .await
    .unwrap();
    // Dave owns an organization of his own and edits Charlie's.
    let (dave, dave_slug) = organization(&p, "dave@contractor.test", "Dave").await;
    sqlx::query(
        "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'editor')",
    )
    .bind(charlie.organization_id)
    .bind(dave.user_id)
    .execute(&pool)
    .await
    .unwrap();
    // Acme pays through Stripe.
    sqlx::query(
        "INSERT INTO billing_accounts (organization_id, stripe_customer_id, stripe_subscription_id,
                                       plan_id, billing_interval, status, mrr_cents)
         VALUES ($1, 'cus_QX7acme123', 'sub_9acme', 'pro', 'monthly', 'active', 4900)",
    )
    .bind(acme.organization_id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE organizations SET plan_id = 'pro' WHERE id = $1")
        .bind(acme.organization_id)
        .execute(&pool)
        .await
        .unwrap();

    assert_eq!(
        found(&p, &operator, "dave@contractor").await,
        set(&[&dave_slug, &charlie_slug]),
        "a member's email finds every organization they belong to"
    );
    assert_eq!(
        found(&p, &operator, "charlie-goods.com").await,
        set(&[&charlie_slug])
    );
    assert_eq!(
        found(&p, &operator, "  SHOP.Charlie ").await,
        set(&[&charlie_slug]),
        "case and surrounding spaces do not matter"
    );
    assert_eq!(found(&p, &operator, "qx7ACME").await, set(&[&acme_slug]));
    assert_eq!(found(&p, &operator, "sub_9ac").await, set(&[&acme_slug]));
    assert_eq!(
        found(&p, &operator, "bravo-blog").await,
        set(&[&bravo_slug])
    );
    assert_eq!(
        found(&p, &operator, "bravo labs").await,
        set(&[&bravo_slug])
    );
    // Wildcards are searched for literally: only the Stripe ids contain `_`.
    assert_eq!(found(&p, &operator, "_").await, set(&[&acme_slug]));
    assert!(found(&p, &operator, "%").await.is_empty());
    assert!(found(&p, &operator, "nobody-has-this").await.is_empty());
    assert_eq!(
        found(&p, &operator, "").await.len(),
        5,
        "no search: all of them"
    );

    let listed = |plan: &'static str, billing: &'static str, sort: &'static str| {
        let p = p.clone();
        let operator = operator.clone();
        async move {
            let filter = OrgFilter::parse(&p, "", plan, billing, sort).unwrap();
            lists::organizations(&p, &operator, &filter, None, 50)
                .await
                .unwrap()
                .rows
        }
    };
    let pro = listed("pro", "", "").await;
    assert_eq!(pro.len(), 1);
    assert_eq!(pro[0].slug, acme_slug);
    assert_eq!(pro[0].mrr_cents, 4900);
    assert_eq!(pro[0].billing_status.as_deref(), Some("active"));
    assert_eq!(pro[0].owner_email.as_deref(), Some("alice@acme.test"));
    assert_eq!(listed("", "active", "").await.len(), 1);
    assert_eq!(listed("", "none", "").await.len(), 4);
    assert_eq!(listed("", "", "revenue").await[0].slug, acme_slug);
    let by_name = listed("", "", "name").await;
    let charlie_row = found_row(&by_name, &charlie_slug);
    assert_eq!((charlie_row.members, charlie_row.sites), (2, 1));

    for (plan, billing, sort, field) in [
        ("gold", "", "", "plan"),
        ("", "overdue", "", "billing"),
        ("", "", "price", "sort"),
    ] {
        match OrgFilter::parse(&p, "", plan, billing, sort) {
            Err(platform::kernel::Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(Cursor::decode("garbage").is_err());
}

fn found_row<'a>(rows: &'a [lists::OrgRow], slug: &str) -> &'a lists::OrgRow {
    rows.iter().find(|row| row.slug == slug).unwrap()
}

/// Pages follow the cursor: an organization added between two pages, before the cursor in
/// the list's order, neither pushes a row onto the next page twice nor hides one.
#[sqlx::test(migrations = "../migrations")]
async fn pages_have_no_gaps_or_repeats_while_organizations_are_added(pool: PgPool) {
    let p = test_support::test_platform(pool);
    let operator = operator(&p).await;
    for (i, name) in ["Kilo", "Alpha", "Echo", "Golf", "Bravo", "Delta", "India"]
        .iter()
        .enumerate()
    {
        organization(&p, &format!("owner{i}@paging.test"), name).await;
    }
    let rounds = [
        // Newest first; the one added after the first page is newer than all of them.
        (
            "newest",
            "Lima",
            vec![
                "India",
                "Delta",
                "Bravo",
                "Golf",
                "Echo",
                "Alpha",
                "Kilo",
                "Operations",
            ],
        ),
        // Oldest first; the one added after the first page is the newest of them all.
        (
            "oldest",
            "Zulu",
            vec![
                "Operations",
                "Kilo",
                "Alpha",
                "Echo",
                "Golf",
                "Bravo",
                "Delta",
                "India",
                "Lima",
                "Zulu",
            ],
        ),
        // A to Z; the one added after the first page sorts before all of them.
        (
            "name",
            "Aaa",
            vec![
                "Alpha",
                "Bravo",
                "Delta",
                "Echo",
                "Golf",
                "India",
                "Kilo",
                "Lima",
                "Operations",
                "Zulu",
            ],
        ),
    ];
    for (sort, added, expected) in rounds {
        let filter = OrgFilter::parse(&p, "", "", "", sort).unwrap();
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = lists::organizations(&p, &operator, &filter, after.as_ref(), 3)
                .await
                .unwrap();
            assert!(page.rows.len() <= 3);
            if seen.is_empty() {
                organization(&p, &format!("{added}@paging.test"), added).await;
            }
            seen.extend(page.rows.into_iter().map(|row| row.name));
            match page.next {
                Some(next) => after = Some(Cursor::decode(&next.encode()).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{sort}");
    }
}

/// Names that fold differently in Rust and in the database (non-ASCII capitals, a dotted
/// capital I, the same name twice, names differing only in case) and revenue ties: every
/// order, one or two rows a page, lists each organization exactly once and ends.
#[sqlx::test(migrations = "../migrations")]
async fn every_order_pages_through_awkward_names_and_ties_exactly_once(pool: PgPool) {
    let p = test_support::test_platform(pool);
    let operator = operator(&p).await;
    let names = [
        "Émile",
        "émile",
        "Ölfabrik",
        "İnci",
        "İnci",
        "alpha",
        "Alpha",
        "ALPHA",
        "Ωmega",
        "straße",
        "Zeta",
    ];
    for (i, name) in names.iter().enumerate() {
        let (owner, _) = organization(&p, &format!("awkward{i}@paging.test"), name).await;
        // Revenue ties: most pay the same.
        let plan = if i % 4 == 0 { "starter" } else { "pro" };
        test_support::set_plan(&p, &owner, plan).await;
    }
    let total = names.len() + 1; // and the operator's own organization
    for sort in ["newest", "oldest", "name", "revenue"] {
        for per_page in [1, 2] {
            let filter = OrgFilter::parse(&p, "", "", "", sort).unwrap();
            let mut seen = BTreeSet::new();
            let mut after: Option<Cursor> = None;
            for pages in 1.. {
                assert!(pages <= total + 1, "{sort}/{per_page}: pages never end");
                let page = lists::organizations(&p, &operator, &filter, after.as_ref(), per_page)
                    .await
                    .unwrap();
                for row in page.rows {
                    assert!(seen.insert(row.id), "{sort}/{per_page}: {} twice", row.name);
                }
                match page.next {
                    Some(next) => after = Some(Cursor::decode(&next.encode()).unwrap()),
                    None => break,
                }
            }
            assert_eq!(seen.len(), total, "{sort}/{per_page}: every organization");
        }
    }
    let export = lists::organizations_csv(&p, &operator, &OrgFilter::default())
        .await
        .unwrap();
    assert_eq!(export.lines().count(), total + 1, "a header and each once");
    assert!(export.contains(",İnci,") && export.contains(",straße,"));
}
