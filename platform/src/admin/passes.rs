//! Operator actions that give a site a new generation for the reconciler: a forced
//! reconcile (the whole pass again: schema and role, image, volume, container and its
//! limits, whatever drifted in ways the drift check does not see), and a deletion (the
//! operator types the site's slug to confirm). Each is a deployment requested by the
//! operator, recorded in the site's organization's audit log with the reason, which its
//! members read; each is one update of the site's row, so of operators acting at once, one
//! does and the others are told why not.

use uuid::Uuid;

use super::{Operator, Reason};
use crate::Platform;
use crate::kernel::{Error, Result};
use crate::sites::{self, DeploymentReason};
use crate::tenancy::audit;

/// Runs the site's whole reconcile pass again, now: a `reconcile` deployment requested by
/// the operator (for a stopped site, the pass makes sure it is stopped). Only for a site
/// whose current generation the reconciler has reached (one with a change waiting, or a
/// failure to retry, is refused: a pass is already coming, or "Retry now" is the action),
/// not being deleted, and not while a pass holds the site's claim.
pub async fn force_reconcile(
    platform: &Platform,
    by: &Operator,
    site_id: Uuid,
    reason: &Reason,
) -> Result<()> {
    let mut tx = platform.db.begin().await?;
    // Not while a pass runs: one that failed or waited would put this one behind its
    // backoff.
    claim(&mut tx, site_id).await?;
    let site = sqlx::query!(
        "UPDATE sites SET generation = generation + 1, failures = 0, next_attempt_at = now(),
                          updated_at = now()
          WHERE id = $1 AND status NOT IN ('deleted', 'failed') AND desired_state <> 'deleted'
            AND observed_generation >= generation
          RETURNING organization_id, slug, generation",
        site_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(site) = site else {
        return Err(refusal(&mut tx, site_id, |status| {
            if status == "failed" {
                Error::Conflict(
                    "This site's last pass failed: retry it instead (\"Retry now\").".into(),
                )
            } else {
                Error::Conflict(
                    "A pass is already due for this site: it has a change the reconciler has \
                     not finished."
                        .into(),
                )
            }
        })
        .await?);
    };
    requested(
        &mut tx,
        by,
        (site_id, site.organization_id, &site.slug, site.generation),
        (DeploymentReason::Reconcile, "site.reconcile"),
        reason,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(site = %site_id, operator = %by.email, "reconcile forced by an operator");
    Ok(())
}

/// Deletes any organization's site with its container, volume, schema and role, once
/// `confirm` is its slug: a `delete` deployment requested by the operator. The owners are
/// mailed why.
pub async fn delete_site(
    platform: &Platform,
    by: &Operator,
    site_id: Uuid,
    confirm: &str,
    reason: &Reason,
) -> Result<()> {
    let mut tx = platform.db.begin().await?;
    // Not while a pass runs: one that failed would put the deletion behind its backoff.
    claim(&mut tx, site_id).await?;
    let site = sqlx::query!(
        "SELECT organization_id, slug, desired_state FROM sites
          WHERE id = $1 AND status <> 'deleted' FOR NO KEY UPDATE",
        site_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if confirm.trim() != site.slug {
        return Err(Error::invalid(
            "confirm",
            format!(
                "Type {} to confirm that this site and its data go away.",
                site.slug
            ),
        ));
    }
    if site.desired_state == "deleted" {
        return Err(Error::Conflict("This site is being deleted.".into()));
    }
    let generation = sqlx::query_scalar!(
        "UPDATE sites SET desired_state = 'deleted', generation = generation + 1,
                          failures = 0, next_attempt_at = now(), updated_at = now()
          WHERE id = $1 RETURNING generation",
        site_id
    )
    .fetch_one(&mut *tx)
    .await?;
    requested(
        &mut tx,
        by,
        (site_id, site.organization_id, &site.slug, generation),
        (DeploymentReason::Delete, "site.delete"),
        reason,
    )
    .await?;
    crate::billing::dunning::mail_owners(
        &mut tx,
        site.organization_id,
        &format!("Your site {} was deleted", site.slug),
        &format!(
            "The operators of this service deleted your site {} ({}). Its data goes away \
             with it. Reply to this mail if you think this is a mistake.",
            site.slug,
            reason.as_str()
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(site = %site_id, operator = %by.email, "site deleted by an operator");
    Ok(())
}

/// The deployment of the site's generation, requested by the operator, and its audit entry
/// (`action`) with the reason.
pub(super) async fn requested(
    tx: &mut sqlx::PgConnection,
    by: &Operator,
    (site_id, organization_id, slug, generation): (Uuid, Uuid, &str, i64),
    (deployment, action): (DeploymentReason, &'static str),
    reason: &Reason,
) -> Result<()> {
    sites::insert_deployment(tx, site_id, generation, deployment, Some(by.user_id)).await?;
    audit::record(
        &mut *tx,
        audit::Entry::new(action, by.actor())
            .organization(organization_id)
            .subject(format!("site:{slug}"))
            .details(serde_json::json!({
                "site_id": site_id,
                "reason": reason.as_str(),
                "by_operator": true,
            })),
    )
    .await
}

/// How long an operator's action waits for a reconcile pass on the site to end.
const PASS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Takes the site's claim for the transaction (a reconcile pass holds it while it runs,
/// usually milliseconds: waited for up to [`PASS_WAIT`]), or says the reconciler is on the
/// site.
pub(super) async fn claim(tx: &mut sqlx::PgConnection, site_id: Uuid) -> Result<()> {
    if crate::provision::claim_site_within(tx, site_id, PASS_WAIT).await? {
        Ok(())
    } else {
        Err(Error::Conflict(
            "The reconciler is working on this site right now: look again in a moment.".into(),
        ))
    }
}

/// Why an operator's action changed nothing on the site, read in its transaction: it is
/// gone, or being deleted, or what `otherwise` says of its status.
pub(super) async fn refusal(
    tx: &mut sqlx::PgConnection,
    site_id: Uuid,
    otherwise: impl FnOnce(&str) -> Error,
) -> Result<Error> {
    let site = sqlx::query!(
        "SELECT status, desired_state FROM sites WHERE id = $1",
        site_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match site {
        None => Error::NotFound,
        Some(site) if site.status == "deleted" => Error::NotFound,
        Some(site) if site.desired_state == "deleted" => {
            Error::Conflict("This site is being deleted.".into())
        }
        Some(site) => otherwise(&site.status),
    })
}
