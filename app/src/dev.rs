//! Development mode's local mail page: every message Slipway "sent", since nothing leaves a
//! developer's machine. In production the page does not exist (404).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One message, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailView {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `2026-11-29 06:19 UTC`
    pub at: String,
}

/// The newest messages of the outbox (development mode only).
#[server(endpoint = "dev/mail")]
pub async fn dev_mailbox() -> Result<Vec<MailView>, AppError> {
    let state = crate::state::app_state()?;
    let platform = &state.platform;
    if platform.mode != platform::config::Mode::Development {
        return Err(platform::Error::NotFound.into());
    }
    let messages = platform::infra::mail::recent(&platform.db, 100).await?;
    Ok(messages
        .into_iter()
        .map(|m| MailView {
            id: m.id,
            to: m.to,
            subject: m.subject,
            body: m.body,
            at: m.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect())
}

/// Whether this server runs in development mode (the pages then point at the mail page).
#[server(endpoint = "dev/mode")]
pub async fn development_mode() -> Result<bool, AppError> {
    let state = crate::state::app_state()?;
    Ok(state.platform.mode == platform::config::Mode::Development)
}

/// A line of a message, split into text and links (so links can be clicked).
pub fn linkify(line: &str) -> Vec<(String, bool)> {
    let mut parts: Vec<(String, bool)> = Vec::new();
    for (index, word) in line.split(' ').enumerate() {
        let is_link = word.starts_with("http://") || word.starts_with("https://");
        let text = if index == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        };
        match parts.last_mut() {
            Some((last, false)) if !is_link => last.push_str(&text),
            _ if is_link => {
                if index > 0 {
                    parts.push((" ".to_owned(), false));
                }
                parts.push((word.to_owned(), true));
            }
            _ => parts.push((text, false)),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_a_line_become_clickable_parts() {
        assert_eq!(
            linkify("Open http://x.test/verify?token=a now"),
            vec![
                ("Open".to_owned(), false),
                (" ".to_owned(), false),
                ("http://x.test/verify?token=a".to_owned(), true),
                (" now".to_owned(), false),
            ]
        );
        assert_eq!(
            linkify("plain text"),
            vec![("plain text".to_owned(), false)]
        );
    }
}
