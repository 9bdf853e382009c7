//! Organizations (the tenants): creating them, listing a user's, and what an API client
//! learns about its own.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::audit::{self, Actor};
use super::authz::{Action, Membership, Role};
use crate::Platform;
use crate::catalog::PlanId;
use crate::kernel::secrets::random_alphanumeric;
use crate::kernel::{Error, Result};

/// An organization's display name: 1-80 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub fn parse(raw: &str) -> Result<Self> {
        crate::kernel::text::display_name(
            raw,
            "organization",
            80,
            "Enter a name for your organization.",
        )
        .map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A URL slug from the name: `a-z 0-9 -`, 3-40 characters.
    pub fn slug_base(&self) -> String {
        let mut slug = String::new();
        for c in self.0.to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let mut slug: String = slug.trim_matches('-').chars().take(32).collect();
        slug = slug.trim_end_matches('-').to_owned();
        if slug.len() < 3 {
            slug = format!("org-{slug}").trim_end_matches('-').to_owned();
        }
        slug
    }
}

/// Locks the organization's row for the rest of the caller's transaction and returns its
/// plan: the first step of every counted limit (sites, members, domains, API keys).
/// Competing decisions for one organization then run one after another.
///
/// `FOR NO KEY UPDATE`, not `FOR UPDATE`: it still excludes every other limit decision, but
/// not the `FOR KEY SHARE` lock each foreign-key insert takes on its organization (an audit
/// entry written by a transaction that holds a site's lock), so the two cannot deadlock.
///
/// The counts must be read by statements *after* this one: a statement that waited for
/// the lock still reads the other tables as of its own start, so a count in the locking
/// statement itself would miss what the transaction it waited for had just committed.
pub(crate) async fn lock_for_limits(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
) -> Result<String> {
    let plan_id = sqlx::query_scalar!(
        "SELECT plan_id FROM organizations WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE",
        organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(plan_id)
}

/// Creates an organization with `owner` as its first member, inside the caller's transaction.
/// The slug comes from the name; on collision a random suffix is added.
pub async fn create_in(
    tx: &mut sqlx::PgConnection,
    name: &OrganizationName,
    owner: Uuid,
    plan: &PlanId,
) -> Result<Uuid> {
    let base = name.slug_base();
    let mut slug = base.clone();
    let organization_id = loop {
        let inserted = sqlx::query_scalar!(
            "INSERT INTO organizations (slug, name, plan_id) VALUES ($1, $2, $3)
             ON CONFLICT ON CONSTRAINT organizations_slug_key DO NOTHING RETURNING id",
            slug,
            name.as_str(),
            plan.as_str(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        match inserted {
            Some(id) => break id,
            None => slug = format!("{base}-{}", random_alphanumeric(6)),
        }
    };
    sqlx::query!(
        "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'owner')",
        organization_id,
        owner
    )
    .execute(&mut *tx)
    .await?;
    Ok(organization_id)
}

/// Creates another organization for a signed-in user, who becomes its owner.
pub async fn create(
    platform: &Platform,
    user_id: Uuid,
    name: &OrganizationName,
    ip: Option<IpAddr>,
) -> Result<Uuid> {
    let mut tx = platform.db.begin().await?;
    let organization_id = create_in(&mut tx, name, user_id, platform.default_plan()).await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("organization.created", Actor::User(user_id))
            .organization(organization_id)
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(organization_id)
}

/// Gives the organization a new display name (admins and owners). Its slug stays, so links
/// and addresses keep working.
pub async fn rename(
    platform: &Platform,
    by: &Membership,
    raw: &str,
    ip: Option<IpAddr>,
) -> Result<OrganizationName> {
    by.require(Action::RenameOrganization)?;
    let name = OrganizationName::parse(raw)?;
    let mut tx = platform.db.begin().await?;
    let from = sqlx::query_scalar!(
        "SELECT name FROM organizations WHERE id = $1 FOR NO KEY UPDATE",
        by.organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if from == name.as_str() {
        return Ok(name);
    }
    sqlx::query!(
        "UPDATE organizations SET name = $2 WHERE id = $1",
        by.organization_id,
        name.as_str()
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("organization.renamed", Actor::User(by.user_id))
            .organization(by.organization_id)
            .details(serde_json::json!({ "from": from, "to": name.as_str() }))
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(name)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan_id: String,
    pub role: Role,
}

/// Every organization the user belongs to, oldest membership first.
pub async fn list_for_user(platform: &Platform, user_id: Uuid) -> Result<Vec<OrganizationSummary>> {
    let rows = sqlx::query!(
        "SELECT o.id, o.slug, o.name, o.plan_id, m.role
           FROM organization_members m JOIN organizations o ON o.id = m.organization_id
          WHERE m.user_id = $1 ORDER BY m.created_at, o.name",
        user_id
    )
    .fetch_all(&platform.db)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(OrganizationSummary {
                id: row.id,
                slug: row.slug,
                name: row.name,
                plan_id: row.plan_id,
                role: Role::parse(&row.role)?,
            })
        })
        .collect()
}

/// What an API client learns about its own organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan_id: String,
    pub plan_name: String,
    pub member_count: i64,
}

/// The overview of an organization the caller already proved access to (a key's or a
/// membership's organization id).
pub async fn overview(platform: &Platform, organization_id: Uuid) -> Result<Overview> {
    let row = sqlx::query!(
        r#"SELECT o.id, o.slug, o.name, o.plan_id,
                  (SELECT count(*) FROM organization_members m WHERE m.organization_id = o.id)
                    AS "member_count!"
             FROM organizations o WHERE o.id = $1"#,
        organization_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    let plan_name = platform
        .plan(&row.plan_id)
        .map_or_else(|| row.plan_id.clone(), |plan| plan.name.clone());
    Ok(Overview {
        id: row.id,
        slug: row.slug,
        name: row.name,
        plan_id: row.plan_id,
        plan_name,
        member_count: row.member_count,
    })
}

/// Which first steps an organization has taken: the overview's getting-started checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct GettingStarted {
    /// A site exists (one being deleted does not count).
    pub site: bool,
    /// Someone else is a member, or has an open invitation.
    pub teammate: bool,
    /// A custom domain was added to one of its sites.
    pub domain: bool,
    /// An API key exists (a revoked one counts: the step was taken).
    pub api_key: bool,
}

impl GettingStarted {
    pub fn done(self) -> bool {
        self.site && self.teammate && self.domain && self.api_key
    }
}

/// The checklist for the member's organization (every member may read it).
pub async fn getting_started(platform: &Platform, by: &Membership) -> Result<GettingStarted> {
    by.require(Action::ViewSites)?;
    let steps = sqlx::query_as::<_, GettingStarted>(
        "SELECT EXISTS (SELECT 1 FROM sites
                         WHERE organization_id = $1 AND desired_state <> 'deleted') AS site,
                (SELECT count(*) FROM organization_members WHERE organization_id = $1) > 1
                  OR EXISTS (SELECT 1 FROM invitations
                              WHERE organization_id = $1 AND accepted_at IS NULL
                                AND revoked_at IS NULL AND expires_at > now()) AS teammate,
                EXISTS (SELECT 1 FROM site_domains WHERE organization_id = $1) AS domain,
                EXISTS (SELECT 1 FROM api_keys WHERE organization_id = $1) AS api_key",
    )
    .bind(by.organization_id)
    .fetch_one(&platform.db)
    .await?;
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        let slug = |name: &str| OrganizationName::parse(name).unwrap().slug_base();
        assert_eq!(slug("Acme Corp"), "acme-corp");
        assert_eq!(slug("  Ünïcode & Co. "), "n-code-co");
        assert_eq!(slug("AB"), "org-ab");
        assert_eq!(slug("!!!"), "org");
        assert_eq!(slug(&"x".repeat(80)).len(), 32);
    }

    #[test]
    fn organization_names_are_checked() {
        assert!(OrganizationName::parse("  ").is_err());
        assert!(OrganizationName::parse(&"x".repeat(81)).is_err());
    }
}
