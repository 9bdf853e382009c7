//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`,
//! each `v1` an HMAC-SHA256 of `"<t>.<raw body>"` keyed by an endpoint secret.
//!
//! Checked here rather than with async-stripe's `Webhook::construct_event`, which looks at
//! the last `v1` only: while a secret is being rolled Stripe sends one `v1` per active
//! secret, in no promised order, and an event signed with either must be accepted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far the signed timestamp may be from now, either way (Stripe's default).
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is more than {TOLERANCE_SECS} s from now")]
    Expired,
    #[error("no signature in the Stripe-Signature header matches")]
    Mismatch,
}

/// Accepts `payload` if any `v1` signature in `header` is the HMAC of it under one of
/// `secrets`, and its timestamp is within [`TOLERANCE_SECS`] of `now` (unix seconds).
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secrets: &[&str],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            // A malformed v1 cannot match; others may still.
            "v1" => signatures.extend(hex::decode(value).ok()),
            // v0 (test-mode legacy) and future schemes are not ours to check.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // Any i64 may arrive here (`t=-9223372036854775808`): no arithmetic that can overflow.
    if now.abs_diff(timestamp) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Expired);
    }
    for secret in secrets {
        for signature in &signatures {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .map_err(|_| SignatureError::Malformed)?;
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            // Constant-time comparison.
            if mac.verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// The header Stripe would send for `payload` signed at `timestamp` with each of `secrets`,
/// for the unit tests below. The Stripe-shaped test server signs with its own code, so the
/// integration tests do not check this module against itself.
#[cfg(test)]
fn sign(payload: &[u8], timestamp: i64, secrets: &[&str]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        // HMAC accepts keys of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(payload);
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_valid_signature_is_accepted() {
        let header = sign(BODY, NOW, &[SECRET]);
        assert_eq!(verify(BODY, Some(&header), &[SECRET], NOW + 10), Ok(()));
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let header = sign(BODY, NOW, &["whsec_someone_else"]);
        assert_eq!(
            verify(BODY, Some(&header), &[SECRET], NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_timestamp_outside_the_tolerance_is_refused_either_way() {
        let header = sign(BODY, NOW, &[SECRET]);
        for now in [NOW + TOLERANCE_SECS + 1, NOW - TOLERANCE_SECS - 1] {
            assert_eq!(
                verify(BODY, Some(&header), &[SECRET], now),
                Err(SignatureError::Expired)
            );
        }
        assert_eq!(
            verify(BODY, Some(&header), &[SECRET], NOW + TOLERANCE_SECS),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let header = sign(BODY, NOW, &[SECRET]);
        let tampered = br#"{"id":"evt_1","type":"invoice.paid","x":1}"#;
        assert_eq!(
            verify(tampered, Some(&header), &[SECRET], NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_of_several_v1_signatures_may_match_in_any_order() {
        // Stripe signs with the old and the new secret while a secret is rolled.
        let both = sign(BODY, NOW, &[SECRET, "whsec_old"]);
        assert_eq!(verify(BODY, Some(&both), &[SECRET], NOW), Ok(()));
        let reversed = sign(BODY, NOW, &["whsec_old", SECRET]);
        assert_eq!(verify(BODY, Some(&reversed), &[SECRET], NOW), Ok(()));
        // And Slipway may hold two secrets of its own while it rolls one.
        let new_only = sign(BODY, NOW, &["whsec_new"]);
        assert_eq!(
            verify(BODY, Some(&new_only), &[SECRET, "whsec_new"], NOW),
            Ok(())
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        assert_eq!(
            verify(BODY, None, &[SECRET], NOW),
            Err(SignatureError::Missing)
        );
        for extreme in [i64::MIN, i64::MAX] {
            let header = sign(BODY, extreme, &[SECRET]);
            assert_eq!(
                verify(BODY, Some(&header), &[SECRET], NOW),
                Err(SignatureError::Expired),
                "{header}"
            );
        }
        for header in ["", "t=abc,v1=00", "v1=00", "t=1800000000", "garbage"] {
            assert!(
                verify(BODY, Some(header), &[SECRET], NOW).is_err(),
                "{header:?} was accepted"
            );
        }
    }
}
