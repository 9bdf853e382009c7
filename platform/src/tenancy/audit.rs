//! The audit log: who did what, in which organization, from where, and when.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::kernel::Result;
pub use crate::tenancy::Reader;
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

/// Every action the log records, with the words a customer reads for it. `None` marks the
/// platform's own bookkeeping (a job retried, drift repaired): operators see it, customers
/// do not. A new action needs its words here ([`record`] insists in debug builds).
const EVENTS: &[(&str, Option<&str>)] = &[
    ("api_key.created", Some("API key created")),
    ("api_key.revoked", Some("API key revoked")),
    ("billing.checkout_started", Some("Checkout started")),
    ("billing.drift_repaired", None),
    ("billing.grace_extended", Some("Grace period extended")),
    ("billing.grace_period_over", Some("Grace period ended")),
    ("billing.payment_failed", Some("Payment failed")),
    (
        "billing.payment_recovered",
        Some("Payment received after a failure"),
    ),
    (
        "billing.plan_change_requested",
        Some("Plan change requested"),
    ),
    ("billing.plan_changed", Some("Plan changed")),
    (
        "billing.plan_request_approved",
        Some("Plan request approved"),
    ),
    (
        "billing.plan_request_declined",
        Some("Plan request declined"),
    ),
    (
        "billing.plan_request_withdrawn",
        Some("Plan request withdrawn"),
    ),
    ("billing.plan_requested", Some("Plan requested")),
    ("billing.subscription_ended", Some("Subscription ended")),
    (
        "billing.subscription_status",
        Some("Subscription status changed"),
    ),
    ("domain.add", Some("Domain added")),
    ("domain.remove", Some("Domain removed")),
    ("domain.verify", Some("Domain verified")),
    ("job.retry", None),
    ("member.invitation_resent", Some("Invitation sent again")),
    ("member.invitation_revoked", Some("Invitation withdrawn")),
    ("member.invited", Some("Member invited")),
    ("member.joined", Some("Member joined")),
    ("member.left", Some("Member left")),
    ("member.removed", Some("Member removed")),
    ("member.role_changed", Some("Role changed")),
    ("operator.granted", None),
    ("organization.created", Some("Organization created")),
    (
        "organization.ownership_transferred",
        Some("Ownership handed on"),
    ),
    ("organization.deleted", Some("Organization deleted")),
    ("organization.renamed", Some("Organization renamed")),
    ("organization.resume", Some("Organization resumed")),
    ("organization.suspend", Some("Organization suspended")),
    ("site.create", Some("Site created")),
    ("site.delete", Some("Site deleted")),
    ("site.plan", Some("Site limits changed with the plan")),
    ("site.reconcile", Some("Site settings applied again")),
    ("site.renamed", Some("Site renamed")),
    ("site.restart", Some("Site restarted")),
    ("site.resume", Some("Site resumed")),
    ("site.retry", Some("Site set up again")),
    ("site.settings", Some("Site settings changed")),
    ("site.start", Some("Site started")),
    ("site.stop", Some("Site stopped")),
    ("site.suspend", Some("Site suspended")),
    ("user.disabled", Some("Account disabled")),
    (
        "user.email_change_requested",
        Some("Email change requested"),
    ),
    ("user.email_changed", Some("Email address changed")),
    ("user.email_verified", Some("Email address confirmed")),
    ("user.deleted", Some("Account deleted")),
    ("user.enabled", Some("Account enabled again")),
    ("user.password_changed", Some("Password changed")),
    ("user.password_reset", Some("Password reset")),
    (
        "user.password_reset_requested",
        Some("Password reset requested"),
    ),
    ("user.renamed", Some("Name changed")),
    ("user.session_ended", Some("A browser signed out")),
    ("user.sign_in_failed", Some("Sign-in failed")),
    ("user.sign_in_refused", Some("Sign-in refused")),
    ("user.signed_in", Some("Signed in")),
    ("user.signed_out_everywhere", Some("Signed out everywhere")),
    ("user.signed_up", Some("Account created")),
    (
        "user.verification_resent",
        Some("Confirmation email sent again"),
    ),
];

/// The actions customers are not shown.
fn internal_actions() -> Vec<&'static str> {
    EVENTS
        .iter()
        .filter(|(_, words)| words.is_none())
        .map(|(action, _)| *action)
        .collect()
}

/// The words for `action`: plain language for customer actions, the action itself for the
/// platform's bookkeeping (which only operators read).
pub fn event(action: &str) -> String {
    match EVENTS.iter().find(|(known, _)| *known == action) {
        Some((_, Some(words))) => (*words).to_owned(),
        _ => action.to_owned(),
    }
}

/// What an entry was about, in words: `user:<id>` becomes the account's email (joined in
/// the query), a site or plan its name, and a payment provider's ids a plain noun.
fn subject_words(subject: Option<String>, email: Option<String>) -> Option<String> {
    let subject = subject?;
    if email.is_some() {
        return email;
    }
    let words = match subject.split_once(':') {
        Some(("site", slug)) => format!("site {slug}"),
        Some(("organization", slug)) => format!("organization {slug}"),
        Some(("domain", domain)) => domain.to_owned(),
        Some(("plan", plan)) => format!("{plan} plan"),
        Some(("subscription", _)) => "the subscription".to_owned(),
        Some(("invoice", _)) => "an invoice".to_owned(),
        // An account since deleted: its id means nothing to a reader.
        Some(("user", id)) if id.parse::<Uuid>().is_ok() => "a former account".to_owned(),
        _ => subject,
    };
    Some(words)
}

/// Appends an entry, inside the caller's transaction when given one.
pub async fn record<'e>(executor: impl sqlx::PgExecutor<'e>, entry: Entry) -> Result<()> {
    debug_assert!(
        EVENTS.iter().any(|(known, _)| *known == entry.action),
        "audit action {:?} has no words in audit::EVENTS",
        entry.action
    );
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
    /// The action in plain words ([`event`]).
    pub event: String,
    /// The actor's email, or the API key's name; "Slipway support" for an operator's action
    /// when a customer reads it.
    pub actor: Option<String>,
    /// What was acted on, in words ([`subject_words`]).
    pub subject: Option<String>,
    pub ip: Option<String>,
    /// Why, where the actor gave a reason (an operator's suspension).
    pub reason: Option<String>,
}

/// The organization's most recent entries, with the account events (sign-ins, failed
/// sign-ins, password resets) of its current members (owners and admins only), as a
/// customer reads them.
pub async fn recent(platform: &Platform, by: &Membership, limit: i64) -> Result<Vec<LogLine>> {
    recent_for(platform, by, limit, Reader::Customer).await
}

/// [`recent`] for `reader`.
pub async fn recent_for(
    platform: &Platform,
    by: &Membership,
    limit: i64,
    reader: Reader,
) -> Result<Vec<LogLine>> {
    by.require(Action::ViewAuditLog)?;
    let hidden = match reader {
        Reader::Customer => internal_actions(),
        Reader::Operator => Vec::new(),
    };
    let rows = sqlx::query!(
        r#"SELECT a.created_at, a.action, coalesce(u.email, k.name) AS actor, a.by_operator,
                  a.subject, su.email AS "subject_email?",
                  a.ip AS "ip: IpAddr", a.details->>'reason' AS reason
             FROM audit_log a
             LEFT JOIN users u ON u.id = a.actor_user_id
             LEFT JOIN api_keys k ON k.id = a.actor_api_key_id
             LEFT JOIN users su
                    ON su.id = CASE WHEN a.subject ~ '^user:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                    THEN substr(a.subject, 6)::uuid END
            WHERE NOT (a.action = ANY($3))
              AND (a.organization_id = $1
               -- Account events (sign-ins, failed sign-ins, resets) of current members.
               OR (a.organization_id IS NULL AND EXISTS (
                     SELECT 1 FROM organization_members m
                      WHERE m.organization_id = $1
                        AND ((m.user_id = a.actor_user_id
                              -- not an operator's action on someone else
                              AND (a.subject IS NULL OR a.subject = 'user:' || m.user_id::text))
                             OR a.subject = 'user:' || m.user_id::text))))
            ORDER BY a.id DESC LIMIT $2"#,
        by.organization_id,
        limit,
        &hidden as &[&str]
    )
    .fetch_all(&platform.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| LogLine {
            at: row.created_at,
            event: event(&row.action),
            action: row.action,
            actor: if row.by_operator && reader == Reader::Customer {
                Some("Slipway support".to_owned())
            } else {
                row.actor
            },
            subject: match reader {
                Reader::Customer => subject_words(row.subject, row.subject_email),
                Reader::Operator => row.subject,
            },
            ip: row.ip.map(|ip| ip.to_string()),
            reason: row.reason,
        })
        .collect())
}
