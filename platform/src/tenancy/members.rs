//! An organization's members: listing them, invitations (held to the plan's member limit),
//! role changes and removals. The last owner can neither leave nor be demoted.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::audit::{self, Actor};
use super::authz::{Action, Membership, Role, may_grant};
use super::organizations::lock_for_limits;
use crate::Platform;
use crate::catalog::Limit;
use crate::infra::jobs::{self, JobKind, NewJob};
use crate::kernel::secrets::{hash_token, random_token};
use crate::kernel::{Email, Error, Result};

/// How long an invitation link stays valid.
pub const INVITATION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

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
    let plan_id = lock_for_limits(&mut *tx, organization_id).await?;
    let row = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM organization_members WHERE organization_id = $1) AS "members!",
                  (SELECT count(*) FROM invitations
                    WHERE organization_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
                      AND expires_at > now()) AS "invited!""#,
        organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (limit, plan_name) = match platform.plan(&plan_id) {
        Some(plan) => (plan.limits.members, plan.name.clone()),
        None => (Limit::Count(1), plan_id.clone()),
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
    lock_for_limits(&mut tx, by.organization_id).await?;
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
    let row = sqlx::query!(
        "INSERT INTO invitations (organization_id, email, role, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, expires_at",
        by.organization_id,
        email.as_str(),
        role.as_str(),
        hash_token(&token),
        by.user_id,
        Utc::now() + invitation_lifetime()?,
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
    mail_invitation(platform, &mut tx, by.organization_id, email, role, &token).await?;
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
    let organization_id = accept_in(&mut tx, token, user_id, ip).await?;
    tx.commit().await?;
    Ok(organization_id)
}

/// [`accept_invitation`] in the caller's transaction (sign-up from an invitation creates
/// the account and joins in one).
pub(crate) async fn accept_in(
    tx: &mut sqlx::PgConnection,
    token: &str,
    user_id: Uuid,
    ip: Option<IpAddr>,
) -> Result<Uuid> {
    // The organization first, shared: a deletion of it (which holds it exclusively) is
    // waited for and then refuses the invitation; taken before the invitation's row, in
    // the order a deletion takes them, so the two cannot deadlock.
    let organization_id = sqlx::query_scalar!(
        "SELECT organization_id FROM invitations WHERE token_hash = $1",
        hash_token(token)
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::TokenInvalid)?;
    let deleted = sqlx::query_scalar!(
        r#"SELECT deleted_at IS NOT NULL AS "deleted!" FROM organizations WHERE id = $1 FOR SHARE"#,
        organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if deleted {
        return Err(Error::Conflict(
            "This organization has been deleted: the invitation no longer leads anywhere.".into(),
        ));
    }
    let row = sqlx::query!(
        "SELECT i.id, i.organization_id, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at,
                m.role AS \"inviter_role?\"
           FROM invitations i
           LEFT JOIN organization_members m
             ON m.organization_id = i.organization_id AND m.user_id = i.invited_by
          WHERE i.token_hash = $1 FOR UPDATE OF i",
        hash_token(token)
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::TokenInvalid)?;
    still_open(row.accepted_at, row.revoked_at, row.expires_at)?;
    // An invitation is only as good as its inviter's rights today: one sent by an admin
    // who has since been removed or demoted grants nothing.
    let inviter_may_grant = match row.inviter_role.as_deref() {
        Some(inviter) => may_grant(Role::parse(inviter)?, Role::parse(&row.role)?),
        None => false,
    };
    if !inviter_may_grant {
        return Err(Error::Conflict(
            "This invitation is no longer valid: the person who sent it can no longer grant this role. Ask the organization's owners or admins for a new one.".into(),
        ));
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
    Ok(row.organization_id)
}

/// Refuses an invitation already used, withdrawn or expired, saying which.
fn still_open(
    accepted_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    if accepted_at.is_some() {
        Err(Error::TokenUsed)
    } else if revoked_at.is_some() {
        Err(Error::TokenInvalid)
    } else if expires_at <= Utc::now() {
        Err(Error::TokenExpired)
    } else {
        Ok(())
    }
}

/// What an invitation link shows someone not signed in: where it leads, for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationPreview {
    pub organization: String,
    pub email: String,
    pub role: Role,
    /// An account with the invited address exists: sign in instead of signing up.
    pub account_exists: bool,
}

/// The open invitation behind `token`, for its landing page (the token is the secret, as in
/// the mail); a used, withdrawn or expired one says why.
pub async fn preview_invitation(platform: &Platform, token: &str) -> Result<InvitationPreview> {
    let row = sqlx::query!(
        r#"SELECT o.name, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at,
                  EXISTS (SELECT 1 FROM users u WHERE u.email = i.email) AS "account_exists!"
             FROM invitations i JOIN organizations o ON o.id = i.organization_id
            WHERE i.token_hash = $1"#,
        hash_token(token)
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::TokenInvalid)?;
    still_open(row.accepted_at, row.revoked_at, row.expires_at)?;
    Ok(InvitationPreview {
        organization: row.name,
        email: row.email,
        role: Role::parse(&row.role)?,
        account_exists: row.account_exists,
    })
}

/// Revokes the open invitations `inviter` sent that their role (`None`: no longer a
/// member) does not allow them to grant any more.
async fn revoke_invitations_beyond(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    inviter: Uuid,
    role: Option<Role>,
) -> Result<u64> {
    let still_grantable: Vec<String> = Role::ALL
        .into_iter()
        .filter(|granted| role.is_some_and(|role| may_grant(role, *granted)))
        .map(|granted| granted.as_str().to_owned())
        .collect();
    let revoked = sqlx::query!(
        "UPDATE invitations SET revoked_at = now()
          WHERE organization_id = $1 AND invited_by = $2
            AND accepted_at IS NULL AND revoked_at IS NULL
            AND NOT (role = ANY($3))",
        organization_id,
        inviter,
        &still_grantable
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(revoked)
}

/// An open (pending, unexpired) invitation of the caller's organization that the caller may
/// manage (one for a role they may grant), locked. An expired one is gone: resending it
/// would bring back a seat the member limit no longer counts.
async fn open_invitation(
    tx: &mut sqlx::PgConnection,
    by: &Membership,
    invitation_id: Uuid,
) -> Result<(String, Role)> {
    by.require(Action::InviteMember)?;
    let row = sqlx::query!(
        "SELECT email, role FROM invitations
          WHERE id = $1 AND organization_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
            AND expires_at > now()
          FOR UPDATE",
        invitation_id,
        by.organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    let role = Role::parse(&row.role)?;
    if !may_grant(by.role, role) {
        return Err(Error::Forbidden);
    }
    Ok((row.email, role))
}

/// Revokes a pending invitation: its link stops working at once.
pub async fn revoke_invitation(
    platform: &Platform,
    by: &Membership,
    invitation_id: Uuid,
    ip: Option<IpAddr>,
) -> Result<()> {
    let mut tx = platform.db.begin().await?;
    let (email, role) = open_invitation(&mut tx, by, invitation_id).await?;
    sqlx::query!(
        "UPDATE invitations SET revoked_at = now() WHERE id = $1",
        invitation_id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("member.invitation_revoked", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(email)
            .details(serde_json::json!({ "role": role }))
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a pending invitation again with a new link, valid for another 7 days; the old
/// link stops working. The caller becomes its inviter.
pub async fn resend_invitation(
    platform: &Platform,
    by: &Membership,
    invitation_id: Uuid,
    ip: Option<IpAddr>,
) -> Result<(Invitation, String)> {
    let mut tx = platform.db.begin().await?;
    let (email, role) = open_invitation(&mut tx, by, invitation_id).await?;
    let token = random_token();
    let expires_at = sqlx::query_scalar!(
        "UPDATE invitations SET token_hash = $2, invited_by = $3, expires_at = $4
          WHERE id = $1 RETURNING expires_at",
        invitation_id,
        hash_token(&token),
        by.user_id,
        Utc::now() + invitation_lifetime()?,
    )
    .fetch_one(&mut *tx)
    .await?;
    let email = Email::parse(&email)?;
    mail_invitation(platform, &mut tx, by.organization_id, &email, role, &token).await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("member.invitation_resent", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(email.to_string())
            .details(serde_json::json!({ "role": role }))
            .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok((
        Invitation {
            id: invitation_id,
            email: email.to_string(),
            role,
            expires_at,
        },
        token,
    ))
}

fn invitation_lifetime() -> Result<chrono::Duration> {
    chrono::Duration::from_std(INVITATION_LIFETIME).map_err(|e| Error::Internal(e.to_string()))
}

/// Mails the invitation link.
async fn mail_invitation(
    platform: &Platform,
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    email: &Email,
    role: Role,
    token: &str,
) -> Result<()> {
    let organization = sqlx::query_scalar!(
        "SELECT name FROM organizations WHERE id = $1",
        organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let link = platform.link(&format!("/invitations/accept?token={token}"));
    crate::infra::mail::send(
        tx,
        &crate::infra::mail::Message {
            to: email.clone(),
            subject: format!("You are invited to {organization} on Slipway"),
            body: format!(
                "You have been invited to join {organization} as {role}.\n\nAccept within 7 days:\n\n{link}\n"
            ),
        },
    )
    .await
}

/// The number of owners, locked so two concurrent demotions cannot both pass the check.
///
/// Lock order: every change of an organization's members (roles, removals, transfers,
/// invitations, acceptances, account and organization deletions) takes the organization's
/// row first ([`lock_for_limits`], or `FOR SHARE` where only its existence matters), then
/// member rows; changes that cross wait for each other instead of deadlocking.
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

/// The caller as they are now, read under the organization's lock: a role lowered, or a
/// membership ended, by a change that went just before this one counts (every member
/// change takes that lock first, so none can slip in after this read).
async fn caller_now(tx: &mut sqlx::PgConnection, by: &Membership) -> Result<Membership> {
    match role_of(tx, by.organization_id, by.user_id).await {
        Ok(role) => Ok(Membership { role, ..*by }),
        Err(Error::NotFound) => Err(Error::Forbidden),
        Err(other) => Err(other),
    }
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
    lock_for_limits(&mut tx, by.organization_id).await?;
    let by = &caller_now(&mut tx, by).await?;
    by.require(Action::ChangeRole)?;
    let current = role_of(&mut tx, by.organization_id, user_id).await?;
    if current > by.role || !may_grant(by.role, role) {
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
    if role < current {
        sign_out_of_site_editors(&mut tx, by.organization_id, user_id).await?;
    }
    revoke_invitations_beyond(&mut tx, by.organization_id, user_id, Some(role)).await?;
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

/// Hands the caller's ownership to another member in one decision: they become an owner and
/// the caller an admin. Both rows are locked in user-id order, so two transfers that cross
/// cannot deadlock, and one that lost its owner's role while waiting is refused.
pub async fn transfer_ownership(
    platform: &Platform,
    by: &Membership,
    to: Uuid,
    ip: Option<IpAddr>,
) -> Result<()> {
    by.require(Action::TransferOwnership)?;
    if to == by.user_id {
        return Err(Error::invalid(
            "member",
            "Choose another member to hand the organization to.",
        ));
    }
    let mut tx = platform.db.begin().await?;
    lock_for_limits(&mut tx, by.organization_id).await?;
    let (mine, theirs) = if by.user_id < to {
        let mine = role_of(&mut tx, by.organization_id, by.user_id).await?;
        (mine, role_of(&mut tx, by.organization_id, to).await)
    } else {
        let theirs = role_of(&mut tx, by.organization_id, to).await;
        (
            role_of(&mut tx, by.organization_id, by.user_id).await?,
            theirs,
        )
    };
    if mine != Role::Owner {
        return Err(Error::Forbidden);
    }
    let theirs = match theirs {
        Err(Error::NotFound) => {
            return Err(Error::invalid(
                "member",
                "That person is not a member of this organization.",
            ));
        }
        other => other?,
    };
    if theirs == Role::Owner {
        return Err(Error::invalid("member", "They are an owner already."));
    }
    sqlx::query!(
        "UPDATE organization_members
            SET role = CASE WHEN user_id = $2 THEN 'owner' ELSE 'admin' END
          WHERE organization_id = $1 AND user_id IN ($2, $3)",
        by.organization_id,
        to,
        by.user_id
    )
    .execute(&mut *tx)
    .await?;
    revoke_invitations_beyond(&mut tx, by.organization_id, by.user_id, Some(Role::Admin)).await?;
    audit::record(
        &mut *tx,
        audit::Entry::new(
            "organization.ownership_transferred",
            Actor::User(by.user_id),
        )
        .organization(by.organization_id)
        .subject_user(to)
        .details(serde_json::json!({ "from": theirs, "to": Role::Owner }))
        .ip(ip),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Queues the member's sign-out from the editors of the organization's sites, in the
/// caller's transaction (so it happens exactly when the change does). Tickets issued up to
/// the next second are refused too: one signed in the same second as the change may carry
/// the old role.
pub(crate) async fn sign_out_of_site_editors(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<()> {
    jobs::enqueue(
        &mut *tx,
        NewJob::new(
            JobKind::EditorSignOut,
            serde_json::json!({
                "organization_id": organization_id,
                "user_id": user_id,
                "issued_before": chrono::Utc::now().timestamp() + 1,
            }),
        ),
    )
    .await?;
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
    lock_for_limits(&mut tx, by.organization_id).await?;
    let by = &caller_now(&mut tx, by).await?;
    if !leaving {
        by.require(Action::RemoveMember)?;
    }
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
    sign_out_of_site_editors(&mut tx, by.organization_id, user_id).await?;
    revoke_invitations_beyond(&mut tx, by.organization_id, user_id, None).await?;
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
