//! "Open editor": signs a member into their site's own editor (the built-in CMS) with a
//! short-lived, single-use ticket, so the site keeps no passwords of its own.
//!
//! The format is the site's (`site/src/ticket.rs`): `<hex of the JSON claims>.<hex of
//! HMAC-SHA256 of that hex>`, keyed by `HMAC-SHA256(site token, "slipway editor sign-in
//! v1")`. The site token is what the container already holds; whoever holds it can write
//! through the site's API anyway, so the ticket gives nobody anything new. A test vector
//! shared with the site's tests keeps the two sides in step.

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use super::{SiteStatus, seal_context};
use crate::Platform;
use crate::kernel::{Error, Result};
use crate::tenancy::{Action, Membership};

/// A ticket is good for this long: enough for a redirect, too short to be worth stealing.
const TICKET_SECS: i64 = 60;

/// What the ticket tells the site; the field order is the format's (see the test vector).
#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: String,
    name: &'a str,
    role: &'a str,
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
    let key = platform
        .master_key
        .as_ref()
        .ok_or_else(|| Error::Internal("no master key configured".to_owned()))?;
    let site_token = key
        .open_string(&seal_context(site_id, "api_token"), &row.api_token_sealed)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ticket = sign(
        &site_token,
        &Claims {
            sub: by.user_id.to_string(),
            name: &row.user_name,
            role: by.role.as_str(),
            exp: chrono::Utc::now().timestamp() + TICKET_SECS,
            nonce: hex::encode(nonce),
        },
    );
    Ok(format!(
        "{}/editor/sign-in?ticket={ticket}",
        platform.site_url(&row.slug).trim_end_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The site's `ticket::tests::SHARED_VECTOR`: the site verifies exactly this.
    const SHARED_VECTOR: &str = "7b22737562223a2234623166366230652d303030302d343030302d383030302d303030303030303030303031222c226e616d65223a22416461222c22726f6c65223a22656469746f72222c22657870223a313830303030303030302c226e6f6e6365223a223030313132323333343435353636373738383939616162626363646465656666227d.8412cb0c6e0e69979fcb3f7609e6981791d44d6cad666fafb9d256e43af72a70";

    #[test]
    fn tickets_are_signed_exactly_as_the_site_verifies_them() {
        let ticket = sign(
            "site-token",
            &Claims {
                sub: "4b1f6b0e-0000-4000-8000-000000000001".to_owned(),
                name: "Ada",
                role: "editor",
                exp: 1_800_000_000,
                nonce: "00112233445566778899aabbccddeeff".to_owned(),
            },
        );
        assert_eq!(ticket, SHARED_VECTOR);
    }
}
