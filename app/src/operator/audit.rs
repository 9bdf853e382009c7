//! Server function of the operator audit log: every action operators took, with its
//! reason, searched and filtered by action, newest first, a page at a time.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One operator action on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditListRow {
    pub id: String,
    pub at: String,
    pub action: String,
    pub operator: String,
    /// What was acted on, and the operator page about it if there is one.
    pub subject: String,
    pub subject_link: Option<String>,
    pub reason: String,
    pub organization_name: String,
    pub organization_slug: String,
    /// Anything else recorded (`{"kind": "send_mail"}`), or empty.
    pub details: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditListView {
    pub rows: Vec<AuditListRow>,
    /// The `after` of the next page's link, if there is more.
    pub next: Option<String>,
    /// The actions operators have taken, for the action filter.
    pub actions: Vec<String>,
    /// The orders offered: keys and words.
    pub sorts: Vec<(String, String)>,
}

/// Every action operators took, searched by action, operator, subject, reason or
/// organization, filtered by action, newest first, a page at a time: operators only.
#[server(endpoint = "admin/audit")]
pub async fn admin_audit(
    #[server(default)] q: String,
    #[server(default)] action: String,
    #[server(default)] sort: String,
    #[server(default)] after: String,
) -> Result<AuditListView, AppError> {
    use platform::admin::lists::{self, PAGE};
    use platform::admin::log::{self, LogFilter};

    let (app, operator) = super::operator().await?;
    let mut filter = LogFilter::parse(&q, &action)?;
    filter.sort = platform::admin::lists::Sort::parse(&sort, &platform::admin::log::LOG_SORTS)?;
    let after = lists::parse_after_id(&after)?;
    let page = log::entries(&app.platform, &operator, &filter, after, PAGE).await?;
    Ok(AuditListView {
        rows: page
            .rows
            .into_iter()
            .map(|row| {
                let subject = row.subject.unwrap_or_default();
                AuditListRow {
                    id: row.id.to_string(),
                    at: crate::format::utc(row.at),
                    subject_link: subject_link(&subject),
                    subject,
                    action: row.action,
                    operator: row.operator.unwrap_or_else(|| "(account deleted)".into()),
                    reason: row.reason.unwrap_or_default(),
                    organization_name: row.organization_name.unwrap_or_default(),
                    organization_slug: row.organization_slug.unwrap_or_default(),
                    details: match row.details.as_str() {
                        "{}" => String::new(),
                        _ => row.details,
                    },
                }
            })
            .collect(),
        next: page.next.map(|id| id.to_string()),
        actions: log::actions(&app.platform, &operator).await?,
        sorts: super::sort_choices(&platform::admin::log::LOG_SORTS, "Name"),
    })
}

/// The operator page about what an entry acted on: an account's or an organization's, or
/// the site list searching for the site.
#[cfg(feature = "ssr")]
fn subject_link(subject: &str) -> Option<String> {
    let (kind, id) = subject.split_once(':')?;
    match kind {
        "user" => Some(format!("/admin/users/{id}")),
        "organization" => Some(format!("/admin/organizations/{id}")),
        "site" => Some(format!(
            "/admin/sites{}",
            crate::format::query(&[("q", id)])
        )),
        _ => None,
    }
}
