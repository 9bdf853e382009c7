//! Form pieces shared by every page: labelled fields that show their server-side error,
//! a banner for errors that belong to no field, and submit buttons.

use leptos::prelude::*;

use leptos::server_fn::ServerFn;

use crate::error::AppError;
use crate::form_flash::FormFlash;

/// One field of a server action's form: the error of its latest result, and what the
/// visitor typed when a plain form post was refused (see [`crate::form_flash`]), so the
/// page shows the form as it was sent.
#[derive(Clone)]
pub struct FieldError {
    pub message: Signal<Option<String>>,
    pub typed: Option<String>,
}

impl From<FieldError> for Signal<Option<String>> {
    fn from(error: FieldError) -> Self {
        error.message
    }
}

/// The error of `field` (the input's name) in the latest result of `action`, and what was
/// typed into it.
pub fn field_error<S>(action: ServerAction<S>, field: impl Into<String>) -> FieldError
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let field: String = field.into();
    let typed = use_context::<FormFlash>().and_then(|flash| flash.typed(S::PATH, &field));
    let value = action.value();
    FieldError {
        message: Signal::derive(move || {
            value
                .get()
                .and_then(|result| result.err())
                .and_then(|error| error.for_field(&field))
        }),
        typed,
    }
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

/// A form that adds something (a member, a key, a password) starts empty again once its
/// action succeeded, ready for the next; a refused attempt keeps what was typed. Give the
/// returned reference to the `ActionForm`'s `node_ref`.
pub fn cleared_on_success<T, S>(value: S) -> NodeRef<leptos::html::Form>
where
    T: Send + Sync + 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if matches!(value.get(), Some(Ok(_))) {
            #[cfg(feature = "hydrate")]
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
    form
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
    #[prop(into)] label: String,
    #[prop(into)] name: String,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "off")] autocomplete: &'static str,
    /// The value it starts with (a refused plain form post shows what was typed instead).
    #[prop(optional, into)]
    value: String,
    error: FieldError,
    /// The form's name, where a page has two fields of one `name`: it keeps the id of each
    /// field's message unique.
    #[prop(optional)]
    form: &'static str,
    /// A sentence under the label: what the field is for (read with it by screen readers).
    #[prop(optional, into)]
    hint: Option<String>,
) -> impl IntoView {
    let base = if form.is_empty() {
        name.clone()
    } else {
        format!("{form}-{name}")
    };
    let message_id = format!("{base}-error");
    let hint_id = hint.as_ref().map(|_| format!("{base}-hint"));
    let FieldError {
        message: error,
        typed,
    } = error;
    let described_by = {
        let (message_id, hint_id) = (message_id.clone(), hint_id.clone());
        move || {
            let ids: Vec<&str> = hint_id
                .iter()
                .map(String::as_str)
                .chain(error.get().map(|_| message_id.as_str()))
                .collect();
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    let value = typed.unwrap_or(value);
    let marker = name.clone();
    view! {
        <label class="block">
            <span class="text-sm font-medium text-slate-700">{label}</span>
            {hint
                .map(|hint| {
                    view! {
                        <span id=hint_id.clone() class="block text-xs text-slate-600">
                            {hint}
                        </span>
                    }
                })}
            <input
                type=kind
                name=name
                value=value
                autocomplete=autocomplete
                aria-invalid=move || error.get().map(|_| "true")
                aria-describedby=described_by
                class=move || {
                    if error.get().is_some() {
                        "mt-1 block w-full rounded-lg border border-red-600 px-3 py-2 shadow-sm focus:border-red-600 focus:outline-none focus:ring-1 focus:ring-red-600"
                    } else {
                        "mt-1 block w-full rounded-lg border border-slate-300 px-3 py-2 shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-1 focus:ring-indigo-500"
                    }
                }
            />
            {move || {
                error
                    .get()
                    .map(|message| {
                        view! {
                            <p
                                id=message_id.clone()
                                class="mt-1 text-sm text-red-700"
                                data-field-error=marker.clone()
                            >
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
/// away; only the button that names the action submits. With JavaScript the question is a
/// modal dialog (`showModal`: the page behind is inert, focus stays in the dialog, Escape
/// cancels); without, a native `<details>` opens it in place. Both carry the question, so
/// the server's page is the same either way and the browser swaps one for the other.
#[component]
pub fn ConfirmSubmit(
    /// What the closed control says ("Stop").
    label: &'static str,
    /// What happens, asked plainly.
    question: String,
    /// The button that does it ("Stop the site").
    confirm: &'static str,
) -> impl IntoView {
    let interactive = RwSignal::new(false);
    Effect::new(move |_| interactive.set(true));
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    let open = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(dialog) = dialog.get() {
            let _ = dialog.show_modal();
        }
    };
    let cancel = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(dialog) = dialog.get() {
            dialog.close();
        }
    };
    // Submits the form with this button, then closes the dialog, so what the action answers
    // (an error above the form) is not hidden behind it.
    let submit = move |event: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            event.prevent_default();
            let button = event
                .current_target()
                .and_then(|target| target.dyn_into::<web_sys::HtmlButtonElement>().ok());
            if let Some(form) = button.as_ref().and_then(|button| button.form()) {
                let _ = form.request_submit_with_submitter(button.as_deref());
            }
            if let Some(dialog) = dialog.get() {
                dialog.close();
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = event;
    };
    let button = "rounded-md border border-red-300 bg-white px-3 py-1.5 font-semibold text-red-700 hover:bg-red-50";
    view! {
        <div class="text-sm" data-confirm=label>
            // Inline: in a table cell it keeps its own width (a block would stretch across).
            <details
                class="inline-block rounded-md border border-slate-300 bg-white text-left"
                hidden=move || interactive.get()
            >
                <summary class="cursor-pointer px-3 py-1.5 font-medium hover:bg-slate-50">
                    {format!("{label}…")}
                </summary>
                <div class="max-w-xs space-y-2 border-t border-slate-200 px-3 py-2">
                    <p class="text-slate-700">{question.clone()}</p>
                    <button type="submit" class=button>
                        {confirm}
                    </button>
                </div>
            </details>
            <button
                type="button"
                hidden=move || !interactive.get()
                class="rounded-md border border-slate-300 bg-white px-3 py-1.5 font-medium hover:bg-slate-50"
                on:click=open
                data-open-confirm=""
            >
                {format!("{label}…")}
            </button>
            <dialog
                node_ref=dialog
                aria-label=label
                class="m-auto max-w-sm rounded-xl border border-slate-200 p-5 shadow-xl backdrop:bg-slate-900/40"
            >
                <p class="text-slate-800" data-question="">
                    {question}
                </p>
                <div class="mt-4 flex justify-end gap-2">
                    // Focus starts on the safe choice.
                    <button
                        type="button"
                        class="rounded-md border border-slate-300 bg-white px-3 py-1.5 font-medium hover:bg-slate-50"
                        on:click=cancel
                        autofocus=true
                        data-cancel=""
                    >
                        "Cancel"
                    </button>
                    <button type="submit" class=button on:click=submit>
                        {confirm}
                    </button>
                </div>
            </dialog>
        </div>
    }
}
