//! The monitor's invariants that hold under concurrency: one lease holder at a time, and
//! one open incident per site and kind however many reporters open it at once; and its
//! judgement of what the proxies counted (error rates, usage against plan limits).

use std::time::Duration;

use platform::Platform;
use platform::incidents::{self, IncidentKind, Subject};
use platform::infra::lease;
use platform::monitor::traffic::{self, Judged};
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test(migrations = "../migrations")]
async fn of_many_processes_asking_at_once_one_holds_the_lease(pool: PgPool) {
    for round in 0..20 {
        sqlx::query("DELETE FROM leases")
            .execute(&pool)
            .await
            .unwrap();
        let holders: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
        let won = test_support::at_once(8, |i| {
            let (pool, holder) = (pool.clone(), holders[i]);
            async move {
                lease::hold(&pool, "monitor", holder, Duration::from_secs(10))
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
        let winner = holders[won.iter().position(|w| *w).unwrap()];
        // The holder renews; the others still cannot take it.
        assert!(
            lease::hold(&pool, "monitor", winner, Duration::from_secs(10))
                .await
                .unwrap()
        );
        let other = holders.iter().find(|h| **h != winner).unwrap();
        assert!(
            !lease::hold(&pool, "monitor", *other, Duration::from_secs(10))
                .await
                .unwrap()
        );
    }
    // An expired lease goes to whoever asks.
    let (old, new) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query("DELETE FROM leases")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        lease::hold(&pool, "monitor", old, Duration::from_millis(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        lease::hold(&pool, "monitor", new, Duration::from_secs(10))
            .await
            .unwrap()
    );
    lease::release(&pool, "monitor", new).await.unwrap();
    assert!(
        lease::hold(&pool, "monitor", old, Duration::from_secs(10))
            .await
            .unwrap()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn reporters_opening_the_same_incident_at_once_make_one(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let site = test_support::site(&platform, &owner, "flaky-site").await;
    let subject = Subject::site(owner.organization_id, site, IncidentKind::Down);
    for round in 0..20 {
        let opened = test_support::at_once(10, |_| {
            let (platform, subject) = (platform.clone(), subject.clone());
            async move {
                let mut tx = platform.db.begin().await.unwrap();
                let (id, opened) = incidents::open(&mut tx, &platform, &subject, "down")
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                (id, opened)
            }
        })
        .await;
        assert_eq!(
            opened.iter().filter(|(_, o)| *o).count(),
            1,
            "round {round}: {opened:?}"
        );
        assert!(opened.iter().all(|(id, _)| *id == opened[0].0));
        let mut conn = pool.acquire().await.unwrap();
        incidents::resolve(&mut conn, &platform, &subject, "back")
            .await
            .unwrap()
            .unwrap();
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM incidents WHERE site_id = $1")
        .bind(site)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 20);
    // The open incident shows on the banner of its organization only.
    let open = incidents::open_for(&platform, &owner).await.unwrap();
    assert!(open.is_empty());
    let mut tx = pool.begin().await.unwrap();
    incidents::open(&mut tx, &platform, &subject, "down again")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        incidents::open_for(&platform, &owner).await.unwrap().len(),
        1
    );
    let stranger = test_support::owner_on_plan(&platform, "pro").await;
    assert!(
        incidents::open_for(&platform, &stranger)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        incidents::for_site(&platform, &stranger, site, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The site's open incidents: (kind, subject, summary), sorted.
async fn open_incidents(pool: &PgPool, site: Uuid) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT kind, subject, summary FROM incidents
          WHERE site_id = $1 AND resolved_at IS NULL ORDER BY kind, subject",
    )
    .bind(site)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Sets the site's usage of `metric` this month (what the proxies' flushes add up).
async fn use_this_month(pool: &PgPool, site: Uuid, metric: &str, quantity: u64) {
    sqlx::query(
        "INSERT INTO usage_records (site_id, organization_id, period, metric, quantity)
         SELECT id, organization_id, date_trunc('month', now() AT TIME ZONE 'UTC')::date, $2, $3
           FROM sites WHERE id = $1
         ON CONFLICT (site_id, period, metric) DO UPDATE SET quantity = EXCLUDED.quantity",
    )
    .bind(site)
    .bind(metric)
    .bind(i64::try_from(quantity).unwrap())
    .execute(pool)
    .await
    .unwrap();
}

/// Adds requests (of which `failed` were 5xx) to the site's count for the minute `ago`.
async fn count_requests(pool: &PgPool, site: Uuid, ago_minutes: i32, requests: i64, failed: i64) {
    sqlx::query(
        "INSERT INTO usage_minutes AS m (site_id, organization_id, minute, requests, status_5xx)
         SELECT id, organization_id, date_trunc('minute', now()) - make_interval(mins => $2), $3, $4
           FROM sites WHERE id = $1
         ON CONFLICT (site_id, minute) DO UPDATE SET
            requests = m.requests + EXCLUDED.requests, status_5xx = m.status_5xx + EXCLUDED.status_5xx",
    )
    .bind(site)
    .bind(ago_minutes)
    .bind(requests)
    .bind(failed)
    .execute(pool)
    .await
    .unwrap();
}

/// What a judgement should have changed.
fn changed(opened: usize, resolved: usize) -> Judged {
    Judged { opened, resolved }
}

async fn judge(platform: &Platform) -> Judged {
    traffic::judge(platform).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn usage_past_80_percent_warns_and_at_the_limit_is_exceeded_once_per_limit(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let site = test_support::site(&platform, &owner, "busy-site").await;
    let quiet = test_support::site(&platform, &owner, "quiet-site").await;
    let limits = platform.plan("pro").unwrap().limits.clone();
    let storage_limit = u64::from(limits.storage_mb) << 20;
    // Recorded as the storage sampler records it.
    let store = async |bytes: u64| {
        platform::traffic::usage::record_storage(&pool, site, bytes)
            .await
            .unwrap()
    };
    use_this_month(&pool, site, "requests", limits.monthly_requests * 85 / 100).await;
    store(storage_limit / 2).await;
    use_this_month(&pool, quiet, "requests", limits.monthly_requests / 10).await;

    assert_eq!(judge(&platform).await, changed(1, 0));
    let open = open_incidents(&pool, site).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (open[0].0.as_str(), open[0].1.as_str()),
        ("usage_warning", "requests")
    );
    assert!(open[0].2.contains("(85.0%)"), "{}", open[0].2);
    assert!(open_incidents(&pool, quiet).await.is_empty());
    // Judging again changes nothing: the warning is open once.
    assert_eq!(judge(&platform).await, Judged::default());

    // The owner (who receives usage mail by default) is mailed once about it.
    let id = incidents::open_id(
        &mut pool.acquire().await.unwrap(),
        &Subject {
            organization_id: owner.organization_id,
            site_id: Some(site),
            kind: IncidentKind::UsageWarning,
            detail: "requests".to_owned(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    incidents::alert(&platform, id).await.unwrap();
    incidents::alert(&platform, id).await.unwrap();
    let mailed: Vec<String> =
        sqlx::query_scalar("SELECT subject FROM mail_outbox WHERE subject LIKE '%usage above 80%'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        mailed,
        vec!["busy-site: usage above 80% of a limit".to_owned()]
    );

    // At the limit: the warning gives way to "exceeded"; storage crosses 80% meanwhile.
    use_this_month(&pool, site, "requests", limits.monthly_requests).await;
    store(storage_limit * 9 / 10).await;
    assert_eq!(judge(&platform).await, changed(2, 1));
    let kinds: Vec<(String, String)> = open_incidents(&pool, site)
        .await
        .into_iter()
        .map(|(kind, subject, _)| (kind, subject))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("usage_exceeded".to_owned(), "requests".to_owned()),
            ("usage_warning".to_owned(), "storage".to_owned()),
        ]
    );

    // A new month (last month's requests no longer count) and data deleted (storage is
    // judged by the latest sample, not the month's billed peak): all resolved.
    sqlx::query(
        "UPDATE usage_records SET period = (period - interval '1 month')::date WHERE metric = 'requests'",
    )
    .execute(&pool)
    .await
    .unwrap();
    store(storage_limit / 4).await;
    assert_eq!(judge(&platform).await, changed(0, 2));
    assert!(open_incidents(&pool, site).await.is_empty());

    // Monitors judging at once (a lease hand-over) still open each incident once.
    store(storage_limit).await;
    for round in 0..10 {
        let judged = test_support::at_once(6, |_| {
            let platform = platform.clone();
            async move { judge(&platform).await }
        })
        .await;
        let opened: usize = judged.iter().map(|j| j.opened).sum();
        assert_eq!(opened, 1, "round {round}: {judged:?}");
        assert_eq!(open_incidents(&pool, site).await.len(), 1, "round {round}");
        sqlx::query(
            "UPDATE incidents SET resolved_at = now() WHERE site_id = $1 AND resolved_at IS NULL",
        )
        .bind(site)
        .execute(&pool)
        .await
        .unwrap();
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn more_than_one_percent_of_requests_failing_over_15_minutes_is_an_incident(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let site = test_support::site(&platform, &owner, "failing-site").await;

    // Failures older than 15 minutes do not count; too few requests are not judged.
    count_requests(&pool, site, 20, 1_000, 1_000).await;
    count_requests(&pool, site, 1, 10, 1).await;
    assert_eq!(judge(&platform).await, Judged::default());
    assert!(open_incidents(&pool, site).await.is_empty());

    // 1% exactly is fine; above it is not.
    count_requests(&pool, site, 0, 90, 0).await;
    assert_eq!(judge(&platform).await, Judged::default(), "1 of 100");
    count_requests(&pool, site, 0, 2, 2).await;
    assert_eq!(judge(&platform).await, changed(1, 0));
    let open = open_incidents(&pool, site).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].0, "error_rate");
    assert_eq!(
        open[0].2,
        "3 of 102 requests in the last 15 minutes failed with a server error (2.9%)"
    );
    assert_eq!(judge(&platform).await, Judged::default(), "open once");
    let subject = Subject::site(owner.organization_id, site, IncidentKind::ErrorRate);
    let id = incidents::open_id(&mut pool.acquire().await.unwrap(), &subject)
        .await
        .unwrap()
        .unwrap();
    incidents::alert(&platform, id).await.unwrap();
    let mailed: Vec<String> = sqlx::query_scalar(
        "SELECT body_text FROM mail_outbox WHERE subject = 'failing-site is failing requests'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(mailed.len(), 1, "the owner is mailed");
    assert!(mailed[0].contains("3 of 102 requests"), "{}", mailed[0]);

    // Good traffic brings the rate back under 1%: resolved, and the timeline says why.
    count_requests(&pool, site, 0, 300, 0).await;
    assert_eq!(judge(&platform).await, changed(0, 1));
    let timeline = incidents::for_site(&platform, &owner, site, 1)
        .await
        .unwrap();
    assert_eq!(
        timeline[0].timeline.last().unwrap().1,
        "3 of 402 requests in the last 15 minutes failed (0.7%): back at or under 1%"
    );
    // Counts older than an hour are deleted as the monitor reads; the others are kept.
    count_requests(&pool, site, 61, 5, 0).await;
    let old_and_recent = async || -> (i64, i64) {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE minute < now() - interval '1 hour'),
                    count(*) FILTER (WHERE minute >= now() - interval '1 hour')
               FROM usage_minutes WHERE site_id = $1",
        )
        .bind(site)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let (old, recent) = old_and_recent().await;
    assert_eq!(old, 1);
    judge(&platform).await;
    assert_eq!(old_and_recent().await, (0, recent));

    // A deleted site's incident is resolved, and a deleted site gets no new one.
    count_requests(&pool, site, 0, 100, 100).await;
    assert_eq!(judge(&platform).await, changed(1, 0));
    sqlx::query("UPDATE sites SET status = 'deleted' WHERE id = $1")
        .bind(site)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(judge(&platform).await, changed(0, 1));
    assert_eq!(judge(&platform).await, Judged::default());
}
