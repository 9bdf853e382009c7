//! Users and their credentials: sign-up, sign-in (throttled), sessions, email
//! verification and password reset.
//!
//! Passwords are hashed with argon2id, m = 19 MiB, t = 2, p = 1 (the OWASP recommendation
//! for argon2id), on the blocking pool so hashing never stalls the async workers.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::orgs::{self, OrganizationName};
use crate::secrets::{hash_token, random_token};
use crate::{Platform, mail};

/// argon2id memory cost in KiB (19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;

/// How long a session lasts without being used.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);
pub const VERIFY_EMAIL_LIFETIME: Duration = Duration::from_secs(48 * 3600);
pub const RESET_PASSWORD_LIFETIME: Duration = Duration::from_secs(3600);

/// Failed sign-ins tolerated per account, then per IP, within [`THROTTLE_WINDOW`].
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_PER_IP: i64 = 20;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// An email address, trimmed and lower-cased. Deliberately simple: one `@`, a dotted
/// domain, no spaces; the verification mail proves the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim().to_lowercase();
        let invalid = |message: &str| Err(Error::invalid("email", message));
        if email.is_empty() {
            return invalid("Enter your email address.");
        }
        if email.len() > 254 {
            return invalid("That email address is too long.");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return invalid("Enter an email address like name@example.com.");
        };
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && email.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii());
        if !well_formed || email.chars().any(char::is_control) {
            return invalid("Enter an email address like name@example.com.");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's display name: 1-100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self> {
        crate::text::display_name(raw, "name", 100, "Enter your name.").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password being set: 10 to 128 characters. Never printed.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self> {
        let length = raw.chars().count();
        if length < 10 {
            return Err(Error::invalid(
                "password",
                "Use at least 10 characters for your password.",
            ));
        }
        if length > 128 {
            return Err(Error::invalid(
                "password",
                "Use at most 128 characters for your password.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string (algorithm, parameters and salt included).
pub async fn hash_password(password: &NewPassword) -> Result<String> {
    let password = password.0.clone();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(format!("password hashing task: {e}")))?
}

/// Checks `password` against a stored PHC string. `None` (no such user) still costs one
/// full verification against a fixed hash, so the answer takes as long either way.
pub async fn verify_password(password: &str, stored: Option<String>) -> Result<bool> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let argon2 = argon2()?;
        let (stored, exists) = match stored {
            Some(hash) => (hash, true),
            None => (DUMMY_HASH.to_owned(), false),
        };
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| Error::Internal(format!("stored password hash: {e}")))?;
        let matches = argon2.verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(matches && exists)
    })
    .await
    .map_err(|e| Error::Internal(format!("password verification task: {e}")))?
}

/// An argon2id hash with the parameters above, of a password nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2xpcHdheWR1bW15c2FsdA$gE5gA0hZpX8Qm6O6W9rJm4o6yB0tC+u1bqYc5mYbXl0";

/// What sign-up creates.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub email: Email,
    pub name: PersonName,
    pub password: NewPassword,
    pub organization: OrganizationName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedUp {
    pub user_id: Uuid,
    pub organization_id: Uuid,
}

/// Creates the user, their first organization (as its owner), and mails a verification
/// link. All or nothing.
#[tracing::instrument(skip_all)]
pub async fn sign_up(platform: &Platform, input: SignUp, ip: Option<IpAddr>) -> Result<SignedUp> {
    let password_hash = hash_password(&input.password).await?;
    let mut tx = platform.db.begin().await?;
    let user_id = sqlx::query_scalar!(
        "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id",
        input.email.as_str(),
        input.name.as_str(),
        password_hash,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| match e.constraint() {
        Some("users_email_key") => Error::EmailTaken,
        _ => e,
    })?;
    let organization_id = orgs::create_in(
        &mut tx,
        &input.organization,
        user_id,
        platform.default_plan(),
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("user.signed_up", Actor::User(user_id))
            .organization(organization_id)
            .ip(ip),
    )
    .await?;
    send_verification_in(&mut tx, platform, user_id, &input.email).await?;
    tx.commit().await?;
    Ok(SignedUp {
        user_id,
        organization_id,
    })
}

async fn send_verification_in(
    tx: &mut sqlx::PgConnection,
    platform: &Platform,
    user_id: Uuid,
    email: &Email,
) -> Result<()> {
    let token = issue_token(tx, user_id, TokenPurpose::VerifyEmail).await?;
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

/// Checks credentials. Throttled per account and per IP; the error for an unknown email and
/// for a wrong password is the same, and so is the time it takes.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    platform: &Platform,
    email: &str,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<Uuid> {
    // A malformed address cannot belong to anyone: same answer as a wrong password.
    let email = Email::parse(email)
        .map(|e| e.0)
        .unwrap_or_else(|_| email.trim().to_lowercase());
    let window =
        chrono::Duration::from_std(THROTTLE_WINDOW).map_err(|e| Error::Internal(e.to_string()))?;
    let since = Utc::now() - window;
    let failures = sqlx::query!(
        r#"SELECT
             count(*) FILTER (WHERE email = $1) AS "by_account!",
             count(*) FILTER (WHERE ip = $2) AS "by_ip!"
           FROM sign_in_failures WHERE created_at > $3 AND (email = $1 OR ip = $2)"#,
        email,
        ip as Option<IpAddr>,
        since,
    )
    .fetch_one(&platform.db)
    .await?;
    if failures.by_account >= MAX_FAILURES_PER_ACCOUNT || failures.by_ip >= MAX_FAILURES_PER_IP {
        return Err(Error::Throttled {
            retry_after: THROTTLE_WINDOW,
        });
    }

    let user = sqlx::query!(
        "SELECT id, password_hash FROM users WHERE email = $1",
        email
    )
    .fetch_optional(&platform.db)
    .await?;
    let (user_id, stored) = match user {
        Some(user) => (Some(user.id), Some(user.password_hash)),
        None => (None, None),
    };
    let matches = verify_password(password, stored).await?;
    match user_id {
        Some(user_id) if matches => {
            audit::record(
                &platform.db,
                audit::Entry::new("user.signed_in", Actor::User(user_id)).ip(ip),
            )
            .await?;
            Ok(user_id)
        }
        _ => {
            sqlx::query!(
                "INSERT INTO sign_in_failures (email, ip) VALUES ($1, $2)",
                email,
                ip as Option<IpAddr>,
            )
            .execute(&platform.db)
            .await?;
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
    sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, active_organization_id, ip, user_agent, expires_at)
         VALUES ($1, $2,
                 (SELECT organization_id FROM organization_members
                   WHERE user_id = $2 ORDER BY created_at LIMIT 1),
                 $3, $4, $5)",
        hash_token(&token),
        user_id,
        ip as Option<IpAddr>,
        user_agent.map(|ua| ua.chars().take(512).collect::<String>()),
        Utc::now() + lifetime,
    )
    .execute(&platform.db)
    .await?;
    Ok(token)
}

/// The live session behind a cookie token, extending its expiry (sliding window).
pub async fn session(platform: &Platform, token: &str) -> Result<Option<Session>> {
    let lifetime =
        chrono::Duration::from_std(SESSION_LIFETIME).map_err(|e| Error::Internal(e.to_string()))?;
    let row = sqlx::query!(
        r#"UPDATE sessions s
              SET last_seen_at = now(), expires_at = $2
             FROM users u
            WHERE s.id_hash = $1 AND s.expires_at > now() AND u.id = s.user_id
        RETURNING s.user_id, u.email, u.name, u.email_verified_at, u.is_operator,
                  s.active_organization_id, s.expires_at"#,
        hash_token(token),
        Utc::now() + lifetime,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
        }
    }

    fn lifetime(self) -> Duration {
        match self {
            TokenPurpose::VerifyEmail => VERIFY_EMAIL_LIFETIME,
            TokenPurpose::ResetPassword => RESET_PASSWORD_LIFETIME,
        }
    }
}

async fn issue_token(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    purpose: TokenPurpose,
) -> Result<String> {
    let token = random_token();
    let lifetime = chrono::Duration::from_std(purpose.lifetime())
        .map_err(|e| Error::Internal(e.to_string()))?;
    sqlx::query!(
        "INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
        hash_token(&token),
        user_id,
        purpose.as_str(),
        Utc::now() + lifetime,
    )
    .execute(&mut *tx)
    .await?;
    Ok(token)
}

/// Marks a token used and returns its user; a reused, expired or unknown token is refused
/// with a message that says which.
async fn consume_token(
    tx: &mut sqlx::PgConnection,
    token: &str,
    purpose: TokenPurpose,
) -> Result<Uuid> {
    let row = sqlx::query!(
        "SELECT user_id, used_at, expires_at FROM user_tokens
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
    Ok(row.user_id)
}

/// Confirms the address a verification link was sent to.
pub async fn verify_email(platform: &Platform, token: &str) -> Result<Uuid> {
    let mut tx = platform.db.begin().await?;
    let user_id = consume_token(&mut tx, token, TokenPurpose::VerifyEmail).await?;
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

/// Mails a reset link if the address has an account; says nothing either way, so the
/// answer does not reveal who has an account.
pub async fn request_password_reset(
    platform: &Platform,
    email: &str,
    ip: Option<IpAddr>,
) -> Result<()> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    let mut tx = platform.db.begin().await?;
    let user = sqlx::query_scalar!("SELECT id FROM users WHERE email = $1", email.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(user_id) = user {
        let token = issue_token(&mut tx, user_id, TokenPurpose::ResetPassword).await?;
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
    audit::record(
        &mut *tx,
        audit::Entry::new("user.password_reset", Actor::User(user_id)).ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(user_id)
}

/// What `slipway admin create` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorCreated {
    NewUser(Uuid),
    Promoted(Uuid),
}

/// Makes `email` a platform operator: a new, verified user with `password`, or, when the
/// address already has an account, that account (its password unchanged).
pub async fn create_operator(
    platform: &Platform,
    email: &Email,
    name: &PersonName,
    password: &NewPassword,
) -> Result<OperatorCreated> {
    let password_hash = hash_password(password).await?;
    let mut tx = platform.db.begin().await?;
    let promoted = sqlx::query_scalar!(
        "UPDATE users SET is_operator = true WHERE email = $1 RETURNING id",
        email.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match promoted {
        Some(id) => OperatorCreated::Promoted(id),
        None => OperatorCreated::NewUser(
            sqlx::query_scalar!(
                "INSERT INTO users (email, name, password_hash, email_verified_at, is_operator)
                 VALUES ($1, $2, $3, now(), true) RETURNING id",
                email.as_str(),
                name.as_str(),
                password_hash
            )
            .fetch_one(&mut *tx)
            .await?,
        ),
    };
    let (OperatorCreated::NewUser(id) | OperatorCreated::Promoted(id)) = outcome;
    audit::record(
        &mut *tx,
        audit::Entry::new("operator.granted", Actor::Anonymous).subject_user(id),
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@example..com",
            "ada@.example.com",
            "ada lovelace@example.com",
            "ada@example.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn passwords_have_bounds_and_never_print() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse(&"x".repeat(129)).is_err());
        let password = NewPassword::parse("correct horse battery").unwrap();
        assert_eq!(format!("{password:?}"), "NewPassword(***)");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(PersonName::parse(" ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse("a\u{0007}b").is_err());
    }

    #[tokio::test]
    async fn hashes_verify_and_the_dummy_hash_is_well_formed() {
        let password = NewPassword::parse("correct horse battery").unwrap();
        let hash = hash_password(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password("correct horse battery", Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse battery", Some(hash))
                .await
                .unwrap()
        );
        // The dummy hash parses (else unknown emails would fail differently).
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password("anything", None).await.unwrap());
    }
}
