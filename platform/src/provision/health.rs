//! Whether a started container serves: its health path, polled over plain HTTP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::steps::{StepError, StepResult};
use super::{Reconciler, SiteRow};
use crate::catalog::Template;
use crate::monitor::probe::http_status;

impl Reconciler {
    /// Polls the health path until it answers 200, the container stops for good, or the
    /// timeout passes; a failure carries the container's last log lines.
    pub(super) async fn wait_healthy(
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
                // Nothing restarts it behind our back (the monitor does that, for active
                // sites only): a container that stopped here exited on its own.
                if !container.running {
                    let why = if container.oom_killed {
                        "the app ran out of memory at start".to_owned()
                    } else {
                        format!(
                            "the app exited at start (exit code {})",
                            container.exit_code.unwrap_or(-1)
                        )
                    };
                    return Err(self.failure_with_logs(&container.id, &why).await);
                }
                address = container.address;
            }
            if let Some(ip) = address {
                let probe = http_status(
                    SocketAddr::new(ip, template.port),
                    &template.health_path,
                    Duration::from_secs(2),
                );
                match probe.await {
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
                let id = crate::infra::docker::container_name(site.id);
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
}
