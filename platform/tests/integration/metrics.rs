//! The operator's business metrics in local billing mode, on a constructed history: plans
//! assigned by an operator between daily revenue snapshots, over three months and a half,
//! against figures computed by hand (docs/metrics.md has the definitions). The same with
//! Stripe is in `server/tests/billing.rs`.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use platform::admin::Operator;
use platform::admin::metrics::overview;
use platform::billing::revenue::{self, Movement};
use platform::{Platform, billing, workers};
use sqlx::PgPool;

fn day(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap()
}

fn noon(month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, 12, 0, 0).unwrap()
}

/// An organization whose plan the operator sets with `slipway admin set-plan`.
struct Customer {
    slug: String,
}

impl Customer {
    async fn new(platform: &Platform) -> Self {
        let owner = test_support::owner(platform).await;
        let slug = sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
            .bind(owner.organization_id)
            .fetch_one(&platform.db)
            .await
            .unwrap();
        Self { slug }
    }

    async fn on(&self, platform: &Platform, plan: &str) {
        billing::set_plan(platform, &self.slug, plan)
            .await
            .expect("plan assigned");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn local_billing_metrics_follow_the_assigned_plans_day_by_day(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    assert!(platform.billing.is_local());
    // Catalog prices: starter $15, pro $49 a month.
    let (a, b, c, d, e, g) = (
        Customer::new(&platform).await,
        Customer::new(&platform).await,
        Customer::new(&platform).await,
        Customer::new(&platform).await,
        Customer::new(&platform).await,
        Customer::new(&platform).await,
    );

    // 1 August: A on starter, B on pro.
    a.on(&platform, "starter").await;
    b.on(&platform, "pro").await;
    assert_eq!(
        revenue::take_snapshot(&platform, day(8, 1)).await.unwrap(),
        2
    );
    // 1 September: A upgraded to pro, C new on starter.
    a.on(&platform, "pro").await;
    c.on(&platform, "starter").await;
    revenue::take_snapshot(&platform, day(9, 1)).await.unwrap();
    // 1 October: B left, D new on pro.
    b.on(&platform, "free").await;
    d.on(&platform, "pro").await;
    revenue::take_snapshot(&platform, day(10, 1)).await.unwrap();
    // E paid for two weeks of October only: joined and left within the month.
    e.on(&platform, "pro").await;
    revenue::take_snapshot(&platform, day(10, 15))
        .await
        .unwrap();
    e.on(&platform, "free").await;
    // 1 November: A downgraded to starter, B came back on starter, D left.
    a.on(&platform, "starter").await;
    b.on(&platform, "starter").await;
    d.on(&platform, "free").await;
    // Taken twice (a retried job): the second replaces the first.
    revenue::take_snapshot(&platform, day(11, 1)).await.unwrap();
    assert_eq!(
        revenue::take_snapshot(&platform, day(11, 1)).await.unwrap(),
        3
    );
    // This month so far: E came back on starter, C upgraded to pro, G new on starter.
    e.on(&platform, "starter").await;
    c.on(&platform, "pro").await;
    g.on(&platform, "starter").await;

    let points = revenue::series(
        &platform,
        &[day(7, 1), day(8, 1), day(9, 1), day(10, 1), day(11, 1)],
        noon(11, 15),
    )
    .await
    .unwrap();
    let mrr: Vec<i64> = points.iter().map(|p| p.mrr_cents).collect();
    assert_eq!(mrr, [0, 6400, 11300, 11300, 4500, 10900]);
    let customers: Vec<i64> = points.iter().map(|p| p.customers).collect();
    assert_eq!(customers, [0, 2, 3, 3, 3, 5]);
    // Before the first snapshot nothing is known: no movement is made up.
    assert_eq!(points[0].snapshot, None);
    assert_eq!(points[1].movement, None);
    assert_eq!(
        points[2].movement,
        Some(Movement {
            new: 1500,
            expansion: 3400,
            ..Movement::default()
        }),
        "August"
    );
    assert_eq!(
        points[3].movement,
        Some(Movement {
            new: 4900,
            churned: 4900,
            churned_customers: 1,
            ..Movement::default()
        }),
        "September"
    );
    let october = Movement {
        reactivation: 1500,
        contraction: 3400,
        churned: 4900,
        churned_customers: 1,
        ..Movement::default()
    };
    assert_eq!(points[4].movement, Some(october), "October: E is not churn");
    let november = Movement {
        new: 1500,
        reactivation: 1500,
        expansion: 3400,
        ..Movement::default()
    };
    assert_eq!(points[5].movement, Some(november), "E's 15 October counts");
    for pair in points.windows(2).skip(1) {
        assert_eq!(
            pair[1].movement.unwrap().net(),
            pair[1].mrr_cents - pair[0].mrr_cents
        );
    }

    // A moment between snapshots reads the latest one before it.
    let between = revenue::series(&platform, &[day(10, 20)], noon(11, 15))
        .await
        .unwrap();
    assert_eq!(between[0].snapshot, Some(day(10, 15)));
    assert_eq!(
        (between[0].mrr_cents, between[0].customers),
        (4900 + 1500 + 4900 + 4900, 4)
    );

    // Snapshots of the same day taken at once (a job retried while it still ran) end as
    // one snapshot, whichever finishes last.
    for _ in 0..3 {
        let results = test_support::at_once(4, |_| {
            let platform = platform.clone();
            async move { revenue::take_snapshot(&platform, day(11, 20)).await }
        })
        .await;
        assert!(
            results.iter().all(|r| r.as_ref().is_ok_and(|n| *n == 5)),
            "{results:?}"
        );
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM mrr_snapshots WHERE day = $1")
            .bind(day(11, 20))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 5);
    }
    sqlx::query("DELETE FROM mrr_snapshot_days WHERE day = $1")
        .bind(day(11, 20))
        .execute(&pool)
        .await
        .unwrap();

    // The overview as an operator sees it on 15 November.
    let operator_user = test_support::owner(&platform).await;
    test_support::make_operator(&platform, operator_user.user_id).await;
    let operator = Operator::verify(&platform, operator_user.user_id)
        .await
        .unwrap();
    let o = overview(&platform, &operator, noon(11, 15)).await.unwrap();
    assert!(o.local_billing);
    assert_eq!((o.mrr_cents, o.customers), (10900, 5));
    assert_eq!(o.arr_cents(), 130_800);
    assert_eq!(o.arpa_cents(), Some(2180));
    assert_eq!(o.this_month, Some(november));
    let last = o.last_month.expect("October is known");
    assert_eq!(last.start, day(10, 1));
    assert_eq!((last.start_mrr_cents, last.start_customers), (11300, 3));
    assert_eq!(last.movement, october);
    // 1 of the 3 customers of 1 October left (E joined and left within the month).
    assert_eq!(last.customer_churn(), Some(1.0 / 3.0));
    // (churned 4900 + contraction 3400) / 11300; net also takes the reactivation off.
    assert_eq!(last.gross_mrr_churn(), Some(8300.0 / 11300.0));
    assert_eq!(last.net_mrr_churn(), Some(6800.0 / 11300.0));
    let plans: Vec<(String, String, i64, i64)> = o
        .subscriptions
        .iter()
        .map(|p| {
            (
                p.plan_id.clone(),
                p.interval.clone(),
                p.subscriptions,
                p.mrr_cents,
            )
        })
        .collect();
    assert_eq!(
        plans,
        [
            ("starter".into(), "monthly".into(), 4, 6000),
            ("pro".into(), "monthly".into(), 1, 4900)
        ]
    );
    // Twelve months back and this one, then now.
    assert_eq!(o.months.len(), 14);
    assert_eq!(
        o.months[0].start,
        Some(day(11, 1) - chrono::Months::new(12))
    );
    let this_week = o.weeks.last().unwrap();
    assert_eq!(this_week.signups, 0, "15 November's week is not today's");

    // A snapshot taken in the other billing mode (before Stripe was configured, or after
    // it was removed) is not compared with this mode's figures.
    sqlx::query("UPDATE mrr_snapshot_days SET billing_mode = 'stripe' WHERE day = $1")
        .bind(day(11, 1))
        .execute(&pool)
        .await
        .unwrap();
    let mixed = revenue::series(&platform, &[day(10, 1), day(11, 1)], noon(11, 15))
        .await
        .unwrap();
    assert_eq!(mixed[1].snapshot, None);
    assert_eq!((mixed[1].movement, mixed[2].movement), (None, None));
    sqlx::query("UPDATE mrr_snapshot_days SET billing_mode = 'local' WHERE day = $1")
        .bind(day(11, 1))
        .execute(&pool)
        .await
        .unwrap();

    // The daily job takes today's snapshot through the queue.
    let now = Utc::now();
    workers::schedule(&platform, now).await.unwrap();
    workers::run_due(&platform).await.unwrap();
    let today: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mrr_snapshots s JOIN mrr_snapshot_days d USING (day)
          WHERE day = $1 AND d.billing_mode = 'local'",
    )
    .bind(now.date_naive())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(today, 5);
    let now_overview = overview(&platform, &operator, now).await.unwrap();
    // Six customers and the operator signed up (just now: in the last week or two), and
    // the six customers paid for the first time.
    let signups: i64 = now_overview.weeks.iter().map(|w| w.signups).sum();
    let conversions: i64 = now_overview.weeks.iter().map(|w| w.conversions).sum();
    assert_eq!((signups, conversions), (7, 6));
    assert_eq!(now_overview.weeks.len(), 12);
}
