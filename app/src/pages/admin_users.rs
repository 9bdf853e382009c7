//! `/admin/users`: every account, searched by part of an email or name, filtered by
//! operators, disabled or unverified accounts, newest first, a page at a time, exported as
//! CSV; and `/admin/users/:id`: one account (its organizations, sessions and history), with
//! the operator's actions on it. Plain forms: the same without JavaScript.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::admin::{
    Choice, ListFooter, ListPage, ListSearch, LoadError, OperatorFrame, Reason, SortChoice,
    filter_choices, follow, list_links,
};
use super::dashboard::Panel;
use super::forms::FormError;
use crate::account::operator_check;
use crate::operator::users::{
    AdminDisableUser, AdminEnableUser, AdminResendVerification, UserDetailView, UserListView,
    admin_user, admin_users,
};

#[component]
pub fn UsersPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let list = Resource::new(
        move || (param("q"), param("state"), param("sort"), param("after")),
        |(q, state, sort, after)| admin_users(q, state, sort, after),
    );
    view! {
        <ListPage
            title="Users"
            marker="users"
            back=("/admin/users", "Show every account")
            list
            show=move |list| {
                view! { <UserList list q=param("q") state=param("state") sort=param("sort") /> }
            }
        />
    }
}

#[component]
fn UserList(list: UserListView, q: String, state: String, sort: String) -> impl IntoView {
    let (csv, next) = list_links(
        "/admin/users",
        &[
            ("q", q.as_str()),
            ("state", state.as_str()),
            ("sort", sort.as_str()),
        ],
        list.next,
    );
    let states = filter_choices("Any account", list.states, |state| {
        match state {
            "operator" => "Operators",
            "disabled" => "Disabled",
            _ => "Unverified email",
        }
        .to_owned()
    });
    let empty = list.rows.is_empty();
    view! {
        <ListSearch path="/admin/users" form="users" q placeholder="Email or name" csv>
            <Choice label="Show" name="state" selected=state choices=states />
            <SortChoice selected=sort sorts=list.sorts />
        </ListSearch>
        <table
            class="mt-6 w-full rounded-lg border border-slate-200 bg-white text-sm"
            data-table="users"
        >
            <caption class="sr-only">"Users"</caption>
            <thead class="bg-slate-50 text-left text-slate-600">
                <tr>
                    {["Account", "Marks", "Organizations", "Last seen", "Signed up"]
                        .into_iter()
                        .map(|h| view! { <th class="px-3 py-2 font-medium">{h}</th> })
                        .collect_view()}
                </tr>
            </thead>
            <tbody>
                {list
                    .rows
                    .into_iter()
                    .map(|row| {
                        let key = row.email.clone();
                        view! {
                            <tr class="border-t border-slate-100" data-user=key>
                                <th scope="row" class="px-3 py-2 text-left font-normal">
                                    <a
                                        href=format!("/admin/users/{}", row.id)
                                        class="font-medium text-indigo-600 hover:underline"
                                    >
                                        {row.email}
                                    </a>
                                    <span class="block text-xs text-slate-500">{row.name}</span>
                                </th>
                                <td class="px-3 py-2">{row.marks.join(", ")}</td>
                                <td class="px-3 py-2 tabular-nums">{row.organizations}</td>
                                <td class="px-3 py-2 tabular-nums">{row.last_seen}</td>
                                <td class="px-3 py-2 tabular-nums">{row.created}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        <ListFooter empty=empty.then_some("No account matches.") next />
    }
}

#[component]
pub fn UserPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let disable = ServerAction::<AdminDisableUser>::new();
    let enable = ServerAction::<AdminEnableUser>::new();
    let resend = ServerAction::<AdminResendVerification>::new();
    let check = Resource::new(|| (), |_| operator_check());
    let (reloads, refusal) = follow(vec![disable.value(), enable.value(), resend.value()]);
    let detail = Resource::new(move || (id(), reloads.get()), |(id, _)| admin_user(id));
    let refusal = Signal::from(refusal);
    let resent = Signal::derive(move || matches!(resend.value().get(), Some(Ok(()))));
    view! {
        <Title text="User" />
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let (check, detail) = (check.await, detail.await);
                view! {
                    <OperatorFrame
                        check
                        marker="user"
                        crumbs=vec![("/admin/users", "Users".to_owned())]
                    >
                        {match detail.clone() {
                            Ok(user) => {
                                view! { <User user disable enable resend refusal resent /> }
                                    .into_any()
                            }
                            Err(error) => {
                                view! {
                                    <LoadError
                                        error
                                        not_found="No account has this address."
                                        back=("/admin/users", "Show every account")
                                    />
                                }
                                    .into_any()
                            }
                        }}
                    </OperatorFrame>
                }
            })}
        </Transition>
    }
}

#[component]
fn User(
    user: UserDetailView,
    disable: ServerAction<AdminDisableUser>,
    enable: ServerAction<AdminEnableUser>,
    resend: ServerAction<AdminResendVerification>,
    refusal: Signal<Option<String>>,
    resent: Signal<bool>,
) -> impl IntoView {
    let UserDetailView {
        id,
        email,
        name,
        marks,
        created,
        verified,
        is_me,
        disabled,
        organizations,
        sessions,
        history,
    } = user;
    let for_resend = id.clone();
    let account_action = if is_me {
        view! {
            <p class="text-sm text-slate-600">
                "Your own account: another operator can disable it, not you."
            </p>
        }
        .into_any()
    } else if disabled.is_some() {
        view! {
            <ActionForm action=enable attr:data-form="enable-user">
                <Reason name="user" value=id button="Enable" />
            </ActionForm>
        }
        .into_any()
    } else {
        view! {
            <ActionForm action=disable attr:data-form="disable-user">
                <Reason name="user" value=id button="Disable and sign out everywhere" />
            </ActionForm>
        }
        .into_any()
    };
    let verification = (!verified && disabled.is_none()).then(|| {
        view! {
            <ActionForm action=resend attr:data-form="resend-verification">
                <Reason
                    name="user"
                    value=for_resend
                    button="Resend the verification mail"
                    private=true
                />
            </ActionForm>
        }
    });
    view! {
        <h1 class="mt-2 text-3xl font-bold" data-user-email="">
            {email}
        </h1>
        <p class="text-slate-600">
            {name} <span class="ml-3 text-sm text-slate-500">{format!("signed up {created}")}</span>
            <span class="ml-3 text-sm font-medium" data-marks="">
                {marks.join(", ")}
            </span>
        </p>
        {disabled
            .map(|words| {
                view! {
                    <p
                        class="mt-4 rounded-lg border border-red-200 bg-red-50 p-3 text-sm text-red-900"
                        data-disabled=""
                    >
                        {words}
                    </p>
                }
            })}
        <Panel
            title="Account"
            note="Disabling ends every session of the account at once and refuses its sign-ins, with the reason; its organizations and their API keys are untouched. Each action is recorded with the reason."
        >
            <FormError error=refusal />
            {move || {
                resent
                    .get()
                    .then(|| {
                        view! {
                            <p class="text-sm text-emerald-800" data-resent="">
                                "A fresh verification link was mailed."
                            </p>
                        }
                    })
            }}
            <div class="flex flex-wrap gap-6">{account_action} {verification}</div>
        </Panel>
        <Panel title="Organizations">
            <table class="w-full text-left text-sm" data-organizations="">
                <thead class="text-slate-500">
                    <tr>
                        <th>"Organization"</th>
                        <th>"Role"</th>
                        <th>"Joined"</th>
                    </tr>
                </thead>
                <tbody>
                    {organizations
                        .into_iter()
                        .map(|(name, slug, role, joined)| {
                            view! {
                                <tr class="border-t border-slate-100">
                                    <td class="py-1 pr-2">
                                        <a
                                            href=format!("/admin/organizations/{slug}")
                                            class="text-indigo-600 hover:underline"
                                        >
                                            {name}
                                        </a>
                                    </td>
                                    <td class="py-1 pr-2">{role}</td>
                                    <td class="py-1">{joined}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </Panel>
        <Panel title="Sessions" note="Signed-in browsers, most recently used first.">
            <table class="w-full text-left text-sm" data-sessions="">
                <thead class="text-slate-500">
                    <tr>
                        <th>"Signed in"</th>
                        <th>"Last seen"</th>
                        <th>"IP"</th>
                        <th>"Browser"</th>
                    </tr>
                </thead>
                <tbody>
                    {sessions
                        .into_iter()
                        .map(|(since, seen, ip, agent)| {
                            view! {
                                <tr class="border-t border-slate-100">
                                    <td class="py-1 pr-2 whitespace-nowrap">{since}</td>
                                    <td class="py-1 pr-2 whitespace-nowrap">{seen}</td>
                                    <td class="py-1 pr-2">{ip}</td>
                                    <td class="py-1 break-all">{agent}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </Panel>
        <Panel
            title="History"
            note="Sign-ins, failed sign-ins, resets and operators' actions on the account, newest first."
        >
            <super::settings::AuditTable lines=history />
        </Panel>
    }
}
