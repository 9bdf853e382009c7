//! Server functions for `/dashboard/sites`: list, create, show (with deployments) and act
//! on sites (health and logs are in `health`). Each takes the session, calls one `platform` function and
//! maps its error.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::session::require_membership;
#[cfg(feature = "ssr")]
use crate::state::app_state;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub url: String,
    pub status: String,
    pub waiting_for: Option<String>,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateChoice {
    pub name: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitesView {
    pub sites: Vec<SiteRow>,
    pub can_create: bool,
    pub templates: Vec<TemplateChoice>,
    /// e.g. "2 of 5 sites on the Pro plan".
    pub usage: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    pub step: String,
    pub status: String,
    pub detail: Option<String>,
    pub duration: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentView {
    pub reason: String,
    pub status: String,
    pub error: Option<String>,
    pub created: String,
    pub duration: Option<String>,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteView {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub url: String,
    pub template: String,
    pub desired_state: String,
    pub status: String,
    /// Whether the reconciler is done with the site for now (else the page keeps listening).
    pub settled: bool,
    pub status_reason: Option<String>,
    pub waiting_for: Option<String>,
    /// Why the site is suspended (visitors get the "suspended" page), when it is.
    pub suspended: Option<String>,
    /// (label, value) of the plan limits this site runs with.
    pub limits: Vec<(String, String)>,
    pub deployments: Vec<DeploymentView>,
    pub can_deploy: bool,
    pub can_delete: bool,
    /// The app's API token and webhook secret, for admins and owners.
    pub credentials: Option<(String, String)>,
}

impl SiteView {
    /// Whether the reconciler still has work to do (the page keeps listening).
    pub fn in_progress(&self) -> bool {
        !self.settled
    }
}

#[cfg(feature = "ssr")]
fn millis(ms: Option<i64>) -> Option<String> {
    ms.map(|ms| {
        if ms < 1000 {
            format!("{ms} ms")
        } else {
            format!("{:.1} s", ms as f64 / 1000.0)
        }
    })
}

#[cfg(feature = "ssr")]
fn parse_site_id(raw: &str) -> Result<uuid::Uuid, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// `n site` or `n sites`.
#[cfg(feature = "ssr")]
fn count_of(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// How many sites the organization has against its plan's limit, in words: "1 of 5 sites
/// on the Pro plan"; a plan without sites says so instead of "0 of 0 sites".
#[cfg(feature = "ssr")]
fn sites_against_plan(count: usize, limit: platform::catalog::plans::Limit, plan: &str) -> String {
    use platform::catalog::plans::Limit;
    match limit {
        Limit::Count(0) if count == 0 => format!(
            "The {plan} plan includes no sites: choose a plan with sites on the Billing page."
        ),
        Limit::Count(0) => format!(
            "{}; the {plan} plan includes none.",
            count_of(count, "site")
        ),
        Limit::Count(max) => format!(
            "{count} of {} on the {plan} plan",
            count_of(usize::try_from(max).unwrap_or(usize::MAX), "site")
        ),
        Limit::Unlimited => format!("{} on the {plan} plan (no limit)", count_of(count, "site")),
    }
}

#[server(endpoint = "sites/list")]
pub async fn list_sites() -> Result<SitesView, AppError> {
    use platform::tenancy::{Action, authorize};
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let sites = platform::sites::list(&state.platform, &me).await?;
    let overview =
        platform::tenancy::organizations::overview(&state.platform, me.organization_id).await?;
    let usage = match state.platform.plan(&overview.plan_id) {
        Some(plan) => sites_against_plan(sites.len(), plan.limits.sites, &plan.name),
        None => count_of(sites.len(), "site"),
    };
    Ok(SitesView {
        can_create: authorize(me.role, Action::ManageSites),
        templates: state
            .platform
            .templates
            .iter()
            .map(|t| TemplateChoice {
                name: t.name.clone(),
                label: t.label.clone(),
            })
            .collect(),
        usage,
        sites: sites
            .into_iter()
            .map(|s| SiteRow {
                id: s.id.to_string(),
                name: s.name,
                slug: s.slug,
                url: s.url,
                status: s.status.to_string(),
                waiting_for: s.waiting_for,
                created: crate::format::utc(s.created_at),
            })
            .collect(),
    })
}

/// Creates the site and returns its id; a plain form post is redirected to its page.
#[server(endpoint = "sites/create")]
pub async fn create_site(
    name: String,
    slug: String,
    template: Option<String>,
) -> Result<String, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let site = platform::sites::create(
        &state.platform,
        &me,
        &platform::sites::NewSite {
            name,
            slug,
            template: template.unwrap_or_default(),
        },
    )
    .await?;
    leptos_axum::redirect(&format!("/dashboard/sites/{}", site.id));
    Ok(site.id.to_string())
}

#[server(endpoint = "sites/detail")]
pub async fn site_detail(id: String) -> Result<SiteView, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    site_view(&state, &me, parse_site_id(&id)?, true).await
}

/// The site as `me` reads it: its state, its plan's limits, its latest deployments with
/// their steps, and with `credentials`, for admins and owners, the app's credentials.
#[cfg(feature = "ssr")]
pub(crate) async fn site_view(
    state: &crate::state::AppState,
    me: &platform::tenancy::Membership,
    site_id: uuid::Uuid,
    credentials: bool,
) -> Result<SiteView, AppError> {
    use platform::tenancy::{Action, authorize};
    let site = platform::sites::get(&state.platform, me, site_id).await?;
    let deployments = platform::sites::deployments(&state.platform, me, site_id, 10).await?;
    let overview =
        platform::tenancy::organizations::overview(&state.platform, me.organization_id).await?;
    let limits = state
        .platform
        .plan(&overview.plan_id)
        .map(|plan| {
            let l = &plan.limits;
            vec![
                ("Plan".to_owned(), plan.name.clone()),
                ("Memory".to_owned(), format!("{} MiB", l.memory_mb)),
                (
                    "CPU".to_owned(),
                    format!("{:.2} cores", f64::from(l.cpu_millis) / 1000.0),
                ),
                ("Processes".to_owned(), l.pids.to_string()),
                (
                    "Database connections".to_owned(),
                    l.db_connections.to_string(),
                ),
                ("Storage".to_owned(), format!("{} GiB", l.storage_mb / 1024)),
            ]
        })
        .unwrap_or_default();
    let can_delete = authorize(me.role, Action::ManageSites);
    let credentials = if can_delete && credentials {
        platform::sites::credentials(&state.platform, me, site_id)
            .await
            .ok()
            .map(|c| (c.api_token, c.webhook_secret))
    } else {
        None
    };
    Ok(SiteView {
        id: site.id.to_string(),
        name: site.name,
        slug: site.slug,
        url: site.url,
        template: site.template,
        desired_state: site.desired_state.to_string(),
        settled: site.status.is_settled(),
        status: site.status.to_string(),
        status_reason: site.status_reason,
        waiting_for: site.waiting_for,
        suspended: site.suspended,
        limits,
        deployments: deployments
            .into_iter()
            .map(|d| DeploymentView {
                reason: d.reason.to_string(),
                status: d.status.to_string(),
                error: d.error,
                created: crate::format::utc(d.created_at),
                duration: millis(d.duration_ms),
                steps: d
                    .steps
                    .into_iter()
                    .map(|s| StepView {
                        step: s.step.to_string(),
                        status: s.status.to_string(),
                        detail: s.detail,
                        duration: millis(s.duration_ms),
                    })
                    .collect(),
            })
            .collect(),
        can_deploy: authorize(me.role, Action::DeploySite),
        can_delete,
        credentials,
    })
}

/// Restart, stop, start or delete. Deleting needs the slug typed again as confirmation
/// (platform checks it: every client of `platform::sites::delete` does).
#[server(endpoint = "sites/act")]
pub async fn site_action(
    id: String,
    action: String,
    confirm: Option<String>,
) -> Result<(), AppError> {
    use platform::sites::{self, SiteAction};
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let site_id = parse_site_id(&id)?;
    if action == "delete" {
        sites::delete(
            &state.platform,
            &me,
            site_id,
            confirm.as_deref().unwrap_or_default(),
        )
        .await?;
        leptos_axum::redirect("/dashboard/sites");
    } else {
        sites::request(&state.platform, &me, site_id, SiteAction::parse(&action)?).await?;
        leptos_axum::redirect(&format!("/dashboard/sites/{site_id}"));
    }
    Ok(())
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use platform::catalog::plans::Limit;

    use super::sites_against_plan;

    #[test]
    fn the_site_count_reads_as_words_a_plan_without_sites_included() {
        assert_eq!(
            sites_against_plan(0, Limit::Count(0), "Free"),
            "The Free plan includes no sites: choose a plan with sites on the Billing page."
        );
        assert_eq!(
            sites_against_plan(2, Limit::Count(0), "Free"),
            "2 sites; the Free plan includes none."
        );
        assert_eq!(
            sites_against_plan(1, Limit::Count(1), "Starter"),
            "1 of 1 site on the Starter plan"
        );
        assert_eq!(
            sites_against_plan(0, Limit::Count(5), "Pro"),
            "0 of 5 sites on the Pro plan"
        );
        assert_eq!(
            sites_against_plan(1, Limit::Unlimited, "Business"),
            "1 site on the Business plan (no limit)"
        );
    }
}
