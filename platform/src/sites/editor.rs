//! "Open editor": signs a member into their site's own editor (the built-in CMS) with a
//! short-lived, single-use ticket, so the site keeps no passwords of its own.
//!
//! The format is the site's (`site/src/ticket.rs`): `<hex of the JSON claims>.<hex of
//! HMAC-SHA256 of that hex>`, keyed by `HMAC-SHA256(site token, "slipway editor sign-in
//! v1")`. The site token is what the container already holds; whoever holds it can write
//! through the site's API anyway, so the ticket gives nobody anything new. A test vector
//! shared with the site's tests keeps the two sides in step.

use std::net::SocketAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use super::{SiteStatus, seal_context};
use crate::Platform;
use crate::infra::jobs::JobError;
use crate::kernel::{Error, Result};
use crate::tenancy::{Action, Membership};

/// A ticket is good for this long: enough for a redirect, too short to be worth stealing.
const TICKET_SECS: i64 = 60;
/// How long the site keeps an editor signed in (`site/src/editor.rs`).
const SITE_SESSION_SECS: i64 = 8 * 3600;

/// What the ticket tells the site; the field order is the format's (see the test vector).
#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: String,
    name: &'a str,
    role: &'a str,
    /// When it was issued: the site refuses tickets issued before it last signed the
    /// member out ([`sign_out_everywhere`]).
    iat: i64,
    exp: i64,
    nonce: String,
}

fn sign(site_token: &str, claims: &Claims<'_>) -> String {
    let key = |bytes: &[u8]| {
        Hmac::<Sha256>::new_from_slice(bytes).expect("HMAC takes a key of any length")
    };
    let mut derive = key(site_token.as_bytes());
    derive.update(b"slipway editor sign-in v1");
    let payload_hex = hex::encode(serde_json::to_vec(claims).expect("claims serialize"));
    let mut mac = key(&derive.finalize().into_bytes());
    mac.update(payload_hex.as_bytes());
    format!("{payload_hex}.{}", hex::encode(mac.finalize().into_bytes()))
}

/// The address that signs `by` into the editor of `site_id` as their role (viewers read
/// only). Refused for another organization's site (not found), for a site that is not
/// running, and for apps other than the built-in CMS (they have their own sign-in).
pub async fn open(platform: &Platform, by: &Membership, site_id: Uuid) -> Result<String> {
    by.require(Action::ViewSites)?;
    let row = sqlx::query!(
        "SELECT s.slug, s.template, s.status, s.api_token_sealed, u.name AS user_name
           FROM sites s, users u
          WHERE s.id = $1 AND s.organization_id = $2 AND s.status <> 'deleted' AND u.id = $3",
        site_id,
        by.organization_id,
        by.user_id,
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    if !platform.template(&row.template).is_some_and(|t| t.builtin) {
        return Err(Error::Conflict(
            "This site's app has no Slipway editor: sign in with the app's own accounts."
                .to_owned(),
        ));
    }
    if SiteStatus::stored(&row.status)? != SiteStatus::Active {
        return Err(Error::Conflict(
            "The site is not running, so its editor cannot open. Start it (or wait until it is active) and try again."
                .to_owned(),
        ));
    }
    let site_token = site_token(platform, site_id, &row.api_token_sealed)?;
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let now = chrono::Utc::now().timestamp();
    let ticket = sign(
        &site_token,
        &Claims {
            sub: by.user_id.to_string(),
            name: &row.user_name,
            role: by.role.as_str(),
            iat: now,
            exp: now + TICKET_SECS,
            nonce: hex::encode(nonce),
        },
    );
    Ok(format!(
        "{}/editor/sign-in?ticket={ticket}",
        platform.site_url(&row.slug).trim_end_matches('/')
    ))
}

/// The site's own API token, unsealed.
fn site_token(platform: &Platform, site_id: Uuid, sealed: &[u8]) -> Result<String> {
    let key = platform
        .master_key
        .as_ref()
        .ok_or_else(|| Error::Internal("no master key configured".to_owned()))?;
    key.open_string(&seal_context(site_id, "api_token"), sealed)
        .map_err(|e| Error::Internal(e.to_string()))
}

/// The `editor_sign_out` job: `user_id`'s role in the organization went down, or they
/// left. Every site of it running the built-in CMS ends their editor sessions opened from
/// tickets issued before `issued_before` (Unix seconds) and refuses such tickets from then
/// on. A site that cannot be told now (stopped, starting, not answering) keeps the job
/// retrying, until every session it could hold has expired anyway.
pub async fn sign_out_everywhere(
    platform: &Platform,
    organization_id: Uuid,
    user_id: Uuid,
    issued_before: i64,
) -> std::result::Result<(), JobError> {
    let sites = sqlx::query!(
        "SELECT id, slug, template, status, upstream, api_token_sealed FROM sites
          WHERE organization_id = $1 AND status <> 'deleted' AND desired_state <> 'deleted'
          ORDER BY slug",
        organization_id
    )
    .fetch_all(&platform.db)
    .await?;
    let body = serde_json::json!({ "user": user_id, "issued_before": issued_before }).to_string();
    let mut not_yet = Vec::new();
    for site in sites
        .iter()
        .filter(|s| platform.template(&s.template).is_some_and(|t| t.builtin))
    {
        let address = site
            .upstream
            .as_deref()
            .and_then(|u| u.parse::<SocketAddr>().ok());
        let (Ok(SiteStatus::Active), Some(address)) = (SiteStatus::stored(&site.status), address)
        else {
            not_yet.push(format!("{} is not running", site.slug));
            continue;
        };
        let token = site_token(platform, site.id, &site.api_token_sealed)?;
        let answer = crate::infra::bare_http::status(
            address,
            "POST",
            "/api/editor/sign-out",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
            Duration::from_secs(10),
        )
        .await;
        match answer {
            Ok(200) => {}
            Ok(status) => not_yet.push(format!("{} answered {status}", site.slug)),
            Err(error) => not_yet.push(format!("{}: {error}", site.slug)),
        }
    }
    if not_yet.is_empty() || chrono::Utc::now().timestamp() > issued_before + SITE_SESSION_SECS {
        return Ok(());
    }
    Err(JobError::Retry(format!(
        "not signed out of every site yet: {}",
        not_yet.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The site's `ticket::tests::SHARED_VECTOR`: the site verifies exactly this.
    const SHARED_VECTOR: &str = "7b22737562223a2234623166366230652d303030302d343030302d383030302d303030303030303030303031222c226e616d65223a22416461222c22726f6c65223a22656469746f72222c22696174223a313739393939393934302c22657870223a313830303030303030302c226e6f6e6365223a223030313132323333343435353636373738383939616162626363646465656666227d.390b2ef6039c4be1468da0f0876da0586798f8ce13466f6a19eab088e6a52ba8";

    #[test]
    fn tickets_are_signed_exactly_as_the_site_verifies_them() {
        let ticket = sign(
            "site-token",
            &Claims {
                sub: "4b1f6b0e-0000-4000-8000-000000000001".to_owned(),
                name: "Ada",
                role: "editor",
                iat: 1_799_999_940,
                exp: 1_800_000_000,
                nonce: "00112233445566778899aabbccddeeff".to_owned(),
            },
        );
        assert_eq!(ticket, SHARED_VECTOR);
    }
}
