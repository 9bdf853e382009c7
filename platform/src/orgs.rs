//! Organizations (the tenants), their members and roles, and the one permission function
//! that decides every action.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::accounts::Email;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::plans::{Limit, PlanId};
use crate::secrets::{hash_token, random_alphanumeric, random_token};

/// How long an invitation link stays valid.
pub const INVITATION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// A member's role, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Editor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            _ => Err(Error::invalid(
                "role",
                "Choose one of owner, admin, editor or viewer.",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a member may try to do in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ViewOrganization,
    ViewMembers,
    ViewSites,
    EditSiteContent,
    DeploySite,
    ManageSites,
    InviteMember,
    ChangeRole,
    RemoveMember,
    ManageApiKeys,
    ViewAuditLog,
    ManageBilling,
    DeleteOrganization,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::ViewOrganization,
        Action::ViewMembers,
        Action::ViewSites,
        Action::EditSiteContent,
        Action::DeploySite,
        Action::ManageSites,
        Action::InviteMember,
        Action::ChangeRole,
        Action::RemoveMember,
        Action::ManageApiKeys,
        Action::ViewAuditLog,
        Action::ManageBilling,
        Action::DeleteOrganization,
    ];
}

/// The one permission function: may a member with `role` do `action`?
///
/// viewer: read-only. editor: + site content and deploys. admin: + sites, team, API keys,
/// audit log. owner: + billing and deleting the organization.
pub fn authorize(role: Role, action: Action) -> bool {
    let least = match action {
        Action::ViewOrganization | Action::ViewMembers | Action::ViewSites => Role::Viewer,
        Action::EditSiteContent | Action::DeploySite => Role::Editor,
        Action::ManageSites
        | Action::InviteMember
        | Action::ChangeRole
        | Action::RemoveMember
        | Action::ManageApiKeys
        | Action::ViewAuditLog => Role::Admin,
        Action::ManageBilling | Action::DeleteOrganization => Role::Owner,
    };
    role >= least
}

/// Whether `actor` may give someone the role `granted`: never above their own, so only
/// owners make owners.
pub fn may_grant(actor: Role, granted: Role) -> bool {
    authorize(actor, Action::ChangeRole) && granted <= actor
}

/// The caller's membership, checked: the only way to act on an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
}

impl Membership {
    /// Refuses unless the member's role allows `action`.
    pub fn require(&self, action: Action) -> Result<()> {
        if authorize(self.role, action) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }
}

/// Loads `user_id`'s membership of `organization_id`; not a member -> `NotFound` (an outsider
/// learns nothing about the organization).
pub async fn membership(
    platform: &Platform,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Membership> {
    let role = sqlx::query_scalar!(
        "SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2",
        organization_id,
        user_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(Membership {
        organization_id,
        user_id,
        role: Role::parse(&role)?,
    })
}

/// An organization's display name: 1-80 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub fn parse(raw: &str) -> Result<Self> {
        crate::text::display_name(
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

pub async fn members(platform: &Platform, by: &Membership) -> Result<Vec<Member>> {
    by.require(Action::ViewMembers)?;
    let rows = sqlx::query!(
        "SELECT u.id, u.email, u.name, m.role, m.created_at
           FROM organization_members m JOIN users u ON u.id = m.user_id
          WHERE m.organization_id = $1 ORDER BY m.created_at",
        by.organization_id
    )
    .fetch_all(&platform.db)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Member {
                user_id: row.id,
                email: row.email,
                name: row.name,
                role: Role::parse(&row.role)?,
                joined_at: row.created_at,
            })
        })
        .collect()
}

/// The plan's member limit, counting members and open invitations.
async fn check_member_limit(
    platform: &Platform,
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
) -> Result<()> {
    let row = sqlx::query!(
        r#"SELECT o.plan_id,
                  (SELECT count(*) FROM organization_members WHERE organization_id = o.id) AS "members!",
                  (SELECT count(*) FROM invitations
                    WHERE organization_id = o.id AND accepted_at IS NULL AND revoked_at IS NULL
                      AND expires_at > now()) AS "invited!"
             FROM organizations o WHERE o.id = $1 FOR UPDATE OF o"#,
        organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let plan = platform.plan(&row.plan_id);
    let (limit, plan_name) = match plan {
        Some(plan) => (plan.limits.members, plan.name.clone()),
        None => (Limit::Count(1), row.plan_id.clone()),
    };
    let used = u32::try_from(row.members + row.invited).unwrap_or(u32::MAX);
    if limit.allows_one_more(used) {
        Ok(())
    } else {
        let max = match limit {
            Limit::Count(n) => n,
            Limit::Unlimited => u32::MAX,
        };
        Err(Error::LimitReached(format!(
            "The {plan_name} plan allows {max} team member{} (pending invitations count). Upgrade your plan under Billing to invite more.",
            if max == 1 { "" } else { "s" }
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// Invites `email` with `role` and mails the link (valid 7 days). Returns the token, which
/// only the mail carries otherwise.
pub async fn invite(
    platform: &Platform,
    by: &Membership,
    email: &Email,
    role: Role,
    ip: Option<IpAddr>,
) -> Result<(Invitation, String)> {
    by.require(Action::InviteMember)?;
    if !may_grant(by.role, role) {
        return Err(Error::Forbidden);
    }
    let mut tx = platform.db.begin().await?;
    let already_member = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM organization_members m JOIN users u ON u.id = m.user_id
                           WHERE m.organization_id = $1 AND u.email = $2) AS "exists!""#,
        by.organization_id,
        email.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    if already_member {
        return Err(Error::invalid("email", "This person is already a member."));
    }
    // An expired invitation to the same address no longer counts; revoke it so the
    // one-open-invitation rule does not block a new one.
    sqlx::query!(
        "UPDATE invitations SET revoked_at = now()
          WHERE organization_id = $1 AND email = $2 AND accepted_at IS NULL
            AND revoked_at IS NULL AND expires_at <= now()",
        by.organization_id,
        email.as_str()
    )
    .execute(&mut *tx)
    .await?;
    check_member_limit(platform, &mut tx, by.organization_id).await?;
    let token = random_token();
    let lifetime = chrono::Duration::from_std(INVITATION_LIFETIME)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let row = sqlx::query!(
        "INSERT INTO invitations (organization_id, email, role, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, expires_at",
        by.organization_id,
        email.as_str(),
        role.as_str(),
        hash_token(&token),
        by.user_id,
        Utc::now() + lifetime,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| match e.constraint() {
        Some("invitations_open_key") => {
            Error::invalid("email", "This address already has a pending invitation.")
        }
        _ => e,
    })?;
    let organization = sqlx::query_scalar!(
        "SELECT name FROM organizations WHERE id = $1",
        by.organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let link = platform.link(&format!("/invitations/accept?token={token}"));
    crate::mail::send(
        &mut tx,
        &crate::mail::Message {
            to: email.clone(),
            subject: format!("You are invited to {organization} on Slipway"),
            body: format!(
                "You have been invited to join {organization} as {role}.\n\nAccept within 7 days:\n\n{link}\n"
            ),
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("member.invited", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(email.to_string())
            .details(serde_json::json!({ "role": role }))
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok((
        Invitation {
            id: row.id,
            email: email.to_string(),
            role,
            expires_at: row.expires_at,
        },
        token,
    ))
}

pub async fn pending_invitations(platform: &Platform, by: &Membership) -> Result<Vec<Invitation>> {
    by.require(Action::ViewMembers)?;
    let rows = sqlx::query!(
        "SELECT id, email, role, expires_at FROM invitations
          WHERE organization_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
            AND expires_at > now()
          ORDER BY created_at",
        by.organization_id
    )
    .fetch_all(&platform.db)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Invitation {
                id: row.id,
                email: row.email,
                role: Role::parse(&row.role)?,
                expires_at: row.expires_at,
            })
        })
        .collect()
}

/// Accepts an invitation as the signed-in user, whose email must be the invited one.
pub async fn accept_invitation(
    platform: &Platform,
    token: &str,
    user_id: Uuid,
    ip: Option<IpAddr>,
) -> Result<Uuid> {
    let mut tx = platform.db.begin().await?;
    let row = sqlx::query!(
        "SELECT i.id, i.organization_id, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at
           FROM invitations i WHERE i.token_hash = $1 FOR UPDATE",
        hash_token(token)
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::TokenInvalid)?;
    if row.accepted_at.is_some() {
        return Err(Error::TokenUsed);
    }
    if row.revoked_at.is_some() {
        return Err(Error::TokenInvalid);
    }
    if row.expires_at <= Utc::now() {
        return Err(Error::TokenExpired);
    }
    let user_email = sqlx::query_scalar!("SELECT email FROM users WHERE id = $1", user_id)
        .fetch_one(&mut *tx)
        .await?;
    if user_email != row.email {
        return Err(Error::Conflict(format!(
            "This invitation was sent to {}. Sign in with that address to accept it.",
            row.email
        )));
    }
    sqlx::query!(
        "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT organization_members_pkey DO NOTHING",
        row.organization_id,
        user_id,
        row.role
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE invitations SET accepted_at = now() WHERE id = $1",
        row.id
    )
    .execute(&mut *tx)
    .await?;
    // Following the mailed link proves the address.
    sqlx::query!(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1",
        user_id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("member.joined", Actor::User(user_id))
            .organization(row.organization_id)
            .details(serde_json::json!({ "role": row.role }))
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(row.organization_id)
}

/// The number of owners, locked so two concurrent demotions cannot both pass the check.
async fn owners_locked(tx: &mut sqlx::PgConnection, organization_id: Uuid) -> Result<i64> {
    let owners = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM (
             SELECT 1 FROM organization_members
              WHERE organization_id = $1 AND role = 'owner' FOR UPDATE) o"#,
        organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(owners)
}

async fn role_of(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Role> {
    let role = sqlx::query_scalar!(
        "SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2 FOR UPDATE",
        organization_id,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    Role::parse(&role)
}

const LAST_OWNER: &str =
    "An organization needs at least one owner. Make someone else an owner first.";

/// Changes a member's role. Nobody acts on a member above them or grants above their own
/// role; the last owner stays an owner.
pub async fn change_role(
    platform: &Platform,
    by: &Membership,
    user_id: Uuid,
    role: Role,
    ip: Option<IpAddr>,
) -> Result<()> {
    by.require(Action::ChangeRole)?;
    if !may_grant(by.role, role) {
        return Err(Error::Forbidden);
    }
    let mut tx = platform.db.begin().await?;
    let current = role_of(&mut tx, by.organization_id, user_id).await?;
    if current > by.role {
        return Err(Error::Forbidden);
    }
    if current == Role::Owner
        && role != Role::Owner
        && owners_locked(&mut tx, by.organization_id).await? <= 1
    {
        return Err(Error::Conflict(LAST_OWNER.into()));
    }
    sqlx::query!(
        "UPDATE organization_members SET role = $3 WHERE organization_id = $1 AND user_id = $2",
        by.organization_id,
        user_id,
        role.as_str()
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("member.role_changed", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject_user(user_id)
            .details(serde_json::json!({ "from": current, "to": role }))
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a member (or, with their own id, leaves). The last owner cannot go.
pub async fn remove_member(
    platform: &Platform,
    by: &Membership,
    user_id: Uuid,
    ip: Option<IpAddr>,
) -> Result<()> {
    let leaving = user_id == by.user_id;
    if !leaving {
        by.require(Action::RemoveMember)?;
    }
    let mut tx = platform.db.begin().await?;
    let current = role_of(&mut tx, by.organization_id, user_id).await?;
    if !leaving && current > by.role {
        return Err(Error::Forbidden);
    }
    if current == Role::Owner && owners_locked(&mut tx, by.organization_id).await? <= 1 {
        return Err(Error::Conflict(LAST_OWNER.into()));
    }
    sqlx::query!(
        "DELETE FROM organization_members WHERE organization_id = $1 AND user_id = $2",
        by.organization_id,
        user_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE sessions SET active_organization_id = NULL
          WHERE user_id = $1 AND active_organization_id = $2",
        user_id,
        by.organization_id
    )
    .execute(&mut *tx)
    .await?;
    let action = if leaving {
        "member.left"
    } else {
        "member.removed"
    };
    audit::record(
        &mut *tx,
        audit::Entry::new(action, Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject_user(user_id)
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The permission matrix, written out: every role x every action.
    #[test]
    fn permission_matrix() {
        use Action::*;
        let expected: [(Action, [bool; 4]); 13] = [
            //                        owner  admin  editor viewer
            (ViewOrganization, [true, true, true, true]),
            (ViewMembers, [true, true, true, true]),
            (ViewSites, [true, true, true, true]),
            (EditSiteContent, [true, true, true, false]),
            (DeploySite, [true, true, true, false]),
            (ManageSites, [true, true, false, false]),
            (InviteMember, [true, true, false, false]),
            (ChangeRole, [true, true, false, false]),
            (RemoveMember, [true, true, false, false]),
            (ManageApiKeys, [true, true, false, false]),
            (ViewAuditLog, [true, true, false, false]),
            (ManageBilling, [true, false, false, false]),
            (DeleteOrganization, [true, false, false, false]),
        ];
        assert_eq!(expected.len(), Action::ALL.len());
        for (action, allowed) in expected {
            for (role, allowed) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(authorize(role, action), allowed, "{role} {action:?}");
            }
        }
    }

    #[test]
    fn only_owners_make_owners() {
        assert!(may_grant(Role::Owner, Role::Owner));
        assert!(!may_grant(Role::Admin, Role::Owner));
        assert!(may_grant(Role::Admin, Role::Admin));
        assert!(may_grant(Role::Admin, Role::Viewer));
        assert!(!may_grant(Role::Editor, Role::Viewer));
        assert!(!may_grant(Role::Viewer, Role::Viewer));
    }

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
