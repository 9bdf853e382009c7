//! The durable job queue against the real PostgreSQL: claims under competition, a worker
//! that dies mid-job, retries spread as the policy says (on a clock the test moves, never
//! by sleeping), jobs that give up, idempotent enqueueing, and stopping mid-job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::Platform;
use platform::infra::jobs::{
    self, Clock, Handler, Job, JobError, JobKind, JobState, NewJob, Worker,
};
use sqlx::PgPool;
use tokio::sync::Barrier;
use tokio_util::sync::CancellationToken;

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), JobError>> + Send + 'static,
{
    Arc::new(move |job| Box::pin(f(job)))
}

async fn enqueue_n(platform: &Platform, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = jobs::enqueue(
            &platform.db,
            NewJob::new(JobKind::Housekeeping, serde_json::json!({ "n": i })),
        )
        .await
        .expect("enqueue")
        .expect("a new job");
        ids.push(id);
    }
    ids
}

async fn state(platform: &Platform, id: i64) -> (String, i32) {
    sqlx::query_as("SELECT state, attempts FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&platform.db)
        .await
        .expect("job")
}

/// (attempt, worker, outcome) of a job's attempts, in order.
async fn attempts(platform: &Platform, id: i64) -> Vec<(i32, String, Option<String>)> {
    sqlx::query_as(
        "SELECT attempt, worker, outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(&platform.db)
    .await
    .expect("attempts")
}

#[sqlx::test(migrations = "../migrations")]
async fn two_workers_never_run_one_job_at_once(pool: PgPool) {
    let platform = test_support::test_platform(pool);
    for round in 0..3 {
        let ids = enqueue_n(&platform, 40).await;
        let runs: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
        let running: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
        let overlaps = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let make = || {
            let (runs, running, overlaps, done) = (
                runs.clone(),
                running.clone(),
                overlaps.clone(),
                done.clone(),
            );
            handler(move |job: Job| {
                let (runs, running, overlaps, done) = (
                    runs.clone(),
                    running.clone(),
                    overlaps.clone(),
                    done.clone(),
                );
                async move {
                    {
                        let mut now = running.lock().unwrap();
                        let entry = now.entry(job.id).or_default();
                        *entry += 1;
                        if *entry > 1 {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(job.id as u64 % 7)).await;
                    *runs.lock().unwrap().entry(job.id).or_default() += 1;
                    *running.lock().unwrap().get_mut(&job.id).unwrap() -= 1;
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
        };
        let cancel = CancellationToken::new();
        let start = Arc::new(Barrier::new(2));
        let mut workers = Vec::new();
        for _ in 0..2 {
            let worker = Worker::new(platform.jobs.clone()).with_concurrency(4);
            let (handler, notifications, cancel, start) = (
                make(),
                platform.notifications.clone(),
                cancel.clone(),
                start.clone(),
            );
            workers.push(tokio::spawn(async move {
                start.wait().await;
                worker.run(handler, &notifications, cancel).await;
            }));
        }
        tokio::time::timeout(Duration::from_secs(30), async {
            while done.load(Ordering::SeqCst) < ids.len() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every job ran within 30 s");
        cancel.cancel();
        for worker in workers {
            worker.await.expect("worker stops");
        }
        assert_eq!(
            overlaps.load(Ordering::SeqCst),
            0,
            "round {round}: a job ran twice at once"
        );
        let runs = runs.lock().unwrap().clone();
        for id in &ids {
            assert_eq!(
                runs.get(id),
                Some(&1),
                "round {round}: job {id} ran {:?} times",
                runs.get(id)
            );
            assert_eq!(state(&platform, *id).await, ("succeeded".to_owned(), 1));
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_job_held_by_a_worker_that_died_is_taken_up_again(pool: PgPool) {
    let clock = Clock::manual(Utc::now());
    let platform = test_support::test_platform(pool).with_clock(clock.clone());
    let lease = Duration::from_secs(60);
    let id = enqueue_n(&platform, 1).await[0];
    let start = Utc::now() + chrono::Duration::seconds(1);
    clock.set(start);

    // Worker A takes the job and dies in the middle of it (its task is gone, and with it
    // the heartbeat).
    let a = Worker::new(platform.jobs.clone()).with_lease(lease);
    let a_id = a.id().to_owned();
    let stuck = handler(|_| async { std::future::pending::<Result<(), JobError>>().await });
    let task = tokio::spawn(async move { a.run_one(&stuck).await });
    tokio::time::timeout(Duration::from_secs(10), async {
        while state(&platform, id).await.0 != "running" {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("A holds the job");
    task.abort();

    // Another worker does not take it while the lease holds...
    let b = Worker::new(platform.jobs.clone()).with_lease(lease);
    let ok = handler(|_| async { Ok(()) });
    clock.set(start + chrono::Duration::seconds(59));
    assert_eq!(
        b.run_due(&ok).await.expect("run"),
        0,
        "taken while A's lease holds"
    );
    assert_eq!(state(&platform, id).await.0, "running");
    // ...takes it back once the lease ran out (the abandoned attempt counts as a failure,
    // so the retry waits the policy's first delay)...
    clock.set(start + chrono::Duration::seconds(61));
    assert_eq!(b.run_due(&ok).await.expect("run"), 0);
    assert_eq!(state(&platform, id).await.0, "queued");
    // ...and runs it then.
    clock.set(
        platform
            .jobs
            .next_due()
            .await
            .expect("next")
            .expect("queued"),
    );
    assert_eq!(b.run_due(&ok).await.expect("run"), 1);
    assert_eq!(state(&platform, id).await, ("succeeded".to_owned(), 2));
    let attempts = attempts(&platform, id).await;
    assert_eq!(
        attempts,
        vec![
            (1, a_id, Some("abandoned".to_owned())),
            (2, b.id().to_owned(), Some("succeeded".to_owned())),
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_job_that_keeps_failing_backs_off_ends_dead_is_listed_and_can_be_retried(pool: PgPool) {
    let start = Utc::now();
    let clock = Clock::manual(start);
    let platform = test_support::test_platform(pool).with_clock(clock.clone());
    let id = jobs::enqueue(
        &platform.db,
        NewJob::new(JobKind::Mail, serde_json::json!({})).at(start),
    )
    .await
    .expect("enqueue")
    .expect("new");
    let worker = Worker::new(platform.jobs.clone());
    let failing =
        handler(|_| async { Err(JobError::Retry("SMTP: connection refused".to_owned())) });
    let policy = JobKind::Mail.policy();
    let mut tried_at: Vec<DateTime<Utc>> = Vec::new();
    // Run each retry the moment it falls due, as a worker would, for as long as it is queued.
    loop {
        let (state, _) = state(&platform, id).await;
        if state != "queued" {
            assert_eq!(state, "dead");
            break;
        }
        let due = platform
            .jobs
            .next_due()
            .await
            .expect("next")
            .expect("queued");
        clock.set(due);
        tried_at.push(due);
        assert_eq!(worker.run_due(&failing).await.expect("run"), 1);
        assert!(tried_at.len() < 200, "never gave up");
    }
    // Each wait doubles from the first, within the jitter, up to the cap...
    for (n, pair) in tried_at.windows(2).enumerate() {
        let waited = (pair[1] - pair[0]).to_std().expect("forward");
        let expected = policy.delay(n as u32 + 1);
        assert!(
            waited >= expected.mul_f64(0.79) && waited <= expected.mul_f64(1.21),
            "wait {n}: {waited:?}, expected {expected:?} +-20%"
        );
    }
    // ...and it was tried for the policy's whole window (a day for mail), no less.
    let tried_for = (*tried_at.last().unwrap() - tried_at[0]).to_std().unwrap();
    assert!(
        tried_for >= policy.give_up_after,
        "gave up after {tried_for:?}"
    );
    assert!(tried_for <= policy.give_up_after + policy.max_delay.mul_f64(1.2));

    let dead = platform
        .jobs
        .list(&[JobState::Dead], 10)
        .await
        .expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("SMTP: connection refused")
    );

    platform.jobs.retry(id).await.expect("retry a dead job");
    assert!(
        platform.jobs.retry(id).await.is_err(),
        "only dead jobs are retried"
    );
    let ok = handler(|_| async { Ok(()) });
    assert_eq!(worker.run_due(&ok).await.expect("run"), 1);
    assert_eq!(state(&platform, id).await.0, "succeeded");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_permanent_failure_is_dead_at_once(pool: PgPool) {
    let platform = test_support::test_platform(pool);
    let id = enqueue_n(&platform, 1).await[0];
    let broken = handler(|_| async { Err(JobError::Permanent("no such outbox row".to_owned())) });
    Worker::new(platform.jobs.clone())
        .run_due(&broken)
        .await
        .expect("run");
    assert_eq!(state(&platform, id).await, ("dead".to_owned(), 1));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_unique_key_is_enqueued_once_however_many_try_at_once(pool: PgPool) {
    let platform = test_support::test_platform(pool);
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(16));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (db, barrier) = (platform.db.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                jobs::enqueue(
                    &db,
                    NewJob::new(JobKind::StripeEvent, serde_json::json!({}))
                        .unique(format!("stripe_event:evt_{round}")),
                )
                .await
                .expect("enqueue")
            }));
        }
        let mut created = 0;
        for task in tasks {
            created += usize::from(task.await.expect("task").is_some());
        }
        assert_eq!(created, 1, "round {round}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&platform.db)
        .await
        .expect("count");
    assert_eq!(rows, 5);
}

#[sqlx::test(migrations = "../migrations")]
async fn stopping_lets_the_job_in_progress_finish_within_a_bounded_time(pool: PgPool) {
    let platform = test_support::test_platform(pool);
    let id = enqueue_n(&platform, 1).await[0];
    let started = Arc::new(tokio::sync::Notify::new());
    let slow = {
        let started = started.clone();
        handler(move |_| {
            let started = started.clone();
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(())
            }
        })
    };
    let cancel = CancellationToken::new();
    let worker = Worker::new(platform.jobs.clone());
    let notifications = platform.notifications.clone();
    let stop = cancel.clone();
    let task = tokio::spawn(async move { worker.run(slow, &notifications, stop).await });
    started.notified().await;
    let asked = std::time::Instant::now();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the worker stops within 5 s")
        .expect("no panic");
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "it waited for the job"
    );
    assert_eq!(
        state(&platform, id).await.0,
        "succeeded",
        "the job finished, not cut off"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_handler_that_panics_has_failed_and_is_retried_later(pool: PgPool) {
    let platform = test_support::test_platform(pool);
    let id = enqueue_n(&platform, 1).await[0];
    let panicking = handler(|_| async { panic!("boom") });
    Worker::new(platform.jobs.clone())
        .run_due(&panicking)
        .await
        .expect("the worker survives");
    assert_eq!(state(&platform, id).await, ("queued".to_owned(), 1));
    let error: String = sqlx::query_scalar("SELECT last_error FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&platform.db)
        .await
        .expect("error");
    assert_eq!(error, "the handler panicked: boom");
}
