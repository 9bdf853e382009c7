//! One pass over one site: read its row, check for drift, pick the deployment, run the
//! steps (`steps.rs`) and record how it ended.

use std::net::SocketAddr;
use std::time::Duration;

use uuid::Uuid;

use super::steps::{StepError, StepResult};
use super::{CHANNEL_PROGRESS, DeploymentRow, Outcome, Reconciler, SiteRow, Step, backoff};
use crate::incidents::{self, IncidentKind, Subject};
use crate::kernel::Result;
use crate::sites::{DeploymentReason, DesiredState, SiteStatus};

impl Reconciler {
    pub(super) async fn load(&self, site_id: Uuid) -> Result<Option<SiteRow>> {
        let row = sqlx::query!(
            "SELECT s.id, s.organization_id, s.name, s.slug, s.template, s.desired_state,
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
                organization_id: r.organization_id,
                name: r.name,
                slug: r.slug,
                template: r.template,
                desired_state: DesiredState::stored(&r.desired_state)?,
                generation: r.generation,
                status: SiteStatus::stored(&r.status)?,
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

    pub(super) async fn pass(&self, site_id: Uuid) -> Result<Outcome> {
        let Some(site) = self.load(site_id).await? else {
            return Ok(Outcome::Converged);
        };
        let converged_status = SiteStatus::reached(site.desired_state);
        let up_to_date =
            site.observed_generation >= site.generation && site.status == converged_status;
        if site.status == SiteStatus::Deleted {
            return Ok(Outcome::Converged);
        }
        if up_to_date {
            // Drift check: is the real world still as we left it?
            match self.drifted(&site).await {
                Ok(false) => return Ok(Outcome::Converged),
                Ok(true) => {
                    tracing::info!(site = %site.id, "site drifted from its desired state; repairing");
                }
                Err(StepError::Waiting { .. } | StepError::Stopping) => {
                    return Ok(Outcome::Converged);
                }
                Err(StepError::Failed(why)) => {
                    tracing::warn!(site = %site.id, %why, "drift check failed");
                    return Ok(Outcome::Converged);
                }
            }
        }
        let deployment = self.current_deployment(&site, up_to_date).await?;
        sqlx::query!(
            "UPDATE sites SET status = $2, updated_at = now() WHERE id = $1 AND status <> $2",
            site.id,
            SiteStatus::towards(site.desired_state).as_str()
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
            Err(StepError::Stopping) => return Ok(Outcome::Interrupted),
        };
        self.notify_progress(site.id).await;
        Ok(outcome)
    }

    /// The deployment this pass works on: the pending or interrupted one of the current
    /// generation, or a new one (`retry` after a failure, `repair` after drift).
    pub(super) async fn current_deployment(
        &self,
        site: &SiteRow,
        drifted: bool,
    ) -> Result<DeploymentRow> {
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
                (d.id, DeploymentReason::stored(&d.reason)?, d.created_at)
            }
            latest => {
                let reason = match (drifted, latest) {
                    (true, _) => DeploymentReason::Repair,
                    (false, Some(_)) => DeploymentReason::Retry,
                    (false, None) => DeploymentReason::Reconcile,
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
                (id, reason, chrono::Utc::now())
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

    pub(super) async fn drifted(&self, site: &SiteRow) -> StepResult<bool> {
        let container = self
            .runtime
            .container(site.id, &self.config.network)
            .await?;
        if let Some(c) = &container {
            self.record_container(site, &c.id).await?;
        }
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
        if let (DesiredState::Running, Some(c)) = (site.desired_state, &container) {
            let template = self.template(site)?;
            let current = self.runtime.image_id(&template.image).await?;
            // Made from an older build of its image (the site image was rebuilt on an
            // upgrade), or still under the engine's own restart policy: made again.
            if current.is_some_and(|id| id != c.image_id) || c.engine_restarts {
                return Ok(true);
            }
        }
        Ok(match site.desired_state {
            // A container that crashed or hangs is the monitor's to restart (with backoff,
            // and not at all once it is crash looping); a container that vanished is ours
            // to make again.
            DesiredState::Running if self.platform.monitor.enabled => container.is_none(),
            DesiredState::Running => !container.is_some_and(|c| c.running),
            DesiredState::Stopped => container.is_some_and(|c| c.running),
            DesiredState::Deleted => container.is_some(),
        })
    }

    pub(super) async fn succeeded(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
        status: SiteStatus,
    ) -> Result<()> {
        observe_deployment(deployment, "succeeded");
        let mut tx = self.platform.db.begin().await?;
        sqlx::query!(
            "UPDATE sites SET status = $2, observed_generation = GREATEST(observed_generation, $3),
                    status_reason = NULL, waiting_for = NULL, failures = 0, updated_at = now(),
                    deleted_at = CASE WHEN $2 = 'deleted' THEN now() ELSE deleted_at END
              WHERE id = $1",
            site.id,
            status.as_str(),
            site.generation
        )
        .execute(&mut *tx)
        .await?;
        if status == SiteStatus::Deleted {
            // Its secrets go with it.
            crate::sites::settings::forget(&mut tx, site.id).await?;
        }
        sqlx::query!(
            "UPDATE deployments SET status = 'succeeded', finished_at = now(), error = NULL WHERE id = $1",
            deployment.id
        )
        .execute(&mut *tx)
        .await?;
        incidents::resolve(
            &mut tx,
            &self.platform,
            &Subject::site(
                site.organization_id,
                site.id,
                IncidentKind::ProvisioningFailed,
            ),
            "the next attempt succeeded",
        )
        .await?;
        if status == SiteStatus::Active {
            // The organization's first active site is its activation (docs/metrics.md).
            sqlx::query!(
                "UPDATE organizations SET activated_at = now() WHERE id = $1 AND activated_at IS NULL",
                site.organization_id
            )
            .execute(&mut *tx)
            .await?;
            // Deployed and healthy (a restart from the dashboard, a container made again):
            // whatever the monitor last saw is over, and its restart waits start afresh.
            crate::monitor::start_afresh(
                &mut tx,
                &self.platform,
                site.organization_id,
                site.id,
                &format!("deployed again ({}) and healthy", deployment.reason),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records what the site waits for. Its deployment stays `running`: the next pass
    /// resumes it where it stopped.
    pub(super) async fn waiting(
        &self,
        site: &SiteRow,
        dependency: &str,
        detail: &str,
    ) -> Result<()> {
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

    pub(super) async fn failed(
        &self,
        site: &SiteRow,
        deployment: &DeploymentRow,
        reason: &str,
    ) -> Result<()> {
        let delay = backoff(site.failures, Duration::from_secs(600));
        tracing::warn!(site = %site.id, reason, retry_in_s = delay.as_secs(), "site failed");
        observe_deployment(deployment, "failed");
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
        let (incident, opened) = incidents::open(
            &mut tx,
            &self.platform,
            &Subject::site(
                site.organization_id,
                site.id,
                IncidentKind::ProvisioningFailed,
            ),
            reason,
        )
        .await?;
        if !opened {
            incidents::note(
                &mut tx,
                incident,
                &format!("failed again, retried in {} s", delay.as_secs()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn notify_progress(&self, site_id: Uuid) {
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
}

/// The deployment's duration so far, in the provisioning histogram.
fn observe_deployment(deployment: &DeploymentRow, outcome: &str) {
    let took = (chrono::Utc::now() - deployment.created_at)
        .to_std()
        .unwrap_or_default();
    crate::infra::metrics::PROVISIONING.observe(&[deployment.reason.as_str(), outcome], took);
}
