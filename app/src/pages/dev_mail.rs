//! `/dev/mail` (development mode): the local mailbox.

use leptos::prelude::*;
use leptos_meta::Title;

use super::chrome::{LoadError, PublicPage};
use super::not_found::NotFound;
use crate::dev::{MailView, dev_mailbox, linkify};
use crate::error::AppError;

#[component]
pub fn DevMailPage() -> impl IntoView {
    let mailbox = Resource::new(|| (), |_| dev_mailbox());
    view! {
        <Title text="Mail (development)" />
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match mailbox.await {
                    Ok(messages) => view! { <Mailbox messages /> }.into_any(),
                    Err(AppError::NotFound) => view! { <NotFound /> }.into_any(),
                    Err(error) => {
                        view! {
                            <PublicPage>
                                <div class="mx-auto max-w-3xl px-4 py-16">
                                    <LoadError message=error.to_string() />
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

#[component]
fn Mailbox(messages: Vec<MailView>) -> impl IntoView {
    let empty = messages.is_empty();
    view! {
        <PublicPage>
            <div class="mx-auto max-w-3xl px-4 py-10 sm:px-6" data-dev-mail="">
                <p class="text-sm font-semibold uppercase tracking-wide text-amber-700">
                    "Development mode"
                </p>
                <h1 class="mt-1 text-3xl font-bold tracking-tight">"Mail"</h1>
                <p class="mt-2 text-slate-600">
                    "Nothing is sent from a development server: every message Slipway would have mailed is here, newest first. Links work as they would in the mail."
                </p>
                <Show when=move || empty>
                    <p class="mt-8 rounded-lg border border-dashed border-slate-300 bg-white p-6 text-slate-600">
                        "No mail yet. Sign up, invite a member or ask for a password reset, and the message appears here."
                    </p>
                </Show>
                <ul class="mt-8 space-y-4">
                    {messages
                        .into_iter()
                        .map(|message| view! { <Letter message /> })
                        .collect_view()}
                </ul>
            </div>
        </PublicPage>
    }
}

#[component]
fn Letter(message: MailView) -> impl IntoView {
    view! {
        <li class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" data-mail=message.id>
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 class="font-semibold">{message.subject}</h2>
                <span class="text-xs text-slate-500">{message.at}</span>
            </div>
            <p class="text-sm text-slate-600">"To " {message.to}</p>
            <div class="mt-3 space-y-1 break-words text-sm text-slate-800">
                {message
                    .body
                    .lines()
                    .map(|line| {
                        view! {
                            <p class="min-h-[1em]">
                                {linkify(line)
                                    .into_iter()
                                    .map(|(text, link)| {
                                        if link {
                                            let href = text.clone();
                                            view! {
                                                <a href=href class="text-indigo-600 underline">
                                                    {text}
                                                </a>
                                            }
                                                .into_any()
                                        } else {
                                            text.into_any()
                                        }
                                    })
                                    .collect_view()}
                            </p>
                        }
                    })
                    .collect_view()}
            </div>
        </li>
    }
}

/// A bar across the top of every page of a development server: nothing is mailed, the mail
/// page has it. Renders nothing in production.
#[component]
pub fn DevModeBar() -> impl IntoView {
    let development = Resource::new(|| (), |_| crate::dev::development_mode());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                development
                    .await
                    .unwrap_or(false)
                    .then(|| {
                        view! {
                            <div
                                data-dev-mode=""
                                class="bg-amber-100 px-4 py-2 text-center text-sm text-amber-900"
                            >
                                "Development mode: Slipway sends no mail here. Verification links, invitations and password resets are on the "
                                <a href="/dev/mail" class="font-semibold underline">
                                    "Mail page"
                                </a>
                                "."
                            </div>
                        }
                    })
            })}
        </Suspense>
    }
}
