//! The audit log: who did what, in which organization, from where, and when.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::kernel::Result;
use crate::tenancy::{Action, Membership};

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    /// A platform operator acting as one (from the operator panel or `slipway admin`): the
    /// entry is also the operator audit log's.
    Operator(Uuid),
    ApiKey(Uuid),
    /// Nobody signed in (a failed sign-in, a reset request).
    Anonymous,
    /// Slipway itself, or an operator at the command line (billing, suspension).
    System,
}

/// One entry, built with the chained setters.
#[derive(Debug, Clone)]
pub struct Entry {
    action: &'static str,
    actor: Actor,
    organization_id: Option<Uuid>,
    subject: Option<String>,
    ip: Option<IpAddr>,
    details: serde_json::Value,
}

impl Entry {
    pub fn new(action: &'static str, actor: Actor) -> Self {
        Self {
            action,
            actor,
            organization_id: None,
            subject: None,
            ip: None,
            details: serde_json::json!({}),
        }
    }

    pub fn organization(mut self, id: Uuid) -> Self {
        self.organization_id = Some(id);
        self
    }

    /// What was acted on, in words (an email, a key name).
    pub fn subject(mut self, subject: String) -> Self {
        self.subject = Some(subject);
        self
    }

    /// The user acted on, by id.
    pub fn subject_user(self, user_id: Uuid) -> Self {
        self.subject(format!("user:{user_id}"))
    }

    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Appends an entry, inside the caller's transaction when given one.
pub async fn record<'e>(executor: impl sqlx::PgExecutor<'e>, entry: Entry) -> Result<()> {
    let (user, key, by_operator) = match entry.actor {
        Actor::User(id) => (Some(id), None, false),
        Actor::Operator(id) => (Some(id), None, true),
        Actor::ApiKey(id) => (None, Some(id), false),
        Actor::Anonymous | Actor::System => (None, None, false),
    };
    sqlx::query!(
        "INSERT INTO audit_log (organization_id, actor_user_id, actor_api_key_id, by_operator,
                                action, subject, ip, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        entry.organization_id,
        user,
        key,
        by_operator,
        entry.action,
        entry.subject,
        entry.ip as Option<IpAddr>,
        entry.details,
    )
    .execute(executor)
    .await?;
    tracing::info!(action = entry.action, organization = ?entry.organization_id, "audit");
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub action: String,
    /// The actor's email, or the API key's name.
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub ip: Option<String>,
    /// Why, where the actor gave a reason (an operator's suspension).
    pub reason: Option<String>,
}

/// The organization's most recent entries, with the account events (sign-ins, failed
/// sign-ins, password resets) of its current members (owners and admins only).
pub async fn recent(platform: &Platform, by: &Membership, limit: i64) -> Result<Vec<LogLine>> {
    by.require(Action::ViewAuditLog)?;
    let rows = sqlx::query!(
        r#"SELECT a.created_at, a.action, coalesce(u.email, k.name) AS actor, a.subject,
                  a.ip AS "ip: IpAddr", a.details->>'reason' AS reason
             FROM audit_log a
             LEFT JOIN users u ON u.id = a.actor_user_id
             LEFT JOIN api_keys k ON k.id = a.actor_api_key_id
            WHERE a.organization_id = $1
               -- Account events (sign-ins, failed sign-ins, resets) of current members.
               OR (a.organization_id IS NULL AND EXISTS (
                     SELECT 1 FROM organization_members m
                      WHERE m.organization_id = $1
                        AND ((m.user_id = a.actor_user_id
                              -- not an operator's action on someone else
                              AND (a.subject IS NULL OR a.subject = 'user:' || m.user_id::text))
                             OR a.subject = 'user:' || m.user_id::text)))
            ORDER BY a.id DESC LIMIT $2"#,
        by.organization_id,
        limit
    )
    .fetch_all(&platform.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| LogLine {
            at: row.created_at,
            action: row.action,
            actor: row.actor,
            subject: row.subject,
            ip: row.ip.map(|ip| ip.to_string()),
            reason: row.reason,
        })
        .collect())
}
