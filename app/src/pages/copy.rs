//! A button that copies a value (a key, a token, a DNS record) to the clipboard.

use leptos::prelude::*;

/// Copies `value` to the clipboard and says whether it worked. Shown once the page is
/// interactive: without JavaScript there is no button, and the value beside it is plain
/// text to select.
#[component]
pub fn CopyButton(
    value: String,
    /// What is copied, for screen readers ("Copy the API key").
    what: &'static str,
) -> impl IntoView {
    // `None`: not clicked yet; then whether the browser took the value.
    let copied = RwSignal::new(None::<bool>);
    let interactive = RwSignal::new(false);
    Effect::new(move |_| interactive.set(true));
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let value = value.clone();
            leptos::task::spawn_local(async move {
                let written = match web_sys::window() {
                    Some(window) => {
                        let promise = window.navigator().clipboard().write_text(&value);
                        wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
                    }
                    None => false,
                };
                copied.set(Some(written));
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &value;
    };
    view! {
        <button
            type="button"
            hidden=move || !interactive.get()
            aria-label=move || match copied.get() {
                None => what,
                Some(true) => "Copied",
                Some(false) => "Select and copy it",
            }
            class="ml-2 rounded border border-slate-300 bg-white px-2 py-0.5 font-sans text-xs font-medium text-slate-700 hover:bg-slate-50"
            on:click=copy
            data-copy=""
        >
            {move || match copied.get() {
                None => "Copy",
                Some(true) => "Copied",
                Some(false) => "Select and copy it",
            }}
        </button>
    }
}
