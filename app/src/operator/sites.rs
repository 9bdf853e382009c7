//! Server functions of the operators' site list: every organization's sites, searched,
//! filtered by state (failed: the failed provisionings) and plan, a page at a time.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One site on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteListRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub url: String,
    /// One of the list's states (`active`, `failed`, ...).
    pub state: String,
    /// Why: what failed and when it is tried next, or the suspension's reason.
    pub why: String,
    /// Its last pass failed and nothing is deleting it: an operator may retry it now.
    pub retryable: bool,
    pub organization_name: String,
    pub organization_slug: String,
    pub plan: String,
    /// Its custom domains, space-separated.
    pub domains: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteListView {
    pub rows: Vec<SiteListRow>,
    /// The `after` of the next page's link, if there is more.
    pub next: Option<String>,
    pub states: Vec<String>,
    /// Plan ids and names, for the plan filter.
    pub plans: Vec<(String, String)>,
    /// The orders offered: keys and words.
    pub sorts: Vec<(String, String)>,
}

/// Every organization's sites, searched by slug, name, domain, organization or member
/// email, filtered by state and plan, newest first, a page at a time: operators only.
#[server(endpoint = "admin/sites")]
pub async fn admin_sites(
    #[server(default)] q: String,
    #[server(default)] state: String,
    #[server(default)] plan: String,
    #[server(default)] sort: String,
    #[server(default)] after: String,
) -> Result<SiteListView, AppError> {
    use platform::admin::fleet::{self, SITE_STATES, SiteFilter};
    use platform::admin::lists::{self, PAGE};

    let (app, operator) = super::operator().await?;
    let platform = &app.platform;
    let mut filter = SiteFilter::parse(platform, &q, &state, &plan)?;
    filter.sort = platform::admin::lists::Sort::parse(&sort, &platform::admin::fleet::SITE_SORTS)?;
    let after = lists::parse_cursor(&after)?;
    let page = fleet::sites(platform, &operator, &filter, after.as_ref(), PAGE).await?;
    let rows = page
        .rows
        .into_iter()
        .map(|row| {
            let why = match row.state.as_str() {
                "failed" => format!(
                    "{} (failed {} times in a row; next try {})",
                    row.status_reason
                        .as_deref()
                        .unwrap_or("No reason recorded."),
                    row.failures,
                    crate::format::utc(row.next_attempt_at),
                ),
                // As recorded: operators read older free-text notes too.
                "suspended" => row.suspended_reason.unwrap_or_default(),
                _ => String::new(),
            };
            SiteListRow {
                id: row.id.to_string(),
                url: platform.site_url(&row.slug),
                retryable: row.state == "failed" && row.desired_state != "deleted",
                why,
                plan: super::plan_name(platform, &row.plan_id),
                domains: row.domains.unwrap_or_default(),
                created: row.created_at.format("%Y-%m-%d").to_string(),
                name: row.name,
                slug: row.slug,
                state: row.state,
                organization_name: row.organization_name,
                organization_slug: row.organization_slug,
            }
        })
        .collect();
    Ok(SiteListView {
        rows,
        next: page.next.map(|cursor| cursor.encode()),
        states: SITE_STATES.iter().map(|s| (*s).to_owned()).collect(),
        plans: super::plan_choices(platform),
        sorts: super::sort_choices(&platform::admin::fleet::SITE_SORTS, "Slug"),
    })
}

/// `/admin/sites/:id`: a site as its customer sees it (state, deployments, health, log and
/// usage, without its credentials), with what only operators see and the actions they may
/// take on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminSiteView {
    pub id: String,
    pub slug: String,
    pub organization_name: String,
    pub organization_slug: String,
    pub plan: String,
    /// Until its deletion is done: the site as its members see it, its health and its log.
    pub live: Option<LiveSite>,
    pub container_id: Option<String>,
    /// `3 failed passes in a row; next try …`, after failures.
    pub failures: Option<String>,
    /// Why it is suspended, as recorded (`operator: …` or `billing: …`).
    pub suspended: Option<String>,
    pub suspended_by_billing: bool,
    pub with_organization: bool,
    /// Which actions its state allows.
    pub retryable: bool,
    pub reconcilable: bool,
    pub deletable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSite {
    pub site: crate::sites::SiteView,
    pub health: crate::health::HealthView,
    pub logs: Vec<String>,
    /// The last 30 days and this month against the plan's limits.
    pub usage: crate::usage::UsageView,
}

/// One site of any organization, by id: operators only.
#[server(endpoint = "admin/site")]
pub async fn admin_site(#[server(default)] site: String) -> Result<AdminSiteView, AppError> {
    let (app, operator) = super::operator().await?;
    let id = site.trim().parse().map_err(|_| AppError::NotFound)?;
    let detail = platform::admin::detail::site(&app.platform, &operator, id).await?;
    let facts = detail.facts;
    let live = if facts.status == "deleted" {
        None
    } else {
        let reading = &detail.reading;
        // The customer's secrets are theirs: never unsealed here.
        let site =
            crate::sites::site_view(&app, reading, id, None, platform::tenancy::Reader::Operator)
                .await?;
        let health =
            crate::health::health_view(&app, reading, id, platform::tenancy::Reader::Operator)
                .await?;
        let logs = crate::health::logs_view(&app, reading, id, "")
            .await?
            .lines
            .unwrap_or_default();
        let usage = crate::usage::usage_view(
            platform::traffic::usage::report(&app.platform, reading, Some(id), crate::usage::DAYS)
                .await?,
        );
        Some(LiveSite {
            site,
            health,
            logs,
            usage,
        })
    };
    let deleting = facts.desired_state == "deleted" || facts.status == "deleted";
    Ok(AdminSiteView {
        id: facts.id.to_string(),
        plan: super::plan_name(&app.platform, &facts.plan_id),
        live,
        container_id: facts.container_id,
        failures: (facts.failures > 0).then(|| {
            format!(
                "{} failed passes in a row; next try {}",
                facts.failures,
                crate::format::utc(facts.next_attempt_at)
            )
        }),
        suspended_by_billing: facts
            .suspended_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("billing:")),
        suspended: facts.suspended_reason,
        with_organization: facts.suspended_with_organization,
        retryable: facts.status == "failed" && !deleting,
        reconcilable: facts.converged && facts.status != "failed" && !deleting,
        deletable: !deleting,
        slug: facts.slug,
        organization_name: facts.organization_name,
        organization_slug: facts.organization_slug,
    })
}

/// Runs a site's whole reconcile pass again, now, with a reason: operators only.
#[server(endpoint = "admin/reconcile_site")]
pub async fn admin_reconcile_site(
    #[server(default)] site: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (app, operator) = super::operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    let id = super::chosen(&site, "site", "a site")?;
    platform::admin::passes::force_reconcile(&app.platform, &operator, id, &reason).await?;
    Ok(())
}

/// Deletes any organization's site once its slug is typed (`confirm`), with a reason:
/// operators only.
#[server(endpoint = "admin/delete_site")]
pub async fn admin_delete_site(
    #[server(default)] site: String,
    #[server(default)] confirm: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let (app, operator) = super::operator().await?;
    let reason = platform::admin::Reason::parse(&reason)?;
    let id = super::chosen(&site, "site", "a site")?;
    platform::admin::passes::delete_site(&app.platform, &operator, id, &confirm, &reason).await?;
    Ok(())
}
