//! Test-only fault switches, for Slipway's monitor tests and benchmark: they exist only when
//! the container's environment has `SITE_TEST_FAULTS=1` (never set by Slipway's templates).
//!
//! - `POST /__test/hang`: the liveness path stops answering; the process lives on.
//! - `POST /__test/exit`: the process exits with code 3.
//! - `POST /__test/crash-at-start?seconds=N`: leaves a mark in the data directory and
//!   exits; for N seconds (default an hour) every start exits at once (a site that
//!   crash-loops, then recovers by itself).
//! - `POST /__test/oom`: allocates memory until the kernel kills the process.
//! - `GET /__test/status/{code}`: answers with that status (a site failing some requests).

use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};

/// Set by `/__test/hang`: the liveness path never answers again (until a restart).
pub static HUNG: AtomicBool = AtomicBool::new(false);

pub fn enabled() -> bool {
    std::env::var("SITE_TEST_FAULTS").as_deref() == Ok("1")
}

fn crash_mark() -> std::path::PathBuf {
    crate::data_dir().join(".crash-at-start")
}

/// At start: exits at once while a crash asked for lasts (faults enabled only).
pub fn crash_if_marked() {
    if !enabled() {
        return;
    }
    let mark = crash_mark();
    let lasts = std::fs::read_to_string(&mark)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let age = std::fs::metadata(&mark)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| at.elapsed().ok());
    if let (Some(lasts), Some(age)) = (lasts, age)
        && age.as_secs() < lasts
    {
        eprintln!("site: crashing at start, as asked ({})", mark.display());
        std::process::exit(3);
    }
}

#[derive(serde::Deserialize)]
struct CrashFor {
    seconds: Option<u64>,
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/__test/hang",
            post(|| async {
                eprintln!("site: hanging, as asked");
                HUNG.store(true, Ordering::SeqCst);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__test/exit",
            post(|| async {
                eprintln!("site: exiting, as asked");
                std::process::exit(3);
                #[allow(unreachable_code)]
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__test/crash-at-start",
            post(|query: axum::extract::Query<CrashFor>| async move {
                let seconds = query.seconds.unwrap_or(3600).to_string();
                match std::fs::write(crash_mark(), seconds.as_bytes()) {
                    Ok(()) => {
                        eprintln!("site: will crash at every start, as asked");
                        std::process::exit(3);
                    }
                    Err(error) => {
                        eprintln!("site: cannot leave the crash mark: {error}");
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            }),
        )
        .route(
            "/__test/oom",
            post(|| async {
                eprintln!("site: allocating until out of memory, as asked");
                std::thread::spawn(|| {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        // Written to, so the pages are really used.
                        hoard.push(vec![0x5a; 8 * 1024 * 1024]);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                });
                StatusCode::ACCEPTED
            }),
        )
        .route(
            "/__test/status/{code}",
            get(|Path(code): Path<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
            }),
        )
}
