//! Custom domains: a customer adds a domain to a site, Slipway shows the DNS records to
//! create, and only once a TXT record proves control of the domain does it route.
//!
//! The proof is `TXT _slipway-challenge.<domain> = <token>` (the token is random per domain
//! and shown to the customer); the CNAME `<domain> -> <slug>.<base domain>` is what sends
//! visitors to Slipway, and is advice, not a condition (apex domains cannot have one).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::catalog::plans::Feature;
use crate::infra::dns::{DnsSettings, txt_records};
use crate::kernel::secrets::random_token;
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::organizations::lock_for_limits;
use crate::tenancy::{Action, Membership};

/// The label in front of a domain whose TXT record carries the proof.
pub const CHALLENGE_LABEL: &str = "_slipway-challenge";
/// Domains one site may have.
pub const MAX_DOMAINS_PER_SITE: i64 = 20;

/// A host name a customer owns: ASCII (Unicode input becomes `xn--` punycode), lower case,
/// no trailing dot, at least two labels, no wildcard, not an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainName(String);

impl DomainName {
    /// Parses `raw`; `base_domain` (Slipway's own) and its subdomains are refused.
    pub fn parse(raw: &str, base_domain: &str) -> Result<Self> {
        let invalid = |why: String| Error::invalid("domain", why);
        let trimmed = raw.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(invalid("Enter a domain, like www.example.com.".to_owned()));
        }
        if trimmed.contains("://") || trimmed.contains('/') {
            return Err(invalid(
                "Enter the domain alone, without http:// or a path (like www.example.com)."
                    .to_owned(),
            ));
        }
        if trimmed.contains('*') {
            return Err(invalid(
                "Wildcard domains are not supported: add each host name (like www.example.com)."
                    .to_owned(),
            ));
        }
        let ascii = idna::domain_to_ascii(trimmed)
            .map_err(|_| invalid(format!("\"{trimmed}\" is not a valid domain name.")))?;
        let Some(host) = crate::kernel::normalize_host(&ascii) else {
            return Err(invalid(format!(
                "\"{trimmed}\" is not a valid domain name: use letters, digits and hyphens between dots, like www.example.com."
            )));
        };
        let base = base_domain.trim_end_matches('.').to_ascii_lowercase();
        if host == base || host.ends_with(&format!(".{base}")) {
            return Err(invalid(format!(
                "Names under {base} belong to Slipway: every site already has one. Add a domain you own."
            )));
        }
        if host != ascii || !host.contains('.') {
            return Err(invalid(format!(
                "\"{trimmed}\" is not a valid domain name: use a full name like www.example.com."
            )));
        }
        let tld = host.rsplit('.').next().unwrap_or_default();
        if tld.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!("\"{trimmed}\" is not a domain name.")));
        }
        Ok(Self(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the proof is looked up.
    pub fn challenge_name(&self) -> String {
        format!("{CHALLENGE_LABEL}.{}", self.0)
    }
}

/// A domain as the site page shows it, with the records to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: Uuid,
    pub site_id: Uuid,
    pub domain: String,
    pub verified_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// `TXT _slipway-challenge.<domain>` with this value.
    pub txt_name: String,
    pub txt_value: String,
    /// `CNAME <domain>` pointing here.
    pub cname_target: String,
    /// Where visitors reach the site by this domain (the site's URL with this host).
    pub url: String,
}

fn view(platform: &Platform, slug: &str, row: DomainRow) -> Domain {
    let site_url = platform.site_url(slug);
    let url = url::Url::parse(&site_url)
        .ok()
        .and_then(|mut u| u.set_host(Some(&row.domain)).ok().map(|()| u.to_string()))
        .unwrap_or_else(|| format!("http://{}/", row.domain));
    Domain {
        url,
        txt_name: format!("{CHALLENGE_LABEL}.{}", row.domain),
        txt_value: row.token,
        cname_target: format!("{slug}.{}", platform.base_domain),
        id: row.id,
        site_id: row.site_id,
        domain: row.domain,
        verified_at: row.verified_at,
        last_checked_at: row.last_checked_at,
        last_error: row.last_error,
    }
}

struct DomainRow {
    id: Uuid,
    site_id: Uuid,
    domain: String,
    token: String,
    verified_at: Option<DateTime<Utc>>,
    last_checked_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

/// The site's slug, if the site is the caller's and live.
async fn site_slug(platform: &Platform, by: &Membership, site_id: Uuid) -> Result<String> {
    sqlx::query_scalar!(
        "SELECT slug FROM sites WHERE id = $1 AND organization_id = $2 AND status <> 'deleted'",
        site_id,
        by.organization_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)
}

/// The site's domains, oldest first.
pub async fn list(platform: &Platform, by: &Membership, site_id: Uuid) -> Result<Vec<Domain>> {
    by.require(Action::ViewSites)?;
    let slug = site_slug(platform, by, site_id).await?;
    let rows = sqlx::query_as!(
        DomainRow,
        "SELECT id, site_id, domain, token, verified_at, last_checked_at, last_error
           FROM site_domains WHERE site_id = $1 AND organization_id = $2 ORDER BY created_at",
        site_id,
        by.organization_id
    )
    .fetch_all(&platform.db)
    .await?;
    Ok(rows.into_iter().map(|r| view(platform, &slug, r)).collect())
}

/// Adds `raw` to the site, unverified. Needs an admin and a plan with custom domains.
pub async fn add(platform: &Platform, by: &Membership, site_id: Uuid, raw: &str) -> Result<Domain> {
    by.require(Action::ManageSites)?;
    let domain = DomainName::parse(raw, &platform.base_domain)?;
    let slug = site_slug(platform, by, site_id).await?;
    let mut tx = platform.db.begin().await?;
    let plan_id = lock_for_limits(&mut tx, by.organization_id).await?;
    // The site stays live until this transaction ends: a deletion committing meanwhile
    // (whose trigger releases the site's domains) is waited for, and then found.
    sqlx::query_scalar!(
        "SELECT id FROM sites
          WHERE id = $1 AND organization_id = $2 AND desired_state <> 'deleted'
            AND status <> 'deleted'
          FOR SHARE",
        site_id,
        by.organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    platform.require_feature(&plan_id, Feature::CustomDomains, "add one")?;
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM site_domains WHERE site_id = $1"#,
        site_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if count >= MAX_DOMAINS_PER_SITE {
        return Err(Error::LimitReached(format!(
            "A site can have at most {MAX_DOMAINS_PER_SITE} domains. Remove one first."
        )));
    }
    // Only a verified domain is exclusive: an unverified claim elsewhere does not keep
    // its rightful owner out (whoever proves the TXT record first owns it).
    let verified_elsewhere = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM site_domains
                           WHERE domain = $1 AND verified_at IS NOT NULL) AS "taken!""#,
        domain.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    if verified_elsewhere {
        return Err(Error::invalid("domain", taken(&domain)));
    }
    let row = sqlx::query_as!(
        DomainRow,
        "INSERT INTO site_domains (id, site_id, organization_id, domain, token)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, site_id, domain, token, verified_at, last_checked_at, last_error",
        Uuid::new_v4(),
        site_id,
        by.organization_id,
        domain.as_str(),
        format!("slipway-verify={}", random_token())
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        let e = Error::from(e);
        if e.constraint() == Some("site_domains_site_domain_key") {
            Error::invalid(
                "domain",
                format!("{} is already added to this site.", domain.as_str()),
            )
        } else {
            e
        }
    })?;
    audit::record(
        &mut *tx,
        audit::Entry::new("domain.add", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(format!("site:{slug}"))
            .details(serde_json::json!({ "domain": domain.as_str(), "site_id": site_id })),
    )
    .await?;
    tx.commit().await?;
    Ok(view(platform, &slug, row))
}

fn taken(domain: &DomainName) -> String {
    format!(
        "{} is already verified for another site. If it is yours, remove it there first.",
        domain.as_str()
    )
}

/// Looks up the domain's TXT proof and, when it matches, marks the domain verified (it
/// routes from then on). Either way the check and its outcome are recorded and returned.
#[tracing::instrument(skip_all, fields(domain = %domain_id))]
pub async fn verify(
    platform: &Platform,
    by: &Membership,
    domain_id: Uuid,
    dns: &DnsSettings,
) -> Result<Domain> {
    by.require(Action::ManageSites)?;
    let row = sqlx::query_as!(
        DomainRow,
        "SELECT id, site_id, domain, token, verified_at, last_checked_at, last_error
           FROM site_domains WHERE id = $1 AND organization_id = $2",
        domain_id,
        by.organization_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    let slug = site_slug(platform, by, row.site_id).await?;
    let name = format!("{CHALLENGE_LABEL}.{}", row.domain);
    let (verified, error) = match txt_records(dns, &name).await {
        Ok(found) if found.iter().any(|v| v.trim() == row.token) => (true, None),
        Ok(found) if found.is_empty() => (
            false,
            Some(format!(
                "No TXT record found at {name}. Create it with the value shown; DNS changes can take a few minutes to appear."
            )),
        ),
        Ok(found) => (
            false,
            Some(format!(
                "The TXT record at {name} does not have the expected value (found: {}).",
                found.join(", ")
            )),
        ),
        Err(Error::Conflict(why)) => (false, Some(why)),
        Err(other) => return Err(other),
    };
    let mut tx = platform.db.begin().await?;
    let updated = sqlx::query_as!(
        DomainRow,
        "UPDATE site_domains
            SET verified_at = CASE WHEN $2 THEN COALESCE(verified_at, now()) ELSE verified_at END,
                last_checked_at = now(), last_error = $3
          WHERE id = $1
          RETURNING id, site_id, domain, token, verified_at, last_checked_at, last_error",
        row.id,
        verified,
        error
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        let e = Error::from(e);
        match e.constraint() {
            Some("site_domains_verified_key") => Error::Conflict(format!(
                "{}: another site proved this domain first. If it is yours, ask its owner to remove it, then verify again.",
                row.domain
            )),
            _ => e,
        }
    })?;
    if verified && row.verified_at.is_none() {
        audit::record(
            &mut *tx,
            audit::Entry::new("domain.verify", Actor::User(by.user_id))
                .organization(by.organization_id)
                .subject(format!("site:{slug}"))
                .details(serde_json::json!({ "domain": row.domain, "site_id": row.site_id })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(view(platform, &slug, updated))
}

/// Removes the domain from its site; it stops routing at once.
pub async fn remove(platform: &Platform, by: &Membership, domain_id: Uuid) -> Result<()> {
    by.require(Action::ManageSites)?;
    let mut tx = platform.db.begin().await?;
    let removed = sqlx::query!(
        "DELETE FROM site_domains WHERE id = $1 AND organization_id = $2 RETURNING domain, site_id",
        domain_id,
        by.organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    audit::record(
        &mut *tx,
        audit::Entry::new("domain.remove", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(format!("domain:{}", removed.domain))
            .details(serde_json::json!({ "domain": removed.domain, "site_id": removed.site_id })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<String> {
        DomainName::parse(raw, "localhost").map(|d| d.0)
    }

    #[test]
    fn domains_are_stored_in_one_ascii_form() {
        assert_eq!(parse("WWW.Example.COM.").unwrap(), "www.example.com");
        assert_eq!(parse("  example.org ").unwrap(), "example.org");
        assert_eq!(parse("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert_eq!(
            parse("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn malformed_wildcard_and_slipway_names_are_refused_with_a_reason() {
        let refused = |raw: &str| match parse(raw) {
            Err(Error::Invalid { field, message }) if field == "domain" => message,
            other => panic!("{raw:?} was not refused: {other:?}"),
        };
        assert!(refused("*.example.com").contains("Wildcard"));
        assert!(refused("https://example.com").contains("without http://"));
        assert!(refused("example.com/blog").contains("without http://"));
        assert!(refused("blog.localhost").contains("belong to Slipway"));
        assert!(refused("localhost").contains("belong to Slipway"));
        assert!(refused("BLOG.LOCALHOST.").contains("belong to Slipway"));
        assert!(refused("example").contains("full name"));
        assert!(refused("").contains("Enter a domain"));
        for raw in [
            "exa mple.com",
            "-x.example.com",
            "a..b.com",
            "10.0.0.1",
            "ex_ample.com",
        ] {
            assert!(refused(raw).contains("not a"), "{raw}");
        }
        assert!(refused(&format!("{}.com", "a".repeat(64))).contains("not a valid"));
    }
}
