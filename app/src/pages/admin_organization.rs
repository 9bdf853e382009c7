//! `/admin/organizations/:slug`: one organization as its operators see it (who it is and
//! what it pays, with its Stripe objects; its sites, each suspended or resumed here with a
//! reason; its members, usage, incidents and audit log). Its forms work without
//! JavaScript: a plain post, then the same page again.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::admin::{Choice, LoadError, OperatorFrame, Reason, follow};
use super::dashboard::Panel;
use super::forms::FormError;
use crate::account::operator_check;
use crate::operator::{
    AdminAssignPlan, AdminExtendGrace, AdminResumeOrganization, AdminResumeSite, AdminRetrySite,
    AdminSuspendOrganization, AdminSuspendSite, OrgDetailView, OrgSiteRow, admin_organization,
};

#[component]
pub fn OrganizationPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.with(|p| p.get("slug").unwrap_or_default());
    let suspend = ServerAction::<AdminSuspendSite>::new();
    let resume = ServerAction::<AdminResumeSite>::new();
    let suspend_all = ServerAction::<AdminSuspendOrganization>::new();
    let resume_all = ServerAction::<AdminResumeOrganization>::new();
    let assign = ServerAction::<AdminAssignPlan>::new();
    let retry = ServerAction::<AdminRetrySite>::new();
    let extend = ServerAction::<AdminExtendGrace>::new();
    let check = Resource::new(|| (), |_| operator_check());
    let (reloads, refusal) = follow(vec![
        suspend.value(),
        resume.value(),
        suspend_all.value(),
        resume_all.value(),
        assign.value(),
        retry.value(),
        extend.value(),
    ]);
    // Read again after each action that did something, so the page shows it.
    let detail = Resource::new(
        move || (slug(), reloads.get()),
        |(slug, _)| admin_organization(slug),
    );
    let refusal = Signal::from(refusal);
    view! {
        <Title text="Organization" />
        // A transition: the page stays while it is read again after an action.
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let (check, detail) = (check.await, detail.await);
                view! {
                    <OperatorFrame
                        check
                        marker="organization"
                        crumbs=vec![("/admin/organizations", "Organizations".to_owned())]
                    >
                        {match detail.clone() {
                            Ok(detail) => {
                                view! {
                                    <Detail
                                        detail
                                        suspend
                                        resume
                                        suspend_all
                                        resume_all
                                        assign
                                        retry
                                        extend
                                        refusal
                                    />
                                }
                                    .into_any()
                            }
                            Err(error) => {
                                view! {
                                    <LoadError
                                        error
                                        not_found="No organization has this address."
                                        back=("/admin/organizations", "Show every organization")
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
fn Detail(
    detail: OrgDetailView,
    suspend: ServerAction<AdminSuspendSite>,
    resume: ServerAction<AdminResumeSite>,
    suspend_all: ServerAction<AdminSuspendOrganization>,
    resume_all: ServerAction<AdminResumeOrganization>,
    assign: ServerAction<AdminAssignPlan>,
    retry: ServerAction<AdminRetrySite>,
    extend: ServerAction<AdminExtendGrace>,
    refusal: Signal<Option<String>>,
) -> impl IntoView {
    let OrgDetailView {
        id,
        suspended,
        plan_id,
        assignable_plans,
        name,
        slug,
        created,
        plan,
        billing,
        revenue,
        billing_notes,
        grace_extendable_from,
        stripe,
        members,
        sites,
        usage,
        incidents,
        audit,
    } = detail;
    let plan_target = id.clone();
    let grace_target = id.clone();
    let grace_form = grace_extendable_from.map(|(from, until_latest)| {
        view! {
            <ActionForm action=extend attr:data-form="extend-grace" attr:class="mt-3">
                <div class="flex flex-wrap items-end gap-3">
                    <label class="block text-xs font-medium text-slate-600">
                        "Keep the sites through (UTC)"
                        <input
                            type="date"
                            name="until"
                            min=from
                            max=until_latest
                            required=""
                            class="mt-1 block rounded-md border border-slate-300 px-2 py-1.5 text-sm"
                        />
                    </label>
                    <Reason
                        name="organization"
                        value=grace_target
                        button="Extend the grace period"
                    />
                </div>
            </ActionForm>
        }
    });
    let plan_form = assignable_plans.map(|plans| {
        view! {
            <ActionForm action=assign attr:data-form="assign-plan" attr:class="mt-4">
                <div class="flex flex-wrap items-end gap-3">
                    <Choice label="Plan" name="plan" selected=plan_id choices=plans />
                    <Reason name="organization" value=plan_target button="Assign the plan" />
                </div>
            </ActionForm>
        }
    });
    let organization_form = if suspended.is_some() {
        view! {
            <ActionForm action=resume_all attr:data-form="resume-organization">
                <Reason name="organization" value=id button="Resume the organization" />
            </ActionForm>
        }
        .into_any()
    } else {
        view! {
            <ActionForm action=suspend_all attr:data-form="suspend-organization">
                <Reason name="organization" value=id button="Suspend the organization" />
            </ActionForm>
        }
        .into_any()
    };
    let facts = [
        ("Plan", plan),
        ("Billing", billing),
        ("Revenue", revenue),
        ("Created", created),
    ];
    let no_sites = sites.is_empty();
    view! {
        <h1 class="mt-2 text-3xl font-bold" data-organization-name="">
            {name}
        </h1>
        <p class="font-mono text-sm text-slate-500">{slug}</p>
        <dl class="mt-6 grid grid-cols-2 gap-4 sm:grid-cols-4" data-account="">
            {facts
                .into_iter()
                .map(|(label, value)| {
                    view! {
                        <div class="rounded-lg border border-slate-200 bg-white p-3">
                            <dt class="text-xs text-slate-500">{label}</dt>
                            <dd class="font-medium">{value}</dd>
                        </div>
                    }
                })
                .collect_view()}
        </dl>
        <ul class="mt-3 text-sm text-slate-600" data-billing-notes="">
            {billing_notes.into_iter().map(|note| view! { <li>{note}</li> }).collect_view()}
        </ul>
        {grace_form}
        <ul class="mt-2 text-sm" data-stripe="">
            {stripe
                .into_iter()
                .map(|object| {
                    view! {
                        <li>
                            {format!("Stripe {}: ", object.label.to_lowercase())}
                            {match object.link {
                                Some(link) => {
                                    view! {
                                        <a
                                            href=link
                                            target="_blank"
                                            rel="noopener noreferrer"
                                            class="font-mono text-indigo-600 hover:underline"
                                        >
                                            {object.id}
                                        </a>
                                    }
                                        .into_any()
                                }
                                None => {
                                    view! { <span class="font-mono">{object.id}</span> }.into_any()
                                }
                            }}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
        <div class="mt-6">
            <FormError error=refusal />
        </div>
        <Panel
            title="Organization"
            note="Suspending the organization suspends every site of it with the reason and refuses new ones; resuming it resumes the sites it suspended (a site suspended for another reason stays suspended)."
        >
            {suspended
                .map(|words| {
                    view! {
                        <p
                            class="mb-3 rounded-lg border border-red-200 bg-red-50 p-3 text-sm text-red-900"
                            data-organization-suspended=""
                        >
                            {words}
                        </p>
                    }
                })}
            {organization_form}
            {plan_form}
        </Panel>
        <Panel
            title="Sites"
            note="Suspending a site shows visitors the \"suspended\" page (503) and keeps its data; its members read the reason on the site's page. A site whose provisioning failed is retried with a growing backoff; \"Retry now\" runs it again at once. Every action is recorded in the audit log."
        >
            {no_sites.then(|| view! { <p class="text-sm text-slate-500">"No sites."</p> })}
            <ul class="divide-y divide-slate-100" data-sites="">
                {sites
                    .into_iter()
                    .map(|site| view! { <SiteRow site suspend resume retry /> })
                    .collect_view()}
            </ul>
        </Panel>
        <Panel title="Members">
            <table class="w-full text-left text-sm" data-members="">
                <thead class="text-slate-500">
                    <tr>
                        <th>"Email"</th>
                        <th>"Name"</th>
                        <th>"Role"</th>
                        <th>"Joined"</th>
                    </tr>
                </thead>
                <tbody>
                    {members
                        .into_iter()
                        .map(|m| {
                            view! {
                                <tr class="border-t border-slate-100">
                                    <td class="py-1 pr-2">
                                        <a
                                            href=format!("/admin/users/{}", m.user_id)
                                            class="text-indigo-600 hover:underline"
                                        >
                                            {m.email}
                                        </a>
                                    </td>
                                    <td class="py-1 pr-2">{m.name}</td>
                                    <td class="py-1 pr-2">{m.role}</td>
                                    <td class="py-1">{m.joined}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </Panel>
        <super::usage::Usage usage per_site=true operator=true />
        <Panel title="Incidents" note="Open and resolved, newest first.">
            <super::health::IncidentList incidents />
        </Panel>
        <Panel title="Audit log" note="Newest first, the operators' actions included.">
            <super::settings::AuditTable lines=audit />
        </Panel>
    }
}

/// A site, and the form that suspends or resumes it (billing's suspension is suspended
/// again as the operator's: paying then does not lift it).
#[component]
fn SiteRow(
    site: OrgSiteRow,
    suspend: ServerAction<AdminSuspendSite>,
    resume: ServerAction<AdminResumeSite>,
    retry: ServerAction<AdminRetrySite>,
) -> impl IntoView {
    let OrgSiteRow {
        id,
        name,
        slug,
        url,
        status,
        suspended,
        suspended_by_billing,
        with_organization,
        failure,
        created,
    } = site;
    let (retry_target, page) = (id.clone(), format!("/admin/sites/{id}"));
    let retry_form = failure.map(|why| {
        view! {
            <div class="mt-2">
                <p class="text-sm text-red-800" data-failure="">
                    {why}
                </p>
                <ActionForm action=retry attr:data-form=format!("retry-{slug}") attr:class="mt-1">
                    <Reason name="site" value=retry_target button="Retry now" />
                </ActionForm>
            </div>
        }
    });
    let form = view! {
        <SuspensionForm
            id
            slug=slug.clone()
            suspended=suspended.is_some()
            by_billing=suspended_by_billing
            with_organization
            suspend
            resume
        />
    };
    let row = slug.clone();
    view! {
        <li class="flex flex-wrap items-start justify-between gap-4 py-3" data-site=row>
            <div>
                <p class="font-medium">
                    <a href=page class="text-indigo-600 hover:underline">
                        {name}
                    </a>
                    " "
                    <span class="font-mono text-sm text-slate-500">{slug}</span>
                </p>
                <p class="text-sm">
                    <a href=url.clone() class="font-mono text-indigo-600 hover:underline">
                        {url.clone()}
                    </a>
                    <span class="ml-3 text-slate-600" data-site-status="">
                        {status}
                    </span>
                    <span class="ml-3 text-slate-500">{format!("created {created}")}</span>
                </p>
                {suspended
                    .map(|words| {
                        view! {
                            <p class="mt-1 text-sm text-red-800" data-suspended="">
                                {words}
                            </p>
                        }
                    })}
                {retry_form}
            </div>
            {form}
        </li>
    }
}

/// The form that suspends a site or resumes it, as its suspension allows: one made with
/// the organization's is lifted with it; billing's ends when the organization pays, so an
/// operator may suspend it again as their own (paying then does not lift it).
#[component]
pub(crate) fn SuspensionForm(
    id: String,
    slug: String,
    suspended: bool,
    by_billing: bool,
    with_organization: bool,
    suspend: ServerAction<AdminSuspendSite>,
    resume: ServerAction<AdminResumeSite>,
) -> impl IntoView {
    match (suspended, with_organization, by_billing) {
        (true, true, _) => view! {
            <p class="text-sm text-slate-600" data-with-organization="">
                "Suspended with the organization: resuming the organization lifts it."
            </p>
        }
        .into_any(),
        (true, false, true) => view! {
            <div>
                <p class="mb-1 text-xs text-slate-600">
                    "Billing's suspension ends when the organization pays; suspend it as an operator to keep it suspended."
                </p>
                <ActionForm action=suspend attr:data-form=format!("suspend-{slug}")>
                    <Reason name="site" value=id button="Suspend" />
                </ActionForm>
            </div>
        }
        .into_any(),
        (true, false, false) => view! {
            <ActionForm action=resume attr:data-form=format!("resume-{slug}")>
                <Reason name="site" value=id button="Resume" />
            </ActionForm>
        }
        .into_any(),
        (false, _, _) => view! {
            <ActionForm action=suspend attr:data-form=format!("suspend-{slug}")>
                <Reason name="site" value=id button="Suspend" />
            </ActionForm>
        }
        .into_any(),
    }
}
