//! Server functions of the operators' user pages: every account (searched, filtered, paged),
//! one account whole, and what operators do to an account, each with a reason.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One account on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserListRow {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `Operator`, `Disabled`, `Unverified`: what stands out about the account.
    pub marks: Vec<String>,
    pub organizations: String,
    /// `2026-11-29 14:02 UTC`, or `never`.
    pub last_seen: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserListView {
    pub rows: Vec<UserListRow>,
    /// The `after` of the next page's link, if there is more.
    pub next: Option<String>,
    pub states: Vec<String>,
    /// The orders offered: keys and words.
    pub sorts: Vec<(String, String)>,
}

/// Every account, searched by part of an email or name, filtered by state, newest first, a
/// page at a time: operators only.
#[server(endpoint = "admin/users")]
pub async fn admin_users(
    #[server(default)] q: String,
    #[server(default)] state: String,
    #[server(default)] sort: String,
    #[server(default)] after: String,
) -> Result<UserListView, AppError> {
    use platform::admin::lists::PAGE;
    use platform::admin::users::{self, USER_STATES, UserFilter};

    let (app, operator) = super::operator().await?;
    let mut filter = UserFilter::parse(&q, &state)?;
    filter.sort = platform::admin::lists::Sort::parse(&sort, &platform::admin::users::USER_SORTS)?;
    let after = platform::admin::lists::parse_cursor(&after)?;
    let page = users::users(&app.platform, &operator, &filter, after.as_ref(), PAGE).await?;
    Ok(UserListView {
        rows: page
            .rows
            .into_iter()
            .map(|row| UserListRow {
                id: row.id.to_string(),
                marks: marks(&row),
                organizations: row.organizations.to_string(),
                last_seen: row.last_seen_at.map_or_else(|| "never".to_owned(), time),
                created: row.created_at.format("%Y-%m-%d").to_string(),
                email: row.email,
                name: row.name,
            })
            .collect(),
        next: page.next.map(|cursor| cursor.encode()),
        states: USER_STATES.iter().map(|s| (*s).to_owned()).collect(),
        sorts: super::sort_choices(&platform::admin::users::USER_SORTS, "Email"),
    })
}

#[cfg(feature = "ssr")]
fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(feature = "ssr")]
fn marks(row: &platform::admin::users::UserRow) -> Vec<String> {
    [
        (row.is_operator, "Operator"),
        (row.disabled_at.is_some(), "Disabled"),
        (!row.verified, "Unverified"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, mark)| mark.to_owned())
    .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetailView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub marks: Vec<String>,
    pub created: String,
    pub verified: bool,
    /// The operator's own account (which they cannot disable).
    pub is_me: bool,
    /// Why and since when, if the account is disabled.
    pub disabled: Option<String>,
    /// (name, slug, role, joined)
    pub organizations: Vec<(String, String, String, String)>,
    /// (signed in, last seen, IP, browser)
    pub sessions: Vec<(String, String, String, String)>,
    pub history: Vec<crate::account::AuditView>,
}

/// One account, whole, by id: operators only.
#[server(endpoint = "admin/user")]
pub async fn admin_user(#[server(default)] id: String) -> Result<UserDetailView, AppError> {
    let (app, operator) = super::operator().await?;
    // (Through the domain's error: the page answers 404.)
    let user_id = id
        .trim()
        .parse()
        .map_err(|_| AppError::from(platform::Error::NotFound))?;
    let detail = platform::admin::users::user(&app.platform, &operator, user_id).await?;
    let user = detail.user;
    Ok(UserDetailView {
        id: user.id.to_string(),
        marks: marks(&user),
        created: time(user.created_at),
        verified: user.verified,
        is_me: user.id == operator.user_id,
        disabled: user.disabled_at.map(|at| {
            format!(
                "Disabled since {}: {}",
                time(at),
                user.disabled_reason.clone().unwrap_or_default()
            )
        }),
        organizations: detail
            .organizations
            .into_iter()
            .map(|o| (o.name, o.slug, o.role, time(o.joined_at)))
            .collect(),
        sessions: detail
            .sessions
            .into_iter()
            .map(|s| {
                (
                    time(s.created_at),
                    time(s.last_seen_at),
                    s.ip.unwrap_or_default(),
                    s.user_agent.unwrap_or_default(),
                )
            })
            .collect(),
        history: detail
            .history
            .into_iter()
            .map(|event| crate::account::AuditView {
                at: time(event.at),
                event: platform::tenancy::audit::event(&event.action),
                action: Some(event.action),
                actor: event.actor.unwrap_or_default(),
                subject: String::new(),
                ip: event.ip.unwrap_or_default(),
                reason: event.reason.unwrap_or_default(),
            })
            .collect(),
        email: user.email,
        name: user.name,
    })
}

/// Disables an account (signed out everywhere, sign-ins refused): operators only.
#[server(endpoint = "admin/disable_user")]
pub async fn admin_disable_user(
    #[server(default)] user: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (app, operator) = super::operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    platform::admin::users::disable_user(
        &app.platform,
        &operator,
        super::chosen(&user, "user", "an account")?,
        &reason,
    )
    .await?;
    Ok(())
}

/// Enables a disabled account again: operators only.
#[server(endpoint = "admin/enable_user")]
pub async fn admin_enable_user(
    #[server(default)] user: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (app, operator) = super::operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    platform::admin::users::enable_user(
        &app.platform,
        &operator,
        super::chosen(&user, "user", "an account")?,
        &reason,
    )
    .await?;
    Ok(())
}

/// Mails a fresh verification link to an unverified account: operators only.
#[server(endpoint = "admin/resend_verification")]
pub async fn admin_resend_verification(
    #[server(default)] user: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (app, operator) = super::operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    platform::admin::users::resend_verification(
        &app.platform,
        &operator,
        super::chosen(&user, "user", "an account")?,
        &reason,
    )
    .await?;
    Ok(())
}
