//! `/`: what Slipway hosts and what it costs, in one screen.

use leptos::prelude::*;
use leptos_meta::Title;

use super::chrome::{LoadError, PublicPage};
use crate::format::usd;
use crate::plans::list_plans;

/// What the landing page promises: (key, title, text). Each key names something a customer
/// reaches in the dashboard, and the browser test `public_promises_are_kept` goes there: a
/// promise without a place to keep it fails that test.
pub const PROMISES: [(&str, &str, &str); 3] = [
    (
        "provisioning",
        "Live in seconds",
        "Name your site and Slipway provisions it: its own container, its own database, a URL. You watch each step as it happens.",
    ),
    (
        "limits",
        "Isolated and limited",
        "Each site runs hardened, within its plan's memory, CPU and storage, unable to reach its neighbours.",
    ),
    (
        "monitoring",
        "Watched and restarted",
        "Slipway checks every site, restarts one that stops answering, and shows you what happened.",
    ),
];

#[component]
pub fn LandingPage() -> impl IntoView {
    let plans = Resource::new(|| (), |_| list_plans());
    let query = leptos_router::hooks::use_query_map();
    let account_deleted = move || query.read().get("account").as_deref() == Some("deleted");
    view! {
        <Title text="" />
        <PublicPage>
            <Show when=account_deleted>
                <p
                    class="mx-auto mt-6 max-w-2xl rounded-lg bg-green-50 p-3 text-center text-sm text-green-800"
                    role="status"
                    data-notice=""
                >
                    "Your account is deleted, with the organizations you owned alone and their sites."
                </p>
            </Show>
            <section class="mx-auto max-w-6xl px-4 pt-20 text-center sm:px-6">
                <h1 class="text-4xl font-bold tracking-tight sm:text-6xl">
                    "Your site, hosted and live in seconds"
                </h1>
                <p class="mx-auto mt-6 max-w-2xl text-lg text-slate-600">
                    "Slipway runs the open-source app for you: provisioning, monitoring and your own domains included. You write; we keep it running."
                </p>
                <div class="mt-10 flex flex-wrap justify-center gap-4">
                    <a
                        href="/pricing"
                        class="rounded-lg bg-indigo-600 px-5 py-3 font-semibold text-white hover:bg-indigo-500"
                    >
                        "See plans and pricing"
                    </a>
                    <a
                        href="/dashboard"
                        class="rounded-lg border border-slate-300 bg-white px-5 py-3 font-semibold text-slate-900 hover:bg-slate-100"
                    >
                        "Open the dashboard"
                    </a>
                </div>
            </section>
            <section class="mx-auto mt-20 grid max-w-6xl gap-6 px-4 sm:px-6 md:grid-cols-3">
                {PROMISES
                    .iter()
                    .map(|(key, title, text)| {
                        view! {
                            <div
                                class="rounded-2xl border border-slate-200 bg-white p-6"
                                data-promise=*key
                            >
                                <h2 class="font-semibold">{*title}</h2>
                                <p class="mt-2 text-sm text-slate-600">{*text}</p>
                            </div>
                        }
                    })
                    .collect_view()}
            </section>
            <section class="mx-auto mt-20 max-w-6xl px-4 sm:px-6" aria-labelledby="plans-heading">
                <h2 id="plans-heading" class="text-2xl font-bold">
                    "Plans"
                </h2>
                <Suspense fallback=|| {
                    view! { <p class="mt-4 text-slate-500">"Loading plans…"</p> }
                }>
                    {move || Suspend::new(async move {
                        match plans.await {
                            Ok(plans) => {
                                view! {
                                    <ul class="mt-6 grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
                                        {plans
                                            .into_iter()
                                            .map(|plan| {
                                                view! {
                                                    <li
                                                        class="rounded-xl border border-slate-200 bg-white p-4"
                                                        data-plan=plan.id.clone()
                                                    >
                                                        <p class="font-semibold">{plan.name.clone()}</p>
                                                        <p class="mt-1 text-sm text-slate-600">
                                                            {if plan.monthly_cents == 0 {
                                                                "Free".to_owned()
                                                            } else {
                                                                format!("from {}/month", usd(plan.monthly_cents))
                                                            }}
                                                        </p>
                                                    </li>
                                                }
                                            })
                                            .collect_view()}
                                    </ul>
                                }
                                    .into_any()
                            }
                            Err(error) => {
                                view! { <LoadError message=error.to_string() /> }.into_any()
                            }
                        }
                    })}
                </Suspense>
                <a
                    href="/pricing"
                    class="mt-6 inline-block font-medium text-indigo-600 hover:underline"
                >
                    "Compare every plan →"
                </a>
            </section>
        </PublicPage>
    }
}
