//! The signed-in user of the current request, on the server: the session cookie, the
//! client's address, and the response status of server functions.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use platform::identity::sessions;
use platform::identity::sessions::{SESSION_LIFETIME, Session};
use platform::tenancy;
use platform::tenancy::Membership;
use platform::tenancy::organizations;

use crate::error::AppError;
use crate::request::{parts, set_status};
use crate::state::{AppState, app_state};

/// The session cookie's name.
pub const COOKIE: &str = "slipway_session";

/// The peer address. `X-Forwarded-For` is not trusted here (no proxy is configured).
pub fn client_ip() -> Option<IpAddr> {
    parts()?
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

pub fn user_agent() -> Option<String> {
    parts()?
        .headers
        .get(header::USER_AGENT)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// The value of the request's cookie `name`, if any.
pub fn cookie_value(name: &str) -> Option<String> {
    cookie_in(&parts()?.headers, name)
}

/// The value of cookie `name` in `headers` (for handlers outside Leptos' context).
pub fn cookie_in(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.to_owned())
}

/// The session token from the request's cookie, if any.
pub fn session_token() -> Option<String> {
    cookie_value(COOKIE)
}

/// Sets a short-lived, HttpOnly cookie for one page (`path`), e.g. to hand a plain form
/// post's result to the page it redirects to. `max_age_secs = 0` removes it.
pub fn set_page_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: u64,
) -> Result<(), AppError> {
    let value = HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}"
    ))
    .map_err(|_| AppError::Internal)?;
    if let Some(response) = use_context::<ResponseOptions>() {
        response.append_header(header::SET_COOKIE, value);
    }
    Ok(())
}

/// The live session of this request, if signed in.
pub async fn current_session(state: &AppState) -> Result<Option<Session>, AppError> {
    session_of(state, session_token().as_deref()).await
}

/// The live session behind a cookie token, if any.
async fn session_of(state: &AppState, token: Option<&str>) -> Result<Option<Session>, AppError> {
    match token {
        Some(token) => Ok(sessions::session(&state.platform, token).await?),
        None => Ok(None),
    }
}

/// The session, or `SignInRequired` (401).
pub async fn require_session(state: &AppState) -> Result<Session, AppError> {
    signed_in(current_session(state).await?)
}

fn signed_in(session: Option<Session>) -> Result<Session, AppError> {
    session.ok_or_else(|| {
        set_status(StatusCode::UNAUTHORIZED);
        AppError::SignInRequired
    })
}

/// The signed-in user's membership of the organization they work in: the session's
/// active organization, else their first.
pub async fn require_membership(state: &AppState) -> Result<(Session, Membership), AppError> {
    membership_of(state, session_token().as_deref()).await
}

/// The same for a request that carries the cookie but runs outside a server function (the
/// site page's event stream): every path signs in through this one check.
pub async fn membership_of(
    state: &AppState,
    token: Option<&str>,
) -> Result<(Session, Membership), AppError> {
    let session = signed_in(session_of(state, token).await?)?;
    let organization_id = match session.active_organization_id {
        Some(id) => id,
        None => organizations::list_for_user(&state.platform, session.user_id)
            .await?
            .first()
            .map(|org| org.id)
            .ok_or(AppError::NoOrganization)?,
    };
    let membership = tenancy::membership(&state.platform, organization_id, session.user_id).await?;
    Ok((session, membership))
}

fn cookie(value: &str, max_age_secs: u64) -> Result<HeaderValue, AppError> {
    let state = app_state()?;
    // Browsers drop `Secure` cookies on plain HTTP: set it when served over TLS.
    let secure = if state.platform.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .map_err(|_| AppError::Internal)
}

/// Starts a session for `user_id` and sets its cookie (a new id at every sign-in); the
/// request's previous session, if any, ends.
pub async fn sign_in_as(state: &AppState, user_id: uuid::Uuid) -> Result<(), AppError> {
    if let Some(old) = session_token() {
        sessions::end_session(&state.platform, &old).await?;
    }
    let token = sessions::create_session(
        &state.platform,
        user_id,
        client_ip(),
        user_agent().as_deref(),
    )
    .await?;
    let value = cookie(&token, SESSION_LIFETIME.as_secs())?;
    if let Some(response) = use_context::<ResponseOptions>() {
        response.append_header(header::SET_COOKIE, value);
    }
    Ok(())
}

/// Expires the session cookie in the browser.
pub fn clear_cookie() -> Result<(), AppError> {
    let value = cookie("", 0)?;
    if let Some(response) = use_context::<ResponseOptions>() {
        response.append_header(header::SET_COOKIE, value);
    }
    Ok(())
}
