//! The sites' network against the real Docker engine, as several Slipway processes find it
//! at once on an engine that has none: each caller is its own client (no lock in common,
//! like separate processes or test runs with separate databases), all start together, on a
//! machine as busy as it happens to be (network creation there can take a second).

use std::collections::HashMap;
use std::sync::Arc;

use bollard::Docker;
use bollard::query_parameters::ListNetworksOptionsBuilder;
use platform::infra::docker::{LABEL_MANAGED, Runtime, SiteNetwork};
use tokio::sync::Barrier;
use uuid::Uuid;

const SOCKET: &str = "/var/run/docker.sock";

fn docker() -> Docker {
    Docker::connect_with_unix(SOCKET, 30, bollard::API_DEFAULT_VERSION).expect("docker socket")
}

/// The ids of every network named exactly `name`.
async fn networks_named(name: &str) -> Vec<String> {
    let filters = HashMap::from([("name", vec![name.to_owned()])]);
    let options = ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    docker()
        .list_networks(Some(options))
        .await
        .expect("list networks")
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name))
        .filter_map(|n| n.id)
        .collect()
}

/// The networks and the claim volume the test made.
async fn remove_all(name: &str) {
    for id in networks_named(name).await {
        let _ = docker().remove_network(&id).await;
    }
    let _ = docker()
        .remove_volume(
            &format!("slipway-network-{name}"),
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await;
}

/// `callers` clients call `ensure_network` at the same instant.
async fn race(name: &str, callers: usize) -> Vec<SiteNetwork> {
    let barrier = Arc::new(Barrier::new(callers));
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let barrier = barrier.clone();
        let name = name.to_owned();
        tasks.push(tokio::spawn(async move {
            let runtime = Runtime::new(SOCKET);
            runtime.ping().await.expect("engine answers");
            barrier.wait().await;
            runtime.ensure_network(&name).await
        }));
    }
    let mut networks = Vec::new();
    for task in tasks {
        networks.push(task.await.expect("task").expect("ensure_network"));
    }
    networks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_processes_creating_the_network_at_once_end_with_exactly_one() {
    for round in 0..10 {
        let name = format!("slipway-race-{}", Uuid::new_v4().simple());
        assert!(networks_named(&name).await.is_empty());
        let networks = race(&name, 8).await;
        let left = networks_named(&name).await;
        remove_all(&name).await;
        assert_eq!(left.len(), 1, "round {round}: networks left: {left:?}");
        for network in &networks {
            assert_eq!(
                network.id, left[0],
                "round {round}: a caller uses another network"
            );
            assert_eq!(network.name, name);
        }
    }
}

#[tokio::test]
async fn duplicates_left_by_an_older_version_are_settled_on_the_oldest() {
    let name = format!("slipway-dup-{}", Uuid::new_v4().simple());
    // What two racing processes used to leave behind: two networks of one name.
    let mut made = Vec::new();
    for _ in 0..2 {
        let created = docker()
            .create_network(bollard::models::NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".to_owned()),
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.enable_icc".to_owned(),
                    "false".to_owned(),
                )])),
                labels: Some(HashMap::from([(
                    LABEL_MANAGED.to_owned(),
                    "true".to_owned(),
                )])),
                ..Default::default()
            })
            .await
            .expect("create a duplicate");
        made.push(created.id);
    }
    assert_eq!(networks_named(&name).await.len(), 2);
    let network = Runtime::new(SOCKET)
        .ensure_network(&name)
        .await
        .expect("adopts one");
    let left = networks_named(&name).await;
    remove_all(&name).await;
    assert_eq!(
        left,
        vec![network.id.clone()],
        "the empty duplicate is removed"
    );
    assert_eq!(network.id, made[0], "the oldest is adopted");
}

#[tokio::test]
async fn a_network_whose_claim_is_gone_is_kept_not_duplicated() {
    let name = format!("slipway-reclaim-{}", Uuid::new_v4().simple());
    let first = Runtime::new(SOCKET)
        .ensure_network(&name)
        .await
        .expect("created");
    // An operator cleaning up volumes by Slipway's label removes the claim too.
    docker()
        .remove_volume(
            &format!("slipway-network-{name}"),
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .expect("claim removed");
    let again = Runtime::new(SOCKET)
        .ensure_network(&name)
        .await
        .expect("found");
    let left = networks_named(&name).await;
    remove_all(&name).await;
    assert_eq!(again.id, first.id);
    assert_eq!(left, vec![first.id]);
}
