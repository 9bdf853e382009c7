use leptos::prelude::*;
use leptos_meta::Title;

use super::chrome::PublicPage;

#[component]
pub fn NotFound() -> impl IntoView {
    // The server answers 404, not a 200 page that says "not found".
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found" />
        <PublicPage>
            <div class="mx-auto max-w-xl px-4 py-24 text-center">
                <p class="text-sm font-semibold text-indigo-600">"404"</p>
                <h1 class="mt-2 text-3xl font-bold tracking-tight">"Page not found"</h1>
                <p class="mt-4 text-slate-600">"There is nothing at this address."</p>
                <a href="/" class="mt-8 inline-block font-medium text-indigo-600 hover:underline">
                    "Back to the home page"
                </a>
            </div>
        </PublicPage>
    }
}
