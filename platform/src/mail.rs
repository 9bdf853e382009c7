//! Outgoing mail. Every message is first kept in the `mail_outbox` table (in the
//! transaction of the change that caused it) and logged; development and tests read links
//! from there. With `mail.smtp_url` set, [`deliver_pending`] sends what is queued through
//! SMTP (lettre) and marks it sent; a failed send stays queued and is retried.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::accounts::Email;
use crate::config::MailConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Message {
    pub to: Email,
    pub subject: String,
    pub body: String,
}

/// Queues a message in the caller's transaction, so it exists only if the change that
/// caused it commits.
pub async fn send(tx: &mut sqlx::PgConnection, message: &Message) -> Result<()> {
    sqlx::query!(
        "INSERT INTO mail_outbox (to_address, subject, body_text) VALUES ($1, $2, $3)",
        message.to.as_str(),
        message.subject,
        message.body,
    )
    .execute(&mut *tx)
    .await?;
    tracing::info!(to = %message.to, subject = %message.subject, "mail queued in the outbox");
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
    /// `None` when no SMTP server is configured (outbox only).
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

/// Sends up to `batch` queued messages, oldest first, and marks each sent. Rows are locked
/// while being sent, so two replicas never send the same message. Stops at the first SMTP
/// failure (the rest stay queued for the next round). Returns how many were sent.
pub async fn deliver_pending(db: &sqlx::PgPool, smtp: &Smtp, batch: i64) -> Result<usize> {
    let mut tx = db.begin().await?;
    let queued = sqlx::query!(
        "SELECT id, to_address, subject, body_text FROM mail_outbox
          WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        batch
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut sent = 0;
    for row in queued {
        let to: Mailbox = match row.to_address.parse() {
            Ok(to) => to,
            Err(error) => {
                // Cannot happen for addresses that passed `Email::parse`; never retry it.
                tracing::error!(id = row.id, %error, "unsendable address in the outbox");
                continue;
            }
        };
        let message = lettre::Message::builder()
            .from(smtp.from.clone())
            .to(to)
            .subject(row.subject)
            .body(row.body_text)
            .map_err(|e| Error::Internal(format!("building mail {}: {e}", row.id)))?;
        if let Err(error) = smtp.transport.send(message).await {
            tracing::warn!(id = row.id, %error, "SMTP send failed; the message stays queued");
            break;
        }
        sqlx::query!(
            "UPDATE mail_outbox SET sent_at = now() WHERE id = $1",
            row.id
        )
        .execute(&mut *tx)
        .await?;
        sent += 1;
    }
    tx.commit().await?;
    Ok(sent)
}
