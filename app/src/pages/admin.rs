//! `/admin`: the operator area. Refused to everyone but platform operators; the panel
//! itself (organizations, sites, revenue) comes with later capabilities.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use super::chrome::PublicPage;
use crate::account::operator_check;
use crate::error::AppError;

#[component]
pub fn AdminPage() -> impl IntoView {
    let check = Resource::new(|| (), |_| operator_check());
    let feed = Resource::new(|| (), |_| crate::health::incident_feed());
    view! {
        <Title text="Operator" />
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match check.await {
                    Ok(email) => {
                        view! {
                            <PublicPage>
                                <div class="mx-auto max-w-3xl px-4 py-16" data-operator="">
                                    <h1 class="text-3xl font-bold">"Operator"</h1>
                                    <p class="mt-2 text-slate-600">
                                        {format!("Signed in as {email}, a platform operator.")}
                                    </p>
                                    <p class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-6 text-slate-600">
                                        "The rest of the operator panel (organizations, sites, subscriptions, revenue) is not built yet."
                                    </p>
                                    <super::health::IncidentFeed feed />
                                </div>
                            </PublicPage>
                        }
                            .into_any()
                    }
                    Err(AppError::SignInRequired) => view! { <Redirect path="/login" /> }.into_any(),
                    Err(error) => {
                        view! {
                            <PublicPage>
                                <div class="mx-auto max-w-xl px-4 py-24 text-center">
                                    <p class="text-sm font-semibold text-red-600">"403"</p>
                                    <h1 class="mt-2 text-3xl font-bold">"Not allowed"</h1>
                                    <p class="mt-4 text-slate-600" data-refused="">
                                        {error.to_string()}
                                    </p>
                                </div>
                            </PublicPage>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}
