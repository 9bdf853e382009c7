//! Single-use links mailed to a user: email verification (48 hours) and password reset
//! (one hour), stored as SHA-256 hashes only.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::throttle::{self, Attempt};
use super::users::{NewPassword, hash_password};
use crate::Platform;
use crate::infra::mail;
use crate::kernel::secrets::{hash_token, random_token};
use crate::kernel::{Email, Error, Result};
use crate::tenancy::audit::{self, Actor};

pub const VERIFY_EMAIL_LIFETIME: Duration = Duration::from_secs(48 * 3600);
pub const RESET_PASSWORD_LIFETIME: Duration = Duration::from_secs(3600);

pub(crate) async fn send_verification_in(
    tx: &mut sqlx::PgConnection,
    platform: &Platform,
    user_id: Uuid,
    email: &Email,
) -> Result<()> {
    let token = issue_token(tx, user_id, TokenPurpose::VerifyEmail, None).await?;
    let link = platform.link(&format!("/verify?token={token}"));
    mail::send(
        tx,
        &mail::Message {
            to: email.clone(),
            subject: "Verify your email address".to_owned(),
            body: format!(
                "Welcome to Slipway.\n\nConfirm your email address by opening this link within 48 hours:\n\n{link}\n"
            ),
        },
    )
    .await
}

/// Mails a fresh verification link to a user whose address is not verified yet.
pub async fn resend_verification(platform: &Platform, user_id: Uuid) -> Result<()> {
    let mut tx = platform.db.begin().await?;
    let user = sqlx::query!(
        "SELECT email, email_verified_at FROM users WHERE id = $1",
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if user.email_verified_at.is_some() {
        return Err(Error::Conflict(
            "Your email address is already verified.".into(),
        ));
    }
    let email = Email::parse(&user.email)?;
    send_verification_in(&mut tx, platform, user_id, &email).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
    /// Confirms a new address for an account (the address travels with the token).
    ChangeEmail,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
            TokenPurpose::ChangeEmail => "change_email",
        }
    }

    fn lifetime(self) -> Duration {
        match self {
            TokenPurpose::VerifyEmail | TokenPurpose::ChangeEmail => VERIFY_EMAIL_LIFETIME,
            TokenPurpose::ResetPassword => RESET_PASSWORD_LIFETIME,
        }
    }
}

/// A new single-use link's token; `new_email` is the address an email change confirms.
pub(super) async fn issue_token(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    purpose: TokenPurpose,
    new_email: Option<&str>,
) -> Result<String> {
    let token = random_token();
    let lifetime = chrono::Duration::from_std(purpose.lifetime())
        .map_err(|e| Error::Internal(e.to_string()))?;
    sqlx::query!(
        "INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at, new_email)
         VALUES ($1, $2, $3, $4, $5)",
        hash_token(&token),
        user_id,
        purpose.as_str(),
        Utc::now() + lifetime,
        new_email,
    )
    .execute(&mut *tx)
    .await?;
    Ok(token)
}

/// Voids the user's unused links of these kinds (they answer "already used" from now on):
/// whatever changes who controls an account ends what was mailed before.
pub(super) async fn void_links(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    purposes: &[TokenPurpose],
) -> Result<u64> {
    let purposes: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
    let voided = sqlx::query!(
        "UPDATE user_tokens SET used_at = now()
          WHERE user_id = $1 AND purpose = ANY($2) AND used_at IS NULL",
        user_id,
        &purposes as &[&str],
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(voided)
}

/// Marks a token used and returns its user; a reused, expired or unknown token is refused
/// with a message that says which.
async fn consume_token(
    tx: &mut sqlx::PgConnection,
    token: &str,
    purpose: TokenPurpose,
) -> Result<Uuid> {
    consume_token_with_email(tx, token, purpose)
        .await
        .map(|(user_id, _)| user_id)
}

/// [`consume_token`], also returning the address the token carries (empty if none).
pub(super) async fn consume_token_with_email(
    tx: &mut sqlx::PgConnection,
    token: &str,
    purpose: TokenPurpose,
) -> Result<(Uuid, String)> {
    let row = sqlx::query!(
        "SELECT user_id, used_at, expires_at, new_email FROM user_tokens
          WHERE token_hash = $1 AND purpose = $2 FOR UPDATE",
        hash_token(token),
        purpose.as_str(),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::TokenInvalid)?;
    if row.used_at.is_some() {
        return Err(Error::TokenUsed);
    }
    if row.expires_at <= Utc::now() {
        return Err(Error::TokenExpired);
    }
    sqlx::query!(
        "UPDATE user_tokens SET used_at = now() WHERE token_hash = $1",
        hash_token(token)
    )
    .execute(&mut *tx)
    .await?;
    Ok((row.user_id, row.new_email.unwrap_or_default()))
}

/// Confirms the address a verification link was sent to. A link opened again once its
/// address is confirmed says so; one a newer link replaced, before that, is used.
pub async fn verify_email(platform: &Platform, token: &str) -> Result<Uuid> {
    let mut tx = platform.db.begin().await?;
    let user_id = match consume_token(&mut tx, token, TokenPurpose::VerifyEmail).await {
        Err(Error::TokenUsed) => {
            tx.rollback().await?;
            let confirmed: Option<bool> = sqlx::query_scalar(
                "SELECT u.email_verified_at IS NOT NULL
                   FROM user_tokens t JOIN users u ON u.id = t.user_id
                  WHERE t.token_hash = $1 AND t.purpose = $2",
            )
            .bind(hash_token(token))
            .bind(TokenPurpose::VerifyEmail.as_str())
            .fetch_optional(&platform.db)
            .await?;
            return Err(if confirmed == Some(true) {
                Error::EmailAlreadyConfirmed
            } else {
                Error::TokenUsed
            });
        }
        consumed => consumed?,
    };
    sqlx::query!(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1",
        user_id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("user.email_verified", Actor::User(user_id)),
    )
    .await?;
    tx.commit().await?;
    Ok(user_id)
}

/// Reset requests allowed per address, and per IP, within [`RESET_REQUEST_WINDOW`]: each
/// one may send a mail, so an unlimited form is a way to flood someone's inbox.
pub const MAX_RESET_REQUESTS_PER_ADDRESS: i64 = 3;
pub const MAX_RESET_REQUESTS_PER_IP: i64 = 10;
pub const RESET_REQUEST_WINDOW: Duration = Duration::from_secs(3600);

/// Mails a reset link if the address has an account; says nothing either way, so the
/// answer does not reveal who has an account. Limited per address and per IP, whether or
/// not the address has an account (the refusal reveals nothing either).
pub async fn request_password_reset(
    platform: &Platform,
    email: &str,
    ip: Option<IpAddr>,
) -> Result<()> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    throttle::admit(platform, Attempt::PasswordReset, email.as_str(), ip).await?;
    let mut tx = platform.db.begin().await?;
    // A disabled account gets no link (and the same answer as any other address).
    let user = sqlx::query_scalar!(
        "SELECT id FROM users WHERE email = $1 AND disabled_at IS NULL",
        email.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(user_id) = user {
        let token = issue_token(&mut tx, user_id, TokenPurpose::ResetPassword, None).await?;
        let link = platform.link(&format!("/reset?token={token}"));
        mail::send(
            &mut tx,
            &mail::Message {
                to: email.clone(),
                subject: "Reset your password".to_owned(),
                body: format!(
                    "Someone asked to reset the password of your Slipway account.\n\nChoose a new password within one hour:\n\n{link}\n\nIf it was not you, ignore this message: nothing changes.\n"
                ),
            },
        )
        .await?;
        audit::record(
            &mut *tx,
            audit::Entry::new("user.password_reset_requested", Actor::Anonymous)
                .subject_user(user_id)
                .ip(ip),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Sets a new password through a reset link and ends every session of the user.
pub async fn reset_password(
    platform: &Platform,
    token: &str,
    password: &NewPassword,
    ip: Option<IpAddr>,
) -> Result<Uuid> {
    let password_hash = hash_password(password).await?;
    let mut tx = platform.db.begin().await?;
    let user_id = consume_token(&mut tx, token, TokenPurpose::ResetPassword).await?;
    // A link mailed before the account was disabled does not reopen it.
    let disabled = sqlx::query_scalar!("SELECT disabled_reason FROM users WHERE id = $1", user_id)
        .fetch_one(&mut *tx)
        .await?;
    if let Some(reason) = disabled {
        return Err(Error::AccountDisabled(reason));
    }
    sqlx::query!(
        // Following the link proves the address too.
        "UPDATE users SET password_hash = $2, email_verified_at = coalesce(email_verified_at, now())
          WHERE id = $1",
        user_id,
        password_hash
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    // Every other reset link still in someone's inbox is void from now on, and so is any
    // email change asked for before (perhaps by whoever made the reset necessary).
    void_links(
        &mut tx,
        user_id,
        &[TokenPurpose::ResetPassword, TokenPurpose::ChangeEmail],
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("user.password_reset", Actor::User(user_id)).ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(user_id)
}
