//! Server functions for operations: a site's health (uptime, response times, restarts,
//! incidents, resources), its logs, the organization's open incidents (the banner), each
//! member's alert choices, and the operators' incident feed.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::session::require_membership;
#[cfg(feature = "ssr")]
use crate::state::app_state;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayCell {
    pub day: String,
    /// Share of checks up, None without checks.
    pub up: Option<f64>,
    pub checks: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentView {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub site_id: Option<String>,
    pub site_name: Option<String>,
    pub organization: String,
    pub summary: String,
    pub opened: String,
    pub resolved: Option<String>,
    pub timeline: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    /// `up`, `degraded`, `down`, `crash_looping`, or `unknown` before the first check.
    pub state: String,
    pub since: Option<String>,
    pub reason: Option<String>,
    pub days: Vec<DayCell>,
    /// 24 h, 7 d, 30 d: e.g. "99.95%" or "no data".
    pub uptime: [String; 3],
    /// (hour label, p50 ms, p95 ms) over the last 24 hours.
    pub latency: Vec<(String, Option<u32>, Option<u32>)>,
    /// (when, what) of the monitor's restarts, newest first.
    pub restarts: Vec<(String, String)>,
    pub incidents: Vec<IncidentView>,
    /// e.g. ("Memory", "42 MiB of 512 MiB", share used).
    pub resources: Vec<(String, String, f64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsView {
    /// None: the member's role may not read logs.
    pub lines: Option<Vec<String>>,
    pub filter: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertChoice {
    pub kind: String,
    pub label: String,
    pub enabled: bool,
}

#[cfg(feature = "ssr")]
fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl IncidentView {
    /// Where its details are: its site's page, or the overview.
    pub fn href(&self) -> String {
        self.site_id.as_ref().map_or_else(
            || "/dashboard".to_owned(),
            |id| format!("/dashboard/sites/{id}"),
        )
    }
}

/// An incident as a customer reads it: a failed setup says what happens next instead of the
/// platform's own error (which names images, roles and containers).
#[cfg(feature = "ssr")]
pub(crate) fn customer_incident_view(i: platform::incidents::Incident) -> IncidentView {
    const PLAIN: &str =
        "An attempt to set up the site failed on our side; Slipway tries again by itself.";
    let internal = (i.kind == platform::incidents::IncidentKind::ProvisioningFailed)
        .then(|| i.summary.clone());
    let mut view = incident_view(i);
    // The platform's error opens the timeline too; a failed restart names the engine's.
    for (_, message) in &mut view.timeline {
        if internal.as_deref() == Some(message.as_str()) {
            *message = PLAIN.to_owned();
        } else if message.starts_with("restart failed") {
            *message = "A restart failed on our side; Slipway tries again.".to_owned();
        }
    }
    if internal.is_some() {
        view.summary = PLAIN.to_owned();
    }
    view
}

/// An incident as operators read it, with the platform's own words.
#[cfg(feature = "ssr")]
pub(crate) fn incident_view(i: platform::incidents::Incident) -> IncidentView {
    IncidentView {
        id: i.id.to_string(),
        kind: i.kind.as_str().to_owned(),
        title: i.kind.title().to_owned(),
        site_id: i.site_id.map(|s| s.to_string()),
        site_name: i.site_name,
        organization: i.organization_name,
        summary: if i.detail.is_empty() {
            i.summary
        } else {
            format!("{}: {}", i.detail, i.summary)
        },
        opened: when(i.opened_at),
        resolved: i.resolved_at.map(when),
        timeline: i
            .timeline
            .into_iter()
            .map(|(at, message)| (at.format("%H:%M:%S").to_string(), message))
            .collect(),
    }
}

#[cfg(feature = "ssr")]
fn percent(share: Option<f64>) -> String {
    match share {
        Some(share) => format!("{:.2}%", share * 100.0),
        None => "no data".to_owned(),
    }
}

#[server(endpoint = "sites/health")]
pub async fn site_health(id: String) -> Result<HealthView, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let site_id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    health_view(&state, &me, site_id, platform::tenancy::Reader::Customer).await
}

/// The site's health as `me` reads it.
#[cfg(feature = "ssr")]
pub(crate) async fn health_view(
    state: &crate::state::AppState,
    me: &platform::tenancy::Membership,
    site_id: uuid::Uuid,
    reader: platform::tenancy::Reader,
) -> Result<HealthView, AppError> {
    let report = platform::monitor::checks::report(&state.platform, me, site_id).await?;
    let incidents = platform::incidents::for_site(&state.platform, me, site_id, 10).await?;
    let overview =
        platform::tenancy::organizations::overview(&state.platform, me.organization_id).await?;
    let limits = state.platform.plan(&overview.plan_id).map(|p| &p.limits);
    let mut resources = Vec::new();
    if let (Some(limits), Some(bytes)) = (limits, report.memory_bytes) {
        let limit = f64::from(limits.memory_mb) * 1024.0 * 1024.0;
        resources.push((
            "Memory".to_owned(),
            format!(
                "{:.0} MiB of {} MiB",
                bytes as f64 / 1024.0 / 1024.0,
                limits.memory_mb
            ),
            (bytes as f64 / limit).clamp(0.0, 1.0),
        ));
    }
    if let (Some(limits), Some(cpu)) = (limits, report.cpu_percent) {
        let cores = f64::from(limits.cpu_millis) / 1000.0;
        resources.push((
            "CPU".to_owned(),
            format!("{:.1}% of one core (limit {cores:.2} cores)", cpu),
            (f64::from(cpu) / 100.0 / cores).clamp(0.0, 1.0),
        ));
    }
    Ok(HealthView {
        state: report.state.map_or("unknown", |s| s.as_str()).to_owned(),
        since: report.since.map(when),
        reason: report.reason,
        days: report
            .days
            .into_iter()
            .map(|(day, checks, up)| DayCell {
                day: day.to_string(),
                up: (checks > 0).then(|| up as f64 / checks as f64),
                checks,
            })
            .collect(),
        uptime: report.uptime.map(percent),
        latency: report
            .latency
            .into_iter()
            .map(|(hour, p50, p95)| (hour.format("%H:00").to_string(), p50, p95))
            .collect(),
        restarts: report
            .restarts
            .into_iter()
            .map(|(at, attempt, action, reason, waited)| {
                (
                    when(at),
                    format!(
                        "{action} (attempt {attempt}, after waiting {:.1} s): {reason}",
                        waited as f64 / 1000.0
                    ),
                )
            })
            .collect(),
        incidents: incidents
            .into_iter()
            .map(match reader {
                platform::tenancy::Reader::Customer => customer_incident_view,
                platform::tenancy::Reader::Operator => incident_view,
            })
            .collect(),
        resources,
    })
}

/// The last lines of the site's log, those containing `filter` when it is not empty.
#[server(endpoint = "sites/logs")]
pub async fn site_logs(id: String, filter: String) -> Result<LogsView, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let site_id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    logs_view(&state, &me, site_id, &filter).await
}

/// The last lines of the site's log as `me` reads them, those containing `filter`.
#[cfg(feature = "ssr")]
pub(crate) async fn logs_view(
    state: &crate::state::AppState,
    me: &platform::tenancy::Membership,
    site_id: uuid::Uuid,
    filter: &str,
) -> Result<LogsView, AppError> {
    use platform::tenancy::{Action, authorize};
    // Scoped like every read: another organization's site does not exist here.
    platform::sites::get(&state.platform, me, site_id).await?;
    let filter = filter.chars().take(200).collect::<String>();
    if !authorize(me.role, Action::ViewLogs) {
        return Ok(LogsView {
            lines: None,
            filter,
        });
    }
    let lines = match &state.runtime {
        Some(runtime) => {
            platform::provision::container_logs(
                &state.platform,
                runtime,
                me,
                site_id,
                platform::provision::LOG_LINES_SHOWN,
            )
            .await?
        }
        None => vec!["(this server process does not manage containers)".to_owned()],
    };
    let needle = filter.to_lowercase();
    Ok(LogsView {
        lines: Some(
            lines
                .into_iter()
                .filter(|line| needle.is_empty() || line.to_lowercase().contains(&needle))
                .collect(),
        ),
        filter,
    })
}

/// The organization's open incidents, for the banner.
#[server(endpoint = "incidents/open")]
pub async fn open_incidents() -> Result<Vec<IncidentView>, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    Ok(platform::incidents::open_for(&state.platform, &me)
        .await?
        .into_iter()
        .map(customer_incident_view)
        .collect())
}

#[server(endpoint = "alerts/list")]
pub async fn alert_choices() -> Result<Vec<AlertChoice>, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    Ok(platform::incidents::preferences(&state.platform, &me)
        .await?
        .into_iter()
        .map(|(kind, enabled)| AlertChoice {
            kind: kind.as_str().to_owned(),
            label: kind.label().to_owned(),
            enabled,
        })
        .collect())
}

/// Saves the member's choice of alert mails: the kinds listed in `enabled` are on, the
/// others off (a form sends only its checked boxes).
#[server(endpoint = "alerts/save")]
pub async fn save_alert_choices(enabled: Option<Vec<String>>) -> Result<(), AppError> {
    use platform::incidents::AlertKind;
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let enabled = enabled
        .unwrap_or_default()
        .iter()
        .map(|raw| {
            AlertKind::parse(raw).ok_or_else(|| AppError::Invalid {
                field: "enabled".to_owned(),
                message: format!("{raw:?} is not a kind of alert."),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    platform::incidents::set_preferences(&state.platform, &me, &enabled).await?;
    Ok(())
}

/// Every organization's incidents, newest first: operators only.
#[server(endpoint = "admin/incidents")]
pub async fn incident_feed() -> Result<Vec<IncidentView>, AppError> {
    let state = app_state()?;
    crate::account::operator_check().await?;
    Ok(platform::incidents::feed(&state.platform, 100)
        .await?
        .into_iter()
        .map(incident_view)
        .collect())
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use platform::incidents::{Incident, IncidentKind};

    use super::{customer_incident_view, incident_view};

    fn incident(kind: IncidentKind, summary: &str) -> Incident {
        Incident {
            id: uuid::Uuid::nil(),
            organization_id: uuid::Uuid::nil(),
            organization_name: "Acme".into(),
            site_id: None,
            site_name: Some("blog".into()),
            kind,
            detail: String::new(),
            summary: summary.into(),
            opened_at: chrono::Utc::now(),
            resolved_at: None,
            timeline: Vec::new(),
        }
    }

    #[test]
    fn customers_read_no_platform_error_in_a_failed_setup() {
        let internal = "image slipway-site:latest is not on this Docker host";
        let mut failed = incident(IncidentKind::ProvisioningFailed, internal);
        failed.timeline = vec![
            (chrono::Utc::now(), internal.to_owned()),
            (
                chrono::Utc::now(),
                "failed again, retried in 60 s".to_owned(),
            ),
        ];
        let read = customer_incident_view(failed.clone());
        assert!(!read.summary.contains("slipway-site"));
        assert!(
            read.timeline
                .iter()
                .all(|(_, m)| !m.contains("slipway-site")),
            "{:?}",
            read.timeline
        );
        assert_eq!(read.timeline[1].1, "failed again, retried in 60 s");
        assert_eq!(incident_view(failed).summary, internal, "operators read it");
        // A site's own trouble is the customer's to read as it is.
        let down = incident(IncidentKind::Down, "no answer on /health for 30 s");
        assert_eq!(
            customer_incident_view(down).summary,
            "no answer on /health for 30 s"
        );
    }
}
