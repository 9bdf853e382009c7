//! Incidents: one per site (or organization) and kind while it lasts, with a timeline.
//! They drive the dashboard's banner, the members' alert mail and the operators' feed.
//!
//! Opening is one atomic decision (an insert that a partial unique index lets through once
//! per site and kind), so the monitor, the reconciler and billing may all report the same
//! trouble at once and one incident results. Mail is never sent at once for a site down:
//! opening queues an `incident_alert` job due after `monitor.alert_after_secs`; the job
//! mails only if the incident is still open and the site's members were not mailed about it
//! within `monitor.alert_every_secs`. Resolving a down incident they were mailed about
//! mails them that it is over, in the same transaction. Crash looping, failing requests and
//! usage near a limit are mailed when they open (failing requests at most once per site per
//! `alert_every_secs`); each member chooses which kinds they receive ([`AlertKind`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::infra::jobs::{self, JobError, JobKind, NewJob};
use crate::infra::mail::{self, Message};
use crate::kernel::{Email, Error, Result};
use crate::tenancy::{Action, Membership};

crate::text_enum! {
    /// What went wrong (`incidents.kind`).
    pub enum IncidentKind {
        /// The site does not answer (crashed, hung, out of memory, container gone).
        Down => "down",
        /// The site kept failing after repeated restarts; it is no longer restarted.
        CrashLooping => "crash_looping",
        /// More than 1% of requests failed with a 5xx over 15 minutes.
        ErrorRate => "error_rate",
        /// Usage above 80% of a plan limit this month.
        UsageWarning => "usage_warning",
        /// Usage at or above a plan limit this month.
        UsageExceeded => "usage_exceeded",
        /// The site could not be set up (or changed); retried with backoff.
        ProvisioningFailed => "provisioning_failed",
        /// The subscription was canceled: the organization's sites are deleted after the
        /// grace period.
        SubscriptionEnding => "subscription_ending",
    }
}

impl IncidentKind {
    pub fn title(self) -> &'static str {
        match self {
            IncidentKind::Down => "Site down",
            IncidentKind::CrashLooping => "Site keeps crashing",
            IncidentKind::ErrorRate => "Many failing requests",
            IncidentKind::UsageWarning => "Usage above 80% of a limit",
            IncidentKind::UsageExceeded => "Usage limit reached",
            IncidentKind::ProvisioningFailed => "Provisioning failed",
            IncidentKind::SubscriptionEnding => "Subscription ending",
        }
    }
}

crate::text_enum! {
    /// The alert mails a member can choose (`alert_preferences.kind`).
    pub enum AlertKind {
        /// A site has been down for a while, and when it is back.
        Down => "down",
        /// A site was stopped from restarting itself because it kept crashing.
        CrashLooping => "crash_looping",
        /// More than 1% of a site's requests failed over 15 minutes.
        ErrorRate => "error_rate",
        /// A site's usage this month passed 80% of a plan limit, or reached it.
        Usage => "usage",
    }
}

impl AlertKind {
    pub fn label(self) -> &'static str {
        match self {
            AlertKind::Down => "A site is down (after 5 minutes), and when it is back",
            AlertKind::CrashLooping => "A site keeps crashing and is no longer restarted",
            AlertKind::ErrorRate => "More than 1% of a site's requests fail (over 15 minutes)",
            AlertKind::Usage => "A site passes 80% of a plan limit this month, or reaches it",
        }
    }
}

/// What an incident is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub organization_id: Uuid,
    pub site_id: Option<Uuid>,
    pub kind: IncidentKind,
    /// Which limit, for usage incidents; empty otherwise.
    pub detail: String,
}

impl Subject {
    pub fn site(organization_id: Uuid, site_id: Uuid, kind: IncidentKind) -> Self {
        Self {
            organization_id,
            site_id: Some(site_id),
            kind,
            detail: String::new(),
        }
    }
}

/// Opens the incident about `subject` unless one is open: returns its id and whether this
/// call opened it. `summary` starts the timeline of a new incident.
pub async fn open(
    conn: &mut sqlx::PgConnection,
    platform: &Platform,
    subject: &Subject,
    summary: &str,
) -> Result<(Uuid, bool)> {
    let opened = sqlx::query_scalar!(
        "INSERT INTO incidents (organization_id, site_id, kind, subject, summary)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (organization_id, coalesce(site_id, '00000000-0000-0000-0000-000000000000'::uuid), kind, subject)
            WHERE resolved_at IS NULL DO NOTHING
         RETURNING id",
        subject.organization_id,
        subject.site_id,
        subject.kind.as_str(),
        subject.detail,
        summary
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = opened else {
        let id = open_id(&mut *conn, subject).await?.ok_or_else(|| {
            Error::Internal("an incident was neither opened nor found open".into())
        })?;
        return Ok((id, false));
    };
    note(&mut *conn, id, summary).await?;
    let alert_at = match subject.kind {
        IncidentKind::Down => Some(Utc::now() + seconds(platform.monitor.alert_after_secs)),
        IncidentKind::CrashLooping
        | IncidentKind::ErrorRate
        | IncidentKind::UsageWarning
        | IncidentKind::UsageExceeded => Some(Utc::now()),
        IncidentKind::ProvisioningFailed | IncidentKind::SubscriptionEnding => None,
    };
    if let Some(at) = alert_at {
        jobs::enqueue(
            &mut *conn,
            NewJob::new(
                JobKind::IncidentAlert,
                serde_json::json!({ "incident_id": id.to_string() }),
            )
            .unique(format!("incident_alert:{id}"))
            .at(at),
        )
        .await?;
    }
    tracing::info!(incident = %id, kind = subject.kind.as_str(), site = ?subject.site_id, summary, "incident opened");
    Ok((id, true))
}

/// Resolves the open incident about `subject`, if any, noting `message`; its members are
/// told if they had been mailed that it started. Returns its id.
pub async fn resolve(
    conn: &mut sqlx::PgConnection,
    platform: &Platform,
    subject: &Subject,
    message: &str,
) -> Result<Option<Uuid>> {
    let resolved = sqlx::query!(
        "UPDATE incidents SET resolved_at = now()
          WHERE organization_id = $1 AND site_id IS NOT DISTINCT FROM $2 AND kind = $3
            AND subject = $4 AND resolved_at IS NULL
          RETURNING id, alerted_at, opened_at",
        subject.organization_id,
        subject.site_id,
        subject.kind.as_str(),
        subject.detail
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = resolved else {
        return Ok(None);
    };
    note(&mut *conn, row.id, message).await?;
    if row.alerted_at.is_some() && subject.kind == IncidentKind::Down {
        let site = site_words(&mut *conn, platform, subject.site_id).await?;
        let lasted = (Utc::now() - row.opened_at).num_minutes().max(1);
        let sent = mail_members(
            &mut *conn,
            subject.organization_id,
            AlertKind::Down,
            &format!("{} is back up", site.name),
            &format!(
                "{} ({}) is answering again after about {lasted} minutes.\n\n{message}\n\nWhat happened: {}\n",
                site.name,
                site.url,
                platform.link(&format!("/dashboard/sites/{}", subject.site_id.unwrap_or_default()))
            ),
        )
        .await?;
        sqlx::query!(
            "UPDATE incidents SET recovery_alerted_at = now() WHERE id = $1",
            row.id
        )
        .execute(&mut *conn)
        .await?;
        note(
            &mut *conn,
            row.id,
            &format!("mailed {sent} member(s) that it is over"),
        )
        .await?;
    }
    tracing::info!(incident = %row.id, kind = subject.kind.as_str(), site = ?subject.site_id, "incident resolved");
    Ok(Some(row.id))
}

/// Adds a line to an incident's timeline.
pub async fn note(conn: &mut sqlx::PgConnection, incident_id: Uuid, message: &str) -> Result<()> {
    sqlx::query!(
        "INSERT INTO incident_events (incident_id, message) VALUES ($1, $2)",
        incident_id,
        message
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The open incident about `subject`, if any.
pub async fn open_id(conn: &mut sqlx::PgConnection, subject: &Subject) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM incidents
          WHERE organization_id = $1 AND site_id IS NOT DISTINCT FROM $2 AND kind = $3
            AND subject = $4 AND resolved_at IS NULL",
        subject.organization_id,
        subject.site_id,
        subject.kind.as_str(),
        subject.detail
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// The `incident_alert` job: mails about an incident that is still open.
pub async fn alert(platform: &Platform, incident_id: Uuid) -> Result<(), JobError> {
    let mut tx = platform.db.begin().await.map_err(Error::from)?;
    let Some(incident) = sqlx::query!(
        "SELECT organization_id, site_id, kind, summary, resolved_at, alerted_at, opened_at
           FROM incidents WHERE id = $1 FOR UPDATE",
        incident_id
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(Error::from)?
    else {
        return Ok(());
    };
    if incident.resolved_at.is_some() || incident.alerted_at.is_some() {
        return Ok(());
    }
    let kind = IncidentKind::stored(&incident.kind)?;
    let site = site_words(&mut tx, platform, incident.site_id).await?;
    let link = platform.link(&format!(
        "/dashboard/sites/{}",
        incident.site_id.unwrap_or_default()
    ));
    // Down and failing requests: at most one mail per site per period, so a site that
    // flaps is one mail (a site down is not mailed again after a crash-looping mail).
    let throttled_by: &[&str] = match kind {
        IncidentKind::Down => &["down", "crash_looping"],
        IncidentKind::ErrorRate => &["error_rate"],
        _ => &[],
    };
    if !throttled_by.is_empty() {
        let recently = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM incidents
                WHERE site_id = $1 AND id <> $2 AND kind = ANY($3)
                  AND alerted_at > now() - make_interval(secs => $4)) AS "recently!""#,
            incident.site_id,
            incident_id,
            throttled_by as &[&str],
            platform.monitor.alert_every_secs as f64
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::from)?;
        if recently {
            // Not marked as mailed: no "back up" mail follows a "down" mail not sent.
            note(
                &mut tx,
                incident_id,
                &format!(
                    "not mailed: members were mailed about this site in the last {} minutes",
                    platform.monitor.alert_every_secs.div_ceil(60)
                ),
            )
            .await?;
            tx.commit().await.map_err(Error::from)?;
            return Ok(());
        }
    }
    let (alert_kind, subject, body) = match kind {
        IncidentKind::Down => {
            let minutes = (Utc::now() - incident.opened_at).num_minutes().max(1);
            (
                AlertKind::Down,
                format!("{} is down", site.name),
                format!(
                    "{} ({}) has not been answering for {minutes} minutes: {}\n\nSlipway keeps trying to bring it back and will tell you when it is up.\nDetails: {link}\n",
                    site.name, site.url, incident.summary
                ),
            )
        }
        IncidentKind::CrashLooping => (
            AlertKind::CrashLooping,
            format!("{} keeps crashing", site.name),
            format!(
                "{} ({}) crashed again after repeated restarts, so Slipway stopped restarting it: {}\n\nRestart it from the dashboard once the cause is fixed: {link}\n",
                site.name, site.url, incident.summary
            ),
        ),
        IncidentKind::ErrorRate => (
            AlertKind::ErrorRate,
            format!("{} is failing requests", site.name),
            format!(
                "{} ({}) is up, but {}.\n\nIts logs may say why: {link}\n",
                site.name, site.url, incident.summary
            ),
        ),
        IncidentKind::UsageWarning | IncidentKind::UsageExceeded => (
            AlertKind::Usage,
            format!("{}: {}", site.name, kind.title().to_lowercase()),
            format!(
                "{} ({}) — {}.\n\nUsage and plans: {}\n",
                site.name,
                site.url,
                incident.summary,
                platform.link("/dashboard/usage")
            ),
        ),
        IncidentKind::ProvisioningFailed | IncidentKind::SubscriptionEnding => return Ok(()),
    };
    let members = mail_members(
        &mut tx,
        incident.organization_id,
        alert_kind,
        &subject,
        &body,
    )
    .await?;
    let outcome = if kind == IncidentKind::CrashLooping {
        let operators = mail_operators(
            &mut tx,
            &format!("[slipway] {} is crash looping", site.name),
            &format!(
                "Site {} ({}) of organization {} is crash looping: {}\n{link}\n",
                site.name,
                incident.site_id.unwrap_or_default(),
                incident.organization_id,
                incident.summary
            ),
        )
        .await?;
        format!("mailed {members} member(s) and {operators} operator(s)")
    } else {
        format!("mailed {members} member(s)")
    };
    sqlx::query!(
        "UPDATE incidents SET alerted_at = now() WHERE id = $1",
        incident_id
    )
    .execute(&mut *tx)
    .await
    .map_err(Error::from)?;
    note(&mut tx, incident_id, &outcome).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(())
}

struct SiteWords {
    name: String,
    url: String,
}

async fn site_words(
    conn: &mut sqlx::PgConnection,
    platform: &Platform,
    site_id: Option<Uuid>,
) -> Result<SiteWords> {
    let row = sqlx::query!("SELECT name, slug FROM sites WHERE id = $1", site_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) => SiteWords {
            url: platform.site_url(&row.slug),
            name: row.name,
        },
        None => SiteWords {
            name: "Your organization".to_owned(),
            url: platform.link("/dashboard"),
        },
    })
}

/// Mails the members who receive `kind`: their own choice, or their role's default (owners
/// and admins do). Returns how many.
async fn mail_members(
    conn: &mut sqlx::PgConnection,
    organization_id: Uuid,
    kind: AlertKind,
    subject: &str,
    body: &str,
) -> Result<usize> {
    let recipients = sqlx::query_scalar!(
        r#"SELECT u.email AS "email!"
             FROM organization_members m
             JOIN users u ON u.id = m.user_id
             LEFT JOIN alert_preferences p
               ON p.organization_id = m.organization_id AND p.user_id = m.user_id AND p.kind = $2
            WHERE m.organization_id = $1
              AND coalesce(p.enabled, m.role IN ('owner', 'admin'))
            ORDER BY u.email"#,
        organization_id,
        kind.as_str()
    )
    .fetch_all(&mut *conn)
    .await?;
    send_all(conn, &recipients, subject, body).await
}

async fn mail_operators(conn: &mut sqlx::PgConnection, subject: &str, body: &str) -> Result<usize> {
    let recipients =
        sqlx::query_scalar!("SELECT email FROM users WHERE is_operator ORDER BY email")
            .fetch_all(&mut *conn)
            .await?;
    send_all(conn, &recipients, subject, body).await
}

async fn send_all(
    conn: &mut sqlx::PgConnection,
    recipients: &[String],
    subject: &str,
    body: &str,
) -> Result<usize> {
    for to in recipients {
        mail::send(
            &mut *conn,
            &Message {
                to: Email::parse(to)?,
                subject: subject.to_owned(),
                body: body.to_owned(),
            },
        )
        .await?;
    }
    Ok(recipients.len())
}

fn seconds(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// An incident as pages show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub site_id: Option<Uuid>,
    pub site_name: Option<String>,
    pub kind: IncidentKind,
    pub detail: String,
    pub summary: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub timeline: Vec<(DateTime<Utc>, String)>,
}

/// Which incidents to list.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Organization(Uuid),
    Site(Uuid, Uuid),
    Everyone,
}

async fn list(
    platform: &Platform,
    scope: Scope,
    open_only: bool,
    limit: i64,
) -> Result<Vec<Incident>> {
    let (organization, site) = match scope {
        Scope::Organization(o) => (Some(o), None),
        Scope::Site(o, s) => (Some(o), Some(s)),
        Scope::Everyone => (None, None),
    };
    let rows = sqlx::query!(
        r#"SELECT i.id, i.organization_id, o.name AS organization_name, i.site_id,
                  s.name AS "site_name?", i.kind, i.subject, i.summary, i.opened_at, i.resolved_at,
                  coalesce((SELECT array_agg(e.at ORDER BY e.id) FROM incident_events e WHERE e.incident_id = i.id), '{}') AS "event_at!",
                  coalesce((SELECT array_agg(e.message ORDER BY e.id) FROM incident_events e WHERE e.incident_id = i.id), '{}') AS "event_message!"
             FROM incidents i
             JOIN organizations o ON o.id = i.organization_id
             LEFT JOIN sites s ON s.id = i.site_id
            WHERE ($1::uuid IS NULL OR i.organization_id = $1)
              AND ($2::uuid IS NULL OR i.site_id = $2)
              AND (NOT $3 OR i.resolved_at IS NULL)
            ORDER BY i.opened_at DESC
            LIMIT $4"#,
        organization,
        site,
        open_only,
        limit
    )
    .fetch_all(&platform.db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Incident {
                id: r.id,
                organization_id: r.organization_id,
                organization_name: r.organization_name,
                site_id: r.site_id,
                site_name: r.site_name,
                kind: IncidentKind::stored(&r.kind)?,
                detail: r.subject,
                summary: r.summary,
                opened_at: r.opened_at,
                resolved_at: r.resolved_at,
                timeline: r.event_at.into_iter().zip(r.event_message).collect(),
            })
        })
        .collect()
}

/// How many incidents of each kind are open (every kind, zeros included): a metric.
pub async fn open_counts(db: &sqlx::PgPool) -> Result<Vec<(IncidentKind, i64)>> {
    let open = sqlx::query!(
        r#"SELECT kind, count(*) AS "count!" FROM incidents
            WHERE resolved_at IS NULL GROUP BY kind"#
    )
    .fetch_all(db)
    .await?;
    Ok(IncidentKind::ALL
        .iter()
        .map(|kind| {
            let count = open
                .iter()
                .find(|o| o.kind == kind.as_str())
                .map_or(0, |o| o.count);
            (*kind, count)
        })
        .collect())
}

/// The organization's open incidents (the dashboard's banner).
pub async fn open_for(platform: &Platform, by: &Membership) -> Result<Vec<Incident>> {
    by.require(Action::ViewSites)?;
    list(platform, Scope::Organization(by.organization_id), true, 20).await
}

/// The organization's incidents, open and resolved, newest first.
pub async fn for_organization(
    platform: &Platform,
    by: &Membership,
    limit: i64,
) -> Result<Vec<Incident>> {
    by.require(Action::ViewSites)?;
    list(
        platform,
        Scope::Organization(by.organization_id),
        false,
        limit,
    )
    .await
}

/// A site's incidents, newest first (its page's timeline).
pub async fn for_site(
    platform: &Platform,
    by: &Membership,
    site_id: Uuid,
    limit: i64,
) -> Result<Vec<Incident>> {
    by.require(Action::ViewSites)?;
    list(
        platform,
        Scope::Site(by.organization_id, site_id),
        false,
        limit,
    )
    .await
}

/// Every organization's incidents, newest first: the operators' feed. The caller checks
/// that the user is an operator.
pub async fn feed(platform: &Platform, limit: i64) -> Result<Vec<Incident>> {
    list(platform, Scope::Everyone, false, limit).await
}

/// The member's alert choices: each kind with whether they receive it.
pub async fn preferences(platform: &Platform, by: &Membership) -> Result<Vec<(AlertKind, bool)>> {
    let chosen = sqlx::query!(
        "SELECT kind, enabled FROM alert_preferences WHERE organization_id = $1 AND user_id = $2",
        by.organization_id,
        by.user_id
    )
    .fetch_all(&platform.db)
    .await?;
    let default = matches!(
        by.role,
        crate::tenancy::Role::Owner | crate::tenancy::Role::Admin
    );
    Ok(AlertKind::ALL
        .iter()
        .map(|kind| {
            let enabled = chosen
                .iter()
                .find(|c| c.kind == kind.as_str())
                .map_or(default, |c| c.enabled);
            (*kind, enabled)
        })
        .collect())
}

/// Records the member's choices, in one statement: kinds in `enabled` on, the others off.
pub async fn set_preferences(
    platform: &Platform,
    by: &Membership,
    enabled: &[AlertKind],
) -> Result<()> {
    let kinds: Vec<&str> = AlertKind::ALL.iter().map(|k| k.as_str()).collect();
    let on: Vec<bool> = AlertKind::ALL.iter().map(|k| enabled.contains(k)).collect();
    sqlx::query!(
        "INSERT INTO alert_preferences (organization_id, user_id, kind, enabled)
         SELECT $1, $2, kind, enabled FROM unnest($3::text[], $4::bool[]) AS c(kind, enabled)
         ON CONFLICT (organization_id, user_id, kind) DO UPDATE SET enabled = EXCLUDED.enabled",
        by.organization_id,
        by.user_id,
        &kinds as &[&str],
        &on
    )
    .execute(&platform.db)
    .await?;
    Ok(())
}
