//! `/dashboard/usage` and the usage panel of a site's page: daily charts of the last 30
//! days, drawn as SVG on the server (no chart library, works without JavaScript), and this
//! month's usage against the plan's limits.

use leptos::prelude::*;
use leptos_meta::Title;

use super::dashboard::Panel;
use super::forms::FormError;
use crate::error::AppError;
use crate::usage::{Chart, LimitBar, SiteLimits, UsageView, usage_report};

#[component]
pub fn UsagePage() -> impl IntoView {
    let report = Resource::new(|| (), |_| usage_report(None));
    view! {
        <Title text="Usage" />
        <h1 class="text-2xl font-bold tracking-tight">"Usage"</h1>
        <Suspense fallback=|| {
            view! { <p class="mt-4 text-slate-500">"Loading usage…"</p> }
        }>
            {move || Suspend::new(async move {
                match report.await {
                    Ok(usage) => view! { <Usage usage per_site=true /> }.into_any(),
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

/// The usage panel of one site's page (its resource is made by the page, outside any
/// suspense, so that hydration finds it).
#[component]
pub fn SiteUsage(report: Resource<Result<UsageView, AppError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                report.await.ok().map(|usage| view! { <Usage usage per_site=false /> })
            })}
        </Suspense>
    }
}

/// This month against the limits, and the last 30 days' charts. `per_site`: a bar group
/// per site, named; `operator`: names without links (the links go to the customer's
/// dashboard, which is not the operator's).
#[component]
pub(crate) fn Usage(
    usage: UsageView,
    per_site: bool,
    #[prop(optional)] operator: bool,
) -> impl IntoView {
    let heading = format!("{} on the {} plan", usage.month, usage.plan_name);
    let note = if per_site {
        "Each site's usage against its plan's limits. Bars turn amber at 80% and red at 100%."
    } else {
        "This site's usage against its plan's limits. Bars turn amber at 80% and red at 100%."
    };
    view! {
        <Panel title="This month" note=note>
            <p class="text-sm text-slate-600" data-usage-month="">
                {heading}
            </p>
            {usage
                .sites
                .is_empty()
                .then(|| view! { <p class="mt-2 text-sm text-slate-500">"No sites yet."</p> })}
            <div class="mt-4 space-y-6">
                {usage
                    .sites
                    .into_iter()
                    .map(|site| view! { <SiteBars site show_name=per_site link=!operator /> })
                    .collect_view()}
            </div>
        </Panel>
        <Panel
            title="Last 30 days"
            note="Requests and bandwidth count every request through Slipway's proxy; storage is the site's database plus its files, measured every few minutes."
        >
            <div class="grid gap-6 lg:grid-cols-3">
                {usage.charts.into_iter().map(|chart| view! { <BarChart chart /> }).collect_view()}
            </div>
        </Panel>
    }
}

#[component]
fn SiteBars(site: SiteLimits, show_name: bool, link: bool) -> impl IntoView {
    view! {
        <div data-site-usage=site
            .slug
            .clone()>
            {(show_name && link)
                .then(|| {
                    view! {
                        <a
                            href=format!("/dashboard/sites/{}", site.id)
                            class="font-mono text-sm font-semibold text-indigo-700 hover:underline"
                        >
                            {site.slug.clone()}
                        </a>
                    }
                })}
            {(show_name && !link)
                .then(|| {
                    view! {
                        <span class="font-mono text-sm font-semibold">{site.slug.clone()}</span>
                    }
                })}
            <div class="mt-2 grid gap-3 sm:grid-cols-3">
                {site.bars.into_iter().map(|bar| view! { <Bar bar /> }).collect_view()}
            </div>
        </div>
    }
}

#[component]
pub(crate) fn Bar(bar: LimitBar) -> impl IntoView {
    let (fill, note) = match bar.level.as_str() {
        "exceeded" => ("bg-red-600", Some(("text-red-700", "Limit reached"))),
        "warning" => ("bg-amber-500", Some(("text-amber-700", "Over 80%"))),
        _ => ("bg-indigo-600", None),
    };
    view! {
        <div data-limit=bar.label.to_lowercase() data-level=bar.level.clone()>
            <div class="flex items-baseline justify-between gap-2 text-sm">
                <span class="font-medium">{bar.label.clone()}</span>
                <span class="tabular-nums text-slate-600">{bar.text.clone()}</span>
            </div>
            <div
                class="mt-1 h-2 w-full overflow-hidden rounded-full bg-slate-100"
                role="progressbar"
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=bar.percent
                aria-label=bar.label.clone()
            >
                <div
                    class=format!("h-2 rounded-full {fill}")
                    style=format!("width: {}%", bar.percent)
                ></div>
            </div>
            {note
                .map(|(class, text)| {
                    view! { <p class=format!("mt-1 text-xs font-medium {class}")>{text}</p> }
                })}
        </div>
    }
}

/// Chart geometry, in SVG user units.
const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 120.0;
const GAP: f64 = 2.0;

/// Height of a bar for `value` when the tallest is `max`: at least a sliver for anything
/// above zero, so a small day is not mistaken for none.
pub fn bar_height(value: u64, max: u64) -> f64 {
    if value == 0 || max == 0 {
        0.0
    } else {
        (value as f64 / max as f64 * HEIGHT).max(1.5)
    }
}

#[component]
fn BarChart(chart: Chart) -> impl IntoView {
    let max = chart.points.iter().map(|p| p.value).max().unwrap_or(0);
    let slot = WIDTH / chart.points.len().max(1) as f64;
    let first = chart
        .points
        .first()
        .map(|p| p.day.clone())
        .unwrap_or_default();
    let last = chart
        .points
        .last()
        .map(|p| p.day.clone())
        .unwrap_or_default();
    let description = format!(
        "{}: {}, daily from {first} to {last}",
        chart.title, chart.summary
    );
    let bars = chart
        .points
        .iter()
        .enumerate()
        .map(|(i, point)| {
            let height = bar_height(point.value, max);
            view! {
                <rect
                    x=format!("{:.2}", i as f64 * slot + GAP / 2.0)
                    y=format!("{:.2}", HEIGHT - height)
                    width=format!("{:.2}", (slot - GAP).max(1.0))
                    height=format!("{height:.2}")
                    rx="1"
                    class="fill-indigo-500"
                    data-day=point.day.clone()
                    data-value=point.value
                >
                    <title>{format!("{}: {}", point.day, point.label)}</title>
                </rect>
            }
        })
        .collect_view();
    view! {
        <figure data-chart=chart.title.to_lowercase()>
            <figcaption class="flex items-baseline justify-between gap-2">
                <span class="font-medium">{chart.title.clone()}</span>
                <span class="text-sm text-slate-600">{chart.summary.clone()}</span>
            </figcaption>
            <div class="mt-2 flex gap-2">
                <div class="flex h-32 flex-col justify-between whitespace-nowrap text-right text-xs tabular-nums text-slate-500">
                    <span>{chart.max_label.clone()}</span>
                    <span>"0"</span>
                </div>
                <svg
                    viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                    preserveAspectRatio="none"
                    class="h-32 w-full rounded bg-slate-50"
                    role="img"
                    aria-label=description
                >
                    <line
                        x1="0"
                        y1=HEIGHT
                        x2=WIDTH
                        y2=HEIGHT
                        class="stroke-slate-300"
                        stroke-width="1"
                    />
                    {bars}
                </svg>
            </div>
            <div class="mt-1 flex justify-between pl-10 text-xs text-slate-500">
                <span>{first}</span>
                <span>{last}</span>
            </div>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_tallest_and_small_days_stay_visible() {
        assert_eq!(bar_height(0, 100), 0.0);
        assert_eq!(bar_height(100, 100), HEIGHT);
        assert_eq!(bar_height(50, 100), HEIGHT / 2.0);
        assert_eq!(bar_height(1, 1_000_000), 1.5);
        assert_eq!(bar_height(0, 0), 0.0);
    }
}
