//! Operations on the dashboard: the open-incident banner, a site's health panel (90-day
//! uptime bar, uptime figures, response times, restarts and incidents, resources), its
//! logs (live with JavaScript, the last lines without), the alert settings and the
//! operators' incident feed.

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::dashboard::Panel;
use super::forms::general_error;
use crate::error::AppError;
use crate::health::{HealthView, IncidentView, LogsView, SaveAlertChoices, alert_choices};

/// A red strip on every dashboard page while an incident is open.
#[component]
pub fn IncidentBanner(incidents: Resource<Result<Vec<IncidentView>, AppError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let open = incidents.await.unwrap_or_default();
                (!open.is_empty())
                    .then(|| {
                        view! {
                            <div
                                class="border-b border-red-200 bg-red-50 px-4 py-2 text-sm text-red-900 sm:px-8"
                                data-incident-banner=""
                            >
                                <ul class="space-y-1">
                                    {open
                                        .into_iter()
                                        .map(|i| {
                                            let href = i.href();
                                            view! {
                                                <li class="break-words">
                                                    <span class="font-semibold">{i.title.clone()}</span>
                                                    {i.site_name.clone().map(|name| format!(" — {name}"))}
                                                    {format!(": {} (since {}) ", i.summary, i.opened)}
                                                    <a href=href class="font-semibold underline">
                                                        "Details"
                                                    </a>
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            </div>
                        }
                    })
            })}
        </Suspense>
    }
}

fn state_words(state: &str) -> (&'static str, &'static str) {
    match state {
        "up" => ("Up", "bg-emerald-100 text-emerald-800"),
        "degraded" => ("Degraded", "bg-amber-100 text-amber-800"),
        "down" => ("Down: restarting", "bg-red-100 text-red-800"),
        "crash_looping" => ("Crash looping: not restarted", "bg-red-200 text-red-900"),
        _ => ("Not checked yet", "bg-slate-100 text-slate-700"),
    }
}

/// The colour of a day of the uptime bar, by its share of checks up.
fn day_class(up: Option<f64>) -> &'static str {
    match up {
        None => "fill-slate-200",
        Some(share) if share >= 0.999 => "fill-emerald-500",
        Some(share) if share >= 0.99 => "fill-lime-500",
        Some(share) if share >= 0.95 => "fill-amber-500",
        Some(_) => "fill-red-500",
    }
}

#[component]
pub fn SiteHealth(health: Resource<Result<HealthView, AppError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match health.await {
                    Ok(health) => view! { <HealthPanel health /> }.into_any(),
                    Err(error) => {
                        view! {
                            <p class="mt-4 text-sm text-red-700">
                                {format!("Health is not available: {error}")}
                            </p>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
pub(crate) fn HealthPanel(health: HealthView) -> impl IntoView {
    let (label, class) = state_words(&health.state);
    let cells = health.days.len().max(1);
    let width = 3.0 * cells as f64;
    let bar = health
        .days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let title = match day.up {
                Some(up) => format!(
                    "{}: {:.2}% of {} checks up",
                    day.day,
                    up * 100.0,
                    day.checks
                ),
                None => format!("{}: no checks", day.day),
            };
            view! {
                <rect
                    x=format!("{:.1}", i as f64 * 3.0)
                    y="0"
                    width="2.4"
                    height="20"
                    rx="0.6"
                    class=day_class(day.up)
                    data-day=day.day.clone()
                >
                    <title>{title}</title>
                </rect>
            }
        })
        .collect_view();
    let first_day = health
        .days
        .first()
        .map(|d| d.day.clone())
        .unwrap_or_default();
    view! {
        <Panel
            title="Health"
            note="Checked every few seconds by Slipway's monitor, which restarts the site when it stops answering."
        >
            <div class="flex flex-wrap items-center gap-3" data-health=health.state.clone()>
                <span class=format!(
                    "rounded-full px-2.5 py-0.5 text-sm font-medium {class}",
                )>{label}</span>
                {health
                    .since
                    .clone()
                    .map(|since| {
                        view! {
                            <span class="text-sm text-slate-500">{format!("since {since}")}</span>
                        }
                    })}
            </div>
            {health
                .reason
                .clone()
                .map(|reason| {
                    view! {
                        <p class="mt-2 text-sm text-red-800" data-health-reason="">
                            {reason}
                        </p>
                    }
                })}
            <figure class="mt-4" data-uptime-bar="">
                <figcaption class="text-sm font-medium">"Uptime, last 90 days"</figcaption>
                <svg
                    viewBox=format!("0 0 {width} 20")
                    preserveAspectRatio="none"
                    class="mt-2 h-8 w-full"
                    role="img"
                    aria-label="One bar per day: green when every check was up"
                >
                    {bar}
                </svg>
                <div class="flex justify-between text-xs text-slate-500">
                    <span>{first_day}</span>
                    <span>"today"</span>
                </div>
            </figure>
            <dl class="mt-4 grid grid-cols-3 gap-2 text-sm" data-uptime="">
                {["24 hours", "7 days", "30 days"]
                    .into_iter()
                    .zip(health.uptime.clone())
                    .map(|(period, value)| {
                        view! {
                            <div>
                                <dt class="text-slate-500">{period}</dt>
                                <dd class="font-medium tabular-nums">{value}</dd>
                            </div>
                        }
                    })
                    .collect_view()}
            </dl>
            <LatencyChart points=health.latency.clone() />
            {(!health.resources.is_empty())
                .then(|| {
                    view! {
                        <dl class="mt-4 space-y-2 text-sm" data-resources="">
                            {health
                                .resources
                                .iter()
                                .map(|(what, words, share)| {
                                    view! {
                                        <div>
                                            <dt class="flex justify-between">
                                                <span class="text-slate-500">{what.clone()}</span>
                                                <span>{words.clone()}</span>
                                            </dt>
                                            <dd class="mt-1 h-2 rounded bg-slate-100">
                                                <div
                                                    class="h-2 rounded bg-indigo-500"
                                                    style=format!("width: {:.1}%", share * 100.0)
                                                ></div>
                                            </dd>
                                        </div>
                                    }
                                })
                                .collect_view()}
                        </dl>
                    }
                })}
            <h3 class="mt-6 text-sm font-semibold">"Incidents and restarts"</h3>
            <ol class="mt-2 space-y-3 text-sm" data-incidents="">
                {health
                    .incidents
                    .iter()
                    .map(|i| {
                        view! {
                            <li
                                class="rounded-lg border border-slate-200 p-3"
                                data-incident=i.kind.clone()
                            >
                                <p class="font-medium">
                                    {i.title.clone()}
                                    <span class="ml-2 text-xs text-slate-500">
                                        {match &i.resolved {
                                            Some(resolved) => format!("{} → {}", i.opened, resolved),
                                            None => format!("open since {}", i.opened),
                                        }}
                                    </span>
                                </p>
                                <ul class="mt-1 space-y-0.5 text-xs text-slate-600">
                                    {i
                                        .timeline
                                        .iter()
                                        .map(|(at, message)| {
                                            view! {
                                                <li class="break-words">
                                                    <span class="font-mono text-slate-600">{at.clone()}</span>
                                                    " "
                                                    {message.clone()}
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            </li>
                        }
                    })
                    .collect_view()}
                {health
                    .restarts
                    .iter()
                    .map(|(at, what)| {
                        view! {
                            <li class="text-xs text-slate-600" data-restart="">
                                <span class="font-mono text-slate-600">{at.clone()}</span>
                                " "
                                {what.clone()}
                            </li>
                        }
                    })
                    .collect_view()}
                {(health.incidents.is_empty() && health.restarts.is_empty())
                    .then(|| view! { <li class="text-slate-500">"Nothing has gone wrong."</li> })}
            </ol>
        </Panel>
    }
}

/// (hour label, p50 ms, p95 ms).
type HourLatency = (String, Option<u32>, Option<u32>);

/// p50 and p95 response times per hour of the last 24, as two lines.
#[component]
fn LatencyChart(points: Vec<HourLatency>) -> impl IntoView {
    const W: f64 = 240.0;
    const H: f64 = 60.0;
    let max = points
        .iter()
        .filter_map(|(_, _, p95)| *p95)
        .max()
        .unwrap_or(0)
        .max(10);
    let step = W / (points.len().max(2) - 1) as f64;
    let line = |pick: fn(&HourLatency) -> Option<u32>| {
        points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                pick(p).map(|ms| {
                    format!(
                        "{:.1},{:.1}",
                        i as f64 * step,
                        H - f64::from(ms) / f64::from(max) * H
                    )
                })
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let p50 = line(|p| p.1);
    let p95 = line(|p| p.2);
    let first = points.first().map(|p| p.0.clone()).unwrap_or_default();
    let last_p50 = points.iter().rev().find_map(|p| p.1);
    let last_p95 = points.iter().rev().find_map(|p| p.2);
    let summary = match (last_p50, last_p95) {
        (Some(a), Some(b)) => format!("now: p50 ≤ {a} ms, p95 ≤ {b} ms"),
        _ => "no probes yet".to_owned(),
    };
    view! {
        <figure class="mt-4" data-latency="">
            <figcaption class="flex flex-wrap justify-between gap-2 text-sm">
                <span class="font-medium">"Response time, last 24 hours"</span>
                <span class="text-slate-600">{summary}</span>
            </figcaption>
            <div class="mt-2 flex gap-2">
                <div class="flex h-24 flex-col justify-between text-right text-xs tabular-nums text-slate-500">
                    <span>{format!("{max} ms")}</span>
                    <span>"0"</span>
                </div>
                <svg
                    viewBox=format!("0 0 {W} {H}")
                    preserveAspectRatio="none"
                    class="h-24 w-full rounded bg-slate-50"
                    role="img"
                    aria-label="Median and 95th percentile response time per hour"
                >
                    <polyline
                        points=p95
                        fill="none"
                        class="stroke-amber-500"
                        stroke-width="1.5"
                        vector-effect="non-scaling-stroke"
                    />
                    <polyline
                        points=p50
                        fill="none"
                        class="stroke-indigo-600"
                        stroke-width="1.5"
                        vector-effect="non-scaling-stroke"
                    />
                </svg>
            </div>
            <div class="mt-1 flex justify-between pl-10 text-xs text-slate-500">
                <span>{first}</span>
                <span class="flex gap-3">
                    <span class="text-indigo-700">"— p50"</span>
                    <span class="text-amber-700">"— p95"</span>
                </span>
            </div>
        </figure>
    }
}

/// The site's log: the last lines (filtered) rendered by the server, then, with
/// JavaScript, the live stream's: its last lines (which replace the server's, so a page
/// opened before the container started misses none) and every new line as the container
/// writes it.
#[component]
pub fn SiteLogs(site_id: String, logs: Resource<Result<LogsView, AppError>>) -> impl IntoView {
    let (live, set_live) = signal(Vec::<String>::new());
    let (replaced, set_replaced) = signal(false);
    follow_logs(site_id.clone(), set_live, set_replaced);
    let download = format!("/api/sites/{site_id}/logs.txt");
    view! {
        <Panel title="Logs" note="What the application writes: the last 200 lines, then live.">
            <Suspense fallback=|| ()>
                {move || {
                    let download = download.clone();
                    Suspend::new(async move {
                        match logs.await {
                            Ok(LogsView { lines: None, .. }) => {
                                view! {
                                    <p class="text-sm text-slate-600" data-logs-refused="">
                                        "Logs are for owners, admins and editors."
                                    </p>
                                }
                                    .into_any()
                            }
                            Ok(LogsView { lines: Some(lines), filter }) => {
                                let needle = filter.to_lowercase();
                                view! {
                                    <form method="get" class="mb-2 flex flex-wrap gap-2">
                                        <input
                                            type="search"
                                            name="filter"
                                            value=filter.clone()
                                            placeholder="Show lines containing…"
                                            aria-label="Filter the log"
                                            class="min-w-0 flex-1 rounded-md border border-slate-300 px-2 py-1 text-sm"
                                        />
                                        <button
                                            type="submit"
                                            class="rounded-md border border-slate-300 px-3 py-1 text-sm"
                                        >
                                            "Filter"
                                        </button>
                                        <a
                                            href=download
                                            download=""
                                            class="rounded-md border border-slate-300 px-3 py-1 text-sm"
                                            rel="external"
                                        >
                                            "Download"
                                        </a>
                                    </form>
                                    <pre
                                        class="max-h-80 overflow-auto whitespace-pre-wrap break-all rounded-lg bg-slate-900 p-3 text-xs text-slate-100"
                                        data-logs=""
                                    >
                                        {
                                            let rendered = if lines.is_empty() {
                                                "(no output yet)".to_owned()
                                            } else {
                                                lines.join("\n")
                                            };
                                            move || (!replaced.get()).then(|| rendered.clone())
                                        }
                                        {move || {
                                            let shown = live
                                                .get()
                                                .into_iter()
                                                .filter(|l| {
                                                    needle.is_empty() || l.to_lowercase().contains(&needle)
                                                });
                                            if replaced.get() {
                                                shown.collect::<Vec<_>>().join("\n")
                                            } else {
                                                shown.map(|l| format!("\n{l}")).collect::<String>()
                                            }
                                        }}
                                    </pre>
                                }
                                    .into_any()
                            }
                            Err(error) => {
                                view! { <p class="text-sm text-red-700">{error.to_string()}</p> }
                                    .into_any()
                            }
                        }
                    })
                }}
            </Suspense>
        </Panel>
    }
}

/// In the browser: an `EventSource` on the site's log stream; each message is a line. A
/// `reset` event starts the stream's lines anew (at each connection, before its last
/// lines): they replace what the page shows.
#[cfg(feature = "hydrate")]
fn follow_logs(site_id: String, lines: WriteSignal<Vec<String>>, replaced: WriteSignal<bool>) {
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    Effect::new(move |_| {
        let Ok(source) = web_sys::EventSource::new(&format!("/api/sites/{site_id}/logs")) else {
            return;
        };
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if let Some(line) = event.data().as_string() {
                    lines.update(|all| {
                        all.push(line);
                        // The page keeps the newest lines only.
                        if all.len() > 1_000 {
                            all.drain(..all.len() - 1_000);
                        }
                    });
                }
            },
        );
        let on_reset = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            lines.set(Vec::new());
            replaced.set(true);
        });
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let _ = source.add_event_listener_with_callback("reset", on_reset.as_ref().unchecked_ref());
        let live = SendWrapper::new((source, on_message, on_reset));
        on_cleanup(move || live.0.close());
    });
}

#[cfg(not(feature = "hydrate"))]
fn follow_logs(_site_id: String, _lines: WriteSignal<Vec<String>>, _replaced: WriteSignal<bool>) {}

/// The member's choice of alert mails (settings page).
#[component]
pub fn AlertSettings() -> impl IntoView {
    let save = ServerAction::<SaveAlertChoices>::new();
    let choices = Resource::new(move || save.version().get(), |_| alert_choices());
    view! {
        <Panel title="Alerts" note="Which mails you get about this organization's sites.">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let choices = choices.await.unwrap_or_default();
                    view! {
                        <ActionForm action=save attr:data-alerts="">
                            <fieldset class="space-y-2 text-sm">
                                <legend class="sr-only">"Alert mails"</legend>
                                {choices
                                    .into_iter()
                                    .map(|choice| {
                                        view! {
                                            <label class="flex items-start gap-2">
                                                <input
                                                    type="checkbox"
                                                    name="enabled[]"
                                                    value=choice.kind.clone()
                                                    checked=choice.enabled
                                                    class="mt-1"
                                                />
                                                <span>{choice.label.clone()}</span>
                                            </label>
                                        }
                                    })
                                    .collect_view()}
                            </fieldset>
                            <button
                                type="submit"
                                class="mt-3 rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-semibold text-white"
                            >
                                "Save alerts"
                            </button>
                            {move || {
                                matches!(save.value().get(), Some(Ok(())))
                                    .then_some(
                                        view! {
                                            <span class="ml-3 text-sm" data-saved="">
                                                "Saved."
                                            </span>
                                        },
                                    )
                            }}
                        </ActionForm>
                    }
                })}
            </Suspense>
            <super::forms::FormError error=general_error(save.value()) />
        </Panel>
    }
}

/// Every incident of every organization, newest first (operators).
#[component]
pub fn IncidentFeed(feed: Resource<Result<Vec<IncidentView>, AppError>>) -> impl IntoView {
    view! {
        <section class="mt-8" data-incident-feed="">
            <h2 class="text-xl font-semibold">"Incidents"</h2>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let incidents = feed.await.unwrap_or_default();
                    view! { <IncidentList incidents /> }
                })}
            </Suspense>
        </section>
    }
}

/// Incidents, newest first, each with its organization and site.
#[component]
pub(crate) fn IncidentList(incidents: Vec<IncidentView>) -> impl IntoView {
    if incidents.is_empty() {
        return view! { <p class="mt-2 text-slate-600">"No incidents."</p> }.into_any();
    }
    let list = view! {
        <ul class="mt-3 divide-y divide-slate-200 rounded-lg border border-slate-200 bg-white">
            {incidents
                .into_iter()
                .map(|i| {
                    view! {
                        <li class="p-3 text-sm" data-incident=i.kind.clone()>
                            <p>
                                <span class=if i.resolved.is_none() {
                                    "font-semibold text-red-700"
                                } else {
                                    "font-semibold"
                                }>{i.title.clone()}</span>
                                {match &i.site_name {
                                    Some(site) => format!(" — {} / {site}", i.organization),
                                    None => format!(" — {}", i.organization),
                                }}
                            </p>
                            <p class="break-words text-slate-600">{i.summary.clone()}</p>
                            <p class="text-xs text-slate-500">
                                {match &i.resolved {
                                    Some(r) => format!("{} → {}", i.opened, r),
                                    None => format!("open since {}", i.opened),
                                }}
                            </p>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    };
    list.into_any()
}
