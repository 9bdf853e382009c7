//! Deleting an organization (its owners) and an account (its person): what goes, what is
//! kept for the record, and what refuses to go (a team that would be left without an
//! owner, a subscription that would keep billing). Above `tenancy`, `identity` and
//! `sites`, which it uses.

use std::net::IpAddr;

use uuid::Uuid;

use crate::Platform;
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::{Action, Membership, Role};

/// Deletes the organization (owners only, `confirm` must be its slug): its sites are
/// deleted by the reconciler, every member loses access at once, its API keys and open
/// invitations stop working. Refused while it has a subscription: Slipway cannot cancel a
/// Stripe subscription for it yet, and deleting would leave it billing.
pub async fn delete_organization(
    platform: &Platform,
    by: &Membership,
    confirm: &str,
    ip: Option<IpAddr>,
) -> Result<Vec<String>> {
    by.require(Action::DeleteOrganization)?;
    let mut tx = platform.db.begin().await?;
    let slug = sqlx::query_scalar!(
        "SELECT slug FROM organizations WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE",
        by.organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if confirm.trim() != slug {
        return Err(Error::invalid(
            "confirm",
            format!(
                "Type {slug} to confirm that this organization, its sites and their data go away."
            ),
        ));
    }
    // The caller may have been demoted or removed since their membership was read.
    let role = sqlx::query_scalar!(
        "SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2 FOR SHARE",
        by.organization_id,
        by.user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if role.as_deref() != Some(Role::Owner.as_str()) {
        return Err(Error::Forbidden);
    }
    refuse_while_subscribed(&mut tx, by.organization_id, None).await?;
    let sites = remove(&mut tx, by.organization_id, Actor::User(by.user_id), ip).await?;
    tx.commit().await?;
    Ok(sites)
}

/// Refuses while the organization has a subscription that has not ended.
async fn refuse_while_subscribed(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    name: Option<&str>,
) -> Result<()> {
    let subscribed = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM billing_accounts
                           WHERE organization_id = $1 AND stripe_subscription_id IS NOT NULL
                             AND coalesce(status, '') NOT IN ('canceled', 'incomplete_expired')) AS "subscribed!""#,
        organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let which = name.map_or_else(|| "This organization".to_owned(), |n| format!("“{n}”"));
    if subscribed {
        return Err(Error::Conflict(format!(
            "{which} has a subscription. Cancel it under Billing first; once it has ended, it can be deleted."
        )));
    }
    // A checkout still open could start a subscription after the deletion.
    let checkout_open_until = sqlx::query_scalar!(
        "SELECT max(expires_at) FROM checkout_sessions
          WHERE organization_id = $1 AND completed_at IS NULL AND expires_at > now()",
        organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(until) = checkout_open_until {
        return Err(Error::Conflict(format!(
            "{which} has a Stripe checkout open until {} UTC: it could still start a subscription. Try again after that.",
            until.format("%Y-%m-%d %H:%M")
        )));
    }
    Ok(())
}

/// Inside the caller's transaction, which holds the organization's row locked: asks for
/// its sites to be deleted, removes every member, and marks it deleted. Returns the slugs
/// of the sites being deleted.
async fn remove(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    actor: Actor,
    ip: Option<IpAddr>,
) -> Result<Vec<String>> {
    let sites =
        crate::sites::delete_all(tx, organization_id, crate::sites::DeploymentReason::Delete)
            .await?;
    sqlx::query!(
        "DELETE FROM organization_members WHERE organization_id = $1",
        organization_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE organization_id = $1",
        organization_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE sessions SET active_organization_id = NULL WHERE active_organization_id = $1",
        organization_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE organizations SET deleted_at = now() WHERE id = $1",
        organization_id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("organization.deleted", actor)
            .organization(organization_id)
            .details(serde_json::json!({ "sites_deleted": sites }))
            .ip(ip),
    )
    .await?;
    Ok(sites)
}

/// Deletes the account after checking the password. Each organization the person owns
/// alone goes with it, unless it has other members (hand it on first) or a subscription
/// (cancel it first): then nothing is deleted and the message says which and what to do.
/// Memberships, sessions and mailed links go; the audit log keeps its entries without the
/// person (their actor becomes empty). Returns the names of the organizations deleted.
pub async fn delete_account(
    platform: &Platform,
    user_id: Uuid,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<Vec<String>> {
    crate::identity::account::check_current_password(platform, user_id, password, ip)
        .await
        .map_err(|e| match e {
            Error::Invalid { message, .. } => Error::invalid("password", message),
            other => other,
        })?;
    let mut tx = platform.db.begin().await?;
    // Every organization it belongs to, locked in id order (as every deletion locks them),
    // then each one's member rows: a demotion, a transfer (which may make it an owner just
    // now) or another owner's deletion racing this one waits, and this decision reads
    // what it left.
    let organizations = sqlx::query!(
        "SELECT o.id, o.name FROM organizations o
           JOIN organization_members m ON m.organization_id = o.id
          WHERE m.user_id = $1 AND o.deleted_at IS NULL
          ORDER BY o.id FOR NO KEY UPDATE OF o",
        user_id
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut deleted = Vec::new();
    for organization in organizations {
        let members = sqlx::query!(
            r#"SELECT coalesce(bool_or(role = 'owner' AND user_id = $2), false) AS "owner!",
                      count(*) FILTER (WHERE role = 'owner' AND user_id <> $2) AS "other_owners!",
                      count(*) FILTER (WHERE user_id <> $2) AS "others!"
                 FROM (SELECT role, user_id FROM organization_members
                        WHERE organization_id = $1 ORDER BY user_id FOR UPDATE) m"#,
            organization.id,
            user_id
        )
        .fetch_one(&mut *tx)
        .await?;
        if !members.owner || members.other_owners > 0 {
            continue;
        }
        if members.others > 0 {
            return Err(Error::Conflict(format!(
                "You are the only owner of “{}”, which has other members. On its Team page, hand ownership to one of them (or remove them), then delete your account.",
                organization.name
            )));
        }
        refuse_while_subscribed(&mut tx, organization.id, Some(&organization.name)).await?;
        remove(&mut tx, organization.id, Actor::User(user_id), ip).await?;
        deleted.push(organization.name);
    }
    audit::record(
        &mut *tx,
        audit::Entry::new("user.deleted", Actor::User(user_id))
            .details(serde_json::json!({ "organizations_deleted": deleted })),
    )
    .await?;
    // Where they acted from is theirs too.
    sqlx::query!(
        "UPDATE audit_log SET ip = NULL WHERE actor_user_id = $1",
        user_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM users WHERE id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(deleted)
}
