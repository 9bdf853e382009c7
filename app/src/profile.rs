//! Server functions for the signed-in person's own account (`/dashboard/account`): name,
//! password, email address, and the browsers signed in as them.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::session::{client_ip, require_session};
#[cfg(feature = "ssr")]
use crate::state::app_state;

/// A browser signed in as the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub handle: String,
    pub device: String,
    pub ip: String,
    pub signed_in: String,
    pub last_used: String,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub name: String,
    pub email: String,
    pub sessions: Vec<SessionView>,
}

#[server(endpoint = "account/view")]
pub async fn account() -> Result<AccountView, AppError> {
    use platform::identity::account;
    // Read before any await: the request's context is not there once the future has
    // yielded (a page rendered on the server would lose the cookie).
    let token = crate::session::session_token().ok_or(AppError::SignInRequired)?;
    let state = app_state()?;
    let session = require_session(&state).await?;
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let sessions = account::sessions(&state.platform, session.user_id, &token)
        .await?
        .into_iter()
        .map(|s| SessionView {
            handle: s.handle,
            device: s.device,
            ip: s.ip.unwrap_or_default(),
            signed_in: time(s.signed_in_at),
            last_used: time(s.last_used_at),
            current: s.current,
        })
        .collect();
    Ok(AccountView {
        name: session.name,
        email: session.email,
        sessions,
    })
}

#[server(endpoint = "account/rename")]
pub async fn change_name(name: String) -> Result<String, AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    let name = platform::identity::account::rename(&state.platform, session.user_id, &name).await?;
    Ok(name.as_str().to_owned())
}

/// Sets a new password (the current one first); other browsers are signed out. Returns
/// how many.
#[server(endpoint = "account/password")]
pub async fn change_password(
    #[server(default)] current_password: String,
    #[server(default)] new_password: String,
) -> Result<u64, AppError> {
    // Before any await, as in `account`.
    let token = crate::session::session_token().ok_or(AppError::SignInRequired)?;
    let state = app_state()?;
    let session = require_session(&state).await?;
    let ended = platform::identity::account::change_password(
        &state.platform,
        session.user_id,
        &token,
        &current_password,
        &new_password,
        client_ip(),
    )
    .await?;
    Ok(ended)
}

/// Mails a confirmation link to the new address; returns it.
#[server(endpoint = "account/email")]
pub async fn change_email(
    #[server(default)] password: String,
    #[server(default)] new_email: String,
) -> Result<String, AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    let email = platform::identity::account::request_email_change(
        &state.platform,
        session.user_id,
        &password,
        &new_email,
        client_ip(),
    )
    .await?;
    Ok(email.to_string())
}

/// Opens an email-change link (signed in or not: the link is the proof).
#[server(endpoint = "account/email/confirm")]
pub async fn confirm_email_change(token: String) -> Result<(), AppError> {
    let state = app_state()?;
    platform::identity::account::confirm_email_change(&state.platform, &token).await?;
    leptos_axum::redirect("/dashboard/account?email=changed");
    Ok(())
}

/// Deletes the account (the password first) and signs this browser out.
#[server(endpoint = "account/delete")]
pub async fn delete_account(#[server(default)] password: String) -> Result<(), AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    platform::deletion::delete_account(&state.platform, session.user_id, &password, client_ip())
        .await?;
    crate::session::clear_cookie()?;
    leptos_axum::redirect("/?account=deleted");
    Ok(())
}

/// Signs one of the user's other browsers out.
#[server(endpoint = "account/sessions/end")]
pub async fn end_session(handle: String) -> Result<(), AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    platform::identity::account::end_session(
        &state.platform,
        session.user_id,
        &handle,
        client_ip(),
    )
    .await?;
    Ok(())
}
