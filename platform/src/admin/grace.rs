//! Operators extend an organization's grace period: after its subscription ended, its
//! sites are deleted when the grace period is over, unless it subscribes again. An
//! operator moves that moment later (a customer asked for time to export, a bank
//! transfer is on its way), with a reason its members read in their audit log.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Operator, Reason};
use crate::Platform;
use crate::kernel::{Error, Result};
use crate::tenancy::audit;

/// How far from now a grace period may be extended.
pub const LONGEST_DAYS: i64 = 90;

/// The day a grace period is extended to, as an operator typed it (`YYYY-MM-DD`): it
/// ends at the end of that day, UTC.
pub fn parse_until(raw: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| Error::invalid("until", "Choose the day the grace period ends."))
}

/// Extends the grace period of `organization_id` through `until`: it ends at the midnight
/// after that day (UTC), and its end is queued then. A day that does not extend it (its
/// end is already later), or more than [`LONGEST_DAYS`] days from today, is refused; so
/// is an organization with no grace period running. Under the billing account's row lock:
/// of operators extending to the same day at once, one does, and the others are told it
/// already ends then. The organization's incident about the ending subscription gets the
/// new date, its owners are mailed it, and its audit log records the extension
/// (`billing.grace_extended`) with the operator and the reason.
pub async fn extend_grace(
    platform: &Platform,
    by: &Operator,
    organization_id: Uuid,
    until: NaiveDate,
    reason: &Reason,
) -> Result<DateTime<Utc>> {
    let invalid_day = || Error::invalid("until", "Choose the day the grace period ends.");
    let ends_at = until
        .succ_opt()
        .and_then(|next| next.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .ok_or_else(invalid_day)?;
    let mut tx = platform.db.begin().await?;
    // The billing account's row, locked: the checks below and the update are one decision.
    // Times are the database's, as the job that ends the grace period reads them.
    let no_grace = || {
        Error::Conflict(
            "This organization has no grace period running (its subscription has not ended)."
                .to_owned(),
        )
    };
    let account = sqlx::query!(
        r#"SELECT status, grace_ends_at, coalesce(grace_ends_at <= now(), false) AS "over!",
                  $2::date > (now() AT TIME ZONE 'UTC')::date + $3::int AS "too_far!"
             FROM billing_accounts
            WHERE organization_id = $1
              FOR UPDATE"#,
        organization_id,
        until,
        i32::try_from(LONGEST_DAYS).unwrap_or(i32::MAX)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(account) = account else {
        let known = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1) AS "known!""#,
            organization_id
        )
        .fetch_one(&mut *tx)
        .await?;
        return Err(if known { no_grace() } else { Error::NotFound });
    };
    if account.too_far {
        return Err(Error::invalid(
            "until",
            format!("Extend a grace period by at most {LONGEST_DAYS} days from today."),
        ));
    }
    let previous = match (account.status.as_deref(), account.grace_ends_at) {
        (Some("canceled"), Some(_)) if account.over => {
            return Err(Error::Conflict(
                "This grace period is over: the organization's sites are being deleted.".to_owned(),
            ));
        }
        (Some("canceled"), Some(at)) if at >= ends_at => {
            return Err(Error::Conflict(format!(
                "The grace period already ends {} UTC: choose a later day.",
                at.format("%Y-%m-%d %H:%M")
            )));
        }
        (Some("canceled"), Some(at)) => at,
        (Some("canceled"), None) => {
            return Err(Error::Conflict(
                "This organization's grace period is over: its sites were deleted.".to_owned(),
            ));
        }
        _ => return Err(no_grace()),
    };
    sqlx::query!(
        "UPDATE billing_accounts SET grace_ends_at = $2, updated_at = now()
          WHERE organization_id = $1",
        organization_id,
        ends_at
    )
    .execute(&mut *tx)
    .await?;
    crate::billing::dunning::schedule_grace_period_end(&mut tx, organization_id, ends_at).await?;
    let kept = format!(
        "the grace period is extended: the sites are deleted on {} (UTC) unless you subscribe again",
        ends_at.format("%Y-%m-%d %H:%M")
    );
    let ending = crate::billing::subscriptions::subscription_ending(organization_id);
    if let Some(incident) = crate::incidents::open_id(&mut tx, &ending).await? {
        crate::incidents::note(&mut tx, incident, &kept).await?;
    }
    crate::billing::dunning::mail_owners(
        &mut tx,
        organization_id,
        "Your sites are kept longer",
        &format!(
            "The operators of this service extended your grace period ({}): your sites are \
             now kept until {} UTC. Subscribe again before then to keep them for good.",
            reason.as_str(),
            ends_at.format("%Y-%m-%d %H:%M")
        ),
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("billing.grace_extended", by.actor())
            .organization(organization_id)
            .details(serde_json::json!({
                "from": previous,
                "until": ends_at,
                "reason": reason.as_str(),
            })),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(organization = %organization_id, operator = %by.email, %ends_at, "grace period extended by an operator");
    Ok(ends_at)
}
