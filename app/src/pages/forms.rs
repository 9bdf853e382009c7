//! Form pieces shared by every page: labelled fields that show their server-side error,
//! a banner for errors that belong to no field, and submit buttons.

use leptos::prelude::*;

use crate::error::AppError;

/// The error of `field` in the latest result of a server action.
pub fn field_error<T, S>(value: S, field: &'static str) -> Signal<Option<String>>
where
    S: Get<Value = Option<Result<T, AppError>>> + Clone + Send + Sync + 'static,
{
    Signal::derive(move || {
        value
            .get()
            .and_then(|result| result.err())
            .and_then(|error| error.for_field(field))
    })
}

/// The error of the latest result that belongs to no field.
pub fn general_error<T, S>(value: S) -> Signal<Option<String>>
where
    S: Get<Value = Option<Result<T, AppError>>> + Clone + Send + Sync + 'static,
{
    Signal::derive(move || {
        value
            .get()
            .and_then(|result| result.err())
            .and_then(|error| error.general())
    })
}

/// How many times the action behind `value` has succeeded, counted in the browser: the key
/// for what must reload after a change. A refused attempt leaves the page as it is, so a
/// form that was opened stays open with its errors.
pub fn successes<T, S>(value: S) -> ReadSignal<u32>
where
    T: Send + Sync + 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    let (count, set_count) = signal(0u32);
    Effect::new(move |_| {
        if matches!(value.get(), Some(Ok(_))) {
            set_count.update(|n| *n += 1);
        }
    });
    count
}

#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "off")] autocomplete: &'static str,
    #[prop(optional, into)] value: String,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <label class="block">
            <span class="text-sm font-medium text-slate-700">{label}</span>
            <input
                type=kind
                name=name
                value=value
                autocomplete=autocomplete
                aria-invalid=move || error.get().map(|_| "true")
                class="mt-1 block w-full rounded-lg border border-slate-300 px-3 py-2 shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-1 focus:ring-indigo-500"
            />
            {move || {
                error
                    .get()
                    .map(|message| {
                        view! {
                            <p class="mt-1 text-sm text-red-700" data-field-error=name>
                                {message}
                            </p>
                        }
                    })
            }}
        </label>
    }
}

#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|message| {
            view! {
                <div
                    role="alert"
                    data-form-error=""
                    class="rounded-lg border border-red-200 bg-red-50 p-3 text-sm text-red-800"
                >
                    {
                        let upgrade = message.contains("under Billing");
                        // A plan limit says where to get more: make that a link.
                        view! {
                            {message}
                            {upgrade
                                .then(|| {
                                    view! {
                                        " "
                                        <a
                                            href="/dashboard/billing"
                                            class="font-semibold underline"
                                            data-upgrade=""
                                        >
                                            "See plans"
                                        </a>
                                    }
                                })}
                        }
                    }
                </div>
            }
        })
    }
}

#[component]
pub fn Submit(label: &'static str, #[prop(default = false)] danger: bool) -> impl IntoView {
    let class = if danger {
        "rounded-lg border border-red-300 bg-white px-3 py-2 text-sm font-semibold text-red-700 hover:bg-red-50"
    } else {
        "rounded-lg bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-500"
    };
    view! {
        <button type="submit" class=class>
            {label}
        </button>
    }
}

/// A submit button behind a question, for actions that interrupt visitors or take access
/// away: the first click opens the question (a native `<details>`, so it works the same
/// without JavaScript), and only the button that names the action submits.
#[component]
pub fn ConfirmSubmit(
    /// What the closed control says ("Stop").
    label: &'static str,
    /// What happens, asked plainly.
    question: String,
    /// The button that does it ("Stop the site").
    confirm: &'static str,
) -> impl IntoView {
    view! {
        <details class="rounded-md border border-slate-300 bg-white text-sm" data-confirm=label>
            <summary class="cursor-pointer px-3 py-1.5 font-medium hover:bg-slate-50">
                {format!("{label}…")}
            </summary>
            <div class="max-w-xs space-y-2 border-t border-slate-200 px-3 py-2">
                <p class="text-slate-700">{question}</p>
                <button
                    type="submit"
                    class="rounded-md border border-red-300 bg-white px-3 py-1.5 font-semibold text-red-700 hover:bg-red-50"
                >
                    {confirm}
                </button>
            </div>
        </details>
    }
}
