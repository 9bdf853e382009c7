//! Every background loop of the process starts and stops the same way: spawned here with a
//! name, told to stop through one cancellation token, and waited for (each finishes the
//! step it is in) within a bounded time.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The process's background tasks.
#[derive(Debug, Clone, Default)]
pub struct Background {
    token: CancellationToken,
    tracker: TaskTracker,
    running: Arc<Mutex<BTreeMap<u64, &'static str>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Background {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the process is asked to stop: every loop selects on it.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Runs `task` (which must return soon after the token is cancelled) under `name`.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut running) = self.running.lock() {
            running.insert(id, name);
        }
        let running = self.running.clone();
        tracing::debug!(task = name, "started");
        self.tracker.spawn(async move {
            task.await;
            if let Ok(mut running) = running.lock() {
                running.remove(&id);
            }
            tracing::info!(task = name, "stopped");
        });
    }

    /// Runs `step` now and then every `every`, until cancelled; a step in progress is
    /// finished, never cut off.
    pub fn spawn_every<F, Fut>(&self, name: &'static str, every: Duration, mut step: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let token = self.token();
        self.spawn(name, async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    _ = tick.tick() => step().await,
                }
            }
        });
    }

    /// The names of the tasks still running.
    pub fn running(&self) -> Vec<&'static str> {
        self.running
            .lock()
            .map(|r| r.values().copied().collect())
            .unwrap_or_default()
    }

    /// Asks every task to stop and waits up to `within` for all of them. Returns the names
    /// of those that did not stop in time (they are left to the runtime's end).
    pub async fn shutdown(&self, within: Duration) -> Vec<&'static str> {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_err()
        {
            let late = self.running();
            tracing::warn!(?late, "background tasks did not stop in time");
            return late;
        }
        Vec::new()
    }
}
