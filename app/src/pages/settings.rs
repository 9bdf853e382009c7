//! `/dashboard/settings`: the organization, its API keys and its audit log (the last two
//! for the roles allowed to see them), and creating another organization.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use super::copy::CopyButton;
use super::dashboard::Panel;
use super::forms::{
    ConfirmSubmit, Field, FormError, Submit, cleared_on_success, field_error, general_error,
};
use crate::account::{
    CreateApiKey, CreateOrganization, DeleteOrganization, RenameOrganization, RevokeApiKey,
    SettingsView, settings,
};

#[component]
pub fn SettingsPage() -> impl IntoView {
    let create_key = ServerAction::<CreateApiKey>::new();
    let revoke_key = ServerAction::<RevokeApiKey>::new();
    let rename = ServerAction::<RenameOrganization>::new();
    let delete = ServerAction::<DeleteOrganization>::new();
    let location = use_location();
    let view = Resource::new(
        move || {
            (
                create_key.version().get(),
                revoke_key.version().get(),
                location.search.get(),
            )
        },
        |_| settings(),
    );
    view! {
        <Title text="Settings" />
        <h1 class="text-2xl font-bold tracking-tight">"Settings"</h1>
        <Suspense fallback=|| {
            view! { <p class="mt-4 text-slate-500">"Loading settings…"</p> }
        }>
            {move || Suspend::new(async move {
                match view.await {
                    Ok(settings) => {
                        view! { <Settings settings create_key revoke_key rename delete /> }
                            .into_any()
                    }
                    Err(error) => {
                        view! {
                            <FormError error=Signal::derive(move || Some(error.to_string())) />
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
        <Panel title="New organization" note="You will be its owner, on the free plan.">
            <NewOrganizationForm />
        </Panel>
        <super::health::AlertSettings />
    }
}

/// Creates an organization (the caller its owner, on the free plan) and switches to it.
#[component]
pub fn NewOrganizationForm() -> impl IntoView {
    let create_organization = ServerAction::<CreateOrganization>::new();
    view! {
        <ActionForm
            action=create_organization
            attr:class="space-y-3"
            attr:data-form="create-organization"
        >
            <FormError error=general_error(create_organization.value()) />
            <Field
                label="Name"
                name="name"
                form="create-organization"
                error=field_error(create_organization, "organization")
            />
            <Submit label="Create organization" />
        </ActionForm>
    }
}

#[component]
fn Settings(
    settings: SettingsView,
    create_key: ServerAction<CreateApiKey>,
    revoke_key: ServerAction<RevokeApiKey>,
    rename: ServerAction<RenameOrganization>,
    delete: ServerAction<DeleteOrganization>,
) -> impl IntoView {
    let create_key_form = cleared_on_success(create_key.value());
    let from_form_post = settings.new_key.clone();
    let new_key = move || match create_key.value().get() {
        Some(Ok(secret)) => Some(secret),
        _ => from_form_post.clone(),
    };
    view! {
        <Panel title="Organization">
            <dl class="grid grid-cols-2 gap-2 text-sm sm:grid-cols-4" data-organization="">
                <dt class="text-slate-500">"Name"</dt>
                <dd>{settings.name.clone()}</dd>
                <dt class="text-slate-500">"Slug"</dt>
                <dd>{settings.slug.clone()}</dd>
                <dt class="text-slate-500">"Plan"</dt>
                <dd>{settings.plan.clone()}</dd>
                <dt class="text-slate-500">"Members"</dt>
                <dd>{settings.member_count}</dd>
                <dt class="text-slate-500">"Your role"</dt>
                <dd>{settings.my_role.clone()}</dd>
            </dl>
            {settings
                .can_rename
                .then(|| {
                    view! {
                        <ActionForm
                            action=rename
                            attr:class="mt-4 flex flex-wrap items-end gap-3"
                            attr:data-form="rename-organization"
                        >
                            <Field
                                label="New name"
                                name="name"
                                value=settings.name.clone()
                                form="rename-organization"
                                error=field_error(rename, "organization")
                            />
                            <Submit label="Rename" />
                            <p class="w-full text-xs text-slate-500">
                                "The slug, and every address that uses it, stays."
                            </p>
                        </ActionForm>
                        <FormError error=general_error(rename.value()) />
                    }
                })}
            {settings
                .can_delete
                .then(|| {
                    let slug = settings.slug.clone();
                    view! {
                        // Open with its error when the deletion was refused.
                        <details
                            class="mt-6 text-sm"
                            data-delete-organization=""
                            open=move || delete.value().get().is_some_and(|r| r.is_err())
                        >
                            <summary class="cursor-pointer font-medium text-red-700">
                                "Delete this organization…"
                            </summary>
                            <ActionForm
                                action=delete
                                attr:class="mt-2 space-y-2"
                                attr:data-form="delete-organization"
                            >
                                <p class="max-w-md text-slate-600">
                                    "Its sites, their files and databases go away for good, and every member loses access at once. A subscription ends with it: nothing more is charged but the usage not billed yet, and the rest of the period is not refunded. Type the slug "
                                    <code class="font-semibold">{slug}</code> " to confirm."
                                </p>
                                <Field
                                    label="Slug"
                                    name="confirm"
                                    form="delete-organization"
                                    error=field_error(delete, "confirm")
                                />
                                <Submit label="Delete this organization" danger=true />
                            </ActionForm>
                            <FormError error=general_error(delete.value()) />
                        </details>
                    }
                })}
        </Panel>
        {settings
            .api_keys
            .map(|keys| {
                view! {
                    <Panel
                        title="API keys"
                        note="For /api/v1. A key is shown once, when it is created."
                    >
                        {move || {
                            new_key()
                                .map(|secret| {
                                    view! {
                                        <div class="mb-4 rounded-lg bg-green-50 p-3 text-sm text-green-900">
                                            "Copy this key now; it will not be shown again:"
                                            <p class="mt-1 break-all font-mono">
                                                <code data-new-key="">{secret.clone()}</code>
                                                <CopyButton value=secret what="Copy the API key" />
                                            </p>
                                        </div>
                                    }
                                })
                        }}
                        <ActionForm
                            action=create_key
                            node_ref=create_key_form
                            attr:class="flex flex-wrap items-end gap-3"
                            attr:data-form="create-key"
                        >
                            <Field
                                label="Name"
                                name="name"
                                form="create-key"
                                error=field_error(create_key, "name")
                            />
                            <label class="flex items-center gap-1 text-sm">
                                <input type="checkbox" name="read" value="on" checked=true />
                                "read"
                            </label>
                            <label class="flex items-center gap-1 text-sm">
                                <input type="checkbox" name="write" value="on" />
                                "write"
                            </label>
                            <Submit label="Create key" />
                        </ActionForm>
                        <FormError error=general_error(create_key.value()) />
                        <FormError error=field_error(create_key, "scopes") />
                        <table class="stack mt-4 w-full text-left text-sm" data-keys="">
                            <thead class="text-slate-500">
                                <tr>
                                    <th>"Name"</th>
                                    <th>"Prefix"</th>
                                    <th>"Scopes"</th>
                                    <th>"Last used"</th>
                                    <th></th>
                                </tr>
                            </thead>
                            <tbody>
                                {keys
                                    .is_empty()
                                    .then(|| {
                                        view! {
                                            <tr>
                                                <td colspan="5" class="py-2 text-slate-500">
                                                    "No API keys yet."
                                                </td>
                                            </tr>
                                        }
                                    })}
                                {keys
                                    .into_iter()
                                    .map(|key| {
                                        view! {
                                            <tr class="border-t border-slate-100">
                                                <td class="py-2">{key.name.clone()}</td>
                                                <td class="py-2 font-mono" data-label="Prefix">
                                                    {key.prefix.clone()}
                                                </td>
                                                <td class="py-2" data-label="Scopes">
                                                    {key.scopes.clone()}
                                                </td>
                                                <td class="py-2" data-label="Last used">
                                                    {key.last_used.clone().unwrap_or_else(|| "never".into())}
                                                </td>
                                                <td class="py-2 text-right">
                                                    {if key.revoked {
                                                        view! { <span class="text-slate-500">"revoked"</span> }
                                                            .into_any()
                                                    } else {
                                                        view! {
                                                            <ActionForm action=revoke_key attr:data-form="revoke-key">
                                                                <input type="hidden" name="key_id" value=key.id.clone() />
                                                                <ConfirmSubmit
                                                                    label="Revoke"
                                                                    question=format!(
                                                                        "Programs using {} are refused from now on.",
                                                                        key.name,
                                                                    )
                                                                    confirm="Revoke the key"
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
                    </Panel>
                }
            })}
        {settings
            .audit_log
            .map(|lines| {
                view! {
                    <Panel
                        title="Audit log"
                        note="Security-relevant actions in this organization, newest first."
                    >
                        <AuditTable lines />
                    </Panel>
                }
            })}
    }
}

/// Audit log entries, newest first.
#[component]
pub(crate) fn AuditTable(lines: Vec<crate::account::AuditView>) -> impl IntoView {
    view! {
        <table class="stack w-full text-left text-sm" data-audit="">
            <thead class="text-slate-500">
                <tr>
                    <th>"When"</th>
                    <th>"Event"</th>
                    <th>"By"</th>
                    <th>"Subject"</th>
                    <th>"Reason"</th>
                    <th>"IP"</th>
                </tr>
            </thead>
            <tbody>
                {lines
                    .into_iter()
                    .map(|line| {
                        view! {
                            <tr class="border-t border-slate-100">
                                <td class="py-1 pr-2 whitespace-nowrap">{line.at}</td>
                                <td class="py-1 pr-2" data-event="" data-label="Event">
                                    {line.event}
                                    {line
                                        .action
                                        .map(|code| {
                                            view! {
                                                <span class="ml-1 font-mono text-xs text-slate-500">
                                                    {code}
                                                </span>
                                            }
                                        })}
                                </td>
                                <td class="py-1 pr-2" data-label="By">
                                    {line.actor}
                                </td>
                                <td class="py-1 pr-2" data-label="Subject">
                                    {line.subject}
                                </td>
                                <td class="py-1 pr-2" data-label="Reason">
                                    {line.reason}
                                </td>
                                <td class="py-1" data-label="IP">
                                    {line.ip}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
