//! Every order of every operator list: the first page in one go is in that order (ties
//! broken by id), and paging one or two rows at a time through the page links gives
//! exactly the same rows, each once, then ends. A sort the list does not offer is refused
//! with its field.

use chrono::{DateTime, Utc};
use platform::admin::fleet::{self, SITE_SORTS, SiteFilter};
use platform::admin::incidents::{self, INCIDENT_SORTS, IncidentFilter};
use platform::admin::jobs::{self, JOB_SORTS, JobFilter};
use platform::admin::lists::{self, Cursor, Sort};
use platform::admin::log::{self, LOG_SORTS, LogFilter};
use platform::admin::subscriptions::{self, SUBSCRIPTION_SORTS, SubscriptionFilter};
use platform::admin::users::{self, USER_SORTS, UserFilter};
use platform::admin::{Operator, Reason};
use sqlx::PgPool;

/// Pages through a list `per_page` rows at a time, following each page's link as the page
/// would (the cursor encoded and decoded again), and returns what `key` says of each row.
macro_rules! walk {
    ($per_page:expr, |$after:ident| $fetch:expr, $key:expr) => {{
        let mut seen = Vec::new();
        let mut $after = None;
        for pages in 1.. {
            assert!(pages <= 40, "the pages never end");
            let page = $fetch.await.unwrap();
            assert!(page.rows.len() <= $per_page as usize);
            seen.extend(page.rows.iter().map($key));
            match page.next {
                Some(next) => $after = Some(relink(next)),
                None => break,
            }
        }
        seen
    }};
}

/// For each of a list's `sorts`: the list in one page (`fetch` with `filter` in that
/// order, from `after`, `limit` rows) holds `count` rows ordered by `key` (a row's sort
/// key and id), and paging one or two rows at a time gives exactly those rows.
macro_rules! check_orders {
    ($list:literal, $sorts:expr, $count:expr, $filter:expr,
     |$f:ident, $after:ident, $limit:ident| $fetch:expr,
     |$row:ident, $sort:ident| $key:expr) => {
        for $sort in $sorts {
            let mut filter = $filter;
            filter.sort = Sort::parse($sort.as_str(), &$sorts).unwrap();
            let $f = &filter;
            let all = {
                let $after = None;
                let $limit = 100;
                $fetch.await.unwrap()
            };
            assert_eq!(all.rows.len(), $count, "{}", $list);
            let keys: Vec<_> = all.rows.iter().map(|$row| $key).collect();
            assert_ordered($list, $sort, &keys);
            let ids: Vec<_> = keys.iter().map(|(_, id)| id.clone()).collect();
            for per_page in [1, 2] {
                let paged = walk!(
                    per_page,
                    |$after| {
                        let $limit = per_page;
                        $fetch
                    },
                    |$row| $key.1
                );
                assert_eq!(paged, ids, "{}, {:?}, {per_page} a page", $list, $sort);
            }
        }
    };
}

/// A page link's cursor as the next request reads it back.
trait Relink {
    fn relink(self) -> Self;
}

impl Relink for Cursor {
    fn relink(self) -> Self {
        lists::parse_cursor(&self.encode()).unwrap().unwrap()
    }
}

impl Relink for i64 {
    fn relink(self) -> Self {
        lists::parse_after_id(&self.to_string()).unwrap().unwrap()
    }
}

fn relink<T: Relink>(next: T) -> T {
    next.relink()
}

/// Asserts that `keys` (a row's sort key and id, in the list's order) go the way `sort`
/// says, ties broken by the id in the same direction.
fn assert_ordered<K: Ord + std::fmt::Debug, I: Ord + std::fmt::Debug>(
    list: &str,
    sort: Sort,
    keys: &[(K, I)],
) {
    for pair in keys.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let ordered = match sort {
            Sort::Newest | Sort::Revenue => (&a.0, &a.1) > (&b.0, &b.1),
            Sort::Oldest | Sort::Name => (&a.0, &a.1) < (&b.0, &b.1),
        };
        assert!(ordered, "{list}, {sort:?}: {a:?} before {b:?}");
    }
}

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn every_list_pages_through_each_of_its_orders_exactly(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let ops_member = test_support::owner_with_email(&p, "ops@slipway.test").await;
    test_support::make_operator(&p, ops_member.user_id).await;
    let ops = Operator::verify(&p, ops_member.user_id).await.unwrap();

    // Accounts made in another order than their emails'; organizations on plans of
    // different prices, two on the same (a revenue tie).
    let mut owners = Vec::new();
    for (email, plan) in [
        ("zoe@orders.test", "pro"),
        ("amy@orders.test", "starter"),
        ("mia@orders.test", "pro"),
        ("kim@orders.test", "business"),
    ] {
        let owner = test_support::owner_with_email(&p, email).await;
        test_support::set_plan(&p, &owner, plan).await;
        owners.push(owner);
    }
    let mut sites = Vec::new();
    for (i, slug) in ["kilo", "alpha", "echo", "bravo", "delta", "golf"]
        .iter()
        .enumerate()
    {
        // Not Amy's organization: Starter has room for one site.
        let owner = &owners[[0, 2, 3][i % 3]];
        sites.push(test_support::site(&p, owner, slug).await);
    }
    // Ties in time: two accounts, two sites, made at the same moment.
    exec(
        &pool,
        "UPDATE users SET created_at = (SELECT created_at FROM users WHERE email = 'amy@orders.test')
          WHERE email = 'kim@orders.test'",
    )
    .await;
    exec(
        &pool,
        "UPDATE sites SET created_at = (SELECT created_at FROM sites WHERE slug = 'alpha')
          WHERE slug IN ('echo', 'golf')",
    )
    .await;
    let now = Utc::now();
    for (i, site) in sites.iter().enumerate() {
        sqlx::query(
            "INSERT INTO incidents (organization_id, site_id, kind, subject, summary, opened_at)
             SELECT organization_id, id, 'down', '', slug || ' does not answer',
                    $3 - make_interval(mins => $2)
               FROM sites WHERE id = $1",
        )
        .bind(site)
        // The first and the sixth opened at the same moment.
        .bind(i32::try_from(i % 5).unwrap())
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO jobs (kind, state, payload) VALUES ('mail', 'dead', '{}')")
            .execute(&pool)
            .await
            .unwrap();
    }
    let reason = Reason::parse("ordering test").unwrap();
    for site in &sites[..3] {
        platform::admin::suspend_site(&p, &ops, *site, &reason)
            .await
            .unwrap();
    }

    check_orders!(
        "sites",
        SITE_SORTS,
        sites.len(),
        SiteFilter::parse(&p, "", "", "").unwrap(),
        |filter, after, limit| fleet::sites(&p, &ops, filter, after.as_ref(), limit),
        |row, sort| {
            let key = match sort {
                Sort::Name => row.slug.clone(),
                _ => micros(row.created_at),
            };
            (key, row.id)
        }
    );
    check_orders!(
        "users",
        USER_SORTS,
        5,
        UserFilter::parse("", "").unwrap(),
        |filter, after, limit| users::users(&p, &ops, filter, after.as_ref(), limit),
        |row, sort| {
            let key = match sort {
                Sort::Name => row.email.clone(),
                _ => micros(row.created_at),
            };
            (key, row.id)
        }
    );
    let mut by_email = UserFilter::parse("", "").unwrap();
    by_email.sort = Sort::Name;
    let emails: Vec<String> = users::users(&p, &ops, &by_email, None, 100)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|row| row.email)
        .collect();
    assert_eq!(emails.first().map(String::as_str), Some("amy@orders.test"));
    assert_eq!(emails.last().map(String::as_str), Some("zoe@orders.test"));
    check_orders!(
        "incidents",
        INCIDENT_SORTS,
        sites.len(),
        IncidentFilter::parse("", "", "").unwrap(),
        |filter, after, limit| incidents::incidents(&p, &ops, filter, after.as_ref(), limit),
        |row, _sort| (micros(row.opened_at), row.id)
    );
    // Local billing mode: the organizations on a paid plan.
    check_orders!(
        "subscriptions",
        SUBSCRIPTION_SORTS,
        owners.len(),
        SubscriptionFilter::parse(&p, "", "", "", "").unwrap(),
        |filter, after, limit| {
            subscriptions::subscriptions(&p, &ops, filter, after.as_ref(), limit)
        },
        |row, sort| {
            let key = match sort {
                // Zero-padded: the text orders as the number.
                Sort::Revenue => format!("{:012}", row.mrr_cents),
                _ => micros(row.since),
            };
            (key, row.organization_id)
        }
    );
    check_orders!(
        "jobs",
        JOB_SORTS,
        sites.len(),
        JobFilter::parse("", "dead").unwrap(),
        |filter, after, limit| jobs::jobs(&p, &ops, filter, after, limit),
        |row, _sort| (row.id, row.id)
    );
    check_orders!(
        "audit",
        LOG_SORTS,
        3,
        LogFilter::parse("", "site.suspend").unwrap(),
        |filter, after, limit| log::entries(&p, &ops, filter, after, limit),
        |row, _sort| (row.id, row.id)
    );

    // What a list does not offer is refused, naming what it does.
    for (raw, offered, words) in [
        (
            "revenue",
            &SITE_SORTS[..],
            "Sort by newest, oldest or name.",
        ),
        ("name", &INCIDENT_SORTS[..], "Sort by newest or oldest."),
        ("", &JOB_SORTS[..], ""),
    ] {
        match Sort::parse(raw, offered) {
            Ok(sort) => assert_eq!((sort, words), (Sort::Newest, ""), "empty: newest"),
            Err(platform::kernel::Error::Invalid { field, message }) => {
                assert_eq!((field.as_ref(), message.as_str()), ("sort", words));
            }
            Err(other) => panic!("{raw}: {other:?}"),
        }
    }
    // A page link made in another order, or altered, is the operator's error: a revenue
    // cursor's cents are no moment, a slug no sum.
    let mut by_revenue = SubscriptionFilter::parse(&p, "", "", "", "").unwrap();
    by_revenue.sort = Sort::Revenue;
    let revenue_link = subscriptions::subscriptions(&p, &ops, &by_revenue, None, 1)
        .await
        .unwrap()
        .next
        .unwrap();
    let mut newest = by_revenue.clone();
    newest.sort = Sort::Newest;
    let mut by_slug = SiteFilter::parse(&p, "", "", "").unwrap();
    by_slug.sort = Sort::Name;
    let slug_link = fleet::sites(&p, &ops, &by_slug, None, 1)
        .await
        .unwrap()
        .next
        .unwrap();
    let stale = |answer: Result<_, platform::kernel::Error>| {
        matches!(
            answer,
            Err(platform::kernel::Error::Invalid { ref field, .. }) if field == "after"
        )
    };
    assert!(stale(
        subscriptions::subscriptions(&p, &ops, &newest, Some(&revenue_link), 2)
            .await
            .map(drop)
    ));
    let sites_by_time = SiteFilter::parse(&p, "", "", "").unwrap();
    assert!(stale(
        fleet::sites(&p, &ops, &sites_by_time, Some(&slug_link), 2)
            .await
            .map(drop)
    ));
    for altered in [
        format!("alpha~{}", sites[0]),
        format!("newest:alpha~{}", sites[0]),
        format!("newest:-99999999999999999~{}", sites[0]),
    ] {
        let altered = Cursor::decode(&altered).unwrap();
        assert!(stale(
            fleet::sites(&p, &ops, &sites_by_time, Some(&altered), 2)
                .await
                .map(drop)
        ));
    }
}

/// A moment as text that orders as the moment (microseconds since 1970, zero-padded).
fn micros(at: DateTime<Utc>) -> String {
    format!("{:020}", at.timestamp_micros())
}
