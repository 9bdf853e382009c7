//! `/admin`: the operator overview. Refused to everyone but platform operators: the
//! business at a glance (revenue and its movements, the funnel, operations), each figure
//! with its definition as a tooltip, and 12-month charts drawn as SVG on the server.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use super::chrome::PublicPage;
use crate::account::operator_check;
use crate::error::AppError;
use crate::operator::{Figure, MonthView, OverviewView, Row, admin_overview};

#[component]
pub fn AdminPage() -> impl IntoView {
    let check = Resource::new(|| (), |_| operator_check());
    let feed = Resource::new(|| (), |_| crate::health::incident_feed());
    let overview = Resource::new(|| (), |_| admin_overview());
    view! {
        <Title text="Operator" />
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match check.await {
                    Ok(email) => {
                        view! {
                            <PublicPage>
                                <div class="mx-auto max-w-6xl px-4 py-10" data-operator="">
                                    <h1 class="text-3xl font-bold">"Operator overview"</h1>
                                    <p class="mt-2 text-slate-600">
                                        {format!("Signed in as {email}, a platform operator.")}
                                    </p>
                                    <nav
                                        class="mt-4 flex flex-wrap gap-x-4 gap-y-1 text-sm"
                                        aria-label="Operator"
                                    >
                                        {OPERATOR_LISTS
                                            .into_iter()
                                            .map(|(href, words)| {
                                                view! {
                                                    <a
                                                        href=href
                                                        class="font-medium text-indigo-600 hover:underline"
                                                    >
                                                        {words}
                                                    </a>
                                                }
                                            })
                                            .collect_view()}
                                    </nav>
                                    <super::admin_requests::PlanRequests />
                                    <Suspense fallback=|| ()>
                                        {move || Suspend::new(async move {
                                            match overview.await {
                                                Ok(overview) => view! { <Overview overview /> }.into_any(),
                                                Err(error) => {
                                                    view! {
                                                        <p class="mt-6 text-red-700" role="alert">
                                                            {error.to_string()}
                                                        </p>
                                                    }
                                                        .into_any()
                                                }
                                            }
                                        })}
                                    </Suspense>
                                    <super::health::IncidentFeed feed />
                                </div>
                            </PublicPage>
                        }
                            .into_any()
                    }
                    Err(AppError::SignInRequired) => view! { <Redirect path="/login" /> }.into_any(),
                    Err(error) => view! { <Refused error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The operator's lists, as the overview links them.
const OPERATOR_LISTS: [(&str, &str); 8] = [
    ("/admin/organizations", "Organizations"),
    ("/admin/users", "Users"),
    ("/admin/subscriptions", "Subscriptions"),
    ("/admin/sites", "Sites"),
    ("/admin/sites?state=failed", "Failed provisionings"),
    ("/admin/incidents", "Incidents"),
    ("/admin/jobs", "Jobs"),
    ("/admin/audit", "Operator audit log"),
];

#[component]
fn Overview(overview: OverviewView) -> impl IntoView {
    let OverviewView {
        billing,
        at,
        revenue,
        movements,
        plans,
        months,
        weeks,
        operations,
    } = overview;
    view! {
        <p class="mt-1 text-sm text-slate-500" data-billing-mode=billing.clone()>
            {format!(
                "Billing: {billing}. Figures as of {at}; hover or focus a figure for its definition.",
            )}
        </p>
        <Section title="Revenue">
            <Figures figures=revenue />
        </Section>
        <Section title="This month so far">
            <Figures figures=movements />
        </Section>
        <div class="mt-8 grid gap-6 lg:grid-cols-2">
            <MrrChart months=months.clone() />
            <MovementChart months />
        </div>
        <div class="mt-8 grid gap-6 lg:grid-cols-2">
            <Table
                title="Paying organizations by plan"
                key="plans"
                headers=&["Plan", "Interval", "Organizations", "MRR"]
                rows=plans
            />
            <Table
                title="Per week"
                key="weeks"
                headers=&["Week of", "Sign-ups", "Activations", "Conversions"]
                rows=weeks
            />
        </div>
        <Section title="Operations">
            <Figures figures=operations />
        </Section>
    }
}

#[component]
fn Section(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <section class="mt-8">
            <h2 class="text-lg font-semibold">{title}</h2>
            {children()}
        </section>
    }
}

/// Figures as cards; each shows its definition while hovered or focused.
#[component]
fn Figures(figures: Vec<Figure>) -> impl IntoView {
    view! {
        <dl class="mt-3 grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-4">
            {figures
                .into_iter()
                .map(|figure| {
                    let tip = format!("tip-{}", figure.key);
                    let described_by = tip.clone();
                    let value_class = if figure.value.len() > 24 {
                        "text-sm font-semibold"
                    } else {
                        "text-xl font-semibold tabular-nums"
                    };
                    view! {
                        <div
                            class="group relative rounded-lg border border-slate-200 bg-white p-4 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                            tabindex="0"
                            data-figure=figure.key.clone()
                            aria-describedby=described_by
                        >
                            <dt class="flex items-center gap-1 text-sm text-slate-600">
                                {figure.label}
                                <span
                                    aria-hidden="true"
                                    class="inline-flex h-4 w-4 items-center justify-center rounded-full border border-slate-300 text-[10px] font-semibold text-slate-500"
                                >
                                    "i"
                                </span>
                            </dt>
                            <dd class="mt-1">
                                <span class=value_class data-value="">
                                    {figure.value}
                                </span>
                                <span
                                    id=tip
                                    role="tooltip"
                                    data-definition=""
                                    class="invisible absolute left-0 top-full z-10 mt-1 block w-72 rounded bg-slate-900 p-2 text-xs leading-snug text-white shadow-lg group-hover:visible group-focus:visible"
                                >
                                    {figure.definition}
                                </span>
                            </dd>
                        </div>
                    }
                })
                .collect_view()}
        </dl>
    }
}

#[component]
fn Table(
    title: &'static str,
    key: &'static str,
    headers: &'static [&'static str],
    rows: Vec<Row>,
) -> impl IntoView {
    let empty = rows.is_empty();
    view! {
        <section data-table=key>
            <h2 class="text-lg font-semibold">{title}</h2>
            <table class="mt-3 w-full rounded-lg border border-slate-200 bg-white text-sm">
                <thead class="bg-slate-50 text-left text-slate-600">
                    <tr>
                        {headers
                            .iter()
                            .map(|h| view! { <th class="px-3 py-2 font-medium">{*h}</th> })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|row| {
                            view! {
                                <tr class="border-t border-slate-100">
                                    {row
                                        .cells
                                        .into_iter()
                                        .map(|c| {
                                            view! { <td class="px-3 py-2 tabular-nums">{c}</td> }
                                        })
                                        .collect_view()}
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            {empty.then(|| view! { <p class="mt-2 text-sm text-slate-500">"None yet."</p> })}
        </section>
    }
}

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 160.0;

use crate::format::usd_signed as usd;

/// MRR at the start of each month and now, as bars; months before the first snapshot are
/// left empty.
#[component]
fn MrrChart(months: Vec<MonthView>) -> impl IntoView {
    let max = months
        .iter()
        .filter_map(|m| m.mrr_cents)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = WIDTH / months.len().max(1) as f64;
    let bars = months
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let value = m.mrr_cents?;
            let height = value as f64 / max as f64 * (HEIGHT - 4.0);
            Some(view! {
                <rect
                    x=format!("{:.1}", i as f64 * slot + 3.0)
                    y=format!("{:.1}", HEIGHT - height)
                    width=format!("{:.1}", slot - 6.0)
                    height=format!("{height:.1}")
                    class="fill-indigo-500"
                    data-month=m.label.clone()
                    data-value=value
                >
                    <title>{format!("{}: {}", m.label, usd(value))}</title>
                </rect>
            })
        })
        .collect_view();
    view! {
        <figure data-chart="mrr">
            <figcaption class="flex justify-between">
                <span class="font-medium">"MRR at the start of each month"</span>
                <span class="text-sm text-slate-500">{format!("max {}", usd(max))}</span>
            </figcaption>
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                class="mt-2 h-40 w-full rounded bg-slate-50"
                role="img"
                aria-label="MRR at the start of each of the last 12 months, this month and now"
            >
                {bars}
            </svg>
            <MonthAxis months=months.iter().map(|m| m.label.clone()).collect() />
            <ChartTable
                caption="MRR at the start of each month"
                rows=months
                    .iter()
                    .map(|m| {
                        (m.label.clone(), vec![m.mrr_cents.map_or("no snapshot".to_owned(), usd)])
                    })
                    .collect()
            />
        </figure>
    }
}

/// A chart's figures as a table for screen readers: a row per month, its label first.
/// (Rows inside `<tbody>`: the browser adds one to a table without it, and the page would
/// no longer hydrate.)
#[component]
fn ChartTable(caption: &'static str, rows: Vec<(String, Vec<String>)>) -> impl IntoView {
    view! {
        <table class="sr-only">
            <caption>{caption}</caption>
            <tbody>
                {rows
                    .into_iter()
                    .map(|(label, cells)| {
                        view! {
                            <tr>
                                <th scope="row">{label}</th>
                                {cells.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// What each month added (new, reactivation, expansion: up) and lost (contraction,
/// churned: down).
#[component]
fn MovementChart(months: Vec<MonthView>) -> impl IntoView {
    let max = months
        .iter()
        .flat_map(|m| [m.added.unwrap_or(0), m.lost.unwrap_or(0)])
        .max()
        .unwrap_or(0)
        .max(1);
    let middle = HEIGHT / 2.0;
    let slot = WIDTH / months.len().max(1) as f64;
    let scale = |v: i64| v as f64 / max as f64 * (middle - 2.0);
    let bars = months
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let (added, lost) = (m.added?, m.lost?);
            let x = format!("{:.1}", i as f64 * slot + 3.0);
            let width = format!("{:.1}", slot - 6.0);
            let label = format!("{}: +{} added, −{} lost", m.label, usd(added), usd(lost));
            Some(view! {
                <g data-month=m.label.clone() data-added=added data-lost=lost>
                    <title>{label}</title>
                    <rect
                        x=x.clone()
                        y=format!("{:.1}", middle - scale(added))
                        width=width.clone()
                        height=format!("{:.1}", scale(added))
                        class="fill-emerald-500"
                    />
                    <rect
                        x=x
                        y=format!("{middle:.1}")
                        width=width
                        height=format!("{:.1}", scale(lost))
                        class="fill-rose-500"
                    />
                </g>
            })
        })
        .collect_view();
    view! {
        <figure data-chart="movements">
            <figcaption class="flex justify-between">
                <span class="font-medium">"MRR added and lost each month"</span>
                <span class="text-sm text-slate-500">{format!("± {}", usd(max))}</span>
            </figcaption>
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                class="mt-2 h-40 w-full rounded bg-slate-50"
                role="img"
                aria-label="MRR added (new, reactivation, expansion) and lost (contraction, churned) each month"
            >
                <line
                    x1="0"
                    y1=middle
                    x2=WIDTH
                    y2=middle
                    class="stroke-slate-300"
                    stroke-width="1"
                />
                {bars}
            </svg>
            <MonthAxis months=months.iter().map(|m| m.period.clone()).collect() />
            <ChartTable
                caption="MRR added and lost each month"
                rows=months
                    .iter()
                    .filter_map(|m| Some((m.period.clone(), m.added?, m.lost?)))
                    .map(|(period, added, lost)| {
                        (period, vec![format!("+{}", usd(added)), format!("−{}", usd(lost))])
                    })
                    .collect()
            />
        </figure>
    }
}

#[component]
fn MonthAxis(months: Vec<String>) -> impl IntoView {
    let first = months.first().cloned().unwrap_or_default();
    let last = months.last().cloned().unwrap_or_default();
    view! {
        <div class="mt-1 flex justify-between text-xs text-slate-500">
            <span>{first}</span>
            <span>{last}</span>
        </div>
    }
}

/// `/admin/organizations`: every organization, searched (member email, name, slug, site,
/// custom domain, Stripe id), filtered by plan and billing state, sorted, a page at a time
/// and exported as CSV. A plain GET form: it works the same without JavaScript.
#[component]
pub fn OrganizationsPage() -> impl IntoView {
    use leptos_router::hooks::use_query_map;

    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let list = Resource::new(
        move || {
            (
                param("q"),
                param("plan"),
                param("billing"),
                param("sort"),
                param("after"),
            )
        },
        |(q, plan, billing, sort, after)| {
            crate::operator::admin_organizations(q, plan, billing, sort, after)
        },
    );
    view! {
        <ListPage
            title="Organizations"
            marker="organizations"
            back=("/admin/organizations", "Show every organization")
            list
            show=move |list| {
                let filters = (param("q"), param("plan"), param("billing"), param("sort"));
                view! { <OrgList list filters /> }
            }
        />
    }
}

/// An operator list page: its title, what it lists (`intro`), and `show` of the list once
/// it has arrived, or why there is none (with the way back to the whole list, `back`).
#[component]
pub(crate) fn ListPage<T, F, V>(
    title: &'static str,
    /// Its `data-operator-page`, for tests.
    marker: &'static str,
    #[prop(optional)] intro: &'static str,
    back: (&'static str, &'static str),
    list: Resource<Result<T, AppError>>,
    show: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let check = Resource::new(|| (), |_| operator_check());
    view! {
        <Title text=title />
        <Transition fallback=|| ()>
            {move || {
                let show = show.clone();
                Suspend::new(async move {
                    let (check, list) = (check.await, list.await);
                    view! {
                        <OperatorFrame check marker crumbs=vec![("", title.to_owned())]>
                            <h1 class="mt-2 text-3xl font-bold">{title}</h1>
                            {(!intro.is_empty())
                                .then(|| {
                                    view! { <p class="mt-1 text-sm text-slate-600">{intro}</p> }
                                })}
                            {match list.clone() {
                                Ok(list) => show(list).into_any(),
                                Err(error) => {
                                    view! { <LoadError error not_found="Not found." back /> }
                                        .into_any()
                                }
                            }}
                        </OperatorFrame>
                    }
                })
            }}
        </Transition>
    }
}

/// An operator page once its data has arrived: the way to sign in for nobody signed in,
/// the 403 page for everyone but operators, else the page (the operator area's width,
/// `marker` naming it for tests, `crumbs` above `children`).
#[component]
pub(crate) fn OperatorFrame(
    check: Result<String, AppError>,
    marker: &'static str,
    crumbs: Vec<(&'static str, String)>,
    children: ChildrenFn,
) -> impl IntoView {
    match check {
        Err(AppError::SignInRequired) => view! { <Redirect path="/login" /> }.into_any(),
        Err(error) => view! { <Refused error /> }.into_any(),
        Ok(_) => view! {
            <PublicPage>
                <div class="mx-auto max-w-6xl px-4 py-10" data-operator-page=marker>
                    <Crumbs trail=crumbs />
                    {children()}
                </div>
            </PublicPage>
        }
        .into_any(),
    }
}

/// Why an operator page has nothing to show (`not_found` for a missing record), with the
/// way back to its whole list.
#[component]
pub(crate) fn LoadError(
    error: AppError,
    not_found: &'static str,
    back: (&'static str, &'static str),
) -> impl IntoView {
    let message = match error {
        AppError::NotFound => not_found.to_owned(),
        other => other.to_string(),
    };
    view! {
        <p class="mt-6 text-red-700" role="alert">
            {message}
        </p>
        <a href=back.0 class="mt-2 inline-block text-indigo-600 hover:underline">
            {back.1}
        </a>
    }
}

/// Follows the actions of an operator page (their results, oldest to newest as they come):
/// the page's data is read again after each success (`reloads` changes), and `refusal` is
/// the latest result's refusal, whichever form it came from, cleared by a success. A
/// refusal of a post without JavaScript (in the page's address) shows from the server.
pub(crate) fn follow<S>(results: Vec<S>) -> (RwSignal<u32>, RwSignal<Option<String>>)
where
    S: Get<Value = Option<Result<(), AppError>>>
        + GetUntracked<Value = Option<Result<(), AppError>>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let initial = results
        .iter()
        .find_map(|result| result.get_untracked().and_then(Result::err))
        .map(|error| error.to_string());
    let reloads = RwSignal::new(0);
    let refusal = RwSignal::new(initial);
    for result in results {
        Effect::new(move |_| match result.get() {
            Some(Ok(())) => {
                clear_reasons();
                refusal.set(None);
                reloads.update(|n| *n += 1);
            }
            Some(Err(error)) => {
                // Refused for the state (another operator acted first): show the state now.
                if matches!(error, AppError::Refused(_)) {
                    reloads.update(|n| *n += 1);
                }
                refusal.set(Some(error.to_string()));
            }
            None => {}
        });
    }
    (reloads, refusal)
}

/// Empties every reason field of the page after an action succeeded. The page is drawn
/// again over the same elements, so the reason given for one action would otherwise be
/// offered for the next (the form after a suspension is the resumption's). Only here, not
/// on each render: a reason typed before the page hydrated must survive its hydration.
fn clear_reasons() {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Ok(fields) = document().query_selector_all(r#"form[data-form] input[name="reason"]"#)
        else {
            return;
        };
        for index in 0..fields.length() {
            if let Some(field) = fields
                .item(index)
                .and_then(|node| node.dyn_into::<web_sys::HtmlInputElement>().ok())
            {
                field.set_value("");
            }
        }
    }
}

/// The 403 page of the operator area.
#[component]
pub(crate) fn Refused(error: AppError) -> impl IntoView {
    view! {
        <PublicPage>
            <div class="mx-auto max-w-xl px-4 py-24 text-center">
                <p class="text-sm font-semibold text-red-600">"403"</p>
                <h1 class="mt-2 text-3xl font-bold">"Not allowed"</h1>
                <p class="mt-4 text-slate-600" data-refused="">
                    {error.to_string()}
                </p>
            </div>
        </PublicPage>
    }
}

/// The search form, the table and the links to the next page and to the CSV export.
#[component]
fn OrgList(
    list: crate::operator::OrgListView,
    /// What the list shows now: search, plan, billing state, order.
    filters: (String, String, String, String),
) -> impl IntoView {
    let (q, plan, billing, sort) = filters;
    let (csv, next) = list_links(
        "/admin/organizations",
        &[
            ("q", q.as_str()),
            ("plan", plan.as_str()),
            ("billing", billing.as_str()),
            ("sort", sort.as_str()),
        ],
        list.next,
    );
    let empty = list.rows.is_empty();
    let plans = std::iter::once((String::new(), "Any plan".to_owned()))
        .chain(list.plans)
        .collect();
    let billing_states = filter_choices("Any billing state", list.billing_states, |state| {
        crate::billing::status_label(Some(state).filter(|s| *s != "none"))
    });
    view! {
        <ListSearch
            path="/admin/organizations"
            form="organizations"
            q
            placeholder="Email, name, slug, domain or Stripe id"
            csv
        >
            <Choice label="Plan" name="plan" selected=plan choices=plans />
            <Choice label="Billing" name="billing" selected=billing choices=billing_states />
            <SortChoice selected=sort sorts=list.sorts />
        </ListSearch>
        <table
            class="mt-6 w-full rounded-lg border border-slate-200 bg-white text-sm"
            data-table="organizations"
        >
            <caption class="sr-only">"Organizations"</caption>
            <thead class="bg-slate-50 text-left text-slate-600">
                <tr>
                    {[
                        "Organization",
                        "Owner",
                        "Plan",
                        "Billing",
                        "Revenue / month",
                        "Members",
                        "Sites",
                        "Created",
                    ]
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
                        let slug = row.slug.clone();
                        view! {
                            <tr class="border-t border-slate-100" data-organization=slug>
                                <th scope="row" class="px-3 py-2 text-left font-normal">
                                    <a
                                        href=format!("/admin/organizations/{}", row.slug)
                                        class="font-medium text-indigo-600 hover:underline"
                                    >
                                        {row.name}
                                    </a>
                                    <span class="block text-xs text-slate-500">{row.slug}</span>
                                </th>
                                <td class="px-3 py-2">{row.owner_email}</td>
                                <td class="px-3 py-2">{row.plan}</td>
                                <td class="px-3 py-2">{row.billing}</td>
                                <td class="px-3 py-2 tabular-nums">{row.revenue}</td>
                                <td class="px-3 py-2 tabular-nums">{row.members}</td>
                                <td class="px-3 py-2 tabular-nums">{row.sites}</td>
                                <td class="px-3 py-2 tabular-nums">{row.created}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        <ListFooter empty=empty.then_some("No organization matches.") next />
    }
}

/// The links of the operator list at `path` showing `params`: its CSV export (the same
/// search and filters), and its next page if there is more (`next`, the page's cursor).
pub(crate) fn list_links(
    path: &str,
    params: &[(&str, &str)],
    next: Option<String>,
) -> (String, Option<String>) {
    use crate::format::query;

    let csv = format!("{path}.csv{}", query(params));
    let next = next.map(|after| {
        let mut with_after = params.to_vec();
        with_after.push(("after", after.as_str()));
        format!("{path}{}", query(&with_after))
    });
    (csv, next)
}

/// The choices of a list's filter: `any` (the empty value) first, then each value in
/// `words`.
pub(crate) fn filter_choices(
    any: &str,
    values: Vec<String>,
    words: impl Fn(&str) -> String,
) -> Vec<(String, String)> {
    std::iter::once((String::new(), any.to_owned()))
        .chain(values.into_iter().map(|value| {
            let words = words(&value);
            (value, words)
        }))
        .collect()
}

/// The search form of an operator list: a plain GET of `path` (the same without
/// JavaScript) with the search box, the list's own choices (`children`), and the link to
/// its CSV export.
#[component]
pub(crate) fn ListSearch(
    path: &'static str,
    /// Its `data-form`, for tests.
    form: &'static str,
    q: String,
    placeholder: &'static str,
    csv: String,
    children: Children,
) -> impl IntoView {
    view! {
        <form
            method="get"
            action=path
            role="search"
            data-form=form
            class="mt-6 flex flex-wrap items-end gap-3 rounded-lg border border-slate-200 bg-white p-4"
        >
            <label class="block text-xs font-medium text-slate-600">
                "Search"
                <input
                    type="search"
                    name="q"
                    value=q
                    maxlength="200"
                    placeholder=placeholder
                    class="mt-1 block w-72 rounded-md border border-slate-300 px-2 py-1.5 text-sm"
                />
            </label>
            {children()}
            <button
                type="submit"
                class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-500"
            >
                "Search"
            </button>
            <a
                href=csv
                class="py-2 text-sm font-medium text-indigo-600 hover:underline"
                download=""
            >
                "Export CSV"
            </a>
        </form>
    }
}

/// Under an operator list: what an empty page says (`empty`), and the link to the next
/// page, if there is more.
#[component]
pub(crate) fn ListFooter(empty: Option<&'static str>, next: Option<String>) -> impl IntoView {
    view! {
        {empty
            .map(|words| {
                view! {
                    <p class="mt-3 text-sm text-slate-600" data-empty="">
                        {words}
                    </p>
                }
            })}
        {next
            .map(|href| {
                view! {
                    <a
                        href=href
                        rel="next"
                        class="mt-4 inline-block text-sm font-medium text-indigo-600 hover:underline"
                    >
                        "Next page"
                    </a>
                }
            })}
    }
}

/// The order choice of an operator list: `sorts` as its server function offers them,
/// `selected` the page's `sort` (empty: newest first, every list's default).
#[component]
pub(crate) fn SortChoice(selected: String, sorts: Vec<(String, String)>) -> impl IntoView {
    // As the server reads it: trimmed, empty is newest first.
    let selected = match selected.trim() {
        "" => "newest".to_owned(),
        chosen => chosen.to_owned(),
    };
    view! { <Choice label="Sort" name="sort" selected choices=sorts /> }
}

/// A labelled `<select>` of `(value, words)` choices, `selected` chosen.
#[component]
pub(crate) fn Choice(
    label: &'static str,
    name: &'static str,
    selected: String,
    choices: Vec<(String, String)>,
) -> impl IntoView {
    view! {
        <label class="block text-xs font-medium text-slate-600">
            {label}
            <select
                name=name
                class="mt-1 block rounded-md border border-slate-300 px-2 py-1.5 text-sm"
            >
                {choices
                    .into_iter()
                    .map(|(value, words)| {
                        let chosen = value == selected;
                        view! {
                            <option value=value selected=chosen>
                                {words}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

/// The operator pages' breadcrumb: the overview, then `trail` (each a link, or the page
/// itself last).
#[component]
pub(crate) fn Crumbs(trail: Vec<(&'static str, String)>) -> impl IntoView {
    view! {
        <nav class="text-sm text-slate-600" aria-label="Operator">
            <a href="/admin" class="text-indigo-700 underline">
                "Overview"
            </a>
            {trail
                .into_iter()
                .map(|(href, words)| {
                    view! {
                        " / "
                        {if href.is_empty() {
                            view! { <span>{words}</span> }.into_any()
                        } else {
                            view! {
                                <a href=href class="text-indigo-700 underline">
                                    {words}
                                </a>
                            }
                                .into_any()
                        }}
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// What an operator's action form holds: the hidden id of what it acts on (`name`,
/// `value`), the required reason (for the customer's eyes unless `private`), and the button.
#[component]
pub(crate) fn Reason(
    name: &'static str,
    value: String,
    button: &'static str,
    #[prop(optional)] private: bool,
) -> impl IntoView {
    let label = if private {
        "Reason (kept in the audit log)"
    } else {
        "Reason (the customer reads it)"
    };
    // Emptied after each action that succeeded (`follow`).
    view! {
        <div class="flex items-end gap-2">
            <input type="hidden" name=name value=value />
            <label class="block text-xs font-medium text-slate-600">
                {label}
                <input
                    type="text"
                    name="reason"
                    required=""
                    minlength="3"
                    maxlength="500"
                    class="mt-1 block w-64 rounded-md border border-slate-300 px-2 py-1.5 text-sm"
                />
            </label>
            <button
                type="submit"
                class="whitespace-nowrap rounded-md bg-slate-800 px-3 py-1.5 text-sm font-semibold text-white hover:bg-slate-700"
            >
                {button}
            </button>
        </div>
    }
}
