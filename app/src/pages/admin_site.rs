//! `/admin/sites/:id`: one site of any organization, as its members see it (state,
//! deployments with their steps, health and uptime, incidents, usage, its log) without its
//! credentials, with what only operators see (its container, its failures) and the
//! actions: suspend or resume, retry a failed pass, force a reconcile, delete (the slug
//! typed to confirm). Each action with a reason; plain forms, the same without JavaScript.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::admin::{LoadError, OperatorFrame, Reason, follow};
use super::admin_organization::SuspensionForm;
use super::dashboard::Panel;
use super::forms::FormError;
use crate::account::operator_check;
use crate::operator::sites::{
    AdminDeleteSite, AdminReconcileSite, AdminSiteView, LiveSite, admin_site,
};
use crate::operator::{AdminResumeSite, AdminRetrySite, AdminSuspendSite};

/// The actions of the page.
#[derive(Clone, Copy)]
struct Actions {
    suspend: ServerAction<AdminSuspendSite>,
    resume: ServerAction<AdminResumeSite>,
    retry: ServerAction<AdminRetrySite>,
    reconcile: ServerAction<AdminReconcileSite>,
    delete: ServerAction<AdminDeleteSite>,
}

#[component]
pub fn AdminSitePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let actions = Actions {
        suspend: ServerAction::new(),
        resume: ServerAction::new(),
        retry: ServerAction::new(),
        reconcile: ServerAction::new(),
        delete: ServerAction::new(),
    };
    let check = Resource::new(|| (), |_| operator_check());
    let (reloads, refusal) = follow(vec![
        actions.suspend.value(),
        actions.resume.value(),
        actions.retry.value(),
        actions.reconcile.value(),
        actions.delete.value(),
    ]);
    let site = Resource::new(move || (id(), reloads.get()), |(id, _)| admin_site(id));
    let refusal = Signal::from(refusal);
    view! {
        <Title text="Site" />
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let (check, site) = (check.await, site.await);
                let crumbs = match &site {
                    Ok(site) => {
                        vec![
                            ("/admin/sites", "Sites".to_owned()),
                            ("", format!("{} ({})", site.slug, site.organization_name)),
                        ]
                    }
                    Err(_) => vec![("/admin/sites", "Sites".to_owned())],
                };
                view! {
                    <OperatorFrame check marker="site" crumbs>
                        {match site.clone() {
                            Ok(site) => view! { <SiteDetail site actions refusal /> }.into_any(),
                            Err(error) => {
                                view! {
                                    <LoadError
                                        error
                                        not_found="No such site."
                                        back=("/admin/sites", "Show every site")
                                    />
                                }
                                    .into_any()
                            }
                        }}
                    </OperatorFrame>
                }
            })}
        </Transition>
    }
}

#[component]
fn SiteDetail(
    site: AdminSiteView,
    actions: Actions,
    refusal: Signal<Option<String>>,
) -> impl IntoView {
    let AdminSiteView {
        id,
        slug,
        organization_name,
        organization_slug,
        plan,
        live,
        container_id,
        failures,
        suspended,
        suspended_by_billing,
        with_organization,
        retryable,
        reconcilable,
        deletable,
    } = site;
    let (name, url, status) = match &live {
        Some(live) => (
            live.site.name.clone(),
            live.site.url.clone(),
            live.site.status.clone(),
        ),
        None => (slug.clone(), String::new(), "deleted".to_owned()),
    };
    let facts = vec![
        ("Organization", organization_name.clone()),
        ("Plan", plan),
        ("Status", status),
        (
            "Container",
            container_id.unwrap_or_else(|| "none".to_owned()),
        ),
    ];
    let suspension = live.is_some().then(|| {
        view! {
            <SuspensionForm
                id=id.clone()
                slug=slug.clone()
                suspended=suspended.is_some()
                by_billing=suspended_by_billing
                with_organization
                suspend=actions.suspend
                resume=actions.resume
            />
        }
    });
    let retry = retryable.then(|| {
        let id = id.clone();
        view! {
            <ActionForm action=actions.retry attr:data-form=format!("retry-{slug}")>
                <Reason name="site" value=id button="Retry now" />
            </ActionForm>
        }
    });
    let reconcile = reconcilable.then(|| {
        let id = id.clone();
        view! {
            <div>
                <p class="mb-1 text-xs text-slate-600">
                    "Runs the whole pass again now: schema and role, image, volume, container and its limits."
                </p>
                <ActionForm action=actions.reconcile attr:data-form=format!("reconcile-{slug}")>
                    <Reason name="site" value=id button="Force a reconcile" />
                </ActionForm>
            </div>
        }
    });
    let delete = deletable.then(|| {
        view! { <DeleteForm id=id.clone() slug=slug.clone() delete=actions.delete /> }
    });
    view! {
        <div class="mt-2 flex flex-wrap items-baseline gap-3">
            <h1 class="text-3xl font-bold">{name}</h1>
            <span class="font-mono text-slate-500">{slug.clone()}</span>
        </div>
        {(!url.is_empty())
            .then(|| {
                view! {
                    <a href=url.clone() class="font-mono text-sm text-indigo-600 hover:underline">
                        {url.clone()}
                    </a>
                }
            })}
        <dl class="mt-4 grid gap-x-6 gap-y-2 text-sm sm:grid-cols-4">
            {facts
                .into_iter()
                .map(|(term, value)| {
                    view! {
                        <div>
                            <dt class="text-slate-500">{term}</dt>
                            <dd class="break-all font-medium" data-fact=term>
                                {value}
                            </dd>
                        </div>
                    }
                })
                .collect_view()}
        </dl>
        <a
            href=format!("/admin/organizations/{organization_slug}")
            class="mt-2 inline-block text-sm text-indigo-600 hover:underline"
        >
            {format!("Open {organization_name}")}
        </a>
        {suspended
            .map(|why| {
                view! {
                    <p class="mt-3 text-sm text-red-800" data-suspended="">
                        {format!("Suspended: {why}")}
                    </p>
                }
            })}
        {failures
            .map(|why| {
                view! {
                    <p class="mt-3 text-sm text-red-800" data-failures="">
                        {why}
                    </p>
                }
            })}
        <div class="mt-4">
            <FormError error=refusal />
        </div>
        <Panel title="Actions" note="Each with a reason, kept in the organization's audit log.">
            <div class="space-y-4" data-actions="">
                {suspension}
                {retry}
                {reconcile}
                {delete}
            </div>
        </Panel>
        {live.map(|live| view! { <LiveParts live /> })}
    }
}

/// The parts of a site that is not deleted: deployments, health and incidents, usage, its
/// log.
#[component]
fn LiveParts(live: LiveSite) -> impl IntoView {
    let LiveSite {
        site,
        health,
        logs,
        usage,
    } = live;
    // The health panel lists the site's incidents with its restarts.
    view! {
        <super::sites::Progress site />
        <super::health::HealthPanel health />
        <super::usage::Usage usage per_site=false operator=true />
        <Panel title="Log" note="The container's last lines, oldest first.">
            <pre
                class="max-h-96 overflow-auto whitespace-pre-wrap break-all rounded bg-slate-900 p-3 text-xs text-slate-100"
                data-logs=""
            >
                {if logs.is_empty() { "(nothing logged)".to_owned() } else { logs.join("\n") }}
            </pre>
        </Panel>
    }
}

/// Deleting: the slug typed again, and a reason the customer reads.
#[component]
fn DeleteForm(id: String, slug: String, delete: ServerAction<AdminDeleteSite>) -> impl IntoView {
    let (form_name, confirm) = (format!("delete-{slug}"), format!("Type {slug} to confirm"));
    view! {
        <ActionForm action=delete attr:data-form=form_name>
            <p class="mb-1 text-xs text-slate-600">
                "Deletes the site with its container, volume, schema and role; its owners are mailed the reason. This cannot be undone."
            </p>
            <label class="mb-2 block text-xs font-medium text-slate-600">
                {confirm}
                <input
                    type="text"
                    name="confirm"
                    required=""
                    autocomplete="off"
                    class="mt-1 block w-64 rounded-md border border-slate-300 px-2 py-1.5 text-sm"
                />
            </label>
            <Reason name="site" value=id button="Delete site" />
        </ActionForm>
    }
}
