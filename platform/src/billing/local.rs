//! Local billing mode: without a Stripe key an operator assigns plans.

use uuid::Uuid;

use super::dunning::{Enforced, enforce};
use crate::Platform;
use crate::catalog::plans::Plan;
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};

/// Local billing mode: the operator puts an organization on a plan (`slipway admin
/// set-plan`). Limits apply at once; sites over a smaller plan's limit are suspended, the
/// newest first.
pub async fn set_plan(
    platform: &Platform,
    organization_slug: &str,
    plan_id: &str,
) -> Result<Enforced> {
    set_plan_as(platform, organization_slug, plan_id, Actor::System, None).await
}

/// [`set_plan`], recorded as `actor`'s with `reason` (an operator in the panel).
pub(crate) async fn set_plan_as(
    platform: &Platform,
    organization_slug: &str,
    plan_id: &str,
    actor: Actor,
    reason: Option<&str>,
) -> Result<Enforced> {
    ensure_local(platform)?;
    let plan = known_plan(platform, plan_id)?;
    let mut tx = platform.db.begin().await?;
    let org = sqlx::query!(
        "SELECT id, plan_id FROM organizations WHERE slug = $1 FOR UPDATE",
        organization_slug
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        Error::invalid(
            "organization",
            format!("There is no organization \"{organization_slug}\"."),
        )
    })?;
    let changed = change_plan(&mut tx, org.id, &org.plan_id, plan, actor, reason).await?;
    tx.commit().await?;
    after_change(platform, org.id, changed).await
}

/// Refuses with Stripe configured, where plans follow the subscription.
pub(super) fn ensure_local(platform: &Platform) -> Result<()> {
    if platform.billing.is_local() {
        Ok(())
    } else {
        Err(Error::Conflict(
            "Stripe is configured: plans follow the organization's subscription. Change it in Stripe, or remove billing.stripe_secret_key to bill elsewhere.".to_owned(),
        ))
    }
}

/// The catalog's plan `plan_id`, or a message naming the plans there are.
pub(super) fn known_plan<'p>(platform: &'p Platform, plan_id: &str) -> Result<&'p Plan> {
    platform.plan(plan_id).ok_or_else(|| {
        let known: Vec<&str> = platform
            .catalog
            .plans()
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        Error::invalid(
            "plan",
            format!(
                "There is no plan \"{plan_id}\" (plans: {}).",
                known.join(", ")
            ),
        )
    })
}

/// Puts the organization (locked by the caller, on `from` now) on `plan` in the caller's
/// transaction, audited as `actor`'s. Whether it changed anything.
pub(super) async fn change_plan(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    from: &str,
    plan: &Plan,
    actor: Actor,
    reason: Option<&str>,
) -> Result<bool> {
    if from == plan.id.as_str() {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE organizations SET plan_id = $2 WHERE id = $1",
        organization_id,
        plan.id.as_str()
    )
    .execute(&mut *tx)
    .await?;
    if plan.monthly_cents.0 > 0 {
        super::revenue::converted(&mut *tx, organization_id).await?;
    }
    audit::record(
        &mut *tx,
        audit::Entry::new("billing.plan_changed", actor)
            .organization(organization_id)
            .subject(format!("plan:{}", plan.id))
            .details(serde_json::json!({
                "from": from,
                "by": "operator",
                "reason": reason,
            })),
    )
    .await?;
    Ok(true)
}

/// After [`change_plan`] committed: the sites get the new limits, and those over the
/// plan's site limit are suspended (or resumed under a larger one).
pub(super) async fn after_change(
    platform: &Platform,
    organization_id: Uuid,
    changed: bool,
) -> Result<Enforced> {
    if changed {
        crate::sites::apply_plan(platform, organization_id).await?;
    }
    enforce(platform, organization_id).await
}
