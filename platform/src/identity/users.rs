//! People and their credentials: names, passwords (argon2id, m = 19 MiB, t = 2, p = 1, the
//! OWASP recommendation, hashed on the blocking pool so hashing never stalls the async
//! workers), and platform operators.

use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use uuid::Uuid;

use crate::Platform;
use crate::kernel::{Email, Error, Result};
use crate::tenancy::audit::{self, Actor};

/// argon2id memory cost in KiB (19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;

/// A person's display name: 1-100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self> {
        crate::kernel::text::display_name(raw, "name", 100, "Enter your name.").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password being set: 10 to 128 characters. Never printed.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self> {
        let length = raw.chars().count();
        if length < 10 {
            return Err(Error::invalid(
                "password",
                "Use at least 10 characters for your password.",
            ));
        }
        if length > 128 {
            return Err(Error::invalid(
                "password",
                "Use at most 128 characters for your password.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string (algorithm, parameters and salt included).
pub async fn hash_password(password: &NewPassword) -> Result<String> {
    let password = password.0.clone();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(format!("password hashing task: {e}")))?
}

/// Checks `password` against a stored PHC string. `None` (no such user) still costs one
/// full verification against a fixed hash, so the answer takes as long either way.
pub async fn verify_password(password: &str, stored: Option<String>) -> Result<bool> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let argon2 = argon2()?;
        let (stored, exists) = match stored {
            Some(hash) => (hash, true),
            None => (DUMMY_HASH.to_owned(), false),
        };
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| Error::Internal(format!("stored password hash: {e}")))?;
        let matches = argon2.verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(matches && exists)
    })
    .await
    .map_err(|e| Error::Internal(format!("password verification task: {e}")))?
}

/// An argon2id hash with the parameters above, of a password nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2xpcHdheWR1bW15c2FsdA$gE5gA0hZpX8Qm6O6W9rJm4o6yB0tC+u1bqYc5mYbXl0";

/// What `slipway admin create` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorCreated {
    NewUser(Uuid),
    Promoted(Uuid),
}

/// Makes `email` a platform operator: a new, verified user with `password`, or, when the
/// address already has an account, that account (its password unchanged).
pub async fn create_operator(
    platform: &Platform,
    email: &Email,
    name: &PersonName,
    password: &NewPassword,
) -> Result<OperatorCreated> {
    let password_hash = hash_password(password).await?;
    let mut tx = platform.db.begin().await?;
    let promoted = sqlx::query_scalar!(
        // An operator made at the command line can act: a disabled account is enabled too
        // (the way back for operators who disabled each other).
        "UPDATE users SET is_operator = true, disabled_at = NULL, disabled_reason = NULL
          WHERE email = $1 RETURNING id",
        email.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match promoted {
        Some(id) => OperatorCreated::Promoted(id),
        None => OperatorCreated::NewUser(
            sqlx::query_scalar!(
                "INSERT INTO users (email, name, password_hash, email_verified_at, is_operator)
                 VALUES ($1, $2, $3, now(), true) RETURNING id",
                email.as_str(),
                name.as_str(),
                password_hash
            )
            .fetch_one(&mut *tx)
            .await?,
        ),
    };
    let (OperatorCreated::NewUser(id) | OperatorCreated::Promoted(id)) = outcome;
    audit::record(
        &mut *tx,
        audit::Entry::new("operator.granted", Actor::Anonymous).subject_user(id),
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_bounds_and_never_print() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse(&"x".repeat(129)).is_err());
        let password = NewPassword::parse("correct horse battery").unwrap();
        assert_eq!(format!("{password:?}"), "NewPassword(***)");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(PersonName::parse(" ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse("a\u{0007}b").is_err());
    }

    #[tokio::test]
    async fn hashes_verify_and_the_dummy_hash_is_well_formed() {
        let password = NewPassword::parse("correct horse battery").unwrap();
        let hash = hash_password(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password("correct horse battery", Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse battery", Some(hash))
                .await
                .unwrap()
        );
        // The dummy hash parses (else unknown emails would fail differently).
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password("anything", None).await.unwrap());
    }
}
