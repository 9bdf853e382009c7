//! Outgoing mail. Every message is kept in the `mail_outbox` table and logged; development
//! and tests read links from there. (Delivery over SMTP is configured separately.)

use crate::accounts::Email;
use crate::error::Result;

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
