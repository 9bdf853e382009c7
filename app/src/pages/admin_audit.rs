//! `/admin/audit`: the operator audit log, every action operators took with its reason,
//! searched by action, operator, subject, reason or organization, filtered by action,
//! newest first, a page at a time, exported as CSV.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::admin::{
    Choice, ListFooter, ListPage, ListSearch, SortChoice, filter_choices, list_links,
};
use crate::operator::audit::{AuditListRow, AuditListView, admin_audit};

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let list = Resource::new(
        move || (param("q"), param("action"), param("sort"), param("after")),
        |(q, action, sort, after)| admin_audit(q, action, sort, after),
    );
    view! {
        <ListPage
            title="Operator audit log"
            marker="audit"
            intro="Every action an operator took, here or with slipway admin, and why. Actions about a customer also show in their organization's audit log."
            back=("/admin/audit", "Show every action")
            list
            show=move |list| {
                let filters = (param("q"), param("action"), param("sort"));
                view! { <AuditList list filters /> }
            }
        />
    }
}

#[component]
fn AuditList(
    list: AuditListView,
    /// Search, action, order.
    filters: (String, String, String),
) -> impl IntoView {
    let (q, action, sort) = filters;
    let (csv, next) = list_links(
        "/admin/audit",
        &[
            ("q", q.as_str()),
            ("action", action.as_str()),
            ("sort", sort.as_str()),
        ],
        list.next,
    );
    let actions = filter_choices("Any action", list.actions, str::to_owned);
    let empty = list.rows.is_empty();
    view! {
        <ListSearch
            path="/admin/audit"
            form="audit"
            q
            placeholder="Action, operator, subject, reason or organization"
            csv
        >
            <Choice label="Action" name="action" selected=action choices=actions />
            <SortChoice selected=sort sorts=list.sorts />
        </ListSearch>
        <table
            class="mt-6 w-full rounded-lg border border-slate-200 bg-white text-sm"
            data-table="audit"
        >
            <caption class="sr-only">"Operator actions"</caption>
            <thead class="bg-slate-50 text-left text-slate-600">
                <tr>
                    {["When", "Operator", "Action", "Subject", "Reason", "Organization"]
                        .into_iter()
                        .map(|h| view! { <th class="px-3 py-2 font-medium">{h}</th> })
                        .collect_view()}
                </tr>
            </thead>
            <tbody>{list.rows.into_iter().map(|row| view! { <Entry row /> }).collect_view()}</tbody>
        </table>
        <ListFooter empty=empty.then_some("No action matches.") next />
    }
}

#[component]
fn Entry(row: AuditListRow) -> impl IntoView {
    let subject = match row.subject_link {
        Some(link) => view! {
            <a href=link class="break-all text-indigo-600 hover:underline">
                {row.subject}
            </a>
        }
        .into_any(),
        None => view! { <span class="break-all">{row.subject}</span> }.into_any(),
    };
    let organization = (!row.organization_slug.is_empty()).then(|| {
        view! {
            <a
                href=format!("/admin/organizations/{}", row.organization_slug)
                class="text-indigo-600 hover:underline"
            >
                {row.organization_name}
            </a>
        }
    });
    view! {
        <tr class="border-t border-slate-100 align-top" data-entry=row.id>
            <td class="px-3 py-2 tabular-nums whitespace-nowrap">{row.at}</td>
            <td class="px-3 py-2">{row.operator}</td>
            <th scope="row" class="px-3 py-2 text-left font-mono text-xs font-normal">
                {row.action}
            </th>
            <td class="px-3 py-2">
                {subject}
                <span class="block max-w-xs break-all font-mono text-xs text-slate-500">
                    {row.details}
                </span>
            </td>
            <td class="px-3 py-2" data-reason="">
                {row.reason}
            </td>
            <td class="px-3 py-2">{organization}</td>
        </tr>
    }
}
