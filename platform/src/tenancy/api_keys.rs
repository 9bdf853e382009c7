//! Organization API keys: shown once as `sk_live_<prefix>_<secret>`, stored as the prefix
//! and the SHA-256 of the whole key.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::catalog::Feature;
use crate::kernel::secrets::{hash_token, random_alphanumeric, random_token};
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::organizations::lock_for_limits;
use crate::tenancy::{Action, Membership};

const KEY_PREFIX: &str = "sk_live_";
const PREFIX_LEN: usize = 12;
/// Unrevoked keys per organization: enough for every integration, few enough to review.
pub const MAX_ACTIVE_KEYS: i64 = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            _ => Err(Error::invalid("scopes", "Scopes are read and write.")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key's name: 1-60 characters after trimming.
pub fn parse_name(raw: &str) -> Result<String> {
    crate::kernel::text::display_name(raw, "name", 60, "Name the key (what will use it?).")
}

/// Creates a key; the returned string is the only time the secret exists in clear.
pub async fn create(
    platform: &Platform,
    by: &Membership,
    name: &str,
    scopes: &[Scope],
    ip: Option<IpAddr>,
) -> Result<(ApiKey, String)> {
    by.require(Action::ManageApiKeys)?;
    let name = parse_name(name)?;
    let mut scopes: Vec<Scope> = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(Error::invalid("scopes", "Choose at least one scope."));
    }
    let prefix = random_alphanumeric(PREFIX_LEN);
    let key = format!("{KEY_PREFIX}{prefix}_{}", random_token());
    let scope_names: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let mut tx = platform.db.begin().await?;
    // Competing creations count one after another (the organization's row is locked).
    let plan_id = lock_for_limits(&mut tx, by.organization_id).await?;
    platform.require_feature(&plan_id, Feature::ApiAccess, "use the API")?;
    let active = sqlx::query_scalar!(
        r#"SELECT count(*) AS "active!" FROM api_keys
            WHERE organization_id = $1 AND revoked_at IS NULL"#,
        by.organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if active >= MAX_ACTIVE_KEYS {
        return Err(Error::LimitReached(format!(
            "An organization can have at most {MAX_ACTIVE_KEYS} active API keys. Revoke one you no longer use first."
        )));
    }
    let row = sqlx::query!(
        "INSERT INTO api_keys (organization_id, name, prefix, secret_hash, scopes, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at",
        by.organization_id,
        name,
        prefix,
        hash_token(&key),
        &scope_names,
        by.user_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("api_key.created", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(name.clone())
            .details(serde_json::json!({ "prefix": prefix, "scopes": scope_names }))
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok((
        ApiKey {
            id: row.id,
            name,
            prefix,
            scopes,
            created_at: row.created_at,
            last_used_at: None,
            revoked_at: None,
        },
        key,
    ))
}

pub async fn list(platform: &Platform, by: &Membership) -> Result<Vec<ApiKey>> {
    by.require(Action::ManageApiKeys)?;
    let rows = sqlx::query!(
        "SELECT id, name, prefix, scopes, created_at, last_used_at, revoked_at
           FROM api_keys WHERE organization_id = $1 ORDER BY created_at DESC",
        by.organization_id
    )
    .fetch_all(&platform.db)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ApiKey {
                id: row.id,
                name: row.name,
                prefix: row.prefix,
                scopes: row
                    .scopes
                    .iter()
                    .map(|s| Scope::parse(s))
                    .collect::<Result<_>>()?,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                revoked_at: row.revoked_at,
            })
        })
        .collect()
}

/// Revokes a key of the member's organization (a key of another organization is not found).
pub async fn revoke(
    platform: &Platform,
    by: &Membership,
    key_id: Uuid,
    ip: Option<IpAddr>,
) -> Result<()> {
    by.require(Action::ManageApiKeys)?;
    let mut tx = platform.db.begin().await?;
    let name = sqlx::query_scalar!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE id = $1 AND organization_id = $2 RETURNING name",
        key_id,
        by.organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    audit::record(
        &mut *tx,
        audit::Entry::new("api_key.revoked", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(name)
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A request authenticated by an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAuth {
    pub key_id: Uuid,
    pub organization_id: Uuid,
    pub scopes: Vec<Scope>,
}

impl KeyAuth {
    /// Refuses a key without `scope` (a `read` key cannot change anything).
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }
}

/// Why a bearer token was refused. All of them are `401` to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("API key is malformed: expected sk_live_<prefix>_<secret>")]
    Malformed,
    #[error("API key is not valid")]
    Unknown,
    #[error("API key has been revoked")]
    Revoked,
}

fn split(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let prefix = rest.get(..PREFIX_LEN)?;
    let secret = rest.get(PREFIX_LEN..)?.strip_prefix('_')?;
    let valid_prefix = prefix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid_secret = secret.len() == 43
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (valid_prefix && valid_secret).then_some(prefix)
}

/// Checks a presented key and records its use. A valid key of an organization whose plan
/// (no longer) includes API access is refused with the plan's reason.
pub async fn authenticate(platform: &Platform, key: &str) -> Result<KeyAuth, AuthFailure> {
    let prefix = split(key).ok_or(AuthFailure::Key(KeyError::Malformed))?;
    let row = sqlx::query!(
        "SELECT k.id, k.organization_id, k.secret_hash, k.scopes, k.revoked_at, o.plan_id
           FROM api_keys k JOIN organizations o ON o.id = k.organization_id
          WHERE k.prefix = $1",
        prefix
    )
    .fetch_optional(&platform.db)
    .await
    .map_err(|e| AuthFailure::Internal(e.into()))?
    .ok_or(AuthFailure::Key(KeyError::Unknown))?;
    if row.secret_hash != hash_token(key) {
        return Err(AuthFailure::Key(KeyError::Unknown));
    }
    if row.revoked_at.is_some() {
        return Err(AuthFailure::Key(KeyError::Revoked));
    }
    platform
        .require_feature(&row.plan_id, Feature::ApiAccess, "use the API")
        .map_err(AuthFailure::Plan)?;
    sqlx::query!(
        "UPDATE api_keys SET last_used_at = now() WHERE id = $1",
        row.id
    )
    .execute(&platform.db)
    .await
    .map_err(|e| AuthFailure::Internal(e.into()))?;
    let scopes = row
        .scopes
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<_>>()
        .map_err(AuthFailure::Internal)?;
    Ok(KeyAuth {
        key_id: row.id,
        organization_id: row.organization_id,
        scopes,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error(transparent)]
    Key(KeyError),
    /// A valid key, but the organization's plan does not include the API.
    #[error(transparent)]
    Plan(Error),
    #[error(transparent)]
    Internal(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_split_strictly() {
        let secret = "a".repeat(43);
        assert_eq!(
            split(&format!("sk_live_abcdefghij12_{secret}")),
            Some("abcdefghij12")
        );
        for bad in [
            String::new(),
            "sk_live_".into(),
            format!("sk_test_abcdefghij12_{secret}"),
            format!("sk_live_ABCDEFGHIJ12_{secret}"),
            format!("sk_live_abcdefghij12{secret}"),
            format!("sk_live_abcdefghij12_{}", "a".repeat(42)),
            format!("sk_live_abcdefghij12_{}!", "a".repeat(42)),
        ] {
            assert_eq!(split(&bad), None, "{bad:?}");
        }
    }
}
