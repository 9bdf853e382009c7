//! The process's Prometheus metrics: counters and histograms kept in memory, rendered in
//! the text exposition format (0.0.4) by [`render`], plus gauges read from Postgres at
//! scrape time.
//!
//! Control-plane series only, with small fixed label sets: no per-site label (a thousand
//! sites would be a thousand series per metric); per-site figures live in Slipway's own
//! usage store and pages.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A counter with labels.
pub struct Counter {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Counter {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn add(&self, labels: &[&str], by: u64) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        *values
            .entry(labels.iter().map(|l| (*l).to_owned()).collect())
            .or_insert(0) += by;
    }

    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        for (labels, value) in values.iter() {
            let _ = writeln!(
                out,
                "{}{} {value}",
                self.name,
                label_set(self.labels, labels, None)
            );
        }
    }
}

/// One series of a histogram: count per bucket (not cumulative), sum, count.
type Observed = (Vec<u64>, f64, u64);

/// A histogram of durations (seconds) with labels.
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
    values: Mutex<BTreeMap<Vec<String>, Observed>>,
}

impl Histogram {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        Self {
            name,
            help,
            labels,
            buckets,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn observe(&self, labels: &[&str], value: Duration) {
        let seconds = value.as_secs_f64();
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let (counts, sum, count) = values
            .entry(labels.iter().map(|l| (*l).to_owned()).collect())
            .or_insert_with(|| (vec![0; self.buckets.len()], 0.0, 0));
        for (bound, n) in self.buckets.iter().zip(counts.iter_mut()) {
            if seconds <= *bound {
                *n += 1;
            }
        }
        *sum += seconds;
        *count += 1;
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        for (labels, (counts, sum, count)) in values.iter() {
            for (bound, n) in self.buckets.iter().zip(counts) {
                let le = format!("{bound}");
                let _ = writeln!(
                    out,
                    "{}_bucket{} {n}",
                    self.name,
                    label_set(self.labels, labels, Some(&le))
                );
            }
            let _ = writeln!(
                out,
                "{}_bucket{} {count}",
                self.name,
                label_set(self.labels, labels, Some("+Inf"))
            );
            let plain = label_set(self.labels, labels, None);
            let _ = writeln!(out, "{}_sum{plain} {sum}", self.name);
            let _ = writeln!(out, "{}_count{plain} {count}", self.name);
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one gauge with one label: a `label="value"` series per row.
pub fn write_gauge<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    rows: impl IntoIterator<Item = (&'a str, i64)>,
) {
    header(out, name, help, "gauge");
    for (value, count) in rows {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
    }
}

/// `{a="x",b="y"}` (with `le` last for buckets), or nothing without labels.
fn label_set(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

const FAST: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SLOW: &[f64] = &[0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

pub static HTTP_REQUESTS: Counter = Counter::new(
    "slipway_http_requests_total",
    "Dashboard, API and webhook requests answered, by route and status code.",
    &["route", "status"],
);
pub static HTTP_DURATION: Histogram = Histogram::new(
    "slipway_http_request_duration_seconds",
    "Time to answer dashboard, API and webhook requests, by route.",
    &["route"],
    FAST,
);
pub static PROVISIONING: Histogram = Histogram::new(
    "slipway_provisioning_duration_seconds",
    "From a deployment's creation to its end, by reason (create, restart, ...) and outcome.",
    &["reason", "outcome"],
    SLOW,
);
pub static RECONCILER_STEPS: Histogram = Histogram::new(
    "slipway_reconciler_step_duration_seconds",
    "Duration of each reconciler step, by step and outcome.",
    &["step", "outcome"],
    SLOW,
);
pub static MONITOR_CHECKS: Counter = Counter::new(
    "slipway_monitor_checks_total",
    "Health checks made by the monitor, by source (probe, event) and result (up, degraded, down).",
    &["source", "result"],
);
pub static MONITOR_RESTARTS: Counter = Counter::new(
    "slipway_monitor_restarts_total",
    "Sites the monitor brought back, by action (restarted, started, recreate).",
    &["action"],
);

/// The tenant proxy's totals (atomics: counted on every visitor's request).
pub struct ProxyTotals {
    /// By status class: 1xx..5xx.
    pub responses: [AtomicU64; 5],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Per [`FAST`] bucket (not cumulative), plus the overflow.
    latency: [AtomicU64; 12],
    latency_micros: AtomicU64,
}

pub static PROXY: ProxyTotals = ProxyTotals {
    responses: [const { AtomicU64::new(0) }; 5],
    bytes_in: AtomicU64::new(0),
    bytes_out: AtomicU64::new(0),
    latency: [const { AtomicU64::new(0) }; 12],
    latency_micros: AtomicU64::new(0),
};

impl ProxyTotals {
    pub fn record(&self, status: u16, bytes_in: u64, bytes_out: u64, latency: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        let bucket = FAST
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(FAST.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String) {
        header(
            out,
            "slipway_proxy_responses_total",
            "Responses the tenant proxy gave visitors, by status class.",
            "counter",
        );
        for (i, n) in self.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "slipway_proxy_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                n.load(Ordering::Relaxed)
            );
        }
        header(
            out,
            "slipway_proxy_bytes_total",
            "Bytes through the tenant proxy, by direction (in: from visitors).",
            "counter",
        );
        for (direction, n) in [("in", &self.bytes_in), ("out", &self.bytes_out)] {
            let _ = writeln!(
                out,
                "slipway_proxy_bytes_total{{direction=\"{direction}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        header(
            out,
            "slipway_proxy_request_duration_seconds",
            "Time from a visitor's request to the response's headers, through the proxy.",
            "histogram",
        );
        let mut cumulative = 0;
        for (bound, n) in FAST.iter().zip(&self.latency) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "slipway_proxy_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.latency[FAST.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "slipway_proxy_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "slipway_proxy_request_duration_seconds_sum {}",
            self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "slipway_proxy_request_duration_seconds_count {cumulative}"
        );
    }
}

/// The text exposition format: the in-memory series, then gauges read from Postgres now.
/// (The server's `/metrics` adds open incidents by kind, from `incidents::open_counts`.)
pub async fn render(db: &sqlx::PgPool) -> crate::kernel::Result<String> {
    let mut out = String::new();
    HTTP_REQUESTS.render(&mut out);
    HTTP_DURATION.render(&mut out);
    PROVISIONING.render(&mut out);
    RECONCILER_STEPS.render(&mut out);
    MONITOR_CHECKS.render(&mut out);
    MONITOR_RESTARTS.render(&mut out);
    PROXY.render(&mut out);
    let gauge = |out: &mut String, name: &str, help: &str| header(out, name, help, "gauge");

    let sites = sqlx::query!(
        r#"SELECT status, count(*) AS "count!" FROM sites GROUP BY status ORDER BY status"#
    )
    .fetch_all(db)
    .await?;
    write_gauge(
        &mut out,
        "slipway_sites",
        "Sites by status.",
        "status",
        sites.iter().map(|row| (row.status.as_str(), row.count)),
    );
    let health = sqlx::query!(
        r#"SELECT state, count(*) AS "count!" FROM site_health h JOIN sites s ON s.id = h.site_id
            WHERE s.status = 'active' GROUP BY state ORDER BY state"#
    )
    .fetch_all(db)
    .await?;
    write_gauge(
        &mut out,
        "slipway_sites_health",
        "Active sites by the monitor's verdict.",
        "state",
        health.iter().map(|row| (row.state.as_str(), row.count)),
    );
    let due: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM sites
            WHERE status <> 'deleted' AND (observed_generation < generation
                  OR (desired_state = 'running' AND status <> 'active')
                  OR (desired_state = 'stopped' AND status <> 'stopped')
                  OR desired_state = 'deleted')"#
    )
    .fetch_one(db)
    .await?;
    gauge(
        &mut out,
        "slipway_reconciler_queue_depth",
        "Sites not yet in their desired state.",
    );
    let _ = writeln!(out, "slipway_reconciler_queue_depth {due}");
    let jobs = sqlx::query!(
        r#"SELECT state, count(*) AS "count!" FROM jobs
            WHERE state IN ('queued', 'running', 'dead') GROUP BY state ORDER BY state"#
    )
    .fetch_all(db)
    .await?;
    gauge(
        &mut out,
        "slipway_jobs",
        "Jobs queued, running and dead (dead: gave up; retry them).",
    );
    for state in ["queued", "running", "dead"] {
        let count = jobs
            .iter()
            .find(|j| j.state == state)
            .map_or(0, |j| j.count);
        let _ = writeln!(out, "slipway_jobs{{state=\"{state}\"}} {count}");
    }
    let lag: Option<f64> = sqlx::query_scalar!(
        "SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM jobs
          WHERE kind = 'stripe_event' AND state IN ('queued', 'running')"
    )
    .fetch_one(db)
    .await?;
    gauge(
        &mut out,
        "slipway_webhook_lag_seconds",
        "Age of the oldest Stripe webhook event not yet handled (0 when none waits).",
    );
    let _ = writeln!(out, "slipway_webhook_lag_seconds {}", lag.unwrap_or(0.0));
    gauge(
        &mut out,
        "slipway_db_pool_connections",
        "Connections of this process's database pool.",
    );
    let idle = db.num_idle();
    let size = db.size() as usize;
    let _ = writeln!(out, "slipway_db_pool_connections{{state=\"idle\"}} {idle}");
    let _ = writeln!(
        out,
        "slipway_db_pool_connections{{state=\"in_use\"}} {}",
        size.saturating_sub(idle)
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        static H: Histogram = Histogram::new("t_seconds", "Test.", &["kind"], &[0.1, 1.0]);
        H.observe(&["a"], Duration::from_millis(50));
        H.observe(&["a"], Duration::from_millis(500));
        H.observe(&["a"], Duration::from_secs(5));
        let mut out = String::new();
        H.render(&mut out);
        assert!(
            out.contains("t_seconds_bucket{kind=\"a\",le=\"0.1\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{kind=\"a\",le=\"1\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{kind=\"a\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("t_seconds_count{kind=\"a\"} 3\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_set(&["a"], &["x\"y\\z".to_owned()], None),
            "{a=\"x\\\"y\\\\z\"}"
        );
    }
}
