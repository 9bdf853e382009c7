//! The health monitor: notices within seconds that a site is down, brings it back by
//! itself, and tells the right people.
//!
//! Docker restarts a container only when its process exits, never because it stopped
//! answering, so Slipway does it. One process of the installation runs the monitor, the
//! holder of the `monitor` lease; the others stand by and take over when it lapses.
//!
//! - **Seeing**: every active site's health path is probed every `monitor.interval_secs`
//!   (through the tenant proxy's pooled client when the server passes it), and the engine's
//!   event stream (`die`, `oom`, `health_status`, `destroy`) is followed, so a crash is seen
//!   at once, not at the next probe. Each result is kept ([`checks`]).
//! - **Judging**: a site is `up`, `degraded` (slow, or a 5xx from its health path) or
//!   `down` (`monitor.failures_to_down` failed probes in a row, or at once on a crash).
//! - **Recovering**: a down site is restarted at once, then after waits doubling from
//!   `restart_backoff_secs` to `restart_backoff_max_secs`; healthy for
//!   `healthy_reset_secs` resets the waits. A container that vanished is made again by the
//!   reconciler. `crash_loop_restarts` restarts within `crash_loop_window_secs` and still
//!   failing: the site is `crash_looping` and left alone; operators and members are told.
//! - **Routing**: the proxy reads the health: a down site gets the 503 "restarting" page at
//!   once, and the new container's address as soon as it answers again.
//!
//! - **Traffic**: every `monitor.traffic_check_secs` it also judges error rates and usage
//!   against plan limits ([`traffic`]).
//!
//! State lives in `site_health` (written through on every change) and is reloaded every
//! couple of seconds, so a monitor taking over continues where the last one stopped.

pub mod checks;
pub mod probe;
pub mod traffic;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Platform;
use crate::incidents::{self, IncidentKind, Subject};
use crate::infra::docker::{ContainerEvent, ContainerEventKind, Runtime, RuntimeError};
use crate::infra::lease;
use crate::infra::notify::CHANNEL_SITES;
use crate::kernel::Result;
pub use checks::{Check, Health};
pub use probe::{BareProber, Prober};

/// The lease whose holder runs the monitor.
pub const LEASE: &str = "monitor";
/// How long a lease lasts unless renewed (renewed every [`RENEW_EVERY`]).
const LEASE_TTL: Duration = Duration::from_secs(10);
const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How often the list of active sites and their health is reloaded.
const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// The loop's heartbeat: due probes and restarts are started this often.
const TICK: Duration = Duration::from_millis(50);
/// A down site is probed this often, so it is routed to again as soon as it answers.
const RECOVERING_PROBE: Duration = Duration::from_millis(50);
/// Memory and CPU are sampled this often (each reading takes the engine about a second).
const SAMPLE_EVERY: Duration = Duration::from_secs(60);
/// How long a hung container gets to stop before the engine kills it, on restart.
const RESTART_GRACE_SECS: i32 = 2;

/// What the monitor learns, handled one at a time by its loop.
#[derive(Debug)]
enum Observation {
    Event(ContainerEvent),
    Probe {
        site_id: Uuid,
        address: Option<SocketAddr>,
        at: DateTime<Utc>,
        latency: Duration,
        outcome: std::result::Result<u16, String>,
    },
    Restarted {
        site_id: Uuid,
        /// When the engine had it running again (or the attempt ended).
        at: DateTime<Utc>,
        outcome: std::result::Result<&'static str, String>,
    },
}

/// One active site as the monitor tracks it.
#[derive(Debug, Clone)]
struct Tracked {
    organization_id: Uuid,
    upstream: Option<SocketAddr>,
    health_path: String,
    state: Health,
    reason: Option<String>,
    failures: i32,
    restart_attempt: i32,
    next_restart_at: Option<DateTime<Utc>>,
    last_restart_at: Option<DateTime<Utc>>,
    healthy_since: Option<DateTime<Utc>>,
    /// Whether `site_health` has a row for it yet.
    stored: bool,
    next_probe: Instant,
    probing: bool,
    restarting: bool,
}

pub struct Monitor {
    platform: Platform,
    runtime: Arc<Runtime>,
    prober: Arc<dyn Prober>,
    /// The sites' Docker network (where a container's address is read).
    network: String,
    instance: Uuid,
    holder: Uuid,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    pub async fn new(
        platform: Platform,
        runtime: Arc<Runtime>,
        prober: Arc<dyn Prober>,
        network: &str,
    ) -> Result<Self> {
        let instance = crate::infra::db::instance_id(&platform.db).await?;
        Ok(Self {
            platform,
            runtime,
            prober,
            network: network.to_owned(),
            instance,
            holder: Uuid::new_v4(),
        })
    }

    /// Runs until `stop` is cancelled: while this process holds the lease, follows the
    /// engine's events, probes, judges and restarts; otherwise stands by.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let (sender, mut observations) = mpsc::channel::<Observation>(4096);
        let mut sites: HashMap<Uuid, Tracked> = HashMap::new();
        let mut leading = false;
        let mut renewed: Option<Instant> = None;
        let mut reloaded: Option<Instant> = None;
        let mut sampled: Option<Instant> = None;
        let mut follower: Option<tokio::task::JoinHandle<()>> = None;
        let mut sampling: Option<tokio::task::JoinHandle<()>> = None;
        let mut judged: Option<Instant> = None;
        let mut judging: Option<tokio::task::JoinHandle<()>> = None;
        let mut pending_checks: Vec<Check> = Vec::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                Some(observation) = observations.recv() => {
                    if leading {
                        self.observe(&mut sites, observation, &mut pending_checks).await;
                    }
                    // Handle everything already waiting before the next tick's work.
                    while let Ok(observation) = observations.try_recv() {
                        if leading {
                            self.observe(&mut sites, observation, &mut pending_checks).await;
                        }
                    }
                }
                () = tokio::time::sleep(TICK) => {}
            }
            if renewed.is_none_or(|t| t.elapsed() >= RENEW_EVERY) {
                renewed = Some(Instant::now());
                let held = lease::hold(&self.platform.db, LEASE, self.holder, LEASE_TTL).await;
                let now_leading = match held {
                    Ok(held) => held,
                    Err(error) => {
                        tracing::warn!(%error, "cannot renew the monitor's lease; standing by");
                        false
                    }
                };
                if now_leading != leading {
                    tracing::info!(leading = now_leading, holder = %self.holder, "monitor lease");
                    sites.clear();
                    reloaded = None;
                }
                leading = now_leading;
            }
            if !leading {
                // Another process leads now: nothing of this one's may act on stale state.
                for task in [follower.take(), judging.take()].into_iter().flatten() {
                    task.abort();
                }
                continue;
            }
            if follower.as_ref().is_none_or(|task| task.is_finished()) {
                follower = Some(tokio::spawn(follow_events(
                    self.runtime.clone(),
                    self.instance,
                    sender.clone(),
                    stop.clone(),
                )));
            }
            if reloaded.is_none_or(|t| t.elapsed() >= RELOAD_EVERY) {
                reloaded = Some(Instant::now());
                if let Err(error) = self.reload(&mut sites).await {
                    tracing::warn!(%error, "monitor: cannot list the active sites");
                }
            }
            // One round of samples at a time: a slow engine must not pile them up.
            if sampled.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY)
                && sampling.as_ref().is_none_or(|task| task.is_finished())
            {
                sampled = Some(Instant::now());
                sampling = Some(self.sample_resources(sites.keys().copied().collect()));
            }
            if judged.is_none_or(|t| t.elapsed() >= self.platform.monitor.traffic_check())
                && judging.as_ref().is_none_or(|task| task.is_finished())
            {
                judged = Some(Instant::now());
                judging = Some(self.judge_traffic());
            }
            self.start_due_work(&mut sites, &sender).await;
            let checks = std::mem::take(&mut pending_checks);
            if let Err(error) = checks::record(&self.platform.db, &checks).await {
                tracing::warn!(%error, checks = checks.len(), "monitor: cannot record checks");
            }
        }
        for task in [follower, sampling, judging].into_iter().flatten() {
            task.abort();
        }
        let _ = checks::record(&self.platform.db, &pending_checks).await;
        if leading && let Err(error) = lease::release(&self.platform.db, LEASE, self.holder).await {
            tracing::debug!(%error, "monitor: cannot release the lease");
        }
    }

    /// Reloads the active sites and their stored health; forgets sites no longer active.
    async fn reload(&self, sites: &mut HashMap<Uuid, Tracked>) -> Result<()> {
        let rows = sqlx::query!(
            r#"SELECT s.id, s.organization_id, s.upstream, s.template,
                      h.state AS "state?", h.reason, h.failures AS "failures?",
                      h.restart_attempt AS "restart_attempt?", h.next_restart_at,
                      h.last_restart_at, h.healthy_since
                 FROM sites s LEFT JOIN site_health h ON h.site_id = s.id
                WHERE s.status = 'active' AND s.desired_state = 'running'
                  AND s.suspended_at IS NULL"#
        )
        .fetch_all(&self.platform.db)
        .await?;
        let mut seen = HashMap::with_capacity(rows.len());
        for row in rows {
            let health_path = self
                .platform
                .template(&row.template)
                .map_or_else(|| "/".to_owned(), |t| t.health_path.clone());
            let state = row
                .state
                .as_deref()
                .map(Health::stored)
                .transpose()?
                .unwrap_or(Health::Up);
            let previous = sites.remove(&row.id);
            let tracked = Tracked {
                organization_id: row.organization_id,
                upstream: row.upstream.as_deref().and_then(|u| u.parse().ok()),
                health_path,
                state,
                reason: row.reason,
                // Counted here between writes: a reload must not forget a failed probe.
                failures: previous
                    .as_ref()
                    .map_or(row.failures.unwrap_or(0), |p| p.failures),
                restart_attempt: row.restart_attempt.unwrap_or(0),
                next_restart_at: row.next_restart_at,
                last_restart_at: row.last_restart_at,
                healthy_since: row.healthy_since,
                stored: row.state.is_some(),
                next_probe: previous
                    .as_ref()
                    .map_or_else(Instant::now, |p| p.next_probe),
                probing: previous.as_ref().is_some_and(|p| p.probing),
                restarting: previous.as_ref().is_some_and(|p| p.restarting),
            };
            seen.insert(row.id, tracked);
        }
        *sites = seen;
        // Sites stopped or deleted while down: their trouble is over.
        let settled = sqlx::query!(
            "SELECT h.site_id, s.organization_id FROM site_health h JOIN sites s ON s.id = h.site_id
              WHERE h.state IN ('down', 'crash_looping')
                AND (s.desired_state <> 'running' OR s.suspended_at IS NOT NULL)"
        )
        .fetch_all(&self.platform.db)
        .await?;
        for row in settled {
            let mut tx = self.platform.db.begin().await?;
            start_afresh(
                &mut tx,
                &self.platform,
                row.organization_id,
                row.site_id,
                "the site was stopped or suspended",
            )
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Starts the probes and restarts that are due, each as its own task.
    async fn start_due_work(
        &self,
        sites: &mut HashMap<Uuid, Tracked>,
        sender: &mpsc::Sender<Observation>,
    ) {
        let now = Instant::now();
        let config = self.platform.monitor.clone();
        for (id, site) in sites.iter_mut() {
            if !site.probing && !site.restarting && site.next_probe <= now {
                site.probing = true;
                let prober = self.prober.clone();
                let runtime = self.runtime.clone();
                let network = self.network.clone();
                let sender = sender.clone();
                let (id, path, upstream, recovering) = (
                    *id,
                    site.health_path.clone(),
                    site.upstream,
                    !site.state.is_serving(),
                );
                let timeout = config.timeout();
                tokio::spawn(async move {
                    // A restarted container may have another address: ask the engine.
                    let address = if recovering {
                        match runtime.container(id, &network).await {
                            Ok(Some(c)) if c.running => c
                                .address
                                .map(|ip| SocketAddr::new(ip, upstream.map_or(8000, |u| u.port()))),
                            _ => None,
                        }
                    } else {
                        upstream
                    };
                    let started = Instant::now();
                    let at = Utc::now();
                    let outcome = match address {
                        Some(address) => prober.probe(address, &path, timeout).await,
                        None => Err("the container is not running".to_owned()),
                    };
                    let _ = sender
                        .send(Observation::Probe {
                            site_id: id,
                            address,
                            at,
                            latency: started.elapsed(),
                            outcome,
                        })
                        .await;
                });
            }
        }
        let due: Vec<Uuid> = sites
            .iter()
            .filter(|(_, s)| {
                s.state == Health::Down
                    && !s.restarting
                    && s.next_restart_at.is_some_and(|at| at <= Utc::now())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Err(error) = self.restart(sites, id, sender).await {
                tracing::warn!(site = %id, %error, "monitor: cannot restart the site");
            }
        }
    }

    /// Restarts a down site, unless it has been restarted too often lately: then it is
    /// crash looping, and left alone.
    async fn restart(
        &self,
        sites: &mut HashMap<Uuid, Tracked>,
        id: Uuid,
        sender: &mpsc::Sender<Observation>,
    ) -> Result<()> {
        let config = self.platform.monitor.clone();
        if !self.still_watched(id).await? {
            sites.remove(&id);
            return Ok(());
        }
        let Some(site) = sites.get_mut(&id) else {
            return Ok(());
        };
        // Restarts since a deployment last made the site healthy count, within the window.
        let recent = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM site_restarts r
                WHERE r.site_id = $1 AND r.at > now() - make_interval(secs => $2)
                  AND r.at > coalesce((SELECT h.restarts_counted_from FROM site_health h
                                        WHERE h.site_id = $1), '-infinity')"#,
            id,
            config.crash_loop_window_secs as f64
        )
        .fetch_one(&self.platform.db)
        .await?;
        if recent >= i64::from(config.crash_loop_restarts) {
            let reason = format!(
                "crashed again after {recent} restarts in {} minutes; no longer restarted (last: {})",
                config.crash_loop_window_secs / 60,
                site.reason.as_deref().unwrap_or("no answer")
            );
            let mut tx = self.platform.db.begin().await?;
            sqlx::query!(
                "UPDATE site_health SET state = 'crash_looping', since = now(), reason = $2,
                        next_restart_at = NULL
                  WHERE site_id = $1",
                id,
                reason
            )
            .execute(&mut *tx)
            .await?;
            let subject = |kind| Subject::site(site.organization_id, id, kind);
            incidents::open(
                &mut tx,
                &self.platform,
                &subject(IncidentKind::CrashLooping),
                &reason,
            )
            .await?;
            if let Some(down) = incidents::open_id(&mut tx, &subject(IncidentKind::Down)).await? {
                incidents::note(&mut tx, down, "crash looping: no longer restarted").await?;
            }
            tx.commit().await?;
            tracing::warn!(site = %id, %reason, "site is crash looping");
            site.state = Health::CrashLooping;
            site.reason = Some(reason);
            site.next_restart_at = None;
            return Ok(());
        }
        site.restarting = true;
        let attempt = site.restart_attempt;
        let waited = Utc::now()
            - site
                .last_restart_at
                .filter(|_| attempt > 0)
                .or(site.next_restart_at)
                .unwrap_or_else(Utc::now);
        let reason = site.reason.clone().unwrap_or_else(|| "down".to_owned());
        let runtime = self.runtime.clone();
        let network = self.network.clone();
        let platform = self.platform.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let outcome = bring_back(&platform, &runtime, &network, id).await;
            let at = Utc::now();
            if let Ok(action) = &outcome {
                crate::infra::metrics::MONITOR_RESTARTS.inc(&[action]);
                let recorded = sqlx::query!(
                    "INSERT INTO site_restarts (site_id, at, attempt, action, reason, waited_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    id,
                    at,
                    attempt + 1,
                    action,
                    reason,
                    waited.num_milliseconds().max(0)
                )
                .execute(&platform.db)
                .await;
                if let Err(error) = recorded {
                    tracing::warn!(site = %id, %error, "monitor: cannot record a restart");
                }
            }
            let _ = sender
                .send(Observation::Restarted {
                    site_id: id,
                    at,
                    outcome,
                })
                .await;
        });
        Ok(())
    }

    /// Takes in one observation: judges the site and acts on a change.
    async fn observe(
        &self,
        sites: &mut HashMap<Uuid, Tracked>,
        observation: Observation,
        pending: &mut Vec<Check>,
    ) {
        let result = match observation {
            Observation::Event(event) => self.on_event(sites, event, pending).await,
            Observation::Probe {
                site_id,
                address,
                at,
                latency,
                outcome,
            } => {
                self.on_probe(sites, site_id, address, at, latency, outcome, pending)
                    .await
            }
            Observation::Restarted {
                site_id,
                at,
                outcome,
            } => self.on_restarted(sites, site_id, at, outcome).await,
        };
        if let Err(error) = result {
            tracing::warn!(%error, "monitor: cannot record what it saw");
        }
    }

    async fn on_event(
        &self,
        sites: &mut HashMap<Uuid, Tracked>,
        event: ContainerEvent,
        pending: &mut Vec<Check>,
    ) -> Result<()> {
        let Some(site) = sites.get_mut(&event.site_id) else {
            return Ok(());
        };
        // The monitor's own restart makes the engine say `die` and `start`: not news.
        let own_restart = site.restarting || site.last_restart_at.is_some_and(|at| event.at <= at);
        if own_restart && event.kind != ContainerEventKind::OutOfMemory {
            return Ok(());
        }
        let reason = match event.kind {
            ContainerEventKind::Died { exit_code } => match exit_code {
                Some(137) => "the app was killed (exit code 137)".to_owned(),
                Some(code) => format!("the app exited (exit code {code})"),
                None => "the app exited".to_owned(),
            },
            ContainerEventKind::OutOfMemory => {
                "the app ran out of memory (its plan's limit)".to_owned()
            }
            ContainerEventKind::Destroyed => "the container was removed".to_owned(),
            ContainerEventKind::Health { healthy: false } | ContainerEventKind::Started => {
                // Worth a look now rather than at the next scheduled probe.
                site.next_probe = Instant::now();
                return Ok(());
            }
            ContainerEventKind::Health { healthy: true } => return Ok(()),
        };
        pending.push(Check {
            site_id: event.site_id,
            at: event.at,
            result: Health::Down,
            latency_ms: None,
            http_status: None,
            from_event: true,
            detail: Some(reason.clone()),
        });
        if site.state == Health::Down && event.kind == ContainerEventKind::OutOfMemory {
            // `oom` comes just before `die`, or after it: the better reason wins.
            site.reason = Some(reason.clone());
            sqlx::query!(
                "UPDATE site_health SET reason = $2 WHERE site_id = $1",
                event.site_id,
                reason
            )
            .execute(&self.platform.db)
            .await?;
            return Ok(());
        }
        if site.state.is_serving() {
            self.went_down(event.site_id, site, &reason).await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn on_probe(
        &self,
        sites: &mut HashMap<Uuid, Tracked>,
        site_id: Uuid,
        address: Option<SocketAddr>,
        at: DateTime<Utc>,
        latency: Duration,
        outcome: std::result::Result<u16, String>,
        pending: &mut Vec<Check>,
    ) -> Result<()> {
        let config = self.platform.monitor.clone();
        let Some(site) = sites.get_mut(&site_id) else {
            return Ok(());
        };
        site.probing = false;
        let latency_ms = u32::try_from(latency.as_millis()).unwrap_or(u32::MAX);
        let (result, detail) = match &outcome {
            Ok(status) if *status >= 500 => (
                Health::Degraded,
                Some(format!("the health path answered {status}")),
            ),
            Ok(status) if *status >= 400 => (
                Health::Down,
                Some(format!("the health path answered {status}")),
            ),
            Ok(_) if u64::from(latency_ms) > config.degraded_ms => {
                (Health::Degraded, Some(format!("slow: {latency_ms} ms")))
            }
            Ok(_) => (Health::Up, None),
            Err(why) => (Health::Down, Some(why.clone())),
        };
        pending.push(Check {
            site_id,
            at,
            result,
            latency_ms: outcome.is_ok().then_some(latency_ms),
            http_status: outcome.as_ref().ok().copied(),
            from_event: false,
            detail: detail.clone(),
        });
        site.next_probe = Instant::now()
            + match site.state {
                Health::Down => RECOVERING_PROBE,
                _ => config.interval(),
            };
        if result.is_serving() {
            site.failures = 0;
            if !site.state.is_serving() {
                self.came_back(site_id, site, result, address, latency_ms)
                    .await?;
                site.next_probe = Instant::now() + config.interval();
            } else {
                let reset = site.restart_attempt > 0
                    && site.healthy_since.is_some_and(|since| {
                        (Utc::now() - since).num_seconds()
                            >= i64::try_from(config.healthy_reset_secs).unwrap_or(i64::MAX)
                    });
                if reset {
                    site.restart_attempt = 0;
                }
                if result != site.state || reset || !site.stored {
                    site.state = result;
                    site.reason = detail.clone();
                    if site.healthy_since.is_none() {
                        site.healthy_since = Some(Utc::now());
                    }
                    self.store(site_id, site).await?;
                }
            }
            return Ok(());
        }
        site.failures += 1;
        if site.state.is_serving()
            && site.failures >= i32::try_from(config.failures_to_down.max(1)).unwrap_or(1)
        {
            let why = format!(
                "{} ({})",
                "the health path did not answer",
                detail.unwrap_or_default()
            );
            self.went_down(site_id, site, &why).await?;
        } else if site.state.is_serving() {
            // Not yet down: look again soon rather than in a full interval.
            site.next_probe = Instant::now() + RECOVERING_PROBE.max(config.interval() / 5);
        }
        Ok(())
    }

    async fn on_restarted(
        &self,
        sites: &mut HashMap<Uuid, Tracked>,
        site_id: Uuid,
        at: DateTime<Utc>,
        outcome: std::result::Result<&'static str, String>,
    ) -> Result<()> {
        let config = self.platform.monitor.clone();
        let Some(site) = sites.get_mut(&site_id) else {
            return Ok(());
        };
        site.restarting = false;
        site.restart_attempt += 1;
        site.last_restart_at = Some(at);
        site.next_restart_at = Some(
            at + chrono::Duration::from_std(
                config.restart_delay(u32::try_from(site.restart_attempt).unwrap_or(u32::MAX)),
            )
            .unwrap_or_default(),
        );
        site.next_probe = Instant::now();
        let message = match &outcome {
            Ok(action) => format!("{action} (attempt {})", site.restart_attempt),
            Err(why) => format!("restart failed: {why}"),
        };
        tracing::info!(site = %site_id, %message, "monitor restarted a site");
        let mut tx = self.platform.db.begin().await?;
        store(&mut tx, site_id, site).await?;
        let subject = Subject::site(site.organization_id, site_id, IncidentKind::Down);
        if let Some(incident) = incidents::open_id(&mut tx, &subject).await? {
            incidents::note(&mut tx, incident, &message).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn went_down(&self, site_id: Uuid, site: &mut Tracked, reason: &str) -> Result<()> {
        if !self.still_watched(site_id).await? {
            return Ok(());
        }
        let config = self.platform.monitor.clone();
        site.state = Health::Down;
        site.reason = Some(reason.to_owned());
        site.healthy_since = None;
        // Healthy long enough since the last restart: start the waits afresh.
        if site.last_restart_at.is_some_and(|at| {
            (Utc::now() - at).num_seconds()
                >= i64::try_from(config.healthy_reset_secs).unwrap_or(i64::MAX)
        }) {
            site.restart_attempt = 0;
        }
        let wait = config.restart_delay(u32::try_from(site.restart_attempt).unwrap_or(u32::MAX));
        site.next_restart_at =
            Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default());
        site.next_probe = Instant::now() + RECOVERING_PROBE;
        tracing::warn!(site = %site_id, reason, "site is down");
        let mut tx = self.platform.db.begin().await?;
        store(&mut tx, site_id, site).await?;
        site.stored = true;
        let (incident, opened) = incidents::open(
            &mut tx,
            &self.platform,
            &Subject::site(site.organization_id, site_id, IncidentKind::Down),
            reason,
        )
        .await?;
        if !opened {
            incidents::note(&mut tx, incident, &format!("down again: {reason}")).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn came_back(
        &self,
        site_id: Uuid,
        site: &mut Tracked,
        result: Health,
        address: Option<SocketAddr>,
        latency_ms: u32,
    ) -> Result<()> {
        site.state = result;
        site.reason = None;
        site.healthy_since = Some(Utc::now());
        site.next_restart_at = None;
        tracing::info!(site = %site_id, latency_ms, "site is answering again");
        let mut tx = self.platform.db.begin().await?;
        // The route goes to the container as it is now, before visitors are let back in.
        if let Some(address) = address.filter(|a| Some(*a) != site.upstream) {
            sqlx::query!(
                "UPDATE sites SET upstream = $2 WHERE id = $1",
                site_id,
                address.to_string()
            )
            .execute(&mut *tx)
            .await?;
            site.upstream = Some(address);
        }
        store(&mut tx, site_id, site).await?;
        let message = format!("answering again ({latency_ms} ms)");
        for kind in [IncidentKind::Down, IncidentKind::CrashLooping] {
            incidents::resolve(
                &mut tx,
                &self.platform,
                &Subject::site(site.organization_id, site_id, kind),
                &message,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn store(&self, site_id: Uuid, site: &mut Tracked) -> Result<()> {
        let mut conn = self.platform.db.acquire().await?;
        store(&mut conn, site_id, site).await?;
        site.stored = true;
        Ok(())
    }

    /// Judges error rates and usage against limits, in the background.
    fn judge_traffic(&self) -> tokio::task::JoinHandle<()> {
        let platform = self.platform.clone();
        tokio::spawn(async move {
            match traffic::judge(&platform).await {
                Ok(judged) if judged != traffic::Judged::default() => {
                    tracing::info!(
                        opened = judged.opened,
                        resolved = judged.resolved,
                        "traffic incidents"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "monitor: cannot judge error rates and usage"),
            }
        })
    }

    /// Samples memory and CPU of each site's container, a few at a time, in the background.
    fn sample_resources(&self, ids: Vec<Uuid>) -> tokio::task::JoinHandle<()> {
        let runtime = self.runtime.clone();
        let db = self.platform.db.clone();
        tokio::spawn(async move {
            let samples = futures_util::stream::iter(ids)
                .map(|id| {
                    let runtime = runtime.clone();
                    async move {
                        let name = crate::infra::docker::container_name(id);
                        (id, runtime.resource_use(&name).await)
                    }
                })
                .buffer_unordered(4)
                .collect::<Vec<_>>()
                .await;
            for (id, sample) in samples {
                let Ok(sample) = sample else { continue };
                let stored = sqlx::query!(
                    "UPDATE site_health SET memory_bytes = $2, cpu_percent = $3 WHERE site_id = $1",
                    id,
                    i64::try_from(sample.memory_bytes).unwrap_or(i64::MAX),
                    sample.cpu_percent as f32
                )
                .execute(&db)
                .await;
                if let Err(error) = stored {
                    tracing::debug!(%error, "cannot store a resource sample");
                }
            }
        })
    }

    /// Whether the site is still the monitor's to judge: active, meant to run, not
    /// suspended. The list in memory may be up to two seconds old, and a member's Stop or
    /// Restart makes the engine report a `die` the monitor must not answer.
    async fn still_watched(&self, site_id: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM sites WHERE id = $1 AND status = 'active'
                 AND desired_state = 'running' AND suspended_at IS NULL) AS "watched!""#,
            site_id
        )
        .fetch_one(&self.platform.db)
        .await?)
    }
}

/// Forgets what the monitor last saw of a site (deployed again and healthy, or no longer
/// meant to run): `up`, restart waits and the crash-loop count start afresh, and its
/// down and crash-looping incidents are resolved with `message`.
pub(crate) async fn start_afresh(
    conn: &mut sqlx::PgConnection,
    platform: &Platform,
    organization_id: Uuid,
    site_id: Uuid,
    message: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE site_health SET state = 'up', since = now(), reason = NULL, failures = 0,
                restart_attempt = 0, next_restart_at = NULL, healthy_since = now(),
                restarts_counted_from = now()
          WHERE site_id = $1",
        site_id
    )
    .execute(&mut *conn)
    .await?;
    for kind in [IncidentKind::Down, IncidentKind::CrashLooping] {
        incidents::resolve(
            &mut *conn,
            platform,
            &Subject::site(organization_id, site_id, kind),
            message,
        )
        .await?;
    }
    Ok(())
}

/// Writes the tracked health of a site through to `site_health`.
async fn store(conn: &mut sqlx::PgConnection, site_id: Uuid, site: &Tracked) -> Result<()> {
    sqlx::query!(
        "INSERT INTO site_health (site_id, state, since, reason, failures, restart_attempt,
                                  next_restart_at, last_restart_at, healthy_since, last_check_at)
         VALUES ($1, $2, now(), $3, $4, $5, $6, $7, $8, now())
         ON CONFLICT (site_id) DO UPDATE SET
            since = CASE WHEN site_health.state = EXCLUDED.state THEN site_health.since ELSE now() END,
            state = EXCLUDED.state, reason = EXCLUDED.reason, failures = EXCLUDED.failures,
            restart_attempt = EXCLUDED.restart_attempt, next_restart_at = EXCLUDED.next_restart_at,
            last_restart_at = EXCLUDED.last_restart_at, healthy_since = EXCLUDED.healthy_since,
            last_check_at = now()",
        site_id,
        site.state.as_str(),
        site.reason,
        site.failures,
        site.restart_attempt,
        site.next_restart_at,
        site.last_restart_at,
        site.healthy_since
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Restarts (or starts) the site's container; a container that vanished is left to the
/// reconciler, which makes it again. Returns what was done.
async fn bring_back(
    platform: &Platform,
    runtime: &Runtime,
    network: &str,
    site_id: Uuid,
) -> std::result::Result<&'static str, String> {
    match runtime.container(site_id, network).await {
        Ok(Some(container)) if container.running => runtime
            .restart_within(&container.id, RESTART_GRACE_SECS)
            .await
            .map(|()| "restarted")
            .map_err(|e| e.to_string()),
        Ok(Some(container)) => runtime
            .start(&container.id)
            .await
            .map(|()| "started")
            .map_err(|e| e.to_string()),
        Ok(None) => {
            let asked = async {
                sqlx::query!(
                    "UPDATE sites SET status = 'failed', status_reason = 'the container vanished; it is being made again',
                            next_attempt_at = now(), failures = 0, updated_at = now()
                      WHERE id = $1 AND status = 'active'",
                    site_id
                )
                .execute(&platform.db)
                .await?;
                sqlx::query!(
                    "SELECT pg_notify($1, $2)",
                    CHANNEL_SITES,
                    site_id.to_string()
                )
                .execute(&platform.db)
                .await?;
                Ok::<_, sqlx::Error>(())
            };
            asked.await.map(|()| "recreate").map_err(|e| e.to_string())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// Follows the engine's events until `stop`, reconnecting after a second when the stream
/// ends or the engine is away.
async fn follow_events(
    runtime: Arc<Runtime>,
    instance: Uuid,
    sender: mpsc::Sender<Observation>,
    stop: CancellationToken,
) {
    loop {
        match runtime.events(instance) {
            Ok(stream) => {
                tokio::pin!(stream);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        item = stream.next() => match item {
                            Some(Ok(event)) => {
                                if sender.send(Observation::Event(event)).await.is_err() {
                                    return;
                                }
                            }
                            Some(Err(RuntimeError::Unavailable(detail))) => {
                                tracing::debug!(%detail, "engine events: the engine is away");
                                break;
                            }
                            Some(Err(error)) => {
                                tracing::warn!(%error, "engine events: stream failed");
                                break;
                            }
                            None => break,
                        }
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "engine events: cannot connect"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
