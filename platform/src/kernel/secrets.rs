//! Random secrets and how they are stored: only their SHA-256, never the value.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// 32 random bytes from the OS, base64url without padding (43 characters): safe in URLs,
/// cookies and headers.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` random characters of `[a-z0-9]`, for short public identifiers (API key prefixes).
pub fn random_alphanumeric(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        // 256 = 7 * 36 + 4: the bias towards the first four characters is negligible here.
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// What the database keeps of a token.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The key that seals secrets Slipway must read back (a site's database password, API
/// token, webhook secret): XChaCha20-Poly1305 with a random 24-byte nonce per value.
#[derive(Clone)]
pub struct MasterKey(chacha20poly1305::Key);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// A sealed value did not open: another key, another row, or tampered bytes.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret cannot be opened with the configured master key")]
pub struct Unsealable;

const NONCE_LEN: usize = 24;

impl MasterKey {
    /// From the configured text: 32 bytes in standard or URL-safe base64.
    pub fn parse(encoded: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::STANDARD;
        let trimmed = encoded.trim();
        let bytes = STANDARD
            .decode(trimmed)
            .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
            .map_err(|_| "not base64 (generate one with `slipway keygen`)".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!(
                "must be 32 bytes, this is {} (generate one with `slipway keygen`)",
                bytes.len()
            ));
        }
        Ok(Self(*chacha20poly1305::Key::from_slice(&bytes)))
    }

    /// A fresh key, base64-encoded, for `slipway keygen`.
    pub fn generate() -> String {
        use base64::engine::general_purpose::STANDARD;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// `nonce || ciphertext+tag`. `context` (e.g. the row's id and column) must be given
    /// again to open it, so a sealed value copied to another row does not open.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{Aead, Payload};
        use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&self.0);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            // Encryption only fails for messages longer than the cipher's limit (256 GiB).
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unsealable> {
        use chacha20poly1305::aead::{Aead, Payload};
        use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
        if sealed.len() < NONCE_LEN {
            return Err(Unsealable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new(&self.0)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| Unsealable)
    }

    pub fn open_string(&self, context: &[u8], sealed: &[u8]) -> Result<String, Unsealable> {
        String::from_utf8(self.open(context, sealed)?).map_err(|_| Unsealable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = MasterKey::parse(&MasterKey::generate()).unwrap();
        let other = MasterKey::parse(&MasterKey::generate()).unwrap();
        let sealed = key.seal(b"site-1/db", b"hunter2");
        assert_ne!(&sealed[NONCE_LEN..], b"hunter2");
        assert_eq!(key.open(b"site-1/db", &sealed).unwrap(), b"hunter2");
        assert!(key.open(b"site-2/db", &sealed).is_err());
        assert!(other.open(b"site-1/db", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(b"site-1/db", &tampered).is_err());
        // Two seals of the same value differ (fresh nonce).
        assert_ne!(key.seal(b"c", b"v"), key.seal(b"c", b"v"));
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64() {
        assert!(MasterKey::parse("not base64!").is_err());
        assert!(
            MasterKey::parse("c2hvcnQ=")
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(
            format!("{:?}", MasterKey::parse(&MasterKey::generate()).unwrap()) == "MasterKey(***)"
        );
    }

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn hashes_are_stable_and_distinct() {
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_ne!(hash_token("x"), hash_token("y"));
        assert_eq!(hash_token("x").len(), 32);
    }

    #[test]
    fn alphanumeric_ids() {
        let id = random_alphanumeric(12);
        assert_eq!(id.len(), 12);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
