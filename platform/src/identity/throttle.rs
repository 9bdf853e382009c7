//! Counted attempts (sign-ins, password-reset requests): each is admitted or refused by
//! one atomic decision, per email address and per IP, within a sliding window.
//!
//! The decision takes a transaction-scoped advisory lock per key (address and IP; tried,
//! not waited for, so no attempt parks a database connection behind another), counts the
//! window's attempts and records this one before the locks are released: of any number of
//! attempts arriving together, exactly the limit get through.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;

use crate::Platform;
use crate::kernel::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Recorded before the password is checked; a successful one is removed again.
    SignIn,
    /// Each may send a mail.
    PasswordReset,
    /// An email change's confirmation, mailed to an address the caller chose. Counted with
    /// the reset requests: both are mails to one address, asked for by someone else.
    MailToAddress,
}

impl Attempt {
    fn table(self) -> &'static str {
        match self {
            Attempt::SignIn => "sign_in_failures",
            Attempt::PasswordReset | Attempt::MailToAddress => "password_reset_requests",
        }
    }

    /// Attempts allowed per address and per IP within [`Attempt::window`].
    fn limits(self) -> (i64, i64) {
        match self {
            Attempt::SignIn => (
                super::sessions::MAX_FAILURES_PER_ACCOUNT,
                super::sessions::MAX_FAILURES_PER_IP,
            ),
            Attempt::PasswordReset | Attempt::MailToAddress => (
                super::tokens::MAX_RESET_REQUESTS_PER_ADDRESS,
                super::tokens::MAX_RESET_REQUESTS_PER_IP,
            ),
        }
    }

    pub(crate) fn window(self) -> Duration {
        match self {
            Attempt::SignIn => super::sessions::THROTTLE_WINDOW,
            Attempt::PasswordReset | Attempt::MailToAddress => super::tokens::RESET_REQUEST_WINDOW,
        }
    }

    fn refusal(self) -> Error {
        let what = match self {
            Attempt::SignIn => "Too many failed sign-ins.",
            Attempt::PasswordReset => "Too many password reset requests.",
            Attempt::MailToAddress => "Too many mails to this address.",
        };
        Error::Throttled {
            what,
            retry_after: self.window(),
        }
    }
}

/// Records the attempt and returns its row id, or refuses it (unrecorded) when the address
/// or the IP has used up the window's attempts.
pub(crate) async fn admit(
    platform: &Platform,
    attempt: Attempt,
    email: &str,
    ip: Option<IpAddr>,
) -> Result<i64> {
    let table = attempt.table();
    let since = Utc::now()
        - chrono::Duration::from_std(attempt.window())
            .map_err(|e| Error::Internal(e.to_string()))?;
    let mut keys = vec![format!("{table} email {email}")];
    if let Some(ip) = ip {
        keys.push(format!("{table} ip {ip}"));
    }
    let mut tx = locked(platform, &keys).await?;
    let (by_email, by_ip): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE email = $1), count(*) FILTER (WHERE ip = $2)
           FROM {table} WHERE created_at > $3 AND (email = $1 OR ip = $2)"
    ))
    .bind(email)
    .bind(ip)
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    let (max_email, max_ip) = attempt.limits();
    if by_email >= max_email || by_ip >= max_ip {
        return Err(attempt.refusal());
    }
    let id: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO {table} (email, ip) VALUES ($1, $2) RETURNING id"
    ))
    .bind(email)
    .bind(ip)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// How long an attempt waits for the attempts ahead of it on the same keys.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// A transaction holding the advisory lock of every key. Tried, never waited for inside
/// the database: a burst for one address must not park a pool connection per attempt, so
/// a busy key is retried after a short sleep with no connection held.
async fn locked(
    platform: &Platform,
    keys: &[String],
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let started = std::time::Instant::now();
    loop {
        let mut tx = platform.db.begin().await?;
        let taken: bool = sqlx::query_scalar(
            "SELECT bool_and(pg_try_advisory_xact_lock(hashtextextended(key, 0)))
               FROM unnest($1::text[]) WITH ORDINALITY AS k(key, n)",
        )
        .bind(keys)
        .fetch_one(&mut *tx)
        .await?;
        if taken {
            return Ok(tx);
        }
        // Dropping the transaction rolls it back, releasing whatever it took.
        drop(tx);
        if started.elapsed() > PATIENCE {
            return Err(Error::Unavailable(
                "Too many attempts at once. Try again in a moment.".to_owned(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5 + rand_jitter())).await;
    }
}

/// A few milliseconds of jitter, so waiting attempts do not retry in lockstep.
fn rand_jitter() -> u64 {
    u64::from(rand::random::<u8>() % 16)
}

/// Takes back an admitted attempt that turned out not to count (a successful sign-in).
pub(crate) async fn forget(platform: &Platform, attempt: Attempt, id: i64) -> Result<()> {
    sqlx::query(&format!("DELETE FROM {} WHERE id = $1", attempt.table()))
        .bind(id)
        .execute(&platform.db)
        .await?;
    Ok(())
}
