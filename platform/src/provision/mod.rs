//! The reconciler: makes each site's real world (tenant schema and role, image, volume,
//! container) match what its row asks for, one idempotent step at a time.
//!
//! Level-triggered: every pass reads the row and looks at what exists, so a pass that was
//! cut off anywhere (task aborted, process killed) is simply run again. Each step is
//! recorded in `deployment_steps` with its timing, which is what the dashboard shows live.
//! Work is claimed per site with a transaction-scoped advisory lock, so any number of
//! server processes can run reconcilers against one database.

mod health;
mod pass;
mod steps;
mod storage;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::Platform;
use crate::config::ProvisionConfig;
use crate::infra::docker::{Runtime, RuntimeError, SiteNetwork};
use crate::infra::tenant_db::TenantDb;
use crate::kernel::Result;
use crate::sites::{DeploymentReason, DesiredState, SiteStatus};
use crate::tenancy::{Action, Membership};

pub use crate::infra::notify::{CHANNEL_PROGRESS, CHANNEL_SITES};

/// Namespace of the advisory locks that claim sites (first key of the two-key form).
const LOCK_NAMESPACE: i32 = 0x0511_19a7;

/// The steps, in order, as recorded and shown.
pub use crate::sites::DeploymentStep as Step;

/// A site's row, as the reconciler needs it.
#[derive(Debug, Clone)]
struct SiteRow {
    id: Uuid,
    organization_id: Uuid,
    name: String,
    slug: String,
    template: String,
    desired_state: DesiredState,
    generation: i64,
    status: SiteStatus,
    observed_generation: i64,
    failures: i32,
    plan_id: String,
    db_password_sealed: Vec<u8>,
    api_token_sealed: Vec<u8>,
    webhook_secret_sealed: Vec<u8>,
}

#[derive(Debug, Clone)]
struct DeploymentRow {
    id: Uuid,
    reason: DeploymentReason,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// What one pass over a site ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already as desired; nothing done.
    Converged,
    /// Steps ran and the site is now as desired.
    Done,
    /// Another process holds the site.
    Busy,
    /// Waiting for a dependency; try again later.
    Waiting(String),
    /// The site failed; retried after a backoff.
    Failed(String),
    /// The process began stopping between two steps; the next pass resumes.
    Interrupted,
}

/// A hook for crash-safety tests: after this step succeeds the pass never continues
/// (the test then aborts the task, as a crash would).
pub type Halt = Arc<Mutex<Option<Step>>>;

pub struct Reconciler {
    platform: Platform,
    runtime: Arc<Runtime>,
    tenants: TenantDb,
    config: ProvisionConfig,
    instance: Uuid,
    network: Mutex<Option<SiteNetwork>>,
    in_flight: Mutex<HashSet<Uuid>>,
    halt_after: Halt,
    /// Cancelled when `run` is told to stop: passes end before their next step.
    stopping: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("network", &self.config.network)
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// Opens (or creates) the tenant database. Docker is only contacted when needed, so
    /// the reconciler starts even while the engine is down.
    pub async fn new(
        platform: Platform,
        runtime: Arc<Runtime>,
        config: ProvisionConfig,
    ) -> Result<Self> {
        let mut tenants = TenantDb::open(&platform.db, &config.tenant_database).await?;
        if let Some(port) = config.tenant_database_port {
            tenants.port = port;
        }
        let instance = crate::infra::db::instance_id(&platform.db).await?;
        Ok(Self {
            platform,
            runtime,
            tenants,
            config,
            instance,
            network: Mutex::new(None),
            in_flight: Mutex::new(HashSet::new()),
            halt_after: Arc::new(Mutex::new(None)),
            stopping: tokio_util::sync::CancellationToken::new(),
        })
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// This installation's id (label `slipway.instance` on everything it creates).
    pub fn instance(&self) -> Uuid {
        self.instance
    }

    pub fn tenants(&self) -> &TenantDb {
        &self.tenants
    }

    /// For crash-safety tests: passes stop dead after `step` (see [`Halt`]).
    pub fn halt_after(&self, step: Option<Step>) {
        if let Ok(mut halt) = self.halt_after.lock() {
            *halt = step;
        }
    }

    /// Runs until `shutdown` resolves: wakes on `slipway_sites` notifications, on retries
    /// falling due (checked every second) and for a full resync every
    /// `resync_interval_secs`, which also removes orphaned containers. At shutdown, passes
    /// in progress finish the step they are in and stop; this returns when they have.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut changes = self.platform.notifications.subscribe();
        let passes = tokio_util::task::TaskTracker::new();
        let workers = Arc::new(tokio::sync::Semaphore::new(self.config.workers.max(1)));
        let resync_every = Duration::from_secs(self.config.resync_interval_secs.max(1));
        let mut last_resync: Option<Instant> = None;
        tokio::pin!(shutdown);
        'run: loop {
            let resync = last_resync.is_none_or(|t| t.elapsed() >= resync_every);
            let ids = if resync {
                last_resync = Some(Instant::now());
                if let Err(error) = self.remove_orphans().await {
                    tracing::warn!(%error, "cannot look for orphaned containers");
                }
                self.all_live_sites().await
            } else {
                self.due_sites().await
            };
            match ids {
                Ok(ids) => {
                    for id in ids {
                        if !self.mark_in_flight(id) {
                            continue;
                        }
                        // All workers busy: wait for one, unless the server is stopping.
                        let permit = tokio::select! {
                            permit = workers.clone().acquire_owned() => permit.ok(),
                            () = &mut shutdown => None,
                        };
                        let Some(permit) = permit else {
                            self.clear_in_flight(id);
                            break 'run;
                        };
                        let this = self.clone();
                        passes.spawn(async move {
                            if let Err(error) = this.reconcile_site(id).await {
                                tracing::warn!(site = %id, %error, "reconcile pass failed");
                            }
                            this.clear_in_flight(id);
                            drop(permit);
                        });
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot list sites to reconcile"),
            }
            tokio::select! {
                _ = &mut shutdown => break 'run,
                () = changes.changed(CHANNEL_SITES) => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.stopping.cancel();
        passes.close();
        passes.wait().await;
    }

    fn mark_in_flight(&self, id: Uuid) -> bool {
        self.in_flight
            .lock()
            .map(|mut s| s.insert(id))
            .unwrap_or(false)
    }

    fn clear_in_flight(&self, id: Uuid) {
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(&id);
        }
    }

    /// Sites whose desired state is not reached, and whose retry time has come.
    async fn due_sites(&self) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar!(
            "SELECT id FROM sites
              WHERE status <> 'deleted' AND next_attempt_at <= now()
                AND (observed_generation < generation
                     OR (desired_state = 'running' AND status <> 'active')
                     OR (desired_state = 'stopped' AND status <> 'stopped')
                     OR desired_state = 'deleted')
              ORDER BY next_attempt_at"
        )
        .fetch_all(&self.platform.db)
        .await?)
    }

    /// Every site not deleted: a resync also checks converged sites for drift.
    async fn all_live_sites(&self) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar!(
            "SELECT id FROM sites WHERE status <> 'deleted' AND next_attempt_at <= now()"
        )
        .fetch_all(&self.platform.db)
        .await?)
    }

    /// Reconciles every due site, one after another, until none is left (or `limit` passes
    /// were made). Sites waiting out a backoff are not due. For tests and the CLI.
    pub async fn run_until_idle(&self, limit: usize) -> Result<Vec<(Uuid, Outcome)>> {
        let mut outcomes = Vec::new();
        for _ in 0..limit {
            let due = self.due_sites().await?;
            if due.is_empty() {
                break;
            }
            for id in due {
                let outcome = self.reconcile_site(id).await?;
                outcomes.push((id, outcome));
            }
        }
        Ok(outcomes)
    }

    /// One pass over one site, under its claim: does nothing if another process holds it.
    #[tracing::instrument(skip_all, fields(site = %site_id))]
    pub async fn reconcile_site(&self, site_id: Uuid) -> Result<Outcome> {
        let mut claim = self.platform.db.begin().await?;
        if !claim_site(&mut claim, site_id).await? {
            return Ok(Outcome::Busy);
        }
        let outcome = self.pass(site_id).await;
        // Releases the claim (rollback: the claim transaction wrote nothing).
        claim.rollback().await?;
        outcome
    }
}

/// Claims `site_id` for the transaction `tx` (released when it ends): what a pass holds
/// while it works on the site, and what anything that must not overlap a pass takes.
/// `false`: someone else holds it (a pass is running now).
pub async fn claim_site(tx: &mut sqlx::PgConnection, site_id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS "claimed!""#,
        LOCK_NAMESPACE,
        site_id.to_string()
    )
    .fetch_one(&mut *tx)
    .await?)
}

/// [`claim_site`], waiting up to `wait` for a pass that holds the claim to end: what a
/// person's action takes (refused for a pass of a few milliseconds, it would fail at
/// random). `false`: a pass still held it after `wait`; the transaction is then aborted
/// and must end.
pub async fn claim_site_within(
    tx: &mut sqlx::PgConnection,
    site_id: Uuid,
    wait: Duration,
) -> Result<bool> {
    let previous: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(format!("{}ms", wait.as_millis().max(1)))
        .execute(&mut *tx)
        .await?;
    let claimed = sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_NAMESPACE)
        .bind(site_id.to_string())
        .execute(&mut *tx)
        .await;
    match claimed {
        Ok(_) => {
            sqlx::query("SELECT set_config('lock_timeout', $1, true)")
                .bind(previous)
                .execute(&mut *tx)
                .await?;
            Ok(true)
        }
        // lock_not_available: the wait ran out.
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("55P03") => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// `base * 2^failures`, at most `cap`: 2 s, 4 s, 8 s, ...
fn backoff(failures: i32, cap: Duration) -> Duration {
    let exponent = u32::try_from(failures.clamp(0, 16)).unwrap_or(16);
    Duration::from_secs(2u64.saturating_mul(1u64 << exponent)).min(cap)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The last `lines` lines of the site's container log (empty when there is no container).
/// Owners, admins and editors only.
pub async fn container_logs(
    platform: &Platform,
    runtime: &Runtime,
    by: &Membership,
    site_id: Uuid,
    lines: usize,
) -> Result<Vec<String>> {
    by.require(Action::ViewLogs)?;
    // Scoped: the site must belong to the caller's organization.
    crate::sites::get(platform, by, site_id).await?;
    match runtime
        .logs(&crate::infra::docker::container_name(site_id), lines)
        .await
    {
        Ok(lines) => Ok(lines),
        Err(RuntimeError::NotFound(_)) => Ok(Vec::new()),
        // Logs are a view, not a duty: say why there are none instead of failing the page.
        Err(RuntimeError::Unavailable(detail)) => {
            Ok(vec![format!("(Docker engine unavailable: {detail})")])
        }
        Err(RuntimeError::Failed(detail)) => Ok(vec![format!("(no logs: {detail})")]),
    }
}

/// How many of a site's last log lines the dashboard shows: its page, and the live stream
/// that starts with them.
pub const LOG_LINES_SHOWN: usize = 200;

/// The site's container output, line by line: its last [`LOG_LINES_SHOWN`] lines, then
/// what it writes until the container stops (owners, admins and editors only; scoped to
/// the caller's organization).
pub async fn follow_logs(
    platform: &Platform,
    runtime: &Runtime,
    by: &Membership,
    site_id: Uuid,
) -> Result<impl futures_util::Stream<Item = String> + Send + use<>> {
    by.require(Action::ViewLogs)?;
    crate::sites::get(platform, by, site_id).await?;
    Ok(runtime.follow_logs(
        &crate::infra::docker::container_name(site_id),
        LOG_LINES_SHOWN,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cap = Duration::from_secs(600);
        assert_eq!(backoff(0, cap), Duration::from_secs(2));
        assert_eq!(backoff(1, cap), Duration::from_secs(4));
        assert_eq!(backoff(5, cap), Duration::from_secs(64));
        assert_eq!(backoff(30, cap), cap);
        assert_eq!(backoff(-3, cap), Duration::from_secs(2));
    }
}
