//! `/dashboard/team`: members, pending invitations, roles. Controls appear only for roles
//! that may use them; the server refuses the rest regardless.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use super::dashboard::Panel;
use super::forms::{
    ConfirmSubmit, Field, FormError, Submit, cleared_on_success, field_error, general_error,
};
use crate::account::{
    ChangeMemberRole, InviteMember, LeaveOrganization, RemoveMember, ResendInvitation,
    RevokeInvitation, TeamView, TransferOwnership, team,
};

#[component]
pub fn TeamPage() -> impl IntoView {
    let invite = ServerAction::<InviteMember>::new();
    let change = ServerAction::<ChangeMemberRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let leave = ServerAction::<LeaveOrganization>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let resend = ServerAction::<ResendInvitation>::new();
    let transfer = ServerAction::<TransferOwnership>::new();
    let location = use_location();
    // Reload after any change, and for another organization.
    let view = Resource::new(
        move || {
            (
                invite.version().get(),
                change.version().get(),
                remove.version().get(),
                revoke.version().get(),
                resend.version().get(),
                transfer.version().get(),
                location.search.get(),
            )
        },
        |_| team(),
    );
    view! {
        <Title text="Team" />
        <h1 class="text-2xl font-bold tracking-tight">"Team"</h1>
        <FormError error=general_error(change.value()) />
        <FormError error=general_error(remove.value()) />
        <FormError error=general_error(revoke.value()) />
        <FormError error=general_error(resend.value()) />
        <FormError error=general_error(transfer.value()) />
        <FormError error=field_error(transfer, "member") />
        {move || {
            matches!(resend.value().get(), Some(Ok(_)))
                .then(|| {
                    view! {
                        <p
                            class="mt-4 rounded-lg bg-green-50 p-3 text-sm text-green-800"
                            data-notice=""
                        >
                            "Invitation sent again with a new link."
                        </p>
                    }
                })
        }}
        <Suspense fallback=|| {
            view! { <p class="mt-4 text-slate-500">"Loading the team…"</p> }
        }>
            {move || Suspend::new(async move {
                match view.await {
                    Ok(team) => {
                        view! { <Team team invite change remove leave revoke resend transfer /> }
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
    }
}

#[component]
fn Team(
    team: TeamView,
    invite: ServerAction<InviteMember>,
    change: ServerAction<ChangeMemberRole>,
    remove: ServerAction<RemoveMember>,
    leave: ServerAction<LeaveOrganization>,
    revoke: ServerAction<RevokeInvitation>,
    resend: ServerAction<ResendInvitation>,
    transfer: ServerAction<TransferOwnership>,
) -> impl IntoView {
    let invite_form = cleared_on_success(invite.value());
    let can_manage = team.can_manage;
    let can_transfer = team.can_transfer;
    let can_leave = team.can_leave;
    let grantable = team.grantable_roles.clone();
    let invited = move || match invite.value().get() {
        Some(Ok(email)) => Some(format!("Invitation sent to {email}.")),
        _ => None,
    };
    view! {
        <p class="mt-1 text-sm text-slate-600">
            {format!("{} · your role: {}", team.organization, team.my_role)}
        </p>
        <Panel title="Members">
            <table class="stack w-full text-left text-sm" data-members="">
                <thead class="text-slate-500">
                    <tr>
                        <th class="py-2">"Name"</th>
                        <th class="py-2">"Email"</th>
                        <th class="py-2">"Role"</th>
                        <th class="py-2"></th>
                    </tr>
                </thead>
                <tbody>
                    {team
                        .members
                        .iter()
                        .map(|member| {
                            let grantable = grantable.clone();
                            let change_id = member.user_id.clone();
                            let remove_id = member.user_id.clone();
                            let transfer_id = member.user_id.clone();
                            let transfer_question = format!(
                                "{} becomes an owner and you an admin: you keep your access but no longer manage billing.",
                                member.email,
                            );
                            let remove_question = format!(
                                "{} loses access to this organization at once.",
                                member.email,
                            );
                            let role = member.role.clone();
                            let is_owner = member.role == "owner";
                            let within_reach = grantable.contains(&member.role);
                            let role_label = format!("Role of {}", member.email);
                            // Nobody acts on a member above them (an admin on an owner):
                            // no controls the server would refuse.
                            view! {
                                <tr
                                    class="border-t border-slate-100"
                                    data-member=member.email.clone()
                                >
                                    <td class="py-2">{member.name.clone()}</td>
                                    <td class="py-2" data-label="Email">
                                        {member.email.clone()}
                                    </td>
                                    <td class="py-2" data-role="" data-label="Role">
                                        {member.role.clone()}
                                    </td>
                                    <td class="py-2">
                                        {(can_manage && !member.is_me && within_reach)
                                            .then(|| {
                                                view! {
                                                    <div class="flex flex-wrap justify-end gap-2">
                                                        <ActionForm
                                                            action=change
                                                            attr:class="flex gap-1"
                                                            attr:data-form="change-role"
                                                        >
                                                            <input type="hidden" name="user_id" value=change_id />
                                                            <select
                                                                name="role"
                                                                aria-label=role_label
                                                                class="rounded-md border border-slate-300 px-2 py-1"
                                                            >
                                                                {grantable
                                                                    .iter()
                                                                    .map(|r| {
                                                                        view! {
                                                                            <option value=r.clone() selected=*r == role>
                                                                                {r.clone()}
                                                                            </option>
                                                                        }
                                                                    })
                                                                    .collect_view()}
                                                            </select>
                                                            <button
                                                                type="submit"
                                                                class="rounded-md border border-slate-300 px-2 py-1"
                                                            >
                                                                "Change"
                                                            </button>
                                                        </ActionForm>
                                                        <ActionForm action=remove attr:data-form="remove-member">
                                                            <input type="hidden" name="user_id" value=remove_id />
                                                            <ConfirmSubmit
                                                                label="Remove"
                                                                question=remove_question
                                                                confirm="Remove them"
                                                            />
                                                        </ActionForm>
                                                        {(can_transfer && !is_owner)
                                                            .then(|| {
                                                                view! {
                                                                    <ActionForm
                                                                        action=transfer
                                                                        attr:data-form="transfer-ownership"
                                                                    >
                                                                        <input type="hidden" name="user_id" value=transfer_id />
                                                                        <ConfirmSubmit
                                                                            label="Hand over ownership"
                                                                            question=transfer_question
                                                                            confirm="Make them the owner"
                                                                        />
                                                                    </ActionForm>
                                                                }
                                                            })}
                                                    </div>
                                                }
                                            })}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </Panel>
        <Panel title="Pending invitations">
            {if team.invitations.is_empty() {
                view! { <p class="text-sm text-slate-500">"No pending invitations."</p> }.into_any()
            } else {
                view! {
                    <ul class="space-y-2 text-sm" data-invitations="">
                        {team
                            .invitations
                            .iter()
                            .map(|i| {
                                let (revoke_id, resend_id) = (i.id.clone(), i.id.clone());
                                view! {
                                    <li
                                        class="flex flex-wrap items-center justify-between gap-2"
                                        data-invitation=i.email.clone()
                                    >
                                        <span>
                                            {format!("{} as {}, until {}", i.email, i.role, i.expires)}
                                        </span>
                                        {i
                                            .can_manage
                                            .then(|| {
                                                view! {
                                                    <div class="flex gap-2">
                                                        <ActionForm
                                                            action=resend
                                                            attr:data-form="resend-invitation"
                                                        >
                                                            <input type="hidden" name="invitation_id" value=resend_id />
                                                            <button
                                                                type="submit"
                                                                class="rounded-md border border-slate-300 px-2 py-1"
                                                            >
                                                                "Resend"
                                                            </button>
                                                        </ActionForm>
                                                        <ActionForm
                                                            action=revoke
                                                            attr:data-form="revoke-invitation"
                                                        >
                                                            <input type="hidden" name="invitation_id" value=revoke_id />
                                                            <button
                                                                type="submit"
                                                                class="rounded-md border border-red-300 px-2 py-1 text-red-700"
                                                            >
                                                                "Revoke"
                                                            </button>
                                                        </ActionForm>
                                                    </div>
                                                }
                                            })}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </Panel>
        {can_manage
            .then(|| {
                let role = field_error(invite, "role").typed.unwrap_or_else(|| "viewer".to_owned());
                // A refused plain form post comes back with the role that was chosen.
                view! {
                    <Panel
                        title="Invite someone"
                        note="They get a link by email, valid for 7 days."
                    >
                        <ActionForm
                            action=invite
                            node_ref=invite_form
                            attr:class="space-y-3"
                            attr:data-form="invite"
                        >
                            <FormError error=general_error(invite.value()) />
                            {move || {
                                invited()
                                    .map(|notice| {
                                        view! {
                                            <p
                                                class="rounded-lg bg-green-50 p-3 text-sm text-green-800"
                                                data-notice=""
                                            >
                                                {notice}
                                            </p>
                                        }
                                    })
                            }}
                            <Field
                                label="Email"
                                name="email"
                                kind="email"
                                error=field_error(invite, "email")
                            />
                            <label class="block">
                                <span class="text-sm font-medium text-slate-700">"Role"</span>
                                <select
                                    name="role"
                                    class="mt-1 block rounded-md border border-slate-300 px-2 py-2"
                                >
                                    {team
                                        .grantable_roles
                                        .iter()
                                        .map(|r| {
                                            view! {
                                                <option value=r.clone() selected=*r == role>
                                                    {r.clone()}
                                                </option>
                                            }
                                        })
                                        .collect_view()}
                                </select>
                            </label>
                            <Submit label="Send invitation" />
                        </ActionForm>
                    </Panel>
                }
            })}
        <Panel title="Leave" note="You lose access to this organization.">
            {if can_leave {
                view! {
                    <ActionForm action=leave attr:data-form="leave">
                        <FormError error=general_error(leave.value()) />
                        <Submit label="Leave this organization" danger=true />
                    </ActionForm>
                }
                    .into_any()
            } else {
                view! {
                    <p class="text-sm text-slate-600" data-leave-blocked="">
                        "You are this organization's only owner. Make another member an owner first; then you can leave."
                    </p>
                }
                    .into_any()
            }}
        </Panel>
    }
}
