//! The operator overview's queue of plan requests (local billing mode): each open request
//! with the customer's message, approved or declined with a note the customer reads.

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::admin::follow;
use super::forms::FormError;
use crate::operator::requests::{AdminDecidePlanRequest, PlanRequestRow, admin_plan_requests};

#[component]
pub fn PlanRequests() -> impl IntoView {
    let decide = ServerAction::<AdminDecidePlanRequest>::new();
    let (reloads, refusal) = follow(vec![decide.value()]);
    let requests = Resource::new(move || reloads.get(), |_| admin_plan_requests());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let rows = requests.await.unwrap_or_default();
                (!rows.is_empty())
                    .then(|| {
                        view! {
                            <section class="mt-8" data-plan-requests="">
                                <h2 class="text-xl font-semibold">"Plan requests"</h2>
                                <p class="mt-1 text-sm text-slate-600">
                                    "Customers asking for a plan, oldest first. Approving puts the organization on the plan at once; the requester is mailed either way, with your note."
                                </p>
                                <FormError error=Signal::derive(move || refusal.get()) />
                                <ul class="mt-4 space-y-4">
                                    {rows
                                        .into_iter()
                                        .map(|row| view! { <Request row decide /> })
                                        .collect_view()}
                                </ul>
                            </section>
                        }
                    })
            })}
        </Transition>
    }
}

#[component]
fn Request(row: PlanRequestRow, decide: ServerAction<AdminDecidePlanRequest>) -> impl IntoView {
    let form = |decision: &'static str, words: &'static str, class: &'static str| {
        let id = row.id.clone();
        view! {
            <ActionForm
                action=decide
                attr:class="flex flex-wrap items-end gap-2"
                attr:data-form=format!("{decision}-{}", row.organization_slug)
            >
                <input type="hidden" name="request" value=id />
                <input type="hidden" name="decision" value=decision />
                <label class="text-sm">
                    <span class="block text-slate-600">"Note to the customer (optional)"</span>
                    <input
                        type="text"
                        name="note"
                        maxlength="500"
                        class="mt-1 w-64 max-w-full rounded-md border border-slate-300 px-2 py-1 text-sm"
                    />
                </label>
                <button type="submit" class=class>
                    {words}
                </button>
            </ActionForm>
        }
    };
    view! {
        <li
            class="rounded-xl border border-slate-200 bg-white p-4"
            data-plan-request=row.organization_slug.clone()
        >
            <p class="font-medium">
                <a
                    href=format!("/admin/organizations/{}", row.organization_slug)
                    class="text-indigo-700 hover:underline"
                >
                    {row.organization.clone()}
                </a>
                {format!(
                    " asks to move from {} to {} ({}, {})",
                    row.current_plan,
                    row.plan,
                    row.requested_by,
                    row.created,
                )}
            </p>
            {(!row.message.is_empty())
                .then(|| {
                    view! {
                        <p class="mt-1 whitespace-pre-wrap break-words text-sm text-slate-700">
                            {row.message.clone()}
                        </p>
                    }
                })}
            <div class="mt-3 flex flex-wrap gap-4">
                {form(
                    "approve",
                    "Approve",
                    "rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-semibold text-white hover:bg-indigo-500",
                )}
                {form(
                    "decline",
                    "Decline",
                    "rounded-md border border-slate-300 px-3 py-1.5 text-sm font-semibold hover:bg-slate-50",
                )}
            </div>
        </li>
    }
}
