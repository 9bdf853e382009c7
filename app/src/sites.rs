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
    /// Set when the plan has no room for another site: what to do about it (shown instead
    /// of "Create site", so nobody fills in a form that would be refused).
    pub no_room: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    /// The step's code (`database`, `health`), for tests and styles.
    pub step: String,
    /// The step in words.
    pub title: String,
    pub status: String,
    pub detail: Option<String>,
    pub duration: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentView {
    /// Why it ran, in words.
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
    /// A page of deployments, newest first ([`DEPLOYMENTS_PER_PAGE`]).
    pub deployments: Vec<DeploymentView>,
    /// The cursor of the next (older) page, when there is one.
    pub older: Option<String>,
    /// Whether this page is not the latest (so the page offers the way back).
    pub paged: bool,
    pub can_deploy: bool,
    pub can_manage: bool,
    /// The app's API token and webhook secret, for admins and owners.
    pub credentials: Option<(String, String)>,
    /// Whether "Open editor" is offered: the built-in CMS, running, for a customer.
    pub editor: bool,
}

/// The environment settings a site's application offers, with what is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub settings: Vec<SettingRow>,
    /// Whether the reader may change them (owners and admins).
    pub can_manage: bool,
}

/// One setting of a site, as its form shows it: a secret's value is never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingRow {
    pub key: String,
    pub label: String,
    pub help: String,
    pub secret: bool,
    pub value: Option<String>,
    pub is_set: bool,
}

impl SettingRow {
    /// The name of its input in the settings form: `values[KEY]` (a map for the server
    /// function), also the name its error comes back under.
    pub fn input(&self) -> String {
        format!("values[{}]", self.key)
    }
}

impl SiteView {
    /// Whether the reconciler still has work to do (the page keeps listening).
    pub fn in_progress(&self) -> bool {
        !self.settled
    }
}

/// Deployments shown on one page of a site's history.
pub const DEPLOYMENTS_PER_PAGE: usize = 5;

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
        Limit::Count(0) if count == 0 => format!("The {plan} plan includes no sites."),
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

/// What to do when the plan has no room for another site (`None` while it has).
#[cfg(feature = "ssr")]
fn no_room(count: usize, limit: platform::catalog::plans::Limit, plan: &str) -> Option<String> {
    use platform::catalog::plans::Limit;
    match limit {
        Limit::Count(0) => Some(format!(
            "The {plan} plan includes no sites. Choose a plan with sites on the Billing page to create one."
        )),
        Limit::Count(max) if count >= usize::try_from(max).unwrap_or(usize::MAX) => Some(format!(
            "Every site of the {plan} plan is in use. Choose a larger plan on the Billing page, or delete a site, to create another."
        )),
        _ => None,
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
    let plan = state.platform.plan(&overview.plan_id);
    let usage = match plan {
        Some(plan) => sites_against_plan(sites.len(), plan.limits.sites, &plan.name),
        None => count_of(sites.len(), "site"),
    };
    let no_room = plan.and_then(|plan| no_room(sites.len(), plan.limits.sites, &plan.name));
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
        no_room,
        sites: sites
            .into_iter()
            .map(|s| SiteRow {
                id: s.id.to_string(),
                name: s.name,
                slug: s.slug,
                url: s.url,
                status: s.status.to_string(),
                waiting_for: s.waiting_for.map(|_| "the platform".to_owned()),
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

/// The site, with the page of its deployments before `before` (the latest without).
#[server(endpoint = "sites/detail")]
pub async fn site_detail(id: String, before: Option<String>) -> Result<SiteView, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let before = before
        .filter(|b| !b.is_empty())
        .map(|b| b.parse().map_err(|_| AppError::NotFound))
        .transpose()?;
    site_view(
        &state,
        &me,
        parse_site_id(&id)?,
        before,
        platform::tenancy::Reader::Customer,
    )
    .await
}

/// What a customer reads where the platform failed: no internals, and what happens next.
#[cfg(feature = "ssr")]
const FAILED_FOR_CUSTOMERS: &str = "This attempt failed on our side. Slipway tries again by itself, and its operators are alerted.";

/// The site as `me` reads it: its state, its plan's limits, its latest deployments with
/// their steps. A customer reads them in plain words (and, as an admin or owner, the app's
/// credentials); an operator reads each step's own report.
#[cfg(feature = "ssr")]
pub(crate) async fn site_view(
    state: &crate::state::AppState,
    me: &platform::tenancy::Membership,
    site_id: uuid::Uuid,
    before: Option<uuid::Uuid>,
    reader: platform::tenancy::Reader,
) -> Result<SiteView, AppError> {
    use platform::sites::{SiteStatus, StepStatus};
    use platform::tenancy::{Action, Reader, authorize};
    let customer = reader == Reader::Customer;
    let site = platform::sites::get(&state.platform, me, site_id).await?;
    // One more than a page: whether an older page exists.
    let mut deployments = platform::sites::deployments(
        &state.platform,
        me,
        site_id,
        before,
        DEPLOYMENTS_PER_PAGE as i64 + 1,
    )
    .await?;
    let older = (deployments.len() > DEPLOYMENTS_PER_PAGE).then(|| {
        deployments.truncate(DEPLOYMENTS_PER_PAGE);
        deployments
            .last()
            .map(|d| d.id.to_string())
            .unwrap_or_default()
    });
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
    let can_manage = authorize(me.role, Action::ManageSites);
    let editor = customer
        && site.status == SiteStatus::Active
        && state
            .platform
            .template(&site.template)
            .is_some_and(|t| t.builtin);
    let credentials = if can_manage && customer {
        platform::sites::credentials(&state.platform, me, site_id)
            .await
            .ok()
            .map(|c| (c.api_token, c.webhook_secret))
    } else {
        None
    };
    // A customer reads why in words that name no internals, and the app by its label.
    let (status_reason, waiting_for, template) = if customer {
        let reason = match (site.status, &site.waiting_for) {
            (_, Some(_)) => Some(
                "Slipway is waiting for a part of the platform to come back; the site continues by itself."
                    .to_owned(),
            ),
            (SiteStatus::Failed, None) => Some(FAILED_FOR_CUSTOMERS.to_owned()),
            _ => None,
        };
        let template = state
            .platform
            .template(&site.template)
            .map_or_else(|| site.template.clone(), |t| t.label.clone());
        (
            reason,
            site.waiting_for.map(|_| "the platform".to_owned()),
            template,
        )
    } else {
        (site.status_reason, site.waiting_for, site.template)
    };
    Ok(SiteView {
        id: site.id.to_string(),
        name: site.name,
        slug: site.slug,
        url: site.url,
        template,
        desired_state: site.desired_state.to_string(),
        settled: site.status.is_settled(),
        status: site.status.to_string(),
        status_reason,
        waiting_for,
        suspended: site.suspended,
        limits,
        older,
        paged: before.is_some(),
        deployments: deployments
            .into_iter()
            .map(|d| DeploymentView {
                reason: d.reason.title().to_owned(),
                status: d.status.to_string(),
                error: d.error.map(|e| {
                    if customer {
                        FAILED_FOR_CUSTOMERS.to_owned()
                    } else {
                        e
                    }
                }),
                created: crate::format::utc(d.created_at),
                duration: millis(d.duration_ms),
                steps: d
                    .steps
                    .into_iter()
                    .map(|s| StepView {
                        step: s.step.to_string(),
                        title: s.step.title().to_owned(),
                        status: s.status.to_string(),
                        detail: match s.status {
                            _ if !customer => s.detail,
                            StepStatus::Succeeded if s.step.reports_plainly() => s.detail,
                            StepStatus::Running
                                if s.detail
                                    .as_deref()
                                    .is_some_and(|d| d.starts_with("waiting")) =>
                            {
                                Some("Waiting for the platform".to_owned())
                            }
                            StepStatus::Failed => Some("Failed".to_owned()),
                            _ => None,
                        },
                        duration: millis(s.duration_ms),
                    })
                    .collect(),
            })
            .collect(),
        can_deploy: authorize(me.role, Action::DeploySite),
        can_manage,
        credentials,
        editor,
    })
}

/// The site's settings form: its own request, so a page that refreshes itself on every
/// event never resets what someone is typing into it.
#[server(endpoint = "sites/settings/list")]
pub async fn site_settings(id: String) -> Result<SettingsView, AppError> {
    use platform::tenancy::{Action, authorize};
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let settings = platform::sites::settings::list(&state.platform, &me, parse_site_id(&id)?)
        .await?
        .into_iter()
        .map(|s| SettingRow {
            key: s.key,
            label: s.label,
            help: s.help,
            secret: s.secret,
            value: s.value,
            is_set: s.is_set,
        })
        .collect();
    Ok(SettingsView {
        settings,
        can_manage: authorize(me.role, Action::ManageSites),
    })
}

/// Signs the member into the site's own editor (a single-use ticket, valid a minute).
#[server(endpoint = "sites/open-editor")]
pub async fn open_editor(id: String) -> Result<(), AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let url = platform::sites::editor::open(&state.platform, &me, parse_site_id(&id)?).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

/// Gives a site a new display name; its address stays.
#[server(endpoint = "sites/rename")]
pub async fn rename_site(id: String, name: String) -> Result<String, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let name = platform::sites::rename(&state.platform, &me, parse_site_id(&id)?, &name).await?;
    Ok(name.as_str().to_owned())
}

/// Saves the site's settings form (`values[KEY]` each); a change restarts the site with
/// them. An empty secret keeps the secret.
#[server(endpoint = "sites/settings")]
pub async fn save_site_settings(
    id: String,
    values: Option<std::collections::BTreeMap<String, String>>,
) -> Result<usize, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let changed = platform::sites::settings::save(
        &state.platform,
        &me,
        parse_site_id(&id)?,
        &values.unwrap_or_default(),
        &[],
    )
    .await
    .map_err(|error| as_setting_inputs(error.into()))?;
    Ok(changed.len())
}

/// Removes one secret setting of the site (a secret is never emptied by leaving its field
/// empty).
#[server(endpoint = "sites/settings/unset")]
pub async fn unset_site_setting(id: String, key: String) -> Result<(), AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    platform::sites::settings::save(
        &state.platform,
        &me,
        parse_site_id(&id)?,
        &Default::default(),
        &[key],
    )
    .await?;
    Ok(())
}

/// The platform names a refused setting by its key; the form's input is `values[KEY]`.
#[cfg(feature = "ssr")]
fn as_setting_inputs(error: AppError) -> AppError {
    let input = |key: String| format!("values[{key}]");
    match error {
        AppError::Invalid { field, message } => AppError::Invalid {
            field: input(field),
            message,
        },
        AppError::InvalidFields(fields) => AppError::InvalidFields(
            fields
                .into_iter()
                .map(|(field, message)| (input(field), message))
                .collect(),
        ),
        other => other,
    }
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

    use super::{no_room, sites_against_plan};

    #[test]
    fn a_full_plan_says_what_to_do_instead_of_offering_the_form() {
        assert!(no_room(0, Limit::Count(0), "Free").is_some_and(|s| s.contains("Billing page")));
        assert!(no_room(1, Limit::Count(1), "Starter").is_some_and(|s| s.contains("larger plan")));
        assert_eq!(no_room(0, Limit::Count(1), "Starter"), None);
        assert_eq!(no_room(40, Limit::Unlimited, "Business"), None);
    }

    #[test]
    fn the_site_count_reads_as_words_a_plan_without_sites_included() {
        assert_eq!(
            sites_against_plan(0, Limit::Count(0), "Free"),
            "The Free plan includes no sites."
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
