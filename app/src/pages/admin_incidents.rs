//! `/admin/incidents`: every organization's incidents, searched by summary, organization
//! or site, filtered by open or resolved and by kind, newest first, a page at a time,
//! exported as CSV.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::admin::{Choice, ListFooter, ListPage, ListSearch, SortChoice, list_links};
use crate::operator::incidents::{IncidentListRow, IncidentListView, admin_incidents};

#[component]
pub fn IncidentsPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let list = Resource::new(
        move || {
            (
                param("q"),
                param("state"),
                param("kind"),
                param("sort"),
                param("after"),
            )
        },
        |(q, state, kind, sort, after)| admin_incidents(q, state, kind, sort, after),
    );
    view! {
        <ListPage
            title="Incidents"
            marker="incidents"
            intro="What went wrong for customers: sites down or crashing, failing requests, usage limits, failed provisioning, subscriptions ending. Members are mailed when one opens and when it is resolved."
            back=("/admin/incidents", "Show every incident")
            list
            show=move |list| {
                let filters = [param("q"), param("state"), param("kind"), param("sort")];
                view! { <IncidentList list filters /> }
            }
        />
    }
}

#[component]
fn IncidentList(
    list: IncidentListView,
    /// Search, open or resolved, kind, order.
    filters: [String; 4],
) -> impl IntoView {
    let [q, state, kind, sort] = filters;
    let (csv, next) = list_links(
        "/admin/incidents",
        &[
            ("q", q.as_str()),
            ("state", state.as_str()),
            ("kind", kind.as_str()),
            ("sort", sort.as_str()),
        ],
        list.next,
    );
    let states = vec![
        (String::new(), "Open and resolved".to_owned()),
        ("open".to_owned(), "Open".to_owned()),
        ("resolved".to_owned(), "Resolved".to_owned()),
    ];
    let kinds = std::iter::once((String::new(), "Any kind".to_owned()))
        .chain(list.kinds)
        .collect();
    let empty = list.rows.is_empty();
    view! {
        <ListSearch
            path="/admin/incidents"
            form="incidents"
            q
            placeholder="Summary, organization or site"
            csv
        >
            <Choice label="Show" name="state" selected=state choices=states />
            <Choice label="Kind" name="kind" selected=kind choices=kinds />
            <SortChoice selected=sort sorts=list.sorts />
        </ListSearch>
        <table
            class="mt-6 w-full rounded-lg border border-slate-200 bg-white text-sm"
            data-table="incidents"
        >
            <caption class="sr-only">"Incidents"</caption>
            <thead class="bg-slate-50 text-left text-slate-600">
                <tr>
                    {["Incident", "State", "Organization", "Site", "Opened"]
                        .into_iter()
                        .map(|h| view! { <th class="px-3 py-2 font-medium">{h}</th> })
                        .collect_view()}
                </tr>
            </thead>
            <tbody>
                {list.rows.into_iter().map(|row| view! { <Incident row /> }).collect_view()}
            </tbody>
        </table>
        <ListFooter empty=empty.then_some("No incident matches.") next />
    }
}

#[component]
fn Incident(row: IncidentListRow) -> impl IntoView {
    let state_class = if row.open {
        "font-medium text-red-700"
    } else {
        "text-slate-600"
    };
    let site = (!row.site_slug.is_empty()).then(|| {
        view! {
            <a
                href=format!("/admin/sites?q={}", row.site_slug)
                class="font-mono text-xs text-indigo-600 hover:underline"
            >
                {row.site_slug.clone()}
            </a>
        }
    });
    view! {
        <tr class="border-t border-slate-100 align-top" data-incident=row.id>
            <th scope="row" class="px-3 py-2 text-left font-normal">
                <span class="font-medium">{row.title}</span>
                <span class="block max-w-md break-words text-slate-700">{row.summary}</span>
                <span class="block max-w-md break-words text-xs text-slate-500">{row.latest}</span>
            </th>
            <td class="px-3 py-2">
                <span class=state_class data-state="">
                    {row.state}
                </span>
            </td>
            <td class="px-3 py-2">
                <a
                    href=format!("/admin/organizations/{}", row.organization_slug)
                    class="text-indigo-600 hover:underline"
                >
                    {row.organization_name}
                </a>
            </td>
            <td class="px-3 py-2">{site}</td>
            <td class="px-3 py-2 tabular-nums whitespace-nowrap">{row.opened}</td>
        </tr>
    }
}
