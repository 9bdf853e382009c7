//! Stripe's webhooks: verified, stored once by event id, answered at once; handled later by
//! fetching what the event names from Stripe.

use chrono::Utc;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::subscriptions::{sync_invoice, sync_subscription};
use super::{signature, stripe};
use crate::Platform;
use crate::infra::jobs::{self, JobError, JobKind, NewJob};
use crate::infra::stripe as stripe_api;
use crate::kernel::{Error, Result};

/// What became of a webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored; it is handled in the background.
    Accepted { id: String, kind: String },
    /// Already stored earlier (Stripe retried, or sent it twice): nothing more happens.
    Duplicate { id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("Stripe is not configured on this server")]
    NotConfigured,
    #[error("signature verification failed: {0}")]
    Signature(#[from] signature::SignatureError),
    #[error("the body is not a Stripe event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Internal(#[from] Error),
}

#[derive(Debug, Deserialize)]
struct EventHead {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: Option<String>,
}

/// Verifies a webhook delivery (`payload` exactly as received) and stores its event once.
/// Nothing else happens before its job runs ([`handle_event`]), so Stripe gets its answer
/// at once.
pub async fn receive_webhook(
    platform: &Platform,
    payload: &[u8],
    signature_header: Option<&str>,
) -> std::result::Result<Received, WebhookError> {
    if platform.billing.is_local() {
        return Err(WebhookError::NotConfigured);
    }
    let secrets: Vec<&str> = platform
        .billing
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    signature::verify(payload, signature_header, &secrets, Utc::now().timestamp())?;
    let payload: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let payload = storable(payload);
    let head: EventHead = serde_json::from_value(payload.clone())
        .map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if head.object.as_deref().is_some_and(|o| o != "event") {
        return Err(WebhookError::Malformed(format!(
            "expected an event, got a {}",
            head.object.unwrap_or_default()
        )));
    }
    // The event is kept as a job keyed by its id: a second delivery finds the key taken.
    let queued = jobs::enqueue(
        &platform.db,
        NewJob::new(JobKind::StripeEvent, payload).unique(format!("stripe_event:{}", head.id)),
    )
    .await?;
    if queued.is_none() {
        tracing::info!(event = %head.id, kind = %head.kind, "Stripe event already received; ignored");
        return Ok(Received::Duplicate { id: head.id });
    }
    Ok(Received::Accepted {
        id: head.id,
        kind: head.kind,
    })
}

/// The event as PostgreSQL's `jsonb` can hold it: a NUL character (`\u0000`, valid JSON,
/// e.g. in a customer's name) becomes U+FFFD. Without this, a correctly signed event that
/// holds one would be refused with a 5xx on every delivery and retried by Stripe for days;
/// the handler only reads ids and states, which never contain one.
fn storable(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let clean = |text: String| {
        if text.contains('\0') {
            text.replace('\0', "\u{FFFD}")
        } else {
            text
        }
    };
    match value {
        Value::String(text) => Value::String(clean(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (clean(key), storable(value)))
                .collect(),
        ),
        other => other,
    }
}

/// The `stripe_event` job: applies one event by fetching what it names from Stripe. A
/// Stripe failure is retried by the queue for Stripe's whole delivery window.
pub async fn handle_event(platform: &Platform, event: &serde_json::Value) -> Result<(), JobError> {
    let Some(kind) = event["type"].as_str() else {
        return Err(JobError::Permanent(
            "the stored event has no type".to_owned(),
        ));
    };
    apply_event(platform, kind, event).await
}

async fn apply_event(
    platform: &Platform,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), JobError> {
    let api = stripe(platform)?;
    let object = &payload["data"]["object"];
    let id_of = |field: &str| {
        object
            .get(field)
            .and_then(stripe_api::expandable_id)
            .map(str::to_owned)
    };
    match kind {
        "checkout.session.completed" => {
            if let Some(session) = id_of("id") {
                sqlx::query!(
                    "UPDATE checkout_sessions SET completed_at = now() WHERE id = $1 AND completed_at IS NULL",
                    session
                )
                .execute(&platform.db)
                .await?;
            }
            match id_of("subscription") {
                Some(subscription) => Ok(sync_subscription(platform, api, &subscription).await?),
                None => Ok(()),
            }
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.paused"
        | "customer.subscription.resumed" => match id_of("id") {
            Some(subscription) => Ok(sync_subscription(platform, api, &subscription).await?),
            // Retrying cannot give it an id.
            None => Err(JobError::Permanent(
                "subscription event without an id".into(),
            )),
        },
        "invoice.payment_failed" | "invoice.paid" | "invoice.payment_succeeded" => {
            match id_of("id") {
                Some(invoice) => Ok(sync_invoice(platform, api, &invoice).await?),
                None => Err(JobError::Permanent("invoice event without an id".into())),
            }
        }
        other => {
            tracing::info!(
                kind = other,
                "Stripe event type not used by Slipway; ignored"
            );
            Ok(())
        }
    }
}
