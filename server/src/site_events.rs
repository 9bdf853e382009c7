//! `GET /api/sites/{id}/events`: server-sent events for one site's page. An event is sent
//! each time the reconciler records a step for the site (PostgreSQL `NOTIFY` on
//! `slipway_site_progress`, so it works whichever replica does the work, heard through the
//! process's one shared listener, so an open page holds no database connection), and every few
//! seconds so the page's log view follows the container. Each event says only "look
//! again": the page re-reads the site through its normal, authorised server function.

use std::convert::Infallible;
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

/// Flips to `true` when the server shuts down, so open streams end and the graceful
/// shutdown does not wait for them.
pub type ShutdownFlag = tokio::sync::watch::Receiver<bool>;

pub async fn site_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    shutdown: Option<Extension<ShutdownFlag>>,
    headers: HeaderMap,
) -> Response {
    let refuse = |status: StatusCode, message: &'static str| (status, message).into_response();
    let Ok(site_id) = id.parse::<Uuid>() else {
        return refuse(StatusCode::NOT_FOUND, "no such site");
    };
    // The same sign-in check as every server function, and scoped like every other read:
    // a site of another organization does not exist here.
    let cookie = app::session::cookie_in(&headers, app::session::COOKIE);
    let membership = match app::session::membership_of(&state, cookie.as_deref()).await {
        Ok((_, membership)) => membership,
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
    let changes = platform.notifications.subscribe();
    let shutdown = shutdown.map(|Extension(flag)| flag);
    Sse::new(events(changes, site_id, shutdown))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Unnamed events (`message` in the browser), data `step` or `tick`.
fn events(
    mut changes: Subscription,
    site_id: Uuid,
    shutdown: Option<ShutdownFlag>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let wanted = site_id.to_string();
    async_stream::stream! {
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
