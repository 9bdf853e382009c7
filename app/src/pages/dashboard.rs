//! `/dashboard/*`: the customer's workspace. This is the frame; each section fills in as
//! the capability behind it lands.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Outlet;
use leptos_router::hooks::use_location;

use super::chrome::HomeLink;

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

    /// The empty state: what is here now (nothing) and what will be.
    fn empty_state(self) -> (&'static str, &'static str) {
        match self {
            Section::Overview => (
                "Nothing to show yet",
                "Your sites, their health and this month's usage will be summarised here.",
            ),
            Section::Sites => (
                "No sites yet",
                "Each site you create appears here with its address, status and plan limits.",
            ),
            Section::Team => (
                "No team members yet",
                "Members of your organization and pending invitations will be listed here.",
            ),
            Section::Billing => (
                "No subscription yet",
                "Your plan, billing interval, invoices and payment method will be shown here.",
            ),
            Section::Usage => (
                "No usage recorded yet",
                "Requests, bandwidth and storage per site will be charted here against your plan's limits.",
            ),
            Section::Settings => (
                "No settings yet",
                "Organization details, API keys and the audit log will be managed here.",
            ),
        }
    }
}

#[component]
pub fn DashboardLayout() -> impl IntoView {
    let location = use_location();
    let current = move |section: Section| {
        let path = location.pathname.get();
        path.trim_end_matches('/') == section.path()
    };
    view! {
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
            <main class="flex-1 px-4 py-8 sm:px-8">
                <Outlet />
            </main>
        </div>
    }
}

#[component]
pub fn DashboardSection(section: Section) -> impl IntoView {
    let (headline, explanation) = section.empty_state();
    view! {
        <Title text=section.title() />
        <h1 class="text-2xl font-bold tracking-tight">{section.title()}</h1>
        <div
            class="mt-8 rounded-2xl border-2 border-dashed border-slate-300 bg-white px-6 py-16 text-center"
            data-empty-state=""
        >
            <p class="text-lg font-semibold">{headline}</p>
            <p class="mx-auto mt-2 max-w-md text-sm text-slate-600">{explanation}</p>
        </div>
    }
}
