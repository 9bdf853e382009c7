//! Server function of the operators' subscription list: every subscription (with Stripe)
//! or paid plan (local billing mode), searched, filtered by status, plan and interval,
//! newest first, a page at a time.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One subscription on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionListRow {
    pub organization_name: String,
    pub organization_slug: String,
    pub owner_email: String,
    pub plan: String,
    pub interval: String,
    /// In the billing page's words (`Active`, `Past due`, ...).
    pub status: String,
    /// `$49`.
    pub revenue: String,
    /// Renewal or cancellation, failing payments, grace: what billing waits for.
    pub notes: Vec<String>,
    /// The subscription's Stripe id and its page in Stripe's dashboard.
    pub stripe: Option<crate::operator::StripeRef>,
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionListView {
    /// Local billing mode: the rows are the organizations on a paid plan.
    pub local: bool,
    pub rows: Vec<SubscriptionListRow>,
    /// The `after` of the next page's link, if there is more.
    pub next: Option<String>,
    pub statuses: Vec<String>,
    pub plans: Vec<(String, String)>,
    /// The orders offered: keys and words.
    pub sorts: Vec<(String, String)>,
}

/// Every subscription, searched like the organizations, filtered by status, plan and
/// interval, newest first, a page at a time: operators only.
#[server(endpoint = "admin/subscriptions")]
pub async fn admin_subscriptions(
    #[server(default)] q: String,
    #[server(default)] status: String,
    #[server(default)] plan: String,
    #[server(default)] interval: String,
    #[server(default)] sort: String,
    #[server(default)] after: String,
) -> Result<SubscriptionListView, AppError> {
    use platform::admin::lists::{self, BILLING_STATES, PAGE};
    use platform::admin::subscriptions::{self, SubscriptionFilter};

    let (app, operator) = super::operator().await?;
    let platform = &app.platform;
    let mut filter = SubscriptionFilter::parse(platform, &q, &status, &plan, &interval)?;
    filter.sort = platform::admin::lists::Sort::parse(
        &sort,
        &platform::admin::subscriptions::SUBSCRIPTION_SORTS,
    )?;
    let after = lists::parse_cursor(&after)?;
    let page =
        subscriptions::subscriptions(platform, &operator, &filter, after.as_ref(), PAGE).await?;
    let day = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d").to_string();
    let rows = page
        .rows
        .into_iter()
        .map(|row| {
            let mut notes = Vec::new();
            if let Some(end) = row.current_period_end {
                notes.push(if row.cancel_at_period_end {
                    format!("cancels {}", day(end))
                } else {
                    format!("renews {}", day(end))
                });
            }
            if let Some(since) = row.payment_failing_since {
                notes.push(format!("payments failing since {}", day(since)));
            }
            if let Some(grace) = row.grace_ends_at {
                notes.push(format!("sites deleted {} unless it subscribes", day(grace)));
            }
            SubscriptionListRow {
                plan: row
                    .plan_id
                    .as_deref()
                    .map(|id| super::plan_name(platform, id))
                    .unwrap_or_default(),
                interval: row.billing_interval.unwrap_or_default(),
                status: crate::billing::status_label(row.status.as_deref()),
                revenue: crate::format::usd(u64::try_from(row.mrr_cents).unwrap_or(0)),
                notes,
                stripe: row
                    .stripe_subscription_id
                    .map(|id| crate::operator::StripeRef {
                        label: "Subscription".to_owned(),
                        link: platform
                            .billing
                            .stripe
                            .as_ref()
                            .and_then(|api| api.dashboard_link("subscriptions", &id)),
                        id,
                    }),
                since: day(row.since),
                owner_email: row.owner_email.unwrap_or_default(),
                organization_name: row.organization_name,
                organization_slug: row.organization_slug,
            }
        })
        .collect();
    Ok(SubscriptionListView {
        local: platform.billing.is_local(),
        rows,
        next: page.next.map(|cursor| cursor.encode()),
        statuses: BILLING_STATES[1..]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        plans: super::plan_choices(platform),
        sorts: super::sort_choices(&platform::admin::subscriptions::SUBSCRIPTION_SORTS, "Name"),
    })
}
