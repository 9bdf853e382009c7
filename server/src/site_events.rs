//! `GET /api/sites/{id}/events`: server-sent events for one site's page. An event is sent
//! each time the reconciler records a step for the site (PostgreSQL `NOTIFY` on
//! `slipway_site_progress`, so it works whichever replica does the work, heard through the
//! process's one shared listener, so an open page holds no database connection), and every few
//! seconds so the page's log view follows the container. Each event says only "look
//! again": the page re-reads the site through its normal, authorised server function.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use app::error::AppError;
use app::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use platform::infra::notify::{CHANNEL_PROGRESS, Notice, Subscription};
use uuid::Uuid;

/// How often an event is sent without a recorded step (the log view's refresh).
const TICK: Duration = Duration::from_secs(3);

/// Live site pages one user may have open at once (tabs, windows, sessions), and all users
/// together, in this process. Each costs no database connection, but memory and a task: a
/// script opening thousands must not.
pub const MAX_STREAMS_PER_USER: usize = 8;
pub const MAX_STREAMS: usize = 10_000;

/// Open streams per user, in this process.
#[derive(Debug, Default)]
pub struct OpenStreams {
    by_user: Mutex<HashMap<Uuid, usize>>,
}

/// Why a stream was not opened.
enum Full {
    User,
    Process,
}

impl OpenStreams {
    /// Counts one more stream for the user, or says which cap it would pass. The count
    /// goes down when the returned guard is dropped (the stream ends).
    fn open(self: &Arc<Self>, user: Uuid) -> Result<StreamGuard, Full> {
        let mut open = self.by_user.lock().unwrap_or_else(PoisonError::into_inner);
        if open.values().sum::<usize>() >= MAX_STREAMS {
            return Err(Full::Process);
        }
        let count = open.entry(user).or_insert(0);
        if *count >= MAX_STREAMS_PER_USER {
            return Err(Full::User);
        }
        *count += 1;
        Ok(StreamGuard {
            streams: self.clone(),
            user,
        })
    }
}

struct StreamGuard {
    streams: Arc<OpenStreams>,
    user: Uuid,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .by_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// Flips to `true` when the server shuts down, so open streams end and the graceful
/// shutdown does not wait for them.
pub type ShutdownFlag = tokio::sync::watch::Receiver<bool>;

pub async fn site_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    shutdown: Option<Extension<ShutdownFlag>>,
    Extension(streams): Extension<Arc<OpenStreams>>,
    headers: HeaderMap,
) -> Response {
    let refuse = |status: StatusCode, message: &'static str| (status, message).into_response();
    let Ok(site_id) = id.parse::<Uuid>() else {
        return refuse(StatusCode::NOT_FOUND, "no such site");
    };
    // The same sign-in check as every server function, and scoped like every other read:
    // a site of another organization does not exist here.
    let cookie = app::session::cookie_in(&headers, app::session::COOKIE);
    let (session, membership) = match app::session::membership_of(&state, cookie.as_deref()).await {
        Ok(signed_in) => signed_in,
        Err(AppError::SignInRequired) => {
            return refuse(StatusCode::UNAUTHORIZED, "sign in to follow this site");
        }
        Err(AppError::Internal) => {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
        Err(_) => return refuse(StatusCode::NOT_FOUND, "no such site"),
    };
    let platform = &state.platform;
    if platform::sites::get(platform, &membership, site_id)
        .await
        .is_err()
    {
        return refuse(StatusCode::NOT_FOUND, "no such site");
    }
    let guard = match streams.open(session.user_id) {
        Ok(guard) => guard,
        Err(Full::User) => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many live site pages are open for your account; close some tabs",
            );
        }
        Err(Full::Process) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "this server follows as many live pages as it can; the page refreshes instead",
            );
        }
    };
    let changes = platform.notifications.subscribe();
    let shutdown = shutdown.map(|Extension(flag)| flag);
    Sse::new(events(changes, site_id, shutdown, guard))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Unnamed events (`message` in the browser), data `step` or `tick`.
fn events(
    mut changes: Subscription,
    site_id: Uuid,
    shutdown: Option<ShutdownFlag>,
    guard: StreamGuard,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let wanted = site_id.to_string();
    async_stream::stream! {
        // Held as long as the stream lives: dropping the stream (the browser went away)
        // gives the session its slot back.
        let _open = guard;
        let mut tick = tokio::time::interval(TICK);
        tick.tick().await;
        let mut shutdown = shutdown;
        let stopping = async move {
            match shutdown.as_mut() {
                Some(flag) => {
                    let _ = flag.wait_for(|stopping| *stopping).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                notice = changes.next() => match notice {
                    Notice::Message { channel: CHANNEL_PROGRESS, payload } if *payload == *wanted => {
                        yield Ok(Event::default().data("step"));
                    }
                    Notice::Missed => yield Ok(Event::default().data("step")),
                    Notice::Message { .. } => {}
                },
                _ = tick.tick() => yield Ok(Event::default().data("tick")),
                _ = &mut stopping => break,
            }
        }
    }
}
