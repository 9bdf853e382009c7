//! Signing in (throttled per account and per IP) and the sessions behind browser cookies.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::throttle::{self, Attempt};
use super::users::verify_password;
use crate::Platform;
use crate::kernel::secrets::{hash_token, random_token};
use crate::kernel::{Email, Error, Result};
use crate::tenancy::audit::{self, Actor};

/// How long a session lasts without being used.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);
/// An operator's session ends this long after sign-in, however active: operators can act on
/// every organization, so a stolen or forgotten session must not last.
pub const OPERATOR_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Failed sign-ins tolerated per account, then per IP, within [`THROTTLE_WINDOW`].
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_PER_IP: i64 = 20;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Checks credentials. Throttled per account and per IP; the error for an unknown email and
/// for a wrong password is the same, and so is the time it takes.
///
/// The attempt is counted before the password is checked (one atomic decision, see
/// [`super::throttle`]): however many arrive together, at most the limit are checked. A
/// successful attempt is taken back.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    platform: &Platform,
    email: &str,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<Uuid> {
    // A malformed address cannot belong to anyone: same answer as a wrong password.
    let email = Email::parse(email)
        .map(|e| e.as_str().to_owned())
        .unwrap_or_else(|_| crate::kernel::text::bounded_key(email));
    let attempt = throttle::admit(platform, Attempt::SignIn, &email, ip).await?;

    let user = sqlx::query!(
        "SELECT id, password_hash, disabled_reason FROM users WHERE email = $1",
        email
    )
    .fetch_optional(&platform.db)
    .await?;
    let (user_id, stored, disabled) = match user {
        Some(user) => (
            Some(user.id),
            Some(user.password_hash),
            user.disabled_reason,
        ),
        None => (None, None, None),
    };
    let matches = verify_password(password, stored).await?;
    match user_id {
        // The right password of a disabled account: told why (only its owner knows the
        // password), recorded, no session.
        Some(user_id) if matches && disabled.is_some() => {
            throttle::forget(platform, Attempt::SignIn, attempt).await?;
            audit::record(
                &platform.db,
                audit::Entry::new("user.sign_in_refused", Actor::Anonymous)
                    .subject_user(user_id)
                    .ip(ip),
            )
            .await?;
            Err(Error::AccountDisabled(disabled.unwrap_or_default()))
        }
        Some(user_id) if matches => {
            throttle::forget(platform, Attempt::SignIn, attempt).await?;
            audit::record(
                &platform.db,
                audit::Entry::new("user.signed_in", Actor::User(user_id)).ip(ip),
            )
            .await?;
            Ok(user_id)
        }
        _ => {
            let entry = audit::Entry::new("user.sign_in_failed", Actor::Anonymous)
                .subject(email.clone())
                .ip(ip);
            let entry = match user_id {
                Some(user_id) => entry.subject_user(user_id),
                None => entry,
            };
            audit::record(&platform.db, entry).await?;
            Err(Error::InvalidCredentials)
        }
    }
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub is_operator: bool,
    pub active_organization_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

/// Starts a session and returns the token for the cookie (only its hash is stored). Its
/// organization is the user's first one.
pub async fn create_session(
    platform: &Platform,
    user_id: Uuid,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> Result<String> {
    let token = random_token();
    let lifetime =
        chrono::Duration::from_std(SESSION_LIFETIME).map_err(|e| Error::Internal(e.to_string()))?;
    // Never for a disabled account, whatever path led here.
    let started = sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, active_organization_id, ip, user_agent, expires_at)
         SELECT $1::bytea, u.id,
                (SELECT organization_id FROM organization_members
                  WHERE user_id = u.id ORDER BY created_at LIMIT 1),
                $3::inet, $4::text, $5::timestamptz
           FROM users u WHERE u.id = $2 AND u.disabled_at IS NULL",
        hash_token(&token),
        user_id,
        ip as Option<IpAddr>,
        user_agent.map(|ua| ua.chars().take(512).collect::<String>()),
        Utc::now() + lifetime,
    )
    .execute(&platform.db)
    .await?;
    if started.rows_affected() == 0 {
        let reason =
            sqlx::query_scalar!("SELECT disabled_reason FROM users WHERE id = $1", user_id)
                .fetch_optional(&platform.db)
                .await?
                .ok_or(Error::NotFound)?;
        return Err(Error::AccountDisabled(reason.unwrap_or_default()));
    }
    Ok(token)
}

/// The live session behind a cookie token, extending its expiry (sliding window). An
/// operator's ends [`OPERATOR_SESSION_LIFETIME`] after sign-in, whatever its activity (the
/// flag is read here, so it also holds for a session older than the user's operator flag).
pub async fn session(platform: &Platform, token: &str) -> Result<Option<Session>> {
    let lifetime =
        chrono::Duration::from_std(SESSION_LIFETIME).map_err(|e| Error::Internal(e.to_string()))?;
    let row = sqlx::query!(
        r#"UPDATE sessions s
              SET last_seen_at = now(),
                  expires_at = CASE WHEN u.is_operator
                                    THEN least($2, s.created_at + make_interval(secs => $3))
                                    ELSE $2 END
             FROM users u
            WHERE s.id_hash = $1 AND s.expires_at > now() AND u.id = s.user_id
              AND u.disabled_at IS NULL
              AND (NOT u.is_operator OR s.created_at > now() - make_interval(secs => $3))
        RETURNING s.user_id, u.email, u.name, u.email_verified_at, u.is_operator,
                  s.active_organization_id, s.expires_at"#,
        hash_token(token),
        Utc::now() + lifetime,
        OPERATOR_SESSION_LIFETIME.as_secs_f64(),
    )
    .fetch_optional(&platform.db)
    .await?;
    Ok(row.map(|row| Session {
        user_id: row.user_id,
        email: row.email,
        name: row.name,
        email_verified: row.email_verified_at.is_some(),
        is_operator: row.is_operator,
        active_organization_id: row.active_organization_id,
        expires_at: row.expires_at,
    }))
}

/// Ends one session (sign out).
pub async fn end_session(platform: &Platform, token: &str) -> Result<()> {
    sqlx::query!("DELETE FROM sessions WHERE id_hash = $1", hash_token(token))
        .execute(&platform.db)
        .await?;
    Ok(())
}

/// Ends every session of a user ("sign out everywhere", password reset). Returns how many.
pub async fn end_all_sessions(
    platform: &Platform,
    user_id: Uuid,
    ip: Option<IpAddr>,
) -> Result<u64> {
    let ended = sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user_id)
        .execute(&platform.db)
        .await?
        .rows_affected();
    audit::record(
        &platform.db,
        audit::Entry::new("user.signed_out_everywhere", Actor::User(user_id)).ip(ip),
    )
    .await?;
    Ok(ended)
}

/// Switches the organization a session works in; the user must be a member.
pub async fn switch_organization(
    platform: &Platform,
    token: &str,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<()> {
    let updated = sqlx::query!(
        "UPDATE sessions SET active_organization_id = $3
          WHERE id_hash = $1 AND user_id = $2
            AND EXISTS (SELECT 1 FROM organization_members
                         WHERE organization_id = $3 AND user_id = $2)",
        hash_token(token),
        user_id,
        organization_id,
    )
    .execute(&platform.db)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}
