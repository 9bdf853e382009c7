//! Outgoing mail. Every message is kept in the `mail_outbox` table and a `mail` job is queued
//! for it, both in the transaction of the change that caused it: the mail exists exactly
//! when the change does, and the job queue's retries deliver it.
//!
//! Where it is delivered ([`Mailer`]): through SMTP (lettre) when `mail.smtp_url` is set;
//! otherwise, in development, the outbox is the mailbox (the dashboard's local mail page
//! shows it) and each message's links are printed in the log.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::MailConfig;
use crate::infra::jobs::{self, JobError, JobKind, NewJob};
use crate::kernel::{Email, Error, Result};

#[derive(Debug, Clone)]
pub struct Message {
    pub to: Email,
    pub subject: String,
    pub body: String,
}

/// Queues a message in the caller's transaction, so it exists only if the change that
/// caused it commits.
pub async fn send(tx: &mut sqlx::PgConnection, message: &Message) -> Result<()> {
    let id = sqlx::query_scalar!(
        "INSERT INTO mail_outbox (to_address, subject, body_text) VALUES ($1, $2, $3) RETURNING id",
        message.to.as_str(),
        message.subject,
        message.body,
    )
    .fetch_one(&mut *tx)
    .await?;
    jobs::enqueue(
        &mut *tx,
        NewJob::new(JobKind::Mail, serde_json::json!({ "outbox_id": id }))
            .unique(format!("mail:{id}")),
    )
    .await?;
    tracing::info!(to = %message.to, subject = %message.subject, "mail queued");
    Ok(())
}

/// The newest message sent to `to`, if any: (subject, body).
pub async fn latest_to(db: &sqlx::PgPool, to: &str) -> Result<Option<(String, String)>> {
    let row = sqlx::query!(
        "SELECT subject, body_text FROM mail_outbox WHERE to_address = $1 ORDER BY id DESC LIMIT 1",
        to.trim().to_lowercase()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| (row.subject, row.body_text)))
}

/// One message of the outbox, as the local mail page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outboxed {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The newest `limit` messages of the outbox, newest first.
pub async fn recent(db: &sqlx::PgPool, limit: i64) -> Result<Vec<Outboxed>> {
    let rows = sqlx::query!(
        "SELECT id, to_address, subject, body_text, created_at, sent_at
           FROM mail_outbox ORDER BY id DESC LIMIT $1",
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Outboxed {
            id: r.id,
            to: r.to_address,
            subject: r.subject,
            body: r.body_text,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
        .collect())
}

/// An SMTP connection setting and the sender address.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Smtp {
    /// `None` when no SMTP server is configured.
    pub fn from_config(config: &MailConfig) -> Result<Option<Self>> {
        let Some(url) = &config.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| Error::invalid("mail.smtp_url", format!("setting `mail.smtp_url`: {e}")))?
            .build();
        let from = config
            .from
            .parse()
            .map_err(|e| Error::invalid("mail.from", format!("setting `mail.from`: {e}")))?;
        Ok(Some(Self { transport, from }))
    }
}

/// Where queued mail goes.
#[derive(Debug, Clone, Default)]
pub enum Mailer {
    Smtp(Box<Smtp>),
    /// The outbox is the mailbox (development and tests): delivering prints the message's
    /// links in the log, the local mail page shows the rest.
    #[default]
    Local,
}

/// The `mail` job: delivers outbox message `outbox_id` once. An SMTP failure is retried by
/// the queue (a day long); a message that is already sent is not sent again.
pub async fn deliver(db: &sqlx::PgPool, mailer: &Mailer, outbox_id: i64) -> Result<(), JobError> {
    let Some(row) = sqlx::query!(
        "SELECT to_address, subject, body_text, sent_at FROM mail_outbox WHERE id = $1",
        outbox_id
    )
    .fetch_optional(db)
    .await?
    else {
        return Err(JobError::Permanent(format!(
            "mail {outbox_id} is no longer in the outbox"
        )));
    };
    if row.sent_at.is_some() {
        return Ok(());
    }
    match mailer {
        Mailer::Local => {
            for link in links(&row.body_text) {
                tracing::info!(to = %row.to_address, subject = %row.subject, %link, "mail (development: not sent; see the local mail page)");
            }
            Ok(())
        }
        Mailer::Smtp(smtp) => {
            let to: Mailbox = row.to_address.parse().map_err(|e| {
                JobError::Permanent(format!("unsendable address {}: {e}", row.to_address))
            })?;
            let message = lettre::Message::builder()
                .from(smtp.from.clone())
                .to(to)
                .subject(row.subject)
                .body(row.body_text)
                .map_err(|e| JobError::Permanent(format!("building mail {outbox_id}: {e}")))?;
            smtp.transport
                .send(message)
                .await
                .map_err(|e| JobError::Retry(format!("SMTP: {e}")))?;
            sqlx::query!(
                "UPDATE mail_outbox SET sent_at = now() WHERE id = $1",
                outbox_id
            )
            .execute(db)
            .await?;
            Ok(())
        }
    }
}

/// The http(s) links in a message body.
fn links(body: &str) -> impl Iterator<Item = &str> {
    body.split_whitespace()
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_in_a_body() {
        let body = "Open this link:\n\nhttp://127.0.0.1:3000/verify?token=abc\n\nThanks.";
        assert_eq!(
            links(body).collect::<Vec<_>>(),
            ["http://127.0.0.1:3000/verify?token=abc"]
        );
    }
}
