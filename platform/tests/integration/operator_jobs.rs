//! The operator's job list (searched, filtered by state, paged by id without gaps or
//! repeats while jobs are added) and the retry of a dead job: one retry of several at once,
//! recorded once with the operator and the reason.

use platform::Platform;
use platform::admin::jobs::{self, JobFilter};
use platform::admin::lists;
use platform::admin::{Operator, Reason};
use sqlx::PgPool;

async fn operator(platform: &Platform) -> Operator {
    let member = test_support::owner_with_email(platform, "ops@slipway.test").await;
    test_support::make_operator(platform, member.user_id).await;
    Operator::verify(platform, member.user_id).await.unwrap()
}

/// A job of `kind` in `state` (`retrying`: queued after failed attempts) with `error`.
async fn job(
    pool: &PgPool,
    kind: &str,
    state: &str,
    error: Option<&str>,
    key: Option<&str>,
) -> i64 {
    let (stored, attempts) = match state {
        "retrying" => ("queued", 3),
        "queued" => ("queued", 0),
        other => (other, 1),
    };
    sqlx::query_scalar(
        "INSERT INTO jobs (kind, state, attempts, last_error, unique_key, payload, run_at,
                           locked_by, locked_at, first_attempt_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, '{\"outbox_id\": 42}', now() + interval '1 hour',
                 CASE WHEN $2 = 'running' THEN 'worker-1' END,
                 CASE WHEN $2 = 'running' THEN now() END,
                 CASE WHEN $3 > 0 THEN now() - interval '1 day' END,
                 CASE WHEN $2 IN ('dead', 'succeeded') THEN now() END)
         RETURNING id",
    )
    .bind(kind)
    .bind(stored)
    .bind(attempts)
    .bind(error)
    .bind(key)
    .fetch_one(pool)
    .await
    .expect("job")
}

async fn ids(p: &Platform, by: &Operator, search: &str, state: &str) -> Vec<i64> {
    let filter = JobFilter::parse(search, state).expect("filter");
    let page = jobs::jobs(p, by, &filter, None, 100).await.expect("list");
    assert!(page.next.is_none());
    page.rows.into_iter().map(|row| row.id).collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn jobs_are_found_by_kind_key_error_and_payload_and_filtered_by_state(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let by = operator(&p).await;
    // (Only this test's jobs: not the operator's verification mail.)
    sqlx::query("DELETE FROM jobs")
        .execute(&pool)
        .await
        .unwrap();
    let dead_mail = job(
        &pool,
        "mail",
        "dead",
        Some("SMTP: Connection REFUSED"),
        None,
    )
    .await;
    let retrying = job(
        &pool,
        "stripe_event",
        "retrying",
        Some("Stripe: 503"),
        Some("evt_9Xq"),
    )
    .await;
    let queued = job(
        &pool,
        "housekeeping",
        "queued",
        None,
        Some("housekeeping:2026-11-30"),
    )
    .await;
    let running = job(&pool, "mrr_snapshot", "running", None, None).await;
    let done = job(&pool, "incident_alert", "succeeded", None, None).await;
    // A literal `%` in the search is no wildcard.
    let percent = job(&pool, "mail", "dead", Some("quota 100% used"), None).await;

    assert_eq!(
        ids(&p, &by, "", "").await,
        vec![percent, done, running, queued, retrying, dead_mail],
        "newest first"
    );
    assert_eq!(ids(&p, &by, "", "dead").await, vec![percent, dead_mail]);
    assert_eq!(ids(&p, &by, "", "retrying").await, vec![retrying]);
    assert_eq!(ids(&p, &by, "", "queued").await, vec![queued]);
    assert_eq!(ids(&p, &by, "", "running").await, vec![running]);
    assert_eq!(ids(&p, &by, "", "succeeded").await, vec![done]);
    assert_eq!(
        ids(&p, &by, "connection refused", "").await,
        vec![dead_mail]
    );
    assert_eq!(ids(&p, &by, "EVT_9x", "").await, vec![retrying]);
    assert_eq!(ids(&p, &by, "MRR_snap", "").await, vec![running]);
    assert_eq!(ids(&p, &by, "100%", "").await, vec![percent]);
    assert_eq!(
        ids(&p, &by, "\"outbox_id\": 42", "dead").await,
        vec![percent, dead_mail]
    );
    let row = jobs::jobs(
        &p,
        &by,
        &JobFilter::parse("", "retrying").unwrap(),
        None,
        10,
    )
    .await
    .unwrap()
    .rows
    .remove(0);
    assert_eq!((row.state.as_str(), row.attempts), ("retrying", 3));

    for (search, state, field) in [("", "sleeping", "state"), ("a\nb", "", "q")] {
        match JobFilter::parse(search, state) {
            Err(platform::Error::Invalid { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{search:?} {state:?}: {other:?}"),
        }
    }
    assert!(matches!(
        lists::parse_after_id("12abc"),
        Err(platform::Error::Invalid { ref field, .. }) if field == "after"
    ));

    let csv = jobs::jobs_csv(&p, &by, &JobFilter::parse("", "dead").unwrap())
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("id,kind,state,attempts"));
    assert!(lines[2].starts_with(&format!("{dead_mail},mail,dead,1,")));
    assert!(lines[2].contains("SMTP: Connection REFUSED"));
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_of_jobs_have_no_gaps_or_repeats_while_jobs_are_added(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let by = operator(&p).await;
    let mut made = Vec::new();
    for _ in 0..7 {
        made.push(job(&pool, "mail", "dead", Some("down"), None).await);
    }
    let filter = JobFilter::parse("", "dead").unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = jobs::jobs(&p, &by, &filter, after, 3).await.unwrap();
        seen.extend(page.rows.iter().map(|row| row.id));
        // Added between two pages: newer than every page already read, so on none. And
        // the job the next page's link names is gone (retried, or deleted by
        // housekeeping): the link still leads on from where it was.
        job(&pool, "mail", "dead", Some("later"), None).await;
        if let Some(last) = page.rows.last() {
            sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(last.id)
                .execute(&pool)
                .await
                .unwrap();
        }
        match page.next {
            Some(next) => after = Some(lists::parse_after_id(&next.to_string()).unwrap().unwrap()),
            None => break,
        }
    }
    made.reverse();
    assert_eq!(seen, made);
}

#[sqlx::test(migrations = "../migrations")]
async fn of_operators_retrying_a_dead_job_at_once_one_does_and_it_is_recorded_once(pool: PgPool) {
    let p = test_support::test_platform(pool.clone());
    let by = operator(&p).await;
    let reason = Reason::parse("SMTP relay fixed").unwrap();
    for round in 0..5 {
        let dead = job(&pool, "mail", "dead", Some("SMTP down"), None).await;
        let outcomes =
            futures_util::future::join_all((0..6).map(|_| jobs::retry_job(&p, &by, dead, &reason)))
                .await;
        let done = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(done, 1, "round {round}: {outcomes:?}");
        for refused in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
            assert!(
                matches!(refused, platform::Error::Conflict(message)
                    if message.contains("only dead jobs are retried")),
                "{refused:?}"
            );
        }
        let (state, finished, recorded): (String, Option<chrono::DateTime<chrono::Utc>>, i64) =
            sqlx::query_as(
                "SELECT state, finished_at,
                        (SELECT count(*) FROM audit_log
                          WHERE action = 'job.retry' AND subject = 'job:' || $1::text
                            AND details->>'reason' = 'SMTP relay fixed'
                            AND details->>'kind' = 'mail')
                   FROM jobs WHERE id = $1",
            )
            .bind(dead)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((state.as_str(), finished, recorded), ("queued", None, 1));
    }
    assert!(matches!(
        jobs::retry_job(&p, &by, 987_654, &reason).await,
        Err(platform::Error::NotFound)
    ));
}
