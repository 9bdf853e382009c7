//! `GET /api/sites/{id}/events`: server-sent events for one site's page. An event is sent
//! each time the reconciler records a step for the site (PostgreSQL `NOTIFY` on
//! `slipway_site_progress`, so it works whichever replica does the work, heard through the
//! process's one shared listener, so an open page holds no database connection), and every few
//! seconds so the page's log view follows the container. Each event says only "look
//! again": the page re-reads the site through its normal, authorised server function.
//! `GET /api/sites/events` does the same for the sites list: an event whenever one of the
//! organization's sites changes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use app::error::AppError;
use app::state::AppState;
use axum::Extension;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
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
    /// Which organization each site heard of belongs to (a site never moves), looked up
    /// once for the whole process rather than once per open sites list.
    owners: Mutex<HashMap<Uuid, Uuid>>,
}

/// Sites whose organization the process remembers before it forgets them all.
const REMEMBERED: usize = 100_000;

impl OpenStreams {
    /// The organization of `site`, if it exists.
    async fn owner_of(&self, db: &sqlx::PgPool, site: Uuid) -> Option<Uuid> {
        let known = self
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&site)
            .copied();
        if known.is_some() {
            return known;
        }
        let owner: Uuid = sqlx::query_scalar("SELECT organization_id FROM sites WHERE id = $1")
            .bind(site)
            .fetch_optional(db)
            .await
            .ok()
            .flatten()?;
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        if owners.len() >= REMEMBERED {
            owners.clear();
        }
        owners.insert(site, owner);
        Some(owner)
    }
}

/// Why a stream was not opened.
enum Full {
    User,
    Process,
}

impl Full {
    fn refusal(self) -> Refusal {
        match self {
            Full::User => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many live site pages are open for your account; close some tabs",
            ),
            Full::Process => (
                StatusCode::SERVICE_UNAVAILABLE,
                "this server follows as many live pages as it can; the page refreshes instead",
            ),
        }
    }
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
    site: MemberSite,
    shutdown: Option<Extension<ShutdownFlag>>,
    Extension(streams): Extension<Arc<OpenStreams>>,
) -> Response {
    let guard = match streams.open(site.session.user_id) {
        Ok(guard) => guard,
        Err(full) => return full.refusal().into_response(),
    };
    let changes = state.platform.notifications.subscribe();
    let shutdown = shutdown.map(|Extension(flag)| flag);
    Sse::new(events(changes, site.id, shutdown, guard))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `GET /api/sites/events`: server-sent events for the sites list of the signed-in member's
/// organization, one each time one of its sites changes (created, asked to stop, start or
/// go, a step recorded, suspended or resumed), so the list re-reads itself. Another
/// organization's changes are never told.
pub async fn organization_site_events(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    shutdown: Option<Extension<ShutdownFlag>>,
    Extension(streams): Extension<Arc<OpenStreams>>,
) -> Response {
    let cookie = app::session::cookie_in(&headers, app::session::COOKIE);
    let (session, membership) = match app::session::membership_of(&state, cookie.as_deref()).await {
        Ok(signed_in) => signed_in,
        Err(AppError::SignInRequired) => {
            return refuse(StatusCode::UNAUTHORIZED, "sign in to follow your sites");
        }
        Err(AppError::Internal) => {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
        Err(_) => return refuse(StatusCode::FORBIDDEN, "you belong to no organization"),
    };
    let guard = match streams.open(session.user_id) {
        Ok(guard) => guard,
        Err(full) => return full.refusal().into_response(),
    };
    let changes = state.platform.notifications.subscribe();
    let shutdown = shutdown.map(|Extension(flag)| flag);
    Sse::new(organization_events(
        state.platform.db.clone(),
        changes,
        membership.organization_id,
        shutdown,
        guard,
    ))
    .keep_alive(KeepAlive::default())
    .into_response()
}

fn organization_events(
    db: sqlx::PgPool,
    mut changes: Subscription,
    organization_id: Uuid,
    shutdown: Option<ShutdownFlag>,
    guard: StreamGuard,
) -> impl Stream<Item = Result<Event, Infallible>> {
    use platform::infra::notify::{CHANNEL_ROUTES, CHANNEL_SITES};
    async_stream::stream! {
        let streams = guard.streams.clone();
        let _open = guard;
        let stopping = stopped(shutdown);
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                notice = changes.next() => match notice {
                    Notice::Message { channel, payload }
                        if [CHANNEL_SITES, CHANNEL_ROUTES, CHANNEL_PROGRESS].contains(&channel) =>
                    {
                        let Ok(site) = payload.parse::<Uuid>() else { continue };
                        if streams.owner_of(&db, site).await == Some(organization_id) {
                            yield Ok(Event::default().data("change"));
                        }
                    }
                    Notice::Missed => yield Ok(Event::default().data("change")),
                    Notice::Message { .. } => {}
                },
                _ = &mut stopping => break,
            }
        }
    }
}

/// Why a request was refused: its status and a short message.
type Refusal = (StatusCode, &'static str);

fn refuse(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

/// The site `{id}` of the request's path, of the signed-in member's organization (the same
/// check as every server function, scoped like every read: a site of another organization
/// does not exist here). Extracting it refuses the request otherwise.
pub struct MemberSite {
    pub id: Uuid,
    pub session: platform::identity::sessions::Session,
    pub membership: platform::tenancy::Membership,
}

impl FromRequestParts<AppState> for MemberSite {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let no_such_site = || refuse(StatusCode::NOT_FOUND, "no such site");
        let Ok(Path(id)) = Path::<String>::from_request_parts(parts, state).await else {
            return Err(no_such_site());
        };
        let Ok(id) = id.parse::<Uuid>() else {
            return Err(no_such_site());
        };
        let cookie = app::session::cookie_in(&parts.headers, app::session::COOKIE);
        let (session, membership) =
            match app::session::membership_of(state, cookie.as_deref()).await {
                Ok(signed_in) => signed_in,
                Err(AppError::SignInRequired) => {
                    return Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "sign in to follow this site",
                    ));
                }
                Err(AppError::Internal) => {
                    return Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
                }
                Err(_) => return Err(no_such_site()),
            };
        if platform::sites::get(&state.platform, &membership, id)
            .await
            .is_err()
        {
            return Err(no_such_site());
        }
        Ok(Self {
            id,
            session,
            membership,
        })
    }
}

/// A [`MemberSite`] whose logs the member may read (owners, admins and editors), with the
/// process's Docker engine to read them from.
pub struct LogReader {
    site: MemberSite,
    runtime: Arc<platform::infra::docker::Runtime>,
}

impl FromRequestParts<AppState> for LogReader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        use platform::tenancy::{Action, authorize};
        let site = MemberSite::from_request_parts(parts, state).await?;
        if !authorize(site.membership.role, Action::ViewLogs) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "logs are for owners, admins and editors",
            ));
        }
        let Some(runtime) = state.runtime.clone() else {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "this server process does not manage containers",
            ));
        };
        Ok(Self { site, runtime })
    }
}

/// `GET /api/sites/{id}/logs`: the container's output as it is written, one event per line
/// (owners, admins and editors; counted against the same caps as live pages).
pub async fn site_logs(
    State(state): State<AppState>,
    LogReader { site, runtime }: LogReader,
    shutdown: Option<Extension<ShutdownFlag>>,
    Extension(streams): Extension<Arc<OpenStreams>>,
) -> Response {
    let guard = match streams.open(site.session.user_id) {
        Ok(guard) => guard,
        Err(full) => return full.refusal().into_response(),
    };
    let lines = match platform::provision::follow_logs(
        &state.platform,
        &runtime,
        &site.membership,
        site.id,
    )
    .await
    {
        Ok(lines) => lines,
        Err(_) => return refuse(StatusCode::NOT_FOUND, "no such site"),
    };
    let shutdown = shutdown.map(|Extension(flag)| flag);
    let stream = async_stream::stream! {
        let _open = guard;
        // The stream ends while the site has no container (still provisioning, being
        // replaced): the browser asks again a second later.
        yield Ok::<_, Infallible>(Event::default().retry(LOGS_RETRY));
        tokio::pin!(lines);
        let stopping = stopped(shutdown);
        tokio::pin!(stopping);
        let mut started = false;
        loop {
            tokio::select! {
                line = futures_util::StreamExt::next(&mut lines) => match line {
                    Some(line) => {
                        // The engine starts with the container's last lines: the page shows
                        // those instead of its own, so a line written between the page's
                        // reading and this stream (or a reconnection) is never missed.
                        if !started {
                            started = true;
                            yield Ok(Event::default().event("reset").data("the last lines follow"));
                        }
                        yield Ok(Event::default().data(line));
                    }
                    None => break,
                },
                _ = &mut stopping => break,
            }
        }
    };
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// How soon a browser reconnects to a log stream that ended.
const LOGS_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /api/sites/{id}/logs.txt`: the last 10,000 lines, as a file to download.
pub async fn download_logs(
    State(state): State<AppState>,
    LogReader { site, runtime }: LogReader,
) -> Response {
    let site_id = site.id;
    match platform::provision::container_logs(
        &state.platform,
        &runtime,
        &site.membership,
        site_id,
        10_000,
    )
    .await
    {
        Ok(lines) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_owned(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"site-{site_id}.log\""),
                ),
            ],
            lines.join("\n") + "\n",
        )
            .into_response(),
        Err(_) => refuse(StatusCode::NOT_FOUND, "no such site"),
    }
}

/// Resolves when the server begins to shut down (never without a flag).
async fn stopped(shutdown: Option<ShutdownFlag>) {
    match shutdown {
        Some(mut flag) => {
            let _ = flag.wait_for(|stopping| *stopping).await;
        }
        None => std::future::pending().await,
    }
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
        let stopping = stopped(shutdown);
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
