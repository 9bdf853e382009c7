//! Deleting an organization (its owners) and an account (its person): what goes, what is
//! kept for the record, what ends with it (a Stripe subscription, canceled through a job),
//! and what refuses to go (a team that would be left without an owner). Above `tenancy`,
//! `identity`, `sites` and `billing`, which it uses.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Platform;
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::{Action, Membership, Role};

/// Deletes the organization (owners only, `confirm` must be its slug): its sites are
/// deleted by the reconciler, every member loses access at once, its API keys and open
/// invitations stop working, and its subscription is canceled in Stripe by a job queued in
/// the same transaction (at once, the rest of the period not refunded; the usage not billed
/// yet is invoiced). Refused while a Stripe checkout is open: it could start a subscription
/// after the deletion.
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
    let billing = OpenBilling::read(&mut tx, by.organization_id).await?;
    billing.refuse_open_checkout("This organization")?;
    if let Some(subscription) = &billing.subscription {
        crate::billing::subscriptions::queue_cancellation(
            &mut *tx,
            by.organization_id,
            subscription,
        )
        .await?;
    }
    let sites = remove(
        &mut tx,
        by.organization_id,
        Actor::User(by.user_id),
        ip,
        billing.subscription.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(sites)
}

/// What of the organization's billing is still running, read in the deletion's
/// transaction. It holds the organization's row, as applying a subscription from Stripe
/// does: a subscription applied before the deletion is canceled by it, and one applied
/// after finds the organization deleted and is canceled then.
struct OpenBilling {
    /// A Stripe subscription that has not ended.
    subscription: Option<String>,
    /// The latest expiry of its unfinished Stripe checkouts.
    checkout_open_until: Option<DateTime<Utc>>,
}

impl OpenBilling {
    async fn read(tx: &mut sqlx::PgConnection, organization_id: Uuid) -> Result<Self> {
        Ok(sqlx::query_as!(
            OpenBilling,
            r#"SELECT (SELECT stripe_subscription_id FROM billing_accounts
                        WHERE organization_id = $1
                          AND coalesce(status, '') NOT IN ('canceled', 'incomplete_expired')) AS subscription,
                      (SELECT max(expires_at) FROM checkout_sessions
                        WHERE organization_id = $1 AND completed_at IS NULL
                          AND expires_at > now()) AS checkout_open_until"#,
            organization_id
        )
        .fetch_one(&mut *tx)
        .await?)
    }

    /// A checkout still open could start a subscription after the deletion.
    fn refuse_open_checkout(&self, which: &str) -> Result<()> {
        match self.checkout_open_until {
            Some(until) => Err(Error::Conflict(format!(
                "{which} has a Stripe checkout open until {} UTC: it could still start a subscription. Try again after that.",
                until.format("%Y-%m-%d %H:%M")
            ))),
            None => Ok(()),
        }
    }
}

/// Inside the caller's transaction, which holds the organization's row locked: asks for
/// its sites to be deleted, removes every member, and marks it deleted. Returns the slugs
/// of the sites being deleted.
async fn remove(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    actor: Actor,
    ip: Option<IpAddr>,
    subscription_canceled: Option<&str>,
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
            .details(serde_json::json!({
                "sites_deleted": sites,
                "subscription_canceled": subscription_canceled,
            }))
            .ip(ip),
    )
    .await?;
    Ok(sites)
}

/// Deletes the account after checking the password. Each organization the person owns
/// alone goes with it, unless it has other members (hand it on first) or a subscription
/// (delete the organization first, which cancels it, or cancel it): then nothing is
/// deleted and the message says which and what to do.
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
            // The organization stays; the person leaves it, and its sites' editors.
            crate::tenancy::members::sign_out_of_site_editors(&mut tx, organization.id, user_id)
                .await?;
            continue;
        }
        if members.others > 0 {
            return Err(Error::Conflict(format!(
                "You are the only owner of “{}”, which has other members. On its Team page, hand ownership to one of them (or remove them), then delete your account.",
                organization.name
            )));
        }
        let which = format!("“{}”", organization.name);
        let billing = OpenBilling::read(&mut tx, organization.id).await?;
        if billing.subscription.is_some() {
            return Err(Error::Conflict(format!(
                "{which} has a subscription. Delete the organization from its Settings page (which cancels the subscription), or cancel it under Billing, then delete your account."
            )));
        }
        billing.refuse_open_checkout(&which)?;
        remove(&mut tx, organization.id, Actor::User(user_id), ip, None).await?;
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
