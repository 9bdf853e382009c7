//! `/help`: how to do the common things, where each lives in the dashboard, and how to
//! reach the people who run this service. Linked from every page.

use leptos::prelude::*;
use leptos_meta::Title;

use super::chrome::PublicPage;
use crate::help::support;

/// (anchor, question, answer, where in the dashboard). Only what the dashboard does today.
const TOPICS: [(&str, &str, &str, &str); 7] = [
    (
        "sites",
        "Create a site",
        "Under Sites, choose New site, name it and pick its address. Slipway sets it up in seconds and shows each step as it happens; the site page then shows its status, usage, health and logs.",
        "/dashboard/sites",
    ),
    (
        "domains",
        "Use your own domain",
        "On the site's page, under Custom domains, add the domain. Create the two DNS records shown there (a TXT record that proves the domain is yours, and a CNAME to the site's address), then choose Verify.",
        "/dashboard/sites",
    ),
    (
        "team",
        "Invite your team",
        "Under Team, invite people by email and choose their role: viewers read, editors also see logs and restart sites, admins manage sites, the team and API keys, owners also manage billing.",
        "/dashboard/team",
    ),
    (
        "plans",
        "Change your plan",
        "Billing shows your plan and what it includes. Choose another plan there; where the operators bill you themselves, send them a request from the same page.",
        "/dashboard/billing",
    ),
    (
        "usage",
        "See what your sites use",
        "Usage shows storage, bandwidth and requests this month against your plan's limits, per site and over time.",
        "/dashboard/usage",
    ),
    (
        "api",
        "Automate with the API",
        "Under Settings, create an API key (shown once). Send it as a Bearer token to /api/v1.",
        "/dashboard/settings",
    ),
    (
        "account",
        "Your account",
        "Your name, email address, password and signed-in browsers are under Your account, from the address at the top of every dashboard page.",
        "/dashboard/account",
    ),
];

#[component]
pub fn HelpPage() -> impl IntoView {
    let support = Resource::new(|| (), |_| support());
    view! {
        <Title text="Help" />
        <PublicPage>
            <div class="mx-auto max-w-3xl px-4 py-12 sm:px-6">
                <h1 class="text-3xl font-bold tracking-tight">"Help"</h1>
                <p class="mt-2 text-slate-600">"The common tasks, and where to find them."</p>
                <nav aria-label="Topics" class="mt-6 flex flex-wrap gap-2 text-sm">
                    {TOPICS
                        .iter()
                        .map(|(anchor, question, _, _)| {
                            view! {
                                <a
                                    href=format!("#{anchor}")
                                    class="rounded-full border border-slate-300 bg-white px-3 py-1 text-slate-700 hover:bg-slate-100"
                                >
                                    {*question}
                                </a>
                            }
                        })
                        .collect_view()}
                </nav>
                {TOPICS
                    .iter()
                    .map(|(anchor, question, answer, place)| {
                        view! {
                            <section
                                id=*anchor
                                class="mt-8 rounded-2xl border border-slate-200 bg-white p-6"
                                data-topic=*anchor
                            >
                                <h2 class="text-lg font-semibold">{*question}</h2>
                                <p class="mt-2 text-sm text-slate-700">{*answer}</p>
                                <a
                                    href=*place
                                    class="mt-3 inline-block text-sm font-medium text-indigo-700 underline"
                                >
                                    "Go there"
                                </a>
                            </section>
                        }
                    })
                    .collect_view()}
                <section
                    class="mt-8 rounded-2xl border border-slate-200 bg-white p-6"
                    data-support=""
                >
                    <h2 class="text-lg font-semibold">"Still stuck?"</h2>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            let support = support.await.unwrap_or_default();
                            view! {
                                {match support.email {
                                    Some(email) => {
                                        view! {
                                            <p class="mt-2 text-sm text-slate-700">
                                                "Write to the people who run this service: "
                                                <a
                                                    href=format!("mailto:{email}")
                                                    class="font-medium text-indigo-700 underline"
                                                    data-support-email=""
                                                >
                                                    {email.clone()}
                                                </a> ". Say which organization and site you mean."
                                            </p>
                                        }
                                            .into_any()
                                    }
                                    None => {
                                        view! {
                                            <p class="mt-2 text-sm text-slate-700">
                                                "Ask the people who run this service; they have not published a support address here."
                                            </p>
                                        }
                                            .into_any()
                                    }
                                }}
                                {support
                                    .docs_url
                                    .map(|url| {
                                        view! {
                                            <p class="mt-2 text-sm">
                                                <a
                                                    href=url
                                                    class="font-medium text-indigo-700 underline"
                                                    data-docs=""
                                                >
                                                    "Read the full documentation"
                                                </a>
                                            </p>
                                        }
                                    })}
                            }
                        })}
                    </Suspense>
                </section>
            </div>
        </PublicPage>
    }
}
