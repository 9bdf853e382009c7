//! `/pricing`: every plan of the catalog, monthly or yearly.
//!
//! The interval lives in the URL (`?billing=yearly`), so the toggle is a pair of plain
//! links: without JavaScript the server renders the chosen interval; with it, the router
//! navigates in place and only the prices change.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::chrome::{LoadError, PublicPage};
use crate::billing::local_billing;
use crate::format::usd;
use crate::plans::{PlanView, list_plans};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Monthly,
    Yearly,
}

impl Interval {
    /// Anything but `yearly` means monthly: a mistyped link still shows prices.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("yearly") => Interval::Yearly,
            _ => Interval::Monthly,
        }
    }

    fn query_value(self) -> &'static str {
        match self {
            Interval::Monthly => "monthly",
            Interval::Yearly => "yearly",
        }
    }
}

/// What a plan card shows for one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceLabel {
    pub amount: String,
    pub per: &'static str,
    pub note: String,
}

pub fn price_label(plan: &PlanView, interval: Interval) -> PriceLabel {
    if plan.monthly_cents == 0 && plan.yearly_cents == 0 {
        return PriceLabel {
            amount: usd(0),
            per: "",
            note: "Free forever".to_owned(),
        };
    }
    let twelve_months = plan.monthly_cents * 12;
    match interval {
        Interval::Monthly => PriceLabel {
            amount: usd(plan.monthly_cents),
            per: "/month",
            note: format!("or {} billed yearly", usd(plan.yearly_cents)),
        },
        Interval::Yearly => PriceLabel {
            amount: usd(plan.yearly_cents),
            per: "/year",
            note: if twelve_months > plan.yearly_cents {
                format!(
                    "{}/month, save {}",
                    usd(per_month(plan.yearly_cents)),
                    usd(twelve_months - plan.yearly_cents)
                )
            } else {
                format!("{}/month, billed yearly", usd(per_month(plan.yearly_cents)))
            },
        },
    }
}

/// A yearly price as a monthly figure, rounded to the nearest cent.
fn per_month(yearly_cents: u64) -> u64 {
    (yearly_cents + 6) / 12
}

#[component]
pub fn PricingPage() -> impl IntoView {
    let query = use_query_map();
    let interval = Memo::new(move |_| Interval::from_query(query.read().get("billing").as_deref()));
    let plans = Resource::new(|| (), |_| list_plans());
    let local = Resource::new(|| (), |_| local_billing());

    view! {
        <Title text="Pricing" />
        <PublicPage>
            <div class="mx-auto max-w-6xl px-4 pt-16 sm:px-6">
                <div class="text-center">
                    <h1 class="text-4xl font-bold tracking-tight sm:text-5xl">
                        "Simple, predictable pricing"
                    </h1>
                    <p class="mx-auto mt-4 max-w-2xl text-lg text-slate-600">
                        "Every hosted plan includes its own container, its own database and its own address. Change or cancel any time."
                    </p>
                </div>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        matches!(local.await, Ok(true))
                            .then(|| {
                                view! {
                                    <p
                                        class="mx-auto mt-6 max-w-2xl rounded-lg border border-slate-200 bg-white px-4 py-3 text-center text-sm text-slate-700"
                                        data-local-billing=""
                                    >
                                        "On this server plans are assigned by its operator, who bills outside Slipway: choose a plan to request it from your billing page, and you get an email once it is approved."
                                    </p>
                                }
                            })
                    })}
                </Suspense>
                <IntervalToggle interval />
                <Suspense fallback=|| {
                    view! { <p class="mt-12 text-center text-slate-500">"Loading plans…"</p> }
                }>
                    {move || Suspend::new(async move {
                        match plans.await {
                            Ok(plans) => view! { <PlanGrid plans interval /> }.into_any(),
                            Err(error) => {
                                view! { <LoadError message=error.to_string() /> }.into_any()
                            }
                        }
                    })}
                </Suspense>
            </div>
        </PublicPage>
    }
}

#[component]
fn IntervalToggle(interval: Memo<Interval>) -> impl IntoView {
    let option = move |choice: Interval, label: &'static str| {
        let selected = move || interval.get() == choice;
        view! {
            <a
                href=format!("/pricing?billing={}", choice.query_value())
                data-noscroll="true"
                data-interval=choice.query_value()
                aria-current=move || selected().then_some("true")
                class=move || {
                    if selected() {
                        "rounded-full bg-white px-5 py-2 text-sm font-semibold text-slate-900 shadow"
                    } else {
                        "rounded-full px-5 py-2 text-sm font-semibold text-slate-600 hover:text-slate-900"
                    }
                }
            >
                {label}
            </a>
        }
    };
    view! {
        <div class="mt-10 flex justify-center">
            <div
                role="group"
                aria-label="Billing interval"
                class="inline-flex gap-1 rounded-full bg-slate-200 p-1"
            >
                {option(Interval::Monthly, "Monthly")}
                {option(Interval::Yearly, "Yearly")}
            </div>
        </div>
    }
}

#[component]
fn PlanGrid(plans: Vec<PlanView>, interval: Memo<Interval>) -> impl IntoView {
    view! {
        <div class="mt-12 grid gap-6 sm:grid-cols-2 lg:grid-cols-4">
            {plans.into_iter().map(|plan| view! { <PlanCard plan interval /> }).collect_view()}
        </div>
    }
}

#[component]
fn PlanCard(plan: PlanView, interval: Memo<Interval>) -> impl IntoView {
    let monthly = price_label(&plan, Interval::Monthly);
    let yearly = price_label(&plan, Interval::Yearly);
    let label = move || match interval.get() {
        Interval::Monthly => monthly.clone(),
        Interval::Yearly => yearly.clone(),
    };
    let card_class = if plan.featured {
        "relative flex flex-col rounded-2xl border border-indigo-600 bg-white p-6 shadow-lg ring-1 ring-indigo-600"
    } else {
        "relative flex flex-col rounded-2xl border border-slate-200 bg-white p-6 shadow-sm"
    };
    view! {
        <section
            class=card_class
            data-plan=plan.id.clone()
            aria-labelledby=format!("plan-{}", plan.id)
        >
            {plan
                .featured
                .then(|| {
                    view! {
                        <p class="absolute -top-3 left-6 rounded-full bg-indigo-600 px-3 py-0.5 text-xs font-semibold text-white">
                            "Most popular"
                        </p>
                    }
                })}
            <h2 id=format!("plan-{}", plan.id) class="text-lg font-semibold">
                {plan.name.clone()}
            </h2>
            <p class="mt-1 text-sm text-slate-600 lg:min-h-15" data-plan-description="">
                {plan.description.clone()}
            </p>
            <p class="mt-6 flex items-baseline gap-1">
                <span class="text-4xl font-bold tracking-tight" data-price="">
                    {
                        let label = label.clone();
                        move || label().amount
                    }
                </span>
                <span class="text-sm text-slate-500">
                    {
                        let label = label.clone();
                        move || label().per
                    }
                </span>
            </p>
            <p class="mt-1 text-sm text-slate-500" data-price-note="">
                {move || label().note}
            </p>
            <a
                href={
                    let id = plan.id.clone();
                    let paid = plan.monthly_cents > 0;
                    move || {
                        if paid {
                            format!(
                                "/dashboard/billing?plan={id}&billing={}",
                                interval.get().query_value(),
                            )
                        } else {
                            "/dashboard".to_owned()
                        }
                    }
                }
                data-choose=plan.id.clone()
                class=if plan.featured {
                    "mt-6 block rounded-lg bg-indigo-600 px-4 py-2 text-center text-sm font-semibold text-white hover:bg-indigo-500"
                } else {
                    "mt-6 block rounded-lg bg-slate-900 px-4 py-2 text-center text-sm font-semibold text-white hover:bg-slate-700"
                }
            >
                {format!("Choose {}", plan.name)}
            </a>
            <ul class="mt-6 space-y-2 text-sm text-slate-700">
                {plan
                    .highlights
                    .iter()
                    .map(|line| {
                        view! {
                            <li class="flex gap-2">
                                <span aria-hidden="true" class="text-indigo-600">
                                    "✓"
                                </span>
                                {line.clone()}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(monthly: u64, yearly: u64) -> PlanView {
        PlanView {
            id: "pro".into(),
            name: "Pro".into(),
            description: String::new(),
            monthly_cents: monthly,
            yearly_cents: yearly,
            featured: false,
            highlights: vec![],
        }
    }

    #[test]
    fn interval_defaults_to_monthly() {
        assert_eq!(Interval::from_query(None), Interval::Monthly);
        assert_eq!(Interval::from_query(Some("weekly")), Interval::Monthly);
        assert_eq!(Interval::from_query(Some("yearly")), Interval::Yearly);
    }

    #[test]
    fn monthly_and_yearly_labels() {
        let pro = plan(4900, 49000);
        assert_eq!(
            price_label(&pro, Interval::Monthly),
            PriceLabel {
                amount: "$49".into(),
                per: "/month",
                note: "or $490 billed yearly".into()
            }
        );
        assert_eq!(
            price_label(&pro, Interval::Yearly),
            PriceLabel {
                amount: "$490".into(),
                per: "/year",
                note: "$40.83/month, save $98".into()
            }
        );
    }

    #[test]
    fn monthly_equivalent_is_rounded_to_the_cent() {
        assert_eq!(
            price_label(&plan(14900, 149000), Interval::Yearly).note,
            "$124.17/month, save $298"
        );
    }

    #[test]
    fn free_plan_reads_free() {
        assert_eq!(
            price_label(&plan(0, 0), Interval::Yearly).note,
            "Free forever"
        );
    }

    #[test]
    fn no_saving_claimed_without_a_discount() {
        assert_eq!(
            price_label(&plan(1000, 12000), Interval::Yearly).note,
            "$10/month, billed yearly"
        );
    }
}
