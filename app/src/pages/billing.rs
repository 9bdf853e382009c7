//! `/dashboard/billing`: the organization's plan and subscription, the next invoice, usage
//! against the plan's limits, and (for owners) changing plan or interval and the Stripe
//! portal. Every button is a plain form, so it all works without JavaScript.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::dashboard::Panel;
use super::forms::{FormError, field_error, general_error};
use super::usage::Bar;
use crate::billing::{
    BillingView, OpenPortal, PlanChoice, PlanRequestView, RequestPlan as RequestPlanAction,
    StartCheckout, WithdrawPlanRequest, billing_overview,
};
use crate::format::usd;

#[component]
pub fn BillingPage() -> impl IntoView {
    // The plan request's forms live here: each one done reads the page again.
    let requests = RequestActions {
        ask: ServerAction::new(),
        withdraw: ServerAction::new(),
    };
    let billing = Resource::new(
        move || {
            (
                requests.ask.version().get(),
                requests.withdraw.version().get(),
            )
        },
        |_| billing_overview(),
    );
    let query = use_query_map();
    // Set by the forms that succeeded without JavaScript, and by Stripe's return to this page.
    let notice = move || {
        let query = query.read();
        if query.get("checkout").as_deref() == Some("success") {
            Some((
                "border-emerald-200 bg-emerald-50 text-emerald-900",
                "Thank you! Your payment went through; your plan is active as soon as Stripe confirms it (a few seconds).".to_owned(),
            ))
        } else if query.get("requested").is_some() {
            Some((
                "border-emerald-200 bg-emerald-50 text-emerald-900",
                "Your request was sent to the operators. You get an email when they have decided."
                    .to_owned(),
            ))
        } else if query.get("changed").is_some() {
            Some((
                "border-emerald-200 bg-emerald-50 text-emerald-900",
                "Your plan was changed. The difference is prorated on your next invoice."
                    .to_owned(),
            ))
        } else {
            None
        }
    };
    view! {
        <Title text="Billing" />
        <h1 class="text-2xl font-bold tracking-tight">"Billing"</h1>
        {move || {
            notice()
                .map(|(class, text)| {
                    view! {
                        <p
                            class=format!("mt-4 rounded-lg border px-4 py-3 text-sm {class}")
                            data-billing-notice=""
                        >
                            {text}
                        </p>
                    }
                })
        }}
        <Suspense fallback=|| {
            view! { <p class="mt-4 text-slate-500">"Loading billing…"</p> }
        }>
            {move || Suspend::new(async move {
                match billing.await {
                    Ok(view) => view! { <Billing billing=view requests /> }.into_any(),
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
fn Billing(billing: BillingView, requests: RequestActions) -> impl IntoView {
    let request_panel = billing.local_mode.then(|| {
        view! {
            <RequestPlan
                plans=billing.plans.clone()
                current=billing.plan_id.clone()
                request=billing.request.clone()
                can_manage=billing.can_manage
                actions=requests
            />
        }
    });
    let portal = ServerAction::<OpenPortal>::new();
    let status_class = match billing.status.as_str() {
        "Active" | "Trialing" => "bg-emerald-100 text-emerald-800",
        "Past due" | "Unpaid" => "bg-red-100 text-red-800",
        _ => "bg-slate-100 text-slate-700",
    };
    let interval = billing.interval.clone().unwrap_or_default();
    let summary = if billing.local_mode {
        "Plans on this server are assigned by its operator; billing happens outside Slipway."
            .to_owned()
    } else if billing.interval.is_some() {
        format!("Billed {interval}.")
    } else {
        "You are not subscribed to a paid plan.".to_owned()
    };
    view! {
        <Panel title="Plan">
            <div class="flex flex-wrap items-center gap-3">
                <p class="text-xl font-semibold" data-billing-plan=billing.plan_id.clone()>
                    {billing.plan_name.clone()}
                </p>
                <span
                    class=format!("rounded-full px-2.5 py-0.5 text-xs font-semibold {status_class}")
                    data-billing-status=billing.status.clone()
                >
                    {billing.status.clone()}
                </span>
            </div>
            <p class="mt-1 text-sm text-slate-600">{summary}</p>
            <dl class="mt-4 grid gap-4 text-sm sm:grid-cols-3">
                {billing
                    .period_end
                    .clone()
                    .map(|end| {
                        view! {
                            <div>
                                <dt class="text-slate-500">
                                    {if billing.cancel_at_period_end {
                                        "Ends on"
                                    } else {
                                        "Renews on"
                                    }}
                                </dt>
                                <dd class="font-medium" data-period-end="">
                                    {end}
                                </dd>
                            </div>
                        }
                    })}
                {billing
                    .upcoming_invoice
                    .clone()
                    .map(|amount| {
                        view! {
                            <div>
                                <dt class="text-slate-500">"Next invoice"</dt>
                                <dd class="font-medium" data-upcoming-invoice="">
                                    {amount}
                                </dd>
                            </div>
                        }
                    })}
                {(billing.failed_payments > 0)
                    .then(|| {
                        view! {
                            <div>
                                <dt class="text-slate-500">"Failed payment attempts"</dt>
                                <dd class="font-medium text-red-700" data-failed-payments="">
                                    {format!(
                                        "{} of {}",
                                        billing.failed_payments,
                                        billing.failed_payments_before_suspend,
                                    )}
                                </dd>
                            </div>
                        }
                    })}
            </dl>
            {billing
                .grace_ends_at
                .clone()
                .map(|until| {
                    view! {
                        <p
                            class="mt-4 rounded-lg border border-amber-200 bg-amber-50 px-4 py-3 text-sm text-amber-900"
                            data-grace=""
                        >
                            {format!(
                                "Your subscription has ended. Your sites are paused and kept until {until}; subscribe again before then to keep them.",
                            )}
                        </p>
                    }
                })}
            {(billing.can_manage && billing.has_customer && !billing.local_mode)
                .then(|| {
                    view! {
                        <ActionForm action=portal attr:class="mt-4" attr:data-form="portal">
                            <button
                                type="submit"
                                class="rounded-lg border border-slate-300 px-4 py-2 text-sm font-semibold hover:bg-slate-50"
                            >
                                "Payment methods, invoices and cancellation"
                            </button>
                            <FormError error=general_error(portal.value()) />
                        </ActionForm>
                    }
                })}
        </Panel>
        <Panel title="Usage against your plan">
            <div class="grid gap-4 sm:grid-cols-2">
                {billing.bars.into_iter().map(|bar| view! { <Bar bar /> }).collect_view()}
            </div>
        </Panel>
        {billing
            .contact_email
            .clone()
            .map(|email| {
                view! {
                    <p class="mt-4 text-sm text-slate-600" data-contact="">
                        "Questions about plans or billing? Write to "
                        <a
                            href=format!("mailto:{email}")
                            class="font-semibold text-indigo-700 underline"
                        >
                            {email.clone()}
                        </a>
                        "."
                    </p>
                }
            })}
        {request_panel}
        {(!billing.local_mode)
            .then(|| {
                view! {
                    <Panel title=if billing.interval.is_some() {
                        "Change plan or interval"
                    } else {
                        "Choose a plan"
                    }>
                        {(!billing.can_manage)
                            .then(|| {
                                view! {
                                    <p class="text-sm text-slate-600">
                                        "Only the organization's owners can change its plan."
                                    </p>
                                }
                            })}
                        <div class="grid gap-4 lg:grid-cols-3">
                            {billing
                                .plans
                                .into_iter()
                                .map(|plan| {
                                    view! { <PlanOption plan can_manage=billing.can_manage /> }
                                })
                                .collect_view()}
                        </div>
                    </Panel>
                }
            })}
    }
}

/// The forms of a plan request.
#[derive(Clone, Copy)]
struct RequestActions {
    ask: ServerAction<RequestPlanAction>,
    withdraw: ServerAction<WithdrawPlanRequest>,
}

/// Local billing mode: nobody pays at a checkout here, so the owner asks the operators for
/// a plan, and sees what became of the latest request.
#[component]
fn RequestPlan(
    plans: Vec<PlanChoice>,
    current: String,
    request: Option<PlanRequestView>,
    can_manage: bool,
    actions: RequestActions,
) -> impl IntoView {
    let RequestActions { ask, withdraw } = actions;
    let query = use_query_map();
    let wanted = query.read_untracked().get("plan").unwrap_or_default();
    let pending = request.as_ref().is_some_and(|r| r.status == "pending");
    view! {
        <Panel
            title="Request a plan"
            note="Plans on this server are assigned by its operators: ask for one here, and you get an email when they have decided."
        >
            {request
                .map(|r| {
                    let words = match r.status.as_str() {
                        "pending" => {
                            format!(
                                "You asked for the {} plan on {}; the operators have not decided yet.",
                                r.plan_name,
                                r.created,
                            )
                        }
                        "approved" => {
                            format!(
                                "Your request for the {} plan was approved on {}.",
                                r.plan_name,
                                r.decided.clone().unwrap_or_default(),
                            )
                        }
                        "declined" => {
                            format!(
                                "Your request for the {} plan was declined on {}.",
                                r.plan_name,
                                r.decided.clone().unwrap_or_default(),
                            )
                        }
                        _ => format!("You withdrew your request for the {} plan.", r.plan_name),
                    };
                    view! {
                        <div
                            class="mb-4 rounded-lg border border-slate-200 bg-slate-50 px-4 py-3 text-sm"
                            data-plan-request=r.status.clone()
                        >
                            <p>{words}</p>
                            {(!r.message.is_empty())
                                .then(|| {
                                    view! {
                                        <p class="mt-1 text-slate-600 break-words">
                                            {format!("Your message: {}", r.message)}
                                        </p>
                                    }
                                })}
                            {(!r.note.is_empty())
                                .then(|| {
                                    view! {
                                        <p
                                            class="mt-1 text-slate-800 break-words"
                                            data-request-note=""
                                        >
                                            {format!("The operators wrote: {}", r.note)}
                                        </p>
                                    }
                                })}
                        </div>
                    }
                })}
            {match (can_manage, pending) {
                (false, _) => {
                    view! {
                        <p class="text-sm text-slate-600">
                            "Only the organization's owners can ask for a plan."
                        </p>
                    }
                        .into_any()
                }
                (true, true) => {
                    view! {
                        <ActionForm action=withdraw attr:data-form="withdraw-request">
                            <button
                                type="submit"
                                class="rounded-lg border border-slate-300 px-4 py-2 text-sm font-semibold hover:bg-slate-50"
                            >
                                "Withdraw the request"
                            </button>
                            <FormError error=general_error(withdraw.value()) />
                        </ActionForm>
                    }
                        .into_any()
                }
                (true, false) => {
                    let plan = field_error(ask, "plan");
                    let message = field_error(ask, "message");
                    let wanted = plan.typed.clone().unwrap_or_else(|| wanted.clone());
                    let typed_message = message.typed.clone().unwrap_or_default();
                    // A refused plain form post comes back as it was sent.
                    view! {
                        <ActionForm action=ask attr:data-form="request-plan" attr:class="space-y-3">
                            <label class="block text-sm font-medium" for="request-plan">
                                "Plan"
                            </label>
                            <select
                                id="request-plan"
                                name="plan"
                                class="block w-full max-w-xs rounded-md border border-slate-300 px-3 py-2 text-sm"
                            >
                                {plans
                                    .into_iter()
                                    .filter(|p| p.id != current && p.too_small.is_none())
                                    .map(|p| {
                                        let label = format!(
                                            "{} ({}/month)",
                                            p.name,
                                            usd(p.monthly_cents),
                                        );
                                        view! {
                                            <option value=p.id.clone() selected=p.id == wanted>
                                                {label}
                                            </option>
                                        }
                                    })
                                    .collect_view()}
                            </select>
                            <FormError error=plan />
                            <label class="block text-sm font-medium" for="request-message">
                                "Message to the operators (optional)"
                            </label>
                            <textarea
                                id="request-message"
                                name="message"
                                rows="3"
                                maxlength="2000"
                                class="block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
                            >
                                {typed_message}
                            </textarea>
                            <FormError error=message />
                            <FormError error=general_error(ask.value()) />
                            <button
                                type="submit"
                                class="rounded-lg bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-500"
                            >
                                "Send the request"
                            </button>
                        </ActionForm>
                    }
                        .into_any()
                }
            }}
        </Panel>
    }
}

#[component]
fn PlanOption(plan: PlanChoice, can_manage: bool) -> impl IntoView {
    let query = use_query_map();
    let chosen = query.read_untracked().get("plan").as_deref() == Some(plan.id.as_str());
    let choices = [
        ("monthly", format!("{}/month", usd(plan.monthly_cents))),
        ("yearly", format!("{}/year", usd(plan.yearly_cents))),
    ];
    let class = if chosen {
        "rounded-xl border-2 border-indigo-600 p-4"
    } else {
        "rounded-xl border border-slate-200 p-4"
    };
    view! {
        <div class=class data-plan-option=plan.id.clone()>
            <p class="font-semibold">{plan.name.clone()}</p>
            {plan
                .too_small
                .clone()
                .map(|why| {
                    view! {
                        <p class="mt-2 text-sm text-amber-800" data-too-small="">
                            {format!("{why} Delete sites or members first to move to this plan.")}
                        </p>
                    }
                })}
            <div class="mt-3 flex flex-wrap gap-2">
                {choices
                    .into_iter()
                    .map(|(interval, label)| {
                        let current = plan.current_interval.as_deref() == Some(interval);
                        let disabled = current || plan.too_small.is_some() || !can_manage;
                        view! { <Choose plan=plan.id.clone() interval label current disabled /> }
                    })
                    .collect_view()}
            </div>
        </div>
    }
}

#[component]
fn Choose(
    plan: String,
    interval: &'static str,
    label: String,
    current: bool,
    disabled: bool,
) -> impl IntoView {
    use leptos::server_fn::ServerFn;
    let checkout = ServerAction::<StartCheckout>::new();
    let key = format!("{plan}-{interval}");
    let form_name = format!("checkout-{key}");
    // Every card's form calls the same server function, so a refused plain form post comes
    // back as a refusal of each card's action: it is shown on the card that was sent (its
    // `card` field, which the server function ignores), until a card is used again.
    let sent_here = use_context::<crate::form_flash::FormFlash>().is_none_or(|flash| {
        flash.typed(StartCheckout::PATH, "card").as_deref() == Some(key.as_str())
    });
    let refused = general_error(checkout.value());
    let refused = Signal::derive(move || {
        refused
            .get()
            .filter(|_| sent_here || checkout.version().get() > 0)
    });
    view! {
        <ActionForm action=checkout attr:data-form=form_name>
            <input type="hidden" name="plan" value=plan />
            <input type="hidden" name="interval" value=interval />
            <input type="hidden" name="card" value=key.clone() />
            <button
                type="submit"
                disabled=disabled
                data-checkout=key
                class="rounded-lg bg-indigo-600 px-3 py-2 text-sm font-semibold text-white hover:bg-indigo-500 disabled:cursor-not-allowed disabled:bg-slate-300"
            >
                {if current { format!("Current: {label}") } else { label }}
            </button>
            <FormError error=refused />
        </ActionForm>
    }
}
