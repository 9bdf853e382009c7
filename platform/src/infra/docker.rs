//! Sites' containers, volumes, images and network, through the Docker Engine API (bollard).
//!
//! Every object made for a site carries `slipway.managed=true` and `slipway.site=<id>`;
//! the shared network carries `slipway.managed=true`. Nothing is ever pulled: the
//! built-in image is built here from the static `site` binary.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerUpdateBody, EndpointSettings,
    HostConfig, Mount, MountType, NetworkCreateRequest, NetworkingConfig, RestartPolicy,
    RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, EventsOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, RestartContainerOptionsBuilder,
    StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

pub const LABEL_MANAGED: &str = "slipway.managed";
pub const LABEL_SITE: &str = "slipway.site";
pub const LABEL_GENERATION: &str = "slipway.generation";
/// On the shared network: the name it was created under (its identity for Slipway).
pub const LABEL_NETWORK: &str = "slipway.network";
/// On the shared network and its claim volume: the token of the process that created it.
pub const LABEL_NETWORK_CLAIM: &str = "slipway.network.claim";
/// How long others wait for a claimant to create the network before doing it themselves.
const CLAIM_PATIENCE: Duration = Duration::from_secs(10);
/// The bridge option that lets containers on one network reach each other.
const ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";
/// The installation (its `instance` row): two Slipways sharing a Docker host never touch
/// each other's objects.
pub const LABEL_INSTANCE: &str = "slipway.instance";

/// The Docker Engine API version we speak: Docker 20.10 and later understand it.
const API_VERSION: bollard::ClientVersion = bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine cannot be reached at all; worth waiting for.
    #[error("the Docker engine is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Docker refused: {0}")]
    Failed(String),
}

impl From<DockerError> for RuntimeError {
    fn from(error: DockerError) -> Self {
        match error {
            DockerError::DockerResponseServerError {
                status_code: 404,
                message,
            } => RuntimeError::NotFound(message),
            DockerError::DockerResponseServerError { message, .. } => RuntimeError::Failed(message),
            DockerError::SocketNotFoundError(path) => {
                RuntimeError::Unavailable(format!("no socket at {path}"))
            }
            DockerError::HyperLegacyError { .. }
            | DockerError::IOError { .. }
            | DockerError::RequestTimeoutError => RuntimeError::Unavailable(error.to_string()),
            other => RuntimeError::Failed(other.to_string()),
        }
    }
}

pub type RuntimeResult<T> = Result<T, RuntimeError>;

/// The network sites' containers join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteNetwork {
    pub id: String,
    pub name: String,
    /// The host's address on the network (where containers reach PostgreSQL by default).
    pub gateway: IpAddr,
}

/// Who may create a network: the token of the claim volume's creator.
struct NetworkClaim {
    token: String,
    /// Since the claim volume was created.
    age: Duration,
}

/// One of Slipway's networks of a name.
struct ManagedNetwork {
    id: String,
    /// Its creator's claim token (none on networks made before claims existed).
    claim: Option<String>,
}

/// What to run for one site.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub instance: Uuid,
    pub site_id: Uuid,
    pub generation: i64,
    pub image: String,
    pub env: Vec<String>,
    pub port: u16,
    pub data_path: String,
    pub limits: ResourceLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
}

impl ResourceLimits {
    pub fn from_plan(limits: &crate::catalog::plans::Limits) -> Self {
        Self {
            memory_bytes: i64::from(limits.memory_mb.max(16)) * 1024 * 1024,
            nano_cpus: i64::from(limits.cpu_millis.max(10)) * 1_000_000,
            pids: i64::from(limits.pids.max(16)),
        }
    }
}

/// What the reconciler needs to know about a site's container.
#[derive(Debug, Clone)]
pub struct ContainerState {
    pub id: String,
    pub running: bool,
    /// The container's address on the Slipway network.
    pub address: Option<IpAddr>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub limits: ResourceLimits,
    pub exit_code: Option<i64>,
    pub restart_count: i64,
    /// Whether the engine's own restart policy is on (containers made before the monitor).
    pub engine_restarts: bool,
    /// Whether its last process was killed for exceeding the memory limit.
    pub oom_killed: bool,
    /// The id (`sha256:...`) of the image it was created from.
    pub image_id: String,
    /// Its environment (`KEY=value`), the image's own variables included.
    pub env: Vec<String>,
}

/// A container with Slipway's labels, as listed.
#[derive(Debug, Clone)]
pub struct ManagedContainer {
    pub id: String,
    pub site_id: Option<Uuid>,
    pub created: chrono::DateTime<chrono::Utc>,
}

pub fn container_name(site_id: Uuid) -> String {
    format!("slipway-site-{site_id}")
}

pub fn volume_name(site_id: Uuid) -> String {
    format!("slipway-site-{site_id}-data")
}

fn site_labels(instance: Uuid, site_id: Uuid) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_INSTANCE.to_owned(), instance.to_string()),
        (LABEL_SITE.to_owned(), site_id.to_string()),
    ])
}

/// The Docker engine, connected on first use (it may be down when Slipway starts).
#[derive(Debug)]
pub struct Runtime {
    socket: String,
    client: OnceLock<Docker>,
    /// One `ensure_network` at a time in this process.
    network_turn: tokio::sync::Mutex<()>,
}

impl Runtime {
    pub fn new(socket: &str) -> Self {
        Self {
            socket: socket.to_owned(),
            client: OnceLock::new(),
            network_turn: tokio::sync::Mutex::new(()),
        }
    }

    fn docker(&self) -> RuntimeResult<&Docker> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = Docker::connect_with_unix(&self.socket, 120, &API_VERSION)?;
        Ok(self.client.get_or_init(|| client))
    }

    /// Answers when the engine does.
    pub async fn ping(&self) -> RuntimeResult<()> {
        self.docker()?.ping().await?;
        Ok(())
    }

    /// The shared bridge network (created when missing): its id and its gateway, the
    /// host's address on it. Container-to-container traffic is off on it.
    ///
    /// Docker does not keep network names unique: two processes (or two test runs) that
    /// find no network and both create one leave two networks of one name, and every later
    /// lookup by name is ambiguous. Docker does serialize volume creation by name, first
    /// creator wins, so a volume `slipway-network-<name>` is the claim: every caller creates
    /// it with a random token, and only the caller whose token it carries creates the
    /// network (labelled with that token); the others wait for it to appear. Networks are
    /// found by label and exact name, never by name alone, and used by id from then on. A
    /// network made before claims existed (no claim label) is adopted, the oldest of several,
    /// and its empty duplicates are removed.
    pub async fn ensure_network(&self, name: &str) -> RuntimeResult<SiteNetwork> {
        let _turn = self.network_turn.lock().await;
        let token = Uuid::new_v4().to_string();
        let claim = self.claim_network(name, &token).await?;
        let started = std::time::Instant::now();
        loop {
            if let Some(id) = self.settle_network(name, &claim.token).await? {
                return self.inspect_site_network(name, &id).await;
            }
            // The claimant creates it; should it have died first, anyone does, a while later.
            if claim.token == token || claim.age.max(started.elapsed()) >= CLAIM_PATIENCE {
                self.create_network(name, &claim.token).await?;
                continue;
            }
            if started.elapsed() >= CLAIM_PATIENCE * 3 {
                return Err(RuntimeError::Failed(format!(
                    "network {name} did not appear (claimed by another process)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The claim on `name`: the token of whoever created its claim volume first (ours, when
    /// there was none), and how old the claim is.
    async fn claim_network(&self, name: &str, token: &str) -> RuntimeResult<NetworkClaim> {
        let volume = self
            .docker()?
            .create_volume(VolumeCreateRequest {
                name: Some(format!("slipway-network-{name}")),
                labels: Some(HashMap::from([
                    (LABEL_MANAGED.to_owned(), "true".to_owned()),
                    (LABEL_NETWORK.to_owned(), name.to_owned()),
                    (LABEL_NETWORK_CLAIM.to_owned(), token.to_owned()),
                ])),
                ..Default::default()
            })
            .await?;
        let winner = volume
            .labels
            .get(LABEL_NETWORK_CLAIM)
            .cloned()
            .ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "volume slipway-network-{name} exists without Slipway's claim label; remove it"
                ))
            })?;
        let age = volume
            .created_at
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .and_then(|at| {
                (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                    .to_std()
                    .ok()
            })
            .unwrap_or_default();
        Ok(NetworkClaim { token: winner, age })
    }

    /// The network to use, if there is one: the claimed one, else the oldest that exists
    /// (one made before claims existed, or under a claim since removed). Empty duplicates of
    /// the one chosen are removed.
    async fn settle_network(&self, name: &str, claim: &str) -> RuntimeResult<Option<String>> {
        let networks = self.networks_named(name).await?;
        let claimed: Vec<&ManagedNetwork> = networks
            .iter()
            .filter(|n| n.claim.as_deref() == Some(claim))
            .collect();
        let candidates: Vec<&ManagedNetwork> = if claimed.is_empty() {
            networks.iter().collect()
        } else {
            claimed
        };
        let Some(chosen) = candidates.first() else {
            return Ok(None);
        };
        for duplicate in candidates.iter().skip(1) {
            self.remove_duplicate_network(name, &duplicate.id).await;
        }
        Ok(Some(chosen.id.clone()))
    }

    async fn create_network(&self, name: &str, claim: &str) -> RuntimeResult<()> {
        let created = self
            .docker()?
            .create_network(NetworkCreateRequest {
                name: name.to_owned(),
                driver: Some("bridge".to_owned()),
                options: Some(HashMap::from([(ICC_OPTION.to_owned(), "false".to_owned())])),
                labels: Some(HashMap::from([
                    (LABEL_MANAGED.to_owned(), "true".to_owned()),
                    (LABEL_NETWORK.to_owned(), name.to_owned()),
                    (LABEL_NETWORK_CLAIM.to_owned(), claim.to_owned()),
                ])),
                ..Default::default()
            })
            .await;
        match created {
            Ok(_) => Ok(()),
            // Engines that refuse a second network of one name: it exists, the next look
            // finds it. Anything else is a real failure.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(error) => Err(RuntimeError::from(error)),
        }
    }

    /// Slipway's networks named exactly `name`, oldest first (ties by id, so every process
    /// orders them the same way).
    async fn networks_named(&self, name: &str) -> RuntimeResult<Vec<ManagedNetwork>> {
        let filters = HashMap::from([
            ("name", vec![name.to_owned()]),
            ("label", vec![format!("{LABEL_MANAGED}=true")]),
        ]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        // The name filter matches substrings: keep the exact name only.
        let mut networks: Vec<(chrono::DateTime<chrono::FixedOffset>, ManagedNetwork)> = self
            .docker()?
            .list_networks(Some(options))
            .await?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| {
                let created = chrono::DateTime::parse_from_rfc3339(n.created.as_deref()?).ok()?;
                let claim = n
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_NETWORK_CLAIM))
                    .cloned();
                Some((created, ManagedNetwork { id: n.id?, claim }))
            })
            .collect();
        networks.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(networks.into_iter().map(|(_, n)| n).collect())
    }

    /// The network's id and gateway, checked: containers on it must not reach each other.
    async fn inspect_site_network(&self, name: &str, id: &str) -> RuntimeResult<SiteNetwork> {
        let network = self.docker()?.inspect_network(id, None).await?;
        let icc = network
            .options
            .as_ref()
            .and_then(|o| o.get(ICC_OPTION))
            .map(String::as_str);
        if icc != Some("false") {
            return Err(RuntimeError::Failed(format!(
                "network {name} lets containers reach each other (enable_icc is not false); remove it and Slipway will recreate it"
            )));
        }
        let gateway = network
            .ipam
            .and_then(|ipam| ipam.config)
            .into_iter()
            .flatten()
            .filter_map(|c| c.gateway)
            .find_map(|g| g.parse().ok())
            .ok_or_else(|| {
                RuntimeError::Failed(format!("network {name} has no gateway address"))
            })?;
        Ok(SiteNetwork {
            id: id.to_owned(),
            name: name.to_owned(),
            gateway,
        })
    }

    /// Removes a duplicate network unless a container uses it (then it stays, and says so).
    async fn remove_duplicate_network(&self, name: &str, id: &str) {
        let Ok(docker) = self.docker() else {
            return;
        };
        let in_use = match docker.inspect_network(id, None).await {
            Ok(network) => network.containers.is_some_and(|c| !c.is_empty()),
            Err(_) => return,
        };
        if in_use {
            tracing::warn!(network = %name, id, "a duplicate network has containers; left in place");
            return;
        }
        match docker.remove_network(id).await.map_err(RuntimeError::from) {
            Ok(()) => tracing::info!(network = %name, id, "removed a duplicate network"),
            Err(RuntimeError::NotFound(_)) => {}
            Err(error) => {
                tracing::warn!(network = %name, id, %error, "cannot remove a duplicate network")
            }
        }
    }

    /// The id (`sha256:...`) the tag `image` names now, if it exists.
    pub async fn image_id(&self, image: &str) -> RuntimeResult<Option<String>> {
        match self
            .docker()?
            .inspect_image(image)
            .await
            .map_err(RuntimeError::from)
        {
            Ok(inspect) => Ok(inspect.id),
            Err(RuntimeError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    pub async fn image_exists(&self, image: &str) -> RuntimeResult<bool> {
        match self
            .docker()?
            .inspect_image(image)
            .await
            .map_err(RuntimeError::from)
        {
            Ok(_) => Ok(true),
            Err(RuntimeError::NotFound(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Packages the static `site` binary as `tag`, `FROM scratch`, with the classic
    /// builder (no pull, no registry). Returns the build's last output line.
    pub async fn build_site_image(&self, binary: &Path, tag: &str) -> RuntimeResult<String> {
        let program = tokio::fs::read(binary).await.map_err(|e| {
            RuntimeError::NotFound(format!(
                "the site binary {} cannot be read ({e}); build it with `make site-image`",
                binary.display()
            ))
        })?;
        let dockerfile = "FROM scratch\n\
             COPY site /site\n\
             COPY --chown=65534:65534 data /data\n\
             USER 65534:65534\n\
             EXPOSE 8000\n\
             HEALTHCHECK --interval=30s --timeout=3s --start-period=5s CMD [\"/site\", \"health\"]\n\
             ENTRYPOINT [\"/site\"]\n";
        let context = build_context(&[
            ("Dockerfile", dockerfile.as_bytes(), 0o644),
            ("site", &program, 0o755),
            ("data/.keep", b"", 0o644),
        ])
        .map_err(|e| RuntimeError::Failed(format!("cannot pack the build context: {e}")))?;
        let labels = HashMap::from([(LABEL_MANAGED, "true")]);
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .build();
        let docker = self.docker()?;
        let mut stream =
            docker.build_image(options, None, Some(bollard::body_full(context.into())));
        let mut last = String::new();
        while let Some(item) = stream.next().await {
            let info = item?;
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err(RuntimeError::Failed(format!("building {tag}: {error}")));
            }
            if let Some(line) = info.stream.filter(|s| !s.trim().is_empty()) {
                last = line.trim().to_owned();
            }
        }
        Ok(last)
    }

    pub async fn ensure_volume(&self, instance: Uuid, site_id: Uuid) -> RuntimeResult<()> {
        self.docker()?
            .create_volume(VolumeCreateRequest {
                name: Some(volume_name(site_id)),
                labels: Some(site_labels(instance, site_id)),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    pub async fn remove_volume(&self, site_id: Uuid) -> RuntimeResult<()> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match self
            .docker()?
            .remove_volume(&volume_name(site_id), Some(options))
            .await
            .map_err(RuntimeError::from)
        {
            Ok(()) | Err(RuntimeError::NotFound(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// This installation's containers (all states).
    pub async fn managed_containers(&self, instance: Uuid) -> RuntimeResult<Vec<ManagedContainer>> {
        let filters = HashMap::from([(
            "label",
            vec![
                format!("{LABEL_MANAGED}=true"),
                format!("{LABEL_INSTANCE}={instance}"),
            ],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let listed = self.docker()?.list_containers(Some(options)).await?;
        Ok(listed
            .into_iter()
            .filter_map(|c| {
                Some(ManagedContainer {
                    site_id: c
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(LABEL_SITE))
                        .and_then(|s| s.parse().ok()),
                    created: chrono::DateTime::from_timestamp(c.created.unwrap_or(0), 0)?,
                    id: c.id?,
                })
            })
            .collect())
    }

    /// The site's container, found by name (`slipway-site-<id>`), if it exists.
    pub async fn container(
        &self,
        site_id: Uuid,
        network: &str,
    ) -> RuntimeResult<Option<ContainerState>> {
        match self
            .docker()?
            .inspect_container(&container_name(site_id), None)
            .await
            .map_err(RuntimeError::from)
        {
            Ok(inspect) => Ok(Some(container_state(inspect, network))),
            Err(RuntimeError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Creates the site's container, hardened: no capabilities, no new privileges, a
    /// read-only root with one data volume (and a small /tmp), no host mounts, no
    /// published ports, the plan's memory/CPU/pids limits. The engine does not restart it:
    /// the monitor does.
    pub async fn create_container(
        &self,
        spec: &ContainerSpec,
        network: &str,
    ) -> RuntimeResult<String> {
        let mut labels = site_labels(spec.instance, spec.site_id);
        labels.insert(LABEL_GENERATION.to_owned(), spec.generation.to_string());
        let host_config = HostConfig {
            memory: Some(spec.limits.memory_bytes),
            // Same as memory: no swap on top of the plan's memory.
            memory_swap: Some(spec.limits.memory_bytes),
            nano_cpus: Some(spec.limits.nano_cpus),
            pids_limit: Some(spec.limits.pids),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
            readonly_rootfs: Some(true),
            privileged: Some(false),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                "rw,noexec,nosuid,size=16m".to_owned(),
            )])),
            mounts: Some(vec![Mount {
                target: Some(spec.data_path.clone()),
                source: Some(volume_name(spec.site_id)),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            }]),
            // Slipway's monitor restarts sites (with backoff, and also when they hang): the
            // engine's own policy would race it.
            restart_policy: Some(no_restart()),
            network_mode: Some(network.to_owned()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(labels),
            exposed_ports: Some(vec![format!("{}/tcp", spec.port)]),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.to_owned(),
                    EndpointSettings::default(),
                )])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&container_name(spec.site_id))
            .build();
        let created = self.docker()?.create_container(Some(options), body).await?;
        Ok(created.id)
    }

    /// Applies new limits (and the monitor's restart policy) to a container in place (no
    /// restart).
    pub async fn update_limits(&self, id: &str, limits: ResourceLimits) -> RuntimeResult<()> {
        self.docker()?
            .update_container(
                id,
                ContainerUpdateBody {
                    memory: Some(limits.memory_bytes),
                    memory_swap: Some(limits.memory_bytes),
                    nano_cpus: Some(limits.nano_cpus),
                    pids_limit: Some(limits.pids),
                    restart_policy: Some(no_restart()),
                    ..Default::default()
                },
            )
            .await?;
        Ok(())
    }

    pub async fn start(&self, id: &str) -> RuntimeResult<()> {
        self.docker()?.start_container(id, None).await?;
        Ok(())
    }

    pub async fn restart(&self, id: &str) -> RuntimeResult<()> {
        self.docker()?.restart_container(id, None).await?;
        Ok(())
    }

    /// Restarts the container, killing it if it has not stopped within `grace_secs` (a hung
    /// app may never finish what it is doing).
    pub async fn restart_within(&self, id: &str, grace_secs: i32) -> RuntimeResult<()> {
        let options = RestartContainerOptionsBuilder::default()
            .t(grace_secs)
            .build();
        self.docker()?.restart_container(id, Some(options)).await?;
        Ok(())
    }

    pub async fn stop(&self, id: &str) -> RuntimeResult<()> {
        let options = StopContainerOptionsBuilder::default().t(10).build();
        match self
            .docker()?
            .stop_container(id, Some(options))
            .await
            .map_err(RuntimeError::from)
        {
            // An already stopped container answers 304, which bollard counts as success.
            Ok(()) | Err(RuntimeError::NotFound(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Removes the container (running or not) with its anonymous volumes.
    pub async fn remove_container(&self, id: &str) -> RuntimeResult<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .docker()?
            .remove_container(id, Some(options))
            .await
            .map_err(RuntimeError::from)
        {
            Ok(()) | Err(RuntimeError::NotFound(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// The last `lines` lines the container wrote (stdout and stderr), each starting with
    /// when the engine received it ([`stamped`]).
    pub async fn logs(&self, id: &str, lines: usize) -> RuntimeResult<Vec<String>> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker()?.logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&chunk?.to_string());
        }
        Ok(text.lines().map(stamped).collect())
    }

    /// The engine's events about this installation's site containers (died, out of memory,
    /// health, removed, started), as they happen. Ends when the engine closes the stream.
    pub fn events(
        &self,
        instance: Uuid,
    ) -> RuntimeResult<impl Stream<Item = RuntimeResult<ContainerEvent>> + Send + use<>> {
        let filters = HashMap::from([
            ("type", vec!["container".to_owned()]),
            (
                "label",
                vec![
                    format!("{LABEL_MANAGED}=true"),
                    format!("{LABEL_INSTANCE}={instance}"),
                ],
            ),
            (
                "event",
                ["die", "oom", "destroy", "start", "health_status"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
        ]);
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        let stream = self.docker()?.clone().events(Some(options));
        Ok(stream.filter_map(|item| async move {
            match item {
                Ok(message) => container_event(message).map(Ok),
                Err(error) => Some(Err(RuntimeError::from(error))),
            }
        }))
    }

    /// One reading of the container's memory and CPU use (the engine samples twice, about a
    /// second apart, for the CPU figure).
    pub async fn resource_use(&self, id: &str) -> RuntimeResult<ResourceUse> {
        let options = StatsOptionsBuilder::default().stream(false).build();
        let mut stream = self.docker()?.stats(id, Some(options));
        let stats = stream
            .next()
            .await
            .ok_or_else(|| RuntimeError::Failed("no statistics".to_owned()))??;
        let memory = stats.memory_stats.unwrap_or_default();
        // What `docker stats` shows: usage minus the page cache the kernel can drop.
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| s.get("inactive_file").or_else(|| s.get("cache")).copied())
            .unwrap_or(0);
        let memory_bytes = memory.usage.unwrap_or(0).saturating_sub(cache);
        let total = |c: &Option<bollard::models::ContainerCpuStats>| {
            c.as_ref().map_or((0, 0), |c| {
                (
                    c.cpu_usage
                        .as_ref()
                        .and_then(|u| u.total_usage)
                        .unwrap_or(0),
                    c.system_cpu_usage.unwrap_or(0),
                )
            })
        };
        let (cpu, system) = total(&stats.cpu_stats);
        let (pre_cpu, pre_system) = total(&stats.precpu_stats);
        let cpus = stats
            .cpu_stats
            .as_ref()
            .and_then(|c| c.online_cpus)
            .unwrap_or(1)
            .max(1);
        let cpu_delta = cpu.saturating_sub(pre_cpu) as f64;
        let system_delta = system.saturating_sub(pre_system) as f64;
        let cpu_percent = if system_delta > 0.0 && pre_cpu > 0 {
            cpu_delta / system_delta * f64::from(cpus) * 100.0
        } else {
            0.0
        };
        Ok(ResourceUse {
            memory_bytes,
            cpu_percent,
        })
    }

    /// The container's `last` lines, then what it writes from now on (stdout and stderr),
    /// one line per item; ends when the container stops, does not exist, or the engine
    /// cannot be reached.
    pub fn follow_logs(&self, id: &str, last: usize) -> impl Stream<Item = String> + Send + use<> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .timestamps(true)
            .tail(&last.to_string())
            .build();
        let stream = match self.docker() {
            Ok(docker) => docker.clone().logs(id, Some(options)).left_stream(),
            Err(_) => futures_util::stream::empty().right_stream(),
        };
        stream
            .take_while(|chunk| std::future::ready(chunk.is_ok()))
            .flat_map(|chunk| {
                let text = chunk.map(|c| c.to_string()).unwrap_or_default();
                futures_util::stream::iter(text.lines().map(stamped).collect::<Vec<_>>())
            })
    }

    /// Runs `cmd` inside the container and returns its exit code and output.
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> RuntimeResult<(i64, String)> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let docker = self.docker()?;
        let exec = docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        let mut output = String::new();
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = docker.start_exec(&exec.id, None).await?
        {
            while let Some(chunk) = stream.next().await {
                output.push_str(&chunk?.to_string());
            }
        }
        let mut code = None;
        for _ in 0..50 {
            let inspect = docker.inspect_exec(&exec.id).await?;
            if inspect.running != Some(true) {
                code = inspect.exit_code;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((code.unwrap_or(-1), output))
    }

    /// The raw inspect output, for tests and diagnostics.
    pub async fn inspect(&self, id: &str) -> RuntimeResult<ContainerInspectResponse> {
        Ok(self.docker()?.inspect_container(id, None).await?)
    }
}

fn container_state(inspect: ContainerInspectResponse, network: &str) -> ContainerState {
    let state = inspect.state.unwrap_or_default();
    let host = inspect.host_config.unwrap_or_default();
    ContainerState {
        id: inspect.id.unwrap_or_default(),
        running: state.running == Some(true),
        address: inspect
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse().ok()),
        started_at: state
            .started_at
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .filter(|t| t.timestamp() > 0),
        limits: ResourceLimits {
            memory_bytes: host.memory.unwrap_or(0),
            nano_cpus: host.nano_cpus.unwrap_or(0),
            pids: host.pids_limit.unwrap_or(0),
        },
        exit_code: state.exit_code,
        restart_count: inspect.restart_count.unwrap_or(0),
        engine_restarts: host
            .restart_policy
            .and_then(|p| p.name)
            .is_some_and(|name| {
                name != RestartPolicyNameEnum::NO && name != RestartPolicyNameEnum::EMPTY
            }),
        oom_killed: state.oom_killed == Some(true),
        image_id: inspect.image.unwrap_or_default(),
        env: inspect.config.and_then(|c| c.env).unwrap_or_default(),
    }
}

fn no_restart() -> RestartPolicy {
    RestartPolicy {
        name: Some(RestartPolicyNameEnum::NO),
        maximum_retry_count: None,
    }
}

/// What the engine said happened to one of Slipway's site containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub site_id: Uuid,
    pub container_id: String,
    pub kind: ContainerEventKind,
    /// The engine's clock.
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEventKind {
    /// The process ended (crashed, killed, or stopped on purpose).
    Died {
        exit_code: Option<i64>,
    },
    /// The kernel killed a process of the container for exceeding its memory limit.
    OutOfMemory,
    /// The image's own health check changed its verdict.
    Health {
        healthy: bool,
    },
    /// The container was removed.
    Destroyed,
    Started,
}

/// Reads one event of the engine's stream as a [`ContainerEvent`], when it is one.
fn container_event(message: bollard::models::EventMessage) -> Option<ContainerEvent> {
    let actor = message.actor?;
    let attributes = actor.attributes.unwrap_or_default();
    let site_id = attributes.get(LABEL_SITE)?.parse().ok()?;
    let action = message.action?;
    let kind = match action.as_str() {
        "die" => ContainerEventKind::Died {
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "oom" => ContainerEventKind::OutOfMemory,
        "destroy" => ContainerEventKind::Destroyed,
        "start" => ContainerEventKind::Started,
        "health_status: healthy" => ContainerEventKind::Health { healthy: true },
        "health_status: unhealthy" => ContainerEventKind::Health { healthy: false },
        _ => return None,
    };
    let at = message
        .time_nano
        .map(chrono::DateTime::from_timestamp_nanos)
        .unwrap_or_else(chrono::Utc::now);
    Some(ContainerEvent {
        site_id,
        container_id: actor.id.unwrap_or_default(),
        kind,
        at,
    })
}

/// One reading of a container's resource use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceUse {
    pub memory_bytes: u64,
    /// Of one core: 100.0 is one core fully used.
    pub cpu_percent: f64,
}

/// An uncompressed tar of `files` (name, bytes, mode), for a build context.
fn build_context(files: &[(&str, &[u8], u32)]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for (name, bytes, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_cksum();
        archive.append_data(&mut header, name, *bytes)?;
    }
    archive.into_inner()
}

/// A log line as the engine sends it with timestamps (`2026-11-30T17:41:47.123456789Z
/// GET / 200`), read as `2026-11-30 17:41:47 GET / 200` (UTC, to the second). A line
/// without a timestamp stays as it is.
pub fn stamped(line: &str) -> String {
    let Some((stamp, text)) = line.split_once(' ') else {
        return line.to_owned();
    };
    match chrono::DateTime::parse_from_rfc3339(stamp) {
        Ok(at) => format!(
            "{} {text}",
            at.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S")
        ),
        Err(_) => line.to_owned(),
    }
}

#[cfg(test)]
mod stamp_tests {
    use super::stamped;

    #[test]
    fn engine_timestamps_read_as_utc_seconds() {
        assert_eq!(
            stamped("2026-11-30T17:41:47.123456789Z GET /posts 200 3ms"),
            "2026-11-30 17:41:47 GET /posts 200 3ms"
        );
        assert_eq!(
            stamped("2026-11-30T18:41:47.5+01:00 started"),
            "2026-11-30 17:41:47 started"
        );
        assert_eq!(stamped("no stamp here"), "no stamp here");
        assert_eq!(stamped("plain"), "plain");
    }
}
