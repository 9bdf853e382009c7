//! `/admin/subscriptions`: every subscription (with Stripe) or paid plan (local billing
//! mode), searched like the organizations, filtered by status, plan and interval, newest
//! first, a page at a time, exported as CSV.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::admin::{
    Choice, ListFooter, ListPage, ListSearch, SortChoice, filter_choices, list_links,
};
use crate::operator::subscriptions::{
    SubscriptionListRow, SubscriptionListView, admin_subscriptions,
};

#[component]
pub fn SubscriptionsPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let list = Resource::new(
        move || {
            (
                param("q"),
                param("status"),
                param("plan"),
                param("interval"),
                param("sort"),
                param("after"),
            )
        },
        |(q, status, plan, interval, sort, after)| {
            admin_subscriptions(q, status, plan, interval, sort, after)
        },
    );
    view! {
        <ListPage
            title="Subscriptions"
            marker="subscriptions"
            back=("/admin/subscriptions", "Show every subscription")
            list
            show=move |list| {
                let filters = [
                    param("q"),
                    param("status"),
                    param("plan"),
                    param("interval"),
                    param("sort"),
                ];
                view! { <SubscriptionList list filters /> }
            }
        />
    }
}

#[component]
fn SubscriptionList(
    list: SubscriptionListView,
    /// Search, status, plan, interval, order.
    filters: [String; 5],
) -> impl IntoView {
    let [q, status, plan, interval, sort] = filters;
    let (csv, next) = list_links(
        "/admin/subscriptions",
        &[
            ("q", q.as_str()),
            ("status", status.as_str()),
            ("plan", plan.as_str()),
            ("interval", interval.as_str()),
            ("sort", sort.as_str()),
        ],
        list.next,
    );
    let intro = if list.local {
        "Local billing mode: the organizations on a paid plan an operator assigned, at the catalog's price."
    } else {
        "Each organization's Stripe subscription as Slipway last saw it, canceled ones with their grace period."
    };
    let statuses = filter_choices("Any status", list.statuses, |s| {
        crate::billing::status_label(Some(s))
    });
    let plans = std::iter::once((String::new(), "Any plan".to_owned()))
        .chain(list.plans)
        .collect();
    let intervals = vec![
        (String::new(), "Any interval".to_owned()),
        ("monthly".to_owned(), "Monthly".to_owned()),
        ("yearly".to_owned(), "Yearly".to_owned()),
    ];
    let empty = list.rows.is_empty();
    view! {
        <p class="mt-1 text-sm text-slate-600">{intro}</p>
        <ListSearch
            path="/admin/subscriptions"
            form="subscriptions"
            q
            placeholder="Email, organization, domain or Stripe id"
            csv
        >
            <Choice label="Status" name="status" selected=status choices=statuses />
            <Choice label="Plan" name="plan" selected=plan choices=plans />
            <Choice label="Interval" name="interval" selected=interval choices=intervals />
            <SortChoice selected=sort sorts=list.sorts />
        </ListSearch>
        <table
            class="mt-6 w-full rounded-lg border border-slate-200 bg-white text-sm"
            data-table="subscriptions"
        >
            <caption class="sr-only">"Subscriptions"</caption>
            <thead class="bg-slate-50 text-left text-slate-600">
                <tr>
                    {["Organization", "Plan", "Status", "Revenue / month", "Stripe", "Since"]
                        .into_iter()
                        .map(|h| view! { <th class="px-3 py-2 font-medium">{h}</th> })
                        .collect_view()}
                </tr>
            </thead>
            <tbody>
                {list.rows.into_iter().map(|row| view! { <Subscription row /> }).collect_view()}
            </tbody>
        </table>
        <ListFooter empty=empty.then_some("No subscription matches.") next />
    }
}

#[component]
fn Subscription(row: SubscriptionListRow) -> impl IntoView {
    let stripe = row.stripe.map(|stripe| match stripe.link {
        Some(link) => view! {
            <a href=link class="font-mono text-xs text-indigo-600 hover:underline">
                {stripe.id}
            </a>
        }
        .into_any(),
        None => view! { <span class="font-mono text-xs">{stripe.id}</span> }.into_any(),
    });
    view! {
        <tr
            class="border-t border-slate-100 align-top"
            data-subscription=row.organization_slug.clone()
        >
            <th scope="row" class="px-3 py-2 text-left font-normal">
                <a
                    href=format!("/admin/organizations/{}", row.organization_slug)
                    class="font-medium text-indigo-600 hover:underline"
                >
                    {row.organization_name}
                </a>
                <span class="block text-xs text-slate-500">{row.owner_email}</span>
            </th>
            <td class="px-3 py-2">
                {row.plan} <span class="block text-xs text-slate-500">{row.interval}</span>
            </td>
            <td class="px-3 py-2">
                <span data-status="">{row.status}</span>
                <span class="block text-xs text-slate-600">{row.notes.join("; ")}</span>
            </td>
            <td class="px-3 py-2 tabular-nums">{row.revenue}</td>
            <td class="px-3 py-2">{stripe}</td>
            <td class="px-3 py-2 tabular-nums whitespace-nowrap">{row.since}</td>
        </tr>
    }
}
