//! Server functions of the operator panel: the business overview. Every figure comes with
//! its definition (the same words as `docs/metrics.md`), shown as its tooltip.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

pub mod audit;
pub mod incidents;
pub mod jobs;
pub mod requests;
pub mod sites;
pub mod subscriptions;
pub mod users;

/// One figure of the overview, formatted, with what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figure {
    /// Stable name (`data-figure` on the page).
    pub key: String,
    pub label: String,
    pub value: String,
    pub definition: String,
}

/// Revenue at the start of a month (or now), and what moved in the month before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthView {
    /// `Nov 2026`, or `Now`.
    pub label: String,
    /// `None` before Slipway kept revenue snapshots.
    pub mrr_cents: Option<i64>,
    /// The period that `added` and `lost` cover: the month before (`Oct 2026`), or this
    /// month so far (`Nov 2026 so far`) for now.
    pub period: String,
    /// Added (new + reactivation + expansion) and lost (contraction + churned) over
    /// `period`, in cents per month.
    pub added: Option<i64>,
    pub lost: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub cells: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewView {
    /// `Stripe` or `local billing mode`.
    pub billing: String,
    pub at: String,
    /// MRR, ARR, customers, ARPA, churn.
    pub revenue: Vec<Figure>,
    /// This month so far: new, expansion, contraction, churned, reactivation, net.
    pub movements: Vec<Figure>,
    /// Plan, interval, subscriptions, MRR.
    pub plans: Vec<Row>,
    pub months: Vec<MonthView>,
    /// Week, sign-ups, activations, conversions.
    pub weeks: Vec<Row>,
    /// Sites by status, open incidents, provisioning, deployments, dead jobs.
    pub operations: Vec<Figure>,
}

/// The definitions shown with each figure; `docs/metrics.md` says the same at length.
pub mod definitions {
    pub const MRR: &str = "Monthly recurring revenue: what every paying organization pays per month now. Yearly prices count as 1/12, discounts are subtracted; trials, fully discounted subscriptions and invoices unpaid for more than 30 days count as nothing. In local billing mode: the catalog's monthly price of each organization's assigned plan.";
    pub const ARR: &str = "Annual run rate: MRR × 12.";
    pub const CUSTOMERS: &str = "Organizations that count in MRR now.";
    pub const ARPA: &str = "Average revenue per account: MRR / paying organizations.";
    pub const NET_NEW: &str =
        "Net new MRR: new + expansion + reactivation − contraction − churned, this month so far.";
    pub const NEW: &str = "MRR of organizations paying now that never paid before the month began (by the daily snapshots).";
    pub const EXPANSION: &str =
        "MRR added by organizations that paid at the start of the month and pay more now.";
    pub const CONTRACTION: &str = "MRR lost by organizations that paid at the start of the month and pay less (but something) now.";
    pub const CHURNED: &str =
        "MRR of organizations that paid at the start of the month and pay nothing now.";
    pub const REACTIVATION: &str = "MRR of organizations paying now that paid nothing at the start of the month but had paid before it.";
    pub const CUSTOMER_CHURN: &str = "Last full month: paying organizations lost / paying organizations at its start. Those who joined and left within the month do not count.";
    pub const GROSS_MRR_CHURN: &str =
        "Last full month: (churned + contraction MRR) / MRR at its start.";
    pub const NET_MRR_CHURN: &str = "Last full month: (churned + contraction − expansion − reactivation MRR) / MRR at its start; below zero when the customers who stayed grew more than the others shrank.";
    pub const SITES: &str = "Sites by status now (deleted ones left out); suspended sites are counted in their status and again here.";
    pub const INCIDENTS: &str = "Incidents open now, by kind.";
    pub const PROVISIONING: &str = "New sites whose first deployment (create) finished in the window: the share that became active at once, and the time from the request to active (median and 95th percentile) of those that did. A site that failed and became active on a retry counts as a failure here.";
    pub const DEPLOYMENTS: &str = "Every deployment (create, restart, start, stop, plan change, repair…) finished in the last 30 days: the share that succeeded.";
    pub const DEAD_JOBS: &str =
        "Background jobs that gave up after their retry window: they wait for an operator.";
}

/// The business at a glance: operators only.
#[server(endpoint = "admin/overview")]
pub async fn admin_overview() -> Result<OverviewView, AppError> {
    let (state, operator) = operator().await?;
    let overview =
        platform::admin::metrics::overview(&state.platform, &operator, chrono::Utc::now()).await?;
    Ok(view::overview(&state.platform, &overview))
}

#[cfg(feature = "ssr")]
mod view {
    use platform::Platform;
    use platform::admin::metrics::{Outcomes, Overview, Provisioning};
    use platform::billing::revenue::Movement;

    use super::definitions as d;
    use super::{Figure, MonthView, OverviewView, Row};
    use crate::format::count;

    fn figure(key: &str, label: &str, value: String, definition: &str) -> Figure {
        Figure {
            key: key.to_owned(),
            label: label.to_owned(),
            value,
            definition: definition.to_owned(),
        }
    }

    use crate::format::usd_signed as money;

    fn signed(cents: i64) -> String {
        if cents > 0 {
            format!("+{}", money(cents))
        } else {
            money(cents)
        }
    }

    fn percent(ratio: Option<f64>) -> String {
        ratio.map_or("–".to_owned(), |r| format!("{:.1}%", r * 100.0))
    }

    fn seconds(value: Option<f64>) -> String {
        value.map_or("–".to_owned(), |s| format!("{s:.1} s"))
    }

    fn movements(m: Option<Movement>) -> Vec<Figure> {
        let Some(m) = m else {
            return vec![figure(
                "net_new_mrr",
                "Net new MRR",
                "no snapshot yet".to_owned(),
                d::NET_NEW,
            )];
        };
        vec![
            figure("net_new_mrr", "Net new MRR", signed(m.net()), d::NET_NEW),
            figure("new_mrr", "New", money(m.new), d::NEW),
            figure(
                "expansion_mrr",
                "Expansion",
                money(m.expansion),
                d::EXPANSION,
            ),
            figure(
                "contraction_mrr",
                "Contraction",
                money(m.contraction),
                d::CONTRACTION,
            ),
            figure("churned_mrr", "Churned", money(m.churned), d::CHURNED),
            figure(
                "reactivation_mrr",
                "Reactivation",
                money(m.reactivation),
                d::REACTIVATION,
            ),
        ]
    }

    fn provisioning(p: &Provisioning) -> [Figure; 2] {
        let days = p.days;
        [
            figure(
                &format!("provisioning_success_{days}d"),
                &format!("Provisioning success, {days} days"),
                format!(
                    "{} of {}",
                    percent(p.outcomes.success_rate()),
                    count((p.outcomes.succeeded + p.outcomes.failed).unsigned_abs())
                ),
                d::PROVISIONING,
            ),
            figure(
                &format!("provisioning_time_{days}d"),
                &format!("Provisioning time p50 / p95, {days} days"),
                format!("{} / {}", seconds(p.p50_seconds), seconds(p.p95_seconds)),
                d::PROVISIONING,
            ),
        ]
    }

    fn deployments(o: &Outcomes) -> Figure {
        figure(
            "deployment_success_30d",
            "Deployment success, 30 days",
            format!(
                "{} of {}",
                percent(o.success_rate()),
                count((o.succeeded + o.failed).unsigned_abs())
            ),
            d::DEPLOYMENTS,
        )
    }

    pub(super) fn overview(platform: &Platform, o: &Overview) -> OverviewView {
        let last = o.last_month;
        let revenue = vec![
            figure("mrr", "MRR", money(o.mrr_cents), d::MRR),
            figure("arr", "ARR", money(o.arr_cents()), d::ARR),
            figure(
                "customers",
                "Paying organizations",
                count(o.customers.unsigned_abs()),
                d::CUSTOMERS,
            ),
            figure(
                "arpa",
                "ARPA",
                o.arpa_cents().map_or("–".to_owned(), money),
                d::ARPA,
            ),
            figure(
                "customer_churn",
                "Customer churn, last month",
                percent(last.and_then(|p| p.customer_churn())),
                d::CUSTOMER_CHURN,
            ),
            figure(
                "gross_mrr_churn",
                "Gross MRR churn, last month",
                percent(last.and_then(|p| p.gross_mrr_churn())),
                d::GROSS_MRR_CHURN,
            ),
            figure(
                "net_mrr_churn",
                "Net MRR churn, last month",
                percent(last.and_then(|p| p.net_mrr_churn())),
                d::NET_MRR_CHURN,
            ),
        ];
        let plans = o
            .subscriptions
            .iter()
            .map(|p| Row {
                cells: vec![
                    platform
                        .plan(&p.plan_id)
                        .map_or(p.plan_id.clone(), |plan| plan.name.clone()),
                    p.interval.clone(),
                    count(p.subscriptions.unsigned_abs()),
                    money(p.mrr_cents),
                ],
            })
            .collect();
        let month = |d: chrono::NaiveDate| d.format("%b %Y").to_string();
        let months = o
            .months
            .iter()
            .enumerate()
            .map(|(i, p)| MonthView {
                label: p.start.map_or("Now".to_owned(), month),
                period: match (i.checked_sub(1).and_then(|j| o.months.get(j)), p.start) {
                    (Some(before), None) => {
                        format!("{} so far", before.start.map(month).unwrap_or_default())
                    }
                    (Some(before), Some(_)) => before.start.map(month).unwrap_or_default(),
                    (None, _) => String::new(),
                },
                mrr_cents: (p.start.is_none() || p.snapshot.is_some()).then_some(p.mrr_cents),
                added: p.movement.map(|m| m.new + m.reactivation + m.expansion),
                lost: p.movement.map(|m| m.contraction + m.churned),
            })
            .collect();
        let weeks = o
            .weeks
            .iter()
            .map(|w| Row {
                cells: vec![
                    w.start.date_naive().format("%b %-d").to_string(),
                    count(w.signups.unsigned_abs()),
                    count(w.activations.unsigned_abs()),
                    count(w.conversions.unsigned_abs()),
                ],
            })
            .collect();
        let by_status = |list: &[(String, i64)]| {
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.iter()
                    .map(|(name, n)| format!("{name} {}", count(n.unsigned_abs())))
                    .collect::<Vec<_>>()
                    .join(" · ")
            }
        };
        let incidents: Vec<(String, i64)> = o
            .open_incidents
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| (kind.title().to_lowercase(), *n))
            .collect();
        let mut operations = vec![
            figure(
                "sites",
                "Sites",
                format!(
                    "{} ({} suspended)",
                    by_status(&o.sites),
                    count(o.suspended_sites.unsigned_abs())
                ),
                d::SITES,
            ),
            figure(
                "open_incidents",
                "Open incidents",
                by_status(&incidents),
                d::INCIDENTS,
            ),
        ];
        for window in &o.provisioning {
            operations.extend(provisioning(window));
        }
        operations.push(deployments(&o.deployments));
        operations.push(figure(
            "dead_jobs",
            "Dead jobs",
            count(o.dead_jobs.unsigned_abs()),
            d::DEAD_JOBS,
        ));
        OverviewView {
            billing: if o.local_billing {
                "local billing mode".to_owned()
            } else {
                "Stripe".to_owned()
            },
            at: o.at.format("%Y-%m-%d %H:%M UTC").to_string(),
            revenue,
            movements: movements(o.this_month),
            plans,
            months,
            weeks,
            operations,
        }
    }
}

/// One organization in the operator's list, ready to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgListRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub plan: String,
    /// `Active`, `Past due`, ..., or `No subscription`.
    pub billing: String,
    /// `$49` (a month), or `$0`.
    pub revenue: String,
    pub owner_email: String,
    pub members: String,
    /// `3`, or `3 (1 suspended)`.
    pub sites: String,
    /// `2026-11-29`
    pub created: String,
}

/// A page of the organization list, with what the filters may be set to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgListView {
    pub rows: Vec<OrgListRow>,
    /// The `after` of the next page's link, if there is more.
    pub next: Option<String>,
    /// Plan ids and names, for the plan filter.
    pub plans: Vec<(String, String)>,
    pub billing_states: Vec<String>,
    /// The orders offered: keys and words.
    pub sorts: Vec<(String, String)>,
}

/// Every organization, searched, filtered, sorted and paged: operators only. Empty
/// parameters mean "any" (and the default order, newest first; the first page).
#[server(endpoint = "admin/organizations")]
pub async fn admin_organizations(
    #[server(default)] q: String,
    #[server(default)] plan: String,
    #[server(default)] billing: String,
    #[server(default)] sort: String,
    #[server(default)] after: String,
) -> Result<OrgListView, AppError> {
    use platform::admin::lists::{self, BILLING_STATES, ORG_SORTS, OrgFilter};

    let (state, operator) = operator().await?;
    let platform = &state.platform;
    let filter = OrgFilter::parse(platform, &q, &plan, &billing, &sort)?;
    let after = lists::parse_cursor(&after)?;
    let page =
        lists::organizations(platform, &operator, &filter, after.as_ref(), lists::PAGE).await?;
    let rows = page
        .rows
        .into_iter()
        .map(|row| OrgListRow {
            id: row.id.to_string(),
            plan: plan_name(platform, &row.plan_id),
            billing: crate::billing::status_label(row.billing_status.as_deref()),
            revenue: crate::format::usd(u64::try_from(row.mrr_cents).unwrap_or(0)),
            owner_email: row.owner_email.unwrap_or_default(),
            members: row.members.to_string(),
            sites: if row.suspended_sites > 0 {
                format!("{} ({} suspended)", row.sites, row.suspended_sites)
            } else {
                row.sites.to_string()
            },
            created: row.created_at.format("%Y-%m-%d").to_string(),
            name: row.name,
            slug: row.slug,
        })
        .collect();
    Ok(OrgListView {
        rows,
        next: page.next.map(|cursor| cursor.encode()),
        plans: plan_choices(platform),
        billing_states: BILLING_STATES.iter().map(|s| (*s).to_owned()).collect(),
        sorts: sort_choices(&ORG_SORTS, "Name"),
    })
}

/// A list's orders as its sort choice offers them: keys and words (`name`: what the list's
/// A-to-Z order sorts by).
#[cfg(feature = "ssr")]
pub(crate) fn sort_choices(
    offered: &[platform::admin::lists::Sort],
    name: &str,
) -> Vec<(String, String)> {
    use platform::admin::lists::Sort;
    offered
        .iter()
        .map(|sort| {
            let words = match sort {
                Sort::Newest => "Newest first".to_owned(),
                Sort::Oldest => "Oldest first".to_owned(),
                Sort::Name => format!("{name}, A to Z"),
                Sort::Revenue => "Revenue, highest first".to_owned(),
            };
            (sort.as_str().to_owned(), words)
        })
        .collect()
}

/// The catalog's plans as a list's plan filter offers them: ids and names.
#[cfg(feature = "ssr")]
pub(crate) fn plan_choices(platform: &platform::Platform) -> Vec<(String, String)> {
    platform
        .catalog
        .plans()
        .iter()
        .map(|p| (p.id.as_str().to_owned(), p.name.clone()))
        .collect()
}

/// A plan's name by its id (the id itself for a plan no longer in the catalog).
#[cfg(feature = "ssr")]
pub(crate) fn plan_name(platform: &platform::Platform, id: &str) -> String {
    platform
        .catalog
        .plans()
        .iter()
        .find(|p| p.id.as_str() == id)
        .map_or_else(|| id.to_owned(), |p| p.name.clone())
}

/// The signed-in operator, checked against the database: what every operator function
/// starts with.
#[cfg(feature = "ssr")]
pub(crate) async fn operator()
-> Result<(crate::state::AppState, platform::admin::Operator), AppError> {
    crate::account::operator_check().await?;
    let state = crate::state::app_state()?;
    let session = crate::session::require_session(&state).await?;
    let operator = platform::admin::Operator::verify(&state.platform, session.user_id).await?;
    Ok((state, operator))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgMemberRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub joined: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSiteRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub url: String,
    pub status: String,
    /// Why it is suspended, in the customer's words.
    pub suspended: Option<String>,
    /// Only billing lifts a suspension of billing's (when the organization pays).
    pub suspended_by_billing: bool,
    /// Suspended by the organization's suspension: resumed with it, not alone.
    pub with_organization: bool,
    /// What failed and why, if its last pass failed (it can be retried now).
    pub failure: Option<String>,
    pub created: String,
}

/// A Stripe object of the organization: what it is, its id, and its page in Stripe's
/// dashboard (none in local billing mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeRef {
    pub label: String,
    pub id: String,
    pub link: Option<String>,
}

/// `/admin/organizations/:slug`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgDetailView {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created: String,
    pub plan: String,
    pub plan_id: String,
    /// Local billing mode: the plans an operator may assign (id, name); `None` with Stripe,
    /// where plans follow the subscription.
    pub assignable_plans: Option<Vec<(String, String)>>,
    /// The billing state in the billing page's words.
    pub billing: String,
    pub revenue: String,
    /// Renewal, cancellation, failing payments, grace: what an operator should know.
    pub billing_notes: Vec<String>,
    /// While a grace period runs: the first and the last day it could be extended to
    /// (`YYYY-MM-DD`).
    pub grace_extendable_from: Option<(String, String)>,
    pub stripe: Vec<StripeRef>,
    /// Why and since when operators suspended the whole organization.
    pub suspended: Option<String>,
    pub members: Vec<OrgMemberRow>,
    pub sites: Vec<OrgSiteRow>,
    pub usage: crate::usage::UsageView,
    pub incidents: Vec<crate::health::IncidentView>,
    pub audit: Vec<crate::account::AuditView>,
}

/// One organization, whole, by its slug: operators only.
#[server(endpoint = "admin/organization")]
pub async fn admin_organization(
    #[server(default)] slug: String,
) -> Result<OrgDetailView, AppError> {
    let (state, operator) = operator().await?;
    let platform = &state.platform;
    let detail = platform::admin::detail::organization(platform, &operator, &slug).await?;
    Ok(detail_view(platform, detail))
}

#[cfg(feature = "ssr")]
fn detail_view(
    platform: &platform::Platform,
    detail: platform::admin::detail::OrganizationDetail,
) -> OrgDetailView {
    let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
    let a = detail.account;
    let mut billing_notes = Vec::new();
    if let Some(interval) = &a.billing_interval {
        billing_notes.push(format!("Billed {interval}."));
    }
    if let Some(end) = a.current_period_end {
        billing_notes.push(if a.cancel_at_period_end == Some(true) {
            format!("Cancels at the end of its period, {}.", day(end))
        } else {
            format!("Current period ends {}.", day(end))
        });
    }
    if let Some(since) = a.payment_failing_since {
        billing_notes.push(format!("Payments failing since {}.", day(since)));
    }
    if let Some(grace) = a.grace_ends_at {
        billing_notes.push(format!(
            "Canceled: its sites are deleted on {} unless it subscribes again.",
            grace.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    // Extended through a day, it ends at the midnight after it: through the day it ends
    // in is the least extension.
    let grace_extendable_from = a
        .grace_ends_at
        .filter(|at| *at > chrono::Utc::now())
        .map(|at| {
            let latest =
                chrono::Utc::now() + chrono::Duration::days(platform::admin::grace::LONGEST_DAYS);
            (day(at), day(latest))
        });
    let stripe = [
        ("Customer", "customers", a.stripe_customer_id.as_deref()),
        (
            "Subscription",
            "subscriptions",
            a.stripe_subscription_id.as_deref(),
        ),
    ]
    .into_iter()
    .filter_map(|(label, kind, id)| {
        let id = id?;
        Some(StripeRef {
            label: label.to_owned(),
            id: id.to_owned(),
            link: platform
                .billing
                .stripe
                .as_ref()
                .and_then(|api| api.dashboard_link(kind, id)),
        })
    })
    .collect();
    OrgDetailView {
        id: a.id.to_string(),
        plan: plan_name(platform, &a.plan_id),
        plan_id: a.plan_id.clone(),
        assignable_plans: platform.billing.is_local().then(|| plan_choices(platform)),
        billing: crate::billing::status_label(a.billing_status.as_deref()),
        revenue: format!(
            "{} / month",
            crate::format::usd(u64::try_from(a.mrr_cents).unwrap_or(0))
        ),
        billing_notes,
        grace_extendable_from,
        stripe,
        suspended: a.suspended_at.map(|at| {
            format!(
                "Suspended by an operator since {}: {}",
                at.format("%Y-%m-%d %H:%M UTC"),
                a.suspended_reason.clone().unwrap_or_default()
            )
        }),
        members: detail
            .members
            .into_iter()
            .map(|m| OrgMemberRow {
                user_id: m.user_id.to_string(),
                email: m.email,
                name: m.name,
                role: m.role.to_string(),
                joined: day(m.joined_at),
            })
            .collect(),
        sites: detail
            .sites
            .into_iter()
            .map(|s| OrgSiteRow {
                with_organization: detail.with_organization.contains(&s.id),
                id: s.id.to_string(),
                suspended_by_billing: s
                    .suspended
                    .as_deref()
                    .is_some_and(|words| words.starts_with("Suspended by billing")),
                status: s.status.as_str().replace('_', " "),
                failure: failure(&s),
                suspended: s.suspended,
                created: day(s.created_at),
                name: s.name,
                slug: s.slug,
                url: s.url,
            })
            .collect(),
        usage: crate::usage::usage_view(detail.usage),
        incidents: detail
            .incidents
            .into_iter()
            .map(crate::health::incident_view)
            .collect(),
        audit: detail
            .audit
            .into_iter()
            .map(|line| {
                crate::account::audit_view(line, platform::tenancy::audit::Reader::Operator)
            })
            .collect(),
        created: day(a.created_at),
        name: a.name,
        slug: a.slug,
    }
}

/// What an operator's action acts on: the id a form of the page sent as `field`.
#[cfg(feature = "ssr")]
pub(crate) fn chosen(raw: &str, field: &str, what: &str) -> Result<uuid::Uuid, AppError> {
    raw.trim().parse().map_err(|_| AppError::Invalid {
        field: field.into(),
        message: format!("Choose {what} of the list."),
    })
}

/// Suspends any organization's site with a reason its members read: operators only.
#[server(endpoint = "admin/suspend_site")]
pub async fn admin_suspend_site(
    #[server(default)] site: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (state, operator) = operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    platform::admin::suspend_site(
        &state.platform,
        &operator,
        chosen(&site, "site", "a site")?,
        &reason,
    )
    .await?;
    Ok(())
}

/// Suspends a whole organization (every site, no new one) with a reason: operators only.
#[server(endpoint = "admin/suspend_organization")]
pub async fn admin_suspend_organization(
    #[server(default)] organization: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (state, operator) = operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    let id = chosen(&organization, "organization", "an organization")?;
    platform::admin::suspend_organization(&state.platform, &operator, id, &reason).await?;
    Ok(())
}

/// Lifts an operator's suspension of an organization, with a reason: operators only.
#[server(endpoint = "admin/resume_organization")]
pub async fn admin_resume_organization(
    #[server(default)] organization: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (state, operator) = operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    let id = chosen(&organization, "organization", "an organization")?;
    platform::admin::resume_organization(&state.platform, &operator, id, &reason).await?;
    Ok(())
}

/// Local billing mode: puts an organization on a plan, with a reason: operators only.
#[server(endpoint = "admin/assign_plan")]
pub async fn admin_assign_plan(
    #[server(default)] organization: String,
    #[server(default)] plan: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (state, operator) = operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    let id = chosen(&organization, "organization", "an organization")?;
    platform::admin::assign_plan(&state.platform, &operator, id, &plan, &reason).await?;
    Ok(())
}

/// What failed on a site whose last pass failed (it can be retried): none for a site being
/// deleted (the reconciler goes on deleting it).
#[cfg(feature = "ssr")]
fn failure(site: &platform::sites::SiteSummary) -> Option<String> {
    use platform::sites::{DesiredState, SiteStatus};
    let what = match (site.status, site.desired_state) {
        (SiteStatus::Failed, DesiredState::Running) => "Provisioning failed",
        (SiteStatus::Failed, DesiredState::Stopped) => "Stopping failed",
        _ => return None,
    };
    Some(match site.status_reason.as_deref() {
        Some(why) if !why.is_empty() => format!("{what}: {why}"),
        _ => format!("{what}."),
    })
}

/// Extends an organization's grace period to the end of `until` (`YYYY-MM-DD`, UTC),
/// with a reason: operators only.
#[server(endpoint = "admin/extend_grace")]
pub async fn admin_extend_grace(
    #[server(default)] organization: String,
    #[server(default)] until: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (state, operator) = operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    let id = chosen(&organization, "organization", "an organization")?;
    let until = platform::admin::grace::parse_until(&until)?;
    platform::admin::grace::extend_grace(&state.platform, &operator, id, until, &reason).await?;
    Ok(())
}

/// Retries a site whose last pass failed, now, with a reason: operators only.
#[server(endpoint = "admin/retry_site")]
pub async fn admin_retry_site(
    #[server(default)] site: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (state, operator) = operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    let id = chosen(&site, "site", "a site")?;
    platform::admin::retry_provisioning(&state.platform, &operator, id, &reason).await?;
    Ok(())
}

/// Lifts an operator's suspension of a site, with a reason: operators only.
#[server(endpoint = "admin/resume_site")]
pub async fn admin_resume_site(
    #[server(default)] site: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (state, operator) = operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    platform::admin::resume_site(
        &state.platform,
        &operator,
        chosen(&site, "site", "a site")?,
        &reason,
    )
    .await?;
    Ok(())
}
