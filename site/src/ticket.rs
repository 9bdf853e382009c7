//! Sign-in tickets from Slipway: "Open editor" on the site page sends the member here with
//! a short-lived, single-use ticket instead of a password the site would have to keep.
//!
//! A ticket is `<hex of the JSON claims>.<hex of HMAC-SHA256 of that hex>`. The key is
//! derived from the site token Slipway gave the container (`HMAC-SHA256(SITE_TOKEN,
//! "slipway editor sign-in v1")`): whoever holds the token can already write through the
//! API, so the editor trusts nobody new, and no site needs a new secret to get an editor.
//! Slipway's side of the format is `platform::sites::editor`; the two share a test vector.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What the ticket says about the member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The member's id in Slipway.
    pub sub: String,
    /// Shown in the editor and recorded as a post's author.
    pub name: String,
    /// `owner`, `admin`, `editor` (may write) or `viewer` (reads drafts).
    pub role: String,
    /// Seconds since the Unix epoch, on Slipway's clock, when it was issued: a ticket
    /// issued before Slipway signed the member out of the site (their role went down, they
    /// left) is refused.
    pub iat: i64,
    /// Seconds since the Unix epoch after which the ticket is refused.
    pub exp: i64,
    /// Random: the ticket works once.
    pub nonce: String,
}

/// Tickets live this long at most, whatever `exp` claims (a clock ahead on Slipway's side
/// must not make them long-lived).
pub const MAX_LIFETIME_SECS: i64 = 300;

pub const ROLES: [&str; 4] = ["owner", "admin", "editor", "viewer"];

fn key(site_token: &str) -> Hmac<Sha256> {
    let mut derive = Hmac::<Sha256>::new_from_slice(site_token.as_bytes())
        .expect("HMAC takes a key of any length");
    derive.update(b"slipway editor sign-in v1");
    let derived = derive.finalize().into_bytes();
    Hmac::<Sha256>::new_from_slice(&derived).expect("HMAC takes a key of any length")
}

/// Why a ticket is refused, in words for the person holding it.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    BadSignature,
    Expired,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Malformed => "This sign-in link is incomplete. Open the editor again from your Slipway dashboard.",
            Refused::BadSignature => "This sign-in link was not issued for this site. Open the editor again from your Slipway dashboard.",
            Refused::Expired => "This sign-in link has expired. Open the editor again from your Slipway dashboard.",
        })
    }
}

/// The claims of a genuine, unexpired ticket (single use is the caller's to enforce).
pub fn verify(site_token: &str, ticket: &str, now: i64) -> Result<Claims, Refused> {
    let (payload_hex, signature_hex) = ticket.split_once('.').ok_or(Refused::Malformed)?;
    let signature = hex::decode(signature_hex).map_err(|_| Refused::Malformed)?;
    let mut mac = key(site_token);
    mac.update(payload_hex.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| Refused::BadSignature)?;
    let payload = hex::decode(payload_hex).map_err(|_| Refused::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| Refused::Malformed)?;
    if !ROLES.contains(&claims.role.as_str()) || claims.nonce.len() < 16 {
        return Err(Refused::Malformed);
    }
    // A ticket issued long before its expiry would outlive the site's memory of sign-outs.
    if claims.exp < now
        || claims.exp > now + MAX_LIFETIME_SECS
        || !(0..=MAX_LIFETIME_SECS).contains(&(claims.exp - claims.iat))
    {
        return Err(Refused::Expired);
    }
    Ok(claims)
}

/// Issues a ticket as Slipway does (tests, and the format's reference).
#[cfg(test)]
pub fn sign(site_token: &str, claims: &Claims) -> String {
    let payload_hex = hex::encode(serde_json::to_vec(claims).expect("claims serialize"));
    let mut mac = key(site_token);
    mac.update(payload_hex.as_bytes());
    format!("{payload_hex}.{}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "4b1f6b0e-0000-4000-8000-000000000001".to_owned(),
            name: "Ada".to_owned(),
            role: "editor".to_owned(),
            iat: exp - 60,
            exp,
            nonce: "00112233445566778899aabbccddeeff".to_owned(),
        }
    }

    /// Slipway's signer (`platform::sites::editor`) checks that it issues exactly this
    /// ticket for these claims: if either side changes the format, one of the tests fails.
    pub const SHARED_VECTOR: &str = "7b22737562223a2234623166366230652d303030302d343030302d383030302d303030303030303030303031222c226e616d65223a22416461222c22726f6c65223a22656469746f72222c22696174223a313739393939393934302c22657870223a313830303030303030302c226e6f6e6365223a223030313132323333343435353636373738383939616162626363646465656666227d.390b2ef6039c4be1468da0f0876da0586798f8ce13466f6a19eab088e6a52ba8";

    #[test]
    fn the_shared_test_vector_verifies() {
        assert_eq!(sign("site-token", &claims(1_800_000_000)), SHARED_VECTOR);
        assert_eq!(
            verify("site-token", SHARED_VECTOR, 1_800_000_000 - 60),
            Ok(claims(1_800_000_000))
        );
    }

    #[test]
    fn another_sites_token_a_tampered_claim_or_an_old_ticket_is_refused() {
        let now = 1_800_000_000;
        let ticket = sign("site-token", &claims(now + 60));
        assert_eq!(
            verify("other-token", &ticket, now),
            Err(Refused::BadSignature)
        );
        let mut tampered = claims(now + 60);
        tampered.role = "owner".to_owned();
        let forged = format!(
            "{}.{}",
            hex::encode(serde_json::to_vec(&tampered).unwrap()),
            ticket.split_once('.').unwrap().1
        );
        assert_eq!(
            verify("site-token", &forged, now),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify("site-token", &ticket, now + 61),
            Err(Refused::Expired)
        );
        let far = sign("site-token", &claims(now + MAX_LIFETIME_SECS + 1));
        assert_eq!(verify("site-token", &far, now), Err(Refused::Expired));
        assert_eq!(verify("site-token", "no-dot", now), Err(Refused::Malformed));
        assert_eq!(verify("site-token", "abc.zz", now), Err(Refused::Malformed));
    }
}
