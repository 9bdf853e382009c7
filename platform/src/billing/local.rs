//! Local billing mode: without a Stripe key an operator assigns plans.

use super::dunning::{Enforced, enforce};
use crate::Platform;
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
    if !platform.billing.is_local() {
        return Err(Error::Conflict(
            "Stripe is configured: plans follow the organization's subscription. Change it in Stripe, or remove billing.stripe_secret_key to bill elsewhere.".to_owned(),
        ));
    }
    let plan = platform.plan(plan_id).ok_or_else(|| {
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
    })?;
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
    if org.plan_id != plan.id.as_str() {
        sqlx::query!(
            "UPDATE organizations SET plan_id = $2 WHERE id = $1",
            org.id,
            plan.id.as_str()
        )
        .execute(&mut *tx)
        .await?;
        if plan.monthly_cents.0 > 0 {
            super::revenue::converted(&mut *tx, org.id).await?;
        }
        audit::record(
            &mut *tx,
            audit::Entry::new("billing.plan_changed", actor)
                .organization(org.id)
                .subject(format!("plan:{}", plan.id))
                .details(serde_json::json!({
                    "from": org.plan_id,
                    "by": "operator",
                    "reason": reason,
                })),
        )
        .await?;
    }
    tx.commit().await?;
    if org.plan_id != plan.id.as_str() {
        crate::sites::apply_plan(platform, org.id).await?;
    }
    enforce(platform, org.id).await
}
