//! `/admin/jobs`: every background job, searched by kind, key, error or payload, filtered
//! by state, newest first, a page at a time, exported as CSV; a dead job is retried here
//! with a reason. Plain forms: the same without JavaScript.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::admin::{
    Choice, ListFooter, ListPage, ListSearch, Reason, SortChoice, filter_choices, follow,
    list_links,
};
use super::forms::FormError;
use crate::operator::jobs::{AdminRetryJob, JobListRow, JobListView, admin_jobs};

#[component]
pub fn JobsPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let retry = ServerAction::<AdminRetryJob>::new();
    let (reloads, refusal) = follow(vec![retry.value()]);
    let list = Resource::new(
        move || {
            (
                param("q"),
                param("state"),
                param("sort"),
                param("after"),
                reloads.get(),
            )
        },
        |(q, state, sort, after, _)| admin_jobs(q, state, sort, after),
    );
    let refusal = Signal::from(refusal);
    view! {
        <ListPage
            title="Jobs"
            marker="jobs"
            intro="Work done in the background: mail, Stripe events, billing, alerts, housekeeping. A failing job is retried with backoff; once its retry window has passed it is dead, and waits here for an operator."
            back=("/admin/jobs", "Show every job")
            list
            show=move |list| {
                let filters = (param("q"), param("state"), param("sort"));
                view! { <JobList list filters retry refusal /> }
            }
        />
    }
}

#[component]
fn JobList(
    list: JobListView,
    /// Search, state, order.
    filters: (String, String, String),
    retry: ServerAction<AdminRetryJob>,
    refusal: Signal<Option<String>>,
) -> impl IntoView {
    let (q, state, sort) = filters;
    let (csv, next) = list_links(
        "/admin/jobs",
        &[
            ("q", q.as_str()),
            ("state", state.as_str()),
            ("sort", sort.as_str()),
        ],
        list.next,
    );
    let states = filter_choices("Any job", list.states, |state| {
        match state {
            "dead" => "Dead",
            "retrying" => "Retrying (failed, tried again later)",
            "queued" => "Queued",
            "running" => "Running",
            _ => "Succeeded",
        }
        .to_owned()
    });
    let empty = list.rows.is_empty();
    view! {
        <ListSearch path="/admin/jobs" form="jobs" q placeholder="Kind, key, error or payload" csv>
            <Choice label="Show" name="state" selected=state choices=states />
            <SortChoice selected=sort sorts=list.sorts />
        </ListSearch>
        <div class="mt-4">
            <FormError error=refusal />
        </div>
        <table
            class="mt-2 w-full rounded-lg border border-slate-200 bg-white text-sm"
            data-table="jobs"
        >
            <caption class="sr-only">"Jobs"</caption>
            <thead class="bg-slate-50 text-left text-slate-600">
                <tr>
                    {["Job", "State", "Attempts", "Last error", "Created"]
                        .into_iter()
                        .map(|h| view! { <th class="px-3 py-2 font-medium">{h}</th> })
                        .collect_view()}
                </tr>
            </thead>
            <tbody>
                {list.rows.into_iter().map(|row| view! { <Job row retry /> }).collect_view()}
            </tbody>
        </table>
        <ListFooter empty=empty.then_some("No job matches.") next />
    }
}

#[component]
fn Job(row: JobListRow, retry: ServerAction<AdminRetryJob>) -> impl IntoView {
    let JobListRow {
        id,
        kind,
        state,
        attempts,
        when,
        last_error,
        detail,
        created,
    } = row;
    let dead = state == "dead";
    let (target, form_name) = (id.clone(), format!("retry-{id}"));
    let form = dead.then(move || {
        view! {
            <ActionForm action=retry attr:data-form=form_name attr:class="mt-2">
                <Reason name="job" value=target button="Retry now" private=true />
            </ActionForm>
        }
    });
    view! {
        <tr class="border-t border-slate-100 align-top" data-job=id.clone()>
            <th scope="row" class="px-3 py-2 text-left font-normal">
                <span class="font-medium">{format!("#{id} {kind}")}</span>
                <span class="block max-w-xs break-all font-mono text-xs text-slate-500">
                    {detail}
                </span>
            </th>
            <td class="px-3 py-2">
                <span data-state="">{state}</span>
                <span class="block text-xs text-slate-500">{when}</span>
            </td>
            <td class="px-3 py-2 tabular-nums">{attempts}</td>
            <td class="px-3 py-2">
                <span class="block max-w-md break-words text-red-800" data-error="">
                    {last_error}
                </span>
                {form}
            </td>
            <td class="px-3 py-2 tabular-nums whitespace-nowrap">{created}</td>
        </tr>
    }
}
