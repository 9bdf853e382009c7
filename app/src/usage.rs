//! Server function for `/dashboard/usage` and the site page's usage panel: the last 30
//! days as chart series and this month against the plan's limits, ready to draw.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Days the charts cover.
pub const DAYS: u32 = 30;

/// One bar of a daily chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// `2026-11-22`
    pub day: String,
    pub value: u64,
    /// The value as people read it (`1.2 MB`, `1,234`).
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chart {
    pub title: String,
    /// What the whole period adds up to (or the latest value, for storage).
    pub summary: String,
    pub points: Vec<Point>,
    /// The largest value, as people read it: the top of the y axis.
    pub max_label: String,
}

/// One limit's bar: how much of it this month has used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitBar {
    pub label: String,
    /// `1.2 GB of 250 GB`
    pub text: String,
    /// 0-100 (what the bar fills).
    pub percent: u32,
    /// `fine`, `warning` (80% or more) or `exceeded` (100% or more).
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteLimits {
    pub id: String,
    pub slug: String,
    pub bars: Vec<LimitBar>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageView {
    pub plan_name: String,
    /// `November 2026`
    pub month: String,
    pub charts: Vec<Chart>,
    pub sites: Vec<SiteLimits>,
}

#[cfg(feature = "ssr")]
fn chart(
    title: &str,
    days: &[platform::traffic::usage::Day],
    value: impl Fn(&platform::traffic::usage::Day) -> Option<u64>,
    format: fn(u64) -> String,
    summary: String,
) -> Chart {
    let points: Vec<Point> = days
        .iter()
        .map(|d| {
            let v = value(d).unwrap_or(0);
            Point {
                day: d.day.to_string(),
                value: v,
                label: value(d).map_or_else(|| "not measured".to_owned(), format),
            }
        })
        .collect();
    let max = points.iter().map(|p| p.value).max().unwrap_or(0);
    Chart {
        title: title.to_owned(),
        summary,
        points,
        max_label: format(max),
    }
}

#[cfg(feature = "ssr")]
pub(crate) fn bar(label: &str, used: u64, limit: u64, format: fn(u64) -> String) -> LimitBar {
    use platform::traffic::usage::{Level, level};
    let percent = if limit == 0 {
        100
    } else {
        u32::try_from((u128::from(used) * 100 / u128::from(limit)).min(100)).unwrap_or(100)
    };
    LimitBar {
        label: label.to_owned(),
        text: format!("{} of {}", format(used), format(limit)),
        percent,
        level: match level(used, limit) {
            Level::Fine => "fine",
            Level::Warning => "warning",
            Level::Exceeded => "exceeded",
        }
        .to_owned(),
    }
}

/// The organization's usage, or one site's when `site` is given.
#[server(endpoint = "usage/report")]
pub async fn usage_report(site: Option<String>) -> Result<UsageView, AppError> {
    let state = crate::state::app_state()?;
    let (_, me) = crate::session::require_membership(&state).await?;
    let site_id = match site.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(raw.parse().map_err(|_| AppError::NotFound)?),
        None => None,
    };
    let report = platform::traffic::usage::report(&state.platform, &me, site_id, DAYS).await?;
    Ok(usage_view(report))
}

/// One site's month against the plan's limits.
#[cfg(feature = "ssr")]
pub(crate) fn site_limits(
    limits: &platform::catalog::plans::Limits,
    s: &platform::traffic::usage::SiteMonth,
) -> SiteLimits {
    use crate::format::{bytes, count};
    SiteLimits {
        id: s.site_id.to_string(),
        slug: s.slug.clone(),
        bars: vec![
            bar("Requests", s.requests, limits.monthly_requests, count),
            bar(
                "Bandwidth",
                s.bandwidth_bytes,
                u64::from(limits.bandwidth_gb) << 30,
                bytes,
            ),
            bar(
                "Storage",
                s.storage_bytes,
                u64::from(limits.storage_mb) << 20,
                bytes,
            ),
        ],
    }
}

/// A usage report as the usage panels draw it.
#[cfg(feature = "ssr")]
pub(crate) fn usage_view(report: platform::traffic::usage::Report) -> UsageView {
    use crate::format::{bytes, count};
    let total =
        |f: fn(&platform::traffic::usage::Day) -> u64| report.days.iter().map(f).sum::<u64>();
    let latest_storage = report.days.iter().rev().find_map(|d| d.storage_bytes);
    let charts = vec![
        chart(
            "Requests",
            &report.days,
            |d| Some(d.requests),
            count,
            format!("{} in {DAYS} days", count(total(|d| d.requests))),
        ),
        chart(
            "Bandwidth",
            &report.days,
            |d| Some(d.bandwidth_bytes),
            bytes,
            format!("{} in {DAYS} days", bytes(total(|d| d.bandwidth_bytes))),
        ),
        chart(
            "Storage",
            &report.days,
            |d| d.storage_bytes,
            bytes,
            latest_storage.map_or_else(
                || "not measured yet".to_owned(),
                |b| format!("{} now", bytes(b)),
            ),
        ),
    ];
    let sites = report
        .sites
        .iter()
        .map(|s| site_limits(&report.limits, s))
        .collect();
    UsageView {
        plan_name: report.plan_name,
        month: report.period.format("%B %Y").to_string(),
        charts,
        sites,
    }
}
