//! Metered overages: what an organization on a plan with [`Feature::MeteredOverages`] used
//! beyond its plan's included amounts in a closed month, reported to Stripe Billing Meters.
//!
//! A report is written to `meter_reports`, with an identifier made of the organization, the
//! metric and the month, together with a `stripe_meter_event` job that sends it. The queue
//! retries the job until Stripe confirms it, always with that identifier: Stripe counts one
//! identifier once, so a retry after a lost answer never charges twice, and the row (one per
//! organization, metric and month) means the month is never measured and reported twice.

use chrono::{Datelike, NaiveDate, Utc};
use uuid::Uuid;

use super::stripe;
use crate::Platform;
use crate::catalog::plans::Feature;
use crate::infra::jobs::{self, JobError, JobKind, NewJob};
use crate::kernel::{Error, Result};

const GIB: i64 = 1 << 30;
const MIB: i64 = 1 << 20;

/// Each metric billed as overage: its name here, its Billing Meter's `event_name` (whole
/// units) and the meter's display name. `slipway stripe sync` creates the meters.
pub const METRICS: [(&str, &str, &str); 3] = [
    (
        "bandwidth",
        "slipway_bandwidth_gb",
        "Bandwidth above the plan (GiB)",
    ),
    (
        "storage",
        "slipway_storage_gb",
        "Storage above the plan (GiB)",
    ),
    ("builds", "slipway_builds", "Builds above the plan"),
];

/// The Billing Meter each metric is reported to.
pub fn event_name(metric: &str) -> &'static str {
    METRICS
        .iter()
        .find(|(m, _, _)| *m == metric)
        .map_or("slipway_builds", |(_, event, _)| event)
}

/// The lookup key of a plan's usage-based price for `metric`.
pub fn lookup_key(
    plan: &crate::catalog::plans::PlanId,
    metric: &str,
    interval: super::Interval,
) -> String {
    format!("slipway_{plan}_{metric}_{}", interval.as_str())
}

/// What one unit of `metric` above the plan costs, in cents.
pub fn unit_cents(overage: &crate::catalog::plans::Overage, metric: &str) -> u64 {
    match metric {
        "bandwidth" => overage.bandwidth_gb_cents,
        "storage" => overage.storage_gb_cents,
        _ => overage.build_cents,
    }
}

/// The plan's overage prices when it bills overages.
pub fn overage_of(plan: &crate::catalog::plans::Plan) -> Option<&crate::catalog::plans::Overage> {
    plan.overage
        .as_ref()
        .filter(|_| plan.features.contains(&Feature::MeteredOverages))
}

/// Bytes in whole GiB, rounded up (a started GiB is billed).
fn whole_gib(bytes: i64) -> i64 {
    if bytes <= 0 { 0 } else { (bytes - 1) / GIB + 1 }
}

/// The first day of the month before the one `today` is in.
pub fn previous_month(today: NaiveDate) -> NaiveDate {
    let first = today.with_day(1).unwrap_or(today);
    let last_of_previous = first.pred_opt().unwrap_or(first);
    last_of_previous.with_day(1).unwrap_or(last_of_previous)
}

/// The identifier Stripe de-duplicates the report by.
pub fn identifier(organization_id: Uuid, metric: &str, period: NaiveDate) -> String {
    format!(
        "slipway-{organization_id}-{metric}-{}",
        period.format("%Y-%m")
    )
}

/// The `billing_overages` job: measures `period` (the first of a closed month) for every
/// organization whose plan bills overages and has a Stripe customer, and stores what is over
/// with a job that sends it. Returns how many reports it stored.
pub async fn report_overages(platform: &Platform, period: NaiveDate) -> Result<usize> {
    if period.day() != 1 {
        return Err(Error::Internal(format!(
            "{period} is not the first of a month"
        )));
    }
    let this_month = Utc::now().date_naive().with_day(1).unwrap_or(period);
    if period >= this_month {
        return Err(Error::Internal(format!("{period} has not closed yet")));
    }
    let mut reported = 0;
    let metered: Vec<&str> = platform
        .catalog
        .plans()
        .iter()
        .filter(|p| p.features.contains(&Feature::MeteredOverages))
        .map(|p| p.id.as_str())
        .collect();
    let organizations = sqlx::query!(
        "SELECT o.id, o.plan_id FROM organizations o
           JOIN billing_accounts a ON a.organization_id = o.id
          WHERE o.plan_id = ANY($1)
            AND NOT EXISTS (SELECT 1 FROM meter_reports r
                             WHERE r.organization_id = o.id AND r.period = $2)",
        &metered as &[&str],
        period
    )
    .fetch_all(&platform.db)
    .await?;
    for org in organizations {
        let Some(plan) = platform.plan(&org.plan_id) else {
            continue;
        };
        let included_bandwidth = i64::from(plan.limits.bandwidth_gb) * GIB;
        let included_storage = i64::from(plan.limits.storage_mb) * MIB;
        let usage = sqlx::query!(
            r#"SELECT
                 coalesce(sum(greatest(r.quantity - $3, 0)) FILTER (WHERE r.metric = 'bandwidth'), 0)::bigint AS "bandwidth!",
                 coalesce(sum(greatest(r.quantity - $4, 0)) FILTER (WHERE r.metric = 'storage'), 0)::bigint AS "storage!",
                 (SELECT count(*) FROM deployments d JOIN sites s ON s.id = d.site_id
                   WHERE s.organization_id = $1 AND d.reason = 'create'
                     AND d.created_at >= $2::date AND d.created_at < ($2::date + interval '1 month')) AS "builds!"
               FROM usage_records r
              WHERE r.organization_id = $1 AND r.period = $2"#,
            org.id,
            period,
            included_bandwidth,
            included_storage
        )
        .fetch_one(&platform.db)
        .await?;
        let builds_over = usage.builds - i64::from(plan.limits.monthly_builds);
        let mut tx = platform.db.begin().await?;
        for (metric, quantity) in [
            ("bandwidth", whole_gib(usage.bandwidth)),
            ("storage", whole_gib(usage.storage)),
            ("builds", builds_over),
        ] {
            if quantity <= 0 {
                continue;
            }
            let identifier = identifier(org.id, metric, period);
            let stored = sqlx::query!(
                "INSERT INTO meter_reports (organization_id, metric, period, quantity, identifier)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                org.id,
                metric,
                period,
                quantity,
                identifier
            )
            .execute(&mut *tx)
            .await?;
            if stored.rows_affected() == 1 {
                jobs::enqueue(
                    &mut *tx,
                    NewJob::new(
                        JobKind::StripeMeterEvent,
                        serde_json::json!({ "identifier": identifier }),
                    )
                    .unique(format!("stripe_meter_event:{identifier}")),
                )
                .await?;
                reported += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(reported)
}

/// The `stripe_meter_event` job: sends one stored report (again, after a lost answer: with
/// the same identifier, which Stripe counts once) and marks it confirmed.
pub async fn send_report(platform: &Platform, identifier: &str) -> Result<(), JobError> {
    let api = stripe(platform)?;
    let Some(report) = sqlx::query!(
        "SELECT r.metric, r.quantity, r.reported_at, a.stripe_customer_id
           FROM meter_reports r JOIN billing_accounts a ON a.organization_id = r.organization_id
          WHERE r.identifier = $1",
        identifier
    )
    .fetch_optional(&platform.db)
    .await?
    else {
        return Err(JobError::Permanent(format!(
            "no overage report {identifier} (its organization is gone)"
        )));
    };
    if report.reported_at.is_some() {
        return Ok(());
    }
    api.create_meter_event(
        event_name(&report.metric),
        &report.stripe_customer_id,
        report.quantity,
        identifier,
        Utc::now().timestamp(),
    )
    .await
    .map_err(|e| JobError::Retry(format!("meter event {identifier}: {e}")))?;
    sqlx::query!(
        "UPDATE meter_reports SET reported_at = now() WHERE identifier = $1",
        identifier
    )
    .execute(&platform.db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_month_starts_on_its_first_day() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
        assert_eq!(previous_month(day(2026, 11, 28)), day(2026, 10, 1));
        assert_eq!(previous_month(day(2026, 1, 1)), day(2025, 12, 1));
        assert_eq!(previous_month(day(2024, 3, 31)), day(2024, 2, 1));
    }

    #[test]
    fn identifiers_name_the_organization_metric_and_month() {
        let org = Uuid::nil();
        let period = NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid date");
        assert_eq!(
            identifier(org, "bandwidth", period),
            "slipway-00000000-0000-0000-0000-000000000000-bandwidth-2026-10"
        );
    }
}
