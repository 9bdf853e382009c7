//! What a signed-in person changes about their own account: their name, their password
//! (the current one first), their email address (the new one confirmed by a mailed link),
//! and the browsers signed in as them (deleting the account is the deletion module's).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::throttle::{self, Attempt};
use super::tokens::{self, TokenPurpose};
use super::users::{NewPassword, PersonName, hash_password, verify_password};
use crate::Platform;
use crate::infra::mail;
use crate::kernel::error::FormCheck;
use crate::kernel::secrets::hash_token;
use crate::kernel::{Email, Error, Result};
use crate::tenancy::audit::{self, Actor};

/// Changes the name shown to teammates.
pub async fn rename(platform: &Platform, user_id: Uuid, raw: &str) -> Result<PersonName> {
    let name = PersonName::parse(raw)?;
    let mut tx = platform.db.begin().await?;
    let from = sqlx::query_scalar!(
        "SELECT name FROM users WHERE id = $1 FOR NO KEY UPDATE",
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if from != name.as_str() {
        sqlx::query!(
            "UPDATE users SET name = $2 WHERE id = $1",
            user_id,
            name.as_str()
        )
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            audit::Entry::new("user.renamed", Actor::User(user_id)).subject_user(user_id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(name)
}

/// Checks `password` against the account's, counted as a sign-in attempt: a stolen session
/// cannot guess its way to the password any faster than the sign-in form allows.
pub(crate) async fn check_current_password(
    platform: &Platform,
    user_id: Uuid,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<String> {
    let user = sqlx::query!(
        "SELECT email, password_hash FROM users WHERE id = $1",
        user_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    let attempt = throttle::admit(platform, Attempt::SignIn, &user.email, ip).await?;
    if !verify_password(password, Some(user.password_hash)).await? {
        return Err(Error::invalid(
            "current_password",
            "That is not your current password.",
        ));
    }
    throttle::forget(platform, Attempt::SignIn, attempt).await?;
    Ok(user.email)
}

/// Sets a new password after checking the current one, and signs out every other browser
/// (the one asking, `keep`, stays signed in). Returns how many sessions ended.
pub async fn change_password(
    platform: &Platform,
    user_id: Uuid,
    keep: &str,
    current: &str,
    new: &str,
    ip: Option<IpAddr>,
) -> Result<u64> {
    // Both fields answered at once: a weak new password and a wrong current one.
    let mut check = FormCheck::default();
    let new = check.field(NewPassword::parse(new).map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid("new_password", message),
        other => other,
    }));
    check.field(check_current_password(platform, user_id, current, ip).await);
    let new = check.finish(|| new)?;
    let hash = hash_password(&new).await?;
    let mut tx = platform.db.begin().await?;
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        user_id,
        hash
    )
    .execute(&mut *tx)
    .await?;
    let ended = sqlx::query!(
        "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
        user_id,
        hash_token(keep)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Links mailed before (a reset, an email change) no longer work.
    tokens::void_links(
        &mut tx,
        user_id,
        &[TokenPurpose::ResetPassword, TokenPurpose::ChangeEmail],
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("user.password_changed", Actor::User(user_id))
            .subject_user(user_id)
            .details(serde_json::json!({ "sessions_ended": ended }))
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// Mails a confirmation link to `new_email`; the address changes when it is opened (and
/// the old address is told). Needs the current password: whoever holds a session must not
/// be able to take the account over by moving its address.
pub async fn request_email_change(
    platform: &Platform,
    user_id: Uuid,
    password: &str,
    new_email: &str,
    ip: Option<IpAddr>,
) -> Result<Email> {
    let mut check = FormCheck::default();
    let new_email = check.field(Email::parse(new_email).map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid("new_email", message),
        other => other,
    }));
    let current = check.field(check_current_password(platform, user_id, password, ip).await);
    let (new_email, current) = check.finish(|| Some((new_email?, current?)))?;
    if current == new_email.as_str() {
        return Err(Error::invalid("new_email", "This is already your address."));
    }
    // Each request mails an address the caller chose: counted per address and per IP, with
    // the password-reset mails, so the form cannot flood anyone's inbox.
    throttle::admit(platform, Attempt::MailToAddress, new_email.as_str(), ip).await?;
    let mut tx = platform.db.begin().await?;
    // Only the latest request counts: a link sent to a mistyped address stops working.
    tokens::void_links(&mut tx, user_id, &[TokenPurpose::ChangeEmail]).await?;
    let taken = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE email = $1) AS "taken!""#,
        new_email.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    if taken {
        return Err(Error::invalid(
            "new_email",
            "Another account uses this address.",
        ));
    }
    let token = tokens::issue_token(
        &mut tx,
        user_id,
        TokenPurpose::ChangeEmail,
        Some(new_email.as_str()),
    )
    .await?;
    let link = platform.link(&format!("/verify?token={token}&change=1"));
    mail::send(
        &mut tx,
        &mail::Message {
            to: new_email.clone(),
            subject: "Confirm your new email address".to_owned(),
            body: format!(
                "Someone asked to use this address for their Slipway account ({current}).\n\nIf it was you, confirm within 48 hours:\n\n{link}\n\nIf not, ignore this message; nothing changes.\n"
            ),
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("user.email_change_requested", Actor::User(user_id))
            .subject_user(user_id)
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(new_email)
}

/// Opens an email-change link: the account's address becomes the confirmed new one, and a
/// note goes to the old address. An address another account took in the meantime is
/// refused (the database's uniqueness decides, so two links for one address cannot both
/// win).
pub async fn confirm_email_change(platform: &Platform, token: &str) -> Result<Email> {
    let mut tx = platform.db.begin().await?;
    let (user_id, new_email) =
        tokens::consume_token_with_email(&mut tx, token, TokenPurpose::ChangeEmail).await?;
    // Reset links mailed to the old address no longer work.
    tokens::void_links(&mut tx, user_id, &[TokenPurpose::ResetPassword]).await?;
    let new_email = Email::parse(&new_email)?;
    let old = sqlx::query_scalar!("SELECT email FROM users WHERE id = $1", user_id)
        .fetch_one(&mut *tx)
        .await?;
    let changed = sqlx::query!(
        "UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1",
        user_id,
        new_email.as_str()
    )
    .execute(&mut *tx)
    .await;
    match changed {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::Conflict(
                "Another account uses this address now. Choose another one.".to_owned(),
            ));
        }
        other => {
            other?;
        }
    }
    mail::send(
        &mut tx,
        &mail::Message {
            to: Email::parse(&old)?,
            subject: "Your Slipway address changed".to_owned(),
            body: format!(
                "Your Slipway account now uses {new_email}. If you did not ask for this, reset your password from the sign-in page and write to the operators of this service.\n"
            ),
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("user.email_changed", Actor::User(user_id)).subject_user(user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(new_email)
}

/// A browser signed in as the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    /// Names the session in a form (the hex of its stored hash; never the cookie itself).
    pub handle: String,
    /// The browser and system, from its user agent ("Firefox on Linux").
    pub device: String,
    pub ip: Option<String>,
    pub signed_in_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The browser asking.
    pub current: bool,
}

/// The user's live sessions, most recently used first.
pub async fn sessions(
    platform: &Platform,
    user_id: Uuid,
    current: &str,
) -> Result<Vec<ActiveSession>> {
    let current = hash_token(current);
    let rows = sqlx::query!(
        r#"SELECT id_hash, user_agent, host(ip) AS ip, created_at, last_seen_at
             FROM sessions WHERE user_id = $1 AND expires_at > now()
            ORDER BY last_seen_at DESC, created_at DESC"#,
        user_id
    )
    .fetch_all(&platform.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ActiveSession {
            current: row.id_hash == current,
            handle: hex::encode(&row.id_hash),
            device: device(row.user_agent.as_deref().unwrap_or_default()),
            ip: row.ip,
            signed_in_at: row.created_at,
            last_used_at: row.last_seen_at,
        })
        .collect())
}

/// Signs one of the user's other browsers out. Another user's session, or an unknown
/// handle, is `NotFound`.
pub async fn end_session(
    platform: &Platform,
    user_id: Uuid,
    handle: &str,
    ip: Option<IpAddr>,
) -> Result<()> {
    let id_hash = hex::decode(handle.trim()).map_err(|_| Error::NotFound)?;
    let mut tx = platform.db.begin().await?;
    let ended = sqlx::query!(
        "DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2",
        id_hash,
        user_id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if ended == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut *tx,
        audit::Entry::new("user.session_ended", Actor::User(user_id))
            .subject_user(user_id)
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// "Firefox on Linux" from a user agent; what is not recognised says so plainly.
pub fn device(user_agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(mark, _)| user_agent.contains(mark))
    .map(|(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(mark, _)| user_agent.contains(mark))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("A browser on {system}"),
        (None, None) => "An unknown browser".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn devices_in_words() {
        assert_eq!(
            device(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
            ),
            "Chrome on Linux"
        );
        assert_eq!(
            device(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
            ),
            "Safari on iOS"
        );
        assert_eq!(
            device(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
            ),
            "Firefox on Windows"
        );
        assert_eq!(device(""), "An unknown browser");
    }
}
