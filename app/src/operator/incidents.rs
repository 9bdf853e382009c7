//! Server function of the operators' incident list: every organization's incidents,
//! searched, filtered by open or resolved and by kind, newest first, a page at a time.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One incident on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentListRow {
    pub id: String,
    /// What kind, in words (`Site down`).
    pub title: String,
    pub summary: String,
    /// Its latest note.
    pub latest: String,
    /// `open`, or when it was resolved.
    pub state: String,
    pub open: bool,
    pub organization_name: String,
    pub organization_slug: String,
    pub site_slug: String,
    pub opened: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentListView {
    pub rows: Vec<IncidentListRow>,
    /// The `after` of the next page's link, if there is more.
    pub next: Option<String>,
    /// The kinds (stored names and titles), for the kind filter.
    pub kinds: Vec<(String, String)>,
    /// The orders offered: keys and words.
    pub sorts: Vec<(String, String)>,
}

/// Every organization's incidents, searched by summary, organization or site, filtered by
/// open or resolved and by kind, newest first, a page at a time: operators only.
#[server(endpoint = "admin/incident_list")]
pub async fn admin_incidents(
    #[server(default)] q: String,
    #[server(default)] state: String,
    #[server(default)] kind: String,
    #[server(default)] sort: String,
    #[server(default)] after: String,
) -> Result<IncidentListView, AppError> {
    use platform::admin::incidents::{self, IncidentFilter};
    use platform::admin::lists::{self, PAGE};
    use platform::incidents::IncidentKind;

    let (app, operator) = super::operator().await?;
    let mut filter = IncidentFilter::parse(&q, &state, &kind)?;
    filter.sort =
        platform::admin::lists::Sort::parse(&sort, &platform::admin::incidents::INCIDENT_SORTS)?;
    let after = lists::parse_cursor(&after)?;
    let page =
        incidents::incidents(&app.platform, &operator, &filter, after.as_ref(), PAGE).await?;
    let title = |kind: &str| {
        IncidentKind::stored(kind).map_or_else(|_| kind.to_owned(), |k| k.title().to_owned())
    };
    Ok(IncidentListView {
        rows: page
            .rows
            .into_iter()
            .map(|row| IncidentListRow {
                id: row.id.to_string(),
                title: match row.subject.as_str() {
                    "" => title(&row.kind),
                    subject => format!("{} ({subject})", title(&row.kind)),
                },
                latest: row.latest.unwrap_or_default(),
                state: row.resolved_at.map_or_else(
                    || "open".to_owned(),
                    |at| format!("resolved {}", crate::format::utc(at)),
                ),
                open: row.resolved_at.is_none(),
                opened: crate::format::utc(row.opened_at),
                summary: row.summary,
                organization_name: row.organization_name,
                organization_slug: row.organization_slug,
                site_slug: row.site_slug.unwrap_or_default(),
            })
            .collect(),
        next: page.next.map(|cursor| cursor.encode()),
        kinds: IncidentKind::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), k.title().to_owned()))
            .collect(),
        sorts: super::sort_choices(&platform::admin::incidents::INCIDENT_SORTS, "Name"),
    })
}
