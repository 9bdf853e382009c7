//! `/signup`, `/login`, `/logout`, `/verify`, `/reset` and `/invitations/accept`.
//! Every form is an `ActionForm`: a plain POST without JavaScript, an in-place call with it.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::chrome::PublicPage;
use super::forms::{Field, FormError, Submit, field_error, general_error};
use crate::account::{
    AcceptInvitation, RequestPasswordReset, ResetPassword, SignIn, SignOut, SignOutEverywhere,
    SignUp, SignUpInvited, VerifyEmail, current_user, invitation_preview,
};

/// A narrow card in the middle of a public page.
#[component]
fn AuthCard(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <Title text=title />
        <PublicPage>
            <div class="mx-auto max-w-md px-4 py-16">
                <div class="rounded-2xl border border-slate-200 bg-white p-8 shadow-sm">
                    <h1 class="text-2xl font-bold tracking-tight">{title}</h1>
                    {children()}
                </div>
            </div>
        </PublicPage>
    }
}

fn query(name: &'static str) -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| query.read().get(name).unwrap_or_default())
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let value = action.value();
    view! {
        <AuthCard title="Create your account">
            <p class="mt-2 text-sm text-slate-600">
                "Already have one? "
                <a href="/login" class="font-medium text-indigo-600 hover:underline">
                    "Sign in"
                </a>
            </p>
            <ActionForm action attr:class="mt-6 space-y-4" attr:data-form="signup">
                <FormError error=general_error(value) />
                <Field
                    label="Your name"
                    name="name"
                    autocomplete="name"
                    error=field_error(action, "name")
                />
                <Field
                    label="Email"
                    name="email"
                    kind="email"
                    autocomplete="email"
                    error=field_error(action, "email")
                />
                <Field
                    label="Password (at least 10 characters)"
                    name="password"
                    kind="password"
                    autocomplete="new-password"
                    error=field_error(action, "password")
                />
                <Field
                    label="Organization name"
                    name="organization"
                    error=field_error(action, "organization")
                />
                <Submit label="Create account" />
            </ActionForm>
        </AuthCard>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let value = action.value();
    view! {
        <AuthCard title="Sign in">
            <p class="mt-2 text-sm text-slate-600">
                "New here? " <a href="/signup" class="font-medium text-indigo-600 hover:underline">
                    "Create an account"
                </a>
            </p>
            <ActionForm action attr:class="mt-6 space-y-4" attr:data-form="login">
                <FormError error=general_error(value) />
                <Field
                    label="Email"
                    name="email"
                    kind="email"
                    autocomplete="email"
                    error=field_error(action, "email")
                />
                <Field
                    label="Password"
                    name="password"
                    kind="password"
                    autocomplete="current-password"
                    error=field_error(action, "password")
                />
                <div class="flex items-center justify-between">
                    <Submit label="Sign in" />
                    <a href="/reset" class="text-sm text-indigo-600 hover:underline">
                        "Forgot your password?"
                    </a>
                </div>
            </ActionForm>
        </AuthCard>
    }
}

#[component]
pub fn LogoutPage() -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    view! {
        <AuthCard title="Sign out">
            <p class="mt-2 text-sm text-slate-600">
                "End this session, or every session of your account on every device."
            </p>
            <div class="mt-6 flex flex-wrap gap-3">
                <ActionForm action=sign_out attr:data-form="logout">
                    <Submit label="Sign out" />
                </ActionForm>
                <ActionForm action=everywhere attr:data-form="logout-everywhere">
                    <Submit label="Sign out everywhere" danger=true />
                </ActionForm>
            </div>
            <FormError error=general_error(everywhere.value()) />
        </AuthCard>
    }
}

/// Opening the mailed link shows a button: a link prefetcher cannot use up the token.
#[component]
pub fn VerifyPage() -> impl IntoView {
    let token = query("token");
    // A link that moves an account to a new address (`&change=1`), or one that confirms a
    // new account's address.
    let change = query("change");
    let action = ServerAction::<VerifyEmail>::new();
    let confirm_change = ServerAction::<crate::profile::ConfirmEmailChange>::new();
    view! {
        <AuthCard title="Verify your email">
            <p class="mt-2 text-sm text-slate-600">"Confirm that this address is yours."</p>
            <Show
                when=move || change.get().is_empty()
                fallback=move || {
                    view! {
                        <ActionForm
                            action=confirm_change
                            attr:class="mt-6 space-y-4"
                            attr:data-form="confirm-email-change"
                        >
                            <FormError error=general_error(confirm_change.value()) />
                            <input type="hidden" name="token" value=move || token.get() />
                            <Submit label="Use this address for my account" />
                        </ActionForm>
                    }
                }
            >
                <ActionForm action attr:class="mt-6 space-y-4" attr:data-form="verify">
                    <FormError error=general_error(action.value()) />
                    <input type="hidden" name="token" value=move || token.get() />
                    <Submit label="Confirm my email address" />
                </ActionForm>
            </Show>
        </AuthCard>
    }
}

/// Without a token: ask for a reset link. With one: choose a new password.
#[component]
pub fn ResetPage() -> impl IntoView {
    let token = query("token");
    let request = ServerAction::<RequestPasswordReset>::new();
    let reset = ServerAction::<ResetPassword>::new();
    let requested = move || matches!(request.value().get(), Some(Ok(())));
    view! {
        <AuthCard title="Reset your password">
            <Show
                when=move || !token.get().is_empty()
                fallback=move || {
                    view! {
                        <Show
                            when=requested
                            fallback=move || {
                                view! {
                                    <ActionForm
                                        action=request
                                        attr:class="mt-6 space-y-4"
                                        attr:data-form="request-reset"
                                    >
                                        <FormError error=general_error(request.value()) />
                                        <Field
                                            label="Email"
                                            name="email"
                                            kind="email"
                                            autocomplete="email"
                                            error=field_error(request, "email")
                                        />
                                        <Submit label="Send me a reset link" />
                                    </ActionForm>
                                }
                            }
                        >
                            <p
                                class="mt-6 rounded-lg bg-green-50 p-3 text-sm text-green-800"
                                data-notice=""
                            >
                                "If an account uses that address, a reset link is on its way. It works for one hour."
                            </p>
                        </Show>
                    }
                }
            >
                <ActionForm action=reset attr:class="mt-6 space-y-4" attr:data-form="reset">
                    <FormError error=general_error(reset.value()) />
                    <input type="hidden" name="token" value=move || token.get() />
                    <Field
                        label="New password (at least 10 characters)"
                        name="password"
                        kind="password"
                        autocomplete="new-password"
                        error=field_error(reset, "password")
                    />
                    <Submit label="Set new password" />
                </ActionForm>
            </Show>
        </AuthCard>
    }
}

#[component]
pub fn AcceptInvitationPage() -> impl IntoView {
    let token = query("token");
    let action = ServerAction::<AcceptInvitation>::new();
    let me = Resource::new(|| (), |_| current_user());
    view! {
        <AuthCard title="Join an organization">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(Some(me)) => {
                            view! {
                                <p class="mt-2 text-sm text-slate-600">
                                    {format!("You are signed in as {}.", me.email)}
                                </p>
                                <ActionForm
                                    action
                                    attr:class="mt-6 space-y-4"
                                    attr:data-form="accept"
                                >
                                    <FormError error=general_error(action.value()) />
                                    <input type="hidden" name="token" value=move || token.get() />
                                    <Submit label="Accept the invitation" />
                                </ActionForm>
                            }
                                .into_any()
                        }
                        _ => view! { <InvitedSignUp token /> }.into_any(),
                    }
                })}
            </Suspense>
        </AuthCard>
    }
}

/// Signed out on an invitation link: someone without an account creates one right here (the
/// invited address, a name and a password; no organization of their own) and lands in the
/// inviting organization; someone with one is sent to sign in.
#[component]
fn InvitedSignUp(token: Memo<String>) -> impl IntoView {
    let join = ServerAction::<SignUpInvited>::new();
    let value = join.value();
    let preview = Resource::new(move || token.get(), invitation_preview);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match preview.await {
                    Ok(invitation) if invitation.account_exists => {
                        view! {
                            <p class="mt-2 text-sm text-slate-600" data-invitation-for="">
                                {format!(
                                    "You are invited to join {} as {}. Sign in as {}, then open the link again.",
                                    invitation.organization,
                                    invitation.role,
                                    invitation.email,
                                )}
                            </p>
                            <a
                                href="/login"
                                class="mt-6 inline-block rounded-lg bg-indigo-600 px-4 py-2 text-sm font-semibold text-white"
                            >
                                "Sign in"
                            </a>
                        }
                            .into_any()
                    }
                    Ok(invitation) => {
                        view! {
                            <p class="mt-2 text-sm text-slate-600" data-invitation-for="">
                                {format!(
                                    "You are invited to join {} as {}. Create your account for {} to accept.",
                                    invitation.organization,
                                    invitation.role,
                                    invitation.email,
                                )}
                            </p>
                            <ActionForm
                                action=join
                                attr:class="mt-6 space-y-4"
                                attr:data-form="invited-sign-up"
                            >
                                <FormError error=general_error(value) />
                                <input type="hidden" name="token" value=move || token.get() />
                                <Field
                                    label="Your name"
                                    name="name"
                                    autocomplete="name"
                                    error=field_error(join, "name")
                                />
                                <Field
                                    label="Password (at least 10 characters)"
                                    name="password"
                                    kind="password"
                                    autocomplete="new-password"
                                    error=field_error(join, "password")
                                />
                                <Submit label="Create account and join" />
                            </ActionForm>
                        }
                            .into_any()
                    }
                    Err(error) => {
                        view! {
                            <p
                                class="mt-2 text-sm text-red-700"
                                role="alert"
                                data-invitation-error=""
                            >
                                {error.to_string()}
                            </p>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}
