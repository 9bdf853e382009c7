//! `/dashboard/*`: the customer's workspace, for signed-in users. The frame (navigation,
//! organization switcher, account menu, the past-due banner).

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Outlet, Redirect};
use leptos_router::hooks::use_location;

use super::chrome::HomeLink;
use super::forms::{FormError, general_error};
use crate::account::{Me, ResendVerification, SwitchOrganization, current_user};
use crate::billing::past_due_banner;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Sites,
    Team,
    Billing,
    Usage,
    Settings,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Overview,
        Section::Sites,
        Section::Team,
        Section::Billing,
        Section::Usage,
        Section::Settings,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Overview => "Overview",
            Section::Sites => "Sites",
            Section::Team => "Team",
            Section::Billing => "Billing",
            Section::Usage => "Usage",
            Section::Settings => "Settings",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Section::Overview => "/dashboard",
            Section::Sites => "/dashboard/sites",
            Section::Team => "/dashboard/team",
            Section::Billing => "/dashboard/billing",
            Section::Usage => "/dashboard/usage",
            Section::Settings => "/dashboard/settings",
        }
    }
}

#[component]
pub fn DashboardLayout() -> impl IntoView {
    // Reloaded on every navigation: switching or creating an organization lands on a new
    // URL, and the frame then shows the organization it switched to.
    let location = use_location();
    let me = Resource::new(
        move || (location.pathname.get(), location.search.get()),
        |_| current_user(),
    );
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) => view! { <Frame me /> }.into_any(),
                    Ok(None) => view! { <Redirect path="/login" /> }.into_any(),
                    Err(error) => {
                        view! { <p class="p-8 text-red-700">{error.to_string()}</p> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn Frame(me: Me) -> impl IntoView {
    let no_organization = me.organizations.is_empty();
    // Nothing to switch between without an organization (the space keeps the layout).
    let switcher = if no_organization {
        view! { <div></div> }.into_any()
    } else {
        view! { <OrganizationSwitcher me=me.clone() /> }.into_any()
    };
    let location = use_location();
    let current = move |section: Section| {
        let path = location.pathname.get();
        let path = path.trim_end_matches('/');
        path == section.path()
            || (section != Section::Overview && path.starts_with(&format!("{}/", section.path())))
    };
    let resend = ServerAction::<ResendVerification>::new();
    // Reloaded on every navigation, like the frame: a payment can land at any time.
    let banner = Resource::new(
        move || (location.pathname.get(), location.search.get()),
        |_| past_due_banner(),
    );
    let incidents = Resource::new(
        move || (location.pathname.get(), location.search.get()),
        |_| crate::health::open_incidents(),
    );
    view! {
        <super::dev_mail::DevModeBar />
        <div class="min-h-screen md:flex">
            <aside class="border-b border-slate-200 bg-white md:min-h-screen md:w-60 md:shrink-0 md:border-b-0 md:border-r">
                <HomeLink class="flex items-center gap-2 px-4 py-4 text-lg font-bold md:px-6" />
                <nav
                    aria-label="Dashboard"
                    class="flex flex-wrap gap-1 px-2 pb-2 md:flex-col md:flex-nowrap md:px-3"
                >
                    {Section::ALL
                        .into_iter()
                        .map(|section| {
                            view! {
                                <a
                                    href=section.path()
                                    aria-current=move || current(section).then_some("page")
                                    class=move || {
                                        if current(section) {
                                            "whitespace-nowrap rounded-md bg-indigo-50 px-3 py-2 text-sm font-semibold text-indigo-700"
                                        } else {
                                            "whitespace-nowrap rounded-md px-3 py-2 text-sm font-medium text-slate-600 hover:bg-slate-100 hover:text-slate-900"
                                        }
                                    }
                                >
                                    {section.title()}
                                </a>
                            }
                        })
                        .collect_view()}
                </nav>
            </aside>
            <div class="min-w-0 flex-1">
                <header class="flex flex-wrap items-center justify-between gap-3 border-b border-slate-200 bg-white px-4 py-3 sm:px-8">
                    {switcher} <div class="flex min-w-0 flex-wrap items-center gap-3 text-sm">
                        <a
                            href="/dashboard/account"
                            class="break-all text-slate-600 hover:underline"
                            title="Your account"
                            data-user-email=""
                        >
                            {me.email.clone()}
                        </a>
                        <a href="/help" class="font-medium text-slate-700 hover:underline">
                            "Help"
                        </a>
                        {me
                            .is_operator
                            .then(|| {
                                view! {
                                    <a href="/admin" class="font-medium text-indigo-600">
                                        "Operator"
                                    </a>
                                }
                            })}
                        <a href="/logout" class="font-medium text-slate-700 hover:underline">
                            "Sign out"
                        </a>
                    </div>
                </header>
                {(!me.email_verified)
                    .then(|| {
                        view! {
                            <div
                                class="flex flex-wrap items-center gap-3 border-b border-amber-200 bg-amber-50 px-4 py-2 text-sm text-amber-900 sm:px-8"
                                data-unverified=""
                            >
                                <span>
                                    {format!(
                                        "Confirm your email address: we sent a link to {}.",
                                        me.email,
                                    )}
                                </span>
                                <ActionForm action=resend>
                                    <button type="submit" class="font-semibold underline">
                                        "Send it again"
                                    </button>
                                </ActionForm>
                                {move || {
                                    matches!(resend.value().get(), Some(Ok(())))
                                        .then_some(view! { <span>"Sent."</span> })
                                }}
                            </div>
                        }
                    })}
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        banner
                            .await
                            .ok()
                            .flatten()
                            .map(|message| {
                                view! {
                                    <div
                                        class="flex flex-wrap items-center gap-3 border-b border-red-200 bg-red-50 px-4 py-2 text-sm text-red-900 sm:px-8"
                                        data-past-due=""
                                    >
                                        <span>{message}</span>
                                        <a
                                            href="/dashboard/billing"
                                            class="font-semibold underline"
                                        >
                                            "Go to Billing"
                                        </a>
                                    </div>
                                }
                            })
                    })}
                </Suspense>
                {(!no_organization).then(|| view! { <super::health::IncidentBanner incidents /> })}
                <main class="px-4 py-8 sm:px-8">
                    // The account page is the person's own: it needs no organization.
                    {move || {
                        let personal = location.pathname.get().starts_with("/dashboard/account");
                        if no_organization && !personal {
                            view! { <NoOrganization /> }.into_any()
                        } else {
                            view! { <Outlet /> }.into_any()
                        }
                    }}
                </main>
            </div>
        </div>
    }
}

/// Every dashboard page for someone who belongs to no organization (removed from their
/// last one, or an operator without one): what happened and a way on.
#[component]
fn NoOrganization() -> impl IntoView {
    view! {
        <Title text="Create an organization" />
        <h1 class="text-2xl font-bold tracking-tight">"Create an organization"</h1>
        <p class="mt-2 max-w-xl text-sm text-slate-600" data-no-organization="">
            "You are not a member of any organization: you may have left or been removed from your last one. Create one to host sites (you will be its owner, on the free plan), or ask a team's owner for an invitation."
        </p>
        <Panel title="New organization">
            <super::settings::NewOrganizationForm />
        </Panel>
    }
}

#[component]
fn OrganizationSwitcher(me: Me) -> impl IntoView {
    let switch = ServerAction::<SwitchOrganization>::new();
    let active_id = me
        .active
        .as_ref()
        .map(|org| org.id.clone())
        .unwrap_or_default();
    view! {
        <ActionForm
            action=switch
            attr:class="flex min-w-0 flex-wrap items-center gap-2"
            attr:data-form="switch-organization"
        >
            <label class="text-sm text-slate-500" for="organization-switcher">
                "Organization"
            </label>
            <select
                id="organization-switcher"
                name="organization_id"
                class="min-w-0 max-w-full rounded-md border border-slate-300 px-2 py-1 text-sm"
            >
                {me
                    .organizations
                    .iter()
                    .map(|org| {
                        view! {
                            <option value=org.id.clone() selected=org.id == active_id>
                                {format!("{} ({})", org.name, org.role)}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <button type="submit" class="rounded-md border border-slate-300 px-2 py-1 text-sm">
                "Switch"
            </button>
            <FormError error=general_error(switch.value()) />
        </ActionForm>
    }
}

/// A heading and a short line under it, for a dashboard page section.
#[component]
pub fn Panel(
    title: &'static str,
    #[prop(optional)] note: &'static str,
    /// An anchor other pages link to (`#domains`).
    #[prop(optional)]
    id: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <section
            class="mt-8 rounded-2xl border border-slate-200 bg-white p-6"
            id=(!id.is_empty()).then_some(id)
        >
            <h2 class="text-lg font-semibold">{title}</h2>
            {(!note.is_empty())
                .then(|| view! { <p class="mt-1 text-sm text-slate-600">{note}</p> })}
            <div class="mt-4">{children()}</div>
        </section>
    }
}
