//! The operators' side of the business: the people who run the installation act on any
//! organization's sites, each action with a reason, recorded in the audit log with the
//! operator as its actor and shown to the customer where it concerns them.
//!
//! Every entry point takes an [`Operator`], which only [`Operator::verify`] makes: the
//! user's operator flag is read from the database each time, so a flag taken away takes
//! effect at once.

pub mod detail;
pub mod fleet;
pub mod grace;
pub mod incidents;
pub mod jobs;
pub mod lists;
pub mod log;
pub mod metrics;
pub mod passes;
pub mod plan_requests;
pub mod subscriptions;
pub mod users;

use uuid::Uuid;

use crate::Platform;
use crate::kernel::{Error, Result};
use crate::sites::{self, OPERATOR_PREFIX, Owner, SuspendedBy, suspension_words};
use crate::tenancy::audit::Actor;
use crate::tenancy::{Membership, Role};

/// A user checked to be a platform operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub user_id: Uuid,
    pub email: String,
}

impl Operator {
    /// The user, if they are an operator now (and not disabled); `Forbidden` otherwise (or
    /// if there is no such user).
    pub async fn verify(platform: &Platform, user_id: Uuid) -> Result<Self> {
        // A disabled operator is no operator.
        let row = sqlx::query!(
            r#"SELECT email, is_operator AND disabled_at IS NULL AS "is_operator!"
                 FROM users WHERE id = $1"#,
            user_id
        )
        .fetch_optional(&platform.db)
        .await?;
        match row {
            Some(row) if row.is_operator => Ok(Self {
                user_id,
                email: row.email,
            }),
            _ => Err(Error::Forbidden),
        }
    }

    /// This operator as the audit log records an action of theirs.
    pub(crate) fn actor(&self) -> Actor {
        Actor::Operator(self.user_id)
    }

    /// This operator acting for `reason`, as the audit log records it.
    fn acting<'a>(&self, reason: &'a Reason) -> SuspendedBy<'a> {
        SuspendedBy {
            actor: self.actor(),
            reason: reason.as_str(),
        }
    }

    /// What an administrator of the organization sees, for the operator's reading of it
    /// through the customers' own read functions. Never used to act: actions are the
    /// functions of this module, which record the operator as their actor.
    fn reading(&self, organization_id: Uuid) -> Membership {
        Membership {
            organization_id,
            user_id: self.user_id,
            role: Role::Admin,
        }
    }

    /// The operator with this email (the command line names its operator).
    pub async fn by_email(platform: &Platform, email: &str) -> Result<Self> {
        if email.chars().any(char::is_control) {
            return Err(Error::Forbidden);
        }
        let user_id = sqlx::query_scalar!(
            "SELECT id FROM users WHERE email = $1",
            email.trim().to_lowercase()
        )
        .fetch_optional(&platform.db)
        .await?
        .ok_or(Error::Forbidden)?;
        Self::verify(platform, user_id).await
    }
}

/// Why an operator acts: required, and shown to the customer where it concerns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Self> {
        let reason = raw.trim();
        let length = reason.chars().count();
        if !(3..=500).contains(&length) || reason.chars().any(char::is_control) {
            return Err(Error::invalid(
                "reason",
                "Say why, in a few words (3 to 500 characters, one line).",
            ));
        }
        Ok(Self(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `slug` could name an organization or a site (lowercase letters, digits and
/// hyphens): anything else names nothing, and never reaches the database (a NUL byte
/// there is an error, not a miss).
pub(crate) fn plausible_slug(slug: &str) -> bool {
    (1..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A live site of any organization, by slug.
pub async fn site_by_slug(platform: &Platform, _by: &Operator, slug: &str) -> Result<Uuid> {
    if !plausible_slug(slug.trim()) {
        return Err(Error::NotFound);
    }
    sqlx::query_scalar!(
        "SELECT id FROM sites WHERE slug = $1 AND status <> 'deleted'",
        slug.trim()
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)
}

/// Suspends any organization's site: visitors get the suspended page (503), its container
/// and data are kept, and its members see `reason` on the site's page. A suspension of
/// billing's becomes the operator's (paying does not lift it). One atomic update: of
/// operators suspending at once, one does; the others are told it already is.
pub async fn suspend_site(
    platform: &Platform,
    by: &Operator,
    site_id: Uuid,
    reason: &Reason,
) -> Result<()> {
    let recorded = format!("{OPERATOR_PREFIX}{}", reason.as_str());
    if !sites::suspend_as(platform, site_id, &recorded, true, by.acting(reason)).await? {
        return Err(refusal(platform, site_id, "suspended").await?);
    }
    tracing::info!(site = %site_id, operator = %by.email, "site suspended by an operator");
    Ok(())
}

/// Retries a site whose last pass failed, now, instead of after its backoff: a deployment
/// (reason `retry`) requested by the operator, run by the reconciler at once. Recorded in
/// the site's organization's audit log (`site.retry`) with the operator and the reason
/// (which its members read). Only a failed site no pass is running or coming for: the
/// site's claim is taken for the transaction (a pass holds it while it runs), and one
/// update of the row decides (a failure counts `failures` up, a retry or a new desired
/// state sets it to 0), so of operators retrying at once, one does; the others are told
/// it is already being retried.
pub async fn retry_provisioning(
    platform: &Platform,
    by: &Operator,
    site_id: Uuid,
    reason: &Reason,
) -> Result<()> {
    let mut tx = platform.db.begin().await?;
    passes::claim(&mut tx, site_id).await?;
    let site = sqlx::query!(
        "UPDATE sites SET failures = 0, next_attempt_at = now(), updated_at = now()
          WHERE id = $1 AND status = 'failed' AND desired_state <> 'deleted'
            AND failures > 0 AND next_attempt_at > now()
          RETURNING organization_id, slug, generation",
        site_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(site) = site else {
        return Err(passes::refusal(&mut tx, site_id, |status| {
            if status == "failed" {
                Error::Conflict(
                    "This site is already being retried: the reconciler runs it within seconds."
                        .into(),
                )
            } else {
                Error::Conflict(format!(
                    "This site has not failed (it is {status}): there is nothing to retry."
                ))
            }
        })
        .await?);
    };
    passes::requested(
        &mut tx,
        by,
        (site_id, site.organization_id, &site.slug, site.generation),
        (sites::DeploymentReason::Retry, "site.retry"),
        reason,
    )
    .await?;
    // Wakes the reconcilers at commit (the trigger on `sites` fires for new desired states).
    sqlx::query!(
        "SELECT pg_notify($1, $2)",
        crate::infra::notify::CHANNEL_SITES,
        site_id.to_string()
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(site = %site_id, operator = %by.email, "failed site retried by an operator");
    Ok(())
}

/// Lifts a suspension that is not billing's (billing lifts its own when the organization
/// pays), then has billing judge the organization again: a site of an organization that
/// does not pay is suspended again, by billing.
pub async fn resume_site(
    platform: &Platform,
    by: &Operator,
    site_id: Uuid,
    reason: &Reason,
) -> Result<()> {
    let with_organization = sqlx::query_scalar!(
        "SELECT suspended_with_organization FROM sites WHERE id = $1",
        site_id
    )
    .fetch_optional(&platform.db)
    .await?
    .unwrap_or(false);
    if with_organization {
        return Err(Error::Conflict(
            "This site is suspended with its organization: resume the organization.".into(),
        ));
    }
    if !sites::resume_as(platform, site_id, Owner::NotBilling, by.acting(reason)).await? {
        return Err(refusal(platform, site_id, "resumed").await?);
    }
    tracing::info!(site = %site_id, operator = %by.email, "site resumed by an operator");
    let organization_id =
        sqlx::query_scalar!("SELECT organization_id FROM sites WHERE id = $1", site_id)
            .fetch_one(&platform.db)
            .await?;
    crate::billing::dunning::enforce(platform, organization_id).await?;
    Ok(())
}

/// Suspends a whole organization: every live site of it is suspended with `reason` (a
/// suspension of billing's becomes the operator's), and it can create no site until it is
/// resumed. One transaction on the organization's locked row: a site being created at the
/// same moment is either refused or already there to be suspended, and of operators
/// suspending (or resuming) at once, one does. Returns how many sites this suspended.
pub async fn suspend_organization(
    platform: &Platform,
    by: &Operator,
    organization_id: Uuid,
    reason: &Reason,
) -> Result<u64> {
    let mut tx = platform.db.begin().await?;
    let slug = sqlx::query_scalar!(
        "UPDATE organizations SET suspended_at = now(), suspended_reason = $2
          WHERE id = $1 AND suspended_at IS NULL RETURNING slug",
        organization_id,
        reason.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(slug) = slug else {
        return Err(organization_refusal(&mut tx, organization_id).await?);
    };
    audit_organization(
        &mut tx,
        "organization.suspend",
        by,
        organization_id,
        &slug,
        reason,
    )
    .await?;
    let recorded = format!("{OPERATOR_PREFIX}{}", reason.as_str());
    let swept = sqlx::query!(
        "UPDATE sites SET suspended_at = coalesce(suspended_at, now()), suspended_reason = $2,
                suspended_with_organization = true, updated_at = now()
          WHERE organization_id = $1 AND status <> 'deleted'
            AND (suspended_at IS NULL OR starts_with(coalesce(suspended_reason, ''), $3))
          RETURNING id, slug",
        organization_id,
        recorded,
        crate::sites::BILLING_PREFIX
    )
    .fetch_all(&mut *tx)
    .await?;
    let swept: Vec<(Uuid, String)> = swept.into_iter().map(|s| (s.id, s.slug)).collect();
    audit_sites(
        &mut tx,
        "site.suspend",
        organization_id,
        &swept,
        by.acting(reason),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(organization = %organization_id, operator = %by.email, sites = swept.len(), "organization suspended by an operator");
    Ok(swept.len() as u64)
}

/// Lifts an organization's suspension: it may create sites again, and the sites its
/// suspension suspended serve again (a site an operator suspended on its own stays
/// suspended), in one transaction. Billing then judges the organization again (an unpaid
/// one's sites are suspended by billing). Returns how many sites this resumed.
pub async fn resume_organization(
    platform: &Platform,
    by: &Operator,
    organization_id: Uuid,
    reason: &Reason,
) -> Result<u64> {
    let mut tx = platform.db.begin().await?;
    // Locked while it is read: of operators resuming at once, the others read it resumed.
    let row = sqlx::query!(
        "SELECT slug, suspended_at IS NOT NULL AS \"suspended!\" FROM organizations
          WHERE id = $1 FOR UPDATE",
        organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if !row.suspended {
        return Err(Error::Conflict(
            "This organization is not suspended.".into(),
        ));
    }
    sqlx::query!(
        "UPDATE organizations SET suspended_at = NULL, suspended_reason = NULL WHERE id = $1",
        organization_id
    )
    .execute(&mut *tx)
    .await?;
    audit_organization(
        &mut tx,
        "organization.resume",
        by,
        organization_id,
        &row.slug,
        reason,
    )
    .await?;
    let lifted = sqlx::query!(
        "UPDATE sites SET suspended_at = NULL, suspended_reason = NULL,
                suspended_with_organization = false, updated_at = now()
          WHERE organization_id = $1 AND suspended_with_organization AND status <> 'deleted'
          RETURNING id, slug",
        organization_id
    )
    .fetch_all(&mut *tx)
    .await?;
    let lifted: Vec<(Uuid, String)> = lifted.into_iter().map(|s| (s.id, s.slug)).collect();
    audit_sites(
        &mut tx,
        "site.resume",
        organization_id,
        &lifted,
        by.acting(reason),
    )
    .await?;
    tx.commit().await?;
    crate::billing::dunning::enforce(platform, organization_id).await?;
    tracing::info!(organization = %organization_id, operator = %by.email, sites = lifted.len(), "organization resumed by an operator");
    Ok(lifted.len() as u64)
}

/// One audit entry per site an organization's suspension or resumption changed.
async fn audit_sites(
    tx: &mut sqlx::PgConnection,
    action: &'static str,
    organization_id: Uuid,
    changed: &[(Uuid, String)],
    by: SuspendedBy<'_>,
) -> Result<()> {
    for (site_id, slug) in changed {
        sites::audit_suspension(&mut *tx, action, *site_id, organization_id, slug, by).await?;
    }
    Ok(())
}

async fn audit_organization(
    tx: &mut sqlx::PgConnection,
    action: &'static str,
    by: &Operator,
    organization_id: Uuid,
    slug: &str,
    reason: &Reason,
) -> Result<()> {
    crate::tenancy::audit::record(
        &mut *tx,
        crate::tenancy::audit::Entry::new(action, by.actor())
            .organization(organization_id)
            .subject(format!("organization:{slug}"))
            .details(serde_json::json!({ "reason": reason.as_str(), "by_operator": true })),
    )
    .await
}

/// Why an organization's suspension changed nothing, read in its transaction.
async fn organization_refusal(tx: &mut sqlx::PgConnection, organization_id: Uuid) -> Result<Error> {
    let reason = sqlx::query_scalar!(
        "SELECT suspended_reason FROM organizations WHERE id = $1",
        organization_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match reason {
        None => Error::NotFound,
        Some(reason) => Error::Conflict(format!(
            "This organization is already suspended ({}).",
            reason.unwrap_or_default()
        )),
    })
}

/// Local billing mode: puts an organization on a plan with a reason (limits apply at once;
/// sites over a smaller plan's limit are suspended by billing, the newest first). Refused
/// with Stripe, where plans follow the subscription.
pub async fn assign_plan(
    platform: &Platform,
    by: &Operator,
    organization_id: Uuid,
    plan_id: &str,
    reason: &Reason,
) -> Result<crate::billing::Enforced> {
    let slug = sqlx::query_scalar!(
        "SELECT slug FROM organizations WHERE id = $1",
        organization_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    crate::billing::local::set_plan_as(
        platform,
        &slug,
        plan_id.trim(),
        by.actor(),
        Some(reason.as_str()),
    )
    .await
}

/// An organization of any customer, by slug.
pub async fn organization_by_slug(platform: &Platform, _by: &Operator, slug: &str) -> Result<Uuid> {
    if !plausible_slug(slug.trim()) {
        return Err(Error::NotFound);
    }
    sqlx::query_scalar!("SELECT id FROM organizations WHERE slug = $1", slug.trim())
        .fetch_optional(&platform.db)
        .await?
        .ok_or(Error::NotFound)
}

/// Why a suspension or resumption changed nothing, read after the fact.
async fn refusal(platform: &Platform, site_id: Uuid, wanted: &str) -> Result<Error> {
    let site = sqlx::query!(
        "SELECT status, suspended_reason FROM sites WHERE id = $1",
        site_id
    )
    .fetch_optional(&platform.db)
    .await?;
    Ok(match site {
        None => Error::NotFound,
        Some(site) if site.status == "deleted" => Error::NotFound,
        Some(site) => match (wanted, site.suspended_reason) {
            ("suspended", Some(reason)) => Error::invalid(
                "site",
                format!(
                    "This site is already suspended ({}).",
                    suspension_words(&reason)
                ),
            ),
            (_, Some(reason)) => Error::invalid(
                "site",
                format!(
                    "Only billing lifts this suspension ({}): it ends when the organization pays.",
                    suspension_words(&reason)
                ),
            ),
            _ => Error::invalid("site", "This site is not suspended."),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slug_shaped_text_is_looked_up() {
        assert!(plausible_slug("acme-rockets-2"));
        for odd in ["", "Acme", "a\0b", "a b", "ünï", &"a".repeat(65)] {
            assert!(!plausible_slug(odd), "{odd:?}");
        }
    }

    #[test]
    fn a_reason_is_a_few_words_on_one_line() {
        assert_eq!(
            Reason::parse("  abuse report 42 ").unwrap().as_str(),
            "abuse report 42"
        );
        for bad in ["", "  ", "no", "two\nlines", &"x".repeat(501)] {
            assert!(Reason::parse(bad).is_err(), "{bad:?}");
        }
    }
}
