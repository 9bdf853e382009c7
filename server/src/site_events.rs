//! `GET /api/sites/{id}/events`: server-sent events for one site's page. An event is sent
//! each time the reconciler records a step for the site (PostgreSQL `NOTIFY` on
//! `slipway_site_progress`, so it works whichever replica does the work), and every few
//! seconds so the page's log view follows the container. Each event says only "look
//! again": the page re-reads the site through its normal, authorised server function.

use std::convert::Infallible;
use std::time::Duration;

use app::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use platform::provision::CHANNEL_PROGRESS;
use sqlx::postgres::PgListener;
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
    let platform = &state.platform;
    let session = match app::session::cookie_in(&headers, app::session::COOKIE) {
        Some(token) => platform::accounts::session(platform, &token).await,
        None => Ok(None),
    };
    let session = match session {
        Ok(Some(session)) => session,
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "sign in to follow this site"),
        Err(error) => {
            tracing::error!(%error, "site events: reading the session");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let Some(organization_id) = session.active_organization_id else {
        return refuse(StatusCode::NOT_FOUND, "no such site");
    };
    // Scoped like every other read: a site of another organization does not exist here.
    let membership = platform::orgs::membership(platform, organization_id, session.user_id).await;
    let allowed = match membership {
        Ok(me) => platform::sites::get(platform, &me, site_id).await.is_ok(),
        Err(_) => false,
    };
    if !allowed {
        return refuse(StatusCode::NOT_FOUND, "no such site");
    }
    let mut listener = match PgListener::connect_with(&platform.db).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "site events: cannot listen");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "live updates are unavailable",
            );
        }
    };
    if let Err(error) = listener.listen(CHANNEL_PROGRESS).await {
        tracing::warn!(%error, "site events: LISTEN failed");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "live updates are unavailable",
        );
    }
    let shutdown = shutdown.map(|Extension(flag)| flag);
    Sse::new(events(listener, site_id, shutdown))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Unnamed events (`message` in the browser), data `step` or `tick`.
fn events(
    mut listener: PgListener,
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
                notification = listener.recv() => match notification {
                    Ok(n) if n.payload() == wanted => yield Ok(Event::default().data("step")),
                    Ok(_) => {}
                    // The page falls back to a refresh; the stream ends.
                    Err(_) => break,
                },
                _ = tick.tick() => yield Ok(Event::default().data("tick")),
                _ = &mut stopping => break,
            }
        }
    }
}
