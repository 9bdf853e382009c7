//! PostgreSQL notifications, one LISTEN connection per process, fanned out in memory.
//!
//! Triggers and workers `NOTIFY` on a few channels (a site changed, a route changed, a step
//! was recorded, a job was queued). Every part of the process that wants to hear them
//! subscribes here instead of opening a listener of its own, so a hundred open site pages
//! cost no database connection at all. A notice only ever means "look again": after the
//! connection was lost (or a subscriber fell behind) everyone is told [`Notice::Missed`]
//! and re-reads what it cares about.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use super::tasks::Background;

/// A site's desired state changed (payload: the site id). Wakes the reconcilers.
pub const CHANNEL_SITES: &str = "slipway_sites";
/// Something a route depends on changed (payload: the site id). Wakes the route tables.
pub const CHANNEL_ROUTES: &str = "slipway_routes";
/// The reconciler recorded a step (payload: the site id). Wakes the site pages.
pub const CHANNEL_PROGRESS: &str = "slipway_site_progress";
/// A job was queued or re-queued (payload: its kind). Wakes the job workers.
pub const CHANNEL_JOBS: &str = "slipway_jobs";

const CHANNELS: [&str; 4] = [
    CHANNEL_SITES,
    CHANNEL_ROUTES,
    CHANNEL_PROGRESS,
    CHANNEL_JOBS,
];

/// How many notices a slow subscriber may fall behind before it is told it missed some.
const BACKLOG: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Message {
        channel: &'static str,
        payload: Arc<str>,
    },
    /// Notices may have been lost (the connection was re-established, or this subscriber
    /// fell behind): look at everything again.
    Missed,
}

impl Notice {
    /// Whether a subscriber interested in `channel` should look again.
    pub fn concerns(&self, channel: &str) -> bool {
        match self {
            Notice::Message { channel: c, .. } => *c == channel,
            Notice::Missed => true,
        }
    }
}

/// The process's one listener. Cheap to clone into every part that subscribes.
#[derive(Debug)]
pub struct Notifications {
    db: PgPool,
    sender: broadcast::Sender<Notice>,
    started: AtomicBool,
}

impl Notifications {
    pub fn new(db: PgPool) -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self {
            db,
            sender,
            started: AtomicBool::new(false),
        }
    }

    /// Starts the listener as one of the server's background tasks, so it stops with them.
    /// Does nothing if it runs already.
    pub fn start(&self, background: &Background) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let (db, sender, stop) = (self.db.clone(), self.sender.clone(), background.token());
        background.spawn("notifications", async move {
            tokio::select! {
                () = listen(db, sender) => {}
                () = stop.cancelled() => {}
            }
        });
    }

    /// Notices from now on. Outside a server (tests, commands) the first subscription starts
    /// the listener itself, for as long as the runtime runs.
    pub fn subscribe(&self) -> Subscription {
        let receiver = self.sender.subscribe();
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(listen(self.db.clone(), self.sender.clone()));
        }
        Subscription { receiver }
    }
}

/// One subscriber's view of the notices.
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Notice>,
}

impl Subscription {
    /// The next notice.
    pub async fn next(&mut self) -> Notice {
        match self.receiver.recv().await {
            Ok(notice) => notice,
            Err(broadcast::error::RecvError::Lagged(_)) => Notice::Missed,
            // The listener never drops its sender; if the runtime is going away, so are we.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }

    /// Waits until something concerns `channel`.
    pub async fn changed(&mut self, channel: &str) {
        while !self.next().await.concerns(channel) {}
    }
}

async fn listen(db: PgPool, sender: broadcast::Sender<Notice>) {
    loop {
        match connect(&db).await {
            Ok(mut listener) => {
                // Whatever happened while nobody listened is unknown: everyone looks again.
                let _ = sender.send(Notice::Missed);
                loop {
                    // `try_recv` says when the connection was lost (`Ok(None)`; the next
                    // call reconnects): notices sent meanwhile are gone, so everyone looks
                    // again. (`recv` would reconnect silently.)
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            let Some(channel) =
                                CHANNELS.into_iter().find(|c| *c == notification.channel())
                            else {
                                continue;
                            };
                            let _ = sender.send(Notice::Message {
                                channel,
                                payload: Arc::from(notification.payload()),
                            });
                        }
                        Ok(None) => {
                            tracing::warn!(
                                "notification listener lost its connection; reconnecting"
                            );
                            let _ = sender.send(Notice::Missed);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "notification listener cannot reconnect");
                            break;
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot LISTEN for notifications"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn connect(db: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen_all(CHANNELS).await?;
    Ok(listener)
}
