//! Measuring what sites store, and removing containers whose site is gone.

use super::{Reconciler, short};
use crate::infra::docker::RuntimeError;
use crate::infra::tenant_db::TenantIdent;
use crate::kernel::{Error, Result};

impl Reconciler {
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
            crate::traffic::usage::record_storage(&self.platform.db, site.id, schema + volume)
                .await?;
            measured += 1;
        }
        Ok(measured)
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
