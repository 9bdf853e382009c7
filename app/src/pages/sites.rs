//! `/dashboard/sites`, `/dashboard/sites/new` and `/dashboard/sites/{id}`: the sites of
//! the organization, creating one, and one site's status, live provisioning progress,
//! deployment history, logs and actions.
//!
//! Every page is complete when rendered on the server (a refresh shows the latest state);
//! with JavaScript the site page also listens to `/api/sites/{id}/events` (server-sent
//! events) and refreshes itself at each step the reconciler records.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::copy::CopyButton;
use super::dashboard::Panel;
use super::forms::{
    ConfirmSubmit, Field, FormError, Submit, field_error, general_error, successes,
};
use super::site_settings::{SettingsActions, SiteSettings};
use super::usage::SiteUsage;
use crate::domains::{
    AddDomain, DomainView, DomainsView, RemoveDomain, VerifyDomain, list_domains,
};
use crate::error::AppError;
use crate::health::{site_health, site_logs};
use crate::sites::{
    CreateSite, OpenEditor, RenameSite, SiteAction, SiteView, SitesView, list_sites, site_detail,
};
use crate::usage::usage_report;

/// The colour of a status badge.
fn badge_class(status: &str) -> &'static str {
    match status {
        "active" | "succeeded" => "bg-green-100 text-green-800",
        "failed" => "bg-red-100 text-red-800",
        "stopped" | "deleted" => "bg-slate-200 text-slate-700",
        _ => "bg-amber-100 text-amber-800",
    }
}

#[component]
pub(crate) fn StatusBadge(
    status: String,
    #[prop(default = None)] waiting_for: Option<String>,
) -> impl IntoView {
    let label = match &waiting_for {
        Some(dependency) => format!("{status} · waiting for {dependency}"),
        None => status.clone(),
    };
    view! {
        <span
            class=format!(
                "inline-block rounded-full px-2 py-0.5 text-xs font-semibold {}",
                badge_class(&status),
            )
            data-status=status
        >
            {label}
        </span>
    }
}

#[component]
pub fn SitesPage() -> impl IntoView {
    // Bumped by each server-sent event: one of the organization's sites changed.
    let (pushes, set_pushes) = signal(0u64);
    let sites = Resource::new(move || pushes.get(), |_| list_sites());
    live_updates(|| "/api/sites/events".to_owned(), set_pushes);
    view! {
        <Title text="Sites" />
        <div class="flex flex-wrap items-center justify-between gap-3">
            <h1 class="text-2xl font-bold tracking-tight">"Sites"</h1>
        </div>
        // A transition: the list stays while it is read again after a change.
        <Transition fallback=|| {
            view! { <p class="mt-4 text-slate-500">"Loading sites…"</p> }
        }>
            {move || Suspend::new(async move {
                match sites.await {
                    Ok(view) => view! { <SiteList view /> }.into_any(),
                    Err(error) => {
                        view! {
                            <FormError error=Signal::derive(move || Some(error.to_string())) />
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn SiteList(view: SitesView) -> impl IntoView {
    let empty = view.sites.is_empty();
    view! {
        <div class="mt-2 flex flex-wrap items-center justify-between gap-3">
            <p class="text-sm text-slate-600" data-site-usage="">
                {view.usage.clone()}
            </p>
            {(view.can_create && view.no_room.is_none())
                .then(|| {
                    view! {
                        <a
                            href="/dashboard/sites/new"
                            class="rounded-lg bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-500"
                        >
                            "Create site"
                        </a>
                    }
                })}
        </div>
        {view.no_room.clone().map(|why| view! { <NoRoom why /> })}
        {if empty {
            view! {
                <div
                    class="mt-8 rounded-2xl border-2 border-dashed border-slate-300 bg-white px-6 py-16 text-center"
                    data-empty-state=""
                >
                    <p class="text-lg font-semibold">"No sites yet"</p>
                    <p class="mx-auto mt-2 max-w-md text-sm text-slate-600">
                        "Each site you create appears here with its address and status."
                    </p>
                </div>
            }
                .into_any()
        } else {
            view! {
                <table
                    class="stack mt-6 w-full overflow-hidden rounded-2xl border border-slate-200 bg-white text-left text-sm"
                    data-sites=""
                >
                    <thead class="bg-slate-50 text-slate-500">
                        <tr>
                            <th class="px-4 py-2">"Site"</th>
                            <th class="px-4 py-2">"Address"</th>
                            <th class="px-4 py-2">"Status"</th>
                            <th class="px-4 py-2">"Created"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {view
                            .sites
                            .into_iter()
                            .map(|site| {
                                view! {
                                    <tr
                                        class="border-t border-slate-100"
                                        data-site=site.slug.clone()
                                    >
                                        <td class="px-4 py-3">
                                            <a
                                                class="font-semibold text-indigo-700 hover:underline"
                                                href=format!("/dashboard/sites/{}", site.id)
                                            >
                                                {site.name.clone()}
                                            </a>
                                        </td>
                                        <td
                                            class="px-4 py-3 font-mono text-xs"
                                            data-label="Address"
                                        >
                                            {site.url.clone()}
                                        </td>
                                        <td class="px-4 py-3" data-label="Status">
                                            <StatusBadge
                                                status=site.status.clone()
                                                waiting_for=site.waiting_for.clone()
                                            />
                                        </td>
                                        <td class="px-4 py-3 text-slate-500" data-label="Created">
                                            {site.created.clone()}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            }
                .into_any()
        }}
    }
}

/// Why no site can be created now, with the way to get one.
#[component]
fn NoRoom(why: String) -> impl IntoView {
    view! {
        <p
            class="mt-4 rounded-lg border border-amber-200 bg-amber-50 px-4 py-3 text-sm text-amber-900"
            data-no-room=""
        >
            {why}
            " "
            <a href="/dashboard/billing" class="font-semibold underline">
                "Go to Billing"
            </a>
        </p>
    }
}

#[component]
pub fn NewSitePage() -> impl IntoView {
    let create = ServerAction::<CreateSite>::new();
    let sites = Resource::new(|| (), |_| list_sites());
    view! {
        <Title text="Create a site" />
        <a href="/dashboard/sites" class="text-sm text-indigo-700 hover:underline">
            "← Sites"
        </a>
        <h1 class="mt-2 text-2xl font-bold tracking-tight">"Create a site"</h1>
        // Said before the form: a plan without room refuses it.
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                sites.await.ok().and_then(|v| v.no_room).map(|why| view! { <NoRoom why /> })
            })}
        </Suspense>
        <Panel title="Your new site" note="It is ready in a few seconds; you can watch every step.">
            <ActionForm action=create attr:class="max-w-lg space-y-4" attr:data-form="create-site">
                <FormError error=general_error(create.value()) />
                <Field label="Name" name="name" error=field_error(create, "name") />
                <Field label="Address (slug)" name="slug" error=field_error(create, "slug") />
                <p class="-mt-2 text-xs text-slate-500">
                    "3–40 lowercase letters, digits and hyphens; the site is reached at "
                    <code>"<slug>.localhost:8080"</code>"."
                </p>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let templates = sites.await.map(|v| v.templates).unwrap_or_default();
                        view! {
                            <label class="block">
                                <span class="text-sm font-medium text-slate-700">
                                    "Application"
                                </span>
                                <select
                                    name="template"
                                    class="mt-1 block w-full rounded-lg border border-slate-300 px-3 py-2"
                                >
                                    {templates
                                        .into_iter()
                                        .map(|t| {
                                            view! {
                                                <option value=t.name.clone()>{t.label.clone()}</option>
                                            }
                                        })
                                        .collect_view()}
                                </select>
                            </label>
                        }
                    })}
                </Suspense>
                <FormError error=field_error(create, "template") />
                <Submit label="Create site" />
            </ActionForm>
        </Panel>
    }
}

/// Which of the site's folded forms are open. Kept above the view that live updates
/// re-render, so a form someone is filling in stays open when the page refreshes itself.
#[derive(Clone, Copy)]
struct OpenForms {
    rename: RwSignal<bool>,
    delete: RwSignal<bool>,
}

/// Whether the `<details>` that sent a `toggle` event is open now.
fn details_open(event: &leptos::ev::Event) -> bool {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::HtmlDetailsElement>().ok())
            .is_some_and(|details| details.open())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = event;
        false
    }
}

#[component]
pub fn SitePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    // The actions live here, outside the suspense that re-renders the site on every
    // event: a form's result must outlast the view that sent it.
    let act = ServerAction::<SiteAction>::new();
    let rename = ServerAction::<RenameSite>::new();
    let open_editor = ServerAction::<OpenEditor>::new();
    let settings = SettingsActions {
        save: ServerAction::new(),
        unset: ServerAction::new(),
    };
    let open = OpenForms {
        rename: RwSignal::new(false),
        delete: RwSignal::new(false),
    };
    // Bumped by each server-sent event: a step was recorded or new log lines may exist.
    let (pushes, set_pushes) = signal(0u64);
    let query = use_query_map();
    let (acted, renamed) = (successes(act.value()), successes(rename.value()));
    let (saved, unset) = (
        successes(settings.save.value()),
        successes(settings.unset.value()),
    );
    let detail = Resource::new(
        move || {
            (
                id(),
                query.read().get("deployments"),
                (acted.get(), renamed.get(), saved.get(), unset.get()),
                pushes.get(),
            )
        },
        |(id, before, ..)| site_detail(id, before),
    );
    // The panels' resources live here, outside the suspense that shows the site, so the
    // browser finds them when it hydrates.
    let usage = Resource::new(id, |id| usage_report(Some(id)));
    let domain_actions = DomainActions {
        add: ServerAction::new(),
        verify: ServerAction::new(),
        remove: ServerAction::new(),
    };
    let domains = Resource::new(
        move || {
            (
                id(),
                domain_actions.add.version().get(),
                domain_actions.verify.version().get(),
                domain_actions.remove.version().get(),
            )
        },
        |(id, ..)| list_domains(id),
    );
    let health = Resource::new(move || (id(), pushes.get()), |(id, _)| site_health(id));
    let logs = Resource::new(
        move || (id(), query.read().get("filter").unwrap_or_default()),
        |(id, filter)| site_logs(id, filter),
    );
    let site_settings = Resource::new(
        move || (id(), saved.get(), unset.get()),
        |(id, ..)| crate::sites::site_settings(id),
    );
    live_updates(move || format!("/api/sites/{}/events", id()), set_pushes);
    view! {
        <a href="/dashboard/sites" class="text-sm text-indigo-700 hover:underline">
            "← Sites"
        </a>
        <Transition fallback=|| {
            view! { <p class="mt-4 text-slate-500">"Loading the site…"</p> }
        }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(site) => {
                        view! {
                            <Site
                                site
                                act
                                rename
                                open
                                open_editor
                                usage
                                domains
                                domain_actions
                                health
                                logs
                            />
                        }
                            .into_any()
                    }
                    Err(error) => {
                        view! {
                            <Title text="Site" />
                            <FormError error=Signal::derive(move || Some(error.to_string())) />
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                site_settings
                    .await
                    .ok()
                    .map(|view| {
                        view! {
                            <SiteSettings
                                site_id=id()
                                settings=view.settings
                                can_manage=view.can_manage
                                actions=settings
                            />
                        }
                    })
            })}
        </Transition>
    }
}

/// In the browser: an `EventSource` on the site's event stream; every event bumps `pushes`.
#[cfg(feature = "hydrate")]
fn live_updates(stream: impl Fn() -> String + Send + Sync + 'static, pushes: WriteSignal<u64>) {
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    Effect::new(move |_| {
        let Ok(source) = web_sys::EventSource::new(&stream()) else {
            // No live updates: the page still shows the state after each action and refresh.
            leptos::logging::warn!("cannot open the site's event stream");
            return;
        };
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
            pushes.update(|n| *n += 1);
        });
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // Closed, and its handler freed, when the page (or the site id) changes.
        let live = SendWrapper::new((source, on_message));
        on_cleanup(move || live.0.close());
    });
}

#[cfg(not(feature = "hydrate"))]
fn live_updates(_stream: impl Fn() -> String + Send + Sync + 'static, _pushes: WriteSignal<u64>) {}

#[component]
fn Site(
    site: SiteView,
    act: ServerAction<SiteAction>,
    rename: ServerAction<RenameSite>,
    open: OpenForms,
    open_editor: ServerAction<OpenEditor>,
    usage: Resource<Result<crate::usage::UsageView, AppError>>,
    domains: Resource<Result<DomainsView, AppError>>,
    domain_actions: DomainActions,
    health: Resource<Result<crate::health::HealthView, AppError>>,
    logs: Resource<Result<crate::health::LogsView, AppError>>,
) -> impl IntoView {
    let in_progress = site.in_progress();
    view! {
        <Title text=site.name.clone() />
        <div class="mt-2 flex flex-wrap items-center gap-3">
            <h1 class="text-2xl font-bold tracking-tight" data-site-name="">
                {site.name.clone()}
            </h1>
            <StatusBadge status=site.status.clone() waiting_for=site.waiting_for.clone() />
        </div>
        <p class="mt-1 text-sm">
            <a
                href=site.url.clone()
                class="font-mono text-indigo-700 hover:underline"
                data-site-url=""
            >
                {site.url.clone()}
            </a>
            <span class="ml-3 text-slate-500">{format!("Application: {}", site.template)}</span>
        </p>
        {site
            .editor
            .then(|| {
                let id = site.id.clone();
                view! {
                    <ActionForm
                        action=open_editor
                        attr:class="mt-3 flex flex-wrap items-center gap-2"
                        attr:data-form="open-editor"
                    >
                        <input type="hidden" name="id" value=id />
                        <button
                            type="submit"
                            class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-700"
                            data-open-editor=""
                        >
                            "Open editor"
                        </button>
                        <span class="text-sm text-slate-600">
                            "Write and publish posts and pages; you are signed in as yourself."
                        </span>
                    </ActionForm>
                }
            })}
        <FormError error=general_error(open_editor.value()) />
        {in_progress
            .then(|| {
                view! {
                    // Without JavaScript the page does not reload itself: a timed refresh
                    // would move a screen reader's place on the page (WCAG 2.2.1).
                    <p class="mt-2 text-sm text-slate-600" data-live="">
                        "Working on it: each step appears below as it happens. "
                        <noscript>"Without JavaScript, refresh to see the latest. "</noscript>
                        <a href="" class="text-indigo-700 underline">
                            "Refresh"
                        </a>
                    </p>
                }
            })}
        {site
            .status_reason
            .clone()
            .map(|reason| {
                view! {
                    <pre
                        class="mt-4 whitespace-pre-wrap rounded-lg bg-red-50 p-3 text-xs text-red-900"
                        data-status-reason=""
                    >
                        {reason}
                    </pre>
                }
            })}
        {site
            .suspended
            .clone()
            .map(|words| {
                view! {
                    <p
                        class="mt-4 rounded-lg border border-red-200 bg-red-50 p-3 text-sm text-red-900"
                        data-suspended=""
                    >
                        <strong>{words}</strong>
                        " Visitors see a \"suspended\" page; the site's data is kept."
                    </p>
                }
            })}
        <FormError error=general_error(act.value()) />
        <FormError error=general_error(rename.value()) />
        <Actions site=site.clone() act rename open />
        <Progress site=site.clone() paging=true />
        <Panel title="Plan limits" note="What your plan gives this site, applied while it runs.">
            <dl class="grid grid-cols-2 gap-2 text-sm sm:grid-cols-3" data-limits="">
                {site
                    .limits
                    .iter()
                    .map(|(label, value)| {
                        view! {
                            <div>
                                <dt class="text-slate-500">{label.clone()}</dt>
                                <dd class="font-medium">{value.clone()}</dd>
                            </div>
                        }
                    })
                    .collect_view()}
            </dl>
        </Panel>
        <SiteUsage report=usage />
        <Domains site_id=site.id.clone() domains actions=domain_actions />
        <super::health::SiteHealth health />
        <super::health::SiteLogs site_id=site.id.clone() logs />
        {site
            .credentials
            .clone()
            .map(|(token, secret)| {
                view! {
                    <Panel
                        title="Application credentials"
                        note="For the app's /api/posts (Bearer token) and its signed /api/sync-content webhook."
                    >
                        <details class="text-sm">
                            <summary class="cursor-pointer text-indigo-700">"Show"</summary>
                            <dl class="mt-2 space-y-1 font-mono text-xs">
                                <dt class="text-slate-500">"API token"</dt>
                                <dd class="break-all">
                                    <span data-site-token="">{token.clone()}</span>
                                    <CopyButton value=token what="Copy the API token" />
                                </dd>
                                <dt class="text-slate-500">"Webhook secret"</dt>
                                <dd class="break-all">
                                    <span data-webhook-secret="">{secret.clone()}</span>
                                    <CopyButton value=secret what="Copy the webhook secret" />
                                </dd>
                            </dl>
                        </details>
                    </Panel>
                }
            })}
    }
}

#[component]
fn Actions(
    site: SiteView,
    act: ServerAction<SiteAction>,
    rename: ServerAction<RenameSite>,
    open: OpenForms,
) -> impl IntoView {
    let button = |action: &'static str, label: &'static str| {
        let id = site.id.clone();
        view! {
            <ActionForm action=act attr:data-form=format!("site-{action}")>
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="action" value=action />
                <button
                    type="submit"
                    class="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium hover:bg-slate-50"
                >
                    {label}
                </button>
            </ActionForm>
        }
    };
    // Restarting and stopping interrupt visitors: asked first.
    let confirmed = |action: &'static str,
                     label: &'static str,
                     question: &'static str,
                     confirm: &'static str| {
        let id = site.id.clone();
        view! {
            <ActionForm action=act attr:data-form=format!("site-{action}")>
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="action" value=action />
                <ConfirmSubmit label question=question.to_owned() confirm />
            </ActionForm>
        }
    };
    let running = site.desired_state == "running";
    let (rename_id, rename_url, rename_name) =
        (site.id.clone(), site.url.clone(), site.name.clone());
    view! {
        <div class="mt-6 flex flex-wrap items-start gap-2" data-actions="">
            {(site.can_deploy && running)
                .then(|| {
                    confirmed(
                        "restart",
                        "Restart",
                        "Visitors get errors for a few seconds while the site starts again.",
                        "Restart the site",
                    )
                })}
            {(site.can_deploy && running)
                .then(|| {
                    confirmed(
                        "stop",
                        "Stop",
                        "Visitors get an error page until you start the site again; its content stays.",
                        "Stop the site",
                    )
                })}
            {(site.can_deploy && site.desired_state == "stopped").then(|| button("start", "Start"))}
            {site
                .can_manage
                .then(|| {
                    view! {
                        <details
                            class="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm"
                            data-rename=""
                            prop:open=move || open.rename.get()
                            on:toggle=move |event| open.rename.set(details_open(&event))
                        >
                            <summary class="cursor-pointer font-medium">"Rename…"</summary>
                            <ActionForm
                                action=rename
                                attr:class="mt-2 space-y-2"
                                attr:data-form="site-rename"
                            >
                                <p class="max-w-sm text-slate-600">
                                    "The name is what you and your team see; the address stays "
                                    <code>{rename_url}</code> "."
                                </p>
                                <input type="hidden" name="id" value=rename_id />
                                <Field
                                    label="Name"
                                    name="name"
                                    value=rename_name
                                    error=field_error(rename, "name")
                                />
                                <Submit label="Save the name" />
                            </ActionForm>
                        </details>
                    }
                })}
            {site
                .can_manage
                .then(|| {
                    view! {
                        <details
                            class="rounded-md border border-red-200 bg-white px-3 py-1.5 text-sm"
                            data-delete=""
                            prop:open=move || open.delete.get()
                            on:toggle=move |event| open.delete.set(details_open(&event))
                        >
                            <summary class="cursor-pointer font-medium text-red-700">
                                "Delete…"
                            </summary>
                            <ActionForm
                                action=act
                                attr:class="mt-2 space-y-2"
                                attr:data-form="site-delete"
                            >
                                <p class="max-w-sm text-slate-600">
                                    "The site, its files and its database go away for good. Type the slug "
                                    <code class="font-semibold">{site.slug.clone()}</code>
                                    " to confirm."
                                </p>
                                <input type="hidden" name="id" value=site.id.clone() />
                                <input type="hidden" name="action" value="delete" />
                                <Field
                                    label="Slug"
                                    name="confirm"
                                    error=field_error(act, "confirm")
                                />
                                <Submit label="Delete this site" danger=true />
                            </ActionForm>
                        </details>
                    }
                })}
        </div>
    }
}

fn step_icon(status: &str) -> &'static str {
    match status {
        "succeeded" => "✓",
        "failed" => "✗",
        _ => "…",
    }
}

#[component]
pub(crate) fn Progress(
    site: SiteView,
    /// Offer the older pages (`?deployments=<cursor>`, read by the customer's site page).
    #[prop(default = false)]
    paging: bool,
) -> impl IntoView {
    let older = site.older.clone().filter(|_| paging);
    let paged = site.paged && paging;
    view! {
        <Panel
            title="Deployments"
            note="Each change to the site, step by step, with its timing."
            id="deployments"
        >
            {paged
                .then(|| {
                    view! {
                        <p class="mb-3 text-sm">
                            <a
                                href="?#deployments"
                                class="text-indigo-700 underline"
                                data-newest-deployments=""
                            >
                                "← Latest deployments"
                            </a>
                        </p>
                    }
                })}
            {site
                .deployments
                .is_empty()
                .then(|| view! { <p class="text-sm text-slate-500">"None yet."</p> })}
            <ol class="space-y-4" data-deployments="">
                {site
                    .deployments
                    .into_iter()
                    .map(|d| {
                        view! {
                            <li
                                class="rounded-lg border border-slate-200 p-3"
                                data-deployment=d.status.clone()
                            >
                                <div class="flex flex-wrap items-center gap-2 text-sm">
                                    <span class="font-semibold">{d.reason.clone()}</span>
                                    <StatusBadge status=d.status.clone() />
                                    <span class="text-slate-500">{d.created.clone()}</span>
                                    {d
                                        .duration
                                        .clone()
                                        .map(|t| {
                                            view! {
                                                <span class="text-slate-500">{format!("in {t}")}</span>
                                            }
                                        })}
                                </div>
                                <ul class="mt-2 space-y-1 text-sm">
                                    {d
                                        .steps
                                        .into_iter()
                                        .map(|s| {
                                            view! {
                                                <li
                                                    class="flex flex-wrap gap-x-2"
                                                    data-step=s.step.clone()
                                                    data-step-status=s.status.clone()
                                                >
                                                    <span class="w-4 text-center">{step_icon(&s.status)}</span>
                                                    <span class="min-w-0 flex-1 font-medium sm:w-52 sm:flex-none">
                                                        {s.title.clone()}
                                                    </span>
                                                    <span class="w-16 text-right tabular-nums text-slate-500">
                                                        {s.duration.clone().unwrap_or_default()}
                                                    </span>
                                                    <span class="basis-full break-words pl-6 text-slate-600 sm:basis-0 sm:flex-1 sm:pl-0">
                                                        {s.detail.clone().unwrap_or_default()}
                                                    </span>
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                                {d
                                    .error
                                    .clone()
                                    .map(|e| {
                                        view! {
                                            <pre class="mt-2 whitespace-pre-wrap text-xs text-red-800">
                                                {e}
                                            </pre>
                                        }
                                    })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
            {older
                .map(|cursor| {
                    view! {
                        <p class="mt-3 text-sm">
                            <a
                                href=format!("?deployments={cursor}#deployments")
                                class="text-indigo-700 underline"
                                data-older-deployments=""
                            >
                                "Older deployments →"
                            </a>
                        </p>
                    }
                })}
        </Panel>
    }
}

/// What can be done to a site's domains.
#[derive(Clone, Copy)]
struct DomainActions {
    add: ServerAction<AddDomain>,
    verify: ServerAction<VerifyDomain>,
    remove: ServerAction<RemoveDomain>,
}

/// The site's custom domains: the DNS records to create, verification, removal.
#[component]
fn Domains(
    site_id: String,
    domains: Resource<Result<DomainsView, AppError>>,
    actions: DomainActions,
) -> impl IntoView {
    let DomainActions {
        add,
        verify,
        remove,
    } = actions;
    view! {
        <Panel
            title="Custom domains"
            id="domains"
            note="Visitors can reach this site on your own domains once DNS proves they are yours."
        >
            <FormError error=general_error(verify.value()) />
            <FormError error=general_error(remove.value()) />
            <Suspense fallback=|| ()>
                {move || {
                    let site_id = site_id.clone();
                    Suspend::new(async move {
                        match domains.await {
                            Ok(list) => {
                                let can_manage = list.can_manage;
                                view! {
                                    {list
                                        .domains
                                        .is_empty()
                                        .then(|| {
                                            view! {
                                                <p class="text-sm text-slate-500">
                                                    "No custom domains yet."
                                                </p>
                                            }
                                        })}
                                    <ul class="space-y-4" data-domains="">
                                        {list
                                            .domains
                                            .into_iter()
                                            .map(|d| {
                                                view! {
                                                    <DomainItem
                                                        d
                                                        site_id=site_id.clone()
                                                        can_manage
                                                        verify
                                                        remove
                                                    />
                                                }
                                            })
                                            .collect_view()}
                                    </ul>
                                    {can_manage
                                        .then(|| {
                                            view! {
                                                <ActionForm
                                                    action=add
                                                    attr:class="mt-4 flex flex-wrap items-end gap-2"
                                                    attr:data-form="domain-add"
                                                >
                                                    <input type="hidden" name="site" value=site_id.clone() />
                                                    <div class="min-w-64 flex-1">
                                                        <Field
                                                            label="Domain"
                                                            name="domain"
                                                            error=field_error(add, "domain")
                                                        />
                                                    </div>
                                                    <Submit label="Add domain" />
                                                </ActionForm>
                                                <FormError error=general_error(add.value()) />
                                            }
                                        })}
                                }
                                    .into_any()
                            }
                            Err(error) => {
                                view! {
                                    <FormError error=Signal::derive(move || Some(
                                        error.to_string(),
                                    )) />
                                }
                                    .into_any()
                            }
                        }
                    })
                }}
            </Suspense>
        </Panel>
    }
}

#[component]
fn DomainItem(
    d: DomainView,
    site_id: String,
    can_manage: bool,
    verify: ServerAction<VerifyDomain>,
    remove: ServerAction<RemoveDomain>,
) -> impl IntoView {
    let status = if d.verified { "active" } else { "pending" };
    let hidden =
        |name: &'static str, value: String| view! { <input type="hidden" name=name value=value /> };
    let (verify_site, verify_domain) = (site_id.clone(), d.id.clone());
    let verify_form = (!d.verified).then(move || {
        view! {
            <ActionForm action=verify attr:data-form="domain-verify">
                {hidden("site", verify_site)}
                {hidden("domain_id", verify_domain)}
                <button
                    type="submit"
                    class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-semibold text-white hover:bg-indigo-500"
                >
                    "Verify"
                </button>
            </ActionForm>
        }
    });
    view! {
        <li
            class="rounded-lg border border-slate-200 p-3 text-sm"
            data-domain=d.domain.clone()
            data-verified=d.verified.to_string()
        >
            <div class="flex flex-wrap items-center gap-2">
                {if d.verified {
                    view! {
                        <a
                            href=d.url.clone()
                            class="font-mono font-semibold text-indigo-700 hover:underline"
                        >
                            {d.domain.clone()}
                        </a>
                    }
                        .into_any()
                } else {
                    view! { <span class="font-mono font-semibold">{d.domain.clone()}</span> }
                        .into_any()
                }} <StatusBadge status=status.to_owned() />
                {d
                    .checked
                    .clone()
                    .map(|t| {
                        view! { <span class="text-slate-500">{format!("checked {t}")}</span> }
                    })}
            </div>
            {(!d.verified)
                .then(|| {
                    view! {
                        <p class="mt-2 text-slate-600">
                            "Create these records at your DNS provider, then verify:"
                        </p>
                        <table
                            class="stack mt-1 w-full table-fixed text-left font-mono text-xs"
                            data-dns-records=""
                        >
                            <thead class="text-slate-500">
                                <tr>
                                    <th class="w-16">"Type"</th>
                                    <th class="w-2/5">"Name"</th>
                                    <th>"Value"</th>
                                </tr>
                            </thead>
                            <tbody>
                                <tr>
                                    <td data-label="Type">"TXT"</td>
                                    <td class="break-all" data-label="Name">
                                        {d.txt_name.clone()}
                                    </td>
                                    <td class="break-all" data-label="Value">
                                        <span data-txt-value="">{d.txt_value.clone()}</span>
                                        <CopyButton
                                            value=d.txt_value.clone()
                                            what="Copy the TXT value"
                                        />
                                    </td>
                                </tr>
                                <tr>
                                    <td data-label="Type">"CNAME"</td>
                                    <td class="break-all" data-label="Name">
                                        {d.domain.clone()}
                                    </td>
                                    <td class="break-all" data-label="Value">
                                        <span data-cname-target="">{d.cname_target.clone()}</span>
                                        <CopyButton
                                            value=d.cname_target.clone()
                                            what="Copy the CNAME target"
                                        />
                                    </td>
                                </tr>
                            </tbody>
                        </table>
                    }
                        .into_any()
                })}
            {d
                .error
                .clone()
                .filter(|_| !d.verified)
                .map(|e| {
                    view! {
                        <p class="mt-2 text-red-700" data-domain-error="">
                            {e}
                        </p>
                    }
                })}
            {can_manage
                .then(|| {
                    view! {
                        <div class="mt-2 flex gap-2">
                            {verify_form} <ActionForm action=remove attr:data-form="domain-remove">
                                {hidden("site", site_id.clone())}
                                {hidden("domain_id", d.id.clone())}
                                <button
                                    type="submit"
                                    class="rounded-md border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-50"
                                >
                                    "Remove"
                                </button>
                            </ActionForm>
                        </div>
                    }
                })}
        </li>
    }
}
