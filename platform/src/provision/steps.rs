//! The steps a pass runs, each idempotent: it looks at what exists and does only what is
//! missing, so a step cut off anywhere is simply run again.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{DeploymentRow, LOCK_NAMESPACE, Reconciler, SiteRow, Step, short};
use crate::catalog::Template;
use crate::catalog::plans::Limits;
use crate::infra::docker::{
    ContainerSpec, ContainerState, ResourceLimits, RuntimeError, SiteNetwork,
};
use crate::infra::tenant_db::TenantIdent;
use crate::kernel::Error;
use crate::sites::{DeploymentReason, StepStatus, seal_context, settings};

/// Why a step did not succeed.
#[derive(Debug)]
pub(super) enum StepError {
    /// A dependency is down; the site waits for it (and says so) without counting a failure.
    Waiting {
        dependency: &'static str,
        detail: String,
    },
    /// The site itself cannot get there; recorded as `failed`, retried with backoff.
    Failed(String),
    /// The process is stopping: the pass ends between two steps, its deployment stays
    /// `running`, and the next start (of any replica) resumes it.
    Stopping,
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

pub(super) type StepResult<T = String> = std::result::Result<T, StepError>;

impl Reconciler {
    pub(super) async fn provision(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
    ) -> StepResult<()> {
        for step in Step::PROVISION {
            self.run_step(site, deployment, step).await?;
        }
        Ok(())
    }

    pub(super) async fn delete(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
    ) -> StepResult<()> {
        for step in Step::DELETE {
            self.run_step(site, deployment, step).await?;
        }
        Ok(())
    }

    /// Records the step, runs it, records how it ended (with its duration).
    pub(super) async fn run_step(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
        step: Step,
    ) -> StepResult<String> {
        if self.stopping.is_cancelled() {
            return Err(StepError::Stopping);
        }
        let step_id = sqlx::query_scalar!(
            "INSERT INTO deployment_steps (deployment_id, step) VALUES ($1, $2) RETURNING id",
            deployment.id,
            step.as_str()
        )
        .fetch_one(&self.platform.db)
        .await?;
        self.notify_progress(site.id).await;
        let started = std::time::Instant::now();
        let result = self.do_step(site, deployment, step).await;
        crate::infra::metrics::RECONCILER_STEPS.observe(
            &[
                step.as_str(),
                if result.is_ok() {
                    "succeeded"
                } else {
                    "failed"
                },
            ],
            started.elapsed(),
        );
        let (status, detail) = match &result {
            Ok(detail) => (StepStatus::Succeeded, detail.clone()),
            Err(StepError::Waiting { dependency, detail }) => (
                StepStatus::Failed,
                format!("waiting for {dependency}: {detail}"),
            ),
            Err(StepError::Failed(reason)) => (StepStatus::Failed, reason.clone()),
            Err(StepError::Stopping) => (
                StepStatus::Failed,
                "interrupted: the server stopped".to_owned(),
            ),
        };
        sqlx::query!(
            "UPDATE deployment_steps SET status = $2, detail = $3, finished_at = now() WHERE id = $1",
            step_id,
            status.as_str(),
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

    async fn do_step(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
        step: Step,
    ) -> StepResult<String> {
        match step {
            Step::Database => self.ensure_database(site).await,
            Step::Image => self.ensure_image(site).await,
            Step::Container => self.ensure_container(site).await,
            Step::Start => self.ensure_started(site, deployment).await,
            Step::Health => self.await_health(site).await,
            Step::Stop => self.ensure_stopped(site).await,
            Step::RemoveContainer => self.remove_container(site).await,
            Step::RemoveVolume => {
                self.runtime.remove_volume(site.id).await?;
                Ok(format!(
                    "{} removed",
                    crate::infra::docker::volume_name(site.id)
                ))
            }
            Step::DropDatabase => {
                let ident = TenantIdent::for_site(site.id);
                self.tenants.drop(&ident).await?;
                Ok(format!("schema and role {} dropped", ident.as_str()))
            }
        }
    }

    /// The site's schema and role, with the plan's connection limit and statement timeout.
    async fn ensure_database(&self, site: &SiteRow) -> StepResult<String> {
        let ident = TenantIdent::for_site(site.id);
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

    /// The template's image: present, or (the built-in one only) built here.
    async fn ensure_image(&self, site: &SiteRow) -> StepResult<String> {
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

    /// The container, with the plan's limits (changed in place when the plan changed).
    async fn ensure_container(&self, site: &SiteRow) -> StepResult<String> {
        let limits = ResourceLimits::from_plan(self.plan_limits(site)?);
        let describe = |limits: ResourceLimits| {
            format!(
                "memory {} MiB, {} mCPU, {} pids",
                limits.memory_bytes / 1024 / 1024,
                limits.nano_cpus / 1_000_000,
                limits.pids
            )
        };
        let template = self.template(site)?;
        let image = self.runtime.image_id(&template.image).await?;
        let settings = settings::environment(&self.platform, site.id, template).await?;
        match self
            .runtime
            .container(site.id, &self.config.network)
            .await?
        {
            // Made from an older build of the image: the app inside is replaced (its data
            // is in the volume and its database, which stay).
            Some(existing) if image.as_ref().is_some_and(|id| *id != existing.image_id) => {
                self.runtime.remove_container(&existing.id).await?;
                let id = self.create_container(site, limits, &settings).await?;
                Ok(format!(
                    "created {} from the current {} (was {})",
                    short(&id),
                    template.image,
                    short(&existing.id)
                ))
            }
            // The customer changed the site's settings: its environment is fixed at
            // creation, so the app is replaced the same way.
            Some(existing) if settings::differ(&existing.env, template, &settings) => {
                self.runtime.remove_container(&existing.id).await?;
                let id = self.create_container(site, limits, &settings).await?;
                Ok(format!(
                    "created {} with the site's settings (was {})",
                    short(&id),
                    short(&existing.id)
                ))
            }
            // A container found here may be one a pass cut off before recording it: it is
            // recorded exactly as if this pass had made it.
            Some(existing) if existing.limits == limits && !existing.engine_restarts => {
                self.record_container(site, &existing.id).await?;
                Ok(format!("container {} exists", short(&existing.id)))
            }
            Some(existing) => {
                self.record_container(site, &existing.id).await?;
                self.runtime.update_limits(&existing.id, limits).await?;
                Ok(format!(
                    "container {}: limits updated in place ({})",
                    short(&existing.id),
                    describe(limits)
                ))
            }
            None => {
                let id = self.create_container(site, limits, &settings).await?;
                Ok(format!(
                    "created {} ({}, read-only root, no capabilities)",
                    short(&id),
                    describe(limits)
                ))
            }
        }
    }

    /// Creates the container with the template's environment and the site's `settings`
    /// (`KEY=value`).
    async fn create_container(
        &self,
        site: &SiteRow,
        limits: ResourceLimits,
        settings: &[String],
    ) -> StepResult<String> {
        let template = self.template(site)?;
        let network = self.network().await?;
        self.runtime.ensure_volume(self.instance, site.id).await?;
        let mut spec = self.container_spec(site, template, limits, network.gateway)?;
        spec.env.extend_from_slice(settings);
        let id = match self.runtime.create_container(&spec, &network.id).await {
            Ok(id) => id,
            Err(error) => {
                // The network may be gone: find or make it again next time.
                self.forget_network();
                return Err(error.into());
            }
        };
        self.record_container(site, &id).await?;
        Ok(id)
    }

    /// Records the site's container id (storage sampling and removal go by it).
    pub(super) async fn record_container(&self, site: &SiteRow, id: &str) -> StepResult<()> {
        sqlx::query!(
            "UPDATE sites SET container_id = $2 WHERE id = $1 AND container_id IS DISTINCT FROM $2",
            site.id,
            id
        )
        .execute(&self.platform.db)
        .await?;
        Ok(())
    }

    /// Running; restarted when the deployment asked for a restart it has not had yet.
    async fn ensure_started(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
    ) -> StepResult<String> {
        let container = self.existing_container(site).await?;
        let restart_requested = deployment.reason == DeploymentReason::Restart
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

    /// Waits for the health path, then records where the proxy sends visitors.
    async fn await_health(&self, site: &SiteRow) -> StepResult<String> {
        let template = self.template(site)?;
        let (detail, upstream) = self.wait_healthy(site, template).await?;
        sqlx::query!(
            "UPDATE sites SET upstream = $2 WHERE id = $1 AND upstream IS DISTINCT FROM $2",
            site.id,
            upstream.to_string()
        )
        .execute(&self.platform.db)
        .await?;
        Ok(detail)
    }

    async fn ensure_stopped(&self, site: &SiteRow) -> StepResult<String> {
        match self
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
        }
    }

    async fn remove_container(&self, site: &SiteRow) -> StepResult<String> {
        match self
            .runtime
            .container(site.id, &self.config.network)
            .await?
        {
            Some(c) => {
                self.runtime.remove_container(&c.id).await?;
                Ok(format!("removed {}", short(&c.id)))
            }
            None => Ok("no container".to_owned()),
        }
    }

    pub(super) fn template(&self, site: &SiteRow) -> StepResult<&Template> {
        self.platform.template(&site.template).ok_or_else(|| {
            StepError::Failed(format!(
                "template {:?} is no longer configured on this server",
                site.template
            ))
        })
    }

    fn plan_limits(&self, site: &SiteRow) -> StepResult<&Limits> {
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

    pub(super) async fn existing_container(&self, site: &SiteRow) -> StepResult<ContainerState> {
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

    /// The sites' network, looked up (or created) once and remembered.
    async fn network(&self) -> StepResult<SiteNetwork> {
        if let Some(network) = self.network.lock().ok().and_then(|n| n.clone()) {
            return Ok(network);
        }
        // Within one installation, one process at a time looks for (and creates) it; across
        // installations and test databases `ensure_network` settles duplicates itself.
        let lock = self
            .cluster_lock(&format!("network:{}", self.config.network))
            .await?;
        let network = self.runtime.ensure_network(&self.config.network).await;
        lock.rollback().await?;
        let network = network?;
        if let Ok(mut remembered) = self.network.lock() {
            *remembered = Some(network.clone());
        }
        Ok(network)
    }

    fn forget_network(&self) {
        if let Ok(mut remembered) = self.network.lock() {
            *remembered = None;
        }
    }
}
