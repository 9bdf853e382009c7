//! Server functions of `/dashboard/billing`, the pricing page's buttons and the dashboard's
//! past-due banner. Stripe stays on the server: the browser only ever follows a link to
//! Stripe's checkout or portal.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::usage::LimitBar;

/// A plan the organization could move to, and why not when it cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanChoice {
    pub id: String,
    pub name: String,
    pub monthly_cents: u64,
    pub yearly_cents: u64,
    /// The plan (and interval) the organization is on now.
    pub current_interval: Option<String>,
    /// Set when the plan cannot hold what the organization has now.
    pub too_small: Option<String>,
}

/// The organization's latest plan request (local billing mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequestView {
    pub plan_name: String,
    /// `pending`, `approved`, `declined` or `withdrawn`.
    pub status: String,
    pub message: String,
    /// The operators' note with their decision.
    pub note: String,
    pub created: String,
    pub decided: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingView {
    pub local_mode: bool,
    /// Where customers write about plans and billing (`billing.contact_email`).
    pub contact_email: Option<String>,
    /// The latest plan request, in local billing mode.
    pub request: Option<PlanRequestView>,
    /// Owners may change the plan and open the portal.
    pub can_manage: bool,
    pub plan_id: String,
    pub plan_name: String,
    pub interval: Option<String>,
    /// `Active`, `Past due`, `Canceled`, ... or `No subscription`.
    pub status: String,
    pub past_due: bool,
    pub failed_payments: i32,
    pub failed_payments_before_suspend: u32,
    pub period_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub grace_ends_at: Option<String>,
    pub upcoming_invoice: Option<String>,
    pub has_customer: bool,
    pub bars: Vec<LimitBar>,
    pub plans: Vec<PlanChoice>,
}

/// `past_due` -> `Past due`.
pub fn status_label(status: Option<&str>) -> String {
    match status {
        None => "No subscription".to_owned(),
        Some(status) => {
            let words = status.replace('_', " ");
            let mut chars = words.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        }
    }
}

#[server(endpoint = "billing/overview")]
pub async fn billing_overview() -> Result<BillingView, AppError> {
    use crate::format::{bytes, count};
    use platform::tenancy::{Action, authorize};

    let state = crate::state::app_state()?;
    let (_, me) = crate::session::require_membership(&state).await?;
    let platform = &state.platform;
    let overview = platform::billing::overview(platform, &me).await?;
    let date = |at: chrono::DateTime<chrono::Utc>| at.format("%B %-d, %Y").to_string();
    // A count against a plan's limit, which may be open or zero.
    let counted = |label: &str, used: i64, limit: Option<u32>| {
        let used = used.max(0) as u64;
        match limit {
            None => LimitBar {
                label: label.to_owned(),
                text: format!("{} (unlimited)", count(used)),
                percent: 0,
                level: "fine".to_owned(),
            },
            Some(0) if used == 0 => LimitBar {
                label: label.to_owned(),
                text: "None included in this plan".to_owned(),
                percent: 0,
                level: "fine".to_owned(),
            },
            Some(max) => crate::usage::bar(label, used, u64::from(max), count),
        }
    };
    let bar = crate::usage::bar;
    let mut bars = vec![
        counted("Sites", overview.sites_used, overview.sites_limit),
        counted(
            "Team members",
            overview.members_used,
            overview.members_limit,
        ),
    ];
    if overview.sites_used > 0 {
        bars.push(bar(
            "Bandwidth this month",
            overview.bandwidth_bytes.max(0) as u64,
            overview.bandwidth_included_bytes.max(0) as u64,
            bytes,
        ));
        bars.push(bar(
            "Storage",
            overview.storage_bytes.max(0) as u64,
            overview.storage_included_bytes.max(0) as u64,
            bytes,
        ));
    }
    let plans = platform
        .catalog
        .plans()
        .iter()
        .filter(|p| p.monthly_cents.0 > 0)
        .map(|p| PlanChoice {
            id: p.id.to_string(),
            name: p.name.clone(),
            monthly_cents: p.monthly_cents.0,
            yearly_cents: p.yearly_cents.0,
            current_interval: (p.id.as_str() == overview.plan_id)
                .then(|| overview.interval.map(|i| i.as_str().to_owned()))
                .flatten(),
            too_small: platform::billing::shortfall(p, overview.sites_used, overview.members_used)
                .map(|s| s.short()),
        })
        .collect();
    let request = if overview.local_mode {
        platform::billing::requests::latest(platform, &me)
            .await?
            .map(|r| PlanRequestView {
                plan_name: platform
                    .plan(&r.plan_id)
                    .map_or_else(|| r.plan_id.clone(), |p| p.name.clone()),
                status: r.status.to_string(),
                message: r.message,
                note: r.note,
                created: date(r.created_at),
                decided: r.decided_at.map(date),
            })
    } else {
        None
    };
    Ok(BillingView {
        local_mode: overview.local_mode,
        contact_email: platform
            .billing
            .contact_email
            .as_ref()
            .map(|e| e.to_string()),
        request,
        can_manage: authorize(me.role, Action::ManageBilling),
        past_due: overview.past_due(),
        status: status_label(overview.status.map(|s| s.as_str())),
        plan_id: overview.plan_id,
        plan_name: overview.plan_name,
        interval: overview.interval.map(|i| i.as_str().to_owned()),
        failed_payments: overview.failed_payments,
        failed_payments_before_suspend: platform.billing.failed_payments_before_suspend,
        period_end: overview.current_period_end.map(date),
        cancel_at_period_end: overview.cancel_at_period_end,
        grace_ends_at: overview.grace_ends_at.map(date),
        upcoming_invoice: overview
            .upcoming_invoice_cents
            .map(|c| crate::format::usd(c.max(0) as u64)),
        has_customer: overview.has_customer,
        bars,
        plans,
    })
}

/// Whether this server bills locally (the pricing page says so).
#[server(endpoint = "billing/mode")]
pub async fn local_billing() -> Result<bool, AppError> {
    let state = crate::state::app_state()?;
    Ok(state.platform.billing.is_local())
}

/// The dashboard's banner for owners while a payment is owed, if one is.
#[server(endpoint = "billing/banner")]
pub async fn past_due_banner() -> Result<Option<String>, AppError> {
    use platform::tenancy::{Action, authorize};
    let state = crate::state::app_state()?;
    let Ok((_, me)) = crate::session::require_membership(&state).await else {
        return Ok(None);
    };
    if !authorize(me.role, Action::ManageBilling) {
        return Ok(None);
    }
    let overview = platform::billing::overview_without_invoice(&state.platform, &me).await?;
    if !overview.past_due() {
        return Ok(None);
    }
    let limit = state.platform.billing.failed_payments_before_suspend;
    let failed = overview.failed_payments.max(0) as u32;
    Ok(Some(if failed >= limit {
        "Your payment failed and your sites are suspended. Update your payment method under Billing to bring them back.".to_owned()
    } else {
        format!(
            "Your last payment failed ({failed} of {limit} attempts). Update your payment method under Billing before your sites are suspended."
        )
    }))
}

/// Goes to Stripe Checkout for `plan` (or changes the current subscription to it).
#[server(endpoint = "billing/checkout")]
pub async fn start_checkout(plan: String, interval: String) -> Result<(), AppError> {
    use platform::billing::{CheckoutOutcome, Interval, checkout};
    let outcome = async {
        let state = crate::state::app_state()?;
        let (_, me) = crate::session::require_membership(&state).await?;
        let interval = Interval::parse(&interval)?;
        Ok::<_, AppError>(checkout(&state.platform, &me, &plan, interval).await?)
    }
    .await;
    match outcome {
        Ok(CheckoutOutcome::Redirect(url)) => leptos_axum::redirect(&url),
        Ok(CheckoutOutcome::Changed) => leptos_axum::redirect("/dashboard/billing?changed=1"),
        Err(error) => return Err(error),
    }
    Ok(())
}

/// Local billing mode: the owner asks the operators for `plan`, with a message.
#[server(endpoint = "billing/request_plan")]
pub async fn request_plan(
    #[server(default)] plan: String,
    #[server(default)] message: String,
) -> Result<(), AppError> {
    let outcome = async {
        let state = crate::state::app_state()?;
        let (_, me) = crate::session::require_membership(&state).await?;
        platform::billing::requests::request(&state.platform, &me, &plan, &message).await?;
        Ok::<_, AppError>(())
    }
    .await;
    back_to_billing(outcome, "/dashboard/billing?requested=1")
}

/// Takes the open plan request back.
#[server(endpoint = "billing/withdraw_request")]
pub async fn withdraw_plan_request() -> Result<(), AppError> {
    let outcome = async {
        let state = crate::state::app_state()?;
        let (_, me) = crate::session::require_membership(&state).await?;
        platform::billing::requests::withdraw(&state.platform, &me).await?;
        Ok::<_, AppError>(())
    }
    .await;
    back_to_billing(outcome, "/dashboard/billing")
}

/// Done: on to `done` (the billing page). Refused: the error goes to the one form that
/// sent it (without JavaScript through the form flash, with what was typed).
#[cfg(feature = "ssr")]
fn back_to_billing(outcome: Result<(), AppError>, done: &str) -> Result<(), AppError> {
    outcome.map(|()| leptos_axum::redirect(done))
}

/// Goes to Stripe's billing portal (payment methods, invoices, cancellation).
#[server(endpoint = "billing/portal")]
pub async fn open_portal() -> Result<(), AppError> {
    let url = async {
        let state = crate::state::app_state()?;
        let (_, me) = crate::session::require_membership(&state).await?;
        Ok::<_, AppError>(platform::billing::portal(&state.platform, &me).await?)
    }
    .await;
    leptos_axum::redirect(&url?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_words() {
        assert_eq!(status_label(Some("past_due")), "Past due");
        assert_eq!(status_label(Some("active")), "Active");
        assert_eq!(status_label(None), "No subscription");
    }
}
