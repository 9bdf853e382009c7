//! Server function for `/dashboard`: the organization at a glance (its sites with their
//! status and this month against the plan's limits, open incidents, recent activity) and,
//! until its first steps are taken, a getting-started checklist.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::account::AuditView;
use crate::error::AppError;
use crate::health::IncidentView;
use crate::usage::LimitBar;

/// One step of the getting-started checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistStep {
    /// `site`, `teammate`, `domain`, `api-key`: for tests and styles.
    pub key: String,
    pub label: String,
    /// Where the step is taken (or, when the plan or the role stands in the way, what to
    /// do about it).
    pub href: String,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewSite {
    pub id: String,
    pub name: String,
    pub url: String,
    pub status: String,
    /// This month against the plan's limits.
    pub bars: Vec<LimitBar>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewView {
    pub plan_name: String,
    /// `November 2026`
    pub month: String,
    pub sites: Vec<OverviewSite>,
    pub incidents: Vec<IncidentView>,
    /// The latest audit entries; `None` when the role may not read the audit log.
    pub activity: Option<Vec<AuditView>>,
    /// `None` once every step is done.
    pub checklist: Option<Vec<ChecklistStep>>,
}

/// Entries of recent activity shown.
#[cfg(feature = "ssr")]
const ACTIVITY: i64 = 6;

#[server(endpoint = "overview")]
pub async fn overview() -> Result<OverviewView, AppError> {
    use platform::tenancy::audit::{self, Reader};
    use platform::tenancy::{Action, authorize, organizations};
    let state = crate::state::app_state()?;
    let (_, me) = crate::session::require_membership(&state).await?;
    let p = &state.platform;
    let sites = platform::sites::list(p, &me).await?;
    let report = platform::traffic::usage::report(p, &me, None, 1).await?;
    let incidents = platform::incidents::open_for(p, &me).await?;
    let activity = if authorize(me.role, Action::ViewAuditLog) {
        Some(
            audit::recent(p, &me, ACTIVITY)
                .await?
                .into_iter()
                .map(|line| crate::account::audit_view(line, Reader::Customer))
                .collect(),
        )
    } else {
        None
    };
    let steps = organizations::getting_started(p, &me).await?;
    let plan = organizations::overview(p, me.organization_id).await?;
    let plan_allows_sites = state
        .platform
        .plan(&plan.plan_id)
        .is_some_and(|plan| plan.limits.sites != platform::catalog::plans::Limit::Count(0));
    let checklist = (!steps.done()).then(|| {
        checklist(
            steps,
            plan_allows_sites,
            authorize(me.role, Action::ManageSites),
            sites.first().map(|s| s.id.to_string()),
        )
    });
    let bars = |id: uuid::Uuid| {
        report
            .sites
            .iter()
            .find(|month| month.site_id == id)
            .map(|month| crate::usage::site_limits(&report.limits, month).bars)
            .unwrap_or_default()
    };
    Ok(OverviewView {
        plan_name: report.plan_name.clone(),
        month: report.period.format("%B %Y").to_string(),
        sites: sites
            .into_iter()
            .map(|s| OverviewSite {
                bars: bars(s.id),
                id: s.id.to_string(),
                name: s.name,
                url: s.url,
                status: s.status.to_string(),
            })
            .collect(),
        incidents: incidents
            .into_iter()
            .map(crate::health::customer_incident_view)
            .collect(),
        activity,
        checklist,
    })
}

/// The four first steps, each linking to where it is taken. A site needs a plan with sites
/// (else the step leads to Billing); a domain belongs to a site (so it leads to the first).
#[cfg(feature = "ssr")]
fn checklist(
    steps: platform::tenancy::organizations::GettingStarted,
    plan_allows_sites: bool,
    may_create: bool,
    first_site: Option<String>,
) -> Vec<ChecklistStep> {
    let step = |key: &str, label: &str, href: String, done: bool| ChecklistStep {
        key: key.to_owned(),
        label: label.to_owned(),
        href,
        done,
    };
    let (site_label, site_href) = match (plan_allows_sites, may_create) {
        (true, true) => ("Create your first site", "/dashboard/sites/new"),
        (false, _) => (
            "Choose a plan that includes sites, then create one",
            "/dashboard/billing",
        ),
        (true, false) => ("Ask an admin to create the first site", "/dashboard/team"),
    };
    let domain_href = first_site.map_or_else(
        || "/dashboard/sites".to_owned(),
        |id| format!("/dashboard/sites/{id}#domains"),
    );
    vec![
        step("site", site_label, site_href.to_owned(), steps.site),
        step(
            "teammate",
            "Invite a teammate",
            "/dashboard/team".to_owned(),
            steps.teammate,
        ),
        step(
            "domain",
            "Add your own domain to a site",
            domain_href,
            steps.domain,
        ),
        step(
            "api-key",
            "Create an API key",
            "/dashboard/settings".to_owned(),
            steps.api_key,
        ),
    ]
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use platform::tenancy::organizations::GettingStarted;

    #[test]
    fn the_checklist_leads_to_where_each_step_is_taken() {
        let fresh = GettingStarted::default();
        let steps = checklist(fresh, true, true, None);
        let hrefs: Vec<&str> = steps.iter().map(|s| s.href.as_str()).collect();
        assert_eq!(
            hrefs,
            [
                "/dashboard/sites/new",
                "/dashboard/team",
                "/dashboard/sites",
                "/dashboard/settings"
            ]
        );
        // A plan without sites sends the customer to choose one, not to a form it refuses.
        let free = checklist(fresh, false, true, None);
        assert_eq!(free[0].href, "/dashboard/billing");
        assert!(free[0].label.starts_with("Choose a plan"));
        // With a site, the domain step opens that site's domains.
        let started = GettingStarted {
            site: true,
            ..fresh
        };
        let steps = checklist(started, true, true, Some("abc".into()));
        assert!(steps[0].done && !steps[2].done);
        assert_eq!(steps[2].href, "/dashboard/sites/abc#domains");
    }
}
