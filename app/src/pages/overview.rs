//! `/dashboard`: the organization at a glance, and a getting-started checklist until its
//! first steps are taken.

use leptos::prelude::*;
use leptos_meta::Title;

use super::dashboard::Panel;
use super::settings::AuditTable;
use super::sites::StatusBadge;
use super::usage::Bar;
use crate::overview::{ChecklistStep, OverviewSite, OverviewView, overview};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let view = Resource::new(|| (), |_| overview());
    let query = leptos_router::hooks::use_query_map();
    let deleted = move || query.read().get("organization_deleted").is_some();
    view! {
        <Title text="Overview" />
        <h1 class="text-2xl font-bold tracking-tight">"Overview"</h1>
        <Show when=deleted>
            <p
                class="mt-4 rounded-lg bg-green-50 p-3 text-sm text-green-800"
                role="status"
                data-notice=""
            >
                "The organization is deleted; its sites are being removed."
            </p>
        </Show>
        <Suspense fallback=|| {
            view! { <p class="mt-4 text-slate-500">"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match view.await {
                    Ok(view) => view! { <Overview view /> }.into_any(),
                    Err(e) => {
                        view! {
                            <p class="mt-4 text-red-700" role="alert">
                                {e.to_string()}
                            </p>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn Overview(view: OverviewView) -> impl IntoView {
    let OverviewView {
        plan_name,
        month,
        sites,
        incidents,
        activity,
        checklist,
    } = view;
    view! {
        {checklist.map(|steps| view! { <Checklist steps /> })}
        <Panel title="Sites" note="Each site's status, and this month against your plan's limits.">
            <p class="-mt-2 mb-4 text-sm text-slate-600" data-month="">
                {format!("{month} on the {plan_name} plan")}
            </p>
            {sites
                .is_empty()
                .then(|| {
                    view! {
                        <p class="text-sm text-slate-500" data-no-sites="">
                            "No sites yet."
                        </p>
                    }
                })}
            <ul class="space-y-6" data-overview-sites="">
                {sites.into_iter().map(|site| view! { <SiteSummary site /> }).collect_view()}
            </ul>
        </Panel>
        <Panel title="Incidents">
            {if incidents.is_empty() {
                view! {
                    <p class="text-sm text-slate-600" data-incidents="none">
                        "No open incidents: every site answers."
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <ul class="space-y-2 text-sm" data-incidents="open">
                        {incidents
                            .into_iter()
                            .map(|i| {
                                let href = i.href();
                                view! {
                                    <li class="break-words">
                                        <a
                                            href=href
                                            class="font-semibold text-indigo-700 hover:underline"
                                        >
                                            {i.title.clone()}
                                            {i.site_name.clone().map(|name| format!(" — {name}"))}
                                        </a>
                                        <span class="text-slate-600">
                                            {format!(" since {}", i.opened)}
                                        </span>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </Panel>
        {activity
            .map(|lines| {
                view! {
                    <Panel title="Recent activity" note="The latest entries of the audit log.">
                        <div class="overflow-x-auto">
                            <AuditTable lines />
                        </div>
                        <a
                            href="/dashboard/settings"
                            class="mt-3 inline-block text-sm font-semibold text-indigo-700 hover:underline"
                        >
                            "The whole audit log"
                        </a>
                    </Panel>
                }
            })}
    }
}

#[component]
fn SiteSummary(site: OverviewSite) -> impl IntoView {
    let OverviewSite {
        id,
        name,
        url,
        status,
        bars,
    } = site;
    let marker = name.clone();
    view! {
        <li data-overview-site=marker>
            <div class="flex flex-wrap items-center gap-2">
                <a
                    href=format!("/dashboard/sites/{id}")
                    class="font-semibold text-indigo-700 hover:underline"
                >
                    {name}
                </a>
                <StatusBadge status />
                <a href=url.clone() class="break-all text-sm text-slate-500 hover:underline">
                    {url.clone()}
                </a>
            </div>
            <div class="mt-2 grid gap-3 sm:grid-cols-3">
                {bars.into_iter().map(|bar| view! { <Bar bar /> }).collect_view()}
            </div>
        </li>
    }
}

#[component]
fn Checklist(steps: Vec<ChecklistStep>) -> impl IntoView {
    let done = steps.iter().filter(|s| s.done).count();
    let total = steps.len();
    view! {
        <section
            class="mt-8 rounded-2xl border border-indigo-200 bg-indigo-50 p-6"
            data-checklist=""
        >
            <h2 class="text-lg font-semibold">"Getting started"</h2>
            <p class="mt-1 text-sm text-slate-700">{format!("{done} of {total} done")}</p>
            <ol class="mt-4 space-y-2">
                {steps
                    .into_iter()
                    .map(|step| {
                        let (mark, class) = if step.done {
                            ("✓", "text-slate-600 line-through")
                        } else {
                            ("○", "font-semibold text-indigo-800 hover:underline")
                        };
                        view! {
                            <li
                                class="flex items-center gap-2 text-sm"
                                data-step=step.key.clone()
                                data-done=step.done.to_string()
                            >
                                <span aria-hidden="true" class="w-4 text-center">
                                    {mark}
                                </span>
                                <a href=step.href.clone() class=class>
                                    {step.label.clone()}
                                </a>
                                {step.done.then(|| view! { <span class="sr-only">"(done)"</span> })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </section>
    }
}
