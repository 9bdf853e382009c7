//! `/admin/sites`: every organization's sites, searched by slug, name, custom domain,
//! organization or member email, filtered by state and plan, newest first, a page at a
//! time, exported as CSV. `state=failed` is the list of failed provisionings: each is
//! retried here with a reason. Plain forms: the same without JavaScript.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::admin::{
    Choice, ListFooter, ListPage, ListSearch, Reason, SortChoice, filter_choices, follow,
    list_links,
};
use super::forms::FormError;
use crate::operator::AdminRetrySite;
use crate::operator::sites::{SiteListRow, SiteListView, admin_sites};

#[component]
pub fn AdminSitesPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let retry = ServerAction::<AdminRetrySite>::new();
    let (reloads, refusal) = follow(vec![retry.value()]);
    let list = Resource::new(
        move || {
            (
                param("q"),
                param("state"),
                param("plan"),
                param("sort"),
                param("after"),
                reloads.get(),
            )
        },
        |(q, state, plan, sort, after, _)| admin_sites(q, state, plan, sort, after),
    );
    let refusal = Signal::from(refusal);
    view! {
        <ListPage
            title="Sites"
            marker="sites"
            intro="Every customer's sites. Failed: the reconciler could not set the site up (or stop it) and retries it with backoff; retry it now once the cause is fixed."
            back=("/admin/sites", "Show every site")
            list
            show=move |list| {
                let filters = [param("q"), param("state"), param("plan"), param("sort")];
                view! { <SiteList list filters retry refusal /> }
            }
        />
    }
}

/// The words of a site state in the filter and the rows.
fn state_words(state: &str) -> &'static str {
    match state {
        "active" => "Active",
        "provisioning" => "Provisioning",
        "failed" => "Failed",
        "suspended" => "Suspended",
        "stopped" => "Stopped",
        "deleting" => "Being deleted",
        _ => "Deleted",
    }
}

#[component]
fn SiteList(
    list: SiteListView,
    /// Search, state, plan, order.
    filters: [String; 4],
    retry: ServerAction<AdminRetrySite>,
    refusal: Signal<Option<String>>,
) -> impl IntoView {
    let [q, state, plan, sort] = filters;
    let (csv, next) = list_links(
        "/admin/sites",
        &[
            ("q", q.as_str()),
            ("state", state.as_str()),
            ("plan", plan.as_str()),
            ("sort", sort.as_str()),
        ],
        list.next,
    );
    let states = filter_choices("Any but deleted", list.states, |s| {
        state_words(s).to_owned()
    });
    let plans = std::iter::once((String::new(), "Any plan".to_owned()))
        .chain(list.plans)
        .collect();
    let empty = list.rows.is_empty();
    view! {
        <ListSearch
            path="/admin/sites"
            form="sites"
            q
            placeholder="Slug, name, domain, organization or email"
            csv
        >
            <Choice label="State" name="state" selected=state choices=states />
            <Choice label="Plan" name="plan" selected=plan choices=plans />
            <SortChoice selected=sort sorts=list.sorts />
        </ListSearch>
        <div class="mt-4">
            <FormError error=refusal />
        </div>
        <table
            class="mt-2 w-full rounded-lg border border-slate-200 bg-white text-sm"
            data-table="sites"
        >
            <caption class="sr-only">"Sites"</caption>
            <thead class="bg-slate-50 text-left text-slate-600">
                <tr>
                    {["Site", "State", "Organization", "Plan", "Domains", "Created"]
                        .into_iter()
                        .map(|h| view! { <th class="px-3 py-2 font-medium">{h}</th> })
                        .collect_view()}
                </tr>
            </thead>
            <tbody>
                {list.rows.into_iter().map(|row| view! { <Site row retry /> }).collect_view()}
            </tbody>
        </table>
        <ListFooter empty=empty.then_some("No site matches.") next />
    }
}

#[component]
fn Site(row: SiteListRow, retry: ServerAction<AdminRetrySite>) -> impl IntoView {
    let SiteListRow {
        id,
        name,
        slug,
        url,
        state,
        why,
        retryable,
        organization_name,
        organization_slug,
        plan,
        domains,
        created,
    } = row;
    let (form_name, page) = (format!("retry-{slug}"), format!("/admin/sites/{id}"));
    let link = url.clone();
    let form = retryable.then(move || {
        view! {
            <ActionForm action=retry attr:data-form=form_name attr:class="mt-2">
                <Reason name="site" value=id button="Retry now" />
            </ActionForm>
        }
    });
    view! {
        <tr class="border-t border-slate-100 align-top" data-site=slug>
            <th scope="row" class="px-3 py-2 text-left font-normal">
                <a href=page class="font-medium text-indigo-600 hover:underline">
                    {name}
                </a>
                <a href=link class="block font-mono text-xs text-slate-500 hover:underline">
                    {url}
                </a>
            </th>
            <td class="px-3 py-2">
                <span data-state=state.clone()>{state_words(&state)}</span>
                <span class="block max-w-md break-words text-xs text-slate-600" data-why="">
                    {why}
                </span>
                {form}
            </td>
            <td class="px-3 py-2">
                <a
                    href=format!("/admin/organizations/{organization_slug}")
                    class="text-indigo-600 hover:underline"
                >
                    {organization_name}
                </a>
            </td>
            <td class="px-3 py-2">{plan}</td>
            <td class="px-3 py-2 break-all">{domains}</td>
            <td class="px-3 py-2 tabular-nums whitespace-nowrap">{created}</td>
        </tr>
    }
}
