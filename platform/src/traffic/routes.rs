//! The proxy's route table: which site answers for a `Host`, and how.
//!
//! Reads are lock-free (an `ArcSwap` of an immutable map: one atomic load and one hash
//! lookup per request). Writers build a whole new map from Postgres and swap it in; they
//! do so when `slipway_routes` is notified (a site's status, upstream, slug or suspension
//! changed, a domain was added, verified or removed, a plan changed), coalescing bursts,
//! and on a periodic full resync in case a notification was missed.
//!
//! Only `active` sites with a known upstream, not known down by the monitor, route to a
//! container. Other live sites stay in the table so that visitors get the right page:
//! suspended, restarting, or not available right now.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::Platform;
use crate::infra::notify::CHANNEL_ROUTES;
use crate::kernel::Result;
use crate::traffic::usage::{Meters, SiteMeter};

/// What the proxy does for a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Forward to the site's container.
    Upstream(SocketAddr),
    /// The site is suspended: say so, keep the data.
    Suspended,
    /// The site exists but cannot answer now (being set up, stopped, failed).
    Unavailable(Unavailable),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    Starting,
    Stopped,
    Down,
    /// The monitor found it down and is restarting it.
    Restarting,
    /// It kept crashing; the monitor stopped restarting it.
    Crashing,
}

/// One site as the proxy sees it.
#[derive(Debug)]
pub struct Route {
    pub site_id: Uuid,
    pub organization_id: Uuid,
    pub slug: String,
    pub target: Target,
    /// The plan's largest request body, in bytes.
    pub body_limit: u64,
    /// Permits for requests in flight (the plan's `concurrent_requests`).
    pub in_flight: Arc<Semaphore>,
    pub meter: Arc<SiteMeter>,
}

/// The host -> route map and what keeps it current.
#[derive(Debug)]
pub struct RouteTable {
    base_domain: String,
    hosts: ArcSwap<HashMap<Box<str>, Arc<Route>>>,
    meters: Arc<Meters>,
    /// Concurrency limits survive reloads (in-flight requests hold their permits); a new
    /// semaphore replaces one whose size changed.
    limiters: Mutex<HashMap<Uuid, (usize, Arc<Semaphore>)>>,
}

impl RouteTable {
    /// An empty table for sites under `base_domain` (e.g. `localhost`).
    pub fn new(base_domain: &str, meters: Arc<Meters>) -> Self {
        Self {
            base_domain: base_domain.trim_end_matches('.').to_ascii_lowercase(),
            hosts: ArcSwap::from_pointee(HashMap::new()),
            meters,
            limiters: Mutex::new(HashMap::new()),
        }
    }

    pub fn base_domain(&self) -> &str {
        &self.base_domain
    }

    pub fn meters(&self) -> &Arc<Meters> {
        &self.meters
    }

    /// The route for a host already normalized by [`normalize_host`].
    pub fn lookup(&self, host: &str) -> Option<Arc<Route>> {
        self.hosts.load().get(host).cloned()
    }

    /// How many hosts route somewhere (slug hosts plus verified domains).
    pub fn len(&self) -> usize {
        self.hosts.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rebuilds the whole table from Postgres and swaps it in.
    #[tracing::instrument(skip_all)]
    pub async fn reload(&self, platform: &Platform) -> Result<usize> {
        let sites = sqlx::query!(
            r#"SELECT s.id, s.organization_id, s.slug, s.status, s.upstream, s.suspended_at IS NOT NULL AS suspended,
                    o.plan_id, h.state AS "health?",
                    COALESCE(array_agg(d.domain) FILTER (WHERE d.domain IS NOT NULL), '{}') AS domains
               FROM sites s
               JOIN organizations o ON o.id = s.organization_id
               LEFT JOIN site_domains d ON d.site_id = s.id AND d.verified_at IS NOT NULL
               LEFT JOIN site_health h ON h.site_id = s.id
              WHERE s.status <> 'deleted' AND s.desired_state <> 'deleted'
              GROUP BY s.id, o.plan_id, h.state"#
        )
        .fetch_all(&platform.db)
        .await?;
        let mut hosts = HashMap::with_capacity(sites.len() * 2);
        let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut live = HashMap::with_capacity(sites.len());
        for site in sites {
            let limits = platform.plan(&site.plan_id).map(|p| &p.limits);
            let body_limit =
                u64::from(limits.map_or(0, |l| l.request_body_mb)).saturating_mul(1024 * 1024);
            let concurrency = limits.map_or(0, |l| l.concurrent_requests).max(1) as usize;
            let in_flight = match limiters.get(&site.id) {
                Some((size, semaphore)) if *size == concurrency => semaphore.clone(),
                _ => Arc::new(Semaphore::new(concurrency.min(Semaphore::MAX_PERMITS))),
            };
            live.insert(site.id, (concurrency, in_flight.clone()));
            let target = if site.suspended.unwrap_or(false) {
                Target::Suspended
            } else {
                match (site.status.as_str(), site.upstream.as_deref()) {
                    // Known down: no visitor waits for a container that is not there.
                    ("active", _) if site.health.as_deref() == Some("down") => {
                        Target::Unavailable(Unavailable::Restarting)
                    }
                    ("active", _) if site.health.as_deref() == Some("crash_looping") => {
                        Target::Unavailable(Unavailable::Crashing)
                    }
                    ("active", Some(upstream)) => match upstream.parse() {
                        Ok(address) => Target::Upstream(address),
                        Err(_) => Target::Unavailable(Unavailable::Down),
                    },
                    ("pending" | "provisioning", _) => Target::Unavailable(Unavailable::Starting),
                    ("stopping" | "stopped", _) => Target::Unavailable(Unavailable::Stopped),
                    _ => Target::Unavailable(Unavailable::Down),
                }
            };
            let route = Arc::new(Route {
                site_id: site.id,
                organization_id: site.organization_id,
                slug: site.slug.clone(),
                target,
                body_limit,
                in_flight,
                meter: self.meters.meter(site.id, site.organization_id),
            });
            hosts.insert(
                format!("{}.{}", site.slug, self.base_domain).into_boxed_str(),
                route.clone(),
            );
            for domain in site.domains.unwrap_or_default() {
                hosts.insert(domain.into_boxed_str(), route.clone());
            }
        }
        *limiters = live;
        drop(limiters);
        let count = hosts.len();
        self.hosts.store(Arc::new(hosts));
        Ok(count)
    }

    /// Keeps the table current until `shutdown`: reloads on `slipway_routes` (bursts of
    /// notifications coalesce into one reload) and every `resync`.
    pub async fn run(
        self: Arc<Self>,
        platform: Platform,
        resync: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut changes = platform.notifications.subscribe();
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.reload(&platform).await {
                tracing::warn!(%error, "route table reload failed; keeping the previous table");
            }
            tokio::select! {
                () = changes.changed(CHANNEL_ROUTES) => {}
                () = tokio::time::sleep(resync) => {}
                () = &mut shutdown => break,
            }
        }
    }
}
