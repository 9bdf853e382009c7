//! The reconciler: makes each site's real world (tenant schema and role, image, volume,
//! container) match what its row asks for, one idempotent step at a time.
//!
//! Level-triggered: every pass reads the row and looks at what exists, so a pass that was
//! cut off anywhere (task aborted, process killed) is simply run again. Each step is
//! recorded in `deployment_steps` with its timing, which is what the dashboard shows live.
//! Work is claimed per site with a transaction-scoped advisory lock, so any number of
//! server processes can run reconcilers against one database.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::Platform;
use crate::config::ProvisionConfig;
use crate::error::{Error, Result};
use crate::orgs::{Action, Membership};
use crate::runtime::{ContainerSpec, ResourceLimits, Runtime, RuntimeError};
use crate::sites::{DesiredState, seal_context};
use crate::templates::Template;
use crate::tenant_db::{TenantDb, TenantIdent};

/// Channel the `sites` triggers notify on (payload: site id).
pub const CHANNEL_SITES: &str = "slipway_sites";
/// Channel the reconciler notifies after each recorded step (payload: site id).
pub const CHANNEL_PROGRESS: &str = "slipway_site_progress";

/// Namespace of the advisory locks that claim sites (first key of the two-key form).
const LOCK_NAMESPACE: i32 = 0x0511_19a7;

/// The steps, in order, as recorded and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Database,
    Image,
    Container,
    Start,
    Health,
    Stop,
    RemoveContainer,
    RemoveVolume,
    DropDatabase,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Database => "database",
            Step::Image => "image",
            Step::Container => "container",
            Step::Start => "start",
            Step::Health => "health",
            Step::Stop => "stop",
            Step::RemoveContainer => "remove-container",
            Step::RemoveVolume => "remove-volume",
            Step::DropDatabase => "drop-database",
        }
    }

    pub const PROVISION: [Step; 5] = [
        Step::Database,
        Step::Image,
        Step::Container,
        Step::Start,
        Step::Health,
    ];
    pub const DELETE: [Step; 3] = [
        Step::RemoveContainer,
        Step::RemoveVolume,
        Step::DropDatabase,
    ];
}

/// Why a step did not succeed.
#[derive(Debug)]
enum StepError {
    /// A dependency is down; the site waits for it (and says so) without counting a failure.
    Waiting {
        dependency: &'static str,
        detail: String,
    },
    /// The site itself cannot get there; recorded as `failed`, retried with backoff.
    Failed(String),
}

impl From<RuntimeError> for StepError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::Unavailable(detail) => StepError::Waiting {
                dependency: "Docker engine",
                detail,
            },
            other => StepError::Failed(other.to_string()),
        }
    }
}

impl From<Error> for StepError {
    fn from(error: Error) -> Self {
        match error {
            // The server is out of reach: wait for it. An error the server answered with
            // (a refused statement) is a failure of this site, retried with backoff.
            Error::Database(
                e @ (sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)),
            ) => StepError::Waiting {
                dependency: "PostgreSQL",
                detail: e.to_string(),
            },
            other => StepError::Failed(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for StepError {
    fn from(error: sqlx::Error) -> Self {
        StepError::from(Error::Database(error))
    }
}

type StepResult<T = String> = std::result::Result<T, StepError>;

/// A site's row, as the reconciler needs it.
#[derive(Debug, Clone)]
struct SiteRow {
    id: Uuid,
    name: String,
    slug: String,
    template: String,
    desired_state: DesiredState,
    generation: i64,
    status: String,
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
    reason: String,
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
    gateway: Mutex<Option<IpAddr>>,
    in_flight: Mutex<HashSet<Uuid>>,
    halt_after: Halt,
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
        let instance = sqlx::query_scalar!("SELECT instance_id FROM instance")
            .fetch_one(&platform.db)
            .await?;
        Ok(Self {
            platform,
            runtime,
            tenants,
            config,
            instance,
            gateway: Mutex::new(None),
            in_flight: Mutex::new(HashSet::new()),
            halt_after: Arc::new(Mutex::new(None)),
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
    /// `resync_interval_secs`, which also removes orphaned containers.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(crate::db::wake_on_notify(
            self.platform.db.clone(),
            CHANNEL_SITES,
            wake.clone(),
        ));
        let workers = Arc::new(tokio::sync::Semaphore::new(self.config.workers.max(1)));
        let resync_every = Duration::from_secs(self.config.resync_interval_secs.max(1));
        let mut last_resync: Option<Instant> = None;
        tokio::pin!(shutdown);
        loop {
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
                        let Ok(permit) = workers.clone().acquire_owned().await else {
                            return;
                        };
                        let this = self.clone();
                        tokio::spawn(async move {
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
                _ = &mut shutdown => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        listener.abort();
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
        let claimed = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS "claimed!""#,
            LOCK_NAMESPACE,
            site_id.to_string()
        )
        .fetch_one(&mut *claim)
        .await?;
        if !claimed {
            return Ok(Outcome::Busy);
        }
        let outcome = self.pass(site_id).await;
        // Releases the claim (rollback: the claim transaction wrote nothing).
        claim.rollback().await?;
        outcome
    }

    async fn load(&self, site_id: Uuid) -> Result<Option<SiteRow>> {
        let row = sqlx::query!(
            "SELECT s.id, s.name, s.slug, s.template, s.desired_state,
                    s.generation, s.status, s.observed_generation, s.failures, o.plan_id,
                    s.db_password_sealed, s.api_token_sealed, s.webhook_secret_sealed
               FROM sites s JOIN organizations o ON o.id = s.organization_id
              WHERE s.id = $1",
            site_id
        )
        .fetch_optional(&self.platform.db)
        .await?;
        row.map(|r| {
            Ok(SiteRow {
                id: r.id,
                name: r.name,
                slug: r.slug,
                template: r.template,
                desired_state: DesiredState::parse(&r.desired_state)?,
                generation: r.generation,
                status: r.status,
                observed_generation: r.observed_generation,
                failures: r.failures,
                plan_id: r.plan_id,
                db_password_sealed: r.db_password_sealed,
                api_token_sealed: r.api_token_sealed,
                webhook_secret_sealed: r.webhook_secret_sealed,
            })
        })
        .transpose()
    }

    async fn pass(&self, site_id: Uuid) -> Result<Outcome> {
        let Some(site) = self.load(site_id).await? else {
            return Ok(Outcome::Converged);
        };
        let converged_status = match site.desired_state {
            DesiredState::Running => "active",
            DesiredState::Stopped => "stopped",
            DesiredState::Deleted => "deleted",
        };
        let up_to_date =
            site.observed_generation >= site.generation && site.status == converged_status;
        if site.status == "deleted" {
            return Ok(Outcome::Converged);
        }
        if up_to_date {
            // Drift check: is the real world still as we left it?
            match self.drifted(&site).await {
                Ok(false) => return Ok(Outcome::Converged),
                Ok(true) => {
                    tracing::info!(site = %site.id, "site drifted from its desired state; repairing");
                }
                Err(StepError::Waiting { .. }) => return Ok(Outcome::Converged),
                Err(StepError::Failed(why)) => {
                    tracing::warn!(site = %site.id, %why, "drift check failed");
                    return Ok(Outcome::Converged);
                }
            }
        }
        let deployment = self.current_deployment(&site, up_to_date).await?;
        let in_progress = match site.desired_state {
            DesiredState::Running => "provisioning",
            DesiredState::Stopped => "stopping",
            DesiredState::Deleted => "deleting",
        };
        sqlx::query!(
            "UPDATE sites SET status = $2, updated_at = now() WHERE id = $1 AND status <> $2",
            site.id,
            in_progress
        )
        .execute(&self.platform.db)
        .await?;
        self.notify_progress(site.id).await;

        let result = match site.desired_state {
            DesiredState::Running => self.provision(&site, &deployment).await,
            DesiredState::Stopped => self
                .run_step(&site, &deployment, Step::Stop)
                .await
                .map(|_| ()),
            DesiredState::Deleted => self.delete(&site, &deployment).await,
        };
        let outcome = match result {
            Ok(()) => {
                self.succeeded(&site, &deployment, converged_status).await?;
                Outcome::Done
            }
            Err(StepError::Waiting { dependency, detail }) => {
                self.waiting(&site, dependency, &detail).await?;
                Outcome::Waiting(format!("{dependency}: {detail}"))
            }
            Err(StepError::Failed(reason)) => {
                self.failed(&site, &deployment, &reason).await?;
                Outcome::Failed(reason)
            }
        };
        self.notify_progress(site.id).await;
        Ok(outcome)
    }

    /// The deployment this pass works on: the pending or interrupted one of the current
    /// generation, or a new one (`retry` after a failure, `repair` after drift).
    async fn current_deployment(&self, site: &SiteRow, drifted: bool) -> Result<DeploymentRow> {
        let latest = sqlx::query!(
            "SELECT id, reason, status, created_at FROM deployments
              WHERE site_id = $1 AND generation = $2 ORDER BY created_at DESC LIMIT 1",
            site.id,
            site.generation
        )
        .fetch_optional(&self.platform.db)
        .await?;
        let (id, reason, created_at) = match latest {
            Some(d) if !drifted && matches!(d.status.as_str(), "pending" | "running") => {
                (d.id, d.reason, d.created_at)
            }
            latest => {
                let reason = match (drifted, latest) {
                    (true, _) => "repair",
                    (false, Some(_)) => "retry",
                    (false, None) => "reconcile",
                };
                let mut conn = self.platform.db.acquire().await?;
                let id = crate::sites::insert_deployment(
                    &mut conn,
                    site.id,
                    site.generation,
                    reason,
                    None,
                )
                .await?;
                (id, reason.to_owned(), chrono::Utc::now())
            }
        };
        // A pass that was cut off left its step `running`: say what happened to it.
        sqlx::query!(
            "UPDATE deployment_steps SET status = 'failed', finished_at = now(),
                    detail = 'interrupted: the reconciler stopped during this step; resumed'
              WHERE deployment_id = $1 AND status = 'running'",
            id
        )
        .execute(&self.platform.db)
        .await?;
        sqlx::query!(
            "UPDATE deployments SET status = 'running', started_at = coalesce(started_at, now())
              WHERE id = $1",
            id
        )
        .execute(&self.platform.db)
        .await?;
        Ok(DeploymentRow {
            id,
            reason,
            created_at,
        })
    }

    async fn drifted(&self, site: &SiteRow) -> StepResult<bool> {
        let container = self
            .runtime
            .container(site.id, &self.config.network)
            .await?;
        if let (DesiredState::Running, Some(c)) = (site.desired_state, &container)
            && c.running
            && let Some(ip) = c.address
        {
            // Docker may give a restarted container another address: follow it.
            let template = self.template(site)?;
            sqlx::query!(
                "UPDATE sites SET upstream = $2 WHERE id = $1 AND upstream IS DISTINCT FROM $2",
                site.id,
                SocketAddr::new(ip, template.port).to_string()
            )
            .execute(&self.platform.db)
            .await?;
        }
        Ok(match site.desired_state {
            DesiredState::Running => !container.is_some_and(|c| c.running),
            DesiredState::Stopped => container.is_some_and(|c| c.running),
            DesiredState::Deleted => container.is_some(),
        })
    }

    async fn provision(&self, site: &SiteRow, deployment: &DeploymentRow) -> StepResult<()> {
        for step in Step::PROVISION {
            self.run_step(site, deployment, step).await?;
        }
        Ok(())
    }

    async fn delete(&self, site: &SiteRow, deployment: &DeploymentRow) -> StepResult<()> {
        for step in Step::DELETE {
            self.run_step(site, deployment, step).await?;
        }
        Ok(())
    }

    /// Records the step, runs it, records how it ended (with its duration).
    async fn run_step(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
        step: Step,
    ) -> StepResult<String> {
        let step_id = sqlx::query_scalar!(
            "INSERT INTO deployment_steps (deployment_id, step) VALUES ($1, $2) RETURNING id",
            deployment.id,
            step.as_str()
        )
        .fetch_one(&self.platform.db)
        .await?;
        self.notify_progress(site.id).await;
        let result = self.do_step(site, deployment, step).await;
        let (status, detail) = match &result {
            Ok(detail) => ("succeeded", detail.clone()),
            Err(StepError::Waiting { dependency, detail }) => {
                ("failed", format!("waiting for {dependency}: {detail}"))
            }
            Err(StepError::Failed(reason)) => ("failed", reason.clone()),
        };
        sqlx::query!(
            "UPDATE deployment_steps SET status = $2, detail = $3, finished_at = now() WHERE id = $1",
            step_id,
            status,
            detail
        )
        .execute(&self.platform.db)
        .await?;
        self.notify_progress(site.id).await;
        let halt = self.halt_after.lock().ok().and_then(|h| *h);
        if result.is_ok() && halt == Some(step) {
            std::future::pending::<()>().await;
        }
        result
    }

    fn template(&self, site: &SiteRow) -> StepResult<&Template> {
        self.platform.template(&site.template).ok_or_else(|| {
            StepError::Failed(format!(
                "template {:?} is no longer configured on this server",
                site.template
            ))
        })
    }

    fn plan_limits(&self, site: &SiteRow) -> StepResult<&crate::plans::Limits> {
        self.platform
            .plan(&site.plan_id)
            .map(|p| &p.limits)
            .ok_or_else(|| {
                StepError::Failed(format!("plan {:?} is not in the catalog", site.plan_id))
            })
    }

    fn open_secret(&self, site: &SiteRow, what: &str, sealed: &[u8]) -> StepResult<String> {
        let key = self
            .platform
            .master_key
            .as_ref()
            .ok_or_else(|| StepError::Waiting {
                dependency: "master key",
                detail: "provision.master_key is not configured".to_owned(),
            })?;
        key.open_string(&seal_context(site.id, what), sealed)
            .map_err(|e| StepError::Failed(e.to_string()))
    }

    async fn do_step(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
        step: Step,
    ) -> StepResult<String> {
        let ident = TenantIdent::for_site(site.id);
        match step {
            Step::Database => {
                let password = self.open_secret(site, "db_password", &site.db_password_sealed)?;
                let limits = self.plan_limits(site)?;
                self.tenants.ensure(&ident, &password, limits).await?;
                Ok(format!(
                    "schema and role {} (connection limit {}, statement timeout {} ms)",
                    ident.as_str(),
                    limits.db_connections.max(1),
                    limits.statement_timeout_ms
                ))
            }
            Step::Image => {
                let template = self.template(site)?;
                if self.runtime.image_exists(&template.image).await? {
                    return Ok(format!("{} is present", template.image));
                }
                if !template.builtin {
                    return Err(StepError::Failed(format!(
                        "image {} is not on this Docker host (nothing is pulled: load it with `docker load`)",
                        template.image
                    )));
                }
                // One build at a time across all replicas; whoever waited finds it built.
                let lock = self
                    .cluster_lock(&format!("image:{}", template.image))
                    .await?;
                let outcome = if self.runtime.image_exists(&template.image).await? {
                    Ok(format!("{} is present", template.image))
                } else {
                    self.runtime
                        .build_site_image(&self.config.site_binary, &template.image)
                        .await?;
                    Ok(format!(
                        "built {} from {}",
                        template.image,
                        self.config.site_binary.display()
                    ))
                };
                lock.rollback().await?;
                outcome
            }
            Step::Container => {
                let template = self.template(site)?;
                let limits = ResourceLimits::from_plan(self.plan_limits(site)?);
                let gateway = self.gateway().await?;
                match self
                    .runtime
                    .container(site.id, &self.config.network)
                    .await?
                {
                    Some(existing) if existing.limits == limits => {
                        Ok(format!("container {} exists", short(&existing.id)))
                    }
                    Some(existing) => {
                        self.runtime.update_limits(&existing.id, limits).await?;
                        Ok(format!(
                            "container {}: limits updated in place (memory {} MiB, {} mCPU, {} pids)",
                            short(&existing.id),
                            limits.memory_bytes / 1024 / 1024,
                            limits.nano_cpus / 1_000_000,
                            limits.pids
                        ))
                    }
                    None => {
                        self.runtime.ensure_volume(self.instance, site.id).await?;
                        let spec = self.container_spec(site, template, limits, gateway)?;
                        let id = self
                            .runtime
                            .create_container(&spec, &self.config.network)
                            .await?;
                        sqlx::query!(
                            "UPDATE sites SET container_id = $2 WHERE id = $1",
                            site.id,
                            id
                        )
                        .execute(&self.platform.db)
                        .await?;
                        Ok(format!(
                            "created {} (memory {} MiB, {} mCPU, {} pids, read-only root, no capabilities)",
                            short(&id),
                            limits.memory_bytes / 1024 / 1024,
                            limits.nano_cpus / 1_000_000,
                            limits.pids
                        ))
                    }
                }
            }
            Step::Start => {
                let container = self.existing_container(site).await?;
                let restart_requested = deployment.reason == "restart"
                    && container
                        .started_at
                        .is_none_or(|t| t < deployment.created_at);
                if restart_requested && container.running {
                    self.runtime.restart(&container.id).await?;
                    Ok("restarted".to_owned())
                } else if container.running {
                    Ok("already running".to_owned())
                } else {
                    self.runtime.start(&container.id).await?;
                    Ok("started".to_owned())
                }
            }
            Step::Health => {
                let template = self.template(site)?;
                let (detail, upstream) = self.wait_healthy(site, template).await?;
                // Where the proxy sends visitors once the site is `active`.
                sqlx::query!(
                    "UPDATE sites SET upstream = $2 WHERE id = $1 AND upstream IS DISTINCT FROM $2",
                    site.id,
                    upstream.to_string()
                )
                .execute(&self.platform.db)
                .await?;
                Ok(detail)
            }
            Step::Stop => match self
                .runtime
                .container(site.id, &self.config.network)
                .await?
            {
                Some(c) if c.running => {
                    self.runtime.stop(&c.id).await?;
                    Ok("stopped".to_owned())
                }
                Some(_) => Ok("not running".to_owned()),
                None => Ok("no container".to_owned()),
            },
            Step::RemoveContainer => match self
                .runtime
                .container(site.id, &self.config.network)
                .await?
            {
                Some(c) => {
                    self.runtime.remove_container(&c.id).await?;
                    Ok(format!("removed {}", short(&c.id)))
                }
                None => Ok("no container".to_owned()),
            },
            Step::RemoveVolume => {
                self.runtime.remove_volume(site.id).await?;
                Ok(format!("{} removed", crate::runtime::volume_name(site.id)))
            }
            Step::DropDatabase => {
                self.tenants.drop(&ident).await?;
                Ok(format!("schema and role {} dropped", ident.as_str()))
            }
        }
    }

    async fn existing_container(
        &self,
        site: &SiteRow,
    ) -> StepResult<crate::runtime::ContainerState> {
        self.runtime
            .container(site.id, &self.config.network)
            .await?
            .ok_or_else(|| {
                StepError::Failed("the container vanished; it will be created again".to_owned())
            })
    }

    fn container_spec(
        &self,
        site: &SiteRow,
        template: &Template,
        limits: ResourceLimits,
        gateway: IpAddr,
    ) -> StepResult<ContainerSpec> {
        let ident = TenantIdent::for_site(site.id);
        let password = self.open_secret(site, "db_password", &site.db_password_sealed)?;
        let db_host = self
            .config
            .tenant_database_host
            .clone()
            .unwrap_or_else(|| gateway.to_string());
        let plan = self.plan_limits(site)?;
        let values = BTreeMap::from([
            (
                "database_url",
                self.tenants.url_for(&ident, &password, &db_host),
            ),
            (
                "database_max_connections",
                plan.db_connections.max(1).to_string(),
            ),
            (
                "site_token",
                self.open_secret(site, "api_token", &site.api_token_sealed)?,
            ),
            (
                "webhook_secret",
                self.open_secret(site, "webhook_secret", &site.webhook_secret_sealed)?,
            ),
            ("site_name", site.name.clone()),
            ("site_url", self.platform.site_url(&site.slug)),
            ("slug", site.slug.clone()),
        ]);
        Ok(ContainerSpec {
            instance: self.instance,
            site_id: site.id,
            generation: site.generation,
            image: template.image.clone(),
            env: template.render_env(&values),
            port: template.port,
            data_path: template.data_path.clone(),
            limits,
        })
    }

    /// A transaction holding an advisory lock on `what` until it ends: serializes work on
    /// shared Docker objects across every process of the cluster.
    async fn cluster_lock(
        &self,
        what: &str,
    ) -> StepResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.platform.db.begin().await?;
        sqlx::query!(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            LOCK_NAMESPACE + 1,
            what
        )
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    async fn gateway(&self) -> StepResult<IpAddr> {
        if let Some(ip) = self.gateway.lock().ok().and_then(|g| *g) {
            return Ok(ip);
        }
        // Docker allows two networks with one name: create it under a cluster-wide lock.
        let lock = self
            .cluster_lock(&format!("network:{}", self.config.network))
            .await?;
        let ip = self.runtime.ensure_network(&self.config.network).await;
        lock.rollback().await?;
        let ip = ip?;
        if let Ok(mut g) = self.gateway.lock() {
            *g = Some(ip);
        }
        Ok(ip)
    }

    /// Measures every active site's storage (its schema plus, for the built-in app, its data
    /// volume) and records it for the usage graphs and limits. Returns the sites measured.
    #[tracing::instrument(skip_all)]
    pub async fn sample_storage(&self) -> Result<usize> {
        let sites =
            sqlx::query!("SELECT id, template, container_id FROM sites WHERE status = 'active'")
                .fetch_all(&self.platform.db)
                .await?;
        let mut measured = 0;
        for site in sites {
            let schema = self
                .tenants
                .schema_size(&TenantIdent::for_site(site.id))
                .await?;
            let volume = match (self.platform.template(&site.template), &site.container_id) {
                (Some(t), Some(container)) if t.builtin => {
                    match self
                        .runtime
                        .exec(container, &["/site", "disk-usage", &t.data_path])
                        .await
                    {
                        Ok((0, out)) => out.trim().parse::<u64>().unwrap_or(0),
                        Ok((code, out)) => {
                            tracing::warn!(site = %site.id, code, out, "disk-usage failed");
                            0
                        }
                        Err(error) => {
                            tracing::warn!(site = %site.id, %error, "cannot measure the volume");
                            0
                        }
                    }
                }
                // Another image has no tool we know of to ask: its schema is what we count.
                _ => 0,
            };
            crate::usage::record_storage(&self.platform.db, site.id, schema + volume).await?;
            measured += 1;
        }
        Ok(measured)
    }

    /// Polls the health path until it answers 200, the container stops for good, or the
    /// timeout passes; a failure carries the container's last log lines.
    async fn wait_healthy(
        &self,
        site: &SiteRow,
        template: &Template,
    ) -> StepResult<(String, SocketAddr)> {
        let started = Instant::now();
        let timeout = Duration::from_secs(self.config.health_timeout_secs.max(1));
        let mut last_problem = String::from("no answer yet");
        let mut polls = 0u32;
        let mut address = None;
        loop {
            if address.is_none() || polls.is_multiple_of(20) {
                let container = self.existing_container(site).await?;
                if !container.running && container.restart_count >= 5 {
                    return Err(self
                        .failure_with_logs(
                            &container.id,
                            &format!(
                                "the app keeps exiting (exit code {})",
                                container.exit_code.unwrap_or(-1)
                            ),
                        )
                        .await);
                }
                address = container.address;
            }
            if let Some(ip) = address {
                match http_status(SocketAddr::new(ip, template.port), &template.health_path).await {
                    Ok(200) => {
                        let detail = format!(
                            "{} answered 200 after {} ms",
                            template.health_path,
                            started.elapsed().as_millis()
                        );
                        return Ok((detail, SocketAddr::new(ip, template.port)));
                    }
                    Ok(status) => {
                        last_problem = format!("{} answered {status}", template.health_path)
                    }
                    Err(error) => last_problem = error.to_string(),
                }
            }
            if started.elapsed() >= timeout {
                let id = crate::runtime::container_name(site.id);
                return Err(self
                    .failure_with_logs(
                        &id,
                        &format!(
                            "not healthy within {} s ({last_problem})",
                            timeout.as_secs()
                        ),
                    )
                    .await);
            }
            polls += 1;
            tokio::time::sleep(Duration::from_millis(if polls < 50 { 20 } else { 200 })).await;
        }
    }

    async fn failure_with_logs(&self, container: &str, reason: &str) -> StepError {
        let logs = self.runtime.logs(container, 20).await.unwrap_or_default();
        if logs.is_empty() {
            StepError::Failed(reason.to_owned())
        } else {
            StepError::Failed(format!("{reason}\nlast log lines:\n{}", logs.join("\n")))
        }
    }

    async fn succeeded(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
        status: &str,
    ) -> Result<()> {
        let mut tx = self.platform.db.begin().await?;
        sqlx::query!(
            "UPDATE sites SET status = $2, observed_generation = GREATEST(observed_generation, $3),
                    status_reason = NULL, waiting_for = NULL, failures = 0, updated_at = now(),
                    deleted_at = CASE WHEN $2 = 'deleted' THEN now() ELSE deleted_at END
              WHERE id = $1",
            site.id,
            status,
            site.generation
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE deployments SET status = 'succeeded', finished_at = now(), error = NULL WHERE id = $1",
            deployment.id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records what the site waits for. Its deployment stays `running`: the next pass
    /// resumes it where it stopped.
    async fn waiting(&self, site: &SiteRow, dependency: &str, detail: &str) -> Result<()> {
        let delay = backoff(site.failures, Duration::from_secs(30));
        tracing::info!(site = %site.id, dependency, detail, "waiting for a dependency");
        sqlx::query!(
            "UPDATE sites SET waiting_for = $2, status_reason = $3,
                    next_attempt_at = now() + make_interval(secs => $4), failures = failures + 1,
                    updated_at = now()
              WHERE id = $1",
            site.id,
            dependency,
            detail,
            delay.as_secs_f64()
        )
        .execute(&self.platform.db)
        .await?;
        Ok(())
    }

    async fn failed(&self, site: &SiteRow, deployment: &DeploymentRow, reason: &str) -> Result<()> {
        let delay = backoff(site.failures, Duration::from_secs(600));
        tracing::warn!(site = %site.id, reason, retry_in_s = delay.as_secs(), "site failed");
        let mut tx = self.platform.db.begin().await?;
        sqlx::query!(
            "UPDATE sites SET status = 'failed', status_reason = $2, waiting_for = NULL,
                    failures = failures + 1, next_attempt_at = now() + make_interval(secs => $3),
                    updated_at = now()
              WHERE id = $1",
            site.id,
            reason,
            delay.as_secs_f64()
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE deployments SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1",
            deployment.id,
            reason
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn notify_progress(&self, site_id: Uuid) {
        let sent = sqlx::query!(
            "SELECT pg_notify($1, $2)",
            CHANNEL_PROGRESS,
            site_id.to_string()
        )
        .execute(&self.platform.db)
        .await;
        if let Err(error) = sent {
            tracing::debug!(%error, "cannot notify progress");
        }
    }

    /// Removes containers (and their volumes) labelled for a site that does not exist or
    /// is deleted, once they are older than the grace period.
    pub async fn remove_orphans(&self) -> Result<usize> {
        let containers = match self.runtime.managed_containers(self.instance).await {
            Ok(c) => c,
            Err(RuntimeError::Unavailable(_)) => return Ok(0),
            Err(e) => return Err(Error::Internal(e.to_string())),
        };
        let grace = chrono::Duration::seconds(
            i64::try_from(self.config.orphan_grace_secs).unwrap_or(i64::MAX),
        );
        let mut removed = 0;
        for container in containers {
            let Some(site_id) = container.site_id else {
                continue;
            };
            if chrono::Utc::now() - container.created < grace {
                continue;
            }
            let live = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM sites WHERE id = $1 AND status <> 'deleted') AS "live!""#,
                site_id
            )
            .fetch_one(&self.platform.db)
            .await?;
            if !live {
                tracing::warn!(site = %site_id, container = %short(&container.id), "removing an orphaned container");
                self.runtime
                    .remove_container(&container.id)
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?;
                self.runtime
                    .remove_volume(site_id)
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?;
                removed += 1;
            }
        }
        Ok(removed)
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

/// Wakes the loop on every `slipway_sites` notification; reconnects after errors.
/// A bare `GET path` over HTTP/1.0: the status code, within 2 seconds.
pub async fn http_status(address: SocketAddr, path: &str) -> std::io::Result<u16> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await?;
        let mut head = [0u8; 64];
        let mut read = 0;
        while read < 12 {
            let n = stream.read(&mut head[read..]).await?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let line = String::from_utf8_lossy(&head[..read]).to_string();
        line.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 2 s"))?
}

/// The last `lines` lines of the site's container log (empty when there is no container).
pub async fn container_logs(
    platform: &Platform,
    runtime: &Runtime,
    by: &Membership,
    site_id: Uuid,
    lines: usize,
) -> Result<Vec<String>> {
    by.require(Action::ViewSites)?;
    // Scoped: the site must belong to the caller's organization.
    crate::sites::get(platform, by, site_id).await?;
    match runtime
        .logs(&crate::runtime::container_name(site_id), lines)
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
