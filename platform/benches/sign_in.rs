//! What a sign-in costs: argon2id verification alone, and `sessions::sign_in` end to end
//! against the real database (throttle check, lookup, verification, audit entry). A SHA-256
//! of the same password, measured in the same run, is the baseline the ratios refer to.
//!
//! `cargo bench -p platform --bench sign_in` (needs DATABASE_URL, as the tests do).

use std::time::{Duration, Instant};

use platform::identity::sessions;
use platform::identity::users;
use platform::identity::users::NewPassword;
use sha2::Digest as _;

mod support;
use support::BenchDb;

const RUNS: usize = 30;
const PASSWORD: &str = "correct horse battery staple";

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 95 / 100],
    )
}

async fn measure<F, Fut>(mut f: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm-up
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        f().await;
        samples.push(started.elapsed());
    }
    summary(samples)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bench = BenchDb::start(PASSWORD, 10).await?;
    let p = bench.platform.clone();
    let hash = users::hash_password(&NewPassword::parse(PASSWORD)?).await?;

    let (sha_median, _) = measure(|| async {
        std::hint::black_box(sha2::Sha256::digest(PASSWORD.as_bytes()));
    })
    .await;
    let (verify_median, verify_p95) = measure(|| {
        let hash = hash.clone();
        async move {
            assert!(
                users::verify_password(PASSWORD, Some(hash))
                    .await
                    .unwrap_or(false)
            );
        }
    })
    .await;
    let (sign_in_median, sign_in_p95) = measure(|| async {
        assert!(
            sessions::sign_in(&p, "bench@example.com", PASSWORD, None)
                .await
                .is_ok()
        );
    })
    .await;
    let (unknown_median, _) = measure(|| async {
        // Unknown addresses must cost the same (no enumeration by timing); the failures
        // are spread over addresses so the throttle does not cut the run short.
        let email = format!("nobody{}@example.com", rand_suffix());
        assert!(sessions::sign_in(&p, &email, PASSWORD, None).await.is_err());
    })
    .await;

    println!(
        "argon2id m={} KiB, t={}, p={}; {RUNS} runs each",
        users::ARGON2_MEMORY_KIB,
        users::ARGON2_ITERATIONS,
        users::ARGON2_PARALLELISM
    );
    println!("baseline sha256(password)      median {sha_median:>10.2?}");
    println!(
        "argon2id verify                median {verify_median:>10.2?}  p95 {verify_p95:>10.2?}  ({:.0}x baseline)",
        verify_median.as_secs_f64() / sha_median.as_secs_f64().max(1e-9)
    );
    println!(
        "sign_in, right password        median {sign_in_median:>10.2?}  p95 {sign_in_p95:>10.2?}  ({:.2}x argon2id alone)",
        sign_in_median.as_secs_f64() / verify_median.as_secs_f64()
    );
    println!(
        "sign_in, unknown email         median {unknown_median:>10.2?}  ({:.2}x a right password)",
        unknown_median.as_secs_f64() / sign_in_median.as_secs_f64()
    );

    bench.finish().await
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
