//! `/dashboard/account`: the signed-in person's own name, email address, password and
//! signed-in browsers.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_query_map};

use super::dashboard::Panel;
use super::forms::{
    ConfirmSubmit, Field, FormError, Submit, cleared_on_success, field_error, general_error,
};
use crate::profile::{
    AccountView, ChangeEmail, ChangeName, ChangePassword, DeleteAccount, EndSession, account,
};

#[component]
pub fn AccountPage() -> impl IntoView {
    let rename = ServerAction::<ChangeName>::new();
    let password = ServerAction::<ChangePassword>::new();
    let email = ServerAction::<ChangeEmail>::new();
    let end = ServerAction::<EndSession>::new();
    let delete = ServerAction::<DeleteAccount>::new();
    let location = use_location();
    let view = Resource::new(
        move || {
            (
                rename.version().get(),
                password.version().get(),
                end.version().get(),
                location.search.get(),
            )
        },
        |_| account(),
    );
    let query = use_query_map();
    let email_changed = move || query.read().get("email").as_deref() == Some("changed");
    view! {
        <Title text="Your account" />
        <h1 class="text-2xl font-bold tracking-tight">"Your account"</h1>
        <Show when=email_changed>
            <p class="mt-4 rounded-lg bg-green-50 p-3 text-sm text-green-800" data-notice="">
                "Your email address is changed and confirmed."
            </p>
        </Show>
        <Suspense fallback=|| {
            view! { <p class="mt-4 text-slate-500">"Loading your account…"</p> }
        }>
            {move || Suspend::new(async move {
                match view.await {
                    Ok(me) => view! { <Account me rename password email end delete /> }.into_any(),
                    Err(error) => {
                        view! {
                            <FormError error=Signal::derive(move || Some(error.to_string())) />
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// A green line under a form once its action succeeded.
fn done<T, S>(value: S, words: impl Fn(T) -> String + Send + Sync + 'static) -> impl IntoView
where
    S: Get<Value = Option<Result<T, crate::error::AppError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Ok(result)) => Some(view! {
            <p class="text-sm text-green-800" role="status" data-done="">
                {words(result)}
            </p>
        }),
        _ => None,
    }
}

#[component]
fn Account(
    me: AccountView,
    rename: ServerAction<ChangeName>,
    password: ServerAction<ChangePassword>,
    email: ServerAction<ChangeEmail>,
    end: ServerAction<EndSession>,
    delete: ServerAction<DeleteAccount>,
) -> impl IntoView {
    let password_form = cleared_on_success(password.value());
    view! {
        <Panel title="Name" note="How your teammates see you.">
            <ActionForm action=rename attr:class="space-y-3" attr:data-form="account-name">
                <FormError error=general_error(rename.value()) />
                <Field
                    label="Name"
                    name="name"
                    autocomplete="name"
                    value=me.name.clone()
                    error=field_error(rename, "name")
                />
                <Submit label="Save the name" />
                {done(rename.value(), |name| format!("Saved: you are {name}."))}
            </ActionForm>
        </Panel>
        <Panel
            title="Email address"
            note="Where sign-in links, invitations and alerts go. A new address is used once you confirm it from the link we mail to it."
        >
            <p class="mb-3 text-sm">
                "Now: " <strong data-account-email="">{me.email.clone()}</strong>
            </p>
            <ActionForm action=email attr:class="space-y-3" attr:data-form="account-email">
                <FormError error=general_error(email.value()) />
                <Field
                    label="New address"
                    name="new_email"
                    kind="email"
                    autocomplete="email"
                    error=field_error(email, "new_email")
                />
                <Field
                    label="Your password"
                    name="password"
                    kind="password"
                    autocomplete="current-password"
                    error=field_error(email, "current_password")
                />
                <Submit label="Send a confirmation link" />
                {done(
                    email.value(),
                    |to| {
                        format!(
                            "We sent a link to {to}. Your address changes when you open it (within 48 hours).",
                        )
                    },
                )}
            </ActionForm>
        </Panel>
        <Panel title="Password" note="Changing it signs out every other browser signed in as you.">
            <ActionForm
                action=password
                node_ref=password_form
                attr:class="space-y-3"
                attr:data-form="account-password"
            >
                <FormError error=general_error(password.value()) />
                <Field
                    label="Current password"
                    name="current_password"
                    kind="password"
                    autocomplete="current-password"
                    error=field_error(password, "current_password")
                />
                <Field
                    label="New password (at least 10 characters)"
                    name="new_password"
                    kind="password"
                    autocomplete="new-password"
                    error=field_error(password, "new_password")
                />
                <Submit label="Change the password" />
                {done(
                    password.value(),
                    |ended| match ended {
                        0 => "Password changed.".to_owned(),
                        1 => "Password changed; 1 other browser was signed out.".to_owned(),
                        n => format!("Password changed; {n} other browsers were signed out."),
                    },
                )}
            </ActionForm>
        </Panel>
        <Panel title="Signed-in browsers" note="Sign out any you do not recognise.">
            <FormError error=general_error(end.value()) />
            <table class="stack w-full text-left text-sm" data-sessions="">
                <thead class="text-slate-500">
                    <tr>
                        <th class="py-2">"Browser"</th>
                        <th class="py-2">"IP address"</th>
                        <th class="py-2">"Signed in"</th>
                        <th class="py-2">"Last used"</th>
                        <th class="py-2"></th>
                    </tr>
                </thead>
                <tbody>
                    {me
                        .sessions
                        .into_iter()
                        .map(|session| {
                            let device = session.device.clone();
                            view! {
                                <tr class="border-t border-slate-100" data-session="">
                                    <td class="py-2">{session.device}</td>
                                    <td class="py-2" data-label="IP address">
                                        {session.ip}
                                    </td>
                                    <td class="py-2" data-label="Signed in">
                                        {session.signed_in}
                                    </td>
                                    <td class="py-2" data-label="Last used">
                                        {session.last_used}
                                    </td>
                                    <td class="py-2 text-right">
                                        {if session.current {
                                            view! {
                                                <span class="text-slate-600" data-current="">
                                                    "This browser"
                                                </span>
                                            }
                                                .into_any()
                                        } else {
                                            view! {
                                                <ActionForm action=end attr:data-form="end-session">
                                                    <input type="hidden" name="handle" value=session.handle />
                                                    <ConfirmSubmit
                                                        label="Sign out"
                                                        question=format!(
                                                            "{device} must sign in again to use your account.",
                                                        )
                                                        confirm="Sign it out"
                                                    />
                                                </ActionForm>
                                            }
                                                .into_any()
                                        }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            <p class="mt-3 text-sm">
                <a href="/logout" class="text-indigo-700 underline">
                    "Sign out everywhere"
                </a>
            </p>
        </Panel>
        <Panel
            title="Delete your account"
            note="Organizations you own alone go with it, with their sites. One that has other members needs another owner first; one with a subscription needs deleting first, from its Settings page (which cancels the subscription)."
        >
            // Open with its error when the deletion was refused.
            <details
                class="text-sm"
                data-delete-account=""
                open=move || delete.value().get().is_some_and(|r| r.is_err())
            >
                <summary class="cursor-pointer font-medium text-red-700">
                    "Delete my account…"
                </summary>
                <ActionForm
                    action=delete
                    attr:class="mt-2 space-y-3"
                    attr:data-form="account-delete"
                >
                    <FormError error=general_error(delete.value()) />
                    <Field
                        label="Your password"
                        name="password"
                        kind="password"
                        autocomplete="current-password"
                        form="account-delete"
                        error=field_error(delete, "password")
                    />
                    <Submit label="Delete my account for good" danger=true />
                </ActionForm>
            </details>
        </Panel>
    }
}
