//! What the proxies counted, judged: a site failing more than 1% of its requests over 15
//! minutes, and a site's usage this month near or over its plan's limits. Each is an
//! incident while it lasts, opened and resolved here (by the monitor's leader, every
//! `monitor.traffic_check_secs`).
//!
//! Both judgements compare what should be open with what is open and change only the
//! difference, so running them twice (or in two processes at once) changes nothing more:
//! opening is the incidents' one atomic insert (a partial unique index lets one through),
//! resolving an update of the open row; each in a transaction of its own with its timeline
//! line and alert job.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::Platform;
use crate::catalog::plans::Limits;
use crate::incidents::{self, IncidentKind, Subject};
use crate::kernel::Result;

/// The error rate's window, in minutes (counts are kept per minute).
pub const ERROR_RATE_WINDOW_MINUTES: i32 = 15;
/// Requests and server errors per minute are kept this long.
const MINUTES_KEPT_SECS: f64 = 3600.0;

/// What one judgement changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judged {
    pub opened: usize,
    pub resolved: usize,
}

impl std::ops::AddAssign for Judged {
    fn add_assign(&mut self, other: Self) {
        self.opened += other.opened;
        self.resolved += other.resolved;
    }
}

/// Judges error rates and usage, and deletes per-minute counts older than an hour. Each of
/// the three runs even when another fails; the first failure is returned.
pub async fn judge(platform: &Platform) -> Result<Judged> {
    let mut judged = Judged::default();
    let mut failure = None;
    for outcome in [error_rates(platform).await, usage(platform).await] {
        match outcome {
            Ok(more) => judged += more,
            Err(error) => failure = failure.or(Some(error)),
        }
    }
    let pruned = sqlx::query!(
        "DELETE FROM usage_minutes WHERE minute < now() - make_interval(secs => $1)",
        MINUTES_KEPT_SECS
    )
    .execute(&platform.db)
    .await;
    if let Err(error) = pruned {
        failure = failure.or(Some(error.into()));
    }
    failure.map_or(Ok(judged), Err)
}

/// Whether `failed` of `requests` is an error rate worth an incident: over 1%, among
/// enough requests to judge by.
pub fn failing(requests: u64, failed: u64, min_requests: u64) -> bool {
    requests >= min_requests.max(1) && failed.saturating_mul(100) > requests
}

/// What to do about a site's error-rate incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Resolve,
    Leave,
}

/// Opens on a failing rate; resolves only on evidence that it is over: enough requests at
/// or under 1%, no requests at all, or the site deleted. Too few requests to judge leave
/// an open incident open (a site failing 5 of its 5 requests is not back).
pub fn error_rate_verdict(
    requests: u64,
    failed: u64,
    min_requests: u64,
    open: bool,
    deleted: bool,
) -> Verdict {
    if !open {
        if !deleted && failing(requests, failed, min_requests) {
            Verdict::Open
        } else {
            Verdict::Leave
        }
    } else if deleted
        || requests == 0
        || (requests >= min_requests.max(1) && failed.saturating_mul(100) <= requests)
    {
        Verdict::Resolve
    } else {
        Verdict::Leave
    }
}

/// Opens (in a transaction of its own: the incident, its first line and its alert job
/// together); true if this call opened it.
async fn open(platform: &Platform, subject: &Subject, summary: &str) -> Result<bool> {
    let mut tx = platform.db.begin().await?;
    let (_, opened) = incidents::open(&mut tx, platform, subject, summary).await?;
    tx.commit().await?;
    Ok(opened)
}

/// Resolves (in a transaction of its own); true if this call resolved it.
async fn resolve(platform: &Platform, subject: &Subject, message: &str) -> Result<bool> {
    let mut tx = platform.db.begin().await?;
    let resolved = incidents::resolve(&mut tx, platform, subject, message).await?;
    tx.commit().await?;
    Ok(resolved.is_some())
}

/// Opens an `error_rate` incident for each site failing more than 1% of its requests over
/// the last 15 minutes (this minute and the 14 before), and resolves those of sites no
/// longer failing.
async fn error_rates(platform: &Platform) -> Result<Judged> {
    let rows = sqlx::query!(
        r#"WITH recent AS (
               SELECT site_id, sum(requests)::bigint AS requests, sum(status_5xx)::bigint AS failed
                 FROM usage_minutes
                WHERE minute >= date_trunc('minute', now()) - make_interval(mins => $1)
                GROUP BY site_id),
           open AS (
               SELECT site_id FROM incidents WHERE kind = 'error_rate' AND resolved_at IS NULL)
           SELECT s.id, s.organization_id, s.status = 'deleted' AS "deleted!",
                  coalesce(r.requests, 0) AS "requests!", coalesce(r.failed, 0) AS "failed!",
                  (o.site_id IS NOT NULL) AS "open!"
             FROM sites s
             LEFT JOIN recent r ON r.site_id = s.id
             LEFT JOIN open o ON o.site_id = s.id
            WHERE r.site_id IS NOT NULL OR o.site_id IS NOT NULL"#,
        ERROR_RATE_WINDOW_MINUTES - 1
    )
    .fetch_all(&platform.db)
    .await?;
    let mut judged = Judged::default();
    for row in rows {
        let requests = u64::try_from(row.requests).unwrap_or(0);
        let failed = u64::try_from(row.failed).unwrap_or(0);
        let subject = Subject::site(row.organization_id, row.id, IncidentKind::ErrorRate);
        let verdict = error_rate_verdict(
            requests,
            failed,
            platform.monitor.error_rate_min_requests,
            row.open,
            row.deleted,
        );
        let counted = format!(
            "{} of {} in the last 15 minutes failed",
            thousands(failed),
            plural(requests, "request", "requests"),
        );
        match verdict {
            Verdict::Open => {
                let summary = format!(
                    "{counted} with a server error ({})",
                    percent(failed, requests)
                );
                if open(platform, &subject, &summary).await? {
                    judged.opened += 1;
                }
            }
            Verdict::Resolve => {
                let message = if row.deleted {
                    "the site was deleted".to_owned()
                } else if requests == 0 {
                    "no requests in the last 15 minutes".to_owned()
                } else {
                    format!(
                        "{counted} ({}): back at or under 1%",
                        percent(failed, requests)
                    )
                };
                if resolve(platform, &subject, &message).await? {
                    judged.resolved += 1;
                }
            }
            Verdict::Leave => {}
        }
    }
    Ok(judged)
}

/// A metered limit of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Metric {
    Requests,
    Bandwidth,
    Storage,
}

impl Metric {
    const ALL: [Metric; 3] = [Metric::Requests, Metric::Bandwidth, Metric::Storage];

    /// Its name in `usage_records.metric`, and the usage incidents' subject.
    fn as_str(self) -> &'static str {
        match self {
            Metric::Requests => "requests",
            Metric::Bandwidth => "bandwidth",
            Metric::Storage => "storage",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    /// The plan's limit, in the records' unit; `None` where the plan sets none.
    fn limit(self, limits: &Limits) -> Option<u64> {
        let limit = match self {
            Metric::Requests => limits.monthly_requests,
            Metric::Bandwidth => u64::from(limits.bandwidth_gb) << 30,
            Metric::Storage => u64::from(limits.storage_mb) << 20,
        };
        (limit > 0).then_some(limit)
    }

    fn describe(self, quantity: u64, limit: u64) -> String {
        let amount = |n: u64| match self {
            Metric::Requests => plural(n, "request", "requests"),
            Metric::Bandwidth | Metric::Storage => gibibytes(n),
        };
        let what = match self {
            Metric::Requests => "Requests this month",
            Metric::Bandwidth => "Bandwidth this month",
            Metric::Storage => "Storage",
        };
        format!(
            "{what}: {} of the plan's {} ({})",
            amount(quantity),
            amount(limit),
            percent(quantity, limit)
        )
    }
}

/// Which usage incident a quantity calls for: at or over the limit, over 80% of it, or none.
pub fn usage_level(quantity: u64, limit: u64) -> Option<IncidentKind> {
    if limit == 0 {
        None
    } else if quantity >= limit {
        Some(IncidentKind::UsageExceeded)
    } else if quantity.saturating_mul(5) > limit.saturating_mul(4) {
        Some(IncidentKind::UsageWarning)
    } else {
        None
    }
}

/// Opens `usage_warning` / `usage_exceeded` incidents for each site and limit its usage
/// calls for, and resolves the ones it no longer does. Requests and bandwidth are this
/// month's; storage is the latest sample (what the site holds now, not the month's peak that
/// is billed), so deleting data resolves a storage incident.
async fn usage(platform: &Platform) -> Result<Judged> {
    let monthly = sqlx::query!(
        "SELECT r.site_id, r.organization_id, o.plan_id, r.metric, r.quantity
           FROM usage_records r
           JOIN sites s ON s.id = r.site_id
           JOIN organizations o ON o.id = r.organization_id
          WHERE r.period = date_trunc('month', now() AT TIME ZONE 'UTC')::date
            AND r.metric IN ('requests', 'bandwidth')
            AND s.status <> 'deleted'"
    )
    .fetch_all(&platform.db)
    .await?;
    let stored = sqlx::query!(
        r#"SELECT s.id AS site_id, s.organization_id, o.plan_id, latest.storage_bytes AS "quantity!"
             FROM sites s
             JOIN organizations o ON o.id = s.organization_id
            CROSS JOIN LATERAL (
                SELECT h.storage_bytes FROM usage_hourly h
                 WHERE h.site_id = s.id AND h.storage_bytes IS NOT NULL
                   AND h.hour >= now() - interval '1 day'
                 ORDER BY h.hour DESC LIMIT 1) latest
            WHERE s.status <> 'deleted'"#
    )
    .fetch_all(&platform.db)
    .await?;
    let samples = monthly
        .into_iter()
        .filter_map(|r| {
            Metric::parse(&r.metric)
                .map(|m| (r.site_id, r.organization_id, r.plan_id, m, r.quantity))
        })
        .chain(stored.into_iter().map(|r| {
            (
                r.site_id,
                r.organization_id,
                r.plan_id,
                Metric::Storage,
                r.quantity,
            )
        }));
    // (site, metric) -> what should be open, with its words.
    let mut wanted: HashMap<(Uuid, &'static str), (Uuid, IncidentKind, String)> = HashMap::new();
    for (site_id, organization_id, plan_id, metric, quantity) in samples {
        let Some(limit) = platform
            .plan(&plan_id)
            .and_then(|p| metric.limit(&p.limits))
        else {
            continue;
        };
        let quantity = u64::try_from(quantity).unwrap_or(0);
        if let Some(kind) = usage_level(quantity, limit) {
            wanted.insert(
                (site_id, metric.as_str()),
                (organization_id, kind, metric.describe(quantity, limit)),
            );
        }
    }
    let open_now = sqlx::query!(
        r#"SELECT organization_id, site_id AS "site_id!", kind, subject FROM incidents
            WHERE kind IN ('usage_warning', 'usage_exceeded') AND resolved_at IS NULL
              AND site_id IS NOT NULL"#
    )
    .fetch_all(&platform.db)
    .await?;
    let mut judged = Judged::default();
    let mut already: HashSet<(Uuid, String, IncidentKind)> = HashSet::new();
    for row in open_now {
        let kind = IncidentKind::stored(&row.kind)?;
        let still = wanted
            .get(&(row.site_id, row.subject.as_str()))
            .is_some_and(|(_, wanted_kind, _)| *wanted_kind == kind);
        if still {
            already.insert((row.site_id, row.subject, kind));
            continue;
        }
        let message = match wanted.get(&(row.site_id, row.subject.as_str())) {
            Some((_, IncidentKind::UsageExceeded, _)) => "the limit is now reached".to_owned(),
            Some((_, _, words)) => format!("back under the limit: {words}"),
            None => {
                "no longer above 80% of the limit (a new month, a bigger plan, less stored, or the site deleted)".to_owned()
            }
        };
        let subject = Subject {
            organization_id: row.organization_id,
            site_id: Some(row.site_id),
            kind,
            detail: row.subject,
        };
        if resolve(platform, &subject, &message).await? {
            judged.resolved += 1;
        }
    }
    for ((site_id, metric), (organization_id, kind, words)) in wanted {
        if already.contains(&(site_id, metric.to_owned(), kind)) {
            continue;
        }
        let subject = Subject {
            organization_id,
            site_id: Some(site_id),
            kind,
            detail: metric.to_owned(),
        };
        if open(platform, &subject, &words).await? {
            judged.opened += 1;
        }
    }
    Ok(judged)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// 1234567 as "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn gibibytes(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".to_owned();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_rate_counts_above_one_percent_of_enough_requests() {
        assert!(!failing(100, 1, 20), "1% is not above 1%");
        assert!(failing(100, 2, 20));
        assert!(!failing(10, 10, 20), "too few requests to judge");
        assert!(failing(20, 1, 20));
        assert!(!failing(0, 0, 0));
    }

    #[test]
    fn an_open_error_rate_is_resolved_on_evidence_only() {
        use Verdict::*;
        assert_eq!(error_rate_verdict(100, 2, 20, false, false), Open);
        assert_eq!(
            error_rate_verdict(100, 2, 20, false, true),
            Leave,
            "deleted"
        );
        assert_eq!(error_rate_verdict(100, 1, 20, true, false), Resolve);
        assert_eq!(
            error_rate_verdict(5, 5, 20, true, false),
            Leave,
            "too few to say"
        );
        assert_eq!(
            error_rate_verdict(0, 0, 20, true, false),
            Resolve,
            "no requests"
        );
        assert_eq!(
            error_rate_verdict(100, 50, 20, true, true),
            Resolve,
            "deleted"
        );
        assert_eq!(error_rate_verdict(100, 50, 20, true, false), Leave);
    }

    #[test]
    fn usage_warns_above_80_percent_and_is_exceeded_at_the_limit() {
        assert_eq!(usage_level(80, 100), None);
        assert_eq!(usage_level(81, 100), Some(IncidentKind::UsageWarning));
        assert_eq!(usage_level(99, 100), Some(IncidentKind::UsageWarning));
        assert_eq!(usage_level(100, 100), Some(IncidentKind::UsageExceeded));
        assert_eq!(usage_level(5, 0), None, "no limit");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            Metric::Requests.describe(850_000, 1_000_000),
            "Requests this month: 850,000 requests of the plan's 1,000,000 requests (85.0%)"
        );
        assert_eq!(
            Metric::Storage.describe(9 << 29, 5 << 30),
            "Storage: 4.5 GiB of the plan's 5.0 GiB (90.0%)"
        );
    }
}
