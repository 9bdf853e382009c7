//! One organization as its operators see it: who it is and what it pays, its members, its
//! sites with their suspensions, this month's usage against its plan, its incidents and
//! its audit log. The parts come from the same functions as the customer's own pages,
//! read with the organization's administrator's view ([`Operator::reading`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Operator;
use crate::Platform;
use crate::billing::revenue::{LIVE, Live};
use crate::incidents::{self, Incident};
use crate::kernel::{Error, Result};
use crate::sites::{self, SiteSummary};
use crate::tenancy::audit::{self, LogLine};
use crate::tenancy::members::{self, Member};
use crate::traffic::usage::{self, Report};

/// Incidents and audit entries shown, newest first.
pub const RECENT: i64 = 30;

/// Who the organization is and where its billing stands.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan_id: String,
    pub created_at: DateTime<Utc>,
    /// Stripe's subscription status; `None` without a subscription.
    pub billing_status: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// `monthly` or `yearly`, with a subscription.
    pub billing_interval: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    pub current_period_end: Option<DateTime<Utc>>,
    /// Since when payments fail, if they do.
    pub payment_failing_since: Option<DateTime<Utc>>,
    /// A canceled subscription's sites are deleted then, unless it subscribes again.
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// What it counts for in monthly revenue now (see `docs/metrics.md`).
    pub mrr_cents: i64,
    /// An operator's suspension of the whole organization.
    pub suspended_at: Option<DateTime<Utc>>,
    pub suspended_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationDetail {
    pub account: Account,
    pub members: Vec<Member>,
    /// Newest first; deleted ones left out.
    pub sites: Vec<SiteSummary>,
    /// The sites the organization's suspension suspended.
    pub with_organization: Vec<Uuid>,
    /// The last 30 days and this month per site, with the plan's limits.
    pub usage: Report,
    /// Open and resolved, newest first.
    pub incidents: Vec<Incident>,
    pub audit: Vec<LogLine>,
}

/// The organization with this slug, whole; `NotFound` if there is none.
pub async fn organization(
    platform: &Platform,
    operator: &Operator,
    slug: &str,
) -> Result<OrganizationDetail> {
    if !super::plausible_slug(slug.trim()) {
        return Err(Error::NotFound);
    }
    let live = Live::new(platform, Utc::now());
    let sql = format!(
        "WITH live AS ({LIVE})
         SELECT o.id, o.name, o.slug, o.plan_id, o.created_at, o.suspended_at, o.suspended_reason,
                b.status AS billing_status, b.stripe_customer_id, b.stripe_subscription_id,
                b.billing_interval, b.cancel_at_period_end, b.current_period_end,
                b.payment_failing_since, b.grace_ends_at,
                coalesce((SELECT sum(l.mrr_cents) FROM live l
                           WHERE l.organization_id = o.id), 0)::bigint AS mrr_cents
           FROM organizations o
           LEFT JOIN billing_accounts b ON b.organization_id = o.id
          WHERE o.slug = $6"
    );
    let account = live
        .bind(sqlx::query_as::<_, Account>(&sql))
        .bind(slug.trim())
        .fetch_optional(&platform.db)
        .await?
        .ok_or(Error::NotFound)?;
    let reading = operator.reading(account.id);
    let with_organization = sqlx::query_scalar!(
        "SELECT id FROM sites WHERE organization_id = $1 AND suspended_with_organization",
        account.id
    )
    .fetch_all(&platform.db)
    .await?;
    Ok(OrganizationDetail {
        members: members::members(platform, &reading).await?,
        sites: sites::list(platform, &reading).await?,
        with_organization,
        usage: usage::report(platform, &reading, None, 30).await?,
        incidents: incidents::for_organization(platform, &reading, RECENT).await?,
        audit: audit::recent_for(platform, &reading, RECENT, audit::Reader::Operator).await?,
        account,
    })
}

/// What an operator's site page shows besides the customer's own view of the site (which
/// the app reads with [`SiteDetail::reading`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SiteFacts {
    pub id: Uuid,
    pub slug: String,
    pub status: String,
    pub desired_state: String,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub organization_slug: String,
    pub plan_id: String,
    pub container_id: Option<String>,
    /// Failed passes in a row, and when the reconciler tries it next.
    pub failures: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// The reconciler has reached its current generation (nothing is waiting for a pass).
    pub converged: bool,
    /// As recorded (`operator: …`, `billing: …`).
    pub suspended_reason: Option<String>,
    pub suspended_with_organization: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteDetail {
    pub facts: SiteFacts,
    /// The organization's administrator's view, to read the site through the customer's
    /// own read functions (never to act: operators act through this module's functions).
    pub reading: crate::tenancy::Membership,
}

/// Any organization's site, deleted ones included (their history stays readable).
pub async fn site(platform: &Platform, operator: &Operator, site_id: Uuid) -> Result<SiteDetail> {
    let facts = sqlx::query_as::<_, SiteFacts>(
        "SELECT s.id, s.slug, s.status, s.desired_state, s.organization_id,
                o.name AS organization_name, o.slug AS organization_slug, o.plan_id,
                s.container_id, s.failures, s.next_attempt_at,
                s.observed_generation >= s.generation AS converged,
                s.suspended_reason, s.suspended_with_organization
           FROM sites s JOIN organizations o ON o.id = s.organization_id
          WHERE s.id = $1",
    )
    .bind(site_id)
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(SiteDetail {
        reading: operator.reading(facts.organization_id),
        facts,
    })
}
