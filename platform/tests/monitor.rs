//! The monitor's invariants that hold under concurrency: one lease holder at a time, and
//! one open incident per site and kind however many reporters open it at once.

use std::time::Duration;

use platform::incidents::{self, IncidentKind, Subject};
use platform::infra::lease;
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
